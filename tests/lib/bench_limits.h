/* SPDX-License-Identifier: Apache-2.0
 * bench_limits: the per-tenant limits the in-process benchmarks push
 * under: Kiln's defaults with the rate limit, the time window and the
 * sample count limit off, so that a figure measures the push path and
 * real (old) profiles pass. Header-only. */
#ifndef KILN_TEST_BENCH_LIMITS_H
#define KILN_TEST_BENCH_LIMITS_H

#include <string.h>

#include "overrides.h"

static inline kiln_limits kiln_bench_limits(void)
{
    kiln_limits l;
    memset(&l, 0, sizeof(l));
    l.ingestion_burst_mb = 2;
    l.max_profile_bytes = 64u << 20;
    l.max_label_names = 30;
    l.max_label_name_len = 1024;
    l.max_label_value_len = 2048;
    l.max_sample_labels = 100;
    l.max_stack_depth = 1000;
    return l;
}

#endif
