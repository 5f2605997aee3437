/* SPDX-License-Identifier: Apache-2.0
 * speedscope: the speedscope file format (https://www.speedscope.app/
 * file-format-schema.json) as Pyroscope's /ingest?format=speedscope reads
 * it, into kiln_pprof_build_t builders (see pprof_build.h).
 *   - "$schema" must be the speedscope schema URL.
 *   - Frames come from shared.frames[].name.
 *   - "sampled" profiles: samples[i] lists frame indices root first and
 *     weights[i] is its weight (not negative).
 *   - "evented" profiles: "O"/"C" events at non-decreasing "at" values;
 *     the time between two events is added to the stack open over it.
 *   - Profiles with the same name, type, unit and startValue are merged.
 *   - Values are trunc(weight * multiplier): 100 for none, microseconds,
 *     milliseconds and seconds (Pyroscope's precision multiplier), 1 for
 *     nanoseconds and bytes.
 * Strings are borrowed from the input or decoded into the arena. JSON nesting
 * is bounded (json_reader.h); nothing is recursive. */
#ifndef KILN_SPEEDSCOPE_H
#define KILN_SPEEDSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "pprof_build.h"
#include "status.h"

#define KILN_SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"
/** At most this many profiles after merging (each becomes a series)... */
#define KILN_SPEEDSCOPE_MAX_PROFILES 1000
/** ...and this many profile objects in the file. */
#define KILN_SPEEDSCOPE_MAX_OBJECTS 100000

/** One (merged) profile of a speedscope file. */
typedef struct kiln_speedscope_profile {
    kiln_str_t name;       /* the profile's name; may be empty */
    const char *unit;      /* static: none, nanoseconds, microseconds, milliseconds,
                            * seconds or bytes */
    uint64_t default_rate; /* samples per second the unit implies (0 for bytes): with it,
                            * 1e9 / default_rate * value is nanoseconds */
    kiln_pprof_build_t *b; /* one sample type, left unset */
} kiln_speedscope_profile;

/** Parses a speedscope JSON file into *out (an arena array of *n_out
 * profiles, in file order of first appearance). KILN_INVALID_ARGUMENT with a
 * message for malformed JSON, a wrong schema, an unknown profile type, unit
 * or event type, a frame index out of range, a negative weight, samples and
 * weights of different lengths, events out of order or closing a frame that
 * is not open, or more profiles than the limits above;
 * KILN_RESOURCE_EXHAUSTED past the arena's cap. Writes *out
 * and *n_out only on KILN_OK. */
kiln_status kiln_speedscope_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                  kiln_speedscope_profile **out, size_t *n_out, kiln_err *err);

#endif
