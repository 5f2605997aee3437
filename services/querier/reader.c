/* SPDX-License-Identifier: Apache-2.0
 * reader: dispatch, and the local reader (the in-process ingester). */
#include "reader_int.h"

#include <stdlib.h>

#include "xmalloc.h"

kiln_reader_t *kiln_reader_local(kiln_ingester_t *ing)
{
    kiln_reader_t *r = kiln_xcalloc(1, sizeof(*r));
    r->ing = ing;
    pthread_rwlock_init(&r->sync, NULL);
    return r;
}

kiln_reader_t *kiln_reader_cluster(const kiln_reader_cluster_config *cfg)
{
    kiln_reader_t *r = kiln_xcalloc(1, sizeof(*r));
    r->cc = *cfg;
    r->blocks = kiln_blockset_create(cfg->store);
    pthread_rwlock_init(&r->sync, NULL);
    return r;
}

void kiln_reader_destroy(kiln_reader_t *r)
{
    if (r == NULL)
        return;
    kiln_blockset_destroy(r->blocks);
    pthread_rwlock_destroy(&r->sync);
    free(r);
}

kiln_status kiln_reader_series(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                               int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx,
                               kiln_err *err)
{
    if (r->ing == NULL)
        return kiln_reader__cluster_series(r, tenants, sel, start_ms, end_ms, fn, ctx, err);
    kiln_ingester_series(r->ing, tenants, sel, start_ms, end_ms, fn, ctx);
    return KILN_OK;
}

kiln_status kiln_reader_profiles(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                                 int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn,
                                 void *ctx, kiln_err *err)
{
    if (r->ing == NULL)
        return kiln_reader__cluster_profiles(r, tenants, sel, start_ms, end_ms, fn, ctx, err);
    kiln_ingester_profiles(r->ing, tenants, sel, start_ms, end_ms, fn, ctx);
    return KILN_OK;
}

kiln_status kiln_reader_merge(kiln_reader_t *r, const char *tenants, const kiln_selector_t *sel,
                              int64_t start_ms, int64_t end_ms, const kiln_head_filter *f,
                              kiln_tree_t *t, kiln_err *err)
{
    if (r->ing == NULL)
        return kiln_reader__cluster_merge(r, tenants, sel, start_ms, end_ms, f, t, err);
    kiln_ingester_merge_filtered(r->ing, tenants, sel, start_ms, end_ms, f, t);
    return KILN_OK;
}

kiln_status kiln_reader_stats(kiln_reader_t *r, const char *tenants, kiln_head_stats_t *out,
                              kiln_err *err)
{
    if (r->ing == NULL)
        return kiln_reader__cluster_stats(r, tenants, out, err);
    kiln_ingester_stats(r->ing, tenants, out);
    return KILN_OK;
}
