/* SPDX-License-Identifier: Apache-2.0
 * linger: sockets drained by one epoll thread until EOF, a deadline or a
 * byte bound. */
#include "linger.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "xmalloc.h"

#define MAX_SOCKETS 256
#define LINGER_NS (2 * 1000000000LL)
#define LINGER_BYTES ((size_t)16 << 20)

typedef struct slot {
    int fd; /* -1 = free */
    int64_t deadline_ns;
    size_t read;
} slot;

struct kiln_linger {
    int ep, wake; /* epoll set; eventfd that ends the thread */
    pthread_t thread;
    pthread_mutex_t mu; /* guards slots */
    slot slots[MAX_SOCKETS];
};

static void drop(kiln_linger_t *l, slot *s)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
}

/* Reads what s has and discards it; false when it is done (EOF, an error,
 * or the byte bound). */
static bool drain(slot *s)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n > 0 && (s->read += (size_t)n) < LINGER_BYTES)
            continue;
        return n < 0 && s->read < LINGER_BYTES; /* EAGAIN: more may come */
    }
}

static void *run(void *arg)
{
    kiln_linger_t *l = arg;
    struct epoll_event ev[32];
    for (;;) {
        int n = epoll_wait(l->ep, ev, 32, 100);
        pthread_mutex_lock(&l->mu);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u32 == MAX_SOCKETS) {
                pthread_mutex_unlock(&l->mu);
                return NULL;
            }
            slot *s = &l->slots[ev[i].data.u32];
            if (s->fd >= 0 && !drain(s))
                drop(l, s);
        }
        int64_t now = kiln_mono_ns();
        for (size_t i = 0; i < MAX_SOCKETS; i++) {
            if (l->slots[i].fd >= 0 && now >= l->slots[i].deadline_ns)
                drop(l, &l->slots[i]);
        }
        pthread_mutex_unlock(&l->mu);
    }
}

kiln_linger_t *kiln_linger_create(void)
{
    kiln_linger_t *l = kiln_xcalloc(1, sizeof(*l));
    for (size_t i = 0; i < MAX_SOCKETS; i++)
        l->slots[i].fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = MAX_SOCKETS};
    if (l->ep < 0 || l->wake < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &e) != 0 ||
        pthread_create(&l->thread, NULL, run, l) != 0) {
        if (l->ep >= 0)
            close(l->ep);
        if (l->wake >= 0)
            close(l->wake);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

void kiln_linger_destroy(kiln_linger_t *l)
{
    if (l == NULL)
        return;
    uint64_t one = 1;
    (void)!write(l->wake, &one, sizeof(one));
    pthread_join(l->thread, NULL);
    for (size_t i = 0; i < MAX_SOCKETS; i++) {
        if (l->slots[i].fd >= 0)
            close(l->slots[i].fd);
    }
    close(l->wake);
    close(l->ep);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void kiln_linger_close(kiln_linger_t *l, int fd)
{
    shutdown(fd, SHUT_WR); /* the answer ends here */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (l == NULL) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    while (i < MAX_SOCKETS && l->slots[i].fd >= 0)
        i++;
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
    if (i == MAX_SOCKETS || epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
    } else {
        l->slots[i] = (slot){fd, kiln_mono_ns() + LINGER_NS, 0};
    }
    pthread_mutex_unlock(&l->mu);
}
