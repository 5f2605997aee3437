/* SPDX-License-Identifier: Apache-2.0
 * segfile: segment names, frames, and replay with tail repair. */
#include "segfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* The frame checksum covers whole records, megabytes for a large profile:
 * it calls libxxhash, whose dispatcher on x86-64 takes its AVX2 or AVX-512
 * loop, rather than the SSE2 code inlined elsewhere for short keys
 * (XXH_INLINE_ALL, CMakeLists.txt). */
#undef XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h> /* XXH3_64bits is then the dispatcher's */
#endif

#include "log.h"
#include "xmalloc.h"

static uint32_t checksum(const uint8_t *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void kiln_segfile_frame(uint8_t hdr[KILN_SEGFILE_HDR], const void *rec, size_t len)
{
    put32(hdr, (uint32_t)len);
    put32(hdr + 4, checksum(rec, len));
}

void kiln_segfile_path(const char *dir, uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIu64 ".wal", dir, id);
}

uint64_t *kiln_segfile_list(const char *dir, size_t *n)
{
    uint64_t *ids = NULL;
    size_t cap = 0;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *end;
        unsigned long long id = strtoull(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".wal") == 0) {
            KILN_GROW(ids, cap, *n + 1);
            ids[(*n)++] = id;
        }
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* few segments: insertion sort */
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    return ids;
}

/* Reads a whole file into memory; NULL on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *p = NULL;
    if (fstat(fd, &st) == 0) {
        p = kiln_xmalloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        *len = got;
    }
    close(fd);
    return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

kiln_status kiln_segfile_replay(const char *dir, uint64_t id,
                                void (*fn)(void *, uint64_t, const uint8_t *, size_t), void *ctx,
                                kiln_err *err)
{
    char path[4096];
    kiln_segfile_path(dir, id, path, sizeof(path));
    size_t len = 0, off = 0;
    uint8_t *data = read_file(path, &len);
    if (data == NULL)
        return kiln_err_set(err, KILN_UNAVAILABLE, "wal: cannot read %s: %s", path,
                            strerror(errno));
    while (off + KILN_SEGFILE_HDR <= len) {
        uint32_t n = get32(data + off), sum = get32(data + off + 4);
        if (n > len - off - KILN_SEGFILE_HDR || checksum(data + off + KILN_SEGFILE_HDR, n) != sum)
            break;
        fn(ctx, id, data + off + KILN_SEGFILE_HDR, n);
        off += KILN_SEGFILE_HDR + n;
    }
    if (off != len && !all_zero(data + off, len - off))
        KILN_LOG_WARN("wal",
                      "segment %s: torn or corrupt record at offset %zu of %zu; truncating "
                      "(the %zu bytes after it are dropped, everything before is kept)",
                      path, off, len, len - off);
    if (off != len && truncate(path, (off_t)off) != 0)
        KILN_LOG_ERROR("wal", "truncate %s: %s", path, strerror(errno));
    free(data);
    return KILN_OK;
}

void kiln_segfile_remove_before(const char *dir, uint64_t segment)
{
    size_t n;
    uint64_t *ids = kiln_segfile_list(dir, &n);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= segment)
            continue;
        char path[4096];
        kiln_segfile_path(dir, ids[i], path, sizeof(path));
        if (unlink(path) != 0)
            KILN_LOG_WARN("wal", "cannot remove %s: %s", path, strerror(errno));
    }
    free(ids);
}
