/* SPDX-License-Identifier: Apache-2.0
 * jfr: reads Java Flight Recorder recordings (JDK JFR, async-profiler and
 * the Pyroscope Java agent, dd-trace-java) into one kiln_pprof_t per
 * Pyroscope profile type, named and valued as Pyroscope's JFR conversion
 * names them (process_cpu cpu/nanoseconds, wall, memory alloc_in_new_tlab_*
 * / alloc_outside_tlab_* / alloc_sample_* / live / malloc_*, mutex and block
 * contentions/count + delay/nanoseconds).
 *
 * A body may hold several chunks; each has its metadata, constant pools
 * (classes, methods, symbols, strings, stack traces, thread states) and
 * events. Every length and count is checked against the bytes left, every
 * nesting is bounded, and all memory comes from the caller's arena (its cap
 * bounds the rest). Strings are borrowed from the input where they are
 * UTF-8 in it, so the input must outlive the profiles. No state; any thread. */
#ifndef KILN_JFR_H
#define KILN_JFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "pprof.h"
#include "status.h"

/** What the upload says besides the recording. */
typedef struct kiln_jfr_input {
    int64_t start_ns, end_ns; /* the upload's from and until: each profile's time */
    uint32_t sample_rate;     /* Hz: each cpu/wall sample is worth 1e9/rate ns (0: 0) */
    const uint8_t *labels;    /* protobuf LabelsSnapshot (context id -> labels), or NULL */
    size_t labels_len;
} kiln_jfr_input;

/** One profile type out of a recording. */
typedef struct kiln_jfr_profile {
    const char *metric;   /* __name__: process_cpu, wall, memory, mutex or block */
    kiln_pprof_t profile; /* samples carry the events' context labels */
} kiln_jfr_profile;

/** Everything a recording held. */
typedef struct kiln_jfr_result {
    kiln_jfr_profile *profiles; /* arena array, only types that had events */
    size_t n;
    const char *event; /* the profiler's "event" setting (cpu, itimer, wall, ...) or "" */
} kiln_jfr_result;

/** Most frames kept of one stack (deeper ones are cut at the root end). */
#define KILN_JFR_MAX_DEPTH 4096
/** Per chunk: most constant-pool entries kept, frames of all its stack
 * traces, and distinct (profile type, stack, context) samples. Past them a
 * recording is KILN_RESOURCE_EXHAUSTED: they bound memory to a small
 * multiple of the input whatever its shape (real recordings of a busy JVM
 * stay far below: ~10^4 entries, ~10^5 frames). */
#define KILN_JFR_MAX_POOL_ENTRIES (1u << 20)
#define KILN_JFR_MAX_FRAMES (8u << 20)
#define KILN_JFR_MAX_SAMPLES (1u << 20)

/** Parses a recording (not gzip: the caller gunzips) and its labels into
 * *out. KILN_INVALID_ARGUMENT with a message for anything malformed (bad
 * magic, a length past the end, an unknown type id, a bad LabelsSnapshot);
 * KILN_RESOURCE_EXHAUSTED past the arena's cap or the work bound. Writes
 * *out only on KILN_OK. */
kiln_status kiln_jfr_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                           const kiln_jfr_input *in, kiln_jfr_result *out, kiln_err *err);

/** True when data starts like a JFR chunk ("FLR\0"). */
bool kiln_jfr_is(const uint8_t *data, size_t len);

#endif
