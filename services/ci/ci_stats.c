/* SPDX-License-Identifier: Apache-2.0
 * The CI gate's arithmetic (ci_stats.h): shares per function and run, the
 * Mann-Whitney U test over runs, and the verdicts. */
#include "ci_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "google/v1/profile.pb-c.h"
#include "xmalloc.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(((const kiln_ci_fn *)a)->name, ((const kiln_ci_fn *)b)->name);
}

static kiln_ci_fn *find_fn(const kiln_ci_run *run, const char *name)
{
    kiln_ci_fn key = {.name = (char *)name};
    return bsearch(&key, run->fns, run->n_fns, sizeof(key), by_name);
}

static kiln_ci_fn *fn_slot_append(kiln_ci_run *run, const char *name)
{
    run->fns = kiln_xrealloc(run->fns, (run->n_fns + 1) * sizeof(*run->fns));
    kiln_ci_fn *f = &run->fns[run->n_fns++];
    *f = (kiln_ci_fn){.name = kiln_xstrdup(name)};
    return f;
}

/* Linear: stacks added by hand are few (tests, folded text); pprof goes by id. */
static kiln_ci_fn *fn_slot(kiln_ci_run *run, const char *name)
{
    for (size_t i = 0; i < run->n_fns; i++)
        if (strcmp(run->fns[i].name, name) == 0)
            return &run->fns[i];
    return fn_slot_append(run, name);
}

void kiln_ci_run_add_stack(kiln_ci_run *run, const char *const *frames, size_t n, double value)
{
    run->value += value;
    for (size_t i = 0; i < n; i++) {
        int seen = 0; /* recursion counts once in total */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(frames[j], frames[i]) == 0;
        kiln_ci_fn *f = fn_slot(run, frames[i]);
        if (i == 0)
            f->self += value;
        if (!seen)
            f->total += value;
    }
}

/* Sorts by name, folds duplicate names together and divides by the run's value. */
void kiln_ci_run_normalise(kiln_ci_run *run)
{
    if (run->n_fns > 1)
        qsort(run->fns, run->n_fns, sizeof(*run->fns), by_name);
    size_t w = 0;
    for (size_t i = 0; i < run->n_fns; i++) {
        if (w > 0 && strcmp(run->fns[w - 1].name, run->fns[i].name) == 0) {
            run->fns[w - 1].self += run->fns[i].self;
            run->fns[w - 1].total += run->fns[i].total;
            free(run->fns[i].name);
            continue;
        }
        run->fns[w++] = run->fns[i];
    }
    run->n_fns = w;
    for (size_t i = 0; i < w && run->value > 0; i++) {
        run->fns[i].self /= run->value;
        run->fns[i].total /= run->value;
    }
}

void kiln_ci_run_free(kiln_ci_run *run)
{
    for (size_t i = 0; run && i < run->n_fns; i++)
        free(run->fns[i].name);
    if (run) {
        free(run->fns);
        *run = (kiln_ci_run){0};
    }
}

/* Index of the entry with `id`: pprof ids are usually 1..n in order, else search. */
static long find_id(uint64_t id, size_t n, uint64_t (*get)(const void *, size_t), const void *t)
{
    if (id >= 1 && id <= n && get(t, id - 1) == id)
        return (long)(id - 1);
    for (size_t i = 0; i < n; i++)
        if (get(t, i) == id)
            return (long)i;
    return -1;
}

static uint64_t loc_id(const void *p, size_t i)
{
    return ((const Google__V1__Profile *)p)->location[i]->id;
}

static uint64_t fn_id(const void *p, size_t i)
{
    return ((const Google__V1__Profile *)p)->function[i]->id;
}

/* Adds one sample's value to self (leaf) and total (once per function) by function index. */
static void add_sample(const Google__V1__Profile *p, const Google__V1__Sample *s, double v,
                       double *self, double *total, size_t *stamp, size_t mark)
{
    int leaf = 1;
    for (size_t i = 0; i < s->n_location_id; i++) {
        long li = find_id(s->location_id[i], p->n_location, loc_id, p);
        if (li < 0)
            continue;
        const Google__V1__Location *loc = p->location[li];
        for (size_t k = 0; k < loc->n_line; k++) {
            long fi = find_id(loc->line[k]->function_id, p->n_function, fn_id, p);
            if (fi < 0)
                continue;
            if (leaf)
                self[fi] += v;
            leaf = 0;
            if (stamp[fi] != mark)
                total[fi] += v;
            stamp[fi] = mark;
        }
    }
}

kiln_status kiln_ci_run_from_pprof(const uint8_t *data, size_t len, kiln_ci_run *run, kiln_err *err)
{
    Google__V1__Profile *p = google__v1__profile__unpack(NULL, len, data);
    if (!p)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "the profile is not a valid pprof");
    size_t nf = p->n_function;
    double *self = kiln_xcalloc(nf + 1, sizeof(double));
    double *total = kiln_xcalloc(nf + 1, sizeof(double));
    size_t *stamp = kiln_xcalloc(nf + 1, sizeof(size_t));
    kiln_ci_run r = {0};
    for (size_t i = 0; i < p->n_sample; i++) {
        const Google__V1__Sample *s = p->sample[i];
        if (s->n_value == 0)
            continue;
        double v = (double)s->value[s->n_value - 1];
        r.value += v;
        add_sample(p, s, v, self, total, stamp, i + 1);
    }
    for (size_t i = 0; i < nf; i++) {
        if (total[i] == 0)
            continue;
        int64_t ni = p->function[i]->name;
        const char *name = ni >= 0 && (size_t)ni < p->n_string_table ? p->string_table[ni] : "?";
        kiln_ci_fn *f = fn_slot_append(&r, name);
        f->self = self[i];
        f->total = total[i];
    }
    free(self);
    free(total);
    free(stamp);
    google__v1__profile__free_unpacked(p, NULL);
    kiln_ci_run_normalise(&r);
    *run = r;
    return KILN_OK;
}

/* U of y over x: pairs where y is larger, ties counting half. */
static double u_stat(const double *x, size_t nx, const double *y, size_t ny, double *tie_term)
{
    size_t n = nx + ny;
    double *all = kiln_xmalloc(n * sizeof(double));
    memcpy(all, x, nx * sizeof(double));
    memcpy(all + nx, y, ny * sizeof(double));
    double u = 0, ties = 0;
    for (size_t j = 0; j < ny; j++)
        for (size_t i = 0; i < nx; i++)
            u += y[j] > x[i] ? 1.0 : y[j] == x[i] ? 0.5 : 0.0;
    for (size_t i = 0; i < n; i++) { /* sum of t^3 - t over groups of equal values */
        size_t t = 0, first = 1;
        for (size_t k = 0; k < n; k++) {
            if (all[k] == all[i]) {
                t++;
                if (k < i)
                    first = 0;
            }
        }
        if (first)
            ties += (double)t * t * t - (double)t;
    }
    free(all);
    *tie_term = ties;
    return u;
}

double kiln_ci_mann_whitney(const double *x, size_t nx, const double *y, size_t ny)
{
    if (nx == 0 || ny == 0)
        return 1.0;
    double ties = 0;
    double u = u_stat(x, nx, y, ny, &ties);
    double n1 = (double)nx, n2 = (double)ny, n = n1 + n2;
    double var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)));
    if (var <= 0)
        return 1.0;
    double d = fabs(u - n1 * n2 / 2.0) - 0.5; /* continuity correction */
    if (d <= 0)
        return 1.0;
    return erfc(d / sqrt(var) / sqrt(2.0));
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

static double threshold_for(const kiln_ci_opts *o, const char *name, kiln_ci_metric m)
{
    if (m == KILN_CI_PROFILE)
        return o->profile_threshold;
    for (size_t i = 0; i < o->n_fn_thresholds; i++)
        if (strcmp(o->fn_names[i], name) == 0)
            return o->fn_thresholds[i];
    return o->threshold;
}

/* A row from per-run values; the verdict needs significance and the threshold both. */
static kiln_ci_row make_row(const char *name, kiln_ci_metric m, const double *b, size_t nb,
                            const double *c, size_t nc, const kiln_ci_opts *o)
{
    kiln_ci_row r = {.name = name, .metric = m, .base = mean(b, nb), .cur = mean(c, nc)};
    r.change = r.base > 0 ? (r.cur - r.base) / r.base : (r.cur > 0 ? INFINITY : 0);
    r.p = kiln_ci_mann_whitney(b, nb, c, nc);
    r.threshold = threshold_for(o, name, m);
    /* Few samples make small shares jumpy: a share must also move by min_delta. */
    int sig = r.p < o->alpha && (m == KILN_CI_PROFILE || fabs(r.cur - r.base) >= o->min_delta);
    r.regression = sig && r.change > r.threshold;
    r.improvement = sig && r.change < -r.threshold;
    return r;
}

static double fn_value(const kiln_ci_run *run, const char *name, kiln_ci_metric m)
{
    const kiln_ci_fn *f = find_fn(run, name);
    return f ? (m == KILN_CI_SELF ? f->self : f->total) : 0;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every function name of every run, once, sorted. */
static const char **all_names(const kiln_ci_run *b, size_t nb, const kiln_ci_run *c, size_t nc,
                              size_t *n_out)
{
    size_t n = 0;
    for (size_t i = 0; i < nb + nc; i++)
        n += (i < nb ? b[i] : c[i - nb]).n_fns;
    const char **names = kiln_xmalloc((n + 1) * sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < nb + nc; i++) {
        const kiln_ci_run *r = i < nb ? &b[i] : &c[i - nb];
        for (size_t j = 0; j < r->n_fns; j++)
            names[k++] = r->fns[j].name;
    }
    if (k > 1)
        qsort(names, k, sizeof(char *), by_str);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || strcmp(names[w - 1], names[i]) != 0)
            names[w++] = names[i];
    *n_out = w;
    return names;
}

static int by_change(const void *a, const void *b)
{
    double x = ((const kiln_ci_row *)a)->change, y = ((const kiln_ci_row *)b)->change;
    return x < y ? 1 : x > y ? -1 : 0;
}

void kiln_ci_compare(const kiln_ci_run *base, size_t n_base, const kiln_ci_run *cur, size_t n_cur,
                     const kiln_ci_opts *opts, kiln_ci_row **rows, size_t *n_rows)
{
    size_t n_names = 0;
    const char **names = all_names(base, n_base, cur, n_cur, &n_names);
    kiln_ci_row *out = kiln_xmalloc((2 * n_names + 1) * sizeof(*out));
    double *b = kiln_xmalloc((n_base + 1) * sizeof(double));
    double *c = kiln_xmalloc((n_cur + 1) * sizeof(double));
    size_t n = 0;
    for (size_t i = 0; i < n_names; i++) {
        for (int m = KILN_CI_SELF; m <= KILN_CI_TOTAL; m++) {
            for (size_t k = 0; k < n_base; k++)
                b[k] = fn_value(&base[k], names[i], (kiln_ci_metric)m);
            for (size_t k = 0; k < n_cur; k++)
                c[k] = fn_value(&cur[k], names[i], (kiln_ci_metric)m);
            if (mean(b, n_base) < opts->min_share && mean(c, n_cur) < opts->min_share)
                continue;
            out[n++] = make_row(names[i], (kiln_ci_metric)m, b, n_base, c, n_cur, opts);
        }
    }
    if (opts->profile_threshold > 0) {
        for (size_t k = 0; k < n_base; k++)
            b[k] = base[k].value;
        for (size_t k = 0; k < n_cur; k++)
            c[k] = cur[k].value;
        out[n++] = make_row("(whole profile)", KILN_CI_PROFILE, b, n_base, c, n_cur, opts);
    }
    if (n > 1)
        qsort(out, n, sizeof(*out), by_change);
    free(b);
    free(c);
    free(names);
    *rows = out;
    *n_rows = n;
}
