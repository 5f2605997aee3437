/* SPDX-License-Identifier: Apache-2.0
 * blockset: list, diff, open, swap. */
#include "blockset.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

typedef struct entry {
    char *tenant;
    char ulid[KILN_ULID_LEN + 1];
    kiln_block_t *block; /* NULL while listed but not (yet) opened */
} entry;

struct kiln_blockset {
    kiln_objstore_t *store;
    pthread_rwlock_t lock;
    entry *e;
    size_t n, cap;
    char **quarantined; /* "<tenant>/<ulid>" logged once, never reopened */
    size_t n_q, cap_q;
};

kiln_blockset_t *kiln_blockset_create(kiln_objstore_t *store)
{
    kiln_blockset_t *bs = kiln_xcalloc(1, sizeof(*bs));
    bs->store = store;
    pthread_rwlock_init(&bs->lock, NULL);
    return bs;
}

void kiln_blockset_destroy(kiln_blockset_t *bs)
{
    if (bs == NULL)
        return;
    for (size_t i = 0; i < bs->n; i++) {
        kiln_block_close(bs->e[i].block);
        free(bs->e[i].tenant);
    }
    for (size_t i = 0; i < bs->n_q; i++)
        free(bs->quarantined[i]);
    free(bs->quarantined);
    free(bs->e);
    pthread_rwlock_destroy(&bs->lock);
    free(bs);
}

typedef struct listing {
    entry *e;
    size_t n, cap;
} listing;

/* "<tenant>/blocks/<ulid>/meta.json" -> an entry. */
static void on_object(void *ctx, const char *name)
{
    listing *l = ctx;
    size_t tlen;
    char ulid[KILN_ULID_LEN + 1];
    if (!kiln_block_meta_name(name, &tlen, ulid))
        return;
    KILN_GROW(l->e, l->cap, l->n + 1);
    entry *e = &l->e[l->n++];
    e->tenant = kiln_xstrndup(name, tlen);
    memcpy(e->ulid, ulid, sizeof(ulid));
    e->block = NULL;
}

/* Entries are ordered by (tenant, ulid): the set's are kept so, from a
 * sorted listing, so finding one is a binary search (a sync used to scan
 * the set for each listed block: quadratic in blocks, on every query). */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);
    return c != 0 ? c : strcmp(x->ulid, y->ulid);
}

static entry *find(entry *e, size_t n, const char *tenant, const char *ulid)
{
    entry key = {(char *)tenant, {0}, NULL};
    snprintf(key.ulid, sizeof(key.ulid), "%s", ulid);
    return n == 0 ? NULL : bsearch(&key, e, n, sizeof(*e), cmp_entry);
}

static bool is_quarantined(const kiln_blockset_t *bs, const char *tenant, const char *ulid)
{
    size_t tl = strlen(tenant);
    for (size_t i = 0; i < bs->n_q; i++) {
        const char *q = bs->quarantined[i];
        if (strncmp(q, tenant, tl) == 0 && q[tl] == '/' && strcmp(q + tl + 1, ulid) == 0)
            return true;
    }
    return false;
}

/* Shuts tenant/ulid out for the process's life (logged once). Write lock held. */
static void quarantine_locked(kiln_blockset_t *bs, const char *tenant, const char *ulid,
                              const char *why)
{
    KILN_LOG_ERROR("blockset", "quarantining block %s/%s: %s", tenant, ulid, why);
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", tenant, ulid);
    KILN_GROW(bs->quarantined, bs->cap_q, bs->n_q + 1);
    bs->quarantined[bs->n_q++] = kiln_xstrdup(key);
}

/* Opens the listed blocks the set does not hold yet (outside the lock). */
static void open_new(kiln_blockset_t *bs, listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        entry *e = &l->e[i];
        pthread_rwlock_rdlock(&bs->lock);
        entry *have = find(bs->e, bs->n, e->tenant, e->ulid);
        bool skip = have != NULL || is_quarantined(bs, e->tenant, e->ulid);
        pthread_rwlock_unlock(&bs->lock);
        if (skip)
            continue;
        kiln_err err;
        kiln_status st = kiln_block_open(bs->store, e->tenant, e->ulid, &e->block, &err);
        if (st == KILN_OK || st == KILN_NOT_FOUND) /* NOT_FOUND: deleted since listing */
            continue;
        if (st != KILN_DATA_LOSS && st != KILN_INVALID_ARGUMENT) {
            /* The store did not answer (an outage): not the block's fault,
             * the next sync opens it. Only a damaged block is shut out. */
            KILN_LOG_WARN("blockset", "block %s/%s not opened yet: %s", e->tenant, e->ulid,
                          err.msg);
            continue;
        }
        pthread_rwlock_wrlock(&bs->lock);
        quarantine_locked(bs, e->tenant, e->ulid, err.msg);
        pthread_rwlock_unlock(&bs->lock);
    }
}

/* The (tenant, source ulid) pairs every open block of the listing names as
 * its compaction sources (not itself), sorted like entries; *n_out pairs.
 * Their tenant strings are the listing's. */
static entry *compacted_sources(const listing *l, size_t *n_out)
{
    entry *src = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < l->n; i++) {
        const entry *o = &l->e[i];
        const Block__V1__BlockMeta *m = o->block != NULL ? kiln_block_meta(o->block) : NULL;
        size_t n_src = m != NULL && m->compaction != NULL ? m->compaction->n_sources : 0;
        for (size_t k = 0; k < n_src; k++) {
            if (strcmp(m->compaction->sources[k], o->ulid) == 0)
                continue;
            KILN_GROW(src, cap, n + 1);
            src[n] = (entry){o->tenant, {0}, NULL};
            snprintf(src[n++].ulid, sizeof(src->ulid), "%s", m->compaction->sources[k]);
        }
    }
    if (n > 1)
        qsort(src, n, sizeof(*src), cmp_entry);
    *n_out = n;
    return src;
}

/* The new set: held blocks still listed, plus the newly opened ones; blocks
 * superseded by a compacted block are dropped. Write lock held. */
static void swap_in(kiln_blockset_t *bs, listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        entry *have = find(bs->e, bs->n, l->e[i].tenant, l->e[i].ulid);
        if (have != NULL) { /* keep the open block; the listing's copy goes */
            l->e[i].block = have->block;
            have->block = NULL;
        }
    }
    for (size_t i = 0; i < bs->n; i++) { /* no longer listed: deleted */
        kiln_block_close(bs->e[i].block);
        free(bs->e[i].tenant);
    }
    /* Decide for every entry before closing any: a block of the same
     * tenant that lists e as a compaction source supersedes it. */
    size_t n_src;
    entry *src = compacted_sources(l, &n_src);
    bool *drop = kiln_xcalloc(l->n + 1, sizeof(bool));
    for (size_t i = 0; i < l->n; i++) {
        const entry *e = &l->e[i];
        kiln_err why;
        drop[i] = e->block == NULL || find(src, n_src, e->tenant, e->ulid) != NULL;
        if (!drop[i] && kiln_block_damaged(e->block, &why)) { /* a query found it so */
            quarantine_locked(bs, e->tenant, e->ulid, why.msg);
            drop[i] = true;
        }
    }
    free(src);
    size_t m = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!drop[i]) {
            l->e[m++] = l->e[i];
            continue;
        }
        kiln_block_close(l->e[i].block);
        free(l->e[i].tenant);
    }
    free(drop);
    free(bs->e);
    bs->e = l->e;
    bs->n = m;
    bs->cap = l->cap;
}

kiln_status kiln_blockset_sync(kiln_blockset_t *bs, kiln_err *err)
{
    listing l = {NULL, 0, 0};
    kiln_status st = kiln_objstore_list(bs->store, "", on_object, &l, err);
    if (st != KILN_OK) {
        for (size_t i = 0; i < l.n; i++)
            free(l.e[i].tenant);
        free(l.e);
        return st;
    }
    if (l.n > 1)
        qsort(l.e, l.n, sizeof(*l.e), cmp_entry);
    open_new(bs, &l);
    pthread_rwlock_wrlock(&bs->lock);
    swap_in(bs, &l);
    pthread_rwlock_unlock(&bs->lock);
    return KILN_OK;
}

void kiln_blockset_each(kiln_blockset_t *bs, const char *tenant, int64_t start_ms, int64_t end_ms,
                        void (*fn)(void *ctx, const char *tenant, kiln_block_t *b), void *ctx)
{
    pthread_rwlock_rdlock(&bs->lock);
    for (size_t i = 0; i < bs->n; i++) {
        const entry *e = &bs->e[i];
        const Block__V1__BlockMeta *m = kiln_block_meta(e->block);
        if (tenant != NULL && strcmp(e->tenant, tenant) != 0)
            continue;
        if (m->max_time < start_ms || (end_ms != 0 && m->min_time > end_ms))
            continue;
        if (kiln_block_damaged(e->block, NULL)) /* quarantined at the next sync */
            continue;
        fn(ctx, e->tenant, e->block);
    }
    pthread_rwlock_unlock(&bs->lock);
}

uint64_t kiln_blockset_wal_until(kiln_blockset_t *bs, const char *instance, const char *tenant)
{
    uint64_t max = 0;
    pthread_rwlock_rdlock(&bs->lock);
    for (size_t i = 0; i < bs->n; i++) {
        const Block__V1__BlockMeta *m = kiln_block_meta(bs->e[i].block);
        if (strcmp(bs->e[i].tenant, tenant) != 0)
            continue;
        if (strcmp(m->ingester, instance) == 0 && m->wal_until > max)
            max = m->wal_until;
        for (size_t k = 0; k < m->n_wal_marks; k++) {
            if (strcmp(m->wal_marks[k]->ingester, instance) == 0 &&
                m->wal_marks[k]->wal_until > max)
                max = m->wal_marks[k]->wal_until;
        }
    }
    pthread_rwlock_unlock(&bs->lock);
    return max;
}

void kiln_blockset_counts(kiln_blockset_t *bs, size_t *blocks, size_t *quarantined)
{
    pthread_rwlock_rdlock(&bs->lock);
    *blocks = bs->n;
    *quarantined = bs->n_q;
    pthread_rwlock_unlock(&bs->lock);
}
