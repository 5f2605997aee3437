/* SPDX-License-Identifier: Apache-2.0
 * head_append: one profile into a head through kiln_head_append_batch, for
 * tests, benchmarks and fuzz targets. Header-only. */
#ifndef KILN_TEST_HEAD_APPEND_H
#define KILN_TEST_HEAD_APPEND_H

#include "head.h"

/* Appends one profile of series l at time_ns (0 = now) with push id id. */
static inline void check_head_append(kiln_head_t *h, const kiln_label_t *l, size_t n,
                                     const kiln_pprof_t *p, int64_t time_ns, uint64_t id)
{
    kiln_pprof_t at = *p;
    at.time_nanos = time_ns;
    kiln_head_part part = {l, n, &at, id};
    kiln_head_append_batch(h, &part, 1);
}
#endif
