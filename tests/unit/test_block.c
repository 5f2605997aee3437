/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: a head written as a block reads back the same, corruption is
 * detected, and merging blocks (compaction) drops replicas. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "cancel.h"
#include "check.h"
#include "head_read.h"
#include "profiles.h"
#include "gzip.h"
#include "selector.h"
#include "flamegraph.h"
#include "tree.h"

static const char *Q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"api\"}";
static const char *QH = "memory:inuse_space:bytes:space:bytes{}";

/* A head with a Go CPU profile pushed 3 times (different times) and a heap profile. */
static kiln_head_t *sample_head(kiln_arena_t *a)
{
    kiln_pprof_t cpu, heap;
    if (!check_load_profile(a, "gdu/default.pgo", &cpu) ||
        !check_load_profile(a, "grafana-pyroscope/heap", &heap))
        return NULL;
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    kiln_label_t m[] = {{"__name__", "memory"}, {"service_name", "api"}};
    for (int i = 0; i < 3; i++)
        check_head_append(h, l, 2, &cpu, 1700000000000000000LL + i * 15000000000LL, 0);
    check_head_append(h, m, 2, &heap, 1700000000000000000LL, 0);
    return h;
}

static char root[64];

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

TEST(write_open_query)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = sample_head(a);
    CHECK(h != NULL);
    if (h == NULL)
        return;
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    meta.ingester = "test";
    char ulid[KILN_ULID_LEN + 1];
    kiln_err err;
    CHECK_OK(kiln_block_write(s, "t1", h, &meta, ulid, &err));
    kiln_block_t *b;
    size_t heap0 = heap_in_use();
    CHECK_OK(kiln_block_open(s, "t1", ulid, &b, &err));
    /* Its head's bytes count what the open block holds in memory (symbols,
     * index, per-series sums): most of what opening it allocated. */
    double opened = (double)(heap_in_use() - heap0);
    kiln_head_stats_t bs;
    kiln_head_stats(kiln_block_head(b), &bs);
    printf("  block opened: %zu bytes counted, %.0f allocated\n", bs.bytes, opened);
    CHECK(bs.bytes > 0);
    if (HEAP_COUNTED)
        CHECK(bs.bytes <= 1.05 * opened && bs.bytes >= 0.5 * opened);
    CHECK_EQ(check_head_total(kiln_block_head(b), Q), check_head_total(h, Q));
    CHECK_EQ(check_head_total(kiln_block_head(b), QH), check_head_total(h, QH));
    CHECK(check_head_total(h, Q) > 0);
    const Block__V1__BlockMeta *bm = kiln_block_meta(b);
    kiln_head_stats_t st;
    kiln_head_stats(h, &st);
    CHECK_EQ(bm->stats->num_samples, st.samples);
    CHECK_EQ(bm->min_time, 1700000000000LL);
    printf("  %llu samples in %llu bytes: %.2f bytes/sample\n",
           (unsigned long long)bm->stats->num_samples, (unsigned long long)bm->stats->num_bytes,
           (double)bm->stats->num_bytes / (double)bm->stats->num_samples);

    /* Compaction: merging the block and the head it came from keeps one copy. */
    kiln_head_t *c = kiln_head_create();
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    CHECK_EQ(copied, st.profiles);
    CHECK_OK(kiln_head_merge_from(c, h, &copied, NULL));
    CHECK_EQ(copied, 0);
    CHECK_EQ(check_head_total(c, Q), check_head_total(h, Q));
    kiln_head_destroy(c);
    kiln_block_close(b);

    /* A flipped byte in samples is caught when its chunk is read (open
     * reads no samples): the read fails with data_loss. */
    char path[256];
    snprintf(path, sizeof(path), "%s/t1/blocks/%s/samples", root, ulid);
    FILE *f = fopen(path, "r+b");
    fseek(f, 40, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(ch ^ 0x55, f);
    fclose(f);
    CHECK_OK(kiln_block_open(s, "t1", ulid, &b, &err));
    c = kiln_head_create();
    CHECK_EQ(kiln_head_merge_from(c, kiln_block_head(b), &copied, &err), KILN_DATA_LOSS);
    printf("  corrupt chunk: %s\n", err.msg);
    kiln_head_destroy(c);
    kiln_block_close(b);
    /* A samples object shorter than the index says is caught at open. */
    CHECK(truncate(path, 20) == 0);
    CHECK_EQ(kiln_block_open(s, "t1", ulid, &b, &err), KILN_DATA_LOSS);
    printf("  truncated block: %s\n", err.msg);
    CHECK_OK(kiln_block_delete(s, "t1", ulid, &err));
    CHECK_EQ(kiln_block_open(s, "t1", ulid, &b, &err), KILN_NOT_FOUND);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* The value of one kiln_objstore_bytes_total series of s. */
static unsigned long long store_bytes(kiln_objstore_t *s, const char *op)
{
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_objstore_metrics(s, &m);
    char key[128];
    snprintf(key, sizeof(key),
             "kiln_objstore_bytes_total{backend=\"filesystem\",operation=\"%s\"} ", op);
    const char *p = strstr(m.ptr, key);
    unsigned long long v = p ? strtoull(p + strlen(key), NULL, 10) : ~0ull;
    kiln_buf_free(&m);
    return v;
}

/* Opening a block reads meta.json, symbols and index, never samples; a
 * read of samples fetches the chunks it needs with ranged reads. */
TEST(open_reads_no_samples)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = sample_head(a);
    kiln_objstore_t *w, *s;
    CHECK_OK(kiln_objstore_open_fs(root, &w, NULL));
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1], name[256];
    CHECK_OK(kiln_block_write(w, "lazy", h, &meta, ulid, NULL));
    unsigned long long other = 0;
    uint64_t size = 0, samples = 0;
    const char *files[] = {"meta.json", "symbols", "index"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "lazy/blocks/%s/%s", ulid, files[i]);
        CHECK_OK(kiln_objstore_size(w, name, &size, NULL));
        other += size;
    }
    snprintf(name, sizeof(name), "lazy/blocks/%s/samples", ulid);
    CHECK_OK(kiln_objstore_size(w, name, &samples, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "lazy", ulid, &b, NULL));
    CHECK_EQ(store_bytes(s, "get"), other);
    CHECK_EQ(store_bytes(s, "get_range"), 0);
    /* A merge reads every chunk, each with one ranged read: all of samples. */
    kiln_head_t *c = kiln_head_create();
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    CHECK_EQ(check_head_total(c, Q), check_head_total(h, Q));
    CHECK_EQ(store_bytes(s, "get_range"), samples);
    printf("  open read %llu bytes (samples, %llu bytes, not read); a merge read %llu\n", other,
           (unsigned long long)samples, store_bytes(s, "get_range"));
    kiln_head_destroy(c);
    kiln_block_close(b);
    kiln_block_delete(w, "lazy", ulid, NULL);
    kiln_objstore_close(s);
    kiln_objstore_close(w);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* The packed flame graph of a head's merge of q over [start, end] (ms). */
static size_t packed_flamegraph(kiln_head_t *h, const char *q, int64_t start, int64_t end,
                                uint8_t *out, size_t cap)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse(q, strlen(q), &sel, NULL) != KILN_OK)
        return 0;
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge(h, sel, start, end, t);
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(t, 1 << 20, a);
    size_t n = protobuf_c_message_get_packed_size(&fg->base);
    n = n <= cap ? protobuf_c_message_pack(&fg->base, out) : 0;
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    return n;
}

/* The sample head's time range (ms), and answers to compare. */
#define T0_MS 1700000000000LL
#define T1_MS (T0_MS + 30000)
static uint8_t g_want[4 << 20], g_got[4 << 20];

/* The sample head written as a block of tenant to the filesystem store. */
typedef struct written {
    kiln_arena_t *a;
    kiln_head_t *h;
    kiln_objstore_t *s;
    char ulid[KILN_ULID_LEN + 1];
} written;

static bool write_sample_block(const char *tenant, written *w)
{
    w->a = kiln_arena_create(0);
    w->h = sample_head(w->a);
    w->s = NULL;
    CHECK(w->h != NULL);
    CHECK_OK(kiln_objstore_open_fs(root, &w->s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    bool ok = w->h != NULL && w->s != NULL &&
              kiln_block_write(w->s, tenant, w->h, &meta, w->ulid, NULL) == KILN_OK;
    CHECK(ok);
    return ok;
}

static void written_free(written *w)
{
    kiln_objstore_close(w->s);
    kiln_head_destroy(w->h);
    kiln_arena_destroy(w->a);
}

/* A block's stored per-series sums (read for a query covering a series'
 * whole range) give the very flame graph the head gives, and a block
 * written without them (the index's first section only, as older blocks)
 * still reads the same from its chunks. */
TEST(series_sums_match_the_samples)
{
    written w;
    if (!write_sample_block("sums", &w))
        return;
    const char *qs[] = {Q, QH};
    for (int pass = 0; pass < 2; pass++) {
        kiln_block_t *b;
        CHECK_OK(kiln_block_open(w.s, "sums", w.ulid, &b, NULL));
        for (int i = 0; i < 2; i++) {
            size_t n = packed_flamegraph(w.h, qs[i], T0_MS, T1_MS, g_want, sizeof(g_want));
            CHECK(n > 100);
            CHECK_EQ(
                packed_flamegraph(kiln_block_head(b), qs[i], T0_MS, T1_MS, g_got, sizeof(g_got)),
                n);
            CHECK(memcmp(g_want, g_got, n) == 0);
            /* A partial range decodes the chunk: the first two CPU profiles. */
            n = packed_flamegraph(w.h, qs[i], T0_MS, T0_MS + 15000, g_want, sizeof(g_want));
            CHECK_EQ(packed_flamegraph(kiln_block_head(b), qs[i], T0_MS, T0_MS + 15000, g_got,
                                       sizeof(g_got)),
                     n);
            CHECK(memcmp(g_want, g_got, n) == 0);
        }
        kiln_block_close(b);
        if (pass == 1)
            break;
        /* Pass 2: cut the index to its first section (12-byte header + body). */
        char name[128];
        snprintf(name, sizeof(name), "sums/blocks/%s/index", w.ulid);
        kiln_buf idx;
        kiln_buf_init(&idx, 0);
        CHECK_OK(kiln_objstore_get(w.s, name, &idx, NULL));
        const uint8_t *hd = (const uint8_t *)idx.ptr;
        size_t first =
            12 + ((size_t)hd[4] | (size_t)hd[5] << 8 | (size_t)hd[6] << 16 | (size_t)hd[7] << 24);
        CHECK(first < idx.len);
        CHECK_OK(kiln_objstore_put(w.s, name, idx.ptr, first, NULL));
        kiln_buf_free(&idx);
    }
    written_free(&w);
}

/* The open blocks' per-series sums stay within the process's budget: a
 * block whose sums do not fit keeps none and answers from its chunks (the
 * same flame graph), a series summed at query time past the budget is not
 * kept, and closing a block gives its bytes back. */
TEST(sums_stay_within_their_budget)
{
    written w;
    if (!write_sample_block("budget", &w))
        return;
    size_t n = packed_flamegraph(w.h, Q, T0_MS, T1_MS, g_want, sizeof(g_want));
    CHECK(n > 100);

    kiln_block_t *b;
    CHECK_EQ(kiln_block_sums_bytes(), 0);
    CHECK_OK(kiln_block_open(w.s, "budget", w.ulid, &b, NULL));
    size_t whole = kiln_block_sums_bytes(); /* unbounded: all of them kept */
    CHECK(whole > 0);
    kiln_block_close(b);
    CHECK_EQ(kiln_block_sums_bytes(), 0);

    kiln_block_sums_budget(whole - 1);
    CHECK_OK(kiln_block_open(w.s, "budget", w.ulid, &b, NULL));
    CHECK_EQ(kiln_block_sums_bytes(), 0);
    for (int round = 0; round < 2; round++) { /* summed, not kept, summed again */
        CHECK_EQ(packed_flamegraph(kiln_block_head(b), Q, T0_MS, T1_MS, g_got, sizeof(g_got)), n);
        CHECK(memcmp(g_want, g_got, n) == 0);
    }
    CHECK(kiln_block_sums_bytes() < whole);
    kiln_block_close(b);
    CHECK_EQ(kiln_block_sums_bytes(), 0);

    kiln_block_sums_budget(0);
    CHECK_OK(kiln_block_open(w.s, "budget", w.ulid, &b, NULL));
    CHECK_EQ(packed_flamegraph(kiln_block_head(b), Q, T0_MS, T1_MS, g_got, sizeof(g_got)), n);
    CHECK(memcmp(g_want, g_got, n) == 0);
    CHECK_EQ(kiln_block_sums_bytes(), 0);
    kiln_block_close(b);

    kiln_block_sums_budget(whole);
    CHECK_OK(kiln_block_open(w.s, "budget", w.ulid, &b, NULL));
    CHECK_EQ(kiln_block_sums_bytes(), whole);
    kiln_block_close(b);
    kiln_block_sums_budget(SIZE_MAX);
    written_free(&w);
}

static int64_t ids_total(kiln_head_t *h, const uint64_t *ids, size_t n)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse(Q, strlen(Q), &sel, NULL) != KILN_OK)
        return -1;
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge_ids(h, sel, 0, 0, NULL, 0, ids, n, t);
    int64_t v = kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    return v;
}

/* profile_id_selector: only the profiles with the given push ids, in the
 * head and in a block (where the whole range would otherwise be answered
 * from the series' stored sums). */
TEST(profile_ids_select_profiles)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t cpu;
    CHECK(check_load_profile(a, "gdu/default.pgo", &cpu));
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    for (uint64_t i = 1; i <= 3; i++)
        check_head_append(h, l, 2, &cpu, 1700000000000000000LL + (int64_t)i * 15000000000LL,
                          i * 11);
    int64_t one = check_head_total(h, Q) / 3;
    CHECK(one > 0);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, "ids", h, &meta, ulid, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "ids", ulid, &b, NULL));
    kiln_head_t *heads[] = {h, kiln_block_head(b)};
    const uint64_t id22[] = {22}, id11_33[] = {11, 33}, none[] = {99};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(ids_total(heads[i], id22, 1), one);
        CHECK_EQ(ids_total(heads[i], id11_33, 2), 2 * one);
        CHECK_EQ(ids_total(heads[i], none, 1), 0);
        CHECK_EQ(ids_total(heads[i], NULL, 0), 3 * one);
    }
    kiln_block_close(b);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

static int64_t span_total(kiln_head_t *h, uint64_t span)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse("{}", 2, &sel, NULL) != KILN_OK)
        return -1;
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge_spans(h, sel, 0, 0, &span, 1, t);
    int64_t v = kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    return v;
}

TEST(span_ids_survive_a_block)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/single_group_with_optional_span_id.pb.gz", &p)) {
        CHECK(!"testdata missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    check_head_append(h, l, 2, &p, 1700000000000000000LL, 0);
    int64_t in_head = span_total(h, 0x239);
    CHECK(in_head > 0);
    CHECK(in_head < check_head_total(h, Q));
    CHECK_EQ(span_total(h, 0xdead), 0);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, "spans", h, &meta, ulid, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "spans", ulid, &b, NULL));
    CHECK_EQ(span_total(kiln_block_head(b), 0x239), in_head);
    kiln_head_t *c = kiln_head_create(); /* and through compaction */
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    CHECK_EQ(span_total(c, 0x239), in_head);
    kiln_head_destroy(c);
    kiln_block_close(b);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* Profile keys as a read reported them, sorted by keyset_sort. */
typedef struct keyset {
    uint64_t k[8];
    size_t n;
} keyset;

static void keyset_add(void *ctx, uint64_t key)
{
    keyset *s = ctx;
    CHECK(s->n < 8);
    if (s->n < 8)
        s->k[s->n++] = key;
}

static void keyset_add_profile(void *ctx, const kiln_read_profile *p)
{
    keyset_add(ctx, kiln_profile_key(p->labels, p->n_labels, p->time_ms, p->id));
}

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void keyset_sort(keyset *s)
{
    qsort(s->k, s->n, sizeof(uint64_t), cmp_key);
}

/* A tree read of Q over the sample range under keys and spans (NULL =
 * any); the keys its `merged` reported go to got, sorted; its total. */
static int64_t merged_keys(kiln_head_t *h, const uint64_t *keys, size_t n_keys,
                           const uint64_t *spans, keyset *got)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse(Q, strlen(Q), &sel, NULL) != KILN_OK)
        return -1;
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {.sel = sel,
                          .start_ms = T0_MS,
                          .end_ms = T1_MS,
                          .keys = keys,
                          .n_keys = n_keys,
                          .spans = spans,
                          .n_spans = spans != NULL};
    kiln_read_visitor v = {.tree = t, .merged = keyset_add, .ctx = got};
    got->n = 0;
    CHECK_OK(kiln_head_read(h, &f, &v, NULL));
    keyset_sort(got);
    int64_t total = kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    return total;
}

/* A tree read's `merged` names the profiles it took, in the same pass: in
 * a head and in a block (whose whole range is answered from the series'
 * stored sums), under a key set, and a profile whose spans left it no
 * sample still counts as taken. */
TEST(tree_reads_report_the_profiles_they_merge)
{
    written w;
    if (!write_sample_block("merged", &w))
        return;
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(w.s, "merged", w.ulid, &b, NULL));
    kiln_head_t *heads[] = {w.h, kiln_block_head(b)};
    kiln_selector_t *sel;
    CHECK_OK(kiln_selector_parse(Q, strlen(Q), &sel, NULL));
    keyset all = {{0}, 0}, got = {{0}, 0};
    check_head_profiles(w.h, sel, T0_MS, T1_MS, keyset_add_profile, &all);
    kiln_selector_destroy(sel);
    keyset_sort(&all);
    CHECK_EQ(all.n, 3);
    uint64_t second[] = {all.k[1]}, unknown = 0x5eed, dead = 0xdead;
    uint64_t with_unknown[] = {all.k[1] < unknown ? all.k[1] : unknown,
                               all.k[1] < unknown ? unknown : all.k[1]};
    for (int i = 0; i < 2; i++) {
        int64_t whole = merged_keys(heads[i], NULL, 0, NULL, &got);
        CHECK(whole > 0);
        CHECK_EQ(got.n, 3);
        CHECK(got.n == 3 && memcmp(got.k, all.k, sizeof(all.k[0]) * 3) == 0);
        CHECK_EQ(merged_keys(heads[i], second, 1, NULL, &got), whole / 3);
        CHECK_EQ(got.n, 1);
        CHECK_EQ(got.k[0], second[0]);
        CHECK_EQ(merged_keys(heads[i], with_unknown, 2, NULL, &got), whole / 3);
        CHECK_EQ(got.n, 1);
        CHECK_EQ(got.k[0], second[0]);
        CHECK_EQ(merged_keys(heads[i], second, 1, &dead, &got), 0);
        CHECK_EQ(got.n, 1);
    }
    kiln_block_close(b);
    written_free(&w);
}

static void add_total(void *ctx, const kiln_read_profile *p)
{
    *(int64_t *)ctx += p->total;
}

/* Series total minus flame graph total of Q: the frameless samples' value. */
static int64_t series_minus_flame(kiln_head_t *h)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse(Q, strlen(Q), &sel, NULL) != KILN_OK)
        return -1;
    int64_t series = 0;
    check_head_profiles(h, sel, 0, 0, add_total, &series);
    kiln_selector_destroy(sel);
    return series - check_head_total(h, Q);
}

/* gdu/default.pgo has a sample without frames (80,000,000 ns of cpu):
 * Pyroscope counts it in series totals, not in the flame graph. So does
 * Kiln, in the head, in a block and after compaction (merge_from). */
TEST(frameless_samples_count_in_series_totals)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t cpu;
    CHECK(check_load_profile(a, "gdu/default.pgo", &cpu));
    int64_t frameless = 0;
    size_t t = cpu.n_sample_types - 1; /* [samples/count, cpu/nanoseconds]: Q's cpu */
    for (size_t i = 0; i < cpu.n_samples; i++)
        if (cpu.samples[i].n_locs == 0)
            frameless += cpu.values[cpu.samples[i].value_off + t];
    CHECK_EQ(frameless, 80000000);
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    for (int i = 0; i < 3; i++)
        check_head_append(h, l, 2, &cpu, 1700000000000000000LL + i * 15000000000LL, 0);
    CHECK_EQ(series_minus_flame(h), 3 * frameless);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, "frameless", h, &meta, ulid, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "frameless", ulid, &b, NULL));
    CHECK_EQ(series_minus_flame(kiln_block_head(b)), 3 * frameless);
    kiln_head_t *c = kiln_head_create();
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    CHECK_EQ(copied, 6); /* 3 profiles x 2 sample types */
    CHECK_EQ(series_minus_flame(c), 3 * frameless);
    kiln_head_destroy(c);
    kiln_block_close(b);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* A block of sample_head whose samples object shrinks after it was opened
 * (as an object store can change under a reader): its chunks no longer
 * load. Owns everything it creates; torn_close frees it. */
typedef struct torn_block {
    kiln_arena_t *a;
    kiln_head_t *h;
    kiln_objstore_t *s;
    kiln_block_t *b;
    char ulid[KILN_ULID_LEN + 1];
} torn_block;

static bool torn_open(torn_block *t)
{
    memset(t, 0, sizeof(*t));
    t->a = kiln_arena_create(0);
    t->h = sample_head(t->a);
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    if (t->h == NULL || kiln_objstore_open_fs(root, &t->s, NULL) != KILN_OK ||
        kiln_block_write(t->s, "torn", t->h, &meta, t->ulid, NULL) != KILN_OK ||
        kiln_block_open(t->s, "torn", t->ulid, &t->b, NULL) != KILN_OK)
        return false;
    char path[256];
    snprintf(path, sizeof(path), "%s/torn/blocks/%s/samples", root, t->ulid);
    return truncate(path, 16) == 0;
}

static void torn_close(torn_block *t)
{
    kiln_block_close(t->b);
    if (t->s != NULL)
        kiln_block_delete(t->s, "torn", t->ulid, NULL);
    kiln_objstore_close(t->s);
    kiln_head_destroy(t->h);
    kiln_arena_destroy(t->a);
}

/* A chunk that cannot be loaded during a merge is data_loss to the caller,
 * not a skipped series: the compactor must not delete sources after a
 * partial merge. */
TEST(merge_reports_a_failing_chunk)
{
    torn_block t;
    CHECK(torn_open(&t));
    kiln_head_t *c = kiln_head_create();
    size_t copied = 0;
    kiln_err err = {KILN_OK, ""};
    if (t.b != NULL)
        CHECK_EQ(kiln_head_merge_from(c, kiln_block_head(t.b), &copied, &err), KILN_DATA_LOSS);
    CHECK(strstr(err.msg, "samples") != NULL);
    kiln_head_destroy(c);
    torn_close(&t);
}

/* A chunk that cannot be loaded during a read is data_loss to the caller
 * of kiln_head_read, whichever visitor, instead of a partial answer. */
TEST(query_reports_a_failing_chunk)
{
    torn_block t;
    CHECK(torn_open(&t));
    kiln_tree_t *tree = kiln_tree_create();
    kiln_err err = {KILN_OK, ""};
    if (t.b != NULL) {
        CHECK_EQ(check_head_merge_st(kiln_block_head(t.b), NULL, 1700000000000LL, 1700000000001LL,
                                     NULL, 0, NULL, 0, tree),
                 KILN_DATA_LOSS);
        static const uint64_t span = 1;
        kiln_read_filter f = {.spans = &span, .n_spans = 1};
        kiln_read_visitor v = {.tree = tree};
        CHECK_EQ(kiln_head_read(kiln_block_head(t.b), &f, &v, &err), KILN_DATA_LOSS);
        CHECK(strstr(err.msg, "samples") != NULL);
    }
    kiln_tree_destroy(tree);
    torn_close(&t);
}

TEST(ulid)
{
    char a[KILN_ULID_LEN + 1], b[KILN_ULID_LEN + 1];
    kiln_ulid(1700000000000LL, a);
    kiln_ulid(1700000000001LL, b);
    CHECK_EQ(strlen(a), 26);
    CHECK(strcmp(a, b) < 0); /* time-ordered */
    CHECK(strncmp(a, "01HF", 4) == 0);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/kiln-block-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    RUN(ulid);
    RUN(write_open_query);
    RUN(open_reads_no_samples);
    RUN(series_sums_match_the_samples);
    RUN(sums_stay_within_their_budget);
    RUN(profile_ids_select_profiles);
    RUN(span_ids_survive_a_block);
    RUN(tree_reads_report_the_profiles_they_merge);
    RUN(frameless_samples_count_in_series_totals);
    RUN(merge_reports_a_failing_chunk);
    RUN(query_reports_a_failing_chunk);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
