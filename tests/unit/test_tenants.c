/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: walking a read's tenant list "a|b|c" (tenants.h). */
#include <string.h>

#include "check.h"
#include "tenants.h"

TEST(walks_each_id)
{
    const char *list = "a|bb|c.c";
    char id[KILN_TENANT_MAX + 1];
    const char *want[] = {"a", "bb", "c.c"};
    size_t n = 0;
    for (const char *p = list; kiln_tenants_next(&p, id); n++) {
        CHECK(n < 3);
        if (n < 3)
            CHECK_STR(id, want[n]);
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(kiln_tenants_count(list), 3);
    CHECK_EQ(kiln_tenants_count("anonymous"), 1);
}

TEST(empty_and_edges)
{
    char id[KILN_TENANT_MAX + 1] = "untouched";
    const char *p = "";
    CHECK(!kiln_tenants_next(&p, id));
    CHECK_STR(id, "untouched");
    CHECK_EQ(kiln_tenants_count(""), 0);
    CHECK_EQ(kiln_tenants_count("a|"), 1);
    char long_id[400];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    p = long_id;
    CHECK(kiln_tenants_next(&p, id));
    CHECK_EQ(strlen(id), KILN_TENANT_MAX); /* cut, never overflowing */
}

int main(void)
{
    RUN(walks_each_id);
    RUN(empty_and_edges);
    return check_done();
}
