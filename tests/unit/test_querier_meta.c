/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the querier's metadata methods (LabelNames, LabelValues,
 * Series) through the rpc registry as the servers call them, over an
 * in-process ingester: each distinct name, value or label set once, in
 * Pyroscope's order (labels compare by name, then value: pod="a" before
 * pod="ab"), whatever the number of series visiting them and of matchers
 * selecting them twice. Also requests at the edges, as fuzz_querier found
 * them: LabelNames without UTF-8 names over dotted ones, SelectSeries with
 * nothing to group, and ranges and steps at the ends of int64 (answered or
 * refused with invalid_argument, never overflowing or aborting). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "ingester.h"
#include "querier.h"
#include "querier/v1/querier.pb-c.h"
#include "synth.h"
#include "types/v1/types.pb-c.h"
#include "querier_fixture.h"

#define T0_MS 1700000000000LL

/* pod=a, ab, b (and 300 more values p<i>) of service api, each with a
 * dotted label, and one series of service web without a pod. */
static void fill(kiln_store_t *store)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(synth_profile(a, 7, T0_MS * 1000000, &p));
    enum { N = 304 };
    kiln_head_part parts[N];
    kiln_label_t l[N][4];
    for (int i = 0; i < N; i++) {
        const char *pod = i == 0   ? "a"
                          : i == 1 ? "ab"
                          : i == 2 ? "b"
                                   : kiln_arena_printf(a, "p%03d", i);
        l[i][0] = (kiln_label_t){"__name__", "process_cpu"};
        l[i][1] = (kiln_label_t){"pod", pod};
        l[i][2] = (kiln_label_t){"service.version", "1.2"};
        l[i][3] = (kiln_label_t){"service_name", "api"};
        parts[i] = (kiln_head_part){l[i], 4, &p, 0};
        if (i == N - 1) { /* no pod */
            l[i][1] = l[i][2], l[i][2] = (kiln_label_t){"service_name", "web"};
            parts[i].n_labels = 3;
        }
    }
    CHECK_OK(kiln_store_append(store, "t", parts, N, NULL));
    kiln_arena_destroy(a);
}

/* Calls method with req (proto codec); the response, unpacked into a with
 * desc, or NULL on failure. */
static void *call(kiln_rpc_registry_t *rpc, kiln_arena_t *a, const char *method,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc, bool utf8)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *body = kiln_arena_alloc(a, len + 1);
    protobuf_c_message_pack(req, body);
    char path[128];
    snprintf(path, sizeof(path), "/querier.v1.QuerierService/%s", method);
    const kiln_rpc_method *m = kiln_rpc_find(rpc, KILN_RPC_PUBLIC, path, strlen(path));
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {.tenant = "t", .arena = a, .err = &err, .utf8_names = utf8};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_status st = kiln_rpc_invoke(m, &ctx, body, len, KILN_CODEC_PROTO, &out);
    CHECK_OK(st);
    ProtobufCAllocator pa = kiln_arena_pb_allocator(a);
    void *r = NULL;
    if (st == KILN_OK)
        r = protobuf_c_message_unpack(desc, &pa, out.len, (const uint8_t *)out.ptr);
    if (st != KILN_OK)
        printf("  %s: %s\n", method, err.msg);
    kiln_buf_free(&out);
    return r;
}

static void check_label_values(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    char *m[] = {"{service_name=\"api\"}", "{pod=~\"a.*\"}"}; /* a, ab selected twice */
    Types__V1__LabelValuesRequest req = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
    req.name = "pod";
    req.matchers = m;
    req.n_matchers = 2;
    req.start = T0_MS - 1000;
    req.end = T0_MS + 1000;
    Types__V1__LabelValuesResponse *r = call(rpc, a, "LabelValues", &req.base,
                                             &types__v1__label_values_response__descriptor, false);
    if (r != NULL) {
        CHECK_EQ(r->n_names, 303);
        if (r->n_names == 303) {
            CHECK_STR(r->names[0], "a");
            CHECK_STR(r->names[1], "ab");
            CHECK_STR(r->names[2], "b");
            CHECK_STR(r->names[3], "p003");
            CHECK_STR(r->names[302], "p302");
        }
    }
    kiln_arena_destroy(a);
}

static void check_label_names(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Types__V1__LabelNamesRequest req = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    req.start = T0_MS - 1000;
    req.end = T0_MS + 1000;
    Types__V1__LabelNamesResponse *r =
        call(rpc, a, "LabelNames", &req.base, &types__v1__label_names_response__descriptor, true);
    const char *want[] = {
        "__name__",         "__period_type__", "__period_unit__", "__profile_type__",
        "__service_name__", "__type__",        "__unit__",        "pod",
        "service.version",  "service_name"};
    size_t n = sizeof(want) / sizeof(want[0]);
    if (r != NULL) {
        CHECK_EQ(r->n_names, n);
        for (size_t i = 0; i < n && i < r->n_names; i++)
            CHECK_STR(r->names[i], want[i]);
    }
    kiln_arena_destroy(a);
}

/* A projection on pod and service_name (plus names no series has): one
 * set per pod, sorted by value, and one set of web alone. */
static void check_series(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    enum { EXTRA = 2000 };
    char **names = kiln_arena_alloc(a, (EXTRA + 2) * sizeof(*names));
    for (int i = 0; i < EXTRA; i++)
        names[i] = kiln_arena_printf(a, "absent_%d", i);
    names[EXTRA] = "service_name";
    names[EXTRA + 1] = "pod";
    char *m[] = {"{}", "{pod=\"b\"}"};
    Querier__V1__SeriesRequest req = QUERIER__V1__SERIES_REQUEST__INIT;
    req.matchers = m;
    req.n_matchers = 2;
    req.label_names = names;
    req.n_label_names = EXTRA + 2;
    req.start = T0_MS - 1000;
    req.end = T0_MS + 1000;
    Querier__V1__SeriesResponse *r =
        call(rpc, a, "Series", &req.base, &querier__v1__series_response__descriptor, false);
    if (r != NULL && r->n_labels_set == 304) {
        const char *pods[] = {"a", "ab", "b", "p003"};
        for (size_t i = 0; i < 4; i++) {
            const Types__V1__Labels *s = r->labels_set[i];
            CHECK_EQ(s->n_labels, 2);
            CHECK_STR(s->labels[0]->name, "pod");
            CHECK_STR(s->labels[0]->value, pods[i]);
            CHECK_STR(s->labels[1]->name, "service_name");
            CHECK_STR(s->labels[1]->value, "api");
        }
        const Types__V1__Labels *web = r->labels_set[303];
        CHECK_EQ(web->n_labels, 1);
        CHECK_STR(web->labels[0]->value, "web");
    } else {
        CHECK(r != NULL && r->n_labels_set == 304);
    }
    /* Without a projection and UTF-8 names: every label, the dotted one too. */
    req.label_names = NULL;
    req.n_label_names = 0;
    req.n_matchers = 1;
    r = call(rpc, a, "Series", &req.base, &querier__v1__series_response__descriptor, true);
    if (r != NULL && r->n_labels_set == 304) {
        const Types__V1__Labels *s = r->labels_set[0];
        CHECK_EQ(s->n_labels, 10);
        CHECK_STR(s->labels[8]->name, "service.version");
        CHECK_STR(s->labels[8]->value, "1.2");
    } else {
        CHECK(r != NULL && r->n_labels_set == 304);
    }
    kiln_arena_destroy(a);
}

/* Legacy clients get the legacy names only (the dotted ones crashed it). */
static void check_legacy_names(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Types__V1__LabelNamesRequest req = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    req.start = T0_MS - 1000;
    req.end = T0_MS + 1000;
    Types__V1__LabelNamesResponse *r =
        call(rpc, a, "LabelNames", &req.base, &types__v1__label_names_response__descriptor, false);
    if (r != NULL) {
        CHECK_EQ(r->n_names, 9);
        for (size_t i = 0; i < r->n_names; i++)
            CHECK(strchr(r->names[i], '.') == NULL);
    }
    kiln_arena_destroy(a);
}

/* Invokes method with req and returns the status (the answer is dropped). */
static kiln_status status_of(kiln_rpc_registry_t *rpc, const char *method,
                             const ProtobufCMessage *req)
{
    kiln_arena_t *a = kiln_arena_create(0);
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *body = kiln_arena_alloc(a, len + 1);
    protobuf_c_message_pack(req, body);
    char path[128];
    snprintf(path, sizeof(path), "/querier.v1.QuerierService/%s", method);
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {.tenant = "t", .arena = a, .err = &err, .utf8_names = false};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_status st = kiln_rpc_invoke(kiln_rpc_find(rpc, KILN_RPC_PUBLIC, path, strlen(path)), &ctx,
                                     body, len, KILN_CODEC_PROTO, &out);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    return st;
}

static void check_edges(kiln_rpc_registry_t *rpc)
{
    char *pod = "pod";
    Querier__V1__SelectSeriesRequest ss = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    ss.profile_typeid = SYNTH_TYPE;
    ss.label_selector = "{pod=\"none\"}";
    ss.start = T0_MS - 1000;
    ss.end = T0_MS + 1000;
    ss.group_by = &pod;
    ss.n_group_by = 1;
    ss.step = 1;
    ss.limit = 2;
    CHECK_OK(status_of(rpc, "SelectSeries", &ss.base)); /* nothing to group or sort */
    /* The widest range with a step of 1e16 s: the span in ms used to wrap
     * to a negative count of steps, and the step past int64 in ms. */
    ss.label_selector = "{}";
    ss.start = INT64_MIN + 1;
    ss.end = INT64_MAX;
    ss.step = 1e16;
    CHECK_OK(status_of(rpc, "SelectSeries", &ss.base));
    ss.step = 1e300;
    CHECK_OK(status_of(rpc, "SelectSeries", &ss.base));
    ss.step = 1;
    CHECK_EQ(status_of(rpc, "SelectSeries", &ss.base), KILN_INVALID_ARGUMENT);
    Querier__V1__SelectHeatmapRequest hm = QUERIER__V1__SELECT_HEATMAP_REQUEST__INIT;
    hm.profile_typeid = SYNTH_TYPE;
    hm.label_selector = "{}";
    hm.start = INT64_MIN + 1;
    hm.end = INT64_MAX;
    hm.step = 1e16;
    CHECK_OK(status_of(rpc, "SelectHeatmap", &hm.base));
    Querier__V1__SelectMergeProfileRequest mp = QUERIER__V1__SELECT_MERGE_PROFILE_REQUEST__INIT;
    mp.profile_typeid = SYNTH_TYPE;
    mp.label_selector = "{}";
    mp.start = INT64_MIN + 1; /* its time and duration in ns saturate */
    mp.end = INT64_MAX;
    CHECK_OK(status_of(rpc, "SelectMergeProfile", &mp.base));
}

TEST(metadata)
{
    querier_fixture f;
    if (!querier_fixture_open(&f, "qmeta", fill))
        return;
    check_label_values(f.rpc);
    check_label_names(f.rpc);
    check_series(f.rpc);
    check_legacy_names(f.rpc);
    check_edges(f.rpc);
    querier_fixture_close(&f);
}

int main(void)
{
    RUN(metadata);
    return check_done();
}
