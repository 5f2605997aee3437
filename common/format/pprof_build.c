/* SPDX-License-Identifier: Apache-2.0
 * pprof_build: growable arrays and two hash indexes (strings, samples), all
 * in the arena, so a failed or abandoned build leaks nothing. */
#include "pprof_build.h"

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

/* Open addressing, linear probing, load <= 1/2. slot holds id + 1 (0 = empty). */
typedef struct tab {
    uint64_t *hash;
    uint32_t *slot;
    size_t cap, len;
} tab;

struct kiln_pprof_build {
    kiln_arena_t *a;
    kiln_status st; /* sticky: KILN_RESOURCE_EXHAUSTED after the first failure */
    size_t n_types;
    kiln_pprof_value_type *types;
    kiln_pprof_value_type period_type;
    int64_t period, time_nanos, duration_nanos;

    kiln_str_t *strs;  /* the string table; [0] = "" */
    uint32_t *str_loc; /* per string: its location id as a frame, 0 = none */
    size_t n_strs, cap_strs, cap_str_loc;
    tab str_tab;

    int64_t *fn_name; /* function i == location i (id i+1): its name */
    size_t n_fns, cap_fns;

    kiln_pprof_sample *samples;
    size_t n_samples, cap_samples;
    uint64_t *locs;
    size_t n_locs, cap_locs;
    int64_t *values;
    size_t n_values, cap_values;
    kiln_pprof_label *labels;
    size_t n_labels, cap_labels;
    tab sample_tab;

    int64_t *scratch; /* interned label pairs of the sample being added */
    size_t cap_scratch;
};

/* A sample being looked up: its stack and interned label pairs. */
typedef struct sample_key {
    const uint64_t *locs;
    size_t n_locs;
    const int64_t *labels; /* key, value, key, value, ... */
    size_t n_labels;
} sample_key;

typedef bool (*eq_fn)(const kiln_pprof_build_t *b, const void *key, uint32_t id);

static bool fail(kiln_pprof_build_t *b)
{
    b->st = KILN_RESOURCE_EXHAUSTED;
    return false;
}

/* Makes room for need elements of size elem in an arena array (doubling). */
static bool grow(kiln_pprof_build_t *b, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    if (b->st != KILN_OK)
        return false;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 4 / elem)
            return fail(b);
        ncap *= 2;
    }
    void *p = kiln_arena_alloc(b->a, ncap * elem);
    if (p == NULL)
        return fail(b);
    if (*cap != 0)
        memcpy(p, *arr, *cap * elem);
    *arr = p;
    *cap = ncap;
    return true;
}

#define GROW(b, arr, cap, need) grow((b), (void **)&(arr), &(cap), (need), sizeof(*(arr)))

static uint32_t tab_find(const tab *t, uint64_t h, eq_fn eq, const kiln_pprof_build_t *b,
                         const void *key)
{
    if (t->cap == 0)
        return UINT32_MAX;
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask; t->slot[i] != 0; i = (i + 1) & mask) {
        if (t->hash[i] == h && eq(b, key, t->slot[i] - 1))
            return t->slot[i] - 1;
    }
    return UINT32_MAX;
}

static void tab_put(tab *t, uint64_t h, uint32_t slot)
{
    size_t mask = t->cap - 1, i = (size_t)h & mask;
    while (t->slot[i] != 0)
        i = (i + 1) & mask;
    t->hash[i] = h;
    t->slot[i] = slot;
}

static bool tab_insert(kiln_pprof_build_t *b, tab *t, uint64_t h, uint32_t id)
{
    if ((t->len + 1) * 2 > t->cap) {
        tab n = {NULL, NULL, t->cap ? t->cap * 2 : 64, t->len};
        n.hash = kiln_arena_alloc(b->a, n.cap * sizeof(*n.hash));
        n.slot = kiln_arena_calloc(b->a, n.cap, sizeof(*n.slot));
        if (n.hash == NULL || n.slot == NULL)
            return fail(b);
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slot[i] != 0)
                tab_put(&n, t->hash[i], t->slot[i]);
        }
        *t = n;
    }
    tab_put(t, h, id + 1);
    t->len++;
    return true;
}

static bool str_eq(const kiln_pprof_build_t *b, const void *key, uint32_t id)
{
    const kiln_str_t *s = key;
    return b->strs[id].len == s->len && memcmp(b->strs[id].ptr, s->ptr, s->len) == 0;
}

/* The string table index of s, adding it when new; -1 once failed. */
static int64_t intern(kiln_pprof_build_t *b, kiln_str_t s)
{
    if (s.len == 0 || s.ptr == NULL)
        s = (kiln_str_t){"", 0};
    uint64_t h = XXH3_64bits(s.ptr, s.len);
    uint32_t id = tab_find(&b->str_tab, h, str_eq, b, &s);
    if (id != UINT32_MAX)
        return id;
    if (b->n_strs >= UINT32_MAX - 1 || !GROW(b, b->strs, b->cap_strs, b->n_strs + 1) ||
        !GROW(b, b->str_loc, b->cap_str_loc, b->n_strs + 1) ||
        !tab_insert(b, &b->str_tab, h, (uint32_t)b->n_strs))
        return -1;
    b->strs[b->n_strs] = s;
    b->str_loc[b->n_strs] = 0;
    return (int64_t)b->n_strs++;
}

static int64_t intern_cstr(kiln_pprof_build_t *b, const char *s)
{
    return intern(b, (kiln_str_t){s ? s : "", s ? strlen(s) : 0});
}

kiln_pprof_build_t *kiln_pprof_build_create(kiln_arena_t *a, size_t n_sample_types)
{
    if (n_sample_types == 0 || n_sample_types > 1024)
        return NULL;
    kiln_pprof_build_t *b = kiln_arena_calloc(a, 1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->a = a;
    b->n_types = n_sample_types;
    b->types = kiln_arena_calloc(a, n_sample_types, sizeof(*b->types));
    if (b->types == NULL || intern(b, (kiln_str_t){"", 0}) != 0)
        return NULL;
    return b;
}

size_t kiln_pprof_build_n_types(const kiln_pprof_build_t *b)
{
    return b->n_types;
}

void kiln_pprof_build_sample_type(kiln_pprof_build_t *b, size_t i, const char *type,
                                  const char *unit)
{
    if (i >= b->n_types)
        return;
    int64_t t = intern_cstr(b, type), u = intern_cstr(b, unit);
    if (t >= 0 && u >= 0)
        b->types[i] = (kiln_pprof_value_type){t, u};
}

void kiln_pprof_build_period(kiln_pprof_build_t *b, const char *type, const char *unit,
                             int64_t period)
{
    int64_t t = intern_cstr(b, type), u = intern_cstr(b, unit);
    if (t >= 0 && u >= 0)
        b->period_type = (kiln_pprof_value_type){t, u};
    b->period = period;
}

void kiln_pprof_build_time(kiln_pprof_build_t *b, int64_t time_nanos, int64_t duration_nanos)
{
    b->time_nanos = time_nanos;
    b->duration_nanos = duration_nanos;
}

uint64_t kiln_pprof_build_frame(kiln_pprof_build_t *b, kiln_str_t name)
{
    int64_t s = intern(b, name);
    if (s < 0)
        return 0;
    if (b->str_loc[s] != 0)
        return b->str_loc[s];
    if (!GROW(b, b->fn_name, b->cap_fns, b->n_fns + 1))
        return 0;
    b->fn_name[b->n_fns++] = s;
    b->str_loc[s] = (uint32_t)b->n_fns;
    return b->n_fns;
}

static bool sample_eq(const kiln_pprof_build_t *b, const void *key, uint32_t id)
{
    const sample_key *k = key;
    const kiln_pprof_sample *s = &b->samples[id];
    if (s->n_locs != k->n_locs || s->n_labels != k->n_labels)
        return false;
    if (k->n_locs != 0 && memcmp(&b->locs[s->loc_off], k->locs, k->n_locs * sizeof(*k->locs)))
        return false;
    for (size_t i = 0; i < k->n_labels; i++) {
        const kiln_pprof_label *l = &b->labels[s->label_off + i];
        if (l->key != k->labels[2 * i] || l->str != k->labels[2 * i + 1])
            return false;
    }
    return true;
}

/* Interns the labels into b->scratch as key/value index pairs. */
static bool intern_labels(kiln_pprof_build_t *b, const kiln_pprof_build_label *l, size_t n)
{
    if (!GROW(b, b->scratch, b->cap_scratch, 2 * n + 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        int64_t k = intern(b, l[i].key), v = intern(b, l[i].value);
        if (k < 0 || v < 0)
            return false;
        b->scratch[2 * i] = k;
        b->scratch[2 * i + 1] = v;
    }
    return true;
}

/* Appends a new sample (the key's stack and labels, and values). */
static bool append_sample(kiln_pprof_build_t *b, const sample_key *k, const int64_t *values)
{
    if (b->n_samples >= UINT32_MAX - 1 || b->n_locs > UINT32_MAX - k->n_locs - 1 ||
        b->n_labels > UINT32_MAX - k->n_labels - 1 || b->n_values > UINT32_MAX - b->n_types - 1)
        return fail(b);
    if (!GROW(b, b->samples, b->cap_samples, b->n_samples + 1) ||
        !GROW(b, b->locs, b->cap_locs, b->n_locs + k->n_locs) ||
        !GROW(b, b->values, b->cap_values, b->n_values + b->n_types) ||
        !GROW(b, b->labels, b->cap_labels, b->n_labels + k->n_labels))
        return false;
    kiln_pprof_sample *s = &b->samples[b->n_samples];
    *s = (kiln_pprof_sample){(uint32_t)b->n_locs,  (uint32_t)k->n_locs,   (uint32_t)b->n_values,
                             (uint32_t)b->n_types, (uint32_t)b->n_labels, (uint32_t)k->n_labels};
    if (k->n_locs != 0)
        memcpy(&b->locs[b->n_locs], k->locs, k->n_locs * sizeof(*k->locs));
    memcpy(&b->values[b->n_values], values, b->n_types * sizeof(*values));
    for (size_t i = 0; i < k->n_labels; i++)
        b->labels[b->n_labels + i] =
            (kiln_pprof_label){k->labels[2 * i], k->labels[2 * i + 1], 0, 0};
    b->n_locs += k->n_locs;
    b->n_values += b->n_types;
    b->n_labels += k->n_labels;
    b->n_samples++;
    return true;
}

kiln_status kiln_pprof_build_sample(kiln_pprof_build_t *b, const uint64_t *locs, size_t n_locs,
                                    const int64_t *values, const kiln_pprof_build_label *labels,
                                    size_t n_labels)
{
    if (b->st != KILN_OK || !intern_labels(b, labels, n_labels))
        return b->st;
    sample_key k = {locs, n_locs, b->scratch, n_labels};
    uint64_t h = XXH3_64bits_withSeed(locs, n_locs * sizeof(*locs), n_labels);
    h = XXH3_64bits_withSeed(b->scratch, 2 * n_labels * sizeof(*b->scratch), h);
    uint32_t id = tab_find(&b->sample_tab, h, sample_eq, b, &k);
    if (id != UINT32_MAX) {
        int64_t *v = &b->values[b->samples[id].value_off];
        for (size_t i = 0; i < b->n_types; i++)
            v[i] = (int64_t)((uint64_t)v[i] + (uint64_t)values[i]);
        return KILN_OK;
    }
    size_t n = b->n_samples;
    if (append_sample(b, &k, values))
        tab_insert(b, &b->sample_tab, h, (uint32_t)n);
    return b->st;
}

size_t kiln_pprof_build_n_samples(const kiln_pprof_build_t *b)
{
    return b->n_samples;
}

void kiln_pprof_build_scale(kiln_pprof_build_t *b, size_t i, int64_t factor)
{
    if (i >= b->n_types)
        return;
    for (size_t s = 0; s < b->n_samples; s++) {
        int64_t *v = &b->values[b->samples[s].value_off + i];
        *v = (int64_t)((uint64_t)*v * (uint64_t)factor);
    }
}

/* Locations, lines, functions and the one mapping, from fn_name. */
static bool symbols(kiln_pprof_build_t *b, kiln_pprof_t *p)
{
    size_t n = b->n_fns;
    p->locations = kiln_arena_calloc(b->a, n + 1, sizeof(*p->locations));
    p->lines = kiln_arena_calloc(b->a, n + 1, sizeof(*p->lines));
    p->functions = kiln_arena_calloc(b->a, n + 1, sizeof(*p->functions));
    p->mappings = kiln_arena_calloc(b->a, 1, sizeof(*p->mappings));
    if (!p->locations || !p->lines || !p->functions || !p->mappings)
        return fail(b);
    for (size_t i = 0; i < n; i++) {
        p->functions[i] = (kiln_pprof_function){i + 1, b->fn_name[i], b->fn_name[i], 0, 0};
        p->lines[i] = (kiln_pprof_line){i + 1, 0, 0};
        p->locations[i] = (kiln_pprof_location){i + 1, 1, 0, (uint32_t)i, 1, false};
    }
    p->mappings[0] = (kiln_pprof_mapping){.id = 1, .has_functions = true};
    p->n_locations = p->n_lines = p->n_functions = n;
    p->n_mappings = 1;
    return true;
}

/* Gives every still-empty array one element, so no consumer sees NULL. */
static bool non_null(kiln_pprof_build_t *b)
{
    return GROW(b, b->samples, b->cap_samples, 1) && GROW(b, b->locs, b->cap_locs, 1) &&
           GROW(b, b->values, b->cap_values, 1) && GROW(b, b->labels, b->cap_labels, 1);
}

kiln_status kiln_pprof_build_finish(kiln_pprof_build_t *b, kiln_pprof_t *out, kiln_err *err)
{
    kiln_pprof_t p;
    memset(&p, 0, sizeof(p));
    if (b->st != KILN_OK || !non_null(b) || !symbols(b, &p))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "profile too large: the request's memory limit was reached");
    p.sample_types = b->types;
    p.n_sample_types = b->n_types;
    p.samples = b->samples;
    p.n_samples = b->n_samples;
    p.locs = b->locs;
    p.n_locs = b->n_locs;
    p.values = b->values;
    p.n_values = b->n_values;
    p.labels = b->labels;
    p.n_labels = b->n_labels;
    p.strings = b->strs;
    p.n_strings = b->n_strs;
    p.time_nanos = b->time_nanos;
    p.duration_nanos = b->duration_nanos;
    p.period_type = b->period_type;
    p.period = b->period;
    *out = p;
    return KILN_OK;
}
