/* SPDX-License-Identifier: Apache-2.0
 * compactor: rounds of delete-superseded, retention, merge. */
#include "compactor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"
#include "clock.h"
#include "log.h"
#include "pbjson.h"
#include "ticker.h"
#include "xmalloc.h"

#define HOUR_MS 3600000LL

typedef struct doomed_block {
    char *key; /* "<tenant>/<ulid>" */
    int64_t since_ms;
} doomed_block;

struct kiln_compactor {
    kiln_compactor_config cfg;
    kiln_objstore_t *store;
    bool owns_store;      /* opened here (cfg.store was NULL) */
    doomed_block *doomed; /* superseded blocks, and since when */
    size_t n_doomed;
    kiln_compactor_stats stats;
    char **quarantined; /* "<tenant>/<ulid>" of damaged blocks, never merged again */
    size_t n_q;
    atomic_uint_least64_t n_q_pub; /* n_q, for other threads (metrics) */
    kiln_ticker ticker;
};

typedef struct bmeta {
    char *tenant;
    char ulid[KILN_ULID_LEN + 1];
    Block__V1__BlockMeta *m;
    bool gone; /* deleted or merged this round */
} bmeta;

typedef struct listing {
    kiln_compactor_t *c;
    kiln_arena_t *a;
    bmeta *b;
    size_t n, cap;
} listing;

static void on_meta(void *ctx, const char *name)
{
    listing *l = ctx;
    size_t tlen;
    char ulid[KILN_ULID_LEN + 1];
    if (!kiln_block_meta_name(name, &tlen, ulid))
        return;
    kiln_buf data;
    kiln_buf_init(&data, 0);
    ProtobufCMessage *m = NULL;
    if (kiln_objstore_get(l->c->store, name, &data, NULL) == KILN_OK &&
        kiln_pbjson_decode(&block__v1__block_meta__descriptor, data.ptr, data.len, l->a, &m,
                           NULL) == KILN_OK) {
        KILN_GROW(l->b, l->cap, l->n + 1);
        bmeta *b = &l->b[l->n++];
        b->tenant = kiln_arena_strndup(l->a, name, tlen);
        memcpy(b->ulid, ulid, KILN_ULID_LEN);
        b->ulid[KILN_ULID_LEN] = '\0';
        b->m = (Block__V1__BlockMeta *)m;
        b->gone = false;
    }
    kiln_buf_free(&data);
}

static bool lists_source(const bmeta *y, const bmeta *x)
{
    if (y == x || strcmp(y->tenant, x->tenant) != 0 || y->m->compaction == NULL)
        return false;
    for (size_t k = 0; k < y->m->compaction->n_sources; k++) {
        if (strcmp(y->m->compaction->sources[k], x->ulid) == 0)
            return true;
    }
    return false;
}

static void delete_block(kiln_compactor_t *c, bmeta *b, const char *why)
{
    kiln_err err;
    if (kiln_block_delete(c->store, b->tenant, b->ulid, &err) != KILN_OK) {
        KILN_LOG_WARN("compactor", "delete %s/%s (%s): %s", b->tenant, b->ulid, why, err.msg);
        return;
    }
    KILN_LOG_INFO("compactor", "deleted block %s/%s: %s", b->tenant, b->ulid, why);
    b->gone = true;
}

/* When key was first seen superseded (now_ms when new). */
static int64_t doomed_since(const kiln_compactor_t *c, const char *key, int64_t now_ms)
{
    for (size_t i = 0; i < c->n_doomed; i++) {
        if (strcmp(c->doomed[i].key, key) == 0)
            return c->doomed[i].since_ms;
    }
    return now_ms;
}

/* Superseded blocks are deleted once they have been superseded for the
 * deletion delay, by which time every reader has re-listed the store and
 * reads the compacted block instead. */
static void delete_superseded(kiln_compactor_t *c, listing *l, int64_t now_ms)
{
    doomed_block *next = kiln_xcalloc(l->n + 1, sizeof(*next));
    size_t n_next = 0;
    for (size_t i = 0; i < l->n; i++) {
        bool sup = false;
        for (size_t j = 0; j < l->n && !sup; j++)
            sup = lists_source(&l->b[j], &l->b[i]);
        if (!sup)
            continue;
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", l->b[i].tenant, l->b[i].ulid);
        int64_t since = doomed_since(c, key, now_ms);
        if (now_ms - since >= c->cfg.deletion_delay_ns / 1000000) {
            delete_block(c, &l->b[i], "superseded by a compacted block");
            c->stats.deleted_superseded += l->b[i].gone;
        }
        if (!l->b[i].gone)
            next[n_next++] = (doomed_block){kiln_xstrdup(key), since};
        l->b[i].gone = true; /* either way, not a compaction input */
    }
    for (size_t i = 0; i < c->n_doomed; i++)
        free(c->doomed[i].key);
    free(c->doomed);
    c->doomed = next;
    c->n_doomed = n_next;
}

static void apply_retention(kiln_compactor_t *c, listing *l, int64_t now_ms)
{
    for (size_t i = 0; i < l->n; i++) {
        bmeta *b = &l->b[i];
        int64_t keep = c->cfg.retention_ns;
        if (c->cfg.limits != NULL)
            keep = kiln_overrides_get(c->cfg.limits, b->tenant)->retention_ns;
        if (b->gone || keep <= 0 || b->m->max_time >= now_ms - keep / 1000000)
            continue;
        delete_block(c, b, "past retention");
        c->stats.deleted_retention += b->gone;
    }
}

static void add_mark(Block__V1__BlockMeta *m, const char *ingester, uint64_t until)
{
    if (*ingester == '\0' || until == 0)
        return;
    for (size_t i = 0; i < m->n_wal_marks; i++) {
        if (strcmp(m->wal_marks[i]->ingester, ingester) == 0) {
            if (until > m->wal_marks[i]->wal_until)
                m->wal_marks[i]->wal_until = until;
            return;
        }
    }
    Block__V1__WalMark *w = kiln_xmalloc(sizeof(*w));
    block__v1__wal_mark__init(w);
    w->ingester = (char *)ingester; /* borrowed from the source metas */
    w->wal_until = until;
    m->wal_marks = kiln_xrealloc(m->wal_marks, (m->n_wal_marks + 1) * sizeof(*m->wal_marks));
    m->wal_marks[m->n_wal_marks++] = w;
}

/* The sources' WAL marks, kept so replay still skips what they held. */
static void wal_marks(bmeta **group, size_t n, Block__V1__BlockMeta *m)
{
    for (size_t i = 0; i < n; i++) {
        const Block__V1__BlockMeta *s = group[i]->m;
        add_mark(m, s->ingester, s->wal_until);
        for (size_t k = 0; k < s->n_wal_marks; k++)
            add_mark(m, s->wal_marks[k]->ingester, s->wal_marks[k]->wal_until);
    }
}

static bool is_quarantined(const kiln_compactor_t *c, const char *tenant, const char *ulid)
{
    size_t tl = strlen(tenant);
    for (size_t i = 0; i < c->n_q; i++) {
        const char *q = c->quarantined[i];
        if (strncmp(q, tenant, tl) == 0 && q[tl] == '/' && strcmp(q + tl + 1, ulid) == 0)
            return true;
    }
    return false;
}

/* A damaged block is left out of every later round (logged once), as
 * readers shut it out: merging it would fail the whole group every round,
 * or, were it skipped silently, lose its readable series. */
static void quarantine(kiln_compactor_t *c, const bmeta *b, const char *why)
{
    KILN_LOG_ERROR("compactor", "quarantining block %s/%s: %s", b->tenant, b->ulid, why);
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", b->tenant, b->ulid);
    c->quarantined = kiln_xrealloc(c->quarantined, (c->n_q + 1) * sizeof(*c->quarantined));
    c->quarantined[c->n_q++] = kiln_xstrdup(key);
    c->stats.quarantined++;
    atomic_store(&c->n_q_pub, c->n_q);
}

/* Merges the blocks of group into h, listing those merged in sources; a
 * block that does not open is left out (and stays; quarantined when it is
 * damaged, not when the store did not answer). Returns the number
 * merged, or -1 when a merge failed part way: h then holds part of a block
 * that would also stay, so nothing of the group may be written or deleted. */
static int merge_sources(kiln_compactor_t *c, bmeta **group, size_t n, kiln_head_t *h,
                         char **sources, size_t *copied)
{
    int opened = 0;
    for (size_t i = 0; i < n; i++) {
        kiln_block_t *b;
        kiln_err err;
        kiln_status st = kiln_block_open(c->store, group[i]->tenant, group[i]->ulid, &b, &err);
        if (st == KILN_DATA_LOSS || st == KILN_INVALID_ARGUMENT) {
            quarantine(c, group[i], err.msg);
            continue;
        }
        if (st != KILN_OK) {
            KILN_LOG_WARN("compactor", "skipping %s/%s: %s", group[i]->tenant, group[i]->ulid,
                          err.msg);
            continue;
        }
        size_t k = 0;
        st = kiln_head_merge_from(h, kiln_block_head(b), &k, &err);
        kiln_err why;
        if (st != KILN_OK && kiln_block_damaged(b, &why))
            quarantine(c, group[i], why.msg);
        kiln_block_close(b);
        if (st != KILN_OK) {
            KILN_LOG_ERROR("compactor", "not compacting the group of %s/%s: %s", group[i]->tenant,
                           group[i]->ulid, err.msg);
            return -1;
        }
        *copied += k;
        sources[opened++] = group[i]->ulid;
    }
    return opened;
}

/* Merges group[0..n) (same tenant, level, range) into one block of level+1. */
static void merge_group(kiln_compactor_t *c, bmeta **group, size_t n, int level, int64_t now_ms)
{
    kiln_head_t *h = kiln_head_create();
    char **sources = kiln_xcalloc(n + 1, sizeof(*sources));
    size_t copied = 0;
    int merged = merge_sources(c, group, n, h, sources, &copied);
    c->stats.failed += merged < 0;
    size_t opened = merged < 0 ? 0 : (size_t)merged;
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    wal_marks(group, n, &meta);
    Block__V1__BlockCompaction comp = BLOCK__V1__BLOCK_COMPACTION__INIT;
    comp.level = level + 1;
    comp.sources = sources;
    comp.n_sources = opened;
    meta.compaction = &comp;
    char ulid[KILN_ULID_LEN + 1];
    kiln_err err;
    if (opened >= 2 &&
        kiln_block_write(c->store, group[0]->tenant, h, &meta, ulid, &err) == KILN_OK) {
        KILN_LOG_INFO("compactor", "compacted %zu blocks of %s into %s (level %d, %zu profiles)",
                      opened, group[0]->tenant, ulid, level + 1, copied);
        c->stats.compacted++;
        /* Readers switch at their next sync; the sources go after the delay. */
        c->doomed = kiln_xrealloc(c->doomed, (c->n_doomed + opened + 1) * sizeof(*c->doomed));
        for (size_t i = 0; i < opened; i++) {
            char key[512];
            snprintf(key, sizeof(key), "%s/%s", group[0]->tenant, sources[i]);
            c->doomed[c->n_doomed++] = (doomed_block){kiln_xstrdup(key), now_ms};
        }
    } else if (opened >= 2) {
        KILN_LOG_WARN("compactor", "writing a compacted block of %s: %s", group[0]->tenant,
                      err.msg);
    }
    free(sources);
    for (size_t i = 0; i < meta.n_wal_marks; i++)
        free(meta.wal_marks[i]);
    free(meta.wal_marks);
    kiln_head_destroy(h);
}

/* The aligned range a level's blocks are merged over. */
static int64_t range_ms(int level)
{
    return level == 1 ? 4 * HOUR_MS : 24 * HOUR_MS;
}

static bool same_group(const bmeta *a, const bmeta *b, int level)
{
    int64_t r = range_ms(level);
    return strcmp(a->tenant, b->tenant) == 0 && a->m->min_time / r == b->m->min_time / r;
}

/* Merges, for each level, every group of 2+ blocks whose range has ended. */
static void compact_level(kiln_compactor_t *c, listing *l, int level, int64_t now_ms)
{
    int64_t r = range_ms(level);
    bmeta **group = kiln_xcalloc(l->n + 1, sizeof(*group));
    for (size_t i = 0; i < l->n; i++) {
        bmeta *x = &l->b[i];
        int lv = x->m->compaction ? x->m->compaction->level : 1;
        if (x->gone || lv != level || (x->m->min_time / r + 1) * r > now_ms)
            continue;
        size_t n = 0;
        for (size_t j = i; j < l->n; j++) {
            bmeta *y = &l->b[j];
            int ly = y->m->compaction ? y->m->compaction->level : 1;
            if (!y->gone && ly == level && same_group(x, y, level))
                group[n++] = y;
        }
        if (n >= 2)
            merge_group(c, group, n, level, now_ms);
        for (size_t k = 0; k < n; k++)
            group[k]->gone = true; /* handled (merged or alone) this round */
    }
    free(group);
}

kiln_status kiln_compactor_run_once(kiln_compactor_t *c, int64_t now_ms, kiln_err *err)
{
    listing l = {c, kiln_arena_create(0), NULL, 0, 0};
    kiln_status st = kiln_objstore_list(c->store, "", on_meta, &l, err);
    if (st == KILN_OK) {
        delete_superseded(c, &l, now_ms);
        apply_retention(c, &l, now_ms);
        for (size_t i = 0; i < l.n; i++) /* not a compaction input */
            l.b[i].gone |= is_quarantined(c, l.b[i].tenant, l.b[i].ulid);
        compact_level(c, &l, 1, now_ms);
        compact_level(c, &l, 2, now_ms);
        c->stats.rounds++;
    }
    free(l.b);
    kiln_arena_destroy(l.a);
    return st;
}

static void compactor_tick(void *arg)
{
    kiln_err err;
    if (kiln_compactor_run_once(arg, kiln_wall_ms(), &err) != KILN_OK)
        KILN_LOG_WARN("compactor", "round: %s", err.msg);
}

kiln_status kiln_compactor_create(const kiln_compactor_config *cfg, kiln_compactor_t **out,
                                  kiln_err *err)
{
    kiln_compactor_t *c = kiln_xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    kiln_status st = KILN_OK;
    c->store = cfg->store;
    c->owns_store = c->store == NULL;
    if (c->owns_store)
        st = kiln_objstore_open_fs(cfg->bucket_dir, &c->store, err);
    if (st != KILN_OK) {
        kiln_compactor_destroy(c);
        return st;
    }
    kiln_ticker_start(&c->ticker, cfg->interval_ns > 0 ? cfg->interval_ns : 60000000000LL,
                      compactor_tick, c);
    *out = c;
    return KILN_OK;
}

void kiln_compactor_destroy(kiln_compactor_t *c)
{
    if (c == NULL)
        return;
    kiln_ticker_stop(&c->ticker);
    for (size_t i = 0; i < c->n_doomed; i++)
        free(c->doomed[i].key);
    free(c->doomed);
    for (size_t i = 0; i < c->n_q; i++)
        free(c->quarantined[i]);
    free(c->quarantined);
    if (c->owns_store)
        kiln_objstore_close(c->store);
    free(c);
}

void kiln_compactor_stats_get(kiln_compactor_t *c, kiln_compactor_stats *out)
{
    *out = c->stats;
}

uint64_t kiln_compactor_quarantined(kiln_compactor_t *c)
{
    return atomic_load(&c->n_q_pub);
}
