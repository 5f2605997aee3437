/* SPDX-License-Identifier: Apache-2.0
 * http_client: one HTTP/1.1 request to 127.0.0.1 over a plain socket
 * (Connection: close, 10 s socket timeouts), for unit tests that drive the
 * real HTTP server. Header-only. */
#ifndef KILN_TEST_HTTP_CLIENT_H
#define KILN_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"

/* Sends method path (with its query) to 127.0.0.1:port with the extra
 * header lines `headers` ("Name: value\r\n" each; NULL = none) and body;
 * returns the response status (-1 when the exchange fails) and appends
 * the response body to out (NULL = dropped). */
static inline int http_call(int port, const char *method, const char *path, const char *headers,
                            const void *body, size_t len, kiln_buf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    kiln_buf req;
    kiln_buf_init(&req, 0);
    kiln_buf_printf(&req,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                    "Content-Length: %zu\r\n\r\n",
                    method, path, headers ? headers : "", len);
    kiln_buf_append(&req, body, len);
    bool sent = send(fd, req.ptr, req.len, MSG_NOSIGNAL) == (ssize_t)req.len;
    kiln_buf_free(&req);
    kiln_buf resp;
    kiln_buf_init(&resp, 0);
    char chunk[4096];
    ssize_t n;
    while (sent && (n = recv(fd, chunk, sizeof(chunk), 0)) > 0)
        kiln_buf_append(&resp, chunk, (size_t)n);
    close(fd);
    kiln_buf_putc(&resp, '\0');
    int status = -1;
    if (resp.len > 12 && sscanf(resp.ptr, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    const char *b = resp.ptr ? strstr(resp.ptr, "\r\n\r\n") : NULL;
    if (out != NULL && b != NULL)
        kiln_buf_puts(out, b + 4);
    kiln_buf_free(&resp);
    return status;
}

#endif
