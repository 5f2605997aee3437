/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the database flushing heads into blocks. Flushes started from several
 * threads at once (the flusher's tick and the flush before leaving a ring,
 * on SIGTERM) run one at a time: each cut head is written as one block and
 * freed once, so every profile is found exactly once, in a head or a block
 * (under -DKILN_SANITIZE=thread this is also the race detector's case).
 * The byte budget: the heads of all tenants reaching max_head_bytes are
 * cut and flushed, and at twice it (flushing behind) pushes are refused
 * with resource_exhausted naming the flag. A written head stays read for
 * the retire delay. */
#define _XOPEN_SOURCE 700
#include <glob.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "db_fixture.h"
#include "profiles.h"
#include "tmpdir.h"

#define TENANT "t1"
#define T0 1700000000000000000LL

static char dir[64];

/* A store in a fresh dir (the test's db goes there too). */
static kiln_objstore_t *fresh_store(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-flush-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    return check_store_open(dir);
}

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    (void)p;
    (*(size_t *)ctx)++;
}

/* Profiles the database answers with, heads and blocks together. */
static size_t profiles_seen(kiln_db_t *db)
{
    size_t n = 0;
    check_db_profiles(db, TENANT, on_profile, &n);
    return n;
}

/* Loads the CPU profile every test pushes into *p, in a new arena (NULL,
 * after a failed CHECK, when the test data is missing). */
static kiln_arena_t *load_cpu(kiln_pprof_t *p)
{
    kiln_arena_t *a = kiln_arena_create(0);
    if (check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", p))
        return a;
    CHECK(!"cpu.pb.gz missing");
    kiln_arena_destroy(a);
    return NULL;
}

typedef struct flusher_arg {
    kiln_db_t *db;
    pthread_barrier_t *go;
    kiln_status st;
} flusher_arg;

static void *flush_thread(void *arg)
{
    flusher_arg *f = arg;
    kiln_err err;
    pthread_barrier_wait(f->go);
    f->st = kiln_db_flush(f->db, &err);
    return NULL;
}

static double since_s(const int64_t *t0)
{
    return (double)(kiln_mono_ns() - *t0) / 1e9;
}

/* Rounds of: append a profile, then flush from two threads released at
 * once. Before flushes were serialised both threads saw the same cut head
 * pending, wrote it as two blocks (every profile then counted twice) and
 * both freed it. At most 40 rounds or 20 s. */
TEST(concurrent_flushes_write_each_head_once)
{
    kiln_pprof_t p;
    kiln_arena_t *a = load_cpu(&p);
    if (a == NULL)
        return;
    kiln_objstore_t *store = fresh_store();
    kiln_db_config c = {.path = dir,
                        .store = store,
                        .wal_segment_bytes = 1u << 20,
                        .flush_check_ns = 3600000000000LL};
    kiln_db_t *db = NULL;
    kiln_err err;
    CHECK_OK(kiln_db_open(&c, &db, &err));
    if (db == NULL) {
        kiln_arena_destroy(a);
        return;
    }
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "flush-test"}};
    size_t types = p.n_sample_types, rounds = 0, failed = 0;
    int64_t t0 = kiln_mono_ns();
    for (; rounds < 40 && since_s(&t0) < 20; rounds++) {
        p.time_nanos = T0 + (int64_t)rounds * 1000000000LL;
        kiln_head_part part = {l, 2, &p, 0};
        CHECK_OK(kiln_db_append(db, TENANT, &part, 1, &err));
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        flusher_arg fa[2] = {{db, &go, KILN_OK}, {db, &go, KILN_OK}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, flush_thread, &fa[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        CHECK_OK(fa[0].st);
        CHECK_OK(fa[1].st);
        size_t seen = profiles_seen(db);
        if (seen != (rounds + 1) * types && failed++ == 0)
            printf("  round %zu: %zu profiles seen, %zu pushed\n", rounds, seen,
                   (rounds + 1) * types);
    }
    CHECK_EQ(failed, 0);
    kiln_head_stats_t s;
    kiln_db_stats(db, NULL, &s);
    CHECK_EQ(s.profiles, 0); /* every head went into a block */
    printf("  %zu rounds of two concurrent flushes in %.2f s\n", rounds, since_s(&t0));
    kiln_db_close(db);
    /* A restart replays nothing twice: the blocks hold everything. */
    CHECK_OK(kiln_db_open(&c, &db, &err));
    if (db != NULL)
        CHECK_EQ(profiles_seen(db), rounds * types);
    kiln_db_close(db);
    kiln_objstore_close(store);
    tmpdir_remove(dir);
    kiln_arena_destroy(a);
}

/* A db in a fresh dir with its own store and byte budget; no timed flush. */
static kiln_db_t *open_budget(kiln_objstore_t **store, size_t budget)
{
    *store = fresh_store();
    kiln_db_config c = {.path = dir,
                        .store = *store,
                        .wal_segment_bytes = 1u << 20,
                        .flush_check_ns = 3600000000000LL,
                        .max_head_bytes = budget};
    kiln_db_t *db = NULL;
    CHECK_OK(kiln_db_open(&c, &db, NULL));
    return db;
}

static void close_budget(kiln_db_t *db, kiln_objstore_t *store)
{
    kiln_db_close(db);
    kiln_objstore_close(store);
    tmpdir_remove(dir);
}

/* Appends p as service svc of tenant at second i. */
static kiln_status push_as(kiln_db_t *db, const char *tenant, const char *svc, kiln_pprof_t *p,
                           int i, kiln_err *err)
{
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", svc}};
    p->time_nanos = T0 + (int64_t)i * 1000000000LL;
    kiln_head_part part = {l, 2, p, 0};
    return kiln_db_append(db, tenant, &part, 1, err);
}

static size_t profiles_of(kiln_db_t *db, const char *tenants)
{
    kiln_head_stats_t s;
    kiln_db_stats(db, tenants, &s);
    return s.profiles;
}

/* Waits up to 10 s for the heads taking appends to be empty and none to
 * be waiting for its block: a flush round went through. */
static bool wait_flushed(kiln_db_t *db)
{
    int64_t t0 = kiln_mono_ns();
    size_t flushing = 1;
    while (since_s(&t0) < 10 && (profiles_of(db, NULL) != 0 || flushing != 0)) {
        usleep(10000);
        kiln_db_head_bytes(db, NULL, &flushing);
    }
    return profiles_of(db, NULL) == 0 && flushing == 0;
}

/* The bytes one push of p takes, tenant entry included. */
static size_t one_push_bytes(kiln_pprof_t *p)
{
    kiln_objstore_t *store;
    kiln_db_t *db = open_budget(&store, 0);
    size_t b = 0;
    if (db != NULL && push_as(db, "t1", "a", p, 0, NULL) == KILN_OK)
        kiln_db_head_bytes(db, &b, NULL);
    close_budget(db, store);
    return b;
}

/* The push that takes the heads of all tenants to max_head_bytes wakes the
 * flusher (its period is an hour here), which cuts every non-empty head,
 * the other tenant's too, and writes them as blocks. */
TEST(byte_budget_cuts_and_flushes_every_head)
{
    kiln_pprof_t p;
    kiln_arena_t *a = load_cpu(&p);
    if (a == NULL)
        return;
    size_t one = one_push_bytes(&p), types = p.n_sample_types;
    CHECK(one > 0);
    kiln_objstore_t *store;
    kiln_db_t *db = open_budget(&store, one + 1);
    if (db == NULL) {
        kiln_arena_destroy(a);
        return;
    }
    CHECK_OK(push_as(db, "t1", "a", &p, 0, NULL));
    size_t appending;
    kiln_db_head_bytes(db, &appending, NULL);
    CHECK_EQ(appending, one); /* under the budget: no cut */
    usleep(50000);
    CHECK_EQ(profiles_of(db, NULL), types);
    CHECK_OK(push_as(db, "t2", "b", &p, 0, NULL)); /* over it */
    CHECK(wait_flushed(db));
    CHECK_EQ(profiles_of(db, "t1"), types); /* now in blocks */
    CHECK_EQ(profiles_of(db, "t2"), types);
    kiln_db_head_bytes(db, &appending, NULL);
    CHECK(appending < one);
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_db_metrics(db, &m);
    kiln_buf_putc(&m, '\0');
    CHECK(strstr(m.ptr, "kiln_ingester_max_head_bytes ") != NULL);
    CHECK(strstr(m.ptr, "kiln_ingester_head_bytes{state=\"flushing\"} 0\n") != NULL);
    kiln_buf_free(&m);
    close_budget(db, store);
    kiln_arena_destroy(a);
}

/* With the store refusing blocks (a file where the tenant's directory
 * goes), the cut heads stay: pushes go on until the heads, those being
 * flushed included, hold twice the budget, and are then refused with
 * resource_exhausted naming -ingester.max-head-bytes. Once blocks can be
 * written again, a flush empties the heads and pushes are taken again. */
TEST(byte_budget_refuses_pushes_at_twice_it)
{
    kiln_pprof_t p;
    kiln_arena_t *a = load_cpu(&p);
    if (a == NULL)
        return;
    size_t budget = 2 * one_push_bytes(&p);
    kiln_objstore_t *store;
    kiln_db_t *db = open_budget(&store, budget);
    if (db == NULL) {
        kiln_arena_destroy(a);
        return;
    }
    char blocker[128];
    snprintf(blocker, sizeof(blocker), "%s/bucket/t1", dir);
    FILE *f = fopen(blocker, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    kiln_err err = {KILN_OK, ""};
    kiln_status st = KILN_OK;
    size_t appending = 0, flushing = 0;
    int i = 0;
    for (; i < 5000 && st == KILN_OK; i++) {
        char svc[32];
        snprintf(svc, sizeof(svc), "svc-%d", i);
        st = push_as(db, "t1", svc, &p, i, &err);
        kiln_db_head_bytes(db, &appending, &flushing);
        /* Once over the budget, let the woken flusher cut (its write fails). */
        int64_t t0 = kiln_mono_ns();
        while (st == KILN_OK && appending >= budget && flushing == 0 && since_s(&t0) < 10) {
            usleep(10000);
            kiln_db_head_bytes(db, &appending, &flushing);
        }
    }
    CHECK_EQ(st, KILN_RESOURCE_EXHAUSTED);
    CHECK(strstr(err.msg, "twice -ingester.max-head-bytes") != NULL);
    CHECK(flushing >= budget);                 /* a cut head waits for its block */
    CHECK(appending + flushing >= 2 * budget); /* refused only at twice the budget */
    CHECK(appending + flushing < 3 * budget);  /* and not long after */
    printf("  refused after %d pushes: %s\n", i, err.msg);
    CHECK_EQ(remove(blocker), 0);
    CHECK_OK(kiln_db_flush(db, NULL)); /* writes the cut head */
    CHECK_OK(kiln_db_flush(db, NULL)); /* cuts and writes the rest */
    CHECK_EQ(profiles_of(db, NULL), 0);
    CHECK_OK(push_as(db, "t1", "again", &p, i, NULL));
    close_budget(db, store);
    kiln_arena_destroy(a);
}

/* A budget above SIZE_MAX / 2 (bytes given by mistake) refuses nothing:
 * twice it used to wrap to a few bytes. */
TEST(byte_budget_huge_refuses_nothing)
{
    kiln_pprof_t p;
    kiln_arena_t *a = load_cpu(&p);
    if (a == NULL)
        return;
    kiln_objstore_t *store;
    kiln_db_t *db = open_budget(&store, SIZE_MAX / 2 + 2);
    if (db != NULL) {
        CHECK_OK(push_as(db, "t1", "a", &p, 0, NULL));
        CHECK_OK(push_as(db, "t1", "a", &p, 1, NULL));
    }
    close_budget(db, store);
    kiln_arena_destroy(a);
}

/* Waits up to 10 s for a block of tenant t1 in the fixture's store. */
static bool wait_block(void)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "%s/bucket/" TENANT "/blocks/*/meta.json", dir);
    int64_t t0 = kiln_mono_ns();
    for (;;) {
        glob_t g;
        bool found = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
        globfree(&g);
        if (found || since_s(&t0) >= 10)
            return found;
        usleep(10000);
    }
}

/* A cluster's ingester (heads_only) keeps a head it wrote as a block for
 * retire_delay_ns: a querier lists the profiles of every ingester's heads,
 * then asks each for its share, and an ingester that dropped the head
 * between the two answered without it (a query short by a block's worth,
 * seen in integration.cluster). The flusher's own round writes the block;
 * the head is still read after it, and a forced flush drops it at once. */
TEST(written_head_stays_read_for_the_retire_delay)
{
    kiln_pprof_t p;
    kiln_arena_t *a = load_cpu(&p);
    if (a == NULL)
        return;
    kiln_objstore_t *store = fresh_store();
    kiln_db_config c = {.path = dir,
                        .store = store,
                        .max_block_duration_ns = 1000000,
                        .flush_check_ns = 20000000,
                        .heads_only = true,
                        .retire_delay_ns = 3600000000000LL};
    kiln_db_t *db = NULL;
    CHECK_OK(kiln_db_open(&c, &db, NULL));
    if (db != NULL) {
        CHECK_OK(push_as(db, TENANT, "a", &p, 0, NULL));
        CHECK(wait_block());
        /* The round that wrote the block goes on to retire what it may;
         * fifteen more rounds pass (20 ms each) before the head is read. */
        usleep(300000);
        CHECK_EQ(profiles_seen(db), p.n_sample_types); /* the written head, still read */
        kiln_err err;
        CHECK_OK(kiln_db_flush(db, &err));
        CHECK_EQ(profiles_seen(db), 0); /* in its block only: heads_only reads none */
    }
    kiln_db_close(db);
    kiln_objstore_close(store);
    tmpdir_remove(dir);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(concurrent_flushes_write_each_head_once);
    RUN(byte_budget_cuts_and_flushes_every_head);
    RUN(byte_budget_refuses_pushes_at_twice_it);
    RUN(byte_budget_huge_refuses_nothing);
    RUN(written_head_stays_read_for_the_retire_delay);
    return check_done();
}
