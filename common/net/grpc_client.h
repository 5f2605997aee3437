/* SPDX-License-Identifier: Apache-2.0
 * grpc_client: unary calls to other kiln processes over the gRPC C core
 * (HTTP/2 in plain text, or TLS with kiln_grpc_client_set_tls; one channel
 * per address, kept and reused, and replaced when the TLS files rotate). A batch of
 * calls is issued at once, which is the shape of every fan-out
 * (distributor -> replicas, querier -> ingesters): waited for together
 * (kiln_grpc_client_run), or collected one by one as they end until the
 * caller has enough (kiln_grpc_batch_*), the rest finishing in the
 * background. The client remembers which peers timed out and have not
 * answered since (suspects), so that callers stop waiting on them.
 * Messages are serialized by the caller; the tenant travels as
 * x-scope-orgid metadata. Thread-safe: any number of threads may run
 * batches at once; one thread of its own takes every call's completion. */
#ifndef KILN_GRPC_CLIENT_H
#define KILN_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "grpc_tls.h"
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
    kiln_err err;  /* err.code KILN_OK, the server's status and message, or
                      KILN_UNAVAILABLE / KILN_DEADLINE_EXCEEDED / KILN_CANCELLED
                      with a message starting with addr; a response over
                      max_recv_bytes is KILN_RESOURCE_EXHAUSTED */
    uint8_t *resp; /* malloc'd response bytes (caller frees; not NULL on
                      success, even for an empty message); NULL on error */
    size_t resp_len;
} kiln_grpc_call;

/** Creates a client; max_recv_bytes caps a response (0 = 256 MiB). */
kiln_grpc_client_t *kiln_grpc_client_create(size_t max_recv_bytes);
/** Cancels the calls left to finish in the background, waits for them and
 * closes every channel; no batch may be running. NULL is a no-op. */
void kiln_grpc_client_destroy(kiln_grpc_client_t *c);

/** Dials every peer over TLS from now on, with t's files (borrowed: it
 * outlives the client) as client certificate and roots, checking
 * server_name (copied; "" or NULL = the dialled host) in the peers'
 * certificates. After the files rotate, each peer gets a new channel with
 * the new files, which connects while calls still go on the old one; once
 * it is ready the peer's calls move to it and those running on the old one
 * finish there (a rotation fails no call). Call before the first call. */
void kiln_grpc_client_set_tls(kiln_grpc_client_t *c, kiln_grpc_tls_t *t, const char *server_name);

/** Starts every call of calls[0..n) at once and returns when all have
 * ended (the out fields are reset first); a call still running after
 * timeout_ms ends with KILN_DEADLINE_EXCEEDED. Calls do not wait for a
 * connection: one to an address that refuses connections ends at once with
 * KILN_UNAVAILABLE (and, while the channel backs off, for up to 2 s after
 * the peer is back). No retries. Blocks the calling thread. */
void kiln_grpc_client_run(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                          int64_t timeout_ms);

/** A batch of calls whose caller takes them one by one as they end. */
typedef struct kiln_grpc_batch kiln_grpc_batch_t;

#define KILN_GRPC_BATCH_DONE ((size_t)-1)

/** Starts every call of calls[0..n) at once, like kiln_grpc_client_run,
 * and returns without waiting. The request bytes, tenant and address are
 * copied; method must outlive the client (a literal). calls stays the
 * caller's and must stay valid until kiln_grpc_batch_end. Never NULL. */
kiln_grpc_batch_t *kiln_grpc_batch_start(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                                         int64_t timeout_ms);
/** Waits for the next call of b to end, fills its out fields and returns
 * its index; KILN_GRPC_BATCH_DONE once every call was returned. Blocks at
 * most until the batch's deadline (calls end there). On a query's thread
 * (a token bound, cancel.h) the query's end (client gone, deadline,
 * shutdown) cancels the calls still running: they end KILN_CANCELLED. */
size_t kiln_grpc_batch_next(kiln_grpc_batch_t *b);
/** Ends b without waiting: calls not yet returned by kiln_grpc_batch_next
 * get KILN_CANCELLED ("not waited for") and no response, and run on in the
 * background until they end or reach their deadline (they only update the
 * peer's health); calls is not touched again. Frees b. */
void kiln_grpc_batch_end(kiln_grpc_batch_t *b);

/** Calls to a suspect peer running at once beyond which it is SATURATED. */
#define KILN_GRPC_SUSPECT_MAX_CALLS 64

/** What the client knows of a peer's health. */
typedef enum kiln_grpc_peer {
    KILN_GRPC_PEER_OK,        /* answered its last call (or never called) */
    KILN_GRPC_PEER_SUSPECT,   /* a call to it timed out and none was
                                 answered since: call it (its answer clears
                                 it) but do not wait on it if others do */
    KILN_GRPC_PEER_SATURATED, /* suspect, with KILN_GRPC_SUSPECT_MAX_CALLS
                                 calls to it running: more would only hold
                                 memory until their deadline */
} kiln_grpc_peer;

/** The health of addr: a call that ends with KILN_DEADLINE_EXCEEDED makes
 * it suspect, any answer from it (a response or a status of its own) makes
 * it OK again; refused connections change nothing (they fail at once). */
kiln_grpc_peer kiln_grpc_client_peer(kiln_grpc_client_t *c, const char *addr);

#endif
