/* SPDX-License-Identifier: Apache-2.0
 * The CI gate's outputs: a Markdown report for reviewers and JUnit XML for CI
 * test tabs, both from the rows of kiln_ci_compare. Writes to a caller's FILE;
 * borrows everything; single-threaded. */
#ifndef KILN_CI_REPORT_H
#define KILN_CI_REPORT_H

#include <stdio.h>

#include "ci_stats.h"

/** What the report says about the comparison besides its rows. */
typedef struct kiln_ci_report_info {
    const char *baseline; /* the baseline selector, as shown */
    const char *current;  /* the current selector */
    size_t n_base, n_cur; /* runs on each side */
    const char *diff_url; /* link to Kiln's diff view, or NULL */
    size_t top;           /* rows shown per table */
} kiln_ci_report_info;

/** Writes the Markdown report: a verdict line, the top regressions and improvements (both
 * values, the change, the confidence) and the diff link. */
void kiln_ci_report_markdown(FILE *f, const kiln_ci_row *rows, size_t n,
                             const kiln_ci_report_info *info);
/** Writes JUnit XML: one test case per compared row, a failure per regression. */
void kiln_ci_report_junit(FILE *f, const kiln_ci_row *rows, size_t n,
                          const kiln_ci_report_info *info);
/** Counts the rows that fail the gate. */
size_t kiln_ci_regressions(const kiln_ci_row *rows, size_t n);

#endif
