/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/folded: folded (and the bracketed variant)
 * and lines text, UTF-16 included, under a 64 MiB arena cap. Whatever
 * parses must finish into a profile that validates and normalises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "folded.h"
#include "pprof.h"
#include "pprof_build.h"

#define ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sets the sample types, finishes, validates and normalises b. Validation
 * may reject only invalid UTF-8 in frame names. */
static void check_built(kiln_arena_t *a, kiln_pprof_build_t *b)
{
    for (size_t i = 0; i < kiln_pprof_build_n_types(b); i++)
        kiln_pprof_build_sample_type(b, i, "samples", "count");
    kiln_pprof_t p;
    kiln_err err;
    kiln_status st = kiln_pprof_build_finish(b, &p, &err);
    if (st == KILN_OK) {
        st = kiln_pprof_validate(&p, &err);
        if (st == KILN_OK)
            st = kiln_pprof_normalize(a, &p, 16, &err);
    }
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int lines = 0; lines < 2; lines++) {
        kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
        kiln_pprof_build_t *b = NULL;
        kiln_err err;
        kiln_status st = lines ? kiln_lines_parse(a, data, size, &b, &err)
                               : kiln_folded_parse(a, data, size, &b, &err);
        if (st == KILN_OK)
            check_built(a, b);
        else if (st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
            abort();
        kiln_arena_destroy(a);
    }
    return 0;
}
