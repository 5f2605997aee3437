/* SPDX-License-Identifier: Apache-2.0
 * bench_env: what the in-process push benchmarks share: a distributor over
 * a fresh ingester in its own temporary directory, as -target=all wires
 * them, under kiln_bench_limits, its WAL written but not fsynced (the
 * figures are the push path's CPU, not the disk's); and reading a test
 * file whole. Header-only; aborts when the environment cannot be made. */
#ifndef KILN_TEST_BENCH_ENV_H
#define KILN_TEST_BENCH_ENV_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_limits.h"
#include "buf.h"
#include "db.h"
#include "distributor.h"
#include "ingester.h"
#include "metrics.h"
#include "overrides.h"

typedef struct bench_env {
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    kiln_ingester_t *ing;
    kiln_distributor_t *d;
    char dir[32]; /* the ingester's state directory, removed by bench_env_destroy */
} bench_env;

static inline void bench_env_create(bench_env *e)
{
    kiln_limits l = kiln_bench_limits();
    e->limits = kiln_overrides_create(&l);
    e->metrics = kiln_metrics_create();
    snprintf(e->dir, sizeof(e->dir), "/tmp/kiln-bench-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        perror("bench: mkdtemp");
        abort();
    }
    kiln_ingester_config ic = {
        .storage_path = e->dir, .wal_segment_bytes = 1u << 30, .wal_no_fsync = true};
    kiln_err err;
    if (kiln_ingester_create(&ic, &e->ing, &err) != KILN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        abort();
    }
    kiln_distributor_config dc = {e->limits, l.max_profile_bytes,
                                  kiln_db_store(kiln_ingester_db(e->ing))};
    e->d = kiln_distributor_create(&dc, e->metrics);
}

static inline int bench_env_remove(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "bench: cannot remove %s\n", path);
    return 0;
}

static inline void bench_env_destroy(bench_env *e)
{
    kiln_distributor_destroy(e->d);
    kiln_ingester_destroy(e->ing);
    kiln_metrics_destroy(e->metrics);
    kiln_overrides_destroy(e->limits);
    /* Each run writes hundreds of MB of WAL: leave nothing behind. */
    nftw(e->dir, bench_env_remove, 8, FTW_DEPTH | FTW_PHYS);
}

/* The file at path appended to out; -1 when it cannot be read. */
static inline int bench_read_file(const char *path, kiln_buf *out)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        kiln_buf_append(out, chunk, n);
    int bad = ferror(fp);
    fclose(fp);
    return bad ? -1 : 0;
}

#endif
