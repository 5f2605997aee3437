/* SPDX-License-Identifier: Apache-2.0
 * multipart: a line scanner for boundaries and part headers, and memmem for
 * the delimiter that ends each (binary) part body. */
#include "multipart.h"

#include <stdbool.h>
#include <string.h>

#define MAX_HEADER_LINES 100
#define MAX_BOUNDARY 200

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static bool ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x | 0x20);
        if (x != y)
            return false;
    }
    return true;
}

/* A quoted-string value starting after the opening quote at h[*i]: the
 * text up to the closing quote with backslash escapes removed. */
static bool quoted(kiln_arena_t *a, kiln_str_t h, size_t *i, kiln_str_t *out)
{
    char *o = kiln_arena_alloc(a, h.len - *i + 1);
    if (o == NULL)
        return false;
    size_t n = 0;
    while (*i < h.len && h.ptr[*i] != '"') {
        if (h.ptr[*i] == '\\' && *i + 1 < h.len)
            (*i)++;
        o[n++] = h.ptr[(*i)++];
    }
    if (*i < h.len)
        (*i)++;
    *out = (kiln_str_t){o, n};
    return true;
}

bool kiln_mime_param(kiln_arena_t *a, kiln_str_t h, const char *key, kiln_str_t *out)
{
    size_t i = 0;
    while (i < h.len && h.ptr[i] != ';')
        i++;
    while (i < h.len) {
        i++; /* the ';' */
        while (i < h.len && is_ws(h.ptr[i]))
            i++;
        size_t ks = i;
        while (i < h.len && h.ptr[i] != '=' && h.ptr[i] != ';' && !is_ws(h.ptr[i]))
            i++;
        size_t ke = i;
        while (i < h.len && is_ws(h.ptr[i]))
            i++;
        if (i < h.len && h.ptr[i] == '=') {
            i++;
            while (i < h.len && is_ws(h.ptr[i]))
                i++;
            kiln_str_t v;
            if (i < h.len && h.ptr[i] == '"') {
                i++;
                if (!quoted(a, h, &i, &v))
                    return false;
            } else {
                size_t vs = i;
                while (i < h.len && h.ptr[i] != ';' && !is_ws(h.ptr[i]))
                    i++;
                v = (kiln_str_t){h.ptr + vs, i - vs};
            }
            if (ieq(h.ptr + ks, ke - ks, key)) {
                *out = v;
                return true;
            }
        }
        while (i < h.len && h.ptr[i] != ';')
            i++;
    }
    return false;
}

kiln_status kiln_multipart_boundary(kiln_arena_t *a, const char *content_type, kiln_str_t *out,
                                    kiln_err *err)
{
    kiln_str_t ct = {content_type ? content_type : "", content_type ? strlen(content_type) : 0};
    kiln_str_t b;
    if (!kiln_mime_param(a, ct, "boundary", &b))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "multipart: no boundary in Content-Type \"%.80s\"", ct.ptr);
    if (b.len == 0 || b.len > MAX_BOUNDARY)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "multipart: boundary must be 1 to %d bytes",
                            MAX_BOUNDARY);
    *out = b;
    return KILN_OK;
}

typedef struct scan {
    const char *p;
    size_t len, pos;
    kiln_str_t dash;  /* "--" boundary */
    kiln_str_t delim; /* nl "--" boundary */
    size_t nl_len;
} scan;

/* The line at pos (without "\n" or "\r\n"); advances past it. */
static bool line(scan *s, kiln_str_t *l)
{
    if (s->pos >= s->len)
        return false;
    const char *start = s->p + s->pos;
    const char *nl = memchr(start, '\n', s->len - s->pos);
    size_t n = nl ? (size_t)(nl - start) : s->len - s->pos;
    s->pos += nl ? n + 1 : n;
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *l = (kiln_str_t){start, n};
    return true;
}

/* 1 for "--boundary", 2 for "--boundary--" (trailing blanks allowed), 0 else. */
static int boundary_line(const scan *s, kiln_str_t l)
{
    if (l.len < s->dash.len || memcmp(l.ptr, s->dash.ptr, s->dash.len) != 0)
        return 0;
    size_t i = s->dash.len;
    int kind = 1;
    if (l.len - i >= 2 && l.ptr[i] == '-' && l.ptr[i + 1] == '-') {
        kind = 2;
        i += 2;
    }
    while (i < l.len && is_ws(l.ptr[i]))
        i++;
    return i == l.len ? kind : 0;
}

/* Finds the first boundary line, skipping the preamble; sets the newline
 * style from it. Returns its kind (see boundary_line), 0 when none. */
static int first_boundary(scan *s)
{
    kiln_str_t l;
    while (line(s, &l)) {
        int k = boundary_line(s, l);
        if (k != 0) {
            s->nl_len = s->pos >= 2 && s->p[s->pos - 2] == '\r' && s->p[s->pos - 1] == '\n' ? 2 : 1;
            return k;
        }
    }
    return 0;
}

/* Reads a part's header lines up to the blank line. */
static kiln_status headers(kiln_arena_t *a, scan *s, kiln_multipart_part *p, kiln_err *err)
{
    kiln_str_t l;
    for (int n = 0; line(s, &l); n++) {
        if (l.len == 0)
            return KILN_OK;
        if (n == MAX_HEADER_LINES)
            break;
        const char *colon = memchr(l.ptr, ':', l.len);
        if (colon == NULL || is_ws(l.ptr[0]))
            continue; /* malformed or a folded continuation: ignored */
        kiln_str_t v = {colon + 1, l.len - (size_t)(colon + 1 - l.ptr)};
        while (v.len > 0 && is_ws(v.ptr[0]))
            v.ptr++, v.len--;
        size_t nlen = (size_t)(colon - l.ptr);
        if (ieq(l.ptr, nlen, "content-disposition")) {
            kiln_mime_param(a, v, "name", &p->name);
            kiln_mime_param(a, v, "filename", &p->filename);
        } else if (ieq(l.ptr, nlen, "content-type")) {
            p->content_type = v;
        }
    }
    return kiln_err_set(err, KILN_INVALID_ARGUMENT, "multipart: part headers do not end");
}

/* Finds the delimiter that ends the body starting at pos. On success sets
 * *end to the body's end and advances past the delimiter line; *last says
 * it was the closing one. */
static bool body_end(scan *s, size_t *end, bool *last)
{
    size_t from = s->pos;
    while (from < s->len) {
        const char *q = memmem(s->p + from, s->len - from, s->delim.ptr, s->delim.len);
        if (q == NULL)
            return false;
        size_t at = (size_t)(q - s->p), i = at + s->delim.len;
        *last = s->len - i >= 2 && s->p[i] == '-' && s->p[i + 1] == '-';
        if (*last)
            i += 2;
        while (i < s->len && is_ws(s->p[i]))
            i++;
        bool eol = i == s->len || s->p[i] == '\n' ||
                   (s->p[i] == '\r' && i + 1 < s->len && s->p[i + 1] == '\n');
        if (*last || eol) {
            *end = at;
            s->pos = i == s->len ? i : i + (s->p[i] == '\r' ? 2 : 1);
            return true;
        }
        from = at + 1; /* the boundary text followed by other bytes is data */
    }
    return false;
}

/* The delimiter strings "--B" and nl"--B" in arena memory. */
static bool delimiters(kiln_arena_t *a, scan *s, kiln_str_t boundary)
{
    char *d = kiln_arena_alloc(a, boundary.len + 4);
    if (d == NULL)
        return false;
    d[0] = '\r', d[1] = '\n', d[2] = '-', d[3] = '-';
    memcpy(d + 4, boundary.ptr, boundary.len);
    s->dash = (kiln_str_t){d + 2, boundary.len + 2};
    s->delim = (kiln_str_t){d, boundary.len + 4};
    return true;
}

kiln_status kiln_multipart_parse(kiln_arena_t *a, const uint8_t *body, size_t len,
                                 kiln_str_t boundary, kiln_multipart_part **parts, size_t *n_parts,
                                 kiln_err *err)
{
    scan s = {(const char *)body, body ? len : 0, 0, {NULL, 0}, {NULL, 0}, 0};
    if (boundary.len == 0 || !delimiters(a, &s, boundary))
        return kiln_err_set(err, boundary.len ? KILN_RESOURCE_EXHAUSTED : KILN_INVALID_ARGUMENT,
                            "multipart: empty boundary or out of memory");
    int k = first_boundary(&s);
    if (k == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "multipart: no boundary line in the body");
    if (s.nl_len == 1) {
        s.delim.ptr++;
        s.delim.len--;
    }
    kiln_multipart_part *out = kiln_arena_calloc(a, 16, sizeof(*out));
    size_t n = 0, cap = 16;
    for (bool last = k == 2; !last;) {
        if (out == NULL)
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "multipart: out of memory");
        if (n == KILN_MULTIPART_MAX_PARTS)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "multipart: more than %d parts",
                                KILN_MULTIPART_MAX_PARTS);
        kiln_multipart_part *p = &out[n];
        *p = (kiln_multipart_part){{"", 0}, {"", 0}, {"", 0}, NULL, 0};
        kiln_status st = headers(a, &s, p, err);
        if (st != KILN_OK)
            return st;
        size_t start = s.pos, end;
        if (!body_end(&s, &end, &last))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "multipart: part %zu has no closing boundary", n + 1);
        p->data = (const uint8_t *)s.p + start;
        p->len = end - start;
        if (++n == cap && !last) {
            kiln_multipart_part *g = kiln_arena_alloc(a, 2 * cap * sizeof(*g));
            if (g != NULL)
                memcpy(g, out, cap * sizeof(*g));
            out = g;
            cap *= 2;
        }
    }
    *parts = out;
    *n_parts = n;
    return KILN_OK;
}

const kiln_multipart_part *kiln_multipart_find(const kiln_multipart_part *parts, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len != 0 && kiln_str_eq(parts[i].name, name))
            return &parts[i];
    }
    return NULL;
}
