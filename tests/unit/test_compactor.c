/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: compaction output equals the union of its inputs (replicas
 * counted once), sources go a round later, retention deletes exactly what
 * expired; a source whose chunk does not load leaves its group alone, and
 * no source is deleted. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blockset.h"
#include "check.h"
#include "corrupt_chunk.h"
#include "head_read.h"
#include "profiles.h"
#include "compactor.h"
#include "gzip.h"
#include "selector.h"

static char root[64];

/* Writes a level-1 block of tenant holding `cpu` at each time in ts[];
 * its ULID goes to ulid_out when not NULL. */
static void put_block_ulid(kiln_objstore_t *s, const char *tenant, const kiln_pprof_t *cpu,
                           const int64_t *ts, size_t n, char *ulid_out)
{
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    for (size_t i = 0; i < n; i++)
        check_head_append(h, l, 2, cpu, ts[i] * 1000000, 0);
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, tenant, h, &meta, ulid, NULL));
    if (ulid_out != NULL)
        memcpy(ulid_out, ulid, sizeof(ulid));
    kiln_head_destroy(h);
}

static void put_block(kiln_objstore_t *s, const char *tenant, const kiln_pprof_t *cpu,
                      const int64_t *ts, size_t n)
{
    put_block_ulid(s, tenant, cpu, ts, n, NULL);
}

typedef struct sum_ctx {
    int64_t total;
    size_t blocks;
} sum_ctx;

static void sum_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    sum_ctx *c = ctx;
    kiln_selector_t *sel;
    const char *q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}";
    if (kiln_selector_parse(q, strlen(q), &sel, NULL) != KILN_OK)
        return;
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge(kiln_block_head(b), sel, 0, 0, t);
    c->total += kiln_tree_total(t);
    c->blocks++;
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
}

static sum_ctx visible(kiln_objstore_t *s, const char *tenant)
{
    kiln_blockset_t *bs = kiln_blockset_create(s);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    sum_ctx c = {0, 0};
    kiln_blockset_each(bs, tenant, 0, 0, sum_block, &c);
    kiln_blockset_destroy(bs);
    return c;
}

TEST(compact_dedup_retention)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t cpu;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &cpu)) {
        CHECK(!"testdata missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    const int64_t day = 1700006400000LL; /* aligned to 4h and 24h */
    int64_t t1[] = {day + 1000, day + 2000}, t2[] = {day + 3000}, old[] = {day - 86400000LL * 30};
    put_block(s, "t", &cpu, t1, 2);
    put_block(s, "t", &cpu, t1, 2); /* a replica of the first (RF > 1) */
    put_block(s, "t", &cpu, t2, 1);
    put_block(s, "t", &cpu, old, 1);
    sum_ctx before = visible(s, "t");
    CHECK_EQ(before.blocks, 4);
    int64_t one = before.total / 6; /* 6 profiles stored, 4 distinct */

    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.retention_ns = 7 * 86400000000000LL;
    kiln_overrides_t *o = kiln_overrides_create(&lim);
    kiln_compactor_config cfg = {root, 3600000000000LL, lim.retention_ns, o, 0, NULL};
    kiln_compactor_t *c;
    CHECK_OK(kiln_compactor_create(&cfg, &c, NULL));
    CHECK_OK(kiln_compactor_run_once(c, day + 86400000LL, NULL));
    sum_ctx mid = visible(s, "t"); /* sources superseded: readers skip them */
    CHECK_EQ(mid.blocks, 1);
    CHECK_EQ(mid.total, 3 * one); /* union of inputs, replicas once, expired gone */
    CHECK_OK(kiln_compactor_run_once(c, day + 86400000LL, NULL));
    kiln_compactor_stats st;
    kiln_compactor_stats_get(c, &st);
    CHECK_EQ(st.compacted, 1);
    CHECK_EQ(st.deleted_retention, 1);
    CHECK_EQ(st.deleted_superseded, 3);
    sum_ctx after = visible(s, "t");
    CHECK_EQ(after.blocks, 1);
    CHECK_EQ(after.total, 3 * one);
    kiln_compactor_destroy(c);
    kiln_overrides_destroy(o);
    kiln_objstore_close(s);
    kiln_arena_destroy(a);
}

/* The number of blocks of tenant a reader sees. */
static size_t block_count(kiln_objstore_t *s)
{
    kiln_blockset_t *bs = kiln_blockset_create(s);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    size_t n, quarantined;
    kiln_blockset_counts(bs, &n, &quarantined);
    kiln_blockset_destroy(bs);
    return n;
}

/* Three sources of one group, one with a chunk that opens but does not
 * load: the merge fails part way, so nothing is written and every source
 * stays (before merge_from returned a status, a partial merge could
 * supersede and then delete the damaged source's data). The damaged block
 * is quarantined, so the next round merges the other two, and the damaged
 * one stays in the store, never merged. */
TEST(failing_chunk_keeps_the_sources)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t cpu;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &cpu)) {
        CHECK(!"testdata missing");
        kiln_arena_destroy(a);
        return;
    }
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/torn", root);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(dir, &s, NULL));
    const int64_t day = 1700006400000LL;
    int64_t t1[] = {day + 1000, day + 2000}, t2[] = {day + 3000}, t3[] = {day + 4000};
    char torn[KILN_ULID_LEN + 1];
    put_block_ulid(s, "t", &cpu, t1, 2, torn);
    put_block(s, "t", &cpu, t2, 1);
    put_block(s, "t", &cpu, t3, 1);
    char path[256];
    snprintf(path, sizeof(path), "%s/t/blocks/%s/samples", dir, torn);
    CHECK(check_corrupt_first_chunk(path));
    CHECK_EQ(block_count(s), 3); /* it still opens */
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    kiln_overrides_t *o = kiln_overrides_create(&lim);
    kiln_compactor_config cfg = {dir, 3600000000000LL, 0, o, 0, NULL};
    kiln_compactor_t *c;
    CHECK_OK(kiln_compactor_create(&cfg, &c, NULL));
    CHECK_OK(kiln_compactor_run_once(c, day + 86400000LL, NULL));
    kiln_compactor_stats st;
    kiln_compactor_stats_get(c, &st);
    CHECK_EQ(st.compacted, 0);
    CHECK_EQ(st.failed, 1);
    CHECK_EQ(st.quarantined, 1);
    CHECK_EQ(kiln_compactor_quarantined(c), 1);
    CHECK_EQ(block_count(s), 3);
    for (int round = 0; round < 3; round++)
        CHECK_OK(kiln_compactor_run_once(c, day + 86400000LL, NULL));
    kiln_compactor_stats_get(c, &st);
    CHECK_EQ(st.compacted, 1);
    CHECK_EQ(st.failed, 1);
    CHECK_EQ(st.quarantined, 1);
    CHECK_EQ(st.deleted_superseded, 2);
    CHECK_EQ(block_count(s), 2); /* the damaged block and the compacted one */
    CHECK(access(path, F_OK) == 0);
    kiln_compactor_destroy(c);
    kiln_overrides_destroy(o);
    kiln_objstore_close(s);
    kiln_arena_destroy(a);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/kiln-compactor-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    RUN(compact_dedup_retention);
    RUN(failing_chunk_keeps_the_sources);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
