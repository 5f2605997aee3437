/* SPDX-License-Identifier: Apache-2.0
 * objstore_cache: a bounded local cache of block objects in front of any
 * backend: whole index and symbols objects and sample chunks (by range),
 * which are immutable once written. Each entry is a file <dir>/<hash>
 * starting with its key; an in-memory table keeps sizes and last use, and
 * the least recently used entries go when the total passes the maximum.
 * The directory's entries are taken back at open, so a restart starts warm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "objstore_int.h"
#include "xmalloc.h"

#define MOD "objstore"
#define KEY_MAX 1200

typedef struct entry {
    uint64_t key;  /* hash of (name, off, len) */
    uint64_t name; /* hash of name, to drop every range of a deleted object */
    uint64_t size; /* file bytes */
    uint64_t used; /* tick of the last hit or insert */
} entry;

struct kiln_objcache {
    char *dir;
    uint64_t max;
    pthread_mutex_t mu; /* guards everything below */
    entry *e;
    size_t n, cap;
    uint64_t bytes, tick;
    atomic_uint_least64_t hits, misses, hit_bytes, evicted;
};

bool kiln_objcache__cacheable(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *last = slash ? slash + 1 : name;
    return strstr(name, "/blocks/") != NULL &&
           (strcmp(last, "index") == 0 || strcmp(last, "symbols") == 0 ||
            strcmp(last, "samples") == 0);
}

/* The key written at the start of an entry's file, and its hash. */
static size_t key_text(const char *name, uint64_t off, size_t len, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s\n%llu\n%llu\n", name, (unsigned long long)off,
                     (unsigned long long)(len == SIZE_MAX ? 0 : len + 1));
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void entry_path(const kiln_objcache_t *c, uint64_t key, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016llx", c->dir, (unsigned long long)key);
}

static size_t find(const kiln_objcache_t *c, uint64_t key)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].key == key)
            return i;
    return SIZE_MAX;
}

/* Removes entry i (its file too). Caller holds mu. */
static void remove_at(kiln_objcache_t *c, size_t i)
{
    char path[4096];
    entry_path(c, c->e[i].key, path, sizeof(path));
    unlink(path);
    c->bytes -= c->e[i].size;
    c->e[i] = c->e[--c->n];
}

/* Evicts least recently used entries until `need` more bytes fit. */
static void make_room(kiln_objcache_t *c, uint64_t need)
{
    while (c->n > 0 && c->bytes + need > c->max) {
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used)
                lru = i;
        remove_at(c, lru);
        atomic_fetch_add(&c->evicted, 1);
    }
}

static void add(kiln_objcache_t *c, uint64_t key, uint64_t name, uint64_t size)
{
    KILN_GROW(c->e, c->cap, c->n + 1);
    c->e[c->n++] = (entry){key, name, size, ++c->tick};
    c->bytes += size;
}

/* Reads the entry file: its key must match (a hash collision is a miss). */
static bool read_entry(const char *path, const char *key, size_t klen, kiln_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char head[KEY_MAX];
    bool ok = fread(head, 1, klen, f) == klen && memcmp(head, key, klen) == 0;
    size_t before = out->len;
    char buf[65536];
    for (size_t n; ok && (n = fread(buf, 1, sizeof(buf), f)) > 0;)
        ok = kiln_buf_append(out, buf, n);
    ok = ok && !ferror(f);
    fclose(f);
    if (!ok)
        out->len = before;
    return ok;
}

bool kiln_objcache__get(kiln_objcache_t *c, const char *name, uint64_t off, size_t len,
                        kiln_buf *out)
{
    char key[KEY_MAX], path[4096];
    size_t klen = key_text(name, off, len, key, sizeof(key));
    uint64_t h = XXH3_64bits(key, klen);
    pthread_mutex_lock(&c->mu);
    size_t i = klen ? find(c, h) : SIZE_MAX;
    if (i != SIZE_MAX)
        c->e[i].used = ++c->tick;
    pthread_mutex_unlock(&c->mu);
    entry_path(c, h, path, sizeof(path));
    size_t before = out->len;
    bool hit = i != SIZE_MAX && read_entry(path, key, klen, out);
    atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
    if (hit)
        atomic_fetch_add(&c->hit_bytes, out->len - before);
    return hit;
}

/* Writes the entry to a temporary file and renames it into place. */
static bool write_entry(const kiln_objcache_t *c, uint64_t h, const char *key, size_t klen,
                        const void *data, size_t n)
{
    char path[4096], tmp[4200];
    entry_path(c, h, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp-%lx", path, (unsigned long)pthread_self());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(key, 1, klen, f) == klen && fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) == 0)
        return true;
    unlink(tmp);
    return false;
}

void kiln_objcache__put(kiln_objcache_t *c, const char *name, uint64_t off, size_t len,
                        const void *data, size_t n)
{
    char key[KEY_MAX];
    size_t klen = key_text(name, off, len, key, sizeof(key));
    uint64_t size = klen + n;
    if (klen == 0 || size > c->max / 4) /* one entry never takes most of the cache */
        return;
    uint64_t h = XXH3_64bits(key, klen);
    pthread_mutex_lock(&c->mu);
    bool have = find(c, h) != SIZE_MAX;
    if (!have)
        make_room(c, size);
    pthread_mutex_unlock(&c->mu);
    if (have || !write_entry(c, h, key, klen, data, n))
        return;
    pthread_mutex_lock(&c->mu);
    if (find(c, h) == SIZE_MAX) /* another thread may have added it meanwhile */
        add(c, h, XXH3_64bits(name, strlen(name)), size);
    pthread_mutex_unlock(&c->mu);
}

void kiln_objcache__drop(kiln_objcache_t *c, const char *name)
{
    uint64_t nh = XXH3_64bits(name, strlen(name));
    pthread_mutex_lock(&c->mu);
    for (size_t i = c->n; i-- > 0;)
        if (c->e[i].name == nh)
            remove_at(c, i);
    pthread_mutex_unlock(&c->mu);
}

/* Takes back the entries of an earlier run (their name hashes unknown:
 * such an entry of a deleted object is never asked for again and ages
 * out), and removes temporary files. */
static void load_dir(kiln_objcache_t *c)
{
    DIR *d = opendir(c->dir);
    if (d == NULL)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name);
        struct stat st;
        if (de->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        char *end;
        unsigned long long key = strtoull(de->d_name, &end, 16);
        if (strlen(de->d_name) != 16 || *end != '\0')
            unlink(path);
        else
            add(c, key, 0, (uint64_t)st.st_size);
    }
    closedir(d);
    make_room(c, 0);
}

kiln_status kiln_objcache__open(const char *dir, uint64_t max, kiln_objcache_t **out, kiln_err *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "-storage.cache.dir %s: %s", dir,
                            strerror(errno));
    kiln_objcache_t *c = kiln_xcalloc(1, sizeof(*c));
    c->dir = kiln_xstrdup(dir);
    c->max = max;
    pthread_mutex_init(&c->mu, NULL);
    load_dir(c);
    KILN_LOG_INFO(MOD, "cache %s: %zu entries, %llu of %llu bytes", dir, c->n,
                  (unsigned long long)c->bytes, (unsigned long long)max);
    *out = c;
    return KILN_OK;
}

void kiln_objcache__close(kiln_objcache_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->e);
    free(c->dir);
    free(c);
}

void kiln_objcache__metrics(kiln_objcache_t *c, kiln_buf *out)
{
    pthread_mutex_lock(&c->mu);
    uint64_t bytes = c->bytes, n = c->n;
    pthread_mutex_unlock(&c->mu);
    kiln_buf_printf(out,
                    "# TYPE kiln_objstore_cache_hits_total counter\n"
                    "kiln_objstore_cache_hits_total %llu\n"
                    "# TYPE kiln_objstore_cache_misses_total counter\n"
                    "kiln_objstore_cache_misses_total %llu\n"
                    "# TYPE kiln_objstore_cache_hit_bytes_total counter\n"
                    "kiln_objstore_cache_hit_bytes_total %llu\n"
                    "# TYPE kiln_objstore_cache_evictions_total counter\n"
                    "kiln_objstore_cache_evictions_total %llu\n"
                    "# TYPE kiln_objstore_cache_bytes gauge\n"
                    "kiln_objstore_cache_bytes %llu\n"
                    "# TYPE kiln_objstore_cache_entries gauge\n"
                    "kiln_objstore_cache_entries %llu\n",
                    (unsigned long long)atomic_load(&c->hits),
                    (unsigned long long)atomic_load(&c->misses),
                    (unsigned long long)atomic_load(&c->hit_bytes),
                    (unsigned long long)atomic_load(&c->evicted), (unsigned long long)bytes,
                    (unsigned long long)n);
}
