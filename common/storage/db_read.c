/* SPDX-License-Identifier: Apache-2.0
 * db_read: reads and stats over the tenants' heads and blocks, and the
 * local implementation of the ingester interface (store.h). */
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "db_int.h"
#include "tenants.h"

/* One read of one tenant: its heads, then its blocks (unless heads_only),
 * stopping at the first failure. */
typedef struct tenant_read {
    const tenant_head *t;
    const kiln_read_filter *f;
    const kiln_read_visitor *v;
    kiln_status st;
    kiln_err *err;
} tenant_read;

static void read_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    tenant_read *r = ctx;
    const char *ulid = kiln_block_meta(b)->ulid;
    if (r->st != KILN_OK)
        return;
    if (r->t != NULL && r->t->flushing != NULL && strcmp(r->t->flushed_ulid, ulid) == 0)
        return; /* the same data as the head being flushed, read already */
    r->st = kiln_head_read(kiln_block_head(b), r->f, r->v, r->err);
}

/* Reads one tenant's heads and blocks. `cut` held shared. */
static kiln_status read_tenant(kiln_db_t *db, const char *name, const kiln_read_filter *f,
                               const kiln_read_visitor *v, kiln_err *err)
{
    tenant_read r = {kiln_db__tenant(db, name, false), f, v, KILN_OK, err};
    if (r.t != NULL)
        r.st = kiln_head_read(r.t->head, f, v, err);
    if (r.st == KILN_OK && r.t != NULL && r.t->flushing != NULL)
        r.st = kiln_head_read(r.t->flushing, f, v, err);
    if (r.st == KILN_OK && !db->cfg.heads_only)
        kiln_blockset_each(db->blocks, name, f->start_ms, f->end_ms, read_block, &r);
    return r.st;
}

kiln_status kiln_db_read(kiln_db_t *db, const char *tenants, const kiln_read_filter *f,
                         const kiln_read_visitor *v, kiln_err *err)
{
    kiln_status st = KILN_OK;
    char name[KILN_TENANT_MAX + 1];
    pthread_rwlock_rdlock(&db->cut);
    for (const char *p = tenants; st == KILN_OK && kiln_tenants_next(&p, name);)
        st = read_tenant(db, name, f, v, err);
    pthread_rwlock_unlock(&db->cut);
    return st;
}

static void add_stats(kiln_head_t *h, kiln_head_stats_t *o)
{
    kiln_head_stats_t s;
    kiln_head_stats(h, &s);
    o->series += s.series;
    o->profiles += s.profiles;
    o->samples += s.samples;
    o->stack_nodes += s.stack_nodes;
    o->locations += s.locations;
    o->strings += s.strings;
    o->bytes += s.bytes;
    if (s.profiles != 0 && (o->min_time_ms == 0 || s.min_time_ms < o->min_time_ms))
        o->min_time_ms = s.min_time_ms;
    if (s.max_time_ms > o->max_time_ms)
        o->max_time_ms = s.max_time_ms;
}

typedef struct stats_visit {
    const tenant_head *t;
    kiln_head_stats_t *out;
} stats_visit;

static void stats_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    stats_visit *v = ctx;
    if (v->t != NULL && v->t->flushing != NULL &&
        strcmp(v->t->flushed_ulid, kiln_block_meta(b)->ulid) == 0)
        return; /* counted as the head being flushed */
    add_stats(kiln_block_head(b), v->out);
}

/* Adds one tenant's heads and (unless heads_only) blocks. `cut` held. */
static void tenant_stats(kiln_db_t *db, const char *name, kiln_head_stats_t *out)
{
    stats_visit v = {kiln_db__tenant(db, name, false), out};
    if (v.t != NULL) {
        add_stats(v.t->head, out);
        if (v.t->flushing != NULL)
            add_stats(v.t->flushing, out);
    }
    if (!db->cfg.heads_only)
        kiln_blockset_each(db->blocks, name, 0, 0, stats_block, &v);
}

void kiln_db_stats(kiln_db_t *db, const char *tenants, kiln_head_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    char name[KILN_TENANT_MAX + 1];
    pthread_rwlock_rdlock(&db->cut);
    if (tenants != NULL) {
        for (const char *p = tenants; kiln_tenants_next(&p, name);)
            tenant_stats(db, name, out);
    } else {
        size_t n;
        tenant_head **ts = kiln_db__tenants(db, &n);
        for (size_t i = 0; i < n; i++)
            add_stats(ts[i]->head, out);
        free(ts);
    }
    pthread_rwlock_unlock(&db->cut);
}

/* ---- the local store ----------------------------------------------------------- */

static kiln_status local_append(void *self, const char *tenant, const kiln_head_part *parts,
                                size_t n, kiln_err *err)
{
    return kiln_db_append(self, tenant, parts, n, err);
}

static kiln_status local_read(void *self, const char *tenants, const kiln_read_filter *f,
                              const kiln_read_visitor *v, kiln_err *err)
{
    return kiln_db_read(self, tenants, f, v, err);
}

static kiln_status local_stats(void *self, const char *tenants, kiln_head_stats_t *out,
                               kiln_err *err)
{
    (void)err;
    kiln_db_stats(self, tenants, out);
    return KILN_OK;
}

kiln_store_t kiln_db_store(kiln_db_t *db)
{
    static const kiln_store_ops ops = {local_append, local_read, local_stats};
    return (kiln_store_t){&ops, db};
}

size_t kiln_db_blocks_quarantined(kiln_db_t *db)
{
    size_t n, q;
    kiln_blockset_counts(db->blocks, &n, &q);
    return q;
}
