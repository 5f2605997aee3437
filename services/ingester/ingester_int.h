/* SPDX-License-Identifier: Apache-2.0
 * ingester_int: state shared by the ingester's files (ingester.c: tenants,
 * appends, queries; flush.c: cutting heads into blocks; ingester_rpc.c). */
#ifndef KILN_INGESTER_INT_H
#define KILN_INGESTER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "blockset.h"
#include "seen_keys.h"
#include "ingester.h"
#include "objstore.h"
#include "record.h"
#include "ticker.h"
#include "wal.h"

/* A tenant's in-memory data: the head taking appends and, while it is being
 * written as a block, the previous one (still queried). */
typedef struct tenant_head {
    char *tenant;
    kiln_head_t *head;
    kiln_head_t *flushing;
    int64_t head_start_ns; /* when the head got its first profile */
    char flushed_ulid[32]; /* the block `flushing` was written as, once written */
    uint64_t cut_seg;      /* the WAL segment started when `flushing` was cut */
    /* max_global_series_per_tenant (series_limit.c): the tenant's series in
     * memory are those of `head` and `flushing` together, each counted once;
     * a series stops counting when the flushed head is dropped. */
    pthread_mutex_t lim_mu; /* guards the three below */
    size_t fresh;           /* series of `head` not in `flushing` (0 at a cut) */
    size_t pending;         /* new series of pushes between their check and their append */
    uint64_t refused;       /* pushes refused for the limit */
} tenant_head;

struct kiln_ingester {
    kiln_ingester_config cfg;
    kiln_wal_t *wal;
    char *storage_path; /* owned copy of cfg.storage_path */
    char instance[40];  /* this ingester's id, kept in <storage.path>/instance_id */
    kiln_objstore_t *store;
    bool owns_store; /* opened here (cfg.store was NULL), so closed here */
    kiln_blockset_t *blocks;

    /* Appends and queries hold `cut` shared; cutting heads holds it
     * exclusively, so a WAL rotation and the head swap are atomic with
     * respect to appends and no query sees a head being destroyed. */
    pthread_rwlock_t cut;
    /* Held by every flush round (the flusher's tick, kiln_ingester_flush
     * before leaving a ring, the last one at shutdown) from its cut to its
     * retire: the rounds are the only writers of `flushing`, so one round
     * at a time means a cut head is written once and freed by the round
     * that wrote it. Taken before `cut`, never while holding it. */
    pthread_mutex_t flush_mu;
    pthread_mutex_t mu; /* guards the tenant array (entries are never freed before destroy) */
    tenant_head **t;
    size_t n, cap;
    kiln_ticker flusher;
    kiln_err replay_err; /* the first record replay refused (a newer format) */
    /* Keys of the profiles held (push id, series, time; see part_key): a
     * push retried after it failed its quorum elsewhere may reach a replica
     * that stored the first attempt, which must not hold it twice. */
    kiln_seen_keys_t *held;

    /* Ring ownership checks (cluster only; ring NULL otherwise). */
    kiln_ring_t *ring;
    size_t rf;
    int64_t grace_ns;
    pthread_mutex_t ring_mu; /* guards the two below */
    uint64_t ring_sig;       /* signature of the membership last seen */
    int64_t ring_changed_ns; /* when it last changed */
};

/** Checks the series the parts (the push's, not yet in the WAL) would
 * add to tenant t against the tenant's local series limit and, when they
 * fit, reserves them (*reserved; release with kiln_ingester__release_series
 * whatever happens next). KILN_FAILED_PRECONDITION naming the limit when
 * they do not fit. `cut` held shared (series_limit.c). */
kiln_status kiln_ingester__reserve_series(kiln_ingester_t *ing, tenant_head *t,
                                          const kiln_ingester_part *parts, size_t n,
                                          size_t *reserved, kiln_err *err);
/** Releases a reservation; applied tells whether the push reached the
 * head. `cut` held shared. */
void kiln_ingester__release_series(tenant_head *t, size_t reserved, bool applied);
/** The tenant's series in memory (head and flushing head, each once).
 * `cut` held shared. */
size_t kiln_ingester__memory_series(tenant_head *t);

/** Wall-clock time in ns. */
int64_t kiln_ingester__now_ns(void);

/** Starts the background flusher (flush.c). */
void kiln_ingester__start_flusher(kiln_ingester_t *ing);
/** Stops it, flushing the heads once more when flush is set. */
void kiln_ingester__stop_flusher(kiln_ingester_t *ing, bool flush);
/** Cuts every non-empty head into a block now (flush.c). */
kiln_status kiln_ingester__flush(kiln_ingester_t *ing, kiln_err *err);

#endif
