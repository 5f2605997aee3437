/* SPDX-License-Identifier: Apache-2.0
 * maplog: segments reserved on disk and mapped shared; an append is a copy. */
#include "maplog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "segfile.h"
#include "xmalloc.h"

struct kiln_maplog {
    char *dir;
    size_t segment_bytes;
    bool sync;
    pthread_mutex_t mu;
    int fd;         /* the segment appends go to */
    uint64_t seg;   /* its id */
    uint8_t *map;   /* its mapping, size bytes */
    size_t size;    /* reserved and mapped */
    size_t pos;     /* bytes framed into it */
    uint64_t bytes; /* since open */
};

/* Cuts the current segment to what it holds and lets it go. */
static void close_segment(kiln_maplog_t *l)
{
    if (l->map != NULL)
        munmap(l->map, l->size);
    if (l->fd >= 0 && ftruncate(l->fd, (off_t)l->pos) != 0)
        KILN_LOG_WARN("wal", "%s: segment %" PRIu64 " not cut to its end: %s", l->dir, l->seg,
                      strerror(errno));
    if (l->fd >= 0)
        close(l->fd);
    l->map = NULL;
    l->fd = -1;
}

/* Segment id of at least need bytes, reserved on disk first: a page of the
 * mapping that the file system could not back would kill the process
 * (SIGBUS) at the copy, where a full disk must be an error. */
static kiln_status open_segment(kiln_maplog_t *l, uint64_t id, size_t need, kiln_err *err)
{
    char path[4096];
    kiln_segfile_path(l->dir, id, path, sizeof(path));
    size_t size = need > l->segment_bytes ? need : l->segment_bytes;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", path, strerror(errno));
    int rc = posix_fallocate(fd, 0, (off_t)size);
    void *map = rc == 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", path, strerror(rc != 0 ? rc : errno));
        close(fd);
        unlink(path);
        return err->code;
    }
    /* Rare (a full segment, a snapshot): the old one's sync under the mutex. */
    if (l->sync && l->fd >= 0 && fdatasync(l->fd) != 0)
        KILN_LOG_ERROR("wal", "%s: sync of segment %" PRIu64 ": %s", l->dir, l->seg,
                       strerror(errno));
    close_segment(l);
    l->fd = fd;
    l->seg = id;
    l->map = map;
    l->size = size;
    l->pos = 0;
    return KILN_OK;
}

kiln_status kiln_maplog_open(const char *dir, size_t segment_bytes, bool sync, kiln_maplog_t **out,
                             kiln_err *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", dir, strerror(errno));
    kiln_maplog_t *l = kiln_xcalloc(1, sizeof(*l));
    l->dir = kiln_xstrdup(dir);
    l->segment_bytes = segment_bytes;
    l->sync = sync;
    l->fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    size_t n;
    uint64_t *ids = kiln_segfile_list(dir, &n);
    kiln_status st = open_segment(l, n ? ids[n - 1] + 1 : 1, 0, err);
    free(ids);
    if (st != KILN_OK) {
        kiln_maplog_close(l);
        return st;
    }
    *out = l;
    return KILN_OK;
}

void kiln_maplog_close(kiln_maplog_t *l)
{
    if (l == NULL)
        return;
    close_segment(l);
    pthread_mutex_destroy(&l->mu);
    free(l->dir);
    free(l);
}

kiln_status kiln_maplog_replay(kiln_maplog_t *l,
                               void (*fn)(void *ctx, uint64_t segment, const uint8_t *rec,
                                          size_t len),
                               void *ctx, kiln_err *err)
{
    size_t n;
    uint64_t *ids = kiln_segfile_list(l->dir, &n);
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < n && st == KILN_OK; i++) {
        if (ids[i] < l->seg)
            st = kiln_segfile_replay(l->dir, ids[i], fn, ctx, err);
    }
    free(ids);
    return st;
}

kiln_status kiln_maplog_append(kiln_maplog_t *l, const void *rec, size_t len, kiln_err *err)
{
    if (len > UINT32_MAX - KILN_SEGFILE_HDR)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "record of %zu bytes too large", len);
    uint8_t hdr[KILN_SEGFILE_HDR];
    kiln_segfile_frame(hdr, rec, len);
    size_t framed = KILN_SEGFILE_HDR + len;
    pthread_mutex_lock(&l->mu);
    kiln_status st = KILN_OK;
    if (l->size - l->pos < framed)
        st = open_segment(l, l->seg + 1, framed, err);
    if (st == KILN_OK) {
        memcpy(l->map + l->pos + KILN_SEGFILE_HDR, rec, len);
        memcpy(l->map + l->pos, hdr, sizeof(hdr));
        l->pos += framed;
        l->bytes += framed;
    }
    pthread_mutex_unlock(&l->mu);
    return st;
}

kiln_status kiln_maplog_sync(kiln_maplog_t *l, kiln_err *err)
{
    if (!l->sync)
        return KILN_OK;
    /* A descriptor of our own: the sync runs without the mutex, appends go
     * on meanwhile, and a rotation may close the log's. */
    pthread_mutex_lock(&l->mu);
    int fd = dup(l->fd);
    pthread_mutex_unlock(&l->mu);
    int rc = fd >= 0 ? fdatasync(fd) : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        return kiln_err_set(err, KILN_UNAVAILABLE, "%s: sync: %s", l->dir, strerror(e));
    return KILN_OK;
}

uint64_t kiln_maplog_rotate(kiln_maplog_t *l)
{
    pthread_mutex_lock(&l->mu);
    kiln_err err = {0};
    if (open_segment(l, l->seg + 1, 0, &err) != KILN_OK)
        KILN_LOG_ERROR("wal", "cannot start a segment (%s); staying on %" PRIu64, err.msg, l->seg);
    uint64_t id = l->seg;
    pthread_mutex_unlock(&l->mu);
    return id;
}

void kiln_maplog_remove_before(kiln_maplog_t *l, uint64_t segment)
{
    kiln_segfile_remove_before(l->dir, segment);
}

uint64_t kiln_maplog_bytes(kiln_maplog_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t b = l->bytes;
    pthread_mutex_unlock(&l->mu);
    return b;
}
