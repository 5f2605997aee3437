/* SPDX-License-Identifier: Apache-2.0
 * query_pool: the bounded worker pool queries run on, apart from the
 * servers' request workers, so pushes, /ready and /metrics keep answering
 * while queries saturate it. Both servers submit their query calls here
 * (the HTTP server with the connection suspended, the gRPC server with the
 * call's reply pending). Admission is per tenant: at most the tenant's
 * max_query_parallelism queries running or queued (each tenant of "a|b"
 * counts). Owned by the app; thread-safe. The gRPC server also runs its
 * other calls on a pool of its own, with no tenant limit (grpc_server.h). */
#ifndef KILN_QUERY_POOL_H
#define KILN_QUERY_POOL_H

#include <stddef.h>

#include "buf.h"
#include "overrides.h"
#include "status.h"

typedef struct kiln_query_pool kiln_query_pool_t;

typedef void (*kiln_query_job_fn)(void *arg);

typedef struct kiln_query_pool_config {
    int threads;              /* query workers (>= 1) */
    size_t max_queued;        /* jobs waiting for a worker beyond that: unavailable */
    kiln_overrides_t *limits; /* borrowed; NULL = no per-tenant limit */
} kiln_query_pool_config;

/** Creates the pool and starts its workers. */
kiln_query_pool_t *kiln_query_pool_create(const kiln_query_pool_config *cfg);
/** Queues fn(arg) for the tenant header value tenant (NULL or "" =
 * anonymous). KILN_OK: fn runs exactly once on a worker. Otherwise fn is
 * not run and err says why: KILN_RESOURCE_EXHAUSTED when a tenant is at
 * its max_query_parallelism, KILN_UNAVAILABLE when the queue is full or
 * the pool is closing. Never blocks. */
kiln_status kiln_query_pool_submit(kiln_query_pool_t *p, const char *tenant, kiln_query_job_fn fn,
                                   void *arg, kiln_err *err);
/** Counts a query that ended with st (cancelled and deadline_exceeded are
 * shown in kiln_query_pool_metrics). */
void kiln_query_pool_ended(kiln_query_pool_t *p, kiln_status st);
/** Refuses new jobs, lets the queued and running ones finish (callers
 * cancel them first: kiln_cancel_shutdown) and joins the workers. Blocks. */
void kiln_query_pool_close(kiln_query_pool_t *p);
/** Closes (if not yet) and frees; NULL is a no-op. */
void kiln_query_pool_destroy(kiln_query_pool_t *p);
/** Appends the pool's Prometheus metrics: kiln_query_pool_workers,
 * kiln_query_pool_running, kiln_query_pool_queued,
 * kiln_queries_ended_total{reason="canceled"|"deadline_exceeded"} and
 * kiln_queries_rejected_total{reason="max_query_parallelism"|"queue_full"}. */
void kiln_query_pool_metrics(kiln_query_pool_t *p, kiln_buf *out);

#endif
