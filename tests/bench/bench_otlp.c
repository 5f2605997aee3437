/* SPDX-License-Identifier: Apache-2.0
 * bench_otlp: OTLP profile exports in process, the gRPC method's whole body
 * (protobuf unpack, conversion, validation, the WAL record and the head)
 * without the network, so that a change to the OTLP path can be weighed on
 * a busy machine: CPU seconds per MB (the figure issue 15 sets at 0.012
 * through the real server), MB/s and exports/s per core, one thread.
 *
 *   bench_otlp [-s seconds | -n exports] [file ...]
 *
 * Files are ExportProfilesServiceRequest bytes relative to $KILN_TESTDATA;
 * -n runs a fixed count, for repeatable instruction counts under
 * callgrind. The WAL is written but not fsynced: the disk is pushload's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_env.h"
#include "bench_summary.h"
#include "distributor.h"
#include "rpc.h"
#include "xmalloc.h"

#define EXPORT_PATH "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
#define WARMUP 20

static const char *const default_files[] = {
    "grafana-pyroscope/otel-ebpf-profile.pb.bin",
    "hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin",
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The push environment with the OTLP export method registered. */
typedef struct otlp_env {
    bench_env env;
    kiln_rpc_registry_t *rpc;
    const kiln_rpc_method *export;
} otlp_env;

static void otlp_env_create(otlp_env *e)
{
    bench_env_create(&e->env);
    e->rpc = kiln_rpc_registry_create();
    kiln_distributor_register_otlp(e->env.d, e->rpc, NULL);
    e->export = kiln_rpc_find(e->rpc, KILN_RPC_PUBLIC, EXPORT_PATH, strlen(EXPORT_PATH));
}

static void otlp_env_destroy(otlp_env *e)
{
    kiln_rpc_registry_destroy(e->rpc);
    bench_env_destroy(&e->env);
}

/* One export of body; -1 after printing why it failed. */
static int export_one(otlp_env *e, kiln_arena_t *a, const kiln_buf *body, kiln_buf *out)
{
    kiln_err err = {KILN_OK, ""};
    kiln_rpc_ctx ctx = {.tenant = "bench", .arena = a, .err = &err};
    kiln_arena_reset(a);
    out->len = 0;
    kiln_status st = kiln_rpc_invoke(e->export, &ctx, (const uint8_t *)body->ptr, body->len,
                                     KILN_CODEC_PROTO, out);
    if (st != KILN_OK) {
        fprintf(stderr, "bench_otlp: export: %s: %s\n", kiln_status_str(st), err.msg);
        return -1;
    }
    return 0;
}

/* Exports body for seconds (or n times), printing one row. */
static int bench_file(const char *rel, const kiln_buf *body, double seconds, uint64_t n,
                      double *cpu_total, double *mb_total)
{
    otlp_env e;
    otlp_env_create(&e);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_buf out;
    kiln_buf_init(&out, 0);
    int rc = e.export != NULL ? 0 : -1;
    for (uint64_t i = 0; i < WARMUP && rc == 0; i++)
        rc = export_one(&e, a, body, &out);
    uint64_t done = 0;
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    while (rc == 0 && (n ? done < n : clock_s(CLOCK_MONOTONIC) - w0 < seconds)) {
        rc = export_one(&e, a, body, &out);
        done++;
    }
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, mb = (double)body->len * done / 1e6;
    if (rc == 0 && cpu > 0) {
        printf("%-60s %8llu %10.1f %10.1f %12.5f\n", rel, (unsigned long long)done, mb / cpu,
               (double)done / cpu, cpu / mb);
        *cpu_total += cpu;
        *mb_total += mb;
    }
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    otlp_env_destroy(&e);
    return rc;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    uint64_t n = 0;
    int opt;
    while ((opt = getopt(argc, argv, "s:n:")) != -1) {
        if (opt == 's')
            seconds = atof(optarg);
        else if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: bench_otlp [-s seconds | -n exports] [file ...]\n");
            return 2;
        }
    }
    const char *root = getenv("KILN_TESTDATA") ? getenv("KILN_TESTDATA") : "../shared/testdata";
    size_t n_files =
        optind < argc ? (size_t)(argc - optind) : sizeof(default_files) / sizeof(default_files[0]);
    printf("== OTLP exports in process (gRPC method body, no network, WAL not fsynced), one "
           "thread ==\n%-60s %8s %10s %10s %12s\n",
           "file", "exports", "MB/s/core", "exp/s/core", "CPU s/MB");
    double cpu = 0, mb = 0;
    for (size_t i = 0; i < n_files; i++) {
        const char *rel = optind < argc ? argv[optind + (int)i] : default_files[i];
        char path[4096];
        snprintf(path, sizeof(path), "%s%s%s", rel[0] == '/' ? "" : root, rel[0] == '/' ? "" : "/",
                 rel);
        kiln_buf body;
        kiln_buf_init(&body, 0);
        int rc = bench_read_file(path, &body);
        if (rc != 0)
            fprintf(stderr, "bench_otlp: cannot read %s\n", path);
        else
            rc = bench_file(rel, &body, seconds, n, &cpu, &mb);
        kiln_buf_free(&body);
        if (rc != 0)
            return 1;
    }
    if (mb > 0) {
        printf("%-60s %8s %10.1f %10s %12.5f\n", "ALL", "", mb / cpu, "", cpu / mb);
        bench_summary("inprocess_cpu_s_per_mb_otlp", cpu / mb, "s/MB");
    }
    return 0;
}
