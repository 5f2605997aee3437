/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: a block set synced from a store of many blocks of several
 * tenants holds exactly the listed, complete blocks that no compacted block
 * of the same tenant names as a source, and follows deletions; blocks are
 * found by (tenant, ulid) in a sorted set, not by a scan per listed block.
 * A block whose sample chunk a read finds damaged is skipped at once and
 * quarantined at the next sync; a chunk an S3 outage kept from loading
 * quarantines nothing (a real S3 server, versitygw, stopped and started). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "blockset.h"
#include "check.h"
#include "corrupt_chunk.h"
#include "head_read.h"
#include "s3server.h"
#include "selector.h"
#include "synth.h"

#define PER_TENANT 60
#define COMPACTED 30

static char root[64];

static void on_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant, (void)b;
    (*(size_t *)ctx)++;
}

static size_t count(kiln_blockset_t *bs, const char *tenant)
{
    size_t n = 0;
    kiln_blockset_each(bs, tenant, 0, 0, on_block, &n);
    return n;
}

TEST(sync_many_blocks)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(synth_profile(a, 1, 1700000000000000000LL, &p));
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    check_head_append(h, l, 2, &p, 0, 0);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    static char ulids[2][PER_TENANT][KILN_ULID_LEN + 1];
    const char *tenants[] = {"b", "a"}; /* listed in another order than written */
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < PER_TENANT; i++) {
            Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
            CHECK_OK(kiln_block_write(s, tenants[t], h, &meta, ulids[t][i], NULL));
        }
    }
    /* One block of tenant a compacted from its first COMPACTED blocks, and
     * one of tenant b naming a's blocks (another tenant's: no effect). */
    char *src[COMPACTED];
    for (int i = 0; i < COMPACTED; i++)
        src[i] = ulids[1][i];
    Block__V1__BlockCompaction comp = BLOCK__V1__BLOCK_COMPACTION__INIT;
    comp.level = 2;
    comp.sources = src;
    comp.n_sources = COMPACTED;
    char ulid[KILN_ULID_LEN + 1];
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    meta.compaction = &comp;
    CHECK_OK(kiln_block_write(s, "a", h, &meta, ulid, NULL));
    CHECK_OK(kiln_block_write(s, "b", h, &meta, ulid, NULL));
    kiln_blockset_t *bs = kiln_blockset_create(s);
    for (int round = 0; round < 2; round++) { /* opened, then kept */
        CHECK_OK(kiln_blockset_sync(bs, NULL));
        size_t blocks, quarantined;
        kiln_blockset_counts(bs, &blocks, &quarantined);
        CHECK_EQ(blocks, 2 * PER_TENANT - COMPACTED + 2);
        CHECK_EQ(quarantined, 0);
        CHECK_EQ(count(bs, "a"), PER_TENANT - COMPACTED + 1);
        CHECK_EQ(count(bs, "b"), PER_TENANT + 1);
    }
    for (int i = 0; i < 5; i++)
        CHECK_OK(kiln_block_delete(s, "b", ulids[0][i * 7], NULL));
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    CHECK_EQ(count(bs, "b"), PER_TENANT + 1 - 5);
    CHECK_EQ(count(bs, "a"), PER_TENANT - COMPACTED + 1);
    kiln_blockset_destroy(bs);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

#define Q_T0 1700000000000LL /* ms */

/* Writes a block of tenant with two profiles 10 s apart; its ULID to ulid. */
static void put_two_profiles(kiln_objstore_t *s, const char *tenant, char *ulid)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "api"}};
    for (int i = 0; i < 2; i++) {
        kiln_pprof_t p;
        CHECK(synth_profile(a, 5, 0, &p));
        check_head_append(h, l, 2, &p, (Q_T0 + i * 10000) * 1000000LL, 0);
    }
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    CHECK_OK(kiln_block_write(s, tenant, h, &meta, ulid, NULL));
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

typedef struct reads {
    size_t blocks, failed;
    kiln_status last;
} reads;

/* Reads the first profile only, so the chunk is loaded (a read of a
 * series' whole range is answered from the index's sums). */
static void read_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    reads *r = ctx;
    kiln_selector_t *sel;
    const char *q = SYNTH_TYPE "{service_name=\"api\"}";
    if (kiln_selector_parse(q, strlen(q), &sel, NULL) != KILN_OK)
        return;
    kiln_tree_t *t = kiln_tree_create();
    r->last = check_head_merge_st(kiln_block_head(b), sel, Q_T0, Q_T0 + 1, NULL, 0, NULL, 0, t);
    r->blocks++;
    r->failed += r->last != KILN_OK;
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
}

static reads read_all(kiln_blockset_t *bs, const char *tenant)
{
    reads r = {0, 0, KILN_OK};
    kiln_blockset_each(bs, tenant, 0, 0, read_block, &r);
    return r;
}

static size_t quarantined(kiln_blockset_t *bs)
{
    size_t n, q;
    kiln_blockset_counts(bs, &n, &q);
    return q;
}

TEST(damaged_chunk_quarantined)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/damaged", root);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(dir, &s, NULL));
    char bad[KILN_ULID_LEN + 1], good[KILN_ULID_LEN + 1];
    put_two_profiles(s, "q", bad);
    put_two_profiles(s, "q", good);
    char path[256];
    snprintf(path, sizeof(path), "%s/q/blocks/%s/samples", dir, bad);
    CHECK(check_corrupt_first_chunk(path));
    kiln_blockset_t *bs = kiln_blockset_create(s);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    CHECK_EQ(count(bs, "q"), 2); /* it opens: chunks are checked when read */
    reads r = read_all(bs, "q");
    CHECK_EQ(r.blocks, 2);
    CHECK_EQ(r.failed, 1); /* that read is data_loss to its caller */
    /* Skipped from then on, quarantined and counted at the next sync. */
    r = read_all(bs, "q");
    CHECK_EQ(r.blocks, 1);
    CHECK_EQ(r.failed, 0);
    CHECK_EQ(quarantined(bs), 0);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    CHECK_EQ(quarantined(bs), 1);
    CHECK_EQ(count(bs, "q"), 1);
    CHECK_OK(kiln_blockset_sync(bs, NULL)); /* never opened again */
    CHECK_EQ(quarantined(bs), 1);
    CHECK_EQ(count(bs, "q"), 1);
    kiln_blockset_destroy(bs);
    kiln_objstore_close(s);
}

TEST(s3_outage_does_not_quarantine)
{
    s3server srv;
    memset(&srv, 0, sizeof(srv));
    if (s3server_start(&srv) != 0) {
        CHECK(!"versitygw did not start");
        return;
    }
    kiln_objstore_config c = {.backend = "s3"};
    c.s3 = (kiln_objstore_s3_config){.endpoint = srv.endpoint,
                                     .bucket = srv.bucket,
                                     .access_key_id = S3SERVER_KEY,
                                     .secret_access_key = S3SERVER_SECRET,
                                     .force_path_style = true,
                                     .timeout_ms = 2000,
                                     .max_retries = 1};
    kiln_objstore_t *s = NULL;
    CHECK_OK(kiln_objstore_open(&c, &s, NULL));
    if (s == NULL) {
        s3server_stop(&srv);
        return;
    }
    char ulid[KILN_ULID_LEN + 1];
    put_two_profiles(s, "o", ulid);
    kiln_blockset_t *bs = kiln_blockset_create(s);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    s3server_kill(&srv);
    reads r = read_all(bs, "o");
    CHECK_EQ(r.failed, 1); /* the chunk did not load: data_loss to the caller */
    CHECK_EQ(r.last, KILN_DATA_LOSS);
    r = read_all(bs, "o"); /* but the block is not shut out */
    CHECK_EQ(r.blocks, 1);
    kiln_err err;
    CHECK_EQ(kiln_blockset_sync(bs, &err), KILN_UNAVAILABLE);
    CHECK_EQ(s3server_launch(&srv), 0);
    CHECK_OK(kiln_blockset_sync(bs, NULL));
    CHECK_EQ(quarantined(bs), 0);
    r = read_all(bs, "o");
    CHECK_EQ(r.blocks, 1);
    CHECK_EQ(r.failed, 0);
    kiln_blockset_destroy(bs);
    kiln_objstore_close(s);
    s3server_stop(&srv);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/kiln-blockset-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    RUN(sync_many_blocks);
    RUN(damaged_chunk_quarantined);
    RUN(s3_outage_does_not_quarantine);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
