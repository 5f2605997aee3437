/* SPDX-License-Identifier: Apache-2.0
 * tenants: a list of tenant ids as a read's X-Scope-OrgID carries it
 * ("a|b|c", already validated by kiln_tenant_parse), walked one id at a
 * time into a caller's buffer. Pure functions; any thread. */
#ifndef KILN_TENANTS_H
#define KILN_TENANTS_H

#include <stdbool.h>
#include <stddef.h>

#define KILN_TENANT_MAX 150
#define KILN_TENANT_DEFAULT "anonymous"

/** Copies the next id of *list into out (NUL-terminated; an id longer than
 * KILN_TENANT_MAX, which validation refuses, is cut) and moves *list past
 * it. False, with out untouched, once the list is used up (an empty list
 * has no ids). */
bool kiln_tenants_next(const char **list, char out[KILN_TENANT_MAX + 1]);

/** The number of ids in list. */
size_t kiln_tenants_count(const char *list);

#endif
