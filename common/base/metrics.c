/* SPDX-License-Identifier: Apache-2.0
 * metrics: small fixed-bucket histograms under one mutex (requests are
 * milliseconds long; a mutex per request is noise). */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof(buckets) / sizeof(buckets[0]))

typedef struct req_series {
    char *protocol, *method, *code;
    uint64_t count;
    double sum;
    uint64_t bucket[NB];
} req_series;

typedef struct tenant_series {
    char *tenant;
    uint64_t bytes, profiles;
} tenant_series;

typedef struct discard_series {
    char *tenant, *reason;
    uint64_t requests, bytes;
} discard_series;

struct kiln_metrics {
    pthread_mutex_t mu;
    discard_series *dis;
    size_t n_dis, cap_dis;
    req_series *req;
    size_t n_req, cap_req;
    tenant_series *ten;
    size_t n_ten, cap_ten;
    bool no_tenant; /* sum over tenants, render no tenant label */
};

void kiln_metrics_tenant_labels(kiln_metrics_t *m, bool on)
{
    m->no_tenant = !on;
}

/* The label set of a tenant's series: empty when tenant labels are off. */
static const char *tenant_label(const char *tenant, char *buf, size_t cap)
{
    if (*tenant == '\0')
        return "";
    snprintf(buf, cap, "tenant=\"%s\"", tenant);
    return buf;
}

kiln_metrics_t *kiln_metrics_create(void)
{
    kiln_metrics_t *m = kiln_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void kiln_metrics_destroy(kiln_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_req; i++) {
        free(m->req[i].protocol);
        free(m->req[i].method);
        free(m->req[i].code);
    }
    for (size_t i = 0; i < m->n_ten; i++)
        free(m->ten[i].tenant);
    for (size_t i = 0; i < m->n_dis; i++) {
        free(m->dis[i].tenant);
        free(m->dis[i].reason);
    }
    free(m->dis);
    free(m->req);
    free(m->ten);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static req_series *find_req(kiln_metrics_t *m, const char *p, const char *meth, const char *code)
{
    for (size_t i = 0; i < m->n_req; i++) {
        req_series *s = &m->req[i];
        if (strcmp(s->protocol, p) == 0 && strcmp(s->method, meth) == 0 &&
            strcmp(s->code, code) == 0)
            return s;
    }
    KILN_GROW(m->req, m->cap_req, m->n_req + 1);
    req_series *s = &m->req[m->n_req++];
    memset(s, 0, sizeof(*s));
    s->protocol = kiln_xstrdup(p);
    s->method = kiln_xstrdup(meth);
    s->code = kiln_xstrdup(code);
    return s;
}

void kiln_metrics_request(kiln_metrics_t *m, const char *protocol, const char *method,
                          const char *code, double seconds)
{
    pthread_mutex_lock(&m->mu);
    req_series *s = find_req(m, protocol, method, code);
    s->count++;
    s->sum += seconds;
    for (size_t i = 0; i < NB; i++) {
        if (seconds <= buckets[i])
            s->bucket[i]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void kiln_metrics_ingested(kiln_metrics_t *m, const char *tenant, uint64_t bytes, uint64_t profiles)
{
    if (m->no_tenant)
        tenant = "";
    pthread_mutex_lock(&m->mu);
    tenant_series *t = NULL;
    for (size_t i = 0; i < m->n_ten && t == NULL; i++) {
        if (strcmp(m->ten[i].tenant, tenant) == 0)
            t = &m->ten[i];
    }
    if (t == NULL) {
        KILN_GROW(m->ten, m->cap_ten, m->n_ten + 1);
        t = &m->ten[m->n_ten++];
        t->tenant = kiln_xstrdup(tenant);
        t->bytes = t->profiles = 0;
    }
    t->bytes += bytes;
    t->profiles += profiles;
    pthread_mutex_unlock(&m->mu);
}

void kiln_metrics_discarded(kiln_metrics_t *m, const char *tenant, const char *reason,
                            uint64_t bytes)
{
    if (m->no_tenant)
        tenant = "";
    pthread_mutex_lock(&m->mu);
    discard_series *d = NULL;
    for (size_t i = 0; i < m->n_dis && d == NULL; i++) {
        if (strcmp(m->dis[i].tenant, tenant) == 0 && strcmp(m->dis[i].reason, reason) == 0)
            d = &m->dis[i];
    }
    if (d == NULL) {
        KILN_GROW(m->dis, m->cap_dis, m->n_dis + 1);
        d = &m->dis[m->n_dis++];
        *d = (discard_series){kiln_xstrdup(tenant), kiln_xstrdup(reason), 0, 0};
    }
    d->requests++;
    d->bytes += bytes;
    pthread_mutex_unlock(&m->mu);
}

static void render_discarded(kiln_metrics_t *m, kiln_buf *out)
{
    kiln_buf_puts(out, "# HELP kiln_discarded_requests_total Ingest requests refused, by reason.\n"
                       "# TYPE kiln_discarded_requests_total counter\n");
    char lbl[256];
    for (size_t i = 0; i < m->n_dis; i++) {
        const char *t = tenant_label(m->dis[i].tenant, lbl, sizeof(lbl));
        kiln_buf_printf(out, "kiln_discarded_requests_total{reason=\"%s\"%s%s} %llu\n",
                        m->dis[i].reason, *t ? "," : "", t, (unsigned long long)m->dis[i].requests);
    }
    kiln_buf_puts(out, "# HELP kiln_discarded_bytes_total Bytes of refused ingest requests.\n"
                       "# TYPE kiln_discarded_bytes_total counter\n");
    for (size_t i = 0; i < m->n_dis; i++) {
        const char *t = tenant_label(m->dis[i].tenant, lbl, sizeof(lbl));
        kiln_buf_printf(out, "kiln_discarded_bytes_total{reason=\"%s\"%s%s} %llu\n",
                        m->dis[i].reason, *t ? "," : "", t, (unsigned long long)m->dis[i].bytes);
    }
    kiln_buf_printf(out,
                    "# HELP kiln_log_suppressed_total Rejection log lines suppressed by "
                    "sampling.\n# TYPE kiln_log_suppressed_total counter\n"
                    "kiln_log_suppressed_total %llu\n",
                    (unsigned long long)kiln_log_suppressed_total());
}

static void render_requests(kiln_metrics_t *m, kiln_buf *out)
{
    kiln_buf_puts(out, "# HELP kiln_request_duration_seconds Time to serve a request.\n"
                       "# TYPE kiln_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n_req; i++) {
        const req_series *s = &m->req[i];
        char lbl[512];
        snprintf(lbl, sizeof(lbl), "protocol=\"%s\",method=\"%s\",code=\"%s\"", s->protocol,
                 s->method, s->code);
        for (size_t b = 0; b < NB; b++)
            kiln_buf_printf(out, "kiln_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", lbl,
                            buckets[b], (unsigned long long)s->bucket[b]);
        kiln_buf_printf(out, "kiln_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", lbl,
                        (unsigned long long)s->count);
        kiln_buf_printf(out, "kiln_request_duration_seconds_sum{%s} %.6f\n", lbl, s->sum);
        kiln_buf_printf(out, "kiln_request_duration_seconds_count{%s} %llu\n", lbl,
                        (unsigned long long)s->count);
    }
    kiln_buf_puts(out, "# HELP kiln_requests_total Requests served.\n"
                       "# TYPE kiln_requests_total counter\n");
    for (size_t i = 0; i < m->n_req; i++) {
        const req_series *s = &m->req[i];
        kiln_buf_printf(out,
                        "kiln_requests_total{protocol=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                        s->protocol, s->method, s->code, (unsigned long long)s->count);
    }
}

void kiln_metrics_render(kiln_metrics_t *m, kiln_buf *out)
{
    char lbl[256];
    pthread_mutex_lock(&m->mu);
    render_requests(m, out);
    kiln_buf_puts(out, "# HELP kiln_ingested_bytes_total Profile bytes received.\n"
                       "# TYPE kiln_ingested_bytes_total counter\n");
    for (size_t i = 0; i < m->n_ten; i++)
        kiln_buf_printf(out, "kiln_ingested_bytes_total{%s} %llu\n",
                        tenant_label(m->ten[i].tenant, lbl, sizeof(lbl)),
                        (unsigned long long)m->ten[i].bytes);
    kiln_buf_puts(out, "# HELP kiln_ingested_profiles_total Profiles ingested.\n"
                       "# TYPE kiln_ingested_profiles_total counter\n");
    for (size_t i = 0; i < m->n_ten; i++)
        kiln_buf_printf(out, "kiln_ingested_profiles_total{%s} %llu\n",
                        tenant_label(m->ten[i].tenant, lbl, sizeof(lbl)),
                        (unsigned long long)m->ten[i].profiles);
    render_discarded(m, out);
    pthread_mutex_unlock(&m->mu);
}
