/* SPDX-License-Identifier: Apache-2.0
 * ingester: the ingester.v1 RPC handlers and ring ownership around a
 * storage engine (kiln_db, db.h), which it opens and owns. A push arrives
 * as one record (PushRequest.record: the distributor's normalised parts in
 * the WAL record format) or, from older distributors, as pprof per series;
 * either way a push of a series this ingester does not own in the ring is
 * refused. Reads (Series, MergeTree, Profiles, Stats) go through
 * kiln_db_read. In -target=all the distributor and querier reach the db
 * in process, through its local store (kiln_db_store). Thread-safe. */
#ifndef KILN_INGESTER_H
#define KILN_INGESTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "head.h"
#include "objstore.h"
#include "overrides.h"
#include "ring.h"
#include "rpc.h"
#include "status.h"

typedef struct kiln_ingester kiln_ingester_t;

typedef struct kiln_ingester_config {
    const char *storage_path;       /* this process's own state directory */
    kiln_objstore_t *store;         /* where blocks go (borrowed, already open;
                                       NULL = <storage_path>/bucket) */
    int64_t wal_max_delay_ns;       /* group-commit wait for company (0 = none) */
    size_t wal_segment_bytes;       /* WAL segment size */
    bool wal_no_fsync;              /* benchmarks of the in-memory path only: never in service */
    int64_t max_block_duration_ns;  /* cut the head into a block after this long */
    size_t max_head_samples;        /* ...or once it holds this many samples */
    size_t max_head_bytes;          /* ...or the heads of all tenants this many bytes
                                       (kiln_db_config; 0 = no byte budget) */
    int64_t flush_check_ns;         /* how often the flusher looks (0 = 5 s) */
    bool flush_on_shutdown;         /* write the heads as blocks when stopping */
    bool heads_only;                /* queries read heads only: in a cluster the
                                       queriers read the shared store themselves */
    int64_t retire_delay_ns;        /* a written head stays read this long
                                       (kiln_db_config) */
    const kiln_overrides_t *limits; /* per-tenant max_global_series (borrowed;
                                       NULL = no series limit) */
} kiln_ingester_config;

/** Creates an ingester and opens its database (replaying the WAL).
 * KILN_UNAVAILABLE with err when the storage path cannot be used. */
kiln_status kiln_ingester_create(const kiln_ingester_config *cfg, kiln_ingester_t **out,
                                 kiln_err *err);
/** Closes the database and frees the ingester; NULL is a no-op. */
void kiln_ingester_destroy(kiln_ingester_t *ing);
/** Registers the ingester.v1.IngesterService methods in the registry, on
 * the cluster plane (KILN_RPC_INTERNAL): never served on a public port. */
void kiln_ingester_register(kiln_ingester_t *ing, kiln_rpc_registry_t *rpc);

/** The ingester's database (owned by the ingester). */
kiln_db_t *kiln_ingester_db(kiln_ingester_t *ing);

/** This ingester's instance id (its database's). */
const char *kiln_ingester_instance(const kiln_ingester_t *ing);

/** Writes every head as a block now (before leaving a ring). */
kiln_status kiln_ingester_flush(kiln_ingester_t *ing, kiln_err *err);

/** Joins a ring (borrowed): from then on a push of a series this ingester
 * is not among the rf replicas of is refused with FAILED_PRECONDITION,
 * unless the ring changed within the last grace_ns (distributors may still
 * be on the previous ring), and the series limit is split over the ring's
 * active ingesters. Call before serving. */
void kiln_ingester_set_ring(kiln_ingester_t *ing, kiln_ring_t *ring, size_t rf, int64_t grace_ns);

/** Whether err is the refusal for the series limit (kiln_db_is_series_limit). */
bool kiln_ingester_is_series_limit(const kiln_err *err);

/** Appends the Prometheus text of the per-tenant series figures
 * (kiln_db_metrics, with the ring's current split). */
void kiln_ingester_metrics(kiln_ingester_t *ing, kiln_buf *out);

#endif
