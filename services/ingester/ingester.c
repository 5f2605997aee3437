/* SPDX-License-Identifier: Apache-2.0
 * ingester: tenant -> head map and the ingester.v1 handlers. */
#include "ingester_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"
#include "gzip.h"
#include "seen_keys.h"
#include "ingester/v1/ingester.pb-c.h"
#include "log.h"
#include "wal.h"
#include "xmalloc.h"
#include <xxhash.h>

static kiln_status open_storage(kiln_ingester_t *ing, kiln_err *err);

typedef struct block_visit {
    const tenant_head *t;
    void (*fn)(kiln_head_t *h, void *arg);
    void *arg;
} block_visit;

static void visit_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    block_visit *v = ctx;
    const char *ulid = kiln_block_meta(b)->ulid;
    if (v->t != NULL && v->t->flushing != NULL && strcmp(v->t->flushed_ulid, ulid) == 0)
        return; /* the same data as the head being flushed, visited already */
    v->fn(kiln_block_head(b), v->arg);
}

/* Profile keys remembered against replayed retries (8 MB): at 10 series a
 * push, the last 100,000 pushes. */
#define HELD_KEYS (1u << 20)

kiln_status kiln_ingester_create(const kiln_ingester_config *cfg, kiln_ingester_t **out,
                                 kiln_err *err)
{
    kiln_ingester_t *ing = kiln_xcalloc(1, sizeof(*ing));
    ing->cfg = *cfg;
    ing->storage_path = kiln_xstrdup(cfg->storage_path);
    ing->cfg.storage_path = ing->storage_path;
    pthread_mutex_init(&ing->mu, NULL);
    pthread_mutex_init(&ing->flush_mu, NULL);
    pthread_mutex_init(&ing->ring_mu, NULL);
    pthread_rwlock_init(&ing->cut, NULL);
    ing->held = kiln_seen_keys_create(HELD_KEYS);
    kiln_status st = open_storage(ing, err);
    if (st != KILN_OK) {
        kiln_ingester_destroy(ing);
        return st;
    }
    kiln_ingester__start_flusher(ing);
    *out = ing;
    return KILN_OK;
}

void kiln_ingester_destroy(kiln_ingester_t *ing)
{
    if (ing == NULL)
        return;
    kiln_ingester__stop_flusher(ing, ing->cfg.flush_on_shutdown);
    for (size_t i = 0; i < ing->n; i++) {
        free(ing->t[i]->tenant);
        kiln_head_destroy(ing->t[i]->head);
        kiln_head_destroy(ing->t[i]->flushing);
        pthread_mutex_destroy(&ing->t[i]->lim_mu);
        free(ing->t[i]);
    }
    free(ing->t);
    kiln_blockset_destroy(ing->blocks);
    if (ing->owns_store)
        kiln_objstore_close(ing->store);
    kiln_wal_close(ing->wal);
    free(ing->storage_path);
    kiln_seen_keys_destroy(ing->held);
    pthread_mutex_destroy(&ing->mu);
    pthread_mutex_destroy(&ing->flush_mu);
    pthread_mutex_destroy(&ing->ring_mu);
    pthread_rwlock_destroy(&ing->cut);
    free(ing);
}

/* The tenant's state; created when create is set, else NULL when absent.
 * Entries are never removed, so the pointer stays valid under `cut`. */
static tenant_head *tenant_of(kiln_ingester_t *ing, const char *tenant, size_t len, bool create)
{
    tenant_head *t = NULL;
    pthread_mutex_lock(&ing->mu);
    for (size_t i = 0; i < ing->n && t == NULL; i++) {
        if (strlen(ing->t[i]->tenant) == len && memcmp(ing->t[i]->tenant, tenant, len) == 0)
            t = ing->t[i];
    }
    if (t == NULL && create) {
        KILN_GROW(ing->t, ing->cap, ing->n + 1);
        t = kiln_xcalloc(1, sizeof(*t));
        t->tenant = kiln_xstrndup(tenant, len);
        t->head = kiln_head_create();
        pthread_mutex_init(&t->lim_mu, NULL);
        ing->t[ing->n++] = t;
    }
    pthread_mutex_unlock(&ing->mu);
    return t;
}

/* Applies a batch to the tenant's head (after it is durable, or on replay).
 * `cut` held shared. */
/* The key of a part: its push id, series and time (0 when the push has no
 * id: such profiles are never duplicates of one another). */
static uint64_t part_key(const kiln_ingester_part *p)
{
    if (p->id == 0)
        return 0;
    uint64_t k[3] = {p->id, kiln_labels_fingerprint(p->labels, p->n_labels),
                     (uint64_t)p->profile->time_nanos};
    return XXH3_64bits(k, sizeof(k)) | 1;
}

/* Copies into kept the parts this ingester does not hold yet, claiming
 * their keys (in keys, to release if the append fails); returns how many. */
static size_t claim_parts(kiln_ingester_t *ing, const kiln_ingester_part *parts, size_t n,
                          kiln_ingester_part *kept, uint64_t *keys)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = part_key(&parts[i]);
        if (key != 0 && !kiln_seen_keys_add(ing->held, key))
            continue;
        keys[k] = key;
        kept[k++] = parts[i];
    }
    return k;
}

static void apply(kiln_ingester_t *ing, const char *tenant, const kiln_ingester_part *parts,
                  size_t n)
{
    tenant_head *t = tenant_of(ing, tenant, strlen(tenant), true);
    /* Appends run at once under `cut` held shared: the first one to find
     * the head empty sets its start (a plain test-and-set raced, seen by
     * TSan); cuts read and reset it holding `cut` exclusively. */
    int64_t unset = 0;
    __atomic_compare_exchange_n(&t->head_start_ns, &unset, kiln_ingester__now_ns(), false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    kiln_head_append_batch(t->head, parts, n);
}

/* A head may grow to twice its cut size while a flush is behind; past that
 * pushes are refused (and retried by clients) rather than growing memory
 * without bound. `cut` held shared. */
static kiln_status check_backpressure(kiln_ingester_t *ing, const char *tenant, kiln_err *err)
{
    if (ing->cfg.max_head_samples == 0)
        return KILN_OK;
    tenant_head *t = tenant_of(ing, tenant, strlen(tenant), false);
    if (t == NULL)
        return KILN_OK;
    kiln_head_stats_t s;
    kiln_head_stats(t->head, &s);
    if (s.samples < 2 * ing->cfg.max_head_samples)
        return KILN_OK;
    return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                        "ingester head of tenant %s holds %zu samples, twice "
                        "-ingester.max-head-samples: flushing is behind, retry later",
                        tenant, s.samples);
}

kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant,
                                 const kiln_ingester_part *parts, size_t n, kiln_err *err)
{
    kiln_ingester_part *kept = kiln_xmalloc((n + 1) * sizeof(*kept));
    uint64_t *keys = kiln_xmalloc((n + 1) * sizeof(*keys));
    size_t k = claim_parts(ing, parts, n, kept, keys);
    kiln_status st = KILN_OK;
    if (k > 0) {
        kiln_buf rec;
        kiln_buf_init(&rec, 0);
        kiln_record_encode(tenant, kept, k, &rec);
        pthread_rwlock_rdlock(&ing->cut);
        tenant_head *t = tenant_of(ing, tenant, strlen(tenant), true);
        size_t reserved = 0;
        st = check_backpressure(ing, tenant, err);
        if (st == KILN_OK)
            st = kiln_ingester__reserve_series(ing, t, kept, k, &reserved, err);
        if (st == KILN_OK)
            st = kiln_wal_append(ing->wal, rec.ptr, rec.len, NULL, err);
        if (st == KILN_OK)
            apply(ing, tenant, kept, k);
        kiln_ingester__release_series(t, reserved, st == KILN_OK);
        pthread_rwlock_unlock(&ing->cut);
        kiln_buf_free(&rec);
    }
    for (size_t i = 0; i < k && st != KILN_OK; i++)
        if (keys[i] != 0)
            kiln_seen_keys_remove(ing->held, keys[i]);
    free(kept);
    free(keys);
    return st;
}

/* Applies a replayed record's parts, remembering their keys so a retry
 * after the restart is not stored twice. */
static void replay_parts(kiln_ingester_t *ing, kiln_arena_t *a, const kiln_record *rec)
{
    kiln_ingester_part *kept = kiln_arena_calloc(a, rec->n + 1, sizeof(*kept));
    uint64_t *keys = kiln_arena_calloc(a, rec->n + 1, sizeof(*keys));
    size_t k = claim_parts(ing, rec->parts, rec->n, kept, keys);
    if (k > 0)
        apply(ing, rec->tenant, kept, k);
}

/* Replays one WAL record: every series decodes, or the record is skipped.
 * A record of a format this build does not know stops the start-up
 * (open_wal) rather than be dropped: a newer build wrote it. */
static void replay_record(void *ctx, uint64_t segment, const uint8_t *data, size_t len)
{
    kiln_ingester_t *ing = ctx;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_record rec;
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_record_decode(a, data, len, &rec, &err);
    if (st == KILN_FAILED_PRECONDITION && ing->replay_err.code == KILN_OK)
        kiln_err_set(&ing->replay_err, st, "WAL segment %llu: %s", (unsigned long long)segment,
                     err.msg);
    else if (st != KILN_OK)
        KILN_LOG_WARN("ingester", "skipping a WAL record of segment %llu: %s",
                      (unsigned long long)segment, err.msg);
    else if (segment >= kiln_blockset_wal_until(ing->blocks, ing->instance, rec.tenant))
        replay_parts(ing, a, &rec); /* else already in a block it flushed */
    kiln_arena_destroy(a);
}

const char *kiln_ingester_instance(const kiln_ingester_t *ing)
{
    return ing->instance;
}

kiln_status kiln_ingester_flush(kiln_ingester_t *ing, kiln_err *err)
{
    return kiln_ingester__flush(ing, err);
}

int64_t kiln_ingester__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This ingester's id: read from <storage.path>/instance_id, made once. */
static void load_instance_id(kiln_ingester_t *ing)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/instance_id", ing->storage_path);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%39s", ing->instance) != 1)
            ing->instance[0] = '\0';
        fclose(f);
    }
    if (ing->instance[0] != '\0')
        return;
    kiln_ulid(kiln_ingester__now_ns() / 1000000, ing->instance);
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%s\n", ing->instance);
        fclose(f);
    }
}

static kiln_status open_wal(kiln_ingester_t *ing, kiln_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/wal", ing->cfg.storage_path);
    kiln_wal_config wc = {ing->cfg.wal_max_delay_ns,
                          ing->cfg.wal_segment_bytes ? ing->cfg.wal_segment_bytes : 128u << 20,
                          !ing->cfg.wal_no_fsync};
    kiln_status st = kiln_wal_open(dir, &wc, &ing->wal, err);
    if (st == KILN_OK)
        st = kiln_wal_replay(ing->wal, replay_record, ing, err);
    if (st == KILN_OK && ing->replay_err.code != KILN_OK)
        return kiln_err_set(err, ing->replay_err.code,
                            "%s: refusing to start rather than drop it; run the build that "
                            "wrote it, or move %s away",
                            ing->replay_err.msg, dir);
    if (st == KILN_OK) {
        kiln_head_stats_t s;
        kiln_ingester_stats_all(ing, &s);
        KILN_LOG_INFO("ingester", "replayed WAL %s: %zu profiles, %zu series not yet in blocks",
                      dir, s.profiles, s.series);
    }
    return st;
}

/* The storage path, the object store and its blocks, then the WAL (whose
 * replay skips what this ingester's blocks already hold). */
static kiln_status open_storage(kiln_ingester_t *ing, kiln_err *err)
{
    if (mkdir(ing->storage_path, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot create -storage.path %s: %s",
                            ing->storage_path, strerror(errno));
    load_instance_id(ing);
    char bucket[4096];
    if (ing->cfg.bucket_dir != NULL && *ing->cfg.bucket_dir != '\0')
        snprintf(bucket, sizeof(bucket), "%s", ing->cfg.bucket_dir);
    else
        snprintf(bucket, sizeof(bucket), "%s/bucket", ing->storage_path);
    kiln_status st = KILN_OK;
    ing->store = ing->cfg.store;
    ing->owns_store = ing->store == NULL;
    if (ing->owns_store)
        st = kiln_objstore_open_fs(bucket, &ing->store, err);
    if (st != KILN_OK)
        return st;
    ing->blocks = kiln_blockset_create(ing->store);
    st = kiln_blockset_sync(ing->blocks, err);
    if (st != KILN_OK)
        return st;
    return open_wal(ing, err);
}

/* Calls fn for every head and block of each tenant in "a|b|c". A head being
 * flushed is visited until its block is in place, never both. `cut` is held
 * shared throughout. */
static void each_head(kiln_ingester_t *ing, const char *tenants, int64_t start_ms, int64_t end_ms,
                      void (*fn)(kiln_head_t *h, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&ing->cut);
    char name[KILN_TENANT_MAX + 1];
    for (const char *p = tenants; kiln_tenants_next(&p, name);) {
        tenant_head *t = tenant_of(ing, name, strlen(name), false);
        if (t != NULL) {
            fn(t->head, arg);
            if (t->flushing != NULL)
                fn(t->flushing, arg);
        }
        if (!ing->cfg.heads_only) {
            block_visit v = {t, fn, arg};
            kiln_blockset_each(ing->blocks, name, start_ms, end_ms, visit_block, &v);
        }
    }
    pthread_rwlock_unlock(&ing->cut);
}

typedef struct query_args {
    const kiln_selector_t *sel;
    int64_t start_ms, end_ms;
    kiln_head_series_fn fn;
    void *ctx;
    kiln_head_profile_fn pfn;
    kiln_head_profile_id_fn pidfn;
    const kiln_head_filter *filter;
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
    query_args q = {sel, start_ms, end_ms, fn, ctx, NULL, NULL, NULL, NULL, NULL};
    each_head(ing, tenants, start_ms, end_ms, series_one, &q);
}

static void profiles_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_profiles(h, q->sel, q->start_ms, q->end_ms, q->pfn, q->ctx);
}

void kiln_ingester_profiles(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                            int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn, void *ctx)
{
    query_args q = {sel, start_ms, end_ms, NULL, ctx, fn, NULL, NULL, NULL, NULL};
    each_head(ing, tenants, start_ms, end_ms, profiles_one, &q);
}

static void profiles_id_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_profiles_id(h, q->sel, q->start_ms, q->end_ms, q->pidfn, q->ctx);
}

void kiln_ingester_profiles_id(kiln_ingester_t *ing, const char *tenants,
                               const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                               kiln_head_profile_id_fn fn, void *ctx)
{
    query_args q = {sel, start_ms, end_ms, NULL, ctx, NULL, fn, NULL, NULL, NULL};
    each_head(ing, tenants, start_ms, end_ms, profiles_id_one, &q);
}

static void merge_one(kiln_head_t *h, void *arg)
{
    query_args *q = arg;
    kiln_head_merge_filtered(h, q->sel, q->start_ms, q->end_ms, q->filter, q->tree);
}

void kiln_ingester_merge_filtered(kiln_ingester_t *ing, const char *tenants,
                                  const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                  const kiln_head_filter *f, kiln_tree_t *t)
{
    query_args q = {sel, start_ms, end_ms, NULL, NULL, NULL, NULL, f, t, NULL};
    each_head(ing, tenants, start_ms, end_ms, merge_one, &q);
}

void kiln_ingester_merge_spans(kiln_ingester_t *ing, const char *tenants,
                               const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                               const uint64_t *spans, size_t n_spans, kiln_tree_t *t)
{
    kiln_head_filter f = {NULL, 0, spans, n_spans, NULL, 0};
    kiln_ingester_merge_filtered(ing, tenants, sel, start_ms, end_ms, spans ? &f : NULL, t);
}

void kiln_ingester_merge_tree(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                              int64_t start_ms, int64_t end_ms, kiln_tree_t *t)
{
    kiln_ingester_merge_filtered(ing, tenants, sel, start_ms, end_ms, NULL, t);
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
    query_args q = {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, out};
    pthread_mutex_lock(&ing->mu);
    for (size_t i = 0; i < ing->n; i++)
        stats_one(ing->t[i]->head, &q);
    pthread_mutex_unlock(&ing->mu);
}

void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    query_args q = {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, out};
    each_head(ing, tenants, 0, 0, stats_one, &q);
}

/* ---- ring ownership ---------------------------------------------------------- */

void kiln_ingester_set_ring(kiln_ingester_t *ing, kiln_ring_t *ring, size_t rf, int64_t grace_ns)
{
    ing->ring = ring;
    ing->rf = rf;
    ing->grace_ns = grace_ns;
    ing->ring_changed_ns = kiln_ingester__now_ns();
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
    int64_t now = kiln_ingester__now_ns();
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
                               const kiln_ingester_part *parts, size_t n, kiln_err *err)
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
        while (j < k && strcmp(m[idx[j]].id, ing->instance) != 0)
            j++;
        if (j == k)
            st = kiln_err_set(err, KILN_FAILED_PRECONDITION,
                              "ingester %s does not own this series of tenant %s in the ring",
                              ing->instance, tenant);
    }
    kiln_ring_release(s);
    return st;
}

/* ---- ingester.v1 handlers ------------------------------------------------- */

/* One series of an internal push, decoded and normalised into *part. */
static kiln_status decode_part(const Ingester__V1__ProfileSeries *s, kiln_rpc_ctx *ctx,
                               kiln_ingester_part *part)
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
    *part = (kiln_ingester_part){l, s->n_labels, p, id};
    return st;
}

static kiln_status h_push(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                          ProtobufCMessage **resp)
{
    kiln_ingester_t *ing = svc;
    const Ingester__V1__PushRequest *req = (const Ingester__V1__PushRequest *)msg;
    kiln_ingester_part *parts = kiln_arena_calloc(ctx->arena, req->n_series + 1, sizeof(*parts));
    for (size_t i = 0; i < req->n_series; i++) {
        kiln_status st = decode_part(req->series[i], ctx, &parts[i]);
        if (st != KILN_OK)
            return st;
    }
    kiln_status st = check_owned(ing, ctx->tenant, parts, req->n_series, ctx->err);
    if (st == KILN_OK)
        st = kiln_ingester_append(ing, ctx->tenant, parts, req->n_series, ctx->err);
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

static kiln_status h_merge_tree(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                ProtobufCMessage **resp)
{
    const Ingester__V1__SelectRequest *req = (const Ingester__V1__SelectRequest *)msg;
    kiln_selector_t *sel;
    kiln_status st = select_selector(req, ctx, &sel);
    if (st != KILN_OK)
        return st;
    kiln_head_filter f = {req->filter_keys ? req->keys : NULL, req->n_keys,
                          req->n_spans ? req->spans : NULL,    req->n_spans,
                          req->n_ids ? req->ids : NULL,        req->n_ids};
    static const uint64_t none = 0;
    if (req->filter_keys && req->n_keys == 0)
        f.keys = &none; /* an empty set, not "no filter" */
    kiln_tree_t *t = kiln_tree_create();
    kiln_ingester_merge_filtered(svc, ctx->tenant, sel, req->start, req->end,
                                 req->filter_keys || req->n_spans || req->n_ids ? &f : NULL, t);
    Ingester__V1__TreeResponse *r = kiln_tree_to_response(t, ctx->arena);
    kiln_tree_destroy(t);
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "tree too large");
    *resp = &r->base;
    return KILN_OK;
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

static void collect_profile(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                            int64_t total, uint64_t id)
{
    profiles_acc *a = ctx;
    if (l != a->last) {
        collect_series(&a->series, l, n);
        a->last = l;
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
    r->time_ms[i] = time_ms;
    r->total[i] = total;
    r->id[i] = id;
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
    kiln_ingester_profiles_id(svc, ctx->tenant, sel, req->start, req->end, collect_profile, &a);
    r->series = a.series.sets;
    r->n_series = a.series.n;
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status h_stats(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                           ProtobufCMessage **resp)
{
    (void)msg;
    kiln_head_stats_t s;
    kiln_ingester_stats(svc, ctx->tenant, &s);
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
         &ingester__v1__push_response__descriptor, h_push, ing},
        {"/ingester.v1.IngesterService/Series", &querier__v1__series_request__descriptor,
         &querier__v1__series_response__descriptor, h_series, ing},
        {"/ingester.v1.IngesterService/MergeTree", &ingester__v1__select_request__descriptor,
         &ingester__v1__tree_response__descriptor, h_merge_tree, ing},
        {"/ingester.v1.IngesterService/Profiles", &ingester__v1__select_request__descriptor,
         &ingester__v1__profiles_response__descriptor, h_profiles, ing},
        {"/ingester.v1.IngesterService/Stats", &ingester__v1__stats_request__descriptor,
         &ingester__v1__stats_response__descriptor, h_stats, ing},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        kiln_rpc_register(rpc, &methods[i]);
}
