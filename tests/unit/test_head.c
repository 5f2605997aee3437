/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the head stores one series per sample type with Pyroscope's
 * labels, de-duplicates stacks, and merges matching profiles into trees. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "head_read.h"
#include "profiles.h"
#include "gzip.h"
#include "head.h"
#include "selector.h"

static int64_t type_sum(const kiln_pprof_t *p, size_t t)
{
    int64_t s = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        s += p->values[p->samples[i].value_off + t];
    return s;
}

typedef struct seen {
    int n;
    char type[256];
} seen;

static void on_series(void *ctx, const kiln_label_t *l, size_t n)
{
    seen *s = ctx;
    s->n++;
    const char *t = kiln_labels_get(l, n, "__profile_type__");
    if (t != NULL)
        snprintf(s->type, sizeof(s->type), "%s", t);
    CHECK_STR(kiln_labels_get(l, n, "__service_name__"), "api");
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(l[i - 1].name, l[i].name) < 0);
}

TEST(append_and_query)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"env", "prod"}, {"service_name", "api"}};
    check_head_append(h, l, 3, &p, 0, 0);
    kiln_head_stats_t st;
    kiln_head_stats(h, &st);
    CHECK_EQ(st.series, 2); /* samples/count and cpu/nanoseconds */
    CHECK_EQ(st.profiles, 2);
    size_t nodes = st.stack_nodes;
    check_head_append(h, l, 3, &p, 0, 0); /* same stacks again */
    kiln_head_stats(h, &st);
    CHECK_EQ(st.stack_nodes, nodes);
    CHECK_EQ(st.profiles, 4);

    seen s = {0, ""};
    kiln_selector_t *sel;
    CHECK_OK(kiln_selector_parse("{env=\"prod\"}", 12, &sel, NULL));
    CHECK_OK(kiln_selector_add(sel, "__profile_type__", KILN_MATCH_EQ,
                               "process_cpu:cpu:nanoseconds:cpu:nanoseconds", NULL));
    check_head_series(h, sel, 0, 0, on_series, &s);
    kiln_selector_destroy(sel);
    CHECK_EQ(s.n, 1);
    CHECK_STR(s.type, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");

    CHECK_EQ(
        check_head_total(h, "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"api\"}"),
        2 * type_sum(&p, 1));
    CHECK_EQ(check_head_total(h, "process_cpu:samples:count:cpu:nanoseconds{}"),
             2 * type_sum(&p, 0));
    CHECK_EQ(check_head_total(h, "process_cpu:cpu:nanoseconds:cpu:nanoseconds{env=\"dev\"}"), 0);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

TEST(time_range)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        kiln_arena_destroy(a);
        return;
    }
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    check_head_append(h, l, 2, &p, 1000000000000000000LL, 0); /* t = 1e9 s */
    kiln_selector_t *sel;
    CHECK_OK(kiln_selector_parse("{}", 2, &sel, NULL));
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge(h, sel, 1000000000001LL, 0, t); /* starts 1 ms later */
    CHECK_EQ(kiln_tree_total(t), 0);
    check_head_merge(h, sel, 999999999000LL, 1000000000000LL, t);
    CHECK(kiln_tree_total(t) > 0);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

typedef struct keys {
    uint64_t k[16];
    uint64_t id[16];
    size_t n;
} keys;

static void on_profile_id(void *ctx, const kiln_read_profile *p)
{
    keys *k = ctx;
    if (k->n < 16) {
        k->id[k->n] = p->id;
        k->k[k->n++] = kiln_profile_key(p->labels, p->n_labels, p->time_ms, p->id);
    }
}

static void count_one(void *ctx, const kiln_label_t *l, size_t n)
{
    (void)l, (void)n;
    ++*(size_t *)ctx;
}

/* A read under f into a tree: its total. */
static int64_t filtered_total(kiln_head_t *h, const kiln_read_filter *f)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_visitor v = {.tree = t};
    CHECK_OK(kiln_head_read(h, f, &v, NULL));
    int64_t total = kiln_tree_total(t);
    kiln_tree_destroy(t);
    return total;
}

/* Three replicas-to-be of one push (same time, ids 1..3): a key filter
 * keeps exactly the profiles named, an empty key set none. */
TEST(key_filter)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    for (uint64_t id = 1; id <= 3; id++)
        check_head_append(h, l, 2, &p, 1700000000000000000LL, id);
    const char *q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}";
    kiln_selector_t *sel;
    CHECK_OK(kiln_selector_parse(q, strlen(q), &sel, NULL));
    keys k = {{0}, {0}, 0};
    check_head_profiles(h, sel, 0, 0, on_profile_id, &k);
    CHECK_EQ(k.n, 3);
    CHECK(k.k[0] != k.k[1] && k.k[1] != k.k[2] && k.k[0] != k.k[2]);
    int64_t one = type_sum(&p, 1);
    uint64_t only = k.k[1];
    kiln_read_filter f = {.sel = sel, .keys = &only, .n_keys = 1};
    CHECK_EQ(filtered_total(h, &f), one);
    /* the same filter applies to profile and series reads */
    keys kept = {{0}, {0}, 0};
    kiln_read_visitor pv = {.profile = on_profile_id, .ctx = &kept};
    CHECK_OK(kiln_head_read(h, &f, &pv, NULL));
    CHECK_EQ(kept.n, 1);
    CHECK_EQ(kept.k[0], only);
    f.n_keys = 0; /* keys set, none in it */
    CHECK_EQ(filtered_total(h, &f), 0);
    size_t series = 0;
    kiln_read_visitor sv = {.series = count_one, .ctx = &series};
    CHECK_OK(kiln_head_read(h, &f, &sv, NULL));
    CHECK_EQ(series, 0);
    f.keys = NULL;
    CHECK_EQ(filtered_total(h, &f), 3 * one);
    CHECK_OK(kiln_head_read(h, &f, &sv, NULL));
    CHECK_EQ(series, 1);
    kiln_selector_destroy(sel);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* Stats that must match between two heads holding the same data. */
static void check_same_stats(kiln_head_t *x, kiln_head_t *y)
{
    kiln_head_stats_t a, b;
    kiln_head_stats(x, &a);
    kiln_head_stats(y, &b);
    CHECK_EQ(a.series, b.series);
    CHECK_EQ(a.profiles, b.profiles);
    CHECK_EQ(a.samples, b.samples);
    CHECK_EQ(a.stack_nodes, b.stack_nodes);
    CHECK_EQ(a.locations, b.locations);
    CHECK_EQ(a.strings, b.strings);
}

/* A push split in two parts sharing its symbols (as the label split makes
 * them), appended as one batch, stores what two single appends store; the
 * second round hits the stack cache and adds no node. */
TEST(batch_matches_single)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "gdu/default.pgo", &p)) {
        CHECK(!"gdu/default.pgo missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_pprof_t half[2] = {p, p};
    half[0].n_samples = p.n_samples / 2;
    half[1].samples = p.samples + half[0].n_samples;
    half[1].n_samples = p.n_samples - half[0].n_samples;
    half[0].time_nanos = half[1].time_nanos = 1700000000000000000LL;
    kiln_label_t l0[] = {{"__name__", "process_cpu"}, {"pod", "a"}, {"service_name", "api"}};
    kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"pod", "b"}, {"service_name", "api"}};
    kiln_head_part parts[2] = {{l0, 3, &half[0], 7}, {l1, 3, &half[1], 7}};
    kiln_head_t *single = kiln_head_create(), *batched = kiln_head_create();
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++)
            check_head_append(single, parts[i].labels, 3, parts[i].profile, half[i].time_nanos, 7);
        kiln_head_append_batch(batched, parts, 2);
    }
    check_same_stats(single, batched);
    const char *q[] = {"process_cpu:cpu:nanoseconds:cpu:nanoseconds{pod=\"a\"}",
                       "process_cpu:cpu:nanoseconds:cpu:nanoseconds{pod=\"b\"}",
                       "process_cpu:samples:count:cpu:nanoseconds{}"};
    for (size_t i = 0; i < 3; i++)
        CHECK(check_head_total(batched, q[i]) > 0 &&
              check_head_total(batched, q[i]) == check_head_total(single, q[i]));
    kiln_head_destroy(single);
    kiln_head_destroy(batched);
    kiln_arena_destroy(a);
}

/* kiln_head_series_keys keeps the type labels' values from one part to the
 * next: parts that share a profile type and __name__ get the same values as
 * keyed alone, and a part whose type or name differs gets its own. */
TEST(series_keys_carry_types_only_when_equal)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_label_t l0[] = {{"__name__", "process_cpu"}, {"pod", "a"}, {"service_name", "api"}};
    kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"pod", "b"}, {"service_name", "web"}};
    kiln_label_t l2[] = {{"__name__", "wall"}, {"pod", "b"}, {"service_name", "web"}};
    kiln_pprof_t q = p; /* the same strings, its sample types swapped */
    kiln_pprof_value_type swapped[2] = {p.sample_types[1], p.sample_types[0]};
    q.sample_types = swapped;
    kiln_head_part parts[4] = {{l0, 3, &p, 1}, {l1, 3, &p, 2}, {l2, 3, &p, 3}, {l1, 3, &q, 4}};
    const kiln_head_series_key **all = kiln_head_series_keys(parts, 4, a);
    for (size_t i = 0; i < 4; i++) {
        const kiln_head_series_key **alone = kiln_head_series_keys(&parts[i], 1, a);
        for (size_t t = 0; t < p.n_sample_types; t++) {
            const kiln_head_series_key *k = &all[i][t], *want = &alone[0][t];
            CHECK_EQ(k->fp, want->fp);
            CHECK_EQ(k->n_labels, want->n_labels);
            for (size_t j = 0; j < k->n_labels && j < want->n_labels; j++) {
                CHECK_STR(k->labels[j].name, want->labels[j].name);
                CHECK_STR(k->labels[j].value, want->labels[j].value);
            }
        }
    }
    CHECK_STR(kiln_labels_get(all[2][0].labels, all[2][0].n_labels, "__profile_type__"),
              "wall:samples:count:cpu:nanoseconds");
    CHECK_STR(kiln_labels_get(all[3][0].labels, all[3][0].n_labels, "__type__"), "cpu");
    CHECK_STR(kiln_labels_get(all[1][0].labels, all[1][0].n_labels, "__service_name__"), "web");
    kiln_arena_destroy(a);
}

/* Bytes in use on the heap (malloc's count, mmapped blocks included). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_COUNTED 0 /* the sanitizers' allocators do not fill mallinfo */
#else
#define HEAP_COUNTED 1
#endif

/* kiln_head_stats_t.bytes counts what a head allocates: an append returns
 * exactly what it added, the sample columns are in it, and it is within a
 * few percent of what malloc holds for the head (one profile, then 2,000
 * series that differ in one label: their index, postings and lists). */
TEST(bytes_count_what_the_head_holds)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    size_t heap0 = heap_in_use();
    kiln_head_t *h = kiln_head_create();
    kiln_head_stats_t st;
    kiln_head_stats(h, &st);
    size_t empty = st.bytes;
    CHECK(empty > 0 && empty < 4096);
    char pod[32] = "pod-0";
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"pod", pod}, {"service_name", "api"}};
    kiln_pprof_t at = p;
    at.time_nanos = 1000000000000000000LL;
    kiln_head_part part = {l, 3, &at, 0};
    size_t grown = kiln_head_append_batch(h, &part, 1);
    kiln_head_stats(h, &st);
    CHECK_EQ(st.bytes - empty, grown);
    CHECK(st.bytes >= st.samples * (sizeof(uint32_t) + sizeof(int64_t)));
    for (int i = 1; i <= 2000; i++) {
        snprintf(pod, sizeof(pod), "pod-%d", i);
        grown += kiln_head_append_batch(h, &part, 1);
    }
    kiln_head_stats(h, &st);
    CHECK_EQ(st.series, 2 * 2001);
    CHECK_EQ(st.bytes - empty, grown);
    double heap = (double)(heap_in_use() - heap0);
    printf("  %zu series, %zu samples: %zu bytes counted, %.0f on the heap (%.3f)\n", st.series,
           st.samples, st.bytes, heap, st.bytes / heap);
    if (HEAP_COUNTED) {
        CHECK(st.bytes >= 0.95 * heap);
        CHECK(st.bytes <= 1.10 * heap);
    }
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* Symbols are known by their hashes alone (no byte comparison): locations
 * that differ in one field only (mapping, address, function, line) and
 * functions that differ in one field only (start line, one byte of the
 * name) stay apart, and an identical one is the same symbol. */
TEST(symbols_that_differ_in_one_field_stay_apart)
{
    static const char *const str[] = {"",  "cpu",  "nanoseconds", "a.so", "b.so",
                                      "f", "x.go", "ab",          "ac"};
    kiln_str_t strings[9];
    for (size_t i = 0; i < 9; i++)
        strings[i] = (kiln_str_t){str[i], strlen(str[i])};
    kiln_pprof_value_type type = {1, 2};
    kiln_pprof_mapping maps[] = {{.id = 1, .filename = 3}, {.id = 2, .filename = 4}};
    kiln_pprof_function funcs[] = {
        {1, 5, 5, 6, 1}, {2, 5, 5, 6, 2}, {3, 7, 7, 6, 1}, {4, 8, 8, 6, 1}};
    /* location i + 1 has line i; the last repeats the first. */
    kiln_pprof_line lines[] = {{1, 10, 0}, {1, 10, 0}, {1, 10, 0}, {2, 10, 0},
                               {1, 11, 0}, {3, 10, 0}, {4, 10, 0}, {1, 10, 0}};
    const uint64_t mapping[] = {1, 2, 1, 1, 1, 1, 1, 1};
    const uint64_t address[] = {0x10, 0x10, 0x20, 0x10, 0x10, 0x10, 0x10, 0x10};
    kiln_pprof_location locs[8];
    kiln_pprof_sample samples[8];
    uint64_t stack[8];
    int64_t values[8];
    for (uint32_t i = 0; i < 8; i++) {
        locs[i] = (kiln_pprof_location){i + 1, mapping[i], address[i], i, 1, false};
        stack[i] = i + 1;
        values[i] = 1;
        samples[i] = (kiln_pprof_sample){i, 1, i, 1, 0, 0};
    }
    kiln_pprof_t p = {.sample_types = &type,
                      .n_sample_types = 1,
                      .samples = samples,
                      .n_samples = 8,
                      .locs = stack,
                      .n_locs = 8,
                      .values = values,
                      .n_values = 8,
                      .mappings = maps,
                      .n_mappings = 2,
                      .locations = locs,
                      .n_locations = 8,
                      .lines = lines,
                      .n_lines = 8,
                      .functions = funcs,
                      .n_functions = 4,
                      .strings = strings,
                      .n_strings = 9,
                      .period_type = type,
                      .period = 1,
                      .time_nanos = 1700000000000000000LL};
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_pprof_validate(&p, NULL));
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, NULL));
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    kiln_head_stats_t st, again;
    check_head_append(h, l, 2, &p, p.time_nanos, 0);
    kiln_head_stats(h, &st);
    CHECK_EQ(st.locations, 7);
    check_head_append(h, l, 2, &p, p.time_nanos, 0);
    kiln_head_stats(h, &again);
    CHECK_EQ(again.locations, 7);
    CHECK_EQ(again.stack_nodes, st.stack_nodes);
    CHECK_EQ(again.strings, st.strings);
    CHECK_EQ(check_head_total(h, "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}"), 16);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(key_filter);
    RUN(append_and_query);
    RUN(time_range);
    RUN(batch_matches_single);
    RUN(series_keys_carry_types_only_when_equal);
    RUN(bytes_count_what_the_head_holds);
    RUN(symbols_that_differ_in_one_field_stay_apart);
    return check_done();
}
