/* SPDX-License-Identifier: Apache-2.0
 * flush: cuts heads into blocks, when one is due (its age, its samples) or
 * the heads of all tenants reach the byte budget together. A cut rotates
 * the WAL and swaps every non-empty head for an empty one atomically with
 * respect to appends; the old heads stay queryable while they are written,
 * and go once their block is in the block set. A block records the WAL
 * segment its head was cut at, so replay after a crash skips exactly the
 * records it holds; WAL segments go once nothing before them waits for a
 * block. */
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

size_t kiln_db_default_head_bytes(uint64_t memory)
{
    uint64_t quarter = memory / 4;
    return quarter > SIZE_MAX ? SIZE_MAX - 1 : (size_t)quarter;
}

void kiln_db_head_bytes(kiln_db_t *db, size_t *appending, size_t *flushing)
{
    if (appending != NULL)
        *appending = __atomic_load_n(&db->appending_bytes, __ATOMIC_RELAXED);
    if (flushing != NULL)
        *flushing = __atomic_load_n(&db->flushing_bytes, __ATOMIC_RELAXED);
}

void kiln_db__add_bytes(kiln_db_t *db, size_t grown)
{
    size_t budget = db->cfg.max_head_bytes;
    size_t was = __atomic_fetch_add(&db->appending_bytes, grown, __ATOMIC_RELAXED);
    /* The append that takes the heads over the budget wakes the flusher,
     * rather than the heads growing on until its next tick. */
    if (budget != 0 && was < budget && was + grown >= budget)
        kiln_ticker_kick(&db->flusher);
}

void kiln_db__recount_bytes(kiln_db_t *db)
{
    size_t n, appending = 0, flushing = 0;
    tenant_head **ts = kiln_db__tenants(db, &n); /* with any made since the caller's list */
    for (size_t i = 0; i < n; i++) {
        kiln_head_stats_t s;
        kiln_head_stats(ts[i]->head, &s);
        appending += s.bytes;
        if (ts[i]->flushing != NULL) {
            kiln_head_stats(ts[i]->flushing, &s);
            flushing += s.bytes;
        }
    }
    __atomic_store_n(&db->appending_bytes, appending, __ATOMIC_RELAXED);
    __atomic_store_n(&db->flushing_bytes, flushing, __ATOMIC_RELAXED);
    free(ts);
}

void kiln_db__bytes_metrics(kiln_db_t *db, kiln_buf *out)
{
    size_t appending, flushing;
    kiln_db_head_bytes(db, &appending, &flushing);
    kiln_buf_printf(out,
                    "# HELP kiln_ingester_head_bytes Bytes the heads of every tenant hold, "
                    "taking appends and being flushed: what -ingester.max-head-bytes "
                    "bounds.\n# TYPE kiln_ingester_head_bytes gauge\n"
                    "kiln_ingester_head_bytes{state=\"appending\"} %zu\n"
                    "kiln_ingester_head_bytes{state=\"flushing\"} %zu\n"
                    "# HELP kiln_ingester_max_head_bytes -ingester.max-head-bytes: the heads "
                    "are cut at it and pushes refused at twice it (0 = no budget).\n"
                    "# TYPE kiln_ingester_max_head_bytes gauge\nkiln_ingester_max_head_bytes %zu\n"
                    "# HELP kiln_block_sums_bytes Bytes the open blocks' per-series sums hold: "
                    "what -storage.block-sums-max-bytes bounds.\n"
                    "# TYPE kiln_block_sums_bytes gauge\nkiln_block_sums_bytes %zu\n",
                    appending, flushing, db->cfg.max_head_bytes, kiln_block_sums_bytes());
}

/* Whether the heads taking appends hold the byte budget together, and one
 * of them has something to cut. The budget bounds the process's memory,
 * so it is one sum over all tenants, not a size per head; reaching it cuts
 * every non-empty head, not only the largest: the cut must rotate the WAL
 * and only when every head is cut can the segments before it go (a small
 * head left behind would keep the log growing), and one cut brings the
 * heads' memory all the way down instead of a little at a time. `cut` held. */
static bool over_budget(const kiln_db_t *db, tenant_head *const *ts, size_t n)
{
    if (db->cfg.max_head_bytes == 0 ||
        __atomic_load_n(&db->appending_bytes, __ATOMIC_RELAXED) < db->cfg.max_head_bytes)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ts[i]->flushing == NULL && nonempty(ts[i]->head))
            return true; /* a head that can be cut: its last flush is done */
    }
    return false;
}

/* When any head is due, the heads are over their byte budget, or force:
 * rotates the WAL and swaps out every non-empty head, so that all records
 * before the new segment are in heads being flushed. *all is false when
 * some head could not be cut (its last flush is still pending). Returns
 * the new segment, 0 if nothing was cut. */
static uint64_t cut(kiln_db_t *db, bool force, bool *all)
{
    int64_t now = kiln_wall_ns();
    size_t n;
    tenant_head **ts = kiln_db__tenants(db, &n);
    pthread_rwlock_wrlock(&db->cut);
    bool any = force || over_budget(db, ts, n);
    if (any && !force)
        KILN_LOG_INFO("db", "heads hold %zu bytes, -ingester.max-head-bytes %zu: cutting",
                      __atomic_load_n(&db->appending_bytes, __ATOMIC_RELAXED),
                      db->cfg.max_head_bytes);
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
        kiln_db__recount_bytes(db);
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
    t->flushed_ns = kiln_mono_ns();
    pthread_rwlock_unlock(&db->cut);
    return true;
}

/* Drops the heads whose blocks are now in the set and whose retire delay
 * has passed (at once when forced); true when none is left. */
static bool retire(kiln_db_t *db, bool force)
{
    size_t n;
    tenant_head **ts = kiln_db__tenants(db, &n);
    bool all = true;
    int64_t now = kiln_mono_ns();
    pthread_rwlock_wrlock(&db->cut);
    for (size_t i = 0; i < n; i++) {
        tenant_head *t = ts[i];
        if (t->flushing == NULL)
            continue;
        if (t->flushed_ulid[0] == '\0' ||
            (!force && now - t->flushed_ns < db->cfg.retire_delay_ns)) {
            all = false;
            continue;
        }
        kiln_head_destroy(t->flushing);
        t->flushing = NULL;
        t->flushed_ulid[0] = '\0';
    }
    kiln_db__recount_bytes(db);
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
    if (retire(db, force) && ok && all_cut && seg != 0)
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
    size_t appending; /* the WAL replayed may hold more than the budget */
    kiln_db_head_bytes(db, &appending, NULL);
    if (db->cfg.max_head_bytes != 0 && appending >= db->cfg.max_head_bytes)
        kiln_ticker_kick(&db->flusher);
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
