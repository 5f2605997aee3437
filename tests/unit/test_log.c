/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: log sampling of repeated rejections (issue #10, item 9). */
#include <string.h>

#include "check.h"
#include "log.h"

#define SEC 1000000000LL

TEST(first_n_per_key_per_interval)
{
    kiln_log_sampler_t *s = kiln_log_sampler_create(3, 10 * SEC);
    int64_t t = 100 * SEC;
    size_t logged = 0;
    for (int i = 0; i < 1000; i++)
        logged += kiln_log_sampler_allow(s, "tenant-a", "rate_limited", t + i * 1000);
    CHECK_EQ(logged, 3);
    CHECK_EQ(kiln_log_sampler_suppressed(s), 997);
    /* Another reason, another tenant: their own budgets. */
    CHECK(kiln_log_sampler_allow(s, "tenant-a", "too_large", t));
    CHECK(kiln_log_sampler_allow(s, "tenant-b", "rate_limited", t));
    /* The next interval logs again. */
    CHECK(kiln_log_sampler_allow(s, "tenant-a", "rate_limited", t + 10 * SEC));
    kiln_log_sampler_destroy(s);
}

TEST(many_keys_stay_bounded)
{
    /* Whatever the number of keys, no more than burst x slots lines pass
     * per interval (slots are shared, never reset by another key). */
    kiln_log_sampler_t *s = kiln_log_sampler_create(2, 10 * SEC);
    char tenant[32];
    size_t logged = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(tenant, sizeof(tenant), "t%d", i);
            logged += kiln_log_sampler_allow(s, tenant, "invalid", SEC + round);
        }
    }
    printf("  20000 events over 5000 keys: %zu logged\n", logged);
    CHECK(logged <= 2 * 1024);
    CHECK_EQ(kiln_log_sampler_suppressed(s), 20000 - logged);
    kiln_log_sampler_destroy(s);
}

TEST(process_sampler)
{
    uint64_t before = kiln_log_suppressed_total();
    for (int i = 0; i < KILN_LOG_SAMPLE_BURST + 7; i++)
        (void)kiln_log_sample("proc", "x");
    CHECK_EQ(kiln_log_suppressed_total() - before, 7);
}

int main(void)
{
    RUN(first_n_per_key_per_interval);
    RUN(many_keys_stay_bounded);
    RUN(process_sampler);
    return check_done();
}
