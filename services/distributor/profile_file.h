/* SPDX-License-Identifier: Apache-2.0
 * profile_file: a profile file of any format the distributor ingests, as
 * validated, normalised pprof profiles, for the services that take whole
 * files rather than pushes (adhocprofiles.v1). The body is gunzipped when
 * gzip (under max_bytes, reserved from the in-flight budget), then read by
 * the same decoders as the ingest paths, chosen as Pyroscope chooses for
 * uploaded files: by the name's extension (.pprof .pb -> pprof; .json ->
 * JSON; .txt .folded .collapsed -> folded), else by the content ('{' ->
 * JSON; a non-printable byte among the first 100 -> binary; else folded).
 * Binary is pprof, or OTLP ExportProfilesServiceRequest when it is not
 * pprof; JSON is speedscope, or OTLP/JSON when it is not speedscope.
 * Folded files are one sample type samples/count (several with the
 * bracketed form); speedscope profiles by their unit (time units as
 * cpu/nanoseconds). Statuses: KILN_INVALID_ARGUMENT (with err) for what does
 * not decode or validate, KILN_OUT_OF_RANGE past max_bytes,
 * KILN_RESOURCE_EXHAUSTED when the budget is busy. Stateless; arena memory. */
#ifndef KILN_PROFILE_FILE_H
#define KILN_PROFILE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "inflight.h"
#include "pprof.h"
#include "status.h"

typedef struct kiln_profile_file_limits {
    size_t max_bytes;          /* decompressed bytes of the file */
    kiln_inflight_t *inflight; /* borrowed, may be NULL */
    size_t max_stack_depth;    /* frames kept per stack, root side; 0 = all */
} kiln_profile_file_limits;

/** Decodes data[0..len) (borrowed; the profiles may point into it), named
 * name (may be NULL), into *out, an arena array of *n_out normalised
 * profiles (at least one). Writes *out only on KILN_OK. */
kiln_status kiln_profile_file_decode(const kiln_profile_file_limits *lim, const char *name,
                                     const uint8_t *data, size_t len, kiln_arena_t *a,
                                     kiln_pprof_t **out, size_t *n_out, kiln_err *err);

#endif
