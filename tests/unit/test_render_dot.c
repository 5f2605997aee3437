/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the Graphviz dot call graph (/pyroscope/render?format=dot,
 * SelectMergeStacktraces format DOT) counts a function's cum once per
 * stack however often it recurses, and its flat over every call: a small
 * graph with recursion and a function under two callers, and a chain of
 * 400k frames. Finding recursion walked each node's ancestors up to the
 * root (or the first of its name), O(nodes x depth): minutes for that
 * chain, past this test's 120 s ctest timeout; one depth-first pass now. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "querier_int.h"

#define TYPE "process_cpu:samples:count:cpu:nanoseconds"

/* A flame graph of levels, each given as its nodes' (total, self, name)
 * triples laid out left to right without gaps (x offsets 0). */
static Querier__V1__FlameGraph *graph(kiln_arena_t *a, char **names, size_t n_names,
                                      size_t n_levels)
{
    Querier__V1__FlameGraph *fg = kiln_arena_alloc(a, sizeof(*fg));
    querier__v1__flame_graph__init(fg);
    fg->names = names;
    fg->n_names = n_names;
    fg->levels = kiln_arena_calloc(a, n_levels, sizeof(*fg->levels));
    fg->n_levels = n_levels;
    return fg;
}

static void level(kiln_arena_t *a, Querier__V1__FlameGraph *fg, size_t i, const int64_t *tsn,
                  size_t n)
{
    Querier__V1__Level *l = kiln_arena_alloc(a, sizeof(*l));
    querier__v1__level__init(l);
    l->values = kiln_arena_calloc(a, 4 * n, sizeof(int64_t));
    l->n_values = 4 * n;
    for (size_t k = 0; k < n; k++) {
        l->values[4 * k + 1] = tsn[3 * k];
        l->values[4 * k + 2] = tsn[3 * k + 1];
        l->values[4 * k + 3] = tsn[3 * k + 2];
    }
    fg->levels[i] = l;
}

static bool has(const kiln_buf *b, const char *s)
{
    return memmem(b->ptr, b->len, s, strlen(s)) != NULL;
}

/* root -> a -> b -> a (self 5), root -> a -> c (self 3), root -> c (self 2). */
TEST(recursion_counts_once)
{
    kiln_arena_t *a = kiln_arena_create(0);
    char *names[] = {"total", "a", "b", "c"};
    Querier__V1__FlameGraph *fg = graph(a, names, 4, 4);
    fg->total = 10;
    level(a, fg, 0, (int64_t[]){10, 0, 0}, 1);
    level(a, fg, 1, (int64_t[]){8, 0, 1, 2, 2, 3}, 2);
    level(a, fg, 2, (int64_t[]){5, 0, 2, 3, 3, 3}, 2);
    level(a, fg, 3, (int64_t[]){5, 5, 1}, 1);
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_querier__dot(fg, TYPE, a, &out);
    CHECK(has(&out, "a\\n5 (50.00%)\\nof 8 (80.00%)"));
    CHECK(has(&out, "b\\n0 (0.00%)\\nof 5 (50.00%)"));
    CHECK(has(&out, "c\\n5 (50.00%)\\nof 5 (50.00%)"));
    if (check_cur_failed)
        printf("%.*s\n", (int)out.len, out.ptr);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
}

/* root -> f1 -> f2 -> ... -> f400000, self 1000 at the leaf: no recursion,
 * so the old search walked every node's ancestors up to the root. */
TEST(deep_chain)
{
    enum { DEPTH = 400000 };
    kiln_arena_t *a = kiln_arena_create(0);
    char **names = kiln_arena_alloc(a, (DEPTH + 1) * sizeof(*names));
    names[0] = "total";
    for (size_t i = 1; i <= DEPTH; i++)
        names[i] = kiln_arena_printf(a, "f%zu", i);
    Querier__V1__FlameGraph *fg = graph(a, names, DEPTH + 1, DEPTH + 1);
    fg->total = 1000;
    level(a, fg, 0, (int64_t[]){1000, 0, 0}, 1);
    for (size_t i = 1; i <= DEPTH; i++)
        level(a, fg, i, (int64_t[]){1000, i == DEPTH ? 1000 : 0, (int64_t)i}, 1);
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_querier__dot(fg, TYPE, a, &out);
    CHECK(has(&out, "\"f1\\n0 (0.00%)\\nof 1000 (100.00%)"));
    CHECK(has(&out, "\"f200000\\n0 (0.00%)\\nof 1000 (100.00%)"));
    CHECK(has(&out, "\"f400000\\n1000 (100.00%)\\nof 1000 (100.00%)"));
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(recursion_counts_once);
    RUN(deep_chain);
    return check_done();
}
