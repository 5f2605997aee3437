/* SPDX-License-Identifier: Apache-2.0
 * bench_cardinality: the metadata and series queries at high cardinality,
 * through the rpc registry as the servers call them (request decoded,
 * handler, response encoded), over an in-process ingester (head only).
 * The head grows in steps to 1M series of one label `pod` with as many
 * values (each series one synthetic profile), and at each step times
 * SelectSeries group_by=pod (up to 100k series), LabelValues(pod),
 * LabelNames and Series: p50 of a few runs, the ratio to the 1 s target,
 * the growth against the previous step (linear: time ratio ~ size ratio),
 * and peak RSS (of the process, and of the queries alone: VmHWM is reset
 * before each step's queries). Not a test: it prints figures.
 * Usage: bench_cardinality [max-series] (default 1000000). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_summary.h"
#include "db.h"
#include "ingester.h"
#include "querier.h"
#include "querier/v1/querier.pb-c.h"
#include "synth.h"
#include "types/v1/types.pb-c.h"
#include "peak_rss.h"

#define T0_MS 1700000000000LL
#define RUNS 3
#define SELECT_SERIES_MAX 100000 /* the target's size for SelectSeries */
#define BATCH 4096

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* Appends series [from, to) of pod=p<i>, one profile each at T0. */
static void grow(kiln_ingester_t *ing, const kiln_pprof_t *base, size_t from, size_t to)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_head_part *parts = calloc(BATCH, sizeof(*parts));
    kiln_label_t(*labels)[3] = calloc(BATCH, sizeof(*labels));
    kiln_pprof_t *profiles = calloc(BATCH, sizeof(*profiles));
    for (size_t i = from; i < to;) {
        size_t n = 0;
        for (; n < BATCH && i < to; n++, i++) {
            labels[n][0] = (kiln_label_t){"__name__", "process_cpu"};
            labels[n][1] = (kiln_label_t){"pod", kiln_arena_printf(a, "p%07zu", i)};
            labels[n][2] = (kiln_label_t){"service_name", "svc"};
            profiles[n] =
                synth_variant(a, base, (int64_t)(i % 1000 + 1) * 10000000, T0_MS * 1000000);
            parts[n] = (kiln_head_part){labels[n], 3, &profiles[n], 0};
        }
        kiln_err err;
        if (kiln_db_append(kiln_ingester_db(ing), "bench", parts, n, &err) != KILN_OK) {
            fprintf(stderr, "bench_cardinality: append: %s\n", err.msg);
            exit(1);
        }
        kiln_arena_reset(a);
    }
    free(parts);
    free(labels);
    free(profiles);
    kiln_arena_destroy(a);
}

typedef struct call {
    const char *name;
    const kiln_rpc_method *m;
    uint8_t *body;
    size_t len;
} call;

static call make_call(const kiln_rpc_registry_t *rpc, const char *name, const char *method,
                      const ProtobufCMessage *req)
{
    call c = {name, kiln_rpc_find(rpc, KILN_RPC_PUBLIC, method, strlen(method)), NULL, 0};
    c.len = protobuf_c_message_get_packed_size(req);
    c.body = malloc(c.len + 1);
    protobuf_c_message_pack(req, c.body);
    if (c.m == NULL)
        abort();
    return c;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50 wall seconds of RUNS invocations, *cpu their p50 CPU seconds (the
 * machine may be shared: CPU time shows the work); *resp_bytes the encoded
 * answer's size. */
static double time_call(const call *c, double *cpu, size_t *resp_bytes)
{
    double t[RUNS], u[RUNS];
    for (int i = 0; i < RUNS; i++) {
        kiln_arena_t *a = kiln_arena_create(0);
        kiln_err err = {0};
        kiln_rpc_ctx ctx = {.tenant = "bench", .arena = a, .err = &err, .utf8_names = false};
        kiln_buf out;
        kiln_buf_init(&out, 0);
        double t0 = now_s(), u0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        kiln_status st = kiln_rpc_invoke(c->m, &ctx, c->body, c->len, KILN_CODEC_PROTO, &out);
        t[i] = now_s() - t0;
        u[i] = clock_s(CLOCK_THREAD_CPUTIME_ID) - u0;
        if (st != KILN_OK) {
            fprintf(stderr, "bench_cardinality: %s: %s\n", c->name, err.msg);
            exit(1);
        }
        *resp_bytes = out.len;
        kiln_buf_free(&out);
        kiln_arena_destroy(a);
    }
    qsort(t, RUNS, sizeof(double), cmp_d);
    qsort(u, RUNS, sizeof(double), cmp_d);
    *cpu = u[RUNS / 2];
    return t[RUNS / 2];
}

enum { C_SELECT_SERIES, C_LABEL_VALUES, C_LABEL_NAMES, C_SERIES, N_CALLS };

static void make_calls(const kiln_rpc_registry_t *rpc, call *calls)
{
    char *pod = "pod";
    Querier__V1__SelectSeriesRequest ss = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    ss.profile_typeid = SYNTH_TYPE;
    ss.label_selector = "{service_name=\"svc\"}";
    ss.start = T0_MS - 60000;
    ss.end = T0_MS + 60000;
    ss.group_by = &pod;
    ss.n_group_by = 1;
    ss.step = 15;
    calls[C_SELECT_SERIES] = make_call(rpc, "SelectSeries group_by=pod",
                                       "/querier.v1.QuerierService/SelectSeries", &ss.base);
    Types__V1__LabelValuesRequest lv = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
    lv.name = "pod";
    lv.start = ss.start;
    lv.end = ss.end;
    calls[C_LABEL_VALUES] =
        make_call(rpc, "LabelValues(pod)", "/querier.v1.QuerierService/LabelValues", &lv.base);
    Types__V1__LabelNamesRequest ln = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    ln.start = ss.start;
    ln.end = ss.end;
    calls[C_LABEL_NAMES] =
        make_call(rpc, "LabelNames", "/querier.v1.QuerierService/LabelNames", &ln.base);
    Querier__V1__SeriesRequest sr = QUERIER__V1__SERIES_REQUEST__INIT;
    sr.start = ss.start;
    sr.end = ss.end;
    calls[C_SERIES] = make_call(rpc, "Series", "/querier.v1.QuerierService/Series", &sr.base);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: bench_cardinality [max-series]\n"
               "  grows a head to max-series (default 1000000) series of pod=<unique>, timing\n"
               "  SelectSeries group_by=pod (to 100k series), LabelValues, LabelNames and Series\n"
               "  at each step (p50 of %d runs) with peak RSS; target: under 1 s, linear growth.\n",
               RUNS);
        return 0;
    }
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    char dir[] = "/tmp/kiln-bench-card-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    kiln_ingester_config ic = {
        .storage_path = dir, .wal_no_fsync = true, .wal_segment_bytes = 256u << 20};
    kiln_ingester_t *ing;
    kiln_err err;
    if (kiln_ingester_create(&ic, &ing, &err) != KILN_OK) {
        fprintf(stderr, "bench_cardinality: %s\n", err.msg);
        return 1;
    }
    kiln_querier_config qc = {.store = kiln_db_store(kiln_ingester_db(ing))};
    kiln_querier_t *q = kiln_querier_create(&qc);
    kiln_rpc_registry_t *rpc = kiln_rpc_registry_create();
    kiln_querier_register(q, rpc);
    call calls[N_CALLS];
    make_calls(rpc, calls);
    kiln_arena_t *pa = kiln_arena_create(0);
    kiln_pprof_t base;
    if (!synth_profile(pa, 1, T0_MS * 1000000, &base))
        return 1;
    static const size_t steps[] = {10000, 20000, 50000, 100000, 1000000}; /* 20k, 100k: issue 15 */
    double prev_t[N_CALLS] = {0};
    size_t prev_n[N_CALLS] = {0}, have = 0;
    printf("%-26s %8s %9s %9s %7s %9s %9s %8s\n", "query", "series", "p50 ms", "cpu ms", "x 1 s",
           "growth", "resp KB", "peak MB");
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]) && steps[s] <= max; s++) {
        double t0 = now_s();
        grow(ing, &base, have, steps[s]);
        have = steps[s];
        printf("-- %zu series (built in %.1f s, process peak RSS %.0f MB)\n", have, now_s() - t0,
               peak_rss_mb());
        for (int c = 0; c < N_CALLS; c++) {
            if (c == C_SELECT_SERIES && have > SELECT_SERIES_MAX)
                continue;
            bool reset = reset_peak_rss();
            size_t bytes = 0;
            double cpu, t = time_call(&calls[c], &cpu, &bytes);
            char growth[32] = "-";
            if (prev_n[c] != 0)
                snprintf(growth, sizeof(growth), "%.1f/%.0f", cpu / prev_t[c],
                         (double)have / (double)prev_n[c]);
            printf("%-26s %8zu %9.1f %9.1f %7.3f %9s %9.0f %8.0f%s\n", calls[c].name, have, t * 1e3,
                   cpu * 1e3, t / 1.0, growth, (double)bytes / 1024, peak_rss_mb(),
                   reset ? "" : "*");
            prev_t[c] = cpu, prev_n[c] = have;
            if (c == C_SELECT_SERIES && (have == 20000 || have == 100000))
                bench_summary(have == 20000 ? "group_by_20k_ms" : "group_by_100k_ms", t * 1e3,
                              "ms");
        }
    }
    printf("growth = CPU time ratio / series ratio against the previous step (linear: equal);\n"
           "x 1 s = p50 / the 1 s target; peak MB = VmHWM during the query runs (* not reset)\n");
    for (int c = 0; c < N_CALLS; c++)
        free(calls[c].body);
    kiln_arena_destroy(pa);
    kiln_rpc_registry_destroy(rpc);
    kiln_querier_destroy(q);
    kiln_ingester_destroy(ing);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
