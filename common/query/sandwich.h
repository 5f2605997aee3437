/* SPDX-License-Identifier: Apache-2.0
 * sandwich: a call tree (tree.h) seen around one function, the sandwich
 * view of Grafana's Profiles Drilldown (querier.v1 PROFILE_FORMAT_SANDWICH,
 * SandwichReport): the function's callers (a tree rooted at the function,
 * each level the callers of the one before) and its callees (the subtrees
 * below every occurrence, merged by name). Built from the whole merged tree
 * before any node limit, so no occurrence is lost to truncation; each half
 * is cut to its own node limit afterwards. Pure functions of the tree; the
 * caller keeps the tree's one thread. */
#ifndef KILN_SANDWICH_H
#define KILN_SANDWICH_H

#include <stdint.h>

#include "arena.h"
#include "querier/v1/querier.pb-c.h"
#include "tree.h"

/** The sandwich of function fn in t, each half cut to max_nodes nodes
 * (<= 0: whole), allocated in a (NULL past the arena cap or when memory
 * runs out). A function t does not hold gives an empty report (total 0,
 * no halves). */
Querier__V1__SandwichReport *kiln_tree_sandwich(const kiln_tree_t *t, const char *fn,
                                                int64_t max_nodes, kiln_arena_t *a);

#endif
