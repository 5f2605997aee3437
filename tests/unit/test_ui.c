/* SPDX-License-Identifier: Apache-2.0
 * ui: the embedded web UI over a real HTTP server: gzip or identity by
 * Accept-Encoding, ETag and 304, caching, methods, the asset table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "gzip.h"
#include "http_server.h"
#include "ui.h"
#include "ui_assets.h"

static kiln_http_server_t *server;
static int port;

/* One request on a fresh connection; the whole answer (headers and body)
 * into out, at most cap - 1 bytes; its length. */
static size_t request(const char *req, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t n = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        ssize_t r;
        while (n + 1 < cap && (r = read(fd, out + n, cap - 1 - n)) > 0)
            n += (size_t)r;
    }
    out[n] = '\0';
    close(fd);
    return n;
}

static char buf[8 << 20];

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

TEST(table_has_page_and_assets)
{
    CHECK(kiln_ui_n_assets >= 3);
    CHECK_STR(kiln_ui_assets[0].path, "/");
    for (size_t i = 0; i < kiln_ui_n_assets; i++) {
        const kiln_ui_asset *a = &kiln_ui_assets[i];
        CHECK(i == 0 || strncmp(a->path, "/ui/", 4) == 0);
        CHECK(kiln_gzip_is(a->gzip, a->gzip_len));
        CHECK(a->etag[0] == '"' && a->etag[strlen(a->etag) - 1] == '"');
    }
}

TEST(page_gzip_when_accepted)
{
    request("GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, deflate\r\nConnection: "
            "close\r\n\r\n",
            buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(buf, "Content-Encoding: gzip") != NULL);
    CHECK(strstr(buf, "Content-Type: text/html; charset=utf-8") != NULL);
    CHECK(strstr(buf, "Cache-Control: no-cache") != NULL);
    CHECK(strstr(buf, "Vary: Accept-Encoding") != NULL);
    char etag[64];
    snprintf(etag, sizeof(etag), "ETag: %s", kiln_ui_assets[0].etag);
    CHECK(strstr(buf, etag) != NULL);
    CHECK(kiln_gzip_is((const uint8_t *)body_of(buf), 2));
}

TEST(page_identity_otherwise)
{
    size_t n = request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(buf, "Content-Encoding") == NULL);
    const char *b = body_of(buf);
    CHECK_EQ(n - (size_t)(b - buf), kiln_ui_assets[0].raw_len);
    CHECK(strstr(b, "<!doctype html>") == b);
    CHECK(strstr(b, "/ui/app-") != NULL); /* names its hashed script */
}

TEST(etag_match_is_304)
{
    char req[512];
    snprintf(req, sizeof(req),
             "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\nConnection: close\r\n\r\n",
             kiln_ui_assets[0].etag);
    request(req, buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 304", 12) == 0);
    CHECK_STR(body_of(buf), "");
    request("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"stale\"\r\nConnection: close\r\n\r\n",
            buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
}

TEST(hashed_assets_cached_for_good)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             kiln_ui_assets[1].path);
    request(req, buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(buf, "immutable") != NULL);
    request("GET /ui/missing.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
            sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 404", 12) == 0);
}

TEST(other_methods_405)
{
    request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", buf,
            sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 405", 12) == 0);
    CHECK(strstr(buf, "Allow: GET, HEAD") != NULL);
    size_t n = request("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK_EQ(n, (size_t)(body_of(buf) - buf)); /* no body */
}

TEST(built_without_ui)
{
    request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 404", 12) == 0);
}

int main(void)
{
    kiln_http_config cfg = {.address = "127.0.0.1", .threads = 2, .max_body = 1 << 20};
    server = kiln_http_server_create(&cfg);
    kiln_ui_register(server);
    kiln_err err = {KILN_OK, ""};
    if (kiln_http_server_start(server, &err) != KILN_OK) {
        printf("cannot start: %s\n", err.msg);
        return 1;
    }
    port = kiln_http_server_port(server);
    if (kiln_ui_n_assets == 0) { /* -DKILN_UI=OFF */
        RUN(built_without_ui);
        kiln_http_server_destroy(server);
        return check_done();
    }
    RUN(table_has_page_and_assets);
    RUN(page_gzip_when_accepted);
    RUN(page_identity_otherwise);
    RUN(etag_match_is_304);
    RUN(hashed_assets_cached_for_good);
    RUN(other_methods_405);
    kiln_http_server_destroy(server);
    return check_done();
}
