/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for tree: exact flame graph arrays for small hand-worked trees,
 * truncation into "other", the wire form (roundtrip, merge, rejection), and
 * layout properties of random trees. */
#include <stdbool.h>
#include <time.h>

#include "arena.h"
#include "check.h"
#include "flamegraph.h"
#include "tree.h"
#include "xorshift.h"

/* Adds v to the stack "a;b;c" (root first). */
static void add_stack(kiln_tree_t *t, const char *stack, int64_t v)
{
    uint32_t node = KILN_TREE_ROOT;
    const char *p = stack;
    while (*p != '\0') {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        node = kiln_tree_child(t, node, p, len);
        p += len + (end ? 1 : 0);
    }
    kiln_tree_add_self(t, node, v);
}

/* Compares a flame graph with expected names ("a,b,c") and levels. */
static void check_fg(const Querier__V1__FlameGraph *fg, const char *names, size_t nlevels,
                     const int64_t *const *levels, const size_t *lens, int64_t total,
                     int64_t max_self)
{
    CHECK(fg != NULL);
    if (fg == NULL)
        return;
    char got[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < fg->n_names && len < sizeof(got); i++)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? "," : "", fg->names[i]);
    CHECK_STR(got, names);
    CHECK_EQ(fg->n_levels, nlevels);
    for (size_t i = 0; i < nlevels && i < fg->n_levels; i++) {
        CHECK_EQ(fg->levels[i]->n_values, lens[i]);
        for (size_t j = 0; j < lens[i] && j < fg->levels[i]->n_values; j++) {
            if (fg->levels[i]->values[j] != levels[i][j])
                printf("  level %zu value %zu\n", i, j);
            CHECK_EQ(fg->levels[i]->values[j], levels[i][j]);
        }
    }
    CHECK_EQ(fg->total, total);
    CHECK_EQ(fg->max_self, max_self);
}

#define LV(...) ((const int64_t[]){__VA_ARGS__})
#define NV(...) (sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

TEST(basic_example)
{
    /* a;b 3, a;c 2, d 1: the root's total 6 = a (5) + d (1); b, c start at
     * a's x + a's self = 0; d follows a on level 1 (x 5, delta 0). */
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    add_stack(t, "a;b", 3);
    add_stack(t, "a;c", 2);
    add_stack(t, "d", 1);
    CHECK_EQ(kiln_tree_size(t), 5);
    CHECK_EQ(kiln_tree_total(t), 6);
    const int64_t *lv[] = {LV(0, 6, 0, 0), LV(0, 5, 0, 1, 0, 1, 1, 4), LV(0, 3, 3, 2, 0, 2, 2, 3)};
    size_t lens[] = {4, 8, 8};
    check_fg(kiln_tree_flamegraph(t, 0, a), "total,a,b,c,d", 3, lv, lens, 6, 3);

    /* The same stacks in another order give the same graph. */
    kiln_tree_t *u = kiln_tree_create();
    add_stack(u, "d", 1);
    add_stack(u, "a;c", 2);
    add_stack(u, "a;b", 1);
    add_stack(u, "a;b", 2);
    check_fg(kiln_tree_flamegraph(u, 8192, a), "total,a,b,c,d", 3, lv, lens, 6, 3);
    kiln_tree_destroy(u);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(x_delta_and_self)
{
    /* a: self 1, child b 1; c: self 1, child d 2. Level 2 holds b at x 1
     * (a's x + self) and d at x 3 (c's x 2 + self 1): deltas 1 and 3 - 2. */
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    add_stack(t, "c;d", 2);
    add_stack(t, "a;b", 1);
    add_stack(t, "a", 1);
    add_stack(t, "c", 1);
    const int64_t *lv[] = {LV(0, 5, 0, 0), LV(0, 2, 1, 1, 0, 3, 1, 3), LV(1, 1, 1, 2, 1, 2, 2, 4)};
    size_t lens[] = {4, 8, 8};
    check_fg(kiln_tree_flamegraph(t, 0, a), "total,a,b,c,d", 3, lv, lens, 5, 2);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(bytewise_order_and_empty_nodes)
{
    /* Bytewise: "B" < "a" < "ab" < "b" < "\xc3\xa9"; the zero-total node z
     * (created, never given a value) is left out. */
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    add_stack(t, "\xc3\xa9", 1);
    add_stack(t, "b", 2);
    add_stack(t, "ab", 3);
    add_stack(t, "a", 4);
    add_stack(t, "B", 5);
    kiln_tree_child(t, KILN_TREE_ROOT, "z", 1);
    kiln_tree_child(t, kiln_tree_child(t, KILN_TREE_ROOT, "a", 1), "zz", 2);
    const int64_t *lv[] = {LV(0, 15, 0, 0),
                           LV(0, 5, 5, 1, 0, 4, 4, 2, 0, 3, 3, 3, 0, 2, 2, 4, 0, 1, 1, 5)};
    size_t lens[] = {4, 20};
    check_fg(kiln_tree_flamegraph(t, 0, a), "total,B,a,ab,b,\xc3\xa9", 2, lv, lens, 15, 5);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(empty_tree)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_EQ(kiln_tree_size(t), 1);
    CHECK_EQ(kiln_tree_total(t), 0);
    const int64_t *lv[] = {LV(0, 0, 0, 0)};
    size_t lens[] = {4};
    check_fg(kiln_tree_flamegraph(t, 0, a), "total", 1, lv, lens, 0, 0);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(truncation)
{
    kiln_arena_t *a = kiln_arena_create(0);
    /* Totals 10, 5, 1, 1 with max_nodes 2: the threshold is 5, so c and d
     * fold into one "other" (2) placed last. */
    kiln_tree_t *t = kiln_tree_create();
    add_stack(t, "d", 1);
    add_stack(t, "c", 1);
    add_stack(t, "b", 5);
    add_stack(t, "a", 10);
    const int64_t *lv1[] = {LV(0, 17, 0, 0), LV(0, 10, 10, 1, 0, 5, 5, 2, 0, 2, 2, 3)};
    size_t lens1[] = {4, 12};
    check_fg(kiln_tree_flamegraph(t, 2, a), "total,a,b,other", 2, lv1, lens1, 17, 10);
    /* max_nodes 3: the 3rd largest total is 1, so everything stays (ties kept). */
    const int64_t *lv2[] = {LV(0, 17, 0, 0), LV(0, 10, 10, 1, 0, 5, 5, 2, 0, 1, 1, 3, 0, 1, 1, 4)};
    size_t lens2[] = {4, 16};
    check_fg(kiln_tree_flamegraph(t, 3, a), "total,a,b,c,d", 2, lv2, lens2, 17, 10);
    kiln_tree_destroy(t);

    /* Nested: a 6 (x 4, y 1, z 1), b 3; max_nodes 3 keeps a, x, b (threshold
     * 3); y and z fold under a. Names follow the depth-first walk. */
    t = kiln_tree_create();
    add_stack(t, "a;x", 4);
    add_stack(t, "a;y", 1);
    add_stack(t, "a;z", 1);
    add_stack(t, "b", 3);
    const int64_t *lv3[] = {LV(0, 9, 0, 0), LV(0, 6, 0, 1, 0, 3, 3, 4), LV(0, 4, 4, 2, 0, 2, 2, 3)};
    size_t lens3[] = {4, 8, 8};
    check_fg(kiln_tree_flamegraph(t, 3, a), "total,a,x,other,b", 3, lv3, lens3, 9, 4);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

/* Pyroscope's serialized tree, byte for byte: a virtual root, then every
 * node (name length, name, self, children count) depth first, last name
 * first, with the folded children of a as "other" sorted among its kept
 * ones (before x). */
TEST(marshal_tree_bytes)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_tree_marshal(t, 0, &b);
    CHECK_EQ(b.len, 0); /* empty: nothing, as upstream */
    add_stack(t, "a;x", 4);
    add_stack(t, "a;y", 1);
    add_stack(t, "a;z", 1);
    add_stack(t, "b", 3);
    kiln_tree_marshal(t, 3, &b);
    static const uint8_t want[] = {0,   0, 2, 1, 'b', 3,   0,   1,   'a', 0, 2, 1,
                                   'x', 4, 0, 5, 'o', 't', 'h', 'e', 'r', 2, 0};
    CHECK_EQ(b.len, sizeof(want));
    CHECK(b.len == sizeof(want) && memcmp(b.ptr, want, sizeof(want)) == 0);
    /* Untruncated (0 = 8192): a's children x, y, z written z first. */
    b.len = 0;
    kiln_tree_marshal(t, 0, &b);
    static const uint8_t all[] = {0,   0, 2, 1, 'b', 3, 0, 1, 'a', 0, 3, 1,
                                  'z', 1, 0, 1, 'y', 1, 0, 1, 'x', 4, 0};
    CHECK_EQ(b.len, sizeof(all));
    CHECK(b.len == sizeof(all) && memcmp(b.ptr, all, sizeof(all)) == 0);
    kiln_buf_free(&b);
    kiln_tree_destroy(t);
}

TEST(names_dedup_with_total_and_other)
{
    /* Names are de-duplicated by string: a frame called "other" shares the
     * fold's index, one called "total" shares index 0. */
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *t = kiln_tree_create();
    add_stack(t, "other", 8);
    add_stack(t, "x;total", 7);
    add_stack(t, "x;other", 1);
    add_stack(t, "y", 1);
    /* totals: x 8, other 8, x;total 7, x;other 1, y 1; max_nodes 3 -> threshold 7. */
    const int64_t *lv[] = {LV(0, 17, 0, 0), LV(0, 8, 8, 1, 0, 8, 0, 2, 0, 1, 1, 1),
                           LV(8, 7, 7, 0, 0, 1, 1, 1)};
    size_t lens[] = {4, 12, 8};
    check_fg(kiln_tree_flamegraph(t, 3, a), "total,other,x", 3, lv, lens, 17, 8);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(default_max_nodes)
{
    /* 10000 leaves valued 1..10000: max_nodes <= 0 means 8192, so the
     * threshold is 1809 and the 1808 smallest fold into "other". */
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *t = kiln_tree_create();
    int64_t folded = 0;
    for (int i = 1; i <= 10000; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "f%05d", i);
        kiln_tree_add_self(t, kiln_tree_child(t, KILN_TREE_ROOT, name, (size_t)n), i);
        if (i < 1809)
            folded += i;
    }
    for (int64_t mn = -1; mn <= 0; mn++) {
        Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(t, mn, a);
        CHECK_EQ(fg->n_levels, 2);
        CHECK_EQ(fg->levels[1]->n_values, 4 * 8193);
        const int64_t *last = &fg->levels[1]->values[4 * 8192];
        CHECK_EQ(last[1], folded);
        CHECK_EQ(last[2], folded);
        CHECK_STR(fg->names[last[3]], "other");
        CHECK_EQ(fg->total, 10000LL * 10001 / 2);
        CHECK_EQ(fg->max_self, folded); /* "other" is the largest self here */
    }
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(arena_cap)
{
    kiln_arena_t *a = kiln_arena_create(64);
    kiln_tree_t *t = kiln_tree_create();
    add_stack(t, "a;b", 3);
    CHECK(kiln_tree_flamegraph(t, 0, a) == NULL);
    CHECK(kiln_tree_to_response(t, a) == NULL);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
    kiln_tree_destroy(NULL);
}

/* Serialises a flame graph to bytes for equality checks. */
static size_t fg_bytes(const Querier__V1__FlameGraph *fg, uint8_t **out)
{
    size_t n = querier__v1__flame_graph__get_packed_size(fg);
    *out = malloc(n ? n : 1);
    querier__v1__flame_graph__pack(fg, *out);
    return n;
}

static bool fg_equal(const Querier__V1__FlameGraph *x, const Querier__V1__FlameGraph *y)
{
    uint8_t *bx, *by;
    size_t nx = fg_bytes(x, &bx), ny = fg_bytes(y, &by);
    bool eq = nx == ny && memcmp(bx, by, nx) == 0;
    free(bx);
    free(by);
    return eq;
}

TEST(wire_roundtrip)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *t = kiln_tree_create();
    add_stack(t, "main;a;b", 3);
    add_stack(t, "main;a;c", 2);
    add_stack(t, "main;b", 4);
    add_stack(t, "main", 1);
    add_stack(t, "other;b", 1);
    Ingester__V1__TreeResponse *r = kiln_tree_to_response(t, a);
    CHECK(r != NULL);
    CHECK_EQ(r->n_parent, kiln_tree_size(t));
    CHECK_EQ(r->n_name, r->n_parent);
    CHECK_EQ(r->n_self, r->n_parent);
    CHECK_EQ(r->n_names, 6); /* "", main, a, b, c, other */
    CHECK_EQ(r->parent[0], -1);
    for (size_t i = 1; i < r->n_parent; i++)
        CHECK(r->parent[i] >= 0 && (size_t)r->parent[i] < i);
    for (size_t i = 0; i < r->n_names; i++) {
        for (size_t j = i + 1; j < r->n_names; j++)
            CHECK(strcmp(r->names[i], r->names[j]) != 0);
    }

    /* Through the bytes and back. */
    size_t n = ingester__v1__tree_response__get_packed_size(r);
    uint8_t *buf = malloc(n);
    ingester__v1__tree_response__pack(r, buf);
    Ingester__V1__TreeResponse *d = ingester__v1__tree_response__unpack(NULL, n, buf);
    CHECK(d != NULL);
    kiln_tree_t *u = kiln_tree_create();
    CHECK_OK(kiln_tree_merge_response(u, d, NULL));
    CHECK_EQ(kiln_tree_size(u), kiln_tree_size(t));
    CHECK_EQ(kiln_tree_total(u), kiln_tree_total(t));
    CHECK(fg_equal(kiln_tree_flamegraph(t, 0, a), kiln_tree_flamegraph(u, 0, a)));
    ingester__v1__tree_response__free_unpacked(d, NULL);
    free(buf);
    kiln_tree_destroy(u);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(wire_merge)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *t1 = kiln_tree_create(), *t2 = kiln_tree_create();
    add_stack(t1, "a;b", 3);
    add_stack(t1, "d", 1);
    add_stack(t2, "e", 5);
    add_stack(t2, "a;c", 2);
    add_stack(t2, "a;b", 2);
    kiln_tree_t *m = kiln_tree_create();
    CHECK_OK(kiln_tree_merge_response(m, kiln_tree_to_response(t1, a), NULL));
    CHECK_OK(kiln_tree_merge_response(m, kiln_tree_to_response(t2, a), NULL));
    CHECK_EQ(kiln_tree_size(m), 6);
    CHECK_EQ(kiln_tree_total(m), 13);
    const int64_t *lv[] = {LV(0, 13, 0, 0), LV(0, 7, 0, 1, 0, 1, 1, 4, 0, 5, 5, 5),
                           LV(0, 5, 5, 2, 0, 2, 2, 3)};
    size_t lens[] = {4, 12, 8};
    check_fg(kiln_tree_flamegraph(m, 0, a), "total,a,b,c,d,e", 3, lv, lens, 13, 5);

    /* Merging into a tree that already has nodes adds to them. */
    CHECK_OK(kiln_tree_merge_response(t1, kiln_tree_to_response(t2, a), NULL));
    CHECK(fg_equal(kiln_tree_flamegraph(t1, 0, a), kiln_tree_flamegraph(m, 0, a)));
    kiln_tree_destroy(m);
    kiln_tree_destroy(t1);
    kiln_tree_destroy(t2);
    kiln_arena_destroy(a);
}

TEST(wire_rejects_inconsistent)
{
    char *names[] = {"", "a", "b"};
    int32_t parent[] = {-1, 0, 1};
    int32_t name[] = {0, 1, 2};
    int64_t self[] = {0, 1, 2};
    Ingester__V1__TreeResponse r = INGESTER__V1__TREE_RESPONSE__INIT;
    r.n_names = 3, r.names = names;
    r.n_parent = 3, r.parent = parent;
    r.n_name = 3, r.name = name;
    r.n_self = 3, r.self = self;
    kiln_tree_t *t = kiln_tree_create();
    kiln_err err = {0};
    CHECK_OK(kiln_tree_merge_response(t, &r, &err));
    CHECK_EQ(kiln_tree_size(t), 3);
    CHECK_EQ(kiln_tree_total(t), 3);

    r.n_self = 2;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: parent, name and self lengths differ (3, 3, 2)");
    r.n_self = 3;
    parent[0] = 0;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: node 0 is not the root (parent 0)");
    parent[0] = -1;
    parent[2] = 2;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: node 2: parent 2 does not precede it");
    parent[2] = -5;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: node 2: parent -5 does not precede it");
    parent[2] = 1;
    name[1] = 3;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: node 1: name index 3 out of range (3 names)");
    name[1] = -1;
    CHECK_EQ(kiln_tree_merge_response(t, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "tree: node 1: name index -1 out of range (3 names)");
    /* A rejected tree changes nothing. */
    CHECK_EQ(kiln_tree_size(t), 3);
    CHECK_EQ(kiln_tree_total(t), 3);

    /* An empty wire tree is a valid no-op. */
    Ingester__V1__TreeResponse e = INGESTER__V1__TREE_RESPONSE__INIT;
    CHECK_OK(kiln_tree_merge_response(t, &e, &err));
    CHECK_EQ(kiln_tree_size(t), 3);
    kiln_tree_destroy(t);
}

/* ---- properties of random trees ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
    return xorshift64(&rng_state);
}

/* A tree of about n nodes in which every node has a positive self value,
 * so a parent's total exceeds its children's and ties are improbable. */
static kiln_tree_t *random_tree(size_t n, size_t fanout_names)
{
    kiln_tree_t *t = kiln_tree_create();
    for (size_t i = 0; i < n; i++) {
        uint32_t parent = (uint32_t)(rng() % kiln_tree_size(t));
        char name[32];
        int len =
            snprintf(name, sizeof(name), "fn%llu", (unsigned long long)(rng() % fanout_names));
        uint32_t c = kiln_tree_child(t, parent, name, (size_t)len);
        kiln_tree_add_self(t, c, (int64_t)(1 + rng() % (1u << 30)));
    }
    return t;
}

typedef struct fg_node {
    int64_t x, total, self, name;
} fg_node;

/* Checks the layout invariants; returns the node count (root excluded)
 * and the number of "other" nodes. */
static void check_layout(const Querier__V1__FlameGraph *fg, size_t *nodes, size_t *others)
{
    *nodes = *others = 0;
    CHECK_STR(fg->names[0], "total");
    int64_t other = -1;
    for (size_t i = 0; i < fg->n_names; i++) {
        if (strcmp(fg->names[i], "other") == 0)
            other = (int64_t)i;
        for (size_t j = i + 1; j < fg->n_names; j++)
            CHECK(strcmp(fg->names[i], fg->names[j]) != 0);
    }
    CHECK_EQ(fg->levels[0]->n_values, 4);
    CHECK_EQ(fg->levels[0]->values[1], fg->total);
    fg_node *prev = malloc(sizeof(fg_node));
    size_t nprev = 1;
    prev[0] = (fg_node){0, fg->total, 0, 0};
    for (size_t l = 1; l < fg->n_levels; l++) {
        const Querier__V1__Level *lv = fg->levels[l];
        size_t n = lv->n_values / 4, p = 0;
        fg_node *cur = malloc((n ? n : 1) * sizeof(fg_node));
        int64_t end = 0, level_sum = 0;
        int64_t *child_sum = calloc(nprev, sizeof(int64_t));
        CHECK_EQ(lv->n_values % 4, 0);
        for (size_t i = 0; i < n; i++) {
            const int64_t *q = &lv->values[4 * i];
            CHECK(q[0] >= 0);
            CHECK(q[1] > 0);
            CHECK(q[3] >= 0 && (size_t)q[3] < fg->n_names);
            cur[i] = (fg_node){end + q[0], q[1], q[2], q[3]};
            end = cur[i].x + cur[i].total;
            level_sum += q[1];
            *others += q[3] == other;
            /* The parent is the previous-level node whose child range holds x. */
            while (p < nprev && cur[i].x >= prev[p].x + prev[p].total)
                p++;
            CHECK(p < nprev);
            if (p < nprev) {
                CHECK(cur[i].x >= prev[p].x + prev[p].self);
                CHECK(end <= prev[p].x + prev[p].total);
                child_sum[p] += cur[i].total;
            }
        }
        if (l == 1)
            CHECK_EQ(level_sum, fg->total);
        for (size_t i = 0; i < nprev; i++) {
            CHECK(prev[i].total >= child_sum[i]);
            CHECK_EQ(prev[i].total, prev[i].self + child_sum[i]);
        }
        *nodes += n;
        free(child_sum);
        free(prev);
        prev = cur;
        nprev = n;
    }
    free(prev);
}

TEST(random_tree_properties)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *t = random_tree(20000, 12);
    int64_t limits[] = {0, 1, 7, 50, 500, 5000, 1000000};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(t, limits[i], a);
        size_t nodes, others;
        CHECK(fg != NULL);
        if (fg == NULL)
            continue;
        CHECK_EQ(fg->total, kiln_tree_total(t));
        check_layout(fg, &nodes, &others);
        size_t n = limits[i] > 0 ? (size_t)limits[i] : 8192;
        if (nodes > n + others)
            printf("  max_nodes %lld: %zu nodes, %zu other\n", (long long)limits[i], nodes, others);
        CHECK(nodes <= n + others);
        if (limits[i] == 1000000)
            CHECK_EQ(nodes, kiln_tree_size(t) - 1);
        kiln_arena_reset(a);
    }
    /* Through the wire form the graph is unchanged. */
    kiln_tree_t *u = kiln_tree_create();
    CHECK_OK(kiln_tree_merge_response(u, kiln_tree_to_response(t, a), NULL));
    CHECK(fg_equal(kiln_tree_flamegraph(t, 100, a), kiln_tree_flamegraph(u, 100, a)));
    kiln_tree_destroy(u);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

TEST(large_tree)
{
    /* A million nodes: building, merging and rendering stay well under a second each. */
    kiln_arena_t *a = kiln_arena_create(0);
    clock_t c0 = clock();
    kiln_tree_t *t = random_tree(1000000, 2000);
    clock_t c1 = clock();
    kiln_tree_t *u = kiln_tree_create();
    CHECK_OK(kiln_tree_merge_response(u, kiln_tree_to_response(t, a), NULL));
    clock_t c2 = clock();
    Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(u, 8192, a);
    clock_t c3 = clock();
    size_t nodes, others;
    CHECK(fg != NULL);
    if (fg != NULL) {
        check_layout(fg, &nodes, &others);
        CHECK(nodes <= 8192 + others);
        CHECK_EQ(fg->total, kiln_tree_total(t));
    }
    printf("  %zu nodes: build %.0f ms, wire+merge %.0f ms, flamegraph %.0f ms\n",
           kiln_tree_size(t), 1e3 * (double)(c1 - c0) / CLOCKS_PER_SEC,
           1e3 * (double)(c2 - c1) / CLOCKS_PER_SEC, 1e3 * (double)(c3 - c2) / CLOCKS_PER_SEC);
    kiln_tree_destroy(u);
    kiln_tree_destroy(t);
    kiln_arena_destroy(a);
}

/* ---- diff flame graphs ---- */

/* Compares a diff flame graph with expected names ("a,b,c") and levels. */
static void check_diff(const Querier__V1__FlameGraphDiff *d, const char *names, size_t nlevels,
                       const int64_t *const *levels, const size_t *lens, int64_t left,
                       int64_t right, int64_t max_self)
{
    CHECK(d != NULL);
    if (d == NULL)
        return;
    char got[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < d->n_names && len < sizeof(got); i++)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i ? "," : "", d->names[i]);
    CHECK_STR(got, names);
    CHECK_EQ(d->n_levels, nlevels);
    for (size_t i = 0; i < nlevels && i < d->n_levels; i++) {
        CHECK_EQ(d->levels[i]->n_values, lens[i]);
        for (size_t j = 0; j < lens[i] && j < d->levels[i]->n_values; j++) {
            if (d->levels[i]->values[j] != levels[i][j])
                printf("  level %zu value %zu\n", i, j);
            CHECK_EQ(d->levels[i]->values[j], levels[i][j]);
        }
    }
    CHECK_EQ(d->leftticks, left);
    CHECK_EQ(d->rightticks, right);
    CHECK_EQ(d->total, left + right);
    CHECK_EQ(d->max_self, max_self);
}

/* Left: a 1, a;b 3, a;c 1, d 2. Right: a;b 1, a;e 4, f 2. */
static void diff_example_trees(kiln_tree_t *l, kiln_tree_t *r)
{
    add_stack(l, "d", 2);
    add_stack(l, "a;c", 1);
    add_stack(l, "a;b", 3);
    add_stack(l, "a", 1);
    add_stack(r, "f", 2);
    add_stack(r, "a;e", 4);
    add_stack(r, "a;b", 1);
}

TEST(diff_example)
{
    /* The union: root -> a, d, f; a -> b, c, e. Left totals: root 7, a 5
     * (self 1), b 3, c 1, d 2; right: root 7, a 5, b 1, e 4, f 2.
     * Absolute x, left | right: a 0|0, d 5|5, f 7|5; b 1|0 (a's x + a's
     * self), c 4|1, e 5|1. Pyroscope visits root, then f, d, a (last child
     * first), then a's e, c, b: names total,f,d,a,e,c,b. Each level is
     * delta-encoded per side: only b's left x (1, after a's self) is not
     * zero. */
    kiln_tree_t *l = kiln_tree_create(), *r = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    diff_example_trees(l, r);
    const int64_t *lv[] = {
        LV(0, 7, 0, 0, 7, 0, 0),
        LV(0, 5, 1, 0, 5, 0, 3, /**/ 0, 2, 2, 0, 0, 0, 2, /**/ 0, 0, 0, 0, 2, 2, 1),
        LV(1, 3, 3, 0, 1, 1, 6, /**/ 0, 1, 1, 0, 0, 0, 5, /**/ 0, 0, 0, 0, 4, 4, 4)};
    size_t lens[] = {7, 21, 21};
    check_diff(kiln_tree_flamegraph_diff(l, r, 0, a), "total,f,d,a,e,c,b", 3, lv, lens, 7, 7, 4);
    kiln_tree_destroy(l);
    kiln_tree_destroy(r);
    kiln_arena_destroy(a);
}

TEST(diff_truncation)
{
    /* Union nodes by max(totalL, totalR): root 7, a 5, e 4, b 3, d 2, f 2,
     * c 1. max_nodes 4 -> threshold 3: d and f fold into "other" (2 | 2)
     * after a; under a, c folds into "other" (1 | 0) after b and e, at x
     * 4 | 5. Visit order: root, other, a, other, e, b. */
    kiln_tree_t *l = kiln_tree_create(), *r = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    diff_example_trees(l, r);
    const int64_t *lv[] = {
        LV(0, 7, 0, 0, 7, 0, 0), LV(0, 5, 1, 0, 5, 0, 2, /**/ 0, 2, 2, 0, 2, 2, 1),
        LV(1, 3, 3, 0, 1, 1, 4, /**/ 0, 0, 0, 0, 4, 4, 3, /**/ 0, 1, 1, 0, 0, 0, 1)};
    size_t lens[] = {7, 14, 21};
    check_diff(kiln_tree_flamegraph_diff(l, r, 4, a), "total,other,a,e,b", 3, lv, lens, 7, 7, 4);
    /* max_nodes 7 = the union's size: nothing folds. */
    Querier__V1__FlameGraphDiff *d = kiln_tree_flamegraph_diff(l, r, 7, a);
    CHECK_EQ(d->n_names, 7);
    /* max_nodes 5: threshold 2 (the 5th largest); d and f tie with it and
     * stay, only c folds. */
    d = kiln_tree_flamegraph_diff(l, r, 5, a);
    CHECK_EQ(d->levels[1]->n_values, 21);
    CHECK_EQ(d->levels[2]->n_values, 21);
    CHECK_STR(d->names[4], "other");
    kiln_tree_destroy(l);
    kiln_tree_destroy(r);
    kiln_arena_destroy(a);
}

TEST(diff_empty_and_negative)
{
    kiln_tree_t *l = kiln_tree_create(), *r = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    const int64_t *lv[] = {LV(0, 0, 0, 0, 0, 0, 0)};
    size_t lens[] = {7};
    check_diff(kiln_tree_flamegraph_diff(l, r, 0, a), "total", 1, lv, lens, 0, 0, 0);
    /* One side empty: the other side's nodes, zeros opposite. A self value
     * on the root itself is not drawn (as in the single graph). */
    add_stack(r, "x", 5);
    kiln_tree_add_self(r, KILN_TREE_ROOT, 9);
    const int64_t *lv2[] = {LV(0, 0, 0, 0, 5, 0, 0), LV(0, 0, 0, 0, 5, 5, 1)};
    size_t lens2[] = {7, 7};
    check_diff(kiln_tree_flamegraph_diff(l, r, 0, a), "total,x", 2, lv2, lens2, 0, 5, 5);
    CHECK(!kiln_tree_has_negative(r));
    add_stack(l, "y", -1);
    CHECK(kiln_tree_has_negative(l));
    kiln_arena_t *small = kiln_arena_create(64);
    CHECK(kiln_tree_flamegraph_diff(r, r, 0, small) == NULL);
    kiln_arena_destroy(small);
    kiln_tree_destroy(l);
    kiln_tree_destroy(r);
    kiln_arena_destroy(a);
}

TEST(diff_names_by_string)
{
    /* A frame called "other" shares the fold's index; one called "total"
     * gets its own (only the root's "" is index 0). Names are shared across
     * sides by string. */
    kiln_tree_t *l = kiln_tree_create(), *r = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    add_stack(l, "total", 1);
    add_stack(l, "other", 10);
    add_stack(r, "other", 10);
    add_stack(r, "m", 1);
    add_stack(r, "n", 1);
    /* Union nodes by max(totalL, totalR): root 12, other 10, m, n and
     * total 1. max_nodes 2: threshold 10; m, n and total fold into one
     * "other" (1 | 2) that shares the frame's index. */
    Querier__V1__FlameGraphDiff *d = kiln_tree_flamegraph_diff(l, r, 2, a);
    const int64_t *lv[] = {LV(0, 11, 0, 0, 12, 0, 0),
                           LV(0, 10, 10, 0, 10, 10, 1, /**/ 0, 1, 1, 0, 2, 2, 1)};
    size_t lens[] = {7, 14};
    check_diff(d, "total,other", 2, lv, lens, 11, 12, 10);
    d = kiln_tree_flamegraph_diff(l, r, 0, a);
    CHECK_EQ(d->n_names, 5); /* total, total (the frame), other, n, m */
    CHECK_STR(d->names[1], "total");
    kiln_tree_destroy(l);
    kiln_tree_destroy(r);
    kiln_arena_destroy(a);
}

/* Checks one side (k = 0 left, 3 right) of a diff: x inside the parent's
 * children range, totals = self + children, level 1 summing to the ticks.
 * Returns the number of nodes with a non-zero total on that side. */
static size_t check_diff_side(const Querier__V1__FlameGraphDiff *d, size_t k)
{
    size_t count = 0, nprev = 1;
    int64_t *prev = malloc(3 * sizeof(int64_t)); /* x, total, self per node */
    prev[0] = 0, prev[1] = d->levels[0]->values[k + 1], prev[2] = 0;
    for (size_t l = 1; l < d->n_levels; l++) {
        const Querier__V1__Level *lv = d->levels[l];
        size_t n = lv->n_values / 7, p = 0;
        int64_t *cur = malloc(3 * (n ? n : 1) * sizeof(int64_t));
        int64_t *sum = calloc(nprev, sizeof(int64_t)), end = 0;
        CHECK_EQ(lv->n_values % 7, 0);
        for (size_t i = 0; i < n; i++) {
            const int64_t *q = &lv->values[7 * i + k];
            CHECK(q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && q[2] <= q[1]);
            CHECK(lv->values[7 * i + 6] >= 0 && (size_t)lv->values[7 * i + 6] < d->n_names);
            cur[3 * i] = end + q[0], cur[3 * i + 1] = q[1], cur[3 * i + 2] = q[2];
            end = cur[3 * i] + q[1];
            count += q[1] != 0;
            while (p < nprev &&
                   (prev[3 * p + 1] == 0 || cur[3 * i] >= prev[3 * p] + prev[3 * p + 1]))
                p++; /* a side's empty nodes parent nothing on that side */
            if (q[1] == 0)
                continue;
            CHECK(p < nprev);
            if (p < nprev) {
                CHECK(cur[3 * i] >= prev[3 * p] + prev[3 * p + 2]);
                CHECK(end <= prev[3 * p] + prev[3 * p + 1]);
                sum[p] += q[1];
            }
        }
        for (size_t i = 0; i < nprev; i++)
            CHECK_EQ(prev[3 * i + 1], prev[3 * i + 2] + sum[i]);
        free(sum);
        free(prev);
        prev = cur;
        nprev = n;
    }
    free(prev);
    return count;
}

TEST(diff_random_properties)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *l = random_tree(5000, 10), *r = random_tree(5000, 10);
    int64_t limits[] = {0, 1, 7, 300, 1000000};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        Querier__V1__FlameGraphDiff *d = kiln_tree_flamegraph_diff(l, r, limits[i], a);
        CHECK(d != NULL);
        if (d == NULL)
            continue;
        CHECK_EQ(d->leftticks, kiln_tree_total(l));
        CHECK_EQ(d->rightticks, kiln_tree_total(r));
        check_diff_side(d, 0);
        check_diff_side(d, 3);
        /* At most max_nodes union nodes (root included) besides the folds. */
        size_t kept = 1, n = limits[i] > 0 ? (size_t)limits[i] : 8192;
        for (size_t j = 1; j < d->n_levels; j++) {
            for (size_t k = 0; k < d->levels[j]->n_values; k += 7)
                kept += strcmp(d->names[d->levels[j]->values[k + 6]], "other") != 0;
        }
        CHECK(kept <= n);
        kiln_arena_reset(a);
    }
    /* Against an empty tree, untruncated, the left side is the single graph. */
    kiln_tree_t *e = kiln_tree_create();
    Querier__V1__FlameGraphDiff *d = kiln_tree_flamegraph_diff(l, e, 1000000, a);
    Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(l, 1000000, a);
    CHECK_EQ(d->n_levels, fg->n_levels);
    for (size_t i = 0; i < d->n_levels && i < fg->n_levels; i++) {
        size_t n = fg->levels[i]->n_values / 4;
        CHECK_EQ(d->levels[i]->n_values, 7 * n);
        for (size_t j = 0; j < n && 7 * j < d->levels[i]->n_values; j++) {
            const int64_t *x = &d->levels[i]->values[7 * j], *y = &fg->levels[i]->values[4 * j];
            CHECK(x[0] == y[0] && x[1] == y[1] && x[2] == y[2]);
            CHECK(x[3] == 0 && x[4] == 0 && x[5] == 0);
            CHECK_STR(d->names[x[6]], fg->names[y[3]]);
        }
    }
    /* A tree against itself: both sides agree everywhere. */
    d = kiln_tree_flamegraph_diff(l, l, 300, a);
    for (size_t i = 0; i < d->n_levels; i++) {
        for (size_t j = 0; j < d->levels[i]->n_values; j += 7)
            CHECK(memcmp(&d->levels[i]->values[j], &d->levels[i]->values[j + 3], 24) == 0);
    }
    kiln_tree_destroy(e);
    kiln_tree_destroy(l);
    kiln_tree_destroy(r);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(basic_example);
    RUN(x_delta_and_self);
    RUN(bytewise_order_and_empty_nodes);
    RUN(empty_tree);
    RUN(truncation);
    RUN(names_dedup_with_total_and_other);
    RUN(default_max_nodes);
    RUN(arena_cap);
    RUN(wire_roundtrip);
    RUN(wire_merge);
    RUN(wire_rejects_inconsistent);
    RUN(random_tree_properties);
    RUN(large_tree);
    RUN(diff_example);
    RUN(diff_truncation);
    RUN(marshal_tree_bytes);
    RUN(diff_empty_and_negative);
    RUN(diff_names_by_string);
    RUN(diff_random_properties);
    return check_done();
}
