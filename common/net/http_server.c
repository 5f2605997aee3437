/* SPDX-License-Identifier: Apache-2.0
 * http_server: libmicrohttpd glue. Per connection: its state (TLS hold,
 * the query string of the request being received), made and freed with
 * the connection. Per request: an arena holding the parsed query
 * arguments, and a capped body buffer, created on the first callback and
 * freed on completion. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect.h"
#include "grpc_web.h"
#include "http_tls.h"
#include "json_writer.h"
#include "linger.h"
#include "listener.h"
#include "log.h"
#include "tenants.h"
#include "xmalloc.h"

/* Each connection's libmicrohttpd pool holds the request line and the
 * headers (in a read buffer of half the pool, grown as needed), a record
 * per header (64 bytes) and the response's headers; bodies only pass
 * through its read buffer on their way to on_request. The query arguments
 * are not in it: on_uri takes the query string and Kiln parses it, because
 * 0.9.75 never answers a request whose argument records exhaust the pool
 * (at the default 32 KiB, 2000 arguments did). 112 KiB holds a request
 * line and headers of about 114 KB (docs/api.md promises a 100 KB URL;
 * past that: 414 or 431, or a close at the very edge). Not more: 0.9.75
 * zeroes the whole pool between two requests of a keep-alive connection
 * (MHD_pool_reset, whatever the options) and the unused half of the read
 * buffer when it shrinks it, so 1.5 times the pool is written on every
 * request: at 384 KiB those memsets were a fifth of the server's CPU under
 * small pushes, at 160 KiB 7% (tests/unit/test_http_server.c holds the
 * limits). */
#define CONN_MEMORY_LIMIT (112u << 10)
/* Request arenas kept for reuse (arena.h): as many as requests commonly
 * run at once under small pushes, each holding at most 4 MiB. */
#define ARENAS_KEPT 16
/* More query arguments than any Kiln route reads; past this many the
 * request is refused (414). */
#define MAX_QUERY_ARGS 4096

typedef struct route {
    char *path;
    kiln_http_handler_fn fn;
    void *ud;
    bool query; /* runs on the query pool */
} route;

struct kiln_http_server {
    kiln_http_config cfg;
    struct MHD_Daemon *d;
    kiln_linger_t *linger; /* drains refused connections before closing them */
    kiln_listener_t *listener;
    route *routes;
    size_t n_routes, cap_routes;
    route fallback;
    bool (*fallback_is_query)(const char *path);
    int port;
    kiln_auth_t *auth;         /* borrowed; NULL = off */
    kiln_http_tls_t *tls;      /* HTTPS: the credentials; NULL = plain HTTP */
    kiln_arena_pool_t *arenas; /* requests' arenas, kept for the next ones */
};

typedef struct request request;

/* A query in flight: what its pool job needs, and its answer until the
 * resumed connection sends it. */
typedef struct query_call {
    kiln_http_server_t *s;
    struct MHD_Connection *c;
    const route *r;
    kiln_http_req req;
    kiln_http_resp resp;
    kiln_cancel_t cancel;
    int fd; /* the client's socket, probed for a close */
    request *rq;
} query_call;

/* A connection's own state (libmicrohttpd's socket_context, from on_conn):
 * its TLS hold, and the raw query string of the request being received,
 * from on_uri to the request's first on_request. */
typedef struct conn_state {
    kiln_http_tls_creds *tls; /* NULL without TLS */
    char *query;              /* NUL-terminated; NULL until a request has one */
    size_t query_cap;
    bool has_query;
    bool too_many_args;
} conn_state;

struct request {
    kiln_arena_t *arena;
    kiln_buf body;
    kiln_http_arg *args;
    size_t n_args;
    int too_large;
    int too_many_args; /* more than MAX_QUERY_ARGS: not parsed, refused */
    query_call *q;     /* set while a query is submitted or answered */
    int answered;      /* q->resp is ready to send */
};

static bool is_query(const kiln_http_server_t *s, const route *r, const char *url)
{
    if (r == &s->fallback)
        return s->fallback_is_query != NULL && s->fallback_is_query(url);
    return r->query;
}

kiln_http_server_t *kiln_http_server_create(const kiln_http_config *cfg)
{
    kiln_http_server_t *s = kiln_xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->arenas = kiln_arena_pool_create(ARENAS_KEPT);
    return s;
}

void kiln_http_server_route(kiln_http_server_t *s, const char *path, kiln_http_handler_fn fn,
                            void *ud)
{
    KILN_GROW(s->routes, s->cap_routes, s->n_routes + 1);
    s->routes[s->n_routes++] = (route){kiln_xstrdup(path), fn, ud, false};
}

void kiln_http_server_query_route(kiln_http_server_t *s, const char *path, kiln_http_handler_fn fn,
                                  void *ud)
{
    kiln_http_server_route(s, path, fn, ud);
    s->routes[s->n_routes - 1].query = true;
}

void kiln_http_server_fallback_query(kiln_http_server_t *s, bool (*pick)(const char *path))
{
    s->fallback_is_query = pick;
}

void kiln_http_server_auth(kiln_http_server_t *s, kiln_auth_t *a)
{
    s->auth = a;
}

void kiln_http_server_fallback(kiln_http_server_t *s, kiln_http_handler_fn fn, void *ud)
{
    s->fallback = (route){NULL, fn, ud, false};
}

const char *kiln_http_header(const kiln_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The first argument named name (ASCII case ignored, as libmicrohttpd's
 * lookup did). */
static const kiln_http_arg *find_arg(const kiln_http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_args; i++) {
        const kiln_http_arg *a = &req->args[i];
        if (a->name_len != n)
            continue;
        size_t j = 0;
        while (j < n) {
            unsigned char x = (unsigned char)a->name[j], y = (unsigned char)name[j];
            if (x >= 'A' && x <= 'Z')
                x = (unsigned char)(x - 'A' + 'a');
            if (y >= 'A' && y <= 'Z')
                y = (unsigned char)(y - 'A' + 'a');
            if (x != y)
                break;
            j++;
        }
        if (j == n)
            return a;
    }
    return NULL;
}

const char *kiln_http_query(const kiln_http_req *req, const char *name)
{
    const kiln_http_arg *a = find_arg(req, name);
    return a != NULL ? a->value : NULL;
}

bool kiln_http_query_n(const kiln_http_req *req, const char *name, const char **value, size_t *len)
{
    const kiln_http_arg *a = find_arg(req, name);
    if (a == NULL)
        return false;
    *value = a->value, *len = a->value_len;
    return true;
}

void kiln_http_text(kiln_http_resp *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body.len = 0;
    kiln_buf_puts(&resp->body, text);
}

void kiln_http_resp_header(kiln_http_resp *resp, const char *name, const char *value)
{
    for (int i = 0; i < KILN_HTTP_MAX_HEADERS; i++) {
        if (resp->headers[i][0] == NULL) {
            resp->headers[i][0] = name, resp->headers[i][1] = value;
            return;
        }
    }
}

static const route *find_route(const kiln_http_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) == 0)
            return &s->routes[i];
    }
    return s->fallback.fn != NULL ? &s->fallback : NULL;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, kiln_http_resp *resp)
{
    size_t len = 0;
    char *body = kiln_buf_detach(&resp->body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    if (resp->content_encoding != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, resp->content_encoding);
    if (resp->allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    for (int i = 0; i < KILN_HTTP_MAX_HEADERS && resp->headers[i][0] != NULL; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* True when the client closed its end (FIN or reset). Polled rather than
 * peeked: a TLS client sends a close_notify record before its FIN, and
 * those unread bytes would hide the FIN from a peek. */
static bool client_gone(void *arg)
{
    const query_call *q = arg;
    struct pollfd p = {.fd = q->fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* A gRPC-Web call's grpc-timeout ("<at most 8 digits><H|M|S|m|u|n>") in
 * nanoseconds, or -1 when absent or malformed. */
static int64_t grpc_timeout_ns(const char *h)
{
    static const struct {
        char unit;
        int64_t ns;
    } units[] = {{'H', 3600000000000LL}, {'M', 60000000000LL}, {'S', 1000000000LL},
                 {'m', 1000000LL},       {'u', 1000LL},        {'n', 1LL}};
    size_t n = h != NULL ? strspn(h, "0123456789") : 0;
    if (n == 0 || n > 8 || h[n] == '\0' || h[n + 1] != '\0')
        return -1;
    int64_t v = strtoll(h, NULL, 10);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (h[n] == units[i].unit)
            return v > INT64_MAX / units[i].ns ? INT64_MAX / 2 : v * units[i].ns;
    }
    return -1;
}

/* The query's deadline: the server's timeout, or the client's
 * Connect-Timeout-Ms (at most 10 digits, as Connect allows) or gRPC-Web
 * grpc-timeout when shorter. */
static int64_t query_deadline(const kiln_http_server_t *s, struct MHD_Connection *c)
{
    int64_t now = kiln_cancel_now(), dl = 0;
    if (s->cfg.query_timeout_ns > 0)
        dl = now + s->cfg.query_timeout_ns;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connect-Timeout-Ms");
    size_t n = h != NULL ? strspn(h, "0123456789") : 0;
    int64_t client = -1;
    if (n > 0 && n <= 10 && h[n] == '\0')
        client = strtoll(h, NULL, 10) * 1000000LL;
    else
        client = grpc_timeout_ns(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "grpc-timeout"));
    if (client >= 0 && (dl == 0 || now + client < dl))
        dl = now + client;
    return dl;
}

/* Replaces resp with the error st: gRPC-Web trailers when the call came
 * as gRPC-Web, else Connect's JSON. */
static void error_resp(struct MHD_Connection *c, kiln_http_resp *resp, kiln_status st,
                       const char *msg)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    bool text, json;
    resp->body.len = 0;
    if (kiln_grpcweb_match(ct, &text, &json)) {
        kiln_grpcweb_reply(resp, text, json, st, msg);
        return;
    }
    resp->status = kiln_status_http(st);
    resp->content_type = "application/json";
    resp->content_encoding = NULL;
    kiln_buf_printf(&resp->body, "{\"code\":\"%s\",\"message\":", kiln_status_str(st));
    kiln_json_string(&resp->body, msg, strlen(msg));
    kiln_buf_putc(&resp->body, '}');
}

/* Replaces resp with the error of a query stopped by why. */
static void stopped_resp(struct MHD_Connection *c, kiln_http_resp *resp, int why)
{
    const char *msg = why == KILN_DEADLINE_EXCEEDED
                          ? "query deadline exceeded"
                          : "query canceled: client gone or shutting down";
    error_resp(c, resp, (kiln_status)why, msg);
}

/* Runs a query handler under its token; the answer is the token's status
 * if the token ended while the handler ran (a partial result is dropped). */
static void run_query(query_call *q)
{
    q->req.cancel = &q->cancel;
    kiln_cancel_bind(&q->cancel);
    if (kiln_cancel_check(&q->cancel) == KILN_OK) /* it may have waited in the queue */
        q->r->fn(q->r->ud, &q->req, &q->resp);
    kiln_cancel_bind(NULL);
    int why = atomic_load(&q->cancel.why);
    if (why != KILN_OK) {
        stopped_resp(q->c, &q->resp, why);
        if (q->s->cfg.query_pool != NULL)
            kiln_query_pool_ended(q->s->cfg.query_pool, (kiln_status)why);
    }
}

static void on_query_job(void *arg)
{
    query_call *q = arg;
    run_query(q);
    q->rq->answered = 1; /* published to the MHD thread by resume's lock */
    MHD_resume_connection(q->c);
}

/* Suspends the connection and queues the query; a refusal is answered at
 * once (the connection resumes to send it). */
static enum MHD_Result start_query(kiln_http_server_t *s, struct MHD_Connection *c, request *rq,
                                   const route *r, const kiln_http_req *req)
{
    query_call *q = kiln_xcalloc(1, sizeof(*q));
    q->s = s, q->c = c, q->r = r, q->req = *req, q->rq = rq;
    q->resp = (kiln_http_resp){.status = 200};
    kiln_buf_init(&q->resp.body, 0);
    kiln_cancel_init(&q->cancel, query_deadline(s, c));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL) {
        q->fd = ci->connect_fd;
        q->cancel.gone = client_gone;
        q->cancel.gone_arg = q;
    }
    rq->q = q;
    if (s->cfg.query_pool == NULL) { /* no pool: on this worker, still under the token */
        run_query(q);
        return send_resp(c, &q->resp);
    }
    MHD_suspend_connection(c);
    kiln_err err = {KILN_OK, ""};
    const char *tenant = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Scope-OrgID");
    kiln_status st = kiln_query_pool_submit(s->cfg.query_pool, tenant, on_query_job, q, &err);
    if (st != KILN_OK) {
        KILN_LOG_WARN("http", "%s refused code=%s: %s", req->path, kiln_status_str(st), err.msg);
        error_resp(c, &q->resp, st, err.msg); /* names the raw tenant, JSON-escaped */
        rq->answered = 1;
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

/* The peer's address, for the failure counter. */
static void peer_addr(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
                  (socklen_t)cap);
}

/* Authenticates a request (kiln_auth); false with resp set when refused.
 * A tenant the credentials imply (Basic user, a write token's only
 * tenant) becomes the request's X-Scope-OrgID for the handlers. */
static bool authorize(kiln_http_server_t *s, struct MHD_Connection *c, kiln_arena_t *arena,
                      const char *url, kiln_http_resp *resp)
{
    kiln_auth_scope scope = kiln_auth_path_scope(url);
    if (s->auth == NULL || scope == KILN_AUTH_PUBLIC)
        return true;
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *org = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Scope-OrgID");
    char src[64], tenant[KILN_TENANT_MAX * 8 + 8];
    peer_addr(c, src, sizeof(src));
    kiln_err err = {KILN_OK, ""};
    kiln_status st =
        kiln_auth_check(s->auth, authz, authz ? strlen(authz) : 0, org, org ? strlen(org) : 0,
                        scope, src, tenant, sizeof(tenant), &err);
    if (st != KILN_OK) {
        kiln_connect_error(resp, st, err.msg);
        return false;
    }
    if ((org == NULL || *org == '\0') && tenant[0] != '\0')
        MHD_set_connection_value(c, MHD_HEADER_KIND, "X-Scope-OrgID",
                                 kiln_arena_strndup(arena, tenant, strlen(tenant)));
    return true;
}

static enum MHD_Result dispatch(kiln_http_server_t *s, struct MHD_Connection *c, request *rq,
                                const char *url, const char *method)
{
    if (rq->q != NULL) { /* resumed: the query's answer */
        if (!rq->answered)
            return MHD_YES; /* cannot happen: resumed only once answered */
        return send_resp(c, &rq->q->resp);
    }
    kiln_http_resp resp = {.status = 200};
    kiln_buf_init(&resp.body, 0);
    if (rq->too_many_args) {
        char msg[128];
        snprintf(msg, sizeof(msg), "more than %d query parameters\n", MAX_QUERY_ARGS);
        kiln_http_text(&resp, 414, msg);
        return send_resp(c, &resp);
    }
    if (rq->too_large) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes\n",
                 s->cfg.max_body);
        kiln_http_text(&resp, 413, msg);
        return send_resp(c, &resp);
    }
    if (!authorize(s, c, rq->arena, url, &resp))
        return send_resp(c, &resp);
    kiln_http_req req = {.method = method,
                         .path = url,
                         .body = (const uint8_t *)rq->body.ptr,
                         .body_len = rq->body.len,
                         .arena = rq->arena,
                         .conn = c,
                         .args = rq->args,
                         .n_args = rq->n_args};
    const route *r = find_route(s, url);
    if (r != NULL && is_query(s, r, url))
        return start_query(s, c, rq, r, &req);
    if (r == NULL)
        kiln_http_text(&resp, 404, "404 page not found\n");
    else
        r->fn(r->ud, &req, &resp);
    return send_resp(c, &resp);
}

static conn_state *conn_state_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* Called with the request line's URI before libmicrohttpd parses its query
 * arguments into the connection's memory pool (a 64-byte record each, and
 * 0.9.75 never answers a request whose arguments exhaust the pool). The
 * query string is copied to the connection's state and cut, in the
 * connection's own read buffer where libmicrohttpd is about to parse it,
 * to nothing: Kiln parses it (parse_query). Nothing per request is
 * allocated here: libmicrohttpd reports completion only of requests that
 * reached on_request, so state made here could leak. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    conn_state *cs = conn_state_of(c);
    char *q = uri != NULL ? strchr(uri, '?') : NULL;
    if (cs != NULL)
        cs->has_query = false, cs->too_many_args = false;
    if (q == NULL)
        return NULL;
    if (cs != NULL) {
        size_t n = 1, len = strlen(q + 1);
        for (const char *a = memchr(q + 1, '&', len); a != NULL && n <= MAX_QUERY_ARGS;
             a = strchr(a + 1, '&'))
            n++;
        cs->too_many_args = n > MAX_QUERY_ARGS;
        if (!cs->too_many_args) {
            if (cs->query_cap < len + 1) {
                free(cs->query);
                cs->query_cap = len + 1;
                cs->query = kiln_xmalloc(cs->query_cap);
            }
            memcpy(cs->query, q + 1, len + 1);
            cs->has_query = true;
        }
    }
    q[1] = '\0'; /* libmicrohttpd cuts at q itself, then parses "" */
    return NULL;
}

/* '+' is a space, then %XX escapes (libmicrohttpd's lenient decoding: a
 * malformed escape stays as is); in place, returning the new length. */
static size_t unescape_arg(char *v)
{
    for (char *p = strchr(v, '+'); p != NULL; p = strchr(p + 1, '+'))
        *p = ' ';
    return MHD_http_unescape(v);
}

/* Splits the query string qs (in the arena, decoded in place) as
 * libmicrohttpd 0.9.75 did: at every '&' (an empty piece is an empty name
 * without a value, but a trailing one is nothing), each at its first '='. */
static void parse_query(request *rq, char *qs)
{
    size_t n = 1;
    for (const char *a = strchr(qs, '&'); a != NULL; a = strchr(a + 1, '&'))
        n++;
    rq->args = kiln_arena_alloc(rq->arena, n * sizeof(*rq->args));
    rq->n_args = 0;
    while (*qs != '\0') {
        char *amp = strchr(qs, '&');
        if (amp != NULL)
            *amp = '\0';
        kiln_http_arg *a = &rq->args[rq->n_args++];
        char *eq = strchr(qs, '=');
        *a = (kiln_http_arg){qs, NULL, 0, 0};
        if (eq != NULL) {
            *eq = '\0';
            a->value = eq + 1;
            a->value_len = unescape_arg(eq + 1);
        }
        a->name_len = unescape_arg(qs);
        if (amp == NULL)
            break;
        qs = amp + 1;
    }
}

/* The request's state starts at its first on_request call, with the query
 * string on_uri kept. */
static request *request_create(const kiln_http_server_t *s, struct MHD_Connection *c)
{
    request *rq = kiln_xcalloc(1, sizeof(*rq));
    rq->arena = kiln_arena_pool_take(s->arenas);
    kiln_buf_init(&rq->body, s->cfg.max_body);
    conn_state *cs = conn_state_of(c);
    if (cs != NULL) {
        rq->too_many_args = cs->too_many_args;
        if (cs->has_query)
            parse_query(rq, kiln_arena_strndup(rq->arena, cs->query, strlen(cs->query)));
        cs->has_query = false, cs->too_many_args = false;
    }
    return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    kiln_http_server_t *s = cls;
    if (*con_cls == NULL) {
        *con_cls = request_create(s, c);
        return MHD_YES;
    }
    request *rq = *con_cls;
    if (*upload_data_size != 0) {
        if (!rq->too_large && !kiln_buf_append(&rq->body, upload_data, *upload_data_size)) {
            rq->too_large = 1;
            kiln_buf_free(&rq->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(s, c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    kiln_http_server_t *s = cls;
    request *rq = *con_cls;
    if (rq == NULL)
        return;
    if (rq->q != NULL) {
        kiln_buf_free(&rq->q->resp.body);
        free(rq->q);
    }
    kiln_buf_free(&rq->body);
    kiln_arena_pool_give(s->arenas, rq->arena);
    free(rq);
    *con_cls = NULL;
}

static void on_http_conn(void *ud, int fd, const struct sockaddr *addr, socklen_t len)
{
    kiln_http_server_t *s = ud;
    if (MHD_add_connection(s->d, fd, addr, len) != MHD_YES) /* it closed fd */
        KILN_LOG_DEBUG("http", "connection refused: %s", strerror(errno));
}

static void on_h2c_conn(void *ud, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)addr, (void)len;
    kiln_http_server_t *s = ud;
    s->cfg.h2c(s->cfg.h2c_ud, fd);
}

/* libmicrohttpd's messages, as sampled warnings: a client can provoke them
 * (every failed TLS handshake is one), so they must not flood the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    KILN_LOG_WARN_SAMPLED("", "libmicrohttpd", "http", "libmicrohttpd: %s", msg);
}

/* libmicrohttpd asks for a certificate only when a session has none; every
 * session gets Kiln's credentials before its handshake (on_conn), so
 * this never runs, and would fail the handshake if it did. It stands in
 * for the certificate libmicrohttpd insists on at start, so that
 * libmicrohttpd keeps no copy of a key that a rotation would leave stale. */
static int no_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req_ca_dn,
                   const gnutls_pk_algorithm_t *pk_algos, int n_pk_algos, gnutls_pcert_st **pcert,
                   unsigned int *n_pcert, gnutls_privkey_t *key)
{
    (void)session, (void)req_ca_dn, (void)n_req_ca_dn, (void)pk_algos, (void)n_pk_algos;
    (void)pcert, (void)n_pcert, (void)key;
    return -1;
}

/* A connection closed with bytes unread (a request refused before it was
 * read whole) is drained before it is closed, so that the client reads the
 * refusal rather than a reset. The dup keeps the socket open past
 * libmicrohttpd's close. */
static void linger_if_unread(kiln_http_server_t *s, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int unread = 0;
    if (ci == NULL || ioctl(ci->connect_fd, FIONREAD, &unread) != 0 || unread <= 0)
        return;
    int fd = dup(ci->connect_fd);
    if (fd >= 0)
        kiln_linger_close(s->linger, fd);
}

/* A connection starts (on its worker; under TLS before the handshake) or
 * ends (after its TLS session is deinitialised): its state is made, and
 * freed. A TLS connection takes the current credentials, and releases
 * them. libmicrohttpd gives each connection the slot socket_context for
 * this. */
static void on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
    kiln_http_server_t *s = cls;
    conn_state *cs = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        linger_if_unread(s, c);
        if (cs != NULL) {
            if (cs->tls != NULL)
                kiln_http_tls_detach(cs->tls);
            free(cs->query);
            free(cs);
        }
        *socket_context = NULL;
        return;
    }
    cs = kiln_xcalloc(1, sizeof(*cs));
    if (s->tls != NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci != NULL && ci->tls_session != NULL)
            cs->tls = kiln_http_tls_attach(s->tls, ci->tls_session);
    }
    *socket_context = cs;
}

kiln_status kiln_http_server_start(kiln_http_server_t *s, kiln_err *err)
{
    /* libmicrohttpd gets its connections from the listener (inter-thread
     * signalling wakes its workers for each). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (s->cfg.tls != NULL && kiln_tls_enabled(s->cfg.tls)) {
        kiln_status st = kiln_http_tls_create(s->cfg.tls, &s->tls, err);
        if (st != KILN_OK)
            return st;
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)no_cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)KILN_HTTP_TLS_PRIORITIES};
    }
    s->linger = kiln_linger_create();
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(s->cfg.threads > 0 ? s->cfg.threads : 1),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, s, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT, MHD_OPTION_CONNECTION_LIMIT,
        4096u, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (s->d == NULL)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot start the HTTP server");
    /* Under TLS the HTTP/2 preface is encrypted: nothing to sort by, every
     * connection is libmicrohttpd's (gRPC clients use the gRPC port). */
    bool h2c = s->cfg.h2c != NULL && s->tls == NULL;
    kiln_listener_config lc = {
        s->cfg.address, s->cfg.port, "HTTP", on_http_conn, h2c ? on_h2c_conn : NULL, s};
    kiln_status st = kiln_listener_start(&lc, &s->listener, err);
    if (st == KILN_OK)
        s->port = kiln_listener_port(s->listener);
    return st;
}

int kiln_http_server_port(const kiln_http_server_t *s)
{
    return s->port;
}

void kiln_http_server_destroy(kiln_http_server_t *s)
{
    if (s == NULL)
        return;
    kiln_listener_destroy(s->listener); /* no new connection from here on */
    if (s->d != NULL)
        MHD_stop_daemon(s->d); /* closes every connection: their holds on the credentials go */
    kiln_linger_destroy(s->linger);
    kiln_http_tls_destroy(s->tls);
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    kiln_arena_pool_destroy(s->arenas);
    free(s);
}
