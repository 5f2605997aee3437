/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the gRPC client against the real gRPC server module on
 * 127.0.0.1 (an ephemeral port) with a test method in the rpc registry.
 * The method takes and returns push.v1.RawSample: its ID says what to do
 * ("echo", "fail", "slow", "big") and the reply's ID is the tenant the
 * handler saw. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "check.h"
#include "grpc_client.h"
#include "grpc_server.h"
#include "metrics.h"
#include "push/v1/push.pb-c.h"
#include "rpc.h"

#define METHOD "/kiln.test.v1.TestService/Call"
#define BIG_LEN ((size_t)20 << 20)
#define SLOW_MS 1500

static char server_addr[64];
static kiln_grpc_client_t *client;
static kiln_rpc_registry_t *rpc;
static kiln_metrics_t *metrics;

/* Handlers of "meet" calls wait here for each other (meet_handlers). */
static pthread_mutex_t meet_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cv = PTHREAD_COND_INITIALIZER;
static int meet_arrived;

/* Counts this handler in and waits, at most MEET_WAIT_S, until MEET_N
 * handlers are in at once; true when they met. A bound, not a timing:
 * handlers that run one at a time never meet, however long they wait. */
#define MEET_N 2
#define MEET_WAIT_S 20
static bool meet_handlers(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += MEET_WAIT_S;
    pthread_mutex_lock(&meet_mu);
    meet_arrived++;
    pthread_cond_broadcast(&meet_cv);
    while (meet_arrived < MEET_N && pthread_cond_timedwait(&meet_cv, &meet_mu, &dl) == 0)
        ;
    bool met = meet_arrived >= MEET_N;
    pthread_mutex_unlock(&meet_mu);
    return met;
}

static uint8_t big_byte(size_t i)
{
    return (uint8_t)(i * 31 + (i >> 12));
}

static kiln_status on_call(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp)
{
    (void)svc;
    const Push__V1__RawSample *in = (const Push__V1__RawSample *)req;
    Push__V1__RawSample *out = kiln_arena_alloc(ctx->arena, sizeof(*out));
    push__v1__raw_sample__init(out);
    if (strcmp(in->id, "fail") == 0)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "quota of %s exceeded", ctx->tenant);
    if (strcmp(in->id, "empty") == 0) { /* all fields default: a 0-byte message */
        *resp = &out->base;
        return KILN_OK;
    }
    if (strcmp(in->id, "meet") == 0) {
        out->id = meet_handlers() ? "met" : "alone";
        *resp = &out->base;
        return KILN_OK;
    }
    if (strcmp(in->id, "slow") == 0) {
        struct timespec ts = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (strcmp(in->id, "big") == 0) {
        uint8_t *p = kiln_arena_alloc(ctx->arena, BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            p[i] = big_byte(i);
        out->raw_profile.data = p;
        out->raw_profile.len = BIG_LEN;
    } else {
        out->raw_profile = in->raw_profile;
    }
    out->id = kiln_arena_printf(ctx->arena, "%s", ctx->tenant);
    *resp = &out->base;
    return KILN_OK;
}

/* A serialized request (the caller frees it). */
static uint8_t *request(const char *what, const char *payload, size_t *len)
{
    Push__V1__RawSample m = PUSH__V1__RAW_SAMPLE__INIT;
    m.id = (char *)what;
    m.raw_profile.data = (uint8_t *)payload;
    m.raw_profile.len = strlen(payload);
    *len = push__v1__raw_sample__get_packed_size(&m);
    uint8_t *buf = malloc(*len ? *len : 1);
    push__v1__raw_sample__pack(&m, buf);
    return buf;
}

static kiln_grpc_call call_to(const char *addr, const char *method, const char *tenant,
                              const char *what, const char *payload)
{
    kiln_grpc_call c;
    memset(&c, 0, sizeof(c));
    c.addr = addr;
    c.method = method;
    c.tenant = tenant;
    c.req = request(what, payload, &c.req_len);
    return c;
}

static void call_free(kiln_grpc_call *c)
{
    free((void *)c->req);
    free(c->resp);
}

/* The decoded reply of a successful call, or NULL. */
static Push__V1__RawSample *reply(const kiln_grpc_call *c)
{
    if (c->err.code != KILN_OK || c->resp == NULL)
        return NULL;
    return push__v1__raw_sample__unpack(NULL, c->resp_len, c->resp);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

TEST(batch_of_concurrent_calls)
{
    enum { N = 8 };
    kiln_grpc_call calls[N];
    char payload[N][64], tenant[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(payload[i], sizeof(payload[i]), "payload-%d-%s", i, i % 2 ? "odd" : "even");
        snprintf(tenant[i], sizeof(tenant[i]), "team-%d", i);
        calls[i] = call_to(server_addr, METHOD, i == 0 ? NULL : tenant[i], "echo", payload[i]);
    }
    for (int round = 0; round < 2; round++) { /* the second batch reuses the channel */
        kiln_grpc_client_run(client, calls, N, 5000);
        for (int i = 0; i < N; i++) {
            CHECK_EQ(calls[i].err.code, KILN_OK);
            Push__V1__RawSample *r = reply(&calls[i]);
            CHECK(r != NULL);
            if (r == NULL) {
                printf("  call %d: %s\n", i, calls[i].err.msg);
                continue;
            }
            CHECK(r->raw_profile.len == strlen(payload[i]) &&
                  memcmp(r->raw_profile.data, payload[i], r->raw_profile.len) == 0);
            CHECK_STR(r->id, i == 0 ? "anonymous" : tenant[i]);
            push__v1__raw_sample__free_unpacked(r, NULL);
            free(calls[i].resp);
            calls[i].resp = NULL;
        }
    }
    for (int i = 0; i < N; i++)
        call_free(&calls[i]);
}

/* The calls of one connection (the client's one channel to the server),
 * which gRPC hands all to one completion queue, still run side by side:
 * on the server's handler pool, not on the queue's one worker. */
TEST(calls_of_one_connection_run_side_by_side)
{
    kiln_grpc_call c[MEET_N];
    pthread_mutex_lock(&meet_mu);
    meet_arrived = 0;
    pthread_mutex_unlock(&meet_mu);
    for (int i = 0; i < MEET_N; i++)
        c[i] = call_to(server_addr, METHOD, "t", "meet", "x");
    kiln_grpc_client_run(client, c, MEET_N, (MEET_N * MEET_WAIT_S + 10) * 1000);
    for (int i = 0; i < MEET_N; i++) {
        CHECK_EQ(c[i].err.code, KILN_OK);
        Push__V1__RawSample *r = reply(&c[i]);
        CHECK(r != NULL);
        if (r != NULL) {
            CHECK_STR(r->id, "met");
            push__v1__raw_sample__free_unpacked(r, NULL);
        }
        call_free(&c[i]);
    }
}

TEST(server_error_code_and_message)
{
    kiln_grpc_call c[2] = {call_to(server_addr, METHOD, "team-x", "fail", ""),
                           call_to(server_addr, METHOD, "a/b", "echo", "x")};
    kiln_grpc_client_run(client, c, 2, 5000);
    CHECK_EQ(c[0].err.code, KILN_RESOURCE_EXHAUSTED);
    CHECK_STR(c[0].err.msg, "quota of team-x exceeded");
    CHECK(c[0].resp == NULL);
    CHECK_EQ(c[1].err.code, KILN_INVALID_ARGUMENT); /* the server's tenant check */
    call_free(&c[0]);
    call_free(&c[1]);
}

TEST(unknown_method_is_unimplemented)
{
    kiln_grpc_call c = call_to(server_addr, "/kiln.test.v1.TestService/Nope", NULL, "echo", "x");
    kiln_grpc_client_run(client, &c, 1, 5000);
    CHECK_EQ(c.err.code, KILN_UNIMPLEMENTED);
    CHECK(strstr(c.err.msg, "Nope") != NULL);
    call_free(&c);
}

/* An address where nothing listens: a port bound, then closed. */
static void closed_port_addr(char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    snprintf(out, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
}

static int port_of(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    return colon != NULL ? (int)strtol(colon + 1, NULL, 10) : 0;
}

TEST(unreachable_fails_fast)
{
    char addr[64];
    closed_port_addr(addr, sizeof(addr));
    for (int attempt = 0; attempt < 2; attempt++) { /* a new channel, then a failed one */
        kiln_grpc_call c = call_to(addr, METHOD, NULL, "echo", "x");
        double t0 = now_ms();
        kiln_grpc_client_run(client, &c, 1, 5000);
        double dt = now_ms() - t0;
        printf("  unreachable %s attempt %d: %.1f ms: %s\n", addr, attempt, dt, c.err.msg);
        CHECK_EQ(c.err.code, KILN_UNAVAILABLE);
        CHECK(strncmp(c.err.msg, addr, strlen(addr)) == 0);
        CHECK(dt < 1000);
        call_free(&c);
    }
}

TEST(empty_response_is_not_null)
{
    kiln_grpc_call c = call_to(server_addr, METHOD, NULL, "empty", "");
    kiln_grpc_client_run(client, &c, 1, 5000);
    CHECK_EQ(c.err.code, KILN_OK);
    CHECK(c.resp != NULL);
    CHECK_EQ(c.resp_len, 0);
    call_free(&c);
}

/* A peer that refused connections and then listens is reached again, on
 * an idle machine well within the client's reconnect backoff cap of 2 s
 * (printed). The wait is bounded at 10 s but its length not asserted: a
 * bound on time fails on a busy machine, not on a broken client. */
TEST(peer_back_after_refusal)
{
    char addr[64];
    closed_port_addr(addr, sizeof(addr));
    kiln_grpc_call c = call_to(addr, METHOD, NULL, "echo", "x");
    kiln_grpc_client_run(client, &c, 1, 5000);
    CHECK_EQ(c.err.code, KILN_UNAVAILABLE);
    kiln_grpc_config cfg = {
        .address = "127.0.0.1", .port = port_of(addr), .threads = 1, .max_recv = (size_t)1 << 20};
    kiln_grpc_server_t *srv = kiln_grpc_server_create(&cfg, rpc, metrics);
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_grpc_server_start(srv, &err));
    double t0 = now_ms();
    int attempts = 0;
    do { /* bounded: 200 x 50 ms and the calls' own deadlines */
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        free(c.resp);
        kiln_grpc_client_run(client, &c, 1, 1000);
    } while (c.err.code != KILN_OK && ++attempts < 200 && now_ms() - t0 < 10000);
    printf("  reached again after %.0f ms (%d retries)\n", now_ms() - t0, attempts);
    CHECK_EQ(c.err.code, KILN_OK);
    call_free(&c);
    kiln_grpc_server_destroy(srv);
}

TEST(slow_handler_hits_deadline)
{
    kiln_grpc_call c = call_to(server_addr, METHOD, NULL, "slow", "x");
    double t0 = now_ms();
    kiln_grpc_client_run(client, &c, 1, 300);
    double dt = now_ms() - t0;
    printf("  deadline 300 ms: ended after %.1f ms: %s\n", dt, c.err.msg);
    CHECK_EQ(c.err.code, KILN_DEADLINE_EXCEEDED);
    CHECK(strncmp(c.err.msg, server_addr, strlen(server_addr)) == 0);
    CHECK(dt >= 290 && dt < SLOW_MS - 200);
    call_free(&c);
}

TEST(mixed_batch_ends_each_call_on_its_own)
{
    char dead[64];
    closed_port_addr(dead, sizeof(dead));
    kiln_grpc_call c[3] = {call_to(server_addr, METHOD, "t", "echo", "ok"),
                           call_to(dead, METHOD, "t", "echo", "x"),
                           call_to(server_addr, METHOD, "t", "fail", "x")};
    kiln_grpc_client_run(client, c, 3, 5000);
    CHECK_EQ(c[0].err.code, KILN_OK);
    CHECK(c[0].resp != NULL);
    CHECK_EQ(c[1].err.code, KILN_UNAVAILABLE);
    CHECK_EQ(c[2].err.code, KILN_RESOURCE_EXHAUSTED);
    for (int i = 0; i < 3; i++)
        call_free(&c[i]);
}

TEST(large_response)
{
    kiln_grpc_call c = call_to(server_addr, METHOD, NULL, "big", "");
    double t0 = now_ms();
    kiln_grpc_client_run(client, &c, 1, 20000);
    double dt = now_ms() - t0;
    CHECK_EQ(c.err.code, KILN_OK);
    Push__V1__RawSample *r = reply(&c);
    CHECK(r != NULL);
    if (r != NULL) {
        printf("  %zu-byte response in %.1f ms\n", c.resp_len, dt);
        CHECK_EQ(r->raw_profile.len, BIG_LEN);
        size_t bad = 0;
        for (size_t i = 0; i < r->raw_profile.len; i++)
            bad += r->raw_profile.data[i] != big_byte(i);
        CHECK_EQ(bad, 0);
        push__v1__raw_sample__free_unpacked(r, NULL);
    }
    call_free(&c);

    /* A client that caps responses at 1 MiB refuses it. */
    kiln_grpc_client_t *small = kiln_grpc_client_create((size_t)1 << 20);
    c = call_to(server_addr, METHOD, NULL, "big", "");
    kiln_grpc_client_run(small, &c, 1, 20000);
    CHECK_EQ(c.err.code, KILN_RESOURCE_EXHAUSTED);
    CHECK(c.resp == NULL);
    call_free(&c);
    kiln_grpc_client_destroy(small);
}

static void *batch_thread(void *arg)
{
    int *ok = arg;
    for (int round = 0; round < 20; round++) {
        kiln_grpc_call c[4];
        for (int i = 0; i < 4; i++)
            c[i] = call_to(server_addr, METHOD, "t", "echo", "threaded");
        kiln_grpc_client_run(client, c, 4, 5000);
        for (int i = 0; i < 4; i++) {
            *ok += c[i].err.code == KILN_OK && c[i].resp_len > 0;
            call_free(&c[i]);
        }
    }
    return NULL;
}

TEST(batches_from_several_threads)
{
    pthread_t t[3];
    int ok[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, batch_thread, &ok[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(ok[0] + ok[1] + ok[2], 3 * 20 * 4);
}

/* A server of the test's own, so that the health of its address is the
 * test's alone. */
static kiln_grpc_server_t *own_server(char *addr, size_t cap)
{
    kiln_grpc_config cfg = {
        .address = "127.0.0.1", .port = 0, .threads = 4, .max_recv = (size_t)1 << 20};
    kiln_grpc_server_t *srv = kiln_grpc_server_create(&cfg, rpc, metrics);
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_grpc_server_start(srv, &err));
    snprintf(addr, cap, "127.0.0.1:%d", kiln_grpc_server_port(srv));
    return srv;
}

/* A timeout makes a peer suspect until it answers again. */
TEST(timeout_makes_a_peer_suspect_until_it_answers)
{
    char addr[64];
    kiln_grpc_server_t *srv = own_server(addr, sizeof(addr));
    CHECK_EQ(kiln_grpc_client_peer(client, addr), KILN_GRPC_PEER_OK);
    kiln_grpc_call c = call_to(addr, METHOD, NULL, "slow", "x");
    kiln_grpc_client_run(client, &c, 1, 300);
    CHECK_EQ(c.err.code, KILN_DEADLINE_EXCEEDED);
    CHECK_EQ(kiln_grpc_client_peer(client, addr), KILN_GRPC_PEER_SUSPECT);
    call_free(&c);

    /* A call running to it leaves it suspect; its answer clears it. */
    c = call_to(addr, METHOD, NULL, "slow", "x");
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(client, &c, 1, 5000);
    CHECK_EQ(kiln_grpc_client_peer(client, addr), KILN_GRPC_PEER_SUSPECT);
    CHECK_EQ(kiln_grpc_batch_next(b), 0);
    CHECK_EQ(kiln_grpc_batch_next(b), KILN_GRPC_BATCH_DONE);
    kiln_grpc_batch_end(b);
    CHECK_EQ(c.err.code, KILN_OK);
    CHECK_EQ(kiln_grpc_client_peer(client, addr), KILN_GRPC_PEER_OK);
    call_free(&c);
    /* The first slow handler ended before the second: none is running. */
    kiln_grpc_server_destroy(srv);
}

/* A peer frozen (SIGSTOP) with its connection up: the kernel took the
 * connection and the server's SETTINGS went out, then nothing. */
typedef struct frozen_peer {
    int lfd, conns[8], n;
    pthread_t th;
    char addr[64];
} frozen_peer;

static void *frozen_accept(void *arg)
{
    frozen_peer *f = arg;
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0}; /* empty SETTINGS */
    while (f->n < 8) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (write(fd, settings, sizeof(settings)) != (ssize_t)sizeof(settings)) {
            close(fd);
            continue;
        }
        f->conns[f->n++] = fd;
    }
    return NULL;
}

static void frozen_start(frozen_peer *f)
{
    memset(f, 0, sizeof(*f));
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    CHECK(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(f->lfd, 16) == 0);
    getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    pthread_create(&f->th, NULL, frozen_accept, f);
}

/* Closes the listener and every connection (their calls fail at once). */
static void frozen_stop(frozen_peer *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    close(f->lfd);
    for (int i = 0; i < f->n; i++)
        close(f->conns[i]);
}

/* A caller takes the calls that ended and goes on without the one to a
 * frozen peer, whose memory it frees at once: the call runs on with its
 * own copies. */
TEST(batch_goes_on_without_a_slow_call)
{
    char addr[64];
    kiln_grpc_server_t *srv = own_server(addr, sizeof(addr));
    frozen_peer f;
    frozen_start(&f);
    char tenant[16] = "team-b";
    kiln_grpc_call c[3] = {call_to(f.addr, METHOD, tenant, "echo", "a"),
                           call_to(addr, METHOD, tenant, "echo", "b"),
                           call_to(addr, METHOD, tenant, "echo", "c")};
    double t0 = now_ms();
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(client, c, 3, 5000);
    unsigned got = 0, ok = 0;
    for (int k = 0; k < 3 && ok < 2; k++) {
        size_t i = kiln_grpc_batch_next(b);
        if (i == KILN_GRPC_BATCH_DONE)
            break;
        got |= 1u << i;
        ok += c[i].err.code == KILN_OK && c[i].resp != NULL;
    }
    kiln_grpc_batch_end(b);
    printf(
        "  2 of 3 calls answered and the batch ended after %.1f ms (the third's peer is frozen)\n",
        now_ms() - t0);
    CHECK_EQ(got, 6u);
    CHECK_EQ(ok, 2u);
    CHECK_EQ(c[0].err.code, KILN_CANCELLED);
    CHECK(strstr(c[0].err.msg, "not waited for") != NULL);
    CHECK(c[0].resp == NULL);
    for (int i = 0; i < 3; i++)
        call_free(&c[i]);
    memset(c, 0xa5, sizeof(c));
    memset(tenant, 0xa5, sizeof(tenant));
    /* Its connection closed, the call left running fails in the background. */
    frozen_stop(&f);
    kiln_grpc_server_destroy(srv);
}

/* A frozen peer's calls end at their deadline and make it suspect; with
 * KILN_GRPC_SUSPECT_MAX_CALLS calls to it running it is saturated; calls
 * left running do not hold their caller; refused connections later leave
 * it suspect. */
TEST(frozen_peer_turns_suspect_then_saturated)
{
    frozen_peer f;
    frozen_start(&f);
    kiln_grpc_call c = call_to(f.addr, METHOD, "t", "echo", "x");
    double t0 = now_ms();
    kiln_grpc_client_run(client, &c, 1, 500);
    printf("  frozen peer, deadline 500 ms: ended after %.1f ms: %s\n", now_ms() - t0, c.err.msg);
    CHECK_EQ(c.err.code, KILN_DEADLINE_EXCEEDED);
    CHECK_EQ(kiln_grpc_client_peer(client, f.addr), KILN_GRPC_PEER_SUSPECT);
    call_free(&c);

    enum { N = KILN_GRPC_SUSPECT_MAX_CALLS };
    static kiln_grpc_call many[N];
    for (int i = 0; i < N; i++)
        many[i] = call_to(f.addr, METHOD, "t", "echo", "x");
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(client, many, N - 1, 60000);
    CHECK_EQ(kiln_grpc_client_peer(client, f.addr), KILN_GRPC_PEER_SUSPECT);
    kiln_grpc_batch_t *last = kiln_grpc_batch_start(client, many + N - 1, 1, 60000);
    CHECK_EQ(kiln_grpc_client_peer(client, f.addr), KILN_GRPC_PEER_SATURATED);
    t0 = now_ms();
    kiln_grpc_batch_end(b);
    kiln_grpc_batch_end(last);
    printf("  %d calls to it left running in %.2f ms\n", N, now_ms() - t0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(many[i].err.code, KILN_CANCELLED);
        call_free(&many[i]);
    }
    frozen_stop(&f);
    c = call_to(f.addr, METHOD, "t", "echo", "x");
    kiln_grpc_client_run(client, &c, 1, 5000);
    CHECK_EQ(c.err.code, KILN_UNAVAILABLE);
    CHECK(kiln_grpc_client_peer(client, f.addr) != KILN_GRPC_PEER_OK);
    call_free(&c);
}

/* Destroying the client cancels the calls left running: a peer that does
 * not answer does not hold a shutdown until the deadline. */
TEST(destroy_cancels_calls_left_running)
{
    frozen_peer f;
    frozen_start(&f);
    kiln_grpc_client_t *own = kiln_grpc_client_create(0);
    kiln_grpc_call c[2] = {call_to(f.addr, METHOD, "t", "echo", "x"),
                           call_to(f.addr, METHOD, "t", "echo", "y")};
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(own, c, 2, 60000);
    kiln_grpc_batch_end(b);
    CHECK_EQ(c[0].err.code, KILN_CANCELLED);
    CHECK_EQ(c[1].err.code, KILN_CANCELLED);
    call_free(&c[0]);
    call_free(&c[1]);
    double t0 = now_ms();
    kiln_grpc_client_destroy(own);
    printf("  client with 2 calls left running (deadline 60 s) destroyed in %.1f ms\n",
           now_ms() - t0);
    frozen_stop(&f);
}

/* A peer whose process is stopped: its kernel accepts the connection and
 * nothing answers. The call ends by its deadline at the latest. */
static void *cancel_later(void *arg)
{
    usleep(100 * 1000);
    kiln_cancel_set(arg, KILN_CANCELLED);
    return NULL;
}

/* A query whose client goes away while it waits on a frozen ingester: the
 * calls are cancelled then, not left to their (here 60 s) deadline. */
TEST(a_query_ending_cancels_its_calls)
{
    frozen_peer f;
    frozen_start(&f);
    kiln_cancel_t token;
    kiln_cancel_init(&token, 0);
    kiln_cancel_bind(&token);
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, &token);
    kiln_grpc_call c = call_to(f.addr, METHOD, NULL, "echo", "x");
    double t0 = now_ms();
    kiln_grpc_client_run(client, &c, 1, 60000);
    printf("  frozen peer, query cancelled after 100 ms: ended after %.1f ms: %s\n", now_ms() - t0,
           c.err.msg);
    kiln_cancel_bind(NULL);
    pthread_join(th, NULL);
    CHECK_EQ(c.err.code, KILN_CANCELLED);
    call_free(&c);
    frozen_stop(&f);
}

TEST(silent_peer_ends_by_the_deadline)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(fd, 16) == 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    kiln_grpc_call c = call_to(addr, METHOD, NULL, "echo", "x");
    double t0 = now_ms();
    kiln_grpc_client_run(client, &c, 1, 1000);
    printf("  silent peer, deadline 1000 ms: ended after %.1f ms: %s\n", now_ms() - t0, c.err.msg);
    CHECK(c.err.code == KILN_DEADLINE_EXCEEDED || c.err.code == KILN_UNAVAILABLE);
    call_free(&c);
    close(fd);
}

int main(void)
{
    metrics = kiln_metrics_create();
    rpc = kiln_rpc_registry_create();
    kiln_rpc_method m = {METHOD,
                         &push__v1__raw_sample__descriptor,
                         &push__v1__raw_sample__descriptor,
                         on_call,
                         NULL,
                         KILN_RPC_PUBLIC,
                         NULL};
    kiln_rpc_register(rpc, &m);
    kiln_grpc_config cfg = {
        .address = "127.0.0.1", .port = 0, .threads = 4, .max_recv = (size_t)64 << 20};
    kiln_grpc_server_t *srv = kiln_grpc_server_create(&cfg, rpc, metrics);
    kiln_err err = {KILN_OK, ""};
    if (kiln_grpc_server_start(srv, &err) != KILN_OK) {
        printf("cannot start the server: %s\n", err.msg);
        return 1;
    }
    snprintf(server_addr, sizeof(server_addr), "127.0.0.1:%d", kiln_grpc_server_port(srv));
    client = kiln_grpc_client_create(0);

    RUN(batch_of_concurrent_calls);
    RUN(calls_of_one_connection_run_side_by_side);
    RUN(server_error_code_and_message);
    RUN(unknown_method_is_unimplemented);
    RUN(unreachable_fails_fast);
    RUN(empty_response_is_not_null);
    RUN(peer_back_after_refusal);
    RUN(slow_handler_hits_deadline);
    RUN(mixed_batch_ends_each_call_on_its_own);
    RUN(large_response);
    RUN(batches_from_several_threads);
    RUN(batch_goes_on_without_a_slow_call);
    RUN(timeout_makes_a_peer_suspect_until_it_answers);
    RUN(frozen_peer_turns_suspect_then_saturated);
    RUN(destroy_cancels_calls_left_running);
    RUN(silent_peer_ends_by_the_deadline);
    RUN(a_query_ending_cancels_its_calls);

    kiln_grpc_client_destroy(client);
    kiln_grpc_server_destroy(srv);
    kiln_rpc_registry_destroy(rpc);
    kiln_metrics_destroy(metrics);
    return check_done();
}
