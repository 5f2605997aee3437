/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the ingester's Push handler. A push record (the form the
 * distributor sends) is decoded once, bounds-checked: a malformed one is
 * invalid_argument and stores nothing, one of another tenant than the
 * caller's is refused, a series this ingester does not own in the ring is
 * failed_precondition; the older pprof-per-series form is still taken. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ingester.h"
#include "ingester/v1/ingester.pb-c.h"
#include "profiles.h"
#include "record.h"
#include "ring.h"
#include "rpc.h"
#include "tmpdir.h"

#define T0 1700000000000000000LL
#define M_PUSH "/ingester.v1.IngesterService/Push"

static kiln_pprof_t prof; /* cpu.pb.gz: two sample types */

/* Calls Push as tenant with req; err gets the handler's message. */
static kiln_status call_push(kiln_rpc_registry_t *rpc, const char *tenant,
                             const Ingester__V1__PushRequest *req, kiln_err *err)
{
    const kiln_rpc_method *m = kiln_rpc_find(rpc, KILN_RPC_INTERNAL, M_PUSH, strlen(M_PUSH));
    CHECK(m != NULL);
    if (m == NULL)
        return KILN_UNIMPLEMENTED;
    size_t len = ingester__v1__push_request__get_packed_size(req);
    uint8_t *body = malloc(len + 1);
    ingester__v1__push_request__pack(req, body);
    kiln_arena_t *a = kiln_arena_create(0);
    err->code = KILN_OK;
    err->msg[0] = '\0';
    kiln_rpc_ctx ctx = {.tenant = tenant, .arena = a, .err = err};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_status st = kiln_rpc_invoke(m, &ctx, body, len, KILN_CODEC_PROTO, &out);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    free(body);
    return st;
}

/* A push request carrying the record of one part of service svc. */
static void record_request(const char *tenant, const char *svc, kiln_buf *rec,
                           Ingester__V1__PushRequest *req)
{
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", svc}};
    kiln_pprof_t at = prof;
    at.time_nanos = T0;
    kiln_head_part p = {l, 2, &at, 0};
    kiln_buf_init(rec, 0);
    kiln_record_encode(tenant, &p, 1, rec);
    ingester__v1__push_request__init(req);
    req->record.data = (uint8_t *)rec->ptr;
    req->record.len = rec->len;
}

static size_t profiles_of(kiln_ingester_t *ing, const char *tenant)
{
    kiln_head_stats_t s;
    kiln_db_stats(kiln_ingester_db(ing), tenant, &s);
    return s.profiles;
}

TEST(push_record)
{
    char dir[] = "/tmp/kiln-ingpush-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    kiln_ingester_config c = {.storage_path = dir, .flush_check_ns = 3600000000000LL};
    kiln_ingester_t *ing = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_ingester_create(&c, &ing, &err));
    if (ing == NULL)
        return;
    kiln_rpc_registry_t *rpc = kiln_rpc_registry_create();
    kiln_ingester_register(ing, rpc);
    kiln_buf rec;
    Ingester__V1__PushRequest req;
    record_request("t1", "a", &rec, &req);

    req.record.len = rec.len / 2; /* cut short */
    CHECK_EQ(call_push(rpc, "t1", &req, &err), KILN_INVALID_ARGUMENT);
    printf("  truncated: %s\n", err.msg);
    req.record.len = rec.len;
    CHECK_EQ(call_push(rpc, "t2", &req, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "tenant") != NULL);
    CHECK_EQ(profiles_of(ing, "t1|t2"), 0);
    CHECK_OK(call_push(rpc, "t1", &req, &err));
    CHECK_EQ(profiles_of(ing, "t1"), 2);

    /* The older form: pprof per series. */
    kiln_buf pb;
    kiln_buf_init(&pb, 0);
    kiln_pprof_t at = prof;
    at.time_nanos = T0 + 1000000000;
    CHECK(kiln_pprof_encode(&at, true, &pb));
    Types__V1__LabelPair name = TYPES__V1__LABEL_PAIR__INIT, svc = TYPES__V1__LABEL_PAIR__INIT;
    name.name = "__name__", name.value = "process_cpu";
    svc.name = "service_name", svc.value = "old";
    Types__V1__LabelPair *labels[] = {&name, &svc};
    Ingester__V1__ProfileSeries s = INGESTER__V1__PROFILE_SERIES__INIT;
    s.labels = labels, s.n_labels = 2;
    s.profile.data = (uint8_t *)pb.ptr, s.profile.len = pb.len;
    Ingester__V1__ProfileSeries *series[] = {&s};
    Ingester__V1__PushRequest old = INGESTER__V1__PUSH_REQUEST__INIT;
    old.series = series, old.n_series = 1;
    CHECK_OK(call_push(rpc, "t1", &old, &err));
    CHECK_EQ(profiles_of(ing, "t1"), 4);

    /* In a ring that does not hold this ingester, its series are not ours. */
    kiln_ring_t *ring = kiln_ring_create();
    kiln_ring_member m[1];
    memset(m, 0, sizeof(m));
    snprintf(m[0].id, sizeof(m[0].id), "someone-else");
    m[0].state = KILN_RING_ACTIVE;
    kiln_ring_set(ring, m, 1);
    kiln_ingester_set_ring(ing, ring, 1, 0);
    CHECK_EQ(call_push(rpc, "t1", &req, &err), KILN_FAILED_PRECONDITION);
    printf("  not owned: %s\n", err.msg);
    CHECK_EQ(profiles_of(ing, "t1"), 4);

    kiln_rpc_registry_destroy(rpc);
    kiln_ingester_destroy(ing);
    kiln_ring_destroy(ring);
    kiln_buf_free(&pb);
    kiln_buf_free(&rec);
    tmpdir_remove(dir);
}

int main(void)
{
    kiln_arena_t *a = kiln_arena_create(0);
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &prof)) {
        printf("cpu.pb.gz missing\n");
        return 1;
    }
    RUN(push_record);
    kiln_arena_destroy(a);
    return check_done();
}
