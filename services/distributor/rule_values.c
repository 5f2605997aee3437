/* SPDX-License-Identifier: Apache-2.0
 * rule_values: the values of a profile under function filters, one pass.
 * Each filter of a pass gets a bit; every location carries the bits of the
 * filters whose function is any of its lines (total) or its first line
 * (self), so a sample's bits are an OR over its stack, without a branch
 * per frame. */
#include "rule_values.h"

#include <string.h>

#define PASS_FILTERS 64

typedef struct filter {
    const char *fn; /* NULL = the whole profile */
    size_t fn_len;
    bool self;
    uint64_t *sum; /* per sample type, wrapping (as int64 values add in a profile) */
    double *v;     /* the sums, after compute */
} filter;

struct kiln_rule_values {
    const kiln_pprof_t *p;
    kiln_arena_t *a;
    filter *f;
    size_t n, cap;
};

kiln_rule_values *kiln_rule_values_create(const kiln_pprof_t *p, kiln_arena_t *a)
{
    kiln_rule_values *rv = kiln_arena_calloc(a, 1, sizeof(*rv));
    rv->p = p;
    rv->a = a;
    return rv;
}

size_t kiln_rule_values_want(kiln_rule_values *rv, const char *fn, bool self)
{
    self = self && fn != NULL;
    for (size_t i = 0; i < rv->n; i++) {
        const filter *f = &rv->f[i];
        if (f->self == self && (f->fn == fn || (f->fn && fn && strcmp(f->fn, fn) == 0)))
            return i;
    }
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 8;
        rv->f = kiln_arena_grow(rv->a, rv->f, rv->cap * sizeof(*rv->f), cap * sizeof(*rv->f));
        rv->cap = cap;
    }
    rv->f[rv->n] = (filter){fn, fn ? strlen(fn) : 0, self, NULL, NULL};
    return rv->n++;
}

const double *kiln_rule_values_get(const kiln_rule_values *rv, size_t i)
{
    return rv->f[i].v;
}

/* Adds sample s's nt values into sum. nt is a parameter, not read from p:
 * a store through a uint64_t * may alias p's size_t counts, so a count read
 * in the loop would be reloaded at every step. */
static void add_values(const kiln_pprof_t *p, const kiln_pprof_sample *s, size_t nt, uint64_t *sum)
{
    const int64_t *v = &p->values[s->value_off];
    for (size_t t = 0; t < nt; t++)
        sum[t] += (uint64_t)v[t];
}

/* The filters of f[0..n) that name a function, grouped by the name: the
 * self and total filters of one function compare its name once. */
typedef struct names {
    const filter *f[PASS_FILTERS]; /* the first filter with each name */
    uint64_t mask[PASS_FILTERS];   /* every filter with that name */
    size_t n;
} names;

static void group_names(const filter *f, size_t n, names *out)
{
    out->n = 0;
    for (size_t j = 0; j < n; j++) {
        if (f[j].fn == NULL)
            continue;
        size_t k = 0;
        while (k < out->n && !(out->f[k]->fn_len == f[j].fn_len &&
                               memcmp(out->f[k]->fn, f[j].fn, f[j].fn_len) == 0))
            k++;
        if (k == out->n) {
            out->f[k] = &f[j];
            out->mask[k] = 0;
            out->n++;
        }
        out->mask[k] |= (uint64_t)1 << j;
    }
}

/* The bits of the pass's filters (f[0..n)) each function of p is named
 * by; *named gets the filters some function of p is named by (a filter
 * outside it takes no sample). A name is compared only when its length is
 * one of the filters' (a bit of `lens`): most functions cost a load and a
 * bit test, and passes hold few distinct names. */
static uint64_t *function_bits(const kiln_pprof_t *p, const filter *f, size_t n, kiln_arena_t *a,
                               uint64_t *named)
{
    uint64_t *bits = kiln_arena_alloc(a, (p->n_functions + 1) * sizeof(*bits)), any = 0;
    names g;
    group_names(f, n, &g);
    uint64_t lens = 0;
    for (size_t k = 0; k < g.n; k++)
        lens |= (uint64_t)1 << (g.f[k]->fn_len & 63);
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_str_t name = kiln_pprof_str(p, p->functions[i].name);
        uint64_t b = 0;
        if ((lens >> (name.len & 63)) & 1) {
            for (size_t k = 0; k < g.n; k++) {
                if (g.f[k]->fn_len == name.len && memcmp(g.f[k]->fn, name.ptr, name.len) == 0)
                    b |= g.mask[k];
            }
        }
        bits[i] = b;
        any |= b;
    }
    *named = any;
    return bits;
}

static uint64_t line_bits(uint64_t fn, const uint64_t *fbits, size_t nf)
{
    return fn < nf ? fbits[fn] : 0; /* KILN_PPROF_NONE: no function */
}

/* Per location, the bits of all its lines (total); and of its innermost
 * line, the first (self), when self is not NULL. */
static void location_bits(const kiln_pprof_t *p, const uint64_t *fbits, uint64_t *total,
                          uint64_t *self)
{
    const size_t n = p->n_locations, nf = p->n_functions; /* locals: see add_values */
    const kiln_pprof_line *lines = p->lines;
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_location *loc = &p->locations[i];
        const kiln_pprof_line *l = &lines[loc->line_off];
        uint64_t first = loc->n_lines > 0 ? line_bits(l[0].function, fbits, nf) : 0, all = first;
        for (uint32_t j = 1; j < loc->n_lines; j++)
            all |= line_bits(l[j].function, fbits, nf);
        total[i] = all;
        if (self != NULL)
            self[i] = first;
    }
}

/* The bits of a stack: an OR over its frames. A plain loop: stacks are
 * short (7 to 25 frames in the benchmark's files), so unrolling and an
 * early exit cost more in their tails and tests than they save. */
static uint64_t stack_bits(const uint64_t *bits, const uint64_t *locs, uint32_t n)
{
    uint64_t all = 0;
    for (uint32_t k = 0; k < n; k++)
        all |= bits[locs[k]];
    return all;
}

/* Every sample's nt values into sum; inlined where nt is a constant. */
static inline __attribute__((always_inline)) void whole_sum(const kiln_pprof_t *p, size_t nt,
                                                            uint64_t *sum)
{
    const size_t n = p->n_samples;
    for (size_t i = 0; i < n; i++)
        add_values(p, &p->samples[i], nt, sum);
}

/* The whole profile's values into sum, a loop of its own without the stack
 * filters' branches; unrolled for the usual counts of sample types (a loop
 * over one or two values costs more than the adds). */
static void whole_values(const kiln_pprof_t *p, uint64_t *sum)
{
    switch (p->n_sample_types) {
    case 1:
        whole_sum(p, 1, sum);
        break;
    case 2:
        whole_sum(p, 2, sum);
        break;
    default:
        whole_sum(p, p->n_sample_types, sum);
    }
}

/* Each sample's values into the sums of the filters its stack hits: those
 * of total_mask anywhere in it, those of self_mask at its leaf. */
static void sample_values(const kiln_pprof_t *p, const filter *f, const uint64_t *total,
                          uint64_t total_mask, const uint64_t *self, uint64_t self_mask)
{
    const size_t n = p->n_samples, nt = p->n_sample_types; /* locals: see add_values */
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        if (s->n_locs == 0)
            continue;
        const uint64_t *locs = &p->locs[s->loc_off];
        uint64_t hit = self != NULL ? self[locs[0]] & self_mask : 0;
        if (total_mask != 0)
            hit |= stack_bits(total, locs, s->n_locs) & total_mask;
        for (; hit != 0; hit &= hit - 1)
            add_values(p, s, nt, f[__builtin_ctzll(hit)].sum);
    }
}

/* One pass for the filters f[0..n), n <= PASS_FILTERS: the whole-profile
 * ones share one sum; the stacks are walked only when a total filter names
 * a function of the profile. */
static void compute_pass(kiln_rule_values *rv, filter *f, size_t n)
{
    const kiln_pprof_t *p = rv->p;
    uint64_t self_mask = 0, total_mask = 0;
    filter *whole = NULL;
    for (size_t j = 0; j < n; j++) {
        if (f[j].fn == NULL)
            whole = &f[j]; /* want gives one filter per (fn, self) */
        else
            *(f[j].self ? &self_mask : &total_mask) |= (uint64_t)1 << j;
    }
    if (whole != NULL)
        whole_values(p, whole->sum);
    if ((self_mask | total_mask) == 0)
        return;
    uint64_t named;
    const uint64_t *fbits = function_bits(p, f, n, rv->a, &named);
    self_mask &= named;
    total_mask &= named;
    if ((self_mask | total_mask) == 0)
        return;
    uint64_t *total = kiln_arena_alloc(rv->a, (p->n_locations + 1) * sizeof(*total));
    uint64_t *self =
        self_mask != 0 ? kiln_arena_alloc(rv->a, (p->n_locations + 1) * sizeof(*self)) : NULL;
    location_bits(p, fbits, total, self);
    sample_values(p, f, total, total_mask, self, self_mask);
}

void kiln_rule_values_compute(kiln_rule_values *rv)
{
    size_t nt = rv->p->n_sample_types;
    for (size_t i = 0; i < rv->n; i++) {
        rv->f[i].sum = kiln_arena_calloc(rv->a, nt + 1, sizeof(uint64_t));
        rv->f[i].v = kiln_arena_calloc(rv->a, nt + 1, sizeof(double));
    }
    for (size_t i = 0; i < rv->n; i += PASS_FILTERS)
        compute_pass(rv, &rv->f[i], rv->n - i < PASS_FILTERS ? rv->n - i : PASS_FILTERS);
    for (size_t i = 0; i < rv->n; i++) {
        for (size_t t = 0; t < nt; t++)
            rv->f[i].v[t] = (double)(int64_t)rv->f[i].sum[t];
    }
}
