/* SPDX-License-Identifier: Apache-2.0
 * bench_push: throughput of the in-process push path (decode, validate,
 * normalise, label split, append to the head) on real CPU profiles, next to
 * libdeflate inflate and a plain protobuf walk of the same bytes, and the
 * CPU a cluster push costs per replica on the way to an ingester (pprof
 * re-encoded and normalised again, or the push record). Prints
 * figures only; it is not a test and nothing here passes or fails on time.
 *
 * Usage: bench_push [-s seconds | -n iterations] [-R rounds] [-p | -r] [file ...]
 * (files relative to $KILN_TESTDATA unless absolute; default: the Go, Java
 * and Node CPU set; -p runs only the single-thread push, for perf or
 * callgrind; -r only the push with 0, 10 and 100 recording rules; -n runs a
 * fixed count, for repeatable instruction counts; -R sets how many rounds
 * over all files the single-thread push takes, each file's median kept). */
#include <ftw.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_env.h"
#include "bench_limits.h"
#include "bench_summary.h"
#include "db.h"
#include "arena.h"
#include "clock.h"
#include "distributor.h"
#include "gzip.h"
#include "ingester.h"
#include "metrics.h"
#include "overrides.h"
#include "pprof.h"
#include "record.h"
#include "recording_rules.h"
#include "rules_eval.h"
#include "xmalloc.h"

#ifndef KILN_TESTDATA_DEFAULT
#define KILN_TESTDATA_DEFAULT "../shared/testdata"
#endif

#define MB 1e6                         /* figures are in 10^6 bytes */
#define PODS 50                        /* distinct pod label values */
#define PUSH_INTERVAL_NS 15000000000LL /* an SDK's upload period */
#define WARMUP 3                       /* untimed iterations before each figure */
#define MAX_THREADS 64
#define TARGET_MB_S 80.0 /* the push path's goal, per core, every profile */

typedef struct bench_file {
    char path[512];
    char rel[128];
    const char *lang; /* go, java, node, ? */
    const char *name; /* __name__ pushed */
    char service[64];
    uint8_t *gz;
    size_t gz_len; /* as on disk (what a client sends) */
    uint8_t *raw;
    size_t raw_len; /* gunzipped once, before any timing */
    size_t n_samples;
} bench_file;

typedef struct bench_opts {
    double seconds;
    uint64_t iters;  /* -n: a fixed count of timed iterations instead of seconds */
    int rounds;      /* -R: single-thread push figures, rounds over all files */
    bool push_only;  /* -p: only the single-thread push runs (for profilers) */
    bool rules_only; /* -r: only the recording rules figures */
    long rules_k;    /* -k: one run per file with this many rules, else -1 */
    int first_file;  /* argv index of the first file argument */
} bench_opts;

static const struct {
    const char *rel, *lang, *name;
} default_files[] = {
    {"gdu/default.pgo", "go", "process_cpu"},
    {"grafana-pyroscope/cpu_go_truncated_1.pb.gz", "go", "process_cpu"},
    {"hard/google-pprof/large.cpu", "go", "process_cpu"},
    {"grafana-pyroscope/profile_java", "java", "process_cpu"},
    {"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz", "java", "process_cpu"},
    {"grafana-pyroscope/cpu-js.pb.gz", "node", "wall"},
    {"grafana-pyroscope/profile_nodejs", "node", "wall"},
};
#define N_DEFAULT_FILES (sizeof(default_files) / sizeof(default_files[0]))

/* ---- timing --------------------------------------------------------------- */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One timed body: returns 0, or -1 after printing why it failed. */
typedef int (*bench_fn)(void *ctx, uint64_t i);

typedef struct run_result {
    uint64_t iters;
    double wall, cpu; /* seconds: wall clock and this thread's CPU */
    double p50, p99;  /* per-iteration wall latency in seconds (when asked) */
} run_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

/* Runs fn WARMUP times untimed, then repeatedly for `seconds` of wall time,
 * on the calling thread. Latencies are kept only when lat is set. */
static uint64_t fixed_iters; /* -n: when set, every figure runs this many times */

static int run_timed(double seconds, bench_fn fn, void *ctx, bool lat, run_result *out)
{
    for (uint64_t i = 0; i < WARMUP; i++) {
        if (fn(ctx, i) != 0)
            return -1;
    }
    double *lats = NULL;
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w = w0;
    uint64_t i = WARMUP;
    while (fixed_iters ? out->iters < fixed_iters : w - w0 < seconds) {
        double t = w;
        if (fn(ctx, i++) != 0) {
            free(lats);
            return -1;
        }
        w = clock_s(CLOCK_MONOTONIC);
        if (lat) {
            KILN_GROW(lats, cap, out->iters + 1);
            lats[out->iters] = w - t;
        }
        out->iters++;
    }
    out->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    out->wall = w - w0;
    if (lat) {
        qsort(lats, out->iters, sizeof(*lats), cmp_double);
        out->p50 = percentile(lats, out->iters, 0.50);
        out->p99 = percentile(lats, out->iters, 0.99);
    }
    free(lats);
    return 0;
}

/* MB per CPU second of `bytes` per iteration. */
static double mb_per_cpu_s(const run_result *r, size_t bytes)
{
    return r->cpu > 0 ? (double)bytes * (double)r->iters / MB / r->cpu : 0;
}

static double mb_per_wall_s(const run_result *r, size_t bytes)
{
    return r->wall > 0 ? (double)bytes * (double)r->iters / MB / r->wall : 0;
}

/* ---- baseline 1: libdeflate gzip inflate of the file as on disk ------------ */

typedef struct inflate_ctx {
    struct libdeflate_decompressor *dec;
    const bench_file *f;
    uint8_t *out;
} inflate_ctx;

static int inflate_one(void *ctx, uint64_t i)
{
    (void)i;
    inflate_ctx *c = ctx;
    size_t n = 0;
    enum libdeflate_result r =
        libdeflate_gzip_decompress(c->dec, c->f->gz, c->f->gz_len, c->out, c->f->raw_len, &n);
    if (r != LIBDEFLATE_SUCCESS || n != c->f->raw_len) {
        fprintf(stderr, "bench_push: %s: libdeflate inflate failed (%d)\n", c->f->rel, (int)r);
        return -1;
    }
    return 0;
}

/* ---- baseline 2: a plain protobuf wire walk -------------------------------- */

/* The message kinds of perftools.profiles, and what a length-delimited field
 * holds: a submessage, packed varints, or bytes left untouched. */
enum pb_kind {
    PB_PROFILE,
    PB_VALUE_TYPE,
    PB_SAMPLE,
    PB_LABEL,
    PB_MAPPING,
    PB_LOCATION,
    PB_LINE,
    PB_FUNCTION,
    PB_PACKED,
    PB_BYTES
};

static enum pb_kind pb_child(enum pb_kind kind, uint64_t field)
{
    switch (kind) {
    case PB_PROFILE:
        switch (field) {
        case 1:
        case 11:
            return PB_VALUE_TYPE;
        case 2:
            return PB_SAMPLE;
        case 3:
            return PB_MAPPING;
        case 4:
            return PB_LOCATION;
        case 5:
            return PB_FUNCTION;
        case 13:
            return PB_PACKED; /* comment */
        default:
            return PB_BYTES; /* string_table */
        }
    case PB_SAMPLE:
        return field == 3 ? PB_LABEL : PB_PACKED; /* location_id, value */
    case PB_LOCATION:
        return field == 4 ? PB_LINE : PB_BYTES;
    default:
        return PB_BYTES;
    }
}

typedef struct pb_walk {
    uint64_t sum; /* every scalar added up, so nothing is optimised away */
    uint64_t fields;
} pb_walk;

static const uint8_t *pb_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *v = x;
            return p;
        }
    }
    return NULL;
}

static bool pb_walk_packed(pb_walk *w, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t v;
        if ((p = pb_varint(p, end, &v)) == NULL)
            return false;
        w->sum += v;
    }
    return true;
}

/* Visits every field of a message, recursing into submessages. The schema
 * bounds the depth at four. */
static bool pb_walk_msg(pb_walk *w, enum pb_kind kind, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t tag, v = 0;
        if ((p = pb_varint(p, end, &tag)) == NULL)
            return false;
        w->fields++;
        switch (tag & 7) {
        case 0:
            if ((p = pb_varint(p, end, &v)) == NULL)
                return false;
            break;
        case 1:
        case 5: {
            size_t n = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < n)
                return false;
            memcpy(&v, p, n);
            p += n;
            break;
        }
        case 2: {
            if ((p = pb_varint(p, end, &v)) == NULL || v > (uint64_t)(end - p))
                return false;
            enum pb_kind child = pb_child(kind, tag >> 3);
            bool ok = child == PB_BYTES    ? true
                      : child == PB_PACKED ? pb_walk_packed(w, p, p + v)
                                           : pb_walk_msg(w, child, p, p + v);
            if (!ok)
                return false;
            p += v;
            break;
        }
        default:
            return false; /* pprof has no groups */
        }
        w->sum += v;
    }
    return true;
}

typedef struct walk_ctx {
    const bench_file *f;
    pb_walk w;
} walk_ctx;

static int walk_one(void *ctx, uint64_t i)
{
    (void)i;
    walk_ctx *c = ctx;
    if (!pb_walk_msg(&c->w, PB_PROFILE, c->f->raw, c->f->raw + c->f->raw_len)) {
        fprintf(stderr, "bench_push: %s: protobuf walk failed\n", c->f->rel);
        return -1;
    }
    return 0;
}

/* ---- decode only, and the full push ---------------------------------------- */

typedef struct push_ctx {
    kiln_distributor_t *d;
    const bench_file *files; /* pushed round-robin */
    size_t n_files;
    const char *tenant;
    kiln_arena_t *a; /* the request arena, reset per push */
    int64_t t0_ns;
    run_result r; /* filled by the threaded runner */
    double seconds;
    pthread_barrier_t *start;
    int failed;
} push_ctx;

static int decode_one(void *ctx, uint64_t i)
{
    (void)i;
    push_ctx *c = ctx;
    kiln_pprof_t p;
    kiln_err err = {KILN_OK, ""};
    kiln_arena_reset(c->a);
    if (kiln_pprof_decode(c->a, c->files->raw, c->files->raw_len, &p, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s: decode: %s\n", c->files->rel, err.msg);
        return -1;
    }
    return 0;
}

/* One push as the Push handler makes it: decode into the request arena, then
 * the distributor's whole pipeline. Push i comes from pod i%PODS, and each
 * pod pushes once per PUSH_INTERVAL_NS of profile time. */
static int push_one(void *ctx, uint64_t i)
{
    push_ctx *c = ctx;
    const bench_file *f = &c->files[i % c->n_files];
    kiln_err err = {KILN_OK, ""};
    kiln_ingest_profile in;
    memset(&in, 0, sizeof(in));
    kiln_arena_reset(c->a);
    kiln_status st = kiln_pprof_decode(c->a, f->raw, f->raw_len, &in.profile, &err);
    if (st == KILN_OK) {
        uint64_t pod = (i / c->n_files) % PODS;
        in.profile.time_nanos = c->t0_ns + (int64_t)(i / c->n_files / PODS) * PUSH_INTERVAL_NS;
        kiln_label_t *l = kiln_arena_alloc(c->a, 3 * sizeof(*l));
        l[0] = (kiln_label_t){"__name__", f->name};
        l[1] = (kiln_label_t){"service_name", f->service};
        l[2] = (kiln_label_t){"pod", kiln_arena_printf(c->a, "pod-%02u", (unsigned)pod)};
        in.labels = l;
        in.n_labels = 3;
        in.id = kiln_arena_printf(c->a, "%s-%llu", f->service, (unsigned long long)i);
        in.raw_bytes = f->gz_len;
        st = kiln_distributor_ingest(c->d, c->tenant, &in, 1, c->a, &err);
    }
    if (st != KILN_OK) {
        fprintf(stderr, "bench_push: %s: push %llu: %s: %s\n", f->rel, (unsigned long long)i,
                kiln_status_str(st), err.msg);
        return -1;
    }
    return 0;
}

/* ---- setup ----------------------------------------------------------------- */

/* The file at path, whole, in *out (to free). */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    int rc = bench_read_file(path, &b);
    *out = (uint8_t *)kiln_buf_detach(&b, len);
    return rc;
}

/* Reads, gunzips (once) and decodes a file to count its samples. The raw
 * bytes live in `keep`, which outlives every run. */
static int load_file(bench_file *f, kiln_arena_t *keep)
{
    kiln_err err = {KILN_OK, ""};
    if (read_file(f->path, &f->gz, &f->gz_len) != 0) {
        fprintf(stderr, "bench_push: cannot read %s\n", f->path);
        return -1;
    }
    if (!kiln_gzip_is(f->gz, f->gz_len)) {
        fprintf(stderr, "bench_push: %s is not gzip (the inflate baseline needs it)\n", f->rel);
        return -1;
    }
    kiln_status st = kiln_gunzip(keep, f->gz, f->gz_len, SIZE_MAX, &f->raw, &f->raw_len, &err);
    kiln_pprof_t p;
    kiln_arena_t *tmp = kiln_arena_create(0);
    if (st == KILN_OK)
        st = kiln_pprof_decode(tmp, f->raw, f->raw_len, &p, &err);
    if (st == KILN_OK)
        f->n_samples = p.n_samples;
    kiln_arena_destroy(tmp);
    if (st != KILN_OK)
        fprintf(stderr, "bench_push: %s: %s\n", f->rel, err.msg);
    return st == KILN_OK ? 0 : -1;
}

/* Fills f for rel (under root unless absolute). lang and name come from the
 * default table when rel is one of its files. */
static void init_file(bench_file *f, const char *root, const char *rel)
{
    memset(f, 0, sizeof(*f));
    if (rel[0] == '/')
        snprintf(f->path, sizeof(f->path), "%s", rel);
    else
        snprintf(f->path, sizeof(f->path), "%s/%s", root, rel);
    snprintf(f->rel, sizeof(f->rel), "%s", rel);
    f->lang = "?";
    f->name = "process_cpu";
    for (size_t i = 0; i < N_DEFAULT_FILES; i++) {
        if (strcmp(default_files[i].rel, rel) == 0) {
            f->lang = default_files[i].lang;
            f->name = default_files[i].name;
        }
    }
    const char *base = strrchr(rel, '/');
    snprintf(f->service, sizeof(f->service), "bench-%s-%.40s", f->lang, base ? base + 1 : rel);
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024 / MB;
}

/* ---- single-threaded figures ------------------------------------------------ */

typedef struct file_figures {
    run_result push, decode, inflate, walk;
    run_result wire_pprof, wire_record; /* ingester.v1 Push, per replica */
    kiln_head_stats_t head;
} file_figures;

/* ---- the ingester.v1 Push wire form, per replica ----------------------------- */

/* One normalised push of a file and scratch for sending it to one
 * ingester: how a cluster push crosses from distributor to ingester. */
typedef struct wire_ctx {
    const bench_file *f;
    kiln_head_part part;
    kiln_arena_t *a; /* the receiving request's arena, reset per push */
    kiln_buf buf;
} wire_ctx;

/* The older form: the distributor re-encodes pprof, the ingester decodes,
 * validates and normalises it again. */
static int wire_pprof_one(void *ctx, uint64_t i)
{
    (void)i;
    wire_ctx *c = ctx;
    kiln_err err = {KILN_OK, ""};
    c->buf.len = 0;
    kiln_arena_reset(c->a);
    kiln_pprof_t q;
    if (!kiln_pprof_encode(c->part.profile, true, &c->buf) ||
        kiln_pprof_decode(c->a, (const uint8_t *)c->buf.ptr, c->buf.len, &q, &err) != KILN_OK ||
        kiln_pprof_validate_normalize(c->a, &q, 0, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s: pprof wire form: %s\n", c->f->rel, err.msg);
        return -1;
    }
    return 0;
}

/* The push record: encoded once by the distributor, decoded (bounds
 * checked) by the ingester, no pprof decode or normalisation. */
static int wire_record_one(void *ctx, uint64_t i)
{
    (void)i;
    wire_ctx *c = ctx;
    kiln_err err = {KILN_OK, ""};
    c->buf.len = 0;
    kiln_arena_reset(c->a);
    kiln_record_encode("bench", &c->part, 1, &c->buf);
    kiln_record rec;
    if (kiln_record_decode(c->a, (const uint8_t *)c->buf.ptr, c->buf.len, &rec, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s: record wire form: %s\n", c->f->rel, err.msg);
        return -1;
    }
    return 0;
}

static int bench_wire(const bench_file *f, double seconds, file_figures *ff)
{
    static const kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "bench"}};
    kiln_arena_t *own = kiln_arena_create(0);
    kiln_pprof_t *p = kiln_arena_alloc(own, sizeof(*p));
    kiln_err err = {KILN_OK, ""};
    if (kiln_pprof_decode(own, f->raw, f->raw_len, p, &err) != KILN_OK ||
        kiln_pprof_validate_normalize(own, p, 0, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s: %s\n", f->rel, err.msg);
        kiln_arena_destroy(own);
        return -1;
    }
    wire_ctx c = {f, {l, 2, p, 42}, kiln_arena_create(0), {0}};
    kiln_buf_init(&c.buf, 0);
    int rc = run_timed(seconds, wire_pprof_one, &c, false, &ff->wire_pprof);
    if (rc == 0)
        rc = run_timed(seconds, wire_record_one, &c, false, &ff->wire_record);
    kiln_buf_free(&c.buf);
    kiln_arena_destroy(c.a);
    kiln_arena_destroy(own);
    return rc;
}

/* CPU microseconds per iteration of a run. */
static double us_per_iter(const run_result *r)
{
    return r->iters ? r->cpu * 1e6 / (double)r->iters : 0;
}

static void print_wire(const bench_file *f, const file_figures *ff, size_t n)
{
    printf("\n== ingester.v1 Push, distributor to one ingester (a cluster push, per replica): "
           "pprof re-encoded and decoded+normalised again vs the push record encoded and "
           "decoded; CPU us per push, single thread ==\n");
    printf("%-58s %12s %12s %8s\n", "profile", "pprof us", "record us", "saved");
    double sp = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        double p = us_per_iter(&ff[i].wire_pprof), r = us_per_iter(&ff[i].wire_record);
        sp += p, sr += r;
        printf("%-58s %12.1f %12.1f %7.0f%%\n", f[i].rel, p, r, p > 0 ? 100 * (1 - r / p) : 0);
    }
    printf("%-58s %12.1f %12.1f %7.0f%%\n", "ALL (sum over the files)", sp, sr,
           sp > 0 ? 100 * (1 - sr / sp) : 0);
}

static int bench_baselines(const bench_file *f, double seconds, file_figures *ff)
{
    inflate_ctx ic = {libdeflate_alloc_decompressor(), f, kiln_xmalloc(f->raw_len)};
    int rc = run_timed(seconds, inflate_one, &ic, false, &ff->inflate);
    libdeflate_free_decompressor(ic.dec);
    free(ic.out);
    walk_ctx wc;
    memset(&wc, 0, sizeof(wc));
    wc.f = f;
    if (rc == 0)
        rc = run_timed(seconds, walk_one, &wc, false, &ff->walk);
    if (rc == 0 && wc.w.fields == 0)
        rc = -1;
    return rc;
}

/* Decode-only and full push figures of one file, into a fresh ingester (one
 * service pushing this profile from PODS pods). */
static int bench_file_push(const bench_file *f, double seconds, bool push_only, file_figures *ff)
{
    bench_env e;
    bench_env_create(&e);
    push_ctx pc;
    memset(&pc, 0, sizeof(pc));
    pc.d = e.d;
    pc.files = f;
    pc.n_files = 1;
    pc.tenant = "bench";
    pc.a = kiln_arena_create(0);
    pc.t0_ns = kiln_wall_ns() - 86400LL * 1000000000;
    int rc = push_only ? 0 : run_timed(seconds, decode_one, &pc, false, &ff->decode);
    if (rc == 0)
        rc = run_timed(seconds, push_one, &pc, true, &ff->push);
    kiln_db_stats(kiln_ingester_db(e.ing), "bench", &ff->head);
    kiln_arena_destroy(pc.a);
    bench_env_destroy(&e);
    return rc;
}

static void print_push_header(void)
{
    printf("%-58s %4s %8s %8s %7s | %9s %9s %9s %8s %8s | %9s | %6s %8s %9s\n", "profile", "lang",
           "gz KB", "raw KB", "samples", "push MB/s", "wall MB/s", "prof/s", "p50 ms", "p99 ms",
           "dec MB/s", "series", "profiles", "stk nodes");
}

static void print_push_row(const bench_file *f, const file_figures *ff)
{
    char dec[32] = "-";
    if (ff->decode.iters > 0)
        snprintf(dec, sizeof(dec), "%.1f", mb_per_cpu_s(&ff->decode, f->raw_len));
    printf("%-58s %4s %8.1f %8.1f %7zu | %9.1f %9.1f %9.1f %8.3f %8.3f | %9s | %6zu %8zu %9zu\n",
           f->rel, f->lang, (double)f->gz_len / 1e3, (double)f->raw_len / 1e3, f->n_samples,
           mb_per_cpu_s(&ff->push, f->raw_len), mb_per_wall_s(&ff->push, f->raw_len),
           ff->push.cpu > 0 ? (double)ff->push.iters / ff->push.cpu : 0, ff->push.p50 * 1e3,
           ff->push.p99 * 1e3, dec, ff->head.series, ff->head.profiles, ff->head.stack_nodes);
}

static void print_ratio_header(void)
{
    printf("%-58s %9s %12s %9s %12s %9s %12s\n", "profile", "push MB/s", "inflate MB/s",
           "walk MB/s", "push/inflate", "push/walk", "decode/walk");
}

static void print_ratio_row(const bench_file *f, const file_figures *ff)
{
    double push = mb_per_cpu_s(&ff->push, f->raw_len);
    double inflate = mb_per_cpu_s(&ff->inflate, f->raw_len);
    double walk = mb_per_cpu_s(&ff->walk, f->raw_len);
    double dec = mb_per_cpu_s(&ff->decode, f->raw_len);
    printf("%-58s %9.1f %12.1f %9.1f %12.3f %9.3f %12.3f\n", f->rel, push, inflate, walk,
           inflate > 0 ? push / inflate : 0, walk > 0 ? push / walk : 0, walk > 0 ? dec / walk : 0);
}

/* The issue 15 figures for `make bench`'s table: the mix, its slowest file
 * and Go's default.pgo, in process, per core. */
static void summary_push(const bench_file *f, const file_figures *ff, size_t n, double all)
{
    double slowest = 0;
    for (size_t i = 0; i < n; i++) {
        double v = mb_per_cpu_s(&ff[i].push, f[i].raw_len);
        if (i == 0 || v < slowest)
            slowest = v;
        if (strcmp(f[i].rel, "gdu/default.pgo") == 0)
            bench_summary("inproc_push_default_pgo", v, "MB/s/core");
    }
    bench_summary("inproc_push_mix", all, "MB/s/core");
    if (n > 0)
        bench_summary("inproc_push_slowest_file", slowest, "MB/s/core");
}

/* Totals over all files, each weighted by its bytes: total MB / total CPU s. */
static void print_totals(const bench_file *f, const file_figures *ff, size_t n)
{
    double mb = 0, cpu = 0, dmb = 0, dcpu = 0;
    for (size_t i = 0; i < n; i++) {
        mb += (double)f[i].raw_len * (double)ff[i].push.iters / MB;
        cpu += ff[i].push.cpu;
        dmb += (double)f[i].raw_len * (double)ff[i].decode.iters / MB;
        dcpu += ff[i].decode.cpu;
    }
    printf("%-58s push %.1f MB/s per core", "ALL (total MB / total CPU s)", cpu > 0 ? mb / cpu : 0);
    if (dcpu > 0)
        printf(", decode only %.1f MB/s per core", dmb / dcpu);
    printf("\n");
    size_t below = 0;
    for (size_t i = 0; i < n; i++)
        below += mb_per_cpu_s(&ff[i].push, f[i].raw_len) < TARGET_MB_S;
    printf("%-58s %zu of %zu profiles at or above %.0f MB/s per core", "TARGET (push)", n - below,
           n, TARGET_MB_S);
    const char *sep = "; below: ";
    for (size_t i = 0; i < n; i++) {
        if (mb_per_cpu_s(&ff[i].push, f[i].raw_len) < TARGET_MB_S) {
            printf("%s%s", sep, f[i].rel);
            sep = ", ";
        }
    }
    printf("\n");
    summary_push(f, ff, n, cpu > 0 ? mb / cpu : 0);
}

static int by_push_rate(const void *x, const void *y, void *ctx)
{
    const bench_file *f = ctx;
    double a = mb_per_cpu_s(&((const file_figures *)x)->push, f->raw_len);
    double b = mb_per_cpu_s(&((const file_figures *)y)->push, f->raw_len);
    return (a > b) - (a < b);
}

/* The push (and decode) figures of every file, measured in rounds over
 * the whole set (one round with -n, for instruction counts), each file's
 * median round kept. The machine's speed moves by up to a third from one
 * minute to the next, every file and build alike: rounds that interleave
 * the files make a slow minute cost one round of each file, not every
 * round of the files that happened to run in it. */
static int push_rounds(const bench_file *f, size_t n, const bench_opts *o, file_figures *ff)
{
    int rounds = fixed_iters ? 1 : o->rounds;
    file_figures *r = kiln_xcalloc((size_t)rounds * n, sizeof(*r));
    int rc = 0;
    for (int k = 0; rc == 0 && k < rounds; k++) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            fprintf(stderr, "bench_push: %s, round %d of %d ...\n", f[i].rel, k + 1, rounds);
            rc = bench_file_push(&f[i], o->seconds, o->push_only, &r[(size_t)k * n + i]);
        }
    }
    file_figures *one = kiln_xcalloc((size_t)rounds, sizeof(*one));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        for (int k = 0; k < rounds; k++)
            one[k] = r[(size_t)k * n + i];
        qsort_r(one, (size_t)rounds, sizeof(*one), by_push_rate, (void *)&f[i]);
        ff[i].push = one[rounds / 2].push;
        ff[i].decode = one[rounds / 2].decode;
        ff[i].head = one[rounds / 2].head;
    }
    free(one);
    free(r);
    return rc;
}

static int bench_single(const bench_file *f, size_t n, const bench_opts *o)
{
    file_figures *ff = kiln_xcalloc(n, sizeof(*ff));
    int rc = 0;
    for (size_t i = 0; rc == 0 && !o->push_only && i < n; i++) {
        fprintf(stderr, "bench_push: %s: inflate and walk ...\n", f[i].rel);
        rc = bench_baselines(&f[i], o->seconds, &ff[i]);
    }
    if (rc == 0)
        rc = push_rounds(f, n, o, ff);
    for (size_t i = 0; rc == 0 && !o->push_only && i < n; i++)
        rc = bench_wire(&f[i], o->seconds, &ff[i]);
    if (rc == 0) {
        printf("\n== Push path, single thread (decode+validate+normalize+split+append via "
               "kiln_distributor_ingest); each file's median of %d rounds over all files ==\n",
               fixed_iters ? 1 : o->rounds);
        print_push_header();
        for (size_t i = 0; i < n; i++)
            print_push_row(&f[i], &ff[i]);
        print_totals(f, ff, n);
    }
    if (rc == 0 && !o->push_only) {
        printf("\n== Same bytes through libdeflate inflate (of the .gz) and a plain protobuf "
               "wire walk, single thread, MB/s per core ==\n");
        print_ratio_header();
        for (size_t i = 0; i < n; i++)
            print_ratio_row(&f[i], &ff[i]);
        print_wire(f, ff, n);
    }
    free(ff);
    return rc;
}

/* ---- recording rules ---------------------------------------------------- */

/* The profile type id of f's first sample type and a function name of it
 * (arena a), for rules that match every push of f. */
static int profile_facts(const bench_file *f, kiln_arena_t *a, char **type, char **fn)
{
    kiln_pprof_t p;
    kiln_err err = {KILN_OK, ""};
    if (kiln_pprof_decode(a, f->raw, f->raw_len, &p, &err) != KILN_OK || p.n_sample_types == 0)
        return -1;
    kiln_str_t t = kiln_pprof_str(&p, p.sample_types[0].type);
    kiln_str_t u = kiln_pprof_str(&p, p.sample_types[0].unit);
    kiln_str_t pt = kiln_pprof_str(&p, p.period_type.type);
    kiln_str_t pu = kiln_pprof_str(&p, p.period_type.unit);
    *type = kiln_arena_printf(a, "%s:%.*s:%.*s:%.*s:%.*s", f->name, (int)t.len, t.ptr, (int)u.len,
                              u.ptr, (int)pt.len, pt.ptr, (int)pu.len, pu.ptr);
    kiln_str_t name = p.n_functions > 0 ? kiln_pprof_str(&p, p.functions[p.n_functions / 2].name)
                                        : (kiln_str_t){"main", 4};
    *fn = kiln_arena_strndup(a, name.ptr, name.len);
    return 0;
}

/* Stores k rules matching every push of f: grouped by pod, every other one
 * filtered by a function of the profile. */
static int store_rules(kiln_rules_t *rules, const bench_file *f, size_t k, kiln_arena_t *a)
{
    char *type, *fn;
    if (profile_facts(f, a, &type, &fn) != 0)
        return -1;
    char *m =
        kiln_arena_printf(a, "{__profile_type__=\"%s\",service_name=\"%s\"}", type, f->service);
    static char *group_by[] = {"pod"};
    for (size_t i = 0; i < k; i++) {
        Settings__V1__UpsertRecordingRuleRequest in =
            SETTINGS__V1__UPSERT_RECORDING_RULE_REQUEST__INIT;
        Settings__V1__StacktraceFilterFunctionName fname =
            SETTINGS__V1__STACKTRACE_FILTER_FUNCTION_NAME__INIT;
        Settings__V1__StacktraceFilter filter = SETTINGS__V1__STACKTRACE_FILTER__INIT;
        fname.function_name = fn;
        filter.function_name = &fname;
        in.metric_name = kiln_arena_printf(a, "bench_rule_%zu", i);
        in.matchers = &m;
        in.n_matchers = 1;
        in.group_by = group_by;
        in.n_group_by = 1;
        in.stacktrace_filter = i % 2 ? &filter : NULL;
        Settings__V1__RecordingRule *out;
        kiln_err err = {KILN_OK, ""};
        if (kiln_rules_upsert(rules, "bench", &in, a, &out, &err) != KILN_OK) {
            fprintf(stderr, "bench_push: rule: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* Push CPU of f with k rules evaluated at ingest. */
static int bench_rules_one(const bench_file *f, size_t k, double seconds, run_result *out)
{
    bench_env e;
    bench_env_create(&e);
    char dir[64];
    snprintf(dir, sizeof(dir), "%s/rules", e.dir);
    kiln_objstore_t *store = NULL;
    kiln_err err = {KILN_OK, ""};
    if (kiln_objstore_open_fs(dir, &store, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s\n", err.msg);
        bench_env_destroy(&e);
        return -1;
    }
    kiln_rules_t *rules = kiln_rules_create(store);
    kiln_arena_t *a = kiln_arena_create(0);
    int rc = store_rules(rules, f, k, a);
    kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 3600LL * 1000000000);
    /* Counters kept as the server keeps them: each push's additions
     * journaled, unsynced like the benchmark's WAL. */
    char state[96];
    snprintf(state, sizeof(state), "%s/rules.state", e.dir);
    if (rc == 0 && kiln_rules_eval_state_file(ev, state, false, &err) != KILN_OK) {
        fprintf(stderr, "bench_push: %s\n", err.msg);
        rc = -1;
    }
    kiln_distributor_set_rules(e.d, ev);
    push_ctx pc;
    memset(&pc, 0, sizeof(pc));
    pc.d = e.d, pc.files = f, pc.n_files = 1, pc.tenant = "bench";
    pc.a = kiln_arena_create(0);
    pc.t0_ns = kiln_wall_ns() - 86400LL * 1000000000;
    if (rc == 0)
        rc = run_timed(seconds, push_one, &pc, false, out);
    kiln_arena_destroy(pc.a);
    /* The rules go before the environment, which removes the directory
     * their counters are saved in; the distributor borrows ev. */
    kiln_distributor_set_rules(e.d, NULL);
    kiln_rules_eval_destroy(ev);
    kiln_arena_destroy(a);
    kiln_rules_destroy(rules);
    kiln_objstore_close(store);
    bench_env_destroy(&e);
    return rc;
}

#define RULE_COUNTS 3
#define RULE_ROUNDS 7

static double overhead_pct(double us, double base)
{
    return base > 0 ? (us - base) * 100 / base : 0;
}

/* The median push CPU per profile (us) of f with counts[j] rules, and the
 * median overhead (%) over counts[0], from RULE_ROUNDS rounds that run the
 * counts back to back. The overhead is taken within each round, so that a
 * machine whose speed drifts (other work, frequency) shifts both sides of
 * a ratio alike, then its median over the rounds. */
static int rules_medians(const bench_file *f, const size_t *counts, double seconds, double *median,
                         double *overhead)
{
    double us[RULE_COUNTS][RULE_ROUNDS], pct[RULE_COUNTS][RULE_ROUNDS];
    for (size_t round = 0; round < RULE_ROUNDS; round++) {
        for (size_t j = 0; j < RULE_COUNTS; j++) {
            run_result r;
            memset(&r, 0, sizeof(r));
            if (bench_rules_one(f, counts[j], seconds, &r) != 0)
                return -1;
            us[j][round] = r.iters > 0 ? r.cpu * 1e6 / (double)r.iters : 0;
            pct[j][round] = overhead_pct(us[j][round], us[0][round]);
        }
    }
    for (size_t j = 0; j < RULE_COUNTS; j++) {
        qsort(us[j], RULE_ROUNDS, sizeof(double), cmp_double);
        qsort(pct[j], RULE_ROUNDS, sizeof(double), cmp_double);
        median[j] = us[j][RULE_ROUNDS / 2];
        overhead[j] = pct[j][RULE_ROUNDS / 2];
    }
    return 0;
}

/* The cost of recording rules per push: 0, 10 and 100 rules that all
 * match (half of them filtered by a function), push CPU per profile, and
 * over the files as the mean of their overheads (a rule costs about the
 * same per profile whatever its size, so a sum of CPU would let the
 * largest profile hide it). Each round runs for half of seconds. */
static int bench_rules(const bench_file *f, size_t n, double seconds)
{
    static const size_t counts[RULE_COUNTS] = {0, 10, 100};
    double mean[RULE_COUNTS] = {0};
    seconds /= 2;
    printf("\n== Recording rules evaluated at ingest: push CPU per profile with 0, 10, 100 "
           "matching rules (half by function), single thread, overhead the median over %d "
           "rounds of its ratio within the round, runs of %.1f s ==\n",
           RULE_ROUNDS, seconds);
    printf("%-58s %6s %12s %10s\n", "profile", "rules", "us/profile", "overhead");
    for (size_t i = 0; i < n; i++) {
        double med[RULE_COUNTS], over[RULE_COUNTS];
        if (rules_medians(&f[i], counts, seconds, med, over) != 0)
            return -1;
        for (size_t j = 0; j < RULE_COUNTS; j++) {
            mean[j] += over[j] / (double)n;
            printf("%-58s %6zu %12.1f %9.1f%%\n", f[i].rel, counts[j], med[j], over[j]);
        }
    }
    for (size_t j = 1; j < RULE_COUNTS; j++)
        printf("%-58s %6zu %12s %9.1f%%\n", "ALL (mean over the files)", counts[j], "", mean[j]);
    printf("TARGET (issue 17)                                          under 5%% with 10 rules\n");
    bench_summary("rules10_overhead_pct", mean[1], "%");
    bench_summary("rules100_overhead_pct", mean[2], "%");
    return 0;
}

/* One run per file with k rules (-k). */
static int bench_rules_k(const bench_file *f, size_t n, size_t k, double seconds)
{
    printf("\n== %zu matching recording rules (half by function), single thread ==\n", k);
    printf("%-58s %12s\n", "profile", "us/profile");
    for (size_t i = 0; i < n; i++) {
        run_result r;
        memset(&r, 0, sizeof(r));
        if (bench_rules_one(&f[i], k, seconds, &r) != 0)
            return -1;
        printf("%-58s %12.1f\n", f[i].rel, r.iters > 0 ? r.cpu * 1e6 / (double)r.iters : 0);
    }
    return 0;
}

/* ---- multi-threaded scaling ------------------------------------------------- */

static void *thread_main(void *arg)
{
    push_ctx *c = arg;
    pthread_barrier_wait(c->start);
    c->failed = run_timed(c->seconds, push_one, c, false, &c->r);
    return NULL;
}

typedef struct mt_result {
    double mb, wall, cpu;
    uint64_t pushes;
} mt_result;

/* threads pushers, each its own tenant, into one shared distributor and
 * ingester (one process); every pusher cycles through all files. */
static int bench_threads(const bench_file *f, size_t n, int threads, double seconds, mt_result *out)
{
    bench_env e;
    bench_env_create(&e);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    push_ctx *pc = kiln_xcalloc((size_t)threads, sizeof(*pc));
    pthread_t *tid = kiln_xcalloc((size_t)threads, sizeof(*tid));
    char(*tenants)[32] = kiln_xcalloc((size_t)threads, sizeof(*tenants));
    int64_t t0 = kiln_wall_ns() - 86400LL * 1000000000;
    for (int k = 0; k < threads; k++) {
        snprintf(tenants[k], sizeof(tenants[k]), "bench-t%d", k);
        pc[k] =
            (push_ctx){e.d, f, n, tenants[k], kiln_arena_create(0), t0, {0}, seconds, &start, 0};
        pthread_create(&tid[k], NULL, thread_main, &pc[k]);
    }
    int rc = 0;
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < threads; k++) {
        pthread_join(tid[k], NULL);
        rc |= pc[k].failed;
        out->cpu += pc[k].r.cpu;
        out->wall = pc[k].r.wall > out->wall ? pc[k].r.wall : out->wall;
        out->pushes += pc[k].r.iters;
        kiln_arena_destroy(pc[k].a);
    }
    /* The timed bytes: pushes after the warm-up, in the same file order. */
    for (int k = 0; k < threads; k++) {
        for (uint64_t i = WARMUP; i < WARMUP + pc[k].r.iters; i++)
            out->mb += (double)f[i % n].raw_len / MB;
    }
    free(tenants);
    free(tid);
    free(pc);
    pthread_barrier_destroy(&start);
    bench_env_destroy(&e);
    return rc;
}

static int bench_scaling(const bench_file *f, size_t n, double seconds)
{
    int counts[3] = {1, 2, 0};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nc = 2;
    if (cores > 2)
        counts[nc++] = cores > MAX_THREADS ? MAX_THREADS : (int)cores;
    printf("\n== Push path, N threads (each its own tenant, one shared distributor and ingester; "
           "each thread pushes all %zu files round-robin; %ld cores online) ==\n",
           n, cores);
    printf("%7s %9s %12s %14s %11s %9s %10s\n", "threads", "pushes", "agg MB/s", "MB/s per core",
           "CPU/wall", "scaling", "efficiency");
    double base = 0;
    for (size_t i = 0; i < nc; i++) {
        mt_result r;
        fprintf(stderr, "bench_push: %d thread(s) ...\n", counts[i]);
        if (bench_threads(f, n, counts[i], seconds, &r) != 0)
            return -1;
        double agg = r.wall > 0 ? r.mb / r.wall : 0;
        if (i == 0)
            base = agg;
        double scale = base > 0 ? agg / base : 0;
        printf("%7d %9llu %12.1f %14.1f %11.2f %8.2fx %9.0f%%\n", counts[i],
               (unsigned long long)r.pushes, agg, r.cpu > 0 ? r.mb / r.cpu : 0,
               r.wall > 0 ? r.cpu / r.wall : 0, scale, scale / counts[i] * 100);
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, bench_opts *o)
{
    o->seconds = 2.0;
    o->iters = 0;
    o->rounds = 3;
    o->push_only = false;
    o->rules_only = false;
    o->rules_k = -1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-p") == 0) {
            o->push_only = true;
        } else if (strcmp(argv[i], "-r") == 0) {
            o->rules_only = true;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            o->seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "-R") == 0 && i + 1 < argc) {
            o->rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            o->iters = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) {
            o->rules_k = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_push [-s seconds | -n iterations] [-R rounds] "
                            "[-p | -r | -k K] [file ...]\n"
                            "  -s  seconds per figure (default 2)\n"
                            "  -R  rounds over all files of the single-thread push figures,\n"
                            "      each file's median round reported (default 3)\n"
                            "  -n  timed iterations per figure instead (repeatable instruction\n"
                            "      counts under callgrind)\n"
                            "  -p  push figures only, one thread (for perf or callgrind)\n"
                            "  -r  recording rules figures only (0, 10, 100 rules)\n"
                            "  -k  one run per file with K recording rules, for callgrind:\n"
                            "      its push_one per call, -k 0 against -k 10, is the rules'\n"
                            "      cost in instructions, whatever else the machine runs\n"
                            "  files are relative to $KILN_TESTDATA unless absolute\n");
            return -1;
        }
    }
    o->first_file = i;
    if (!(o->seconds > 0))
        o->seconds = 2.0;
    if (o->rounds < 1)
        o->rounds = 1;
    return 0;
}

static void print_load(void)
{
    FILE *fp = fopen("/proc/loadavg", "r");
    char line[128] = "";
    if (fp != NULL) {
        if (fgets(line, sizeof(line), fp) == NULL)
            line[0] = '\0';
        fclose(fp);
    }
    line[strcspn(line, "\n")] = '\0';
    printf("cores online: %ld; load average: %s (other work on the machine skews wall-clock "
           "figures and scaling)\n",
           sysconf(_SC_NPROCESSORS_ONLN), line);
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    int first = o.first_file;
    fixed_iters = o.iters;
    const char *root = getenv("KILN_TESTDATA");
    if (root == NULL || *root == '\0')
        root = KILN_TESTDATA_DEFAULT;
    size_t n = first < argc ? (size_t)(argc - first) : N_DEFAULT_FILES;
    bench_file *f = kiln_xcalloc(n, sizeof(*f));
    kiln_arena_t *keep = kiln_arena_create(0);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        init_file(&f[i], root, first < argc ? argv[first + (int)i] : default_files[i].rel);
        rc = load_file(&f[i], keep);
    }
    char per[64];
    if (o.iters > 0)
        snprintf(per, sizeof(per), "%llu iterations", (unsigned long long)o.iters);
    else
        snprintf(per, sizeof(per), "%.1f s", o.seconds);
    printf("kiln bench_push: %s per figure after %d warm-up iterations; MB = 10^6 bytes of "
           "uncompressed pprof; MB/s = MB per CPU second of the measuring thread "
           "(CLOCK_THREAD_CPUTIME_ID) unless marked wall\ntest data: %s\n",
           per, WARMUP, root);
    print_load();
    if (rc == 0 && o.rules_k >= 0) {
        rc = bench_rules_k(f, n, (size_t)o.rules_k, o.seconds);
        o.push_only = true; /* nothing else */
    } else if (rc == 0 && o.rules_only) {
        rc = bench_rules(f, n, o.seconds);
        o.push_only = true; /* nothing else */
    } else if (rc == 0) {
        rc = bench_single(f, n, &o);
    }
    if (rc == 0 && !o.push_only)
        rc = bench_rules(f, n, o.seconds);
    if (rc == 0 && !o.push_only) {
        printf("\npeak RSS after the single-thread runs: %.1f MB\n", peak_rss_mb());
        rc = bench_scaling(f, n, o.seconds);
    }
    if (rc == 0)
        printf("\npeak RSS (getrusage ru_maxrss): %.1f MB\n", peak_rss_mb());
    for (size_t i = 0; i < n; i++)
        free(f[i].gz);
    kiln_arena_destroy(keep);
    free(f);
    return rc == 0 ? 0 : 1;
}
