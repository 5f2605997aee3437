/* SPDX-License-Identifier: Apache-2.0
 * bench_ring: how evenly the ring spreads real-looking series, and what a
 * lookup costs. 10,000 series (50 services x 4 profile types x 50 pods,
 * labelled as Grafana Alloy's Kubernetes discovery labels them) of tenant
 * "anonymous" are hashed onto 3 and 30 ingesters (and 30 in 3 zones); for
 * each it prints max/mean and min/mean series per ingester as primary and
 * with RF=3 (replicas held), the token ownership spread, and
 * kiln_ring_key and kiln_ring_replicas calls per second. Prints figures
 * only; nothing here fails on a figure.
 *
 * Usage: bench_ring [-r rounds] (lookup rounds over the 10,000 keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "labels.h"
#include "ring.h"
#include "xmalloc.h"

#define SERVICES 50
#define TYPES 4
#define PODS 50
#define SERIES (SERVICES * TYPES * PODS)
#define LABELS 13
#define RF 3
#define TENANT "anonymous"

typedef struct profile_type {
    const char *name, *type, *unit, *period_type, *period_unit, *id;
} profile_type;

static const profile_type types[TYPES] = {
    {"process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds",
     "process_cpu:cpu:nanoseconds:cpu:nanoseconds"},
    {"memory", "alloc_space", "bytes", "space", "bytes", "memory:alloc_space:bytes:space:bytes"},
    {"memory", "inuse_space", "bytes", "space", "bytes", "memory:inuse_space:bytes:space:bytes"},
    {"goroutine", "goroutine", "count", "goroutine", "count",
     "goroutine:goroutine:count:goroutine:count"},
};

static const char *const apps[10] = {"checkout", "cart",          "payment",  "catalog",
                                     "search",   "auth",          "shipping", "email",
                                     "ad",       "recommendation"};
static const char *const roles[5] = {"api", "worker", "gateway", "db-proxy", "cache"};
static const char *const namespaces[4] = {"shop", "platform", "payments", "search"};

/* One series: its label strings (owned) and its sorted labels. */
typedef struct series {
    char service[64], app[48], ns[16], pod[80], container[48], instance[32], node[24];
    kiln_label_t l[LABELS];
} series;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

/* Kubernetes-style random suffix characters (no vowels, as the API server uses). */
static void k8s_suffix(char *out, size_t n)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    for (size_t i = 0; i < n; i++)
        out[i] = alnum[next_rand() % (sizeof(alnum) - 1)];
    out[n] = '\0';
}

static void make_series(series *s, int svc, int type, const char *rs_hash, int pod, int pod_seed)
{
    const profile_type *t = &types[type];
    const char *ns = namespaces[svc % 4];
    snprintf(s->app, sizeof(s->app), "%s-%s", apps[svc % 10], roles[svc / 10]);
    snprintf(s->ns, sizeof(s->ns), "%s", ns);
    snprintf(s->service, sizeof(s->service), "%s/%s", ns, s->app);
    snprintf(s->container, sizeof(s->container), "%s", s->app);
    char suffix[8];
    rng = (uint64_t)pod_seed * 0x2545f4914f6cdd1dull + 1;
    k8s_suffix(suffix, 5);
    snprintf(s->pod, sizeof(s->pod), "%s-%s-%s", s->app, rs_hash, suffix);
    snprintf(s->instance, sizeof(s->instance), "10.%d.%d.%d:6060", svc % 4, pod, svc + 10);
    snprintf(s->node, sizeof(s->node), "node-pool-a-%02d", (svc * 7 + pod) % 40);
    kiln_label_t l[LABELS] = {
        {"__name__", t->name},
        {"__period_type__", t->period_type},
        {"__period_unit__", t->period_unit},
        {"__profile_type__", t->id},
        {"__type__", t->type},
        {"__unit__", t->unit},
        {"container", s->container},
        {"instance", s->instance},
        {"job", "pyroscope.scrape"},
        {"namespace", s->ns},
        {"node", s->node},
        {"pod", s->pod},
        {"service_name", s->service},
    };
    memcpy(s->l, l, sizeof(l));
    kiln_labels_sort(s->l, LABELS);
}

static series *make_all(void)
{
    series *all = kiln_xcalloc(SERIES, sizeof(*all));
    size_t k = 0;
    for (int svc = 0; svc < SERVICES; svc++) {
        char rs_hash[16];
        rng = (uint64_t)svc * 0x9e3779b97f4a7c15ull + 7;
        k8s_suffix(rs_hash, 10);
        for (int pod = 0; pod < PODS; pod++)
            for (int type = 0; type < TYPES; type++)
                make_series(&all[k++], svc, type, rs_hash, pod, svc * PODS + pod + 1);
    }
    return all;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spread(const size_t *count, size_t n, double total, double *max, double *min)
{
    double mean = total / (double)n;
    size_t hi = count[0], lo = count[0];
    for (size_t i = 1; i < n; i++) {
        hi = count[i] > hi ? count[i] : hi;
        lo = count[i] < lo ? count[i] : lo;
    }
    *max = (double)hi / mean;
    *min = (double)lo / mean;
}

static kiln_ring_t *make_ring(size_t n, size_t zones)
{
    kiln_ring_member *m = kiln_xcalloc(n, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        snprintf(m[i].id, sizeof(m[i].id), "ingester-%zu", i);
        snprintf(m[i].addr, sizeof(m[i].addr), "ingester-%zu.ingester:9095", i);
        if (zones > 0)
            snprintf(m[i].zone, sizeof(m[i].zone), "zone-%c", (char)('a' + i % zones));
        m[i].state = KILN_RING_ACTIVE;
    }
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_set(r, m, n);
    free(m);
    return r;
}

static void balance(size_t n, size_t zones, const uint32_t *keys, int rounds)
{
    kiln_ring_t *r = make_ring(n, zones);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    size_t *primary = kiln_xcalloc(n, sizeof(size_t)), *replicas = kiln_xcalloc(n, sizeof(size_t));
    for (size_t k = 0; k < SERIES; k++) {
        size_t idx[RF];
        size_t got = kiln_ring_replicas(s, keys[k], RF, idx);
        primary[idx[0]]++;
        for (size_t j = 0; j < got; j++)
            replicas[idx[j]]++;
    }
    double own[64], omax = 0, omin = 1, pmax, pmin, rmax, rmin;
    kiln_ring_ownership(s, own);
    for (size_t i = 0; i < n; i++) {
        omax = own[i] > omax ? own[i] : omax;
        omin = own[i] < omin ? own[i] : omin;
    }
    spread(primary, n, SERIES, &pmax, &pmin);
    spread(replicas, n, (double)SERIES * (double)(n < RF ? n : RF), &rmax, &rmin);

    size_t sink = 0, calls = (size_t)rounds * SERIES;
    double t0 = now_s();
    for (int round = 0; round < rounds; round++) {
        for (size_t k = 0; k < SERIES; k++) {
            size_t idx[RF];
            sink += kiln_ring_replicas(s, keys[k] + (uint32_t)round, RF, idx);
        }
    }
    double dt = now_s() - t0;
    printf(
        "%2zu ingesters%-9s primary max/mean %.3f min/mean %.3f | RF=3 max/mean %.3f "
        "min/mean %.3f | ownership x%zu max %.3f min %.3f | replicas(rf=3) %.2f M/s (%.0f ns)%s\n",
        n, zones ? ", 3 zones" : "", pmax, pmin, rmax, rmin, n, omax * (double)n, omin * (double)n,
        (double)calls / dt / 1e6, dt / (double)calls * 1e9, sink == calls * RF ? "" : " (short)");
    free(primary);
    free(replicas);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

int main(int argc, char **argv)
{
    int rounds = 100, opt;
    while ((opt = getopt(argc, argv, "r:")) != -1) {
        if (opt == 'r')
            rounds = (int)strtol(optarg, NULL, 10);
    }
    rounds = rounds > 0 ? rounds : 1;
    series *all = make_all();
    uint32_t *keys = kiln_xmalloc(SERIES * sizeof(uint32_t));
    double t0 = now_s();
    int key_rounds = 20;
    for (int round = 0; round < key_rounds; round++) {
        for (size_t k = 0; k < SERIES; k++)
            keys[k] = kiln_ring_key(TENANT, all[k].l, LABELS);
    }
    double dt = now_s() - t0;
    printf("%d series (%d services x %d types x %d pods, %d labels each), tenant %s; "
           "kiln_ring_key %.2f M/s (%.0f ns)\n",
           SERIES, SERVICES, TYPES, PODS, LABELS, TENANT, (double)key_rounds * SERIES / dt / 1e6,
           dt / key_rounds / SERIES * 1e9);
    balance(3, 0, keys, rounds);
    balance(30, 0, keys, rounds);
    balance(30, 3, keys, rounds);
    free(keys);
    free(all);
    return 0;
}
