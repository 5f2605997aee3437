/* SPDX-License-Identifier: Apache-2.0
 * flamegraph: a call tree (tree.h) rendered for clients: the flame graph
 * Grafana decodes, Pyroscope's serialized tree and the diff flame graph.
 * Pure functions of the tree; the caller keeps the tree's one thread.
 *
 * Flame graph layout (querier.v1.FlameGraph, as Pyroscope writes it):
 * names[0] = "total", names de-duplicated; levels[0] = [0, total, 0, 0];
 * every node is the quad [x_delta, total, self, name_index] where x_delta is
 * x minus the end (x + total) of the previous node in the same level; a
 * node's children start at the parent's x + self, sorted bytewise by name.
 * With more than max_nodes nodes, the threshold is the max_nodes-th largest
 * node total, and the children under it of each parent fold into one
 * "other" child placed last (self = total = their sum; their subtrees are
 * dropped; ties with the threshold are kept). Nodes with total 0 are left
 * out. Name indexes are assigned in depth-first order of first use, and a
 * frame named "total" or "other" shares that name's index. total = sum of
 * the root's children (a self value on the root itself is not drawn);
 * max_self = the largest self written. */
#ifndef KILN_FLAMEGRAPH_H
#define KILN_FLAMEGRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "querier/v1/querier.pb-c.h"
#include "tree.h"

/** The flame graph of t truncated to max_nodes (<= 0 means 8192), allocated
 * in a (NULL past the arena cap). */
Querier__V1__FlameGraph *kiln_tree_flamegraph(const kiln_tree_t *t, int64_t max_nodes,
                                              kiln_arena_t *a);

/** Appends t to out in Pyroscope's serialized tree form (the `tree` bytes
 * of querier.v1 SelectMergeStacktracesResponse; upstream pkg/model
 * Tree.MarshalTruncate), truncated like the flame graph (max_nodes <= 0
 * means 8192; the children under the threshold fold into one "other"
 * child). Depth first from a virtual root: per node the varint name length,
 * the name, the varint self value and the varint number of children, then
 * the children's subtrees, last name first ("other" sorted among them by
 * name). The virtual root has name "" and self 0. An empty tree writes
 * nothing. */
void kiln_tree_marshal(const kiln_tree_t *t, int64_t max_nodes, kiln_buf *out);

/** True when some node has a negative self value (a diff of such trees is
 * refused, as Pyroscope refuses it). */
bool kiln_tree_has_negative(const kiln_tree_t *t);

/** The diff flame graph of left and right (querier.v1.FlameGraphDiff, as
 * Pyroscope's NewFlamegraphDiff lays it out), allocated in a (NULL past the
 * arena cap). Both trees are aligned on the union of their paths: children
 * sorted bytewise by name, a path missing on one side counting 0 there.
 * Every node is the 7-tuple [xL, totalL, selfL, xR, totalR, selfR, name],
 * x delta-encoded per level on each side independently (index 0 against
 * the previous node's xL + totalL, index 3 against xR + totalR); children
 * start at the parent's x + self on each side. levels[0] is the root
 * [0, leftTicks, 0, 0, rightTicks, 0, 0]. With more than max_nodes nodes in
 * the union (root included; <= 0 means 8192), the threshold is the
 * max_nodes-th largest max(totalL, totalR); children under it fold into one
 * "other" child per parent, last, with self = total = the folded sums on
 * each side. Names are de-duplicated by string in the order nodes are
 * visited (a parent, then its "other", then its children last to first);
 * the root's name "" is index 0, written "total". total = leftTicks +
 * rightTicks (the roots' children; a root self value is not drawn);
 * max_self = the largest self on either side. Self values must not be
 * negative (check with kiln_tree_has_negative). */
Querier__V1__FlameGraphDiff *kiln_tree_flamegraph_diff(const kiln_tree_t *left,
                                                       const kiln_tree_t *right, int64_t max_nodes,
                                                       kiln_arena_t *a);

#endif
