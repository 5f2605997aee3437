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

static entry *find(entry *e, size_t n, const char *tenant, const char *ulid)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].ulid, ulid) == 0 && strcmp(e[i].tenant, tenant) == 0)
            return &e[i];
    }
    return NULL;
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
        KILN_LOG_ERROR("blockset", "quarantining block %s/%s: %s", e->tenant, e->ulid, err.msg);
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", e->tenant, e->ulid);
        pthread_rwlock_wrlock(&bs->lock);
        KILN_GROW(bs->quarantined, bs->cap_q, bs->n_q + 1);
        bs->quarantined[bs->n_q++] = kiln_xstrdup(key);
        pthread_rwlock_unlock(&bs->lock);
    }
}

/* True when a block of the same tenant lists e as a compaction source. */
static bool superseded(const entry *all, size_t n, const entry *e)
{
    for (size_t i = 0; i < n; i++) {
        const entry *o = &all[i];
        if (o == e || o->block == NULL || strcmp(o->tenant, e->tenant) != 0)
            continue;
        const Block__V1__BlockMeta *m = kiln_block_meta(o->block);
        for (size_t k = 0; m->compaction != NULL && k < m->compaction->n_sources; k++) {
            if (strcmp(m->compaction->sources[k], e->ulid) == 0)
                return true;
        }
    }
    return false;
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
    /* Decide for every entry before closing any: superseded() reads them all. */
    bool *drop = kiln_xcalloc(l->n + 1, sizeof(bool));
    for (size_t i = 0; i < l->n; i++)
        drop[i] = l->e[i].block == NULL || superseded(l->e, l->n, &l->e[i]);
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
            if (strcmp(m->wal_marks[k]->ingester, instance) == 0 && m->wal_marks[k]->wal_until > max)
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
