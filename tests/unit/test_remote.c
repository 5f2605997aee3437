/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the remote store (services/ingester/remote.h) over real
 * transport: three in-process ingesters, each serving ingester.v1 on its
 * own gRPC server on a loopback port, in a ring, with the object store
 * they flush to. At replication factor 3 a push is acknowledged at a
 * quorum of 2: with one ingester down it still is and reads stay exact
 * (replicas, and a replica flushed to a block, counted once); with two
 * down nothing is acknowledged and reads fail naming them; an ingester's
 * series-limit refusal reaches the caller as FAILED_PRECONDITION. A head
 * written as a block and dropped between a merge's listing and its merge
 * is read from that block, each profile once; if it is in no block, the
 * read fails instead of coming up short. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "db.h"
#include "grpc_server.h"
#include "ingester.h"
#include "remote.h"
#include "rpc.h"
#include "synth.h"
#include "tmpdir.h"

#define N_ING 3
#define T0_MS 1700000000000LL
#define SERIES 4
#define M_MERGE "/ingester.v1.IngesterService/MergeTree"

/* Stages the race between a querier's listing and its merge on one
 * ingester: armed, its next MergeTree first writes its head as a block and
 * drops it (the retire delay is 0 here), as a flush landing between the
 * two calls does; with lose_block the block is deleted as well, so the
 * profiles are in no block a querier can read. */
typedef struct merge_hook {
    kiln_ingester_t *ing;
    kiln_rpc_method inner; /* the ingester's own MergeTree */
    const char *blocks;    /* the tenant's blocks in the bucket */
    atomic_bool armed;
    bool lose_block;
    atomic_int fired;
} merge_hook;

typedef struct node {
    kiln_ingester_t *ing;
    kiln_rpc_registry_t *rpc;
    kiln_grpc_server_t *grpc; /* NULL once stopped */
    merge_hook hook;
} node;

typedef struct cluster {
    char dir[64], bucket[96], blocks[112];
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    node n[N_ING];
    kiln_ring_t *ring;
    kiln_grpc_client_t *client;
    kiln_objstore_t *store;
    kiln_remote_t *remote;
    kiln_store_t iface;
} cluster;

static kiln_status on_merge_tree(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp)
{
    merge_hook *h = svc;
    if (atomic_exchange(&h->armed, false)) {
        kiln_err err = {KILN_OK, ""};
        CHECK_OK(kiln_ingester_flush(h->ing, &err));
        if (h->lose_block)
            tmpdir_remove(h->blocks);
        atomic_fetch_add(&h->fired, 1);
    }
    return h->inner.fn(h->inner.svc, ctx, req, resp);
}

/* Puts node i's MergeTree behind its hook (disarmed). */
static void hook_merge_tree(cluster *c, int i)
{
    merge_hook *h = &c->n[i].hook;
    h->ing = c->n[i].ing;
    h->inner = *kiln_rpc_find(c->n[i].rpc, KILN_RPC_INTERNAL, M_MERGE, strlen(M_MERGE));
    h->blocks = c->blocks;
    kiln_rpc_method m = h->inner;
    m.fn = on_merge_tree;
    m.svc = h;
    kiln_rpc_register(c->n[i].rpc, &m);
}

/* Arms every ingester's hook: whichever the querier asks to merge a share
 * loses its head first. */
static void arm_merge_hooks(cluster *c, bool lose_block)
{
    for (int i = 0; i < N_ING; i++) {
        c->n[i].hook.lose_block = lose_block;
        atomic_store(&c->n[i].hook.fired, 0);
        atomic_store(&c->n[i].hook.armed, true);
    }
}

/* Disarms the hooks; how many fired since armed. */
static int disarm_merge_hooks(cluster *c)
{
    int fired = 0;
    for (int i = 0; i < N_ING; i++) {
        atomic_store(&c->n[i].hook.armed, false);
        fired += atomic_load(&c->n[i].hook.fired);
    }
    return fired;
}

static bool node_start(cluster *c, int i, kiln_ring_member *m)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/ing-%d", c->dir, i);
    kiln_ingester_config ic = {.storage_path = path,
                               .wal_no_fsync = true,
                               .wal_segment_bytes = 1u << 24,
                               .store = c->store,
                               .heads_only = true,
                               .limits = c->limits};
    kiln_err err = {KILN_OK, ""};
    kiln_status st = kiln_ingester_create(&ic, &c->n[i].ing, &err);
    CHECK_OK(st);
    if (st != KILN_OK)
        return false;
    c->n[i].rpc = kiln_rpc_registry_create();
    kiln_ingester_register(c->n[i].ing, c->n[i].rpc);
    hook_merge_tree(c, i);
    kiln_grpc_config gc = {.address = "127.0.0.1",
                           .port = 0,
                           .threads = 2,
                           .max_recv = (size_t)16 << 20,
                           .plane = KILN_RPC_INTERNAL};
    c->n[i].grpc = kiln_grpc_server_create(&gc, c->n[i].rpc, c->metrics);
    CHECK_OK(kiln_grpc_server_start(c->n[i].grpc, &err));
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "ingester-%d", i);
    snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d", kiln_grpc_server_port(c->n[i].grpc));
    m->state = KILN_RING_ACTIVE;
    return true;
}

/* Three ingesters in a ring, a remote store over them at rf 3; a tenant
 * series limit of max_series (0 = none) on every ingester. */
static bool cluster_open(cluster *c, size_t max_series)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/kiln-remote-XXXXXX");
    CHECK(mkdtemp(c->dir) != NULL);
    snprintf(c->bucket, sizeof(c->bucket), "%s/bucket", c->dir);
    snprintf(c->blocks, sizeof(c->blocks), "%s/t/blocks", c->bucket);
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_global_series = max_series;
    c->limits = kiln_overrides_create(&lim);
    c->metrics = kiln_metrics_create();
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_objstore_open_fs(c->bucket, &c->store, &err));
    kiln_ring_member m[N_ING];
    for (int i = 0; i < N_ING; i++) {
        if (!node_start(c, i, &m[i]))
            return false;
    }
    c->ring = kiln_ring_create();
    kiln_ring_set(c->ring, m, N_ING);
    c->client = kiln_grpc_client_create(0);
    kiln_remote_config rc = {
        .ring = c->ring, .grpc = c->client, .blocks = c->store, .rf = 3, .timeout_ms = 5000};
    c->remote = kiln_remote_create(&rc);
    c->iface = kiln_remote_store(c->remote);
    return true;
}

static void node_stop(node *n)
{
    kiln_grpc_server_destroy(n->grpc);
    n->grpc = NULL;
}

/* The servers stop before the client: their shutdown lets the calls a
 * push left running after its quorum end, where the client's would cancel
 * them under a handler still replying (grpc_server.c then starts a batch
 * on a completion queue already shut down and gRPC aborts). */
static void cluster_close(cluster *c)
{
    kiln_remote_destroy(c->remote);
    for (int i = 0; i < N_ING; i++)
        node_stop(&c->n[i]);
    kiln_grpc_client_destroy(c->client);
    for (int i = 0; i < N_ING; i++) {
        kiln_rpc_registry_destroy(c->n[i].rpc);
        kiln_ingester_destroy(c->n[i].ing);
    }
    kiln_objstore_close(c->store);
    kiln_ring_destroy(c->ring);
    kiln_metrics_destroy(c->metrics);
    kiln_overrides_destroy(c->limits);
    tmpdir_remove(c->dir);
}

/* One push of SERIES series (pod p0..p3) with value v each at T0 + dt,
 * push id id; the store's status, err its message. */
static kiln_status push(cluster *c, int64_t v, int64_t dt_ms, uint64_t id, kiln_err *err)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(synth_profile(a, v, (T0_MS + dt_ms) * 1000000, &p));
    kiln_label_t l[SERIES][3];
    kiln_head_part parts[SERIES];
    for (int i = 0; i < SERIES; i++) {
        l[i][0] = (kiln_label_t){"__name__", "process_cpu"};
        l[i][1] = (kiln_label_t){"pod", kiln_arena_printf(a, "p%d", i)};
        l[i][2] = (kiln_label_t){"service_name", "api"};
        parts[i] = (kiln_head_part){l[i], 3, &p, id};
    }
    kiln_status st = kiln_store_append(&c->iface, "t", parts, SERIES, err);
    kiln_arena_destroy(a);
    return st;
}

/* The merged total through the remote store; -1 when the read fails. */
static int64_t total(cluster *c, kiln_err *err)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {.start_ms = T0_MS - 1000, .end_ms = T0_MS + 60000};
    kiln_read_visitor v = {.tree = t};
    kiln_status st = kiln_store_read(&c->iface, "t", &f, &v, err);
    int64_t sum = st == KILN_OK ? kiln_tree_total(t) : -1;
    kiln_tree_destroy(t);
    return sum;
}

static void count_profile(void *ctx, const kiln_read_profile *p)
{
    (void)p;
    (*(size_t *)ctx)++;
}

static void count_series(void *ctx, const kiln_label_t *l, size_t n)
{
    (void)l, (void)n;
    (*(size_t *)ctx)++;
}

/* How many profiles the remote store visits (each once); -1 on failure. */
static long profiles(cluster *c, kiln_err *err)
{
    size_t n = 0;
    kiln_read_filter f = {.start_ms = T0_MS - 1000, .end_ms = T0_MS + 60000};
    kiln_read_visitor v = {.profile = count_profile, .ctx = &n};
    return kiln_store_read(&c->iface, "t", &f, &v, err) == KILN_OK ? (long)n : -1;
}

static size_t held(cluster *c, int i)
{
    kiln_head_stats_t s;
    kiln_db_stats(kiln_ingester_db(c->n[i].ing), "t", &s);
    return s.profiles;
}

/* What ingester i holds once the calls left running after the quorum
 * ended: the push returns at 2 of 3 replicas; bounded at 5 s. */
static size_t settled(cluster *c, int i, size_t want)
{
    size_t n = held(c, i);
    for (int k = 0; k < 250 && n != want; k++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        n = held(c, i);
    }
    return n;
}

TEST(all_replicas_take_the_push_and_reads_count_it_once)
{
    cluster c;
    if (!cluster_open(&c, 0))
        return;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(push(&c, 7, 0, 101, &err));
    for (int i = 0; i < N_ING; i++)
        CHECK_EQ(settled(&c, i, SERIES), SERIES); /* rf 3 of 3: every ingester has every series */
    CHECK_EQ(total(&c, &err), 7 * SERIES);
    CHECK_EQ(profiles(&c, &err), SERIES);
    size_t series = 0;
    kiln_read_filter f = {.start_ms = T0_MS - 1000};
    kiln_read_visitor v = {.series = count_series, .ctx = &series};
    CHECK_OK(kiln_store_read(&c.iface, "t", &f, &v, &err));
    CHECK_EQ(series, N_ING * SERIES); /* a series may be visited once per replica */
    kiln_head_stats_t s;
    CHECK_OK(kiln_store_stats(&c.iface, "t", &s, &err));
    CHECK_EQ(s.profiles, N_ING * SERIES); /* replicas included */
    CHECK_EQ(s.min_time_ms, T0_MS);
    /* A replica flushed to a block meanwhile is still counted once. */
    CHECK_OK(kiln_ingester_flush(c.n[0].ing, &err));
    CHECK_EQ(held(&c, 0), 0);
    CHECK_EQ(total(&c, &err), 7 * SERIES);
    CHECK_EQ(profiles(&c, &err), SERIES);
    /* The read's own key set narrows it. */
    kiln_label_t l[] = {{"__name__", "process_cpu"},
                        {"__period_type__", "cpu"},
                        {"__period_unit__", "nanoseconds"},
                        {"__profile_type__", SYNTH_TYPE},
                        {"__service_name__", "api"},
                        {"__type__", "cpu"},
                        {"__unit__", "nanoseconds"},
                        {"pod", "p2"},
                        {"service_name", "api"}};
    uint64_t key = kiln_profile_key(l, 9, T0_MS, 101);
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter one = {.start_ms = T0_MS - 1000, .keys = &key, .n_keys = 1};
    kiln_read_visitor tv = {.tree = t};
    CHECK_OK(kiln_store_read(&c.iface, "t", &one, &tv, &err));
    CHECK_EQ(kiln_tree_total(t), 7);
    kiln_tree_destroy(t);
    cluster_close(&c);
}

TEST(one_replica_down_still_makes_a_quorum)
{
    cluster c;
    if (!cluster_open(&c, 0))
        return;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(push(&c, 3, 0, 201, &err));
    CHECK_EQ(settled(&c, 2, SERIES), SERIES);
    node_stop(&c.n[2]);
    CHECK_OK(push(&c, 5, 10000, 202, &err));
    CHECK_EQ(settled(&c, 0, 2 * SERIES), 2 * SERIES);
    CHECK_EQ(held(&c, 2), SERIES); /* it missed the second push */
    CHECK_EQ(total(&c, &err), (3 + 5) * SERIES);
    CHECK_EQ(profiles(&c, &err), 2 * SERIES);
    cluster_close(&c);
}

TEST(two_replicas_down_fail_writes_and_reads)
{
    cluster c;
    if (!cluster_open(&c, 0))
        return;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(push(&c, 3, 0, 301, &err));
    node_stop(&c.n[1]);
    node_stop(&c.n[2]);
    kiln_status st = push(&c, 5, 10000, 302, &err);
    printf("  push: %s: %s\n", kiln_status_str(st), err.msg);
    CHECK_EQ(st, KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "quorum of 2 of 3") != NULL);
    CHECK(strstr(err.msg, "ingester-1") != NULL && strstr(err.msg, "ingester-2") != NULL);
    CHECK_EQ(total(&c, &err), -1);
    printf("  read: %s\n", err.msg);
    CHECK_EQ(err.code, KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "2 of 3 ingesters did not answer") != NULL);
    kiln_head_stats_t s;
    CHECK_EQ(kiln_store_stats(&c.iface, "t", &s, &err), KILN_UNAVAILABLE);
    cluster_close(&c);
}

TEST(series_limit_refusal_is_failed_precondition)
{
    cluster c;
    if (!cluster_open(&c, 2))
        return;
    kiln_err err = {KILN_OK, ""};
    kiln_status st = push(&c, 3, 0, 401, &err);
    printf("  push: %s: %s\n", kiln_status_str(st), err.msg);
    CHECK_EQ(st, KILN_FAILED_PRECONDITION);
    CHECK(strstr(err.msg, "max_global_series_per_tenant") != NULL);
    for (int i = 0; i < N_ING; i++)
        CHECK_EQ(held(&c, i), 0);
    cluster_close(&c);
}

TEST(head_dropped_before_the_merge_is_read_from_its_block)
{
    cluster c;
    if (!cluster_open(&c, 0))
        return;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(push(&c, 7, 0, 501, &err));
    for (int i = 0; i < N_ING; i++)
        CHECK_EQ(settled(&c, i, SERIES), SERIES);
    /* The first push is in a block too, so the listing gives it to the
     * block; the second is in heads only, given to one ingester. */
    CHECK_OK(kiln_ingester_flush(c.n[1].ing, &err));
    CHECK_OK(push(&c, 5, 10000, 502, &err));
    for (int i = 0; i < N_ING; i++)
        CHECK_EQ(settled(&c, i, i == 1 ? SERIES : 2 * SERIES), i == 1 ? SERIES : 2 * SERIES);
    /* That ingester writes its head (both pushes) as a block and drops it
     * before it merges: it finds none of its share and names those keys,
     * and the querier reads them from the new block, skipping the first
     * push there (the older block gave it already). Without the querier's
     * re-read the total is 7 * SERIES, the second push lost; merging the
     * whole new block would give (7 + 7 + 5) * SERIES. */
    arm_merge_hooks(&c, false);
    CHECK_EQ(total(&c, &err), (7 + 5) * SERIES);
    CHECK_EQ(disarm_merge_hooks(&c), 1);
    CHECK_EQ(total(&c, &err), (7 + 5) * SERIES);
    CHECK_EQ(profiles(&c, &err), 2 * SERIES);
    cluster_close(&c);
}

TEST(head_dropped_before_the_merge_into_no_block_fails_the_read)
{
    cluster c;
    if (!cluster_open(&c, 0))
        return;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(push(&c, 7, 0, 601, &err));
    for (int i = 0; i < N_ING; i++)
        CHECK_EQ(settled(&c, i, SERIES), SERIES);
    /* The ingester given the share loses it to a block nobody can read:
     * the read fails, where it used to answer 0. */
    arm_merge_hooks(&c, true);
    CHECK_EQ(total(&c, &err), -1);
    CHECK_EQ(disarm_merge_hooks(&c), 1);
    printf("  read: %s\n", err.msg);
    CHECK_EQ(err.code, KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "4 of the profiles this query listed moved") != NULL);
    CHECK(strstr(err.msg, "a retry will see them") != NULL);
    /* The retry lists again and finds the push on the other replicas. */
    err = (kiln_err){KILN_OK, ""};
    CHECK_EQ(total(&c, &err), 7 * SERIES);
    cluster_close(&c);
}

int main(void)
{
    RUN(all_replicas_take_the_push_and_reads_count_it_once);
    RUN(one_replica_down_still_makes_a_quorum);
    RUN(two_replicas_down_fail_writes_and_reads);
    RUN(series_limit_refusal_is_failed_precondition);
    RUN(head_dropped_before_the_merge_is_read_from_its_block);
    RUN(head_dropped_before_the_merge_into_no_block_fails_the_read);
    return check_done();
}
