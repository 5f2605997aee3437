/* SPDX-License-Identifier: Apache-2.0
 * series_limit: max_global_series_per_tenant, with Pyroscope's name and
 * semantics. A tenant's series in memory (its head and the head being
 * flushed, each series once; one series per sample type, as stored) may not
 * pass its local limit: the global limit divided over the ring's active
 * ingesters times the replication factor (alone: the global limit). A push
 * that would add series past it is refused whole; series already held keep
 * taking pushes. A series stops counting once its flushed head is dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "xmalloc.h"

/* The phrase every refusal carries, so that a distributor recognises it in
 * a remote ingester's message (status codes alone cannot tell it from a
 * ring-ownership refusal, which must stay retryable). */
#define LIMIT_NAME "max_global_series_per_tenant"

/* The tenant's limit on this ingester (0 = none) and, in *global, the
 * cluster-wide one it derives from. Like Pyroscope, series are assumed
 * spread evenly, each on rf ingesters: global / ingesters * rf (rf capped
 * at the ingesters, which is all a series can reach); while the ring shows
 * no active ingester the limit is not applied. */
static size_t local_limit(kiln_db_t *db, const char *tenant, size_t *global)
{
    *global = 0;
    if (db->cfg.limits != NULL)
        *global = kiln_overrides_get(db->cfg.limits, tenant)->max_global_series;
    pthread_mutex_lock(&db->split_mu);
    bool ring = db->ring;
    size_t n = db->active, rf = db->rf;
    pthread_mutex_unlock(&db->split_mu);
    if (*global == 0 || !ring)
        return *global;
    if (n == 0)
        return 0;
    rf = rf < 1 ? 1 : rf > n ? n : rf;
    size_t local = (size_t)((double)*global / (double)n * (double)rf);
    return local > 0 ? local : 1;
}

/* The tenant's series in memory (head and flushing head, each once).
 * `cut` held shared. */
static size_t memory_series(tenant_head *t)
{
    size_t head = kiln_head_n_series(t->head);
    if (t->flushing == NULL)
        return head;
    pthread_mutex_lock(&t->lim_mu);
    size_t fresh = t->fresh;
    pthread_mutex_unlock(&t->lim_mu);
    return kiln_head_n_series(t->flushing) + fresh;
}

kiln_status kiln_db__reserve_series(kiln_db_t *db, tenant_head *t, const kiln_head_part *parts,
                                    const kiln_head_series_key *const *keys, size_t n,
                                    size_t *reserved, kiln_err *err)
{
    *reserved = 0;
    size_t global;
    size_t limit = local_limit(db, t->tenant, &global);
    if (limit == 0)
        return KILN_OK;
    size_t adds = kiln_head_new_series_keyed(t->head, t->flushing, parts, keys, n);
    if (adds == 0)
        return KILN_OK;
    size_t held = memory_series(t);
    pthread_mutex_lock(&t->lim_mu);
    size_t have = held + t->pending;
    bool fits = have + adds <= limit;
    if (fits)
        t->pending += adds;
    else
        t->refused++;
    pthread_mutex_unlock(&t->lim_mu);
    if (fits) {
        *reserved = adds;
        return KILN_OK;
    }
    return kiln_err_set(err, KILN_FAILED_PRECONDITION,
                        "series limit " LIMIT_NAME "=%zu (%zu on this ingester) reached: "
                        "tenant %s holds %zu series, this push adds %zu; reduce labels or label "
                        "values, or raise -ingester.max-global-series-per-tenant",
                        global, limit, t->tenant, have, adds);
}

void kiln_db__release_series(tenant_head *t, size_t reserved, bool applied)
{
    if (reserved == 0)
        return;
    pthread_mutex_lock(&t->lim_mu);
    t->pending -= reserved;
    /* New to both heads, so new to `head` and not in `flushing`. */
    if (applied && t->flushing != NULL)
        t->fresh += reserved;
    pthread_mutex_unlock(&t->lim_mu);
}

bool kiln_db_is_series_limit(const kiln_err *err)
{
    return err->code == KILN_FAILED_PRECONDITION && strstr(err->msg, LIMIT_NAME) != NULL;
}

/* A tenant id as a Prometheus label value (ids are restricted, but the
 * exposition must stay parseable whatever a tenant is called). */
static void put_tenant(kiln_buf *out, const char *tenant)
{
    for (const char *p = tenant; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            kiln_buf_putc(out, '\\');
        if (*p == '\n')
            kiln_buf_puts(out, "\\n");
        else
            kiln_buf_putc(out, *p);
    }
}

/* One sample of a per-tenant family. */
static void put_sample(kiln_buf *out, const char *family, const char *tenant, uint64_t v)
{
    kiln_buf_printf(out, "%s{tenant=\"", family);
    put_tenant(out, tenant);
    kiln_buf_printf(out, "\"} %llu\n", (unsigned long long)v);
}

void kiln_db_metrics(kiln_db_t *db, kiln_buf *out)
{
    static const char *const family[] = {"kiln_ingester_memory_series",
                                         "kiln_ingester_series_limit",
                                         "kiln_ingester_series_limit_refused_total"};
    static const char *const help[] = {
        "Series in memory per tenant (head and head being flushed): what "
        "max_global_series_per_tenant counts.\n# TYPE kiln_ingester_memory_series gauge\n",
        "The tenant's series limit on this ingester (0 = none).\n"
        "# TYPE kiln_ingester_series_limit gauge\n",
        "Pushes refused because they would pass the tenant's series limit.\n"
        "# TYPE kiln_ingester_series_limit_refused_total counter\n"};
    size_t n;
    tenant_head **ts = kiln_db__tenants(db, &n);
    for (size_t f = 0; f < 3; f++) {
        kiln_buf_printf(out, "# HELP %s %s", family[f], help[f]);
        pthread_rwlock_rdlock(&db->cut);
        for (size_t i = 0; i < n; i++) {
            size_t global, v;
            if (f == 0) {
                v = memory_series(ts[i]);
            } else if (f == 1) {
                v = local_limit(db, ts[i]->tenant, &global);
            } else {
                pthread_mutex_lock(&ts[i]->lim_mu);
                v = ts[i]->refused;
                pthread_mutex_unlock(&ts[i]->lim_mu);
            }
            put_sample(out, family[f], ts[i]->tenant, v);
        }
        pthread_rwlock_unlock(&db->cut);
    }
    free(ts);
    kiln_db__bytes_metrics(db, out);
    kiln_db__wal_metrics(db, out);
}

void kiln_db_set_ring_split(kiln_db_t *db, bool ring, size_t active, size_t rf)
{
    pthread_mutex_lock(&db->split_mu);
    db->ring = ring;
    db->active = active;
    db->rf = rf;
    pthread_mutex_unlock(&db->split_mu);
}
