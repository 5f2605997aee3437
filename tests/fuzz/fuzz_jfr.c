/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/format/jfr: the input as a recording
 * (gunzipped first when it is gzip, so the shared testdata's .jfr.gz files
 * seed it) under a 64 MiB arena cap, and the input as the agent's
 * LabelsSnapshot. Whatever converts must validate and normalise. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "gzip.h"
#include "jfr.h"
#include "pprof.h"

#define ARENA_CAP (64u << 20)
#define MAX_RECORDING (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(kiln_status st, kiln_arena_t *a, kiln_jfr_result *r)
{
    kiln_err err;
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
    for (size_t i = 0; st == KILN_OK && i < r->n; i++) {
        kiln_status v = kiln_pprof_validate(&r->profiles[i].profile, &err);
        if (v == KILN_OK)
            v = kiln_pprof_normalize(a, &r->profiles[i].profile, 0, &err);
        if (v != KILN_OK && v != KILN_INVALID_ARGUMENT && v != KILN_RESOURCE_EXHAUSTED)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_jfr_result r;
    kiln_err err;
    const uint8_t *rec = data;
    size_t len = size;
    if (kiln_gunzip_maybe(a, data, size, MAX_RECORDING, &rec, &len, &err) == KILN_OK) {
        kiln_jfr_input in = {1, 2, 100, NULL, 0};
        check(kiln_jfr_parse(a, rec, len, &in, &r, &err), a, &r);
    }
    kiln_jfr_input labels = {1, 2, 100, data, size};
    check(kiln_jfr_parse(a, (const uint8_t *)"", 0, &labels, &r, &err), a, &r);
    kiln_arena_destroy(a);
    return 0;
}
