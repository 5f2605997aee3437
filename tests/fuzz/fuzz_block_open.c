/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for block files (docs/block-format.md), what every reader
 * opens from the object store: a real block is written once, then each input
 * corrupts one of its objects and the block is opened and, if it opens,
 * queried whole. Opening either succeeds or fails with KILN_DATA_LOSS; it
 * never crashes or reads out of bounds.
 *
 * Checksums would stop nearly every blind mutation at the first section,
 * so the target corrupts the decompressed bytes and seals the sections
 * again (compressed, checksummed) as a buggy or malicious writer would:
 * input[0] picks the object, input[1] even flips bytes of its sections
 * (pairs of position and xor from input[2..]), odd replaces the section
 * input[2] picks with input[3..]. meta.json is JSON and is replaced whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "block.h"
#include "head.h"
#include "objstore.h"
#include "small_profile.h"
#include "tree.h"
#include "head_append.h"

#define SEC_HDR 12
#define MAX_SECTIONS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const objects[] = {"index", "symbols", "samples", "meta.json"};
static kiln_buf original[4];
static char ulid[KILN_ULID_LEN + 1];
static char root[64];
static kiln_objstore_t *store;

/* The temporary store goes when the fuzzer exits. */
static void remove_store(void)
{
    for (size_t i = 0; i < 4; i++) {
        char name[128];
        snprintf(name, sizeof(name), "t/blocks/%s/%s", ulid, objects[i]);
        kiln_objstore_delete(store, name, NULL);
    }
    kiln_objstore_close(store);
    rmdir(root);
}

static void write_valid_block(void)
{
    snprintf(root, sizeof(root), "/dev/shm/kiln-fuzz-block-%d", (int)getpid());
    if (kiln_objstore_open_fs(root, &store, NULL) != KILN_OK)
        abort();
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    fuzz_small_profile(a, &p);
    kiln_head_t *h = kiln_head_create();
    static const char *const pods[] = {"p-1", "p-2", "p-3"};
    for (size_t i = 0; i < 3; i++) {
        kiln_label_t l[] = {{"__name__", "process_cpu"}, {"pod", pods[i]}, {"service_name", "s"}};
        check_head_append(h, l, 3, &p, 1700000000000000000LL + (int64_t)i, 0);
    }
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    if (kiln_block_write(store, "t", h, &meta, ulid, NULL) != KILN_OK)
        abort();
    for (size_t i = 0; i < 4; i++) {
        char name[128];
        snprintf(name, sizeof(name), "t/blocks/%s/%s", ulid, objects[i]);
        kiln_buf_init(&original[i], 0);
        if (kiln_objstore_get(store, name, &original[i], NULL) != KILN_OK)
            abort();
    }
    atexit(remove_store);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static void seal(kiln_buf *out, const uint8_t *raw, size_t len)
{
    size_t bound = ZSTD_compressBound(len);
    kiln_buf_reserve(out, SEC_HDR + bound);
    uint8_t *h = (uint8_t *)out->ptr + out->len;
    size_t n = ZSTD_compress(h + SEC_HDR, bound, raw, len, 1);
    if (ZSTD_isError(n))
        abort();
    put32(h, (uint32_t)len), put32(h + 4, (uint32_t)n);
    put32(h + 8, (uint32_t)XXH3_64bits(h + SEC_HDR, n));
    out->len += SEC_HDR + n;
}

/* The object rebuilt from its sections, each decompressed, changed as the
 * input says, and sealed again. */
static void corrupt_sections(const kiln_buf *in, const uint8_t *d, size_t n, kiln_buf *out)
{
    const uint8_t *p = (const uint8_t *)in->ptr, *end = p + in->len;
    for (size_t k = 0; k < MAX_SECTIONS && end - p >= SEC_HDR; k++) {
        uint32_t rl = get32(p), cl = get32(p + 4);
        uint8_t *raw = malloc(rl + 1);
        if (ZSTD_isError(ZSTD_decompress(raw, rl, p + SEC_HDR, cl)))
            abort();
        if (n > 1 && d[0] % 2 == 1 && d[1] % MAX_SECTIONS == k) {
            seal(out, d + 2, n - 2);
        } else {
            for (size_t i = 1; d[0] % 2 == 0 && rl > 0 && i + 2 < n; i += 3)
                raw[((size_t)d[i] << 8 | d[i + 1]) % rl] ^= d[i + 2];
            seal(out, raw, rl);
        }
        free(raw);
        p += SEC_HDR + cl;
    }
}

static void open_and_query(void)
{
    kiln_block_t *b;
    kiln_err err;
    kiln_status st = kiln_block_open(store, "t", ulid, &b, &err);
    if (st != KILN_OK) {
        if (st != KILN_DATA_LOSS && st != KILN_NOT_FOUND)
            abort();
        return;
    }
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.tree = t};
    (void)kiln_head_read(kiln_block_head(b), &f, &v,
                         NULL); /* DATA_LOSS is an answer, not a crash */
    kiln_tree_destroy(t);
    kiln_block_close(b);
}

static void put_object(size_t i, const kiln_buf *b)
{
    char name[128];
    snprintf(name, sizeof(name), "t/blocks/%s/%s", ulid, objects[i]);
    if (kiln_objstore_put(store, name, b->ptr ? b->ptr : "", b->len, NULL) != KILN_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL)
        write_valid_block();
    if (size < 2)
        return 0;
    size_t obj = data[0] % 4;
    kiln_buf changed;
    kiln_buf_init(&changed, 0);
    if (obj == 3)
        kiln_buf_append(&changed, data + 1, size - 1);
    else
        corrupt_sections(&original[obj], data + 1, size - 1, &changed);
    put_object(obj, &changed);
    open_and_query();
    put_object(obj, &original[obj]);
    kiln_buf_free(&changed);
    return 0;
}
