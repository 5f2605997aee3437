/* SPDX-License-Identifier: Apache-2.0
 * fake_store: an in-memory ingester interface (store.h) for the service
 * layer's unit tests. Appended parts go to a real head per tenant
 * (kiln_head_append_batch) and reads are answered by kiln_head_read over
 * the heads of the tenants read ("a|b"), so what a service reads back is
 * what the storage would give it. Every call is recorded (operation,
 * tenant, parts with their labels and ids), and the next call can be told
 * to fail with a given status, to test how a service maps it. Header-only;
 * thread-safe (one lock around every call). */
#ifndef KILN_TEST_FAKE_STORE_H
#define KILN_TEST_FAKE_STORE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "head.h"
#include "store.h"
#include "tenants.h"

#define FAKE_STORE_TENANTS 8
#define FAKE_STORE_CALLS 64
#define FAKE_STORE_PARTS 16

/** One recorded call. */
typedef struct fake_store_call {
    char op[8]; /* "append", "read", "stats" */
    char tenant[KILN_TENANT_MAX + 1];
    size_t n_parts; /* append: how many parts */
    /* append: the first FAKE_STORE_PARTS parts' labels, as
     * "name=value,name=value" (sorted as given), and push ids. */
    char labels[FAKE_STORE_PARTS][512];
    uint64_t ids[FAKE_STORE_PARTS];
    int64_t time_ns[FAKE_STORE_PARTS];
} fake_store_call;

typedef struct fake_store {
    pthread_mutex_t mu;
    char tenant[FAKE_STORE_TENANTS][KILN_TENANT_MAX + 1];
    kiln_head_t *head[FAKE_STORE_TENANTS];
    size_t n_tenants;
    fake_store_call calls[FAKE_STORE_CALLS]; /* the first FAKE_STORE_CALLS */
    size_t n_calls;                          /* every call, recorded or not */
    kiln_status fail_code;                   /* the next call's status (KILN_OK = none) */
    char fail_msg[KILN_ERR_MSG_MAX];
} fake_store;

/* The head of tenant; created when create is set, else NULL when none. */
static inline kiln_head_t *fake_store__head(fake_store *f, const char *tenant, bool create)
{
    for (size_t i = 0; i < f->n_tenants; i++) {
        if (strcmp(f->tenant[i], tenant) == 0)
            return f->head[i];
    }
    if (!create || f->n_tenants == FAKE_STORE_TENANTS)
        return NULL;
    snprintf(f->tenant[f->n_tenants], sizeof(f->tenant[0]), "%s", tenant);
    f->head[f->n_tenants] = kiln_head_create();
    return f->head[f->n_tenants++];
}

/* Records a call; returns the armed failure (clearing it) or KILN_OK. */
static inline kiln_status fake_store__enter(fake_store *f, const char *op, const char *tenant,
                                            const kiln_head_part *parts, size_t n, kiln_err *err)
{
    if (f->n_calls < FAKE_STORE_CALLS) {
        fake_store_call *c = &f->calls[f->n_calls];
        memset(c, 0, sizeof(*c));
        snprintf(c->op, sizeof(c->op), "%s", op);
        snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
        c->n_parts = n;
        for (size_t i = 0; i < n && i < FAKE_STORE_PARTS; i++) {
            size_t len = 0;
            for (size_t j = 0; j < parts[i].n_labels && len < sizeof(c->labels[i]); j++)
                len += (size_t)snprintf(c->labels[i] + len, sizeof(c->labels[i]) - len, "%s%s=%s",
                                        j ? "," : "", parts[i].labels[j].name,
                                        parts[i].labels[j].value);
            c->ids[i] = parts[i].id;
            c->time_ns[i] = parts[i].profile->time_nanos;
        }
    }
    f->n_calls++;
    kiln_status st = f->fail_code;
    if (st == KILN_OK)
        return KILN_OK;
    f->fail_code = KILN_OK;
    return kiln_err_set(err, st, "%s", f->fail_msg);
}

static inline kiln_status fake_store__append(void *self, const char *tenant,
                                             const kiln_head_part *parts, size_t n, kiln_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->mu);
    kiln_status st = fake_store__enter(f, "append", tenant, parts, n, err);
    kiln_head_t *h = st == KILN_OK ? fake_store__head(f, tenant, true) : NULL;
    if (h != NULL)
        kiln_head_append_batch(h, parts, n);
    else if (st == KILN_OK)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "fake_store: too many tenants");
    pthread_mutex_unlock(&f->mu);
    return st;
}

static inline kiln_status fake_store__read(void *self, const char *tenants,
                                           const kiln_read_filter *rf, const kiln_read_visitor *v,
                                           kiln_err *err)
{
    fake_store *f = self;
    pthread_mutex_lock(&f->mu);
    kiln_status st = fake_store__enter(f, "read", tenants, NULL, 0, err);
    char name[KILN_TENANT_MAX + 1];
    for (const char *p = tenants; st == KILN_OK && kiln_tenants_next(&p, name);) {
        kiln_head_t *h = fake_store__head(f, name, false);
        if (h != NULL)
            st = kiln_head_read(h, rf, v, err);
    }
    pthread_mutex_unlock(&f->mu);
    return st;
}

static inline kiln_status fake_store__stats(void *self, const char *tenants, kiln_head_stats_t *out,
                                            kiln_err *err)
{
    fake_store *f = self;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->mu);
    kiln_status st = fake_store__enter(f, "stats", tenants, NULL, 0, err);
    char name[KILN_TENANT_MAX + 1];
    for (const char *p = tenants; st == KILN_OK && kiln_tenants_next(&p, name);) {
        kiln_head_t *h = fake_store__head(f, name, false);
        kiln_head_stats_t s;
        if (h == NULL)
            continue;
        kiln_head_stats(h, &s);
        if (s.profiles == 0)
            continue;
        if (out->profiles == 0 || s.min_time_ms < out->min_time_ms)
            out->min_time_ms = s.min_time_ms;
        if (s.max_time_ms > out->max_time_ms)
            out->max_time_ms = s.max_time_ms;
        out->series += s.series, out->profiles += s.profiles, out->samples += s.samples;
    }
    pthread_mutex_unlock(&f->mu);
    return st;
}

static const kiln_store_ops fake_store_ops = {
    .append = fake_store__append,
    .read = fake_store__read,
    .stats = fake_store__stats,
};

/** An empty fake store (f is the caller's; fake_store_fini frees it). */
static inline void fake_store_init(fake_store *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
}

static inline void fake_store_fini(fake_store *f)
{
    for (size_t i = 0; i < f->n_tenants; i++)
        kiln_head_destroy(f->head[i]);
    pthread_mutex_destroy(&f->mu);
}

/** The store.h interface of f. */
static inline kiln_store_t fake_store_iface(fake_store *f)
{
    return (kiln_store_t){&fake_store_ops, f};
}

/** Makes the next call (of any kind) fail with code and msg, storing
 * and reading nothing. */
static inline void fake_store_fail_next(fake_store *f, kiln_status code, const char *msg)
{
    pthread_mutex_lock(&f->mu);
    f->fail_code = code;
    snprintf(f->fail_msg, sizeof(f->fail_msg), "%s", msg);
    pthread_mutex_unlock(&f->mu);
}

/** The last recorded call of kind op, or NULL. */
static inline const fake_store_call *fake_store_last(const fake_store *f, const char *op)
{
    size_t n = f->n_calls < FAKE_STORE_CALLS ? f->n_calls : FAKE_STORE_CALLS;
    for (size_t i = n; i-- > 0;) {
        if (strcmp(f->calls[i].op, op) == 0)
            return &f->calls[i];
    }
    return NULL;
}

#endif
