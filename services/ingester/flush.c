/* SPDX-License-Identifier: Apache-2.0
 * flush: cuts heads into blocks. A cut rotates the WAL and swaps every due
 * head for an empty one atomically with respect to appends; the old heads
 * stay queryable while they are written, and go once their block is in the
 * block set. A block records the WAL segment its head was cut at, so replay
 * after a crash skips exactly the records it holds; WAL segments go once
 * nothing before them waits for a block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block.h"
#include "ingester_int.h"
#include "log.h"
#include "xmalloc.h"

#define DEFAULT_CHECK_NS 5000000000LL

/* Snapshot of the tenant entries (they are never freed while running). */
static tenant_head **tenants(kiln_ingester_t *ing, size_t *n)
{
    pthread_mutex_lock(&ing->mu);
    tenant_head **t = kiln_xmalloc((ing->n + 1) * sizeof(*t));
    if (ing->n != 0)
        memcpy(t, ing->t, ing->n * sizeof(*t));
    *n = ing->n;
    pthread_mutex_unlock(&ing->mu);
    return t;
}

static bool nonempty(const kiln_head_t *h)
{
    kiln_head_stats_t s;
    kiln_head_stats((kiln_head_t *)h, &s);
    return s.profiles != 0;
}

static bool due(const kiln_ingester_t *ing, const tenant_head *t, int64_t now)
{
    kiln_head_stats_t s;
    kiln_head_stats(t->head, &s);
    return s.profiles != 0 &&
           ((ing->cfg.max_block_duration_ns > 0 &&
             now - t->head_start_ns >= ing->cfg.max_block_duration_ns) ||
            (ing->cfg.max_head_samples > 0 && s.samples >= ing->cfg.max_head_samples));
}

/* When any head is due (or force), rotates the WAL and swaps out every
 * non-empty head, so that all records before the new segment are in heads
 * being flushed. *all is false when some head could not be cut (its last
 * flush is still pending). Returns the new segment, 0 if nothing was cut. */
static uint64_t cut(kiln_ingester_t *ing, bool force, bool *all)
{
    int64_t now = kiln_ingester__now_ns();
    size_t n;
    tenant_head **ts = tenants(ing, &n);
    pthread_rwlock_wrlock(&ing->cut);
    bool any = force;
    for (size_t i = 0; i < n && !any; i++)
        any = due(ing, ts[i], now);
    uint64_t seg = 0;
    *all = true;
    if (any) {
        seg = kiln_wal_rotate(ing->wal);
        for (size_t i = 0; i < n; i++) {
            tenant_head *t = ts[i];
            if (!nonempty(t->head))
                continue;
            if (t->flushing != NULL) {
                *all = false;
                continue;
            }
            t->flushing = t->head;
            t->head = kiln_head_create();
            t->head_start_ns = 0;
            t->fresh = 0; /* appends wait (cut held): no reservation is open */
            t->flushed_ulid[0] = '\0';
            t->cut_seg = seg;
        }
    }
    pthread_rwlock_unlock(&ing->cut);
    free(ts);
    return seg;
}
/* Writes the block of one cut head; false when the store refused it (the
 * head stays and is tried again next time). */
static bool write_one(kiln_ingester_t *ing, tenant_head *t)
{
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    Block__V1__BlockCompaction comp = BLOCK__V1__BLOCK_COMPACTION__INIT;
    comp.level = 1;
    meta.compaction = &comp;
    meta.ingester = ing->instance;
    meta.wal_until = t->cut_seg;
    char ulid[KILN_ULID_LEN + 1];
    kiln_err err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (kiln_block_write(ing->store, t->tenant, t->flushing, &meta, ulid, &err) != KILN_OK) {
        KILN_LOG_ERROR("ingester", "flush of tenant %s failed, will retry: %s", t->tenant, err.msg);
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kiln_head_stats_t s;
    kiln_head_stats(t->flushing, &s);
    KILN_LOG_INFO("ingester", "flushed tenant=%s block=%s profiles=%zu samples=%zu in %.0f ms",
                  t->tenant, ulid, s.profiles, s.samples,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    pthread_rwlock_wrlock(&ing->cut);
    snprintf(t->flushed_ulid, sizeof(t->flushed_ulid), "%s", ulid);
    pthread_rwlock_unlock(&ing->cut);
    return true;
}

/* Drops the heads whose blocks are now in the set; true when none is left
 * waiting for its block. */
static bool retire(kiln_ingester_t *ing)
{
    size_t n;
    tenant_head **ts = tenants(ing, &n);
    bool all = true;
    pthread_rwlock_wrlock(&ing->cut);
    for (size_t i = 0; i < n; i++) {
        tenant_head *t = ts[i];
        if (t->flushing == NULL)
            continue;
        if (t->flushed_ulid[0] == '\0') {
            all = false;
            continue;
        }
        kiln_head_destroy(t->flushing);
        t->flushing = NULL;
        t->flushed_ulid[0] = '\0';
    }
    pthread_rwlock_unlock(&ing->cut);
    free(ts);
    return all;
}

/* The tenants whose cut head waits to be written, read under `cut`. Only
 * flush rounds set `flushing` and `flushed_ulid`, and flush_mu (held by
 * the caller) lets one round run at a time, so the list stays true while
 * the round writes them without `cut`. */
static tenant_head **pending(kiln_ingester_t *ing, size_t *n_out)
{
    size_t n, k = 0;
    tenant_head **ts = tenants(ing, &n);
    pthread_rwlock_rdlock(&ing->cut);
    for (size_t i = 0; i < n; i++) {
        if (ts[i]->flushing != NULL && ts[i]->flushed_ulid[0] == '\0')
            ts[k++] = ts[i];
    }
    pthread_rwlock_unlock(&ing->cut);
    *n_out = k;
    return ts;
}

/* One round: cut (when due or forced), write pending heads, pick up blocks
 * (ours and the compactor's), retire written heads, drop WAL segments that
 * are entirely in blocks. The caller holds flush_mu. */
static kiln_status flush_round(kiln_ingester_t *ing, bool force, kiln_err *err)
{
    bool all_cut;
    uint64_t seg = cut(ing, force, &all_cut);
    size_t n;
    tenant_head **ts = pending(ing, &n);
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= write_one(ing, ts[i]);
    free(ts);
    kiln_status st = kiln_blockset_sync(ing->blocks, err);
    if (st != KILN_OK)
        return st;
    if (retire(ing) && ok && all_cut && seg != 0)
        kiln_wal_remove_before(ing->wal, seg);
    return ok ? KILN_OK : kiln_err_set(err, KILN_UNAVAILABLE, "some heads could not be flushed");
}

/* Every flush path comes through here: one round at a time, by
 * construction (the flusher's tick and a flush before leaving the ring, on
 * SIGTERM, used to run at once and write or free one head twice). */
static kiln_status flush_locked(kiln_ingester_t *ing, bool force, kiln_err *err)
{
    pthread_mutex_lock(&ing->flush_mu);
    kiln_status st = flush_round(ing, force, err);
    pthread_mutex_unlock(&ing->flush_mu);
    return st;
}

kiln_status kiln_ingester__flush(kiln_ingester_t *ing, kiln_err *err)
{
    return flush_locked(ing, true, err);
}

static void flush_tick(void *arg)
{
    kiln_err err;
    if (flush_locked(arg, false, &err) != KILN_OK)
        KILN_LOG_WARN("ingester", "flush round: %s", err.msg);
}

void kiln_ingester__start_flusher(kiln_ingester_t *ing)
{
    int64_t every = ing->cfg.flush_check_ns > 0 ? ing->cfg.flush_check_ns : DEFAULT_CHECK_NS;
    kiln_ticker_start(&ing->flusher, every, flush_tick, ing);
}

void kiln_ingester__stop_flusher(kiln_ingester_t *ing, bool flush)
{
    if (!ing->flusher.running)
        return;
    kiln_ticker_stop(&ing->flusher);
    kiln_err err;
    if (flush && kiln_ingester__flush(ing, &err) != KILN_OK)
        KILN_LOG_WARN("ingester", "flush at shutdown: %s (the WAL keeps the data)", err.msg);
}
