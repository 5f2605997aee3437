/* SPDX-License-Identifier: Apache-2.0
 * ingester: the ingester.v1 handlers and ring ownership around a kiln_db. */
#include "ingester.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ingester/v1/ingester.pb-c.h"
#include "seen_keys.h"
#include "xmalloc.h"
#include <xxhash.h>

struct kiln_ingester {
    kiln_db_t *db;
    /* Ring ownership checks (cluster only; ring NULL otherwise). */
    kiln_ring_t *ring;
    size_t rf;
    int64_t grace_ns;
    pthread_mutex_t ring_mu; /* guards the two below */
    uint64_t ring_sig;       /* signature of the membership last seen */
    int64_t ring_changed_ns; /* when it last changed */
};

kiln_status kiln_ingester_create(const kiln_ingester_config *cfg, kiln_ingester_t **out,
                                 kiln_err *err)
{
    kiln_db_config dc = {
        .path = cfg->storage_path,
        .store = cfg->store,
        .wal_max_delay_ns = cfg->wal_max_delay_ns,
        .wal_segment_bytes = cfg->wal_segment_bytes,
        .wal_no_fsync = cfg->wal_no_fsync,
        .max_block_duration_ns = cfg->max_block_duration_ns,
        .max_head_samples = cfg->max_head_samples,
        .max_head_bytes = cfg->max_head_bytes,
        .flush_check_ns = cfg->flush_check_ns,
        .flush_on_close = cfg->flush_on_shutdown,
        .heads_only = cfg->heads_only,
        .retire_delay_ns = cfg->retire_delay_ns,
        .limits = cfg->limits,
    };
    kiln_db_t *db;
    kiln_status st = kiln_db_open(&dc, &db, err);
    if (st != KILN_OK)
        return st;
    kiln_ingester_t *ing = kiln_xcalloc(1, sizeof(*ing));
    ing->db = db;
    pthread_mutex_init(&ing->ring_mu, NULL);
    *out = ing;
    return KILN_OK;
}

void kiln_ingester_destroy(kiln_ingester_t *ing)
{
    if (ing == NULL)
        return;
    kiln_db_close(ing->db);
    pthread_mutex_destroy(&ing->ring_mu);
    free(ing);
}

kiln_db_t *kiln_ingester_db(kiln_ingester_t *ing)
{
    return ing->db;
}

const char *kiln_ingester_instance(const kiln_ingester_t *ing)
{
    return kiln_db_instance(ing->db);
}

kiln_status kiln_ingester_flush(kiln_ingester_t *ing, kiln_err *err)
{
    return kiln_db_flush(ing->db, err);
}

bool kiln_ingester_is_series_limit(const kiln_err *err)
{
    return kiln_db_is_series_limit(err);
}

/* ---- ring ownership ---------------------------------------------------------- */

/* Gives the database the ring's split of the series limit: its active
 * ingesters and the replication factor, as they are now. */
static void update_split(kiln_ingester_t *ing)
{
    if (ing->ring == NULL)
        return;
    kiln_ring_snapshot_t *s = kiln_ring_acquire(ing->ring);
    const kiln_ring_member *m;
    size_t n = kiln_ring_members(s, &m), active = 0;
    for (size_t i = 0; i < n; i++)
        active += m[i].state == KILN_RING_ACTIVE;
    kiln_ring_release(s);
    kiln_db_set_ring_split(ing->db, true, active, ing->rf);
}

void kiln_ingester_metrics(kiln_ingester_t *ing, kiln_buf *out)
{
    update_split(ing);
    kiln_db_metrics(ing->db, out);
}

void kiln_ingester_set_ring(kiln_ingester_t *ing, kiln_ring_t *ring, size_t rf, int64_t grace_ns)
{
    ing->ring = ring;
    ing->rf = rf;
    ing->grace_ns = grace_ns;
    ing->ring_changed_ns = kiln_wall_ns();
    update_split(ing);
}

/* A hash of who is in the ring and in which state: writes are routed by
 * exactly that. */
static uint64_t ring_signature(const kiln_ring_member *m, size_t n)
{
    uint64_t sig = n;
    for (size_t i = 0; i < n; i++)
        sig = sig * 1099511628211ULL ^ XXH3_64bits(m[i].id, strlen(m[i].id)) ^ m[i].state;
    return sig;
}

/* Whether the ring has been stable for the grace period (checks are on). */
static bool ring_settled(kiln_ingester_t *ing, const kiln_ring_member *m, size_t n)
{
    uint64_t sig = ring_signature(m, n);
    int64_t now = kiln_wall_ns();
    pthread_mutex_lock(&ing->ring_mu);
    if (sig != ing->ring_sig) {
        ing->ring_sig = sig;
        ing->ring_changed_ns = now;
    }
    bool settled = now - ing->ring_changed_ns >= ing->grace_ns;
    pthread_mutex_unlock(&ing->ring_mu);
    return settled;
}

/* FAILED_PRECONDITION when a series of the push is not this ingester's. */
static kiln_status check_owned(kiln_ingester_t *ing, const char *tenant,
                               const kiln_head_part *parts, size_t n, kiln_err *err)
{
    if (ing->ring == NULL)
        return KILN_OK;
    kiln_ring_snapshot_t *s = kiln_ring_acquire(ing->ring);
    const kiln_ring_member *m;
    size_t nm = kiln_ring_members(s, &m);
    kiln_status st = KILN_OK;
    size_t idx[16];
    size_t rf = ing->rf < 16 ? ing->rf : 16;
    for (size_t i = 0; i < n && st == KILN_OK && ring_settled(ing, m, nm); i++) {
        uint32_t key = kiln_ring_key(tenant, parts[i].labels, parts[i].n_labels);
        size_t k = kiln_ring_replicas(s, key, rf, idx), j = 0;
        while (j < k && strcmp(m[idx[j]].id, kiln_ingester_instance(ing)) != 0)
            j++;
        if (j == k)
            st = kiln_err_set(err, KILN_FAILED_PRECONDITION,
                              "ingester %s does not own this series of tenant %s in the ring",
                              kiln_ingester_instance(ing), tenant);
    }
    kiln_ring_release(s);
    return st;
}

/* ---- ingester.v1 handlers ------------------------------------------------- */

/* One series of an internal push, decoded and normalised into *part. */
static kiln_status decode_part(const Ingester__V1__ProfileSeries *s, kiln_rpc_ctx *ctx,
                               kiln_head_part *part)
{
    kiln_label_t *l = kiln_arena_alloc(ctx->arena, (s->n_labels + 1) * sizeof(*l));
    for (size_t j = 0; j < s->n_labels; j++)
        l[j] = (kiln_label_t){s->labels[j]->name, s->labels[j]->value};
    kiln_labels_sort(l, s->n_labels);
    kiln_status st = kiln_labels_validate(l, s->n_labels, 0, 0, 0, ctx->err);
    kiln_pprof_t *p = kiln_arena_alloc(ctx->arena, sizeof(*p));
    if (st == KILN_OK)
        st = kiln_pprof_decode(ctx->arena, s->profile.data, s->profile.len, p, ctx->err);
    if (st == KILN_OK)
        st = kiln_pprof_validate_normalize(ctx->arena, p, 0, ctx->err);
    uint64_t id = s->key != 0 ? s->key : *s->id ? kiln_profile_id_key(ctx->tenant, s->id) : 0;
    *part = (kiln_head_part){l, s->n_labels, p, id};
    return st;
}

/* The ring check of a push record (kiln_db_admit_fn): the record's tenant
 * is the caller's, and this ingester owns each of its series. */
typedef struct admit_ctx {
    kiln_ingester_t *ing;
    const char *tenant;
} admit_ctx;

static kiln_status admit_record(void *ctx, const kiln_record *rec, kiln_err *err)
{
    const admit_ctx *a = ctx;
    if (strcmp(rec->tenant, a->tenant) != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "push record of tenant %s sent as tenant %s", rec->tenant, a->tenant);
    update_split(a->ing);
    return check_owned(a->ing, a->tenant, rec->parts, rec->n, err);
}

/* The older form: pprof per series, decoded and normalised here. */
static kiln_status push_series(kiln_ingester_t *ing, kiln_rpc_ctx *ctx,
                               const Ingester__V1__PushRequest *req)
{
    kiln_head_part *parts = kiln_arena_calloc(ctx->arena, req->n_series + 1, sizeof(*parts));
    for (size_t i = 0; i < req->n_series; i++) {
        kiln_status st = decode_part(req->series[i], ctx, &parts[i]);
        if (st != KILN_OK)
            return st;
    }
    update_split(ing);
    kiln_status st = check_owned(ing, ctx->tenant, parts, req->n_series, ctx->err);
    if (st == KILN_OK)
        st = kiln_db_append(ing->db, ctx->tenant, parts, req->n_series, ctx->err);
    return st;
}

static kiln_status h_push(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                          ProtobufCMessage **resp)
{
    kiln_ingester_t *ing = svc;
    const Ingester__V1__PushRequest *req = (const Ingester__V1__PushRequest *)msg;
    admit_ctx a = {ing, ctx->tenant};
    kiln_status st = req->record.len != 0
                         ? kiln_db_append_record(ing->db, ctx->arena, req->record.data,
                                                 req->record.len, admit_record, &a, ctx->err)
                         : push_series(ing, ctx, req);
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
        a->sets =
            kiln_arena_grow(a->arena, a->sets, a->n * sizeof(*a->sets), ncap * sizeof(*a->sets));
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
    kiln_status st =
        parse_matchers(req->matchers, req->n_matchers, &sels, &n, ctx->arena, ctx->err);
    if (st != KILN_OK)
        return st;
    kiln_ingester_t *ing = svc;
    series_acc acc = {ctx->arena, NULL, 0, 0};
    for (size_t i = 0; i < (n ? n : 1) && st == KILN_OK; i++) {
        kiln_read_filter f = {
            .sel = n ? sels[i] : NULL, .start_ms = req->start, .end_ms = req->end};
        kiln_read_visitor v = {.series = collect_series, .ctx = &acc};
        st = kiln_db_read(ing->db, ctx->tenant, &f, &v, ctx->err);
    }
    if (st != KILN_OK)
        return st;
    Querier__V1__SeriesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    querier__v1__series_response__init(r);
    r->labels_set = acc.sets;
    r->n_labels_set = acc.n;
    *resp = &r->base;
    return KILN_OK;
}

/* The selector of an internal Select request, owned by the request arena. */
static kiln_status select_selector(const Ingester__V1__SelectRequest *req, kiln_rpc_ctx *ctx,
                                   kiln_selector_t **out)
{
    kiln_selector_t *sel;
    kiln_status st =
        kiln_selector_parse(req->label_selector, strlen(req->label_selector), &sel, ctx->err);
    if (st != KILN_OK)
        return st;
    kiln_arena_defer(ctx->arena, (void (*)(void *))kiln_selector_destroy, sel);
    if (*req->profile_typeid != '\0')
        st = kiln_selector_add(sel, KILN_LABEL_PROFILE_TYPE, KILN_MATCH_EQ, req->profile_typeid,
                               ctx->err);
    *out = sel;
    return st;
}

/* The trace ids of a Select request, in the arena (NULL when none). */
static kiln_status select_traces(const Ingester__V1__SelectRequest *req, kiln_rpc_ctx *ctx,
                                 kiln_trace_id **out)
{
    *out = NULL;
    if (req->n_traces == 0)
        return KILN_OK;
    kiln_trace_id *traces = kiln_arena_alloc(ctx->arena, req->n_traces * sizeof(*traces));
    if (traces == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "traces: too many");
    for (size_t i = 0; i < req->n_traces; i++) {
        if (req->traces[i].len != 16)
            return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                                "traces: a trace id is 16 bytes, not %zu", req->traces[i].len);
        traces[i] = kiln_trace_id_get(req->traces[i].data);
    }
    *out = traces;
    return KILN_OK;
}

/* Which of a MergeTree request's keys (ascending) its read merged:
 * found[i] for keys[i], set by the read's `merged` in the same pass. */
typedef struct key_hits {
    const uint64_t *keys;
    size_t n;
    bool *found;
} key_hits;

static void on_merged(void *ctx, uint64_t key)
{
    key_hits *h = ctx;
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < h->n && h->keys[lo] == key; lo++)
        h->found[lo] = true;
}

/* Names in r->missing the requested keys the read did not merge: their
 * head was written as a block and dropped since the querier listed them. */
static kiln_status add_missing(Ingester__V1__TreeResponse *r, const key_hits *h, kiln_arena_t *a,
                               kiln_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += !h->found[i];
    if (n == 0)
        return KILN_OK;
    r->missing = kiln_arena_alloc(a, n * sizeof(uint64_t));
    if (r->missing == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "tree too large");
    for (size_t i = 0; i < h->n; i++) {
        if (!h->found[i])
            r->missing[r->n_missing++] = h->keys[i];
    }
    return KILN_OK;
}

/* Merges the profiles of f into a tree response; with hits, also names
 * the keys of hits that were not found. */
static kiln_status merge_response(kiln_ingester_t *ing, kiln_rpc_ctx *ctx,
                                  const kiln_read_filter *f, key_hits *hits,
                                  Ingester__V1__TreeResponse **out)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_visitor v = {.tree = t, .merged = hits != NULL ? on_merged : NULL, .ctx = hits};
    kiln_status st = kiln_db_read(ing->db, ctx->tenant, f, &v, ctx->err);
    Ingester__V1__TreeResponse *r = st == KILN_OK ? kiln_tree_to_response(t, ctx->arena) : NULL;
    kiln_tree_destroy(t);
    if (st != KILN_OK)
        return st;
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "tree too large");
    if (hits != NULL)
        st = add_missing(r, hits, ctx->arena, ctx->err);
    if (st == KILN_OK)
        *out = r;
    return st;
}

static kiln_status h_merge_tree(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                ProtobufCMessage **resp)
{
    const Ingester__V1__SelectRequest *req = (const Ingester__V1__SelectRequest *)msg;
    kiln_selector_t *sel;
    kiln_trace_id *traces;
    kiln_status st = select_selector(req, ctx, &sel);
    if (st == KILN_OK)
        st = select_traces(req, ctx, &traces);
    if (st != KILN_OK)
        return st;
    static const uint64_t none = 0;
    kiln_read_filter f = {
        .sel = sel,
        .start_ms = req->start,
        .end_ms = req->end,
        /* filter_keys with no keys is an empty set, not "no filter" */
        .keys = !req->filter_keys ? NULL
                : req->n_keys     ? req->keys
                                  : &none,
        .n_keys = req->n_keys,
        .ids = req->n_ids ? req->ids : NULL,
        .n_ids = req->n_ids,
        .spans = req->n_spans ? req->spans : NULL,
        .n_spans = req->n_spans,
        .traces = traces,
        .n_traces = req->n_traces,
    };
    key_hits hits = {req->keys, req->n_keys, kiln_arena_calloc(ctx->arena, req->n_keys + 1, 1)};
    if (hits.found == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "keys: too many");
    Ingester__V1__TreeResponse *r = NULL;
    st = merge_response(svc, ctx, &f, req->filter_keys ? &hits : NULL, &r);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

/* ProfilesResponse under construction: series are numbered on first sight
 * (consecutive profiles of one series share the previous entry). */
typedef struct profiles_acc {
    kiln_arena_t *arena;
    series_acc series;
    Ingester__V1__ProfilesResponse *r;
    size_t cap;
    const kiln_label_t *last;
} profiles_acc;

static void collect_profile(void *ctx, const kiln_read_profile *p)
{
    profiles_acc *a = ctx;
    if (p->labels != a->last) {
        collect_series(&a->series, p->labels, p->n_labels);
        a->last = p->labels;
    }
    Ingester__V1__ProfilesResponse *r = a->r;
    if (r->n_time_ms == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 256;
        r->series_index = kiln_arena_grow(a->arena, r->series_index, a->cap * sizeof(uint32_t),
                                          ncap * sizeof(uint32_t));
        r->time_ms = kiln_arena_grow(a->arena, r->time_ms, a->cap * 8, ncap * 8);
        r->total = kiln_arena_grow(a->arena, r->total, a->cap * 8, ncap * 8);
        r->id = kiln_arena_grow(a->arena, r->id, a->cap * 8, ncap * 8);
        a->cap = ncap;
    }
    size_t i = r->n_time_ms;
    r->series_index[i] = (uint32_t)(a->series.n - 1);
    r->time_ms[i] = p->time_ms;
    r->total[i] = p->total;
    r->id[i] = p->id;
    r->n_series_index = r->n_time_ms = r->n_total = r->n_id = i + 1;
}

static kiln_status h_profiles(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                              ProtobufCMessage **resp)
{
    const Ingester__V1__SelectRequest *req = (const Ingester__V1__SelectRequest *)msg;
    kiln_selector_t *sel;
    kiln_status st = select_selector(req, ctx, &sel);
    if (st != KILN_OK)
        return st;
    Ingester__V1__ProfilesResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    ingester__v1__profiles_response__init(r);
    profiles_acc a = {ctx->arena, {ctx->arena, NULL, 0, 0}, r, 0, NULL};
    kiln_ingester_t *ing = svc;
    kiln_read_filter f = {.sel = sel, .start_ms = req->start, .end_ms = req->end};
    kiln_read_visitor v = {.profile = collect_profile, .ctx = &a};
    st = kiln_db_read(ing->db, ctx->tenant, &f, &v, ctx->err);
    if (st != KILN_OK)
        return st;
    r->series = a.series.sets;
    r->n_series = a.series.n;
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_stats(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                           ProtobufCMessage **resp)
{
    (void)msg;
    kiln_ingester_t *ing = svc;
    kiln_head_stats_t s;
    kiln_db_stats(ing->db, ctx->tenant, &s);
    Ingester__V1__StatsResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    ingester__v1__stats_response__init(r);
    r->profiles = (int64_t)s.profiles;
    r->min_time_ms = s.min_time_ms;
    r->max_time_ms = s.max_time_ms;
    *resp = &r->base;
    return KILN_OK;
}

void kiln_ingester_register(kiln_ingester_t *ing, kiln_rpc_registry_t *rpc)
{
    const kiln_rpc_method methods[] = {
        {"/ingester.v1.IngesterService/Push", &ingester__v1__push_request__descriptor,
         &ingester__v1__push_response__descriptor, h_push, ing, KILN_RPC_INTERNAL, NULL},
        {"/ingester.v1.IngesterService/Series", &querier__v1__series_request__descriptor,
         &querier__v1__series_response__descriptor, h_series, ing, KILN_RPC_INTERNAL, NULL},
        {"/ingester.v1.IngesterService/MergeTree", &ingester__v1__select_request__descriptor,
         &ingester__v1__tree_response__descriptor, h_merge_tree, ing, KILN_RPC_INTERNAL, NULL},
        {"/ingester.v1.IngesterService/Profiles", &ingester__v1__select_request__descriptor,
         &ingester__v1__profiles_response__descriptor, h_profiles, ing, KILN_RPC_INTERNAL, NULL},
        {"/ingester.v1.IngesterService/Stats", &ingester__v1__stats_request__descriptor,
         &ingester__v1__stats_response__descriptor, h_stats, ing, KILN_RPC_INTERNAL, NULL},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        kiln_rpc_register(rpc, &methods[i]);
}
