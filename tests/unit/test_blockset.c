/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: a block set synced from a store of many blocks of several
 * tenants holds exactly the listed, complete blocks that no compacted block
 * of the same tenant names as a source, and follows deletions; blocks are
 * found by (tenant, ulid) in a sorted set, not by a scan per listed block. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "blockset.h"
#include "check.h"
#include "head_read.h"
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

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/kiln-blockset-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    RUN(sync_many_blocks);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
