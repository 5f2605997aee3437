/* SPDX-License-Identifier: Apache-2.0
 * peak_rss: the process's peak resident set (VmHWM) for the benchmarks,
 * and its reset, so a phase's own peak can be read. Linux only; header-only. */
#ifndef KILN_TEST_PEAK_RSS_H
#define KILN_TEST_PEAK_RSS_H

#include <stdbool.h>
#include <stdio.h>

/* Peak resident set since the last reset (VmHWM), in MB; -1 if unknown. */
static inline double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL && kb < 0)
        sscanf(line, "VmHWM: %ld kB", &kb);
    fclose(f);
    return kb < 0 ? -1 : (double)kb / 1024;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false if refused. */
static inline bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

#endif
