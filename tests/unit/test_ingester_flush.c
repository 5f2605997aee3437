/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the database flushing heads into blocks. Flushes started from several
 * threads at once (the flusher's tick and the flush before leaving a ring,
 * on SIGTERM) run one at a time: each cut head is written as one block and
 * freed once, so every profile is found exactly once, in a head or a block
 * (under -DKILN_SANITIZE=thread this is also the race detector's case). */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "clock.h"
#include "db_fixture.h"
#include "profiles.h"
#include "tmpdir.h"

#define TENANT "t1"
#define T0 1700000000000000000LL

static char dir[64];

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
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &p)) {
        CHECK(!"cpu.pb.gz missing");
        kiln_arena_destroy(a);
        return;
    }
    snprintf(dir, sizeof(dir), "/tmp/kiln-flush-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    kiln_objstore_t *store = check_store_open(dir);
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

int main(void)
{
    RUN(concurrent_flushes_write_each_head_once);
    return check_done();
}
