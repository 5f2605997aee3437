/* SPDX-License-Identifier: Apache-2.0
 * folded: a line iterator, a line classifier (stack + values, skip, or
 * bad), and a stack splitter feeding pprof_build. */
#include "folded.h"

#include <stdbool.h>
#include <string.h>

/* Growable array of location ids (arena memory). */
typedef struct ids {
    uint64_t *v;
    size_t n, cap;
} ids;

typedef enum line_kind { LINE_SKIP, LINE_OK, LINE_BAD } line_kind;

typedef struct line_iter {
    const char *p, *end;
    size_t lineno;
} line_iter;

/* The next line without its '\n'; false at the end of the input. */
static bool next_line(line_iter *it, kiln_str_t *line)
{
    if (it->p >= it->end)
        return false;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *e = nl ? nl : it->end;
    *line = (kiln_str_t){it->p, (size_t)(e - it->p)};
    it->p = nl ? nl + 1 : it->end;
    it->lineno++;
    return true;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Transcodes UTF-16 (after the BOM) to UTF-8 into o; returns the length. */
static size_t utf16_to_utf8(const uint8_t *d, size_t len, bool be, uint8_t *o)
{
    size_t n = 0, i = 0;
    for (; i + 1 < len; i += 2) {
        uint32_t u = be ? (uint32_t)(d[i] << 8 | d[i + 1]) : (uint32_t)(d[i + 1] << 8 | d[i]);
        if (u >= 0xd800 && u <= 0xdbff && i + 3 < len) {
            uint32_t lo =
                be ? (uint32_t)(d[i + 2] << 8 | d[i + 3]) : (uint32_t)(d[i + 3] << 8 | d[i + 2]);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                n += put_utf8(o + n, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
                i += 2;
                continue;
            }
        }
        n += put_utf8(o + n, u >= 0xd800 && u <= 0xdfff ? 0xfffd : u);
    }
    if (i < len)
        n += put_utf8(o + n, 0xfffd);
    return n;
}

kiln_status kiln_text_to_utf8(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_str_t *out,
                              kiln_err *err)
{
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
        *out = (kiln_str_t){(const char *)data + 3, len - 3};
        return KILN_OK;
    }
    bool le = len >= 2 && data[0] == 0xff && data[1] == 0xfe;
    bool be = len >= 2 && data[0] == 0xfe && data[1] == 0xff;
    if (!le && !be) {
        *out = (kiln_str_t){len ? (const char *)data : "", len};
        return KILN_OK;
    }
    /* Each 2 input bytes give at most 3 output bytes (4 for 4). */
    uint8_t *o = kiln_arena_alloc(a, (len / 2) * 3 + 4);
    if (o == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "text too large to transcode from UTF-16");
    *out = (kiln_str_t){(const char *)o, utf16_to_utf8(data + 2, len - 2, be, o)};
    return KILN_OK;
}

/* Go's strconv.Atoi on s[0..n): optional sign, digits, no overflow. */
static bool parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* `stack [v1 v2 ...]`: the values between the last '[' (after a space) and
 * the closing ']'. LINE_SKIP means "not bracketed". */
static line_kind bracketed(kiln_str_t l, kiln_str_t *stack, int64_t *vals, size_t *n_vals)
{
    size_t lb = l.len - 1;
    while (lb > 0 && l.ptr[lb] != '[')
        lb--;
    if (lb == 0 || l.ptr[lb - 1] != ' ')
        return LINE_SKIP;
    size_t n = 0;
    for (size_t i = lb + 1; i < l.len - 1;) {
        if (l.ptr[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < l.len - 1 && l.ptr[j] != ' ')
            j++;
        if (n == KILN_FOLDED_MAX_VALUES || !parse_int(l.ptr + i, j - i, &vals[n]))
            return LINE_BAD;
        n++;
        i = j;
    }
    if (n == 0)
        return LINE_BAD;
    *stack = (kiln_str_t){l.ptr, lb - 1};
    *n_vals = n;
    return LINE_OK;
}

/* Splits a folded line into its stack and values. */
static line_kind classify(kiln_str_t l, kiln_str_t *stack, int64_t *vals, size_t *n_vals)
{
    while (l.len > 0 &&
           (l.ptr[l.len - 1] == '\r' || l.ptr[l.len - 1] == ' ' || l.ptr[l.len - 1] == '\t'))
        l.len--;
    if (l.len == 0)
        return LINE_SKIP;
    if (l.ptr[l.len - 1] == ']') {
        line_kind k = bracketed(l, stack, vals, n_vals);
        if (k != LINE_SKIP)
            return k;
    }
    const char *sp = NULL;
    for (size_t i = l.len; i > 0 && sp == NULL; i--)
        sp = l.ptr[i - 1] == ' ' ? l.ptr + i - 1 : NULL;
    if (sp == NULL)
        return LINE_SKIP; /* as Pyroscope: a line without a space is ignored */
    const char *cnt = sp + 1;
    if (!parse_int(cnt, (size_t)(l.ptr + l.len - cnt), &vals[0]))
        return LINE_BAD;
    *stack = (kiln_str_t){l.ptr, (size_t)(sp - l.ptr)};
    *n_vals = 1;
    return LINE_OK;
}

static bool ids_push(kiln_arena_t *a, ids *s, uint64_t id)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint64_t *v = kiln_arena_alloc(a, ncap * sizeof(*v));
        if (v == NULL)
            return false;
        if (s->n)
            memcpy(v, s->v, s->n * sizeof(*v));
        s->v = v;
        s->cap = ncap;
    }
    s->v[s->n++] = id;
    return true;
}

/* Adds the root-first stack "a;b;c" with vals to the builder. */
static kiln_status add_stack(kiln_arena_t *a, kiln_pprof_build_t *b, ids *s, kiln_str_t stack,
                             const int64_t *vals, kiln_err *err)
{
    s->n = 0;
    for (size_t start = 0, i = 0; i <= stack.len; i++) {
        if (i < stack.len && stack.ptr[i] != ';')
            continue;
        if (i == stack.len && start == i)
            break; /* empty trailing segment */
        uint64_t id = kiln_pprof_build_frame(b, (kiln_str_t){stack.ptr + start, i - start});
        if (id == 0 || !ids_push(a, s, id))
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "folded: profile too large");
        start = i + 1;
    }
    for (size_t i = 0; i < s->n / 2; i++) {
        uint64_t t = s->v[i];
        s->v[i] = s->v[s->n - 1 - i];
        s->v[s->n - 1 - i] = t;
    }
    if (kiln_pprof_build_sample(b, s->v, s->n, vals, NULL, 0) != KILN_OK)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "folded: profile too large");
    return KILN_OK;
}

static kiln_status bad_line(kiln_str_t l, size_t lineno, const char *why, kiln_err *err)
{
    size_t n = l.len > 60 ? 60 : l.len;
    if (n > 0 && l.ptr[n - 1] == '\r')
        n--;
    return kiln_err_set(err, KILN_INVALID_ARGUMENT, "folded: line %zu \"%.*s%s\": %s", lineno,
                        (int)n, l.ptr, l.len > 60 ? "..." : "", why);
}

/* -1 when a value is negative, 0 when all are zero (the line adds nothing
 * and is skipped, as it adds nothing to Pyroscope's tree), else 1. */
static int values_sign(const int64_t *vals, size_t n)
{
    int sign = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[i] < 0)
            return -1;
        sign |= vals[i] > 0;
    }
    return sign;
}

/* Values per line: those of the first line that has a count (1 if none). */
static kiln_status values_per_line(kiln_str_t text, size_t *n, kiln_err *err)
{
    line_iter it = {text.ptr, text.ptr + text.len, 0};
    kiln_str_t l, stack;
    int64_t vals[KILN_FOLDED_MAX_VALUES];
    *n = 1;
    while (next_line(&it, &l)) {
        line_kind k = classify(l, &stack, vals, n);
        if (k == LINE_BAD)
            return bad_line(l, it.lineno, "the last field is not an integer sample count", err);
        if (k == LINE_OK)
            break;
    }
    return KILN_OK;
}

kiln_status kiln_folded_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                              kiln_pprof_build_t **out, kiln_err *err)
{
    kiln_str_t text;
    size_t n_types;
    kiln_status st = kiln_text_to_utf8(a, data, len, &text, err);
    if (st == KILN_OK)
        st = values_per_line(text, &n_types, err);
    if (st != KILN_OK)
        return st;
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, n_types);
    if (b == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "folded: profile too large");
    line_iter it = {text.ptr, text.ptr + text.len, 0};
    ids s = {NULL, 0, 0};
    kiln_str_t l, stack;
    int64_t vals[KILN_FOLDED_MAX_VALUES];
    size_t n;
    while (st == KILN_OK && next_line(&it, &l)) {
        line_kind k = classify(l, &stack, vals, &n);
        if (k == LINE_BAD)
            st = bad_line(l, it.lineno, "the last field is not an integer sample count", err);
        else if (k == LINE_OK && n != n_types)
            st = bad_line(l, it.lineno, "a different number of values than the first line", err);
        else if (k == LINE_OK && values_sign(vals, n) < 0)
            st = bad_line(l, it.lineno, "a negative sample count", err);
        else if (k == LINE_OK && values_sign(vals, n) > 0)
            st = add_stack(a, b, &s, stack, vals, err);
    }
    if (st == KILN_OK)
        *out = b;
    return st;
}

kiln_status kiln_lines_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                             kiln_pprof_build_t **out, kiln_err *err)
{
    kiln_str_t text;
    kiln_status st = kiln_text_to_utf8(a, data, len, &text, err);
    if (st != KILN_OK)
        return st;
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    if (b == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "lines: profile too large");
    line_iter it = {text.ptr, text.ptr + text.len, 0};
    ids s = {NULL, 0, 0};
    kiln_str_t l;
    const int64_t one = 1;
    while (st == KILN_OK && next_line(&it, &l)) {
        if (l.len > 0 && l.ptr[l.len - 1] == '\r')
            l.len--;
        if (l.len > 0)
            st = add_stack(a, b, &s, l, &one, err);
    }
    if (st == KILN_OK)
        *out = b;
    return st;
}
