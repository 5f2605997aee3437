/* SPDX-License-Identifier: Apache-2.0
 * db_fixture: unit-test shorthands for a storage engine (kiln_db) in a
 * temporary directory: its object store, and reads of a tenant with
 * positional arguments, each asserting KILN_OK. Header-only, for tests. */
#ifndef KILN_TEST_DB_FIXTURE_H
#define KILN_TEST_DB_FIXTURE_H

#include <stdio.h>

#include "check.h"
#include "db.h"
#include "objstore.h"

/* Opens <dir>/bucket as an object store (NULL, asserted, when it fails). */
static inline kiln_objstore_t *check_store_open(const char *dir)
{
    char bucket[256];
    snprintf(bucket, sizeof(bucket), "%s/bucket", dir);
    kiln_objstore_t *s = NULL;
    CHECK_OK(kiln_objstore_open_fs(bucket, &s, NULL));
    return s;
}

/* The total of a tree read of tenants under spans (NULL = every sample). */
static inline int64_t check_db_total(kiln_db_t *db, const char *tenants, const uint64_t *spans,
                                     size_t n_spans, size_t *nodes)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_read_filter f = {.spans = spans, .n_spans = n_spans};
    kiln_read_visitor v = {.tree = t};
    CHECK_OK(kiln_db_read(db, tenants, &f, &v, NULL));
    int64_t total = kiln_tree_total(t);
    if (nodes != NULL)
        *nodes = kiln_tree_size(t);
    kiln_tree_destroy(t);
    return total;
}

/* Delivers every profile of tenants to fn. */
static inline void check_db_profiles(kiln_db_t *db, const char *tenants,
                                     void (*fn)(void *ctx, const kiln_read_profile *p), void *ctx)
{
    kiln_read_filter f = {0};
    kiln_read_visitor v = {.profile = fn, .ctx = ctx};
    CHECK_OK(kiln_db_read(db, tenants, &f, &v, NULL));
}
#endif
