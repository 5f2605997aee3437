/* SPDX-License-Identifier: Apache-2.0
 * synth: a tiny synthetic CPU profile (main -> work, one sample), normalised
 * as a push leaves it, for tests, benchmarks and fuzzers that need many
 * series in a head without reading files. Header-only; depends on
 * kiln_common only (no check.h), so benchmarks and fuzzers may use it. */
#ifndef KILN_TEST_SYNTH_H
#define KILN_TEST_SYNTH_H

#include <stdbool.h>
#include <string.h>

#include "arena.h"
#include "pprof.h"
#include "pprof_build.h"

/* The profile type id synth_profile's series get. */
#define SYNTH_TYPE "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

/* A normalised one-sample CPU profile (main -> leaf) of value at time_ns,
 * in a (leaf is borrowed: it must outlive the profile); false past a's cap. */
static inline bool synth_profile_leaf(kiln_arena_t *a, int64_t value, int64_t time_ns,
                                      const char *leaf, kiln_pprof_t *out)
{
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    if (b == NULL)
        return false;
    kiln_pprof_build_sample_type(b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    kiln_pprof_build_time(b, time_ns, 10000000000LL);
    uint64_t locs[2] = {kiln_pprof_build_frame(b, (kiln_str_t){leaf, strlen(leaf)}),
                        kiln_pprof_build_frame(b, (kiln_str_t){"main", 4})};
    return kiln_pprof_build_sample(b, locs, 2, &value, NULL, 0) == KILN_OK &&
           kiln_pprof_build_finish(b, out, NULL) == KILN_OK &&
           kiln_pprof_validate(out, NULL) == KILN_OK &&
           kiln_pprof_normalize(a, out, 0, NULL) == KILN_OK;
}

/* synth_profile_leaf with the leaf "work". */
static inline bool synth_profile(kiln_arena_t *a, int64_t value, int64_t time_ns, kiln_pprof_t *out)
{
    return synth_profile_leaf(a, value, time_ns, "work", out);
}

/* A shallow copy of p (normalised, one value) with its own value and time:
 * many parts of one batch can share the symbols. */
static inline kiln_pprof_t synth_variant(kiln_arena_t *a, const kiln_pprof_t *p, int64_t value,
                                         int64_t time_ns)
{
    kiln_pprof_t v = *p;
    v.values = kiln_arena_alloc(a, sizeof(int64_t));
    v.values[0] = value;
    v.time_nanos = time_ns;
    return v;
}

#endif
