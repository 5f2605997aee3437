/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: durations, per-tenant overrides and their reloads, the
 * ingestion rate limiter and its share per distributor. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "overrides.h"

static kiln_limits defaults(void)
{
    kiln_limits l;
    memset(&l, 0, sizeof(l));
    l.ingestion_rate_mb = 1;
    l.ingestion_burst_mb = 2;
    l.max_samples = 16000;
    return l;
}

TEST(durations)
{
    int64_t ns;
    CHECK(kiln_parse_duration("0", &ns) && ns == 0);
    CHECK(kiln_parse_duration("90s", &ns) && ns == 90000000000LL);
    CHECK(kiln_parse_duration("1h30m", &ns) && ns == 5400000000000LL);
    CHECK(kiln_parse_duration("7d", &ns) && ns == 7 * 86400000000000LL);
    CHECK(!kiln_parse_duration("1x", &ns));
    CHECK(!kiln_parse_duration("h", &ns));
    CHECK(!kiln_parse_duration("-1h", &ns));
    CHECK(kiln_parse_duration("500ms", &ns) && ns == 500000000LL);
    CHECK(kiln_parse_duration("1.5s", &ns) && ns == 1500000000LL);
    CHECK(kiln_parse_duration("1m30s", &ns) && ns == 90000000000LL);
    CHECK(kiln_parse_duration("2w", &ns) && ns == 14 * 86400000000000LL);
}

TEST(overrides_file)
{
    char path[] = "/tmp/kiln-overrides-XXXXXX";
    int fd = mkstemp(path);
    const char *yaml = "overrides:\n  big:\n    ingestion_rate_mb: 8\n"
                       "    max_profile_stacktrace_samples: 100\n    reject_older_than: 2h\n";
    CHECK(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
    kiln_limits d = defaults();
    kiln_overrides_t *o = kiln_overrides_create(&d);
    CHECK_OK(kiln_overrides_load(o, path, NULL));
    const kiln_limits *big = kiln_overrides_get(o, "big");
    CHECK(big->ingestion_rate_mb == 8);
    CHECK_EQ(big->max_samples, 100);
    CHECK_EQ(big->reject_older_than_ns, 7200000000000LL);
    CHECK(big->ingestion_burst_mb == 2); /* not overridden: the default */
    CHECK_EQ(kiln_overrides_get(o, "other")->max_samples, 16000);
    kiln_overrides_destroy(o);

    FILE *f = fopen(path, "w");
    fputs("overrides:\n  t:\n    no_such_limit: 1\n", f);
    fclose(f);
    o = kiln_overrides_create(&d);
    kiln_err err;
    CHECK_EQ(kiln_overrides_load(o, path, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "no_such_limit") != NULL);
    kiln_overrides_destroy(o);
    unlink(path);
}

TEST(rate_limiter)
{
    kiln_limits d = defaults(); /* 1 MB/s, burst 2 MB */
    kiln_overrides_t *o = kiln_overrides_create(&d);
    int64_t t = 1000000000000LL;
    CHECK_OK(kiln_overrides_take(o, "a", 1500000, t, NULL));
    kiln_err err;
    CHECK_EQ(kiln_overrides_take(o, "a", 1000000, t, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK(strstr(err.msg, "rate limit") != NULL);
    CHECK_OK(kiln_overrides_take(o, "b", 1000000, t, NULL)); /* tenants are separate */
    CHECK_OK(kiln_overrides_take(o, "a", 1000000, t + 1000000000LL, NULL)); /* refilled 1 MB */
    /* Larger than the burst: no wait can gather it, so it is "too large"
     * (OUT_OF_RANGE, answered 413 / invalid_argument), never the retryable
     * RESOURCE_EXHAUSTED (issue #10, item 6). */
    CHECK_EQ(kiln_overrides_take(o, "a", 3000000, t + 100000000000LL, &err), KILN_OUT_OF_RANGE);
    CHECK(strstr(err.msg, "burst") != NULL);
    kiln_overrides_destroy(o);
}

TEST(load_text_replaces_table)
{
    kiln_limits d = defaults();
    kiln_overrides_t *o = kiln_overrides_create(&d);
    const char *v1 =
        "overrides:\n  a: {ingestion_rate_mb: 4}\n  b: {max_profile_stacktrace_samples: 7}\n";
    CHECK_OK(kiln_overrides_load_text(o, v1, strlen(v1), NULL));
    const kiln_limits *a1 = kiln_overrides_get(o, "a");
    CHECK(a1->ingestion_rate_mb == 4);
    CHECK_EQ(kiln_overrides_get(o, "b")->max_samples, 7);

    /* The new text replaces the table: b falls back to the defaults. */
    const char *v2 = "overrides:\n  a: {ingestion_rate_mb: 16}\n";
    CHECK_OK(kiln_overrides_load_text(o, v2, strlen(v2), NULL));
    CHECK(kiln_overrides_get(o, "a")->ingestion_rate_mb == 16);
    CHECK_EQ(kiln_overrides_get(o, "b")->max_samples, 16000);
    CHECK(a1->ingestion_rate_mb == 4); /* a pointer from before the reload stays valid */

    /* A bad text is refused and the table in force is kept. */
    kiln_err err;
    const char *bad = "overrides:\n  a: {ingestion_rate_mb: 1, nope: 2}\n";
    CHECK_EQ(kiln_overrides_load_text(o, bad, strlen(bad), &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "nope") != NULL);
    const char *broken = "overrides: [\n";
    CHECK_EQ(kiln_overrides_load_text(o, broken, strlen(broken), &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "parse error") != NULL);
    CHECK(kiln_overrides_get(o, "a")->ingestion_rate_mb == 16);

    /* An empty text clears every override. */
    CHECK_OK(kiln_overrides_load_text(o, "", 0, NULL));
    CHECK(kiln_overrides_get(o, "a")->ingestion_rate_mb == 1);
    kiln_overrides_destroy(o);
}

typedef struct reload_arg {
    kiln_overrides_t *o;
    atomic_int stop;
    atomic_int loads;
} reload_arg;

static void *reload_loop(void *p)
{
    reload_arg *r = p;
    const char *texts[2] = {"overrides:\n  t: {ingestion_rate_mb: 3}\n",
                            "overrides:\n  t: {ingestion_rate_mb: 5}\n"};
    while (!atomic_load(&r->stop) && r->loads < 2000) {
        const char *y = texts[r->loads % 2];
        if (kiln_overrides_load_text(r->o, y, strlen(y), NULL) == KILN_OK)
            r->loads++;
    }
    return NULL;
}

/* Readers racing a reloader see one whole table or the other (run it under
 * ASan/TSan to catch use-after-free of a retired table). */
TEST(reload_while_reading)
{
    kiln_limits d = defaults();
    kiln_overrides_t *o = kiln_overrides_create(&d);
    reload_arg r = {.o = o};
    pthread_t th;
    pthread_create(&th, NULL, reload_loop, &r);
    int bad = 0;
    /* Read until the reloader has swapped tables a while (bounded both ways). */
    for (int i = 0; i < 20000000 && (i < 200000 || atomic_load(&r.loads) < 200); i++) {
        double v = kiln_overrides_get(o, "t")->ingestion_rate_mb;
        bad += v != 1 && v != 3 && v != 5;
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    CHECK_EQ(bad, 0);
    CHECK(r.loads > 0);
    kiln_overrides_destroy(o);
}

TEST(rate_shared_by_distributors)
{
    kiln_limits d = defaults(); /* 1 MB/s, burst 2 MB */
    kiln_overrides_t *o = kiln_overrides_create(&d);
    kiln_overrides_set_shards(o, 4); /* 250 KB/s each */
    int64_t t = 1000000000000LL;
    CHECK_OK(kiln_overrides_take(o, "a", 2000000, t, NULL)); /* the burst is not divided */
    CHECK_EQ(kiln_overrides_take(o, "a", 300000, t + 1000000000LL, NULL), KILN_RESOURCE_EXHAUSTED);
    CHECK_OK(kiln_overrides_take(o, "a", 240000, t + 1000000000LL, NULL));
    kiln_overrides_set_shards(o, 0); /* counts as 1: 1 MB/s again */
    CHECK_OK(kiln_overrides_take(o, "a", 900000, t + 2000000000LL, NULL));
    kiln_overrides_destroy(o);
}

int main(void)
{
    RUN(durations);
    RUN(overrides_file);
    RUN(rate_limiter);
    RUN(load_text_replaces_table);
    RUN(reload_while_reading);
    RUN(rate_shared_by_distributors);
    return check_done();
}
