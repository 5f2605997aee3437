/* SPDX-License-Identifier: Apache-2.0
 * arena: chunked bump allocation with a byte cap and deferred cleanups. */
#include "arena.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define CHUNK_MIN (64u * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t cap;
    _Alignas(KILN_ARENA_ALIGN) unsigned char data[];
} chunk;

typedef struct deferred {
    struct deferred *next;
    void (*fn)(void *);
    void *arg;
} deferred;

struct kiln_arena {
    kiln_arena_bump bump; /* first: arena.h's inline allocation bumps it */
    unsigned char *start; /* where bump.next stood when `closed` was counted */
    size_t closed;        /* bytes handed out before start */
    chunk *head;          /* the current chunk, bump's; older ones after it */
    deferred *defers;
    size_t cap;
    size_t held; /* bytes of the chunks malloc'd (kiln_arena_footprint) */
};

/* Bytes handed out so far: those counted, and those bumped since. */
static size_t used_of(const kiln_arena_t *a)
{
    return a->closed + (size_t)(a->bump.next - a->start);
}

/* Opens the bump range at next in the head chunk, total bytes having been
 * handed out: it ends at the chunk's end, or where the cap would be passed. */
static void open_range(kiln_arena_t *a, unsigned char *next, size_t total)
{
    unsigned char *end = a->head->data + a->head->cap;
    if (a->cap != 0 && (size_t)(end - next) > a->cap - total)
        end = next + (a->cap - total);
    a->closed = total;
    a->start = next;
    a->bump = (kiln_arena_bump){next, end};
}

static chunk *chunk_new(size_t n)
{
    size_t cap = n < CHUNK_MIN ? CHUNK_MIN : n;
    chunk *c = kiln_xmalloc(sizeof(chunk) + cap);
    c->next = NULL;
    c->cap = cap;
    return c;
}

kiln_arena_t *kiln_arena_create(size_t cap)
{
    kiln_arena_t *a = kiln_xcalloc(1, sizeof(*a));
    a->cap = cap;
    return a;
}

static void run_defers(kiln_arena_t *a)
{
    while (a->defers != NULL) {
        deferred *d = a->defers;
        a->defers = d->next;
        d->fn(d->arg);
    }
}

/* The chunk a reset keeps: the largest of at most KEEP_MAX bytes. Chunks
 * double, so an arena reused for like requests soon serves each from the
 * one chunk it kept, with no malloc; the bound keeps one huge request from
 * pinning its memory. */
#define KEEP_MAX (4u * 1024 * 1024)

static chunk *chunk_to_keep(const kiln_arena_t *a)
{
    chunk *keep = NULL;
    for (chunk *c = a->head; c != NULL; c = c->next) {
        if (c->cap <= KEEP_MAX && (keep == NULL || c->cap > keep->cap))
            keep = c;
    }
    return keep;
}

void kiln_arena_reset(kiln_arena_t *a)
{
    run_defers(a);
    chunk *keep = chunk_to_keep(a);
    for (chunk *c = a->head, *next; c != NULL; c = next) {
        next = c->next;
        if (c != keep)
            free(c);
    }
    a->head = keep;
    a->held = 0;
    a->closed = 0;
    a->start = NULL;
    a->bump = (kiln_arena_bump){NULL, NULL};
    if (keep != NULL) {
        keep->next = NULL;
        a->held = sizeof(chunk) + keep->cap;
        open_range(a, keep->data, 0);
    }
}

void kiln_arena_destroy(kiln_arena_t *a)
{
    if (a == NULL)
        return;
    run_defers(a);
    for (chunk *c = a->head, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *kiln_arena__alloc(kiln_arena_t *a, size_t n)
{
    size_t need = (n + KILN_ARENA_ALIGN - 1) & ~(size_t)(KILN_ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    size_t total = used_of(a);
    if (a->cap != 0 && (need > a->cap || total > a->cap - need))
        return NULL;
    chunk *c = a->head;
    unsigned char *p = a->bump.next;
    if (c == NULL || (size_t)(c->data + c->cap - p) < need) {
        size_t sz = c != NULL && c->cap * 2 > need ? c->cap * 2 : need;
        if (sz > 16u * 1024 * 1024 && need <= 16u * 1024 * 1024)
            sz = 16u * 1024 * 1024;
        chunk *nc = chunk_new(sz);
        a->held += sizeof(chunk) + nc->cap;
        nc->next = c;
        a->head = nc;
        p = nc->data;
    }
    open_range(a, p + need, total + need);
    return p;
}

void *kiln_arena_grow(kiln_arena_t *a, const void *old, size_t old_size, size_t new_size)
{
    void *p = kiln_arena_alloc(a, new_size);
    if (p != NULL && old_size != 0)
        memcpy(p, old, old_size < new_size ? old_size : new_size);
    return p;
}

void *kiln_arena_calloc(kiln_arena_t *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = kiln_arena_alloc(a, count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

char *kiln_arena_strndup(kiln_arena_t *a, const char *s, size_t len)
{
    char *d = kiln_arena_alloc(a, len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *kiln_arena_printf(kiln_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = kiln_arena_alloc(a, (size_t)n + 1);
    if (d == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

size_t kiln_arena_used(const kiln_arena_t *a)
{
    return used_of(a);
}

size_t kiln_arena_footprint(const kiln_arena_t *a)
{
    return sizeof(*a) + a->held;
}

void kiln_arena_defer(kiln_arena_t *a, void (*fn)(void *), void *arg)
{
    deferred *d = kiln_arena_alloc(a, sizeof(*d));
    if (d == NULL) {
        /* Past the cap: run now rather than leak the resource. */
        fn(arg);
        return;
    }
    d->fn = fn;
    d->arg = arg;
    d->next = a->defers;
    a->defers = d;
}

static void *pb_alloc(void *data, size_t n)
{
    return kiln_arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator kiln_arena_pb_allocator(kiln_arena_t *a)
{
    ProtobufCAllocator al = {pb_alloc, pb_free, a};
    return al;
}

/* ---- the pool ---- */

struct kiln_arena_pool {
    pthread_mutex_t mu;
    int n, keep;
    kiln_arena_t *kept[]; /* reset; the last one given back on top */
};

kiln_arena_pool_t *kiln_arena_pool_create(int keep)
{
    kiln_arena_pool_t *p = kiln_xcalloc(1, sizeof(*p) + (size_t)keep * sizeof(kiln_arena_t *));
    pthread_mutex_init(&p->mu, NULL);
    p->keep = keep;
    return p;
}

void kiln_arena_pool_destroy(kiln_arena_pool_t *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n; i++)
        kiln_arena_destroy(p->kept[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

kiln_arena_t *kiln_arena_pool_take(kiln_arena_pool_t *p)
{
    kiln_arena_t *a = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n > 0)
        a = p->kept[--p->n];
    pthread_mutex_unlock(&p->mu);
    return a != NULL ? a : kiln_arena_create(0);
}

void kiln_arena_pool_give(kiln_arena_pool_t *p, kiln_arena_t *a)
{
    if (a == NULL)
        return;
    kiln_arena_reset(a);
    pthread_mutex_lock(&p->mu);
    if (p->n < p->keep) {
        p->kept[p->n++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    kiln_arena_destroy(a);
}
