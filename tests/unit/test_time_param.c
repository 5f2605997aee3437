/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/format/time_param (the from/until parameters of /ingest):
 * every digit form, the now-offset forms, and the upstream quirks kept. */
#include <string.h>

#include "time_param.h"
#include "check.h"

#define NOW 1764000000123456789LL /* 2025-11-24T16:00:00.123456789Z */
#define S 1000000000LL

static int64_t at(const char *s)
{
    return kiln_time_param_parse(s, strlen(s), NOW);
}

TEST(digit_forms)
{
    CHECK_EQ(at("1764000000"), 1764000000 * S);                 /* seconds */
    CHECK_EQ(at("1764000000123"), 1764000000123000000LL);       /* 13: ms */
    CHECK_EQ(at("1764000000123456"), 1764000000123456000LL);    /* 16: us */
    CHECK_EQ(at("1764000000123456789"), 1764000000123456789LL); /* 19: ns */
    CHECK_EQ(at("123456789"), 123456789 * S);                   /* 9 digits: seconds */
    CHECK_EQ(at("17640000001"), INT64_MAX);                     /* 11 digits: seconds, saturated */
    CHECK_EQ(at("0"), 0);
    CHECK_EQ(at("20251124"), 1763942400 * S); /* YYYYMMDD, UTC midnight */
    CHECK_EQ(at("20240229"), 1709164800 * S); /* a leap day */
    CHECK_EQ(at("20230229"), 20230229 * S);   /* not a date: seconds */
    CHECK_EQ(at("19000101"), 19000101 * S);   /* not after 1900: seconds */
    CHECK_EQ(at("19700101"), 0);
    CHECK_EQ(at("25021124"), INT64_MAX); /* past 2262: saturates */
    CHECK_EQ(at("20251301"), 20251301 * S);
    CHECK_EQ(at(" 1_764_000_000 "), 1764000000 * S); /* '_', ',' and spaces go */
    CHECK_EQ(at("1,764,000,000"), 1764000000 * S);
    CHECK_EQ(at("99999999999999999999999"), INT64_MAX); /* saturates */
}

TEST(relative_forms)
{
    CHECK_EQ(at("now"), NOW);
    CHECK_EQ(at("now-1h"), NOW - 3600 * S);
    CHECK_EQ(at("now-30s"), NOW - 30 * S);
    CHECK_EQ(at("now-5m"), NOW - 300 * S);
    CHECK_EQ(at("now-5min"), NOW - 300 * S);
    CHECK_EQ(at("now-2d"), NOW - 2 * 86400 * S);
    CHECK_EQ(at("now-1w"), NOW - 7 * 86400 * S);
    CHECK_EQ(at("now-1M"), NOW - 30 * 86400 * S);
    CHECK_EQ(at("now-1mon"), NOW - 30 * 86400 * S);
    CHECK_EQ(at("now-1y"), NOW - 365 * 86400 * S);
    CHECK_EQ(at("now+10s"), NOW + 10 * S);
    CHECK_EQ(at("-1h"), NOW - 3600 * S);
    CHECK_EQ(at("now-1h30m"), NOW - 3600 * S); /* one component, as upstream */
    CHECK_EQ(at("now-3x"), NOW);               /* unknown unit counts 0 */
    CHECK_EQ(at("garbage"), NOW);
    CHECK_EQ(at(""), NOW);
    CHECK(at("now-99999999999999999999y") < 0); /* saturates, no wrap */
    CHECK_EQ(kiln_time_param_parse("20251124junk", 8, NOW), 1763942400 * S); /* len bounds it */
}

int main(void)
{
    RUN(digit_forms);
    RUN(relative_forms);
    return check_done();
}
