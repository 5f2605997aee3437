/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: querier.v1 over a fake store (fake_store.h: real heads in
 * memory) through the rpc registry, as the servers dispatch it.
 * SelectMergeStacktraces, SelectSeries, LabelNames, LabelValues and
 * ProfileTypes answer from what the store holds, for one tenant and for
 * several ("a|b" reaches the store as such); and a store that fails a read
 * (data_loss: a chunk that cannot load) fails the call with that status
 * and its message, never a partial answer called whole. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fake_store.h"
#include "querier.h"
#include "querier/v1/querier.pb-c.h"
#include "rpc.h"
#include "synth.h"
#include "types/v1/types.pb-c.h"

#define T0_MS 1700000000000LL

/* Tenant a: service api, pods p0 (value 3, leaf "work") and p1 (value 5,
 * leaf "idle"); tenant b: service web (value 11). */
static void fill(kiln_store_t *store)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p0, p1, w;
    CHECK(synth_profile_leaf(a, 3, T0_MS * 1000000, "work", &p0));
    CHECK(synth_profile_leaf(a, 5, T0_MS * 1000000, "idle", &p1));
    CHECK(synth_profile_leaf(a, 11, (T0_MS + 10000) * 1000000, "serve", &w));
    kiln_label_t l0[] = {{"__name__", "process_cpu"}, {"pod", "p0"}, {"service_name", "api"}};
    kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"pod", "p1"}, {"service_name", "api"}};
    kiln_label_t lw[] = {{"__name__", "process_cpu"}, {"service_name", "web"}};
    kiln_head_part pa[] = {{l0, 3, &p0, 1}, {l1, 3, &p1, 2}};
    kiln_head_part pb[] = {{lw, 2, &w, 3}};
    CHECK_OK(kiln_store_append(store, "a", pa, 2, NULL));
    CHECK_OK(kiln_store_append(store, "b", pb, 1, NULL));
    kiln_arena_destroy(a);
}

typedef struct env {
    fake_store fake;
    kiln_store_t store;
    kiln_querier_t *q;
    kiln_rpc_registry_t *rpc;
} env;

static void env_open(env *e)
{
    fake_store_init(&e->fake);
    e->store = fake_store_iface(&e->fake);
    fill(&e->store);
    kiln_querier_config qc = {.store = e->store};
    e->q = kiln_querier_create(&qc);
    e->rpc = kiln_rpc_registry_create();
    kiln_querier_register(e->q, e->rpc);
}

static void env_close(env *e)
{
    kiln_rpc_registry_destroy(e->rpc);
    kiln_querier_destroy(e->q);
    fake_store_fini(&e->fake);
}

/* Calls method as tenant with req (proto codec); its status, the response
 * unpacked into a with desc in *out (NULL on failure), err the message. */
static kiln_status call(env *e, kiln_arena_t *a, const char *tenant, const char *method,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                        void **out, kiln_err *err)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *body = kiln_arena_alloc(a, len + 1);
    protobuf_c_message_pack(req, body);
    char path[128];
    snprintf(path, sizeof(path), "/querier.v1.QuerierService/%s", method);
    const kiln_rpc_method *m = kiln_rpc_find(e->rpc, KILN_RPC_PUBLIC, path, strlen(path));
    CHECK(m != NULL);
    kiln_rpc_ctx ctx = {.tenant = tenant, .arena = a, .err = err};
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_status st = m ? kiln_rpc_invoke(m, &ctx, body, len, KILN_CODEC_PROTO, &b) : KILN_INTERNAL;
    ProtobufCAllocator pa = kiln_arena_pb_allocator(a);
    *out =
        st == KILN_OK ? protobuf_c_message_unpack(desc, &pa, b.len, (const uint8_t *)b.ptr) : NULL;
    kiln_buf_free(&b);
    return st;
}

/* The flame graph total of SelectMergeStacktraces for sel over tenant; -1
 * when the call fails (status in *st). */
static int64_t merged_total(env *e, const char *tenant, const char *sel, kiln_status *st)
{
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectMergeStacktracesRequest req =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    req.profile_typeid = SYNTH_TYPE;
    req.label_selector = (char *)sel;
    req.start = T0_MS - 1000;
    req.end = T0_MS + 60000;
    Querier__V1__SelectMergeStacktracesResponse *r;
    kiln_err err = {KILN_OK, ""};
    *st = call(e, a, tenant, "SelectMergeStacktraces", &req.base,
               &querier__v1__select_merge_stacktraces_response__descriptor, (void **)&r, &err);
    int64_t total = r != NULL && r->flamegraph != NULL ? r->flamegraph->total : -1;
    kiln_arena_destroy(a);
    return total;
}

TEST(select_merge_stacktraces)
{
    env e;
    env_open(&e);
    kiln_status st;
    CHECK_EQ(merged_total(&e, "a", "{}", &st), 8);
    CHECK_EQ(merged_total(&e, "a", "{pod=\"p1\"}", &st), 5);
    CHECK_EQ(merged_total(&e, "b", "{}", &st), 11);
    CHECK_EQ(merged_total(&e, "a|b", "{}", &st), 19);
    CHECK_STR(fake_store_last(&e.fake, "read")->tenant, "a|b");
    CHECK_EQ(merged_total(&e, "c", "{}", &st), 0);
    env_close(&e);
}

TEST(select_series)
{
    env e;
    env_open(&e);
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectSeriesRequest req = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    char *gb[] = {"service_name"};
    req.profile_typeid = SYNTH_TYPE;
    req.label_selector = "{}";
    req.start = T0_MS;
    req.end = T0_MS + 20000;
    req.group_by = gb, req.n_group_by = 1;
    req.step = 10;
    Querier__V1__SelectSeriesResponse *r;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(call(&e, a, "a|b", "SelectSeries", &req.base,
                  &querier__v1__select_series_response__descriptor, (void **)&r, &err));
    CHECK(r != NULL && r->n_series == 2);
    if (r != NULL && r->n_series == 2) {
        /* Sorted by group: api (8 at T0), then web (11 at T0 + 10 s). */
        CHECK_STR(r->series[0]->labels[0]->value, "api");
        CHECK_EQ(r->series[0]->n_points, 1);
        CHECK_EQ(r->series[0]->points[0]->value, 8);
        CHECK_EQ(r->series[0]->points[0]->timestamp, T0_MS);
        CHECK_STR(r->series[1]->labels[0]->value, "web");
        CHECK_EQ(r->series[1]->points[0]->value, 11);
        CHECK_EQ(r->series[1]->points[0]->timestamp, T0_MS + 10000);
    }
    kiln_arena_destroy(a);
    env_close(&e);
}

TEST(label_names_values_and_profile_types)
{
    env e;
    env_open(&e);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    Types__V1__LabelValuesRequest lv = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
    lv.name = "service_name";
    lv.start = T0_MS - 1000, lv.end = T0_MS + 60000;
    Types__V1__LabelValuesResponse *v;
    CHECK_OK(call(&e, a, "a|b", "LabelValues", &lv.base,
                  &types__v1__label_values_response__descriptor, (void **)&v, &err));
    CHECK(v != NULL && v->n_names == 2);
    if (v != NULL && v->n_names == 2) {
        CHECK_STR(v->names[0], "api");
        CHECK_STR(v->names[1], "web");
    }
    lv.name = "pod";
    CHECK_OK(call(&e, a, "b", "LabelValues", &lv.base,
                  &types__v1__label_values_response__descriptor, (void **)&v, &err));
    CHECK(v != NULL && v->n_names == 0);
    Types__V1__LabelNamesRequest ln = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    ln.start = T0_MS - 1000, ln.end = T0_MS + 60000;
    Types__V1__LabelNamesResponse *n;
    CHECK_OK(call(&e, a, "a", "LabelNames", &ln.base, &types__v1__label_names_response__descriptor,
                  (void **)&n, &err));
    bool has_pod = false;
    for (size_t i = 0; n != NULL && i < n->n_names; i++)
        has_pod |= strcmp(n->names[i], "pod") == 0;
    CHECK(has_pod);
    Querier__V1__ProfileTypesRequest pt = QUERIER__V1__PROFILE_TYPES_REQUEST__INIT;
    pt.start = T0_MS - 1000, pt.end = T0_MS + 60000;
    Querier__V1__ProfileTypesResponse *t;
    CHECK_OK(call(&e, a, "a|b", "ProfileTypes", &pt.base,
                  &querier__v1__profile_types_response__descriptor, (void **)&t, &err));
    CHECK(t != NULL && t->n_profile_types == 1);
    if (t != NULL && t->n_profile_types == 1)
        CHECK_STR(t->profile_types[0]->id, SYNTH_TYPE);
    kiln_arena_destroy(a);
    env_close(&e);
}

/* A read the store cannot complete fails the call with the store's status
 * and message: the client never gets a partial answer as a whole one. */
TEST(store_failure_is_the_clients_error)
{
    env e;
    env_open(&e);
    static const char *const methods[] = {"SelectMergeStacktraces", "SelectSeries", "LabelNames",
                                          "LabelValues", "ProfileTypes"};
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectMergeStacktracesRequest ms =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    ms.profile_typeid = SYNTH_TYPE, ms.label_selector = "{}";
    ms.start = T0_MS - 1000, ms.end = T0_MS + 60000;
    Querier__V1__SelectSeriesRequest ss = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    ss.profile_typeid = SYNTH_TYPE, ss.label_selector = "{}";
    ss.start = T0_MS - 1000, ss.end = T0_MS + 60000, ss.step = 10;
    Types__V1__LabelNamesRequest ln = TYPES__V1__LABEL_NAMES_REQUEST__INIT;
    ln.start = ms.start, ln.end = ms.end;
    Types__V1__LabelValuesRequest lv = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
    lv.name = "pod", lv.start = ms.start, lv.end = ms.end;
    Querier__V1__ProfileTypesRequest pt = QUERIER__V1__PROFILE_TYPES_REQUEST__INIT;
    pt.start = ms.start, pt.end = ms.end;
    const ProtobufCMessage *reqs[] = {&ms.base, &ss.base, &ln.base, &lv.base, &pt.base};
    const ProtobufCMessageDescriptor *descs[] = {
        &querier__v1__select_merge_stacktraces_response__descriptor,
        &querier__v1__select_series_response__descriptor,
        &types__v1__label_names_response__descriptor, &types__v1__label_values_response__descriptor,
        &querier__v1__profile_types_response__descriptor};
    for (size_t i = 0; i < 5; i++) {
        fake_store_fail_next(&e.fake, KILN_DATA_LOSS, "block 01HX: chunk 3 does not load");
        void *r;
        kiln_err err = {KILN_OK, ""};
        kiln_status st = call(&e, a, "a|b", methods[i], reqs[i], descs[i], &r, &err);
        printf("  %s: %s: %s\n", methods[i], kiln_status_str(st), err.msg);
        CHECK_EQ(st, KILN_DATA_LOSS);
        CHECK(r == NULL);
        CHECK(strstr(err.msg, "chunk 3 does not load") != NULL);
        /* The next call, with the failure spent, answers in full. */
        CHECK_OK(call(&e, a, "a|b", methods[i], reqs[i], descs[i], &r, &err));
    }
    kiln_arena_destroy(a);
    env_close(&e);
}

int main(void)
{
    RUN(select_merge_stacktraces);
    RUN(select_series);
    RUN(label_names_values_and_profile_types);
    RUN(store_failure_is_the_clients_error);
    return check_done();
}
