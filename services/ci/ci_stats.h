/* SPDX-License-Identifier: Apache-2.0
 * The CI gate's arithmetic: per-run function shares from a pprof profile, a
 * Mann-Whitney U test between baseline and current runs, and the verdict per
 * function. Single-threaded; every table is owned by its caller and freed with
 * its _free function. No I/O. */
#ifndef KILN_CI_STATS_H
#define KILN_CI_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/** One function's values in one run, as shares of that run's whole profile. */
typedef struct kiln_ci_fn {
    char *name;   /* owned */
    double self;  /* share of the profile's total value whose leaf is this function */
    double total; /* share of the total value with this function anywhere on the stack */
} kiln_ci_fn;

/** A run: the functions of its merged profile and the profile's total value. */
typedef struct kiln_ci_run {
    kiln_ci_fn *fns;
    size_t n_fns;
    double value; /* sum of the profile's last sample type (e.g. CPU nanoseconds) */
} kiln_ci_run;

/** Fills *run from a serialised google.v1.Profile (pprof, not gzipped). Returns KILN_OK,
 * or KILN_INVALID_ARGUMENT (with err) when the bytes do not decode. */
kiln_status kiln_ci_run_from_pprof(const uint8_t *data, size_t len, kiln_ci_run *run,
                                   kiln_err *err);
/** Adds `value` of a stack (leaf first) to a run under construction; shares are made by
 * kiln_ci_run_normalise. For tests and folded input. */
void kiln_ci_run_add_stack(kiln_ci_run *run, const char *const *frames, size_t n, double value);
/** Turns the absolute values added with kiln_ci_run_add_stack into shares. */
void kiln_ci_run_normalise(kiln_ci_run *run);
/** Frees what a run owns (not the struct). */
void kiln_ci_run_free(kiln_ci_run *run);

/** Mann-Whitney U test of y against x (normal approximation with tie and continuity
 * corrections). Returns the two-sided p-value (1 when either side is empty or all
 * values tie). */
double kiln_ci_mann_whitney(const double *x, size_t nx, const double *y, size_t ny);

/** Which value of a function a row compares. */
typedef enum { KILN_CI_SELF = 0, KILN_CI_TOTAL = 1, KILN_CI_PROFILE = 2 } kiln_ci_metric;

/** One comparison row: a function's (or the whole profile's) baseline and current means. */
typedef struct kiln_ci_row {
    const char *name; /* borrowed from a run */
    kiln_ci_metric metric;
    double base, cur; /* means over runs: shares, or the profile's value for PROFILE */
    double change;    /* (cur - base) / base; +inf when base is 0 */
    double p;         /* two-sided Mann-Whitney p-value */
    double threshold; /* relative change past which a significant increase fails */
    int regression;   /* significant, increased and past the threshold */
    int improvement;  /* significant, decreased and past the threshold */
} kiln_ci_row;

/** Gate settings. */
typedef struct kiln_ci_opts {
    double threshold;         /* default relative change, e.g. 0.10 */
    double alpha;             /* significance level, e.g. 0.05 */
    double min_share;         /* functions below this share on both sides are not compared */
    double min_delta;         /* shares must also move by this much (absolute), e.g. 0.01 */
    double profile_threshold; /* relative change of the whole profile's value; <= 0: off */
    const char **fn_names;    /* per-function thresholds (borrowed) */
    const double *fn_thresholds;
    size_t n_fn_thresholds;
} kiln_ci_opts;

/** Compares baseline runs with current runs for every function, self and total, plus the
 * whole profile when opts->profile_threshold > 0. *rows (the caller frees it)
 * is sorted by change, largest increase first; names borrow from the runs. */
void kiln_ci_compare(const kiln_ci_run *base, size_t n_base, const kiln_ci_run *cur, size_t n_cur,
                     const kiln_ci_opts *opts, kiln_ci_row **rows, size_t *n_rows);

#endif
