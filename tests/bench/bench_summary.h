/* SPDX-License-Identifier: Apache-2.0
 * bench_summary: one machine-readable figure for the table `make bench`
 * ends with (tests/bench/summary.sh). Printed as `SUMMARY name value unit`
 * and, when KILN_BENCH_SUMMARY names a file, appended to it, so the table
 * does not depend on parsing each bench's human-readable output. */
#ifndef KILN_BENCH_SUMMARY_H
#define KILN_BENCH_SUMMARY_H

#include <stdio.h>
#include <stdlib.h>

static inline void bench_summary(const char *name, double value, const char *unit)
{
    printf("SUMMARY %s %.4g %s\n", name, value, unit);
    const char *path = getenv("KILN_BENCH_SUMMARY");
    FILE *f = path != NULL && *path != '\0' ? fopen(path, "a") : NULL;
    if (f == NULL)
        return;
    fprintf(f, "SUMMARY %s %.4g %s\n", name, value, unit);
    fclose(f);
}

#endif
