/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: go_fix, on made-up names and on real Go profiles from the
 * shared test data (generic functions; CPU stacks cut at 64 frames and heap
 * stacks cut at 32, from Grafana production services). */
#include <string.h>

#include "arena.h"
#include "check.h"
#include "go_fix.h"
#include "profiles.h"

/* The function name of the root-most frame of sample i. */
static kiln_str_t root_name(const kiln_pprof_t *p, size_t i)
{
    const kiln_pprof_sample *s = &p->samples[i];
    const kiln_pprof_location *l = &p->locations[p->locs[s->loc_off + s->n_locs - 1]];
    const kiln_pprof_line *ln = &p->lines[l->line_off + l->n_lines - 1];
    return kiln_pprof_str(p, p->functions[ln->function].name);
}

typedef struct shape {
    int64_t total;       /* every value of every sample */
    uint32_t max_depth;  /* frames of the deepest stack */
    size_t rooted;       /* samples whose root is where a goroutine starts */
    size_t roots;        /* distinct root-most functions */
    size_t shaped_names; /* function names with "[go.shape." */
    size_t elided_names; /* function names with "[...]" */
} shape;

static bool is_goroutine_root(kiln_str_t f)
{
    return kiln_str_eq(f, "runtime.goexit") || kiln_str_eq(f, "runtime.main") ||
           kiln_str_eq(f, "runtime.mstart") || kiln_str_eq(f, "runtime.rt0_go");
}

static shape shape_of(const kiln_pprof_t *p)
{
    shape s;
    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < p->n_values; i++)
        s.total += p->values[i];
    for (size_t i = 0; i < p->n_samples; i++) {
        s.max_depth = p->samples[i].n_locs > s.max_depth ? p->samples[i].n_locs : s.max_depth;
        s.rooted += p->samples[i].n_locs > 0 && is_goroutine_root(root_name(p, i));
    }
    for (size_t i = 0; i < p->n_samples; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = root_name(p, j).ptr == root_name(p, i).ptr;
        s.roots += !seen;
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_str_t n = kiln_pprof_str(p, p->functions[i].name);
        s.shaped_names += memmem(n.ptr, n.len, "[go.shape.", 10) != NULL;
        s.elided_names += memmem(n.ptr, n.len, "[...]", 5) != NULL;
    }
    return s;
}

TEST(type_parameters_are_elided)
{
    static const char *const in[] = {"",
                                     "main.work",
                                     "a.F[go.shape.string]",
                                     "x[go.shape.int].foo[go.shape.string]",
                                     "a[go.shape.x]y",
                                     "a.F[go.shape.int",
                                     "a.G[int]"};
    static const char *const want[] = {"",        "main.work",        "a.F[...]", "x[...]",
                                       "a[...]y", "a.F[go.shape.int", "a.G[int]"};
    size_t n = sizeof(in) / sizeof(in[0]);
    kiln_str_t strs[sizeof(in) / sizeof(in[0])];
    for (size_t i = 0; i < n; i++)
        strs[i] = (kiln_str_t){in[i], strlen(in[i])};
    kiln_pprof_t p;
    memset(&p, 0, sizeof(p));
    p.strings = strs;
    p.n_strings = n;
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_go_fix(a, &p, NULL));
    for (size_t i = 0; i < n; i++)
        CHECK(kiln_str_eq(p.strings[i], want[i]));
    kiln_arena_destroy(a);
}

/* Loads rel, repairs it, and checks what may and must change. */
static void check_repair(const char *rel, uint32_t cut_at)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(check_load_profile(a, rel, &p));
    CHECK(kiln_go_profile_like(&p));
    shape before = shape_of(&p);
    CHECK_OK(kiln_go_fix(a, &p, NULL));
    shape after = shape_of(&p);
    printf("  %s: deepest stack %u -> %u frames; samples rooted at a goroutine start %zu -> %zu "
           "of %zu; distinct roots %zu -> %zu; generic names %zu -> %zu\n",
           rel, before.max_depth, after.max_depth, before.rooted, after.rooted, p.n_samples,
           before.roots, after.roots, before.shaped_names, after.shaped_names);
    CHECK_EQ(after.total, before.total);
    CHECK(before.max_depth <= cut_at);
    CHECK(after.max_depth > cut_at);
    CHECK(after.roots < before.roots); /* cut stacks rejoined their roots */
    CHECK(after.rooted >= before.rooted);
    CHECK_EQ(after.shaped_names, 0);
    CHECK(after.elided_names >= (before.shaped_names > 0));
    kiln_arena_destroy(a);
}

TEST(truncated_cpu_stacks_are_repaired)
{
    check_repair("grafana-pyroscope/cpu_go_truncated_1.pb.gz", 64);
}

TEST(truncated_heap_stacks_are_repaired)
{
    check_repair("grafana-pyroscope/heap_go_truncated_1.pb.gz", 32);
}

TEST(shallow_profiles_keep_their_stacks)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(check_load_profile(a, "gdu/default.pgo", &p));
    shape before = shape_of(&p);
    CHECK_OK(kiln_go_fix(a, &p, NULL));
    shape after = shape_of(&p);
    printf("  gdu/default.pgo: generic names %zu -> %zu (%zu elided)\n", before.shaped_names,
           after.shaped_names, after.elided_names);
    CHECK(before.shaped_names > 0);
    CHECK_EQ(after.shaped_names, 0);
    CHECK_EQ(after.max_depth, before.max_depth);
    CHECK_EQ(after.total, before.total);
    kiln_arena_destroy(a);
}

/* A made-up CPU profile, frames numbered from the root: y holds frames
 * 0..29; x, cut 6 frames above the root, holds 6..65; z holds 12..75. x's
 * root-most 16 frames sit 6 frames above y's root, z's 6 above x's: x gets
 * y's frames 5..0, and z, through x, y's frames 11..0. */
TEST(chained_stacks_get_exact_roots)
{
    static const uint32_t from[] = {29, 65, 75, 200}, to[] = {0, 6, 12, 190}; /* leaf, root */
    static const uint32_t want_root[] = {0, 0, 0, 190};
    kiln_str_t strs[] = {{"", 0}, {"cpu", 3}, {"nanoseconds", 11}};
    kiln_pprof_value_type type = {1, 2};
    kiln_pprof_sample samples[4];
    uint64_t locs[64 * 4];
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        samples[i] = (kiln_pprof_sample){(uint32_t)n, from[i] - to[i] + 1, 0, 0, 0, 0};
        for (uint32_t f = from[i] + 1; f-- > to[i];)
            locs[n++] = f;
    }
    kiln_pprof_t p;
    memset(&p, 0, sizeof(p));
    p.strings = strs, p.n_strings = 3;
    p.sample_types = &type, p.n_sample_types = 1;
    p.samples = samples, p.n_samples = 4;
    p.locs = locs, p.n_locs = n;
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_go_fix(a, &p, NULL));
    for (size_t i = 0; i < 4; i++) {
        const kiln_pprof_sample *s = &p.samples[i];
        CHECK_EQ(s->n_locs, from[i] - want_root[i] + 1);
        for (uint32_t j = 0; j < s->n_locs; j++)
            CHECK_EQ(p.locs[s->loc_off + j], from[i] - j);
    }
    kiln_arena_destroy(a);
}

/* Tables shared by a Go series and a C one: each is judged by its frames. */
TEST(shared_tables_are_judged_by_frames)
{
    static const char *const in[] = {"", "main.work", "main.go", "work", "work.c"};
    kiln_str_t strs[5];
    for (size_t i = 0; i < 5; i++)
        strs[i] = (kiln_str_t){in[i], strlen(in[i])};
    kiln_pprof_function fns[] = {{1, 1, 1, 2, 0}, {2, 3, 3, 4, 0}};
    kiln_pprof_line lines[] = {{0, 10, 0}, {1, 20, 0}, {KILN_PPROF_NONE, 0, 0}};
    kiln_pprof_location locs[] = {{.id = 1, .line_off = 0, .n_lines = 1},
                                  {.id = 2, .line_off = 1, .n_lines = 1},
                                  {.id = 3, .address = 0x10, .line_off = 2, .n_lines = 1}};
    uint64_t go_stack[] = {2, 0}, c_stack[] = {2, 1};
    kiln_pprof_sample go_sample = {.loc_off = 0, .n_locs = 2};
    kiln_pprof_sample c_sample = {.loc_off = 0, .n_locs = 1};
    kiln_pprof_t p;
    memset(&p, 0, sizeof(p));
    p.strings = strs, p.n_strings = 5;
    p.functions = fns, p.n_functions = 2;
    p.lines = lines, p.n_lines = 3;
    p.locations = locs, p.n_locations = 3;
    bool go_loc[3];
    CHECK_EQ(kiln_go_locations(&p, go_loc), 1);
    CHECK(go_loc[0] && !go_loc[1] && !go_loc[2]);
    CHECK(kiln_go_profile_like(&p)); /* the tables hold a Go function */
    p.samples = &c_sample, p.n_samples = 1, p.locs = c_stack, p.n_locs = 2;
    CHECK(!kiln_go_samples_like(&p, go_loc)); /* the C series' frames are not Go's */
    p.samples = &go_sample, p.locs = go_stack;
    CHECK(kiln_go_samples_like(&p, go_loc));
}

int main(void)
{
    RUN(type_parameters_are_elided);
    RUN(truncated_cpu_stacks_are_repaired);
    RUN(truncated_heap_stacks_are_repaired);
    RUN(shallow_profiles_keep_their_stacks);
    RUN(chained_stacks_get_exact_roots);
    RUN(shared_tables_are_judged_by_frames);
    return check_done();
}
