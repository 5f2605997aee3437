/* SPDX-License-Identifier: Apache-2.0
 * rpc: the table of unary methods both servers dispatch (gRPC on the C core,
 * Connect on HTTP/1.1), so a service registers a handler once. A handler gets
 * the decoded request in the request arena and returns the response message
 * allocated there. Each method belongs to one plane: the public listeners
 * (HTTP, gRPC, OTLP gRPC) or the cluster plane's own listener (ingester.v1);
 * a server looks methods up on its plane only, and a method of the other
 * plane answers KILN_UNIMPLEMENTED there. Also the tenant rule
 * (X-Scope-OrgID). A hot method may bring its own protobuf decoder, which
 * must give what protobuf-c would and say whether a string holds a NUL
 * byte; every request with one is refused, however it was decoded. The
 * registry is filled before the servers start and is read-only after. */
#ifndef KILN_RPC_H
#define KILN_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "cancel.h"
#include "status.h"
#include "tenants.h"

/** One call in progress. */
typedef struct kiln_rpc_ctx {
    const char *tenant;    /* validated; may be "a|b" for reads */
    kiln_arena_t *arena;   /* request arena: the response lives here */
    kiln_err *err;         /* set by the handler on failure */
    bool utf8_names;       /* the client accepts non-legacy label names (Accept:
                              ...;allow-utf8-labelnames=true, as profilecli sends) */
    kiln_cancel_t *cancel; /* queries: the call's deadline and cancellation
                              (also bound to the thread); NULL = none */
} kiln_rpc_ctx;

/** A handler: fills *resp (arena-allocated) and returns KILN_OK, or returns
 * a status with ctx->err set. */
typedef kiln_status (*kiln_rpc_fn)(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp);

/** Where a method is served. */
typedef enum kiln_rpc_plane {
    KILN_RPC_PUBLIC = 0, /* clients: HTTP (Connect, gRPC-Web, h2c), gRPC, OTLP gRPC */
    KILN_RPC_INTERNAL    /* the cluster plane: distributors and queriers calling
                            ingesters, on -server.internal-grpc-listen-* */
} kiln_rpc_plane;

/** A method's own protobuf decoder: the message protobuf_c_message_unpack(req,
 * arena allocator, len, data) would give, allocated in a, or NULL where it
 * would give NULL (malformed, or the arena cap reached). It checks NULs
 * itself: *nul set to whether a string field of the message holds a NUL
 * byte, as !kiln_pb_nul_free(req, data, len) would say (pb_nul.h), which
 * it can note while copying the strings instead of walking the bytes
 * again. Bytes fields may hold NULs. */
typedef ProtobufCMessage *(*kiln_rpc_unpack_fn)(kiln_arena_t *a, const uint8_t *data, size_t len,
                                                bool *nul);

typedef struct kiln_rpc_method {
    const char *path; /* "/push.v1.PusherService/Push" */
    /* NULL (and fn NULL): a known API method this server does not serve;
     * every call answers KILN_UNIMPLEMENTED (Connect 501), not 404. */
    const ProtobufCMessageDescriptor *req;
    const ProtobufCMessageDescriptor *resp;
    kiln_rpc_fn fn;
    void *svc;
    kiln_rpc_plane plane; /* the plane it is served on (zero: public) */
    /* Decodes protobuf bodies instead of protobuf-c (NULL: protobuf-c), for
     * a hot method, and says whether a string holds a NUL. Without one, the
     * bytes protobuf-c decoded are walked again for NULs (pb_nul.h). */
    kiln_rpc_unpack_fn unpack;
} kiln_rpc_method;

typedef struct kiln_rpc_registry kiln_rpc_registry_t;

typedef enum kiln_rpc_codec { KILN_CODEC_PROTO, KILN_CODEC_JSON } kiln_rpc_codec;

/** Whether a method's tenant header may name several tenants ("a|b"):
 * the read methods (querier.v1 and the ingester's reads), never a write. */
bool kiln_rpc_multi_tenant(const char *path);
/** Whether a method is a client's query (querier.v1), run on the query
 * pool under a deadline and the tenant's query limit. The ingester's reads
 * (kiln_rpc_multi_tenant and not this) run on a pool of their own, so a
 * querier's fan-out never waits behind the queries that make it. */
bool kiln_rpc_is_query(const char *path);

/** Creates an empty registry. */
kiln_rpc_registry_t *kiln_rpc_registry_create(void);
/** Frees it; NULL is a no-op. */
void kiln_rpc_registry_destroy(kiln_rpc_registry_t *r);
/** Adds a method (copied). A second method with the same path replaces the
 * first, whatever its plane. */
void kiln_rpc_register(kiln_rpc_registry_t *r, const kiln_rpc_method *m);
/** The method at path[0..len) as a server of plane sees it: the method when
 * it is served on plane; when it is served on the other plane, an entry
 * with the same path and plane and no request type (req NULL), which
 * kiln_rpc_invoke answers KILN_UNIMPLEMENTED naming where it is served;
 * NULL when no method has that path. Valid as long as the registry. */
const kiln_rpc_method *kiln_rpc_find(const kiln_rpc_registry_t *r, kiln_rpc_plane plane,
                                     const char *path, size_t len);

/** Decodes body with codec, calls the handler, encodes the response into out.
 * Decoding failures are KILN_INVALID_ARGUMENT; the status and ctx->err say
 * what went wrong. When ctx->cancel ended before or while the handler ran,
 * the result is dropped and its status (KILN_CANCELLED,
 * KILN_DEADLINE_EXCEEDED) returned. */
kiln_status kiln_rpc_invoke(const kiln_rpc_method *m, kiln_rpc_ctx *ctx, const uint8_t *body,
                            size_t len, kiln_rpc_codec codec, kiln_buf *out);

/** True when an Accept header value allows UTF-8 label names. */
bool kiln_rpc_accepts_utf8_names(const char *accept, size_t len);

/** Validates an X-Scope-OrgID value (NULL or empty -> "anonymous") into out.
 * Tenant ids are <= 150 chars of [A-Za-z0-9!-_.*'()], not "." or "..";
 * with allow_multi, several ids joined by '|' (reads). KILN_INVALID_ARGUMENT
 * (or KILN_UNAUTHENTICATED when required and missing) otherwise. */
kiln_status kiln_tenant_parse(const char *hdr, size_t len, bool allow_multi, char *out,
                              size_t out_cap, kiln_err *err);

#endif
