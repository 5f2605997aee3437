/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for arena reuse: a reset keeps the largest chunk up to its
 * bound (so a reused arena serves like requests without a malloc), and an
 * arena pool hands back the arena given last, reset, keeping no more than
 * it was made for. */
#include <stdint.h>

#include "arena.h"
#include "check.h"

static void count(void *arg)
{
    ++*(int *)arg;
}

TEST(reset_keeps_the_largest_chunk)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_arena_alloc(a, 1000);
    kiln_arena_alloc(a, 500 * 1024); /* a second, larger chunk */
    size_t held = kiln_arena_footprint(a);
    kiln_arena_reset(a);
    CHECK_EQ(kiln_arena_used(a), 0);
    size_t kept = kiln_arena_footprint(a);
    CHECK(kept >= 500 * 1024 && kept < held); /* the large one, not the first */
    kiln_arena_alloc(a, 400 * 1024);
    CHECK_EQ(kiln_arena_footprint(a), kept); /* served from it */
    kiln_arena_alloc(a, 8u << 20);           /* past the bound: not kept */
    kiln_arena_reset(a);
    CHECK_EQ(kiln_arena_footprint(a), kept);
    kiln_arena_destroy(a);
}

TEST(pool_reuses_reset_arenas)
{
    kiln_arena_pool_t *p = kiln_arena_pool_create(1);
    kiln_arena_t *a = kiln_arena_pool_take(p), *b = kiln_arena_pool_take(p);
    CHECK(a != NULL && b != NULL && a != b);
    int deferred = 0;
    kiln_arena_defer(a, count, &deferred);
    kiln_arena_alloc(a, 100);
    kiln_arena_pool_give(p, a);
    CHECK_EQ(deferred, 1);      /* reset when given back */
    kiln_arena_pool_give(p, b); /* the pool is full: freed */
    kiln_arena_pool_give(p, NULL);
    CHECK(kiln_arena_pool_take(p) == a);
    CHECK_EQ(kiln_arena_used(a), 0);
    kiln_arena_t *c = kiln_arena_pool_take(p); /* empty again: a new one */
    CHECK(c != NULL && c != a);
    kiln_arena_pool_give(p, a);
    kiln_arena_destroy(c);
    kiln_arena_pool_destroy(p); /* frees a */
}

int main(void)
{
    RUN(reset_keeps_the_largest_chunk);
    RUN(pool_reuses_reset_arenas);
    return check_done();
}
