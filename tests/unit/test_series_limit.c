/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: max_global_series_per_tenant on the ingester. A push that
 * would take a tenant past its limit is refused whole, with
 * failed_precondition naming the limit, and leaves nothing behind (not even
 * in the WAL); series already held keep taking pushes; a series counts once
 * however many parts carry it; series stop counting when their flushed head
 * is dropped; the per-tenant override wins; /metrics shows the figures. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "db_fixture.h"
#include "ingester.h"
#include "overrides.h"
#include "profiles.h"
#include "ring.h"
#include "tmpdir.h"

#define T0 1700000000000000000LL

static char dir[64];
static kiln_pprof_t prof; /* cpu.pb.gz: two sample types, so two series per label set */

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    (void)p;
    (*(size_t *)ctx)++;
}

static size_t profiles_of(kiln_ingester_t *ing, const char *tenant)
{
    size_t n = 0;
    check_db_profiles(kiln_ingester_db(ing), tenant, on_profile, &n);
    return n;
}

static kiln_overrides_t *limits_with(size_t global)
{
    kiln_limits d = {0};
    d.max_global_series = global;
    kiln_overrides_t *o = kiln_overrides_create(&d);
    const char *yaml = "overrides:\n  free:\n    max_global_series_per_tenant: 0\n"
                       "  small:\n    max_global_series_per_tenant: 2\n";
    kiln_err err;
    CHECK_OK(kiln_overrides_load_text(o, yaml, strlen(yaml), &err));
    return o;
}

static kiln_objstore_t *store; /* of the ingester open */

static kiln_ingester_t *open_ingester(const kiln_overrides_t *o)
{
    store = check_store_open(dir);
    kiln_ingester_config c = {.storage_path = dir,
                              .store = store,
                              .wal_segment_bytes = 1u << 20,
                              .flush_check_ns = 3600000000000LL,
                              .limits = o};
    kiln_ingester_t *ing = NULL;
    kiln_err err;
    CHECK_OK(kiln_ingester_create(&c, &ing, &err));
    return ing;
}

static void close_ingester(kiln_ingester_t *ing)
{
    kiln_ingester_destroy(ing);
    kiln_objstore_close(store);
    store = NULL;
}

/* Pushes one profile per service name in svcs (one push); returns the status. */
static kiln_status push(kiln_ingester_t *ing, const char *tenant, const char *const *svcs, size_t n,
                        int64_t t, kiln_err *err)
{
    kiln_label_t l[8][2];
    kiln_head_part parts[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        l[i][0] = (kiln_label_t){"__name__", "process_cpu"};
        l[i][1] = (kiln_label_t){"service_name", svcs[i]};
        parts[i] = (kiln_head_part){l[i], 2, &prof, 0};
    }
    prof.time_nanos = t;
    err->code = KILN_OK;
    err->msg[0] = '\0';
    return kiln_db_append(kiln_ingester_db(ing), tenant, parts, n, err);
}

TEST(refuses_new_series_past_the_limit)
{
    kiln_overrides_t *o = limits_with(5);
    kiln_ingester_t *ing = open_ingester(o);
    if (ing == NULL)
        return;
    kiln_err err;
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"};
    CHECK_OK(push(ing, "t1", a, 1, T0, &err));                           /* 2 series */
    CHECK_OK(push(ing, "t1", b, 1, T0, &err));                           /* 4 */
    CHECK_EQ(push(ing, "t1", c, 1, T0, &err), KILN_FAILED_PRECONDITION); /* 6 > 5 */
    CHECK(strstr(err.msg, "max_global_series_per_tenant") != NULL);
    CHECK(strstr(err.msg, "=5 (5 on this ingester)") != NULL);
    CHECK(kiln_ingester_is_series_limit(&err));
    printf("  refusal: %s\n", err.msg);
    size_t before = profiles_of(ing, "t1");
    CHECK_EQ(before, 4);
    /* Series held keep taking pushes, alone or together. */
    const char *ab[] = {"a", "b"};
    CHECK_OK(push(ing, "t1", a, 1, T0 + 1000000000, &err));
    CHECK_OK(push(ing, "t1", ab, 2, T0 + 2000000000, &err));
    CHECK_EQ(profiles_of(ing, "t1"), before + 6);
    /* A push mixing held and new series is refused whole. */
    const char *ac[] = {"a", "c"};
    CHECK_EQ(push(ing, "t1", ac, 2, T0 + 3000000000, &err), KILN_FAILED_PRECONDITION);
    CHECK_EQ(profiles_of(ing, "t1"), before + 6);
    /* Other tenants have their own count; an override of 0 turns it off. */
    const char *many[] = {"1", "2", "3", "4", "5", "6", "7", "8"};
    CHECK_OK(push(ing, "free", many, 8, T0, &err));        /* 16 series */
    CHECK_EQ(push(ing, "small", a, 1, T0, &err), KILN_OK); /* 2 of 2 */
    CHECK_EQ(push(ing, "small", b, 1, T0, &err), KILN_FAILED_PRECONDITION);
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_ingester_metrics(ing, &m);
    kiln_buf_putc(&m, '\0');
    CHECK(strstr((char *)m.ptr, "kiln_ingester_memory_series{tenant=\"t1\"} 4\n") != NULL);
    CHECK(strstr((char *)m.ptr, "kiln_ingester_memory_series{tenant=\"free\"} 16\n") != NULL);
    CHECK(strstr((char *)m.ptr, "kiln_ingester_series_limit{tenant=\"t1\"} 5\n") != NULL);
    CHECK(strstr((char *)m.ptr, "kiln_ingester_series_limit{tenant=\"free\"} 0\n") != NULL);
    CHECK(strstr((char *)m.ptr, "kiln_ingester_series_limit_refused_total{tenant=\"t1\"} 2\n") !=
          NULL);
    kiln_buf_free(&m);
    /* Refused pushes never reached the WAL: a restart replays the rest. */
    close_ingester(ing);
    ing = open_ingester(o);
    if (ing != NULL)
        CHECK_EQ(profiles_of(ing, "t1"), before + 6);
    close_ingester(ing);
    kiln_overrides_destroy(o);
}

TEST(a_series_counts_once_per_push)
{
    kiln_overrides_t *o = limits_with(4);
    kiln_ingester_t *ing = open_ingester(o);
    if (ing == NULL)
        return;
    kiln_err err;
    /* Four parts, two series names: 4 stored series, within the limit. */
    const char *twice[] = {"a", "b", "a", "b"};
    CHECK_OK(push(ing, "t1", twice, 4, T0, &err));
    CHECK_EQ(profiles_of(ing, "t1"), 8);
    close_ingester(ing);
    kiln_overrides_destroy(o);
}

TEST(flushed_series_stop_counting)
{
    kiln_overrides_t *o = limits_with(4);
    kiln_ingester_t *ing = open_ingester(o);
    if (ing == NULL)
        return;
    kiln_err err;
    const char *ab[] = {"a", "b"}, *cd[] = {"c", "d"};
    CHECK_OK(push(ing, "t1", ab, 2, T0, &err));
    CHECK_EQ(push(ing, "t1", cd, 2, T0, &err), KILN_FAILED_PRECONDITION);
    CHECK_OK(kiln_ingester_flush(ing, &err)); /* a and b are in a block now */
    CHECK_OK(push(ing, "t1", cd, 2, T0 + 1000000000, &err));
    CHECK_EQ(push(ing, "t1", ab, 2, T0 + 2000000000, &err), KILN_FAILED_PRECONDITION);
    CHECK_EQ(profiles_of(ing, "t1"), 8); /* 4 in the block, 4 in the head */
    close_ingester(ing);
    kiln_overrides_destroy(o);
}

/* The limit kiln_ingester_metrics reports for tenant t1. */
static long metric_limit(kiln_ingester_t *ing)
{
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_ingester_metrics(ing, &m);
    kiln_buf_putc(&m, '\0');
    const char *key = "kiln_ingester_series_limit{tenant=\"t1\"} ";
    const char *p = strstr((char *)m.ptr, key);
    long v = p != NULL ? strtol(p + strlen(key), NULL, 10) : -1;
    kiln_buf_free(&m);
    return v;
}

/* In a ring, each ingester applies global / active ingesters * RF (RF
 * capped at the ingesters), as Pyroscope; a ring showing no active
 * ingester applies none. */
TEST(global_limit_split_over_the_ring)
{
    kiln_overrides_t *o = limits_with(6000);
    kiln_ingester_t *ing = open_ingester(o);
    kiln_ring_t *ring = kiln_ring_create();
    if (ing == NULL)
        return;
    kiln_err err;
    const char *a[] = {"a"};
    CHECK_OK(push(ing, "t1", a, 1, T0, &err)); /* the tenant exists */
    kiln_ingester_set_ring(ing, ring, 3, 0);
    kiln_ring_member m[6];
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < 6; i++) {
        snprintf(m[i].id, sizeof(m[i].id), "ingester-%zu", i);
        m[i].state = KILN_RING_ACTIVE;
    }
    CHECK_EQ(metric_limit(ing), 0); /* an empty ring: not applied */
    kiln_ring_set(ring, m, 3);
    CHECK_EQ(metric_limit(ing), 6000);
    kiln_ring_set(ring, m, 6);
    CHECK_EQ(metric_limit(ing), 3000);
    m[5].state = KILN_RING_LEAVING; /* 5 take writes */
    kiln_ring_set(ring, m, 6);
    CHECK_EQ(metric_limit(ing), 3600);
    kiln_ring_set(ring, m, 1); /* one ingester holds every series */
    CHECK_EQ(metric_limit(ing), 6000);
    close_ingester(ing);
    kiln_ring_destroy(ring);
    kiln_overrides_destroy(o);
}

int main(void)
{
    kiln_arena_t *a = kiln_arena_create(0);
    snprintf(dir, sizeof(dir), "/tmp/kiln-series-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    if (!check_load_profile(a, "grafana-pyroscope/cpu.pb.gz", &prof) || prof.n_sample_types != 2) {
        printf("cpu.pb.gz missing or not two sample types\n");
        return 1;
    }
    RUN(refuses_new_series_past_the_limit);
    tmpdir_remove(dir);
    CHECK(mkdir(dir, 0700) == 0);
    RUN(a_series_counts_once_per_push);
    tmpdir_remove(dir);
    CHECK(mkdir(dir, 0700) == 0);
    RUN(flushed_series_stop_counting);
    tmpdir_remove(dir);
    CHECK(mkdir(dir, 0700) == 0);
    RUN(global_limit_split_over_the_ring);
    tmpdir_remove(dir);
    kiln_arena_destroy(a);
    return check_done();
}
