/* SPDX-License-Identifier: Apache-2.0
 * db: the storage engine, one owner of everything an ingester stores: the
 * tenants' heads, the write-ahead log and its replay, the cut of heads
 * into blocks, their flush and retire, the block set over the object store
 * and the held profile keys (a retried push is not stored twice). Every
 * append is one WAL record (record.h), durable before it is applied and
 * acknowledged; open replays the log into the heads. Reads cover heads and
 * blocks through the one read API (read.h). One flush runs at a time by
 * construction: the flusher's tick, kiln_db_flush and the flush at close
 * all go through one owner. Thread-safe. */
#ifndef KILN_DB_H
#define KILN_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "head.h"
#include "objstore.h"
#include "overrides.h"
#include "read.h"
#include "record.h"
#include "status.h"
#include "store.h"

typedef struct kiln_db kiln_db_t;

typedef struct kiln_db_config {
    const char *path;               /* own state: <path>/wal, <path>/instance_id */
    kiln_objstore_t *store;         /* where blocks go (borrowed, already open;
                                       NULL = the db opens <path>/bucket itself:
                                       tests and benchmarks) */
    int64_t wal_max_delay_ns;       /* group-commit wait for company (0 = none) */
    size_t wal_segment_bytes;       /* WAL segment size (0 = 128 MiB) */
    bool wal_no_fsync;              /* benchmarks of the in-memory path only: never in service */
    int64_t max_block_duration_ns;  /* cut a head into a block after this long */
    size_t max_head_samples;        /* ...or once it holds this many samples */
    size_t max_head_bytes;          /* cut every head once the heads taking appends
                                       hold this many bytes together; refuse pushes
                                       at twice it, counting heads being flushed
                                       (0 = no byte budget) */
    int64_t flush_check_ns;         /* how often the flusher looks (0 = 5 s) */
    bool flush_on_close;            /* write the heads as blocks when closing */
    bool heads_only;                /* reads cover heads only (in a cluster the
                                       queriers read the shared store themselves) */
    int64_t retire_delay_ns;        /* a head written as a block stays read this
                                       long before it is dropped (unless flushed
                                       by kiln_db_flush): a cluster's querier
                                       lists the profiles of every head, then asks
                                       for its share of them; a head dropped
                                       between the two sends the querier back
                                       to the blocks for that share (the merge
                                       names the keys it did not find), which
                                       the delay keeps rare. 0 = at once */
    const kiln_overrides_t *limits; /* per-tenant max_global_series (borrowed;
                                       NULL = no series limit) */
} kiln_db_config;

/** The default max_head_bytes for a process that may use `memory` bytes
 * (kiln_memlimit_read; 0 = unknown, then 0: no budget): a quarter of it.
 * The heads hold up to twice the budget (the heads taking appends and those
 * being flushed, before pushes are refused), so half of the memory; the
 * other half is for what the budget does not count: queries' trees and
 * sums, the block being encoded, WAL buffers, requests in flight, the
 * allocator's free lists and, in -target=all, the other modules. */
size_t kiln_db_default_head_bytes(uint64_t memory);

/** Opens the database: the state directory, the store's blocks, then the
 * WAL, replayed into the heads (records already in this instance's blocks
 * are skipped). KILN_UNAVAILABLE when the path cannot be used, the
 * replay's status (KILN_FAILED_PRECONDITION for a WAL record of a newer
 * format) when the log cannot be replayed. */
kiln_status kiln_db_open(const kiln_db_config *cfg, kiln_db_t **out, kiln_err *err);
/** Stops the flusher (flushing once more with flush_on_close) and frees
 * everything but the borrowed store; NULL is a no-op. */
void kiln_db_close(kiln_db_t *db);

/** This database's instance id (kept in <path>/instance_id): blocks it
 * writes name it, and replay skips what its blocks hold. */
const char *kiln_db_instance(const kiln_db_t *db);

/** Appends one push of tenant (normalised parts) all or nothing: encoded
 * as one WAL record, durable before KILN_OK. Parts held already (the same
 * kiln_profile_key: a retry) are left out. KILN_UNAVAILABLE when the log
 * cannot be written, KILN_RESOURCE_EXHAUSTED when flushing is behind (the
 * tenant's head at twice max_head_samples, or every head together at
 * twice max_head_bytes; the message names the flag),
 * KILN_FAILED_PRECONDITION naming max_global_series_per_tenant
 * (kiln_db_is_series_limit) when the push would take the tenant past its
 * series limit: nothing was applied. */
kiln_status kiln_db_append(kiln_db_t *db, const char *tenant, const kiln_head_part *parts, size_t n,
                           kiln_err *err);

/** Checks a decoded record before it is appended (the ingester: the
 * tenant and ring ownership); a status other than KILN_OK refuses it. */
typedef kiln_status (*kiln_db_admit_fn)(void *ctx, const kiln_record *rec, kiln_err *err);

/** kiln_db_append of a record's bytes as they came over the wire: decoded
 * and bounds-checked as replay decodes them (into a, which must outlive
 * the call only), passed to admit (NULL = none), then written to the WAL
 * as they are (re-encoded only when some parts were held already) and
 * applied. KILN_INVALID_ARGUMENT for a record that does not decode (or of
 * a format this build does not know), KILN_RESOURCE_EXHAUSTED when a's cap
 * is reached decoding it: nothing is stored then. */
kiln_status kiln_db_append_record(kiln_db_t *db, kiln_arena_t *a, const uint8_t *data, size_t len,
                                  kiln_db_admit_fn admit, void *admit_ctx, kiln_err *err);

/** One read (read.h) over the heads and blocks of the tenants in `tenants`
 * ("a" or "a|b"); a head being flushed is read until its block is in the
 * set, never both. KILN_DATA_LOSS when a block's chunk does not load, the
 * cancellation statuses when the thread's token fires. */
kiln_status kiln_db_read(kiln_db_t *db, const char *tenants, const kiln_read_filter *f,
                         const kiln_read_visitor *v, kiln_err *err);

/** Sums the stats of the tenants in `tenants`: their heads and (unless
 * heads_only) blocks; NULL = the heads taking appends of every tenant. */
void kiln_db_stats(kiln_db_t *db, const char *tenants, kiln_head_stats_t *out);

/** The bytes the heads of every tenant hold (kiln_head_stats_t.bytes):
 * those taking appends in *appending, those cut and being written as
 * blocks in *flushing (either may be NULL). What the byte budget
 * (max_head_bytes) is checked against; O(1), no lock. */
void kiln_db_head_bytes(kiln_db_t *db, size_t *appending, size_t *flushing);

/** Blocks of the db's block set quarantined since open (blockset.h). */
size_t kiln_db_blocks_quarantined(kiln_db_t *db);

/** Writes every non-empty head as a block now (before leaving a ring, and
 * tests). KILN_UNAVAILABLE when some head could not be written (it stays
 * and is tried again). */
kiln_status kiln_db_flush(kiln_db_t *db, kiln_err *err);

/** How the series limit is split over a ring: with a ring, a tenant's
 * local limit is its global one divided over the `active` ingesters times
 * `rf` (not applied while active is 0); without one, the global limit. */
void kiln_db_set_ring_split(kiln_db_t *db, bool ring, size_t active, size_t rf);

/** Whether err is the refusal for the series limit (a client error: the
 * push cannot succeed until series age out or the limit is raised), as it
 * arrives from a remote ingester too. */
bool kiln_db_is_series_limit(const kiln_err *err);

/** Appends the Prometheus text of the per-tenant series figures:
 * kiln_ingester_memory_series, kiln_ingester_series_limit and
 * kiln_ingester_series_limit_refused_total; the byte budget's
 * kiln_ingester_head_bytes{state} and kiln_ingester_max_head_bytes; then
 * the WAL's group commit
 * counters: kiln_wal_records_total, kiln_wal_fsyncs_total and
 * kiln_wal_bytes_total. */
void kiln_db_metrics(kiln_db_t *db, kiln_buf *out);

/** The local implementation of the ingester interface (store.h): direct
 * calls into db, which stays owned by whoever opened it. */
kiln_store_t kiln_db_store(kiln_db_t *db);
#endif
