/* SPDX-License-Identifier: Apache-2.0
 * ingester: tenant -> head map and the ingester.v1 handlers. */
#include "ingester.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "gzip.h"
#include "ingester/v1/ingester.pb-c.h"
#include "log.h"
#include "wal.h"
#include "xmalloc.h"

typedef struct tenant_head {
    char *tenant;
    kiln_head_t *head;
} tenant_head;

struct kiln_ingester {
    kiln_ingester_config cfg;
    kiln_wal_t *wal;
    char *storage_path; /* owned copy of cfg.storage_path */
    pthread_mutex_t mu; /* guards the tenant list, not the heads */
    tenant_head *t;
    size_t n, cap;
};

static kiln_status open_wal(kiln_ingester_t *ing, kiln_err *err);

kiln_status kiln_ingester_create(const kiln_ingester_config *cfg, kiln_ingester_t **out,
                                 kiln_err *err)
{
    kiln_ingester_t *ing = kiln_xcalloc(1, sizeof(*ing));
    ing->cfg = *cfg;
    ing->storage_path = kiln_xstrdup(cfg->storage_path);
    ing->cfg.storage_path = ing->storage_path;
    pthread_mutex_init(&ing->mu, NULL);
    kiln_status st = open_wal(ing, err);
    if (st != KILN_OK) {
        kiln_ingester_destroy(ing);
        return st;
    }
    *out = ing;
    return KILN_OK;
}

void kiln_ingester_destroy(kiln_ingester_t *ing)
{
    if (ing == NULL)
        return;
    for (size_t i = 0; i < ing->n; i++) {
        free(ing->t[i].tenant);
        kiln_head_destroy(ing->t[i].head);
    }
    free(ing->t);
    kiln_wal_close(ing->wal);
    free(ing->storage_path);
    pthread_mutex_destroy(&ing->mu);
    free(ing);
}

/* The tenant's head; created when create is set, else NULL when absent. */
static kiln_head_t *head_of(kiln_ingester_t *ing, const char *tenant, size_t len, bool create)
{
    kiln_head_t *h = NULL;
    pthread_mutex_lock(&ing->mu);
    for (size_t i = 0; i < ing->n && h == NULL; i++) {
        if (strlen(ing->t[i].tenant) == len && memcmp(ing->t[i].tenant, tenant, len) == 0)
            h = ing->t[i].head;
    }
    if (h == NULL && create) {
        KILN_GROW(ing->t, ing->cap, ing->n + 1);
        h = kiln_head_create();
        ing->t[ing->n++] = (tenant_head){kiln_xstrndup(tenant, len), h};
    }
    pthread_mutex_unlock(&ing->mu);
    return h;
}

/* Applies a batch to the tenant's head (after it is durable, or on replay). */
static void apply(kiln_ingester_t *ing, const char *tenant, const kiln_ingester_part *parts,
                  size_t n)
{
    kiln_head_t *h = head_of(ing, tenant, strlen(tenant), true);
    for (size_t i = 0; i < n; i++)
        kiln_head_append(h, parts[i].labels, parts[i].n_labels, parts[i].profile,
                         parts[i].profile->time_nanos, NULL);
}

/* The WAL record of a batch, packed into out. */
static void encode_record(const char *tenant, const kiln_ingester_part *parts, size_t n,
                          kiln_arena_t *a, kiln_buf *out)
{
    Ingester__V1__WalRecord rec = INGESTER__V1__WAL_RECORD__INIT;
    rec.tenant = (char *)tenant;
    rec.n_series = n;
    rec.series = kiln_arena_alloc(a, (n + 1) * sizeof(*rec.series));
    for (size_t i = 0; i < n; i++) {
        Ingester__V1__ProfileSeries *s = kiln_arena_alloc(a, sizeof(*s));
        ingester__v1__profile_series__init(s);
        s->n_labels = parts[i].n_labels;
        s->labels = kiln_arena_alloc(a, (s->n_labels + 1) * sizeof(*s->labels));
        for (size_t j = 0; j < s->n_labels; j++) {
            Types__V1__LabelPair *lp = kiln_arena_alloc(a, sizeof(*lp));
            types__v1__label_pair__init(lp);
            lp->name = (char *)parts[i].labels[j].name;
            lp->value = (char *)parts[i].labels[j].value;
            s->labels[j] = lp;
        }
        kiln_buf pb;
        kiln_buf_init(&pb, 0);
        kiln_pprof_encode(parts[i].profile, true, &pb);
        s->profile.data = (uint8_t *)kiln_arena_alloc(a, pb.len + 1);
        memcpy(s->profile.data, pb.ptr ? pb.ptr : "", pb.len);
        s->profile.len = pb.len;
        kiln_buf_free(&pb);
        rec.series[i] = s;
    }
    size_t len = ingester__v1__wal_record__get_packed_size(&rec);
    kiln_buf_reserve(out, len);
    out->len += ingester__v1__wal_record__pack(&rec, (uint8_t *)out->ptr + out->len);
}

kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant,
                                 const kiln_ingester_part *parts, size_t n, kiln_err *err)
{
    if (n == 0)
        return KILN_OK;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_buf rec;
    kiln_buf_init(&rec, 0);
    encode_record(tenant, parts, n, a, &rec);
    kiln_status st = kiln_wal_append(ing->wal, rec.ptr, rec.len, NULL, err);
    kiln_buf_free(&rec);
    kiln_arena_destroy(a);
    if (st == KILN_OK)
        apply(ing, tenant, parts, n);
    return st;
}

/* Replays one WAL record: every series decodes, or the record is skipped. */
static void replay_record(void *ctx, uint64_t segment, const uint8_t *data, size_t len)
{
    (void)segment;
    kiln_ingester_t *ing = ctx;
    kiln_arena_t *a = kiln_arena_create(0);
    ProtobufCAllocator al = kiln_arena_pb_allocator(a);
    Ingester__V1__WalRecord *rec = ingester__v1__wal_record__unpack(&al, len, data);
    kiln_ingester_part *parts = rec ? kiln_arena_calloc(a, rec->n_series + 1, sizeof(*parts)) : NULL;
    kiln_status st = rec ? KILN_OK : KILN_DATA_LOSS;
    for (size_t i = 0; st == KILN_OK && i < rec->n_series; i++) {
        const Ingester__V1__ProfileSeries *s = rec->series[i];
        kiln_label_t *l = kiln_arena_alloc(a, (s->n_labels + 1) * sizeof(*l));
        for (size_t j = 0; j < s->n_labels; j++)
            l[j] = (kiln_label_t){s->labels[j]->name, s->labels[j]->value};
        kiln_pprof_t *p = kiln_arena_alloc(a, sizeof(*p));
        st = kiln_pprof_decode(a, s->profile.data, s->profile.len, p, NULL);
        if (st == KILN_OK)
            st = kiln_pprof_normalize(a, p, 0, NULL);
        parts[i] = (kiln_ingester_part){l, s->n_labels, p};
    }
    if (st == KILN_OK)
        apply(ing, rec->tenant, parts, rec->n_series);
    else
        KILN_LOG_WARN("ingester", "skipping an undecodable WAL record of %zu bytes", len);
    kiln_arena_destroy(a);
}

static kiln_status open_wal(kiln_ingester_t *ing, kiln_err *err)
{
    char dir[4096];
    if (mkdir(ing->cfg.storage_path, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot create -storage.path %s: %s",
                            ing->cfg.storage_path, strerror(errno));
    snprintf(dir, sizeof(dir), "%s/wal", ing->cfg.storage_path);
    kiln_wal_config wc = {ing->cfg.wal_max_delay_ns,
                          ing->cfg.wal_segment_bytes ? ing->cfg.wal_segment_bytes : 128u << 20,
                          !ing->cfg.wal_no_fsync};
    kiln_status st = kiln_wal_open(dir, &wc, &ing->wal, err);
    if (st == KILN_OK)
        st = kiln_wal_replay(ing->wal, replay_record, ing, err);
    if (st == KILN_OK) {
        kiln_head_stats_t s;
        kiln_ingester_stats_all(ing, &s);
        KILN_LOG_INFO("ingester", "replayed WAL %s: %zu profiles, %zu series", dir, s.profiles, s.series);
    }
    return st;
}

/* Calls fn for the head of every tenant in "a|b|c" that has one. */
static void each_head(kiln_ingester_t *ing, const char *tenants,
                      void (*fn)(kiln_head_t *h, void *arg), void *arg)
{
    for (const char *p = tenants; *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        kiln_head_t *h = head_of(ing, p, len, false);
        if (h != NULL)
            fn(h, arg);
        p += len + (bar != NULL);
    }
}

typedef struct query_args {
    const kiln_selector_t *sel;
    int64_t start_ms, end_ms;
    kiln_head_series_fn fn;
    void *ctx;
    kiln_tree_t *tree;
    kiln_head_stats_t *stats;
} query_args;

static void series_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_series(h, q->sel, q->start_ms, q->end_ms, q->fn, q->ctx);
}

void kiln_ingester_series(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                          int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx)
{
    query_args q = {sel, start_ms, end_ms, fn, ctx, NULL, NULL};
    each_head(ing, tenants, series_one, &q);
}

static void merge_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_merge_tree(h, q->sel, q->start_ms, q->end_ms, q->tree);
}

void kiln_ingester_merge_tree(kiln_ingester_t *ing, const char *tenants,
                              const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                              kiln_tree_t *t)
{
    query_args q = {sel, start_ms, end_ms, NULL, NULL, t, NULL};
    each_head(ing, tenants, merge_one, &q);
}

static void stats_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_stats_t s;
    kiln_head_stats(h, &s);
    kiln_head_stats_t *o = q->stats;
    o->series += s.series;
    o->profiles += s.profiles;
    o->samples += s.samples;
    o->stack_nodes += s.stack_nodes;
    o->locations += s.locations;
    o->strings += s.strings;
    if (s.profiles != 0 && (o->min_time_ms == 0 || s.min_time_ms < o->min_time_ms))
        o->min_time_ms = s.min_time_ms;
    if (s.max_time_ms > o->max_time_ms)
        o->max_time_ms = s.max_time_ms;
}

void kiln_ingester_stats_all(kiln_ingester_t *ing, kiln_head_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    query_args q = {NULL, 0, 0, NULL, NULL, NULL, out};
    pthread_mutex_lock(&ing->mu);
    size_t n = ing->n;
    pthread_mutex_unlock(&ing->mu);
    for (size_t i = 0; i < n; i++)
        stats_one(ing->t[i].head, &q);
}

void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    query_args q = {NULL, 0, 0, NULL, NULL, NULL, out};
    each_head(ing, tenants, stats_one, &q);
}

/* ---- ingester.v1 handlers ------------------------------------------------- */

static kiln_status h_push(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                          ProtobufCMessage **resp)
{
    kiln_ingester_t *ing = svc;
    const Ingester__V1__PushRequest *req = (const Ingester__V1__PushRequest *)msg;
    kiln_ingester_part *parts = kiln_arena_calloc(ctx->arena, req->n_series + 1, sizeof(*parts));
    for (size_t i = 0; i < req->n_series; i++) {
        const Ingester__V1__ProfileSeries *s = req->series[i];
        kiln_label_t *l = kiln_arena_alloc(ctx->arena, (s->n_labels + 1) * sizeof(*l));
        for (size_t j = 0; j < s->n_labels; j++)
            l[j] = (kiln_label_t){s->labels[j]->name, s->labels[j]->value};
        kiln_labels_sort(l, s->n_labels);
        kiln_status st = kiln_labels_validate(l, s->n_labels, 0, 0, 0, ctx->err);
        kiln_pprof_t *p = kiln_arena_alloc(ctx->arena, sizeof(*p));
        if (st == KILN_OK)
            st = kiln_pprof_decode(ctx->arena, s->profile.data, s->profile.len, p, ctx->err);
        if (st == KILN_OK)
            st = kiln_pprof_validate(p, ctx->err);
        if (st == KILN_OK)
            st = kiln_pprof_normalize(ctx->arena, p, 0, ctx->err);
        parts[i] = (kiln_ingester_part){l, s->n_labels, p};
        if (st != KILN_OK)
            return st;
    }
    kiln_status st = kiln_ingester_append(ing, ctx->tenant, parts, req->n_series, ctx->err);
    if (st != KILN_OK)
        return st;
    Ingester__V1__PushResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    ingester__v1__push_response__init(r);
    *resp = &r->base;
    return KILN_OK;
}

typedef struct series_acc {
    kiln_arena_t *arena;
    Types__V1__Labels **sets;
    size_t n, cap;
} series_acc;

static void collect_series(void *ctx, const kiln_label_t *l, size_t n)
{
    series_acc *a = ctx;
    Types__V1__Labels *set = kiln_arena_alloc(a->arena, sizeof(*set));
    types__v1__labels__init(set);
    set->labels = kiln_arena_alloc(a->arena, (n + 1) * sizeof(*set->labels));
    set->n_labels = n;
    for (size_t i = 0; i < n; i++) {
        Types__V1__LabelPair *lp = kiln_arena_alloc(a->arena, sizeof(*lp));
        types__v1__label_pair__init(lp);
        lp->name = kiln_arena_strndup(a->arena, l[i].name, strlen(l[i].name));
        lp->value = kiln_arena_strndup(a->arena, l[i].value, strlen(l[i].value));
        set->labels[i] = lp;
    }
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 64;
        Types__V1__Labels **ns = kiln_arena_alloc(a->arena, ncap * sizeof(*ns));
        if (a->n)
            memcpy(ns, a->sets, a->n * sizeof(*ns));
        a->sets = ns;
        a->cap = ncap;
    }
    a->sets[a->n++] = set;
}

/* Parses each matcher; an empty list selects everything. */
static kiln_status parse_matchers(char **m, size_t n, kiln_selector_t ***out, size_t *n_out,
                                  kiln_arena_t *a, kiln_err *err)
{
    kiln_selector_t **sels = kiln_arena_calloc(a, n + 1, sizeof(*sels));
    for (size_t i = 0; i < n; i++) {
        kiln_status st = kiln_selector_parse(m[i], strlen(m[i]), &sels[i], err);
        if (st != KILN_OK)
            return st;
        kiln_arena_defer(a, (void (*)(void *))kiln_selector_destroy, sels[i]);
    }
    *out = sels;
    *n_out = n;
    return KILN_OK;
}

static kiln_status h_series(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                            ProtobufCMessage **resp)
{
    const Querier__V1__SeriesRequest *req = (const Querier__V1__SeriesRequest *)msg;
    kiln_selector_t **sels;
    size_t n;
    kiln_status st = parse_matchers(req->matchers, req->n_matchers, &sels, &n, ctx->arena, ctx->err);
    if (st != KILN_OK)
        return st;
    series_acc acc = {ctx->arena, NULL, 0, 0};
    for (size_t i = 0; i < (n ? n : 1); i++)
        kiln_ingester_series(svc, ctx->tenant, n ? sels[i] : NULL, req->start, req->end,
                             collect_series, &acc);
    Querier__V1__SeriesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__series_response__init(r);
    r->labels_set = acc.sets;
    r->n_labels_set = acc.n;
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_merge_tree(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                ProtobufCMessage **resp)
{
    const Ingester__V1__SelectRequest *req = (const Ingester__V1__SelectRequest *)msg;
    kiln_selector_t *sel;
    kiln_status st = kiln_selector_parse(req->label_selector, strlen(req->label_selector), &sel,
                                         ctx->err);
    if (st != KILN_OK)
        return st;
    kiln_arena_defer(ctx->arena, (void (*)(void *))kiln_selector_destroy, sel);
    if (*req->profile_typeid != '\0') {
        st = kiln_selector_add(sel, KILN_LABEL_PROFILE_TYPE, KILN_MATCH_EQ, req->profile_typeid,
                               ctx->err);
        if (st != KILN_OK)
            return st;
    }
    kiln_tree_t *t = kiln_tree_create();
    kiln_ingester_merge_tree(svc, ctx->tenant, sel, req->start, req->end, t);
    Ingester__V1__TreeResponse *r = kiln_tree_to_response(t, ctx->arena);
    kiln_tree_destroy(t);
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "tree too large");
    *resp = &r->base;
    return KILN_OK;
}

void kiln_ingester_register(kiln_ingester_t *ing, kiln_rpc_registry_t *rpc)
{
    const kiln_rpc_method methods[] = {
        {"/ingester.v1.IngesterService/Push", &ingester__v1__push_request__descriptor,
         &ingester__v1__push_response__descriptor, h_push, ing},
        {"/ingester.v1.IngesterService/Series", &querier__v1__series_request__descriptor,
         &querier__v1__series_response__descriptor, h_series, ing},
        {"/ingester.v1.IngesterService/MergeTree", &ingester__v1__select_request__descriptor,
         &ingester__v1__tree_response__descriptor, h_merge_tree, ing},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        kiln_rpc_register(rpc, &methods[i]);
}
