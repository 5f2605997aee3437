/* SPDX-License-Identifier: Apache-2.0
 * jfr_labels: the LabelsSnapshot the Pyroscope Java agent sends beside a
 * recording (pyroscope's jfr_labels.proto): contexts (field 1, map of
 * context id -> Context{labels: map of string id -> string id}) and strings
 * (field 2, map of string id -> string). Read with a small wire reader:
 * every length is checked and unknown fields are skipped. */
#include <string.h>

#include "jfr_int.h"

typedef struct pb {
    const uint8_t *p, *end;
    bool bad;
} pb;

static uint64_t pb_varint(pb *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return v;
    }
    r->bad = true;
    return 0;
}

/* Reads a field's tag and, for wire type 2, its bytes into *sub; skips
 * the value of every other wire type. Returns the field number (0 at the
 * end or on error). */
static uint64_t pb_field(pb *r, pb *sub, uint64_t *num)
{
    if (r->bad || r->p >= r->end)
        return 0;
    uint64_t tag = pb_varint(r);
    uint64_t wt = tag & 7;
    *num = 0;
    *sub = (pb){NULL, NULL, false};
    if (wt == 0) {
        *num = pb_varint(r);
    } else if (wt == 2) {
        uint64_t n = pb_varint(r);
        if (n > (uint64_t)(r->end - r->p))
            r->bad = true;
        else
            *sub = (pb){r->p, r->p + n, false}, r->p += n;
    } else if ((wt == 1 || wt == 5) && (size_t)(r->end - r->p) >= (wt == 1 ? 8u : 4u)) {
        r->p += wt == 1 ? 8 : 4;
    } else {
        r->bad = true;
    }
    return r->bad ? 0 : tag >> 3;
}

/* A map entry: key (field 1, varint) and value (field 2, varint or bytes). */
static bool map_entry(pb *e, int64_t *key, int64_t *ival, pb *bval)
{
    pb sub;
    uint64_t f, num;
    *key = 0;
    *ival = 0;
    *bval = (pb){NULL, NULL, false};
    while ((f = pb_field(e, &sub, &num)) != 0) {
        if (f == 1)
            *key = (int64_t)num;
        else if (f == 2 && sub.p != NULL)
            *bval = sub;
        else if (f == 2)
            *ival = (int64_t)num;
    }
    return !e->bad;
}

static bool read_strings(kiln_arena_t *a, pb r, kiln_jfr_labels *l)
{
    pb sub;
    uint64_t f, num;
    while ((f = pb_field(&r, &sub, &num)) != 0) {
        int64_t key, iv;
        pb v;
        if (f != 2 || sub.p == NULL)
            continue;
        if (!map_entry(&sub, &key, &iv, &v))
            return false;
        kiln_str_t *s = kiln_jfr__vec_push(a, &l->strings, sizeof(*s));
        if (s == NULL ||
            !kiln_jfr__map_put(a, &l->string_ids, (uint64_t)key, (uint32_t)(l->strings.len - 1)))
            return false;
        *s = v.p ? (kiln_str_t){(const char *)v.p, (size_t)(v.end - v.p)} : (kiln_str_t){"", 0};
    }
    return !r.bad;
}

/* One Context message: its labels map (field 1) as string id pairs. */
static bool read_context(kiln_arena_t *a, pb ctx, kiln_jfr_labels *l, kiln_jfr_context *c)
{
    pb sub;
    uint64_t f, num;
    c->off = (uint32_t)l->pairs.len;
    c->n = 0;
    while ((f = pb_field(&ctx, &sub, &num)) != 0) {
        int64_t k, v;
        pb unused;
        if (f != 1 || sub.p == NULL)
            continue;
        if (!map_entry(&sub, &k, &v, &unused))
            return false;
        int64_t *pair = kiln_jfr__vec_push(a, &l->pairs, 2 * sizeof(int64_t));
        if (pair == NULL)
            return false;
        pair[0] = k;
        pair[1] = v;
        c->n++;
    }
    return !ctx.bad;
}

static bool read_contexts(kiln_arena_t *a, pb r, kiln_jfr_labels *l)
{
    pb sub;
    uint64_t f, num;
    while ((f = pb_field(&r, &sub, &num)) != 0) {
        int64_t key, iv;
        pb v;
        if (f != 1 || sub.p == NULL)
            continue;
        if (!map_entry(&sub, &key, &iv, &v))
            return false;
        kiln_jfr_context *c = kiln_jfr__vec_push(a, &l->contexts, sizeof(*c));
        if (c == NULL || !read_context(a, v, l, c) ||
            !kiln_jfr__map_put(a, &l->context_ids, (uint64_t)key, (uint32_t)(l->contexts.len - 1)))
            return false;
    }
    return !r.bad;
}

kiln_status kiln_jfr__labels_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                   kiln_jfr_labels *out, kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    pb r = {data, data + len, false};
    if (!read_strings(a, r, out) || !read_contexts(a, r, out))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: the labels part is not a LabelsSnapshot protobuf");
    return KILN_OK;
}

kiln_str_t kiln_jfr__labels_string(const kiln_jfr_labels *l, int64_t id)
{
    uint32_t i;
    if (!kiln_jfr__map_get(&l->string_ids, (uint64_t)id, &i))
        return (kiln_str_t){"", 0};
    return ((const kiln_str_t *)l->strings.v)[i];
}

size_t kiln_jfr__labels_of(kiln_arena_t *a, const kiln_jfr_labels *l, uint64_t ctx,
                           kiln_pprof_build_label **out)
{
    uint32_t i;
    *out = NULL;
    kiln_jfr_context none = {0, 0};
    const kiln_jfr_context *c = &none;
    if (ctx != 0 && kiln_jfr__map_get(&l->context_ids, ctx, &i))
        c = &((const kiln_jfr_context *)l->contexts.v)[i];
    kiln_pprof_build_label *ls = kiln_arena_alloc(a, (c->n + 2) * sizeof(*ls));
    if (ls == NULL)
        return 0;
    size_t n = 0;
    for (uint32_t j = 0; j < c->n; j++) {
        const int64_t *pairs = (const int64_t *)l->pairs.v + 2 * (size_t)c->off;
        kiln_str_t k = kiln_jfr__labels_string(l, pairs[2 * j]),
                   v = kiln_jfr__labels_string(l, pairs[2 * j + 1]);
        if (k.len > 0 && v.len > 0)
            ls[n++] = (kiln_pprof_build_label){k, v};
    }
    *out = ls;
    return n;
}
