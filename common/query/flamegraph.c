/* SPDX-License-Identifier: Apache-2.0
 * flamegraph: a call tree rendered as Grafana's flame graph, Pyroscope's
 * serialized tree and the diff flame graph (flamegraph.h). */
#include "flamegraph.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tree_int.h"
#include "xmalloc.h"

#define NONE KILN_TREE__NONE
#define DEFAULT_MAX_NODES 8192

/* ---- flame graph ---- */

/* Subtree totals: a node's self plus its children's totals. Children have
 * larger ids than their parents, so one backwards pass suffices. */
static int64_t *subtree_totals(const kiln_tree_t *t)
{
    int64_t *tot = kiln_xmalloc(t->n * sizeof(int64_t));
    memcpy(tot, t->self, t->n * sizeof(int64_t));
    for (size_t i = t->n - 1; i > 0; i--)
        tot[t->parent[i]] = kiln_add_wrap(tot[t->parent[i]], tot[i]);
    return tot;
}

static void swap64(int64_t *a, int64_t *b)
{
    int64_t x = *a;
    *a = *b;
    *b = x;
}

static int64_t median3(int64_t a, int64_t b, int64_t c)
{
    if (a > b)
        swap64(&a, &b);
    if (b > c)
        swap64(&b, &c);
    return a > b ? a : b;
}

/* The k-th smallest (0-based) of v[0..n): quickselect with a three-way
 * partition, so the many equal totals of real trees cost nothing extra.
 * Reorders v. */
static int64_t select_nth(int64_t *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        int64_t pivot = median3(v[lo], v[lo + (hi - lo) / 2], v[hi - 1]);
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < pivot, [lt,i) == pivot, [gt,hi) > pivot */
        while (i < gt) {
            if (v[i] < pivot)
                swap64(&v[lt++], &v[i++]);
            else if (v[i] > pivot)
                swap64(&v[i], &v[--gt]);
            else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    return v[lo];
}

/* Pyroscope's truncation threshold: with more than max_nodes (non-empty)
 * nodes, the max_nodes-th largest node total; otherwise 0 (keep all). */
static int64_t min_total(const int64_t *tot, size_t n, int64_t max_nodes)
{
    if (max_nodes <= 0)
        max_nodes = DEFAULT_MAX_NODES;
    if (n - 1 <= (uint64_t)max_nodes)
        return 0;
    int64_t *v = kiln_xmalloc((n - 1) * sizeof(int64_t));
    size_t m = 0;
    for (size_t i = 1; i < n; i++) {
        if (tot[i] != 0)
            v[m++] = tot[i];
    }
    int64_t thr = m > (uint64_t)max_nodes ? select_nth(v, m, m - (size_t)max_nodes) : 0;
    free(v);
    return thr;
}

typedef struct name_ref {
    const char *s;
    uint32_t len;
    uint32_t id;
} name_ref;

/* Bytewise order, a proper prefix first (Go's string comparison). */
static int cmp_name_ref(const void *pa, const void *pb)
{
    const name_ref *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* rank[name id] = the name's position in bytewise order. Sorting the
 * (usually far fewer) distinct names once lets children be ordered with a
 * counting sort instead of a string sort per parent. */
static uint32_t *name_ranks(const kiln_tree_t *t)
{
    name_ref *r = kiln_xmalloc(t->nnames * sizeof(*r));
    for (size_t i = 0; i < t->nnames; i++)
        r[i] = (name_ref){t->str + t->name_off[i], t->name_len[i], (uint32_t)i};
    qsort(r, t->nnames, sizeof(*r), cmp_name_ref);
    uint32_t *rank = kiln_xmalloc(t->nnames * sizeof(uint32_t));
    for (size_t i = 0; i < t->nnames; i++)
        rank[r[i].id] = (uint32_t)i;
    free(r);
    return rank;
}

typedef struct fg_level {
    int64_t *v;
    size_t len, cap;
    int64_t end; /* x + total of the last node written */
} fg_level;

/* A node waiting on the DFS stack; node == NONE is a folded "other". */
typedef struct fg_item {
    uint32_t node;
    uint32_t depth;
    int64_t x;
    int64_t other;
} fg_item;

typedef struct fg {
    const kiln_tree_t *t;
    int64_t *tot;     /* subtree totals */
    int64_t thr;      /* children below this total fold into "other" */
    uint32_t *first;  /* kept children of i: kids[first[i] .. first[i + 1]) */
    uint32_t *kids;   /* sorted by name within each parent */
    int64_t *other;   /* folded total under each node */
    int32_t *out_idx; /* tree name id -> names index, -1 until used */
    kiln_str_t *names;
    size_t nnames, names_cap;
    int32_t other_idx; /* names index of a synthetic "other", -1 until used */
    fg_level *levels;
    size_t nlevels, levels_cap;
    fg_item *stack;
    size_t sp, stack_cap;
    int64_t max_self;
} fg;

/* Fills first/kids/other: which children survive truncation, in name order. */
static void fg_children(fg *g)
{
    const kiln_tree_t *t = g->t;
    size_t n = t->n, kept = 0;
    g->first = kiln_xcalloc(n + 1, sizeof(uint32_t));
    g->other = kiln_xcalloc(n, sizeof(int64_t));
    for (size_t i = 1; i < n; i++) {
        if (g->tot[i] != 0 && g->tot[i] >= g->thr)
            g->first[t->parent[i] + 1]++, kept++;
        else
            g->other[t->parent[i]] = kiln_add_wrap(g->other[t->parent[i]], g->tot[i]);
    }
    for (size_t i = 0; i < n; i++)
        g->first[i + 1] += g->first[i];
    /* Counting sort of the kept nodes by name rank, then a stable scatter
     * by parent: each parent's children come out in name order. */
    uint32_t *rank = name_ranks(t);
    uint32_t *cnt = kiln_xcalloc(t->nnames + 1, sizeof(uint32_t));
    uint32_t *order = kiln_xmalloc((kept ? kept : 1) * sizeof(uint32_t));
    for (size_t i = 1; i < n; i++) {
        if (g->tot[i] != 0 && g->tot[i] >= g->thr)
            cnt[rank[t->name[i]] + 1]++;
    }
    for (size_t i = 0; i < t->nnames; i++)
        cnt[i + 1] += cnt[i];
    for (size_t i = 1; i < n; i++) {
        if (g->tot[i] != 0 && g->tot[i] >= g->thr)
            order[cnt[rank[t->name[i]]]++] = (uint32_t)i;
    }
    uint32_t *next = kiln_xmalloc(n * sizeof(uint32_t));
    memcpy(next, g->first, n * sizeof(uint32_t));
    g->kids = kiln_xmalloc((kept ? kept : 1) * sizeof(uint32_t));
    for (size_t j = 0; j < kept; j++)
        g->kids[next[t->parent[order[j]]]++] = order[j];
    free(next);
    free(order);
    free(cnt);
    free(rank);
}

static int64_t fg_add_name(fg *g, const char *s, size_t len)
{
    KILN_GROW(g->names, g->names_cap, g->nnames + 1);
    g->names[g->nnames] = (kiln_str_t){s, len};
    return (int64_t)g->nnames++;
}

/* The names index of tree name id, assigned in first-visit order. */
static int64_t fg_name(fg *g, uint32_t id)
{
    if (g->out_idx[id] < 0)
        g->out_idx[id] =
            (int32_t)fg_add_name(g, g->t->str + g->t->name_off[id], g->t->name_len[id]);
    return g->out_idx[id];
}

/* Names are de-duplicated by string, so a function called "total" shares
 * index 0 and a function called "other" shares the fold's index. */
static void fg_names_init(fg *g)
{
    g->out_idx = kiln_xmalloc(g->t->nnames * sizeof(int32_t));
    for (size_t i = 0; i < g->t->nnames; i++)
        g->out_idx[i] = -1;
    fg_add_name(g, "total", 5);
    uint32_t id = kiln_tree__name_find(g->t, "total", 5);
    if (id != NONE)
        g->out_idx[id] = 0;
    g->other_idx = -1;
}

static int64_t fg_other_name(fg *g)
{
    uint32_t id = kiln_tree__name_find(g->t, "other", 5);
    if (id != NONE)
        return fg_name(g, id);
    if (g->other_idx < 0)
        g->other_idx = (int32_t)fg_add_name(g, "other", 5);
    return g->other_idx;
}

/* Appends the quad [x_delta, total, self, name] to a level. */
static void fg_emit(fg *g, uint32_t depth, int64_t x, int64_t total, int64_t self, int64_t name)
{
    if (depth >= g->nlevels) {
        KILN_GROW(g->levels, g->levels_cap, (size_t)depth + 1);
        memset(&g->levels[g->nlevels], 0, (depth + 1 - g->nlevels) * sizeof(fg_level));
        g->nlevels = (size_t)depth + 1;
    }
    fg_level *l = &g->levels[depth];
    KILN_GROW(l->v, l->cap, l->len + 4);
    l->v[l->len++] = (int64_t)((uint64_t)x - (uint64_t)l->end); /* wraps as kiln_add_wrap */
    l->v[l->len++] = total;
    l->v[l->len++] = self;
    l->v[l->len++] = name;
    l->end = kiln_add_wrap(x, total);
    if (self > g->max_self)
        g->max_self = self;
}

static void fg_push(fg *g, fg_item it)
{
    KILN_GROW(g->stack, g->stack_cap, g->sp + 1);
    g->stack[g->sp++] = it;
}

/* Writes one node and pushes its children so that they pop in name order,
 * "other" last. A depth-first walk writes every level in ascending x and
 * assigns name indexes in the order Pyroscope does. */
static void fg_visit(fg *g, fg_item it)
{
    const kiln_tree_t *t = g->t;
    if (it.node == NONE) {
        fg_emit(g, it.depth, it.x, it.other, it.other, fg_other_name(g));
        return;
    }
    uint32_t v = it.node;
    bool root = v == KILN_TREE_ROOT;
    int64_t self = root ? 0 : t->self[v];
    int64_t total = root ? (int64_t)((uint64_t)g->tot[v] - (uint64_t)t->self[v]) : g->tot[v];
    fg_emit(g, it.depth, it.x, total, self, root ? 0 : fg_name(g, t->name[v]));
    int64_t x = kiln_add_wrap(it.x, self);
    for (uint32_t k = g->first[v]; k < g->first[v + 1]; k++)
        x = kiln_add_wrap(x, g->tot[g->kids[k]]);
    if (g->other[v] != 0)
        fg_push(g, (fg_item){NONE, it.depth + 1, x, g->other[v]});
    for (uint32_t k = g->first[v + 1]; k > g->first[v]; k--) {
        x = (int64_t)((uint64_t)x - (uint64_t)g->tot[g->kids[k - 1]]); /* wraps */
        fg_push(g, (fg_item){g->kids[k - 1], it.depth + 1, x, 0});
    }
}

/* Copies the result into the arena as protobuf-c messages. */
static Querier__V1__FlameGraph *fg_export(const fg *g, kiln_arena_t *a)
{
    Querier__V1__FlameGraph *out = kiln_arena_alloc(a, sizeof(*out));
    if (out == NULL)
        return NULL;
    querier__v1__flame_graph__init(out);
    out->names = kiln_arena_alloc(a, g->nnames * sizeof(char *));
    out->levels = kiln_arena_alloc(a, g->nlevels * sizeof(Querier__V1__Level *));
    if (out->names == NULL || out->levels == NULL)
        return NULL;
    for (size_t i = 0; i < g->nnames; i++) {
        if ((out->names[i] = kiln_arena_strndup(a, g->names[i].ptr, g->names[i].len)) == NULL)
            return NULL;
    }
    for (size_t i = 0; i < g->nlevels; i++) {
        Querier__V1__Level *l = kiln_arena_alloc(a, sizeof(*l));
        int64_t *v = kiln_arena_alloc(a, g->levels[i].len * sizeof(int64_t));
        if (l == NULL || v == NULL)
            return NULL;
        querier__v1__level__init(l);
        memcpy(v, g->levels[i].v, g->levels[i].len * sizeof(int64_t));
        l->values = v;
        l->n_values = g->levels[i].len;
        out->levels[i] = l;
    }
    out->n_names = g->nnames;
    out->n_levels = g->nlevels;
    out->total = g->levels[0].v[1];
    out->max_self = g->max_self;
    return out;
}

static void fg_free(fg *g)
{
    for (size_t i = 0; i < g->nlevels; i++)
        free(g->levels[i].v);
    free(g->levels);
    free(g->stack);
    free(g->names);
    free(g->out_idx);
    free(g->kids);
    free(g->other);
    free(g->first);
    free(g->tot);
}

Querier__V1__FlameGraph *kiln_tree_flamegraph(const kiln_tree_t *t, int64_t max_nodes,
                                              kiln_arena_t *a)
{
    fg g = {.t = t};
    g.tot = subtree_totals(t);
    g.thr = min_total(g.tot, t->n, max_nodes);
    fg_children(&g);
    fg_names_init(&g);
    fg_push(&g, (fg_item){KILN_TREE_ROOT, 0, 0, 0});
    while (g.sp > 0) {
        fg_item it = g.stack[--g.sp];
        fg_visit(&g, it);
    }
    Querier__V1__FlameGraph *out = fg_export(&g, a);
    fg_free(&g);
    return out;
}

/* ---- Pyroscope's serialized tree ---- */

static void put_node(kiln_buf *b, const char *name, size_t len, int64_t self, uint64_t children)
{
    kiln_buf_put_uvarint(b, len);
    kiln_buf_append(b, name, len);
    kiln_buf_put_uvarint(b, (uint64_t)self);
    kiln_buf_put_uvarint(b, children);
}

/* Where "other" sorts among v's kept children (bytewise, as upstream
 * inserts it): the number of kept children whose name sorts before it. */
static uint32_t other_pos(const fg *g, uint32_t v)
{
    name_ref o = {"other", 5, 0};
    uint32_t k = g->first[v];
    while (k < g->first[v + 1]) {
        uint32_t id = g->t->name[g->kids[k]];
        name_ref r = {g->t->str + g->t->name_off[id], g->t->name_len[id], id};
        if (cmp_name_ref(&r, &o) >= 0)
            break;
        k++;
    }
    return k;
}

/* Writes one node and pushes its children in name order ("other" at its
 * sorted place), so that they pop, and are written, last name first. */
static void tm_visit(fg *g, fg_item it, kiln_buf *out)
{
    const kiln_tree_t *t = g->t;
    if (it.node == NONE) {
        put_node(out, "other", 5, it.other, 0);
        return;
    }
    uint32_t v = it.node;
    bool root = v == KILN_TREE_ROOT;
    uint32_t kids = g->first[v + 1] - g->first[v], at = g->other[v] > 0 ? other_pos(g, v) : NONE;
    if (root)
        put_node(out, "", 0, 0, kids + (at != NONE));
    else
        put_node(out, t->str + t->name_off[t->name[v]], t->name_len[t->name[v]], t->self[v],
                 kids + (at != NONE));
    for (uint32_t k = g->first[v]; k <= g->first[v + 1]; k++) {
        if (k == at)
            fg_push(g, (fg_item){NONE, 0, 0, g->other[v]});
        if (k < g->first[v + 1])
            fg_push(g, (fg_item){g->kids[k], 0, 0, 0});
    }
}

void kiln_tree_marshal(const kiln_tree_t *t, int64_t max_nodes, kiln_buf *out)
{
    fg g = {.t = t};
    g.tot = subtree_totals(t);
    g.thr = min_total(g.tot, t->n, max_nodes);
    fg_children(&g);
    if (g.first[1] - g.first[0] != 0 || g.other[0] > 0) { /* else: empty, as upstream */
        fg_push(&g, (fg_item){KILN_TREE_ROOT, 0, 0, 0});
        while (g.sp > 0) {
            fg_item it = g.stack[--g.sp];
            tm_visit(&g, it, out);
        }
    }
    fg_free(&g);
}

/* ---- diff flame graph ---- */

bool kiln_tree_has_negative(const kiln_tree_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->self[i] < 0)
            return true;
    }
    return false;
}

/* A node of the union of two trees: the node on each side (NONE where the
 * path exists on the other side only) and its children, which are
 * nodes[first .. first + n) in name order. */
typedef struct df_node {
    uint32_t side[2];
    uint32_t first, n;
} df_node;

/* A node waiting on the DFS stack; node == NONE is a folded "other". */
typedef struct df_item {
    uint32_t node;
    uint32_t depth;
    int64_t x[2];
    int64_t other[2];
} df_item;

typedef struct df {
    fg side[2]; /* per tree: totals and children sorted by name */
    df_node *nodes;
    size_t n, cap;
    int64_t thr;        /* children whose larger total is below this fold */
    kiln_tree_t *names; /* output names interned: id = names index; 0 = "" */
    uint32_t *memo[2];  /* per tree: name id -> output index + 1 (0 = not yet) */
    fg_level *levels;   /* absolute x, in visiting order (right to left) */
    size_t nlevels, levels_cap;
    df_item *stack;
    size_t sp, stack_cap;
    int64_t max_self;
} df;

/* Bytewise order of node a of tree ta against node b of tree tb by name. */
static int cmp_node_names(const kiln_tree_t *ta, uint32_t a, const kiln_tree_t *tb, uint32_t b)
{
    uint32_t na = ta->name[a], nb = tb->name[b];
    uint32_t la = ta->name_len[na], lb = tb->name_len[nb];
    int c = memcmp(ta->str + ta->name_off[na], tb->str + tb->name_off[nb], la < lb ? la : lb);
    if (c != 0)
        return c;
    return la < lb ? -1 : la > lb;
}

/* A side's total and self of union node i (0 where the side lacks it). The
 * root's total is the sum of its children, its self 0, as drawn. */
static int64_t df_total(const df *d, int s, uint32_t i)
{
    uint32_t v = d->nodes[i].side[s];
    if (v == NONE)
        return 0;
    return v == KILN_TREE_ROOT ? d->side[s].tot[0] - d->side[s].t->self[0] : d->side[s].tot[v];
}

static int64_t df_self(const df *d, int s, uint32_t i)
{
    uint32_t v = d->nodes[i].side[s];
    return v == NONE || v == KILN_TREE_ROOT ? 0 : d->side[s].t->self[v];
}

static void df_append(df *d, uint32_t l, uint32_t r)
{
    KILN_GROW(d->nodes, d->cap, d->n + 1);
    d->nodes[d->n++] = (df_node){{l, r}, 0, 0};
}

/* Appends the children of union node i: a merge of both sides' kept
 * children, which are sorted by name, pairing equal names. */
static void df_merge_children(df *d, uint32_t i)
{
    const fg *L = &d->side[0], *R = &d->side[1];
    uint32_t l = d->nodes[i].side[0], r = d->nodes[i].side[1];
    uint32_t a = l == NONE ? 0 : L->first[l], ae = l == NONE ? 0 : L->first[l + 1];
    uint32_t b = r == NONE ? 0 : R->first[r], be = r == NONE ? 0 : R->first[r + 1];
    size_t first = d->n;
    while (a < ae || b < be) {
        int c = a == ae ? 1 : b == be ? -1 : cmp_node_names(L->t, L->kids[a], R->t, R->kids[b]);
        uint32_t cl = c <= 0 ? L->kids[a++] : NONE;
        uint32_t cr = c >= 0 ? R->kids[b++] : NONE;
        df_append(d, cl, cr);
    }
    d->nodes[i].first = (uint32_t)first;
    d->nodes[i].n = (uint32_t)(d->n - first);
}

/* Builds the union breadth-first: every node's children are contiguous. */
static void df_build(df *d)
{
    df_append(d, KILN_TREE_ROOT, KILN_TREE_ROOT);
    for (size_t i = 0; i < d->n; i++)
        df_merge_children(d, (uint32_t)i);
}

static int64_t df_max_total(const df *d, uint32_t i)
{
    int64_t l = df_total(d, 0, i), r = df_total(d, 1, i);
    return l > r ? l : r;
}

/* Pyroscope's combined threshold: with more than max_nodes union nodes
 * (root included), the max_nodes-th largest max(totalL, totalR). */
static int64_t df_threshold(const df *d, int64_t max_nodes)
{
    if (max_nodes <= 0)
        max_nodes = DEFAULT_MAX_NODES;
    if (d->n <= (uint64_t)max_nodes)
        return 0;
    int64_t *v = kiln_xmalloc(d->n * sizeof(int64_t));
    for (size_t i = 0; i < d->n; i++)
        v[i] = df_max_total(d, (uint32_t)i);
    int64_t thr = select_nth(v, d->n, d->n - (size_t)max_nodes);
    free(v);
    return thr;
}

/* The output index of tree s's name id, by string across both trees. */
static int64_t df_name(df *d, int s, uint32_t id)
{
    uint32_t *m = &d->memo[s][id];
    if (*m == 0) {
        const kiln_tree_t *t = d->side[s].t;
        *m = kiln_tree__name_intern(d->names, t->str + t->name_off[id], t->name_len[id]) + 1;
    }
    return (int64_t)*m - 1;
}

static int64_t df_node_name(df *d, uint32_t i)
{
    if (i == 0)
        return 0;
    int s = d->nodes[i].side[0] != NONE ? 0 : 1;
    return df_name(d, s, d->side[s].t->name[d->nodes[i].side[s]]);
}

/* Appends [xL, totalL, selfL, xR, totalR, selfR, name] (x absolute). */
static void df_emit(df *d, uint32_t depth, const int64_t *v)
{
    if (depth >= d->nlevels) {
        KILN_GROW(d->levels, d->levels_cap, (size_t)depth + 1);
        memset(&d->levels[d->nlevels], 0, (depth + 1 - d->nlevels) * sizeof(fg_level));
        d->nlevels = (size_t)depth + 1;
    }
    fg_level *l = &d->levels[depth];
    KILN_GROW(l->v, l->cap, l->len + 7);
    memcpy(l->v + l->len, v, 7 * sizeof(int64_t));
    l->len += 7;
    int64_t self = v[2] > v[5] ? v[2] : v[5];
    if (self > d->max_self)
        d->max_self = self;
}

static void df_push(df *d, df_item it)
{
    KILN_GROW(d->stack, d->stack_cap, d->sp + 1);
    d->stack[d->sp++] = it;
}

/* Writes one node, then pushes its kept children first to last and its
 * "other" on top: they pop as Pyroscope visits them, "other" first, then
 * the children from last to first. */
static void df_visit(df *d, df_item it)
{
    if (it.node == NONE) {
        int64_t v[7] = {it.x[0],
                        it.other[0],
                        it.other[0],
                        it.x[1],
                        it.other[1],
                        it.other[1],
                        (int64_t)kiln_tree__name_intern(d->names, "other", 5)};
        df_emit(d, it.depth, v);
        return;
    }
    uint32_t i = it.node;
    int64_t v[7] = {it.x[0],           df_total(d, 0, i), df_self(d, 0, i),  it.x[1],
                    df_total(d, 1, i), df_self(d, 1, i),  df_node_name(d, i)};
    df_emit(d, it.depth, v);
    int64_t x[2] = {it.x[0] + v[2], it.x[1] + v[5]}, other[2] = {0, 0};
    const df_node *nd = &d->nodes[i];
    for (uint32_t c = nd->first; c < nd->first + nd->n; c++) {
        int64_t tl = df_total(d, 0, c), tr = df_total(d, 1, c);
        if (tl >= d->thr || tr >= d->thr) {
            df_push(d, (df_item){c, it.depth + 1, {x[0], x[1]}, {0, 0}});
            x[0] += tl;
            x[1] += tr;
        } else {
            other[0] += tl;
            other[1] += tr;
        }
    }
    if (other[0] != 0 || other[1] != 0)
        df_push(d, (df_item){NONE, it.depth + 1, {x[0], x[1]}, {other[0], other[1]}});
}

/* Puts a level in ascending x (it was written right to left) and
 * delta-encodes x on both sides. */
static void df_finish_level(int64_t *v, size_t len)
{
    size_t n = len / 7;
    for (size_t i = 0; i < n / 2; i++) {
        int64_t tmp[7];
        memcpy(tmp, v + 7 * i, sizeof(tmp));
        memcpy(v + 7 * i, v + 7 * (n - 1 - i), sizeof(tmp));
        memcpy(v + 7 * (n - 1 - i), tmp, sizeof(tmp));
    }
    for (size_t s = 0; s <= 3; s += 3) {
        int64_t end = 0;
        for (size_t i = s; i < len; i += 7) {
            int64_t x = v[i];
            v[i] = x - end;
            end = x + v[i + 1];
        }
    }
}

static Querier__V1__FlameGraphDiff *df_export(df *d, kiln_arena_t *a)
{
    Querier__V1__FlameGraphDiff *out = kiln_arena_alloc(a, sizeof(*out));
    if (out == NULL)
        return NULL;
    querier__v1__flame_graph_diff__init(out);
    const kiln_tree_t *nt = d->names;
    out->names = kiln_arena_alloc(a, nt->nnames * sizeof(char *));
    out->levels = kiln_arena_alloc(a, d->nlevels * sizeof(Querier__V1__Level *));
    if (out->names == NULL || out->levels == NULL)
        return NULL;
    for (size_t i = 0; i < nt->nnames; i++) {
        out->names[i] = i == 0 ? kiln_arena_strndup(a, "total", 5)
                               : kiln_arena_strndup(a, nt->str + nt->name_off[i], nt->name_len[i]);
        if (out->names[i] == NULL)
            return NULL;
    }
    for (size_t i = 0; i < d->nlevels; i++) {
        Querier__V1__Level *l = kiln_arena_alloc(a, sizeof(*l));
        int64_t *v = kiln_arena_alloc(a, d->levels[i].len * sizeof(int64_t));
        if (l == NULL || v == NULL)
            return NULL;
        querier__v1__level__init(l);
        memcpy(v, d->levels[i].v, d->levels[i].len * sizeof(int64_t));
        df_finish_level(v, d->levels[i].len);
        l->values = v;
        l->n_values = d->levels[i].len;
        out->levels[i] = l;
    }
    out->n_names = nt->nnames;
    out->n_levels = d->nlevels;
    out->leftticks = d->levels[0].v[1];
    out->rightticks = d->levels[0].v[4];
    out->total = out->leftticks + out->rightticks;
    out->max_self = d->max_self;
    return out;
}

static void df_side_init(fg *g, const kiln_tree_t *t)
{
    /* Threshold 0 keeps every non-empty child: truncation is decided on
     * the union, not per side. */
    g->t = t;
    g->tot = subtree_totals(t);
    g->thr = 0;
    fg_children(g);
}

Querier__V1__FlameGraphDiff *kiln_tree_flamegraph_diff(const kiln_tree_t *left,
                                                       const kiln_tree_t *right, int64_t max_nodes,
                                                       kiln_arena_t *a)
{
    df d;
    memset(&d, 0, sizeof(d));
    df_side_init(&d.side[0], left);
    df_side_init(&d.side[1], right);
    d.memo[0] = kiln_xcalloc(left->nnames, sizeof(uint32_t));
    d.memo[1] = kiln_xcalloc(right->nnames, sizeof(uint32_t));
    d.names = kiln_tree_create(); /* interns "" first: the root's index 0 */
    df_build(&d);
    d.thr = df_threshold(&d, max_nodes);
    df_push(&d, (df_item){0, 0, {0, 0}, {0, 0}});
    while (d.sp > 0) {
        df_item it = d.stack[--d.sp];
        df_visit(&d, it);
    }
    Querier__V1__FlameGraphDiff *out = df_export(&d, a);
    for (size_t i = 0; i < d.nlevels; i++)
        free(d.levels[i].v);
    free(d.levels);
    free(d.stack);
    kiln_tree_destroy(d.names);
    free(d.memo[0]);
    free(d.memo[1]);
    free(d.nodes);
    fg_free(&d.side[0]);
    fg_free(&d.side[1]);
    return out;
}
