/* SPDX-License-Identifier: Apache-2.0
 * http_server: libmicrohttpd glue. Per request: an arena and a capped body
 * buffer, created on the first callback and freed on completion. */
#include "http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

/* Each connection's libmicrohttpd pool holds the request line, the headers
 * and a record per query argument. At the default 32 KiB, a URL of ~2000
 * arguments (8 KB) exhausted it while parsing, and libmicrohttpd 0.9.75 then
 * left the client without an answer until the connection timed out. 1 MiB
 * is Go's http.DefaultMaxHeaderBytes (what Pyroscope accepts); the pool is
 * mmap'ed, so an idle connection costs only the pages it touched. */
#define CONN_MEMORY_LIMIT (1u << 20)

typedef struct route {
    char *path;
    kiln_http_handler_fn fn;
    void *ud;
} route;

struct kiln_http_server {
    kiln_http_config cfg;
    struct MHD_Daemon *d;
    route *routes;
    size_t n_routes, cap_routes;
    route fallback;
    int port;
};

typedef struct request {
    kiln_arena_t *arena;
    kiln_buf body;
    int too_large;
} request;

kiln_http_server_t *kiln_http_server_create(const kiln_http_config *cfg)
{
    kiln_http_server_t *s = kiln_xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    return s;
}

void kiln_http_server_route(kiln_http_server_t *s, const char *path, kiln_http_handler_fn fn,
                            void *ud)
{
    KILN_GROW(s->routes, s->cap_routes, s->n_routes + 1);
    s->routes[s->n_routes++] = (route){kiln_xstrdup(path), fn, ud};
}

void kiln_http_server_fallback(kiln_http_server_t *s, kiln_http_handler_fn fn, void *ud)
{
    s->fallback = (route){NULL, fn, ud};
}

const char *kiln_http_header(const kiln_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *kiln_http_query(const kiln_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void kiln_http_text(kiln_http_resp *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body.len = 0;
    kiln_buf_puts(&resp->body, text);
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
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                            : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    if (resp->content_encoding != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, resp->content_encoding);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result dispatch(kiln_http_server_t *s, struct MHD_Connection *c, request *rq,
                                const char *url, const char *method)
{
    kiln_http_resp resp = {200, NULL, NULL, {0}};
    kiln_buf_init(&resp.body, 0);
    if (rq->too_large) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes\n",
                 s->cfg.max_body);
        kiln_http_text(&resp, 413, msg);
        return send_resp(c, &resp);
    }
    kiln_http_req req = {method, url, (const uint8_t *)rq->body.ptr, rq->body.len, rq->arena, c};
    const route *r = find_route(s, url);
    if (r == NULL)
        kiln_http_text(&resp, 404, "404 page not found\n");
    else
        r->fn(r->ud, &req, &resp);
    return send_resp(c, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    kiln_http_server_t *s = cls;
    request *rq = *con_cls;
    if (rq == NULL) {
        rq = kiln_xcalloc(1, sizeof(*rq));
        rq->arena = kiln_arena_create(0);
        kiln_buf_init(&rq->body, s->cfg.max_body);
        *con_cls = rq;
        return MHD_YES;
    }
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
    (void)cls, (void)c, (void)toe;
    request *rq = *con_cls;
    if (rq == NULL)
        return;
    kiln_buf_free(&rq->body);
    kiln_arena_destroy(rq->arena);
    free(rq);
    *con_cls = NULL;
}

kiln_status kiln_http_server_start(kiln_http_server_t *s, kiln_err *err)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->cfg.port);
    const char *addr = s->cfg.address && *s->cfg.address ? s->cfg.address : "0.0.0.0";
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid HTTP listen address '%s'", addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    s->d = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)(s->cfg.threads > 0 ? s->cfg.threads : 1),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
                            MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
    if (s->d == NULL)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot listen on %s:%d (HTTP)", addr,
                            s->cfg.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : s->cfg.port;
    return KILN_OK;
}

int kiln_http_server_port(const kiln_http_server_t *s)
{
    return s->port;
}

void kiln_http_server_destroy(kiln_http_server_t *s)
{
    if (s == NULL)
        return;
    if (s->d != NULL)
        MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
}
