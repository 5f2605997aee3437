/* SPDX-License-Identifier: Apache-2.0
 * analyze: AnalyzeQuery (what a query will read, for the Drilldown app's
 * query-cost hints) and SelectHeatmap (per step, a histogram of the
 * matching profiles' totals, with EXEMPLAR_TYPE_INDIVIDUAL the largest
 * profile of each non-empty cell as an exemplar; with
 * HEATMAP_QUERY_TYPE_SPAN a histogram of the spans' totals, one point per
 * span of each profile, with EXEMPLAR_TYPE_SPAN the largest span of each
 * cell). Profile heatmaps are built from per-profile totals and never read
 * samples; span heatmaps read the samples' span and trace columns. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "xmalloc.h"

#define HEATMAP_BUCKETS 20

typedef struct scope_acc {
    uint64_t profiles, series;
    const kiln_label_t *last; /* series are visited profile by profile */
} scope_acc;

static void count_profile(void *ctx, const kiln_read_profile *p)
{
    const kiln_label_t *l = p->labels;
    scope_acc *a = ctx;
    a->profiles++;
    if (l != a->last)
        a->series++;
    a->last = l;
}

kiln_status kiln_querier__analyze_query(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        ProtobufCMessage **resp)
{
    kiln_querier_t *q = svc;
    const Querier__V1__AnalyzeQueryRequest *req = (const Querier__V1__AnalyzeQueryRequest *)msg;
    kiln_selector_t *sel;
    const char *query = *req->query ? req->query : "{}";
    kiln_status st = kiln_selector_parse(query, strlen(query), &sel, ctx->err);
    if (st != KILN_OK)
        return st;
    scope_acc a = {0, 0, NULL};
    st = kiln_querier__profiles(q, ctx, sel, req->start, req->end, count_profile, &a);
    kiln_selector_destroy(sel);
    if (st != KILN_OK)
        return st;
    Querier__V1__QueryScope *sc = kiln_arena_alloc(ctx->arena, sizeof(*sc));
    querier__v1__query_scope__init(sc);
    sc->component_type = "ingester (head and blocks)";
    sc->component_count = 1;
    sc->series_count = a.series;
    sc->profile_count = a.profiles;
    Querier__V1__QueryImpact *im = kiln_arena_alloc(ctx->arena, sizeof(*im));
    querier__v1__query_impact__init(im);
    im->total_queried_series = a.series;
    Querier__V1__AnalyzeQueryResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__analyze_query_response__init(r);
    r->query_scopes = kiln_arena_alloc(ctx->arena, sizeof(*r->query_scopes));
    r->query_scopes[0] = sc;
    r->n_query_scopes = 1;
    r->query_impact = im;
    *resp = &r->base;
    return KILN_OK;
}

typedef struct heat_point {
    int64_t t;
    double v;
    uint64_t id;         /* the stored profile id, the exemplar's profile_id */
    uint64_t span;       /* span heatmaps: the span id */
    kiln_trace_id trace; /* span heatmaps: its trace id (zero = none) */
} heat_point;

typedef struct heat_acc {
    heat_point *p;
    size_t n, cap;
    double min, max;
} heat_acc;

static void heat_add(heat_acc *a, heat_point pt)
{
    KILN_GROW(a->p, a->cap, a->n + 1);
    a->p[a->n++] = pt;
    if (a->n == 1 || pt.v < a->min)
        a->min = pt.v;
    if (a->n == 1 || pt.v > a->max)
        a->max = pt.v;
}

static void heat_profile(void *ctx, const kiln_read_profile *p)
{
    heat_add(ctx, (heat_point){p->time_ms, (double)p->total, p->id, 0, {0, 0}});
}

static void heat_span(void *ctx, const kiln_read_span *s)
{
    heat_add(ctx, (heat_point){s->time_ms, (double)s->total, s->id, s->span, s->trace});
}

/* The exemplar of profile (or span) p: its time, value, id in the form
 * profile_id_selector accepts back (kiln_querier__profile_ids), and for a
 * span its span and trace ids as span_selector and trace_id_selector take
 * them. */
static Types__V1__Exemplar *exemplar(const heat_point *p, kiln_arena_t *ar)
{
    Types__V1__Exemplar *e = kiln_arena_alloc(ar, sizeof(*e));
    types__v1__exemplar__init(e);
    e->timestamp = p->t;
    e->value = (int64_t)p->v;
    if (p->id != 0)
        e->profile_id = kiln_arena_printf(ar, "%016llx", (unsigned long long)p->id);
    if (p->span != 0)
        e->span_id = kiln_querier__span_hex(p->span, ar);
    if (p->trace.hi != 0 || p->trace.lo != 0)
        e->trace_id = kiln_querier__trace_hex(p->trace, ar);
    return e;
}

/* One exemplar per non-empty bucket of a slot: its largest profile
 * (best[b] = index + 1 into pts, 0 = none). */
static void slot_exemplars(Types__V1__HeatmapSlot *s, const heat_point *pts, const size_t *best,
                           kiln_arena_t *ar)
{
    s->exemplars = kiln_arena_alloc(ar, HEATMAP_BUCKETS * sizeof(*s->exemplars));
    for (int b = 0; b < HEATMAP_BUCKETS; b++)
        if (best[b] != 0 && (pts[best[b] - 1].id != 0 || pts[best[b] - 1].span != 0))
            s->exemplars[s->n_exemplars++] = exemplar(&pts[best[b] - 1], ar);
}

/* One slot per step that has profiles: counts per value bucket. */
static Types__V1__HeatmapSlot *slot(kiln_arena_t *ar, int64_t ts, const double *lo,
                                    const int32_t *counts)
{
    Types__V1__HeatmapSlot *s = kiln_arena_alloc(ar, sizeof(*s));
    types__v1__heatmap_slot__init(s);
    s->timestamp = ts;
    s->n_y_min = s->n_counts = HEATMAP_BUCKETS;
    s->y_min = kiln_arena_alloc(ar, HEATMAP_BUCKETS * sizeof(double));
    s->counts = kiln_arena_alloc(ar, HEATMAP_BUCKETS * sizeof(int32_t));
    memcpy(s->y_min, lo, HEATMAP_BUCKETS * sizeof(double));
    memcpy(s->counts, counts, HEATMAP_BUCKETS * sizeof(int32_t));
    return s;
}

static Types__V1__HeatmapSeries *heatmap(const heat_acc *a, int64_t start, int64_t step_ms,
                                         size_t n_steps, bool exemplars, kiln_arena_t *ar)
{
    Types__V1__HeatmapSeries *hs = kiln_arena_alloc(ar, sizeof(*hs));
    types__v1__heatmap_series__init(hs);
    double lo[HEATMAP_BUCKETS], width = (a->max - a->min) / HEATMAP_BUCKETS;
    for (int b = 0; b < HEATMAP_BUCKETS; b++)
        lo[b] = a->min + width * b;
    int32_t *counts = kiln_xcalloc(n_steps * HEATMAP_BUCKETS + 1, sizeof(int32_t));
    size_t *best = exemplars ? kiln_xcalloc(n_steps * HEATMAP_BUCKETS + 1, sizeof(size_t)) : NULL;
    for (size_t i = 0; i < a->n; i++) {
        int64_t t = a->p[i].t;
        uint64_t step = kiln_querier__step_of(start, t, step_ms);
        int b = width > 0 ? (int)((a->p[i].v - a->min) / width) : 0;
        b = b >= HEATMAP_BUCKETS ? HEATMAP_BUCKETS - 1 : b;
        if (step >= n_steps)
            continue;
        size_t cell = step * HEATMAP_BUCKETS + (size_t)b;
        counts[cell]++;
        if (best != NULL && (best[cell] == 0 || a->p[i].v > a->p[best[cell] - 1].v))
            best[cell] = i + 1;
    }
    hs->slots = kiln_arena_alloc(ar, (n_steps + 1) * sizeof(*hs->slots));
    for (size_t s = 0; s < n_steps; s++) {
        int32_t any = 0;
        for (int b = 0; b < HEATMAP_BUCKETS; b++)
            any |= counts[s * HEATMAP_BUCKETS + (size_t)b];
        if (!any)
            continue;
        Types__V1__HeatmapSlot *sl =
            slot(ar, kiln_querier__step_time(start, s, step_ms), lo, counts + s * HEATMAP_BUCKETS);
        if (best != NULL)
            slot_exemplars(sl, a->p, best + s * HEATMAP_BUCKETS, ar);
        hs->slots[hs->n_slots++] = sl;
    }
    free(best);
    free(counts);
    return hs;
}

/* As Pyroscope: span exemplars only on a span heatmap, individual ones
 * only on a profile heatmap (UNSPECIFIED is one). */
static kiln_status check_heatmap_types(const Querier__V1__SelectHeatmapRequest *req,
                                       kiln_rpc_ctx *ctx)
{
    bool by_span = req->query_type == QUERIER__V1__HEATMAP_QUERY_TYPE__HEATMAP_QUERY_TYPE_SPAN;
    if ((int)req->query_type < 0 ||
        (int)req->query_type > QUERIER__V1__HEATMAP_QUERY_TYPE__HEATMAP_QUERY_TYPE_SPAN)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "unknown heatmap query type %d",
                            (int)req->query_type);
    if ((int)req->exemplar_type < 0 ||
        (int)req->exemplar_type > TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "unknown exemplar type %d",
                            (int)req->exemplar_type);
    if (req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN && !by_span)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "span exemplars are only available for the span query type");
    if (req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL && by_span)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "individual exemplars are only available for the individual query "
                            "type");
    return KILN_OK;
}

kiln_status kiln_querier__select_heatmap(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                         ProtobufCMessage **resp)
{
    kiln_querier_t *q = svc;
    const Querier__V1__SelectHeatmapRequest *req = (const Querier__V1__SelectHeatmapRequest *)msg;
    int64_t start = req->start;
    kiln_status st = kiln_querier__limit_range(q, ctx, &start, req->end);
    if (st == KILN_OK && (!(req->step >= 0.001) ||
                          ((double)req->end - (double)req->start) / (req->step * 1000) > 100000))
        st = kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                          "step must be >= 0.001 s and give at most 100000 slots");
    bool by_span = req->query_type == QUERIER__V1__HEATMAP_QUERY_TYPE__HEATMAP_QUERY_TYPE_SPAN;
    if (st == KILN_OK)
        st = check_heatmap_types(req, ctx);
    kiln_selector_t *sel;
    if (st == KILN_OK)
        st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    if (st != KILN_OK)
        return st;
    heat_acc a = {NULL, 0, 0, 0, 0};
    st = by_span ? kiln_querier__spans(q, ctx, sel, start, req->end, heat_span, &a)
                 : kiln_querier__profiles(q, ctx, sel, start, req->end, heat_profile, &a);
    if (st != KILN_OK) {
        free(a.p);
        return st;
    }
    int64_t step_ms = kiln_querier__step_ms(req->step);
    Querier__V1__SelectHeatmapResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__select_heatmap_response__init(r);
    if (a.n != 0) {
        r->series = kiln_arena_alloc(ctx->arena, sizeof(*r->series));
        bool ex = req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL ||
                  req->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN;
        r->series[0] =
            heatmap(&a, req->start, step_ms,
                    (size_t)kiln_querier__n_steps(req->start, req->end, step_ms), ex, ctx->arena);
        r->n_series = 1;
    }
    free(a.p);
    *resp = &r->base;
    return KILN_OK;
}
