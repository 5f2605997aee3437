/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the distributor over a fake store (fake_store.h), driven
 * through the real HTTP server as clients reach it: push.v1 Push over
 * Connect and the legacy /ingest reach the store decoded and normalised,
 * with the series labels Pyroscope gives them (service_name defaulted,
 * sorted, markers dropped) and the push id hashed from the client's
 * profile id; and every status the store answers maps to the code the
 * client gets (Connect's HTTP status, /ingest's plain HTTP status). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "connect.h"
#include "distributor.h"
#include "fake_store.h"
#include "http_client.h"
#include "http_server.h"
#include "push/v1/push.pb-c.h"
#include "rpc.h"
#include "seen_keys.h"
#include "synth.h"

#define T0_NS 1700000000000000000LL

typedef struct env {
    fake_store fake;
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    kiln_distributor_t *d;
    kiln_rpc_registry_t *rpc;
    kiln_connect connect;
    kiln_http_server_t *http;
    int port;
} env;

static bool env_open(env *e)
{
    memset(e, 0, sizeof(*e));
    fake_store_init(&e->fake);
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_profile_bytes = 4u << 20;
    lim.max_label_names = 30, lim.max_label_name_len = 1024, lim.max_label_value_len = 2048;
    e->limits = kiln_overrides_create(&lim);
    e->metrics = kiln_metrics_create();
    kiln_distributor_config dc = {.limits = e->limits,
                                  .max_profile_bytes = lim.max_profile_bytes,
                                  .store = fake_store_iface(&e->fake)};
    e->d = kiln_distributor_create(&dc, e->metrics);
    e->rpc = kiln_rpc_registry_create();
    kiln_distributor_register(e->d, e->rpc);
    kiln_http_config hc = {.address = "127.0.0.1", .port = 0, .threads = 2, .max_body = 8u << 20};
    e->http = kiln_http_server_create(&hc);
    e->connect = (kiln_connect){e->rpc, e->metrics, 8u << 20, NULL};
    kiln_distributor_register_http(e->d, e->http);
    kiln_http_server_fallback(e->http, kiln_connect_handle, &e->connect);
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_http_server_start(e->http, &err);
    CHECK_OK(st);
    e->port = kiln_http_server_port(e->http);
    return st == KILN_OK;
}

static void env_close(env *e)
{
    kiln_http_server_destroy(e->http);
    kiln_rpc_registry_destroy(e->rpc);
    kiln_distributor_destroy(e->d);
    kiln_metrics_destroy(e->metrics);
    kiln_overrides_destroy(e->limits);
    fake_store_fini(&e->fake);
}

/* A push.v1 PushRequest of one series {__name__=process_cpu, pod=a} (no
 * service_name: the distributor defaults it) holding one synthetic CPU
 * profile whose RawSample ID is id; the bytes in *out (caller frees). */
static void push_request(const char *id, kiln_buf *out)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(synth_profile(a, 7, T0_NS, &p));
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    CHECK(kiln_pprof_encode(&p, true, &raw));
    Push__V1__RawSample rs = PUSH__V1__RAW_SAMPLE__INIT;
    rs.raw_profile.data = (uint8_t *)raw.ptr;
    rs.raw_profile.len = raw.len;
    rs.id = (char *)id;
    Push__V1__RawSample *samples[] = {&rs};
    Types__V1__LabelPair name = TYPES__V1__LABEL_PAIR__INIT, pod = TYPES__V1__LABEL_PAIR__INIT;
    name.name = "__name__", name.value = "process_cpu";
    pod.name = "pod", pod.value = "a";
    Types__V1__LabelPair *labels[] = {&pod, &name}; /* unsorted, as clients may send */
    Push__V1__RawProfileSeries s = PUSH__V1__RAW_PROFILE_SERIES__INIT;
    s.labels = labels, s.n_labels = 2;
    s.samples = samples, s.n_samples = 1;
    Push__V1__RawProfileSeries *series[] = {&s};
    Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
    req.series = series, req.n_series = 1;
    kiln_buf_init(out, 0);
    size_t len = push__v1__push_request__get_packed_size(&req);
    uint8_t *b = kiln_arena_alloc(a, len + 1);
    push__v1__push_request__pack(&req, b);
    kiln_buf_append(out, b, len);
    kiln_buf_free(&raw);
    kiln_arena_destroy(a);
}

/* POSTs a push over Connect (application/proto) as tenant; the HTTP status. */
static int connect_push(const env *e, const char *tenant, const char *id, kiln_buf *resp)
{
    kiln_buf body;
    push_request(id, &body);
    char headers[256];
    snprintf(headers, sizeof(headers), "Content-Type: application/proto\r\nX-Scope-OrgID: %s\r\n",
             tenant);
    int status = http_call(e->port, "POST", "/push.v1.PusherService/Push", headers, body.ptr,
                           body.len, resp);
    kiln_buf_free(&body);
    return status;
}

TEST(push_reaches_the_store_normalised)
{
    env e;
    if (!env_open(&e))
        return;
    kiln_buf resp;
    kiln_buf_init(&resp, 0);
    CHECK_EQ(connect_push(&e, "team-a", "client-id-1", &resp), 200);
    const fake_store_call *c = fake_store_last(&e.fake, "append");
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_STR(c->tenant, "team-a");
        CHECK_EQ(c->n_parts, 1);
        CHECK_STR(c->labels[0], "__name__=process_cpu,pod=a,service_name=unknown_service");
        CHECK_EQ(c->ids[0], kiln_profile_id_key("team-a", "client-id-1"));
        CHECK_EQ(c->time_ns[0], T0_NS);
    }
    /* What the store keeps reads back as one profile of one series. */
    kiln_head_stats_t s;
    kiln_store_t st = fake_store_iface(&e.fake);
    CHECK_OK(kiln_store_stats(&st, "team-a", &s, NULL));
    CHECK_EQ(s.profiles, 1);
    CHECK_EQ(s.min_time_ms, T0_NS / 1000000);
    /* Without a client id every push gets a fresh non-zero id. */
    CHECK_EQ(connect_push(&e, "team-a", "", &resp), 200);
    c = fake_store_last(&e.fake, "append");
    CHECK(c != NULL && c->ids[0] != 0 && c->ids[0] != kiln_profile_id_key("team-a", ""));
    kiln_buf_free(&resp);
    env_close(&e);
}

/* Each store status reaches a Connect client as its own code. */
TEST(push_maps_store_statuses)
{
    env e;
    if (!env_open(&e))
        return;
    static const struct {
        kiln_status st;
        int http;
        const char *code;
    } cases[] = {
        {KILN_RESOURCE_EXHAUSTED, 429, "\"resource_exhausted\""},
        {KILN_UNAVAILABLE, 503, "\"unavailable\""},
        {KILN_FAILED_PRECONDITION, 400, "\"failed_precondition\""},
        {KILN_INTERNAL, 500, "\"internal\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_store_fail_next(&e.fake, cases[i].st, "the store says no");
        kiln_buf resp;
        kiln_buf_init(&resp, 0);
        int status = connect_push(&e, "team-a", "id-x", &resp);
        kiln_buf_putc(&resp, '\0');
        printf("  store %s -> HTTP %d %s\n", kiln_status_str(cases[i].st), status, resp.ptr);
        CHECK_EQ(status, cases[i].http);
        CHECK(strstr(resp.ptr, cases[i].code) != NULL);
        CHECK(strstr(resp.ptr, "the store says no") != NULL);
        kiln_buf_free(&resp);
    }
    /* Nothing was stored by the refused pushes. */
    kiln_head_stats_t s;
    kiln_store_t st = fake_store_iface(&e.fake);
    CHECK_OK(kiln_store_stats(&st, "team-a", &s, NULL));
    CHECK_EQ(s.profiles, 0);
    env_close(&e);
}

/* POSTs folded stacks to /ingest for name; the HTTP status, body in resp. */
static int ingest_folded(const env *e, const char *name, kiln_buf *resp)
{
    char path[256];
    snprintf(path, sizeof(path), "/ingest?name=%s&from=1700000000&until=1700000010&format=folded",
             name);
    const char *body = "main;work 30\nmain;idle 10\n";
    return http_call(e->port, "POST", path, "X-Scope-OrgID: legacy\r\n", body, strlen(body), resp);
}

TEST(ingest_reaches_the_store_normalised)
{
    env e;
    if (!env_open(&e))
        return;
    CHECK_EQ(ingest_folded(&e, "shop.cpu%7Benv%3Dprod%7D", NULL), 200);
    const fake_store_call *c = fake_store_last(&e.fake, "append");
    CHECK(c != NULL);
    if (c != NULL) {
        printf("  /ingest labels: %s\n", c->labels[0]);
        CHECK_STR(c->tenant, "legacy");
        CHECK_EQ(c->n_parts, 1);
        CHECK(strstr(c->labels[0], "env=prod") != NULL);
        CHECK(strstr(c->labels[0], "service_name=shop") != NULL);
        CHECK(strstr(c->labels[0], "__delta__") == NULL); /* a marker, not stored */
        CHECK_EQ(c->time_ns[0], 1700000000LL * 1000000000);
        CHECK(c->ids[0] != 0);
    }
    /* The stored samples sum to what was sent: 40 samples at the default
     * 100 Hz are 0.4 s of CPU. */
    const char *q = "{service_name=\"shop\"}";
    kiln_selector_t *sel = NULL;
    CHECK_OK(kiln_selector_parse(q, strlen(q), &sel, NULL));
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {.sel = sel};
    kiln_read_visitor v = {.tree = t};
    kiln_store_t st = fake_store_iface(&e.fake);
    CHECK_OK(kiln_store_read(&st, "legacy", &f, &v, NULL));
    CHECK_EQ(kiln_tree_total(t), 40 * 10000000LL);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    env_close(&e);
}

/* Each store status reaches a legacy client as a plain HTTP status. */
TEST(ingest_maps_store_statuses)
{
    env e;
    if (!env_open(&e))
        return;
    static const struct {
        kiln_status st;
        int http;
    } cases[] = {
        {KILN_RESOURCE_EXHAUSTED, 429},
        {KILN_UNAVAILABLE, 503},
        {KILN_FAILED_PRECONDITION, 400},
        {KILN_INTERNAL, 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_store_fail_next(&e.fake, cases[i].st, "the store says no");
        kiln_buf resp;
        kiln_buf_init(&resp, 0);
        int status = ingest_folded(&e, "shop.cpu", &resp);
        kiln_buf_putc(&resp, '\0');
        printf("  store %s -> HTTP %d %s", kiln_status_str(cases[i].st), status, resp.ptr);
        CHECK_EQ(status, cases[i].http);
        CHECK(strstr(resp.ptr, "the store says no") != NULL);
        kiln_buf_free(&resp);
    }
    env_close(&e);
}

/* kiln_seen_keys_add_all answers as one kiln_seen_keys_add per key, in
 * order: a key twice in a batch, keys already held, 0, and eviction. */
TEST(seen_keys_add_all_is_adds_in_order)
{
    kiln_seen_keys_t *one = kiln_seen_keys_create(64), *all = kiln_seen_keys_create(64);
    uint64_t keys[200];
    bool got[200];
    for (size_t i = 0; i < 200; i++)
        keys[i] = i % 3 == 0 ? i / 3 : 1000 + i; /* repeats, and 0 (stored as 1) */
    for (size_t round = 0; round < 3; round++) {
        kiln_seen_keys_add_all(all, keys, 200, got);
        for (size_t i = 0; i < 200; i++)
            CHECK_EQ(got[i], kiln_seen_keys_add(one, keys[i]));
    }
    kiln_seen_keys_destroy(one);
    kiln_seen_keys_destroy(all);
}

int main(void)
{
    RUN(seen_keys_add_all_is_adds_in_order);
    RUN(push_reaches_the_store_normalised);
    RUN(push_maps_store_statuses);
    RUN(ingest_reaches_the_store_normalised);
    RUN(ingest_maps_store_statuses);
    return check_done();
}
