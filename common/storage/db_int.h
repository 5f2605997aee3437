/* SPDX-License-Identifier: Apache-2.0
 * db_int: state shared by the database's files (db.c: tenants, appends,
 * replay, reads; db_flush.c: cutting heads into blocks; db_limit.c: the
 * series limit). Not part of any other module's contract. */
#ifndef KILN_DB_INT_H
#define KILN_DB_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "blockset.h"
#include "db.h"
#include "seen_keys.h"
#include "ticker.h"
#include "wal.h"

/* A tenant's in-memory data: the head taking appends and, while it is being
 * written as a block, the previous one (still read). */
typedef struct tenant_head {
    char *tenant;
    kiln_head_t *head;
    kiln_head_t *flushing;
    int64_t head_start_ns; /* when the head got its first profile */
    char flushed_ulid[32]; /* the block `flushing` was written as, once written */
    int64_t flushed_ns;    /* kiln_mono_ns() when flushed_ulid was set */
    uint64_t cut_seg;      /* the WAL segment started when `flushing` was cut */
    /* max_global_series_per_tenant (db_limit.c): the tenant's series in
     * memory are those of `head` and `flushing` together, each counted once;
     * a series stops counting when the flushed head is dropped. */
    pthread_mutex_t lim_mu; /* guards the three below */
    size_t fresh;           /* series of `head` not in `flushing` (0 at a cut) */
    size_t pending;         /* new series of pushes between their check and their append */
    uint64_t refused;       /* pushes refused for the limit */
} tenant_head;

struct kiln_db {
    kiln_db_config cfg;
    kiln_wal_t *wal;
    char *path;                 /* owned copy of cfg.path */
    char instance[40];          /* this database's id, kept in <path>/instance_id */
    kiln_objstore_t *own_store; /* <path>/bucket when cfg.store was NULL */
    kiln_blockset_t *blocks;

    /* Appends and reads hold `cut` shared; cutting heads holds it
     * exclusively, so a WAL rotation and the head swap are atomic with
     * respect to appends and no read sees a head being destroyed. */
    pthread_rwlock_t cut;
    /* The flush owner's lock, held by every flush round (the flusher's
     * tick, kiln_db_flush, the last one at close) from its cut to its
     * retire, taken only in db_flush.c: the rounds are the only writers
     * of `flushing`, so a cut head is written once and freed by the round
     * that wrote it. Taken before `cut`, never while holding it. */
    pthread_mutex_t flush_mu;
    pthread_mutex_t mu; /* guards the tenant array (entries are never freed before close) */
    tenant_head **t;
    size_t n, cap;
    kiln_ticker flusher;
    kiln_err replay_err; /* the first record replay refused (a newer format) */
    /* kiln_profile_key of the profiles held that have a push id: a push
     * retried after it failed its quorum elsewhere may reach a replica
     * that stored the first attempt, which must not hold it twice. */
    kiln_seen_keys_t *held;

    /* The bytes of the heads (kiln_head_stats_t.bytes), for the byte
     * budget without visiting every tenant: `appending` grows by what each
     * append adds (atomically: appends to different tenants run at once);
     * both are recounted exactly by cuts and retires, which hold `cut`
     * exclusively (kiln_db__recount_bytes). */
    size_t appending_bytes, flushing_bytes;

    /* The ring split of the series limit (kiln_db_set_ring_split). */
    pthread_mutex_t split_mu;
    bool ring;
    size_t active, rf;
};

/** The tenant's state; created when create is set, else NULL when absent.
 * Entries are never removed, so the pointer stays valid (db.c). */
tenant_head *kiln_db__tenant(kiln_db_t *db, const char *tenant, bool create);
/** A snapshot of the tenant entries (malloc'd; *n of them). */
tenant_head **kiln_db__tenants(kiln_db_t *db, size_t *n);

/** Checks the series the parts (the push's, not yet in the WAL; keys
 * their stored series, kiln_head_series_keys) would add to tenant t
 * against the tenant's local series limit and, when they fit, reserves
 * them (*reserved; release with kiln_db__release_series whatever happens
 * next). KILN_FAILED_PRECONDITION naming the limit when they do not fit.
 * `cut` held shared (db_limit.c). */
kiln_status kiln_db__reserve_series(kiln_db_t *db, tenant_head *t, const kiln_head_part *parts,
                                    const kiln_head_series_key *const *keys, size_t n,
                                    size_t *reserved, kiln_err *err);
/** Releases a reservation; applied tells whether the push reached the
 * head. `cut` held shared. */
void kiln_db__release_series(tenant_head *t, size_t reserved, bool applied);

/** Appends the WAL's counters (kiln_wal_records_total, _fsyncs_total,
 * _bytes_total) in Prometheus text (db.c). */
void kiln_db__wal_metrics(kiln_db_t *db, kiln_buf *out);

/** Sets the byte counters to the sums over the heads of every tenant.
 * `cut` held exclusively (db_flush.c). */
void kiln_db__recount_bytes(kiln_db_t *db);
/** Adds what an append grew tenant heads by, waking the flusher when that
 * takes the heads to max_head_bytes. `cut` held shared (db_flush.c). */
void kiln_db__add_bytes(kiln_db_t *db, size_t grown);

/** Appends the byte budget's gauges, kiln_ingester_head_bytes by state
 * and kiln_ingester_max_head_bytes, in Prometheus text (db_flush.c). */
void kiln_db__bytes_metrics(kiln_db_t *db, kiln_buf *out);

/** Starts the background flusher (db_flush.c). */
void kiln_db__start_flusher(kiln_db_t *db);
/** Stops it, flushing the heads once more when flush is set. */
void kiln_db__stop_flusher(kiln_db_t *db, bool flush);

#endif
