/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for arenas: allocations are aligned, counted and capped
 * exactly, whether bumped inline or by the slow path (a new chunk, a zero
 * size); a reset keeps the largest chunk up to its bound (so a reused
 * arena serves like requests without a malloc), and an arena pool hands
 * back the arena given last, reset, keeping no more than it was made for. */
#include <stdint.h>

#include "arena.h"
#include "check.h"

static void count(void *arg)
{
    ++*(int *)arg;
}

TEST(allocations_are_aligned_counted_and_distinct)
{
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK(kiln_arena_alloc(a, 0) != NULL); /* an empty arena too */
    unsigned char *prev = NULL;
    size_t want = 0;
    for (size_t n = 1; n < 5000; n += 37) { /* past the first chunk */
        unsigned char *p = kiln_arena_alloc(a, n);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0);
        CHECK(prev == NULL || p >= prev + 16 || p + ((n + 15) & ~(size_t)15) <= prev);
        p[0] = 1, p[n - 1] = 2; /* ASan: the whole block is ours */
        want += (n + 15) & ~(size_t)15;
        prev = p;
    }
    CHECK_EQ(kiln_arena_used(a), want);
    CHECK(kiln_arena_alloc(a, 0) != NULL);
    CHECK_EQ(kiln_arena_used(a), want);
    kiln_arena_alloc(a, 1u << 20); /* larger than any chunk so far */
    CHECK_EQ(kiln_arena_used(a), want + (1u << 20));
    kiln_arena_destroy(a);
}

TEST(the_cap_is_exact)
{
    kiln_arena_t *a = kiln_arena_create(100 * 16);
    for (int i = 0; i < 99; i++)
        CHECK(kiln_arena_alloc(a, 9) != NULL); /* 16 each */
    CHECK(kiln_arena_alloc(a, 17) == NULL);    /* 32 would pass the cap */
    CHECK(kiln_arena_alloc(a, 16) != NULL);    /* exactly at it */
    CHECK(kiln_arena_alloc(a, 1) == NULL);
    CHECK(kiln_arena_alloc(a, SIZE_MAX) == NULL);
    CHECK_EQ(kiln_arena_used(a), 100 * 16);
    kiln_arena_reset(a);
    CHECK(kiln_arena_alloc(a, 100 * 16) != NULL); /* the cap counts from the reset */
    CHECK(kiln_arena_alloc(a, 1) == NULL);
    kiln_arena_destroy(a);
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
    RUN(allocations_are_aligned_counted_and_distinct);
    RUN(the_cap_is_exact);
    RUN(reset_keeps_the_largest_chunk);
    RUN(pool_reuses_reset_arenas);
    return check_done();
}
