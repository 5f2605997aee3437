/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: cumulative memory profiles become deltas per series. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "profiles.h"
#include "delta.h"
#include "gzip.h"
#include "pprof.h"

/* A normalised real Go heap profile (alloc_objects, alloc_space, inuse_*). */
static bool load_heap(kiln_arena_t *a, kiln_pprof_t *p)
{
    return check_load_profile(a, "parca/1644509272337470000.pb.gz", p);
}

static int64_t sum(const kiln_pprof_t *p, size_t t)
{
    int64_t s = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        s += p->values[p->samples[i].value_off + t];
    return s;
}

TEST(needed)
{
    kiln_label_t cum[] = {{"__name__", "memory"}, {"service_name", "a"}};
    kiln_label_t del[] = {{"__delta__", "false"}, {"__name__", "memory"}};
    kiln_label_t cpu[] = {{"__name__", "process_cpu"}};
    CHECK(kiln_delta_needed(cum, 2));
    CHECK(!kiln_delta_needed(del, 2));
    CHECK(!kiln_delta_needed(cpu, 1));
}

TEST(cumulative_to_delta)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p1, p2, p3;
    if (!load_heap(a, &p1) || !load_heap(a, &p2) || !load_heap(a, &p3)) {
        CHECK(!"heap profile missing");
        kiln_arena_destroy(a);
        return;
    }
    int64_t alloc = sum(&p1, 1), inuse = sum(&p1, 3);
    CHECK(alloc > 0);
    kiln_delta_t *d = kiln_delta_create();
    kiln_delta_apply(d, "t", 42, &p1);
    CHECK_EQ(sum(&p1, 0), 0); /* the first profile of a series carries no alloc values */
    CHECK_EQ(sum(&p1, 1), 0);
    CHECK_EQ(sum(&p1, 3), inuse); /* in-use values are snapshots */
    for (size_t i = 0; i < p2.n_values; i++)
        p2.values[i] *= 2; /* the process allocated as much again */
    kiln_delta_apply(d, "t", 42, &p2);
    CHECK_EQ(sum(&p2, 1), alloc);
    CHECK_EQ(sum(&p2, 3), 2 * inuse);
    kiln_delta_apply(d, "other-tenant", 42, &p3); /* separate state */
    CHECK_EQ(sum(&p3, 1), 0);
    kiln_delta_destroy(d);
    kiln_arena_destroy(a);
}

/* A negative counter (a client's bad value) counts as a reset: the next
 * profile's value is kept whole, with no overflowing difference (UBSan
 * found 12724 - (INT64_MIN + 4004) in a sweep). */
TEST(negative_counter_resets)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p1, p2;
    if (!load_heap(a, &p1) || !load_heap(a, &p2)) {
        CHECK(!"heap profile missing");
        kiln_arena_destroy(a);
        return;
    }
    int64_t alloc = sum(&p2, 1);
    for (size_t i = 0; i < p1.n_samples; i++)
        p1.values[p1.samples[i].value_off + 1] = INT64_MIN + 4004;
    kiln_delta_t *d = kiln_delta_create();
    kiln_delta_apply(d, "t", 7, &p1);
    kiln_delta_apply(d, "t", 7, &p2);
    CHECK_EQ(sum(&p2, 1), alloc);
    kiln_delta_destroy(d);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(needed);
    RUN(cumulative_to_delta);
    RUN(negative_counter_resets);
    return check_done();
}
