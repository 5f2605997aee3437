/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: a block written without its per-series sums (as blocks were
 * before them) builds each series' sums on the first query covering it,
 * and they give the head's own flame graph and totals, for a block of
 * many small series over many stack nodes (sums built from the series'
 * own samples, not from an array over every node of the block) and for
 * one series touching most nodes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "check.h"
#include "head_read.h"
#include "selector.h"
#include "synth.h"
#include "flamegraph.h"
#include "tree.h"

#define SERIES 400
#define T0_NS 1700000000000000000LL

static char root[64];

/* SERIES series pod=<i>, each one profile main -> f<i> of value i+1, and
 * one series "wide" holding every stack at once. */
static kiln_head_t *many_series_head(kiln_arena_t *a)
{
    kiln_head_t *h = kiln_head_create();
    for (int i = 0; i < SERIES; i++) {
        kiln_pprof_t p;
        char *leaf = kiln_arena_printf(a, "f%d", i);
        if (!synth_profile_leaf(a, i + 1, T0_NS + i * 1000000LL, leaf, &p))
            return h;
        kiln_label_t l[] = {{"__name__", "process_cpu"},
                            {"pod", kiln_arena_printf(a, "%d", i)},
                            {"service_name", "api"}};
        check_head_append(h, l, 3, &p, T0_NS + i * 1000000LL, 0);
        kiln_label_t w[] = {{"__name__", "process_cpu"}, {"service_name", "wide"}};
        check_head_append(h, w, 2, &p, T0_NS, 0);
    }
    return h;
}

/* Merges q over all time into a tree, marshalled into out (a Pyroscope tree). */
static void merged(kiln_head_t *h, const char *q, kiln_buf *out)
{
    kiln_selector_t *sel;
    CHECK_OK(kiln_selector_parse(q, strlen(q), &sel, NULL));
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge(h, sel, 0, 0, t);
    kiln_tree_marshal(t, 1 << 20, out);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
}

/* Cuts a block's index to its first section (12-byte header + body). */
static void drop_sums(kiln_objstore_t *s, const char *ulid)
{
    char name[128];
    snprintf(name, sizeof(name), "sums/blocks/%s/index", ulid);
    kiln_buf idx;
    kiln_buf_init(&idx, 0);
    CHECK_OK(kiln_objstore_get(s, name, &idx, NULL));
    const uint8_t *hd = (const uint8_t *)idx.ptr;
    size_t first =
        12 + ((size_t)hd[4] | (size_t)hd[5] << 8 | (size_t)hd[6] << 16 | (size_t)hd[7] << 24);
    CHECK(first < idx.len);
    CHECK_OK(kiln_objstore_put(s, name, idx.ptr, first, NULL));
    kiln_buf_free(&idx);
}

TEST(sums_built_without_the_index_section)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_t *h = many_series_head(a);
    kiln_objstore_t *s;
    CHECK_OK(kiln_objstore_open_fs(root, &s, NULL));
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    char ulid[KILN_ULID_LEN + 1];
    CHECK_OK(kiln_block_write(s, "sums", h, &meta, ulid, NULL));
    drop_sums(s, ulid);
    kiln_block_t *b;
    CHECK_OK(kiln_block_open(s, "sums", ulid, &b, NULL));
    const char *qs[] = {SYNTH_TYPE "{service_name=\"api\"}", SYNTH_TYPE "{service_name=\"wide\"}",
                        SYNTH_TYPE "{pod=\"7\"}", SYNTH_TYPE "{}"};
    for (int round = 0; round < 2; round++) { /* built, then cached */
        for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
            kiln_buf want, got;
            kiln_buf_init(&want, 0);
            kiln_buf_init(&got, 0);
            merged(h, qs[i], &want);
            merged(kiln_block_head(b), qs[i], &got);
            CHECK(want.len > 10);
            CHECK_EQ(got.len, want.len);
            CHECK(got.len == want.len && memcmp(got.ptr, want.ptr, want.len) == 0);
            kiln_buf_free(&want);
            kiln_buf_free(&got);
        }
    }
    kiln_block_close(b);
    kiln_objstore_close(s);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/kiln-block-sums-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 1;
    RUN(sums_built_without_the_index_section);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
