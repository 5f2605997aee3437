/* SPDX-License-Identifier: Apache-2.0
 * flamebearer: the JSON parts of Pyroscope's flamebearer profile (the
 * legacy render API's and ad-hoc profiles' flame graph), as upstream's
 * ExportToFlamebearer writes them. Pure functions; append to a buffer. */
#ifndef KILN_FLAMEBEARER_H
#define KILN_FLAMEBEARER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "querier/v1/querier.pb-c.h"

/** Appends "flamebearer":{names, levels, numTicks, maxSelf}: a flame
 * graph's (or diff's) levels as they are (x already delta-encoded, 4 or 7
 * values a node). */
void kiln_flamebearer_levels(kiln_buf *b, char **names, size_t n_names, Querier__V1__Level **levels,
                             size_t n_levels, int64_t total, int64_t max_self);

/** Appends "metadata":{format, spyName, sampleRate, units, name} for a
 * sample type and unit: inuse_objects, alloc_objects, goroutine and samples
 * are "objects" at rate 100, cpu is "samples" at 1e9, others their unit at
 * 100. format is "single" or "double". */
void kiln_flamebearer_metadata(kiln_buf *b, const char *sample_type, const char *sample_unit,
                               const char *format);

#endif
