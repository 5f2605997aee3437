/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/pprof: decode, validate, normalize and encode
 * arbitrary bytes under a 64 MiB arena cap, then check that the encoding of
 * a normalised profile decodes, validates and normalises to the same samples. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "buf.h"
#include "go_fix.h"
#include "pprof.h"

#define ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoding and validation may only fail on bad input or the arena cap. */
static void expect_input_error(kiln_status st)
{
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
}

/* The encoding of normalised p must decode, validate and normalise back to
 * as many samples. */
static void check_roundtrip(const kiln_pprof_t *p)
{
    kiln_buf b;
    kiln_buf_init(&b, ARENA_CAP);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t q;
    kiln_err err;
    if (!kiln_pprof_encode(p, true, &b))
        abort();
    if (kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &q, &err) != KILN_OK ||
        kiln_pprof_validate(&q, &err) != KILN_OK || q.n_samples != p->n_samples ||
        kiln_pprof_normalize(a, &q, 0, &err) != KILN_OK || q.n_samples != p->n_samples)
        abort();
    kiln_arena_destroy(a);
    kiln_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_pprof_t p;
    kiln_err err;
    kiln_status st = kiln_pprof_decode(a, data, size, &p, &err);
    if (st == KILN_OK) {
        kiln_buf raw;
        kiln_buf_init(&raw, ARENA_CAP);
        kiln_pprof_encode(&p, false, &raw); /* as decoded, ids kept */
        kiln_buf_free(&raw);
        st = kiln_pprof_validate(&p, &err);
    }
    if (st == KILN_OK) {
        size_t max_depth = size > 0 ? data[size - 1] % 8 : 0; /* 0 = no limit */
        st = kiln_pprof_normalize(a, &p, max_depth, &err);
        if (st == KILN_OK)
            check_roundtrip(&p);
        /* The Go repairs on any normalised profile: still one to encode. */
        if (st == KILN_OK && kiln_go_fix(a, &p, &err) == KILN_OK)
            check_roundtrip(&p);
    }
    expect_input_error(st);
    kiln_arena_destroy(a);
    return 0;
}
