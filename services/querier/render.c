/* SPDX-License-Identifier: Apache-2.0
 * render: Pyroscope's legacy read HTTP API (pkg/querier/http.go) over the
 * querier: GET /pyroscope/render (flamebearer JSON with a timeline, or
 * Graphviz dot), /pyroscope/render-diff (the "double" flamebearer) and
 * /pyroscope/label-values. Errors are Connect JSON {"code","message"} with
 * the mapped HTTP status, as upstream writes them. Called from HTTP pool
 * threads; no state of its own. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "time_param.h"
#include "clock.h"
#include "connect.h"
#include "hash_index.h"
#include "json_writer.h"
#include "log.h"
#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "flamebearer.h"
#include "flamegraph.h"
#include "tree.h"
#include "xmalloc.h"

#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576
#define DOT_MAX_NODES_DEFAULT 100
#define MAX_TIMELINE_SAMPLES 100000

/* One legacy request in progress. */
typedef struct rq {
    kiln_querier_t *q;
    const kiln_http_req *http;
    kiln_http_resp *resp;
    char tenant[KILN_TENANT_MAX * 8 + 8];
    kiln_err err;
    kiln_rpc_ctx ctx;
} rq;

/* A parsed query/from/until/max-nodes set. */
typedef struct selection {
    const char *field;    /* the query parameter's name, for messages */
    const char *query;    /* its text */
    kiln_selector_t *sel; /* owned by the request arena */
    const char *type_id;  /* the profile type it selects */
    int64_t req_start;    /* ms, as given */
    int64_t start, end;   /* ms, start raised to the lookback limit */
    int64_t max_nodes;    /* 0 = not given */
} selection;

/* One timeline's per-step sums and profile counts. */
typedef struct tl_series {
    char *key; /* the groupBy value ("*" when the series lacks it) */
    double *sum;
    uint32_t *count;
} tl_series;

typedef struct timeline {
    int64_t start;      /* the query start (ms): the first step boundary */
    int64_t step;       /* ms, whole seconds */
    int64_t snap_start; /* start and end snapped down to the step */
    int64_t snap_end;
    size_t n; /* samples: [snap_start, snap_end) in steps */
    const char *group_by;
    bool avg;
    tl_series all;
    tl_series *g; /* sorted by key once filled */
    size_t ng, gcap;
    kiln_hash_index idx; /* key hash -> index in g while filling */
} timeline;

/* ---- request plumbing ---- */

/* Reads the tenant (X-Scope-OrgID, several joined by '|' allowed: these
 * are reads) and sets up the call context. */
/* The legacy routes read their parameters from the query string: GET, and
 * POST as some clients send it; any other method is 405. */
static bool method_allowed(const kiln_http_req *req, kiln_http_resp *resp)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "POST") == 0)
        return true;
    kiln_http_text(resp, 405, "method not allowed: use GET\n");
    resp->allow = "GET, POST";
    return false;
}

static kiln_status rq_init(rq *r, void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    memset(r, 0, sizeof(*r));
    r->q = ud;
    r->http = req;
    r->resp = resp;
    r->ctx = (kiln_rpc_ctx){.tenant = r->tenant, .arena = req->arena, .err = &r->err};
    const char *org = kiln_http_header(req, "X-Scope-OrgID");
    return kiln_tenant_parse(org, org ? strlen(org) : 0, true, r->tenant, sizeof(r->tenant),
                             &r->err);
}

static void rq_fail(rq *r, kiln_status st)
{
    if (r->err.msg[0] == '\0')
        kiln_err_set(&r->err, st, "%s", kiln_status_str(st));
    KILN_LOG_WARN("querier", "%s failed code=%s: %s", r->http->path, kiln_status_str(st),
                  r->err.msg);
    kiln_connect_error(r->resp, st, r->err.msg);
}

static const char *rq_param(const rq *r, const char *name)
{
    const char *v = kiln_http_query(r->http, name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* A time parameter in the time_param formats as ms, or dflt_ns when absent. */
static int64_t param_ms(const rq *r, const char *name, int64_t now, int64_t dflt_ns)
{
    const char *v = rq_param(r, name);
    return (v != NULL ? kiln_time_param_parse(v, strlen(v), now) : dflt_ns) / 1000000;
}

/* Go's strconv.Atoi: the whole text a decimal integer, or not a number. */
static bool atoi_go(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return false;
    *out = v;
    return true;
}

/* max-nodes, overridden by maxNodes; 0 or unparsable means not given. */
static kiln_status parse_max_nodes(rq *r, int64_t *out)
{
    int64_t v = 0, mn = 0;
    if (atoi_go(kiln_http_query(r->http, "max-nodes"), &v) && v != 0)
        mn = v;
    if (atoi_go(kiln_http_query(r->http, "maxNodes"), &v) && v != 0)
        mn = v;
    if (mn < 0 || mn > MAX_NODES_LIMIT)
        return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                            "max_nodes %lld out of range: must be 0..%d", (long long)mn,
                            MAX_NODES_LIMIT);
    *out = mn;
    return KILN_OK;
}

/* ---- the profile type of a query ---- */

/* The i-th ':'-separated part of a profile type id, in the arena. */
static const char *type_part(kiln_arena_t *a, const char *id, int i)
{
    for (; i > 0 && id != NULL; i--) {
        id = strchr(id, ':');
        id = id != NULL ? id + 1 : NULL;
    }
    const char *p = id != NULL ? kiln_arena_strndup(a, id, strcspn(id, ":")) : "";
    return p != NULL ? p : "";
}

static const char *matcher_eq(const kiln_selector_t *sel, const char *name)
{
    for (size_t i = 0; i < kiln_selector_count(sel); i++) {
        const char *n, *v;
        kiln_match_op op;
        kiln_selector_get(sel, i, &n, &op, &v);
        if (op == KILN_MATCH_EQ && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

typedef struct min_type {
    kiln_arena_t *a;
    const char *id;
} min_type;

static void on_series_type(void *ctx, const kiln_label_t *l, size_t n)
{
    min_type *m = ctx;
    const char *id = kiln_labels_get(l, n, KILN_LABEL_PROFILE_TYPE);
    if (id != NULL && (m->id == NULL || strcmp(id, m->id) < 0))
        m->id = kiln_arena_strndup(m->a, id, strlen(id));
}

/* A query without a type id (the legacy app.name.cpu{} form, or a
 * __name__ matcher) reads the type of the matching series with the
 * smallest id, and is then restricted to it so units stay consistent. */
static kiln_status infer_type(rq *r, selection *s)
{
    const char *name = matcher_eq(s->sel, KILN_LABEL_NAME);
    if (name == NULL)
        return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                            "\"%s\" must contain a profile-type selection", s->field);
    min_type m = {r->ctx.arena, NULL};
    kiln_status st = kiln_querier__series(r->q, r->tenant, s->sel, s->start, s->end, on_series_type,
                                          &m, &r->err);
    if (st != KILN_OK)
        return st;
    if (m.id == NULL) {
        /* Nothing matches: name the type from the matchers; units unknown. */
        const char *type = matcher_eq(s->sel, KILN_LABEL_TYPE);
        m.id = kiln_arena_printf(r->ctx.arena, "%s:%s:::", name, type ? type : "");
    }
    s->type_id = m.id;
    return kiln_selector_add(s->sel, KILN_LABEL_PROFILE_TYPE, KILN_MATCH_EQ, m.id, &r->err);
}

/* Parses the query, from and until parameters named by the fields (from
 * defaults to now-1h, until to now) and the max-nodes parameters. */
static kiln_status parse_selection(rq *r, const char *qf, const char *ff, const char *uf,
                                   selection *s)
{
    memset(s, 0, sizeof(*s));
    s->field = qf;
    s->query = rq_param(r, qf);
    if (s->query == NULL)
        return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT, "\"%s\" is required", qf);
    kiln_err perr;
    if (kiln_selector_parse(s->query, strlen(s->query), &s->sel, &perr) != KILN_OK)
        return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT, "failed to parse \"%s\": %s", qf,
                            perr.msg);
    kiln_arena_defer(r->ctx.arena, (void (*)(void *))kiln_selector_destroy, s->sel);
    int64_t now = kiln_wall_ns();
    s->start = param_ms(r, ff, now, now - 3600 * (int64_t)1000000000);
    s->end = param_ms(r, uf, now, now);
    s->req_start = s->start;
    kiln_status st = parse_max_nodes(r, &s->max_nodes);
    if (st == KILN_OK)
        st = kiln_querier__limit_range(r->q, &r->ctx, &s->start, s->end);
    if (st != KILN_OK)
        return st;
    const char *type = kiln_selector_profile_type(s->sel);
    if (*type != '\0' || (type = matcher_eq(s->sel, KILN_LABEL_PROFILE_TYPE)) != NULL) {
        s->type_id = type;
        return KILN_OK;
    }
    return infer_type(r, s);
}

/* ---- flamebearer JSON ---- */

/* The metadata Pyroscope's ExportToFlamebearer derives from the type id
 * name:sample_type:sample_unit:period_type:period_unit. */
static void json_metadata(kiln_buf *b, kiln_arena_t *a, const char *type_id, const char *format)
{
    kiln_flamebearer_metadata(b, type_part(a, type_id, 1), type_part(a, type_id, 2), format);
}

/* "flamebearer":{names, levels, numTicks, maxSelf}: the flame graph's
 * levels as they are (x already delta-encoded, 4 or 7 values a node). */
static void json_flamebearer(kiln_buf *b, char **names, size_t n_names, Querier__V1__Level **levels,
                             size_t n_levels, int64_t total, int64_t max_self)
{
    kiln_flamebearer_levels(b, names, n_names, levels, n_levels, total, max_self);
}

static void json_timeline(kiln_buf *b, const timeline *tl, const tl_series *s)
{
    kiln_buf_printf(b, "{\"startTime\":%lld,\"samples\":[", (long long)(tl->snap_start / 1000));
    for (size_t i = 0; i < tl->n; i++) {
        double v = s->count[i] == 0 ? 0 : tl->avg ? s->sum[i] / s->count[i] : s->sum[i];
        kiln_buf_printf(b, i > 0 ? ",%llu" : "%llu", v > 0 ? (unsigned long long)v : 0ull);
    }
    kiln_buf_printf(b, "],\"durationDelta\":%lld,\"watermarks\":null}",
                    (long long)(tl->step / 1000));
}

static void json_groups(kiln_buf *b, const timeline *tl)
{
    if (tl->group_by == NULL) {
        kiln_buf_puts(b, "null");
        return;
    }
    kiln_buf_putc(b, '{');
    for (size_t i = 0; i < tl->ng; i++) {
        if (i > 0)
            kiln_buf_putc(b, ',');
        kiln_json_string(b, tl->g[i].key, strlen(tl->g[i].key));
        kiln_buf_putc(b, ':');
        json_timeline(b, tl, &tl->g[i]);
    }
    kiln_buf_putc(b, '}');
}

/* ---- timeline (pkg/querier/timeline) ---- */

/* Grafana's interval rounding as Pyroscope uses it, from 15 s up: the
 * largest interval (ns, inclusive) each step (ms) covers. */
static const struct {
    int64_t upto_ns;
    int64_t step_ms;
} intervals[] = {
    {17500000000LL, 15000},
    {25000000000LL, 20000},
    {45000000000LL, 30000},
    {90000000000LL, 60000},
    {210000000000LL, 120000},
    {450000000000LL, 300000},
    {750000000000LL, 600000},
    {1050000000000LL, 900000},
    {1500000000000LL, 1200000},
    {2700000000000LL, 1800000},
    {5400000000000LL, 3600000},
    {9000000000000LL, 7200000},
    {16200000000000LL, 10800000},
    {32400000000000LL, 21600000},
    {86400000000000LL, 43200000},
    {172800000000000LL, 86400000},
    {604800000000000LL, 86400000},
    {1814400000000000LL, 604800000},
    {3628800000000000LL - 1, 2592000000LL},
};

/* The timeline step (ms): (until - from) / 1500 rounded as above, at
 * least 15 s. */
static int64_t point_interval_ms(int64_t from_ms, int64_t until_ms)
{
    int64_t diff = until_ms > from_ms ? until_ms - from_ms : 0;
    if (diff > 9000000000000LL)
        diff = 9000000000000LL; /* ~285 years: keeps the ns product in range */
    int64_t interval = diff * 1000000 / 1500;
    if (interval < 15000000000LL)
        return 15000;
    for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
        if (interval <= intervals[i].upto_ns)
            return intervals[i].step_ms;
    }
    return 31536000000LL; /* a year */
}

static void tl_series_init(tl_series *s, const char *key, size_t n)
{
    s->key = kiln_xstrdup(key);
    s->sum = kiln_xcalloc(n ? n : 1, sizeof(double));
    s->count = kiln_xcalloc(n ? n : 1, sizeof(uint32_t));
}

typedef struct tl_probe {
    const timeline *tl;
    const char *key;
} tl_probe;

static bool tl_key_eq(const void *ctx, uint32_t id)
{
    const tl_probe *p = ctx;
    return strcmp(p->tl->g[id].key, p->key) == 0;
}

/* The group of a profile's groupBy value, found by hash: a linear search
 * here made a query over many values quadratic. */
static tl_series *tl_group(timeline *tl, const kiln_label_t *l, size_t n)
{
    const char *v = kiln_labels_get(l, n, tl->group_by);
    const char *key = v != NULL && *v != '\0' ? v : "*";
    uint64_t h = XXH3_64bits(key, strlen(key));
    tl_probe probe = {tl, key};
    uint32_t id = kiln_hash_index_find(&tl->idx, h, tl_key_eq, &probe);
    if (id != KILN_HASH_INDEX_NONE)
        return &tl->g[id];
    kiln_hash_index_insert(&tl->idx, h, (uint32_t)tl->ng);
    KILN_GROW(tl->g, tl->gcap, tl->ng + 1);
    tl_series_init(&tl->g[tl->ng], key, tl->n);
    return &tl->g[tl->ng++];
}

/* A profile counts at the first step boundary (start + k * step) at or
 * after its time, as SelectSeries places it; the timeline then keeps the
 * boundaries in [snap_start, snap_end). */
static void on_timeline_profile(void *ctx, const kiln_read_profile *p)
{
    int64_t t = p->time_ms, total = p->total;
    timeline *tl = ctx;
    int64_t k = t <= tl->start ? 0 : (t - tl->start + tl->step - 1) / tl->step;
    int64_t b = tl->start + k * tl->step;
    if (b >= tl->snap_end || b < tl->snap_start)
        return;
    size_t i = (size_t)((b / 1000 - tl->snap_start / 1000) / (tl->step / 1000));
    if (i >= tl->n)
        return;
    tl->all.sum[i] += (double)total;
    tl->all.count[i]++;
    if (tl->group_by != NULL) {
        tl_series *g = tl_group(tl, p->labels, p->n_labels);
        g->sum[i] += (double)total;
        g->count[i]++;
    }
}

static int cmp_series_key(const void *a, const void *b)
{
    return strcmp(((const tl_series *)a)->key, ((const tl_series *)b)->key);
}

/* The timeline (and per-group timelines) of the selection's profiles.
 * KILN_INVALID_ARGUMENT for a range of more than MAX_TIMELINE_SAMPLES
 * steps (only ranges of millennia get there: the step grows with them). */
static void timeline_free(timeline *tl);

static kiln_status timeline_build(rq *r, const selection *s, const char *group_by, bool avg,
                                  timeline *tl)
{
    memset(tl, 0, sizeof(*tl));
    tl->start = s->start;
    tl->step = point_interval_ms(s->start, s->end);
    tl->snap_start = s->start / tl->step * tl->step;
    tl->snap_end = s->end / tl->step * tl->step;
    if (tl->snap_start < tl->snap_end) {
        int64_t n = (tl->snap_end / 1000 - tl->snap_start / 1000) / (tl->step / 1000);
        if (n > MAX_TIMELINE_SAMPLES)
            return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                "the time range is too long for a timeline (%lld steps of %llds)",
                                (long long)n, (long long)(tl->step / 1000));
        tl->n = (size_t)n;
    }
    tl->group_by = group_by;
    tl->avg = avg;
    tl_series_init(&tl->all, "", tl->n);
    kiln_status st = KILN_OK;
    kiln_read_filter f = {.sel = s->sel, .start_ms = s->start, .end_ms = s->end};
    kiln_read_visitor v = {.profile = on_timeline_profile, .ctx = tl};
    if (tl->n > 0)
        st = kiln_store_read(&r->q->store, r->tenant, &f, &v, &r->err);
    kiln_hash_index_fini(&tl->idx);
    if (st != KILN_OK) {
        timeline_free(tl);
        return st;
    }
    if (tl->ng > 1)
        qsort(tl->g, tl->ng, sizeof(*tl->g), cmp_series_key);
    return KILN_OK;
}

static void tl_series_free(tl_series *s)
{
    free(s->key);
    free(s->sum);
    free(s->count);
}

static void timeline_free(timeline *tl)
{
    tl_series_free(&tl->all);
    for (size_t i = 0; i < tl->ng; i++)
        tl_series_free(&tl->g[i]);
    free(tl->g);
}

/* ---- Graphviz dot ---- */

/* A flame graph node decoded: absolute x, and its parent's index. */
typedef struct dnode {
    int64_t x, total, self, name;
    size_t parent;
} dnode;

typedef struct dedge {
    int64_t from, to, w;
} dedge;

typedef struct dgraph {
    const Querier__V1__FlameGraph *fg;
    const char *unit;
    dnode *nodes;
    size_t n;
    int64_t *flat, *cum; /* per name index */
    dedge *edges;
    size_t ne;
    int64_t *rank; /* name index -> node number (1-based), 0 = not drawn */
} dgraph;

/* Decodes the levels; a node's parent is the previous level's node whose
 * [x, x + total) holds its x (levels are in ascending x). */
static void dot_decode(dgraph *g)
{
    const Querier__V1__FlameGraph *fg = g->fg;
    for (size_t l = 0; l < fg->n_levels; l++)
        g->n += fg->levels[l]->n_values / 4;
    g->nodes = kiln_xmalloc((g->n ? g->n : 1) * sizeof(dnode));
    size_t k = 0, prev = 0, prev_end = 0;
    for (size_t l = 0; l < fg->n_levels; l++) {
        size_t first = k, p = prev;
        int64_t end = 0;
        for (size_t j = 0; j + 3 < fg->levels[l]->n_values; j += 4) {
            const int64_t *v = &fg->levels[l]->values[j];
            dnode *d = &g->nodes[k++];
            /* x positions wrap as the flame graph's did (kiln_add_wrap) */
            *d = (dnode){kiln_add_wrap(end, v[0]), v[1], v[2], v[3], SIZE_MAX};
            end = kiln_add_wrap(d->x, d->total);
            while (p < prev_end && kiln_add_wrap(g->nodes[p].x, g->nodes[p].total) <= d->x)
                p++;
            if (l > 0 && p < prev_end)
                d->parent = p;
        }
        prev = first;
        prev_end = k;
    }
}

static int cmp_edge(const void *a, const void *b)
{
    const dedge *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return (x->to > y->to) - (x->to < y->to);
}

/* Whether each node has an ancestor of its own name (the root node 0 not
 * counted): one depth-first pass keeping how often each name is on the
 * current path, so a deep recursive graph costs O(nodes), not a walk up
 * to the root per node (O(nodes x depth)). */
static bool *dot_nested(const dgraph *g)
{
    size_t n = g->n;
    bool *nested = kiln_xcalloc(n + 1, sizeof(bool));
    size_t *first = kiln_xcalloc(n + 2, sizeof(size_t));
    size_t *kids = kiln_xmalloc((n + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        if (g->nodes[i].parent != SIZE_MAX)
            first[g->nodes[i].parent + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    size_t *next = kiln_xmalloc((n + 1) * sizeof(size_t));
    size_t *stack = kiln_xmalloc((2 * n + 1) * sizeof(size_t));
    memcpy(next, first, (n + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        if (g->nodes[i].parent != SIZE_MAX)
            kids[next[g->nodes[i].parent]++] = i;
    }
    uint32_t *active = kiln_xcalloc(g->fg->n_names + 1, sizeof(uint32_t));
    size_t sp = 0;
    for (size_t r = 0; r < n; r++) { /* roots: node 0, and any node without a parent */
        if (g->nodes[r].parent != SIZE_MAX)
            continue;
        stack[sp++] = 2 * r;
        while (sp > 0) {
            size_t x = stack[--sp], v = x / 2, name = (size_t)g->nodes[v].name;
            if (x % 2 == 1) { /* leaving v */
                active[name]--;
                continue;
            }
            if (v != 0) {
                nested[v] = active[name] > 0;
                active[name]++;
                stack[sp++] = 2 * v + 1;
            }
            for (size_t k = first[v]; k < first[v + 1]; k++)
                stack[sp++] = 2 * kids[k];
        }
    }
    free(active);
    free(stack);
    free(next);
    free(kids);
    free(first);
    return nested;
}

/* Per function: flat = its self values, cum = the totals of its nodes that
 * have no ancestor of the same name (recursion counts once); edges carry
 * the callee's total, merged per caller and callee. */
static void dot_aggregate(dgraph *g)
{
    size_t nn = g->fg->n_names;
    g->flat = kiln_xcalloc(nn, sizeof(int64_t));
    g->cum = kiln_xcalloc(nn, sizeof(int64_t));
    g->edges = kiln_xmalloc((g->n ? g->n : 1) * sizeof(dedge));
    bool *nested = dot_nested(g);
    for (size_t i = 1; i < g->n; i++) {
        const dnode *d = &g->nodes[i];
        if (d->parent == SIZE_MAX)
            continue;
        g->flat[d->name] = kiln_add_wrap(g->flat[d->name], d->self);
        if (!nested[i])
            g->cum[d->name] = kiln_add_wrap(g->cum[d->name], d->total);
        if (d->parent != 0)
            g->edges[g->ne++] = (dedge){g->nodes[d->parent].name, d->name, d->total};
    }
    free(nested);
    qsort(g->edges, g->ne, sizeof(dedge), cmp_edge);
    size_t m = 0;
    for (size_t i = 0; i < g->ne; i++) {
        dedge *last = m > 0 ? &g->edges[m - 1] : NULL;
        if (last != NULL && last->from == g->edges[i].from && last->to == g->edges[i].to)
            g->edges[m - 1].w = kiln_add_wrap(g->edges[m - 1].w, g->edges[i].w);
        else
            g->edges[m++] = g->edges[i];
    }
    g->ne = m;
}

typedef struct dorder {
    int64_t cum, name;
} dorder;

static int cmp_cum(const void *a, const void *b)
{
    const dorder *x = a, *y = b;
    if (x->cum != y->cum)
        return x->cum > y->cum ? -1 : 1;
    return (x->name > y->name) - (x->name < y->name);
}

/* Numbers the functions N1.. by cum, largest first; returns the order. */
static dorder *dot_rank(dgraph *g, size_t *n)
{
    size_t nn = g->fg->n_names;
    dorder *o = kiln_xmalloc((nn ? nn : 1) * sizeof(dorder));
    *n = 0;
    for (size_t i = 1; i < nn; i++) {
        if (g->cum[i] != 0 || g->flat[i] != 0)
            o[(*n)++] = (dorder){g->cum[i], (int64_t)i};
    }
    qsort(o, *n, sizeof(dorder), cmp_cum);
    g->rank = kiln_xcalloc(nn ? nn : 1, sizeof(int64_t));
    for (size_t i = 0; i < *n; i++)
        g->rank[o[i].name] = (int64_t)i + 1;
    return o;
}

/* A value in its unit the way pprof prints it (1.50s, 2.25MB, 42). */
static void fmt_value(char *buf, size_t cap, int64_t v, const char *unit)
{
    double a = v < 0 ? -(double)v : (double)v;
    if (v == 0) {
        snprintf(buf, cap, "0");
    } else if (strcmp(unit, "nanoseconds") == 0 && a >= 1e3) {
        const char *u = a >= 1e9 ? "s" : a >= 1e6 ? "ms" : "us";
        double d = a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : 1e3;
        snprintf(buf, cap, "%.2f%s", (double)v / d, u);
    } else if (strcmp(unit, "bytes") == 0 && a >= 1024) {
        const char *u = a >= 1073741824.0 ? "GB" : a >= 1048576.0 ? "MB" : "kB";
        double d = a >= 1073741824.0 ? 1073741824.0 : a >= 1048576.0 ? 1048576.0 : 1024.0;
        snprintf(buf, cap, "%.2f%s", (double)v / d, u);
    } else {
        snprintf(buf, cap, "%lld%s", (long long)v, strcmp(unit, "nanoseconds") == 0 ? "ns" : "");
    }
}

/* Text inside a dot string: quotes and backslashes escaped, newlines as \n. */
static void dot_escape(kiln_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n') {
            kiln_buf_puts(b, "\\n");
            continue;
        }
        if (*s == '"' || *s == '\\')
            kiln_buf_putc(b, '\\');
        kiln_buf_putc(b, *s);
    }
}

/* Gray for small shares of the total, through to dark red for all of it
 * (a box also gets a matching fill). */
static void dot_colors(kiln_buf *b, double score, bool fill)
{
    if (score < 0)
        score = 0;
    if (score > 1)
        score = 1;
    int c = (int)(0x88 * (1 - score)), r = (int)(0x88 + (0xb2 - 0x88) * score);
    int fr = (int)(0xf8 - (0xf8 - 0xed) * score), fg = (int)(0xf8 - (0xf8 - 0xd5) * score);
    kiln_buf_printf(b, " color=\"#%02x%02x%02x\"", r, c, c);
    if (fill)
        kiln_buf_printf(b, " fillcolor=\"#%02x%02x%02x\"", fr, fg, fg);
}

static void dot_node(kiln_buf *b, const dgraph *g, int64_t name, int64_t max_flat)
{
    const Querier__V1__FlameGraph *fg = g->fg;
    char flat[48], cum[48];
    fmt_value(flat, sizeof(flat), g->flat[name], g->unit);
    fmt_value(cum, sizeof(cum), g->cum[name], g->unit);
    double total = fg->total > 0 ? (double)fg->total : 1;
    double share = max_flat > 0 ? (double)g->flat[name] / (double)max_flat : 0;
    kiln_buf_printf(b, "N%lld [label=\"", (long long)g->rank[name]);
    dot_escape(b, fg->names[name]);
    kiln_buf_printf(b,
                    "\\n%s (%.2f%%)\\nof %s (%.2f%%)\" id=\"node%lld\" fontsize=%d shape=box "
                    "tooltip=\"",
                    flat, 100 * (double)g->flat[name] / total, cum,
                    100 * (double)g->cum[name] / total, (long long)g->rank[name],
                    8 + (int)(42 * sqrt(share > 0 ? share : 0)));
    dot_escape(b, fg->names[name]);
    kiln_buf_printf(b, " (%s)\"", cum);
    dot_colors(b, (double)g->cum[name] / total, true);
    kiln_buf_puts(b, "]\n");
}

static void dot_edge(kiln_buf *b, const dgraph *g, const dedge *e)
{
    const Querier__V1__FlameGraph *fg = g->fg;
    char w[48];
    fmt_value(w, sizeof(w), e->w, g->unit);
    double score = fg->total > 0 ? (double)e->w / (double)fg->total : 0;
    kiln_buf_printf(b, "N%lld -> N%lld [label=\" %s\" weight=%d penwidth=%d",
                    (long long)g->rank[e->from], (long long)g->rank[e->to], w,
                    1 + (int)(99 * score), 1 + (int)(5 * score));
    dot_colors(b, score, false);
    for (int i = 0; i < 2; i++) {
        kiln_buf_puts(b, i == 0 ? " tooltip=\"" : " labeltooltip=\"");
        dot_escape(b, fg->names[e->from]);
        kiln_buf_puts(b, " -> ");
        dot_escape(b, fg->names[e->to]);
        kiln_buf_printf(b, " (%s)\"", w);
    }
    kiln_buf_puts(b, "]\n");
}

/* pprof's dot layout: a legend box, one box per function, caller -> callee
 * edges weighted by the callee's total. */
static void dot_write(kiln_buf *b, dgraph *g, const char *type)
{
    size_t n;
    dorder *o = dot_rank(g, &n);
    int64_t max_flat = 0, flat_sum = 0;
    for (size_t i = 0; i < n; i++) {
        flat_sum = kiln_add_wrap(flat_sum, g->flat[o[i].name]);
        if (g->flat[o[i].name] > max_flat)
            max_flat = g->flat[o[i].name];
    }
    char shown[48], total[48];
    fmt_value(shown, sizeof(shown), flat_sum, g->unit);
    fmt_value(total, sizeof(total), g->fg->total, g->unit);
    kiln_buf_puts(b, "digraph \"");
    dot_escape(b, type);
    kiln_buf_puts(b, "\" {\nnode [style=filled fillcolor=\"#f8f8f8\"]\n");
    kiln_buf_puts(b, "subgraph cluster_L { \"Type: ");
    dot_escape(b, type);
    kiln_buf_puts(b, "\" [shape=box fontsize=16 label=\"Type: ");
    dot_escape(b, type);
    kiln_buf_printf(b, "\\lShowing nodes accounting for %s, %.2f%% of %s total\\l\"] }\n", shown,
                    g->fg->total > 0 ? 100 * (double)flat_sum / (double)g->fg->total : 0, total);
    for (size_t i = 0; i < n; i++)
        dot_node(b, g, o[i].name, max_flat);
    for (size_t i = 0; i < g->ne; i++)
        dot_edge(b, g, &g->edges[i]);
    kiln_buf_puts(b, "}\n");
    free(o);
}

/* The selection's profiles merged into t. */
static kiln_status merge_side(rq *r, const selection *s, kiln_tree_t *t)
{
    kiln_read_filter f = {.sel = s->sel, .start_ms = s->start, .end_ms = s->end};
    kiln_read_visitor v = {.tree = t};
    return kiln_store_read(&r->q->store, r->tenant, &f, &v, &r->err);
}

/* format=dot: the merged tree truncated to max-nodes (default 100) nodes,
 * drawn as a call graph of functions; nothing at all when empty. */
static void render_dot(rq *r, const selection *s)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_status st = merge_side(r, s, t);
    if (st != KILN_OK) {
        kiln_tree_destroy(t);
        rq_fail(r, st);
        return;
    }
    const Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(
        t, s->max_nodes > 0 ? s->max_nodes : DOT_MAX_NODES_DEFAULT, r->ctx.arena);
    kiln_tree_destroy(t);
    if (fg == NULL) {
        rq_fail(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "result too large"));
        return;
    }
    r->resp->status = 200;
    r->resp->content_type = "text/plain; charset=utf-8";
    kiln_querier__dot(fg, s->type_id, r->ctx.arena, &r->resp->body);
}

void kiln_querier__dot(const Querier__V1__FlameGraph *fg, const char *type_id, kiln_arena_t *a,
                       kiln_buf *out)
{
    if (fg->total == 0)
        return;
    dgraph g = {.fg = fg, .unit = type_part(a, type_id, 2)};
    dot_decode(&g);
    dot_aggregate(&g);
    dot_write(out, &g, type_part(a, type_id, 1));
    free(g.rank);
    free(g.edges);
    free(g.cum);
    free(g.flat);
    free(g.nodes);
}

/* ---- GET /pyroscope/render ---- */

static void render_json(rq *r, const selection *s)
{
    const char *agg = kiln_http_query(r->http, "aggregation");
    timeline tl;
    kiln_status st =
        timeline_build(r, s, rq_param(r, "groupBy"), agg && strcmp(agg, "avg") == 0, &tl);
    if (st != KILN_OK) {
        rq_fail(r, st);
        return;
    }
    kiln_tree_t *t = kiln_tree_create();
    st = merge_side(r, s, t);
    if (st != KILN_OK) {
        kiln_tree_destroy(t);
        timeline_free(&tl);
        rq_fail(r, st);
        return;
    }
    Querier__V1__FlameGraph *fg =
        kiln_tree_flamegraph(t, s->max_nodes ? s->max_nodes : MAX_NODES_DEFAULT, r->ctx.arena);
    kiln_tree_destroy(t);
    if (fg == NULL) {
        timeline_free(&tl);
        rq_fail(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "result too large"));
        return;
    }
    kiln_buf *b = &r->resp->body;
    kiln_buf_puts(b, "{\"version\":1,");
    json_flamebearer(b, fg->names, fg->n_names, fg->levels, fg->n_levels, fg->total, fg->max_self);
    kiln_buf_putc(b, ',');
    json_metadata(b, r->ctx.arena, s->type_id, "single");
    kiln_buf_puts(b, ",\"timeline\":");
    json_timeline(b, &tl, &tl.all);
    kiln_buf_puts(b, ",\"groups\":");
    json_groups(b, &tl);
    kiln_buf_puts(b, ",\"heatmap\":null}\n");
    timeline_free(&tl);
    r->resp->status = 200;
    r->resp->content_type = "application/json";
}

static void on_render(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    rq r;
    selection s;
    if (!method_allowed(req, resp))
        return;
    kiln_status st = rq_init(&r, ud, req, resp);
    if (st == KILN_OK)
        st = parse_selection(&r, "query", "from", "until", &s);
    if (st != KILN_OK) {
        rq_fail(&r, st);
        return;
    }
    const char *format = kiln_http_query(req, "format");
    if (format != NULL && strcmp(format, "dot") == 0)
        render_dot(&r, &s);
    else
        render_json(&r, &s);
}

/* ---- GET /pyroscope/render-diff ---- */

static Querier__V1__SelectMergeStacktracesRequest *diff_side(kiln_arena_t *a, const selection *s)
{
    Querier__V1__SelectMergeStacktracesRequest *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    querier__v1__select_merge_stacktraces_request__init(m);
    /* The whole query goes in as the selector: FlameQL takes the type
     * prefix (or the legacy form) and Diff adds the same type again. */
    m->profile_typeid = (char *)s->type_id;
    m->label_selector = (char *)s->query;
    m->start = s->req_start;
    m->end = s->end;
    m->max_nodes = s->max_nodes;
    return m;
}

static kiln_status render_diff(rq *r, const selection *ls, const selection *rs)
{
    if (strcmp(ls->type_id, rs->type_id) != 0)
        return kiln_err_set(&r->err, KILN_INVALID_ARGUMENT, "profile types must match");
    Querier__V1__DiffRequest req = QUERIER__V1__DIFF_REQUEST__INIT;
    req.left = diff_side(r->ctx.arena, ls);
    req.right = diff_side(r->ctx.arena, rs);
    if (req.left == NULL || req.right == NULL)
        return kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "request too large");
    ProtobufCMessage *out = NULL;
    kiln_status st = kiln_querier__diff(r->q, &r->ctx, &req.base, &out);
    if (st != KILN_OK)
        return st;
    const Querier__V1__FlameGraphDiff *d = ((Querier__V1__DiffResponse *)out)->flamegraph;
    kiln_buf *b = &r->resp->body;
    kiln_buf_puts(b, "{\"version\":1,");
    json_flamebearer(b, d->names, d->n_names, d->levels, d->n_levels, d->total, d->max_self);
    kiln_buf_putc(b, ',');
    json_metadata(b, r->ctx.arena, ls->type_id, "double");
    kiln_buf_puts(b, ",\"timeline\":null,\"groups\":null,\"heatmap\":null");
    /* Go's omitempty: zero ticks are left out. */
    if (d->leftticks != 0)
        kiln_buf_printf(b, ",\"leftTicks\":%lld", (long long)d->leftticks);
    if (d->rightticks != 0)
        kiln_buf_printf(b, ",\"rightTicks\":%lld", (long long)d->rightticks);
    kiln_buf_puts(b, "}\n");
    r->resp->status = 200;
    r->resp->content_type = "application/json";
    return KILN_OK;
}

static void on_render_diff(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    rq r;
    selection ls, rs;
    if (!method_allowed(req, resp))
        return;
    kiln_status st = rq_init(&r, ud, req, resp);
    if (st == KILN_OK)
        st = parse_selection(&r, "leftQuery", "leftFrom", "leftUntil", &ls);
    if (st == KILN_OK)
        st = parse_selection(&r, "rightQuery", "rightFrom", "rightUntil", &rs);
    if (st == KILN_OK)
        st = render_diff(&r, &ls, &rs);
    if (st != KILN_OK)
        rq_fail(&r, st);
}

/* ---- GET /pyroscope/label-values ---- */

typedef struct values {
    kiln_arena_t *a;
    const char *label;
    char **v;
    size_t n, cap;
} values;

static void on_series_value(void *ctx, const kiln_label_t *l, size_t n)
{
    values *vs = ctx;
    const char *v = kiln_labels_get(l, n, vs->label);
    if (v == NULL || *v == '\0' || (vs->n > 0 && strcmp(vs->v[vs->n - 1], v) == 0))
        return;
    KILN_GROW(vs->v, vs->cap, vs->n + 1);
    vs->v[vs->n++] = kiln_arena_strndup(vs->a, v, strlen(v));
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* label=__name__ lists the profile type ids (Pyroscope's ProfileTypes);
 * any other label lists that label's values over every series (upstream
 * sends an empty LabelValues request there and gets nothing back). */
static void on_label_values(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    rq r;
    if (!method_allowed(req, resp))
        return;
    kiln_status st = rq_init(&r, ud, req, resp);
    const char *label = rq_param(&r, "label");
    if (st == KILN_OK && label == NULL)
        st = kiln_err_set(&r.err, KILN_INVALID_ARGUMENT, "label parameter is required");
    if (st != KILN_OK) {
        rq_fail(&r, st);
        return;
    }
    values vs = {req->arena, strcmp(label, "__name__") == 0 ? KILN_LABEL_PROFILE_TYPE : label, NULL,
                 0, 0};
    st = kiln_querier__series(r.q, r.tenant, NULL, 0, 0, on_series_value, &vs, &r.err);
    if (st != KILN_OK) {
        free(vs.v);
        rq_fail(&r, st);
        return;
    }
    if (vs.n > 0)
        qsort(vs.v, vs.n, sizeof(*vs.v), cmp_strp);
    kiln_buf_putc(&resp->body, '[');
    for (size_t i = 0, out = 0; i < vs.n; i++) {
        if (vs.v[i] == NULL || (i > 0 && strcmp(vs.v[i], vs.v[i - 1]) == 0))
            continue;
        if (out++ > 0)
            kiln_buf_putc(&resp->body, ',');
        kiln_json_string(&resp->body, vs.v[i], strlen(vs.v[i]));
    }
    kiln_buf_puts(&resp->body, "]\n");
    free(vs.v);
    resp->status = 200;
    resp->content_type = "application/json";
}

void kiln_querier_register_http(kiln_querier_t *q, kiln_http_server_t *http)
{
    kiln_http_server_query_route(http, "/pyroscope/render", on_render, q);
    kiln_http_server_query_route(http, "/pyroscope/render-diff", on_render_diff, q);
    kiln_http_server_query_route(http, "/pyroscope/label-values", on_label_values, q);
}
