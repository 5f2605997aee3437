/* SPDX-License-Identifier: Apache-2.0
 * bench_flush: how long the flush of a large head takes at shutdown (issue
 * 15: 14,894 profiles took 12.9 s; the target is under 2.6 s). A real
 * ingester (WAL, head, filesystem object store with its fsyncs) is filled
 * through the distributor's pipeline with about -n profiles of real files
 * (values varied per push, 50 pods, times 15 s apart), then kiln_db_flush
 * (what kiln_db_close runs with flush_on_close) is timed writing the
 * block, in wall seconds and the process's CPU seconds meanwhile (its
 * threads do nothing else then; on a shared machine the CPU figure moves
 * less). -r repeats fill and flush; the median
 * wall time goes to the summary. Prints figures only; it is not a test.
 *
 * Usage: bench_flush [-n profiles] [-r rounds] [file ...]
 * (files relative to $KILN_TESTDATA unless absolute). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "bench_env.h"
#include "bench_limits.h"
#include "bench_summary.h"
#include "clock.h"
#include "db.h"
#include "distributor.h"
#include "gzip.h"
#include "ingester.h"
#include "metrics.h"
#include "overrides.h"
#include "pprof.h"
#include "xmalloc.h"

#ifndef KILN_TESTDATA_DEFAULT
#define KILN_TESTDATA_DEFAULT "../shared/testdata"
#endif

#define PODS 50
#define VARIANTS 16                 /* value variations per file, pushed in turn */
#define PUSH_EVERY_NS 15000000000LL /* an SDK's upload period */
#define DROP 0.10                   /* share of samples missing from a variant */
#define MAX_ROUNDS 15

/* Go's CPU profile (3,006 samples, two sample types: two profiles a push),
 * the heaviest per profile of pushload's mix; other files may be named. */
static const char *const default_files[] = {"gdu/default.pgo"};
#define N_DEFAULT (sizeof(default_files) / sizeof(default_files[0]))

/* One file: its variants as a client sends them (plain pprof bytes). */
typedef struct bfile {
    char rel[256];
    char service[96];
    const char *name; /* __name__ */
    kiln_buf variant[VARIANTS];
} bfile;

static uint64_t rng_s = 0x9E3779B97F4A7C15ULL; /* fixed: every run pushes the same */

static double rng_unit(void)
{
    rng_s ^= rng_s >> 12;
    rng_s ^= rng_s << 25;
    rng_s ^= rng_s >> 27;
    return (double)((rng_s * 0x2545F4914F6CDD1DULL) >> 11) * 0x1p-53;
}

/* A variant of base: ~DROP of the samples left out, each kept sample's
 * values scaled by one factor in 0.5..1.5 (a nonzero value stays nonzero). */
static void vary(const kiln_pprof_t *base, kiln_arena_t *a, kiln_pprof_t *out)
{
    *out = *base;
    out->samples = kiln_arena_alloc(a, (base->n_samples + 1) * sizeof(*out->samples));
    out->values = kiln_arena_alloc(a, (base->n_values + 1) * sizeof(*out->values));
    size_t ns = 0, nv = 0;
    for (size_t i = 0; i < base->n_samples; i++) {
        const kiln_pprof_sample *s = &base->samples[i];
        if (rng_unit() < DROP)
            continue;
        double k = 0.5 + rng_unit();
        out->samples[ns] = *s;
        out->samples[ns++].value_off = (uint32_t)nv;
        for (uint32_t j = 0; j < s->n_values; j++) {
            int64_t v = base->values[s->value_off + j];
            int64_t w = (int64_t)((double)v * k);
            out->values[nv++] = v != 0 && w == 0 ? v : w;
        }
    }
    out->n_samples = ns;
    out->n_values = nv;
}

static int load_file(bfile *f, const char *root, const char *rel)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->rel, sizeof(f->rel), "%s", rel);
    const char *base = strrchr(rel, '/');
    snprintf(f->service, sizeof(f->service), "flush-%.80s", base ? base + 1 : rel);
    f->name = strstr(rel, "-js.") != NULL ? "wall" : "process_cpu";
    char path[1024];
    snprintf(path, sizeof(path), rel[0] == '/' ? "%s%s" : "%s/%s", rel[0] == '/' ? "" : root, rel);
    kiln_buf disk;
    kiln_buf_init(&disk, 0);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    kiln_pprof_t p;
    kiln_status st = bench_read_file(path, &disk) == 0 ? KILN_OK : KILN_NOT_FOUND;
    if (st == KILN_OK)
        st = kiln_gunzip_maybe(a, (const uint8_t *)disk.ptr, disk.len, 256u << 20, &raw, &raw_len,
                               &err);
    if (st == KILN_OK)
        st = kiln_pprof_decode(a, raw, raw_len, &p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(&p, &err);
    for (int v = 0; st == KILN_OK && v < VARIANTS; v++) {
        kiln_pprof_t q;
        vary(&p, a, &q);
        kiln_buf_init(&f->variant[v], 0);
        if (!kiln_pprof_encode(&q, false, &f->variant[v]))
            st = KILN_INTERNAL;
    }
    if (st != KILN_OK)
        fprintf(stderr, "bench_flush: %s: %s %s\n", path, kiln_status_str(st), err.msg);
    kiln_arena_destroy(a);
    kiln_buf_free(&disk);
    return st == KILN_OK ? 0 : -1;
}

typedef struct env {
    char dir[64];
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    kiln_ingester_t *ing;
    kiln_distributor_t *d;
} env;

static int on_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void env_destroy(env *e)
{
    kiln_distributor_destroy(e->d);
    kiln_ingester_destroy(e->ing);
    kiln_metrics_destroy(e->metrics);
    kiln_overrides_destroy(e->limits);
    if (e->dir[0] != '\0')
        nftw(e->dir, on_remove, 8, FTW_DEPTH | FTW_PHYS);
}

/* An ingester on a fresh directory under /tmp (a disk here: the block's
 * puts are fsynced) with the server's limits, but rate limit, time window
 * and sample cap off; no flush of its own, no fsync of the WAL (the fill
 * is not what is timed). */
static int env_create(env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/kiln-bench-flush-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        e->dir[0] = '\0';
        perror("bench_flush: mkdtemp");
        return -1;
    }
    kiln_limits l = kiln_bench_limits();
    e->limits = kiln_overrides_create(&l);
    e->metrics = kiln_metrics_create();
    kiln_ingester_config ic = {
        .storage_path = e->dir, .wal_no_fsync = true, .flush_check_ns = 24 * 3600 * 1000000000LL};
    kiln_err err = {KILN_OK, ""};
    if (kiln_ingester_create(&ic, &e->ing, &err) != KILN_OK) {
        fprintf(stderr, "bench_flush: ingester: %s\n", err.msg);
        return -1;
    }
    kiln_distributor_config dc = {e->limits, l.max_profile_bytes,
                                  kiln_db_store(kiln_ingester_db(e->ing))};
    e->d = kiln_distributor_create(&dc, e->metrics);
    return 0;
}

/* Push i: file i % nf, pod (i / nf) % PODS, the variant and time of its
 * round, through the distributor as the Push handler calls it. */
static int push(env *e, const bfile *f, size_t nf, size_t i, int64_t t0, kiln_arena_t *a)
{
    const bfile *bf = &f[i % nf];
    size_t pod = (i / nf) % PODS, round = i / nf / PODS;
    const kiln_buf *body = &bf->variant[(i / nf + round) % VARIANTS];
    kiln_err err = {KILN_OK, ""};
    kiln_ingest_profile in;
    memset(&in, 0, sizeof(in));
    kiln_arena_reset(a);
    kiln_status st = kiln_distributor_decode_pprof(e->d, (const uint8_t *)body->ptr, body->len, a,
                                                   &in.profile, &err);
    if (st == KILN_OK) {
        in.profile.time_nanos = t0 + (int64_t)round * PUSH_EVERY_NS;
        kiln_label_t *l = kiln_arena_alloc(a, 3 * sizeof(*l));
        l[0] = (kiln_label_t){"__name__", bf->name};
        l[1] = (kiln_label_t){"pod", kiln_arena_printf(a, "pod-%02zu", pod)};
        l[2] = (kiln_label_t){"service_name", bf->service};
        in.labels = l;
        in.n_labels = 3;
        in.raw_bytes = body->len;
        st = kiln_distributor_ingest(e->d, "bench-flush", &in, 1, a, &err);
    }
    if (st != KILN_OK)
        fprintf(stderr, "bench_flush: push %s: %s: %s\n", bf->rel, kiln_status_str(st), err.msg);
    return st == KILN_OK ? 0 : -1;
}

/* What one round measured. */
typedef struct round_fig {
    size_t pushes;
    kiln_head_stats_t head;
    double fill_s, flush_s, flush_cpu_s; /* cpu: the process's, all threads */
} round_fig;

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int one_round(const bfile *f, size_t nf, size_t target, round_fig *r)
{
    env e;
    int rc = env_create(&e);
    kiln_db_t *db = rc == 0 ? kiln_ingester_db(e.ing) : NULL;
    kiln_arena_t *a = kiln_arena_create(0);
    int64_t t0 = (kiln_wall_ns() - 3600000000000LL) / 1000000000LL * 1000000000LL;
    memset(r, 0, sizeof(*r));
    int64_t start = kiln_mono_ns();
    for (size_t i = 0; rc == 0 && r->head.profiles < target; i++) {
        rc = push(&e, f, nf, i, t0, a);
        r->pushes++;
        if (i % 64 == 0 || rc != 0)
            kiln_db_stats(db, NULL, &r->head);
    }
    kiln_db_stats(db, NULL, &r->head);
    r->fill_s = (double)(kiln_mono_ns() - start) * 1e-9;
    kiln_err err = {KILN_OK, ""};
    start = kiln_mono_ns();
    double cpu0 = process_cpu_s();
    if (rc == 0 && kiln_db_flush(db, &err) != KILN_OK) {
        fprintf(stderr, "bench_flush: flush: %s\n", err.msg);
        rc = -1;
    }
    r->flush_cpu_s = process_cpu_s() - cpu0;
    r->flush_s = (double)(kiln_mono_ns() - start) * 1e-9;
    kiln_head_stats_t after;
    if (rc == 0) {
        kiln_db_stats(db, NULL, &after);
        if (after.profiles != 0) {
            fprintf(stderr, "bench_flush: %zu profiles left in heads\n", after.profiles);
            rc = -1;
        }
    }
    kiln_arena_destroy(a);
    env_destroy(&e);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_load(const char *when)
{
    char line[128] = "";
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp != NULL) {
        if (fgets(line, sizeof(line), fp) == NULL)
            line[0] = '\0';
        fclose(fp);
    }
    line[strcspn(line, "\n")] = '\0';
    printf("load average %s: %s\n", when, line);
}

static int parse_args(int argc, char **argv, size_t *target, int *rounds, int *first)
{
    int c;
    while ((c = getopt(argc, argv, "n:r:")) != -1) {
        if (c == 'n')
            *target = strtoul(optarg, NULL, 10);
        else if (c == 'r')
            *rounds = (int)strtol(optarg, NULL, 10);
        else
            return -1;
    }
    *first = optind;
    if (*target < 1 || *rounds < 1 || *rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: bench_flush [-n profiles >= 1] [-r rounds 1..%d] [file ...]\n",
                MAX_ROUNDS);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t target = 15000;
    int rounds = 1, first;
    if (parse_args(argc, argv, &target, &rounds, &first) != 0)
        return 2;
    const char *root = getenv("KILN_TESTDATA");
    root = root != NULL && *root != '\0' ? root : KILN_TESTDATA_DEFAULT;
    size_t nf = first < argc ? (size_t)(argc - first) : N_DEFAULT;
    bfile *f = kiln_xcalloc(nf, sizeof(*f));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nf; i++)
        rc = load_file(&f[i], root, first < argc ? argv[first + (int)i] : default_files[i]);
    printf("kiln bench_flush: a head of about %zu profiles (test data %s: %zu files round-robin, "
           "%d pods, %d value variants each, 15 s apart), then kiln_db_flush writing its block "
           "to a filesystem store under /tmp (fsynced puts), as at shutdown; %d round(s); "
           "cores online: %ld\n",
           target, root, nf, PODS, VARIANTS, rounds, sysconf(_SC_NPROCESSORS_ONLN));
    print_load("before");
    printf("%5s %7s %9s %7s %11s %7s %8s %8s %12s\n", "round", "pushes", "profiles", "series",
           "samples", "fill s", "flush s", "cpu s", "profiles/s");
    double secs[MAX_ROUNDS];
    for (int k = 0; rc == 0 && k < rounds; k++) {
        round_fig r;
        rc = one_round(f, nf, target, &r);
        secs[k] = r.flush_s;
        if (rc == 0)
            printf("%5d %7zu %9zu %7zu %11zu %7.2f %8.3f %8.3f %12.0f\n", k + 1, r.pushes,
                   r.head.profiles, r.head.series, r.head.samples, r.fill_s, r.flush_s,
                   r.flush_cpu_s, (double)r.head.profiles / r.flush_s);
    }
    print_load("after");
    if (rc == 0) {
        qsort(secs, (size_t)rounds, sizeof(secs[0]), cmp_double);
        printf("median flush: %.3f s (issue 15: 12.9 s for 14,894 profiles; target under 2.6 s)\n",
               secs[rounds / 2]);
        bench_summary("shutdown_flush_s", secs[rounds / 2], "s");
    }
    for (size_t i = 0; i < nf; i++)
        for (int v = 0; v < VARIANTS; v++)
            kiln_buf_free(&f[i].variant[v]);
    free(f);
    return rc == 0 ? 0 : 1;
}
