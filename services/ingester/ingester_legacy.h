/* SPDX-License-Identifier: Apache-2.0
 * ingester_legacy: the old in-process query and append calls, kept as thin
 * wrappers over kiln_db and kiln_head_read until the store interface lands
 * (store.h: the querier and distributor move onto kiln_store_t and these
 * go). A read failure the old calls cannot return ends the bound query
 * (kiln_cancel_fail), as before. Nothing new may use them. */
#ifndef KILN_INGESTER_LEGACY_H
#define KILN_INGESTER_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "head.h"
#include "selector.h"
#include "status.h"
#include "tree.h"

typedef struct kiln_ingester kiln_ingester_t;

/* ---- head scans over kiln_head_read (the cluster reader's) ---------------- */

/** Called once per matching stored series with its sorted labels. */
typedef void (*kiln_head_series_fn)(void *ctx, const kiln_label_t *l, size_t n);
/** Called once per matching profile: labels, time, sum of its values. */
typedef void (*kiln_head_profile_fn)(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                                     int64_t total);
/** Like kiln_head_profile_fn, with the profile's push id. */
typedef void (*kiln_head_profile_id_fn)(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                                        int64_t total, uint64_t id);

/** What a merge keeps: kiln_read_filter's keys, spans and ids. */
typedef struct kiln_head_filter {
    const uint64_t *keys;
    size_t n_keys;
    const uint64_t *spans;
    size_t n_spans;
    const uint64_t *ids;
    size_t n_ids;
} kiln_head_filter;

void kiln_head_series(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                      kiln_head_series_fn fn, void *ctx);
void kiln_head_profiles_id(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                           int64_t end_ms, kiln_head_profile_id_fn fn, void *ctx);
void kiln_head_merge_filtered(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                              int64_t end_ms, const kiln_head_filter *f, kiln_tree_t *t);

/* ---- the ingester's in-process calls (the local reader and distributor) ---- */

/** A head part. */
typedef kiln_head_part kiln_ingester_part;

kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant,
                                 const kiln_ingester_part *parts, size_t n, kiln_err *err);
void kiln_ingester_series(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                          int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx);
void kiln_ingester_profiles(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                            int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn, void *ctx);
void kiln_ingester_merge_filtered(kiln_ingester_t *ing, const char *tenants,
                                  const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                  const kiln_head_filter *f, kiln_tree_t *t);
void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out);
#endif
