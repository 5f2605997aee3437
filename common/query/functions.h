/* SPDX-License-Identifier: Apache-2.0
 * functions: a call tree (tree.h) as a function table, the "top functions"
 * view of Grafana's Profiles Drilldown (querier.v1 PROFILE_FORMAT_FUNCTIONS).
 * Per function name: self = the sum of its nodes' self values; total = the
 * sum of the totals of its nodes that have no ancestor of the same name, so
 * a recursive function's stack counts once. Rows are sorted by total
 * descending, then name bytewise; rows with self and total 0 are left out.
 * The table's total is the tree's total, before the row limit. Pure
 * functions of the tree; the caller keeps the tree's one thread. */
#ifndef KILN_FUNCTIONS_H
#define KILN_FUNCTIONS_H

#include <stdint.h>

#include "arena.h"
#include "querier/v1/querier.pb-c.h"
#include "tree.h"

/** The function table of t with at most limit rows (limit <= 0: all),
 * allocated in a (NULL past the arena cap or when memory runs out). */
Querier__V1__FunctionTable *kiln_tree_functions(const kiln_tree_t *t, int64_t limit,
                                                kiln_arena_t *a);

/** The function tables of left and right joined by name (a name missing on
 * one side is 0 there), sorted by max(left total, right total) descending
 * then name, at most limit rows (<= 0: all); allocated in a (NULL past the
 * arena cap or when memory runs out). */
Querier__V1__FunctionTableDiff *kiln_tree_functions_diff(const kiln_tree_t *left,
                                                         const kiln_tree_t *right, int64_t limit,
                                                         kiln_arena_t *a);

#endif
