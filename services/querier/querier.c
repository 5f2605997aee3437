/* SPDX-License-Identifier: Apache-2.0
 * querier: metadata queries over series, and flame graphs. */
#include "querier_int.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "clock.h"
#include "querier/v1/querier.pb-c.h"
#include "hash_index.h"
#include "seen_keys.h"
#include "selector.h"
#include "flamegraph.h"
#include "functions.h"
#include "sandwich.h"
#include "tree.h"
#include "types/v1/types.pb-c.h"
#include "xmalloc.h"

#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576
#define DOT_MAX_NODES_DEFAULT 100 /* as /pyroscope/render?format=dot */

static void free_hash_index(void *x)
{
    kiln_hash_index_fini(x);
    free(x);
}

kiln_querier_t *kiln_querier_create(const kiln_querier_config *cfg)
{
    kiln_querier_t *q = kiln_xcalloc(1, sizeof(*q));
    q->store = cfg->store;
    q->limits = cfg->limits;
    return q;
}

void kiln_querier_destroy(kiln_querier_t *q)
{
    free(q);
}

/* ---- a growable list of arena strings, de-duplicated as they are added --- */

/* A hash index freed with the request arena: the lists below live on a
 * handler's stack, which may return early. */
static kiln_hash_index *arena_hash_index(kiln_arena_t *a)
{
    kiln_hash_index *x = kiln_xcalloc(1, sizeof(*x));
    kiln_arena_defer(a, free_hash_index, x);
    return x;
}

typedef struct strlist {
    kiln_arena_t *a;
    char **v;
    size_t n, cap;
    kiln_hash_index *idx; /* XXH3 of v[i] -> i (NULL until the first add) */
} strlist;

typedef struct str_probe {
    const strlist *l;
    const char *s;
} str_probe;

static bool str_eq(const void *ctx, uint32_t id)
{
    const str_probe *p = ctx;
    return strcmp(p->l->v[id], p->s) == 0;
}

/* Adds a copy of s unless the list has it; returns the listed copy. Every
 * series visited adds its labels here, so finding one by hash keeps a
 * query over n series O(n) whatever the number of distinct strings (and
 * the list and its sort hold only the distinct ones). */
static const char *strlist_add(strlist *l, const char *s)
{
    size_t len = strlen(s);
    uint64_t h = XXH3_64bits(s, len);
    str_probe probe = {l, s};
    if (l->idx == NULL)
        l->idx = arena_hash_index(l->a);
    uint32_t id = kiln_hash_index_find(l->idx, h, str_eq, &probe);
    if (id != KILN_HASH_INDEX_NONE)
        return l->v[id];
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        char **nv = kiln_arena_alloc(l->a, ncap * sizeof(*nv));
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = ncap;
    }
    kiln_hash_index_insert(l->idx, h, (uint32_t)l->n);
    l->v[l->n] = kiln_arena_strndup(l->a, s, len);
    return l->v[l->n++];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the list (its strings are distinct already); no add after this. */
static void strlist_sort_unique(strlist *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}

/* ---- reads ------------------------------------------------------------------ */

kiln_status kiln_querier__read_merge(kiln_querier_t *q, kiln_rpc_ctx *ctx,
                                     const kiln_read_filter *f, kiln_tree_t **out)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_visitor v = {.tree = t};
    kiln_status st = kiln_store_read(&q->store, ctx->tenant, f, &v, ctx->err);
    if (st != KILN_OK) {
        kiln_tree_destroy(t);
        return st;
    }
    *out = t;
    return KILN_OK;
}

kiln_status kiln_querier__profiles(kiln_querier_t *q, kiln_rpc_ctx *ctx, const kiln_selector_t *sel,
                                   int64_t start, int64_t end, kiln_querier__profile_fn fn,
                                   void *arg)
{
    kiln_read_filter f = {.sel = sel, .start_ms = start, .end_ms = end};
    kiln_read_visitor v = {.profile = fn, .ctx = arg};
    return kiln_store_read(&q->store, ctx->tenant, &f, &v, ctx->err);
}

kiln_status kiln_querier__spans(kiln_querier_t *q, kiln_rpc_ctx *ctx, const kiln_selector_t *sel,
                                int64_t start, int64_t end, kiln_querier__span_fn fn, void *arg)
{
    kiln_read_filter f = {.sel = sel, .start_ms = start, .end_ms = end};
    kiln_read_visitor v = {.span = fn, .ctx = arg};
    return kiln_store_read(&q->store, ctx->tenant, &f, &v, ctx->err);
}

kiln_status kiln_querier__series(kiln_querier_t *q, const char *tenants, const kiln_selector_t *sel,
                                 int64_t start, int64_t end, kiln_querier__series_fn fn, void *arg,
                                 kiln_err *err)
{
    kiln_read_filter f = {.sel = sel, .start_ms = start, .end_ms = end};
    kiln_read_visitor v = {.series = fn, .ctx = arg};
    return kiln_store_read(&q->store, tenants, &f, &v, err);
}

/* ---- series visiting with a list of matchers (OR) ------------------------- */

static kiln_status visit_series(kiln_querier_t *q, kiln_rpc_ctx *ctx, char **matchers, size_t n,
                                int64_t start, int64_t end, kiln_querier__series_fn fn, void *arg)
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
    names_arg a = {{ctx->arena, NULL, 0, 0, NULL}, NULL, ctx->utf8_names};
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
    names_arg a = {{ctx->arena, NULL, 0, 0, NULL}, req->name, true};
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
    names_arg a = {{ctx->arena, NULL, 0, 0, NULL}, KILN_LABEL_PROFILE_TYPE, true};
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

/* Series: every distinct projected label set. Strings, pairs and sets are
 * interned as the series are visited (a set is its array of pair
 * pointers, so equal sets are equal arrays), so n series cost O(n) lookups
 * and the answer holds each string and pair once; the sets are then sorted
 * by their pairs as Pyroscope compares labels (name, then value, then the
 * shorter set first). */
typedef struct series_arg {
    kiln_arena_t *a;
    char **names; /* projection, sorted; n_names 0 = all labels */
    size_t n_names;
    strlist strs; /* label names and values */
    Types__V1__LabelPair **pairs;
    size_t n_pairs, cap_pairs;
    kiln_hash_index *pair_idx;
    Types__V1__Labels **sets;
    size_t n_sets, cap_sets;
    kiln_hash_index *set_idx;
    Types__V1__LabelPair **scratch; /* the set being looked up */
    size_t cap_scratch, n_prev;     /* n_prev: scratch still holds the last set */
    bool utf8;                      /* keep non-legacy (e.g. dotted) names */
} series_arg;

static bool projected(const series_arg *s, const char *name)
{
    return s->n_names == 0 ||
           bsearch(&name, s->names, s->n_names, sizeof(*s->names), cmp_str) != NULL;
}

/* Grows an arena array of pointers to hold need entries; false past the cap. */
static bool grow_ptrs(kiln_arena_t *a, void *arr, size_t *cap, size_t need)
{
    void ***v = arr;
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void **nv = kiln_arena_grow(a, *v, *cap * sizeof(void *), ncap * sizeof(void *));
    if (nv == NULL)
        return false;
    *v = nv;
    *cap = ncap;
    return true;
}

typedef struct pair_probe {
    const series_arg *s;
    const char *name, *value; /* interned: compared by address */
} pair_probe;

static bool pair_eq(const void *ctx, uint32_t id)
{
    const pair_probe *p = ctx;
    const Types__V1__LabelPair *lp = p->s->pairs[id];
    return lp->name == p->name && lp->value == p->value;
}

static Types__V1__LabelPair *intern_pair(series_arg *s, const kiln_label_t *l)
{
    pair_probe k = {s, strlist_add(&s->strs, l->name), strlist_add(&s->strs, l->value)};
    const char *key[2] = {k.name, k.value};
    uint64_t h = XXH3_64bits(key, sizeof(key));
    uint32_t id = kiln_hash_index_find(s->pair_idx, h, pair_eq, &k);
    if (id != KILN_HASH_INDEX_NONE)
        return s->pairs[id];
    Types__V1__LabelPair *lp = kiln_arena_alloc(s->a, sizeof(*lp));
    if (lp == NULL || !grow_ptrs(s->a, &s->pairs, &s->cap_pairs, s->n_pairs + 1))
        return NULL;
    types__v1__label_pair__init(lp);
    lp->name = (char *)k.name;
    lp->value = (char *)k.value;
    kiln_hash_index_insert(s->pair_idx, h, (uint32_t)s->n_pairs);
    s->pairs[s->n_pairs++] = lp;
    return lp;
}

typedef struct set_probe {
    const series_arg *s;
    size_t n;
} set_probe;

static bool set_eq(const void *ctx, uint32_t id)
{
    const set_probe *p = ctx;
    const Types__V1__Labels *set = p->s->sets[id];
    return set->n_labels == p->n &&
           memcmp(set->labels, p->s->scratch, p->n * sizeof(*set->labels)) == 0;
}

static void collect_series(void *ctx, const kiln_label_t *l, size_t n)
{
    series_arg *s = ctx;
    if (!grow_ptrs(s->a, &s->scratch, &s->cap_scratch, n))
        return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!projected(s, l[i].name) || !(s->utf8 || kiln_label_name_is_legacy(l[i].name)))
            continue;
        /* Series come in label order, and neighbours share most pairs:
         * the last set's pair at this place, when equal, is this one. */
        Types__V1__LabelPair *prev = m < s->n_prev ? s->scratch[m] : NULL;
        if (prev != NULL && strcmp(prev->name, l[i].name) == 0 &&
            strcmp(prev->value, l[i].value) == 0)
            m++;
        else if ((s->scratch[m++] = intern_pair(s, &l[i])) == NULL)
            m = 0, i = n; /* past the arena cap: nothing more is kept */
    }
    s->n_prev = m;
    if (m == 0)
        return;
    set_probe k = {s, m};
    uint64_t h = XXH3_64bits(s->scratch, m * sizeof(*s->scratch));
    if (kiln_hash_index_find(s->set_idx, h, set_eq, &k) != KILN_HASH_INDEX_NONE)
        return;
    Types__V1__Labels *set = kiln_arena_alloc(s->a, sizeof(*set));
    Types__V1__LabelPair **pairs = kiln_arena_alloc(s->a, m * sizeof(*pairs));
    if (set == NULL || pairs == NULL || !grow_ptrs(s->a, &s->sets, &s->cap_sets, s->n_sets + 1))
        return;
    types__v1__labels__init(set);
    memcpy(pairs, s->scratch, m * sizeof(*pairs));
    set->labels = pairs;
    set->n_labels = m;
    kiln_hash_index_insert(s->set_idx, h, (uint32_t)s->n_sets);
    s->sets[s->n_sets++] = set;
}

/* Interned strings: equal addresses are equal strings. */
static int cmp_interned(const char *a, const char *b)
{
    return a == b ? 0 : strcmp(a, b);
}

static int cmp_set(const void *x, const void *y)
{
    const Types__V1__Labels *a = *(Types__V1__Labels *const *)x;
    const Types__V1__Labels *b = *(Types__V1__Labels *const *)y;
    for (size_t i = 0; i < a->n_labels && i < b->n_labels; i++) {
        const Types__V1__LabelPair *p = a->labels[i], *q = b->labels[i];
        if (p == q)
            continue;
        int c = cmp_interned(p->name, q->name);
        if (c == 0)
            c = cmp_interned(p->value, q->value);
        if (c != 0)
            return c;
    }
    return (a->n_labels > b->n_labels) - (a->n_labels < b->n_labels);
}

static kiln_status h_series(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                            ProtobufCMessage **resp)
{
    const Querier__V1__SeriesRequest *req = (const Querier__V1__SeriesRequest *)msg;
    series_arg s = {.a = ctx->arena, .n_names = req->n_label_names, .utf8 = ctx->utf8_names};
    s.strs.a = ctx->arena;
    s.pair_idx = arena_hash_index(ctx->arena);
    s.set_idx = arena_hash_index(ctx->arena);
    if (s.n_names != 0) {
        s.names = kiln_arena_alloc(ctx->arena, s.n_names * sizeof(*s.names));
        if (s.names == NULL)
            return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "too many label_names");
        memcpy(s.names, req->label_names, s.n_names * sizeof(*s.names));
        qsort(s.names, s.n_names, sizeof(*s.names), cmp_str);
    }
    kiln_status st = visit_series(svc, ctx, req->matchers, req->n_matchers, req->start, req->end,
                                  collect_series, &s);
    if (st != KILN_OK)
        return st;
    if (s.n_sets > 1)
        qsort(s.sets, s.n_sets, sizeof(*s.sets), cmp_set);
    Querier__V1__SeriesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__series_response__init(r);
    r->labels_set = s.sets;
    r->n_labels_set = s.n_sets;
    *resp = &r->base;
    return KILN_OK;
}

kiln_status kiln_querier__check_range(int64_t start, int64_t end, kiln_err *err)
{
    if (start == 0 || end == 0 || start > end)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "start and end are required, with start <= end (ms since epoch)");
    return KILN_OK; /* end - start may pass INT64_MAX: steps count it unsigned */
}

kiln_status kiln_querier__limit_range(const kiln_querier_t *q, kiln_rpc_ctx *ctx, int64_t *start,
                                      int64_t end)
{
    kiln_status st = kiln_querier__check_range(*start, end, ctx->err);
    if (st != KILN_OK || q->limits == NULL)
        return st;
    char first[KILN_TENANT_MAX + 1] = "";
    const char *tenants = ctx->tenant;
    kiln_tenants_next(&tenants, first);
    const kiln_limits *l = kiln_overrides_get(q->limits, first);
    if (l->max_query_lookback_ns > 0) {
        int64_t oldest = kiln_wall_ms() - l->max_query_lookback_ns / 1000000;
        if (*start < oldest)
            *start = oldest;
        if (*start > end)
            *start = end;
    }
    uint64_t len_ms = (uint64_t)end - (uint64_t)*start; /* start <= end: any int64 range */
    if (l->max_query_length_ns > 0 && len_ms > (uint64_t)(l->max_query_length_ns / 1000000))
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "the query time range exceeds the limit (max_query_length, %llds): "
                            "query %llus",
                            (long long)(l->max_query_length_ns / 1000000000),
                            (unsigned long long)(len_ms / 1000));
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
        if (len == 0 || len > 16 || *end != '\0' || ids[i] == 0 ||
            strspn(sel[i], "0123456789abcdefABCDEF") != len)
            return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                "span_selector \"%.32s\": a span id is up to 16 hex digits",
                                sel[i]);
    }
    qsort(ids, n, sizeof(*ids), cmp_u64);
    *out = ids;
    return KILN_OK;
}

static int cmp_trace(const void *a, const void *b)
{
    return kiln_trace_id_cmp(a, b);
}

/* 16 hex digits as a number; false unless the 16 are all hex. */
static bool hex16(const char *s, uint64_t *out)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return true;
}

kiln_status kiln_querier__trace_ids(char **sel, size_t n, kiln_rpc_ctx *ctx, kiln_trace_id **out)
{
    *out = NULL;
    if (n == 0)
        return KILN_OK;
    kiln_trace_id *ids = kiln_arena_alloc(ctx->arena, (n + 1) * sizeof(*ids));
    if (ids == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "trace_id_selector too large");
    for (size_t i = 0; i < n; i++) {
        if (strlen(sel[i]) != 32 || !hex16(sel[i], &ids[i].hi) || !hex16(sel[i] + 16, &ids[i].lo))
            return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                "trace_id_selector \"%.40s\": a trace id is 32 hex digits", sel[i]);
    }
    qsort(ids, n, sizeof(*ids), cmp_trace);
    *out = ids;
    return KILN_OK;
}

char *kiln_querier__span_hex(uint64_t span, kiln_arena_t *a)
{
    return kiln_arena_printf(a, "%016llx", (unsigned long long)span);
}

char *kiln_querier__trace_hex(kiln_trace_id t, kiln_arena_t *a)
{
    return kiln_arena_printf(a, "%016llx%016llx", (unsigned long long)t.hi,
                             (unsigned long long)t.lo);
}

/* The stored profile id written as exactly 16 hex digits (as exemplars
 * write it), else 0. */
static uint64_t stored_id(const char *s)
{
    if (strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16)
        return 0;
    return strtoull(s, NULL, 16);
}

kiln_status kiln_querier__profile_ids(char **sel, size_t n, kiln_rpc_ctx *ctx, uint64_t **out,
                                      size_t *n_out)
{
    size_t n_tenants = kiln_tenants_count(ctx->tenant);
    uint64_t *ids = kiln_arena_alloc(ctx->arena, (n * n_tenants + n + 1) * sizeof(*ids));
    if (ids == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "profile_id_selector too large");
    size_t k = 0;
    char tenant[KILN_TENANT_MAX + 1];
    for (const char *t = ctx->tenant; kiln_tenants_next(&t, tenant);) {
        for (size_t i = 0; i < n; i++) {
            if (*sel[i] == '\0')
                return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                    "profile_id_selector: an empty profile id");
            ids[k++] = kiln_profile_id_key(tenant, sel[i]);
        }
    }
    /* An exemplar names a profile by its stored id (16 hex digits): take
     * that form as the id itself too; a client id that hashes to another
     * profile's stored id by chance is a 2^-64 event. */
    for (size_t i = 0; i < n; i++) {
        uint64_t id = stored_id(sel[i]);
        if (id != 0)
            ids[k++] = id;
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
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_SANDWICH) {
        /* Each half gets the whole node budget (a wide callee side must not
         * starve the callers), as Drilldown's client expects. */
        r->sandwich = kiln_tree_sandwich(t, req->sandwich_function,
                                         req->max_nodes ? req->max_nodes : MAX_NODES_DEFAULT, a);
        return r->sandwich != NULL;
    }
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FUNCTIONS) {
        /* Drilldown's function table sends its row limit as max_nodes. */
        int64_t limit = req->max_functions != 0 ? req->max_functions : req->max_nodes;
        r->functions = kiln_tree_functions(t, limit, a);
        return r->functions != NULL;
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
    kiln_selector_t *sel;
    st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    uint64_t *spans = NULL, *ids = NULL;
    kiln_trace_id *traces = NULL;
    size_t n_ids = 0;
    if (st == KILN_OK && req->n_span_selector != 0)
        st = parse_spans(req->span_selector, req->n_span_selector, ctx, &spans);
    if (st == KILN_OK)
        st =
            kiln_querier__trace_ids(req->trace_id_selector, req->n_trace_id_selector, ctx, &traces);
    if (st == KILN_OK && req->n_profile_id_selector != 0)
        st = kiln_querier__profile_ids(req->profile_id_selector, req->n_profile_id_selector, ctx,
                                       &ids, &n_ids);
    if (st != KILN_OK)
        return st;
    kiln_read_filter only = {.sel = sel,
                             .start_ms = start,
                             .end_ms = req->end,
                             .ids = ids,
                             .n_ids = n_ids,
                             .spans = spans,
                             .n_spans = spans != NULL ? req->n_span_selector : 0,
                             .traces = traces,
                             .n_traces = traces != NULL ? req->n_trace_id_selector : 0};
    kiln_tree_t *t;
    st = kiln_querier__read_merge(q, ctx, &only, &t);
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
    if ((int)req->format < 0 ||
        (int)req->format > QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_SANDWICH)
        return kiln_err_set(
            ctx->err, KILN_INVALID_ARGUMENT,
            "unknown profile format %d: use FLAMEGRAPH, TREE, DOT, PPROF, FUNCTIONS or SANDWICH",
            (int)req->format);
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_SANDWICH &&
        *req->sandwich_function == '\0')
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "sandwich_function is required for the sandwich format");
    if (req->max_functions < -1)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "max_functions %lld out of range: must be -1 (all), 0 or more",
                            (long long)req->max_functions);
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
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "max_nodes out of range: must be 0..%d", MAX_NODES_LIMIT);
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
    kiln_read_filter f = {.sel = sel,
                          .start_ms = start,
                          .end_ms = req->end,
                          .spans = spans,
                          .n_spans = req->n_span_selector};
    kiln_tree_t *t;
    st = kiln_querier__read_merge(q, ctx, &f, &t);
    if (st != KILN_OK)
        return st;
    Querier__V1__SelectMergeSpanProfileResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__select_merge_span_profile_response__init(r);
    /* The same formats as SelectMergeStacktraces, answered in its shape. */
    Querier__V1__SelectMergeStacktracesRequest sreq =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    sreq.profile_typeid = req->profile_typeid;
    sreq.max_nodes = req->max_nodes;
    sreq.format = req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE
                      ? req->format
                      : QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH;
    Querier__V1__SelectMergeStacktracesResponse sr =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
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
    kiln_status st = kiln_store_stats(&q->store, ctx->tenant, &s, ctx->err);
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
         &querier__v1__profile_types_response__descriptor, h_profile_types, q, KILN_RPC_PUBLIC,
         NULL},
        {Q("LabelNames"), &types__v1__label_names_request__descriptor,
         &types__v1__label_names_response__descriptor, h_label_names, q, KILN_RPC_PUBLIC, NULL},
        {Q("LabelValues"), &types__v1__label_values_request__descriptor,
         &types__v1__label_values_response__descriptor, h_label_values, q, KILN_RPC_PUBLIC, NULL},
        {Q("Series"), &querier__v1__series_request__descriptor,
         &querier__v1__series_response__descriptor, h_series, q, KILN_RPC_PUBLIC, NULL},
        {Q("SelectMergeStacktraces"), &querier__v1__select_merge_stacktraces_request__descriptor,
         &querier__v1__select_merge_stacktraces_response__descriptor, h_select_merge_stacktraces, q,
         KILN_RPC_PUBLIC, NULL},
        {Q("SelectMergeSpanProfile"), &querier__v1__select_merge_span_profile_request__descriptor,
         &querier__v1__select_merge_span_profile_response__descriptor, h_select_merge_span_profile,
         q, KILN_RPC_PUBLIC, NULL},
        {Q("AnalyzeQuery"), &querier__v1__analyze_query_request__descriptor,
         &querier__v1__analyze_query_response__descriptor, kiln_querier__analyze_query, q,
         KILN_RPC_PUBLIC, NULL},
        {Q("SelectHeatmap"), &querier__v1__select_heatmap_request__descriptor,
         &querier__v1__select_heatmap_response__descriptor, kiln_querier__select_heatmap, q,
         KILN_RPC_PUBLIC, NULL},
        {Q("SelectSeries"), &querier__v1__select_series_request__descriptor,
         &querier__v1__select_series_response__descriptor, kiln_querier__select_series, q,
         KILN_RPC_PUBLIC, NULL},
        {Q("SelectMergeProfile"), &querier__v1__select_merge_profile_request__descriptor,
         &google__v1__profile__descriptor, kiln_querier__select_merge_profile, q, KILN_RPC_PUBLIC,
         NULL},
        {Q("Diff"), &querier__v1__diff_request__descriptor, &querier__v1__diff_response__descriptor,
         kiln_querier__diff, q, KILN_RPC_PUBLIC, NULL},
        {Q("GetProfileStats"), &types__v1__get_profile_stats_request__descriptor,
         &types__v1__get_profile_stats_response__descriptor, h_profile_stats, q, KILN_RPC_PUBLIC,
         NULL},
    };
#undef Q
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        kiln_rpc_register(rpc, &methods[i]);
}
