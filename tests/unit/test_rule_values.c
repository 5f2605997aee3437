/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for rule_values: the whole profile, function totals and self
 * values over inlined frames, recursion and a frameless sample, and more
 * filters than one pass holds. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "rule_values.h"

/* Functions main, work, inl, leaf; locations work, inl inlined into work
 * (innermost first), main, leaf. Samples, leaf first, two values each:
 * [inl+work, main] 10 1; [work, main] 5 2; [leaf, work, work, main] 7 3
 * (recursion); [] 100 4 (frameless). */
static kiln_str_t g_strings[] = {{"", 0}, {"main", 4}, {"work", 4}, {"inl", 3}, {"leaf", 4}};
static kiln_pprof_function g_functions[] = {
    {1, 1, 0, 0, 0}, {2, 2, 0, 0, 0}, {3, 3, 0, 0, 0}, {4, 4, 0, 0, 0}};
static kiln_pprof_line g_lines[] = {{1, 0, 0}, {2, 0, 0}, {1, 0, 0}, {0, 0, 0}, {3, 0, 0}};
static kiln_pprof_location g_locations[] = {
    {1, 0, 0, 0, 1, false}, {2, 0, 0, 1, 2, false}, {3, 0, 0, 3, 1, false}, {4, 0, 0, 4, 1, false}};
static uint64_t g_locs[] = {1, 2, 0, 2, 3, 0, 0, 2};
static int64_t g_values[] = {10, 1, 5, 2, 7, 3, 100, 4};
static kiln_pprof_sample g_samples[] = {
    {0, 2, 0, 2, 0, 0}, {2, 2, 2, 2, 0, 0}, {4, 4, 4, 2, 0, 0}, {8, 0, 6, 2, 0, 0}};
static kiln_pprof_value_type g_types[2];

static kiln_pprof_t profile(void)
{
    return (kiln_pprof_t){.sample_types = g_types,
                          .n_sample_types = 2,
                          .samples = g_samples,
                          .n_samples = 4,
                          .locs = g_locs,
                          .n_locs = 8,
                          .values = g_values,
                          .n_values = 8,
                          .locations = g_locations,
                          .n_locations = 4,
                          .lines = g_lines,
                          .n_lines = 5,
                          .functions = g_functions,
                          .n_functions = 4,
                          .strings = g_strings,
                          .n_strings = 5};
}

static void check_values(const kiln_rule_values *rv, size_t i, double v0, double v1)
{
    const double *v = kiln_rule_values_get(rv, i);
    CHECK_EQ(v[0], v0);
    CHECK_EQ(v[1], v1);
}

TEST(filters)
{
    kiln_pprof_t p = profile();
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_rule_values *rv = kiln_rule_values_create(&p, a);
    size_t all = kiln_rule_values_want(rv, NULL, false);
    size_t work = kiln_rule_values_want(rv, "work", false);
    size_t work_self = kiln_rule_values_want(rv, "work", true);
    size_t inl_self = kiln_rule_values_want(rv, "inl", true);
    size_t main_total = kiln_rule_values_want(rv, "main", false);
    size_t nope = kiln_rule_values_want(rv, "nope", false);
    CHECK_EQ(kiln_rule_values_want(rv, "work", false), work); /* asked twice, one filter */
    CHECK_EQ(kiln_rule_values_want(rv, NULL, true), all);
    kiln_rule_values_compute(rv);
    check_values(rv, all, 122, 10);
    check_values(rv, work, 22, 6); /* inlined and recursive frames, each sample once */
    check_values(rv, work_self, 5, 2);
    check_values(rv, inl_self, 10, 1);
    check_values(rv, main_total, 22, 6);
    check_values(rv, nope, 0, 0);
    kiln_arena_destroy(a);
}

/* 70 filters take two passes; the ones past the first pass count too. */
TEST(more_filters_than_a_pass)
{
    kiln_pprof_t p = profile();
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_rule_values *rv = kiln_rule_values_create(&p, a);
    char names[70][8];
    for (size_t i = 0; i < 68; i++) {
        snprintf(names[i], sizeof(names[i]), "f%zu", i);
        CHECK_EQ(kiln_rule_values_want(rv, names[i], i % 2), i);
    }
    size_t leaf_self = kiln_rule_values_want(rv, "leaf", true);
    size_t work = kiln_rule_values_want(rv, "work", false);
    kiln_rule_values_compute(rv);
    check_values(rv, leaf_self, 7, 3);
    check_values(rv, work, 22, 6);
    check_values(rv, 3, 0, 0);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(filters);
    RUN(more_filters_than_a_pass);
    return check_done();
}
