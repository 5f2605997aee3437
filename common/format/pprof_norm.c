/* SPDX-License-Identifier: Apache-2.0
 * pprof_norm: the checks and the normalisation of a decoded profile
 * (kiln_pprof_validate, kiln_pprof_normalize and the one-pass
 * kiln_pprof_validate_normalize of pprof.h): id maps from pprof ids to
 * array indices, strict validation, and the tolerant rewriting of real
 * producers' quirks into dense, sorted, merged form. The wire decoder and
 * encoder are pprof.c. */
#include "pprof_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- id maps ------------------------------------------------------------------- */

/* Maps mapping, location or function ids (the first member, uint64_t, of
 * each struct) to array indices. All ids 0 means the producer left them out:
 * entry i then has the implicit id i+1. Otherwise a direct table when ids are
 * near dense, an open-addressing hash when not. The first of duplicate ids
 * wins. */
enum { IM_IMPLICIT, IM_DIRECT, IM_HASH };

typedef struct idmap {
    int mode;
    size_t n;        /* entries */
    uint64_t size;   /* direct: max id + 1; hash: slots (a power of two) */
    uint32_t *slots; /* direct: id -> index; hash: slot -> index; NONE = empty */
    uint64_t *keys;  /* hash: slot -> id */
} idmap;

static inline uint64_t id_at(const void *base, size_t stride, size_t i)
{
    uint64_t id;
    memcpy(&id, (const char *)base + i * stride, sizeof(id));
    return id;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static void idmap_hash_fill(idmap *m, const void *base, size_t stride)
{
    uint64_t mask = m->size - 1;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t id = id_at(base, stride, i);
        uint64_t h = mix64(id) & mask;
        while (m->slots[h] != NONE && m->keys[h] != id)
            h = (h + 1) & mask;
        if (m->slots[h] == NONE) {
            m->slots[h] = (uint32_t)i;
            m->keys[h] = id;
        }
    }
}

/* Builds m over n structs of stride bytes at base; false past the arena cap. */
static bool idmap_build(idmap *m, kiln_arena_t *a, const void *base, size_t stride, size_t n)
{
    uint64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = id_at(base, stride, i);
        max = id > max ? id : max;
    }
    memset(m, 0, sizeof(*m));
    m->n = n;
    if (max == 0)
        return true; /* IM_IMPLICIT (or no entries) */
    if (max <= 4 * (uint64_t)n) {
        m->mode = IM_DIRECT;
        m->size = max + 1;
    } else {
        m->mode = IM_HASH;
        for (m->size = 16; m->size < 2 * (uint64_t)n; m->size *= 2) {
        }
        if ((m->keys = kiln_arena_alloc(a, m->size * sizeof(*m->keys))) == NULL)
            return false;
    }
    if ((m->slots = kiln_arena_alloc(a, m->size * sizeof(*m->slots))) == NULL)
        return false;
    memset(m->slots, 0xff, m->size * sizeof(*m->slots));
    if (m->mode == IM_HASH) {
        idmap_hash_fill(m, base, stride);
        return true;
    }
    for (size_t i = n; i-- > 0;) /* backwards, so the first duplicate wins */
        m->slots[id_at(base, stride, i)] = (uint32_t)i;
    return true;
}

static inline uint32_t idmap_get(const idmap *m, uint64_t id)
{
    if (m->mode == IM_DIRECT)
        return id < m->size ? m->slots[id] : NONE;
    if (m->mode == IM_IMPLICIT)
        return id - 1 < m->n ? (uint32_t)(id - 1) : NONE; /* id 0 wraps to none */
    uint64_t mask = m->size - 1;
    for (uint64_t h = mix64(id) & mask; m->slots[h] != NONE; h = (h + 1) & mask) {
        if (m->keys[h] == id)
            return m->slots[h];
    }
    return NONE;
}

/* ---- validation ------------------------------------------------------------------ */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF. ASCII runs are checked eight bytes at a time. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* Lead byte: sequence length and the allowed range of the 2nd byte. */
        size_t len;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0xc2)
            return false; /* a stray continuation, or an overlong 2-byte form */
        else if (c < 0xe0)
            len = 2;
        else if (c < 0xf0)
            len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        else if (c < 0xf5)
            len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        else
            return false;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        }
        i += len;
    }
    return true;
}

/* Whether s[0..n) is all ASCII (so valid UTF-8): its bytes ORed together a
 * word at a time, the last word overlapping the one before, and the top bits
 * tested once. Nearly every string of a profile is, and utf8_valid's
 * byte-by-byte tail cost more than the rest of it. */
static inline bool ascii_only(const uint8_t *s, size_t n)
{
    uint64_t acc = 0, w;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&w, s + i, 8);
            acc |= w;
        }
        memcpy(&w, s + n - 8, 8);
        return ((acc | w) & 0x8080808080808080ULL) == 0;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        return ((a | b) & 0x80808080u) == 0;
    }
    for (size_t i = 0; i < n; i++)
        acc |= s[i];
    return (acc & 0x80) == 0;
}

static kiln_status check_strings(const kiln_pprof_t *p, kiln_err *err)
{
    if (p->n_strings == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: empty string table");
    if (p->strings[0].len != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: string_table[0] is not \"\"");
    for (size_t i = 1; i < p->n_strings; i++) {
        const uint8_t *str = (const uint8_t *)p->strings[i].ptr;
        if (!ascii_only(str, p->strings[i].len) && !utf8_valid(str, p->strings[i].len))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "pprof: string_table[%zu] is not valid UTF-8", i);
    }
    return KILN_OK;
}

/* Calls fn on every string index in the profile, naming the field; stops
 * and returns false as soon as fn does. fn may rewrite the index. Inlined,
 * so that fn (a constant at each call) is too: a profile has three string
 * indices per function, and an indirect call cost more than the check. */
typedef bool (*str_ref_fn)(kiln_pprof_t *p, int64_t *ref, const char *what, void *ctx);

static inline __attribute__((always_inline)) bool visit_sample_str_refs(kiln_pprof_t *p,
                                                                        str_ref_fn fn, void *ctx)
{
    for (size_t i = 0; i < p->n_sample_types; i++) {
        if (!fn(p, &p->sample_types[i].type, "sample_type.type", ctx) ||
            !fn(p, &p->sample_types[i].unit, "sample_type.unit", ctx))
            return false;
    }
    for (size_t i = 0; i < p->n_labels; i++) {
        kiln_pprof_label *l = &p->labels[i];
        if (!fn(p, &l->key, "label.key", ctx) || !fn(p, &l->str, "label.str", ctx) ||
            !fn(p, &l->num_unit, "label.num_unit", ctx))
            return false;
    }
    for (size_t i = 0; i < p->n_comments; i++) {
        if (!fn(p, &p->comments[i], "comment", ctx))
            return false;
    }
    return fn(p, &p->drop_frames, "drop_frames", ctx) &&
           fn(p, &p->keep_frames, "keep_frames", ctx) &&
           fn(p, &p->period_type.type, "period_type.type", ctx) &&
           fn(p, &p->period_type.unit, "period_type.unit", ctx) &&
           fn(p, &p->default_sample_type, "default_sample_type", ctx) &&
           fn(p, &p->doc_url, "doc_url", ctx);
}

/* visit_str_refs' part for the symbol tables: mappings and functions. */
static inline __attribute__((always_inline)) bool visit_symbol_str_refs(kiln_pprof_t *p,
                                                                        str_ref_fn fn, void *ctx)
{
    for (size_t i = 0; i < p->n_mappings; i++) {
        if (!fn(p, &p->mappings[i].filename, "mapping.filename", ctx) ||
            !fn(p, &p->mappings[i].build_id, "mapping.build_id", ctx))
            return false;
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_pprof_function *f = &p->functions[i];
        if (!fn(p, &f->name, "function.name", ctx) ||
            !fn(p, &f->system_name, "function.system_name", ctx) ||
            !fn(p, &f->filename, "function.filename", ctx))
            return false;
    }
    return true;
}

static inline __attribute__((always_inline)) bool visit_str_refs(kiln_pprof_t *p, str_ref_fn fn,
                                                                 void *ctx)
{
    return visit_symbol_str_refs(p, fn, ctx) && visit_sample_str_refs(p, fn, ctx);
}

static bool check_str_ref(kiln_pprof_t *p, int64_t *ref, const char *what, void *ctx)
{
    if (*ref >= 0 && (uint64_t)*ref < p->n_strings)
        return true;
    kiln_err_set(ctx, KILN_INVALID_ARGUMENT,
                 "pprof: %s string index %lld out of range (%zu strings)", what, (long long)*ref,
                 p->n_strings);
    return false;
}

static kiln_status check_samples(const kiln_pprof_t *p, const idmap *lm, kiln_err *err)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        if (s->n_values != p->n_sample_types)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "pprof: sample %zu has %u values for %zu sample types", i,
                                s->n_values, p->n_sample_types);
        for (uint32_t j = 0; j < s->n_locs; j++) {
            uint64_t id = p->locs[s->loc_off + j];
            if (idmap_get(lm, id) == NONE)
                return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                    "pprof: sample %zu references location id %llu, which no "
                                    "location has",
                                    i, (unsigned long long)id);
        }
    }
    return KILN_OK;
}

static kiln_status check_lines(const kiln_pprof_t *p, const idmap *fm, kiln_err *err)
{
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        for (uint32_t j = 0; j < l->n_lines; j++) {
            uint64_t fid = p->lines[l->line_off + j].function;
            if (fid != 0 && idmap_get(fm, fid) == NONE)
                return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                    "pprof: location %zu (id %llu) references function id %llu, "
                                    "which no function has",
                                    i, (unsigned long long)l->id, (unsigned long long)fid);
        }
    }
    return KILN_OK;
}

static kiln_status check_refs(const kiln_pprof_t *p, kiln_err *err)
{
    kiln_arena_t *tmp = kiln_arena_create(0);
    idmap lm, fm;
    kiln_status st;
    if (!idmap_build(&lm, tmp, p->locations, sizeof(*p->locations), p->n_locations) ||
        !idmap_build(&fm, tmp, p->functions, sizeof(*p->functions), p->n_functions))
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "pprof: out of memory validating");
    else if ((st = check_samples(p, &lm, err)) == KILN_OK)
        st = check_lines(p, &fm, err);
    kiln_arena_destroy(tmp);
    return st;
}

kiln_status kiln_pprof_validate(const kiln_pprof_t *p, kiln_err *err)
{
    if (p->n_sample_types == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: no sample types");
    kiln_status st = check_strings(p, err);
    if (st != KILN_OK)
        return st;
    /* check_str_ref never writes, so visiting the caller's const profile is safe. */
    if (!visit_str_refs((kiln_pprof_t *)p, check_str_ref, err))
        return KILN_INVALID_ARGUMENT;
    return check_refs(p, err);
}

/* ---- normalisation --------------------------------------------------------------- */

/* Everything normalize allocates, taken before the profile is touched so
 * that a failure leaves it as it was. */
typedef struct norm_ws {
    idmap mm, fm, lm;
    uint32_t *remap;          /* location index -> kept index or NONE */
    kiln_pprof_mapping *maps; /* mappings plus room for the stub */
    uint32_t *slots;          /* sample dedup hash: slot -> kept sample */
    uint64_t *hashes;         /* sample -> its stack's hash; then kept sample -> key hash */
    size_t n_slots;
} norm_ws;

static bool norm_alloc(kiln_arena_t *a, const kiln_pprof_t *p, norm_ws *w)
{
    bool ok = idmap_build(&w->mm, a, p->mappings, sizeof(*p->mappings), p->n_mappings) &&
              idmap_build(&w->fm, a, p->functions, sizeof(*p->functions), p->n_functions) &&
              idmap_build(&w->lm, a, p->locations, sizeof(*p->locations), p->n_locations);
    for (w->n_slots = 16; w->n_slots < 2 * p->n_samples; w->n_slots *= 2) {
    }
    w->remap = arr(a, p->n_locations, sizeof(*w->remap), &ok);
    w->maps = arr(a, p->n_mappings + 1, sizeof(*w->maps), &ok);
    w->slots = arr(a, w->n_slots, sizeof(*w->slots), &ok);
    w->hashes = arr(a, p->n_samples, sizeof(*w->hashes), &ok);
    return ok;
}

/* Bad indices and every index of an empty string become 0, so that equal
 * labels compare equal by index. */
static bool canon_str_ref(kiln_pprof_t *p, int64_t *ref, const char *what, void *ctx)
{
    (void)what, (void)ctx;
    if (*ref < 0 || (uint64_t)*ref >= p->n_strings || p->strings[*ref].len == 0)
        *ref = 0;
    return true;
}

static void norm_functions(kiln_pprof_t *p, const idmap *fm, bool indexed)
{
    for (size_t i = 0; !indexed && i < p->n_lines; i++) {
        uint64_t f = p->lines[i].function;
        p->lines[i].function = f == 0 ? NONE : idmap_get(fm, f);
    }
    for (size_t i = 0; i < p->n_functions; i++)
        p->functions[i].id = i + 1;
}

/* A location with no lines and no address says nothing: it is dropped. */
static inline bool loc_dropped(const kiln_pprof_location *l)
{
    return l->n_lines == 0 && l->address == 0;
}

/* Fills remap as norm_locations will, without touching the profile. */
static void plan_locations(const kiln_pprof_t *p, uint32_t *remap)
{
    uint32_t out = 0;
    for (size_t i = 0; i < p->n_locations; i++)
        remap[i] = loc_dropped(&p->locations[i]) ? NONE : out++;
}

/* Drops locations with no lines and no address, points the rest at mapping
 * indices (the stub, appended when needed, for unknown mappings) and fills
 * w->remap. */
static void norm_locations(kiln_pprof_t *p, norm_ws *w)
{
    size_t out = 0, stub = p->n_mappings;
    bool need_stub = false;
    for (size_t i = 0; i < p->n_locations; i++) {
        kiln_pprof_location l = p->locations[i];
        if (loc_dropped(&l)) {
            w->remap[i] = NONE;
            continue;
        }
        uint32_t m = l.mapping == 0 ? NONE : idmap_get(&w->mm, l.mapping);
        if (m == NONE) {
            m = (uint32_t)stub;
            need_stub = true;
        }
        l.mapping = m;
        l.id = out + 1;
        w->remap[i] = (uint32_t)out;
        p->locations[out++] = l;
    }
    p->n_locations = out;
    if (need_stub) {
        if (p->n_mappings != 0)
            memcpy(w->maps, p->mappings, p->n_mappings * sizeof(*p->mappings));
        memset(&w->maps[stub], 0, sizeof(w->maps[stub]));
        p->mappings = w->maps;
        p->n_mappings++;
    }
    for (size_t i = 0; i < p->n_mappings; i++)
        p->mappings[i].id = i + 1;
}

static inline uint64_t hash_step(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x9e3779b97f4a7c15ULL;
}

/* The hash of a final stack, the part of a sample's key hash that the
 * passes rewriting stacks compute as they write each frame (its depth is
 * added by sample_hash). Two lanes, the frames taking turns: each frame's
 * multiply waits on the one two frames back rather than the one before,
 * and that chain of multiplies was the critical path of those passes on
 * deep stacks. */
typedef struct stack_hasher {
    uint64_t a, b; /* a takes the next frame, then the lanes swap */
} stack_hasher;

#define STACK_HASHER_INIT ((stack_hasher){1, 2})

static inline void stack_hasher_add(stack_hasher *s, uint64_t frame)
{
    uint64_t next = hash_step(s->a, frame);
    s->a = s->b;
    s->b = next;
}

static inline uint64_t stack_hasher_end(stack_hasher s)
{
    return hash_step(s.a, s.b);
}

static uint64_t stack_hash(const uint64_t *stack, uint32_t n)
{
    stack_hasher h = STACK_HASHER_INIT;
    for (uint32_t j = 0; j < n; j++)
        stack_hasher_add(&h, stack[j]);
    return stack_hasher_end(h);
}

/* Leaf first: a stack of k frames past max_depth keeps the root-most. */
static inline void trim_stack(kiln_pprof_sample *s, uint32_t k, size_t max_depth)
{
    if (max_depth != 0 && k > max_depth) {
        s->loc_off += k - (uint32_t)max_depth;
        k = (uint32_t)max_depth;
    }
    s->n_locs = k;
}

/* Rewrites stacks of location ids as kept location indices, trims them
 * to max_depth and hashes them into w->hashes. */
static void norm_stacks(kiln_pprof_t *p, const norm_ws *w, size_t max_depth)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        kiln_pprof_sample *s = &p->samples[i];
        w->hashes[i] = stack_hash(NULL, 0);
        if (s->n_locs == 0)
            continue; /* and p->locs may be NULL: no NULL + 0 */
        uint64_t *stack = p->locs + s->loc_off;
        uint32_t k = 0;
        for (uint32_t j = 0; j < s->n_locs; j++) {
            uint32_t l = idmap_get(&w->lm, stack[j]);
            if (l != NONE && w->remap[l] != NONE)
                stack[k++] = w->remap[l];
        }
        trim_stack(s, k, max_depth);
        w->hashes[i] = stack_hash(p->locs + s->loc_off, s->n_locs);
    }
}

static int label_cmp(const void *x, const void *y)
{
    const kiln_pprof_label *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->str != b->str)
        return a->str < b->str ? -1 : 1;
    if (a->num != b->num)
        return a->num < b->num ? -1 : 1;
    if (a->num_unit != b->num_unit)
        return a->num_unit < b->num_unit ? -1 : 1;
    return 0;
}

/* Sorts each sample's labels, so that label sets compare as sequences. */
/* Drops numeric labels (as upstream does: nothing downstream reads them,
 * and they would keep otherwise identical samples apart), then sorts the
 * string labels of each sample by key. */
static void sort_labels(kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        if (p->samples[i].n_labels == 0)
            continue; /* and p->labels may be NULL: no NULL + 0 */
        kiln_pprof_label *l = p->labels + p->samples[i].label_off;
        size_t n = 0;
        for (size_t j = 0; j < p->samples[i].n_labels; j++) {
            if (l[j].str != 0)
                l[n++] = l[j];
        }
        p->samples[i].n_labels = (uint32_t)n;
        if (n > 16) {
            qsort(l, n, sizeof(*l), label_cmp);
            continue;
        }
        for (size_t j = 1; j < n; j++) { /* insertion sort: label sets are small */
            kiln_pprof_label x = l[j];
            size_t k = j;
            for (; k > 0 && label_cmp(&l[k - 1], &x) > 0; k--)
                l[k] = l[k - 1];
            l[k] = x;
        }
    }
}

/* The key hash of s, from its stack's (see stack_hash). */
static uint64_t sample_hash(const kiln_pprof_t *p, const kiln_pprof_sample *s, uint64_t stack_h)
{
    uint64_t h =
        hash_step(hash_step(stack_h, s->n_locs), (uint64_t)s->n_labels << 32 | s->n_values);
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        h = hash_step(h, (uint64_t)l->key << 32 ^ (uint64_t)l->str);
        h = hash_step(h, (uint64_t)l->num ^ (uint64_t)l->num_unit << 48);
    }
    return mix64(h);
}

static bool same_key(const kiln_pprof_t *p, const kiln_pprof_sample *a, const kiln_pprof_sample *b)
{
    if (a->n_locs != b->n_locs || a->n_labels != b->n_labels || a->n_values != b->n_values)
        return false;
    if (a->n_locs != 0 &&
        memcmp(p->locs + a->loc_off, p->locs + b->loc_off, a->n_locs * sizeof(*p->locs)) != 0)
        return false;
    for (uint32_t j = 0; j < a->n_labels; j++) {
        if (label_cmp(&p->labels[a->label_off + j], &p->labels[b->label_off + j]) != 0)
            return false;
    }
    return true;
}

/* Adds src's values into dst's. Sums wrap (two's complement) rather than
 * overflow: a profile with such sums is garbage, but not undefined. */
static void add_values(kiln_pprof_t *p, const kiln_pprof_sample *dst, const kiln_pprof_sample *src)
{
    int64_t *v = p->values;
    for (uint32_t t = 0; t < dst->n_values; t++) {
        uint64_t sum = (uint64_t)v[dst->value_off + t] + (uint64_t)v[src->value_off + t];
        v[dst->value_off + t] = (int64_t)sum;
    }
}

/* True when no value is positive: such a sample adds nothing a flame graph
 * can draw (delta heap profiles carry negative in-use values), and upstream's
 * normaliser drops it too. */
static bool no_positive(const kiln_pprof_t *p, const kiln_pprof_sample *s)
{
    for (uint32_t t = 0; t < s->n_values; t++) {
        if (p->values[s->value_off + t] > 0)
            return false;
    }
    return true;
}

/* Sums samples with the same stack and labels into the first of them, then
 * drops those with no positive value; order of first occurrence is kept.
 * w->hashes holds each sample's stack hash; as each is read, it is
 * replaced by the key hashes of the samples kept so far (never more than
 * have been read). */
static void merge_samples(kiln_pprof_t *p, norm_ws *w)
{
    size_t out = 0, mask = w->n_slots - 1;
    memset(w->slots, 0xff, w->n_slots * sizeof(*w->slots));
    for (size_t i = 0; i < p->n_samples; i++) {
        kiln_pprof_sample s = p->samples[i];
        uint64_t h = sample_hash(p, &s, w->hashes[i]);
        size_t k = h & mask;
        for (; w->slots[k] != NONE; k = (k + 1) & mask) {
            uint32_t j = w->slots[k];
            if (w->hashes[j] == h && same_key(p, &p->samples[j], &s))
                break;
        }
        if (w->slots[k] != NONE) {
            add_values(p, &p->samples[w->slots[k]], &s);
            continue;
        }
        w->slots[k] = (uint32_t)out;
        w->hashes[out] = h;
        p->samples[out++] = s;
    }
    size_t kept = 0;
    for (size_t i = 0; i < out; i++) {
        if (!no_positive(p, &p->samples[i]))
            p->samples[kept++] = p->samples[i];
    }
    p->n_samples = kept;
}

/* normalize after the string indices: ids to indices (unless indexed: the
 * lines hold function indices and the stacks are final already), stacks,
 * labels, merging. */
static void norm_rest(kiln_pprof_t *p, norm_ws *w, size_t max_depth, bool indexed)
{
    norm_functions(p, &w->fm, indexed);
    norm_locations(p, w);
    if (!indexed)
        norm_stacks(p, w, max_depth);
    sort_labels(p);
    merge_samples(p, w);
}

kiln_status kiln_pprof_normalize(kiln_arena_t *a, kiln_pprof_t *p, size_t max_depth, kiln_err *err)
{
    norm_ws w;
    memset(&w, 0, sizeof(w));
    if (!norm_alloc(a, p, &w))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "pprof: memory limit reached normalising the profile");
    visit_str_refs(p, canon_str_ref, NULL);
    norm_rest(p, &w, max_depth, false);
    return KILN_OK;
}

/* validate's string index check and normalize's rewrite in one visit. */
static inline __attribute__((always_inline)) bool check_canon_str_ref(kiln_pprof_t *p, int64_t *ref,
                                                                      const char *what, void *ctx)
{
    if (!check_str_ref(p, ref, what, ctx))
        return false;
    if (p->strings[*ref].len == 0)
        *ref = 0;
    return true;
}

/* visit_str_refs with check_canon_str_ref, all inlined here, apart from
 * kiln_pprof_validate_normalize: inlined there, they cost its loops more
 * registers than the calls saved. */
static __attribute__((noinline)) bool check_canon_str_refs(kiln_pprof_t *p, kiln_err *err)
{
    return visit_str_refs(p, check_canon_str_ref, err);
}

/* check_canon_str_refs' halves, for symbols shared by several profiles. */
static __attribute__((noinline)) bool check_canon_symbol_str_refs(kiln_pprof_t *p, kiln_err *err)
{
    return visit_symbol_str_refs(p, check_canon_str_ref, err);
}

static __attribute__((noinline)) bool check_canon_sample_str_refs(kiln_pprof_t *p, kiln_err *err)
{
    return visit_sample_str_refs(p, check_canon_str_ref, err);
}

/* In lm->slots, a location dropped by normalize (marked so by fold_remap). */
#define DROPPED (NONE - 1) /* never an index: arrays stay below UINT32_MAX */

/* For a direct id map, folds remap (location index -> kept index) into the
 * map itself, so that each frame costs one table load: slots then give the
 * kept index, DROPPED or NONE (no such id). The map serves nothing else
 * afterwards. */
static void fold_remap(idmap *lm, const uint32_t *remap)
{
    if (lm->mode != IM_DIRECT)
        return; /* a hash map is looked up, then remapped, frame by frame */
    for (uint64_t id = 0; id < lm->size; id++) {
        uint32_t l = lm->slots[id];
        if (l != NONE)
            lm->slots[id] = remap[l] == NONE ? DROPPED : remap[l];
    }
}

/* Rewrites stack[0..n) (location ids) as kept location indices in place;
 * returns how many are kept, with their stack_hash in *hash, or sets *bad
 * to the first unknown id's position. direct: lm is a folded direct map (a
 * constant at each call, so that the frame loop has no mode test). */
static inline __attribute__((always_inline)) uint32_t
index_stack(uint64_t *stack, uint32_t n, const idmap *lm, const uint32_t *remap, bool direct,
            uint32_t *bad, uint64_t *hash)
{
    uint64_t *out = stack;
    stack_hasher h = STACK_HASHER_INIT;
    uint64_t size = lm->size; /* copied: the stores below may alias lm->size */
    for (const uint64_t *in = stack, *end = stack + n; in < end; in++) {
        uint64_t id = *in;
        uint32_t r;
        if (direct) {
            r = id < size ? lm->slots[id] : NONE;
        } else {
            r = idmap_get(lm, id);
            r = r == NONE ? NONE : remap[r] == NONE ? DROPPED : remap[r];
        }
        if (UNLIKELY(r >= DROPPED)) {
            if (r == NONE) {
                *bad = (uint32_t)(in - stack);
                return 0;
            }
            continue;
        }
        *out++ = r;
        stack_hasher_add(&h, r);
    }
    *hash = stack_hasher_end(h);
    return (uint32_t)(out - stack);
}

/* check_samples that also does norm_stacks' work: each stack's ids become
 * kept location indices (remap, from plan_locations), trimmed to max_depth
 * and hashed into hashes. One pass over the frames: stacks are most of a
 * large profile. lm has been through fold_remap. */
static kiln_status check_index_samples(kiln_pprof_t *p, const idmap *lm, const uint32_t *remap,
                                       size_t max_depth, uint64_t *hashes, kiln_err *err)
{
    bool direct = lm->mode == IM_DIRECT;
    for (size_t i = 0; i < p->n_samples; i++) {
        kiln_pprof_sample *s = &p->samples[i];
        if (s->n_values != p->n_sample_types)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "pprof: sample %zu has %u values for %zu sample types", i,
                                s->n_values, p->n_sample_types);
        hashes[i] = stack_hash(NULL, 0);
        if (s->n_locs == 0)
            continue; /* and p->locs may be NULL: no NULL + 0 */
        uint64_t *stack = p->locs + s->loc_off;
        uint32_t bad = NONE;
        uint32_t k = direct ? index_stack(stack, s->n_locs, lm, remap, true, &bad, &hashes[i])
                            : index_stack(stack, s->n_locs, lm, remap, false, &bad, &hashes[i]);
        if (bad != NONE)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "pprof: sample %zu references location id %llu, which no "
                                "location has",
                                i, (unsigned long long)stack[bad]);
        trim_stack(s, k, max_depth);
        if (s->n_locs != k) /* trimmed: the hash is of the frames kept */
            hashes[i] = stack_hash(p->locs + s->loc_off, s->n_locs);
    }
    return KILN_OK;
}

/* check_lines that also rewrites each line's function id as an index. */
static kiln_status check_index_lines(kiln_pprof_t *p, const idmap *fm, kiln_err *err)
{
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        for (uint32_t j = 0; j < l->n_lines; j++) {
            kiln_pprof_line *ln = &p->lines[l->line_off + j];
            uint32_t f = ln->function == 0 ? NONE : idmap_get(fm, ln->function);
            if (ln->function != 0 && f == NONE)
                return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                    "pprof: location %zu (id %llu) references function id %llu, "
                                    "which no function has",
                                    i, (unsigned long long)l->id, (unsigned long long)ln->function);
            ln->function = f;
        }
    }
    return KILN_OK;
}

kiln_status kiln_pprof_validate_normalize(kiln_arena_t *a, kiln_pprof_t *p, size_t max_depth,
                                          kiln_err *err)
{
    if (p->n_sample_types == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: no sample types");
    kiln_status st = check_strings(p, err);
    if (st != KILN_OK)
        return st;
    norm_ws w;
    memset(&w, 0, sizeof(w));
    if (!norm_alloc(a, p, &w))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "pprof: memory limit reached normalising the profile");
    if (!check_canon_str_refs(p, err))
        return KILN_INVALID_ARGUMENT;
    plan_locations(p, w.remap);
    fold_remap(&w.lm, w.remap);
    if ((st = check_index_samples(p, &w.lm, w.remap, max_depth, w.hashes, err)) != KILN_OK ||
        (st = check_index_lines(p, &w.fm, err)) != KILN_OK)
        return st;
    norm_rest(p, &w, max_depth, true);
    return KILN_OK;
}

/* ---- symbols shared by several profiles ------------------------------------------ */

struct kiln_pprof_symbols {
    kiln_pprof_t tables; /* only the symbol tables are set: strings to lines */
    idmap lm;            /* location id -> kept index (folded, see fold_remap) */
    uint32_t *remap;     /* location index -> kept index or NONE */
};

/* Points to's symbol tables at from's. */
static void take_symbols(kiln_pprof_t *to, const kiln_pprof_t *from)
{
    to->strings = from->strings, to->n_strings = from->n_strings;
    to->mappings = from->mappings, to->n_mappings = from->n_mappings;
    to->functions = from->functions, to->n_functions = from->n_functions;
    to->locations = from->locations, to->n_locations = from->n_locations;
    to->lines = from->lines, to->n_lines = from->n_lines;
}

/* The id maps and arrays kiln_pprof_symbols_prepare needs, taken before
 * anything is rewritten. */
static bool symbols_alloc(kiln_arena_t *a, const kiln_pprof_t *p, kiln_pprof_symbols *s, norm_ws *w)
{
    bool ok = idmap_build(&w->mm, a, p->mappings, sizeof(*p->mappings), p->n_mappings) &&
              idmap_build(&w->fm, a, p->functions, sizeof(*p->functions), p->n_functions) &&
              idmap_build(&s->lm, a, p->locations, sizeof(*p->locations), p->n_locations);
    w->remap = arr(a, p->n_locations, sizeof(*w->remap), &ok);
    w->maps = arr(a, p->n_mappings + 1, sizeof(*w->maps), &ok);
    return ok;
}

kiln_status kiln_pprof_symbols_prepare(kiln_arena_t *a, kiln_pprof_t *p, kiln_pprof_symbols **out,
                                       kiln_err *err)
{
    kiln_status st = check_strings(p, err);
    if (st != KILN_OK)
        return st;
    kiln_pprof_symbols *s = kiln_arena_calloc(a, 1, sizeof(*s));
    norm_ws w;
    memset(&w, 0, sizeof(w));
    if (s == NULL || !symbols_alloc(a, p, s, &w))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "pprof: memory limit reached normalising the profile");
    if (!check_canon_symbol_str_refs(p, err))
        return KILN_INVALID_ARGUMENT;
    if ((st = check_index_lines(p, &w.fm, err)) != KILN_OK)
        return st;
    norm_functions(p, &w.fm, true);
    norm_locations(p, &w); /* fills w.remap as plan_locations would */
    fold_remap(&s->lm, w.remap);
    s->remap = w.remap;
    take_symbols(&s->tables, p);
    *out = s;
    return KILN_OK;
}

kiln_status kiln_pprof_samples_prepare(kiln_arena_t *a, kiln_pprof_t *p,
                                       const kiln_pprof_symbols *s, size_t max_depth, kiln_err *err)
{
    if (p->n_sample_types == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: no sample types");
    norm_ws w;
    bool ok = true;
    memset(&w, 0, sizeof(w));
    for (w.n_slots = 16; w.n_slots < 2 * p->n_samples; w.n_slots *= 2) {
    }
    w.slots = arr(a, w.n_slots, sizeof(*w.slots), &ok);
    w.hashes = arr(a, p->n_samples, sizeof(*w.hashes), &ok);
    if (!ok)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "pprof: memory limit reached normalising the profile");
    take_symbols(p, &s->tables);
    if (!check_canon_sample_str_refs(p, err))
        return KILN_INVALID_ARGUMENT;
    kiln_status st = check_index_samples(p, &s->lm, s->remap, max_depth, w.hashes, err);
    if (st != KILN_OK)
        return st;
    sort_labels(p);
    merge_samples(p, &w);
    return KILN_OK;
}
