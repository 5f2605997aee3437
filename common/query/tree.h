/* SPDX-License-Identifier: Apache-2.0
 * tree: a call tree keyed by function name, the unit queries merge, and its
 * ingester.v1 TreeResponse wire form (what ingesters send queriers). Node 0
 * is the root (empty name). A tree has one owner and one thread at a time.
 * Its renderings for clients are flamegraph.h. */
#ifndef KILN_TREE_H
#define KILN_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "ingester/v1/ingester.pb-c.h"
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

/** a + b wrapping (two's complement) instead of overflowing: sample values
 * are the client's, and sums of extreme ones are garbage, but must not be
 * undefined behaviour (the policy of pprof_norm's duplicate sums). */
static inline int64_t kiln_add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

#endif
