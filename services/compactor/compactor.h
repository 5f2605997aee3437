/* SPDX-License-Identifier: Apache-2.0
 * compactor: keeps the object store's blocks few and in date. Each round it
 * (1) deletes blocks that a compacted block lists as sources (once they
 * have been superseded for deletion_delay, so readers have switched), (2) deletes blocks past
 * the tenant's retention, and (3) merges a tenant's level-N blocks that fall
 * in the same aligned range (level 1 -> 4h, level 2 -> 24h) into one
 * level-N+1 block, dropping replicated profiles. A merged block is durable
 * before any source is deleted. A damaged block (its open or a chunk fails
 * with data_loss) is quarantined: never merged again by this process. Runs on its own thread; talks
 * to the rest of Kiln only through the object store. */
#ifndef KILN_COMPACTOR_H
#define KILN_COMPACTOR_H

#include <stdint.h>

#include "objstore.h"
#include "overrides.h"
#include "status.h"

typedef struct kiln_compactor kiln_compactor_t;

typedef struct kiln_compactor_config {
    const char *bucket_dir;    /* the object store root */
    int64_t interval_ns;       /* between rounds */
    int64_t retention_ns;      /* default retention (0 = keep forever) */
    kiln_overrides_t *limits;  /* per-tenant retention overrides (borrowed; may be NULL) */
    int64_t deletion_delay_ns; /* a superseded block is deleted this long after it was
                                  first seen superseded: readers re-list the store more
                                  often than that, so none still reads it */
    kiln_objstore_t *store;    /* the object store (borrowed; NULL = open bucket_dir) */
} kiln_compactor_config;

typedef struct kiln_compactor_stats {
    uint64_t rounds, compacted, deleted_superseded, deleted_retention;
    uint64_t failed;      /* groups left alone because a source did not merge whole */
    uint64_t quarantined; /* damaged blocks left out of every later round */
} kiln_compactor_stats;

/** Opens the store (unless cfg->store is given) and starts the compaction thread. */
kiln_status kiln_compactor_create(const kiln_compactor_config *cfg, kiln_compactor_t **out,
                                  kiln_err *err);
/** Stops the thread (finishing the round in progress) and frees; NULL is a no-op. */
void kiln_compactor_destroy(kiln_compactor_t *c);

/** Runs one round now, on the caller's thread (tests, and the thread itself). */
kiln_status kiln_compactor_run_once(kiln_compactor_t *c, int64_t now_ms, kiln_err *err);

/** Counters since create. */
void kiln_compactor_stats_get(kiln_compactor_t *c, kiln_compactor_stats *out);
/** Blocks quarantined since create (a damaged chunk or a block that does
 * not open with data_loss or invalid_argument); any thread. */
uint64_t kiln_compactor_quarantined(kiln_compactor_t *c);

#endif
