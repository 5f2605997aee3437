/* SPDX-License-Identifier: Apache-2.0
 * delta: turns cumulative memory profiles into deltas, as Pyroscope does for
 * a series whose __delta__ label is not "false" and whose __name__ is
 * "memory": for each alloc_* sample type, a stack's value becomes its
 * increase since the previous profile of the same series (its current value
 * after a counter reset), and the first profile of a series contributes no
 * alloc_* values. inuse_* types are snapshots and stay as they are. State is
 * per series (tenant + labels) and per stack; thread-safe. */
#ifndef KILN_DELTA_H
#define KILN_DELTA_H

#include <stdint.h>

#include "labels.h"
#include "pprof.h"

typedef struct kiln_delta kiln_delta_t;

/** Creates empty state. */
kiln_delta_t *kiln_delta_create(void);
/** Frees it; NULL is a no-op. */
void kiln_delta_destroy(kiln_delta_t *d);

/** True when a profile with these (sorted) labels is cumulative and must go
 * through kiln_delta_apply: __name__ is memory and __delta__ is not "false". */
bool kiln_delta_needed(const kiln_label_t *l, size_t n);

/** Rewrites the alloc_* values of a normalised profile in place into deltas
 * against the last profile of the series `series_fp` of `tenant`. */
void kiln_delta_apply(kiln_delta_t *d, const char *tenant, uint64_t series_fp, kiln_pprof_t *p);

#endif
