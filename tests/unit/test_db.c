/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the storage engine (kiln_db). What is appended is read back
 * from heads, after a restart (replay) and after a flush (blocks), the
 * same through the local store; a block chunk that does not load is
 * KILN_DATA_LOSS to the reader; a push record is decoded and checked
 * before anything is stored, and a malformed one stores nothing. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "corrupt_chunk.h"
#include "db_fixture.h"
#include "profiles.h"
#include "record.h"
#include "store.h"
#include "tmpdir.h"

#define T0 1700000000000000000LL

static char dir[64];
static kiln_pprof_t prof; /* cpu.pb.gz: two sample types, two series per label set */

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-db-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static kiln_db_t *open_db(void)
{
    kiln_db_config c = {
        .path = dir, .wal_segment_bytes = 1u << 20, .flush_check_ns = 3600000000000LL};
    kiln_db_t *db = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_db_open(&c, &db, &err));
    return db;
}

/* One part of service svc at t_ns with push id id; labels live in l. */
static kiln_head_part part_of(kiln_label_t l[2], const char *svc, kiln_pprof_t *at, int64_t t_ns,
                              uint64_t id)
{
    l[0] = (kiln_label_t){"__name__", "process_cpu"};
    l[1] = (kiln_label_t){"service_name", svc};
    *at = prof;
    at->time_nanos = t_ns;
    return (kiln_head_part){l, 2, at, id};
}

static void push(kiln_db_t *db, const char *tenant, const char *svc, int64_t t_ns)
{
    kiln_label_t l[2];
    kiln_pprof_t at;
    kiln_head_part p = part_of(l, svc, &at, t_ns, 0);
    CHECK_OK(kiln_db_append(db, tenant, &p, 1, NULL));
}

static void count_profile(void *ctx, const kiln_read_profile *p)
{
    (void)p;
    ++*(size_t *)ctx;
}

static void count_series(void *ctx, const kiln_label_t *l, size_t n)
{
    (void)l, (void)n;
    ++*(size_t *)ctx;
}

/* What a read of tenants answers: profiles, series and the merged total. */
typedef struct seen {
    size_t profiles, series;
    int64_t total;
} seen;

static seen seen_in(kiln_db_t *db, const char *tenants)
{
    seen s = {0, 0, 0};
    check_db_profiles(db, tenants, count_profile, &s.profiles);
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.series = count_series, .ctx = &s.series};
    CHECK_OK(kiln_db_read(db, tenants, &f, &v, NULL));
    s.total = check_db_total(db, tenants, NULL, 0, NULL);
    return s;
}

static void check_seen(const seen *a, const seen *b)
{
    CHECK_EQ(a->profiles, b->profiles);
    CHECK_EQ(a->series, b->series);
    CHECK_EQ(a->total, b->total);
}

/* Appends are read back from the heads, after a restart (the WAL
 * replayed), after a flush (from blocks) and after a restart then (nothing
 * replayed twice); the local store answers the same. */
TEST(append_read_flush_replay)
{
    fresh_dir();
    kiln_db_t *db = open_db();
    if (db == NULL)
        return;
    push(db, "t1", "a", T0);
    push(db, "t1", "b", T0 + 1000000000);
    push(db, "t2", "a", T0);
    seen t1 = seen_in(db, "t1"), both = seen_in(db, "t1|t2");
    CHECK_EQ(t1.profiles, 4);
    CHECK_EQ(t1.series, 4);
    CHECK_EQ(both.profiles, 6);
    CHECK(both.total > t1.total && t1.total > 0);
    kiln_head_stats_t st;
    kiln_db_stats(db, "t1", &st);
    CHECK_EQ(st.profiles, 4);
    kiln_db_close(db);

    db = open_db(); /* replayed */
    seen again = seen_in(db, "t1|t2");
    check_seen(&both, &again);
    CHECK_OK(kiln_db_flush(db, NULL));
    kiln_db_stats(db, NULL, &st);
    CHECK_EQ(st.profiles, 0); /* the heads went into blocks */
    again = seen_in(db, "t1|t2");
    check_seen(&both, &again);
    kiln_db_close(db);

    db = open_db(); /* the blocks hold it all: nothing replayed */
    kiln_db_stats(db, NULL, &st);
    CHECK_EQ(st.profiles, 0);
    again = seen_in(db, "t1|t2");
    check_seen(&both, &again);
    kiln_store_t store = kiln_db_store(db);
    kiln_label_t l[2];
    kiln_pprof_t at;
    kiln_head_part p = part_of(l, "c", &at, T0, 0);
    CHECK_OK(kiln_store_append(&store, "t1", &p, 1, NULL));
    size_t n = 0;
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.profile = count_profile, .ctx = &n};
    CHECK_OK(kiln_store_read(&store, "t1", &f, &v, NULL));
    CHECK_EQ(n, t1.profiles + 2);
    CHECK_OK(kiln_store_stats(&store, "t1", &st, NULL));
    CHECK_EQ(st.profiles, t1.profiles + 2);
    kiln_db_close(db);
    tmpdir_remove(dir);
}

/* The value of a sample without labels in Prometheus text; -1 if absent. */
static long long metric(const kiln_buf *b, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = b->ptr; p != NULL && p < b->ptr + b->len; p = strchr(p, '\n')) {
        p += *p == '\n';
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

/* /metrics counts the WAL's records made durable and its group commits
 * (the pushes per fsync a benchmark prints), across tenants. */
TEST(wal_metrics)
{
    fresh_dir();
    kiln_db_t *db = open_db();
    if (db == NULL)
        return;
    push(db, "t1", "a", T0);
    push(db, "t2", "a", T0);
    push(db, "t1", "b", T0);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_db_metrics(db, &b);
    kiln_buf_putc(&b, '\0');
    CHECK_EQ(metric(&b, "kiln_wal_records_total"), 3);
    long long syncs = metric(&b, "kiln_wal_fsyncs_total");
    CHECK(syncs >= 1 && syncs <= 3); /* one at a time here: 3, grouped: fewer */
    CHECK(metric(&b, "kiln_wal_bytes_total") > 0);
    CHECK(strstr(b.ptr, "# TYPE kiln_wal_fsyncs_total counter\n") != NULL);
    kiln_buf_free(&b);
    kiln_db_close(db);
    tmpdir_remove(dir);
}

static void sum_totals(void *ctx, const kiln_read_profile *p)
{
    *(int64_t *)ctx += p->total;
}

/* Series totals minus the flame graph total of tenant: the frameless part. */
static int64_t series_minus_flame(kiln_db_t *db, const char *tenant)
{
    int64_t series = 0;
    check_db_profiles(db, tenant, sum_totals, &series);
    return series - check_db_total(db, tenant, NULL, 0, NULL);
}

/* gdu/default.pgo's sample without frames counts in profile totals (as
 * in Pyroscope's series) from the head, after the WAL is replayed and
 * from a block after a flush; flame graphs leave it out. */
TEST(frameless_samples_survive_replay_and_flush)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t gdu;
    CHECK(check_load_profile(a, "gdu/default.pgo", &gdu));
    int64_t frameless = 0; /* over both sample types: a read of every series */
    for (size_t i = 0; i < gdu.n_samples; i++)
        for (size_t t = 0; gdu.samples[i].n_locs == 0 && t < gdu.n_sample_types; t++)
            frameless += gdu.values[gdu.samples[i].value_off + t];
    CHECK(frameless >= 80000000);
    fresh_dir();
    kiln_db_t *db = open_db();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "gdu"}};
    for (int i = 0; db != NULL && i < 2; i++) {
        kiln_pprof_t at = gdu;
        at.time_nanos = T0 + i * 15000000000LL;
        kiln_head_part p = {l, 2, &at, 0};
        CHECK_OK(kiln_db_append(db, "t", &p, 1, NULL));
    }
    if (db != NULL) {
        CHECK_EQ(series_minus_flame(db, "t"), 2 * frameless);
        kiln_db_close(db);
        db = open_db(); /* replayed from the WAL */
        CHECK_EQ(series_minus_flame(db, "t"), 2 * frameless);
        CHECK_OK(kiln_db_flush(db, NULL));
        CHECK_EQ(series_minus_flame(db, "t"), 2 * frameless); /* from the block */
        kiln_db_close(db);
    }
    tmpdir_remove(dir);
    kiln_arena_destroy(a);
}

/* The path of tenant's one block's samples file; false when none. */
static bool samples_path(const char *tenant, char *out, size_t cap)
{
    char blocks[256];
    snprintf(blocks, sizeof(blocks), "%s/bucket/%s/blocks", dir, tenant);
    DIR *d = opendir(blocks);
    if (d == NULL)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        found = (size_t)snprintf(out, cap, "%.200s/%.40s/samples", blocks, e->d_name) < cap;
    }
    closedir(d);
    return found;
}

/* Opens the db again: the block with the damaged chunk is a fresh object,
 * not yet known as damaged. */
static kiln_db_t *reopen(kiln_db_t *db)
{
    kiln_db_close(db);
    return open_db();
}

/* A block chunk that does not load is data_loss to every kind of read,
 * never a partial answer called whole; other tenants still read. The
 * read that finds the damage quarantines the block: later reads skip it,
 * the next sync drops it from the set and counts it. */
TEST(data_loss_on_a_corrupt_chunk)
{
    fresh_dir();
    kiln_db_t *db = open_db();
    if (db == NULL)
        return;
    push(db, "t1", "a", T0);
    push(db, "t1", "a", T0 + 10000000000LL);
    push(db, "t2", "a", T0);
    CHECK_OK(kiln_db_flush(db, NULL));
    kiln_db_close(db);
    char path[512];
    CHECK(samples_path("t1", path, sizeof(path)));
    CHECK(check_corrupt_first_chunk(path));
    db = open_db(); /* the block opens: its checksums match */
    if (db == NULL)
        return;
    int64_t t0_ms = T0 / 1000000;
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {.start_ms = t0_ms, .end_ms = t0_ms + 1}; /* not the cached sums */
    kiln_read_visitor v = {.tree = t};
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(kiln_db_read(db, "t1", &f, &v, &err), KILN_DATA_LOSS);
    printf("  %s\n", err.msg);
    CHECK(strstr(err.msg, "does not load") != NULL);
    /* Quarantined from then on: t1 has nothing else, so an empty answer. */
    CHECK_OK(kiln_db_read(db, "t1", &f, &v, NULL));
    CHECK_EQ(kiln_db_blocks_quarantined(db), 0); /* counted at the next sync */
    CHECK_OK(kiln_db_flush(db, NULL));
    CHECK_EQ(kiln_db_blocks_quarantined(db), 1);
    CHECK_OK(kiln_db_read(db, "t1", &f, &v, NULL));
    CHECK_EQ(check_db_total(db, "t2", NULL, 0, NULL) > 0, 1);
    static const uint64_t span = 7;
    size_t n = 0;
    kiln_read_filter spans = {.spans = &span, .n_spans = 1};
    kiln_read_visitor pv = {.profile = count_profile, .ctx = &n};
    db = reopen(db);
    CHECK_EQ(kiln_db_read(db, "t1", &spans, &pv, NULL), KILN_DATA_LOSS);
    db = reopen(db);
    CHECK_EQ(kiln_db_read(db, "t2|t1", &f, &v, NULL), KILN_DATA_LOSS);
    CHECK_EQ(check_db_total(db, "t2", NULL, 0, NULL) > 0, 1);
    kiln_tree_destroy(t);
    kiln_db_close(db);
    tmpdir_remove(dir);
}

static kiln_status refuse(void *ctx, const kiln_record *rec, kiln_err *err)
{
    (void)ctx;
    return kiln_err_set(err, KILN_FAILED_PRECONDITION, "not ours: %s", rec->tenant);
}

static kiln_status admit_t1(void *ctx, const kiln_record *rec, kiln_err *err)
{
    ++*(int *)ctx;
    return strcmp(rec->tenant, "t1") == 0 ? KILN_OK
                                          : kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant");
}

static kiln_status append_rec(kiln_db_t *db, const kiln_buf *rec, size_t len,
                              kiln_db_admit_fn admit, void *ctx, kiln_err *err)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_status st = kiln_db_append_record(db, a, (const uint8_t *)rec->ptr, len, admit, ctx, err);
    kiln_arena_destroy(a);
    return st;
}

/* A push record is decoded and checked before anything is stored: a
 * malformed one is invalid_argument, a refused one keeps its status, and
 * neither reaches the WAL; a retried one is stored once. */
TEST(append_record)
{
    fresh_dir();
    kiln_db_t *db = open_db();
    if (db == NULL)
        return;
    kiln_label_t l[2];
    kiln_pprof_t at;
    kiln_head_part p = part_of(l, "rec", &at, T0, 42);
    kiln_buf rec, other;
    kiln_buf_init(&rec, 0);
    kiln_buf_init(&other, 0);
    kiln_record_encode("t1", &p, 1, &rec);
    kiln_record_encode("t2", &p, 1, &other);
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(append_rec(db, &rec, rec.len - 3, NULL, NULL, &err), KILN_INVALID_ARGUMENT);
    printf("  truncated: %s\n", err.msg);
    kiln_buf junk;
    kiln_buf_init(&junk, 0);
    kiln_buf_puts(&junk, "not a record at all");
    CHECK_EQ(append_rec(db, &junk, junk.len, NULL, NULL, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(append_rec(db, &rec, rec.len, refuse, NULL, &err), KILN_FAILED_PRECONDITION);
    int admitted = 0;
    CHECK_EQ(append_rec(db, &other, other.len, admit_t1, &admitted, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(seen_in(db, "t1|t2").profiles, 0);
    CHECK_OK(append_rec(db, &rec, rec.len, admit_t1, &admitted, &err));
    CHECK_OK(append_rec(db, &rec, rec.len, admit_t1, &admitted, &err)); /* a retry */
    CHECK_EQ(admitted, 3);
    seen s = seen_in(db, "t1");
    CHECK_EQ(s.profiles, 2);
    kiln_db_close(db);
    db = open_db(); /* only the good record was logged */
    seen back = seen_in(db, "t1|t2");
    check_seen(&s, &back);
    kiln_db_close(db);
    kiln_buf_free(&junk);
    kiln_buf_free(&other);
    kiln_buf_free(&rec);
    tmpdir_remove(dir);
}

int main(void)
{
    kiln_arena_t *a = kiln_arena_create(0);
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &prof) || prof.n_sample_types != 2) {
        printf("cpu.pb.gz missing or not two sample types\n");
        return 1;
    }
    RUN(append_read_flush_replay);
    RUN(wal_metrics);
    RUN(data_loss_on_a_corrupt_chunk);
    RUN(append_record);
    RUN(frameless_samples_survive_replay_and_flush);
    kiln_arena_destroy(a);
    return check_done();
}
