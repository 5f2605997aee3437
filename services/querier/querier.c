/* SPDX-License-Identifier: Apache-2.0
 * querier: metadata queries over series, and flame graphs. */
#include "querier_int.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "querier/v1/querier.pb-c.h"
#include "idset.h"
#include "selector.h"
#include "tree.h"
#include "types/v1/types.pb-c.h"
#include "xmalloc.h"

#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576
#define DOT_MAX_NODES_DEFAULT 100 /* as /pyroscope/render?format=dot */


kiln_querier_t *kiln_querier_create(kiln_reader_t *rd, kiln_overrides_t *limits)
{
    kiln_querier_t *q = kiln_xcalloc(1, sizeof(*q));
    q->rd = rd;
    q->limits = limits;
    return q;
}

void kiln_querier_destroy(kiln_querier_t *q)
{
    free(q);
}

/* ---- a growable list of arena strings, sorted and de-duplicated on demand -- */

typedef struct strlist {
    kiln_arena_t *a;
    char **v;
    size_t n, cap;
} strlist;

static void strlist_add(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        char **nv = kiln_arena_alloc(l->a, ncap * sizeof(*nv));
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = kiln_arena_strndup(l->a, s, strlen(s));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort_unique(strlist *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    size_t m = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[m - 1]) != 0)
            l->v[m++] = l->v[i];
    }
    l->n = m;
}

/* ---- reads ------------------------------------------------------------------ */

kiln_status kiln_querier__read_merge(kiln_querier_t *q, kiln_rpc_ctx *ctx,
                                     const kiln_selector_t *sel, int64_t start, int64_t end,
                                     const kiln_head_filter *f, kiln_tree_t **out)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_status st = kiln_reader_merge(q->rd, ctx->tenant, sel, start, end, f, t, ctx->err);
    if (st != KILN_OK) {
        kiln_tree_destroy(t);
        return st;
    }
    *out = t;
    return KILN_OK;
}

kiln_status kiln_querier__profiles(kiln_querier_t *q, kiln_rpc_ctx *ctx, const kiln_selector_t *sel,
                                   int64_t start, int64_t end, kiln_head_profile_fn fn, void *arg)
{
    return kiln_reader_profiles(q->rd, ctx->tenant, sel, start, end, fn, arg, ctx->err);
}

kiln_status kiln_querier__series(kiln_querier_t *q, const char *tenants,
                                 const kiln_selector_t *sel, int64_t start, int64_t end,
                                 kiln_head_series_fn fn, void *arg, kiln_err *err)
{
    return kiln_reader_series(q->rd, tenants, sel, start, end, fn, arg, err);
}

/* ---- series visiting with a list of matchers (OR) ------------------------- */

static kiln_status visit_series(kiln_querier_t *q, kiln_rpc_ctx *ctx, char **matchers, size_t n,
                                int64_t start, int64_t end, kiln_head_series_fn fn, void *arg)
{
    if (n == 0)
        return kiln_querier__series(q, ctx->tenant, NULL, start, end, fn, arg, ctx->err);
    for (size_t i = 0; i < n; i++) {
        kiln_selector_t *sel;
        kiln_status st = kiln_selector_parse(matchers[i], strlen(matchers[i]), &sel, ctx->err);
        if (st == KILN_OK) {
            st = kiln_querier__series(q, ctx->tenant, sel, start, end, fn, arg, ctx->err);
            kiln_selector_destroy(sel);
        }
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

typedef struct names_arg {
    strlist list;
    const char *label; /* NULL: collect names; else values of this label */
    bool utf8;         /* keep non-legacy (e.g. dotted) names */
} names_arg;

static void collect_names(void *ctx, const kiln_label_t *l, size_t n)
{
    names_arg *a = ctx;
    for (size_t i = 0; i < n; i++) {
        /* The legacy-name filter is LabelNames' alone; only LabelValues and
         * ProfileTypes name a label to compare with (label == NULL otherwise). */
        if (a->label == NULL) {
            if (a->utf8 || kiln_label_name_is_legacy(l[i].name))
                strlist_add(&a->list, l[i].name);
        } else if (strcmp(l[i].name, a->label) == 0 && *l[i].value != '\0') {
            strlist_add(&a->list, l[i].value);
        }
    }
}

static kiln_status h_label_names(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                 ProtobufCMessage **resp)
{
    const Types__V1__LabelNamesRequest *req = (const Types__V1__LabelNamesRequest *)msg;
    names_arg a = {{ctx->arena, NULL, 0, 0}, NULL, ctx->utf8_names};
    kiln_status st = visit_series(svc, ctx, req->matchers, req->n_matchers, req->start, req->end,
                                  collect_names, &a);
    if (st != KILN_OK)
        return st;
    strlist_sort_unique(&a.list);
    Types__V1__LabelNamesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    types__v1__label_names_response__init(r);
    r->names = a.list.v;
    r->n_names = a.list.n;
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_label_values(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                  ProtobufCMessage **resp)
{
    const Types__V1__LabelValuesRequest *req = (const Types__V1__LabelValuesRequest *)msg;
    if (*req->name == '\0')
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "label name is required");
    names_arg a = {{ctx->arena, NULL, 0, 0}, req->name, true};
    kiln_status st = visit_series(svc, ctx, req->matchers, req->n_matchers, req->start, req->end,
                                  collect_names, &a);
    if (st != KILN_OK)
        return st;
    strlist_sort_unique(&a.list);
    Types__V1__LabelValuesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    types__v1__label_values_response__init(r);
    r->names = a.list.v;
    r->n_names = a.list.n;
    *resp = &r->base;
    return KILN_OK;
}

static Types__V1__ProfileType *profile_type(kiln_arena_t *a, const char *id)
{
    Types__V1__ProfileType *t = kiln_arena_alloc(a, sizeof(*t));
    types__v1__profile_type__init(t);
    t->id = (char *)id;
    char **fields[] = {&t->name, &t->sample_type, &t->sample_unit, &t->period_type,
                       &t->period_unit};
    const char *p = id;
    for (size_t i = 0; i < 5; i++) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        *fields[i] = kiln_arena_strndup(a, p, len);
        p += len + (colon != NULL);
    }
    return t;
}

static kiln_status h_profile_types(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                   ProtobufCMessage **resp)
{
    const Querier__V1__ProfileTypesRequest *req = (const Querier__V1__ProfileTypesRequest *)msg;
    names_arg a = {{ctx->arena, NULL, 0, 0}, KILN_LABEL_PROFILE_TYPE, true};
    kiln_status st = visit_series(svc, ctx, NULL, 0, req->start, req->end, collect_names, &a);
    if (st != KILN_OK)
        return st;
    strlist_sort_unique(&a.list);
    Querier__V1__ProfileTypesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__profile_types_response__init(r);
    r->profile_types = kiln_arena_alloc(ctx->arena, (a.list.n + 1) * sizeof(*r->profile_types));
    for (size_t i = 0; i < a.list.n; i++)
        r->profile_types[i] = profile_type(ctx->arena, a.list.v[i]);
    r->n_profile_types = a.list.n;
    *resp = &r->base;
    return KILN_OK;
}

typedef struct series_arg {
    kiln_arena_t *a;
    char **names; /* projection; n_names 0 = all labels */
    size_t n_names;
    strlist keys;  /* "name\xffvalue\xff..." per projected set, for de-duplication */
    bool utf8;     /* keep non-legacy (e.g. dotted) names */
} series_arg;

static bool projected(const series_arg *s, const char *name)
{
    if (s->n_names == 0)
        return true;
    for (size_t i = 0; i < s->n_names; i++) {
        if (strcmp(s->names[i], name) == 0)
            return true;
    }
    return false;
}

static void collect_series(void *ctx, const kiln_label_t *l, size_t n)
{
    series_arg *s = ctx;
    kiln_buf key;
    kiln_buf_init(&key, 0);
    for (size_t i = 0; i < n; i++) {
        if (!projected(s, l[i].name) || !(s->utf8 || kiln_label_name_is_legacy(l[i].name)))
            continue;
        kiln_buf_printf(&key, "%s\xff%s\xff", l[i].name, l[i].value);
    }
    if (key.len != 0)
        strlist_add(&s->keys, key.ptr);
    kiln_buf_free(&key);
}

static Types__V1__Labels *labels_from_key(kiln_arena_t *a, const char *key)
{
    size_t n = 0;
    for (const char *p = key; *p != '\0'; p++)
        n += *p == '\xff';
    Types__V1__Labels *set = kiln_arena_alloc(a, sizeof(*set));
    types__v1__labels__init(set);
    set->labels = kiln_arena_alloc(a, (n / 2 + 1) * sizeof(*set->labels));
    for (const char *p = key; *p != '\0';) {
        const char *sep1 = strchr(p, '\xff'), *sep2 = strchr(sep1 + 1, '\xff');
        Types__V1__LabelPair *lp = kiln_arena_alloc(a, sizeof(*lp));
        types__v1__label_pair__init(lp);
        lp->name = kiln_arena_strndup(a, p, (size_t)(sep1 - p));
        lp->value = kiln_arena_strndup(a, sep1 + 1, (size_t)(sep2 - sep1 - 1));
        set->labels[set->n_labels++] = lp;
        p = sep2 + 1;
    }
    return set;
}

static kiln_status h_series(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                            ProtobufCMessage **resp)
{
    const Querier__V1__SeriesRequest *req = (const Querier__V1__SeriesRequest *)msg;
    series_arg s = {ctx->arena, req->label_names, req->n_label_names, {ctx->arena, NULL, 0, 0},
                    ctx->utf8_names};
    kiln_status st = visit_series(svc, ctx, req->matchers, req->n_matchers, req->start, req->end,
                                  collect_series, &s);
    if (st != KILN_OK)
        return st;
    strlist_sort_unique(&s.keys);
    Querier__V1__SeriesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__series_response__init(r);
    r->labels_set = kiln_arena_alloc(ctx->arena, (s.keys.n + 1) * sizeof(*r->labels_set));
    for (size_t i = 0; i < s.keys.n; i++)
        r->labels_set[i] = labels_from_key(ctx->arena, s.keys.v[i]);
    r->n_labels_set = s.keys.n;
    *resp = &r->base;
    return KILN_OK;
}

kiln_status kiln_querier__check_range(int64_t start, int64_t end, kiln_err *err)
{
    if (start == 0 || end == 0 || start > end)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "start and end are required, with start <= end (ms since epoch)");
    /* Callers divide end - start into steps: it must be an int64. */
    int64_t len;
    if (__builtin_sub_overflow(end, start, &len))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "the range from start %lld to end %lld ms is too long",
                            (long long)start, (long long)end);
    return KILN_OK;
}

int64_t kiln_querier__step_ms(double step_s)
{
    double ms = step_s * 1000;
    if (!(ms >= 1))
        return 1;
    if (ms >= 9.2e18)
        return INT64_MAX;
    return llround(ms);
}

kiln_status kiln_querier__limit_range(const kiln_querier_t *q, kiln_rpc_ctx *ctx, int64_t *start,
                                      int64_t end)
{
    kiln_status st = kiln_querier__check_range(*start, end, ctx->err);
    if (st != KILN_OK || q->limits == NULL)
        return st;
    char first[KILN_TENANT_MAX + 1];
    size_t n = strcspn(ctx->tenant, "|");
    snprintf(first, sizeof(first), "%.*s", (int)n, ctx->tenant);
    const kiln_limits *l = kiln_overrides_get(q->limits, first);
    if (l->max_query_lookback_ns > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t oldest = (int64_t)ts.tv_sec * 1000 - l->max_query_lookback_ns / 1000000;
        if (*start < oldest)
            *start = oldest;
        if (*start > end)
            *start = end;
    }
    if (l->max_query_length_ns > 0 && (end - *start) > l->max_query_length_ns / 1000000)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "the query time range exceeds the limit (max_query_length, %llds): "
                            "query %llds", (long long)(l->max_query_length_ns / 1000000000),
                            (long long)((end - *start) / 1000));
    return KILN_OK;
}

kiln_status kiln_querier__selector(const char *type_id, const char *label_selector,
                                   kiln_rpc_ctx *ctx, kiln_selector_t **out)
{
    if (*type_id == '\0')
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "profile_typeID is required");
    const char *q = *label_selector != '\0' ? label_selector : "{}";
    kiln_status st = kiln_selector_parse(q, strlen(q), out, ctx->err);
    if (st != KILN_OK)
        return st;
    kiln_arena_defer(ctx->arena, (void (*)(void *))kiln_selector_destroy, *out);
    /* Pyroscope tolerates a sixth ":delta" part in the type id. */
    size_t len = strlen(type_id);
    if (len > 6 && strcmp(type_id + len - 6, ":delta") == 0)
        type_id = kiln_arena_strndup(ctx->arena, type_id, len - 6);
    return kiln_selector_add(*out, KILN_LABEL_PROFILE_TYPE, KILN_MATCH_EQ, type_id, ctx->err);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Span ids of a span_selector (hex, 16 digits as OpenTelemetry writes them;
 * shorter ones as some SDKs label samples), sorted, in the arena. */
static kiln_status parse_spans(char **sel, size_t n, kiln_rpc_ctx *ctx, uint64_t **out)
{
    uint64_t *ids = kiln_arena_alloc(ctx->arena, (n + 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        char *end;
        ids[i] = strtoull(sel[i], &end, 16);
        size_t len = strlen(sel[i]);
        if (len == 0 || len > 16 || *end != '\0' || ids[i] == 0 || strspn(sel[i], "0123456789abcdefABCDEF") != len)
            return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                "span_selector \"%.32s\": a span id is up to 16 hex digits", sel[i]);
    }
    qsort(ids, n, sizeof(*ids), cmp_u64);
    *out = ids;
    return KILN_OK;
}

kiln_status kiln_querier__profile_ids(char **sel, size_t n, kiln_rpc_ctx *ctx, uint64_t **out,
                                      size_t *n_out)
{
    size_t n_tenants = 1;
    for (const char *p = ctx->tenant; *p != '\0'; p++)
        n_tenants += *p == '|';
    uint64_t *ids = kiln_arena_alloc(ctx->arena, (n * n_tenants + 1) * sizeof(*ids));
    if (ids == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "profile_id_selector too large");
    size_t k = 0;
    for (const char *t = ctx->tenant;; t++) {
        char tenant[KILN_TENANT_MAX + 1];
        size_t len = strcspn(t, "|");
        snprintf(tenant, sizeof(tenant), "%.*s", (int)len, t);
        for (size_t i = 0; i < n; i++) {
            if (*sel[i] == '\0')
                return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                    "profile_id_selector: an empty profile id");
            ids[k++] = kiln_idset_key(tenant, sel[i]);
        }
        t += len;
        if (*t == '\0')
            break;
    }
    qsort(ids, k, sizeof(*ids), cmp_u64);
    *out = ids;
    *n_out = k;
    return KILN_OK;
}

/* The tree, dot or flame graph answer of SelectMergeStacktraces: false
 * past the arena cap. */
static bool stacktraces_format(Querier__V1__SelectMergeStacktracesResponse *r,
                               const Querier__V1__SelectMergeStacktracesRequest *req,
                               const kiln_tree_t *t, kiln_arena_t *a)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE) {
        kiln_tree_marshal(t, req->max_nodes ? req->max_nodes : MAX_NODES_DEFAULT, &b);
        r->tree.len = b.len;
        r->tree.data = kiln_arena_alloc(a, b.len + 1);
        if (r->tree.data != NULL && b.len != 0)
            memcpy(r->tree.data, b.ptr, b.len);
        kiln_buf_free(&b);
        return r->tree.data != NULL;
    }
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT) {
        const Querier__V1__FlameGraph *fg =
            kiln_tree_flamegraph(t, req->max_nodes ? req->max_nodes : DOT_MAX_NODES_DEFAULT, a);
        if (fg == NULL)
            return false;
        kiln_querier__dot(fg, req->profile_typeid, a, &b);
        r->dot = kiln_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
        kiln_buf_free(&b);
        return r->dot != NULL;
    }
    r->flamegraph = kiln_tree_flamegraph(t, req->max_nodes ? req->max_nodes : MAX_NODES_DEFAULT, a);
    return r->flamegraph != NULL;
}

kiln_status kiln_querier__merge(kiln_querier_t *q, kiln_rpc_ctx *ctx,
                                const Querier__V1__SelectMergeStacktracesRequest *req,
                                kiln_tree_t **out)
{
    int64_t start = req->start;
    kiln_status st = kiln_querier__limit_range(q, ctx, &start, req->end);
    if (st != KILN_OK)
        return st;
    if (req->n_trace_id_selector != 0)
        return kiln_err_set(ctx->err, KILN_UNIMPLEMENTED,
                            "trace_id_selector is not supported: trace ids are not kept at ingest");
    kiln_selector_t *sel;
    st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    uint64_t *spans = NULL, *ids = NULL;
    size_t n_ids = 0;
    if (st == KILN_OK && req->n_span_selector != 0)
        st = parse_spans(req->span_selector, req->n_span_selector, ctx, &spans);
    if (st == KILN_OK && req->n_profile_id_selector != 0)
        st = kiln_querier__profile_ids(req->profile_id_selector, req->n_profile_id_selector, ctx,
                                       &ids, &n_ids);
    if (st != KILN_OK)
        return st;
    kiln_head_filter only = {NULL, 0, spans, req->n_span_selector, ids, n_ids};
    kiln_tree_t *t;
    st = kiln_querier__read_merge(q, ctx, sel, start, req->end, spans || ids ? &only : NULL, &t);
    if (st != KILN_OK)
        return st;
    if (req->stack_trace_selector != NULL && req->stack_trace_selector->n_call_site != 0) {
        kiln_tree_t *f = kiln_querier__focus(t, req->stack_trace_selector, ctx->arena);
        kiln_tree_destroy(t);
        if (f == NULL)
            return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "result too large");
        t = f;
    }
    *out = t;
    return KILN_OK;
}

static kiln_status h_select_merge_stacktraces(void *svc, kiln_rpc_ctx *ctx,
                                              const ProtobufCMessage *msg, ProtobufCMessage **resp)
{
    const Querier__V1__SelectMergeStacktracesRequest *req =
        (const Querier__V1__SelectMergeStacktracesRequest *)msg;
    if (req->max_nodes < 0 || req->max_nodes > MAX_NODES_LIMIT)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "max_nodes %lld out of range: must be 0..%d", (long long)req->max_nodes,
                            MAX_NODES_LIMIT);
    bool pprof = req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF;
    if ((int)req->format < 0 || (int)req->format > QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "unknown profile format %d: use FLAMEGRAPH, TREE, DOT or PPROF",
                            (int)req->format);
    kiln_tree_t *t;
    kiln_status st = kiln_querier__merge(svc, ctx, req, &t);
    if (st != KILN_OK)
        return st;
    Querier__V1__SelectMergeStacktracesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__select_merge_stacktraces_response__init(r);
    if (pprof) {
        Querier__V1__PprofResponse *pr = kiln_arena_alloc(ctx->arena, sizeof(*pr));
        querier__v1__pprof_response__init(pr);
        pr->profile = kiln_querier__pprof(t, req->profile_typeid, req->start, req->end, ctx->arena);
        r->pprof = pr;
    }
    bool ok = pprof ? r->pprof->profile != NULL : stacktraces_format(r, req, t, ctx->arena);
    kiln_tree_destroy(t);
    if (!ok)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "result too large");
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_select_merge_span_profile(void *svc, kiln_rpc_ctx *ctx,
                                               const ProtobufCMessage *msg, ProtobufCMessage **resp)
{
    kiln_querier_t *q = svc;
    const Querier__V1__SelectMergeSpanProfileRequest *req =
        (const Querier__V1__SelectMergeSpanProfileRequest *)msg;
    if (req->max_nodes < 0 || req->max_nodes > MAX_NODES_LIMIT)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "max_nodes out of range: must be 0..%d",
                            MAX_NODES_LIMIT);
    int64_t start = req->start;
    uint64_t *spans;
    kiln_selector_t *sel;
    kiln_status st = kiln_querier__limit_range(q, ctx, &start, req->end);
    if (st == KILN_OK)
        st = parse_spans(req->span_selector, req->n_span_selector, ctx, &spans);
    if (st == KILN_OK)
        st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    if (st != KILN_OK)
        return st;
    kiln_head_filter f = {NULL, 0, spans, req->n_span_selector, NULL, 0};
    kiln_tree_t *t;
    st = kiln_querier__read_merge(q, ctx, sel, start, req->end, &f, &t);
    if (st != KILN_OK)
        return st;
    Querier__V1__SelectMergeSpanProfileResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__select_merge_span_profile_response__init(r);
    /* The same formats as SelectMergeStacktraces, answered in its shape. */
    Querier__V1__SelectMergeStacktracesRequest sreq = QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    sreq.profile_typeid = req->profile_typeid;
    sreq.max_nodes = req->max_nodes;
    sreq.format = req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE
                      ? req->format
                      : QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH;
    Querier__V1__SelectMergeStacktracesResponse sr = QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    bool ok = stacktraces_format(&sr, &sreq, t, ctx->arena);
    kiln_tree_destroy(t);
    if (!ok)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "flame graph too large");
    r->flamegraph = sr.flamegraph;
    r->tree = sr.tree;
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_profile_stats(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                   ProtobufCMessage **resp)
{
    (void)msg;
    kiln_querier_t *q = svc;
    kiln_head_stats_t s;
    kiln_status st = kiln_reader_stats(q->rd, ctx->tenant, &s, ctx->err);
    if (st != KILN_OK)
        return st;
    Types__V1__GetProfileStatsResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    types__v1__get_profile_stats_response__init(r);
    r->data_ingested = s.profiles != 0;
    r->oldest_profile_time = s.min_time_ms;
    r->newest_profile_time = s.max_time_ms;
    *resp = &r->base;
    return KILN_OK;
}

void kiln_querier_register(kiln_querier_t *q, kiln_rpc_registry_t *rpc)
{
#define Q(m) "/querier.v1.QuerierService/" m
    const kiln_rpc_method methods[] = {
        {Q("ProfileTypes"), &querier__v1__profile_types_request__descriptor,
         &querier__v1__profile_types_response__descriptor, h_profile_types, q},
        {Q("LabelNames"), &types__v1__label_names_request__descriptor,
         &types__v1__label_names_response__descriptor, h_label_names, q},
        {Q("LabelValues"), &types__v1__label_values_request__descriptor,
         &types__v1__label_values_response__descriptor, h_label_values, q},
        {Q("Series"), &querier__v1__series_request__descriptor,
         &querier__v1__series_response__descriptor, h_series, q},
        {Q("SelectMergeStacktraces"), &querier__v1__select_merge_stacktraces_request__descriptor,
         &querier__v1__select_merge_stacktraces_response__descriptor, h_select_merge_stacktraces, q},
        {Q("SelectMergeSpanProfile"), &querier__v1__select_merge_span_profile_request__descriptor,
         &querier__v1__select_merge_span_profile_response__descriptor, h_select_merge_span_profile, q},
        {Q("AnalyzeQuery"), &querier__v1__analyze_query_request__descriptor,
         &querier__v1__analyze_query_response__descriptor, kiln_querier__analyze_query, q},
        {Q("SelectHeatmap"), &querier__v1__select_heatmap_request__descriptor,
         &querier__v1__select_heatmap_response__descriptor, kiln_querier__select_heatmap, q},
        {Q("SelectSeries"), &querier__v1__select_series_request__descriptor,
         &querier__v1__select_series_response__descriptor, kiln_querier__select_series, q},
        {Q("SelectMergeProfile"), &querier__v1__select_merge_profile_request__descriptor,
         &google__v1__profile__descriptor, kiln_querier__select_merge_profile, q},
        {Q("Diff"), &querier__v1__diff_request__descriptor,
         &querier__v1__diff_response__descriptor, kiln_querier__diff, q},
        {Q("GetProfileStats"), &types__v1__get_profile_stats_request__descriptor,
         &types__v1__get_profile_stats_response__descriptor, h_profile_stats, q},
    };
#undef Q
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        kiln_rpc_register(rpc, &methods[i]);
}
