/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the mapped log keeps every appended record across the
 * process's end without a close (what kill -9 leaves), cuts a torn copy,
 * rolls over to new segments (a record larger than one included), and
 * rotates and removes segments as the WAL does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "maplog.h"
#include "segfile.h"
#include "tmpdir.h"

static char g_dir[] = "/tmp/kiln-maplog-XXXXXX";

/* Record i: i+1 bytes of the value i. */
static size_t record(int i, char *out)
{
    size_t n = (size_t)(i % 300) + 1;
    memset(out, i & 0xff, n);
    return n;
}

typedef struct seen {
    int n;
    bool ok;       /* every record as written, in order */
    uint64_t last; /* segment of the last one */
} seen;

static void on_record(void *ctx, uint64_t segment, const uint8_t *rec, size_t len)
{
    seen *s = ctx;
    char want[512];
    size_t n = record(s->n, want);
    s->ok = s->ok && len == n && memcmp(rec, want, n) == 0 && segment >= s->last;
    s->last = segment;
    s->n++;
}

static seen replay_all(const char *dir)
{
    kiln_maplog_t *l = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_maplog_open(dir, 1 << 16, true, &l, &err));
    seen s = {.ok = true};
    CHECK_OK(kiln_maplog_replay(l, on_record, &s, &err));
    kiln_maplog_close(l);
    return s;
}

/* A child that appends n records and ends without closing the log. */
static void append_and_die(const char *dir, size_t segment_bytes, int n)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        kiln_maplog_t *l = NULL;
        kiln_err err = {0};
        if (kiln_maplog_open(dir, segment_bytes, false, &l, &err) != KILN_OK)
            _exit(2);
        char rec[512];
        for (int i = 0; i < n; i++) {
            size_t len = record(i, rec);
            if (kiln_maplog_append(l, rec, len, &err) != KILN_OK)
                _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static off_t file_size(const char *dir, uint64_t id)
{
    char path[512];
    kiln_segfile_path(dir, id, path, sizeof(path));
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The frames of records 0..n-1. */
static off_t framed(int n)
{
    off_t b = 0;
    char rec[512];
    for (int i = 0; i < n; i++)
        b += KILN_SEGFILE_HDR + (off_t)record(i, rec);
    return b;
}

TEST(records_outlive_the_process)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/outlive", g_dir);
    append_and_die(dir, 1 << 20, 1000);
    CHECK_EQ(file_size(dir, 1), 1 << 20); /* left at its reserved size */
    seen s = replay_all(dir);
    CHECK_EQ(s.n, 1000);
    CHECK(s.ok);
    CHECK_EQ(file_size(dir, 1), framed(1000)); /* the zeros after them cut */
    CHECK_EQ(replay_all(dir).n, 1000);         /* and read again the same */
}

TEST(torn_copy_is_cut)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/torn", g_dir);
    append_and_die(dir, 1 << 20, 3);
    char path[512];
    kiln_segfile_path(dir, 1, path, sizeof(path));
    FILE *f = fopen(path, "r+");
    CHECK(f != NULL);
    fseek(f, (long)framed(3), SEEK_SET);
    fwrite("\x40\x00\x00\x00torn", 1, 8, f); /* a header whose payload never came */
    fclose(f);
    seen s = replay_all(dir);
    CHECK_EQ(s.n, 3);
    CHECK(s.ok);
    CHECK_EQ(file_size(dir, 1), framed(3));
}

TEST(segments_roll_over)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/roll", g_dir);
    append_and_die(dir, 4096, 300); /* about 45 kB: a dozen segments */
    seen s = replay_all(dir);
    CHECK_EQ(s.n, 300);
    CHECK(s.ok);
    CHECK(s.last > 5);

    kiln_maplog_t *l = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_maplog_open(dir, 64, true, &l, &err));
    char big[4096];
    memset(big, 7, sizeof(big));
    CHECK_OK(kiln_maplog_append(l, big, sizeof(big), &err)); /* larger than a segment */
    CHECK_OK(kiln_maplog_sync(l, &err));
    CHECK_EQ(kiln_maplog_bytes(l), KILN_SEGFILE_HDR + sizeof(big));
    uint64_t id = kiln_maplog_rotate(l);
    CHECK_EQ(file_size(dir, id - 1), (off_t)(KILN_SEGFILE_HDR + sizeof(big)));
    kiln_maplog_remove_before(l, id);
    kiln_maplog_close(l);
    CHECK_EQ(file_size(dir, id), 0); /* closed: cut to what it holds */
    CHECK_EQ(replay_all(dir).n, 0);
}

TEST(unusable_directory_is_an_error)
{
    kiln_maplog_t *l = NULL;
    kiln_err err = {0};
    CHECK_EQ(kiln_maplog_open("/dev/null/log", 4096, true, &l, &err), KILN_UNAVAILABLE);
    CHECK(l == NULL);
    CHECK(err.msg[0] != '\0');
}

int main(void)
{
    if (mkdtemp(g_dir) == NULL)
        return 1;
    RUN(records_outlive_the_process);
    RUN(torn_copy_is_cut);
    RUN(segments_roll_over);
    RUN(unusable_directory_is_an_error);
    tmpdir_remove(g_dir);
    return check_done();
}
