/* SPDX-License-Identifier: Apache-2.0
 * tree_int: the call tree's representation, shared by the model (tree.c)
 * and its renderings (flamegraph.c); not part of the tree.h contract. */
#ifndef KILN_TREE_INT_H
#define KILN_TREE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tree.h"

#define KILN_TREE__NONE UINT32_MAX

/* A child-map slot. node 0 (the root) is never anyone's child, so node == 0
 * marks an empty slot. Keeping the key in the slot keeps probes in one
 * cache line instead of chasing the node arrays. */
typedef struct child_slot {
    uint32_t parent;
    uint32_t name;
    uint32_t node;
} child_slot;

struct kiln_tree {
    /* Nodes: a child is always created after its parent, so parent[i] < i
     * for every i > 0. Node 0 is the root, named by name id 0 (""). */
    uint32_t *parent;
    uint32_t *name;
    int64_t *self;
    size_t n, cap;
    int64_t total;

    child_slot *kids; /* capacity kids_mask + 1, a power of two */
    size_t kids_mask;

    /* Interned names, back to back and NUL-terminated in str. */
    char *str;
    size_t str_len, str_cap;
    size_t *name_off;
    uint32_t *name_len;
    uint32_t *name_hash;
    size_t nnames, names_cap;
    uint32_t *name_slots; /* name id + 1; 0 = empty; capacity name_mask + 1 */
    size_t name_mask;
};

/** The id of name s[0..len) in t, or KILN_TREE__NONE. */
uint32_t kiln_tree__name_find(const kiln_tree_t *t, const char *s, size_t len);
/** The id of name s[0..len) in t, interned if new. */
uint32_t kiln_tree__name_intern(kiln_tree_t *t, const char *s, size_t len);

#endif
