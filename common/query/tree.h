/* SPDX-License-Identifier: Apache-2.0
 * tree: a call tree keyed by function name, the unit queries merge, and its
 * renderings: the ingester.v1 TreeResponse wire form and the flame graph
 * Grafana decodes. Node 0 is the root (empty name). A tree has one owner
 * and one thread at a time.
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
#ifndef KILN_TREE_H
#define KILN_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "ingester/v1/ingester.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "status.h"

typedef struct kiln_tree kiln_tree_t;

#define KILN_TREE_ROOT 0u

/** Creates an empty tree (just the root). */
kiln_tree_t *kiln_tree_create(void);
/** Frees the tree; NULL is a no-op. */
void kiln_tree_destroy(kiln_tree_t *t);

/** The child of parent named name[0..len), created if absent; returns its
 * id (ids grow in creation order, so a child's id exceeds its parent's).
 * O(1) on average. parent must be an existing node. */
uint32_t kiln_tree_child(kiln_tree_t *t, uint32_t parent, const char *name, size_t len);
/** Adds v to a node's self value. */
void kiln_tree_add_self(kiln_tree_t *t, uint32_t node, int64_t v);
/** Number of nodes, root included. */
size_t kiln_tree_size(const kiln_tree_t *t);
/** Sum of all self values. */
int64_t kiln_tree_total(const kiln_tree_t *t);

/** Adds every node of a wire tree into t (merging by parent and name).
 * KILN_INVALID_ARGUMENT when the wire tree is inconsistent (array lengths
 * differ, a parent does not precede its child, a name index out of range). */
kiln_status kiln_tree_merge_response(kiln_tree_t *t, const Ingester__V1__TreeResponse *r,
                                     kiln_err *err);

/** The wire form of t, allocated in a (NULL past the arena cap): every
 * node in id order (root first, parent -1), names de-duplicated and copied
 * so the response may outlive t. */
Ingester__V1__TreeResponse *kiln_tree_to_response(const kiln_tree_t *t, kiln_arena_t *a);

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

/** a + b wrapping (two's complement) instead of overflowing: sample values
 * are the client's, and sums of extreme ones are garbage, but must not be
 * undefined behaviour (the policy of pprof_norm's duplicate sums). */
static inline int64_t kiln_add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

#endif
