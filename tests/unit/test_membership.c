/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: membership over a real nats-server (started here on an
 * ephemeral loopback port, with JetStream and a store dir): start-up before
 * the server exists, convergence, state changes, leaving, eviction of a
 * silent member, distributor counts and rate shares, overrides, and a
 * server killed and restarted. Skips when nats-server is not installed.
 * Membership time runs on manual clocks: a test moves time on (heartbeats,
 * ages, the grace period) instead of sleeping through it, and waits only
 * for what other threads and the server do. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "membership.h"

#define HB_NS 100000000LL       /* 100 ms */
#define TIMEOUT_NS 2000000000LL /* 2 s */
/* How long a wait may take before it fails: generous, as every wait here
 * is for something that must happen (none for something that must not),
 * and a fresh bucket's first writes are JetStream file syncs that took
 * over 5 s once, with the suite running beside the image build. The
 * figures printed show how long they took. */
#define WAIT_MS 20000
#define BUCKET "kiln-test"

static char server_bin[512];
static char store_dir[] = "/tmp/kiln-nats-XXXXXX";
static int port;
static pid_t server_pid = -1;
static char url[64];
/* The members' clocks: a..d2 share `fast`, the slow pair `slow`. */
static kiln_manual_clock fast, slow;

static int64_t now_ms(void)
{
    return kiln_mono_ns() / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls cond every 20 ms for up to WAIT_MS; true when it held. */
#define WAIT_FOR(cond)                                                                             \
    ({                                                                                             \
        int64_t wait_end_ = now_ms() + WAIT_MS;                                                    \
        while (!(cond) && now_ms() < wait_end_)                                                    \
            sleep_ms(20);                                                                          \
        (cond);                                                                                    \
    })

static bool find_server(void)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin", path != NULL ? path : "/usr/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(server_bin, sizeof(server_bin), "%s/nats-server", d);
        if (access(server_bin, X_OK) == 0)
            return true;
    }
    return false;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_accepts(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static bool start_server(void)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    server_pid = fork();
    if (server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(server_bin, "nats-server", "-js", "-a", "127.0.0.1", "-p", p, "-sd", store_dir,
              (char *)NULL);
        _exit(127);
    }
    return WAIT_FOR(port_accepts());
}

static void kill_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- observing rings ---------------------------------------------------- */

static size_t ring_size(kiln_ring_t *r)
{
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    const kiln_ring_member *m;
    size_t n = kiln_ring_members(s, &m);
    kiln_ring_release(s);
    return n;
}

/* The state of id in r, or -1 when absent. */
static int ring_state(kiln_ring_t *r, const char *id)
{
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    const kiln_ring_member *m;
    size_t n = kiln_ring_members(s, &m);
    int st = -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].id, id) == 0)
            st = (int)m[i].state;
    }
    kiln_ring_release(s);
    return st;
}

/* ---- the cluster under test --------------------------------------------- */

typedef struct node {
    kiln_ring_t *ring;
    kiln_overrides_t *ov;
    kiln_membership_t *m;
    char key[96]; /* its key in the bucket ("" = not joined) */
} node;

static kiln_limits test_limits(void)
{
    kiln_limits l;
    memset(&l, 0, sizeof(l));
    l.ingestion_rate_mb = 1;
    l.ingestion_burst_mb = 2;
    return l;
}

static bool node_start_cfg(node *n, const kiln_membership_config *cfg, const char *role,
                           const char *id, uint32_t token_base)
{
    kiln_limits l = test_limits();
    n->ring = kiln_ring_create();
    n->ov = kiln_overrides_create(&l);
    if (kiln_membership_create(cfg, n->ring, n->ov, &n->m, NULL) != KILN_OK)
        return false;
    if (role != NULL) {
        kiln_ring_member self;
        memset(&self, 0, sizeof(self));
        snprintf(self.id, sizeof(self.id), "%s", id);
        snprintf(self.addr, sizeof(self.addr), "127.0.0.1:%u", 9000 + token_base);
        snprintf(self.zone, sizeof(self.zone), "zone-\"%u\"", token_base); /* escaped in JSON */
        self.n_tokens = 4;
        for (size_t i = 0; i < self.n_tokens; i++)
            self.tokens[i] = token_base * 1000003u + (uint32_t)i * 0x40000000u;
        kiln_membership_join(n->m, role, &self);
        snprintf(n->key, sizeof(n->key), "%s.%s", role, id);
        for (char *d = n->key + strlen(role) + 1; *d != '\0'; d++)
            *d = *d == '.' ? '_' : *d;
    }
    return true;
}

static bool node_start(node *n, const char *role, const char *id, uint32_t token_base)
{
    kiln_membership_config cfg = {.nats_urls = url,
                                  .bucket = BUCKET,
                                  .heartbeat_ns = HB_NS,
                                  .heartbeat_timeout_ns = TIMEOUT_NS,
                                  .clock = &fast.clock};
    return node_start_cfg(n, &cfg, role, id, token_base);
}

static void node_stop(node *n)
{
    kiln_membership_destroy(n->m);
    kiln_overrides_destroy(n->ov);
    kiln_ring_destroy(n->ring);
    memset(n, 0, sizeof(*n));
}

/* A direct client of the bucket, to look at keys and to plant entries. */
typedef struct client {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
} client;

static void client_close(client *c);

/* Fails (holding nothing) while the bucket does not exist yet. */
static bool client_open(client *c)
{
    memset(c, 0, sizeof(*c));
    if (natsConnection_ConnectTo(&c->nc, url) == NATS_OK &&
        natsConnection_JetStream(&c->js, c->nc, NULL) == NATS_OK &&
        js_KeyValue(&c->kv, c->js, BUCKET) == NATS_OK)
        return true;
    client_close(c);
    return false;
}

static void client_close(client *c)
{
    kvStore_Destroy(c->kv);
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
}

static bool key_exists(client *c, const char *key)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, c->kv, key);
    kvEntry_Destroy(e);
    return s == NATS_OK;
}

static node a, b, c, d1, d2;
/* Members of another bucket that heartbeat only every 3 s: what they see
 * sooner came through the watcher. */
static node s1, s2;
#define SLOW_HB_NS 3000000000LL

static bool slow_start(node *n, const char *id, uint32_t token_base)
{
    kiln_membership_config cfg = {.nats_urls = url,
                                  .bucket = "kiln-slow",
                                  .heartbeat_ns = SLOW_HB_NS,
                                  .heartbeat_timeout_ns = 4 * SLOW_HB_NS,
                                  .clock = &slow.clock};
    return node_start_cfg(n, &cfg, "ingester", id, token_base);
}

/* The heartbeat_ms in key's value; -1 when absent. */
static int64_t key_heartbeat(client *cl, const char *key)
{
    kvEntry *e = NULL;
    int64_t hb = -1;
    if (kvStore_Get(&e, cl->kv, key) == NATS_OK) {
        const char *v = kvEntry_ValueString(e),
                   *at = v != NULL ? strstr(v, "\"heartbeat_ms\":") : NULL;
        if (at != NULL)
            hb = strtoll(at + strlen("\"heartbeat_ms\":"), NULL, 10);
    }
    kvEntry_Destroy(e);
    return hb;
}

/* Whether every joined member on the fast clock has put a heartbeat at
 * least as new as that clock's present. */
static bool heartbeats_caught_up(client *cl)
{
    node *all[] = {&a, &b, &c, &d1, &d2};
    int64_t now = fast.clock.wall_ns(&fast) / 1000000;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i]->m != NULL && all[i]->key[0] != '\0' && key_heartbeat(cl, all[i]->key) < now)
            return false;
    }
    return true;
}

/* Moves the fast clock on by ns, a heartbeat at a time, waiting after each
 * step until every member has heartbeat (so no one's entry looks older
 * than the step), and calls watch (when not NULL) after each step. */
static bool advance_fast(int64_t ns, void (*watch)(void))
{
    client cl;
    bool open = false; /* WAIT_FOR evaluates its condition again at the end */
    if (!WAIT_FOR(open || (open = client_open(&cl))))
        return false;
    bool ok = true;
    for (int64_t done = 0; ok && done < ns; done += HB_NS) {
        kiln_manual_clock_advance(&fast, HB_NS);
        ok = WAIT_FOR(heartbeats_caught_up(&cl));
        if (watch != NULL)
            watch();
    }
    client_close(&cl);
    return ok;
}

static bool all_rings(size_t n)
{
    return ring_size(a.ring) == n && ring_size(b.ring) == n &&
           (c.ring == NULL || ring_size(c.ring) == n);
}

TEST(starts_before_the_server_and_converges)
{
    CHECK(node_start(&a, "ingester", "ingester-a", 1)); /* nothing listens yet */
    CHECK(!kiln_membership_connected(a.m));
    CHECK(start_server());
    CHECK(node_start(&b, "ingester", "ingester-b", 2));
    CHECK(node_start(&c, "ingester", "ingester.c", 3)); /* a dot: the key is sanitized */
    int64_t t0 = now_ms();
    CHECK(WAIT_FOR(all_rings(3)));
    printf("  three rings converged in %lld ms (a started before the server)\n",
           (long long)(now_ms() - t0));
    CHECK(kiln_membership_connected(a.m));
    CHECK_EQ(ring_state(a.ring, "ingester.c"), KILN_RING_JOINING);
    client cl;
    CHECK(client_open(&cl));
    CHECK(key_exists(&cl, "ingester.ingester_c"));
    client_close(&cl);
}

TEST(state_changes_propagate)
{
    int64_t t0 = now_ms();
    kiln_membership_set_state(a.m, KILN_RING_ACTIVE);
    CHECK(WAIT_FOR(ring_state(b.ring, "ingester-a") == KILN_RING_ACTIVE &&
                   ring_state(c.ring, "ingester-a") == KILN_RING_ACTIVE));
    printf("  JOINING->ACTIVE seen by the others in %lld ms\n", (long long)(now_ms() - t0));
    CHECK_EQ(ring_state(a.ring, "ingester-a"), KILN_RING_ACTIVE);
}

TEST(watcher_is_prompt)
{
    CHECK(slow_start(&s1, "slow-1", 21));
    CHECK(slow_start(&s2, "slow-2", 22));
    CHECK(WAIT_FOR(ring_size(s1.ring) == 2 && ring_size(s2.ring) == 2));
    int64_t t0 = now_ms();
    kiln_membership_set_state(s1.m, KILN_RING_ACTIVE);
    CHECK(WAIT_FOR(ring_state(s2.ring, "slow-1") == KILN_RING_ACTIVE));
    /* Their clock stands still: no heartbeat carried it, the watcher did. */
    printf("  with 3 s heartbeats a state change took %lld ms\n", (long long)(now_ms() - t0));
}

TEST(distributors_share_the_rate)
{
    CHECK(node_start(&d1, "distributor", "dist-1", 11));
    CHECK(node_start(&d2, "distributor", "dist-2", 12));
    CHECK(WAIT_FOR(kiln_membership_count(a.m, "distributor") == 2 &&
                   kiln_membership_count(d1.m, "distributor") == 2));
    CHECK_EQ(kiln_membership_count(a.m, "ingester"), 3);
    CHECK_EQ(ring_size(d1.ring), 3); /* distributors see the ingester ring, not themselves */
    /* 1 MB/s over 2 distributors: after the 2 MB burst, a second refills 0.5 MB. */
    int64_t t = 1000000000000LL;
    CHECK_OK(kiln_overrides_take(d1.ov, "t", 2000000, t, NULL));
    CHECK_EQ(kiln_overrides_take(d1.ov, "t", 600000, t + 1000000000LL, NULL),
             KILN_RESOURCE_EXHAUSTED);
    CHECK_OK(kiln_overrides_take(d1.ov, "t", 450000, t + 1000000000LL, NULL));
    node_stop(&d2);
    CHECK(WAIT_FOR(kiln_membership_count(d1.m, "distributor") == 1));
}

TEST(overrides_reach_every_process)
{
    kiln_err err;
    CHECK_EQ(kiln_membership_publish_overrides(a.m, "overrides: [\n", &err), KILN_INVALID_ARGUMENT);
    const char *yaml = "overrides:\n  t1: {ingestion_rate_mb: 7}\n";
    int64_t t0 = now_ms();
    CHECK_OK(kiln_membership_publish_overrides(a.m, yaml, &err));
    CHECK(WAIT_FOR(kiln_overrides_get(b.ov, "t1")->ingestion_rate_mb == 7 &&
                   kiln_overrides_get(d1.ov, "t1")->ingestion_rate_mb == 7 &&
                   kiln_overrides_get(a.ov, "t1")->ingestion_rate_mb == 7));
    printf("  overrides applied everywhere in %lld ms\n", (long long)(now_ms() - t0));
    CHECK(kiln_overrides_get(b.ov, "t2")->ingestion_rate_mb == 1);
    /* A process that starts later gets the overrides in force. */
    node late;
    CHECK(node_start(&late, NULL, NULL, 0));
    CHECK(WAIT_FOR(kiln_overrides_get(late.ov, "t1")->ingestion_rate_mb == 7));
    node_stop(&late);
}

TEST(leaving_deletes_the_key)
{
    client cl;
    CHECK(client_open(&cl));
    int64_t t0 = now_ms();
    node_stop(&c);
    CHECK(!key_exists(&cl, "ingester.ingester_c"));
    /* The clock stands still, so no entry ages: the delete removed it. */
    CHECK(WAIT_FOR(all_rings(2)));
    printf("  a leaving member dropped from the rings in %lld ms\n", (long long)(now_ms() - t0));
    client_close(&cl);
}

TEST(silent_member_is_evicted)
{
    /* An entry that never heartbeats again, planted 1.5 s old: live for
     * another 0.5 s of the 2 s timeout, then evicted. */
    client cl;
    CHECK(client_open(&cl));
    char v[256];
    int64_t now = fast.clock.wall_ns(&fast) / 1000000;
    snprintf(v, sizeof(v),
             "{\"role\":\"ingester\",\"id\":\"ghost\",\"addr\":\"127.0.0.1:1\",\"http_addr\":\"\","
             "\"zone\":\"\",\"state\":\"ACTIVE\",\"heartbeat_ms\":%lld,\"tokens\":[7,8]}",
             (long long)(now - 1500));
    CHECK(kvStore_PutString(NULL, cl.kv, "ingester.ghost", v) == NATS_OK);
    CHECK(WAIT_FOR(ring_state(a.ring, "ghost") == KILN_RING_ACTIVE));
    CHECK(advance_fast(400000000LL, NULL)); /* 1.9 s old: still live */
    CHECK_EQ(ring_state(a.ring, "ghost"), KILN_RING_ACTIVE);
    CHECK(advance_fast(200000000LL, NULL)); /* 2.1 s old: evicted */
    CHECK(WAIT_FOR(ring_state(a.ring, "ghost") == -1 && ring_state(b.ring, "ghost") == -1));
    CHECK_EQ(ring_size(a.ring), 2);
    kvStore_Delete(cl.kv, "ingester.ghost");

    /* A key silent for ten timeouts (a process that crashed long ago) is
     * deleted from the bucket, without ever entering a ring. */
    now = fast.clock.wall_ns(&fast) / 1000000;
    snprintf(v, sizeof(v),
             "{\"role\":\"ingester\",\"id\":\"fossil\",\"addr\":\"127.0.0.1:1\",\"http_addr\":\"\","
             "\"zone\":\"\",\"state\":\"ACTIVE\",\"heartbeat_ms\":%lld,\"tokens\":[9]}",
             (long long)(now - 3600000));
    CHECK(kvStore_PutString(NULL, cl.kv, "ingester.fossil", v) == NATS_OK);
    CHECK(advance_fast(HB_NS, NULL)); /* the next heartbeat's look at the bucket */
    CHECK(WAIT_FOR(!key_exists(&cl, "ingester.fossil")));
    CHECK_EQ(ring_state(a.ring, "fossil"), -1);
    client_close(&cl);
}

static size_t min_ring;

static bool rings_back(void)
{
    size_t na = ring_size(a.ring), nb = ring_size(b.ring);
    min_ring = na < min_ring ? na : min_ring;
    min_ring = nb < min_ring ? nb : min_ring;
    return kiln_membership_connected(a.m) && kiln_membership_connected(b.m) &&
           kiln_membership_connected(d1.m) && na == 2 && nb == 2;
}

static bool rings_back3(void)
{
    size_t n[3] = {ring_size(a.ring), ring_size(b.ring), ring_size(c.ring)};
    for (int i = 0; i < 3; i++)
        min_ring = n[i] < min_ring ? n[i] : min_ring;
    return kiln_membership_connected(a.m) && kiln_membership_connected(c.m) && n[0] == 3 &&
           n[1] == 3 && n[2] == 3;
}

static void watch_rings_back(void)
{
    rings_back();
}

TEST(server_restart)
{
    kill_server();
    CHECK(WAIT_FOR(!kiln_membership_connected(a.m) && !kiln_membership_connected(b.m)));
    /* Longer than the timeout: every heartbeat in the bucket goes stale,
     * yet nobody is evicted while NATS is away. */
    kiln_manual_clock_advance(&fast, TIMEOUT_NS + 500000000LL);
    CHECK(all_rings(2));
    CHECK_EQ(kiln_membership_count(d1.m, "distributor"), 1);
    kiln_err err;
    CHECK_EQ(kiln_membership_publish_overrides(a.m, "overrides: {}\n", &err), KILN_UNAVAILABLE);

    int64_t t0 = now_ms();
    CHECK(start_server());
    min_ring = 2;
    CHECK(WAIT_FOR(rings_back()));
    printf("  reconnected and converged %lld ms after the restart\n", (long long)(now_ms() - t0));
    /* Through the grace period and past it the rings never shrank. */
    CHECK(advance_fast(TIMEOUT_NS + HB_NS, watch_rings_back));
    CHECK_EQ(min_ring, 2);
    /* The watchers came back too: past their replacement (a timeout after
     * the reconnection), a change arrives with no heartbeat to carry it. */
    CHECK(WAIT_FOR(kiln_membership_connected(s1.m) && kiln_membership_connected(s2.m)));
    kiln_manual_clock_advance(&slow, 4 * SLOW_HB_NS + SLOW_HB_NS);
    CHECK(WAIT_FOR(ring_size(s1.ring) == 2 && ring_size(s2.ring) == 2));
    t0 = now_ms();
    kiln_membership_set_state(s2.m, KILN_RING_ACTIVE);
    CHECK(WAIT_FOR(ring_state(s1.ring, "slow-2") == KILN_RING_ACTIVE));
    printf("  after the restart, with 3 s heartbeats a state change took %lld ms\n",
           (long long)(now_ms() - t0));
    node_stop(&s1);
    node_stop(&s2);
    /* And changes flow again. */
    kiln_membership_set_state(b.m, KILN_RING_LEAVING);
    CHECK(WAIT_FOR(ring_state(a.ring, "ingester-b") == KILN_RING_LEAVING));
    CHECK(node_start(&c, "ingester", "ingester.c", 3));
    CHECK(WAIT_FOR(all_rings(3)));
    /* The overrides survived in the server's store. */
    node late;
    CHECK(node_start(&late, NULL, NULL, 0));
    CHECK(WAIT_FOR(kiln_overrides_get(late.ov, "t1")->ingestion_rate_mb == 7));
    node_stop(&late);
}

static void watch_rings_back3(void)
{
    rings_back3();
}

/* A server that comes back without its store: the bucket is re-created,
 * everyone puts itself again, and nobody drops out meanwhile. */
TEST(server_restart_without_store)
{
    kill_server();
    CHECK(WAIT_FOR(!kiln_membership_connected(a.m)));
    char old_dir[sizeof(store_dir)];
    memcpy(old_dir, store_dir, sizeof(store_dir));
    nftw(old_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(mkdir(store_dir, 0700) == 0);
    int64_t t0 = now_ms();
    CHECK(start_server());
    min_ring = 3;
    CHECK(WAIT_FOR(rings_back3()));
    printf("  re-created bucket, converged %lld ms after the restart\n",
           (long long)(now_ms() - t0));
    CHECK(advance_fast(TIMEOUT_NS / 2, watch_rings_back3));
    CHECK_EQ(min_ring, 3);
    client cl;
    CHECK(client_open(&cl));
    CHECK(
        WAIT_FOR(key_exists(&cl, "ingester.ingester-a") && key_exists(&cl, "distributor.dist-1")));
    client_close(&cl);
    /* Past the grace period and the watcher replacement, changes still flow. */
    CHECK(advance_fast(TIMEOUT_NS, watch_rings_back3));
    CHECK_EQ(min_ring, 3);
    kiln_membership_set_state(c.m, KILN_RING_ACTIVE);
    CHECK(WAIT_FOR(ring_state(a.ring, "ingester.c") == KILN_RING_ACTIVE));
    CHECK(all_rings(3));
    CHECK_EQ(kiln_membership_count(a.m, "distributor"), 1);
    /* Revisions started again from 1 in the new bucket: new overrides still
     * apply (and those in force stayed meanwhile). */
    CHECK(kiln_overrides_get(b.ov, "t1")->ingestion_rate_mb == 7);
    CHECK_OK(
        kiln_membership_publish_overrides(a.m, "overrides:\n  t1: {ingestion_rate_mb: 9}\n", NULL));
    CHECK(WAIT_FOR(kiln_overrides_get(b.ov, "t1")->ingestion_rate_mb == 9 &&
                   kiln_overrides_get(c.ov, "t1")->ingestion_rate_mb == 9));
}

int main(void)
{
    if (!find_server()) {
        printf("SKIP: nats-server not installed\n");
        return 0;
    }
    if (mkdtemp(store_dir) == NULL)
        return 1;
    kiln_manual_clock_init(&fast, kiln_wall_ns());
    kiln_manual_clock_init(&slow, kiln_wall_ns());
    port = free_port();
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    /* The outages below are expected: quiet unless KILN_TEST_LOG=1. */
    kiln_log_min = getenv("KILN_TEST_LOG") != NULL ? KILN_LOG_LEVEL_DEBUG : KILN_LOG_LEVEL_ERROR;
    RUN(starts_before_the_server_and_converges);
    RUN(state_changes_propagate);
    RUN(watcher_is_prompt);
    RUN(distributors_share_the_rate);
    RUN(overrides_reach_every_process);
    RUN(leaving_deletes_the_key);
    RUN(silent_member_is_evicted);
    RUN(server_restart);
    RUN(server_restart_without_store);
    node_stop(&a);
    node_stop(&b);
    if (c.m != NULL)
        node_stop(&c);
    node_stop(&d1);
    kill_server();
    nftw(store_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nats_CloseAndWait(2000);
    return check_done();
}
