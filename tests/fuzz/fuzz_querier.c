/* SPDX-License-Identifier: Apache-2.0
 * fuzz_querier: libFuzzer target for the querier.v1 methods. A small head
 * is built once (an in-process ingester: series with dotted and UTF-8
 * label names, two tenants, a real profile from the test data when there
 * is one and a synthetic one); each input is then one request: its first
 * byte picks the method (low 4 bits), the codec (0x10: JSON, else proto),
 * UTF-8 label names (0x20) and a two-tenant read (0x40); the rest is the
 * body, decoded and run through kiln_rpc_invoke exactly as the servers do.
 * Any crash or sanitizer report is a finding; so is an answer with an
 * unknown status, an error without a message, or a success whose encoded
 * response does not decode with its own descriptor. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "gzip.h"
#include "ingester.h"
#include "log.h"
#include "pbjson.h"
#include "querier.h"
#include "synth.h"

#define T0_MS 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
    "ProfileTypes",
    "LabelNames",
    "LabelValues",
    "Series",
    "SelectMergeStacktraces",
    "SelectMergeSpanProfile",
    "AnalyzeQuery",
    "SelectHeatmap",
    "SelectSeries",
    "SelectMergeProfile",
    "Diff",
    "GetProfileStats",
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static kiln_rpc_registry_t *rpc;
static char dir[64];
static bool trace;

/* A real profile from $KILN_TESTDATA (or the build's default), decoded,
 * validated and normalised into a; false when there is none. */
static bool real_profile(kiln_arena_t *a, kiln_pprof_t *p)
{
    const char *td = getenv("KILN_TESTDATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/grafana-pyroscope/cpu.pb.gz", td ? td : KILN_TESTDATA_DEFAULT);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    uint8_t *buf = kiln_arena_alloc(a, 8 << 20);
    size_t len = fread(buf, 1, 8 << 20, f);
    fclose(f);
    const uint8_t *raw;
    size_t n;
    if (kiln_gunzip_maybe(a, buf, len, 64 << 20, &raw, &n, NULL) != KILN_OK)
        return false;
    uint8_t *copy = kiln_arena_alloc(a, n + 1);
    memcpy(copy, raw, n);
    return kiln_pprof_decode(a, copy, n, p, NULL) == KILN_OK &&
           kiln_pprof_validate(p, NULL) == KILN_OK &&
           kiln_pprof_normalize(a, p, 0, NULL) == KILN_OK;
}

static int on_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    nftw(dir, on_remove, 8, FTW_DEPTH | FTW_PHYS);
}

/* Tenants t and u: services with dotted (OTLP-style) and UTF-8 label
 * names, a span label on the real profile's samples (when present), at
 * three times a minute apart. */
static void fill(kiln_ingester_t *ing)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t synth, real;
    bool have_real = real_profile(a, &real);
    if (!synth_profile(a, 10000000, T0_MS * 1000000, &synth))
        abort();
    static const kiln_label_t sets[][4] = {
        {{"__name__", "process_cpu"}, {"service.name", "checkout"}, {"service_name", "checkout"}},
        {{"__name__", "process_cpu"}, {"k8s.pod.name", "pod-1"}, {"service_name", "cart"}},
        {{"__name__", "process_cpu"}, {"pod", "p1"}, {"service_name", "cart"}, {"zone", "eu"}},
        {{"__name__", "process_cpu"}, {"service_name", "dot.svc"}, {"événement", "ç"}},
    };
    static const size_t n_labels[] = {3, 3, 4, 3};
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
            int64_t ns = (T0_MS + t * 60000) * 1000000;
            kiln_pprof_t v = synth_variant(a, &synth, 10000000 * (int64_t)(i + 1), ns);
            const kiln_pprof_t *p = &v;
            if (have_real && i % 2 == 0) {
                real.time_nanos = ns;
                p = &real;
            }
            kiln_head_part part = {sets[i], n_labels[i], p, (uint64_t)(t * 10 + i + 1)};
            if (kiln_db_append(kiln_ingester_db(ing), i == 3 ? "u" : "t", &part, 1, NULL) !=
                KILN_OK)
                abort();
        }
    }
    kiln_arena_destroy(a);
}

/* Lives as long as the process, as in a server (and stays reachable). */
static kiln_ingester_t *the_ingester;

static void setup(void)
{
    kiln_log_min = KILN_LOG_LEVEL_ERROR;
    trace = getenv("FUZZ_QUERIER_TRACE") != NULL;
    snprintf(dir, sizeof(dir), "/tmp/kiln-fuzz-querier-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(cleanup);
    kiln_ingester_config c = {
        .storage_path = dir, .wal_no_fsync = true, .wal_segment_bytes = 16u << 20};
    kiln_err err;
    if (kiln_ingester_create(&c, &the_ingester, &err) != KILN_OK)
        abort();
    fill(the_ingester);
    kiln_querier_config qc = {.store = kiln_db_store(kiln_ingester_db(the_ingester))};
    kiln_querier_t *q = kiln_querier_create(&qc);
    rpc = kiln_rpc_registry_create();
    kiln_querier_register(q, rpc);
}

/* A success must encode a response that decodes with its own descriptor. */
static void check_response(const kiln_rpc_method *m, kiln_rpc_codec codec, const kiln_buf *out)
{
    kiln_arena_t *a = kiln_arena_create(0);
    if (codec == KILN_CODEC_PROTO) {
        ProtobufCAllocator pa = kiln_arena_pb_allocator(a);
        if (protobuf_c_message_unpack(m->resp, &pa, out->len, (const uint8_t *)out->ptr) == NULL)
            abort();
    } else {
        ProtobufCMessage *msg;
        kiln_err err;
        if (kiln_pbjson_decode(m->resp, out->ptr ? out->ptr : "", out->len, a, &msg, &err) !=
            KILN_OK)
            abort();
    }
    kiln_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rpc == NULL)
        setup();
    if (size == 0)
        return 0;
    char path[96];
    snprintf(path, sizeof(path), "/querier.v1.QuerierService/%s",
             methods[(data[0] & 15) % N_METHODS]);
    const kiln_rpc_method *m = kiln_rpc_find(rpc, KILN_RPC_PUBLIC, path, strlen(path));
    if (m == NULL)
        abort();
    kiln_rpc_codec codec = data[0] & 0x10 ? KILN_CODEC_JSON : KILN_CODEC_PROTO;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {.tenant = data[0] & 0x40 ? "t|u" : "t",
                        .arena = a,
                        .err = &err,
                        .utf8_names = (data[0] & 0x20) != 0};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    /* A copy of just the body: reads past it are the decoder's to catch. */
    uint8_t *body = malloc(size);
    memcpy(body, data + 1, size - 1);
    kiln_status st = kiln_rpc_invoke(m, &ctx, body, size - 1, codec, &out);
    if (trace) /* FUZZ_QUERIER_TRACE=1: what each input got, to read a finding */
        fprintf(stderr, "%s %s: %s %s (%zu bytes)\n", m->path + 27,
                codec == KILN_CODEC_JSON ? "json" : "proto", kiln_status_str(st),
                st == KILN_OK ? "" : err.msg, out.len);
    if (st == KILN_OK)
        check_response(m, codec, &out);
    else if ((int)st < 0 || (int)st > KILN_UNAUTHENTICATED || err.msg[0] == '\0')
        abort();
    free(body);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    return 0;
}
