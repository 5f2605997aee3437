/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/format/jfr: every JFR recording of shared testdata
 * converts into profiles that validate; where grafana/jfr-parser keeps a
 * golden conversion (its *_expected_collapsed.txt.gz), Kiln's stacks and
 * totals equal it; malformed input is INVALID_ARGUMENT, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "check.h"
#include "gzip.h"
#include "jfr.h"
#include "pprof.h"
#include "xmalloc.h"

#define ARENA_CAP (1u << 30)
#define MAX_BYTES (64u << 20)

static const char *const jfr_files[] = {
    "grafana-jfr-parser/dd-trace-java.jfr.gz",
    "grafana-jfr-parser/example.jfr.gz",
    "grafana-jfr-parser/wall.jfr.gz",
    "grafana-jfr-parser/nativemem.jfr.gz",
    "hard/grafana-jfr-parser/async-profiler.jfr.gz",
    "hard/grafana-jfr-parser/event-with-type-zero.jfr.gz",
    "hard/grafana-jfr-parser/parse_failure_repro1.jfr.gz",
    "hard/speedscope/heavy.jfr",
};

/* Reads a testdata file, gunzipped when it is gzip, into arena memory. */
static const uint8_t *load(kiln_arena_t *a, const char *rel, size_t *len)
{
    const char *dir = getenv("KILN_TESTDATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/testdata", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        printf("  missing %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *raw = kiln_arena_alloc(a, (size_t)n + 1);
    size_t got = raw ? fread(raw, 1, (size_t)n, f) : 0;
    fclose(f);
    const uint8_t *out = NULL;
    kiln_err err;
    if (got != (size_t)n || kiln_gunzip_maybe(a, raw, got, MAX_BYTES, &out, len, &err) != KILN_OK)
        return NULL;
    return out;
}

static kiln_status parse(kiln_arena_t *a, const uint8_t *d, size_t n, kiln_jfr_result *r,
                         kiln_err *err)
{
    kiln_jfr_input in = {1700000000000000000, 1700000010000000000, 100, NULL, 0};
    return kiln_jfr_parse(a, d, n, &in, r, err);
}

static const kiln_jfr_profile *find(const kiln_jfr_result *r, const char *type)
{
    for (size_t i = 0; i < r->n; i++) {
        const kiln_pprof_t *p = &r->profiles[i].profile;
        for (size_t t = 0; t < p->n_sample_types; t++) {
            if (kiln_str_eq(p->strings[p->sample_types[t].type], type))
                return &r->profiles[i];
        }
    }
    return NULL;
}

static int64_t total(const kiln_pprof_t *p, size_t t)
{
    int64_t s = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        s += p->values[p->samples[i].value_off + t];
    return s;
}

TEST(every_recording_converts)
{
    for (size_t f = 0; f < sizeof(jfr_files) / sizeof(jfr_files[0]); f++) {
        kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
        size_t n = 0;
        const uint8_t *d = load(a, jfr_files[f], &n);
        CHECK(d != NULL);
        kiln_jfr_result r = {0};
        kiln_err err = {0};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        kiln_status st = d ? parse(a, d, n, &r, &err) : KILN_NOT_FOUND;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (st != KILN_OK)
            printf("  %s: %s\n", jfr_files[f], err.msg);
        CHECK_OK(st);
        CHECK(r.n > 0);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("  %s: %zu bytes in %.1f ms, arena %zu bytes, event=\"%s\"", jfr_files[f], n, ms,
               kiln_arena_used(a), r.event);
        for (size_t i = 0; i < r.n; i++) {
            kiln_pprof_t *p = &r.profiles[i].profile;
            CHECK_OK(kiln_pprof_validate(p, &err));
            printf(" %s/%.*s=%lld(%zu stacks)", r.profiles[i].metric,
                   (int)p->strings[p->sample_types[0].type].len,
                   p->strings[p->sample_types[0].type].ptr, (long long)total(p, 0), p->n_samples);
            CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
        }
        printf("\n");
        kiln_arena_destroy(a);
    }
}

/* ---- golden conversions ---- */

/* One stack (root first, ';'-joined) and its values. */
typedef struct stack_row {
    char *stack;
    int64_t v[2];
} stack_row;

typedef struct stack_set {
    stack_row *rows;
    size_t n, cap;
} stack_set;

static void set_add(stack_set *s, const char *stack, size_t len, const int64_t *v, size_t nv)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->rows[i].stack) == len && memcmp(s->rows[i].stack, stack, len) == 0) {
            for (size_t k = 0; k < nv; k++)
                s->rows[i].v[k] += v[k];
            return;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->rows = kiln_xrealloc(s->rows, s->cap * sizeof(*s->rows));
    }
    s->rows[s->n].stack = kiln_xstrndup(stack, len);
    s->rows[s->n].v[0] = v[0];
    s->rows[s->n].v[1] = nv > 1 ? v[1] : 0;
    s->n++;
}

static void set_free(stack_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->rows[i].stack);
    free(s->rows);
}

/* Appends frame to o without a trailing ":<line>" (the golden files name
 * lines; Kiln's flame graphs, like Pyroscope's, merge by function). */
static size_t put_frame(char *o, size_t k, const char *f, size_t n)
{
    size_t e = n;
    while (e > 0 && f[e - 1] >= '0' && f[e - 1] <= '9')
        e--;
    if (e < n && e > 0 && f[e - 1] == ':')
        n = e - 1;
    memcpy(o + k, f, n);
    return k + n;
}

/* Parses a golden `a:1;b:2 [v1 v2]` file into s. */
static void load_golden(kiln_arena_t *a, const char *rel, stack_set *s)
{
    size_t n = 0;
    const char *d = (const char *)load(a, rel, &n);
    CHECK(d != NULL);
    char *buf = kiln_xmalloc(1 << 20);
    for (const char *line = d; d != NULL && line < d + n;) {
        const char *eol = memchr(line, '\n', (size_t)(d + n - line));
        eol = eol ? eol : d + n;
        const char *br = memchr(line, '[', (size_t)(eol - line));
        if (br != NULL && br > line) {
            int64_t v[2] = {0, 0};
            int nv = sscanf(br, "[%lld %lld]", (long long *)&v[0], (long long *)&v[1]);
            size_t k = 0;
            for (const char *f = line; f < br - 1;) {
                const char *semi = memchr(f, ';', (size_t)(br - 1 - f));
                const char *fe = semi ? semi : br - 1;
                k = put_frame(buf, k, f, (size_t)(fe - f));
                if (semi)
                    buf[k++] = ';';
                f = fe + 1;
            }
            set_add(s, buf, k, v, nv > 0 ? (size_t)nv : 1);
        }
        line = eol + 1;
    }
    free(buf);
}

/* Kiln's profile as stacks, root first. */
static void profile_stacks(const kiln_pprof_t *p, stack_set *s)
{
    char *buf = kiln_xmalloc(1 << 20);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *sm = &p->samples[i];
        size_t k = 0;
        for (uint32_t j = sm->n_locs; j-- > 0;) {
            const kiln_pprof_location *l = &p->locations[p->locs[sm->loc_off + j] - 1];
            const kiln_pprof_function *fn = &p->functions[p->lines[l->line_off].function - 1];
            kiln_str_t name = p->strings[fn->name];
            memcpy(buf + k, name.ptr, name.len);
            k += name.len;
            if (j > 0)
                buf[k++] = ';';
        }
        set_add(s, buf, k, &p->values[sm->value_off], sm->n_values);
    }
    free(buf);
}

static const stack_row *set_get(const stack_set *s, const char *stack)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->rows[i].stack, stack) == 0)
            return &s->rows[i];
    }
    return NULL;
}

TEST(golden_dd_trace_java_cpu)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    stack_set want = {0}, got = {0};
    load_golden(a,
                "grafana-jfr-parser/dd-trace-java_3_process_cpu_cpu__nanoseconds_expected_"
                "collapsed.txt.gz",
                &want);
    size_t n = 0;
    const uint8_t *d = load(a, "grafana-jfr-parser/dd-trace-java.jfr.gz", &n);
    kiln_jfr_result r = {0};
    kiln_err err;
    CHECK_OK(parse(a, d, n, &r, &err));
    const kiln_jfr_profile *cpu = find(&r, "cpu");
    CHECK(cpu != NULL);
    if (cpu != NULL) {
        CHECK_STR(cpu->metric, "process_cpu");
        profile_stacks(&cpu->profile, &got);
    }
    CHECK_EQ(got.n, want.n);
    int64_t tw = 0, tg = 0;
    for (size_t i = 0; i < want.n; i++) {
        const stack_row *g = set_get(&got, want.rows[i].stack);
        tw += want.rows[i].v[0];
        tg += g ? g->v[0] : 0;
        if (g == NULL || g->v[0] != want.rows[i].v[0])
            printf("  golden %s [%lld] got %lld\n", want.rows[i].stack,
                   (long long)want.rows[i].v[0], g ? (long long)g->v[0] : -1LL);
        CHECK(g != NULL && g->v[0] == want.rows[i].v[0]);
    }
    printf("  total golden=%lld kiln=%lld stacks=%zu\n", (long long)tw, (long long)tg, got.n);
    CHECK_EQ(tg, 1130000000);
    set_free(&want);
    set_free(&got);
    kiln_arena_destroy(a);
}

/* example.jfr's lock durations are in ticks of 2303974730 Hz (its header);
 * the golden file keeps raw ticks where Kiln gives nanoseconds. */
#define EXAMPLE_TICKS_PER_SEC 2303974730ll

TEST(golden_example_mutex)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    stack_set want = {0}, got = {0};
    load_golden(a,
                "grafana-jfr-parser/"
                "example_2_mutex_contentions__count+delay__nanoseconds_expected_collapsed.txt.gz",
                &want);
    size_t n = 0;
    const uint8_t *d = load(a, "grafana-jfr-parser/example.jfr.gz", &n);
    kiln_jfr_result r = {0};
    kiln_err err;
    CHECK_OK(parse(a, d, n, &r, &err));
    const kiln_jfr_profile *lock = NULL;
    for (size_t i = 0; i < r.n; i++)
        lock = strcmp(r.profiles[i].metric, "mutex") == 0 ? &r.profiles[i] : lock;
    CHECK(lock != NULL);
    if (lock != NULL)
        profile_stacks(&lock->profile, &got);
    CHECK_EQ(got.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        const stack_row *g = set_get(&got, want.rows[i].stack);
        CHECK(g != NULL);
        if (g == NULL)
            continue;
        CHECK_EQ(g->v[0], want.rows[i].v[0]);
        long long ns =
            (long long)((__int128)want.rows[i].v[1] * 1000000000 / EXAMPLE_TICKS_PER_SEC);
        long long diff = (long long)g->v[1] - ns;
        CHECK(diff >= -g->v[0] - 1 && diff <= g->v[0] + 1);
    }
    if (lock != NULL)
        printf("  contentions=%lld delay_ns=%lld\n", (long long)total(&lock->profile, 0),
               (long long)total(&lock->profile, 1));
    set_free(&want);
    set_free(&got);
    kiln_arena_destroy(a);
}

/* The sample types and units of each kind are Pyroscope's. */
TEST(profile_types_named_as_pyroscope)
{
    static const struct {
        const char *file, *type, *unit, *metric;
    } cases[] = {
        {"grafana-jfr-parser/example.jfr.gz", "alloc_in_new_tlab_bytes", "bytes", "memory"},
        {"grafana-jfr-parser/example.jfr.gz", "alloc_outside_tlab_objects", "count", "memory"},
        {"grafana-jfr-parser/example.jfr.gz", "cpu", "nanoseconds", "process_cpu"},
        {"grafana-jfr-parser/example.jfr.gz", "delay", "nanoseconds", "mutex"},
        {"grafana-jfr-parser/wall.jfr.gz", "wall", "nanoseconds", "wall"},
        {"grafana-jfr-parser/nativemem.jfr.gz", "malloc_bytes", "bytes", "memory"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
        size_t n = 0;
        const uint8_t *d = load(a, cases[c].file, &n);
        kiln_jfr_result r = {0};
        kiln_err err;
        CHECK_OK(parse(a, d, n, &r, &err));
        const kiln_jfr_profile *p = find(&r, cases[c].type);
        CHECK(p != NULL);
        for (size_t t = 0; p != NULL && t < p->profile.n_sample_types; t++) {
            if (kiln_str_eq(p->profile.strings[p->profile.sample_types[t].type], cases[c].type))
                CHECK(kiln_str_eq(p->profile.strings[p->profile.sample_types[t].unit],
                                  cases[c].unit));
        }
        CHECK(p == NULL || strcmp(p->metric, cases[c].metric) == 0);
        kiln_arena_destroy(a);
    }
}

/* A normalised profile's stacks (locs and functions are indices). */
static void normalized_stacks(const kiln_pprof_t *p, size_t t, stack_set *s)
{
    char *buf = kiln_xmalloc(1 << 20);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *sm = &p->samples[i];
        size_t k = 0;
        for (uint32_t j = sm->n_locs; j-- > 0 && k < (1 << 19);) {
            const kiln_pprof_location *l = &p->locations[p->locs[sm->loc_off + j]];
            for (uint32_t m = l->n_lines; m-- > 0;) {
                kiln_str_t name = p->strings[p->functions[p->lines[l->line_off + m].function].name];
                memcpy(buf + k, name.ptr, name.len);
                k += name.len;
                buf[k++] = ';';
            }
        }
        k -= k > 0;
        set_add(s, buf, k, &p->values[sm->value_off + t], 1);
    }
    free(buf);
}

/* Pyroscope's own conversions of the Kafka recording (grafana-pyroscope/
 * jfr-kafka-*.pb.gz) against Kiln's. The recording itself is not in
 * shared testdata: KILN_JFR_KAFKA names it (grafana/pyroscope's
 * pkg/og/convert/jfr/testdata/cortex-dev-01__kafka-0__cpu_lock0_alloc0__0.jfr.gz);
 * without it the comparison is skipped, saying so. */
TEST(golden_pyroscope_kafka)
{
    static const struct {
        const char *pb, *metric;
        size_t t;
    } cases[] = {
        {"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz", "process_cpu", 0},
        {"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.alloc_in_new_tlab_bytes.pb.gz", "memory", 1},
        {"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.mutex_delay.pb.gz", "mutex", 1},
        {"hard/grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.block_contentions.pb.gz", "block", 0},
    };
    const char *path = getenv("KILN_JFR_KAFKA");
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f == NULL) {
        printf("  skipped: the Kafka recording is not in shared testdata (set KILN_JFR_KAFKA)\n");
        return;
    }
    fclose(f);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    size_t n = 0;
    char rel[1024];
    snprintf(rel, sizeof(rel), "/%s", path);
    const char *saved = getenv("KILN_TESTDATA");
    setenv("KILN_TESTDATA", "", 1);
    const uint8_t *d = load(a, rel, &n);
    if (saved)
        setenv("KILN_TESTDATA", saved, 1);
    kiln_jfr_result r = {0};
    kiln_err err;
    CHECK(d != NULL);
    CHECK_OK(d ? parse(a, d, n, &r, &err) : KILN_NOT_FOUND);
    int64_t tps = 0;
    for (int i = 56; d != NULL && n > 64 && i < 64; i++)
        tps = tps << 8 | d[i];
    for (size_t c = 0; tps > 0 && c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t pn = 0;
        const uint8_t *pb = load(a, cases[c].pb, &pn);
        kiln_pprof_t want;
        CHECK_OK(kiln_pprof_decode(a, pb, pn, &want, &err));
        CHECK_OK(kiln_pprof_normalize(a, &want, 0, &err));
        const kiln_jfr_profile *got = NULL;
        for (size_t i = 0; i < r.n && got == NULL; i++)
            got = strcmp(r.profiles[i].metric, cases[c].metric) == 0 ? &r.profiles[i] : NULL;
        CHECK(got != NULL);
        if (got == NULL)
            continue;
        kiln_pprof_t g = got->profile;
        CHECK_OK(kiln_pprof_normalize(a, &g, 0, &err));
        stack_set ws = {0}, gs = {0};
        normalized_stacks(&want, 0, &ws);
        normalized_stacks(&g, cases[c].t, &gs);
        int64_t tw = 0, tg = 0;
        size_t same = 0;
        for (size_t i = 0; i < ws.n; i++) {
            const stack_row *x = set_get(&gs, ws.rows[i].stack);
            /* Pyroscope keeps lock delays in ticks; Kiln converts each
             * event's to nanoseconds, rounding down (< 1 ns per event, so
             * under 1000 ns for the few hundred events of a stack). */
            if (strcmp(cases[c].metric, "mutex") == 0)
                ws.rows[i].v[0] = (int64_t)((__int128)ws.rows[i].v[0] * 1000000000 / tps);
            tw += ws.rows[i].v[0];
            int64_t diff = x != NULL ? x->v[0] - ws.rows[i].v[0] : 0;
            same += x != NULL && diff > -1000 && diff < 1000;
        }
        for (size_t i = 0; i < gs.n; i++)
            tg += gs.rows[i].v[0];
        printf(
            "  %s: pyroscope total=%lld stacks=%zu; kiln total=%lld stacks=%zu; equal stacks=%zu\n",
            cases[c].pb, (long long)tw, ws.n, (long long)tg, gs.n, same);
        CHECK(tg - tw > -1000 * (int64_t)ws.n && tg - tw < 1000 * (int64_t)ws.n);
        CHECK_EQ(same, ws.n);
        set_free(&ws);
        set_free(&gs);
    }
    kiln_arena_destroy(a);
}

/* ---- a recording written here, byte by byte ---- */

/* A growable byte buffer for writing JFR by hand. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf;

static void w_bytes(wbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = kiln_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void w_u8(wbuf *b, uint8_t v)
{
    w_bytes(b, &v, 1);
}

static void w_var(wbuf *b, uint64_t v)
{
    do {
        w_u8(b, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v != 0);
}

static void w_be(wbuf *b, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        w_u8(b, (uint8_t)(v >> (8 * i)));
}

static void w_utf8(wbuf *b, const char *s)
{
    w_u8(b, 3);
    w_var(b, strlen(s));
    w_bytes(b, s, strlen(s));
}

/* Appends an event: its size (which counts itself), then body. */
static void w_event(wbuf *out, const wbuf *body)
{
    size_t n = 1;
    while ((body->len + n) >> (7 * n) != 0)
        n++;
    w_var(out, body->len + n);
    w_bytes(out, body->p, body->len);
}

/* The metadata string table. */
static const char *const MS[] = {"root",
                                 "metadata",
                                 "region",
                                 "class",
                                 "field",
                                 "id",
                                 "name",
                                 "class",
                                 "constantPool",
                                 "true",
                                 "dimension",
                                 "1",
                                 "long",
                                 "int",
                                 "java.lang.String",
                                 "boolean",
                                 "jdk.types.Symbol",
                                 "string",
                                 "java.lang.Class",
                                 "jdk.types.Method",
                                 "type",
                                 "jdk.types.StackFrame",
                                 "method",
                                 "lineNumber",
                                 "jdk.types.StackTrace",
                                 "truncated",
                                 "frames",
                                 "jdk.types.ThreadState",
                                 "jdk.ExecutionSample",
                                 "startTime",
                                 "stackTrace",
                                 "state",
                                 "contextId",
                                 "jdk.ActiveSetting",
                                 "value",
                                 "jdk.JavaMonitorEnter",
                                 "duration",
                                 "20",
                                 "21",
                                 "22",
                                 "23",
                                 "30",
                                 "31",
                                 "32",
                                 "33",
                                 "34",
                                 "35",
                                 "40",
                                 "41",
                                 "42",
                                 "spanId",
                                 "spanName"};

static uint64_t ms(const char *s)
{
    for (size_t i = 0; i < sizeof(MS) / sizeof(MS[0]); i++) {
        if (strcmp(MS[i], s) == 0)
            return i;
    }
    abort();
}

/* A field element: name, type id and whether it is a pool key / array. */
static void w_field(wbuf *b, const char *name, const char *type, int cp, int array)
{
    w_var(b, ms("field"));
    w_var(b, 2 + (cp != 0) + (array != 0));
    w_var(b, ms("name"));
    w_var(b, ms(name));
    w_var(b, ms("class"));
    w_var(b, ms(type));
    if (cp) {
        w_var(b, ms("constantPool"));
        w_var(b, ms("true"));
    }
    if (array) {
        w_var(b, ms("dimension"));
        w_var(b, ms("1"));
    }
    w_var(b, 0);
}

/* A class element with n fields given as (name, type, cp, array) rows. */
static void w_class(wbuf *b, const char *id, const char *name, int n, const char *const *f)
{
    w_var(b, ms("class"));
    w_var(b, 2);
    w_var(b, ms("id"));
    w_var(b, ms(id));
    w_var(b, ms("name"));
    w_var(b, ms(name));
    w_var(b, (uint64_t)n);
    for (int i = 0; i < n; i++)
        w_field(b, f[4 * i], f[4 * i + 1], f[4 * i + 2][0] == 'c', f[4 * i + 3][0] == 'a');
}

static void w_metadata(wbuf *out)
{
    static const char *const sym[] = {"string", "22", "", ""};
    static const char *const cls[] = {"name", "30", "c", ""};
    static const char *const meth[] = {"type", "31", "c", "", "name", "30", "c", ""};
    static const char *const frame[] = {"method", "32", "c", "", "lineNumber", "21", "", ""};
    static const char *const stack[] = {"truncated", "23", "", "", "frames", "33", "", "a"};
    static const char *const state[] = {"name", "22", "", ""};
    static const char *const exec[] = {"startTime", "20", "",  "", "stackTrace", "34", "c", "",
                                       "state",     "35", "c", "", "contextId",  "20", "",  "",
                                       "spanId",    "20", "",  "", "spanName",   "20", "",  ""};
    static const char *const setting[] = {"startTime", "20", "",      "",   "name", "22",
                                          "",          "",   "value", "22", "",     ""};
    static const char *const monitor[] = {"startTime",  "20", "",  "", "duration",  "20", "", "",
                                          "stackTrace", "34", "c", "", "contextId", "20", "", ""};
    wbuf b = {0};
    w_var(&b, 0); /* type: metadata */
    w_var(&b, 0);
    w_var(&b, 0);
    w_var(&b, 1);
    w_var(&b, sizeof(MS) / sizeof(MS[0]));
    for (size_t i = 0; i < sizeof(MS) / sizeof(MS[0]); i++)
        w_utf8(&b, MS[i]);
    w_var(&b, ms("root"));
    w_var(&b, 0);
    w_var(&b, 2);
    w_var(&b, ms("metadata"));
    w_var(&b, 0);
    w_var(&b, 13);
    w_class(&b, "20", "long", 0, NULL);
    w_class(&b, "21", "int", 0, NULL);
    w_class(&b, "22", "java.lang.String", 0, NULL);
    w_class(&b, "23", "boolean", 0, NULL);
    w_class(&b, "30", "jdk.types.Symbol", 1, sym);
    w_class(&b, "31", "java.lang.Class", 1, cls);
    w_class(&b, "32", "jdk.types.Method", 2, meth);
    w_class(&b, "33", "jdk.types.StackFrame", 2, frame);
    w_class(&b, "34", "jdk.types.StackTrace", 2, stack);
    w_class(&b, "35", "jdk.types.ThreadState", 1, state);
    w_class(&b, "40", "jdk.ExecutionSample", 6, exec);
    w_class(&b, "41", "jdk.ActiveSetting", 3, setting);
    w_class(&b, "42", "jdk.JavaMonitorEnter", 4, monitor);
    w_var(&b, ms("region"));
    w_var(&b, 0);
    w_var(&b, 0);
    w_event(out, &b);
    free(b.p);
}

/* Symbols: a Latin-1 (encoding 5) and a UTF-16 (encoding 4) one among them. */
static void w_symbols(wbuf *b)
{
    static const char *const s[] = {"com/example/Foo", "hot", "main",
                                    "com/example/Gen$$Lambda$12.0x000000080012ab00", "run"};
    w_var(b, 30);
    w_var(b, 8);
    for (int i = 0; i < 5; i++) {
        w_var(b, (uint64_t)i + 1);
        w_utf8(b, s[i]);
    }
    w_var(b, 6); /* "caf\u00e9" in Latin-1 */
    w_u8(b, 5);
    w_var(b, 4);
    w_bytes(b, "caf\xe9", 4);
    w_var(b, 7); /* "\u03c0\U0001F525" in UTF-16: a BMP char and a surrogate pair */
    w_u8(b, 4);
    w_var(b, 3);
    w_var(b, 0x3c0);
    w_var(b, 0xd83d);
    w_var(b, 0xdd25);
    w_var(b, 8); /* not UTF-8 */
    w_utf8(b, "bad\xff");
}

/* Thread states added to the pool, to test the entry limit. */
static size_t extra_states;

static void w_pools(wbuf *out)
{
    static const uint64_t methods[][3] = {{100, 10, 2}, {101, 10, 3}, {102, 11, 5},
                                          {103, 10, 6}, {104, 10, 7}, {105, 10, 8}};
    static const uint64_t stacks[][3] = {
        {1000, 100, 101}, {1001, 102, 101}, {1002, 103, 0}, {1003, 104, 0}, {1004, 105, 0}};
    wbuf b = {0};
    w_var(&b, 1);
    w_var(&b, 0);
    w_var(&b, 0);
    w_var(&b, 0); /* delta: the only pool event */
    w_var(&b, 0);
    w_var(&b, 5);
    w_symbols(&b);
    w_var(&b, 31);
    w_var(&b, 2);
    for (uint64_t i = 0; i < 2; i++) {
        w_var(&b, 10 + i);
        w_var(&b, i == 0 ? 1 : 4);
    }
    w_var(&b, 32);
    w_var(&b, 6);
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++)
            w_var(&b, methods[i][k]);
    w_var(&b, 34);
    w_var(&b, 5);
    for (int i = 0; i < 5; i++) {
        w_var(&b, stacks[i][0]);
        w_u8(&b, 0); /* truncated */
        w_var(&b, stacks[i][2] ? 2 : 1);
        for (int k = 1; k <= (stacks[i][2] ? 2 : 1); k++) {
            w_var(&b, stacks[i][k]);
            w_var(&b, (uint64_t)(10 * k));
        }
    }
    w_var(&b, 35);
    w_var(&b, 2 + extra_states);
    w_var(&b, 1);
    w_utf8(&b, "STATE_RUNNABLE");
    w_var(&b, 2);
    w_utf8(&b, "STATE_SLEEPING");
    for (size_t i = 0; i < extra_states; i++) {
        w_var(&b, 100 + i);
        w_u8(&b, 1); /* the empty string */
    }
    w_event(out, &b);
    free(b.p);
}

static void w_span_sample(wbuf *out, uint64_t stack, uint64_t state, uint64_t ctx, uint64_t span,
                          uint64_t span_name)
{
    wbuf b = {0};
    w_var(&b, 40);
    w_var(&b, 12345);
    w_var(&b, stack);
    w_var(&b, state);
    w_var(&b, ctx);
    w_var(&b, span);
    w_var(&b, span_name);
    w_event(out, &b);
    free(b.p);
}

static void w_sample(wbuf *out, uint64_t stack, uint64_t state, uint64_t ctx)
{
    w_span_sample(out, stack, state, ctx, 0, 0);
}

static void w_events(wbuf *out)
{
    wbuf b = {0};
    w_var(&b, 41);
    w_var(&b, 1);
    w_utf8(&b, "event");
    w_utf8(&b, "cpu");
    w_event(out, &b);
    b.len = 0;
    w_var(&b, 42);
    w_var(&b, 1);
    w_var(&b, 2000); /* ticks of 2 GHz: 1000 ns */
    w_var(&b, 1000);
    w_var(&b, 7);
    w_event(out, &b);
    free(b.p);
    for (int i = 0; i < 3; i++)
        w_sample(out, 1000, 1, 7);
    w_sample(out, 1000, 2, 7);  /* sleeping: not cpu */
    w_sample(out, 1000, 99, 7); /* unknown state: not cpu, as upstream */
    w_sample(out, 5555, 1, 7);  /* unknown stack: left out */
    w_sample(out, 1001, 1, 0);
    w_sample(out, 1001, 1, 0);
    w_sample(out, 1002, 1, 8);
    w_sample(out, 1003, 1, 0);
    w_span_sample(out, 1003, 1, 0, 0xabc, 3); /* span 0xabc named "io" */
    w_sample(out, 1004, 1, 0);
}

/* One chunk: header, events, metadata, constant pool. */
static void w_chunk(wbuf *out)
{
    size_t at = out->len;
    w_bytes(out, "FLR\0\0\2\0\1", 8);
    for (int i = 0; i < 7; i++)
        w_be(out, 0, 8);
    w_be(out, 1, 4); /* features: compressed integers */
    w_events(out);
    size_t meta = out->len - at;
    w_metadata(out);
    size_t cp = out->len - at;
    w_pools(out);
    size_t size = out->len - at;
    uint8_t *h = out->p + at;
    for (int i = 0; i < 8; i++) {
        h[8 + i] = (uint8_t)(size >> (56 - 8 * i));
        h[16 + i] = (uint8_t)(cp >> (56 - 8 * i));
        h[24 + i] = (uint8_t)(meta >> (56 - 8 * i));
        h[56 + i] = (uint8_t)(2000000000ull >> (56 - 8 * i));
    }
}

/* LabelsSnapshot{strings: 1 worker, 2 cpu, 3 io; contexts: 7 {1: 2}, 8 {1: 3}}. */
static const uint8_t SNAPSHOT[] = {
    0x12, 0x0a, 0x08, 0x01, 0x12, 0x06, 'w',  'o',  'r',  'k',  'e',  'r',  /* strings[1] */
    0x12, 0x07, 0x08, 0x02, 0x12, 0x03, 'c',  'p',  'u',                    /* strings[2] */
    0x12, 0x06, 0x08, 0x03, 0x12, 0x02, 'i',  'o',                          /* strings[3] */
    0x0a, 0x0a, 0x08, 0x07, 0x12, 0x06, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, /* contexts[7] */
    0x0a, 0x0a, 0x08, 0x08, 0x12, 0x06, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x03, /* contexts[8] */
};

/* The label value of sample i for key, or "". */
static kiln_str_t label_of(const kiln_pprof_t *p, size_t i, const char *key)
{
    const kiln_pprof_sample *s = &p->samples[i];
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        if (kiln_str_eq(p->strings[l->key], key))
            return p->strings[l->str];
    }
    return (kiln_str_t){"", 0};
}

/* The cpu value and worker label of the stack given root first. */
static int64_t stack_value(const kiln_pprof_t *p, const char *stack, const char *worker)
{
    char buf[512];
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *sm = &p->samples[i];
        size_t k = 0;
        for (uint32_t j = sm->n_locs; j-- > 0;) {
            const kiln_pprof_location *l = &p->locations[p->locs[sm->loc_off + j] - 1];
            kiln_str_t n = p->strings[p->functions[p->lines[l->line_off].function - 1].name];
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%.*s%s", (int)n.len, n.ptr,
                                  j ? ";" : "");
        }
        if (strcmp(buf, stack) == 0 && kiln_str_eq(label_of(p, i, "worker"), worker))
            return p->values[sm->value_off];
    }
    return -1;
}

TEST(written_recording_labels_states_strings)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    wbuf rec = {0};
    w_chunk(&rec);
    size_t one = rec.len;
    kiln_jfr_input in = {1, 2, 100, SNAPSHOT, sizeof(SNAPSHOT)};
    kiln_jfr_result r = {0};
    kiln_err err = {0};
    kiln_status st = kiln_jfr_parse(a, rec.p, rec.len, &in, &r, &err);
    if (st != KILN_OK)
        printf("  %s\n", err.msg);
    CHECK_OK(st);
    CHECK_STR(r.event, "cpu");
    const kiln_jfr_profile *cpu = find(&r, "cpu"), *lock = find(&r, "delay");
    CHECK(cpu != NULL && lock != NULL);
    if (cpu != NULL) {
        const kiln_pprof_t *p = &cpu->profile;
        CHECK_OK(kiln_pprof_validate(p, &err));
        CHECK_EQ(total(p, 0), 90000000);
        CHECK_EQ(stack_value(p, "com/example/Foo.bad\xef\xbf\xbd", ""), 10000000);
        size_t spans = 0;
        for (size_t i = 0; i < p->n_samples; i++) {
            if (!kiln_str_eq(label_of(p, i, "profile_id"), "0000000000000abc"))
                continue;
            spans++;
            CHECK(kiln_str_eq(label_of(p, i, "span_name"), "io"));
            CHECK_EQ(p->values[p->samples[i].value_off], 10000000);
        }
        CHECK_EQ(spans, 1);
        CHECK_EQ(stack_value(p, "com/example/Foo.main;com/example/Foo.hot", "cpu"), 30000000);
        CHECK_EQ(stack_value(p, "com/example/Foo.main;com/example/Gen$$Lambda_.run", ""), 20000000);
        CHECK_EQ(stack_value(p, "com/example/Foo.caf\xc3\xa9", "io"), 10000000);
        CHECK_EQ(stack_value(p, "com/example/Foo.\xcf\x80\xf0\x9f\x94\xa5", ""), 10000000);
    }
    if (lock != NULL) {
        CHECK_STR(lock->metric, "mutex");
        CHECK_EQ(total(&lock->profile, 0), 1);
        CHECK_EQ(total(&lock->profile, 1), 1000);
        CHECK_EQ(stack_value(&lock->profile, "com/example/Foo.main;com/example/Foo.hot", "cpu"), 1);
    }
    /* Two chunks in one body: each read with its own pools, summed. */
    w_chunk(&rec);
    st = kiln_jfr_parse(a, rec.p, rec.len, &in, &r, &err);
    if (st != KILN_OK)
        printf("  two chunks: %s\n", err.msg);

    CHECK_OK(st);
    cpu = find(&r, "cpu");
    CHECK(cpu != NULL && total(&cpu->profile, 0) == 180000000);
    /* A chunk cut inside its constant pool. */
    CHECK_EQ(kiln_jfr_parse(a, rec.p, one - 3, &in, &r, &err), KILN_INVALID_ARGUMENT);
    free(rec.p);
    kiln_arena_destroy(a);
}

TEST(pool_entry_limit_is_resource_exhausted)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    wbuf rec = {0};
    extra_states = KILN_JFR_MAX_POOL_ENTRIES;
    w_chunk(&rec);
    extra_states = 0;
    kiln_jfr_result r;
    kiln_err err;
    CHECK_EQ(parse(a, rec.p, rec.len, &r, &err), KILN_RESOURCE_EXHAUSTED);
    printf("  %zu bytes: %s\n", rec.len, err.msg);
    free(rec.p);
    kiln_arena_destroy(a);
}

TEST(malformed_is_invalid_argument)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_jfr_result r;
    kiln_err err;
    CHECK_EQ(parse(a, (const uint8_t *)"", 0, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(parse(a, (const uint8_t *)"PK\3\4 not a recording", 20, &r, &err),
             KILN_INVALID_ARGUMENT);
    size_t n = 0;
    const uint8_t *d = load(a, "grafana-jfr-parser/nativemem.jfr.gz", &n);
    CHECK(d != NULL && n > 1000);
    /* Every cut of the recording is refused: the chunk claims more bytes. */
    for (size_t cut = 0; d != NULL && cut < n; cut += n / 50 + 1) {
        kiln_status st = parse(a, d, cut, &r, &err);
        CHECK_EQ(st, KILN_INVALID_ARGUMENT);
    }
    /* A recording followed by garbage is refused whole. */
    uint8_t *more = kiln_arena_alloc(a, n + 8);
    memcpy(more, d, n);
    memcpy(more + n, "garbage!", 8);
    CHECK_EQ(parse(a, more, n + 8, &r, &err), KILN_INVALID_ARGUMENT);
    kiln_arena_destroy(a);
}

/* Bytes flipped anywhere give a status, never a crash or a hang (ASan and
 * the fuzz target look deeper). */
TEST(corrupted_recordings_never_crash)
{
    kiln_arena_t *base = kiln_arena_create(ARENA_CAP);
    size_t n = 0;
    const uint8_t *d = load(base, "grafana-jfr-parser/nativemem.jfr.gz", &n);
    CHECK(d != NULL);
    uint64_t seed = 42;
    int ok = 0, invalid = 0, exhausted = 0;
    for (int i = 0; d != NULL && i < 400; i++) {
        kiln_arena_t *a = kiln_arena_create(64u << 20);
        uint8_t *c = kiln_arena_alloc(a, n);
        memcpy(c, d, n);
        for (int k = 0; k < 1 + i % 4; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            c[(seed >> 33) % n] ^= (uint8_t)(1u << ((seed >> 20) % 8));
        }
        kiln_jfr_result r;
        kiln_err err;
        kiln_status st = parse(a, c, n, &r, &err);
        ok += st == KILN_OK;
        invalid += st == KILN_INVALID_ARGUMENT;
        exhausted += st == KILN_RESOURCE_EXHAUSTED;
        CHECK(st == KILN_OK || st == KILN_INVALID_ARGUMENT || st == KILN_RESOURCE_EXHAUSTED);
        for (size_t p = 0; st == KILN_OK && p < r.n; p++) {
            kiln_status v = kiln_pprof_validate(&r.profiles[p].profile, &err);
            CHECK(v == KILN_OK || v == KILN_INVALID_ARGUMENT);
        }
        kiln_arena_destroy(a);
    }
    printf("  ok=%d invalid=%d exhausted=%d\n", ok, invalid, exhausted);
    kiln_arena_destroy(base);
}

TEST(bad_labels_snapshot_is_invalid_argument)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    size_t n = 0;
    const uint8_t *d = load(a, "grafana-jfr-parser/nativemem.jfr.gz", &n);
    kiln_jfr_input in = {1, 2, 100, (const uint8_t *)"\x0a\xff\xff", 3};
    kiln_jfr_result r;
    kiln_err err;
    CHECK_EQ(kiln_jfr_parse(a, d, n, &in, &r, &err), KILN_INVALID_ARGUMENT);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(every_recording_converts);
    RUN(golden_dd_trace_java_cpu);
    RUN(golden_example_mutex);
    RUN(profile_types_named_as_pyroscope);
    RUN(golden_pyroscope_kafka);
    RUN(written_recording_labels_states_strings);
    RUN(pool_entry_limit_is_resource_exhausted);
    RUN(malformed_is_invalid_argument);
    RUN(corrupted_recordings_never_crash);
    RUN(bad_labels_snapshot_is_invalid_argument);
    return check_done();
}
