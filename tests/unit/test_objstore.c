/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for objstore's filesystem backend, run twice: through io_uring (when this machine
 * allows it) and through the pwrite fallback forced by KILN_OBJSTORE_NO_URING=1. */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "objstore.h"

static char g_tmp[] = "/tmp/kiln-objstore-XXXXXX";
static char g_root[512]; /* the current test's store root */
static int g_seq;
static bool g_want_uring; /* the suite running: io_uring allowed */
static bool g_uring_here; /* io_uring works on this machine */

/* Opens a store in a fresh directory under g_tmp (which does not exist yet). */
static kiln_objstore_t *open_store(void)
{
    snprintf(g_root, sizeof(g_root), "%s/s%d/root", g_tmp, ++g_seq);
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_root, &s, &err));
    CHECK(s != NULL);
    if (s != NULL && !g_want_uring)
        CHECK(!kiln_objstore_uses_uring(s));
    return s;
}

static bool exists(const char *rel)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", g_root, rel);
    return stat(p, &st) == 0;
}

/* Counts files whose name starts with ".tmp-" anywhere under dir. */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, ".tmp-", 5) == 0)
            n++;
        char sub[1024];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            n += count_temps(sub);
    }
    closedir(d);
    return n;
}

static void put_str(kiln_objstore_t *s, const char *name, const char *v)
{
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_put(s, name, v, strlen(v), &err));
}

/* Gets name as a NUL-terminated string; the caller frees the buffer. */
static kiln_status get_str(kiln_objstore_t *s, const char *name, kiln_buf *b)
{
    kiln_err err = {0};
    kiln_buf_init(b, 0);
    kiln_status st = kiln_objstore_get(s, name, b, &err);
    if (st == KILN_OK)
        kiln_buf_putc(b, '\0');
    return st;
}

TEST(roundtrip_small)
{
    kiln_objstore_t *s = open_store();
    put_str(s, "hello", "world");
    kiln_buf b;
    CHECK_OK(get_str(s, "hello", &b));
    CHECK_STR(b.ptr, "world");
    CHECK_EQ(b.len, 6);
    kiln_buf_free(&b);
    put_str(s, "deep/er/still/obj.bin", "x");
    CHECK_OK(get_str(s, "deep/er/still/obj.bin", &b));
    CHECK_STR(b.ptr, "x");
    kiln_buf_free(&b);
    CHECK_EQ(count_temps(g_root), 0);
    kiln_objstore_close(s);
}

TEST(roundtrip_empty)
{
    kiln_objstore_t *s = open_store();
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_put(s, "empty", NULL, 0, &err));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get(s, "empty", &b, &err));
    CHECK_EQ(b.len, 0);
    uint64_t size = 99;
    CHECK_OK(kiln_objstore_size(s, "empty", &size, &err));
    CHECK_EQ(size, 0);
    CHECK_OK(kiln_objstore_get_range(s, "empty", 0, 0, &b, &err));
    CHECK_EQ(b.len, 0);
    kiln_buf_free(&b);
    kiln_objstore_close(s);
}

TEST(roundtrip_5mb)
{
    kiln_objstore_t *s = open_store();
    size_t n = 5u << 20 | 12345; /* not a multiple of the chunk size */
    unsigned char *data = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_put(s, "blocks/01/data.bin", data, n, &err));
    /* The ring stayed in use: the writes did not fall back to pwrite. */
    CHECK_EQ(kiln_objstore_uses_uring(s), g_want_uring && g_uring_here);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "head:"); /* get appends */
    CHECK_OK(kiln_objstore_get(s, "blocks/01/data.bin", &b, &err));
    CHECK_EQ(b.len, n + 5);
    CHECK(memcmp(b.ptr, "head:", 5) == 0);
    CHECK(b.len == n + 5 && memcmp(b.ptr + 5, data, n) == 0);
    kiln_buf_free(&b);
    kiln_buf_init(&b, 1 << 20); /* a capped buffer refuses the object */
    CHECK_EQ(kiln_objstore_get(s, "blocks/01/data.bin", &b, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK_EQ(b.len, 0);
    kiln_buf_free(&b);
    free(data);
    kiln_objstore_close(s);
}

TEST(get_range_and_size)
{
    kiln_objstore_t *s = open_store();
    put_str(s, "r/obj", "0123456789");
    kiln_err err = {0};
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 3, 4, &b, &err));
    CHECK_EQ(b.len, 4);
    CHECK(memcmp(b.ptr, "3456", 4) == 0);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 0, 10, &b, &err));
    CHECK_EQ(b.len, 14);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 10, 0, &b, &err));
    CHECK_EQ(b.len, 14);
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", 8, 3, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_EQ(err.code, KILN_OUT_OF_RANGE);
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", 11, 0, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", UINT64_MAX, 2, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_EQ(kiln_objstore_get_range(s, "r/nope", 0, 1, &b, &err), KILN_NOT_FOUND);
    CHECK_EQ(b.len, 14);
    uint64_t size = 0;
    CHECK_OK(kiln_objstore_size(s, "r/obj", &size, &err));
    CHECK_EQ(size, 10);
    size = 7;
    CHECK_EQ(kiln_objstore_size(s, "r/nope", &size, &err), KILN_NOT_FOUND);
    CHECK_EQ(kiln_objstore_size(s, "r", &size, &err), KILN_NOT_FOUND); /* a directory */
    CHECK_EQ(kiln_objstore_size(s, "r/obj/x", &size, &err), KILN_NOT_FOUND);
    CHECK_EQ(size, 7);
    CHECK_EQ(kiln_objstore_get(s, "r", &b, &err), KILN_NOT_FOUND);
    CHECK_EQ(kiln_objstore_get(s, "nope", &b, &err), KILN_NOT_FOUND);
    CHECK_EQ(err.code, KILN_NOT_FOUND);
    CHECK_EQ(b.len, 14);
    kiln_buf_free(&b);
    kiln_objstore_close(s);
}

/* Collects listed names as one comma-separated string. */
static void on_name(void *ctx, const char *name)
{
    kiln_buf *b = ctx;
    if (b->len > 0)
        kiln_buf_putc(b, ',');
    kiln_buf_puts(b, name);
}

static void check_list(kiln_objstore_t *s, const char *prefix, const char *want)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_list(s, prefix, on_name, &b, &err));
    kiln_buf_putc(&b, '\0');
    CHECK_STR(b.ptr, want);
    kiln_buf_free(&b);
}

static void touch(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", g_root, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("partial", f);
        fclose(f);
    }
}

TEST(list_prefix)
{
    kiln_objstore_t *s = open_store();
    const char *names[] = {"b/2", "a/b/c", "a/1", "a/b/a", "ab", "a-x", "a/b/d/e/f", "z"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        put_str(s, names[i], names[i]);
    touch(".tmp-x"); /* puts in progress are invisible */
    touch("a/.tmp-x");
    touch("a/b/.tmp-c-0123");
    check_list(s, "", "a-x,a/1,a/b/a,a/b/c,a/b/d/e/f,ab,b/2,z");
    check_list(s, NULL, "a-x,a/1,a/b/a,a/b/c,a/b/d/e/f,ab,b/2,z");
    check_list(s, "a", "a-x,a/1,a/b/a,a/b/c,a/b/d/e/f,ab");
    check_list(s, "a/", "a/1,a/b/a,a/b/c,a/b/d/e/f");
    check_list(s, "a/b", "a/b/a,a/b/c,a/b/d/e/f");
    check_list(s, "a/b/", "a/b/a,a/b/c,a/b/d/e/f");
    check_list(s, "a/b/c", "a/b/c");
    check_list(s, "a/b/d/e/f", "a/b/d/e/f");
    check_list(s, "a/b/d/e/f/", "");
    check_list(s, "a/.tmp", "");
    check_list(s, "nope/", "");
    check_list(s, "nope/deeper/x", "");
    check_list(s, "zz", "");
    kiln_err err = {0};
    const char *bad[] = {"/", "/a", "../", "a/../", "a//", "./a", "a b", ".tmp-x/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(kiln_objstore_list(s, bad[i], on_name, NULL, &err), KILN_INVALID_ARGUMENT);
    kiln_objstore_close(s);
}

TEST(delete_and_cleanup)
{
    kiln_objstore_t *s = open_store();
    put_str(s, "d/e/f/obj", "1");
    put_str(s, "d/keep", "2");
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_delete(s, "d/e/f/obj", &err));
    CHECK(!exists("d/e/f/obj"));
    CHECK(!exists("d/e")); /* empty parents went */
    CHECK(exists("d/keep"));
    kiln_buf b;
    CHECK_EQ(get_str(s, "d/e/f/obj", &b), KILN_NOT_FOUND);
    kiln_buf_free(&b);
    CHECK_OK(kiln_objstore_delete(s, "d/keep", &err));
    CHECK(!exists("d"));
    CHECK(exists(""));                                 /* the root stays */
    CHECK_OK(kiln_objstore_delete(s, "d/keep", &err)); /* absent is OK */
    CHECK_OK(kiln_objstore_delete(s, "never/was", &err));
    check_list(s, "", "");
    put_str(s, "d/again", "3"); /* parents are made again */
    check_list(s, "", "d/again");
    kiln_objstore_close(s);
}

TEST(bad_names)
{
    kiln_objstore_t *s = open_store();
    char longname[1100], longcomp[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    for (size_t i = 1; i < sizeof(longname) - 1; i += 2)
        longname[i] = '/';
    memset(longcomp, 'b', sizeof(longcomp) - 1);
    longcomp[sizeof(longcomp) - 1] = '\0';
    const char *bad[] = {"",    "/abs", "a//b",   "a/",     "../x",      "a/../b",   "./a",
                         "a/.", ".",    "..",     "sp ace", "a\\b",      ".tmp-x",   "a/.tmp-y",
                         "é",   "a:b",  longname, longcomp, "x/.tmp-/y", "tab\tname"};
    kiln_err err = {0};
    kiln_buf b;
    kiln_buf_init(&b, 0);
    uint64_t size;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(kiln_objstore_put(s, bad[i], "x", 1, &err), KILN_INVALID_ARGUMENT);
        CHECK_EQ(err.code, KILN_INVALID_ARGUMENT);
        CHECK_EQ(kiln_objstore_get(s, bad[i], &b, &err), KILN_INVALID_ARGUMENT);
        CHECK_EQ(kiln_objstore_get_range(s, bad[i], 0, 1, &b, &err), KILN_INVALID_ARGUMENT);
        CHECK_EQ(kiln_objstore_size(s, bad[i], &size, &err), KILN_INVALID_ARGUMENT);
        CHECK_EQ(kiln_objstore_delete(s, bad[i], &err), KILN_INVALID_ARGUMENT);
    }
    CHECK_EQ(kiln_objstore_put(s, NULL, "x", 1, &err), KILN_INVALID_ARGUMENT);
    kiln_buf_free(&b);
    check_list(s, "", "");
    /* Odd but valid: dots inside components, dashes, underscores. */
    put_str(s, "..a/b..c/_-.x", "ok");
    check_list(s, "", "..a/b..c/_-.x");
    kiln_objstore_close(s);
}

TEST(overwrite)
{
    kiln_objstore_t *s = open_store();
    put_str(s, "o/obj", "first version");
    put_str(s, "o/obj", "second");
    kiln_buf b;
    CHECK_OK(get_str(s, "o/obj", &b));
    CHECK_STR(b.ptr, "second");
    kiln_buf_free(&b);
    put_str(s, "o/obj", "a third, longer version");
    CHECK_OK(get_str(s, "o/obj", &b));
    CHECK_STR(b.ptr, "a third, longer version");
    kiln_buf_free(&b);
    CHECK_EQ(count_temps(g_root), 0);
    check_list(s, "o", "o/obj");
    kiln_objstore_close(s);
}

TEST(put_failures)
{
    kiln_objstore_t *s = open_store();
    kiln_err err = {0};
    put_str(s, "file", "x");
    /* A parent that is a file. */
    CHECK_EQ(kiln_objstore_put(s, "file/child", "y", 1, &err), KILN_UNAVAILABLE);
    CHECK_EQ(err.code, KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "file/child") != NULL);
    CHECK(strstr(err.msg, "errno") != NULL);
    /* A destination that is a non-empty directory: the rename fails, the temp file goes. */
    put_str(s, "dir/x", "x");
    CHECK_EQ(kiln_objstore_put(s, "dir", "y", 1, &err), KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "/dir") != NULL);
    CHECK_EQ(count_temps(g_root), 0);
    check_list(s, "", "dir/x,file");
    kiln_objstore_close(s);
    /* A root that cannot be a directory. */
    char path[600];
    snprintf(path, sizeof(path), "%s/file/sub", g_root);
    kiln_objstore_t *bad = NULL;
    CHECK_EQ(kiln_objstore_open_fs(path, &bad, &err), KILN_UNAVAILABLE);
    CHECK(bad == NULL);
    CHECK_EQ(kiln_objstore_open_fs("", &bad, &err), KILN_INVALID_ARGUMENT);
    kiln_objstore_close(NULL);
}

/* Concurrent puts and gets of distinct objects share the store's ring. */
static void *worker(void *arg)
{
    kiln_objstore_t *s = *(kiln_objstore_t **)arg;
    int id = (int)(intptr_t)((kiln_objstore_t **)arg)[1];
    int bad = 0;
    for (int i = 0; i < 40; i++) {
        char name[64], val[64];
        snprintf(name, sizeof(name), "t%d/o%d", id, i % 8);
        snprintf(val, sizeof(val), "thread %d iteration %d", id, i);
        kiln_err err;
        kiln_buf b;
        kiln_buf_init(&b, 0);
        bad += kiln_objstore_put(s, name, val, strlen(val), &err) != KILN_OK;
        bad += kiln_objstore_get(s, name, &b, &err) != KILN_OK;
        bad += b.len != strlen(val) || memcmp(b.ptr, val, b.len) != 0;
        kiln_buf_free(&b);
    }
    return (void *)(intptr_t)bad;
}

TEST(concurrent)
{
    kiln_objstore_t *s = open_store();
    pthread_t th[4];
    void *args[4][2];
    for (int i = 0; i < 4; i++) {
        args[i][0] = s;
        args[i][1] = (void *)(intptr_t)i;
        CHECK_EQ(pthread_create(&th[i], NULL, worker, args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        CHECK_EQ((intptr_t)bad, 0);
    }
    CHECK_EQ(count_temps(g_root), 0);
    kiln_objstore_close(s);
}

static void run_suite(void)
{
    RUN(roundtrip_small);
    RUN(roundtrip_empty);
    RUN(roundtrip_5mb);
    RUN(get_range_and_size);
    RUN(list_prefix);
    RUN(delete_and_cleanup);
    RUN(bad_names);
    RUN(overwrite);
    RUN(put_failures);
    RUN(concurrent);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

int main(void)
{
    if (mkdtemp(g_tmp) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("KILN_OBJSTORE_NO_URING");
    g_want_uring = true;
    kiln_objstore_t *s = open_store();
    g_uring_here = s != NULL && kiln_objstore_uses_uring(s);
    kiln_objstore_close(s);
    printf("# suite 1: io_uring %s on this machine\n",
           g_uring_here ? "used" : "NOT available (pwrite)");
    run_suite();
    setenv("KILN_OBJSTORE_NO_URING", "1", 1);
    g_want_uring = false;
    printf("# suite 2: KILN_OBJSTORE_NO_URING=1 (pwrite fallback)\n");
    run_suite();
    unsetenv("KILN_OBJSTORE_NO_URING");
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
