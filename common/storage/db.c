/* SPDX-License-Identifier: Apache-2.0
 * db: tenants, appends, replay and reads of the storage engine. */
#include "db_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "block.h"
#include "clock.h"
#include "log.h"
#include "tenants.h"
#include "xmalloc.h"

/* Profile keys remembered against replayed retries (8 MB): at 10 series a
 * push, the last 100,000 pushes. */
#define HELD_KEYS (1u << 20)

static kiln_status open_storage(kiln_db_t *db, kiln_err *err);

kiln_status kiln_db_open(const kiln_db_config *cfg, kiln_db_t **out, kiln_err *err)
{
    kiln_db_t *db = kiln_xcalloc(1, sizeof(*db));
    db->cfg = *cfg;
    db->path = kiln_xstrdup(cfg->path);
    db->cfg.path = db->path;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->flush_mu, NULL);
    pthread_mutex_init(&db->split_mu, NULL);
    pthread_rwlock_init(&db->cut, NULL);
    db->held = kiln_seen_keys_create(HELD_KEYS);
    kiln_status st = open_storage(db, err);
    if (st != KILN_OK) {
        kiln_db_close(db);
        return st;
    }
    kiln_db__start_flusher(db);
    *out = db;
    return KILN_OK;
}

void kiln_db_close(kiln_db_t *db)
{
    if (db == NULL)
        return;
    kiln_db__stop_flusher(db, db->cfg.flush_on_close);
    for (size_t i = 0; i < db->n; i++) {
        free(db->t[i]->tenant);
        kiln_head_destroy(db->t[i]->head);
        kiln_head_destroy(db->t[i]->flushing);
        pthread_mutex_destroy(&db->t[i]->lim_mu);
        free(db->t[i]);
    }
    free(db->t);
    kiln_blockset_destroy(db->blocks);
    kiln_wal_close(db->wal);
    kiln_objstore_close(db->own_store);
    free(db->path);
    kiln_seen_keys_destroy(db->held);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->flush_mu);
    pthread_mutex_destroy(&db->split_mu);
    pthread_rwlock_destroy(&db->cut);
    free(db);
}

const char *kiln_db_instance(const kiln_db_t *db)
{
    return db->instance;
}

tenant_head *kiln_db__tenant(kiln_db_t *db, const char *tenant, bool create)
{
    tenant_head *t = NULL;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->n && t == NULL; i++) {
        if (strcmp(db->t[i]->tenant, tenant) == 0)
            t = db->t[i];
    }
    if (t == NULL && create) {
        KILN_GROW(db->t, db->cap, db->n + 1);
        t = kiln_xcalloc(1, sizeof(*t));
        t->tenant = kiln_xstrdup(tenant);
        t->head = kiln_head_create();
        pthread_mutex_init(&t->lim_mu, NULL);
        db->t[db->n++] = t;
        kiln_head_stats_t s;
        kiln_head_stats(t->head, &s);
        kiln_db__add_bytes(db, s.bytes);
    }
    pthread_mutex_unlock(&db->mu);
    return t;
}

tenant_head **kiln_db__tenants(kiln_db_t *db, size_t *n)
{
    pthread_mutex_lock(&db->mu);
    tenant_head **t = kiln_xmalloc((db->n + 1) * sizeof(*t));
    if (db->n != 0)
        memcpy(t, db->t, db->n * sizeof(*t));
    *n = db->n;
    pthread_mutex_unlock(&db->mu);
    return t;
}

/* ---- appends ----------------------------------------------------------------- */

/* The held key of a part whose first stored series is key (from
 * kiln_head_series_keys): a hash of that series' fingerprint, the part's
 * time and its push id; 0 when the push has no id (such profiles are never
 * duplicates of one another). The series key is built for the append
 * anyway: hashing the part's labels again here was 3% of an OTLP export.
 * Keys live only in memory (the held set is rebuilt by replay), so their
 * recipe may change between versions. */
static uint64_t part_key(const kiln_head_part *p, const kiln_head_series_key *key)
{
    if (p->id == 0)
        return 0;
    uint64_t k[3] = {p->profile->n_sample_types != 0 ? key[0].fp : 0,
                     (uint64_t)(p->profile->time_nanos / 1000000), p->id};
    return XXH3_64bits(k, sizeof(k)) | 1;
}

/* Copies into kept (their series keys into kept_keys) the parts this
 * database does not hold yet, claiming their held keys (in held, to
 * release if the append fails); returns how many. */
static size_t claim_parts(kiln_db_t *db, const kiln_head_part *parts,
                          const kiln_head_series_key *const *keys, size_t n, kiln_head_part *kept,
                          const kiln_head_series_key **kept_keys, uint64_t *held)
{
    /* Keys first (pk: every part's, all: the non-zero ones), then claimed
     * in one call (kiln_seen_keys_add_all). */
    uint64_t *pk = kiln_xmalloc(2 * (n + 1) * sizeof(*pk)), *all = pk + n + 1;
    bool *added = kiln_xmalloc(n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        pk[i] = part_key(&parts[i], keys[i]);
        if (pk[i] != 0)
            all[m++] = pk[i];
    }
    kiln_seen_keys_add_all(db->held, all, m, added);
    size_t k = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        if (pk[i] != 0 && !added[j++])
            continue;
        held[k] = pk[i];
        kept_keys[k] = keys[i];
        kept[k++] = parts[i];
    }
    free(pk);
    free(added);
    return k;
}

static void unclaim(kiln_db_t *db, const uint64_t *keys, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (keys[i] != 0)
            kiln_seen_keys_remove(db->held, keys[i]);
}

/* Applies a batch (keys: its stored series, or NULL) to the tenant's head
 * (after it is durable, or on replay). `cut` held shared. */
static void apply(kiln_db_t *db, const char *tenant, const kiln_head_part *parts,
                  const kiln_head_series_key *const *keys, size_t n)
{
    tenant_head *t = kiln_db__tenant(db, tenant, true);
    /* Appends run at once under `cut` held shared: the first one to find
     * the head empty sets its start (a plain test-and-set raced, seen by
     * TSan); cuts read and reset it holding `cut` exclusively. */
    int64_t unset = 0;
    __atomic_compare_exchange_n(&t->head_start_ns, &unset, kiln_wall_ns(), false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    kiln_db__add_bytes(db, kiln_head_append_keyed(t->head, parts, keys, n));
}

/* The heads may grow to twice their cut size while a flush is behind; past
 * that pushes are refused (and retried by clients) rather than growing
 * memory without bound. For bytes, the heads being flushed count too: what
 * is bounded is the memory of every head, so the heads of all tenants hold
 * at most twice max_head_bytes (and one push). `cut` held shared. */
static kiln_status check_backpressure(kiln_db_t *db, tenant_head *t, kiln_err *err)
{
    size_t appending, flushing, budget = db->cfg.max_head_bytes;
    kiln_db_head_bytes(db, &appending, &flushing);
    if (budget != 0 && (appending + flushing) / 2 >= budget) /* 2 * budget may overflow */
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "ingester heads hold %.1f MiB (%.1f MiB being flushed), twice "
                            "-ingester.max-head-bytes of %.1f MiB: flushing is behind, retry later",
                            (double)(appending + flushing) / 1048576, (double)flushing / 1048576,
                            (double)budget / 1048576);
    if (db->cfg.max_head_samples == 0)
        return KILN_OK;
    kiln_head_stats_t s;
    kiln_head_stats(t->head, &s);
    if (s.samples < 2 * db->cfg.max_head_samples)
        return KILN_OK;
    return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                        "ingester head of tenant %s holds %zu samples, twice "
                        "-ingester.max-head-samples: flushing is behind, retry later",
                        t->tenant, s.samples);
}

/* Checks, logs and applies kept parts (their stored series keys) whose
 * record is rec. */
static kiln_status append_kept(kiln_db_t *db, const char *tenant, const kiln_head_part *kept,
                               const kiln_head_series_key *const *keys, size_t k,
                               const uint8_t *rec, size_t len, kiln_err *err)
{
    pthread_rwlock_rdlock(&db->cut);
    tenant_head *t = kiln_db__tenant(db, tenant, true);
    size_t reserved = 0;
    kiln_status st = check_backpressure(db, t, err);
    if (st == KILN_OK)
        st = kiln_db__reserve_series(db, t, kept, keys, k, &reserved, err);
    if (st == KILN_OK)
        st = kiln_wal_append(db->wal, rec, len, NULL, err);
    if (st == KILN_OK)
        apply(db, tenant, kept, keys, k);
    kiln_db__release_series(t, reserved, st == KILN_OK);
    pthread_rwlock_unlock(&db->cut);
    return st;
}

/* Appends the parts not held yet; rec (the record of all n parts, or NULL)
 * is written as it is when every part is kept, else the kept ones are
 * encoded afresh. Their stored series are built once, for the held keys,
 * the limit's check and the head. */
static kiln_status append_parts(kiln_db_t *db, const char *tenant, const kiln_head_part *parts,
                                size_t n, const uint8_t *rec, size_t len, kiln_err *err)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const kiln_head_series_key *const *keys = kiln_head_series_keys(parts, n, a);
    kiln_head_part *kept = kiln_arena_alloc(a, (n + 1) * sizeof(*kept));
    const kiln_head_series_key **kept_keys = kiln_arena_alloc(a, (n + 1) * sizeof(*kept_keys));
    uint64_t *held = kiln_arena_alloc(a, (n + 1) * sizeof(*held));
    size_t k = claim_parts(db, parts, keys, n, kept, kept_keys, held);
    kiln_status st = KILN_OK;
    kiln_buf enc;
    kiln_buf_init(&enc, 0);
    if (k > 0 && (rec == NULL || k < n)) {
        kiln_record_encode(tenant, kept, k, &enc);
        rec = (const uint8_t *)enc.ptr, len = enc.len;
    }
    if (k > 0)
        st = append_kept(db, tenant, kept, kept_keys, k, rec, len, err);
    if (st != KILN_OK)
        unclaim(db, held, k);
    kiln_buf_free(&enc);
    kiln_arena_destroy(a);
    return st;
}

kiln_status kiln_db_append(kiln_db_t *db, const char *tenant, const kiln_head_part *parts, size_t n,
                           kiln_err *err)
{
    return append_parts(db, tenant, parts, n, NULL, 0, err);
}

kiln_status kiln_db_append_record(kiln_db_t *db, kiln_arena_t *a, const uint8_t *data, size_t len,
                                  kiln_db_admit_fn admit, void *admit_ctx, kiln_err *err)
{
    kiln_record rec;
    kiln_err why = {KILN_OK, ""};
    kiln_status st = kiln_record_decode(a, data, len, &rec, &why);
    /* Bytes that do not decode are the sender's fault; running out of the
     * request's arena is not. */
    if (st == KILN_DATA_LOSS || st == KILN_FAILED_PRECONDITION)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "malformed push record: %s", why.msg);
    if (st != KILN_OK)
        return kiln_err_set(err, st, "push record: %s", why.msg);
    st = admit != NULL ? admit(admit_ctx, &rec, err) : KILN_OK;
    if (st != KILN_OK)
        return st;
    return append_parts(db, rec.tenant, rec.parts, rec.n, data, len, err);
}

void kiln_db__wal_metrics(kiln_db_t *db, kiln_buf *out)
{
    kiln_wal_stats s;
    kiln_wal_stats_get(db->wal, &s);
    kiln_buf_printf(out,
                    "# HELP kiln_wal_records_total WAL records made durable (one per push "
                    "acknowledged by this ingester).\n# TYPE kiln_wal_records_total counter\n"
                    "kiln_wal_records_total %llu\n"
                    "# HELP kiln_wal_fsyncs_total WAL group commits: one write and one fdatasync "
                    "each, shared by the records of every connection and tenant waiting.\n"
                    "# TYPE kiln_wal_fsyncs_total counter\nkiln_wal_fsyncs_total %llu\n"
                    "# HELP kiln_wal_bytes_total Bytes written to the WAL (framed records).\n"
                    "# TYPE kiln_wal_bytes_total counter\nkiln_wal_bytes_total %llu\n",
                    (unsigned long long)s.records, (unsigned long long)s.syncs,
                    (unsigned long long)s.bytes);
}

/* ---- open and replay ----------------------------------------------------------- */

/* Applies a replayed record's parts, remembering their keys so a retry
 * after the restart is not stored twice. */
static void replay_parts(kiln_db_t *db, kiln_arena_t *a, const kiln_record *rec)
{
    const kiln_head_series_key *const *keys = kiln_head_series_keys(rec->parts, rec->n, a);
    kiln_head_part *kept = kiln_arena_calloc(a, rec->n + 1, sizeof(*kept));
    const kiln_head_series_key **kept_keys = kiln_arena_calloc(a, rec->n + 1, sizeof(*kept_keys));
    uint64_t *held = kiln_arena_calloc(a, rec->n + 1, sizeof(*held));
    size_t k = claim_parts(db, rec->parts, keys, rec->n, kept, kept_keys, held);
    if (k > 0)
        apply(db, rec->tenant, kept, kept_keys, k);
}

/* Replays one WAL record: every series decodes, or the record is skipped.
 * A record of a format this build does not know stops the start-up
 * (open_wal) rather than be dropped: a newer build wrote it. */
static void replay_record(void *ctx, uint64_t segment, const uint8_t *data, size_t len)
{
    kiln_db_t *db = ctx;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_record rec;
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_record_decode(a, data, len, &rec, &err);
    if (st == KILN_FAILED_PRECONDITION && db->replay_err.code == KILN_OK)
        kiln_err_set(&db->replay_err, st, "WAL segment %llu: %s", (unsigned long long)segment,
                     err.msg);
    else if (st != KILN_OK)
        KILN_LOG_WARN("db", "skipping a WAL record of segment %llu: %s",
                      (unsigned long long)segment, err.msg);
    else if (segment >= kiln_blockset_wal_until(db->blocks, db->instance, rec.tenant))
        replay_parts(db, a, &rec); /* else already in a block it flushed */
    kiln_arena_destroy(a);
}

/* This database's id: read from <path>/instance_id, made once. */
static void load_instance_id(kiln_db_t *db)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/instance_id", db->path);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%39s", db->instance) != 1)
            db->instance[0] = '\0';
        fclose(f);
    }
    if (db->instance[0] != '\0')
        return;
    kiln_ulid(kiln_wall_ms(), db->instance);
    f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%s\n", db->instance);
        fclose(f);
    }
}

static kiln_status open_wal(kiln_db_t *db, kiln_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/wal", db->path);
    kiln_wal_config wc = {db->cfg.wal_max_delay_ns,
                          db->cfg.wal_segment_bytes ? db->cfg.wal_segment_bytes : 128u << 20,
                          !db->cfg.wal_no_fsync};
    kiln_status st = kiln_wal_open(dir, &wc, &db->wal, err);
    if (st == KILN_OK)
        st = kiln_wal_replay(db->wal, replay_record, db, err);
    if (st == KILN_OK && db->replay_err.code != KILN_OK)
        return kiln_err_set(err, db->replay_err.code,
                            "%s: refusing to start rather than drop it; run the build that "
                            "wrote it, or move %s away",
                            db->replay_err.msg, dir);
    if (st == KILN_OK) {
        kiln_head_stats_t s;
        kiln_db_stats(db, NULL, &s);
        KILN_LOG_INFO("db", "replayed WAL %s: %zu profiles, %zu series not yet in blocks", dir,
                      s.profiles, s.series);
    }
    return st;
}

/* The state path, the store's blocks, then the WAL (whose replay skips
 * what this instance's blocks already hold). */
static kiln_status open_storage(kiln_db_t *db, kiln_err *err)
{
    if (mkdir(db->path, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot create -storage.path %s: %s", db->path,
                            strerror(errno));
    load_instance_id(db);
    kiln_status st = KILN_OK;
    if (db->cfg.store == NULL) {
        char bucket[4096];
        snprintf(bucket, sizeof(bucket), "%s/bucket", db->path);
        st = kiln_objstore_open_fs(bucket, &db->own_store, err);
        db->cfg.store = db->own_store;
    }
    if (st != KILN_OK)
        return st;
    db->blocks = kiln_blockset_create(db->cfg.store);
    st = kiln_blockset_sync(db->blocks, err);
    if (st != KILN_OK)
        return st;
    return open_wal(db, err);
}
