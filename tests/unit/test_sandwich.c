/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the sandwich of a function in a call tree (sandwich.h):
 * callers and callees from every occurrence (recursion included), the
 * report's total counting each sample once, the node cut per half with a
 * truncated "other", and an absent function. */
#include <string.h>

#include "check.h"
#include "sandwich.h"
#include "tree.h"

/* Adds a stack (root first, n frames) with value v. */
static void add(kiln_tree_t *t, const char *const *frames, size_t n, int64_t v)
{
    uint32_t at = KILN_TREE_ROOT;
    for (size_t i = 0; i < n; i++)
        at = kiln_tree_child(t, at, frames[i], strlen(frames[i]));
    kiln_tree_add_self(t, at, v);
}

/* main;f;g 10, main;h;f 20, main;f;f;x 5, main;k 7 */
static kiln_tree_t *sample_tree(void)
{
    kiln_tree_t *t = kiln_tree_create();
    add(t, (const char *[]){"main", "f", "g"}, 3, 10);
    add(t, (const char *[]){"main", "h", "f"}, 3, 20);
    add(t, (const char *[]){"main", "f", "f", "x"}, 4, 5);
    add(t, (const char *[]){"main", "k"}, 2, 7);
    return t;
}

static const char *nm(const Querier__V1__SandwichReport *r, const Querier__V1__SandwichNode *n)
{
    return n->name_index >= 0 && (size_t)n->name_index < r->n_names ? r->names[n->name_index] : "?";
}

TEST(callers_and_callees)
{
    kiln_tree_t *t = sample_tree();
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SandwichReport *r = kiln_tree_sandwich(t, "f", 0, a);
    CHECK(r != NULL && r->callers != NULL && r->callees != NULL);
    if (r != NULL && r->callers != NULL && r->callees != NULL) {
        CHECK_EQ(r->total, 35); /* 15 + 20: the recursive occurrence once */
        CHECK_EQ(r->self, 20);
        const Querier__V1__SandwichNode *c = r->callers;
        CHECK(strcmp(nm(r, c), "f") == 0);
        CHECK_EQ(c->total, 40);
        CHECK_EQ(c->n_children, 3);
        if (c->n_children == 3) {
            CHECK(strcmp(nm(r, c->children[0]), "h") == 0);
            CHECK_EQ(c->children[0]->total, 20);
            CHECK_EQ(c->children[0]->self, 0);
            CHECK_EQ(c->children[0]->n_children, 1);
            CHECK(strcmp(nm(r, c->children[1]), "main") == 0);
            CHECK_EQ(c->children[1]->total, 15);
            CHECK_EQ(c->children[1]->n_children, 0);
            CHECK(strcmp(nm(r, c->children[2]), "f") == 0);
            CHECK_EQ(c->children[2]->total, 5);
        }
        const Querier__V1__SandwichNode *e = r->callees;
        CHECK(strcmp(nm(r, e), "f") == 0);
        CHECK_EQ(e->total, 40);
        CHECK_EQ(e->self, 20);
        CHECK_EQ(e->n_children, 3);
        if (e->n_children == 3) {
            CHECK(strcmp(nm(r, e->children[0]), "g") == 0);
            CHECK_EQ(e->children[0]->self, 10);
            CHECK(strcmp(nm(r, e->children[1]), "f") == 0); /* 5, before "x" by name */
            CHECK_EQ(e->children[1]->n_children, 1);
            CHECK(strcmp(nm(r, e->children[2]), "x") == 0);
            CHECK_EQ(e->children[2]->total, 5);
        }
        CHECK_EQ(r->n_names, 5); /* f h main g x: each once */
    }
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

TEST(each_half_is_cut_alone)
{
    kiln_tree_t *t = sample_tree();
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SandwichReport *r = kiln_tree_sandwich(t, "f", 2, a);
    CHECK(r != NULL && r->callees != NULL);
    if (r != NULL && r->callees != NULL) {
        const Querier__V1__SandwichNode *e = r->callees;
        CHECK_EQ(e->total, 40); /* the cut changes no total */
        CHECK_EQ(e->n_children, 2);
        if (e->n_children == 2) {
            CHECK(strcmp(nm(r, e->children[0]), "g") == 0);
            CHECK(strcmp(nm(r, e->children[1]), "other") == 0);
            CHECK(e->children[1]->truncated);
            CHECK_EQ(e->children[1]->total, 10);
            CHECK_EQ(e->children[1]->n_children, 0);
        }
        CHECK_EQ(r->callers->total, 40);
    }
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

TEST(absent_function)
{
    kiln_tree_t *t = sample_tree();
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SandwichReport *r = kiln_tree_sandwich(t, "nowhere", 0, a);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK_EQ(r->total, 0);
        CHECK(r->callers == NULL && r->callees == NULL);
        CHECK_EQ(r->n_names, 0);
    }
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

int main(void)
{
    RUN(callers_and_callees);
    RUN(each_half_is_cut_alone);
    RUN(absent_function);
    return check_done();
}
