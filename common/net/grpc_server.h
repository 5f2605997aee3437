/* SPDX-License-Identifier: Apache-2.0
 * grpc_server: the gRPC listener on the gRPC C core. One worker thread per
 * completion queue, each keeping request slots posted for any method
 * (grpc_server_request_call), so unknown methods are answered UNIMPLEMENTED
 * instead of hanging. Unary calls only: a call is read on its worker and
 * answered in one batch. gRPC binds a connection to one completion queue,
 * so its calls all reach one worker; the worker hands them to the server's
 * handler pool (as many threads as workers), so that one client's calls
 * run in parallel and its pushes share the WAL's fsyncs (when that pool's
 * queue is full, the worker runs the call itself). Query methods
 * (kiln_rpc_is_query) run on the query pool instead, the ingester's reads
 * on the read pool, under a token that ends with the call's deadline (or
 * query_timeout when shorter), the client's cancellation or shutdown.
 * Unknown methods are answered on the worker. The receive size limit is
 * raised to max_recv bytes. gRPC's own message decompression is off: a
 * gzip message (grpc-encoding) is inflated here, to at most max_recv bytes
 * reserved from the in-flight budget, as Connect bodies are, so parallel
 * compressed bombs cannot exhaust memory; too large is invalid_argument.
 * A server serves the methods of one plane of the registry (rpc.h); its
 * own ports speak TLS when given credentials (grpc_tls.h), while
 * connections handed over with kiln_grpc_server_add_fd stay plain. */
#ifndef KILN_GRPC_SERVER_H
#define KILN_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "grpc_tls.h"
#include "inflight.h"
#include "metrics.h"
#include "query_pool.h"
#include "rpc.h"
#include "status.h"

typedef struct kiln_grpc_server kiln_grpc_server_t;

typedef struct kiln_grpc_config {
    const char *address;  /* "" or NULL = 0.0.0.0 */
    int port;             /* 0 = ephemeral */
    const char *address2; /* optional second listener (e.g. OTLP 4317); NULL = none */
    int port2;
    int threads;                   /* workers (completion queues), and as many handlers */
    size_t max_recv;               /* bytes */
    kiln_query_pool_t *query_pool; /* borrowed; NULL = queries run on the workers */
    kiln_query_pool_t *read_pool;  /* borrowed: ingester.v1 reads; NULL = on the workers */
    int64_t query_timeout_ns;      /* per query; 0 = none */
    kiln_inflight_t *inflight;     /* borrowed: budget of decompressed request bytes; NULL = none */
    kiln_auth_t *auth;             /* borrowed; NULL = no authentication */
    kiln_rpc_plane plane;          /* the registry's methods it serves (zero: public) */
    kiln_grpc_tls_t *tls;          /* borrowed: TLS on both ports; NULL = plain text */
} kiln_grpc_config;

/** Creates a server over the registry (borrowed, read-only). */
kiln_grpc_server_t *kiln_grpc_server_create(const kiln_grpc_config *cfg,
                                            const kiln_rpc_registry_t *rpc,
                                            kiln_metrics_t *metrics);
/** Binds and starts the workers; KILN_UNAVAILABLE with err when it cannot bind. */
kiln_status kiln_grpc_server_start(kiln_grpc_server_t *s, kiln_err *err);
/** The bound port (after start). */
int kiln_grpc_server_port(const kiln_grpc_server_t *s);
/** The bound second port (after start); 0 when there is no second listener. */
int kiln_grpc_server_port2(const kiln_grpc_server_t *s);
/** Serves gRPC on fd, a connected socket whose client opened HTTP/2 (h2c,
 * prior knowledge), as on the server's own ports but in plain text (the
 * HTTP port's own TLS, if any, is its listener's); takes fd (closed when
 * the server is not started). After start, from any thread. */
void kiln_grpc_server_add_fd(kiln_grpc_server_t *s, int fd);

/** Routes the gRPC core's own log lines into Kiln's log: at debug level all
 * of them, otherwise none (Kiln reports what matters, such as a port that
 * cannot be bound, in one line of its own). Call once, before any gRPC use. */
void kiln_grpc_log_setup(bool debug);

/** Stops (in-flight calls get up to 5 s), joins the workers and frees; NULL is a no-op. */
void kiln_grpc_server_destroy(kiln_grpc_server_t *s);

#endif
