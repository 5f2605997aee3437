/* SPDX-License-Identifier: Apache-2.0
 * tenants: walking a "a|b|c" tenant list (tenants.h). */
#include "tenants.h"

#include <string.h>

bool kiln_tenants_next(const char **list, char out[KILN_TENANT_MAX + 1])
{
    const char *p = *list;
    if (p == NULL || *p == '\0')
        return false;
    size_t len = strcspn(p, "|");
    size_t n = len < KILN_TENANT_MAX ? len : KILN_TENANT_MAX;
    memcpy(out, p, n);
    out[n] = '\0';
    *list = p[len] == '|' ? p + len + 1 : p + len;
    return true;
}

size_t kiln_tenants_count(const char *list)
{
    char id[KILN_TENANT_MAX + 1];
    size_t n = 0;
    while (kiln_tenants_next(&list, id))
        n++;
    return n;
}
