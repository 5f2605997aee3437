/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the HTTP server's size limits (http_server.h, docs/api.md).
 * libmicrohttpd's per-connection pool bounds a request line and headers,
 * not bodies (streamed to the handler up to max_body): a 100 KB URL and a
 * 64 KB header are served, a body of max_body is, and past them 414 or
 * 431 and 413 come back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http_client.h"
#include "http_server.h"
#include "xmalloc.h"

#define MAX_BODY (8u << 20)

/* Answers "<body bytes> <X-Token bytes> <q bytes>". */
static void on_echo(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    (void)ud;
    const char *token = kiln_http_header(req, "X-Token");
    const char *q = kiln_http_query(req, "q");
    char msg[96];
    snprintf(msg, sizeof(msg), "%zu %zu %zu", req->body_len, token ? strlen(token) : 0,
             q ? strlen(q) : 0);
    kiln_http_text(resp, 200, msg);
}

static kiln_http_server_t *start(void)
{
    kiln_http_config cfg = {.address = "127.0.0.1", .threads = 2, .max_body = MAX_BODY};
    kiln_http_server_t *s = kiln_http_server_create(&cfg);
    kiln_http_server_route(s, "/echo", on_echo, NULL);
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_http_server_start(s, &err));
    return s;
}

/* The status of path with a header line and a body of len bytes; the
 * answer's text into out (cap bytes). */
static int call(kiln_http_server_t *s, const char *path, const char *header, size_t len, char *out,
                size_t cap)
{
    char *body = kiln_xmalloc(len + 1);
    memset(body, 'b', len);
    kiln_buf resp;
    kiln_buf_init(&resp, 0);
    int status = http_call(kiln_http_server_port(s), "POST", path, header, body, len, &resp);
    snprintf(out, cap, "%.*s", (int)resp.len, resp.ptr ? resp.ptr : "");
    kiln_buf_free(&resp);
    free(body);
    return status;
}

/* "/echo?q=" and n bytes of x. */
static char *long_path(size_t n)
{
    char *p = kiln_xmalloc(n + 16);
    size_t k = (size_t)snprintf(p, 16, "/echo?q=");
    memset(p + k, 'x', n);
    p[k + n] = '\0';
    return p;
}

/* "X-Token: " and n bytes of t, as a header line. */
static char *long_header(size_t n)
{
    char *h = kiln_xmalloc(n + 16);
    size_t k = (size_t)snprintf(h, 16, "X-Token: ");
    memset(h + k, 't', n);
    memcpy(h + k + n, "\r\n", 3);
    return h;
}

TEST(long_url_and_header_are_served)
{
    kiln_http_server_t *s = start();
    char out[128], *path = long_path(100 << 10), *hdr = long_header(64 << 10);
    CHECK_EQ(call(s, path, NULL, 0, out, sizeof(out)), 200);
    CHECK_STR(out, "0 0 102400");
    CHECK_EQ(call(s, "/echo", hdr, 1200, out, sizeof(out)), 200);
    CHECK_STR(out, "1200 65536 0");
    free(path);
    free(hdr);
    kiln_http_server_destroy(s);
}

TEST(body_up_to_max_is_served)
{
    kiln_http_server_t *s = start();
    char out[128], *hdr = long_header(16 << 10);
    CHECK_EQ(call(s, "/echo", hdr, MAX_BODY, out, sizeof(out)), 200);
    char want[64];
    snprintf(want, sizeof(want), "%u 16384 0", MAX_BODY);
    CHECK_STR(out, want);
    CHECK_EQ(call(s, "/echo", NULL, MAX_BODY + 1, out, sizeof(out)), 413);
    free(hdr);
    kiln_http_server_destroy(s);
}

TEST(past_the_pool_is_refused)
{
    kiln_http_server_t *s = start();
    char out[128], *path = long_path(1 << 20), *hdr = long_header(1 << 20);
    CHECK_EQ(call(s, path, NULL, 0, out, sizeof(out)), 414);
    int st = call(s, "/echo", hdr, 0, out, sizeof(out));
    CHECK(st == 431 || st == 414);
    free(path);
    free(hdr);
    kiln_http_server_destroy(s);
}

int main(void)
{
    RUN(long_url_and_header_are_served);
    RUN(body_up_to_max_is_served);
    RUN(past_the_pool_is_refused);
    return check_done();
}
