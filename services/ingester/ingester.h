/* SPDX-License-Identifier: Apache-2.0
 * ingester: owns the heads of all tenants in this process and serves the
 * internal ingester.v1 API (distributor -> ingester writes, querier ->
 * ingester reads). In -target=all the distributor and querier call the
 * in-process functions below directly. Every append is written to the
 * write-ahead log (<storage.path>/wal) and made durable before it is applied
 * and acknowledged; start-up replays the log into the heads. Thread-safe. */
#ifndef KILN_INGESTER_H
#define KILN_INGESTER_H

#include <stddef.h>
#include <stdint.h>

#include "head.h"
#include "buf.h"
#include "labels.h"
#include "overrides.h"
#include "pprof.h"
#include "ring.h"
#include "rpc.h"
#include "selector.h"
#include "objstore.h"
#include "status.h"
#include "tree.h"

typedef struct kiln_ingester kiln_ingester_t;

typedef struct kiln_ingester_config {
    const char *storage_path;       /* this process's own state directory */
    size_t max_profile_bytes;       /* decompressed pprof on the internal push */
    int64_t wal_max_delay_ns;       /* group-commit wait for company (0 = none) */
    size_t wal_segment_bytes;       /* WAL segment size */
    bool wal_no_fsync;              /* benchmarks of the in-memory path only: never in service */
    const char *bucket_dir;         /* object store root ("" = <storage_path>/bucket) */
    int64_t max_block_duration_ns;  /* cut the head into a block after this long */
    size_t max_head_samples;        /* ...or once it holds this many samples */
    int64_t flush_check_ns;         /* how often the flusher looks (0 = 5 s) */
    bool flush_on_shutdown;         /* write the heads as blocks when stopping */
    bool heads_only;                /* queries read heads only: in a cluster the
                                       queriers read the shared store themselves */
    const kiln_overrides_t *limits; /* per-tenant max_global_series (borrowed;
                                       NULL = no series limit) */
    kiln_objstore_t *store;         /* the object store (borrowed; NULL = open the
                                       filesystem store at bucket_dir) */
} kiln_ingester_config;

/** Creates an ingester and replays its write-ahead log into the heads.
 * KILN_UNAVAILABLE with err when the storage path cannot be used. */
kiln_status kiln_ingester_create(const kiln_ingester_config *cfg, kiln_ingester_t **out,
                                 kiln_err *err);
/** Frees all heads; NULL is a no-op. */
void kiln_ingester_destroy(kiln_ingester_t *ing);
/** Registers the ingester.v1.IngesterService methods in the registry. */
void kiln_ingester_register(kiln_ingester_t *ing, kiln_rpc_registry_t *rpc);

/** One validated, normalised profile of one series (sorted labels), with
 * the push's profile id (replicas share it; 0 = none): a head part. */
typedef kiln_head_part kiln_ingester_part;

/** Appends a batch (one push) to tenant's head, all or nothing: the batch
 * is one WAL record, durable before this returns KILN_OK. KILN_UNAVAILABLE
 * when the log cannot be written, KILN_RESOURCE_EXHAUSTED when flushing is
 * behind, KILN_FAILED_PRECONDITION (the message names
 * max_global_series_per_tenant; see kiln_ingester_is_series_limit) when the
 * push would take the tenant past its series limit: nothing was applied. */
kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant,
                                 const kiln_ingester_part *parts, size_t n, kiln_err *err);

/** Visits the matching series of the tenants in `tenants` ("a" or "a|b"). */
void kiln_ingester_series(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                          int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx);

/** Visits every matching profile (labels, time, total) of the tenants in `tenants`. */
void kiln_ingester_profiles(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                            int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn, void *ctx);

/** Like kiln_ingester_merge_tree, only samples whose span id is in spans
 * (sorted ascending): span profiles. */
void kiln_ingester_merge_spans(kiln_ingester_t *ing, const char *tenants,
                               const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                               const uint64_t *spans, size_t n_spans, kiln_tree_t *t);

/** kiln_ingester_profiles with each profile's push id. */
void kiln_ingester_profiles_id(kiln_ingester_t *ing, const char *tenants,
                               const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                               kiln_head_profile_id_fn fn, void *ctx);

/** kiln_ingester_merge_tree under a filter (NULL = none). */
void kiln_ingester_merge_filtered(kiln_ingester_t *ing, const char *tenants,
                                  const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                  const kiln_head_filter *f, kiln_tree_t *t);

/** This ingester's instance id (kept in <storage.path>/instance_id). */
const char *kiln_ingester_instance(const kiln_ingester_t *ing);

/** Writes every head as a block now (before leaving a ring). */
kiln_status kiln_ingester_flush(kiln_ingester_t *ing, kiln_err *err);

/** Joins a ring (borrowed): from then on a push of a series this ingester
 * is not among the rf replicas of is refused with FAILED_PRECONDITION,
 * unless the ring changed within the last grace_ns (distributors may still
 * be on the previous ring). Call before serving. */
void kiln_ingester_set_ring(kiln_ingester_t *ing, kiln_ring_t *ring, size_t rf, int64_t grace_ns);

/** Merges the matching profiles of the tenants in `tenants` into t. */
void kiln_ingester_merge_tree(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                              int64_t start_ms, int64_t end_ms, kiln_tree_t *t);

/** Whether err is this module's refusal for the series limit (a client
 * error: the push cannot succeed until series age out or the limit is
 * raised), as it arrives from a remote ingester too. */
bool kiln_ingester_is_series_limit(const kiln_err *err);

/** Appends the Prometheus text of the per-tenant series figures:
 * kiln_ingester_memory_series, kiln_ingester_series_limit and
 * kiln_ingester_series_limit_refused_total. */
void kiln_ingester_metrics(kiln_ingester_t *ing, kiln_buf *out);

/** Sums the stats of every tenant. */
void kiln_ingester_stats_all(kiln_ingester_t *ing, kiln_head_stats_t *out);

/** Sums the stats of the tenants in `tenants`. */
void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out);

#endif
