/* SPDX-License-Identifier: Apache-2.0
 * timeseries: SelectSeries. Profiles are bucketed by time: steps run from
 * start to end inclusive, and a profile at t counts at the first step
 * boundary >= t (Pyroscope's rule); empty steps are omitted. Profiles are
 * read from one step before start, so the point at start covers the step
 * before it as Pyroscope's (its querier reads from start - step). Series are
 * keyed by the group_by labels only, summed or averaged, sorted, and cut
 * to the `limit` largest by total. With EXEMPLAR_TYPE_INDIVIDUAL each point
 * carries its largest profile as an exemplar, with EXEMPLAR_TYPE_SPAN its
 * largest span (the sum of one span's samples in one profile: span id,
 * trace id and profile id). Built from per-profile totals: samples are
 * read only for span exemplars. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "hash_index.h"
#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "xmalloc.h"

#define MAX_STEPS 1000000

typedef struct group {
    char *key;   /* "name\xffvalue\xff..." of the group_by labels */
    double *sum; /* per step */
    uint32_t *count;
    double total;
    /* With EXEMPLAR_TYPE_INDIVIDUAL, per step the largest profile (NULL
     * otherwise): its stored id (0 = none yet), time and value. With
     * EXEMPLAR_TYPE_SPAN the largest span: its id (0 = none yet), trace,
     * profile id, time and value. */
    uint64_t *ex_id;
    int64_t *ex_t, *ex_v;
    uint64_t *ex_span;
    kiln_trace_id *ex_trace;
} group;

typedef struct acc {
    const Querier__V1__SelectSeriesRequest *req;
    int64_t step_ms;
    size_t n_steps;
    group *g;
    size_t n, cap;
    kiln_hash_index idx; /* key hash -> index in g: a profile finds its group in O(1) */
} acc;

typedef struct key_probe {
    const acc *a;
    const char *key;
} key_probe;

static bool key_eq(const void *ctx, uint32_t id)
{
    const key_probe *p = ctx;
    return strcmp(p->a->g[id].key, p->key) == 0;
}

static group *group_of(acc *a, const kiln_label_t *l, size_t n)
{
    kiln_buf key;
    kiln_buf_init(&key, 0);
    for (size_t i = 0; i < a->req->n_group_by; i++) {
        const char *v = kiln_labels_get(l, n, a->req->group_by[i]);
        if (v != NULL && *v != '\0')
            kiln_buf_printf(&key, "%s\xff%s\xff", a->req->group_by[i], v);
    }
    const char *k = key.len ? key.ptr : "";
    uint64_t h = XXH3_64bits(k, key.len);
    key_probe probe = {a, k};
    uint32_t id = kiln_hash_index_find(&a->idx, h, key_eq, &probe);
    if (id != KILN_HASH_INDEX_NONE) {
        kiln_buf_free(&key);
        return &a->g[id];
    }
    kiln_hash_index_insert(&a->idx, h, (uint32_t)a->n);
    KILN_GROW(a->g, a->cap, a->n + 1);
    group *g = &a->g[a->n++];
    g->key = kiln_xstrdup(k);
    g->sum = kiln_xcalloc(a->n_steps, sizeof(double));
    g->count = kiln_xcalloc(a->n_steps, sizeof(uint32_t));
    g->total = 0;
    g->ex_id = g->ex_span = NULL;
    g->ex_t = g->ex_v = NULL;
    g->ex_trace = NULL;
    bool spans = a->req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN;
    if (spans || a->req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL) {
        g->ex_id = kiln_xcalloc(a->n_steps, sizeof(uint64_t));
        g->ex_t = kiln_xcalloc(a->n_steps, sizeof(int64_t));
        g->ex_v = kiln_xcalloc(a->n_steps, sizeof(int64_t));
    }
    if (spans) {
        g->ex_span = kiln_xcalloc(a->n_steps, sizeof(uint64_t));
        g->ex_trace = kiln_xcalloc(a->n_steps, sizeof(kiln_trace_id));
    }
    kiln_buf_free(&key);
    return g;
}

uint64_t kiln_querier__step_of(int64_t start, int64_t t, int64_t step_ms)
{
    if (t <= start)
        return 0;
    uint64_t d = (uint64_t)t - (uint64_t)start, ms = (uint64_t)step_ms;
    return d / ms + (d % ms != 0);
}

int64_t kiln_querier__step_ms(double step)
{
    double ms = step * 1000;
    return ms < 1 ? 1 : ms > 1e15 ? (int64_t)1e15 : (int64_t)llround(ms);
}

uint64_t kiln_querier__n_steps(int64_t start, int64_t end, int64_t step_ms)
{
    return ((uint64_t)end - (uint64_t)start) / (uint64_t)step_ms + 1;
}

int64_t kiln_querier__step_time(int64_t start, uint64_t i, int64_t step_ms)
{
    /* In uint64: i * step_ms may pass INT64_MAX while start + it, <= end, does not. */
    return (int64_t)((uint64_t)start + i * (uint64_t)step_ms);
}

int64_t kiln_querier__series_from(int64_t start, int64_t step_ms)
{
    return start < INT64_MIN + step_ms ? INT64_MIN : start - step_ms;
}

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    acc *a = ctx;
    uint64_t step = kiln_querier__step_of(a->req->start, p->time_ms, a->step_ms);
    if (step >= a->n_steps)
        return;
    group *g = group_of(a, p->labels, p->n_labels);
    g->sum[step] += (double)p->total;
    g->count[step]++;
    g->total += (double)p->total;
    if (g->ex_id != NULL && g->ex_span == NULL && p->id != 0 &&
        (g->ex_id[step] == 0 || p->total > g->ex_v[step])) {
        g->ex_id[step] = p->id;
        g->ex_t[step] = p->time_ms;
        g->ex_v[step] = p->total;
    }
}

/* A span of a profile: the step's span exemplar when it is the largest. */
static void on_span(void *ctx, const kiln_read_span *sp)
{
    acc *a = ctx;
    uint64_t step = kiln_querier__step_of(a->req->start, sp->time_ms, a->step_ms);
    if (step >= a->n_steps)
        return;
    group *g = group_of(a, sp->labels, sp->n_labels);
    if (g->ex_span[step] != 0 && sp->total <= g->ex_v[step])
        return;
    g->ex_span[step] = sp->span;
    g->ex_trace[step] = sp->trace;
    g->ex_id[step] = sp->id;
    g->ex_t[step] = sp->time_ms;
    g->ex_v[step] = sp->total;
}

static void group_free(group *g)
{
    free(g->key), free(g->sum), free(g->count);
    free(g->ex_id), free(g->ex_t), free(g->ex_v);
    free(g->ex_span), free(g->ex_trace);
}

/* Step i's exemplar: its largest profile, named by the stored id as
 * profile_id_selector accepts it back. */
static void point_exemplar(Types__V1__Point *pt, const group *g, size_t i, kiln_arena_t *ar)
{
    Types__V1__Exemplar *e = kiln_arena_alloc(ar, sizeof(*e));
    types__v1__exemplar__init(e);
    e->timestamp = g->ex_t[i];
    e->value = g->ex_v[i];
    if (g->ex_id[i] != 0)
        e->profile_id = kiln_arena_printf(ar, "%016llx", (unsigned long long)g->ex_id[i]);
    if (g->ex_span != NULL) {
        e->span_id = kiln_querier__span_hex(g->ex_span[i], ar);
        if (g->ex_trace[i].hi != 0 || g->ex_trace[i].lo != 0)
            e->trace_id = kiln_querier__trace_hex(g->ex_trace[i], ar);
    }
    pt->exemplars = kiln_arena_alloc(ar, sizeof(*pt->exemplars));
    pt->exemplars[0] = e;
    pt->n_exemplars = 1;
}

static int cmp_key(const void *x, const void *y)
{
    return strcmp(((const group *)x)->key, ((const group *)y)->key);
}

static int cmp_total_desc(const void *x, const void *y)
{
    double a = ((const group *)x)->total, b = ((const group *)y)->total;
    return (a < b) - (a > b);
}

/* Parses "name\xffvalue\xff..." into label pairs in the arena. */
static Types__V1__Series *series_of(const acc *a, const group *g, kiln_arena_t *ar)
{
    Types__V1__Series *s = kiln_arena_alloc(ar, sizeof(*s));
    types__v1__series__init(s);
    s->labels = kiln_arena_alloc(ar, (a->req->n_group_by + 1) * sizeof(*s->labels));
    for (const char *p = g->key; *p != '\0';) {
        const char *s1 = strchr(p, 0xff), *s2 = strchr(s1 + 1, 0xff);
        Types__V1__LabelPair *lp = kiln_arena_alloc(ar, sizeof(*lp));
        types__v1__label_pair__init(lp);
        lp->name = kiln_arena_strndup(ar, p, (size_t)(s1 - p));
        lp->value = kiln_arena_strndup(ar, s1 + 1, (size_t)(s2 - s1 - 1));
        s->labels[s->n_labels++] = lp;
        p = s2 + 1;
    }
    s->points = kiln_arena_alloc(ar, (a->n_steps + 1) * sizeof(*s->points));
    bool avg = a->req->aggregation ==
               TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE;
    for (size_t i = 0; i < a->n_steps; i++) {
        if (g->count[i] == 0)
            continue;
        Types__V1__Point *pt = kiln_arena_alloc(ar, sizeof(*pt));
        types__v1__point__init(pt);
        pt->timestamp = kiln_querier__step_time(a->req->start, i, a->step_ms);
        pt->value = avg ? g->sum[i] / g->count[i] : g->sum[i];
        if (g->ex_span != NULL ? g->ex_span[i] != 0 : g->ex_id != NULL && g->ex_id[i] != 0)
            point_exemplar(pt, g, i, ar);
        s->points[s->n_points++] = pt;
    }
    return s;
}

kiln_status kiln_querier__select_series(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        ProtobufCMessage **resp)
{
    kiln_querier_t *q = svc;
    const Querier__V1__SelectSeriesRequest *req = (const Querier__V1__SelectSeriesRequest *)msg;
    int64_t start = req->start;
    kiln_status st = kiln_querier__limit_range(q, ctx, &start, req->end);
    if (st != KILN_OK)
        return st;
    if (!(req->step >= 0.001) ||
        ((double)req->end - (double)req->start) / (req->step * 1000) > MAX_STEPS)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "step must be >= 0.001 s and give at most %d points", MAX_STEPS);
    kiln_selector_t *sel;
    st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    if (st != KILN_OK)
        return st;
    acc a = {req, kiln_querier__step_ms(req->step), 0, NULL, 0, 0, {0}};
    a.n_steps = (size_t)kiln_querier__n_steps(req->start, req->end, a.step_ms);
    st = kiln_querier__profiles(q, ctx, sel, kiln_querier__series_from(start, a.step_ms), req->end,
                                on_profile, &a);
    if (st == KILN_OK && req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN)
        st = kiln_querier__spans(q, ctx, sel, kiln_querier__series_from(start, a.step_ms), req->end,
                                 on_span, &a);
    kiln_hash_index_fini(&a.idx);
    if (st != KILN_OK) {
        for (size_t i = 0; i < a.n; i++)
            group_free(&a.g[i]);
        free(a.g);
        return st;
    }
    if (req->limit > 0 && (size_t)req->limit < a.n) {
        qsort(a.g, a.n, sizeof(*a.g), cmp_total_desc);
        for (size_t i = (size_t)req->limit; i < a.n; i++)
            group_free(&a.g[i]);
        a.n = (size_t)req->limit;
    }
    if (a.n > 1) /* a.g is NULL when nothing matched */
        qsort(a.g, a.n, sizeof(*a.g), cmp_key);
    Querier__V1__SelectSeriesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__select_series_response__init(r);
    r->series = kiln_arena_alloc(ctx->arena, (a.n + 1) * sizeof(*r->series));
    for (size_t i = 0; i < a.n; i++) {
        r->series[r->n_series++] = series_of(&a, &a.g[i], ctx->arena);
        group_free(&a.g[i]);
    }
    free(a.g);
    *resp = &r->base;
    return KILN_OK;
}
