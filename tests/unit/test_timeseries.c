/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: SelectSeries (services/querier/timeseries.c) through the rpc
 * registry as the servers call it, over a fake store (real heads): group_by a
 * label with 200k values gives exactly one series per value, with the exact
 * sums per step, the ungrouped profiles in the empty group, and limit /
 * average as Pyroscope. Before groups were hashed this query was quadratic
 * (a strcmp per group per profile): 80 s at 100k values, so at 200k the old
 * code runs past this test's 120 s ctest timeout; now it takes ~1 s. */
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "ingester.h"
#include "querier.h"
#include "querier/v1/querier.pb-c.h"
#include "synth.h"
#include "querier_fixture.h"

#define PODS 200000
#define T0_MS 1700000000000LL
#define STEP_MS 10000

/* Pushes pod p<i> (i < PODS) with value i+1 at T0 and 2(i+1) at T0+step,
 * and three series without a pod label, value 5 each at T0. */
static void fill(kiln_store_t *store)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t base;
    CHECK(synth_profile(a, 1, T0_MS * 1000000, &base));
    enum { BATCH = 1000 };
    kiln_head_part parts[BATCH];
    kiln_label_t(*labels)[3] = kiln_arena_alloc(a, BATCH * sizeof(*labels));
    kiln_pprof_t *profiles = kiln_arena_alloc(a, BATCH * sizeof(*profiles));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < PODS; i += BATCH) {
            for (int j = 0; j < BATCH; j++) {
                char *pod = kiln_arena_printf(a, "p%06d", i + j);
                labels[j][0] = (kiln_label_t){"__name__", "process_cpu"};
                labels[j][1] = (kiln_label_t){"pod", pod};
                labels[j][2] = (kiln_label_t){"service_name", "svc"};
                profiles[j] = synth_variant(a, &base, (int64_t)(i + j + 1) * (round + 1),
                                            (T0_MS + round * STEP_MS) * 1000000);
                parts[j] = (kiln_head_part){labels[j], 3, &profiles[j], 0};
            }
            CHECK_OK(kiln_store_append(store, "t", parts, BATCH, NULL));
        }
    }
    const char *others[] = {"o1", "o2", "o3"};
    for (int j = 0; j < 3; j++) {
        labels[j][0] = (kiln_label_t){"__name__", "process_cpu"};
        labels[j][1] = (kiln_label_t){"service_name", others[j]};
        profiles[j] = synth_variant(a, &base, 5, T0_MS * 1000000);
        parts[j] = (kiln_head_part){labels[j], 2, &profiles[j], 0};
    }
    CHECK_OK(kiln_store_append(store, "t", parts, 3, NULL));
    kiln_arena_destroy(a);
}

/* SelectSeries over [T0, T0+step] through the registry (proto codec);
 * NULL when the call fails. The response lives in a. */
static Querier__V1__SelectSeriesResponse *select_series(kiln_rpc_registry_t *rpc, kiln_arena_t *a,
                                                        const char *group_by, int64_t limit,
                                                        bool avg)
{
    Querier__V1__SelectSeriesRequest req = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    char *gb[1] = {(char *)group_by};
    req.profile_typeid = SYNTH_TYPE;
    req.label_selector = "{}";
    req.start = T0_MS;
    req.end = T0_MS + STEP_MS;
    req.group_by = gb;
    req.n_group_by = 1;
    req.step = STEP_MS / 1000.0;
    req.limit = limit;
    if (avg) {
        req.aggregation =
            TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE;
    }
    size_t len = querier__v1__select_series_request__get_packed_size(&req);
    uint8_t *body = kiln_arena_alloc(a, len + 1);
    querier__v1__select_series_request__pack(&req, body);
    const char *path = "/querier.v1.QuerierService/SelectSeries";
    const kiln_rpc_method *m = kiln_rpc_find(rpc, KILN_RPC_PUBLIC, path, strlen(path));
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {.tenant = "t", .arena = a, .err = &err, .utf8_names = false};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_status st = kiln_rpc_invoke(m, &ctx, body, len, KILN_CODEC_PROTO, &out);
    CHECK_OK(st);
    if (st != KILN_OK) {
        printf("  SelectSeries: %s\n", err.msg);
        kiln_buf_free(&out);
        return NULL;
    }
    ProtobufCAllocator pa = kiln_arena_pb_allocator(a);
    Querier__V1__SelectSeriesResponse *r =
        querier__v1__select_series_response__unpack(&pa, out.len, (const uint8_t *)out.ptr);
    kiln_buf_free(&out);
    CHECK(r != NULL);
    return r;
}

static void check_point(const Types__V1__Point *p, int64_t ts, double value)
{
    CHECK_EQ(p->timestamp, ts);
    CHECK(p->value == value);
}

/* Every pod is its own series with its two points; the three series
 * without a pod are one series without labels, first. */
static void check_group_by_pod(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectSeriesResponse *r = select_series(rpc, a, "pod", 0, false);
    if (r != NULL) {
        CHECK_EQ(r->n_series, PODS + 1);
        CHECK_EQ(r->series[0]->n_labels, 0);
        CHECK_EQ(r->series[0]->n_points, 1);
        check_point(r->series[0]->points[0], T0_MS, 15);
        size_t bad = 0;
        for (size_t i = 1; i < r->n_series && bad < 5; i++) {
            const Types__V1__Series *s = r->series[i];
            char want[32];
            snprintf(want, sizeof(want), "p%06zu", i - 1);
            bool ok = s->n_labels == 1 && strcmp(s->labels[0]->name, "pod") == 0 &&
                      strcmp(s->labels[0]->value, want) == 0 && s->n_points == 2 &&
                      s->points[0]->timestamp == T0_MS && s->points[0]->value == (double)i &&
                      s->points[1]->timestamp == T0_MS + STEP_MS &&
                      s->points[1]->value == 2.0 * (double)i;
            if (!ok) {
                printf("  series %zu: want %s = %zu, %zu\n", i, want, i, 2 * i);
                bad++;
            }
        }
        CHECK_EQ(bad, 0);
    }
    kiln_arena_destroy(a);
}

/* limit keeps the largest totals (the last three pods), sorted by labels. */
static void check_limit(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectSeriesResponse *r = select_series(rpc, a, "pod", 3, false);
    if (r != NULL && r->n_series == 3) {
        for (size_t i = 0; i < 3; i++) {
            char want[32];
            snprintf(want, sizeof(want), "p%06zu", (size_t)PODS - 3 + i);
            CHECK_STR(r->series[i]->labels[0]->value, want);
            check_point(r->series[i]->points[0], T0_MS, (double)(PODS - 2 + i));
        }
    } else {
        CHECK(r != NULL && r->n_series == 3);
    }
    kiln_arena_destroy(a);
}

/* Average per step over a label every pod shares. */
static void check_average(kiln_rpc_registry_t *rpc)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectSeriesResponse *r = select_series(rpc, a, "service_name", 0, true);
    if (r != NULL && r->n_series == 4) {
        /* o1, o2, o3, svc */
        CHECK_STR(r->series[3]->labels[0]->value, "svc");
        CHECK_EQ(r->series[3]->n_points, 2);
        check_point(r->series[3]->points[0], T0_MS, (PODS + 1) / 2.0);
        check_point(r->series[3]->points[1], T0_MS + STEP_MS, (double)(PODS + 1));
        check_point(r->series[0]->points[0], T0_MS, 5);
    } else {
        CHECK(r != NULL && r->n_series == 4);
    }
    kiln_arena_destroy(a);
}

TEST(group_by_many_values)
{
    querier_fixture f;
    if (!querier_fixture_open(&f, "timeseries", fill))
        return;
    check_group_by_pod(f.rpc);
    check_limit(f.rpc);
    check_average(f.rpc);
    querier_fixture_close(&f);
}

int main(void)
{
    RUN(group_by_many_values);
    return check_done();
}
