/* SPDX-License-Identifier: Apache-2.0
 * listener: accept, peek, hand over. One epoll set holds the listening
 * socket, an eventfd that wakes the thread for shutdown, and the accepted
 * connections not yet sorted. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN (sizeof(PREFACE) - 1)
/* Connections accepted but not yet sorted; libmicrohttpd and the gRPC core
 * enforce their own limits once a connection is theirs. */
#define MAX_PENDING 1024
/* A silent client is HTTP/1.1's (it is the client who speaks first in both
 * protocols): libmicrohttpd's own timeout takes it from there. */
#define SORT_TIMEOUT_MS 5000

typedef struct pending {
    int fd;
    int64_t deadline_ms;
    struct sockaddr_storage addr;
    socklen_t addr_len;
} pending;

struct kiln_listener {
    kiln_listener_config cfg;
    int fd, ep, wake;
    int port;
    pthread_t thread;
    pending pend[MAX_PENDING];
    int n_pend;
};

static int64_t now_ms(void)
{
    return kiln_mono_ns() / 1000000;
}

/* Removes entry i (swapping the last in) and gives its socket to fn, or
 * closes it when fn is NULL. */
static void hand_over(kiln_listener_t *l, int i, kiln_listener_fn fn)
{
    pending p = l->pend[i];
    l->pend[i] = l->pend[--l->n_pend];
    epoll_ctl(l->ep, EPOLL_CTL_DEL, p.fd, NULL);
    if (fn == NULL) {
        close(p.fd);
        return;
    }
    fn(l->cfg.ud, p.fd, (const struct sockaddr *)&p.addr, p.addr_len);
}

/* Sorts entry i by the bytes it has sent so far; leaves it pending while
 * they are a proper prefix of the HTTP/2 preface. */
static void sort_conn(kiln_listener_t *l, int i)
{
    char b[PREFACE_LEN];
    ssize_t n = recv(l->pend[i].fd, b, sizeof(b), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* closed before a byte, or reset */
        hand_over(l, i, NULL);
        return;
    }
    if (l->cfg.h2 == NULL || memcmp(b, PREFACE, (size_t)n) != 0)
        hand_over(l, i, l->cfg.http);
    else if ((size_t)n == PREFACE_LEN)
        hand_over(l, i, l->cfg.h2);
}

static void accept_all(kiln_listener_t *l)
{
    for (;;) {
        pending p = {.addr_len = sizeof(p.addr)};
        p.fd =
            accept4(l->fd, (struct sockaddr *)&p.addr, &p.addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (p.fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                KILN_LOG_WARN("listener", "%s accept: %s", l->cfg.name, strerror(errno));
            return;
        }
        if (l->cfg.h2 == NULL) {
            l->cfg.http(l->cfg.ud, p.fd, (const struct sockaddr *)&p.addr, p.addr_len);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = p.fd};
        if (l->n_pend == MAX_PENDING || epoll_ctl(l->ep, EPOLL_CTL_ADD, p.fd, &ev) != 0) {
            close(p.fd);
            continue;
        }
        p.deadline_ms = now_ms() + SORT_TIMEOUT_MS;
        l->pend[l->n_pend++] = p;
    }
}

static int find_pending(const kiln_listener_t *l, int fd)
{
    for (int i = 0; i < l->n_pend; i++) {
        if (l->pend[i].fd == fd)
            return i;
    }
    return -1;
}

/* Silent past the timeout: HTTP/1.1's. */
static int expire(kiln_listener_t *l)
{
    int64_t now = now_ms(), next = 1000;
    for (int i = l->n_pend - 1; i >= 0; i--) {
        if (l->pend[i].deadline_ms <= now)
            hand_over(l, i, l->cfg.http);
        else if (l->pend[i].deadline_ms - now < next)
            next = l->pend[i].deadline_ms - now;
    }
    return (int)next;
}

static void *run(void *arg)
{
    kiln_listener_t *l = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(l->ep, evs, 64, expire(l));
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == l->wake)
                return NULL;
            if (fd == l->fd) {
                accept_all(l);
                continue;
            }
            int i = find_pending(l, fd);
            if (i >= 0)
                sort_conn(l, i);
        }
    }
}

static kiln_status bind_listen(kiln_listener_t *l, kiln_err *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->cfg.port)};
    const char *addr = l->cfg.address && *l->cfg.address ? l->cfg.address : "0.0.0.0";
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid %s listen address '%s'",
                            l->cfg.name, addr);
    int one = 1;
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l->fd, 4096) != 0)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot listen on %s:%d (%s): %s", addr,
                            l->cfg.port, l->cfg.name, strerror(errno));
    socklen_t len = sizeof(sa);
    getsockname(l->fd, (struct sockaddr *)&sa, &len);
    l->port = ntohs(sa.sin_port);
    return KILN_OK;
}

kiln_status kiln_listener_start(const kiln_listener_config *cfg, kiln_listener_t **out,
                                kiln_err *err)
{
    kiln_listener_t *l = kiln_xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    l->fd = l->ep = l->wake = -1;
    kiln_status st = bind_listen(l, err);
    if (st == KILN_OK) {
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event a = {.events = EPOLLIN, .data.fd = l->fd};
        struct epoll_event w = {.events = EPOLLIN, .data.fd = l->wake};
        if (l->ep < 0 || l->wake < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->fd, &a) != 0 ||
            epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &w) != 0 ||
            pthread_create(&l->thread, NULL, run, l) != 0)
            st = kiln_err_set(err, KILN_UNAVAILABLE, "%s listener: %s", cfg->name, strerror(errno));
    }
    if (st != KILN_OK) {
        l->thread = 0;
        kiln_listener_destroy(l);
        return st;
    }
    *out = l;
    return KILN_OK;
}

int kiln_listener_port(const kiln_listener_t *l)
{
    return l->port;
}

void kiln_listener_destroy(kiln_listener_t *l)
{
    if (l == NULL)
        return;
    if (l->thread != 0) {
        uint64_t one = 1;
        if (write(l->wake, &one, sizeof(one)) < 0)
            KILN_LOG_WARN("listener", "wake: %s", strerror(errno));
        pthread_join(l->thread, NULL);
    }
    while (l->n_pend > 0)
        hand_over(l, l->n_pend - 1, NULL);
    if (l->fd >= 0)
        close(l->fd);
    if (l->ep >= 0)
        close(l->ep);
    if (l->wake >= 0)
        close(l->wake);
    free(l);
}
