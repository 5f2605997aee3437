/* SPDX-License-Identifier: Apache-2.0
 * render: Pyroscope's legacy read HTTP API (pkg/querier/http.go) over the
 * querier: GET /pyroscope/render (flamebearer JSON with a timeline, or
 * Graphviz dot), /pyroscope/render-diff (the "double" flamebearer) and
 * /pyroscope/label-values. Errors are Connect JSON {"code","message"} with
 * the mapped HTTP status, as upstream writes them. Called from HTTP pool
 * threads; no state of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attime.h"
#include "connect.h"
#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "render_int.h"
#include "tree.h"

#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576

/* ---- request plumbing ---- */

/* Reads the tenant (X-Scope-OrgID, several joined by '|' allowed: these
 * are reads) and sets up the call context. */
static kiln_status rq_init(rq *r, void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    memset(r, 0, sizeof(*r));
    r->q = ud;
    r->http = req;
    r->resp = resp;
    r->ctx = (kiln_rpc_ctx){r->tenant, req->arena, &r->err};
    const char *org = kiln_http_header(req, "X-Scope-OrgID");
    return kiln_tenant_parse(org, org ? strlen(org) : 0, true, r->tenant, sizeof(r->tenant),
                             &r->err);
}

static void rq_fail(rq *r, kiln_status st)
{
    if (r->err.msg[0] == '\0')
        kiln_err_set(&r->err, st, "%s", kiln_status_str(st));
    kiln_connect_error(r->resp, st, r->err.msg);
}

static const char *rq_param(const rq *r, const char *name)
{
    const char *v = kiln_http_query(r->http, name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A time parameter in attime formats as ms, or dflt_ns when absent. */
static int64_t param_ms(const rq *r, const char *name, int64_t now, int64_t dflt_ns)
{
    const char *v = rq_param(r, name);
    return (v != NULL ? kiln_attime_parse(v, strlen(v), now) : dflt_ns) / 1000000;
}

/* Go's strconv.Atoi: the whole text a decimal integer, or not a number. */
static bool atoi_go(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
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
    kiln_ingester_series(r->q->ing, r->tenant, s->sel, s->start, s->end, on_series_type, &m);
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
kiln_status kiln_render__selection(rq *r, const char *qf, const char *ff, const char *uf,
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
    int64_t now = now_ns();
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
    const char *p1 = strchr(type_id, ':');
    const char *type = p1 ? p1 + 1 : "";
    size_t tlen = strcspn(type, ":");
    const char *unit = type[tlen] == ':' ? type + tlen + 1 : "";
    char *t = kiln_arena_strndup(a, type, tlen);
    char *u = kiln_arena_strndup(a, unit, strcspn(unit, ":"));
    if (t == NULL || u == NULL)
        t = u = (char *)"";
    unsigned rate = 100;
    const char *units = u;
    if (strcmp(t, "inuse_objects") == 0 || strcmp(t, "alloc_objects") == 0 ||
        strcmp(t, "goroutine") == 0 || strcmp(t, "samples") == 0)
        units = "objects";
    else if (strcmp(t, "cpu") == 0)
        units = "samples", rate = 1000000000u;
    kiln_buf_printf(b, "\"metadata\":{\"format\":\"%s\",\"spyName\":\"\",\"sampleRate\":%u,"
                       "\"units\":", format, rate);
    kiln_json_string(b, units, strlen(units));
    kiln_buf_puts(b, ",\"name\":");
    kiln_json_string(b, t, strlen(t));
    kiln_buf_putc(b, '}');
}

/* "flamebearer":{names, levels, numTicks, maxSelf}: the flame graph's
 * levels as they are (x already delta-encoded, 4 or 7 values a node). */
void kiln_render__flamebearer(kiln_buf *b, char **names, size_t n_names,
                              Querier__V1__Level **levels, size_t n_levels, int64_t total,
                              int64_t max_self)
{
    kiln_buf_puts(b, "\"flamebearer\":{\"names\":[");
    for (size_t i = 0; i < n_names; i++) {
        if (i > 0)
            kiln_buf_putc(b, ',');
        kiln_json_string(b, names[i], strlen(names[i]));
    }
    kiln_buf_puts(b, "],\"levels\":[");
    for (size_t i = 0; i < n_levels; i++) {
        kiln_buf_puts(b, i > 0 ? ",[" : "[");
        for (size_t j = 0; j < levels[i]->n_values; j++)
            kiln_buf_printf(b, j > 0 ? ",%lld" : "%lld", (long long)levels[i]->values[j]);
        kiln_buf_putc(b, ']');
    }
    kiln_buf_printf(b, "],\"numTicks\":%lld,\"maxSelf\":%lld}", (long long)total,
                    (long long)max_self);
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

/* ---- GET /pyroscope/render ---- */

static void render_json(rq *r, const selection *s)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_ingester_merge_tree(r->q->ing, r->tenant, s->sel, s->start, s->end, t);
    Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(
        t, s->max_nodes ? s->max_nodes : MAX_NODES_DEFAULT, r->ctx.arena);
    kiln_tree_destroy(t);
    if (fg == NULL) {
        rq_fail(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "result too large"));
        return;
    }
    const char *agg = kiln_http_query(r->http, "aggregation");
    timeline tl;
    kiln_render__timeline(r, s, rq_param(r, "groupBy"), agg && strcmp(agg, "avg") == 0, &tl);
    kiln_buf *b = &r->resp->body;
    kiln_buf_puts(b, "{\"version\":1,");
    kiln_render__flamebearer(b, fg->names, fg->n_names, fg->levels, fg->n_levels, fg->total,
                             fg->max_self);
    kiln_buf_putc(b, ',');
    json_metadata(b, r->ctx.arena, s->type_id, "single");
    kiln_buf_puts(b, ",\"timeline\":");
    json_timeline(b, &tl, &tl.all);
    kiln_buf_puts(b, ",\"groups\":");
    json_groups(b, &tl);
    kiln_buf_puts(b, ",\"heatmap\":null}\n");
    kiln_render__timeline_free(&tl);
    r->resp->status = 200;
    r->resp->content_type = "application/json";
}

static void on_render(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    rq r;
    selection s;
    kiln_status st = rq_init(&r, ud, req, resp);
    if (st == KILN_OK)
        st = kiln_render__selection(&r, "query", "from", "until", &s);
    if (st != KILN_OK) {
        rq_fail(&r, st);
        return;
    }
    const char *format = kiln_http_query(req, "format");
    if (format != NULL && strcmp(format, "dot") == 0)
        kiln_render__dot(&r, &s);
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
    kiln_render__flamebearer(b, d->names, d->n_names, d->levels, d->n_levels, d->total,
                             d->max_self);
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
    kiln_status st = rq_init(&r, ud, req, resp);
    if (st == KILN_OK)
        st = kiln_render__selection(&r, "leftQuery", "leftFrom", "leftUntil", &ls);
    if (st == KILN_OK)
        st = kiln_render__selection(&r, "rightQuery", "rightFrom", "rightUntil", &rs);
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
    kiln_status st = rq_init(&r, ud, req, resp);
    const char *label = rq_param(&r, "label");
    if (st == KILN_OK && label == NULL)
        st = kiln_err_set(&r.err, KILN_INVALID_ARGUMENT, "label parameter is required");
    if (st != KILN_OK) {
        rq_fail(&r, st);
        return;
    }
    values vs = {req->arena, strcmp(label, "__name__") == 0 ? KILN_LABEL_PROFILE_TYPE : label,
                 NULL, 0, 0};
    kiln_ingester_series(r.q->ing, r.tenant, NULL, 0, 0, on_series_value, &vs);
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
    kiln_http_server_route(http, "/pyroscope/render", on_render, q);
    kiln_http_server_route(http, "/pyroscope/render-diff", on_render_diff, q);
    kiln_http_server_route(http, "/pyroscope/label-values", on_label_values, q);
}
