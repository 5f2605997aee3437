/* SPDX-License-Identifier: Apache-2.0
 * cluster: a kiln process as a member of a cluster. It watches the ring of
 * ingesters over NATS (common/membership), holds the gRPC client every call
 * to an ingester goes through, puts its own entry once its servers listen
 * (ingesters with their tokens and zone, JOINING then ACTIVE; LEAVING while
 * they flush on the way out), publishes the runtime overrides file for
 * every process to apply, and serves GET /ring (HTML, or JSON with
 * ?format=json or Accept: application/json) and per-member metrics.
 * Created only when -cluster.nats-url is set. Driven from main's thread. */
#ifndef KILN_CLUSTER_H
#define KILN_CLUSTER_H

#include "app.h"
#include "buf.h"
#include "grpc_client.h"
#include "http_server.h"
#include "remote.h"
#include "ring.h"

typedef struct kiln_cluster kiln_cluster_t;

/** Connects to NATS (in the background when it is not there yet). Calls
 * to ingesters go over mutual TLS with tls (borrowed, outlives the
 * cluster) when not NULL, else in plain text. */
kiln_status kiln_cluster_create(const kiln_app_config *cfg, kiln_overrides_t *limits,
                                kiln_grpc_tls_t *tls, kiln_cluster_t **out, kiln_err *err);
/** Deletes the own entry and disconnects; NULL is a no-op. */
void kiln_cluster_destroy(kiln_cluster_t *c);

kiln_ring_t *kiln_cluster_ring(kiln_cluster_t *c);
kiln_grpc_client_t *kiln_cluster_grpc(kiln_cluster_t *c);
/** The replication factor writes use and reads tolerate. */
size_t kiln_cluster_rf(const kiln_cluster_t *c);

/** A remote ingester interface over the cluster's ring and gRPC client
 * (its quorum and timeouts from the configuration), reading blocks from
 * the object store `blocks` (borrowed; NULL for a writer). The caller
 * destroys it with kiln_remote_destroy before the cluster. */
kiln_remote_t *kiln_cluster_remote(kiln_cluster_t *c, kiln_objstore_t *blocks);

/** Puts the own entry under role ("ingester", "distributor", ...) with the
 * bound ports; instance is the ingester's id (NULL for other roles: the
 * host and HTTP port name the process). The entry's addr is listen's
 * host (a loopback address as is, else the advertised host) and port:
 * for an ingester the cluster plane peers dial. Ingesters become ACTIVE. */
void kiln_cluster_join(kiln_cluster_t *c, const char *role, const char *instance,
                       const char *listen, int port, int http_port);
/** Marks an ingester LEAVING (before it flushes and stops). */
void kiln_cluster_leaving(kiln_cluster_t *c);

/** Routes GET /ring. */
void kiln_cluster_register_http(kiln_cluster_t *c, kiln_http_server_t *http);
/** Appends the ring metrics (Prometheus text). */
void kiln_cluster_metrics(kiln_cluster_t *c, kiln_buf *out);

#endif
