/* SPDX-License-Identifier: Apache-2.0
 * bench_budget: an ingester's memory under sustained push with a head
 * byte budget (-ingester.max-head-bytes). (1) A storage engine (kiln_db:
 * WAL without fsync, blocks on the local disk, only the budget cutting)
 * takes a real profile for many series as fast as one thread can push it;
 * the resident set is sampled throughout and set against the budget: the
 * heads hold at most twice it, and the rest of the process stays under its
 * stated bound. What the budget does not cover is shown apart: the blocks
 * the db wrote stay open in its block set (symbols, index and per-series
 * sums, for reads), so they grow with every cut until compaction merges
 * them. (2) RSS growth per 1k series: the same engine given 20,000 series
 * of a one-sample profile. Prints figures only; it is not a test.
 *
 * Usage: bench_budget [-s seconds] [-b budget-MiB] [-n series] [file]
 * (file relative to $KILN_TESTDATA unless absolute; default gdu/default.pgo). */
#include <ftw.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "bench_summary.h"
#include "clock.h"
#include "block.h"
#include "db.h"
#include "peak_rss.h"
#include "profiles.h"
#include "synth.h"

#define MIB 1048576.0
#define TENANT "bench"
#define T0_NS 1704067200000000000LL
#define SAMPLE_EVERY 16 /* pushes between two readings of the resident set */
/* The stated bound, beside the open blocks' index and symbols: the heads
 * hold at most twice the budget (then pushes are refused), and what comes
 * and goes around them (the block being encoded, freed heads not yet reused
 * by malloc) at most one budget more; the blocks' per-series sums, their
 * own budget: half the heads' (as the servers' defaults, an eighth of the
 * memory against a quarter). */
#define BOUND_BUDGETS 3.0
#define SUMS_PER_BUDGET 0.5
#define SERIES_FIG 20000

static double rss_mib(void)
{
    return (double)rss_kb() * 1024 / MIB;
}

static int on_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static kiln_db_t *open_db(char *dir, size_t budget)
{
    snprintf(dir, 64, "/tmp/kiln-bench-budget-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return NULL;
    kiln_db_config c = {.path = dir,
                        .wal_no_fsync = true,
                        .flush_check_ns = 1000000000LL,
                        .max_head_bytes = budget};
    kiln_db_t *db = NULL;
    kiln_err err = {KILN_OK, ""};
    if (kiln_db_open(&c, &db, &err) != KILN_OK)
        fprintf(stderr, "bench_budget: open: %s\n", err.msg);
    return db;
}

static void close_db(kiln_db_t *db, const char *dir)
{
    kiln_db_close(db);
    nftw(dir, on_remove, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct run_fig {
    size_t pushes, refused, cuts;
    double seconds, rss_open, rss_peak, rss_end, heads_peak;
    double heap_open;    /* malloc's bytes in use once the db is open */
    double blocks_end;   /* in use beyond that and the heads, at the end: open blocks */
    double sums_end;     /* of which their per-series sums */
    double bounded_peak; /* peak of RSS less the open blocks' index and symbols */
    double pprof_mb;     /* samples pushed, in millions */
} run_fig;

/* malloc's bytes in use, mmapped blocks included. */
static double heap_mib(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd) / MIB;
}

/* Notes one reading: the resident set, the heads' bytes, a cut (the heads
 * taking appends fell), and what malloc holds beyond the heads: the open
 * blocks (what else the db allocates is there when it opens). */
static void sample(kiln_db_t *db, run_fig *f, size_t *last)
{
    size_t appending, flushing;
    kiln_db_head_bytes(db, &appending, &flushing);
    double heads = (double)(appending + flushing) / MIB, rss = rss_mib();
    double blocks = heap_mib() - f->heap_open - heads;
    double sums = (double)kiln_block_sums_bytes() / MIB;
    f->cuts += appending < *last;
    *last = appending;
    if (heads > f->heads_peak)
        f->heads_peak = heads;
    if (rss > f->rss_peak)
        f->rss_peak = rss;
    if (rss - (blocks - sums) > f->bounded_peak)
        f->bounded_peak = rss - (blocks - sums);
    f->blocks_end = blocks;
    f->sums_end = sums;
}

/* Pushes p as series i % n_series for `seconds`; a refused push (flushing
 * behind) is retried after a millisecond, as a client backs off. */
static int sustained(kiln_db_t *db, kiln_pprof_t *p, size_t n_series, double seconds, run_fig *f)
{
    char pod[32];
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"pod", pod}, {"service_name", "bench"}};
    kiln_head_part part = {l, 3, p, 0};
    int64_t t0 = kiln_mono_ns(), end = t0 + (int64_t)(seconds * 1e9);
    size_t last = 0;
    f->rss_open = rss_mib();
    f->heap_open = heap_mib();
    while (kiln_mono_ns() < end) {
        snprintf(pod, sizeof(pod), "pod-%06zu", f->pushes % n_series);
        p->time_nanos = T0_NS + (int64_t)f->pushes * 1000000;
        kiln_err err = {KILN_OK, ""};
        kiln_status st = kiln_db_append(db, TENANT, &part, 1, &err);
        if (st == KILN_RESOURCE_EXHAUSTED) {
            f->refused++;
            usleep(1000);
        } else if (st != KILN_OK) {
            fprintf(stderr, "bench_budget: push: %s\n", err.msg);
            return -1;
        } else if (++f->pushes % SAMPLE_EVERY == 0) {
            sample(db, f, &last);
        }
    }
    f->seconds = (double)(kiln_mono_ns() - t0) / 1e9;
    f->pprof_mb = (double)f->pushes * (double)p->n_samples / 1e6;
    f->rss_end = rss_mib();
    return 0;
}

static int bench_sustained(kiln_pprof_t *p, const char *name, size_t budget_mib, size_t n_series,
                           double seconds)
{
    size_t budget = budget_mib << 20;
    printf("\n== RSS under sustained push: %s (%zu samples, %zu types) over %zu series, one "
           "thread, %.0f s, -ingester.max-head-bytes=%zuMiB ==\n",
           name, p->n_samples, p->n_sample_types, n_series, seconds, budget_mib);
    double rss0 = rss_mib(), sums_mib = SUMS_PER_BUDGET * (double)budget_mib;
    kiln_block_sums_budget((size_t)(sums_mib * MIB));
    char dir[64];
    kiln_db_t *db = open_db(dir, budget);
    if (db == NULL)
        return -1;
    run_fig f = {0};
    int rc = sustained(db, p, n_series, seconds, &f);
    close_db(db, dir);
    if (rc != 0)
        return rc;
    double growth = f.bounded_peak - f.rss_open;
    double bound = f.rss_open + BOUND_BUDGETS * (double)budget_mib + sums_mib;
    printf("pushes %zu (%.0f/s, %.1f M samples/s), refused %zu (retried), cuts seen %zu\n",
           f.pushes, (double)f.pushes / f.seconds, f.pprof_mb / f.seconds, f.refused, f.cuts);
    printf("heads (appending + flushing): peak %.1f MiB = %.2f x the budget of %zu MiB "
           "(pushes refused from %zu MiB; the push let through last may double a sample "
           "column)\n",
           f.heads_peak, f.heads_peak / (double)budget_mib, budget_mib, 2 * budget_mib);
    printf("RSS: %.1f MiB before the db, %.1f MiB open, peak %.1f MiB, %.1f MiB at the end\n", rss0,
           f.rss_open, f.rss_peak, f.rss_end);
    printf("open blocks (malloc in use beyond the heads and the db at open): %.1f MiB at the "
           "end, after %zu cuts: per-series sums %.1f MiB (-storage.block-sums-max-bytes "
           "%.0f MiB), index and symbols %.1f MiB (in no budget)\n",
           f.blocks_end, f.cuts, f.sums_end, sums_mib, f.blocks_end - f.sums_end);
    printf("RSS less the open blocks' index and symbols: peak %.1f MiB (+%.1f MiB over open = "
           "%.2f x the budget); bound open + %.0f x budget + sums budget = %.1f MiB: %s\n",
           f.bounded_peak, growth, growth / (double)budget_mib, BOUND_BUDGETS, bound,
           f.bounded_peak <= bound ? "held" : "NOT HELD");
    bench_summary("budget_heads_peak_per_budget", f.heads_peak / (double)budget_mib, "x");
    bench_summary("budget_rss_growth_per_budget", growth / (double)budget_mib, "x");
    bench_summary("budget_open_blocks_mib", f.blocks_end, "MiB");
    bench_summary("budget_open_blocks_unbudgeted_mib", f.blocks_end - f.sums_end, "MiB");
    return 0;
}

/* RSS growth per series through the engine (WAL record, head, series
 * limit's bookkeeping), beside what the heads count for them. */
static int bench_series(void)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    char dir[64], pod[32];
    kiln_db_t *db = synth_profile(a, 10000000, T0_NS, &p) ? open_db(dir, 0) : NULL;
    if (db == NULL) {
        kiln_arena_destroy(a);
        return -1;
    }
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"pod", pod}, {"service_name", "bench"}};
    kiln_head_part part = {l, 3, &p, 0};
    snprintf(pod, sizeof(pod), "warm");
    kiln_status st = kiln_db_append(db, TENANT, &part, 1, NULL);
    size_t b0, b1;
    kiln_db_head_bytes(db, &b0, NULL);
    double rss0 = rss_mib();
    for (size_t i = 0; st == KILN_OK && i < SERIES_FIG; i++) {
        snprintf(pod, sizeof(pod), "pod-%08zu", i);
        st = kiln_db_append(db, TENANT, &part, 1, NULL);
    }
    double grow = rss_mib() - rss0;
    kiln_db_head_bytes(db, &b1, NULL);
    close_db(db, dir);
    kiln_arena_destroy(a);
    if (st != KILN_OK)
        return -1;
    printf("\n== RSS growth per series: %d series of a one-sample profile through the db "
           "(one stored series each), no budget ==\n",
           SERIES_FIG);
    printf("RSS +%.1f MiB = %.3f MiB per 1k series; heads counted +%.1f MiB = %.3f MiB per 1k "
           "series (%.0f B each)\n",
           grow, grow * 1000 / SERIES_FIG, (double)(b1 - b0) / MIB,
           (double)(b1 - b0) / MIB * 1000 / SERIES_FIG, (double)(b1 - b0) / SERIES_FIG);
    bench_summary("rss_mib_per_1k_series_db", grow * 1000 / SERIES_FIG, "MiB");
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 20;
    size_t budget_mib = 64, n_series = 1000;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            budget_mib = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n_series = (size_t)strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_budget [-s seconds (20)] [-b budget MiB (64)] "
                            "[-n series (1000)] [file (gdu/default.pgo)]\n");
            return 2;
        }
    }
    if (!(seconds > 0) || budget_mib == 0 || n_series == 0)
        return 2;
    const char *name = i < argc ? argv[i] : "gdu/default.pgo";
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, name, &p)) {
        fprintf(stderr, "bench_budget: cannot load %s (KILN_TESTDATA?)\n", name);
        kiln_arena_destroy(a);
        return 1;
    }
    printf("kiln bench_budget: MiB = 2^20 bytes; RSS from /proc/self/statm, read every %d "
           "pushes\n",
           SAMPLE_EVERY);
    int rc = bench_series();
    if (rc == 0)
        rc = bench_sustained(&p, name, budget_mib, n_series, seconds);
    kiln_arena_destroy(a);
    return rc == 0 ? 0 : 1;
}
