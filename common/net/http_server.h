/* SPDX-License-Identifier: Apache-2.0
 * http_server: the HTTP/1.1 listener (libmicrohttpd, a thread pool polling
 * with epoll). Routes are exact paths registered before start; everything
 * else goes to the fallback handler (Connect). A handler runs on a pool
 * thread with the whole request body buffered (capped: 413 past max_body)
 * and a request arena that lives until the response is queued. Query
 * routes (kiln_http_server_query_route, and fallback paths the query
 * predicate picks) run on the query pool instead, their connection
 * suspended meanwhile, under a cancellation token (req->cancel) that ends
 * with the client's connection, the query timeout or Connect-Timeout-Ms,
 * whichever comes first; a cancelled query is answered with its status.
 * The port is the listener's (listener.h): connections that open with the
 * HTTP/2 preface go to the h2c callback (the gRPC server), the rest to
 * libmicrohttpd. With a TLS certificate (cfg.tls) the port speaks HTTPS
 * only (libmicrohttpd's GnuTLS, HTTP/1.1; http_tls.h for rotation and
 * client certificates) and every connection is libmicrohttpd's: the
 * preface is encrypted, so h2c is not used. */
#ifndef KILN_HTTP_SERVER_H
#define KILN_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "cancel.h"
#include "query_pool.h"
#include "status.h"
#include "tls_config.h"

typedef struct kiln_http_server kiln_http_server_t;

/* A query-string argument, URL-decoded (either may hold a NUL from %00);
 * value NULL for an argument without '='. */
typedef struct kiln_http_arg {
    const char *name, *value;
    size_t name_len, value_len;
} kiln_http_arg;

typedef struct kiln_http_req {
    const char *method;
    const char *path;
    const uint8_t *body;
    size_t body_len;
    kiln_arena_t *arena;
    void *conn;                /* the MHD connection, for header lookups */
    kiln_cancel_t *cancel;     /* query routes: the call's token (also bound to the
                                  thread); NULL on other routes */
    const kiln_http_arg *args; /* the query string's, in order (in the arena) */
    size_t n_args;
} kiln_http_req;

#define KILN_HTTP_MAX_HEADERS 6

typedef struct kiln_http_resp {
    int status;                   /* default 200 */
    const char *content_type;     /* static or arena string; default text/plain */
    const char *content_encoding; /* NULL for identity */
    kiln_buf body;
    const char *allow; /* the Allow header of a 405 (static string); NULL = none */
    const char *headers[KILN_HTTP_MAX_HEADERS][2]; /* more headers, name and value (static or
                                                      arena strings); NULL name = none */
} kiln_http_resp;

typedef void (*kiln_http_handler_fn)(void *ud, const kiln_http_req *req, kiln_http_resp *resp);

typedef struct kiln_http_config {
    const char *address; /* "" or NULL = all interfaces */
    int port;            /* 0 = ephemeral */
    int threads;
    size_t max_body;               /* bytes */
    kiln_query_pool_t *query_pool; /* borrowed; NULL = queries run on the request workers */
    int64_t query_timeout_ns;      /* per query; 0 = none */
    /* Connections opening with the HTTP/2 preface (gRPC over h2c) are given
     * to h2c, which takes the socket; NULL = they are HTTP/1.1's too. */
    void (*h2c)(void *ud, int fd);
    void *h2c_ud;
    /* Borrowed, read at start; NULL or no certificate = plain HTTP. The
     * caller checked it (kiln_tls_config_check). */
    const kiln_tls_config *tls;
} kiln_http_config;

/** Creates a server (not yet listening). */
kiln_http_server_t *kiln_http_server_create(const kiln_http_config *cfg);
/** Routes requests for exactly path to fn. Before start only. */
void kiln_http_server_route(kiln_http_server_t *s, const char *path, kiln_http_handler_fn fn,
                            void *ud);
/** Routes requests for exactly path to fn, run as a query (see above).
 * Before start only. */
void kiln_http_server_query_route(kiln_http_server_t *s, const char *path, kiln_http_handler_fn fn,
                                  void *ud);
/** Fallback requests whose path pick selects run as queries. Before start only. */
void kiln_http_server_fallback_query(kiln_http_server_t *s, bool (*pick)(const char *path));
/** Authenticates every request but the public paths with a (borrowed;
 * NULL = off, the default): see auth.h. Before start only. */
void kiln_http_server_auth(kiln_http_server_t *s, kiln_auth_t *a);
/** Routes every other request to fn. Before start only. */
void kiln_http_server_fallback(kiln_http_server_t *s, kiln_http_handler_fn fn, void *ud);
/** Binds and starts serving; KILN_UNAVAILABLE with err when it cannot bind,
 * KILN_NOT_FOUND or KILN_INVALID_ARGUMENT when the TLS files do not load
 * (kiln_http_tls_create). */
kiln_status kiln_http_server_start(kiln_http_server_t *s, kiln_err *err);
/** The bound port (after start). */
int kiln_http_server_port(const kiln_http_server_t *s);
/** Stops (finishing requests in flight) and frees; NULL is a no-op. */
void kiln_http_server_destroy(kiln_http_server_t *s);

/** A request header (case-insensitive name), or NULL. */
const char *kiln_http_header(const kiln_http_req *req, const char *name);
/** A query-string argument (URL-decoded; the first of that name, which is
 * matched ignoring ASCII case), or NULL. */
const char *kiln_http_query(const kiln_http_req *req, const char *name);
/** Like kiln_http_query, with the value's length (it may hold a NUL byte);
 * false when the argument is absent. */
bool kiln_http_query_n(const kiln_http_req *req, const char *name, const char **value, size_t *len);

/** Adds a header to the response (name and value static or in the request
 * arena); past KILN_HTTP_MAX_HEADERS it is dropped. */
void kiln_http_resp_header(kiln_http_resp *resp, const char *name, const char *value);

/** Sets a plain-text response. */
void kiln_http_text(kiln_http_resp *resp, int status, const char *text);

#endif
