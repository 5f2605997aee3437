/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for functions: the function table of small hand-worked trees
 * (recursion counted once, the row limit, the order) and the joined diff
 * table. */
#include <string.h>

#include "arena.h"
#include "check.h"
#include "functions.h"
#include "tree.h"

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

/* Checks row i is name, self, total. */
static void check_row(const Querier__V1__FunctionTable *ft, size_t i, const char *name,
                      int64_t self, int64_t total)
{
    CHECK(i < ft->n_functions);
    if (i >= ft->n_functions)
        return;
    CHECK_STR(ft->functions[i]->name, name);
    CHECK_EQ(ft->functions[i]->self, self);
    CHECK_EQ(ft->functions[i]->total, total);
}

TEST(self_total_and_recursion)
{
    /* main;f;f;g 3, main;f 2, main;g 1, h 4: f recurses, and its total is
     * the outer f's 5 (not 5 + 3); g is 3 + 1 wherever it is. */
    kiln_tree_t *t = kiln_tree_create();
    add_stack(t, "main;f;f;g", 3);
    add_stack(t, "main;f", 2);
    add_stack(t, "main;g", 1);
    add_stack(t, "h", 4);
    kiln_arena_t *a = kiln_arena_create(1 << 20);
    Querier__V1__FunctionTable *ft = kiln_tree_functions(t, 0, a);
    CHECK(ft != NULL);
    if (ft != NULL) {
        CHECK_EQ(ft->total, 10);
        CHECK_EQ(ft->n_functions, 4);
        check_row(ft, 0, "main", 0, 6);
        check_row(ft, 1, "f", 2, 5);
        check_row(ft, 2, "g", 4, 4);
        check_row(ft, 3, "h", 4, 4);
    }
    /* The limit keeps the top rows; the total stays the whole tree's. */
    ft = kiln_tree_functions(t, 2, a);
    CHECK(ft != NULL);
    if (ft != NULL) {
        CHECK_EQ(ft->total, 10);
        CHECK_EQ(ft->n_functions, 2);
        check_row(ft, 1, "f", 2, 5);
    }
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

TEST(empty_tree)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(1 << 16);
    Querier__V1__FunctionTable *ft = kiln_tree_functions(t, 0, a);
    CHECK(ft != NULL);
    if (ft != NULL) {
        CHECK_EQ(ft->total, 0);
        CHECK_EQ(ft->n_functions, 0);
    }
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

TEST(diff_join)
{
    /* left: a;b 3, c 1; right: a;b 1, d 5. */
    kiln_tree_t *l = kiln_tree_create(), *r = kiln_tree_create();
    add_stack(l, "a;b", 3);
    add_stack(l, "c", 1);
    add_stack(r, "a;b", 1);
    add_stack(r, "d", 5);
    kiln_arena_t *a = kiln_arena_create(1 << 20);
    Querier__V1__FunctionTableDiff *d = kiln_tree_functions_diff(l, r, 0, a);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_EQ(d->left_total, 4);
        CHECK_EQ(d->right_total, 6);
        CHECK_EQ(d->n_functions, 4);
        /* Order by max(left, right) total: d 5, a 3, b 3, c 1. */
        const char *want[] = {"d", "a", "b", "c"};
        for (size_t i = 0; i < 4 && i < d->n_functions; i++)
            CHECK_STR(d->functions[i]->name, want[i]);
        if (d->n_functions == 4) {
            CHECK_EQ(d->functions[0]->left_total, 0);
            CHECK_EQ(d->functions[0]->right_self, 5);
            CHECK_EQ(d->functions[2]->left_self, 3);
            CHECK_EQ(d->functions[2]->right_self, 1);
            CHECK_EQ(d->functions[3]->right_total, 0);
        }
    }
    d = kiln_tree_functions_diff(l, r, 1, a);
    CHECK(d != NULL && d->n_functions == 1);
    kiln_arena_destroy(a);
    kiln_tree_destroy(r);
    kiln_tree_destroy(l);
}

TEST(arena_cap)
{
    kiln_tree_t *t = kiln_tree_create();
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "fn%d", i);
        add_stack(t, name, 1);
    }
    kiln_arena_t *a = kiln_arena_create(1024);
    CHECK(kiln_tree_functions(t, 0, a) == NULL);
    CHECK(kiln_tree_functions_diff(t, t, 0, a) == NULL);
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

int main(void)
{
    RUN(self_total_and_recursion);
    RUN(empty_tree);
    RUN(diff_join);
    RUN(arena_cap);
    return check_done();
}
