/* SPDX-License-Identifier: Apache-2.0
 * ingest_formats: the metadata rules of Pyroscope's legacy /ingest that do
 * not belong to one body format (pkg/ingester/pyroscope/ingest_adapter.go
 * convertMetadata, pkg/og/convert/pprof/profile.go):
 *   - what an app-name suffix (`myapp.cpu`, `.alloc_space`, ...) means for
 *     the text formats: __name__, sample type and unit;
 *   - the sample_type_config part of the pprof form, and the __name__ that
 *     the pprof form derives from a profile's sample types;
 *   - the fix-ups upstream applies to pprof from some spies (dotnetspy;
 *     pyspy/rbspy function names).
 * The body parsers themselves are folded.h, speedscope.h and multipart.h;
 * app names are appname.h and times time_param.h. No state; arena memory. */
#ifndef KILN_INGEST_FORMATS_H
#define KILN_INGEST_FORMATS_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "pprof.h"
#include "status.h"

/** The profile a text-format upload is, from its app-name suffix. */
typedef struct kiln_ingest_kind {
    const char *metric; /* __name__: process_cpu, wall, memory, goroutine, mutex, ... */
    const char *type;   /* sample type before time scaling: samples, alloc_space, ... */
    const char *unit;   /* count, bytes, nanoseconds */
    bool timed;         /* process_cpu or wall: values are sample counts, scaled to
                         * nanoseconds by 1e9/sampleRate (type becomes cpu or wall) */
} kiln_ingest_kind;

/** Looks up an app-name suffix (NULL when the name has no dot: cpu). False
 * for a suffix Pyroscope does not know ("unknown profile type"). */
bool kiln_ingest_kind_of(const char *suffix, kiln_ingest_kind *out);

/** One entry of sample_type_config: a JSON map
 * `{"<sample type>": {"units", "display-name", "aggregation", "cumulative",
 * "sampled"}}` (pyroscope-go's upstream.SampleType). */
typedef struct kiln_sample_type_config {
    kiln_str_t type;         /* the map key */
    bool is_null;            /* the entry was null */
    kiln_str_t display_name; /* "" when absent */
    kiln_str_t units;
    kiln_str_t aggregation;
    bool cumulative, sampled;
} kiln_sample_type_config;

/** A parsed sample_type_config part; present is false for JSON null (then
 * Pyroscope's defaults apply, as when the part is absent). */
typedef struct kiln_stconfig {
    bool present;
    kiln_sample_type_config *entries; /* arena array */
    size_t n;
} kiln_stconfig;

/** Most entries a sample_type_config may have (SDKs send a handful). */
#define KILN_STCONFIG_MAX 256

/** Parses a sample_type_config part. KILN_INVALID_ARGUMENT with a message
 * for malformed JSON, a field of the wrong type or more than
 * KILN_STCONFIG_MAX entries; KILN_RESOURCE_EXHAUSTED
 * past the arena's cap. Writes *out only on KILN_OK. */
kiln_status kiln_stconfig_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                kiln_stconfig *out, kiln_err *err);

/** The __name__ of a pprof uploaded through the pprof form: "wall" when a
 * sample type is wall; else, by the first sample type whose name (after the
 * config's display-name, or Pyroscope's default display names when cfg is
 * NULL or not present) contains cpu -> process_cpu; alloc_, inuse_, or is
 * space/objects -> memory; mutex_ -> mutex; block_ -> block; goroutines ->
 * goroutines; else the last sample type's (display) name. Arena string or
 * static; never NULL. */
const char *kiln_ingest_pprof_metric(kiln_arena_t *a, const kiln_pprof_t *p,
                                     const kiln_stconfig *cfg);

/** True when Pyroscope treats the upload as .NET's: spy "dotnetspy", or
 * spy "unknown" with a non-null "inuse-space" entry in the config. */
bool kiln_ingest_is_dotnet(const char *spy, const kiln_stconfig *cfg);

/** .NET fix-ups on a decoded pprof: '-' in sample type names becomes '_';
 * when every function id is 0 and there are as many functions as
 * locations, function i takes location i's id. False past the arena cap. */
bool kiln_ingest_fix_dotnet(kiln_arena_t *a, kiln_pprof_t *p);

/** For spies pyspy, rbspy and scripting (else a no-op): every line's
 * function is replaced by one named "<filename> <name>" (not for pyspy
 * frames with an absolute filename), as Pyroscope does so that flame
 * graphs show files. Works on a decoded pprof (ids); false past the arena
 * cap. */
bool kiln_ingest_fix_scripting(kiln_arena_t *a, kiln_pprof_t *p, const char *spy);

#endif
