/* SPDX-License-Identifier: Apache-2.0
 * remote: the ingester interface (store.h) of a distributor or querier in a
 * cluster, over the ring's ingesters and the shared object store.
 * - append hashes each series (tenant + sorted labels, kiln_ring_key) onto
 *   the ring and sends every ingester one ingester.v1 Push with the series
 *   it replicates; it succeeds as soon as every series reached a quorum
 *   (rf/2 + 1) of its replicas within the timeout, the calls still running
 *   ending in the background. A replica that timed out is suspect until it
 *   answers again: it is still sent its pushes (up to
 *   KILN_GRPC_SUSPECT_MAX_CALLS at once) and not waited on while the
 *   healthy replicas make the quorum. Otherwise the push fails and nothing
 *   is acknowledged (replicas that took it keep it; a retry with the same
 *   profile id is counted once by reads): UNAVAILABLE naming the ingesters
 *   and their errors, RESOURCE_EXHAUSTED when an ingester pushed back,
 *   FAILED_PRECONDITION when one refused for the series limit.
 * - read asks every ingester (their heads) and reads the store's blocks
 *   itself, synced after the ingesters answered so a head flushed meanwhile
 *   is found as a block. Replicas are counted once by profile key
 *   (kiln_profile_key): a merge first collects every source's keys,
 *   gives each key to one source (blocks first, so a whole block can use
 *   its cached sums), then merges each source's share. More ingesters not
 *   answering than rf/2 (a ring short of rf members counting those it
 *   lacks) fails the read with UNAVAILABLE, naming them; a block chunk that
 *   cannot load is DATA_LOSS. The filter's keys, when set, narrow the read
 *   further.
 * - stats sums the ingesters' and the blocks' profile counts.
 * Thread-safe. */
#ifndef KILN_REMOTE_H
#define KILN_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "grpc_client.h"
#include "objstore.h"
#include "ring.h"
#include "store.h"

typedef struct kiln_remote kiln_remote_t;

typedef struct kiln_remote_config {
    kiln_ring_t *ring;        /* borrowed: the ingesters */
    kiln_grpc_client_t *grpc; /* borrowed */
    kiln_objstore_t *blocks;  /* borrowed: the store ingesters flush to
                                 (NULL = heads only: a writer's view) */
    size_t rf;                /* replication factor (1..16) */
    int64_t timeout_ms;       /* per push to the replicas, per read fan-out */
} kiln_remote_config;

/** Creates a remote store over cfg's borrowed parts. Never NULL. */
kiln_remote_t *kiln_remote_create(const kiln_remote_config *cfg);
/** Frees it; NULL is a no-op. */
void kiln_remote_destroy(kiln_remote_t *r);
/** The store.h interface of r (r stays the owner). */
kiln_store_t kiln_remote_store(kiln_remote_t *r);
/** Blocks of r's block set quarantined since create (0 without one). */
size_t kiln_remote_blocks_quarantined(kiln_remote_t *r);

#endif
