/* SPDX-License-Identifier: Apache-2.0
 * folded: the text stack formats of Pyroscope's /ingest, into a
 * kiln_pprof_build_t (see pprof_build.h).
 *   folded ("collapsed", Brendan Gregg's stackcollapse output, Pyroscope's
 *   default format): one `root;frame;...;leaf <count>` per line, split at the
 *   LAST space, so frame names may hold spaces. The grafana/jfr-parser
 *   variant `stack [v1 v2 ...]` is read too (one sample type per value).
 *   lines: each line is one stack (root first) with value 1.
 * Frames are split at ';'; an empty trailing segment is dropped and inner
 * empty segments are frames with an empty name (as Pyroscope's tree does).
 * LF or CRLF; blank lines are skipped; a UTF-16 body with a BOM is
 * transcoded first. The input must outlive the built profile (frame names
 * point into it). Nothing is recursive; memory comes from the arena. */
#ifndef KILN_FOLDED_H
#define KILN_FOLDED_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "pprof_build.h"
#include "status.h"

/** Most values a bracketed folded line may carry. */
#define KILN_FOLDED_MAX_VALUES 16

/** Returns text as UTF-8: UTF-16LE or UTF-16BE with a BOM is transcoded into
 * arena memory (unpaired surrogates and an odd last byte become U+FFFD), a
 * UTF-8 BOM is dropped, anything else is returned as it is. Only
 * KILN_RESOURCE_EXHAUSTED (arena cap) can fail. */
kiln_status kiln_text_to_utf8(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_str_t *out,
                              kiln_err *err);

/** Parses folded stacks into a new builder (*out) whose sample types are
 * left unset: one per value of the first line that has a count (1 for the
 * plain format). As Pyroscope does, a line without any space is skipped.
 * A line whose values are all 0 is skipped (it adds nothing).
 * KILN_INVALID_ARGUMENT with the line number and an excerpt when a line's
 * last field is not an integer, a value is negative (or a bracketed line
 * has a different number of values), KILN_RESOURCE_EXHAUSTED past the arena's cap. Writes *out only
 * on KILN_OK. */
kiln_status kiln_folded_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                              kiln_pprof_build_t **out, kiln_err *err);

/** Parses the `lines` format (one stack per line, value 1 each) into a new
 * builder with one unset sample type. Fails only past the arena's cap. */
kiln_status kiln_lines_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                             kiln_pprof_build_t **out, kiln_err *err);

#endif
