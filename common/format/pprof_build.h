/* SPDX-License-Identifier: Apache-2.0
 * pprof_build: makes a kiln_pprof_t from stacks of frame names, for every
 * format that is not pprof (folded, lines, speedscope, later JFR). The result
 * is in the decoded form, exactly as kiln_pprof_decode returns it (ids 1..N,
 * string table with "" at 0, one mapping with id 1), so kiln_pprof_validate
 * and kiln_pprof_normalize take it as they take a decoded profile.
 *
 * Each distinct frame name becomes one function and one location (interned
 * by name). Samples with the same stack and the same labels are summed as
 * they are added (int64, wrapping), so the sample count is the number of
 * distinct stacks, as Pyroscope's tree gives it. Everything lives in the
 * arena given to create; strings are borrowed, not copied: every string
 * passed in must outlive the built profile. Past the arena's cap a call
 * fails with KILN_RESOURCE_EXHAUSTED and the builder stays failed. One
 * thread at a time. */
#ifndef KILN_PPROF_BUILD_H
#define KILN_PPROF_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "pprof.h"
#include "status.h"

typedef struct kiln_pprof_build kiln_pprof_build_t;

/** A string label of a sample (borrowed views). */
typedef struct kiln_pprof_build_label {
    kiln_str_t key;
    kiln_str_t value;
} kiln_pprof_build_label;

/** Creates a builder for n_sample_types values per sample (>= 1) in arena a.
 * Sample types start as ""/"" until set. NULL past the arena's cap. */
kiln_pprof_build_t *kiln_pprof_build_create(kiln_arena_t *a, size_t n_sample_types);

/** The number of values per sample. */
size_t kiln_pprof_build_n_types(const kiln_pprof_build_t *b);

/** Sets sample type i (< n_sample_types) to type/unit (NUL-terminated,
 * borrowed). May be called any time before finish. */
void kiln_pprof_build_sample_type(kiln_pprof_build_t *b, size_t i, const char *type,
                                  const char *unit);

/** Sets the period type and period (strings borrowed). Before finish. */
void kiln_pprof_build_period(kiln_pprof_build_t *b, const char *type, const char *unit,
                             int64_t period);

/** Sets time_nanos and duration_nanos. Before finish. */
void kiln_pprof_build_time(kiln_pprof_build_t *b, int64_t time_nanos, int64_t duration_nanos);

/** The location id (1..N) of the frame called name, creating its function
 * and location on first use. Returns 0 when the builder has failed. */
uint64_t kiln_pprof_build_frame(kiln_pprof_build_t *b, kiln_str_t name);

/** Adds a sample: locs are location ids from kiln_pprof_build_frame, LEAF
 * FIRST (pprof order; n_locs may be 0), values has n_sample_types entries,
 * labels n_labels entries (order matters when samples are compared). When a
 * sample with the same stack and labels exists its values are added to it.
 * Returns KILN_OK or KILN_RESOURCE_EXHAUSTED (sticky). */
kiln_status kiln_pprof_build_sample(kiln_pprof_build_t *b, const uint64_t *locs, size_t n_locs,
                                    const int64_t *values, const kiln_pprof_build_label *labels,
                                    size_t n_labels);

/** Number of (distinct) samples added so far. */
size_t kiln_pprof_build_n_samples(const kiln_pprof_build_t *b);

/** Multiplies every value of sample type i by factor (wrapping). */
void kiln_pprof_build_scale(kiln_pprof_build_t *b, size_t i, int64_t factor);

/** Writes the profile to *out (arena memory shared with the builder, which
 * must not be used afterwards). KILN_RESOURCE_EXHAUSTED (with err) when any
 * earlier call or this one ran past the arena's cap; *out is written only
 * on KILN_OK. */
kiln_status kiln_pprof_build_finish(kiln_pprof_build_t *b, kiln_pprof_t *out, kiln_err *err);

#endif
