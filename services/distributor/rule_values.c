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

static void add_values(const kiln_pprof_t *p, const kiln_pprof_sample *s, uint64_t *sum)
{
    const int64_t *v = &p->values[s->value_off];
    for (size_t t = 0; t < p->n_sample_types; t++)
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
 * outside it takes no sample). A comparison per function and name: passes
 * hold few distinct names. */
static uint64_t *function_bits(const kiln_pprof_t *p, const filter *f, size_t n, kiln_arena_t *a,
                               uint64_t *named)
{
    uint64_t *bits = kiln_arena_alloc(a, (p->n_functions + 1) * sizeof(*bits)), any = 0;
    names g;
    group_names(f, n, &g);
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_str_t name = kiln_pprof_str(p, p->functions[i].name);
        uint64_t b = 0;
        for (size_t k = 0; k < g.n; k++) {
            if (g.f[k]->fn_len == name.len && memcmp(g.f[k]->fn, name.ptr, name.len) == 0)
                b |= g.mask[k];
        }
        bits[i] = b;
        any |= b;
    }
    *named = any;
    return bits;
}

static uint64_t line_bits(const kiln_pprof_t *p, const uint64_t *fbits, size_t line)
{
    uint64_t fn = p->lines[line].function;
    return fn == KILN_PPROF_NONE ? 0 : fbits[fn];
}

/* Per location, the bits of its lines (total) and of its innermost line,
 * the first (self). */
static void location_bits(const kiln_pprof_t *p, const uint64_t *fbits, uint64_t *total,
                          uint64_t *self)
{
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *loc = &p->locations[i];
        uint64_t first = loc->n_lines > 0 ? line_bits(p, fbits, loc->line_off) : 0, all = first;
        for (uint32_t j = 1; j < loc->n_lines; j++)
            all |= line_bits(p, fbits, loc->line_off + j);
        total[i] = all;
        self[i] = first;
    }
}

/* The bits of a stack: an OR over its frames, four loads in flight. */
static uint64_t stack_bits(const uint64_t *bits, const uint64_t *locs, uint32_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    uint32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        a |= bits[locs[k]];
        b |= bits[locs[k + 1]];
        c |= bits[locs[k + 2]];
        d |= bits[locs[k + 3]];
    }
    for (; k < n; k++)
        a |= bits[locs[k]];
    return a | b | c | d;
}

/* The whole profile's values into sum: a loop of its own, without the
 * stack filters' branches. */
static void whole_values(const kiln_pprof_t *p, uint64_t *sum)
{
    for (size_t i = 0; i < p->n_samples; i++)
        add_values(p, &p->samples[i], sum);
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
    uint64_t *self = kiln_arena_alloc(rv->a, (p->n_locations + 1) * sizeof(*self));
    location_bits(p, fbits, total, self);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        if (s->n_locs == 0)
            continue;
        const uint64_t *locs = &p->locs[s->loc_off];
        uint64_t hit = self[locs[0]] & self_mask;
        if (total_mask != 0)
            hit |= stack_bits(total, locs, s->n_locs) & total_mask;
        for (; hit != 0; hit &= hit - 1)
            add_values(p, s, f[__builtin_ctzll(hit)].sum);
    }
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
