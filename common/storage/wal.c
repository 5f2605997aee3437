/* SPDX-License-Identifier: Apache-2.0
 * wal: leader/follower group commit over segfile.h's segments. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "segfile.h"
#include "xmalloc.h"

#define HDR KILN_SEGFILE_HDR

/* What a waiting appender is told by the leader that took its record. */
enum { WAIT_OK, WAIT_FAILED, WAIT_LEAD };

/* An appender waiting for its record (on its own stack). The leader that
 * wrote the record's batch sets outcome and posts sem, or makes it the
 * next leader (WAIT_LEAD): a waiter wakes once, for its own batch, and
 * returns without taking the log's mutex again. Waking every waiter of
 * the log at each sync (one condition variable) cost more than the write
 * itself with many connections: each woke for every batch and they all
 * fought for the mutex. */
typedef struct waiter {
    sem_t sem;
    int outcome;
    struct waiter *next;
} waiter;

/* Records waiting to be written, as pieces of one writev: each record's
 * frame header and payload stay where their appender keeps them (it waits
 * until they are written), so a batch copies no record. */
typedef struct batch {
    struct iovec *iov;
    size_t n_iov, cap;
    size_t bytes;   /* framed bytes */
    size_t records; /* each two pieces */
} batch;

struct kiln_wal {
    char *dir;
    kiln_wal_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t idle;  /* broadcast when a batch is done (rotate waits) */
    pthread_cond_t delay; /* never signalled: the leader's max_delay sleep */
    int fd;
    uint64_t seg;     /* current segment id */
    size_t seg_bytes; /* bytes in the current segment */
    batch pending;    /* framed records not yet written */
    batch spare;      /* empty; the last batch's array, for pending to take */
    waiter *waiters;  /* appenders of pending's records, but a chosen leader */
    int leader;       /* a leader is writing, or one is chosen for pending */
    kiln_wal_stats stats;
};

static kiln_status open_segment(kiln_wal_t *w, uint64_t id, kiln_err *err)
{
    char path[4096];
    kiln_segfile_path(w->dir, id, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return kiln_err_set(err, KILN_UNAVAILABLE, "wal: cannot open %s: %s", path,
                            strerror(errno));
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg = id;
    w->seg_bytes = 0;
    return KILN_OK;
}

kiln_status kiln_wal_open(const char *dir, const kiln_wal_config *cfg, kiln_wal_t **out,
                          kiln_err *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "wal: cannot create %s: %s", dir,
                            strerror(errno));
    kiln_wal_t *w = kiln_xcalloc(1, sizeof(*w));
    w->dir = kiln_xstrdup(dir);
    w->cfg = *cfg;
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->idle, NULL);
    pthread_cond_init(&w->delay, NULL);
    size_t n;
    uint64_t *ids = kiln_segfile_list(dir, &n);
    kiln_status st = open_segment(w, n ? ids[n - 1] + 1 : 1, err);
    free(ids);
    if (st != KILN_OK) {
        kiln_wal_close(w);
        return st;
    }
    *out = w;
    return KILN_OK;
}

void kiln_wal_close(kiln_wal_t *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w->pending.iov);
    free(w->spare.iov);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->delay);
    free(w->dir);
    free(w);
}

kiln_status kiln_wal_replay(kiln_wal_t *w,
                            void (*fn)(void *ctx, uint64_t segment, const uint8_t *rec, size_t len),
                            void *ctx, kiln_err *err)
{
    size_t n;
    uint64_t *ids = kiln_segfile_list(w->dir, &n);
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < n && st == KILN_OK; i++) {
        if (ids[i] != w->seg)
            st = kiln_segfile_replay(w->dir, ids[i], fn, ctx, err);
    }
    free(ids);
    return st;
}

/* Writes iov[0..n) whole, at most IOV_MAX pieces a call, resuming after a
 * short write (iov is consumed). */
static bool write_all(int fd, struct iovec *iov, size_t n)
{
    while (n > 0) {
        ssize_t r = writev(fd, iov, n < IOV_MAX ? (int)n : IOV_MAX);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        size_t done = (size_t)r;
        for (; n > 0 && done >= iov->iov_len; iov++, n--)
            done -= iov->iov_len;
        if (done > 0) { /* the piece a short write ended in */
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return true;
}

/* Writes and syncs a batch; on failure cuts what was written, so the
 * segment stays a clean sequence of frames. */
static bool write_batch(kiln_wal_t *w, int fd, size_t seg_bytes, batch *b)
{
    if (write_all(fd, b->iov, b->n_iov) && (!w->cfg.fsync || fdatasync(fd) == 0))
        return true;
    KILN_LOG_ERROR("wal", "write or sync failed: %s; %zu records not acknowledged", strerror(errno),
                   b->records);
    if (ftruncate(fd, (off_t)seg_bytes) != 0)
        KILN_LOG_ERROR("wal", "ftruncate: %s", strerror(errno));
    return false;
}

/* Tells every waiter of a written batch its outcome; then, if one was
 * chosen, the next leader. Without the mutex: the list is the batch's. */
static void wake(waiter *list, bool ok, waiter *next_leader)
{
    while (list != NULL) {
        waiter *next = list->next; /* list is gone once posted */
        list->outcome = ok ? WAIT_OK : WAIT_FAILED;
        sem_post(&list->sem);
        list = next;
    }
    if (next_leader != NULL) {
        next_leader->outcome = WAIT_LEAD;
        sem_post(&next_leader->sem);
    }
}

/* Adds a record's frame header and payload to b; both must stay put until
 * b is written. */
static void batch_add(batch *b, const void *hdr, const void *rec, size_t len)
{
    KILN_GROW(b->iov, b->cap, b->n_iov + 2);
    b->iov[b->n_iov++] = (struct iovec){(void *)hdr, HDR};
    b->iov[b->n_iov++] = (struct iovec){(void *)rec, len};
    b->bytes += HDR + len;
    b->records++;
}

/* The leader's turn (w->leader already set for the caller): waits up to
 * max_delay for company, then writes and syncs everything pending, and
 * hands the records that came meanwhile to one of their appenders.
 * Called with w->mu held; returns without it, and whether the batch (the
 * caller's record with it, if any) is durable. */
static bool lead(kiln_wal_t *w)
{
    if (w->cfg.max_delay_ns > 0) {
        struct timespec dl = kiln_deadline_in(w->cfg.max_delay_ns);
        pthread_cond_timedwait(&w->delay, &w->mu, &dl);
    }
    batch b = w->pending;
    size_t seg_bytes = w->seg_bytes;
    waiter *list = w->waiters;
    w->pending = w->spare; /* empty, with the last batch's array */
    w->spare = (batch){NULL, 0, 0, 0, 0};
    w->waiters = NULL;
    int fd = w->fd;
    pthread_mutex_unlock(&w->mu);
    bool ok = write_batch(w, fd, seg_bytes, &b);
    pthread_mutex_lock(&w->mu);
    if (ok) {
        w->seg_bytes += b.bytes;
        w->stats.syncs++;
        w->stats.records += b.records;
        w->stats.bytes += b.bytes;
    }
    w->spare = (batch){b.iov, 0, b.cap, 0, 0};
    /* Records appended meanwhile have their appenders waiting: one of
     * them leads next (the leader flag stays taken for it). */
    waiter *next_leader = w->waiters;
    if (next_leader != NULL)
        w->waiters = next_leader->next;
    w->leader = next_leader != NULL;
    pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->mu);
    wake(list, ok, next_leader);
    return ok;
}

/* Waits, as me (on the caller's stack), for the leader that takes our
 * record, or to lead the next batch. Called with w->mu held; returns
 * without it, and whether our record is durable. */
static bool follow(kiln_wal_t *w, waiter *me)
{
    sem_init(&me->sem, 0, 0);
    me->next = w->waiters;
    w->waiters = me; /* off the list before it is posted, so before we return */
    pthread_mutex_unlock(&w->mu);
    while (sem_wait(&me->sem) != 0) /* EINTR only */
        ;
    bool ok;
    if (me->outcome == WAIT_LEAD) {
        pthread_mutex_lock(&w->mu);
        ok = lead(w); /* the batch holds our record */
    } else {
        ok = me->outcome == WAIT_OK;
    }
    sem_destroy(&me->sem);
    return ok;
}

kiln_status kiln_wal_append(kiln_wal_t *w, const void *rec, size_t len, uint64_t *segment,
                            kiln_err *err)
{
    if (len > UINT32_MAX)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "wal: record of %zu bytes too large", len);
    uint8_t hdr[HDR];
    kiln_segfile_frame(hdr, rec, len);
    pthread_mutex_lock(&w->mu);
    if (w->seg_bytes > w->cfg.segment_bytes && !w->leader && w->pending.records == 0)
        open_segment(w, w->seg + 1, NULL); /* on failure keep the current segment */
    batch_add(&w->pending, hdr, rec, len); /* both ours until we return */
    uint64_t seg = w->seg;
    bool ok;
    if (!w->leader) {
        w->leader = 1;
        ok = lead(w);
    } else {
        waiter me = {.outcome = WAIT_FAILED};
        ok = follow(w, &me);
    }
    if (!ok)
        return kiln_err_set(err, KILN_UNAVAILABLE, "wal: write failed; profile not stored");
    if (segment != NULL)
        *segment = seg;
    return KILN_OK;
}

uint64_t kiln_wal_rotate(kiln_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->leader || w->pending.records != 0) {
        if (!w->leader) {
            w->leader = 1;
            lead(w); /* failures are the appenders' to report */
            pthread_mutex_lock(&w->mu);
        } else {
            pthread_cond_wait(&w->idle, &w->mu);
        }
    }
    if (open_segment(w, w->seg + 1, NULL) != KILN_OK)
        KILN_LOG_ERROR("wal", "cannot start segment %" PRIu64 "; staying on %" PRIu64, w->seg + 1,
                       w->seg);
    uint64_t id = w->seg;
    pthread_mutex_unlock(&w->mu);
    return id;
}

void kiln_wal_remove_before(kiln_wal_t *w, uint64_t segment)
{
    kiln_segfile_remove_before(w->dir, segment);
}

void kiln_wal_stats_get(kiln_wal_t *w, kiln_wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
