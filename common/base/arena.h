/* SPDX-License-Identifier: Apache-2.0
 * arena: a bump allocator that lives for one request (nginx r->pool style).
 * Everything allocated from it is freed at once by kiln_arena_destroy or
 * reset. A cap turns runaway requests into KILN_RESOURCE_EXHAUSTED: the
 * checked allocators return NULL past the cap. One thread at a time. */
#ifndef KILN_ARENA_H
#define KILN_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct kiln_arena kiln_arena_t;

/** Creates an arena that refuses to grow past cap bytes (0 = no cap). */
kiln_arena_t *kiln_arena_create(size_t cap);
/** Frees the arena and all its memory, running deferred callbacks. NULL is a no-op. */
void kiln_arena_destroy(kiln_arena_t *a);
/** Frees everything allocated so far but keeps one chunk for reuse: the
 * largest of at most 4 MiB, so that an arena reused for requests alike
 * serves them from it without malloc. */
void kiln_arena_reset(kiln_arena_t *a);

/* Every allocation's alignment, and so the granule sizes round up to. */
#define KILN_ARENA_ALIGN 16u

/* The free range of the arena's current chunk, first in every arena: an
 * allocation that fits is bumped here inline (kiln_arena_alloc is in every
 * decoder's inner loop, and the call was 6% of an OTLP export); any other
 * goes to kiln_arena__alloc. Only arena.c and this header touch it. */
typedef struct kiln_arena_bump {
    unsigned char *next, *end; /* end is cut short where the cap would be passed */
} kiln_arena_bump;

/** kiln_arena_alloc's slow path: a new chunk, the cap, n = 0. */
void *kiln_arena__alloc(kiln_arena_t *a, size_t n);

/** Allocates n bytes aligned to 16; NULL when the cap would be passed. */
static inline void *kiln_arena_alloc(kiln_arena_t *a, size_t n)
{
    kiln_arena_bump *b = (kiln_arena_bump *)(void *)a;
    size_t need = (n + KILN_ARENA_ALIGN - 1) & ~(size_t)(KILN_ARENA_ALIGN - 1);
    /* need - 1: a request of 0 (or one that wraps) takes the slow path,
     * which returns a valid pointer for it even in an empty arena. */
    if (need - 1 < (size_t)(b->end - b->next)) {
        void *p = b->next;
        b->next += need;
        return p;
    }
    return kiln_arena__alloc(a, n);
}
/** Like kiln_arena_alloc but zeroed. */
void *kiln_arena_calloc(kiln_arena_t *a, size_t count, size_t size);
/** A new block of new_size bytes holding the first old_size bytes of old
 * (which stays allocated until the arena goes): growing arrays. NULL past
 * the cap. */
void *kiln_arena_grow(kiln_arena_t *a, const void *old, size_t old_size, size_t new_size);
/** Copies len bytes into a NUL-terminated string in the arena; NULL past the cap. */
char *kiln_arena_strndup(kiln_arena_t *a, const char *s, size_t len);
/** Returns a printf-formatted string in the arena (NULL past the cap). */
char *kiln_arena_printf(kiln_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Bytes handed out so far. */
size_t kiln_arena_used(const kiln_arena_t *a);
/** Bytes the arena holds from malloc: its chunks, with what is left unused
 * at their ends, and itself (what it costs in memory, beside _used). */
size_t kiln_arena_footprint(const kiln_arena_t *a);
/** Runs fn(arg) when the arena is destroyed or reset (to release fds, foreign objects). */
void kiln_arena_defer(kiln_arena_t *a, void (*fn)(void *), void *arg);

/** A protobuf-c allocator backed by the arena; its free is a no-op. */
ProtobufCAllocator kiln_arena_pb_allocator(kiln_arena_t *a);

/* Arenas kept for the next requests of a server: one taken from the pool
 * serves a request from the chunk its reset kept, without a malloc, where
 * a new arena per request made glibc give the pages back to the kernel at
 * each free and fault them in again. Thread-safe. */
typedef struct kiln_arena_pool kiln_arena_pool_t;

/** A pool keeping up to `keep` reset arenas (each at most the chunk a
 * reset keeps). */
kiln_arena_pool_t *kiln_arena_pool_create(int keep);
/** Frees the pool and the arenas it keeps; NULL is a no-op. */
void kiln_arena_pool_destroy(kiln_arena_pool_t *p);
/** The arena given back last (its memory the warmest), or a new one
 * without a cap. */
kiln_arena_t *kiln_arena_pool_take(kiln_arena_pool_t *p);
/** Resets a and keeps it, or frees it when the pool is full; NULL is a
 * no-op. */
void kiln_arena_pool_give(kiln_arena_pool_t *p, kiln_arena_t *a);

#endif
