/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for the CI gate's reading of a merged profile
 * (services/ci/ci_stats.h): any bytes either decode into named functions or
 * fail with invalid_argument; never a crash, a leak or an out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ci_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_ci_run run = {0};
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_ci_run_from_pprof(data, size, &run, &err);
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT)
        abort();
    for (size_t i = 0; st == KILN_OK && i < run.n_fns; i++)
        if (run.fns[i].name == NULL)
            abort();
    kiln_ci_run_free(&run);
    return 0;
}
