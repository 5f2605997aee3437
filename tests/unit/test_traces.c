/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: trace ids and span ids kept per sample. A profile whose
 * samples carry trace_id and span_id labels is read back by trace (the
 * trace_id_selector filter) and span by span (the span visitor) from a
 * head, from a block, after compaction, after a WAL replay and a flush;
 * blocks written in the layout before trace ids (version 1) still read,
 * and a chunk whose trace column is damaged is data loss. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "check.h"
#include "db_fixture.h"
#include "head_read.h"
#include "pprof_build.h"
#include "selector.h"
#include "tmpdir.h"
#include "tree.h"

#define T0 1700000000000000000LL
#define TRACE1 "0af7651916cd43dd8448eb211c80319c"
#define TRACE2 "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACE3 "00000000000000000000000000000abc" /* in no sample */

static const kiln_trace_id T1 = {0x0af7651916cd43ddULL, 0x8448eb211c80319cULL};
static const kiln_trace_id T2 = {0x4bf92f3577b34da6ULL, 0xa3ce929d0e0e4736ULL};
static const kiln_trace_id T3 = {0, 0xabc};
static const uint64_t S1 = 0x00f067aa0ba902b7ULL, S2 = 0x53995c3f42cd8ad8ULL,
                      S3 = 0xb7ad6b7169203331ULL;

static char dir[64];

/* A CPU profile of six samples: main;a 100 (trace 1, span 1), main;b 200
 * (trace 1, span 2), main;c 400 (trace 2, span 3), main;c 800 (no ids),
 * main;a 1600 (trace 2, no span), main;a 3200 (a trace_id that is not
 * one: none). */
static bool traced_profile(kiln_arena_t *a, kiln_pprof_t *out)
{
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    kiln_pprof_build_sample_type(b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    uint64_t m = kiln_pprof_build_frame(b, KILN_STR("main"));
    uint64_t fa = kiln_pprof_build_frame(b, KILN_STR("a")),
             fb = kiln_pprof_build_frame(b, KILN_STR("b"));
    uint64_t fc = kiln_pprof_build_frame(b, KILN_STR("c"));
    struct {
        uint64_t leaf;
        int64_t v;
        const char *span, *trace;
    } s[] = {{fa, 100, "00f067aa0ba902b7", TRACE1},
             {fb, 200, "53995c3f42cd8ad8", TRACE1},
             {fc, 400, "b7ad6b7169203331", TRACE2},
             {fc, 800, NULL, NULL},
             {fa, 1600, NULL, TRACE2},
             {fa, 3200, NULL, "not-a-trace-id"}};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        uint64_t locs[] = {s[i].leaf, m};
        kiln_pprof_build_label l[2];
        size_t n = 0;
        if (s[i].span != NULL)
            l[n++] = (kiln_pprof_build_label){KILN_STR("span_id"),
                                              (kiln_str_t){s[i].span, strlen(s[i].span)}};
        if (s[i].trace != NULL)
            l[n++] = (kiln_pprof_build_label){KILN_STR("trace_id"),
                                              (kiln_str_t){s[i].trace, strlen(s[i].trace)}};
        CHECK_OK(kiln_pprof_build_sample(b, locs, 2, &s[i].v, l, n));
    }
    kiln_err err = {KILN_OK, ""};
    if (kiln_pprof_build_finish(b, out, &err) != KILN_OK)
        return false;
    return kiln_pprof_validate_normalize(a, out, 1024, &err) == KILN_OK;
}

static int cmp_trace(const void *x, const void *y)
{
    return kiln_trace_id_cmp(x, y);
}

/* The merged total of h's samples of traces t[0..n) (n = 0: every sample). */
static int64_t trace_total(kiln_head_t *h, const kiln_trace_id *t, size_t n)
{
    kiln_trace_id sorted[4] = {{0, 0}};
    for (size_t i = 0; i < n; i++)
        sorted[i] = t[i];
    qsort(sorted, n, sizeof(*sorted), cmp_trace);
    kiln_tree_t *tree = kiln_tree_create();
    kiln_read_filter f = {.traces = n ? sorted : NULL, .n_traces = n};
    kiln_read_visitor v = {.tree = tree};
    CHECK_OK(kiln_head_read(h, &f, &v, NULL));
    int64_t total = kiln_tree_total(tree);
    kiln_tree_destroy(tree);
    return total;
}

/* What a span read reports: per span, its sum and trace. */
typedef struct spans_seen {
    size_t n;
    uint64_t span[8];
    kiln_trace_id trace[8];
    int64_t total[8];
    int64_t profile_totals; /* what a profile read under the same filter gives */
} spans_seen;

static void on_span(void *ctx, const kiln_read_span *s)
{
    spans_seen *x = ctx;
    if (x->n < 8) {
        x->span[x->n] = s->span;
        x->trace[x->n] = s->trace;
        x->total[x->n++] = s->total;
    }
}

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    ((spans_seen *)ctx)->profile_totals += p->total;
}

static int64_t span_sum(const spans_seen *x, uint64_t span, kiln_trace_id t)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->span[i] == span && x->trace[i].hi == t.hi && x->trace[i].lo == t.lo)
            return x->total[i];
    return -1;
}

/* Every id the profile carries, read from h (a head or an opened block). */
static void check_ids(kiln_head_t *h, bool with_traces)
{
    CHECK_EQ(trace_total(h, NULL, 0), 6300);
    CHECK_EQ(trace_total(h, &T1, 1), with_traces ? 300 : 0);
    CHECK_EQ(trace_total(h, &T2, 1), with_traces ? 2000 : 0);
    kiln_trace_id both[] = {T2, T1};
    CHECK_EQ(trace_total(h, both, 2), with_traces ? 2300 : 0);
    CHECK_EQ(trace_total(h, &T3, 1), 0);
    spans_seen x;
    memset(&x, 0, sizeof(x));
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.span = on_span, .ctx = &x};
    CHECK_OK(kiln_head_read(h, &f, &v, NULL));
    CHECK_EQ(x.n, 3);
    kiln_trace_id none = {0, 0};
    CHECK_EQ(span_sum(&x, S1, with_traces ? T1 : none), 100);
    CHECK_EQ(span_sum(&x, S2, with_traces ? T1 : none), 200);
    CHECK_EQ(span_sum(&x, S3, with_traces ? T2 : none), 400);
    /* A trace filter and a span filter together: their intersection. */
    uint64_t span = S3;
    kiln_read_filter g = {.spans = &span, .n_spans = 1, .traces = &T2, .n_traces = 1};
    memset(&x, 0, sizeof(x));
    kiln_read_visitor pv = {.profile = on_profile, .ctx = &x};
    CHECK_OK(kiln_head_read(h, &g, &pv, NULL));
    CHECK_EQ(x.profile_totals, with_traces ? 400 : 0);
}

static kiln_head_t *traced_head(kiln_arena_t *a)
{
    kiln_pprof_t p;
    if (!traced_profile(a, &p))
        return NULL;
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    check_head_append(h, l, 2, &p, T0, 7);
    return h;
}

TEST(trace_ids_in_head_block_and_compaction)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = traced_head(a);
    CHECK(h != NULL);
    if (h == NULL) {
        kiln_arena_destroy(a);
        return;
    }
    check_ids(h, true);
    kiln_objstore_t *s = check_store_open(dir);
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, "t", h, &meta, ulid, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "t", ulid, &b, NULL));
    CHECK_EQ(kiln_block_meta(b)->version, 2);
    check_ids(kiln_block_head(b), true);
    kiln_head_t *c = kiln_head_create(); /* compaction: a block merged into a head */
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    CHECK_EQ(copied, 1);
    check_ids(c, true);
    kiln_head_destroy(c);
    kiln_block_close(b);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* A block in the layout before trace ids (version 1) still reads: every
 * sample, span ids and all; it simply has no trace ids. */
TEST(version_1_blocks_still_read)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = traced_head(a);
    CHECK(h != NULL);
    if (h == NULL) {
        kiln_arena_destroy(a);
        return;
    }
    kiln_objstore_t *s = check_store_open(dir);
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write_version(s, "old", h, &meta, 1, ulid, NULL));
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "old", ulid, &b, NULL));
    CHECK_EQ(kiln_block_meta(b)->version, 1);
    check_ids(kiln_block_head(b), false);
    kiln_head_t *c = kiln_head_create(); /* a version 1 block compacts into a new one */
    size_t copied;
    CHECK_OK(kiln_head_merge_from(c, kiln_block_head(b), &copied, NULL));
    check_ids(c, false);
    kiln_head_destroy(c);
    kiln_block_close(b);
    /* A block from a newer build is refused, not guessed at. */
    CHECK_OK(kiln_block_write_version(s, "new", h, &meta, 3, ulid, NULL));
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(kiln_block_open(s, "new", ulid, &b, &err), KILN_FAILED_PRECONDITION);
    CHECK(strstr(err.msg, "version 3") != NULL);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

static char db_dir[96];

static kiln_db_t *open_db(void)
{
    kiln_db_config c = {
        .path = db_dir, .wal_segment_bytes = 1u << 20, .flush_check_ns = 3600000000000LL};
    kiln_db_t *db = NULL;
    CHECK_OK(kiln_db_open(&c, &db, NULL));
    return db;
}

static int64_t db_trace_total(kiln_db_t *db, const kiln_trace_id *t)
{
    kiln_tree_t *tree = kiln_tree_create();
    kiln_read_filter f = {.traces = t, .n_traces = 1};
    kiln_read_visitor v = {.tree = tree};
    CHECK_OK(kiln_db_read(db, "t", &f, &v, NULL));
    int64_t total = kiln_tree_total(tree);
    kiln_tree_destroy(tree);
    return total;
}

/* Trace ids live in the WAL record's sample labels: a replay restores
 * them, and a flush writes them to the block. */
TEST(trace_ids_survive_replay_and_flush)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(traced_profile(a, &p));
    kiln_db_t *db = open_db();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    p.time_nanos = T0;
    kiln_head_part part = {l, 2, &p, 9};
    if (db != NULL) {
        CHECK_OK(kiln_db_append(db, "t", &part, 1, NULL));
        CHECK_EQ(db_trace_total(db, &T2), 2000);
        kiln_db_close(db);
        db = open_db(); /* replayed */
    }
    if (db != NULL) {
        CHECK_EQ(db_trace_total(db, &T2), 2000);
        CHECK_OK(kiln_db_flush(db, NULL));
        CHECK_EQ(db_trace_total(db, &T2), 2000); /* from the block */
        CHECK_EQ(db_trace_total(db, &T1), 300);
        kiln_db_close(db);
    }
    kiln_arena_destroy(a);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-traces-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(db_dir, sizeof(db_dir), "%s/db", dir); /* its own bucket, without the tests' blocks */
    RUN(trace_ids_in_head_block_and_compaction);
    RUN(version_1_blocks_still_read);
    RUN(trace_ids_survive_replay_and_flush);
    tmpdir_remove(dir);
    return check_done();
}
