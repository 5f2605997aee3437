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

#include "block.h"
#include "clock.h"
#include "db_int.h"
#include "log.h"
#include "xmalloc.h"

#define DEFAULT_CHECK_NS 5000000000LL

static bool nonempty(const kiln_head_t *h)
{
    kiln_head_stats_t s;
    kiln_head_stats((kiln_head_t *)h, &s);
    return s.profiles != 0;
}

static bool due(const kiln_db_t *db, const tenant_head *t, int64_t now)
{
    kiln_head_stats_t s;
    kiln_head_stats(t->head, &s);
    return s.profiles != 0 &&
           ((db->cfg.max_block_duration_ns > 0 &&
             now - t->head_start_ns >= db->cfg.max_block_duration_ns) ||
            (db->cfg.max_head_samples > 0 && s.samples >= db->cfg.max_head_samples));
}

/* When any head is due (or force), rotates the WAL and swaps out every
 * non-empty head, so that all records before the new segment are in heads
 * being flushed. *all is false when some head could not be cut (its last
 * flush is still pending). Returns the new segment, 0 if nothing was cut. */
static uint64_t cut(kiln_db_t *db, bool force, bool *all)
{
    int64_t now = kiln_wall_ns();
    size_t n;
    tenant_head **ts = kiln_db__tenants(db, &n);
    pthread_rwlock_wrlock(&db->cut);
    bool any = force;
    for (size_t i = 0; i < n && !any; i++)
        any = due(db, ts[i], now);
    uint64_t seg = 0;
    *all = true;
    if (any) {
        seg = kiln_wal_rotate(db->wal);
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
    pthread_rwlock_unlock(&db->cut);
    free(ts);
    return seg;
}
/* Writes the block of one cut head; false when the store refused it (the
 * head stays and is tried again next time). */
static bool write_one(kiln_db_t *db, tenant_head *t)
{
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    Block__V1__BlockCompaction comp = BLOCK__V1__BLOCK_COMPACTION__INIT;
    comp.level = 1;
    meta.compaction = &comp;
    meta.ingester = db->instance;
    meta.wal_until = t->cut_seg;
    char ulid[KILN_ULID_LEN + 1];
    kiln_err err;
    int64_t t0 = kiln_mono_ns();
    if (kiln_block_write(db->cfg.store, t->tenant, t->flushing, &meta, ulid, &err) != KILN_OK) {
        KILN_LOG_ERROR("db", "flush of tenant %s failed, will retry: %s", t->tenant, err.msg);
        return false;
    }
    kiln_head_stats_t s;
    kiln_head_stats(t->flushing, &s);
    KILN_LOG_INFO("db", "flushed tenant=%s block=%s profiles=%zu samples=%zu in %.0f ms", t->tenant,
                  ulid, s.profiles, s.samples, (double)(kiln_mono_ns() - t0) / 1e6);
    pthread_rwlock_wrlock(&db->cut);
    snprintf(t->flushed_ulid, sizeof(t->flushed_ulid), "%s", ulid);
    pthread_rwlock_unlock(&db->cut);
    return true;
}

/* Drops the heads whose blocks are now in the set; true when none is left
 * waiting for its block. */
static bool retire(kiln_db_t *db)
{
    size_t n;
    tenant_head **ts = kiln_db__tenants(db, &n);
    bool all = true;
    pthread_rwlock_wrlock(&db->cut);
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
    pthread_rwlock_unlock(&db->cut);
    free(ts);
    return all;
}

/* The tenants whose cut head waits to be written, read under `cut`. Only
 * flush rounds set `flushing` and `flushed_ulid`, and flush_mu (held by
 * the caller) lets one round run at a time, so the list stays true while
 * the round writes them without `cut`. */
static tenant_head **pending(kiln_db_t *db, size_t *n_out)
{
    size_t n, k = 0;
    tenant_head **ts = kiln_db__tenants(db, &n);
    pthread_rwlock_rdlock(&db->cut);
    for (size_t i = 0; i < n; i++) {
        if (ts[i]->flushing != NULL && ts[i]->flushed_ulid[0] == '\0')
            ts[k++] = ts[i];
    }
    pthread_rwlock_unlock(&db->cut);
    *n_out = k;
    return ts;
}

/* One round: cut (when due or forced), write pending heads, pick up blocks
 * (ours and the compactor's), retire written heads, drop WAL segments that
 * are entirely in blocks. The caller holds flush_mu. */
static kiln_status flush_round(kiln_db_t *db, bool force, kiln_err *err)
{
    bool all_cut;
    uint64_t seg = cut(db, force, &all_cut);
    size_t n;
    tenant_head **ts = pending(db, &n);
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= write_one(db, ts[i]);
    free(ts);
    kiln_status st = kiln_blockset_sync(db->blocks, err);
    if (st != KILN_OK)
        return st;
    if (retire(db) && ok && all_cut && seg != 0)
        kiln_wal_remove_before(db->wal, seg);
    return ok ? KILN_OK : kiln_err_set(err, KILN_UNAVAILABLE, "some heads could not be flushed");
}

/* Every flush path comes through here: one round at a time, by
 * construction (the flusher's tick and a flush before leaving the ring, on
 * SIGTERM, used to run at once and write or free one head twice). */
static kiln_status flush_locked(kiln_db_t *db, bool force, kiln_err *err)
{
    pthread_mutex_lock(&db->flush_mu);
    kiln_status st = flush_round(db, force, err);
    pthread_mutex_unlock(&db->flush_mu);
    return st;
}

kiln_status kiln_db_flush(kiln_db_t *db, kiln_err *err)
{
    return flush_locked(db, true, err);
}

static void flush_tick(void *arg)
{
    kiln_err err;
    if (flush_locked(arg, false, &err) != KILN_OK)
        KILN_LOG_WARN("db", "flush round: %s", err.msg);
}

void kiln_db__start_flusher(kiln_db_t *db)
{
    int64_t every = db->cfg.flush_check_ns > 0 ? db->cfg.flush_check_ns : DEFAULT_CHECK_NS;
    kiln_ticker_start(&db->flusher, every, flush_tick, db);
}

void kiln_db__stop_flusher(kiln_db_t *db, bool flush)
{
    if (!db->flusher.running)
        return;
    kiln_ticker_stop(&db->flusher);
    kiln_err err;
    if (flush && kiln_db_flush(db, &err) != KILN_OK)
        KILN_LOG_WARN("db", "flush at shutdown: %s (the WAL keeps the data)", err.msg);
}
