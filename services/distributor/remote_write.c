/* SPDX-License-Identifier: Apache-2.0
 * remote_write: snappy, then one HTTP/1.1 POST per attempt. */
#include "remote_write.h"

#include <errno.h>
#include <netdb.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

struct kiln_rw {
    char host[256];
    char port[8];
    char path[512];
};

kiln_status kiln_rw_create(const char *url, kiln_rw_t **out, kiln_err *err)
{
    const char *p = url + strlen("http://");
    if (strncmp(url, "http://", 7) != 0 || *p == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "remote write URL %.200s: want http://host[:port]/path", url);
    kiln_rw_t *rw = kiln_xcalloc(1, sizeof(*rw));
    size_t hl = strcspn(p, ":/");
    const char *path = strchr(p, '/');
    snprintf(rw->host, sizeof(rw->host), "%.*s", (int)hl, p);
    if (p[hl] == ':')
        snprintf(rw->port, sizeof(rw->port), "%.*s", (int)strcspn(p + hl + 1, "/"), p + hl + 1);
    else
        snprintf(rw->port, sizeof(rw->port), "80");
    snprintf(rw->path, sizeof(rw->path), "%s", path ? path : "/");
    if (hl == 0 || atoi(rw->port) <= 0) {
        free(rw);
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "remote write URL %.200s: bad host or port",
                            url);
    }
    *out = rw;
    return KILN_OK;
}

void kiln_rw_destroy(kiln_rw_t *rw)
{
    free(rw);
}

static int dial(const kiln_rw_t *rw)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(rw->host, rw->port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {10, 0}; /* a stalled receiver does not hold the sender */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One POST; the HTTP status, or -1 when the exchange failed. */
static int post(const kiln_rw_t *rw, const char *tenant, const char *body, size_t len)
{
    int fd = dial(rw);
    if (fd < 0)
        return -1;
    char head[1024];
    int hn = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/x-protobuf\r\n"
                      "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                      "User-Agent: kiln\r\nX-Scope-OrgID: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      rw->path, rw->host, rw->port, tenant, len);
    int status = -1;
    char resp[64] = {0};
    if (hn > 0 && (size_t)hn < sizeof(head) && write_all(fd, head, (size_t)hn) &&
        write_all(fd, body, len)) {
        size_t got = 0;
        ssize_t r;
        while (got < sizeof(resp) - 1 && (r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
            got += (size_t)r;
        if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
            status = -1;
    }
    close(fd);
    return status;
}

kiln_status kiln_rw_send(kiln_rw_t *rw, const char *tenant, const uint8_t *req, size_t len,
                         int max_attempts, kiln_err *err)
{
    size_t cap = snappy_max_compressed_length(len), n = cap;
    char *z = kiln_xmalloc(cap ? cap : 1);
    if (snappy_compress((const char *)req, len, z, &n) != SNAPPY_OK) {
        free(z);
        return kiln_err_set(err, KILN_INTERNAL, "snappy: cannot compress %zu bytes", len);
    }
    int status = -1;
    struct timespec backoff = {0, 100 * 1000000};
    for (int i = 0; i < max_attempts; i++) {
        if (i > 0) {
            nanosleep(&backoff, NULL);
            backoff.tv_nsec = backoff.tv_nsec < 400 * 1000000 ? backoff.tv_nsec * 2 : 800 * 1000000;
        }
        status = post(rw, tenant, z, n);
        if (status >= 200 && status < 500 && status != 429)
            break;
    }
    free(z);
    if (status >= 200 && status < 300)
        return KILN_OK;
    if (status >= 400 && status < 500 && status != 429)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "remote write %s:%s%s refused: HTTP %d",
                            rw->host, rw->port, rw->path, status);
    return kiln_err_set(err, KILN_UNAVAILABLE, "remote write %s:%s%s: %s after %d attempts",
                        rw->host, rw->port, rw->path, status < 0 ? "no answer" : "HTTP 5xx/429",
                        max_attempts);
}
