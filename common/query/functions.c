/* SPDX-License-Identifier: Apache-2.0
 * functions: the function table of a call tree (see functions.h). */
#include "functions.h"

#include <stdlib.h>
#include <string.h>

#include "tree_int.h"

/* Self and total per name id of one tree, malloc'd (NULL when out of
 * memory); *nnames is the tree's name count. */
typedef struct fn_sums {
    int64_t *self, *total;
    size_t nnames;
} fn_sums;

static void sums_free(fn_sums *s)
{
    free(s->self);
    free(s->total);
}

/* True when an ancestor of node carries the node's name. Walks up the
 * parents: depth is the stack depth, bounded by the tree. */
static int has_named_ancestor(const kiln_tree_t *t, uint32_t node)
{
    for (uint32_t p = t->parent[node]; p != KILN_TREE_ROOT; p = t->parent[p])
        if (t->name[p] == t->name[node])
            return 1;
    return 0;
}

static int sums_of(const kiln_tree_t *t, fn_sums *s)
{
    s->nnames = t->nnames;
    s->self = calloc(t->nnames + 1, sizeof(int64_t));
    s->total = calloc(t->nnames + 1, sizeof(int64_t));
    int64_t *node_total = calloc(t->n + 1, sizeof(int64_t));
    if (s->self == NULL || s->total == NULL || node_total == NULL) {
        free(node_total);
        sums_free(s);
        return -1;
    }
    /* A child's id exceeds its parent's: one backward pass sums subtrees. */
    for (size_t i = t->n; i-- > 1;) {
        node_total[i] = kiln_add_wrap(node_total[i], t->self[i]);
        node_total[t->parent[i]] = kiln_add_wrap(node_total[t->parent[i]], node_total[i]);
    }
    for (size_t i = 1; i < t->n; i++) {
        uint32_t nm = t->name[i];
        s->self[nm] = kiln_add_wrap(s->self[nm], t->self[i]);
        if (!has_named_ancestor(t, (uint32_t)i))
            s->total[nm] = kiln_add_wrap(s->total[nm], node_total[i]);
    }
    free(node_total);
    return 0;
}

static const char *name_of(const kiln_tree_t *t, uint32_t id)
{
    return t->str + t->name_off[id];
}

static int cmp_rows(const void *a, const void *b)
{
    const Querier__V1__FunctionRow *x = *(Querier__V1__FunctionRow *const *)a;
    const Querier__V1__FunctionRow *y = *(Querier__V1__FunctionRow *const *)b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

Querier__V1__FunctionTable *kiln_tree_functions(const kiln_tree_t *t, int64_t limit,
                                                kiln_arena_t *a)
{
    fn_sums s;
    if (sums_of(t, &s) != 0)
        return NULL;
    Querier__V1__FunctionTable *ft = kiln_arena_alloc(a, sizeof(*ft));
    Querier__V1__FunctionRow **rows = kiln_arena_calloc(a, s.nnames + 1, sizeof(*rows));
    if (ft == NULL || rows == NULL) {
        sums_free(&s);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 1; i < s.nnames; i++) {
        if (s.self[i] == 0 && s.total[i] == 0)
            continue;
        Querier__V1__FunctionRow *r = kiln_arena_alloc(a, sizeof(*r));
        if (r == NULL) {
            sums_free(&s);
            return NULL;
        }
        querier__v1__function_row__init(r);
        r->name = (char *)name_of(t, (uint32_t)i);
        r->self = s.self[i];
        r->total = s.total[i];
        rows[n++] = r;
    }
    sums_free(&s);
    qsort(rows, n, sizeof(*rows), cmp_rows);
    querier__v1__function_table__init(ft);
    ft->total = kiln_tree_total(t);
    ft->functions = rows;
    ft->n_functions = limit > 0 && (uint64_t)limit < n ? (size_t)limit : n;
    /* Names point into t: copy them so the answer may outlive the tree. */
    for (size_t i = 0; i < ft->n_functions; i++) {
        rows[i]->name = kiln_arena_strndup(a, rows[i]->name, strlen(rows[i]->name));
        if (rows[i]->name == NULL)
            return NULL;
    }
    return ft;
}

static int64_t diff_key(const Querier__V1__FunctionDiffRow *r)
{
    return r->left_total > r->right_total ? r->left_total : r->right_total;
}

static int cmp_diff_rows(const void *a, const void *b)
{
    const Querier__V1__FunctionDiffRow *x = *(Querier__V1__FunctionDiffRow *const *)a;
    const Querier__V1__FunctionDiffRow *y = *(Querier__V1__FunctionDiffRow *const *)b;
    if (diff_key(x) != diff_key(y))
        return diff_key(x) > diff_key(y) ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* A new zero row named name appended to rows[0..*n) (NULL past the cap). */
static Querier__V1__FunctionDiffRow *diff_row(Querier__V1__FunctionDiffRow **rows, size_t *n,
                                              const char *name, kiln_arena_t *a)
{
    Querier__V1__FunctionDiffRow *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL)
        return NULL;
    querier__v1__function_diff_row__init(r);
    r->name = kiln_arena_strndup(a, name, strlen(name));
    if (r->name == NULL)
        return NULL;
    rows[(*n)++] = r;
    return r;
}

Querier__V1__FunctionTableDiff *kiln_tree_functions_diff(const kiln_tree_t *left,
                                                         const kiln_tree_t *right, int64_t limit,
                                                         kiln_arena_t *a)
{
    fn_sums l, r;
    if (sums_of(left, &l) != 0)
        return NULL;
    if (sums_of(right, &r) != 0) {
        sums_free(&l);
        return NULL;
    }
    Querier__V1__FunctionTableDiff *d = kiln_arena_alloc(a, sizeof(*d));
    Querier__V1__FunctionDiffRow **rows =
        kiln_arena_calloc(a, l.nnames + r.nnames + 1, sizeof(*rows));
    /* seen[j]: right name j already joined to a left row (the join looks
     * each left name up in the right tree's name map). */
    char *seen = calloc(r.nnames + 1, 1);
    size_t n = 0;
    int ok = d != NULL && rows != NULL && seen != NULL;
    for (size_t i = 1; ok && i < l.nnames; i++) {
        const char *nm = name_of(left, (uint32_t)i);
        uint32_t j = kiln_tree__name_find(right, nm, left->name_len[i]);
        int64_t rs = j != KILN_TREE__NONE ? r.self[j] : 0,
                rt = j != KILN_TREE__NONE ? r.total[j] : 0;
        if (j != KILN_TREE__NONE)
            seen[j] = 1;
        if (l.self[i] == 0 && l.total[i] == 0 && rs == 0 && rt == 0)
            continue;
        Querier__V1__FunctionDiffRow *row = diff_row(rows, &n, nm, a);
        ok = row != NULL;
        if (ok) {
            row->left_self = l.self[i];
            row->left_total = l.total[i];
            row->right_self = rs;
            row->right_total = rt;
        }
    }
    for (size_t j = 1; ok && j < r.nnames; j++) {
        if (seen[j] || (r.self[j] == 0 && r.total[j] == 0))
            continue;
        Querier__V1__FunctionDiffRow *row = diff_row(rows, &n, name_of(right, (uint32_t)j), a);
        ok = row != NULL;
        if (ok) {
            row->right_self = r.self[j];
            row->right_total = r.total[j];
        }
    }
    free(seen);
    sums_free(&l);
    sums_free(&r);
    if (!ok)
        return NULL;
    qsort(rows, n, sizeof(*rows), cmp_diff_rows);
    querier__v1__function_table_diff__init(d);
    d->functions = rows;
    d->n_functions = limit > 0 && (uint64_t)limit < n ? (size_t)limit : n;
    d->left_total = kiln_tree_total(left);
    d->right_total = kiln_tree_total(right);
    return d;
}
