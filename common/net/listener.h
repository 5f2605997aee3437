/* SPDX-License-Identifier: Apache-2.0
 * listener: one TCP port serving two protocol stacks. A thread accepts
 * connections and sorts each by its first bytes: one that opens with the
 * HTTP/2 client preface (prior knowledge, as gRPC clients send over h2c)
 * goes to the h2 callback, everything else (HTTP/1.1) to the http callback,
 * also when the client stays silent past the sort timeout. Without an h2
 * callback there is nothing to sort: each connection goes to http as it is
 * accepted (an HTTPS port, whose first bytes are a TLS hello). The callbacks
 * run on the listener's thread and take the socket (non-blocking, nothing
 * consumed from it: the bytes were only peeked). Undecided connections are
 * capped; past the cap a new one is closed. Start and destroy from one
 * thread. */
#ifndef KILN_LISTENER_H
#define KILN_LISTENER_H

#include <sys/socket.h>

#include "status.h"

typedef struct kiln_listener kiln_listener_t;

/** Takes the connected socket fd; addr is the client's address. */
typedef void (*kiln_listener_fn)(void *ud, int fd, const struct sockaddr *addr, socklen_t len);

typedef struct kiln_listener_config {
    const char *address; /* IPv4; "" or NULL = all interfaces */
    int port;            /* 0 = ephemeral */
    const char *name;    /* for messages: "HTTP" */
    kiln_listener_fn http;
    kiln_listener_fn h2; /* NULL = every connection goes to http */
    void *ud;
} kiln_listener_config;

/** Binds, listens and starts the thread. KILN_INVALID_ARGUMENT for a bad
 * address, KILN_UNAVAILABLE when the port cannot be bound (err names it
 * and why). */
kiln_status kiln_listener_start(const kiln_listener_config *cfg, kiln_listener_t **out,
                                kiln_err *err);
/** The bound port. */
int kiln_listener_port(const kiln_listener_t *l);
/** Stops accepting, joins the thread, closes undecided connections and
 * frees; connections already handed over are their owners'. NULL is a no-op. */
void kiln_listener_destroy(kiln_listener_t *l);

#endif
