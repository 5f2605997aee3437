/* SPDX-License-Identifier: Apache-2.0
 * peak_rss: the process's resident set now and at its peak (VmHWM) for the
 * benchmarks, and the peak's reset, so a phase's own peak can be read.
 * Linux only; header-only. */
#ifndef KILN_TEST_PEAK_RSS_H
#define KILN_TEST_PEAK_RSS_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

/* Resident set now (/proc/self/statm), in KiB; 0 if unknown. */
static inline long rss_kb(void)
{
    long size = 0, res = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp != NULL) {
        if (fscanf(fp, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(fp);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

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
