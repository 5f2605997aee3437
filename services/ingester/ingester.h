/* SPDX-License-Identifier: Apache-2.0
 * ingester: owns the heads of all tenants in this process and serves the
 * internal ingester.v1 API (distributor -> ingester writes, querier ->
 * ingester reads). In -target=all the distributor and querier call the
 * in-process functions below directly. Thread-safe. */
#ifndef KILN_INGESTER_H
#define KILN_INGESTER_H

#include <stddef.h>
#include <stdint.h>

#include "head.h"
#include "labels.h"
#include "pprof.h"
#include "rpc.h"
#include "selector.h"
#include "status.h"
#include "tree.h"

typedef struct kiln_ingester kiln_ingester_t;

typedef struct kiln_ingester_config {
    const char *storage_path; /* this process's own state directory */
    size_t max_profile_bytes; /* decompressed pprof on the internal push */
} kiln_ingester_config;

/** Creates an ingester with no tenants. */
kiln_ingester_t *kiln_ingester_create(const kiln_ingester_config *cfg);
/** Frees all heads; NULL is a no-op. */
void kiln_ingester_destroy(kiln_ingester_t *ing);
/** Registers the ingester.v1.IngesterService methods in the registry. */
void kiln_ingester_register(kiln_ingester_t *ing, kiln_rpc_registry_t *rpc);

/** Appends one validated, normalised profile of a series to tenant's head. */
kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant, const kiln_label_t *l,
                                 size_t n, const kiln_pprof_t *p, kiln_err *err);

/** Visits the matching series of the tenants in `tenants` ("a" or "a|b"). */
void kiln_ingester_series(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                          int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx);

/** Merges the matching profiles of the tenants in `tenants` into t. */
void kiln_ingester_merge_tree(kiln_ingester_t *ing, const char *tenants,
                              const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                              kiln_tree_t *t);

/** Sums the stats of the tenants in `tenants`. */
void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out);

#endif
