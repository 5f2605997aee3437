/* SPDX-License-Identifier: Apache-2.0
 * query_pool: a FIFO of query jobs served by a fixed set of threads, and
 * the per-tenant count of queries admitted (running or queued). */
#include "query_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "xmalloc.h"

typedef struct job {
    kiln_query_job_fn fn;
    void *arg;
    char *tenant; /* the header value, counted until the job returns */
    struct job *next;
} job;

typedef struct tenant_count {
    char *tenant;
    size_t n;
} tenant_count;

/* A worker: its thread, and its own wake-up, so that a job wakes the
 * worker idle the shortest time (LIFO). A condition variable shared by all
 * would wake them in turn: every job would run on a thread whose stack,
 * caches and malloc arena went cold meanwhile, which cost the gRPC server's
 * handler pool a quarter more CPU per export (page faults in malloc). */
typedef struct worker {
    kiln_query_pool_t *pool;
    pthread_t thread;
    pthread_cond_t cv;
    bool woken; /* taken off the idle stack by a submit */
} worker;

struct kiln_query_pool {
    kiln_query_pool_config cfg;
    worker *workers;
    worker **idle; /* stack of waiting workers, the last one to wait on top */
    size_t n_idle;
    pthread_mutex_t mu;
    job *head, *tail;
    size_t queued, running;
    bool closing, joined;
    tenant_count *tc; /* tenants with queries admitted; few: linear search */
    size_t n_tc, cap_tc;
    uint64_t ended_cancelled, ended_deadline, rejected_limit, rejected_full;
};

static tenant_count *find_tenant(kiln_query_pool_t *p, const char *t, bool add)
{
    for (size_t i = 0; i < p->n_tc; i++) {
        if (strcmp(p->tc[i].tenant, t) == 0)
            return &p->tc[i];
    }
    if (!add)
        return NULL;
    KILN_GROW(p->tc, p->cap_tc, p->n_tc + 1);
    p->tc[p->n_tc] = (tenant_count){kiln_xstrdup(t), 0};
    return &p->tc[p->n_tc++];
}

/* Adds delta to the count of each tenant of hdr ("a|b"); entries that reach
 * zero are dropped. The caller holds mu. */
static void count_tenants(kiln_query_pool_t *p, const char *hdr, int delta)
{
    char name[KILN_TENANT_MAX + 1];
    for (const char *s = hdr; kiln_tenants_next(&s, name);) {
        tenant_count *c = find_tenant(p, name, delta > 0);
        if (c != NULL) {
            c->n = delta > 0 ? c->n + 1 : c->n - 1;
            if (c->n == 0) {
                free(c->tenant);
                *c = p->tc[--p->n_tc];
            }
        }
    }
}

/* The first tenant of hdr at its limit, or KILN_OK. The caller holds mu. */
static kiln_status over_limit(kiln_query_pool_t *p, const char *hdr, kiln_err *err)
{
    if (p->cfg.limits == NULL)
        return KILN_OK;
    char name[KILN_TENANT_MAX + 1];
    for (const char *s = hdr; kiln_tenants_next(&s, name);) {
        size_t max = kiln_overrides_get(p->cfg.limits, name)->max_query_parallelism;
        tenant_count *c = find_tenant(p, name, false);
        if (max != 0 && c != NULL && c->n >= max)
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                                "too many concurrent queries for tenant %s: limit "
                                "max_query_parallelism=%zu reached; retry later",
                                name, max);
    }
    return KILN_OK;
}

/* Waits on the idle stack until a submit wakes this worker or the pool
 * closes. The caller holds mu. */
static void wait_idle(kiln_query_pool_t *p, worker *w)
{
    w->woken = false;
    p->idle[p->n_idle++] = w;
    while (!w->woken && !p->closing)
        pthread_cond_wait(&w->cv, &p->mu);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    kiln_query_pool_t *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->closing)
            wait_idle(p, w);
        job *j = p->head;
        if (j == NULL)
            break; /* closing and drained */
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
        count_tenants(p, j->tenant, -1);
        free(j->tenant);
        free(j);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Wakes the worker that went idle last, if any is. The caller holds mu. A
 * worker woken for a job another one took first waits again. */
static void wake_one(kiln_query_pool_t *p)
{
    if (p->n_idle == 0)
        return; /* all busy: each looks at the queue before it waits */
    worker *w = p->idle[--p->n_idle];
    w->woken = true;
    pthread_cond_signal(&w->cv);
}

kiln_query_pool_t *kiln_query_pool_create(const kiln_query_pool_config *cfg)
{
    kiln_query_pool_t *p = kiln_xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    if (p->cfg.threads < 1)
        p->cfg.threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    p->workers = kiln_xcalloc((size_t)p->cfg.threads, sizeof(worker));
    p->idle = kiln_xcalloc((size_t)p->cfg.threads, sizeof(worker *));
    for (int i = 0; i < p->cfg.threads; i++) {
        p->workers[i].pool = p;
        pthread_cond_init(&p->workers[i].cv, NULL);
    }
    for (int i = 0; i < p->cfg.threads; i++)
        pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
    return p;
}

kiln_status kiln_query_pool_submit(kiln_query_pool_t *p, const char *tenant, kiln_query_job_fn fn,
                                   void *arg, kiln_err *err)
{
    if (tenant == NULL || *tenant == '\0')
        tenant = KILN_TENANT_DEFAULT;
    kiln_status st = KILN_OK;
    pthread_mutex_lock(&p->mu);
    if (p->closing)
        st = kiln_err_set(err, KILN_UNAVAILABLE, "shutting down");
    else if (p->queued >= p->cfg.max_queued) {
        p->rejected_full++;
        st = kiln_err_set(err, KILN_UNAVAILABLE,
                          "query queue full (%zu queued, %d running); retry later", p->queued,
                          p->cfg.threads);
    } else if ((st = over_limit(p, tenant, err)) != KILN_OK) {
        p->rejected_limit++;
    } else {
        job *j = kiln_xcalloc(1, sizeof(*j));
        *j = (job){fn, arg, kiln_xstrdup(tenant), NULL};
        count_tenants(p, tenant, +1);
        if (p->tail != NULL)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
        wake_one(p);
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

void kiln_query_pool_ended(kiln_query_pool_t *p, kiln_status st)
{
    if (st != KILN_CANCELLED && st != KILN_DEADLINE_EXCEEDED)
        return;
    pthread_mutex_lock(&p->mu);
    if (st == KILN_CANCELLED)
        p->ended_cancelled++;
    else
        p->ended_deadline++;
    pthread_mutex_unlock(&p->mu);
}

void kiln_query_pool_close(kiln_query_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    bool join = !p->joined;
    p->closing = true;
    p->joined = true;
    for (int i = 0; i < p->cfg.threads; i++)
        pthread_cond_signal(&p->workers[i].cv);
    pthread_mutex_unlock(&p->mu);
    if (!join)
        return;
    for (int i = 0; i < p->cfg.threads; i++)
        pthread_join(p->workers[i].thread, NULL);
}

void kiln_query_pool_destroy(kiln_query_pool_t *p)
{
    if (p == NULL)
        return;
    kiln_query_pool_close(p);
    for (size_t i = 0; i < p->n_tc; i++)
        free(p->tc[i].tenant);
    free(p->tc);
    for (int i = 0; i < p->cfg.threads; i++)
        pthread_cond_destroy(&p->workers[i].cv);
    free(p->workers);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void kiln_query_pool_metrics(kiln_query_pool_t *p, kiln_buf *out)
{
    pthread_mutex_lock(&p->mu);
    size_t running = p->running, queued = p->queued;
    uint64_t c = p->ended_cancelled, d = p->ended_deadline;
    uint64_t rl = p->rejected_limit, rf = p->rejected_full;
    pthread_mutex_unlock(&p->mu);
    kiln_buf_printf(out,
                    "# HELP kiln_query_pool_workers Query workers.\n"
                    "# TYPE kiln_query_pool_workers gauge\nkiln_query_pool_workers %d\n"
                    "# HELP kiln_query_pool_running Queries running on the query pool.\n"
                    "# TYPE kiln_query_pool_running gauge\nkiln_query_pool_running %zu\n"
                    "# HELP kiln_query_pool_queued Queries waiting for a query worker.\n"
                    "# TYPE kiln_query_pool_queued gauge\nkiln_query_pool_queued %zu\n",
                    p->cfg.threads, running, queued);
    kiln_buf_printf(out,
                    "# HELP kiln_queries_ended_total Queries stopped before they finished.\n"
                    "# TYPE kiln_queries_ended_total counter\n"
                    "kiln_queries_ended_total{reason=\"canceled\"} %llu\n"
                    "kiln_queries_ended_total{reason=\"deadline_exceeded\"} %llu\n"
                    "# HELP kiln_queries_rejected_total Queries refused at admission.\n"
                    "# TYPE kiln_queries_rejected_total counter\n"
                    "kiln_queries_rejected_total{reason=\"max_query_parallelism\"} %llu\n"
                    "kiln_queries_rejected_total{reason=\"queue_full\"} %llu\n",
                    (unsigned long long)c, (unsigned long long)d, (unsigned long long)rl,
                    (unsigned long long)rf);
}
