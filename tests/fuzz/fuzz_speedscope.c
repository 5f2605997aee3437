/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/speedscope (and so common/json_reader):
 * arbitrary bytes as a speedscope file under a 64 MiB arena cap. Every
 * profile that parses must finish, validate and normalise; the input is also
 * skipped as plain JSON, which must agree on well-formedness. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "json_reader.h"
#include "pprof.h"
#include "pprof_build.h"
#include "speedscope.h"

#define ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_profile(kiln_arena_t *a, const kiln_speedscope_profile *sp)
{
    kiln_pprof_build_sample_type(sp->b, 0, "samples", "count");
    kiln_pprof_t p;
    kiln_err err;
    kiln_status st = kiln_pprof_build_finish(sp->b, &p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(&p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_normalize(a, &p, 0, &err);
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_speedscope_profile *p;
    size_t n;
    kiln_err err;
    kiln_status st = kiln_speedscope_parse(a, data, size, &p, &n, &err);
    if (st == KILN_OK) {
        for (size_t i = 0; i < n; i++)
            check_profile(a, &p[i]);
    } else if (st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED) {
        abort();
    }
    kiln_json j;
    kiln_json_init(&j, data, size, "fuzz", &err);
    bool ok = kiln_json_skip(&j) && kiln_json_end(&j);
    if (st == KILN_OK && !ok)
        abort(); /* speedscope accepted text that is not JSON */
    kiln_arena_destroy(a);
    return 0;
}
