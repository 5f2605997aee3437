/* SPDX-License-Identifier: Apache-2.0
 * appname: a single left-to-right scan of name{k=v,...}. */
#include "appname.h"

#include <stdbool.h>
#include <string.h>

static bool app_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '/';
}

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static kiln_str_t trim(const char *s, size_t n)
{
    while (n > 0 && is_space(*s))
        s++, n--;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return (kiln_str_t){s, n};
}

static kiln_status check_name(kiln_str_t n, kiln_err *err)
{
    if (n.len == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "name: service name is required");
    for (size_t i = 0; i < n.len; i++) {
        if (!app_char(n.ptr[i]))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "name: invalid character '%c' (0x%02x) in app name \"%.*s\": "
                                "allowed are A-Z a-z 0-9 _ . - /",
                                n.ptr[i] >= 0x20 && n.ptr[i] < 0x7f ? n.ptr[i] : '?',
                                (unsigned char)n.ptr[i], (int)(n.len > 80 ? 80 : n.len), n.ptr);
    }
    return KILN_OK;
}

static kiln_status check_key(kiln_str_t k, kiln_err *err)
{
    bool ok = k.len > 0;
    for (size_t i = 0; ok && i < k.len; i++)
        ok = key_char(k.ptr[i]);
    if (!ok)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "name: invalid label name \"%.*s\": allowed are A-Z a-z 0-9 _ .",
                            (int)(k.len > 80 ? 80 : k.len), k.ptr);
    return KILN_OK;
}

/* Adds or replaces tag k=v (arena copies) in out->tags (capacity cap). */
static kiln_status set_tag(kiln_arena_t *a, kiln_appname_t *out, kiln_str_t k, kiln_str_t v)
{
    char *ks = kiln_arena_strndup(a, k.ptr, k.len), *vs = kiln_arena_strndup(a, v.ptr, v.len);
    if (ks == NULL || vs == NULL)
        return KILN_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < out->n_tags; i++) {
        if (strcmp(out->tags[i].name, ks) == 0) {
            out->tags[i].value = vs;
            return KILN_OK;
        }
    }
    out->tags[out->n_tags++] = (kiln_label_t){ks, vs};
    return KILN_OK;
}

/* The tag list after '{' (s[0..len)), as Pyroscope's parser states. */
static kiln_status parse_tags(kiln_arena_t *a, const char *s, size_t len, kiln_appname_t *out,
                              kiln_err *err)
{
    size_t i = 0;
    while (i < len) {
        size_t ks = i;
        while (i < len && s[i] != '=' && s[i] != '}')
            i++;
        if (i == len || s[i] == '}')
            return KILN_OK; /* a key without '=' is ignored; '}' ends the list */
        size_t ke = i++, vs = i;
        while (i < len && s[i] != ',' && s[i] != '}')
            i++;
        if (i == len)
            return KILN_OK; /* unterminated value: dropped */
        kiln_str_t k = trim(s + ks, ke - ks), v = trim(s + vs, i - vs);
        kiln_status st = kiln_str_eq(k, KILN_LABEL_NAME) ? KILN_OK : check_key(k, err);
        if (st == KILN_OK)
            st = set_tag(a, out, k, v);
        if (st == KILN_RESOURCE_EXHAUSTED)
            return kiln_err_set(err, st, "name: out of memory");
        if (st != KILN_OK || s[i] == '}')
            return st;
        i++;
    }
    return KILN_OK;
}

static bool keep_tag(const kiln_label_t *t)
{
    if (t->value[0] == '\0')
        return false;
    return strncmp(t->name, "__", 2) != 0 || strcmp(t->name, "__session_id__") == 0;
}

/* Applies a __name__ tag and drops the tags that are not kept. */
static kiln_status finish_tags(kiln_appname_t *out, kiln_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < out->n_tags; i++) {
        if (strcmp(out->tags[i].name, KILN_LABEL_NAME) == 0) {
            const char *v = out->tags[i].value;
            kiln_status st = check_name((kiln_str_t){v, strlen(v)}, err);
            if (st != KILN_OK)
                return st;
            out->name = v;
        } else if (keep_tag(&out->tags[i])) {
            out->tags[n++] = out->tags[i];
        }
    }
    out->n_tags = n;
    return KILN_OK;
}

kiln_status kiln_appname_parse(kiln_arena_t *a, const char *s, size_t len, kiln_appname_t *out,
                               kiln_err *err)
{
    if (s == NULL)
        s = "", len = 0;
    const char *brace = memchr(s, '{', len);
    size_t name_len = brace ? (size_t)(brace - s) : len;
    kiln_str_t name = trim(s, name_len);
    kiln_status st = check_name(name, err);
    if (st != KILN_OK)
        return st;
    kiln_appname_t r = {kiln_arena_strndup(a, name.ptr, name.len), NULL, 0};
    /* Each tag needs an '='; that bounds their number. */
    size_t max_tags = 1;
    for (size_t i = name_len; i < len; i++)
        max_tags += s[i] == '=';
    r.tags = kiln_arena_alloc(a, max_tags * sizeof(*r.tags));
    if (r.name == NULL || r.tags == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "name: out of memory");
    if (brace != NULL)
        st = parse_tags(a, brace + 1, len - name_len - 1, &r, err);
    if (st == KILN_OK)
        st = finish_tags(&r, err);
    if (st == KILN_OK)
        *out = r;
    return st;
}

const char *kiln_appname_tag(const kiln_appname_t *n, const char *key)
{
    for (size_t i = 0; i < n->n_tags; i++) {
        if (strcmp(n->tags[i].name, key) == 0)
            return n->tags[i].value;
    }
    return NULL;
}

const char *kiln_appname_split(kiln_arena_t *a, const char *name, const char **app)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL) {
        *app = name;
        return NULL;
    }
    *app = kiln_arena_strndup(a, name, (size_t)(dot - name));
    if (*app == NULL)
        *app = "";
    return dot + 1;
}
