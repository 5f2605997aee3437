/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for the storage engine's WAL record (docs/wal-format.md), what
 * Kiln reads back from its own disk on every start: a record either decodes
 * into parts that a head takes and a query merges without a crash, or is
 * refused with KILN_DATA_LOSS (or KILN_FAILED_PRECONDITION for a newer
 * format). A record that decodes re-encodes to one that decodes the same.
 *
 * The first input byte picks the mode: even, the rest is the record itself;
 * odd, the rest flips bytes of a valid record (pairs of position, xor), so
 * the fuzzer reaches past the header checks from the first run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "head.h"
#include "record.h"
#include "pprof.h"
#include "small_profile.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kiln_buf valid; /* a real record: two parts, labels, a span label */

static void make_valid(void)
{
    kiln_arena_t *a = kiln_arena_create(0);
    static kiln_pprof_t p;
    fuzz_small_profile(a, &p);
    static const kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"service_name", "svc"}};
    static const kiln_label_t l2[] = {
        {"__name__", "process_cpu"}, {"pod", "p-1"}, {"service_name", "svc"}};
    kiln_head_part parts[2] = {{l1, 2, &p, 42}, {l2, 3, &p, 0}};
    kiln_buf_init(&valid, 0);
    kiln_record_encode("tenant-a", parts, 2, &valid);
    kiln_arena_destroy(a);
}

/* Appends the parts to a fresh head as replay does, and merges it whole. */
static void apply_and_query(const kiln_record *rec)
{
    kiln_head_t *h = kiln_head_create();
    kiln_head_append_batch(h, rec->parts, rec->n);
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.tree = t};
    (void)kiln_head_read(h, &f, &v, NULL);
    (void)kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_head_destroy(h);
}

static void roundtrip(const kiln_record *rec)
{
    kiln_buf again;
    kiln_buf_init(&again, 0);
    kiln_record_encode(rec->tenant, rec->parts, rec->n, &again);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_record back;
    if (kiln_record_decode(a, (const uint8_t *)again.ptr, again.len, &back, NULL) != KILN_OK ||
        back.n != rec->n || strcmp(back.tenant, rec->tenant) != 0)
        abort();
    kiln_arena_destroy(a);
    kiln_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (valid.ptr == NULL)
        make_valid();
    if (size == 0)
        return 0;
    uint8_t *rec_bytes;
    size_t len;
    if (data[0] % 2 == 0) {
        len = size - 1;
        rec_bytes = malloc(len + 1);
        memcpy(rec_bytes, data + 1, len);
    } else {
        len = valid.len;
        rec_bytes = malloc(len);
        memcpy(rec_bytes, valid.ptr, len);
        for (size_t i = 1; i + 2 < size; i += 3)
            rec_bytes[((size_t)data[i] << 8 | data[i + 1]) % len] ^= data[i + 2];
    }
    kiln_arena_t *a = kiln_arena_create(64u << 20);
    kiln_record rec;
    kiln_err err;
    kiln_status st = kiln_record_decode(a, rec_bytes, len, &rec, &err);
    if (st == KILN_OK) {
        apply_and_query(&rec);
        roundtrip(&rec);
    } else if (st != KILN_DATA_LOSS && st != KILN_FAILED_PRECONDITION &&
               st != KILN_RESOURCE_EXHAUSTED) {
        abort();
    }
    kiln_arena_destroy(a);
    free(rec_bytes);
    return 0;
}
