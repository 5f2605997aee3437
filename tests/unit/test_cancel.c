/* SPDX-License-Identifier: Apache-2.0
 * cancel and query_pool: query deadlines, cancellation reaching the head's
 * scans, and the query pool's per-tenant admission and draining. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "cancel.h"
#include "profiles.h"
#include "query_pool.h"
#include "tree.h"

TEST(token_reasons)
{
    kiln_cancel_t c;
    kiln_cancel_init(&c, 0);
    CHECK_EQ(kiln_cancel_check(&c), KILN_OK);
    kiln_cancel_set(&c, KILN_CANCELLED);
    kiln_cancel_set(&c, KILN_DEADLINE_EXCEEDED); /* the first reason wins */
    CHECK_EQ(kiln_cancel_check(&c), KILN_CANCELLED);
    CHECK_EQ(kiln_cancel_check(NULL), KILN_OK);

    kiln_cancel_init(&c, kiln_cancel_now() - 1);
    CHECK_EQ(kiln_cancel_check(&c), KILN_DEADLINE_EXCEEDED);

    kiln_cancel_init(&c, 0);
    kiln_cancel_shutdown();
    CHECK_EQ(kiln_cancel_check(&c), KILN_CANCELLED);
    kiln_cancel_reset_shutdown();
}

static bool gone_after_two(void *arg)
{
    int *calls = arg;
    return ++*calls >= 2;
}

TEST(poll_sees_deadline_and_probe)
{
    kiln_cancel_t c;
    kiln_cancel_init(&c, kiln_cancel_now() + 30 * 1000000LL);
    CHECK(!kiln_cancel_poll()); /* nothing bound */
    kiln_cancel_bind(&c);
    CHECK(kiln_cancel_current() == &c);
    size_t polls = 0;
    int64_t until = kiln_cancel_now() + 5000000000LL; /* bounded: 5 s */
    while (!kiln_cancel_poll() && kiln_cancel_now() < until)
        polls++;
    CHECK_EQ(atomic_load(&c.why), KILN_DEADLINE_EXCEEDED);
    printf("  deadline seen after %zu polls\n", polls);

    int calls = 0;
    kiln_cancel_init(&c, 0);
    c.gone = gone_after_two;
    c.gone_arg = &calls;
    until = kiln_cancel_now() + 5000000000LL;
    while (!kiln_cancel_poll() && kiln_cancel_now() < until)
        ;
    CHECK_EQ(atomic_load(&c.why), KILN_CANCELLED);
    CHECK_EQ(calls, 2); /* the probe is rate-limited, not called per poll */
    kiln_cancel_bind(NULL);
    CHECK(kiln_cancel_current() == NULL);
}

/* A query's calls to ingesters get its remaining time when shorter. */
TEST(timeout_for_calls)
{
    CHECK_EQ(kiln_cancel_timeout_ms(10000), 10000); /* nothing bound */
    kiln_cancel_t c;
    kiln_cancel_init(&c, kiln_cancel_now() + 2000 * 1000000LL);
    kiln_cancel_bind(&c);
    int64_t ms = kiln_cancel_timeout_ms(10000);
    CHECK(ms > 1000 && ms <= 2000);
    CHECK_EQ(kiln_cancel_timeout_ms(500), 500);
    kiln_cancel_init(&c, kiln_cancel_now() - 1);
    CHECK_EQ(kiln_cancel_timeout_ms(500), 1);
    kiln_cancel_init(&c, 0);
    CHECK_EQ(kiln_cancel_timeout_ms(500), 500);
    kiln_cancel_bind(NULL);
}

static void count_series(void *ctx, const kiln_label_t *l, size_t n)
{
    (void)l, (void)n;
    (*(size_t *)ctx)++;
}

/* A cancelled query's reads stop and say so: no series visited, nothing
 * merged, KILN_CANCELLED. */
TEST(head_scans_stop_when_cancelled)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    kiln_head_t *h = kiln_head_create();
    for (int i = 0; i < 50; i++) {
        char v[16];
        snprintf(v, sizeof(v), "i%d", i);
        kiln_label_t l[] = {{"__name__", "process_cpu"}, {"pod", v}, {"service_name", "api"}};
        check_head_append(h, l, 3, &p, 0, 0);
    }
    const char *q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}";
    size_t live = 0, stopped = 0;
    check_head_series(h, NULL, 0, 0, count_series, &live);
    int64_t total = check_head_total(h, q);

    kiln_cancel_t c;
    kiln_cancel_init(&c, 0);
    kiln_cancel_set(&c, KILN_CANCELLED);
    kiln_cancel_bind(&c);
    kiln_read_filter f = {0};
    kiln_read_visitor sv = {.series = count_series, .ctx = &stopped};
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(kiln_head_read(h, &f, &sv, &err), KILN_CANCELLED);
    kiln_tree_t *t = kiln_tree_create();
    CHECK_EQ(check_head_merge_st(h, NULL, 0, 0, NULL, 0, NULL, 0, t), KILN_CANCELLED);
    int64_t cancelled_total = kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_cancel_bind(NULL);
    CHECK_EQ(live, 100); /* two sample types per pod */
    CHECK_EQ(stopped, 0);
    CHECK(total > 0);
    CHECK_EQ(cancelled_total, 0);
    kiln_head_destroy(h);
    kiln_arena_destroy(a);
}

/* A cluster merge of an ingester's answer stops too. */
TEST(tree_merge_stops_when_cancelled)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_tree_t *src = kiln_tree_create();
    for (int i = 0; i < 100; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "f%d", i);
        kiln_tree_add_self(src, kiln_tree_child(src, KILN_TREE_ROOT, name, (size_t)n), 1);
    }
    Ingester__V1__TreeResponse *r = kiln_tree_to_response(src, a);
    kiln_tree_t *live = kiln_tree_create(), *stopped = kiln_tree_create();
    CHECK_OK(kiln_tree_merge_response(live, r, NULL));
    kiln_cancel_t c;
    kiln_cancel_init(&c, 0);
    kiln_cancel_set(&c, KILN_CANCELLED);
    kiln_cancel_bind(&c);
    CHECK_OK(kiln_tree_merge_response(stopped, r, NULL)); /* the server drops it */
    kiln_cancel_bind(NULL);
    CHECK_EQ(kiln_tree_total(live), 100);
    CHECK_EQ(kiln_tree_total(stopped), 0);
    kiln_tree_destroy(src);
    kiln_tree_destroy(live);
    kiln_tree_destroy(stopped);
    kiln_arena_destroy(a);
}

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int ran;
} gate;

static void wait_gate(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add(&g->ran, 1);
}

static kiln_overrides_t *limits_with(const char *yaml)
{
    kiln_limits d;
    memset(&d, 0, sizeof(d));
    d.max_query_parallelism = 3;
    kiln_overrides_t *o = kiln_overrides_create(&d);
    kiln_err err;
    CHECK_OK(kiln_overrides_load_text(o, yaml, strlen(yaml), &err));
    return o;
}

TEST(pool_tenant_limit)
{
    kiln_overrides_t *o = limits_with("overrides:\n  t:\n    max_query_parallelism: 2\n");
    kiln_query_pool_config cfg = {1, 16, o};
    kiln_query_pool_t *p = kiln_query_pool_create(&cfg);
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_query_pool_submit(p, "t", wait_gate, &g, &err));
    CHECK_OK(kiln_query_pool_submit(p, "t", wait_gate, &g, &err));
    CHECK_EQ(kiln_query_pool_submit(p, "t", wait_gate, &g, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK(strstr(err.msg, "max_query_parallelism=2") != NULL);
    CHECK_EQ(kiln_query_pool_submit(p, "u|t", wait_gate, &g, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK_OK(kiln_query_pool_submit(p, "u", wait_gate, &g, &err));  /* default 3 */
    CHECK_OK(kiln_query_pool_submit(p, NULL, wait_gate, &g, &err)); /* anonymous */
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_query_pool_metrics(p, &m);
    kiln_buf_putc(&m, '\0');
    CHECK(strstr(m.ptr, "kiln_queries_rejected_total{reason=\"max_query_parallelism\"} 2") != NULL);
    kiln_buf_free(&m);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    /* once t's queries ran, t is admitted again */
    for (int i = 0; i < 5000 && atomic_load(&g.ran) < 4; i++)
        usleep(1000);
    CHECK_EQ(atomic_load(&g.ran), 4);
    CHECK_OK(kiln_query_pool_submit(p, "t", wait_gate, &g, &err));
    kiln_query_pool_destroy(p); /* drains: the last job runs */
    CHECK_EQ(atomic_load(&g.ran), 5);
    kiln_overrides_destroy(o);
}

TEST(pool_queue_full_and_closed)
{
    kiln_query_pool_config cfg = {1, 1, NULL};
    kiln_query_pool_t *p = kiln_query_pool_create(&cfg);
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_query_pool_submit(p, "t", wait_gate, &g, &err));
    /* the worker may not have taken the first yet: fill the queue to 1 */
    kiln_status st = KILN_OK;
    int admitted = 1;
    for (int i = 0; i < 3 && st == KILN_OK; i++) {
        st = kiln_query_pool_submit(p, "t", wait_gate, &g, &err);
        admitted += st == KILN_OK;
    }
    CHECK_EQ(st, KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "queue full") != NULL);
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    kiln_query_pool_close(p);
    CHECK_EQ(atomic_load(&g.ran), admitted); /* close ran every admitted job */
    CHECK(admitted <= 2);
    CHECK_EQ(kiln_query_pool_submit(p, "t", wait_gate, &g, &err), KILN_UNAVAILABLE);
    kiln_query_pool_destroy(p);
}

int main(void)
{
    RUN(token_reasons);
    RUN(poll_sees_deadline_and_probe);
    RUN(timeout_for_calls);
    RUN(head_scans_stop_when_cancelled);
    RUN(tree_merge_stops_when_cancelled);
    RUN(pool_tenant_limit);
    RUN(pool_queue_full_and_closed);
    return check_done();
}
