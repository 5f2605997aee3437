/* SPDX-License-Identifier: Apache-2.0
 * bench_query: the query engine over a day of data. One service pushes a
 * real Go CPU profile every 10 s for 24 h (8,640 profiles, values varied);
 * the data is cut into 24 one-hour blocks in an object store and read back
 * the way -target=all serves it (ingester: head + blocks). Prints p50/p99 of
 * SelectMergeStacktraces-equivalent merges over 1 h and 24 h (merge + flame
 * graph rendering), the first (uncached: blocks just opened) 24 h merge, a
 * 24 h time series at a 60 s step, label values, and peak RSS: of the whole
 * run, and of the queries alone (the peak is reset after the day is written,
 * through /proc/self/clear_refs). Single-threaded. Not a test: it prints
 * figures. Usage: bench_query [testdata-dir] (default $KILN_TESTDATA). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"
#include "clock.h"
#include "gzip.h"
#include "db.h"
#include "objstore.h"
#include "selector.h"
#include "flamegraph.h"
#include "tree.h"
#include "peak_rss.h"
#include "head_append.h"

#define PROFILES 8640
#define STEP_NS 10000000000LL
#define HOUR_PROFILES 360

static double now_s(void)
{
    return (double)kiln_mono_ns() / 1e9;
}

static bool load(kiln_arena_t *a, const char *path, kiln_pprof_t *p)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    static unsigned char buf[8 << 20];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    const uint8_t *data;
    size_t dlen;
    if (kiln_gunzip_maybe(a, buf, len, 64 << 20, &data, &dlen, NULL) != KILN_OK)
        return false;
    uint8_t *copy = kiln_arena_alloc(a, dlen + 1);
    memcpy(copy, data, dlen);
    return kiln_pprof_decode(a, copy, dlen, p, NULL) == KILN_OK &&
           kiln_pprof_validate(p, NULL) == KILN_OK &&
           kiln_pprof_normalize(a, p, 0, NULL) == KILN_OK;
}

/* Varies values like successive profiles of one service: each sample
 * scaled by 0.5..1.5 in whole periods. */
static void vary(kiln_pprof_t *p, const int64_t *orig, unsigned *seed)
{
    for (size_t i = 0; i < p->n_values; i++) {
        int64_t v = orig[i];
        int64_t k = (int64_t)(rand_r(seed) % 11) + 5; /* 5..15 tenths */
        p->values[i] = v * k / 10;
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct timing {
    double p50, p99;
} timing;

static timing measure(kiln_db_t *db, const char *q, int64_t start, int64_t end, int runs,
                      int64_t *total)
{
    double *t = calloc((size_t)runs, sizeof(double));
    kiln_selector_t *sel;
    kiln_selector_parse(q, strlen(q), &sel, NULL);
    for (int i = 0; i < runs; i++) {
        double t0 = now_s();
        kiln_tree_t *tree = kiln_tree_create();
        kiln_read_filter f = {.sel = sel, .start_ms = start, .end_ms = end};
        kiln_read_visitor v = {.tree = tree};
        if (kiln_db_read(db, "bench", &f, &v, NULL) != KILN_OK)
            fprintf(stderr, "bench_query: read failed\n");
        kiln_arena_t *a = kiln_arena_create(0);
        kiln_tree_flamegraph(tree, 8192, a);
        *total = kiln_tree_total(tree);
        kiln_arena_destroy(a);
        kiln_tree_destroy(tree);
        t[i] = now_s() - t0;
    }
    kiln_selector_destroy(sel);
    qsort(t, (size_t)runs, sizeof(double), cmp_d);
    timing r = {t[runs / 2] * 1e3, t[(runs * 99) / 100] * 1e3};
    free(t);
    return r;
}

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    *(int64_t *)ctx += p->total;
}

static void on_series(void *ctx, const kiln_label_t *l, size_t n)
{
    (void)l, (void)n;
    (*(int *)ctx)++;
}

/* Cuts a block's index to its first section, as blocks written before the
 * per-series sums were (the reader then builds them from the chunks). */
static void drop_sums(kiln_objstore_t *s, const char *ulid)
{
    char name[128];
    snprintf(name, sizeof(name), "bench/blocks/%s/index", ulid);
    kiln_buf idx;
    kiln_buf_init(&idx, 0);
    if (kiln_objstore_get(s, name, &idx, NULL) != KILN_OK)
        abort();
    const uint8_t *h = (const uint8_t *)idx.ptr;
    size_t first =
        12 + ((size_t)h[4] | (size_t)h[5] << 8 | (size_t)h[6] << 16 | (size_t)h[7] << 24);
    if (first > idx.len || kiln_objstore_put(s, name, idx.ptr, first, NULL) != KILN_OK)
        abort();
    kiln_buf_free(&idx);
}

/* Writes the day as 24 one-hour blocks of tenant "bench" into dir/bucket
 * (without the per-series sums when no_sums). */
static int64_t write_day(const char *dir, kiln_pprof_t *p, int64_t t0, bool no_sums)
{
    char bucket[512];
    snprintf(bucket, sizeof(bucket), "%s/bucket", dir);
    kiln_objstore_t *s;
    if (kiln_objstore_open_fs(bucket, &s, NULL) != KILN_OK)
        abort();
    int64_t *orig = malloc(p->n_values * sizeof(int64_t));
    memcpy(orig, p->values, p->n_values * sizeof(int64_t));
    unsigned seed = 42;
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "checkout"}};
    size_t bytes = 0, samples = 0;
    for (int hour = 0; hour < 24; hour++) {
        kiln_head_t *h = kiln_head_create();
        for (int i = 0; i < HOUR_PROFILES; i++) {
            vary(p, orig, &seed);
            check_head_append(h, l, 2, p, t0 + (int64_t)(hour * HOUR_PROFILES + i) * STEP_NS, 0);
        }
        Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
        char ulid[KILN_ULID_LEN + 1];
        if (kiln_block_write(s, "bench", h, &meta, ulid, NULL) != KILN_OK)
            abort();
        if (no_sums)
            drop_sums(s, ulid);
        kiln_block_t *b;
        kiln_block_open(s, "bench", ulid, &b, NULL);
        bytes += kiln_block_meta(b)->stats->num_bytes;
        samples += kiln_block_meta(b)->stats->num_samples;
        kiln_block_close(b);
        kiln_head_destroy(h);
    }
    printf("day written: 24 blocks, %zu samples, %.1f MB on disk (%.2f bytes/sample)\n", samples,
           (double)bytes / 1e6, (double)bytes / (double)samples);
    free(orig);
    kiln_objstore_close(s);
    return t0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: bench_query [--no-sums] [testdata-dir]\n"
               "  writes a day of <testdata>/gdu/default.pgo pushed every 10 s (8,640 profiles)\n"
               "  as 24 one-hour blocks, then times merges over 1 h and 24 h (the first 24 h\n"
               "  merge separately: uncached), a 24 h series scan and label values, and prints\n"
               "  peak RSS (writing, and queries alone). Default testdata: $KILN_TESTDATA.\n"
               "  --no-sums: blocks without their per-series sums, as written before them.\n");
        return 0;
    }
    bool no_sums = argc > 1 && strcmp(argv[1], "--no-sums") == 0;
    if (no_sums)
        argc--, argv++;
    const char *td = getenv("KILN_TESTDATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/gdu/default.pgo",
             argc > 1 ? argv[1]
             : td     ? td
                      : KILN_TESTDATA_DEFAULT);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!load(a, path, &p)) {
        fprintf(stderr, "bench_query: cannot load %s\n", path);
        return 1;
    }
    char dir[] = "/tmp/kiln-bench-query-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    int64_t t0 = 1700000000000000000LL;
    write_day(dir, &p, t0, no_sums);
    kiln_db_config dc = {.path = dir};
    kiln_db_t *db;
    kiln_err err;
    if (kiln_db_open(&dc, &db, &err) != KILN_OK) {
        fprintf(stderr, "bench_query: %s\n", err.msg);
        return 1;
    }
    const char *q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"checkout\"}";
    int64_t s0 = t0 / 1000000, total;
    double written_peak = peak_rss_mb();
    bool reset = reset_peak_rss();
    timing first = measure(db, q, s0, s0 + 24 * 3600000LL, 1, &total);
    printf("SelectMergeStacktraces 24 h first query (uncached): %7.2f ms  total %lld\n", first.p50,
           (long long)total);
    timing h1 = measure(db, q, s0 + 12 * 3600000LL, s0 + 13 * 3600000LL - 1, 50, &total);
    printf("SelectMergeStacktraces 1 h  (360 profiles): p50 %7.2f ms  p99 %7.2f ms  total %lld\n",
           h1.p50, h1.p99, (long long)total);
    timing h1u =
        measure(db, q, s0 + 12 * 3600000LL + 1800000, s0 + 13 * 3600000LL + 1800000, 20, &total);
    printf("SelectMergeStacktraces 1 h  (straddling 2 blocks): p50 %7.2f ms  p99 %7.2f ms  total "
           "%lld\n",
           h1u.p50, h1u.p99, (long long)total);
    timing d1 = measure(db, q, s0, s0 + 24 * 3600000LL, 20, &total);
    printf("SelectMergeStacktraces 24 h (8640 profiles): p50 %7.2f ms  p99 %7.2f ms  total %lld\n",
           d1.p50, d1.p99, (long long)total);
    kiln_selector_t *sel;
    kiln_selector_parse(q, strlen(q), &sel, NULL);
    double ts0 = now_s();
    int64_t sum = 0;
    kiln_read_filter pf = {.sel = sel, .start_ms = s0, .end_ms = s0 + 24 * 3600000LL};
    kiln_read_visitor pv = {.profile = on_profile, .ctx = &sum};
    if (kiln_db_read(db, "bench", &pf, &pv, NULL) != KILN_OK)
        fprintf(stderr, "bench_query: read failed\n");
    printf("SelectSeries 24 h totals scan (1440 points at 60 s): %.2f ms\n", (now_s() - ts0) * 1e3);
    ts0 = now_s();
    int n_series = 0;
    kiln_read_filter sf = {0};
    kiln_read_visitor sv = {.series = on_series, .ctx = &n_series};
    if (kiln_db_read(db, "bench", &sf, &sv, NULL) != KILN_OK)
        fprintf(stderr, "bench_query: read failed\n");
    printf("LabelValues/Series scan: %.3f ms (%d series)\n", (now_s() - ts0) * 1e3, n_series);
    kiln_selector_destroy(sel);
    printf("peak RSS writing the day: %.1f MB\n", written_peak);
    if (reset)
        printf("peak query RSS: %.1f MB (VmHWM reset before the first query)\n", peak_rss_mb());
    kiln_db_close(db);
    kiln_arena_destroy(a);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
