/* SPDX-License-Identifier: Apache-2.0
 * connect: the Connect protocol's unary calls over the HTTP server: POST
 * /<pkg>.<Service>/<Method> with application/proto or application/json,
 * gzip request bodies (capped at max_body, reserved from the in-flight
 * budget; past the cap invalid_argument, never the retryable
 * resource_exhausted), failures logged sampled per tenant and method, gzip responses when accepted,
 * and errors as
 * {"code","message"} JSON with Connect's HTTP status. Dispatches to the rpc
 * registry; records every call in the metrics. Stateless after create;
 * called from HTTP pool threads. */
#ifndef KILN_CONNECT_H
#define KILN_CONNECT_H

#include <stddef.h>

#include "http_server.h"
#include "inflight.h"
#include "metrics.h"
#include "rpc.h"

typedef struct kiln_connect {
    const kiln_rpc_registry_t *rpc; /* borrowed */
    kiln_metrics_t *metrics;        /* borrowed */
    size_t max_body;                /* decompressed request bytes */
    kiln_inflight_t *inflight;      /* borrowed, may be NULL: decompressed bytes budget */
} kiln_connect;

/** An HTTP handler (for kiln_http_server_fallback) with ud = kiln_connect*. */
void kiln_connect_handle(void *ud, const kiln_http_req *req, kiln_http_resp *resp);

/** Writes a Connect error response (JSON body, mapped HTTP status). */
void kiln_connect_error(kiln_http_resp *resp, kiln_status code, const char *msg);

#endif
