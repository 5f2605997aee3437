/* SPDX-License-Identifier: Apache-2.0
 * tree: call trees stored as flat node arrays with an open-addressing map
 * from (parent, name id) to child, interned names, and the ingester.v1 wire
 * form (the renderings are flamegraph.c). */
#include "tree.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "buf.h"
#include "cancel.h"
#include "tree_int.h"
#include "xmalloc.h"

#define NONE KILN_TREE__NONE

/* ---- hashing ---- */

static uint64_t mix64(uint64_t k)
{
    /* murmur3's finaliser: every input bit affects every output bit. */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static size_t kid_hash(uint32_t parent, uint32_t name)
{
    return (size_t)mix64(((uint64_t)parent << 32) | name);
}

/* ---- names ---- */

static uint32_t name_find_h(const kiln_tree_t *t, const char *s, size_t len, uint32_t h)
{
    for (size_t i = h & t->name_mask;; i = (i + 1) & t->name_mask) {
        uint32_t slot = t->name_slots[i];
        if (slot == 0)
            return NONE;
        uint32_t id = slot - 1;
        if (t->name_hash[id] == h && t->name_len[id] == len &&
            memcmp(t->str + t->name_off[id], s, len) == 0)
            return id;
    }
}

static void name_slot_put(kiln_tree_t *t, uint32_t id)
{
    size_t i = t->name_hash[id] & t->name_mask;
    while (t->name_slots[i] != 0)
        i = (i + 1) & t->name_mask;
    t->name_slots[i] = id + 1;
}

static void names_rehash(kiln_tree_t *t)
{
    size_t cap = (t->name_mask + 1) * 2;
    free(t->name_slots);
    t->name_slots = kiln_xcalloc(cap, sizeof(uint32_t));
    t->name_mask = cap - 1;
    for (size_t id = 0; id < t->nnames; id++)
        name_slot_put(t, (uint32_t)id);
}

/* The id of name s[0..len), interned if new. */
static uint32_t name_intern(kiln_tree_t *t, const char *s, size_t len)
{
    if (len > UINT32_MAX - 1)
        abort(); /* no frame name is 4 GiB long; callers cap symbols at 64 KiB */
    uint32_t h = (uint32_t)XXH3_64bits(s, len);
    uint32_t id = name_find_h(t, s, len, h);
    if (id != NONE)
        return id;
    if ((t->nnames + 1) * 4 > (t->name_mask + 1) * 3)
        names_rehash(t);
    KILN_GROW(t->str, t->str_cap, t->str_len + len + 1);
    if (t->nnames == t->names_cap) {
        size_t cap = t->names_cap;
        KILN_GROW(t->name_off, cap, t->nnames + 1);
        t->name_len = kiln_xrealloc(t->name_len, cap * sizeof(uint32_t));
        t->name_hash = kiln_xrealloc(t->name_hash, cap * sizeof(uint32_t));
        t->names_cap = cap;
    }
    if (len > 0)
        memcpy(t->str + t->str_len, s, len);
    t->str[t->str_len + len] = '\0';
    id = (uint32_t)t->nnames++;
    t->name_off[id] = t->str_len;
    t->name_len[id] = (uint32_t)len;
    t->name_hash[id] = h;
    t->str_len += len + 1;
    name_slot_put(t, id);
    return id;
}

uint32_t kiln_tree__name_find(const kiln_tree_t *t, const char *s, size_t len)
{
    return name_find_h(t, s, len, (uint32_t)XXH3_64bits(s, len));
}

uint32_t kiln_tree__name_intern(kiln_tree_t *t, const char *s, size_t len)
{
    return name_intern(t, s, len);
}

/* ---- nodes ---- */

/* Probes into a large child map miss the TLB on nearly every access; on
 * huge pages they mostly do not (and far fewer page faults populate it).
 * Only a hint: without transparent huge pages nothing changes. */
static void hint_huge_pages(void *p, size_t n)
{
    const uintptr_t huge = 2u << 20;
    if (n < 2 * huge)
        return;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(huge - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static void kids_put(child_slot *kids, size_t mask, child_slot c)
{
    size_t i = kid_hash(c.parent, c.name) & mask;
    while (kids[i].node != 0)
        i = (i + 1) & mask;
    kids[i] = c;
}

/* Rebuilds the child map with at least twice the slots, and at least
 * enough for `nodes` nodes at the 0.7 load limit. */
static void kids_rehash(kiln_tree_t *t, size_t nodes)
{
    size_t cap = (t->kids_mask + 1) * 2;
    while (nodes * 10 > cap * 7)
        cap *= 2;
    child_slot *kids = kiln_xcalloc(cap, sizeof(*kids));
    hint_huge_pages(kids, cap * sizeof(*kids));
    for (size_t i = 0; i <= t->kids_mask; i++) {
        if (t->kids[i].node != 0)
            kids_put(kids, cap - 1, t->kids[i]);
    }
    free(t->kids);
    t->kids = kids;
    t->kids_mask = cap - 1;
}

static uint32_t node_new(kiln_tree_t *t, uint32_t parent, uint32_t name)
{
    if (t->n >= INT32_MAX)
        abort(); /* the wire form indexes nodes with int32 */
    if (t->n == t->cap) {
        /* Three parallel arrays share one capacity. */
        size_t cap = t->cap;
        KILN_GROW(t->parent, cap, t->n + 1);
        t->name = kiln_xrealloc(t->name, cap * sizeof(uint32_t));
        t->self = kiln_xrealloc(t->self, cap * sizeof(int64_t));
        t->cap = cap;
    }
    t->parent[t->n] = parent;
    t->name[t->n] = name;
    t->self[t->n] = 0;
    return (uint32_t)t->n++;
}

/* The child of parent with name id `name`, created if absent. The map
 * holds every node but the root, so its load is (n - 1) / slots <= 0.7. */
static uint32_t child_by_id(kiln_tree_t *t, uint32_t parent, uint32_t name)
{
    for (size_t i = kid_hash(parent, name) & t->kids_mask;; i = (i + 1) & t->kids_mask) {
        child_slot *c = &t->kids[i];
        if (c->node == 0)
            break;
        if (c->parent == parent && c->name == name)
            return c->node;
    }
    if (t->n * 10 > (t->kids_mask + 1) * 7)
        kids_rehash(t, 0);
    uint32_t id = node_new(t, parent, name);
    kids_put(t->kids, t->kids_mask, (child_slot){.parent = parent, .name = name, .node = id});
    return id;
}

kiln_tree_t *kiln_tree_create(void)
{
    kiln_tree_t *t = kiln_xcalloc(1, sizeof(*t));
    t->kids_mask = 1023;
    t->kids = kiln_xcalloc(t->kids_mask + 1, sizeof(child_slot));
    t->name_mask = 255;
    t->name_slots = kiln_xcalloc(t->name_mask + 1, sizeof(uint32_t));
    name_intern(t, "", 0);
    node_new(t, 0, 0);
    return t;
}

void kiln_tree_destroy(kiln_tree_t *t)
{
    if (t == NULL)
        return;
    free(t->parent);
    free(t->name);
    free(t->self);
    free(t->kids);
    free(t->str);
    free(t->name_off);
    free(t->name_len);
    free(t->name_hash);
    free(t->name_slots);
    free(t);
}

uint32_t kiln_tree_child(kiln_tree_t *t, uint32_t parent, const char *name, size_t len)
{
    if (parent >= t->n)
        abort(); /* a programmer error: the parent must exist */
    return child_by_id(t, parent, name_intern(t, name, len));
}

void kiln_tree_add_self(kiln_tree_t *t, uint32_t node, int64_t v)
{
    if (node >= t->n)
        abort();
    t->self[node] = kiln_add_wrap(t->self[node], v);
    t->total = kiln_add_wrap(t->total, v);
}

size_t kiln_tree_size(const kiln_tree_t *t)
{
    return t->n;
}

int64_t kiln_tree_total(const kiln_tree_t *t)
{
    return t->total;
}

/* ---- wire form ---- */

static kiln_status check_response(const Ingester__V1__TreeResponse *r, kiln_err *err)
{
    size_t n = r->n_parent;
    if (r->n_name != n || r->n_self != n)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "tree: parent, name and self lengths differ (%zu, %zu, %zu)", n,
                            r->n_name, r->n_self);
    if (n > 0 && r->parent[0] != -1)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tree: node 0 is not the root (parent %d)",
                            (int)r->parent[0]);
    for (size_t i = 0; i < n; i++) {
        int32_t p = r->parent[i], nm = r->name[i];
        if (i > 0 && (p < 0 || (size_t)p >= i))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "tree: node %zu: parent %d does not precede it", i, (int)p);
        if (nm < 0 || (size_t)nm >= r->n_names || r->names[nm] == NULL)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "tree: node %zu: name index %d out of range (%zu names)", i,
                                (int)nm, r->n_names);
    }
    return KILN_OK;
}

#define PREFETCH_AHEAD 32

/* Merging is bound by cache misses on the child map. When wire node j's
 * parent is already mapped, start loading its slot now so that several
 * misses overlap. */
static void prefetch_kid(const kiln_tree_t *t, const Ingester__V1__TreeResponse *r,
                         const uint32_t *names, const uint32_t *nodes, size_t i, size_t j)
{
    if (j >= r->n_parent || (size_t)r->parent[j] >= i || names[r->name[j]] == NONE)
        return;
    size_t h = kid_hash(nodes[r->parent[j]], names[r->name[j]]) & t->kids_mask;
    __builtin_prefetch(&t->kids[h]);
}

kiln_status kiln_tree_merge_response(kiln_tree_t *t, const Ingester__V1__TreeResponse *r,
                                     kiln_err *err)
{
    kiln_status st = check_response(r, err);
    if (st != KILN_OK || r->n_parent == 0)
        return st;
    /* Wire name index -> our name id, interned on first use; wire node ->
     * our node. Validated above, so every lookup is in range. */
    uint32_t *names = kiln_xmalloc(r->n_names * sizeof(uint32_t));
    uint32_t *nodes = kiln_xmalloc(r->n_parent * sizeof(uint32_t));
    for (size_t i = 0; i < r->n_names; i++)
        names[i] = NONE;
    nodes[0] = KILN_TREE_ROOT;
    /* Into a tree smaller than the wire tree (a fresh one, typically), size
     * the child map once instead of doubling it all the way up. */
    if (r->n_parent * 10 > (t->kids_mask + 1) * 7)
        kids_rehash(t, r->n_parent);
    kiln_tree_add_self(t, KILN_TREE_ROOT, r->self[0]);
    for (size_t i = 1; i < r->n_parent && !kiln_cancel_poll(); i++) { /* partial: dropped */
        prefetch_kid(t, r, names, nodes, i, i + PREFETCH_AHEAD);
        uint32_t nm = (uint32_t)r->name[i];
        if (names[nm] == NONE)
            names[nm] = name_intern(t, r->names[nm], strlen(r->names[nm]));
        nodes[i] = child_by_id(t, nodes[r->parent[i]], names[nm]);
        kiln_tree_add_self(t, nodes[i], r->self[i]);
    }
    free(names);
    free(nodes);
    return KILN_OK;
}

Ingester__V1__TreeResponse *kiln_tree_to_response(const kiln_tree_t *t, kiln_arena_t *a)
{
    Ingester__V1__TreeResponse *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL)
        return NULL;
    ingester__v1__tree_response__init(r);
    r->names = kiln_arena_alloc(a, t->nnames * sizeof(char *));
    r->parent = kiln_arena_alloc(a, t->n * sizeof(int32_t));
    r->name = kiln_arena_alloc(a, t->n * sizeof(int32_t));
    r->self = kiln_arena_alloc(a, t->n * sizeof(int64_t));
    if (r->names == NULL || r->parent == NULL || r->name == NULL || r->self == NULL)
        return NULL;
    for (size_t i = 0; i < t->nnames; i++) {
        /* Copied: the response may outlive the tree (it lives with the arena). */
        r->names[i] = kiln_arena_strndup(a, t->str + t->name_off[i], t->name_len[i]);
        if (r->names[i] == NULL)
            return NULL;
    }
    for (size_t i = 0; i < t->n; i++) {
        r->parent[i] = i == 0 ? -1 : (int32_t)t->parent[i];
        r->name[i] = (int32_t)t->name[i];
    }
    memcpy(r->self, t->self, t->n * sizeof(int64_t));
    r->n_names = t->nnames;
    r->n_parent = r->n_name = r->n_self = t->n;
    return r;
}
