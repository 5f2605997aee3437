/* SPDX-License-Identifier: Apache-2.0
 * bench_storage: what storing profiles costs. (1) Bytes on disk per sample
 * and per profile of one service pushing a real profile every 15 s with
 * varied values: a 1 h block, then 4 such blocks compacted, beside the same
 * pprof profiles compressed one by one with zstd -3; (2) WAL group-commit
 * throughput with fsync; (3) push latency through the distributor with
 * fsync; (4) flush time per block and head memory per million samples.
 * Prints figures only; it is not a test and nothing here fails on a figure.
 *
 * Usage: bench_storage [-s seconds] [-m samples] [-o parts] [file ...]
 * (files relative to $KILN_TESTDATA unless absolute). */
#include <ftw.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "bench_limits.h"
#include "bench_summary.h"
#include "db.h"
#include "arena.h"
#include "clock.h"
#include "block.h"
#include "distributor.h"
#include "gzip.h"
#include "head.h"
#include "ingester.h"
#include "metrics.h"
#include "objstore.h"
#include "overrides.h"
#include "peak_rss.h"
#include "pprof.h"
#include "pprof_build.h"
#include "wal.h"
#include "xmalloc.h"
#include "head_append.h"

#ifndef KILN_TESTDATA_DEFAULT
#define KILN_TESTDATA_DEFAULT "../shared/testdata"
#endif

#define PUSH_EVERY_NS 15000000000LL /* an SDK's upload period */
#define HOUR_PUSHES 240             /* 1 h of pushes every 15 s */
#define HOURS 4                     /* compacted into one level-2 block */
#define DROP 0.10                   /* share of samples missing from a push */
#define MAX_DEPTH 1000              /* the default -validation.max-profile-stacktrace-depth */
#define ZSTD_LEVEL 3
#define GZIP_LEVEL 6
#define T0_NS 1704067200000000000LL /* 2024-01-01T00:00:00Z: 4 h aligned */
#define WAL_RECORD "grafana-pyroscope/cpu.pb.gz"

typedef struct sfile {
    char path[512];
    char rel[128];
    const char *label; /* rel without its directory */
    const char *name;  /* __name__ pushed */
    char service[80];
    uint8_t *disk;
    size_t disk_len; /* the file as on disk (gzip or not) */
    const uint8_t *raw;
    size_t raw_len;    /* uncompressed pprof, in the keep arena */
    kiln_pprof_t base; /* raw decoded and validated, never normalised */
    int64_t *unit;     /* per sample type: the gcd of its nonzero values (1 if none) */
} sfile;

typedef struct bench_opts {
    double seconds;     /* per WAL and push figure */
    size_t mem_samples; /* stored samples per head for the memory figure */
    char parts[64];     /* comma list of disk,wal,push,mem,series */
    int first_file;
} bench_opts;

static const struct {
    const char *rel, *name;
} default_files[] = {
    {"gdu/default.pgo", "process_cpu"},
    {"grafana-pyroscope/cpu_go_truncated_1.pb.gz", "process_cpu"},
    {"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz", "process_cpu"},
    {"grafana-pyroscope/heap", "memory"},
    {"grafana-pyroscope/cpu-js.pb.gz", "wall"},
};
#define N_DEFAULT_FILES (sizeof(default_files) / sizeof(default_files[0]))

/* ---- small helpers ---------------------------------------------------------------- */

static double now_s(void)
{
    return (double)kiln_mono_ns() * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n). */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

/* xorshift64*: a fixed seed makes every run push the same profiles. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53;
}

static int make_tmpdir(char *dir, size_t cap, const char *what)
{
    snprintf(dir, cap, "/tmp/kiln-bench-%s-XXXXXX", what);
    if (mkdtemp(dir) == NULL) {
        perror("bench_storage: mkdtemp");
        return -1;
    }
    return 0;
}

static int on_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "bench_storage: cannot remove %s\n", path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, on_remove, 8, FTW_DEPTH | FTW_PHYS);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* ---- loading -------------------------------------------------------------------- */

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    kiln_buf b;
    kiln_buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        kiln_buf_append(&b, chunk, n);
    int bad = ferror(fp);
    fclose(fp);
    *out = (uint8_t *)kiln_buf_detach(&b, len);
    return bad ? -1 : 0;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    a = a < 0 ? -a : a;
    b = b < 0 ? -b : b;
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The granularity of each sample type's values: CPU time comes in whole
 * sampling intervals (the period for Go, 10 ms for this JFR profile whose
 * period field says 1 s), counts and bytes in ones. */
static void find_units(sfile *f, kiln_arena_t *keep)
{
    const kiln_pprof_t *p = &f->base;
    f->unit = kiln_arena_calloc(keep, p->n_sample_types + 1, sizeof(*f->unit));
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t t = 0; t < s->n_values && t < p->n_sample_types; t++)
            f->unit[t] = gcd64(f->unit[t], p->values[s->value_off + t]);
    }
    for (size_t t = 0; t < p->n_sample_types; t++)
        f->unit[t] = f->unit[t] > 0 ? f->unit[t] : 1;
}

/* Reads f, gunzips it when gzip and decodes and validates it into keep. */
static int load_file(sfile *f, kiln_arena_t *keep)
{
    kiln_err err = {KILN_OK, ""};
    if (read_whole(f->path, &f->disk, &f->disk_len) != 0) {
        fprintf(stderr, "bench_storage: cannot read %s\n", f->path);
        return -1;
    }
    kiln_status st =
        kiln_gunzip_maybe(keep, f->disk, f->disk_len, 256u << 20, &f->raw, &f->raw_len, &err);
    if (st == KILN_OK)
        st = kiln_pprof_decode(keep, f->raw, f->raw_len, &f->base, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(&f->base, &err);
    if (st == KILN_OK)
        find_units(f, keep);
    else
        fprintf(stderr, "bench_storage: %s: %s\n", f->rel, err.msg);
    return st == KILN_OK ? 0 : -1;
}

static void init_file(sfile *f, const char *root, const char *rel)
{
    memset(f, 0, sizeof(*f));
    if (rel[0] == '/')
        snprintf(f->path, sizeof(f->path), "%s", rel);
    else
        snprintf(f->path, sizeof(f->path), "%s/%s", root, rel);
    snprintf(f->rel, sizeof(f->rel), "%s", rel);
    f->name = "process_cpu";
    for (size_t i = 0; i < N_DEFAULT_FILES; i++) {
        if (strcmp(default_files[i].rel, rel) == 0)
            f->name = default_files[i].name;
    }
    const char *base = strrchr(rel, '/');
    f->label = base ? f->rel + (base + 1 - rel) : f->rel;
    snprintf(f->service, sizeof(f->service), "bench-%.60s", base ? base + 1 : rel);
}

/* ---- one service's pushes -------------------------------------------------------- */

/* v scaled by f in whole units (at least one unit): CPU time stays a
 * multiple of the sampling interval, and a nonzero value stays nonzero. */
static int64_t scale_value(int64_t v, double f, int64_t unit)
{
    if (v == 0)
        return 0;
    if (v < 0)
        return -scale_value(-v, f, unit);
    int64_t k = (int64_t)((double)(v / unit) * f + 0.5);
    return (k < 1 ? 1 : k) * unit;
}

/* How a push differs from the file: the service as the issue describes it
 * (both on), or one of the ablations that show what each part costs. */
typedef struct vary_mode {
    bool scale; /* each sample's values x0.5..1.5 */
    bool drop;  /* ~DROP of the samples left out */
} vary_mode;

static const double H_DROP = 0.4690; /* bits: binary entropy of DROP = 0.1 */

/* The information a varied sample carries: one factor f shared by its
 * values, known to about 1 / (v / unit) by the finest-grained value. */
static double sample_bits(const sfile *f, const kiln_pprof_sample *s)
{
    double x = 1;
    for (uint32_t j = 0; j < s->n_values && j < f->base.n_sample_types; j++) {
        double k = fabs((double)f->base.values[s->value_off + j]) / (double)f->unit[j];
        x = k > x ? k : x;
    }
    return log2(x);
}

/* One push of the service: the file's profile with ~DROP of its samples
 * left out and each kept sample's values scaled by one factor in 0.5..1.5,
 * at time_ns. out shares the file's symbols and stacks; its samples and
 * values are in a. *bits grows by what the variation adds (its entropy). */
static void vary_profile(const sfile *f, vary_mode m, rng *r, kiln_arena_t *a, int64_t time_ns,
                         kiln_pprof_t *out, double *bits)
{
    const kiln_pprof_t *base = &f->base;
    *out = *base;
    out->samples = kiln_arena_alloc(a, (base->n_samples + 1) * sizeof(*out->samples));
    out->values = kiln_arena_alloc(a, (base->n_values + 1) * sizeof(*out->values));
    size_t ns = 0, nv = 0;
    for (size_t i = 0; i < base->n_samples; i++) {
        const kiln_pprof_sample *s = &base->samples[i];
        *bits += m.drop ? H_DROP : 0;
        if (m.drop && rng_unit(r) < DROP)
            continue;
        double k = m.scale ? 0.5 + rng_unit(r) : 1.0;
        *bits += m.scale ? sample_bits(f, s) : 0;
        out->samples[ns] = *s;
        out->samples[ns++].value_off = (uint32_t)nv;
        for (uint32_t j = 0; j < s->n_values; j++) {
            int64_t v = base->values[s->value_off + j];
            out->values[nv++] = m.scale ? scale_value(v, k, f->unit[j]) : v; /* n_values = types */
        }
    }
    out->n_samples = ns;
    out->n_values = nv;
    out->time_nanos = time_ns;
}

/* What one push weighs before Kiln sees it. */
typedef struct raw_sizes {
    uint64_t raw, zstd, gzip; /* pprof bytes, and each profile compressed alone */
    uint64_t pprof_samples;   /* samples pushed (stacks, before splitting by type) */
    uint64_t pushes;
    double bits; /* entropy of the variation (see vary_profile) */
} raw_sizes;

typedef struct pusher {
    const sfile *f;
    vary_mode mode;
    rng r;
    kiln_arena_t *a; /* reset per push */
    kiln_buf enc;    /* the pprof bytes of one push */
    kiln_buf gz;
    ZSTD_CCtx *zc;
    void *zbuf;
    size_t zcap;
    kiln_label_t labels[2];
} pusher;

static void pusher_init(pusher *p, const sfile *f, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->f = f;
    p->mode = (vary_mode){true, true};
    p->r.s = seed;
    p->a = kiln_arena_create(0);
    kiln_buf_init(&p->enc, 0);
    kiln_buf_init(&p->gz, 0);
    p->zc = ZSTD_createCCtx();
    p->labels[0] = (kiln_label_t){"__name__", f->name};
    p->labels[1] = (kiln_label_t){"service_name", f->service};
}

static void pusher_fini(pusher *p)
{
    kiln_arena_destroy(p->a);
    kiln_buf_free(&p->enc);
    kiln_buf_free(&p->gz);
    ZSTD_freeCCtx(p->zc);
    free(p->zbuf);
}

static void measure_raw(pusher *p, raw_sizes *rs)
{
    size_t bound = ZSTD_compressBound(p->enc.len);
    if (bound > p->zcap) {
        p->zbuf = kiln_xrealloc(p->zbuf, bound);
        p->zcap = bound;
    }
    size_t z = ZSTD_compressCCtx(p->zc, p->zbuf, p->zcap, p->enc.ptr, p->enc.len, ZSTD_LEVEL);
    if (ZSTD_isError(z))
        abort(); /* the bound was reserved */
    p->gz.len = 0;
    kiln_gzip(p->enc.ptr, p->enc.len, GZIP_LEVEL, &p->gz);
    rs->raw += p->enc.len;
    rs->zstd += z;
    rs->gzip += p->gz.len;
}

/* Makes the push at time_ns as the client sends it, measures it when rs is
 * set, and appends it to h as the ingester does: decode, validate,
 * normalise, append with a random 64-bit profile id (the distributor
 * stores a hash of the client's id, or a random one). */
static int push_one(pusher *p, kiln_head_t *h, int64_t time_ns, raw_sizes *rs)
{
    kiln_err err = {KILN_OK, ""};
    kiln_pprof_t v, q;
    double bits = 0;
    kiln_arena_reset(p->a);
    vary_profile(p->f, p->mode, &p->r, p->a, time_ns, &v, &bits);
    p->enc.len = 0;
    if (!kiln_pprof_encode(&v, false, &p->enc))
        return -1;
    if (rs != NULL) {
        measure_raw(p, rs);
        rs->pprof_samples += v.n_samples;
        rs->pushes++;
        rs->bits += bits;
    }
    kiln_status st = kiln_pprof_decode(p->a, (const uint8_t *)p->enc.ptr, p->enc.len, &q, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(&q, &err);
    if (st == KILN_OK)
        st = kiln_pprof_normalize(p->a, &q, MAX_DEPTH, &err);
    if (st == KILN_OK)
        check_head_append(h, p->labels, 2, &q, time_ns, rng_next(&p->r) | 1);
    if (st != KILN_OK)
        fprintf(stderr, "bench_storage: %s: push: %s\n", p->f->rel, err.msg);
    return st == KILN_OK ? 0 : -1;
}

/* ---- blocks on disk --------------------------------------------------------------- */

enum { OBJ_SYMBOLS, OBJ_INDEX, OBJ_SAMPLES, OBJ_META, N_OBJ };
static const char *obj_names[N_OBJ] = {"symbols", "index", "samples", "meta.json"};

/* A block's bytes: each object, and the three sections of `symbols`
 * (strings; functions and mappings; locations and the stack tree). */
typedef struct block_sizes {
    uint64_t obj[N_OBJ];
    uint64_t sym[3];
    uint64_t sym_raw[3];    /* the same sections before zstd */
    uint64_t samples_raw;   /* the samples chunks before zstd */
    uint64_t samples_joint; /* the samples chunks as one zstd frame (joint_size) */
} block_sizes;

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks the section headers ([u32 raw][u32 comp][u32 sum], docs/block-format.md)
 * of an object: the first n sections' sizes into comp and raw, the sum of
 * all raw sizes into *raw_total; returns the number of sections. */
static size_t walk_sections(const kiln_buf *b, uint64_t *comp, uint64_t *raw, size_t n,
                            uint64_t *raw_total)
{
    const uint8_t *p = (const uint8_t *)b->ptr, *end = p + b->len;
    size_t k = 0;
    while (end - p >= 12) {
        uint32_t r = get32le(p), c = get32le(p + 4);
        if (k < n) {
            comp[k] = 12 + (uint64_t)c;
            raw[k] = r;
        }
        *raw_total += r;
        k++;
        p += 12 + (size_t)c;
    }
    return k;
}

/* The sections of b decompressed and compressed again as one zstd frame
 * (level 3, long-distance matching over a 128 MB window): what the series
 * chunks would take if redundancy between series (the two series of a Go
 * CPU profile differ only in their divisors) were exploited. */
static uint64_t joint_size(const kiln_buf *b)
{
    const uint8_t *p = (const uint8_t *)b->ptr, *end = p + b->len;
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    while (end - p >= 12) {
        size_t r = get32le(p), c = get32le(p + 4);
        kiln_buf_reserve(&raw, r);
        size_t n = ZSTD_decompress(raw.ptr + raw.len, r, p + 12, c);
        raw.len += ZSTD_isError(n) ? 0 : n;
        p += 12 + c;
    }
    ZSTD_CCtx *z = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(z, ZSTD_c_enableLongDistanceMatching, 1);
    ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 27);
    size_t cap = ZSTD_compressBound(raw.len);
    void *out = kiln_xmalloc(cap + 1);
    size_t n = ZSTD_compress2(z, out, cap, raw.ptr ? raw.ptr : "", raw.len);
    ZSTD_freeCCtx(z);
    free(out);
    kiln_buf_free(&raw);
    return ZSTD_isError(n) ? 0 : (uint64_t)n;
}

static int block_measure(kiln_objstore_t *s, const char *tenant, const char *ulid, block_sizes *bs)
{
    memset(bs, 0, sizeof(*bs));
    char name[256];
    kiln_err err = {KILN_OK, ""};
    for (int i = 0; i < N_OBJ; i++) {
        snprintf(name, sizeof(name), "%s/blocks/%s/%s", tenant, ulid, obj_names[i]);
        if (kiln_objstore_size(s, name, &bs->obj[i], &err) != KILN_OK)
            return -1;
    }
    for (int i = 0; i < 3; i += 2) { /* symbols, then samples */
        kiln_buf b;
        kiln_buf_init(&b, 0);
        snprintf(name, sizeof(name), "%s/blocks/%s/%s", tenant, ulid, obj_names[i]);
        kiln_status st = kiln_objstore_get(s, name, &b, &err);
        uint64_t total = 0;
        if (st == KILN_OK && i == OBJ_SYMBOLS) {
            walk_sections(&b, bs->sym, bs->sym_raw, 3, &total);
        } else if (st == KILN_OK) {
            walk_sections(&b, NULL, NULL, 0, &bs->samples_raw);
            bs->samples_joint = joint_size(&b);
        }
        kiln_buf_free(&b);
        if (st != KILN_OK)
            return -1;
    }
    return 0;
}

static uint64_t block_total(const block_sizes *bs)
{
    uint64_t t = 0;
    for (int i = 0; i < N_OBJ; i++)
        t += bs->obj[i];
    return t;
}

/* Writes h as a block of tenant at compaction level `level`; *secs is the
 * time kiln_block_write took (encoding, zstd, puts with fsync). */
static int write_block(kiln_objstore_t *s, const char *tenant, kiln_head_t *h, int level,
                       char ulid[KILN_ULID_LEN + 1], double *secs)
{
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    Block__V1__BlockCompaction comp = BLOCK__V1__BLOCK_COMPACTION__INIT;
    comp.level = level;
    meta.compaction = &comp;
    meta.ingester = "bench";
    kiln_err err = {KILN_OK, ""};
    double t0 = now_s();
    kiln_status st = kiln_block_write(s, tenant, h, &meta, ulid, &err);
    *secs = now_s() - t0;
    if (st != KILN_OK)
        fprintf(stderr, "bench_storage: block write: %s\n", err.msg);
    return st == KILN_OK ? 0 : -1;
}

/* ---- part 1: bytes on disk -------------------------------------------------------- */

typedef struct disk_fig {
    size_t types;
    raw_sizes raw1, raw4;    /* hour 0; all hours */
    kiln_head_stats_t head1; /* hour 0's head */
    block_sizes b1;          /* hour 0's block */
    uint64_t sum1h;          /* the HOURS one-hour blocks together */
    double flush_s[HOURS];   /* kiln_block_write per hour */
    uint64_t head_samples[HOURS];
    kiln_head_stats_t head4; /* the compacted head */
    block_sizes b4;
    double merge_s, write4_s;        /* compaction: open + merge_from, then block write */
    double abl_bps[3], abl_floor[3]; /* B/stored and its floor per ablation */
} disk_fig;

/* One hour of p's pushes into a fresh head, written as a level-1 block of
 * tenant: what was pushed (rs), the head (hs), the block (bs, ulid) and the
 * time its write took. */
static int hour_block(pusher *p, kiln_objstore_t *s, const char *tenant, int hour,
                      char ulid[KILN_ULID_LEN + 1], raw_sizes *rs, kiln_head_stats_t *hs,
                      block_sizes *bs, double *flush_s)
{
    kiln_head_t *h = kiln_head_create();
    memset(rs, 0, sizeof(*rs));
    int rc = 0;
    for (int i = 0; rc == 0 && i < HOUR_PUSHES; i++) {
        int64_t t = T0_NS + ((int64_t)hour * HOUR_PUSHES + i) * PUSH_EVERY_NS;
        rc = push_one(p, h, t, rs);
    }
    kiln_head_stats(h, hs);
    if (rc == 0)
        rc = write_block(s, tenant, h, 1, ulid, flush_s);
    if (rc == 0)
        rc = block_measure(s, tenant, ulid, bs);
    kiln_head_destroy(h);
    return rc;
}

static int disk_hour(pusher *p, kiln_objstore_t *s, const char *tenant, int hour,
                     char ulid[KILN_ULID_LEN + 1], disk_fig *fig)
{
    raw_sizes rs;
    kiln_head_stats_t hs;
    block_sizes bs;
    int rc = hour_block(p, s, tenant, hour, ulid, &rs, &hs, &bs, &fig->flush_s[hour]);
    if (rc != 0)
        return rc;
    fig->head_samples[hour] = hs.samples;
    if (hour == 0) {
        fig->raw1 = rs;
        fig->head1 = hs;
        fig->b1 = bs;
    }
    fig->raw4.raw += rs.raw, fig->raw4.zstd += rs.zstd, fig->raw4.gzip += rs.gzip;
    fig->raw4.pprof_samples += rs.pprof_samples, fig->raw4.pushes += rs.pushes;
    fig->sum1h += block_total(&bs);
    return 0;
}

/* The 1 h block again with part of the variation turned off: values as in
 * the file, nothing dropped, or both (the same profile 240 times). */
static const vary_mode ablations[] = {{false, true}, {true, false}, {false, false}};
#define N_ABLATIONS (sizeof(ablations) / sizeof(ablations[0]))

static int disk_ablate(const sfile *f, kiln_objstore_t *s, const char *tenant, disk_fig *fig)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < N_ABLATIONS; i++) {
        pusher p;
        pusher_init(&p, f, 0x9E3779B97F4A7C15ULL);
        p.mode = ablations[i];
        char ulid[KILN_ULID_LEN + 1];
        raw_sizes rs;
        kiln_head_stats_t hs;
        block_sizes bs;
        double secs;
        rc = hour_block(&p, s, tenant, 0, ulid, &rs, &hs, &bs, &secs);
        fig->abl_bps[i] = ratio((double)block_total(&bs), (double)hs.samples);
        fig->abl_floor[i] = ratio(rs.bits / 8, (double)hs.samples);
        pusher_fini(&p);
    }
    return rc;
}

/* The compactor's merge: every source block opened and merged into one
 * head, written as a level-2 block. */
static int disk_compact(kiln_objstore_t *s, const char *tenant,
                        char ulids[HOURS][KILN_ULID_LEN + 1], disk_fig *fig)
{
    kiln_head_t *h = kiln_head_create();
    kiln_err err = {KILN_OK, ""};
    int rc = 0;
    double t0 = now_s();
    for (int i = 0; rc == 0 && i < HOURS; i++) {
        kiln_block_t *b;
        if (kiln_block_open(s, tenant, ulids[i], &b, &err) != KILN_OK) {
            fprintf(stderr, "bench_storage: open %s: %s\n", ulids[i], err.msg);
            rc = -1;
            break;
        }
        size_t copied;
        if (kiln_head_merge_from(h, kiln_block_head(b), &copied, NULL) != KILN_OK)
            abort();
        kiln_block_close(b);
    }
    fig->merge_s = now_s() - t0;
    kiln_head_stats(h, &fig->head4);
    char ulid[KILN_ULID_LEN + 1];
    if (rc == 0)
        rc = write_block(s, tenant, h, 2, ulid, &fig->write4_s);
    if (rc == 0)
        rc = block_measure(s, tenant, ulid, &fig->b4);
    kiln_head_destroy(h);
    return rc;
}

static int disk_file(const sfile *f, kiln_objstore_t *s, const char *tenant, disk_fig *fig)
{
    memset(fig, 0, sizeof(*fig));
    fig->types = f->base.n_sample_types;
    pusher p;
    pusher_init(&p, f, 0x9E3779B97F4A7C15ULL);
    char ulids[HOURS][KILN_ULID_LEN + 1];
    int rc = 0;
    for (int hour = 0; rc == 0 && hour < HOURS; hour++)
        rc = disk_hour(&p, s, tenant, hour, ulids[hour], fig);
    pusher_fini(&p);
    if (rc == 0)
        rc = disk_compact(s, tenant, ulids, fig);
    if (rc == 0)
        rc = disk_ablate(f, s, tenant, fig);
    return rc;
}

/* Issue 15's mix: the profiles its side-by-side with Pyroscope pushed
 * (pushload's defaults), whose bytes per pprof sample it holds to 2.1. */
static bool in_issue_mix(const sfile *f)
{
    static const char *const mix[] = {
        "gdu/default.pgo", "grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz",
        "grafana-pyroscope/cpu-js.pb.gz"};
    for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
        if (strcmp(f->rel, mix[i]) == 0)
            return true;
    }
    return false;
}

/* Bytes per pprof sample of the blocks (4 h when compacted) over issue
 * 15's mix, its SUMMARY figure, and over every file measured. */
static void print_mix(const char *what, const char *summary, const sfile *f, const disk_fig *d,
                      size_t n, bool compacted)
{
    double blk[2] = {0, 0}, smp[2] = {0, 0}; /* [0] issue's mix, [1] all files */
    for (size_t i = 0; i < n; i++) {
        double b = (double)block_total(compacted ? &d[i].b4 : &d[i].b1);
        double m = (double)(compacted ? d[i].raw4.pprof_samples : d[i].raw1.pprof_samples);
        for (int k = in_issue_mix(&f[i]) ? 0 : 1; k < 2; k++)
            blk[k] += b, smp[k] += m;
    }
    printf("%s, B per pprof sample: issue 15's mix (default.pgo, jfr-kafka cpu, cpu-js: "
           "pushload's profiles) %.3f (target <= 2.1), every file above %.3f\n",
           what, ratio(blk[0], smp[0]), ratio(blk[1], smp[1]));
    if (smp[0] > 0)
        bench_summary(summary, ratio(blk[0], smp[0]), "B");
}

static void print_disk_1h(const sfile *f, const disk_fig *d, size_t n)
{
    printf("\n== Bytes on disk: one service, one push every 15 s for 1 h (%d profiles, values "
           "x0.5..1.5, ~%.0f%% of samples dropped per push), written as one block ==\n",
           HOUR_PUSHES, DROP * 100);
    printf("stored sample = one (stack, value) of one sample type; pprof sample = one pprof "
           "Sample (a stack with a value per type)\n");
    printf("%-44s %5s %8s %9s %9s %10s %8s %8s %9s | %10s %10s %10s %9s\n", "profile", "types",
           "smp/push", "pprof smp", "stored", "block B", "B/stored", "B/pprof", "B/profile",
           "raw pprof", "zstd-3", "gzip-6", "blk/zstd");
    for (size_t i = 0; i < n; i++) {
        const disk_fig *x = &d[i];
        double blk = (double)block_total(&x->b1);
        printf("%-44s %5zu %8.0f %9llu %9zu %10.0f %8.3f %8.3f %9.0f | %10llu %10llu %10llu "
               "%9.3f\n",
               f[i].label, x->types, ratio((double)x->raw1.pprof_samples, (double)x->raw1.pushes),
               (unsigned long long)x->raw1.pprof_samples, x->head1.samples, blk,
               ratio(blk, (double)x->head1.samples), ratio(blk, (double)x->raw1.pprof_samples),
               ratio(blk, (double)x->raw1.pushes), (unsigned long long)x->raw1.raw,
               (unsigned long long)x->raw1.zstd, (unsigned long long)x->raw1.gzip,
               ratio(blk, (double)x->raw1.zstd));
    }
    print_mix("1 h blocks", "disk_bytes_per_sample_flush", f, d, n, false);
}

static void print_breakdown_row(const char *label, const char *what, const block_sizes *b,
                                size_t stored)
{
    double tot = (double)block_total(b), smp = (double)b->obj[OBJ_SAMPLES];
    printf("%-44s %-3s %8.1f %8.1f %8.1f %8.1f %7.1f %9.1f %5.1f %6.0f%% %6.0f%% %7.3f %7.3f "
           "%5.1fx %6.0f%%\n",
           label, what, (double)b->sym[0] / 1e3, (double)b->sym[1] / 1e3, (double)b->sym[2] / 1e3,
           (double)b->obj[OBJ_SYMBOLS] / 1e3, (double)b->obj[OBJ_INDEX] / 1e3, smp / 1e3,
           (double)b->obj[OBJ_META] / 1e3, ratio((double)b->obj[OBJ_SYMBOLS], tot) * 100,
           ratio(smp, tot) * 100, ratio(smp, (double)stored),
           ratio((double)b->obj[OBJ_SYMBOLS] + (double)b->obj[OBJ_INDEX], (double)stored),
           ratio((double)b->samples_raw, smp), ratio((double)b->samples_joint, smp) * 100);
}

static void print_breakdown(const sfile *f, const disk_fig *d, size_t n)
{
    printf("\n== What the blocks hold, KB (10^3 bytes) on disk; symbols = strings + funcs/maps + "
           "locations/stack tree; B/stored split into samples and symbols+index ==\n");
    printf("%-44s %-3s %8s %8s %8s %8s %7s %9s %5s %7s %7s %7s %7s %6s %7s\n", "profile", "blk",
           "strings", "func+map", "loc+tree", "symbols", "index", "samples", "meta", "sym %",
           "smp %", "smp B/s", "sym+idx", "smp zx", "joint");
    for (size_t i = 0; i < n; i++) {
        print_breakdown_row(f[i].label, "1h", &d[i].b1, d[i].head1.samples);
        print_breakdown_row(f[i].label, "4h", &d[i].b4, d[i].head4.samples);
    }
    printf("(smp zx: samples bytes before zstd / after; joint: the samples chunks decompressed "
           "and compressed as one zstd -3 frame with long-distance matching, as %% of samples: "
           "what redundancy between series is worth)\n");
}

static void print_disk_4h(const sfile *f, const disk_fig *d, size_t n)
{
    printf("\n== After compaction: %d one-hour blocks (%d profiles) merged into one level-2 "
           "block ==\n",
           HOURS, HOURS * HOUR_PUSHES);
    printf("%-44s %10s %11s %10s %8s %8s %9s %11s %9s %9s %9s\n", "profile", "stored", "4x1h B",
           "4h B", "B/stored", "B/pprof", "B/profile", "zstd-3 B", "blk/zstd", "merge s",
           "write s");
    for (size_t i = 0; i < n; i++) {
        const disk_fig *x = &d[i];
        double blk = (double)block_total(&x->b4);
        printf("%-44s %10zu %11llu %10.0f %8.3f %8.3f %9.0f %11llu %9.3f %9.3f %9.3f\n", f[i].label,
               x->head4.samples, (unsigned long long)x->sum1h, blk,
               ratio(blk, (double)x->head4.samples), ratio(blk, (double)x->raw4.pprof_samples),
               ratio(blk, (double)x->raw4.pushes), (unsigned long long)x->raw4.zstd,
               ratio(blk, (double)x->raw4.zstd), x->merge_s, x->write4_s);
    }
    print_mix("4 h blocks", "disk_bytes_per_sample_compact", f, d, n, true);
}

static void print_ablation(const sfile *f, const disk_fig *d, size_t n)
{
    printf("\n== What the variation costs: 1 h block B/stored (and the entropy floor of the "
           "variation, B/stored) with parts of it turned off ==\n");
    printf("%-44s %16s %16s %16s %16s\n", "profile", "as pushed", "values as file",
           "nothing dropped", "same profile");
    for (size_t i = 0; i < n; i++) {
        const disk_fig *x = &d[i];
        char c[4][32];
        snprintf(c[0], sizeof(c[0]), "%.3f (%.3f)",
                 ratio((double)block_total(&x->b1), (double)x->head1.samples),
                 ratio(x->raw1.bits / 8, (double)x->head1.samples));
        for (size_t k = 0; k < N_ABLATIONS; k++)
            snprintf(c[k + 1], sizeof(c[k + 1]), "%.3f (%.3f)", x->abl_bps[k], x->abl_floor[k]);
        printf("%-44s %16s %16s %16s %16s\n", f[i].label, c[0], c[1], c[2], c[3]);
    }
    printf("(floor: per push, %.3f bits per sample of the file for which samples were dropped, "
           "plus log2(v/unit) bits per kept sample for its random factor, v its largest value; "
           "symbols, stacks and times cost extra)\n",
           H_DROP);
}

static void print_flush(const sfile *f, const disk_fig *d, size_t n)
{
    printf("\n== Flush time per block: kiln_block_write of each 1 h head (encode, zstd, 3 puts "
           "+ meta.json, each fsynced) ==\n");
    printf("%-44s %10s %10s %10s %10s %12s\n", "profile", "stored", "mean ms", "max ms",
           "B written", "M samples/s");
    for (size_t i = 0; i < n; i++) {
        double sum = 0, mx = 0, smp = 0;
        for (int h = 0; h < HOURS; h++) {
            sum += d[i].flush_s[h];
            mx = d[i].flush_s[h] > mx ? d[i].flush_s[h] : mx;
            smp += (double)d[i].head_samples[h];
        }
        printf("%-44s %10.0f %10.2f %10.2f %10.0f %12.2f\n", f[i].label, smp / HOURS,
               sum / HOURS * 1e3, mx * 1e3, (double)d[i].sum1h / HOURS, ratio(smp, sum) / 1e6);
    }
}

static int bench_disk(const sfile *f, size_t n)
{
    char dir[64];
    if (make_tmpdir(dir, sizeof(dir), "storage") != 0)
        return -1;
    kiln_objstore_t *s = NULL;
    kiln_err err = {KILN_OK, ""};
    if (kiln_objstore_open_fs(dir, &s, &err) != KILN_OK) {
        fprintf(stderr, "bench_storage: %s\n", err.msg);
        return -1;
    }
    disk_fig *d = kiln_xcalloc(n, sizeof(*d));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char tenant[32];
        snprintf(tenant, sizeof(tenant), "t%zu", i);
        fprintf(stderr, "bench_storage: disk: %s ...\n", f[i].label);
        rc = disk_file(&f[i], s, tenant, &d[i]);
    }
    if (rc == 0) {
        printf("\nobject store: filesystem under /tmp, writes via %s\n",
               kiln_objstore_uses_uring(s) ? "io_uring" : "pwrite");
        print_disk_1h(f, d, n);
        print_breakdown(f, d, n);
        print_ablation(f, d, n);
        print_disk_4h(f, d, n);
        print_flush(f, d, n);
    }
    free(d);
    kiln_objstore_close(s);
    remove_tree(dir);
    return rc;
}

/* ---- part 2: WAL group commit ------------------------------------------------------ */

typedef struct lat_log {
    double *v;
    size_t n, cap;
} lat_log;

static void lat_add(lat_log *l, double x)
{
    KILN_GROW(l->v, l->cap, l->n + 1);
    l->v[l->n++] = x;
}

typedef struct wal_thread {
    kiln_wal_t *w;
    const kiln_buf *rec;
    double seconds;
    pthread_barrier_t *start;
    lat_log lat;
    double wall;
    int failed;
} wal_thread;

static void *wal_main(void *arg)
{
    wal_thread *t = arg;
    kiln_err err = {KILN_OK, ""};
    pthread_barrier_wait(t->start);
    double t0 = now_s(), w = t0;
    while (w - t0 < t->seconds) {
        uint64_t seg;
        double a = w;
        if (kiln_wal_append(t->w, t->rec->ptr, t->rec->len, &seg, &err) != KILN_OK) {
            fprintf(stderr, "bench_storage: wal append: %s\n", err.msg);
            t->failed = 1;
            break;
        }
        w = now_s();
        lat_add(&t->lat, w - a);
    }
    t->wall = w - t0;
    return NULL;
}

/* Adds l's latencies to all and frees l's. */
static void lat_move(lat_log *all, lat_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        lat_add(all, l->v[i]);
    free(l->v);
    l->v = NULL;
}

/* Sorts all and takes its median and 99th percentile, then frees it. */
static void lat_finish(lat_log *all, double *p50, double *p99)
{
    qsort(all->v, all->n, sizeof(*all->v), cmp_double);
    *p50 = quantile(all->v, all->n, 0.50);
    *p99 = quantile(all->v, all->n, 0.99);
    free(all->v);
}

static int wal_run(const kiln_buf *rec, int threads, double seconds)
{
    char dir[64];
    if (make_tmpdir(dir, sizeof(dir), "wal") != 0)
        return -1;
    kiln_wal_config cfg = {.max_delay_ns = 0, .segment_bytes = 128u << 20, .fsync = 1};
    kiln_wal_t *w = NULL;
    kiln_err err = {KILN_OK, ""};
    if (kiln_wal_open(dir, &cfg, &w, &err) != KILN_OK) {
        fprintf(stderr, "bench_storage: wal: %s\n", err.msg);
        return -1;
    }
    uint64_t seg;
    for (int i = 0; i < 3; i++) /* warm: the segment exists and has been synced */
        kiln_wal_append(w, rec->ptr, rec->len, &seg, &err);
    kiln_wal_stats s0, s1;
    kiln_wal_stats_get(w, &s0);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    wal_thread *t = kiln_xcalloc((size_t)threads, sizeof(*t));
    pthread_t *tid = kiln_xcalloc((size_t)threads, sizeof(*tid));
    for (int k = 0; k < threads; k++) {
        t[k] = (wal_thread){w, rec, seconds, &start, {NULL, 0, 0}, 0, 0};
        pthread_create(&tid[k], NULL, wal_main, &t[k]);
    }
    double wall = 0, p50, p99;
    int failed = 0;
    lat_log all = {NULL, 0, 0};
    for (int k = 0; k < threads; k++) {
        pthread_join(tid[k], NULL);
        wall = t[k].wall > wall ? t[k].wall : wall;
        failed |= t[k].failed;
        lat_move(&all, &t[k].lat);
    }
    kiln_wal_stats_get(w, &s1);
    lat_finish(&all, &p50, &p99);
    double recs = (double)(s1.records - s0.records), syncs = (double)(s1.syncs - s0.syncs);
    printf("%7d %10.0f %10.0f %9.2f %10.0f %11.2f %9.3f %9.3f\n", threads, recs, recs / wall,
           (double)(s1.bytes - s0.bytes) / wall / 1e6, syncs / wall, ratio(recs, syncs), p50 * 1e3,
           p99 * 1e3);
    free(t);
    free(tid);
    pthread_barrier_destroy(&start);
    kiln_wal_close(w);
    remove_tree(dir);
    return failed ? -1 : 0;
}

/* The WAL record: the normalised encoding of WAL_RECORD, a realistic push. */
static int wal_record(const char *root, kiln_buf *rec)
{
    sfile f;
    init_file(&f, root, WAL_RECORD);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    int rc = load_file(&f, a);
    if (rc == 0 && kiln_pprof_normalize(a, &f.base, MAX_DEPTH, &err) != KILN_OK)
        rc = -1;
    if (rc == 0 && !kiln_pprof_encode(&f.base, true, rec))
        rc = -1;
    kiln_arena_destroy(a);
    free(f.disk);
    return rc;
}

static int bench_wal(const char *root, double seconds)
{
    kiln_buf rec;
    kiln_buf_init(&rec, 0);
    if (wal_record(root, &rec) != 0) {
        fprintf(stderr, "bench_storage: cannot make the WAL record from %s\n", WAL_RECORD);
        return -1;
    }
    printf("\n== WAL group commit, fsync on (fdatasync), max delay 0 (the default): N threads "
           "appending a %.1f KB record (normalised %s) for %.1f s ==\n",
           (double)rec.len / 1e3, WAL_RECORD, seconds);
    printf("%7s %10s %10s %9s %10s %11s %9s %9s\n", "threads", "records", "records/s", "MB/s",
           "syncs/s", "recs/sync", "p50 ms", "p99 ms");
    static const int counts[] = {1, 4, 16};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(counts) / sizeof(counts[0]); i++) {
        fprintf(stderr, "bench_storage: wal: %d thread(s) ...\n", counts[i]);
        rc = wal_run(&rec, counts[i], seconds);
    }
    kiln_buf_free(&rec);
    return rc;
}

/* ---- part 3: the push path with fsync ----------------------------------------------- */

typedef struct push_env {
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    kiln_ingester_t *ing;
    kiln_distributor_t *d;
    char dir[64];
} push_env;

/* The benchmarks' limits with the sample count limit of Kiln's default
 * and a deeper stack limit. */
static kiln_limits bench_limits(void)
{
    kiln_limits l = kiln_bench_limits();
    l.max_samples = 16000;
    l.max_stack_depth = MAX_DEPTH;
    return l;
}

static int env_create(push_env *e)
{
    memset(e, 0, sizeof(*e));
    if (make_tmpdir(e->dir, sizeof(e->dir), "push") != 0)
        return -1;
    kiln_limits l = bench_limits();
    e->limits = kiln_overrides_create(&l);
    e->metrics = kiln_metrics_create();
    /* fsync on, as in service; no flush during the run. */
    kiln_ingester_config ic = {.storage_path = e->dir};
    kiln_err err = {KILN_OK, ""};
    if (kiln_ingester_create(&ic, &e->ing, &err) != KILN_OK) {
        fprintf(stderr, "bench_storage: ingester: %s\n", err.msg);
        return -1;
    }
    kiln_distributor_config dc = {e->limits, l.max_profile_bytes,
                                  kiln_db_store(kiln_ingester_db(e->ing))};
    e->d = kiln_distributor_create(&dc, e->metrics);
    return 0;
}

static void env_destroy(push_env *e)
{
    kiln_distributor_destroy(e->d);
    kiln_ingester_destroy(e->ing);
    kiln_metrics_destroy(e->metrics);
    kiln_overrides_destroy(e->limits);
    if (e->dir[0] != '\0')
        remove_tree(e->dir);
}

typedef struct push_thread {
    kiln_distributor_t *d;
    const sfile *f;
    int id;
    double seconds;
    pthread_barrier_t *start;
    lat_log lat;
    double wall;
    int failed;
} push_thread;

/* One push as the Push handler makes it: gunzip and decode the body into
 * the request arena, then the distributor's whole pipeline. */
static int push_gz(push_thread *t, kiln_arena_t *a, uint64_t i)
{
    kiln_err err = {KILN_OK, ""};
    kiln_ingest_profile in;
    memset(&in, 0, sizeof(in));
    kiln_arena_reset(a);
    kiln_status st =
        kiln_distributor_decode_pprof(t->d, t->f->disk, t->f->disk_len, a, &in.profile, &err);
    if (st == KILN_OK) {
        in.profile.time_nanos = T0_NS + (int64_t)i * PUSH_EVERY_NS;
        kiln_label_t *l = kiln_arena_alloc(a, 3 * sizeof(*l));
        l[0] = (kiln_label_t){"__name__", t->f->name};
        l[1] = (kiln_label_t){"pod", kiln_arena_printf(a, "pod-%02d", t->id)};
        l[2] = (kiln_label_t){"service_name", t->f->service};
        in.labels = l;
        in.n_labels = 3;
        in.raw_bytes = t->f->disk_len;
        st = kiln_distributor_ingest(t->d, "bench", &in, 1, a, &err);
    }
    if (st != KILN_OK)
        fprintf(stderr, "bench_storage: push: %s: %s\n", kiln_status_str(st), err.msg);
    return st == KILN_OK ? 0 : -1;
}

static void *push_main(void *arg)
{
    push_thread *t = arg;
    kiln_arena_t *a = kiln_arena_create(0);
    pthread_barrier_wait(t->start);
    double t0 = now_s(), w = t0;
    for (uint64_t i = 0; w - t0 < t->seconds; i++) {
        double s = w;
        if (push_gz(t, a, i) != 0) {
            t->failed = 1;
            break;
        }
        w = now_s();
        lat_add(&t->lat, w - s);
    }
    t->wall = w - t0;
    kiln_arena_destroy(a);
    return NULL;
}

static int push_run(const sfile *f, int threads, double seconds)
{
    push_env e;
    if (env_create(&e) != 0) {
        env_destroy(&e);
        return -1;
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    push_thread *t = kiln_xcalloc((size_t)threads, sizeof(*t));
    pthread_t *tid = kiln_xcalloc((size_t)threads, sizeof(*tid));
    for (int k = 0; k < threads; k++) {
        t[k] = (push_thread){e.d, f, k, seconds, &start, {NULL, 0, 0}, 0, 0};
        pthread_create(&tid[k], NULL, push_main, &t[k]);
    }
    double wall = 0, p50, p99;
    int failed = 0;
    lat_log all = {NULL, 0, 0};
    for (int k = 0; k < threads; k++) {
        pthread_join(tid[k], NULL);
        wall = t[k].wall > wall ? t[k].wall : wall;
        failed |= t[k].failed;
        lat_move(&all, &t[k].lat);
    }
    size_t pushes = all.n;
    lat_finish(&all, &p50, &p99);
    printf("%7d %9zu %10.1f %10.2f %9.3f %9.3f\n", threads, pushes, ratio((double)pushes, wall),
           ratio((double)pushes * (double)f->raw_len, wall) / 1e6, p50 * 1e3, p99 * 1e3);
    free(t);
    free(tid);
    pthread_barrier_destroy(&start);
    env_destroy(&e);
    return failed ? -1 : 0;
}

static int bench_push_fsync(const char *root, double seconds)
{
    sfile f;
    init_file(&f, root, WAL_RECORD);
    kiln_arena_t *keep = kiln_arena_create(0);
    int rc = load_file(&f, keep);
    if (rc == 0) {
        printf("\n== Push path with fsync on: gunzip + decode + kiln_distributor_ingest into an "
               "ingester (WAL fdatasync per group commit), %s (%.1f KB gz, %.1f KB raw), each "
               "thread its own pod, %.1f s ==\n",
               WAL_RECORD, (double)f.disk_len / 1e3, (double)f.raw_len / 1e3, seconds);
        printf("%7s %9s %10s %10s %9s %9s\n", "threads", "pushes", "pushes/s", "raw MB/s", "p50 ms",
               "p99 ms");
    }
    static const int counts[] = {1, 8};
    for (size_t i = 0; rc == 0 && i < sizeof(counts) / sizeof(counts[0]); i++) {
        fprintf(stderr, "bench_storage: push: %d thread(s) ...\n", counts[i]);
        rc = push_run(&f, counts[i], seconds);
    }
    free(f.disk);
    kiln_arena_destroy(keep);
    return rc;
}

/* ---- part 4: head memory ------------------------------------------------------------ */

typedef struct mem_fig {
    uint64_t samples, profiles, pushes, stack_nodes;
    long rss0_kb, rss1_kb; /* resident set (/proc/self/statm) before and after */
    long hwm1_kb;          /* peak resident set (ru_maxrss) after */
    double fill_s;
    int ok;
} mem_fig;

static long hwm_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* In a child process: fills a fresh head with pushes of f until it holds
 * `target` stored samples, measuring the process's memory around it. */
static void mem_child(const sfile *f, size_t target, mem_fig *m)
{
    pusher p;
    pusher_init(&p, f, 0x2545F4914F6CDD1DULL);
    kiln_head_t *warm = kiln_head_create(); /* the arena and buffers at their size */
    push_one(&p, warm, T0_NS, NULL);
    kiln_head_destroy(warm);
    malloc_trim(0);
    m->rss0_kb = rss_kb();
    kiln_head_t *h = kiln_head_create();
    kiln_head_stats_t hs = {0};
    double t0 = now_s();
    int rc = 0;
    while (rc == 0 && hs.samples < target) {
        rc = push_one(&p, h, T0_NS + (int64_t)m->pushes * PUSH_EVERY_NS, NULL);
        m->pushes++;
        kiln_head_stats(h, &hs);
    }
    m->fill_s = now_s() - t0;
    m->rss1_kb = rss_kb();
    m->hwm1_kb = hwm_kb();
    m->samples = hs.samples;
    m->profiles = hs.profiles;
    m->stack_nodes = hs.stack_nodes;
    m->ok = rc == 0;
}

/* Runs mem_child in a fork, so each figure starts from a clean process
 * whose peak RSS no earlier head has raised. */
static int mem_fork(const sfile *f, size_t target, mem_fig *m)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        memset(m, 0, sizeof(*m));
        mem_child(f, target, m);
        ssize_t w = write(fd[1], m, sizeof(*m));
        _exit(w == (ssize_t)sizeof(*m) ? 0 : 1);
    }
    close(fd[1]);
    ssize_t r = pid > 0 ? read(fd[0], m, sizeof(*m)) : -1;
    close(fd[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return r == (ssize_t)sizeof(*m) && m->ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                                              : -1;
}

static int bench_mem(const sfile *f, size_t n, size_t target)
{
    printf("\n== Head memory: a fresh head filled with ~%.1f M stored samples of one service "
           "(pushes every 15 s, varied), in a forked process ==\n",
           (double)target / 1e6);
    printf("%-44s %8s %10s %10s %10s %11s %11s %9s %9s\n", "profile", "pushes", "stored",
           "stk nodes", "RSS +MB", "MB/M smp", "peak MB/M", "B/smp", "fill s");
    for (size_t i = 0; i < n; i++) {
        mem_fig m;
        fprintf(stderr, "bench_storage: mem: %s ...\n", f[i].label);
        if (mem_fork(&f[i], target, &m) != 0) {
            fprintf(stderr, "bench_storage: mem: %s failed\n", f[i].label);
            return -1;
        }
        double grow = (double)(m.rss1_kb - m.rss0_kb) * 1024, ms = (double)m.samples / 1e6;
        double peak = (double)(m.hwm1_kb - m.rss0_kb) * 1024;
        printf("%-44s %8llu %10llu %10llu %10.1f %11.1f %11.1f %9.2f %9.2f\n", f[i].label,
               (unsigned long long)m.pushes, (unsigned long long)m.samples,
               (unsigned long long)m.stack_nodes, grow / 1e6, ratio(grow / 1e6, ms),
               ratio(peak / 1e6, ms), ratio(grow, (double)m.samples), m.fill_s);
    }
    printf("(RSS +MB: resident growth from /proc/self/statm; peak: ru_maxrss after the fill "
           "minus the resident set before it, so transient copies while arrays grow count)\n");
    return 0;
}

/* ---- part 5: head memory per series ------------------------------------------------ */

typedef struct series_fig {
    size_t series;
    long rss0_kb, rss1_kb;
    double fill_s;
    double check_s; /* kiln_head_new_series over every series once (the limit's check) */
    int ok;
} series_fig;

/* A one-sample CPU profile (a three-frame stack), validated and normalised:
 * what a series costs beyond its samples. */
static int tiny_profile(kiln_arena_t *a, kiln_pprof_t *p)
{
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    kiln_pprof_build_sample_type(b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    kiln_pprof_build_time(b, T0_NS, 15000000000LL);
    const char *frames[] = {"work", "serve", "main"}; /* leaf first */
    uint64_t ids[3];
    for (size_t i = 0; i < 3; i++)
        ids[i] = kiln_pprof_build_frame(b, (kiln_str_t){frames[i], strlen(frames[i])});
    int64_t v = 10000000;
    if (kiln_pprof_build_sample(b, ids, 3, &v, NULL, 0) != KILN_OK ||
        kiln_pprof_build_finish(b, p, NULL) != KILN_OK)
        return -1;
    return kiln_pprof_validate(p, NULL) == KILN_OK &&
                   kiln_pprof_normalize(a, p, MAX_DEPTH, NULL) == KILN_OK
               ? 0
               : -1;
}

/* In a child process: a fresh head given `target` series (distinct pod
 * labels), one profile each, measuring the process's memory around it. */
static void series_child(size_t target, series_fig *m)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    m->ok = tiny_profile(a, &p) == 0;
    char pod[32] = "";
    kiln_label_t l[3] = {{"__name__", "process_cpu"}, {"pod", pod}, {"service_name", "bench"}};
    malloc_trim(0);
    m->rss0_kb = rss_kb();
    kiln_head_t *h = kiln_head_create();
    double t0 = now_s();
    for (size_t i = 0; m->ok && i < target; i++) {
        snprintf(pod, sizeof(pod), "pod-%08zu", i);
        check_head_append(h, l, 3, &p, T0_NS, 0);
        m->ok = true;
    }
    m->fill_s = now_s() - t0;
    m->rss1_kb = rss_kb();
    m->series = kiln_head_n_series(h);
    m->ok = m->ok && m->series == target;
    kiln_head_part part = {l, 3, &p, 0};
    t0 = now_s();
    for (size_t i = 0; m->ok && i < target; i++) {
        snprintf(pod, sizeof(pod), "pod-%08zu", i);
        m->ok = kiln_head_new_series(h, NULL, &part, 1) == 0;
    }
    m->check_s = now_s() - t0;
}

static int series_fork(size_t target, series_fig *m)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        memset(m, 0, sizeof(*m));
        series_child(target, m);
        ssize_t w = write(fd[1], m, sizeof(*m));
        _exit(w == (ssize_t)sizeof(*m) ? 0 : 1);
    }
    close(fd[1]);
    ssize_t r = pid > 0 ? read(fd[0], m, sizeof(*m)) : -1;
    close(fd[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return r == (ssize_t)sizeof(*m) && m->ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                                              : -1;
}

/* What max_global_series_per_tenant protects: the head memory of a series
 * (labels, postings, index slots, its profile and sample), at 10k and 100k. */
static int bench_series(void)
{
    static const size_t targets[] = {10000, 100000};
    printf("\n== Head memory per series: a fresh head, series that differ in one label "
           "(pod), one 1-sample profile each, in a forked process ==\n");
    printf("%10s %10s %12s %16s %14s\n", "series", "RSS +MB", "B/series", "append us/series",
           "check us/part");
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        series_fig m;
        if (series_fork(targets[i], &m) != 0) {
            fprintf(stderr, "bench_storage: series: %zu failed\n", targets[i]);
            return -1;
        }
        double grow = (double)(m.rss1_kb - m.rss0_kb) * 1024;
        printf("%10zu %10.1f %12.0f %16.2f %14.2f\n", m.series, grow / 1e6,
               ratio(grow, (double)m.series), ratio(m.fill_s * 1e6, (double)m.series),
               ratio(m.check_s * 1e6, (double)m.series));
        if (i + 1 == sizeof(targets) / sizeof(targets[0]))
            bench_summary("rss_mib_per_1k_series", ratio(grow, (double)m.series) * 1000 / 1048576,
                          "MiB");
    }
    printf("(at the default max_global_series_per_tenant of 5000 a tenant's series cost "
           "about 5000 times B/series per ingester, beyond their samples; check: the series "
           "limit's lookup of a held series, paid once per part and sample type of a push)\n");
    return 0;
}

/* ---- main --------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, bench_opts *o)
{
    o->seconds = 3.0;
    o->mem_samples = 2000000;
    snprintf(o->parts, sizeof(o->parts), "disk,wal,push,mem,series");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            o->seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
            o->mem_samples = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            snprintf(o->parts, sizeof(o->parts), "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_storage [-s seconds] [-m samples] [-o parts] [file...]\n"
                            "  -s  seconds per WAL and push figure (default 3)\n"
                            "  -m  stored samples per head, memory figure (default 2000000)\n"
                            "  -o  parts to run, comma separated: disk,wal,push,mem,series "
                            "(default all)\n"
                            "  files are relative to $KILN_TESTDATA unless absolute\n");
            return -1;
        }
    }
    o->first_file = i;
    if (!(o->seconds > 0))
        o->seconds = 3.0;
    if (o->mem_samples == 0)
        o->mem_samples = 2000000;
    return 0;
}

static bool want(const bench_opts *o, const char *part)
{
    size_t n = strlen(part);
    for (const char *p = o->parts; (p = strstr(p, part)) != NULL; p += n) {
        if ((p == o->parts || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    }
    return false;
}

static void print_inputs(const sfile *f, size_t n)
{
    printf("\n== Profiles pushed (unit: the gcd of each sample type's values; varied values "
           "stay multiples of it) ==\n%-44s %-11s %9s %9s %8s %8s %5s %10s  %s\n",
           "profile", "__name__", "file B", "pprof B", "samples", "locs", "types", "period",
           "units");
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_t *p = &f[i].base;
        printf("%-44s %-11s %9zu %9zu %8zu %8zu %5zu %10lld  ", f[i].label, f[i].name,
               f[i].disk_len, f[i].raw_len, p->n_samples, p->n_locations, p->n_sample_types,
               (long long)p->period);
        for (size_t t = 0; t < p->n_sample_types; t++)
            printf("%s%lld", t ? "," : "", (long long)f[i].unit[t]);
        printf("\n");
    }
}

static void print_load(void)
{
    char line[128] = "";
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp != NULL) {
        if (fgets(line, sizeof(line), fp) == NULL)
            line[0] = '\0';
        fclose(fp);
    }
    line[strcspn(line, "\n")] = '\0';
    printf("cores online: %ld; load average: %s (other work on the machine, and the disk's "
           "fsync latency, move the time figures)\n",
           sysconf(_SC_NPROCESSORS_ONLN), line);
}

static int run_parts(const bench_opts *o, const char *root, const sfile *f, size_t n)
{
    int rc = 0;
    /* Memory first: its forks copy a process that has no threads yet. */
    if (rc == 0 && want(o, "mem"))
        rc = bench_mem(f, n, o->mem_samples);
    if (rc == 0 && want(o, "series"))
        rc = bench_series();
    if (rc == 0 && want(o, "disk"))
        rc = bench_disk(f, n);
    if (rc == 0 && want(o, "wal"))
        rc = bench_wal(root, o->seconds);
    if (rc == 0 && want(o, "push"))
        rc = bench_push_fsync(root, o->seconds);
    return rc;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    const char *root = getenv("KILN_TESTDATA");
    if (root == NULL || *root == '\0')
        root = KILN_TESTDATA_DEFAULT;
    int first = o.first_file;
    size_t n = first < argc ? (size_t)(argc - first) : N_DEFAULT_FILES;
    sfile *f = kiln_xcalloc(n, sizeof(*f));
    kiln_arena_t *keep = kiln_arena_create(0);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        init_file(&f[i], root, first < argc ? argv[first + (int)i] : default_files[i].rel);
        rc = load_file(&f[i], keep);
    }
    printf("kiln bench_storage: test data %s; %d pushes per hour, %d hours; zstd level %d; "
           "B = bytes, KB/MB = 10^3/10^6 bytes\n",
           root, HOUR_PUSHES, HOURS, ZSTD_LEVEL);
    print_load();
    if (rc == 0) {
        print_inputs(f, n);
        rc = run_parts(&o, root, f, n);
    }
    for (size_t i = 0; i < n; i++)
        free(f[i].disk);
    kiln_arena_destroy(keep);
    free(f);
    return rc == 0 ? 0 : 1;
}
