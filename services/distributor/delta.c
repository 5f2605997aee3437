/* SPDX-License-Identifier: Apache-2.0
 * delta: per-series maps from a stack's identity to its last cumulative
 * values. A stack's identity hashes what it resolves to (functions, files,
 * lines, addresses, string labels), never the profile's own ids, which
 * differ between profiles. */
#include "delta.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hash_index.h"
#include "xmalloc.h"

#define MAX_TYPES 16

typedef struct stack_state {
    uint64_t key;
    int64_t last[MAX_TYPES];
} stack_state;

typedef struct series_state {
    uint64_t key; /* tenant + series fingerprint */
    stack_state *stacks;
    size_t n, cap;
    kiln_hash_index idx;
} series_state;

struct kiln_delta {
    pthread_mutex_t mu;
    series_state *s;
    size_t n, cap;
    kiln_hash_index idx;
};

kiln_delta_t *kiln_delta_create(void)
{
    kiln_delta_t *d = kiln_xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    kiln_hash_index_init(&d->idx);
    return d;
}

void kiln_delta_destroy(kiln_delta_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->s[i].stacks);
        kiln_hash_index_fini(&d->s[i].idx);
    }
    free(d->s);
    kiln_hash_index_fini(&d->idx);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

bool kiln_delta_needed(const kiln_label_t *l, size_t n)
{
    const char *name = kiln_labels_get(l, n, KILN_LABEL_NAME);
    const char *delta = kiln_labels_get(l, n, KILN_LABEL_DELTA);
    return name != NULL && strcmp(name, "memory") == 0 &&
           (delta == NULL || strcmp(delta, "false") != 0);
}

static uint64_t mix_str(uint64_t h, kiln_str_t s)
{
    return XXH3_64bits_withSeed(s.ptr, s.len, h);
}

/* What a sample's stack and labels resolve to, as one hash. */
static uint64_t stack_key(const kiln_pprof_t *p, const kiln_pprof_sample *s)
{
    uint64_t h = s->n_locs;
    for (uint32_t i = 0; i < s->n_locs; i++) {
        const kiln_pprof_location *loc = &p->locations[p->locs[s->loc_off + i]];
        h = XXH3_64bits_withSeed(&loc->address, sizeof(loc->address), h);
        for (uint32_t j = 0; j < loc->n_lines; j++) {
            const kiln_pprof_line *ln = &p->lines[loc->line_off + j];
            if (ln->function < p->n_functions) {
                h = mix_str(h, kiln_pprof_str(p, p->functions[ln->function].name));
                h = mix_str(h, kiln_pprof_str(p, p->functions[ln->function].filename));
            }
            h = XXH3_64bits_withSeed(&ln->line, sizeof(ln->line), h);
        }
    }
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        h = mix_str(mix_str(h, kiln_pprof_str(p, l->key)), kiln_pprof_str(p, l->str));
    }
    return h;
}

static bool series_eq(const void *ctx, uint32_t id)
{
    const struct {
        const kiln_delta_t *d;
        uint64_t key;
    } *k = ctx;
    return k->d->s[id].key == k->key;
}

static series_state *series_of(kiln_delta_t *d, uint64_t key, bool *created)
{
    struct {
        const kiln_delta_t *d;
        uint64_t key;
    } k = {d, key};
    uint32_t id = kiln_hash_index_find(&d->idx, key, series_eq, &k);
    *created = id == KILN_HASH_INDEX_NONE;
    if (*created) {
        KILN_GROW(d->s, d->cap, d->n + 1);
        id = (uint32_t)d->n++;
        memset(&d->s[id], 0, sizeof(d->s[id]));
        d->s[id].key = key;
        kiln_hash_index_init(&d->s[id].idx);
        kiln_hash_index_insert(&d->idx, key, id);
    }
    return &d->s[id];
}

static bool stack_eq(const void *ctx, uint32_t id)
{
    const struct {
        const series_state *s;
        uint64_t key;
    } *k = ctx;
    return k->s->stacks[id].key == k->key;
}

static stack_state *stack_of(series_state *s, uint64_t key)
{
    struct {
        const series_state *s;
        uint64_t key;
    } k = {s, key};
    uint32_t id = kiln_hash_index_find(&s->idx, key, stack_eq, &k);
    if (id == KILN_HASH_INDEX_NONE) {
        KILN_GROW(s->stacks, s->cap, s->n + 1);
        id = (uint32_t)s->n++;
        memset(&s->stacks[id], 0, sizeof(s->stacks[id]));
        s->stacks[id].key = key;
        kiln_hash_index_insert(&s->idx, key, id);
    }
    return &s->stacks[id];
}

void kiln_delta_apply(kiln_delta_t *d, const char *tenant, uint64_t series_fp, kiln_pprof_t *p)
{
    bool alloc[MAX_TYPES] = {false}, any = false;
    for (size_t t = 0; t < p->n_sample_types && t < MAX_TYPES; t++) {
        kiln_str_t ty = kiln_pprof_str(p, p->sample_types[t].type);
        alloc[t] = ty.len > 6 && memcmp(ty.ptr, "alloc_", 6) == 0;
        any |= alloc[t];
    }
    if (!any)
        return;
    bool first;
    pthread_mutex_lock(&d->mu);
    series_state *s = series_of(d, XXH3_64bits_withSeed(tenant, strlen(tenant), series_fp), &first);
    for (size_t i = 0; i < p->n_samples; i++) {
        stack_state *st = stack_of(s, stack_key(p, &p->samples[i]));
        int64_t *v = p->values + p->samples[i].value_off;
        for (size_t t = 0; t < p->n_sample_types && t < MAX_TYPES; t++) {
            if (!alloc[t])
                continue;
            int64_t cur = v[t], prev = st->last[t];
            /* A counter never counts below zero: a negative one (a
             * client's bad value) is a reset like any decrease, and the
             * difference taken only from zero up cannot overflow. */
            v[t] = first ? 0 : (prev >= 0 && cur >= prev ? cur - prev : cur);
            st->last[t] = cur;
        }
    }
    pthread_mutex_unlock(&d->mu);
}
