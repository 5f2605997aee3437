/* SPDX-License-Identifier: Apache-2.0
 * reader: where the querier reads profiles from. The local reader calls the
 * in-process ingester (its heads and the store's blocks). The cluster
 * reader asks every ingester of the ring over ingester.v1 (their heads)
 * and reads the shared object store's blocks itself, synced after the
 * ingesters answered so a head flushed meanwhile is found as a block.
 * Replicas are counted once: a profile is identified by its key (series,
 * time, push id; kiln_head_profile_key), merges first collect every
 * source's keys, give each key to one source (blocks first, so a whole
 * block can use its cached sums) and then merge each source's share. A
 * fan-out fails, naming the unreachable ingesters, when more of them are
 * down than the replication factor tolerates (rf/2). Thread-safe. */
#ifndef KILN_READER_H
#define KILN_READER_H

#include "grpc_client.h"
#include "head.h"
#include "ingester.h"
#include "objstore.h"
#include "ring.h"

typedef struct kiln_reader kiln_reader_t;

typedef struct kiln_reader_cluster_config {
    kiln_ring_t *ring;        /* borrowed: the ingesters */
    kiln_grpc_client_t *grpc; /* borrowed */
    kiln_objstore_t *store;   /* borrowed: the store ingesters flush to */
    size_t rf;                /* replication factor of writes */
    int64_t timeout_ms;       /* per fan-out */
} kiln_reader_cluster_config;

/** A reader over the in-process ingester (borrowed). */
kiln_reader_t *kiln_reader_local(kiln_ingester_t *ing);
/** A reader over a cluster. */
kiln_reader_t *kiln_reader_cluster(const kiln_reader_cluster_config *cfg);
/** Frees it; NULL is a no-op. */
void kiln_reader_destroy(kiln_reader_t *r);

/** Visits every matching series (a series may be visited more than once). */
kiln_status kiln_reader_series(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                               int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx,
                               kiln_err *err);

/** Visits every matching profile once (labels, time, total). */
kiln_status kiln_reader_profiles(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                                 int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn,
                                 void *ctx, kiln_err *err);

/** Merges the matching profiles into t under f's span and profile id sets
 * (f NULL = none; its keys must be NULL: the reader sets those). */
kiln_status kiln_reader_merge(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                              int64_t start_ms, int64_t end_ms, const kiln_head_filter *f,
                              kiln_tree_t *t, kiln_err *err);

/** Profile count (replicas included in a cluster) and time bounds. */
kiln_status kiln_reader_stats(kiln_reader_t *r, const char *tenants, kiln_head_stats_t *out,
                              kiln_err *err);

#endif
