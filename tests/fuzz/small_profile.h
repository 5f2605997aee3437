/* SPDX-License-Identifier: Apache-2.0
 * small_profile: a small valid, normalised profile for the fuzz targets that
 * mutate Kiln's own encodings (WAL records, blocks): two sample types, five
 * stacks of depth 1..5 over shared frames, a span label on some samples.
 * Header-only; aborts if the profile does not build. */
#ifndef KILN_FUZZ_SMALL_PROFILE_H
#define KILN_FUZZ_SMALL_PROFILE_H

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "pprof.h"
#include "pprof_build.h"

static const char *const fuzz_frames[] = {"main", "run", "work", "parse", "io.Read"};

static inline void fuzz_small_profile(kiln_arena_t *a, kiln_pprof_t *p)
{
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 2);
    kiln_pprof_build_sample_type(b, 0, "samples", "count");
    kiln_pprof_build_sample_type(b, 1, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    kiln_pprof_build_time(b, 1700000000000000000LL, 10000000000LL);
    kiln_pprof_build_label span = {{"span_id", 7}, {"00000000000000ab", 16}};
    for (size_t depth = 1; depth <= 5; depth++) {
        uint64_t locs[5];
        for (size_t i = 0; i < depth; i++)
            locs[i] = kiln_pprof_build_frame(
                b, (kiln_str_t){fuzz_frames[depth - 1 - i], strlen(fuzz_frames[depth - 1 - i])});
        int64_t values[2] = {(int64_t)depth, (int64_t)depth * 10000000};
        kiln_pprof_build_sample(b, locs, depth, values, &span, depth % 2);
    }
    if (kiln_pprof_build_finish(b, p, NULL) != KILN_OK || kiln_pprof_validate(p, NULL) != KILN_OK ||
        kiln_pprof_normalize(a, p, 0, NULL) != KILN_OK)
        abort();
}

#endif
