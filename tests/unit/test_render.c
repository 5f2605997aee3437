/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the legacy read routes (/pyroscope/render, label-values)
 * over a fake store (fake_store.h: real heads in memory), through the real
 * HTTP server: the flame graph and timeline come from what the store
 * holds, and a store that fails a read (data_loss) is the client's error
 * with Connect's JSON body and HTTP status, never a partial graph. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fake_store.h"
#include "http_client.h"
#include "http_server.h"
#include "querier.h"
#include "synth.h"

#define T0_S 1700000000LL

typedef struct env {
    fake_store fake;
    kiln_querier_t *q;
    kiln_http_server_t *http;
    int port;
} env;

/* Service api: pod p0 at T0 (3, "work") and T0 + 20 s (4, "work"), pod
 * p1 at T0 (5, "idle"). */
static void fill(kiln_store_t *store)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p[3];
    CHECK(synth_profile_leaf(a, 3, T0_S * 1000000000, "work", &p[0]));
    CHECK(synth_profile_leaf(a, 4, (T0_S + 20) * 1000000000, "work", &p[1]));
    CHECK(synth_profile_leaf(a, 5, T0_S * 1000000000, "idle", &p[2]));
    kiln_label_t l0[] = {{"__name__", "process_cpu"}, {"pod", "p0"}, {"service_name", "api"}};
    kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"pod", "p1"}, {"service_name", "api"}};
    kiln_head_part parts[] = {{l0, 3, &p[0], 1}, {l0, 3, &p[1], 2}, {l1, 3, &p[2], 3}};
    CHECK_OK(kiln_store_append(store, "t", parts, 3, NULL));
    kiln_arena_destroy(a);
}

static bool env_open(env *e)
{
    fake_store_init(&e->fake);
    kiln_store_t store = fake_store_iface(&e->fake);
    fill(&store);
    kiln_querier_config qc = {.store = store};
    e->q = kiln_querier_create(&qc);
    kiln_http_config hc = {.address = "127.0.0.1", .port = 0, .threads = 2, .max_body = 1u << 20};
    e->http = kiln_http_server_create(&hc);
    kiln_querier_register_http(e->q, e->http);
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_http_server_start(e->http, &err);
    CHECK_OK(st);
    e->port = kiln_http_server_port(e->http);
    return st == KILN_OK;
}

static void env_close(env *e)
{
    kiln_http_server_destroy(e->http);
    kiln_querier_destroy(e->q);
    fake_store_fini(&e->fake);
}

/* GETs path as tenant t; the status, the body NUL-terminated in out. */
static int get(const env *e, const char *path, kiln_buf *out)
{
    kiln_buf_init(out, 0);
    int status = http_call(e->port, "GET", path, "X-Scope-OrgID: t\r\n", "", 0, out);
    kiln_buf_putc(out, '\0');
    return status;
}

#define RENDER                                                                                     \
    "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7Bservice_name%3D%22api"  \
    "%22%7D&from=1699999990&until=1700000030&format=json"

TEST(render_reads_the_store)
{
    env e;
    if (!env_open(&e))
        return;
    kiln_buf b;
    CHECK_EQ(get(&e, RENDER, &b), 200);
    printf("  %.300s...\n", b.ptr);
    CHECK(strstr(b.ptr, "\"numTicks\":12") != NULL); /* 3 + 4 + 5 */
    CHECK(strstr(b.ptr, "\"names\":[") != NULL);
    CHECK(strstr(b.ptr, "\"work\"") != NULL && strstr(b.ptr, "\"idle\"") != NULL);
    /* 10 s steps from 1699999980: 3 + 5 at T0, 4 at T0 + 20 s. */
    CHECK(strstr(b.ptr, "\"timeline\":{\"startTime\":1699999980,\"samples\":[0,8,4]") != NULL);
    kiln_buf_free(&b);
    /* One pod only. */
    CHECK_EQ(get(&e,
                 "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7Bpod%3D%22"
                 "p1%22%7D&from=1699999990&until=1700000030&format=json",
                 &b),
             200);
    CHECK(strstr(b.ptr, "\"numTicks\":5") != NULL);
    kiln_buf_free(&b);
    CHECK_EQ(get(&e, "/pyroscope/label-values?label=pod", &b), 200);
    CHECK_STR(b.ptr, "[\"p0\",\"p1\"]\n");
    kiln_buf_free(&b);
    env_close(&e);
}

TEST(store_failure_is_the_clients_error)
{
    env e;
    if (!env_open(&e))
        return;
    kiln_buf b;
    fake_store_fail_next(&e.fake, KILN_DATA_LOSS, "chunk 3 does not load");
    int status = get(&e, RENDER, &b);
    printf("  render: %d %s\n", status, b.ptr);
    CHECK_EQ(status, 500);
    CHECK(strstr(b.ptr, "\"data_loss\"") != NULL);
    CHECK(strstr(b.ptr, "chunk 3 does not load") != NULL);
    CHECK(strstr(b.ptr, "numTicks") == NULL);
    kiln_buf_free(&b);
    fake_store_fail_next(&e.fake, KILN_UNAVAILABLE, "2 of 3 ingesters did not answer");
    status = get(&e, "/pyroscope/label-values?label=pod", &b);
    printf("  label-values: %d %s\n", status, b.ptr);
    CHECK_EQ(status, 503);
    CHECK(strstr(b.ptr, "did not answer") != NULL);
    kiln_buf_free(&b);
    env_close(&e);
}

int main(void)
{
    RUN(render_reads_the_store);
    RUN(store_failure_is_the_clients_error);
    return check_done();
}
