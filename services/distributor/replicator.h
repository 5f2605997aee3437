/* SPDX-License-Identifier: Apache-2.0
 * replicator: the distributor's write path in a cluster. Each series of a
 * batch is hashed (tenant + sorted labels, kiln_ring_key) onto the ring and
 * sent over ingester.v1 Push to its rf replicas, one request per ingester
 * carrying all the series it replicates; the batch succeeds as soon as
 * every series reached a quorum (rf/2 + 1) of its replicas, within the
 * timeout, and the calls still running are left to end in the background.
 * A replica that timed out is suspect until it answers again: it is still
 * sent its pushes (up to KILN_GRPC_SUSPECT_MAX_CALLS at once) and never
 * waited on while the healthy replicas make the quorum. Otherwise the batch fails (UNAVAILABLE,
 * naming the ingesters and their errors; RESOURCE_EXHAUSTED when an ingester pushed back) and
 * nothing is acknowledged, though replicas that took it keep it (a retry with the same profile id
 * is counted once by queriers). Thread-safe. */
#ifndef KILN_REPLICATOR_H
#define KILN_REPLICATOR_H

#include "grpc_client.h"
#include "ingester.h"
#include "ring.h"

typedef struct kiln_replicator kiln_replicator_t;

typedef struct kiln_replicator_config {
    kiln_ring_t *ring;        /* borrowed */
    kiln_grpc_client_t *grpc; /* borrowed */
    size_t rf;                /* replication factor (>= 1) */
    int64_t timeout_ms;       /* per push to the replicas */
} kiln_replicator_config;

kiln_replicator_t *kiln_replicator_create(const kiln_replicator_config *cfg);
/** Frees it; NULL is a no-op. */
void kiln_replicator_destroy(kiln_replicator_t *r);

/** Writes a batch to the replicas of each of its series (see above). */
kiln_status kiln_replicator_append(kiln_replicator_t *r, const char *tenant,
                                   const kiln_ingester_part *parts, size_t n, kiln_err *err);

#endif
