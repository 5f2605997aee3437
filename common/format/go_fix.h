/* SPDX-License-Identifier: Apache-2.0
 * go_fix: repairs of the Go runtime's profiles at ingest, so Kiln stores
 * what Pyroscope stores for the same push:
 * - generic type parameters: Go 1.21+ names an instance of a generic
 *   function after any of its type arguments, whatever the call site
 *   (golang/go#64528), so `f[go.shape.string]` becomes `f[...]`, from the
 *   first "[go.shape." to the name's last ']';
 * - truncated stacks: the runtime cuts CPU stacks at 64 frames and heap
 *   stacks at 32, root side first. A stack whose root-most 16 frames appear,
 *   further from the root, in another stack of the profile gets that
 *   stack's missing root part appended (chains followed up to 56 links).
 *   Only profiles that can be truncated are looked at: a cpu sample type
 *   with a stack of 60+ frames, or heap types with 28-32 (a heap stack of
 *   33+ means Go 1.23's 128-frame limit, nothing to repair).
 * Both run on a normalised profile (pprof.h), allocating from its arena. */
#ifndef KILN_GO_FIX_H
#define KILN_GO_FIX_H
#include <stdbool.h>
#include "arena.h"
#include "pprof.h"
#include "status.h"

/** Whether p comes from the Go runtime: a function's file ends in ".go". */
bool kiln_go_profile_like(const kiln_pprof_t *p);

/** Marks in go_loc[i] (room for p->n_locations, caller's) whether a line
 * of location i of normalised p is in a function whose file ends in ".go";
 * returns how many are. For kiln_go_samples_like, once over symbol tables
 * that several profiles share. */
size_t kiln_go_locations(const kiln_pprof_t *p, bool *go_loc);

/** kiln_go_profile_like for a normalised profile whose symbol tables hold
 * more than its own samples use (tables shared with other profiles, as the
 * series of an OTLP export share them): whether a frame of its stacks is
 * at a location go_loc (kiln_go_locations of those tables) marks. */
bool kiln_go_samples_like(const kiln_pprof_t *p, const bool *go_loc);

/** Applies both repairs to a normalised Go profile in place. Sample values
 * are untouched; stacks only grow at their root. KILN_RESOURCE_EXHAUSTED
 * when the arena's cap is reached: p is then valid, repaired in part. */
kiln_status kiln_go_fix(kiln_arena_t *a, kiln_pprof_t *p, kiln_err *err);
#endif
