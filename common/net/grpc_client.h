/* SPDX-License-Identifier: Apache-2.0
 * grpc_client: unary calls to other kiln processes over the gRPC C core
 * (insecure HTTP/2, one channel per address, kept and reused). A batch of
 * calls is issued at once and waited for together, which is the shape of
 * every fan-out (distributor -> replicas, querier -> ingesters). Messages
 * are serialized by the caller; the tenant travels as x-scope-orgid
 * metadata. Thread-safe: any number of threads may run batches at once. */
#ifndef KILN_GRPC_CLIENT_H
#define KILN_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kiln_grpc_client kiln_grpc_client_t;

typedef struct kiln_grpc_call {
    /* in */
    const char *addr;   /* host:port */
    const char *method; /* "/ingester.v1.IngesterService/Push" */
    const char *tenant; /* x-scope-orgid; NULL = none */
    const uint8_t *req;
    size_t req_len;
    /* out */
    kiln_err err;   /* err.code KILN_OK, the server's status and message, or
                       KILN_UNAVAILABLE / KILN_DEADLINE_EXCEEDED / KILN_CANCELLED
                       with a message starting with addr; a response over
                       max_recv_bytes is KILN_RESOURCE_EXHAUSTED */
    uint8_t *resp;  /* malloc'd response bytes (caller frees; not NULL on
                       success, even for an empty message); NULL on error */
    size_t resp_len;
} kiln_grpc_call;

/** Creates a client; max_recv_bytes caps a response (0 = 256 MiB). */
kiln_grpc_client_t *kiln_grpc_client_create(size_t max_recv_bytes);
/** Closes every channel; no batch may be running. NULL is a no-op. */
void kiln_grpc_client_destroy(kiln_grpc_client_t *c);

/** Starts every call of calls[0..n) at once and returns when all have
 * ended (the out fields are reset first); a call still running after
 * timeout_ms ends with KILN_DEADLINE_EXCEEDED. Calls do not wait for a
 * connection: one to an address that refuses connections ends at once with
 * KILN_UNAVAILABLE (and, while the channel backs off, for up to 2 s after
 * the peer is back). No retries. Blocks the calling thread. */
void kiln_grpc_client_run(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                          int64_t timeout_ms);

#endif
