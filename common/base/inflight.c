/* SPDX-License-Identifier: Apache-2.0
 * inflight: the in-flight decompressed bytes budget (see inflight.h). */
#include "inflight.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "xmalloc.h"

struct kiln_inflight {
    size_t cap;
    atomic_size_t used;
    atomic_size_t refused;
};

/* One reservation, released by the arena's deferred callback. */
typedef struct hold {
    kiln_inflight_t *b;
    size_t n;
} hold;

kiln_inflight_t *kiln_inflight_create(size_t cap)
{
    kiln_inflight_t *b = kiln_xcalloc(1, sizeof(*b));
    b->cap = cap;
    atomic_init(&b->used, 0);
    atomic_init(&b->refused, 0);
    return b;
}

void kiln_inflight_destroy(kiln_inflight_t *b)
{
    free(b);
}

static void release(void *arg)
{
    hold *h = arg;
    atomic_fetch_sub_explicit(&h->b->used, h->n, memory_order_acq_rel);
}

kiln_status kiln_inflight_reserve(kiln_inflight_t *b, size_t n, kiln_arena_t *a, kiln_err *err)
{
    if (b == NULL || b->cap == 0 || n == 0)
        return KILN_OK;
    if (n > b->cap) {
        atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
        return kiln_err_set(err, KILN_OUT_OF_RANGE,
                            "request needs %zu decompressed bytes, more than the whole in-flight "
                            "budget of %zu (-server.max-inflight-bytes)",
                            n, b->cap);
    }
    hold *h = kiln_arena_alloc(a, sizeof(*h));
    if (h == NULL)
        return kiln_err_set(err, KILN_OUT_OF_RANGE, "request memory limit reached");
    size_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (used + n > b->cap) {
            atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                                "server busy: %zu of %zu in-flight decompressed bytes in use "
                                "(-server.max-inflight-bytes), this request needs %zu more; "
                                "retry later",
                                used, b->cap, n);
        }
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &used, used + n, memory_order_acq_rel,
                                                    memory_order_relaxed));
    *h = (hold){b, n};
    kiln_arena_defer(a, release, h);
    return KILN_OK;
}

size_t kiln_inflight_used(const kiln_inflight_t *b)
{
    return b == NULL ? 0
                     : atomic_load_explicit(&((kiln_inflight_t *)b)->used, memory_order_relaxed);
}

size_t kiln_inflight_refused(const kiln_inflight_t *b)
{
    return b == NULL ? 0
                     : atomic_load_explicit(&((kiln_inflight_t *)b)->refused, memory_order_relaxed);
}
