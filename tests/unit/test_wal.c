/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: WAL group commit, replay, torn and corrupt tails, a failed
 * write that acknowledges none of its batch, and a batch of more records
 * than one writev takes. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "wal.h"

static char dir[64];

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-wal-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void rm_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

typedef struct replayed {
    int n;
    long sum;
} replayed;

static void on_rec(void *ctx, uint64_t seg, const uint8_t *rec, size_t len)
{
    (void)seg;
    replayed *r = ctx;
    long v;
    CHECK_EQ(len, sizeof(v));
    memcpy(&v, rec, sizeof(v));
    r->n++;
    r->sum += v;
}

static const kiln_wal_config cfg = {0, 1 << 20, 1};
static kiln_wal_t *shared;

static void *writer(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 0; i < 200; i++) {
        long v = base + i;
        CHECK_OK(kiln_wal_append(shared, &v, sizeof(v), NULL, NULL));
    }
    return NULL;
}

TEST(group_commit_and_replay)
{
    fresh_dir();
    CHECK_OK(kiln_wal_open(dir, &cfg, &shared, NULL));
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, (void *)(intptr_t)(i * 1000));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    kiln_wal_stats st;
    kiln_wal_stats_get(shared, &st);
    CHECK_EQ(st.records, 800);
    CHECK(st.syncs <= st.records); /* grouped: usually far fewer */
    printf("  800 records, %llu fdatasyncs\n", (unsigned long long)st.syncs);
    kiln_wal_close(shared);

    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    replayed r = {0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, 800);
    CHECK_EQ(r.sum, 4 * 19900 + 200 * (0 + 1000 + 2000 + 3000));
    kiln_wal_close(w);
    rm_dir();
}

static void damage_last_segment(off_t cut, bool flip)
{
    DIR *d = opendir(dir);
    char last[512] = "";
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strstr(e->d_name, ".wal") &&
            strcmp(e->d_name, last + strlen(dir) + (*last ? 1 : 0)) > 0) {
            struct stat s;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (stat(p, &s) == 0 && s.st_size > 0)
                snprintf(last, sizeof(last), "%s", p);
        }
    }
    closedir(d);
    struct stat s;
    CHECK(stat(last, &s) == 0);
    if (flip) {
        int fd = open(last, O_RDWR);
        unsigned char b;
        CHECK(pread(fd, &b, 1, s.st_size - 3) == 1);
        b ^= 0xff;
        CHECK(pwrite(fd, &b, 1, s.st_size - 3) == 1);
        close(fd);
    } else {
        CHECK(truncate(last, s.st_size - cut) == 0);
    }
}

static void tail_case(bool flip)
{
    fresh_dir();
    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    for (long v = 1; v <= 10; v++)
        CHECK_OK(kiln_wal_append(w, &v, sizeof(v), NULL, NULL));
    kiln_wal_close(w);
    damage_last_segment(5, flip); /* the 10th record is torn or corrupt */
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    replayed r = {0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, 9);
    CHECK_EQ(r.sum, 45);
    long v = 100; /* appends after a repair replay cleanly */
    CHECK_OK(kiln_wal_append(w, &v, sizeof(v), NULL, NULL));
    kiln_wal_close(w);
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    r = (replayed){0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, 10);
    CHECK_EQ(r.sum, 145);
    kiln_wal_close(w);
    rm_dir();
}

TEST(torn_tail)
{
    tail_case(false);
}

TEST(corrupt_tail)
{
    tail_case(true);
}

TEST(rotate_and_remove)
{
    fresh_dir();
    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    long v = 1;
    uint64_t s1, s2;
    CHECK_OK(kiln_wal_append(w, &v, sizeof(v), &s1, NULL));
    uint64_t cut = kiln_wal_rotate(w);
    v = 2;
    CHECK_OK(kiln_wal_append(w, &v, sizeof(v), &s2, NULL));
    CHECK(s2 == cut && s1 < cut);
    kiln_wal_remove_before(w, cut);
    kiln_wal_close(w);
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    replayed r = {0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, 1);
    CHECK_EQ(r.sum, 2);
    kiln_wal_close(w);
    rm_dir();
}

/* What one appender of the failing log saw. */
typedef struct outcome {
    long base;
    int ok, failed, other;
    long ok_sum;
} outcome;

static void *failing_writer(void *arg)
{
    outcome *o = arg;
    for (long i = 0; i < 100; i++) {
        long v = o->base + i;
        kiln_err err = {KILN_OK, ""};
        kiln_status st = kiln_wal_append(shared, &v, sizeof(v), NULL, &err);
        if (st == KILN_OK)
            o->ok++, o->ok_sum += v;
        else if (st == KILN_UNAVAILABLE)
            o->failed++;
        else
            o->other++;
    }
    return NULL;
}

/* 8 concurrent appenders, the file size limit reached after about 60
 * records (the write fails with EFBIG, part of a batch may be written):
 * every append is acknowledged or refused with KILN_UNAVAILABLE, the
 * replay holds exactly the acknowledged records, and the log takes
 * records again once writes succeed. */
TEST(failed_write_is_not_acknowledged)
{
    fresh_dir();
    CHECK_OK(kiln_wal_open(dir, &cfg, &shared, NULL));
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 60 * (8 + sizeof(long)); /* frames of 8 + 8 bytes */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    outcome o[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        o[i] = (outcome){i * 1000, 0, 0, 0, 0};
        pthread_create(&t[i], NULL, failing_writer, &o[i]);
    }
    int ok = 0, failed = 0, other = 0;
    long sum = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += o[i].ok, failed += o[i].failed, other += o[i].other, sum += o[i].ok_sum;
    }
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, prev);
    printf("  %d acknowledged, %d refused\n", ok, failed);
    CHECK_EQ(other, 0);
    CHECK_EQ(ok + failed, 800);
    CHECK(ok <= 60 && failed >= 740);
    long v = 99999;
    CHECK_OK(kiln_wal_append(shared, &v, sizeof(v), NULL, NULL));
    kiln_wal_close(shared);

    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    replayed r = {0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, ok + 1);
    CHECK_EQ(r.sum, sum + v);
    kiln_wal_close(w);
    rm_dir();
}

/* Appenders released at once behind a leader that waits a second for
 * company: their batch is one of more pieces (two a record) than one
 * writev takes (IOV_MAX, 1024 on Linux), written in several calls; every
 * record replays. */
#define CROWD 700
static pthread_barrier_t crowd_start;

static void *crowd_writer(void *arg)
{
    long v = (long)(intptr_t)arg;
    pthread_barrier_wait(&crowd_start);
    CHECK_OK(kiln_wal_append(shared, &v, sizeof(v), NULL, NULL));
    return NULL;
}

TEST(batch_larger_than_one_writev)
{
    fresh_dir();
    const kiln_wal_config slow = {1000000000, 1 << 20, 1};
    CHECK_OK(kiln_wal_open(dir, &slow, &shared, NULL));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 << 10);
    pthread_barrier_init(&crowd_start, NULL, CROWD);
    static pthread_t t[CROWD];
    for (long i = 0; i < CROWD; i++)
        CHECK(pthread_create(&t[i], &attr, crowd_writer, (void *)(intptr_t)(i + 1)) == 0);
    for (int i = 0; i < CROWD; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&crowd_start);
    pthread_attr_destroy(&attr);
    kiln_wal_stats st;
    kiln_wal_stats_get(shared, &st);
    printf("  %d records in %llu batches\n", CROWD, (unsigned long long)st.syncs);
    CHECK_EQ(st.records, CROWD);
    CHECK(st.syncs < st.records);
    kiln_wal_close(shared);

    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(dir, &cfg, &w, NULL));
    replayed r = {0, 0};
    CHECK_OK(kiln_wal_replay(w, on_rec, &r, NULL));
    CHECK_EQ(r.n, CROWD);
    CHECK_EQ(r.sum, (long)CROWD * (CROWD + 1) / 2);
    kiln_wal_close(w);
    rm_dir();
}

int main(void)
{
    RUN(group_commit_and_replay);
    RUN(torn_tail);
    RUN(corrupt_tail);
    RUN(rotate_and_remove);
    RUN(failed_write_is_not_acknowledged);
    RUN(batch_larger_than_one_writev);
    return check_done();
}
