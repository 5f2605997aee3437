/* SPDX-License-Identifier: Apache-2.0
 * objstore_fs: the filesystem backend. Puts write a temp file (io_uring or pwrite), fsync it,
 * rename it into place and fsync the directory; reads use pread. */
#include "objstore_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

#define MOD "objstore"
#define NAME_MAX_LEN 1024 /* longest object name accepted */
#define ROOT_MAX_LEN 2048 /* longest root directory accepted */
#define COMP_MAX_LEN 255  /* longest name component (NAME_MAX) */
#define TMP_PREFIX ".tmp-"
#define TMP_KEEP 200         /* bytes of the last component kept in a temp name */
#define RING_DEPTH 8         /* chunks in flight per put */
#define CHUNK (1u << 20)     /* bytes per IORING_OP_WRITE */
#define MAX_IDLE_ROUNDS 1000 /* -EAGAIN/-EINTR rounds without progress before giving up */
#define OPEN_RETRIES 8       /* a concurrent delete may remove the parent we just made */

typedef struct fs_store {
    char *root;
    size_t root_len;
    pthread_mutex_t mu; /* guards ring: one put's writes are in flight at a time */
    struct io_uring ring;
    bool ring_inited;
    atomic_bool uring; /* false after init failure, opt-out, or a broken ring */
} fs_store;

/* ---- errors: every foreign error is translated and logged here, once ---- */

static const char *errno_name(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* Logs the raw errno once and returns KILN_UNAVAILABLE with err naming path and errno. */
static kiln_status fail_errno(kiln_err *err, const char *op, const char *path, int e)
{
    KILN_LOG_ERROR(MOD, "%s %s: %s errno=%s(%d)", op, path, strerror(e), errno_name(e), e);
    return kiln_err_set(err, KILN_UNAVAILABLE, "objstore: %s %s: %s (errno %s(%d))", op, path,
                        strerror(e), errno_name(e), e);
}

/* ENOENT and friends mean "no such object" for reads. */
static bool is_absent(int e)
{
    return e == ENOENT || e == ENOTDIR || e == EISDIR;
}

static kiln_status read_fail(kiln_err *err, const char *op, const char *path, const char *name,
                             int e)
{
    if (is_absent(e))
        return kiln_err_set(err, KILN_NOT_FOUND, "objstore: no object %s", name);
    return fail_errno(err, op, path, e);
}

/* ---- names ---- */

static bool comp_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* A component is [A-Za-z0-9._-]{1,255}, not "." or "..", and not a temp-file name. */
static bool comp_ok(const char *p, size_t n)
{
    if (n == 0 || n > COMP_MAX_LEN)
        return false;
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return false;
    if (n >= sizeof(TMP_PREFIX) - 1 && memcmp(p, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!comp_char_ok(p[i]))
            return false;
    return true;
}

/* Checks the components of name[0..n) separated by '/'. */
static bool path_ok(const char *name, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '/') {
            if (!comp_ok(name + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

kiln_status kiln_objstore__check_name(const char *name, kiln_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NAME_MAX_LEN || !path_ok(name, n))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "objstore: invalid object name \"%.*s\"",
                            100, name ? name : "");
    return KILN_OK;
}

/* <root>/<name>; the lengths were checked at open and by check_name, so it always fits. */
static void obj_path(const fs_store *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->root, name);
}

/* ---- directories ---- */

/* fsync of a directory makes the entries created or renamed in it durable. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return e;
}

/* Creates every directory of path[0..n) from offset `from` on. With sync, the parent of each
 * directory is fsynced, so that a durable object never hangs off a forgotten directory; that
 * includes directories that already existed, since a concurrent put may have just made one
 * and not yet made it durable. Returns 0 or an errno. */
static int mkdirs(char *path, size_t from, size_t n, bool sync)
{
    for (size_t i = from; i <= n; i++) {
        if (i != n && path[i] != '/')
            continue;
        if (i == 0)
            continue; /* the leading '/' of an absolute path */
        char saved = path[i];
        path[i] = '\0';
        int e = mkdir(path, 0755) == 0 ? 0 : errno;
        if ((e == 0 || e == EEXIST) && sync) {
            char *slash = strrchr(path, '/');
            if (slash != NULL) {
                *slash = '\0';
                e = fsync_dir(slash == path ? "/" : path);
                *slash = '/';
            }
        }
        path[i] = saved;
        if (e != 0 && e != EEXIST)
            return e;
    }
    return 0;
}

/* ---- open / close ---- */

static bool uring_disabled_by_env(void)
{
    const char *v = getenv("KILN_OBJSTORE_NO_URING");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static void init_ring(fs_store *s)
{
    atomic_init(&s->uring, false);
    if (uring_disabled_by_env()) {
        KILN_LOG_INFO(MOD, "io_uring disabled by KILN_OBJSTORE_NO_URING; using pwrite");
        return;
    }
    int r = io_uring_queue_init(RING_DEPTH, &s->ring, 0);
    if (r < 0) {
        KILN_LOG_WARN(MOD, "io_uring unavailable, using pwrite: %s errno=%s(%d)", strerror(-r),
                      errno_name(-r), -r);
        return;
    }
    s->ring_inited = true;
    atomic_store(&s->uring, true);
}

kiln_status kiln_objstore__fs_open(const char *dir, fs_store **out, kiln_err *err)
{
    size_t n = dir ? strlen(dir) : 0;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n > ROOT_MAX_LEN)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "objstore: invalid root directory");
    char *root = kiln_xstrndup(dir, n);
    int e = mkdirs(root, 0, n, false);
    struct stat st;
    if (e == 0 && stat(root, &st) != 0)
        e = errno;
    else if (e == 0 && !S_ISDIR(st.st_mode))
        e = ENOTDIR;
    if (e != 0) {
        kiln_status rc = fail_errno(err, "open", root, e);
        free(root);
        return rc;
    }
    fs_store *s = kiln_xcalloc(1, sizeof(*s));
    s->root = root;
    s->root_len = n;
    pthread_mutex_init(&s->mu, NULL);
    init_ring(s);
    *out = s;
    return KILN_OK;
}

static void fs_close(fs_store *s)
{
    if (s == NULL)
        return;
    if (s->ring_inited)
        io_uring_queue_exit(&s->ring);
    pthread_mutex_destroy(&s->mu);
    free(s->root);
    free(s);
}

bool kiln_objstore__fs_uses_uring(const fs_store *s)
{
    return atomic_load(&s->uring);
}

/* ---- writing: io_uring ---- */

/* One chunk of the object still to be written; len == 0 marks a free slot. */
typedef struct piece {
    uint64_t off;
    unsigned len;
} piece;

/* Queues one write per busy slot and submits them. Returns the number submitted (all of them
 * unless *e is set: then the ring refused the rest and must not be used again). */
static unsigned ring_submit(struct io_uring *ring, int fd, const char *data, const piece *p, int *e)
{
    unsigned queued = 0, done = 0;
    for (unsigned i = 0; i < RING_DEPTH; i++) {
        if (p[i].len == 0)
            continue;
        /* Never NULL: the ring has RING_DEPTH entries and every round reaps all it submits. */
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_write(sqe, fd, data + p[i].off, p[i].len, p[i].off);
        io_uring_sqe_set_data64(sqe, i);
        queued++;
    }
    for (int tries = 0; done < queued;) {
        int r = io_uring_submit(ring);
        if (r > 0) {
            done += (unsigned)r;
        } else if ((r == -EINTR || r == -EAGAIN) && ++tries < MAX_IDLE_ROUNDS) {
            continue;
        } else {
            *e = r < 0 ? -r : EIO;
            break;
        }
    }
    return done;
}

/* Waits for one completion. Writes in flight point into the caller's buffer, so they cannot be
 * abandoned: a ring that cannot be waited on any more is a fatal error. */
static struct io_uring_cqe *ring_wait(struct io_uring *ring)
{
    for (;;) {
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe(ring, &cqe);
        if (r == 0)
            return cqe;
        if (r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
            KILN_LOG_ERROR(MOD, "io_uring_wait_cqe: %s errno=%s(%d)", strerror(-r), errno_name(-r),
                           -r);
            abort();
        }
    }
}

/* Reaps n completions, advancing each slot by what was written (a short write leaves the rest
 * of its chunk in the slot; -EAGAIN/-EINTR leave it whole). Returns the first error as an
 * errno (0 if none) and adds the bytes written to *written. */
static int ring_reap(struct io_uring *ring, piece *p, unsigned n, size_t *written)
{
    int first = 0;
    for (unsigned i = 0; i < n; i++) {
        struct io_uring_cqe *cqe = ring_wait(ring);
        piece *pc = &p[io_uring_cqe_get_data64(cqe)];
        int res = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        if (res == -EAGAIN || res == -EINTR)
            continue;
        if (res <= 0) {
            /* A regular file never writes 0 bytes of a non-empty chunk. */
            first = first != 0 ? first : (res < 0 ? -res : EIO);
            continue;
        }
        pc->off += (unsigned)res;
        pc->len -= (unsigned)res;
        *written += (size_t)res;
    }
    return first;
}

/* Fills free slots with the next chunks; returns true while any slot is busy. */
static bool fill_slots(piece *p, size_t len, size_t *next)
{
    bool busy = false;
    for (unsigned i = 0; i < RING_DEPTH; i++) {
        if (p[i].len == 0 && *next < len) {
            size_t n = len - *next < CHUNK ? len - *next : CHUNK;
            p[i] = (piece){.off = *next, .len = (unsigned)n};
            *next += n;
        }
        busy |= p[i].len != 0;
    }
    return busy;
}

/* Writes data to fd through the ring, up to RING_DEPTH chunks per round; every round reaps all
 * it submitted, so nothing is in flight on return. Returns 0 or an errno; *broken is set when
 * the ring itself failed (rather than the write). Caller holds s->mu. */
static int ring_write_all(struct io_uring *ring, int fd, const char *data, size_t len, bool *broken)
{
    piece p[RING_DEPTH] = {{0, 0}};
    size_t next = 0;
    for (int idle = 0; fill_slots(p, len, &next);) {
        int e = 0;
        size_t written = 0;
        unsigned n = ring_submit(ring, fd, data, p, &e);
        *broken = e != 0;
        int we = ring_reap(ring, p, n, &written);
        if (e != 0 || we != 0)
            return e != 0 ? e : we;
        idle = written > 0 ? 0 : idle + 1;
        if (idle >= MAX_IDLE_ROUNDS)
            return EAGAIN;
    }
    return 0;
}

/* ---- writing: pwrite fallback ---- */

static int pwrite_all(int fd, const char *data, size_t len)
{
    size_t off = 0;
    for (int idle = 0; off < len;) {
        ssize_t w = pwrite(fd, data + off, len - off, (off_t)off);
        if (w > 0) {
            off += (size_t)w;
            idle = 0;
        } else if (w < 0 && (errno == EINTR || errno == EAGAIN) && ++idle < MAX_IDLE_ROUNDS) {
            continue;
        } else {
            return w < 0 ? errno : EIO;
        }
    }
    return 0;
}

/* Writes all of data to fd and fsyncs it. fsync(2) runs outside the ring's mutex so that
 * concurrent puts overlap their (slow) flushes; only the copies into the page cache are
 * serialized. Returns 0 or an errno. */
static int write_file(fs_store *s, int fd, const char *data, size_t len)
{
    int e = -1; /* -1: not written yet */
    if (len > 0 && atomic_load(&s->uring)) {
        pthread_mutex_lock(&s->mu);
        if (atomic_load(&s->uring)) {
            bool broken = false;
            e = ring_write_all(&s->ring, fd, data, len, &broken);
            if (broken) {
                /* Unsubmitted entries may linger in the ring: never use it again, and write
                 * this object again with pwrite. */
                KILN_LOG_ERROR(MOD, "io_uring submit failed, switching to pwrite: %s errno=%s(%d)",
                               strerror(e), errno_name(e), e);
                atomic_store(&s->uring, false);
                e = -1;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (e < 0)
        e = pwrite_all(fd, data, len);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    return e;
}

/* ---- put ---- */

/* Creates "<dir>/.tmp-<last>-<random>" exclusively, making the parent directories as needed.
 * tmp receives the path. Returns the fd, or -errno with *what naming the failed step. */
static int create_temp(fs_store *s, char *path, char *tmp, size_t cap, const char **what)
{
    char *slash = strrchr(path, '/');
    const char *last = slash + 1;
    for (int tries = 0; tries < OPEN_RETRIES; tries++) {
        int e = mkdirs(path, s->root_len + 1, (size_t)(slash - path), true);
        if (e != 0) {
            *what = "mkdir";
            return -e;
        }
        uint64_t rnd;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
            rnd = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)tmp;
        snprintf(tmp, cap, "%.*s/" TMP_PREFIX "%.*s-%016llx", (int)(slash - path), path, TMP_KEEP,
                 last, (unsigned long long)rnd);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        /* ENOENT: a concurrent delete removed the new parent; EEXIST: a random clash. */
        if (errno != ENOENT && errno != EEXIST) {
            *what = "create";
            return -errno;
        }
    }
    *what = "create";
    return -EAGAIN;
}

/* Makes the rename of an object durable: fsync of the directory holding path. */
static int fsync_parent(char *path)
{
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int e = fsync_dir(path);
    *slash = '/';
    return e;
}

static kiln_status fs_put(fs_store *s, const char *name, const void *data, size_t len,
                          kiln_err *err)
{
    kiln_status st = kiln_objstore__check_name(name, err);
    if (st != KILN_OK)
        return st;
    char path[PATH_MAX], tmp[PATH_MAX];
    obj_path(s, name, path, sizeof(path));
    const char *what = "create";
    int fd = create_temp(s, path, tmp, sizeof(tmp), &what);
    if (fd < 0)
        return fail_errno(err, what, path, -fd);
    int e = write_file(s, fd, data, len);
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return fail_errno(err, "write", tmp, e);
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return fail_errno(err, "rename to", path, e);
    }
    /* The object is in place; if its directory entry cannot be made durable, the put still
     * fails so that the caller does not rely on it surviving a crash. */
    e = fsync_parent(path);
    return e == 0 ? KILN_OK : fail_errno(err, "fsync directory of", path, e);
}

/* ---- reads ---- */

/* Opens an object for reading and returns its size. 0 or an errno. */
static int open_obj(const char *path, int *fd, uint64_t *size)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return errno;
    struct stat st;
    int e = fstat(*fd, &st) != 0 ? errno : (S_ISREG(st.st_mode) ? 0 : EISDIR);
    if (e != 0) {
        close(*fd);
        *fd = -1;
        return e;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Reads len bytes at off into p. Objects are replaced by rename, never changed in place, so
 * an early end of file means the object is corrupt. Returns 0 or an errno. */
static int pread_all(int fd, char *p, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        else
            return r < 0 ? errno : EIO;
    }
    return 0;
}

/* Appends [off, off+len) of the object to out; len == SIZE_MAX means "to the end". */
static kiln_status read_obj(fs_store *s, const char *name, uint64_t off, size_t len, kiln_buf *out,
                            kiln_err *err)
{
    kiln_status st = kiln_objstore__check_name(name, err);
    if (st != KILN_OK)
        return st;
    char path[PATH_MAX];
    obj_path(s, name, path, sizeof(path));
    int fd;
    uint64_t size = 0;
    int e = open_obj(path, &fd, &size);
    if (e != 0)
        return read_fail(err, "open", path, name, e);
    if (len == SIZE_MAX)
        len = (size_t)size;
    if (off > size || len > size - off) {
        close(fd);
        return kiln_err_set(err, KILN_OUT_OF_RANGE,
                            "objstore: range %llu+%zu past the end of %s (%llu bytes)",
                            (unsigned long long)off, len, name, (unsigned long long)size);
    }
    if (!kiln_buf_reserve(out, len)) {
        close(fd);
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "objstore: %s does not fit the buffer",
                            name);
    }
    e = len > 0 ? pread_all(fd, out->ptr + out->len, len, off) : 0;
    close(fd);
    if (e != 0)
        return fail_errno(err, "read", path, e);
    out->len += len;
    out->ptr[out->len] = '\0'; /* as kiln_buf_append does */
    return KILN_OK;
}

static kiln_status fs_get(fs_store *s, const char *name, kiln_buf *out, kiln_err *err)
{
    return read_obj(s, name, 0, SIZE_MAX, out, err);
}

static kiln_status fs_get_range(fs_store *s, const char *name, uint64_t off, size_t len,
                                kiln_buf *out, kiln_err *err)
{
    if (len == SIZE_MAX)
        return kiln_err_set(err, KILN_OUT_OF_RANGE, "objstore: range too long");
    return read_obj(s, name, off, len, out, err);
}

static kiln_status fs_size(fs_store *s, const char *name, uint64_t *size, kiln_err *err)
{
    kiln_status st = kiln_objstore__check_name(name, err);
    if (st != KILN_OK)
        return st;
    char path[PATH_MAX];
    obj_path(s, name, path, sizeof(path));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return read_fail(err, "stat", path, name, errno);
    if (!S_ISREG(sb.st_mode))
        return read_fail(err, "stat", path, name, EISDIR);
    *size = (uint64_t)sb.st_size;
    return KILN_OK;
}

/* ---- list ---- */

/* Growable array of owned strings, used both as the walk's work list and its result. */
typedef struct strvec {
    char **v;
    size_t len, cap;
} strvec;

static void strvec_push(strvec *sv, char *str)
{
    KILN_GROW(sv->v, sv->cap, sv->len + 1);
    sv->v[sv->len++] = str;
}

static void strvec_free(strvec *sv)
{
    for (size_t i = 0; i < sv->len; i++)
        free(sv->v[i]);
    free(sv->v);
    *sv = (strvec){0};
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The list walk's state: which prefix, where, and what it found. */
typedef struct walk {
    const fs_store *s;
    const char *prefix;
    size_t prefix_len;
    strvec todo;  /* directories still to read, relative to root ("" is root itself) */
    strvec found; /* matching object names */
} walk;

/* Classifies an entry: 'd' directory, 'f' regular file, 0 anything else or vanished. */
static char entry_kind(int dfd, const struct dirent *de)
{
    if (de->d_type == DT_DIR)
        return 'd';
    if (de->d_type == DT_REG)
        return 'f';
    struct stat st;
    if (de->d_type != DT_UNKNOWN || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 'd' : (S_ISREG(st.st_mode) ? 'f' : 0);
}

/* Files matching the prefix are collected; directories that could hold matches are queued. */
static void walk_entry(walk *w, const char *rel, int dfd, const struct dirent *de)
{
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strncmp(n, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
        return;
    char kind = entry_kind(dfd, de);
    if (kind == 0)
        return;
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_printf(&b, "%s%s%s%s", rel, rel[0] ? "/" : "", n, kind == 'd' ? "/" : "");
    /* A directory "x/" is worth reading when the prefix starts with it or it starts with the
     * prefix; a file matches when its name starts with the prefix. */
    size_t m = b.len < w->prefix_len ? b.len : w->prefix_len;
    bool match = strncmp(b.ptr, w->prefix, m) == 0 && (kind == 'd' || b.len >= w->prefix_len);
    if (!match) {
        kiln_buf_free(&b);
        return;
    }
    if (kind == 'd')
        b.ptr[--b.len] = '\0';
    size_t len;
    strvec_push(kind == 'd' ? &w->todo : &w->found, kiln_buf_detach(&b, &len));
}

/* Reads one directory (relative to root). Vanished directories are skipped. 0 or an errno;
 * path receives the directory's path. */
static int walk_dir(walk *w, const char *rel, char *path, size_t cap)
{
    int pn = snprintf(path, cap, "%s%s%s", w->s->root, rel[0] ? "/" : "", rel);
    if (pn < 0 || (size_t)pn >= cap)
        return ENAMETOOLONG; /* only directories made by hand can be this deep */
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT || errno == ENOTDIR ? 0 : errno;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL)
            break;
        walk_entry(w, rel, dirfd(d), de);
    }
    int e = errno;
    closedir(d);
    return e;
}

/* A prefix is a name that may end in a partial component or a '/'. */
kiln_status kiln_objstore__check_prefix(const char *prefix, size_t *dir_len, kiln_err *err)
{
    size_t n = strlen(prefix);
    const char *slash = strrchr(prefix, '/');
    *dir_len = slash ? (size_t)(slash - prefix) : 0;
    bool ok = n <= NAME_MAX_LEN && (slash == NULL || path_ok(prefix, *dir_len));
    for (size_t i = *dir_len; ok && i < n; i++)
        ok = comp_char_ok(prefix[i]) || (i == *dir_len && prefix[i] == '/');
    if (!ok)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "objstore: invalid prefix \"%.*s\"", 100,
                            prefix);
    return KILN_OK;
}

static kiln_status fs_list(fs_store *s, const char *prefix, void (*fn)(void *ctx, const char *name),
                           void *ctx, kiln_err *err)
{
    if (prefix == NULL)
        prefix = "";
    size_t dir_len;
    kiln_status st = kiln_objstore__check_prefix(prefix, &dir_len, err);
    if (st != KILN_OK)
        return st;
    walk w = {.s = s, .prefix = prefix, .prefix_len = strlen(prefix)};
    strvec_push(&w.todo, kiln_xstrndup(prefix, dir_len));
    char path[PATH_MAX];
    int e = 0;
    while (e == 0 && w.todo.len > 0) {
        char *rel = w.todo.v[--w.todo.len];
        e = walk_dir(&w, rel, path, sizeof(path));
        free(rel);
    }
    if (e == 0 && w.found.len > 0) {
        qsort(w.found.v, w.found.len, sizeof(char *), cmp_str);
        for (size_t i = 0; i < w.found.len; i++)
            fn(ctx, w.found.v[i]);
    }
    strvec_free(&w.todo);
    strvec_free(&w.found);
    return e == 0 ? KILN_OK : fail_errno(err, "list", path, e);
}

/* ---- delete ---- */

static kiln_status fs_delete(fs_store *s, const char *name, kiln_err *err)
{
    kiln_status st = kiln_objstore__check_name(name, err);
    if (st != KILN_OK)
        return st;
    char path[PATH_MAX];
    obj_path(s, name, path, sizeof(path));
    if (unlink(path) != 0) {
        /* EISDIR: Linux's answer for a directory, which is not an object either. */
        if (is_absent(errno))
            return KILN_OK;
        return fail_errno(err, "unlink", path, errno);
    }
    /* Remove now-empty parents, deepest first, stopping at the first that is not empty (or
     * that a concurrent put is using); the root itself stays. */
    for (char *slash = strrchr(path, '/'); slash > path + s->root_len; slash = strrchr(path, '/')) {
        *slash = '\0';
        if (rmdir(path) != 0)
            break;
    }
    return KILN_OK;
}

/* ---- the backend's operations ---- */

static kiln_status op_put(void *impl, const char *name, const void *data, size_t len, kiln_err *err)
{
    return fs_put(impl, name, data, len, err);
}

static kiln_status op_get_range(void *impl, const char *name, uint64_t off, size_t len,
                                kiln_buf *out, kiln_err *err)
{
    return len == SIZE_MAX && off == 0 ? fs_get(impl, name, out, err)
                                       : fs_get_range(impl, name, off, len, out, err);
}

static kiln_status op_size(void *impl, const char *name, uint64_t *size, kiln_err *err)
{
    return fs_size(impl, name, size, err);
}

static kiln_status op_list(void *impl, const char *prefix, void (*fn)(void *ctx, const char *name),
                           void *ctx, kiln_err *err)
{
    return fs_list(impl, prefix, fn, ctx, err);
}

static kiln_status op_delete(void *impl, const char *name, kiln_err *err)
{
    return fs_delete(impl, name, err);
}

static void op_close(void *impl)
{
    fs_close(impl);
}

const kiln_objstore_ops kiln_objstore__fs_ops = {
    "filesystem", op_put, op_get_range, op_size, op_list, op_delete, op_close,
};
