/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: durations, per-tenant overrides, the ingestion rate limiter. */
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
    CHECK_EQ(kiln_overrides_take(o, "a", 3000000, t + 100000000000LL, NULL), KILN_RESOURCE_EXHAUSTED);
    kiln_overrides_destroy(o);
}

int main(void)
{
    RUN(durations);
    RUN(overrides_file);
    RUN(rate_limiter);
    return check_done();
}
