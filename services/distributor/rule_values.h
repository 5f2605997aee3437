/* SPDX-License-Identifier: Apache-2.0
 * rule_values: one profile's values under the recording rules' stack
 * filters. A filter is a function name and self or total: total takes the
 * samples whose stack holds the function (each sample once), self those
 * whose leaf frame is it (the innermost line of an inlined chain); no
 * function takes the whole profile. The caller names every filter it needs
 * (want), then compute takes them all in one pass over the samples (up to
 * 64 filters a pass, whole-profile ones included), so the cost of the rules of a push grows
 * with its samples, not with its rules. Everything lives in the arena
 * given at create; not thread-safe (one per push). */
#ifndef KILN_RULE_VALUES_H
#define KILN_RULE_VALUES_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "pprof.h"

typedef struct kiln_rule_values kiln_rule_values;

/** Values of the normalised profile p (borrowed), in arena a. */
kiln_rule_values *kiln_rule_values_create(const kiln_pprof_t *p, kiln_arena_t *a);

/** The index of the filter fn (NULL = the whole profile; borrowed until
 * compute) and self, added when new. */
size_t kiln_rule_values_want(kiln_rule_values *rv, const char *fn, bool self);

/** Computes every filter wanted so far. */
void kiln_rule_values_compute(kiln_rule_values *rv);

/** Filter i's value per sample type (n_sample_types), after compute. */
const double *kiln_rule_values_get(const kiln_rule_values *rv, size_t i);

#endif
