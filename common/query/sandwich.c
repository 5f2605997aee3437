/* SPDX-License-Identifier: Apache-2.0
 * sandwich: the callers and callees of one function (see sandwich.h).
 * Each half is built as a call tree of its own (tree.h), which merges by
 * name: the callers half puts an occurrence's value on the outermost node
 * of its caller chain, so every node of the chain totals it once; the
 * callees half adds the occurrence's subtree selves. Totals are then
 * subtree sums, as in any call tree. */
#include "sandwich.h"

#include <stdlib.h>
#include <string.h>

#include "tree_int.h"
#include "xmalloc.h"

#define OTHER "other"

/* A tree's subtree totals and child lists (children of i are
 * kid[off[i] .. off[i + 1])), malloc'd. */
typedef struct shape {
    int64_t *total;
    uint32_t *off, *kid;
} shape;

static void shape_of(const kiln_tree_t *t, shape *s)
{
    s->total = kiln_xcalloc(t->n + 1, sizeof(int64_t));
    s->off = kiln_xcalloc(t->n + 2, sizeof(uint32_t));
    s->kid = kiln_xmalloc((t->n + 1) * sizeof(uint32_t));
    /* A child's id exceeds its parent's: one backward pass sums subtrees. */
    for (size_t i = t->n; i-- > 1;) {
        s->total[i] = kiln_add_wrap(s->total[i], t->self[i]);
        s->total[t->parent[i]] = kiln_add_wrap(s->total[t->parent[i]], s->total[i]);
        s->off[t->parent[i] + 1]++;
    }
    s->total[0] = kiln_add_wrap(s->total[0], t->self[0]);
    for (size_t i = 0; i < t->n; i++)
        s->off[i + 1] += s->off[i];
    uint32_t *fill = kiln_xmalloc((t->n + 1) * sizeof(uint32_t));
    memcpy(fill, s->off, t->n * sizeof(uint32_t));
    for (size_t i = 1; i < t->n; i++)
        s->kid[fill[t->parent[i]]++] = (uint32_t)i;
    free(fill);
}

static void shape_free(shape *s)
{
    free(s->total);
    free(s->off);
    free(s->kid);
}

static const char *name_of(const kiln_tree_t *t, uint32_t node)
{
    return t->str + t->name_off[t->name[node]];
}

/* Occurrence o's callers into half c: its caller chain, innermost first,
 * below c's root, with o's total on the outermost caller. */
static void add_callers(const kiln_tree_t *t, const shape *s, uint32_t o, kiln_tree_t *c)
{
    uint32_t at = KILN_TREE_ROOT;
    for (uint32_t p = t->parent[o]; p != KILN_TREE_ROOT; p = t->parent[p])
        at = kiln_tree_child(c, at, name_of(t, p), t->name_len[t->name[p]]);
    kiln_tree_add_self(c, at, s->total[o]);
}

/* Occurrence o's subtree into half c below c's root (o's self on the root). */
static void add_callees(const kiln_tree_t *t, const shape *s, uint32_t o, kiln_tree_t *c,
                        uint32_t *stack, uint32_t *at)
{
    kiln_tree_add_self(c, KILN_TREE_ROOT, t->self[o]);
    size_t n = 0;
    stack[n] = o, at[n++] = KILN_TREE_ROOT;
    while (n > 0) {
        uint32_t x = stack[--n], ax = at[n];
        for (uint32_t k = s->off[x]; k < s->off[x + 1]; k++) {
            uint32_t y = s->kid[k];
            uint32_t ay = kiln_tree_child(c, ax, name_of(t, y), t->name_len[t->name[y]]);
            kiln_tree_add_self(c, ay, t->self[y]);
            stack[n] = y, at[n++] = ay;
        }
    }
}

/* The smallest total a node of half h must have to survive a cut to
 * max_nodes nodes (0: no cut): the max_nodes-th largest total. */
static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

static int64_t min_total(const kiln_tree_t *h, const shape *s, int64_t max_nodes)
{
    if (max_nodes <= 0 || h->n <= (size_t)max_nodes)
        return 0;
    int64_t *v = kiln_xmalloc(h->n * sizeof(int64_t));
    memcpy(v, s->total, h->n * sizeof(int64_t));
    qsort(v, h->n, sizeof(int64_t), cmp_desc);
    int64_t m = v[max_nodes - 1];
    free(v);
    return m;
}

/* Names as the report carries them: each once, in the order met. ids is
 * a tree used only as a name interner (its name id -> rep[id] - 1). */
typedef struct names {
    kiln_arena_t *a;
    char **v;
    size_t n, cap;
    kiln_tree_t *ids;
    uint32_t *rep;
    size_t n_rep, cap_rep;
} names;

static int32_t name_index(names *nm, const char *s, size_t len)
{
    uint32_t id = kiln_tree__name_intern(nm->ids, s, len);
    KILN_GROW(nm->rep, nm->cap_rep, (size_t)id + 1);
    while (id >= nm->n_rep)
        nm->rep[nm->n_rep++] = 0;
    if (nm->rep[id] == 0) {
        KILN_GROW(nm->v, nm->cap, nm->n + 1);
        nm->v[nm->n] = kiln_arena_strndup(nm->a, s, len);
        nm->rep[id] = (uint32_t)++nm->n;
    }
    return (int32_t)nm->rep[id] - 1;
}

static int32_t node_name(names *nm, const kiln_tree_t *h, uint32_t x, const char *root)
{
    if (x == KILN_TREE_ROOT)
        return name_index(nm, root, strlen(root));
    return name_index(nm, name_of(h, x), h->name_len[h->name[x]]);
}

/* A kept child while its node's children are ordered: total descending,
 * then name. */
typedef struct kid {
    int64_t total;
    const char *name;
    uint32_t node;
} kid;

static int cmp_kid(const void *a, const void *b)
{
    const kid *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

static Querier__V1__SandwichNode *new_node(kiln_arena_t *a, int32_t name, int64_t total,
                                           int64_t self)
{
    Querier__V1__SandwichNode *p = kiln_arena_alloc(a, sizeof(*p));
    if (p == NULL)
        return NULL;
    querier__v1__sandwich_node__init(p);
    p->name_index = name;
    p->total = total;
    p->self = self;
    return p;
}

/* Node x of half h as a SandwichNode with its children (those of total >=
 * cut, the rest merged into a truncated "other"); false past the arena cap. */
static bool emit_children(const kiln_tree_t *h, const shape *s, uint32_t x, int64_t cut,
                          bool no_self, Querier__V1__SandwichNode *p, names *nm, uint32_t *stack,
                          Querier__V1__SandwichNode **pstack, size_t *n)
{
    size_t nk = s->off[x + 1] - s->off[x], kept = 0;
    kid *kids = kiln_xmalloc((nk + 1) * sizeof(kid));
    int64_t dropped = 0;
    for (uint32_t k = s->off[x]; k < s->off[x + 1]; k++) {
        uint32_t y = s->kid[k];
        if (s->total[y] == 0)
            continue;
        if (s->total[y] < cut && strcmp(name_of(h, y), OTHER) != 0)
            dropped = kiln_add_wrap(dropped, s->total[y]);
        else
            kids[kept++] = (kid){s->total[y], name_of(h, y), y};
    }
    qsort(kids, kept, sizeof(kid), cmp_kid);
    p->children = kiln_arena_alloc(nm->a, (kept + 2) * sizeof(*p->children));
    bool ok = p->children != NULL;
    Querier__V1__SandwichNode *other = NULL;
    for (size_t i = 0; ok && i < kept; i++) {
        uint32_t y = kids[i].node;
        Querier__V1__SandwichNode *c =
            new_node(nm->a, node_name(nm, h, y, ""), s->total[y], no_self ? 0 : h->self[y]);
        ok = c != NULL;
        if (ok && strcmp(name_of(h, y), OTHER) == 0)
            other = c;
        if (ok)
            p->children[p->n_children++] = c;
    }
    if (ok && dropped != 0 && other == NULL) {
        other = new_node(nm->a, name_index(nm, OTHER, strlen(OTHER)), 0, 0);
        ok = other != NULL;
        if (ok)
            p->children[p->n_children++] = other;
    }
    if (ok && dropped != 0) {
        other->total = kiln_add_wrap(other->total, dropped);
        other->self = kiln_add_wrap(other->self, dropped);
        other->truncated = true;
    }
    /* Children are written depth first in order: push them reversed. A
     * truncated "other" keeps no children. */
    for (size_t i = p->n_children; ok && i-- > 0;) {
        if (p->children[i]->truncated)
            continue;
        stack[*n] = kids[i].node;
        pstack[(*n)++] = p->children[i];
    }
    free(kids);
    return ok;
}

/* Half h (root: the function) as a SandwichNode tree cut to max_nodes. */
static Querier__V1__SandwichNode *emit_half(const kiln_tree_t *h, const char *fn, int64_t max_nodes,
                                            bool no_self, names *nm)
{
    shape s;
    shape_of(h, &s);
    int64_t cut = min_total(h, &s, max_nodes);
    uint32_t *stack = kiln_xmalloc((h->n + 1) * sizeof(uint32_t));
    Querier__V1__SandwichNode **pstack = kiln_xmalloc((h->n + 1) * sizeof(*pstack));
    Querier__V1__SandwichNode *root =
        new_node(nm->a, node_name(nm, h, KILN_TREE_ROOT, fn), s.total[0], no_self ? 0 : h->self[0]);
    bool ok = root != NULL;
    size_t n = 0;
    if (ok)
        stack[n] = KILN_TREE_ROOT, pstack[n++] = root;
    while (ok && n > 0) {
        n--;
        ok = emit_children(h, &s, stack[n], cut, no_self, pstack[n], nm, stack, pstack, &n);
    }
    free(stack);
    free(pstack);
    shape_free(&s);
    return ok ? root : NULL;
}

Querier__V1__SandwichReport *kiln_tree_sandwich(const kiln_tree_t *t, const char *fn,
                                                int64_t max_nodes, kiln_arena_t *a)
{
    Querier__V1__SandwichReport *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL)
        return NULL;
    querier__v1__sandwich_report__init(r);
    uint32_t id = kiln_tree__name_find(t, fn, strlen(fn));
    if (id == KILN_TREE__NONE || id == 0)
        return r;
    shape s;
    shape_of(t, &s);
    kiln_tree_t *callers = kiln_tree_create(), *callees = kiln_tree_create();
    uint32_t *stack = kiln_xmalloc((t->n + 1) * sizeof(uint32_t));
    uint32_t *at = kiln_xmalloc((t->n + 1) * sizeof(uint32_t));
    bool seen = false;
    for (size_t i = 1; i < t->n; i++) {
        if (t->name[i] != id)
            continue;
        seen = true;
        r->self = kiln_add_wrap(r->self, t->self[i]);
        uint32_t p = t->parent[(uint32_t)i];
        while (p != KILN_TREE_ROOT && t->name[p] != id)
            p = t->parent[p];
        if (p == KILN_TREE_ROOT) /* the outermost occurrence on its stack */
            r->total = kiln_add_wrap(r->total, s.total[i]);
        add_callers(t, &s, (uint32_t)i, callers);
        add_callees(t, &s, (uint32_t)i, callees, stack, at);
    }
    free(stack);
    free(at);
    shape_free(&s);
    names nm = {a, NULL, 0, 0, kiln_tree_create(), NULL, 0, 0};
    bool ok = true;
    if (seen) {
        r->callers = emit_half(callers, fn, max_nodes, true, &nm);
        r->callees = r->callers != NULL ? emit_half(callees, fn, max_nodes, false, &nm) : NULL;
        ok = r->callees != NULL;
    }
    kiln_tree_destroy(callers);
    kiln_tree_destroy(callees);
    if (ok && nm.n != 0) {
        r->names = kiln_arena_alloc(a, nm.n * sizeof(*r->names));
        ok = r->names != NULL;
        if (ok)
            memcpy(r->names, nm.v, nm.n * sizeof(*r->names));
        r->n_names = nm.n;
    }
    free(nm.v);
    free(nm.rep);
    kiln_tree_destroy(nm.ids);
    return ok ? r : NULL;
}
