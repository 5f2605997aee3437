/* SPDX-License-Identifier: Apache-2.0
 * querier: querier.v1.QuerierService, the API Grafana's Pyroscope data source
 * calls. Reads through the ingester interface (store.h: the in-process
 * ingester in -target=all, the ring and the shared store in a cluster); label
 * names, values, profile types and series are derived from the matching
 * stored series, flame graphs from the merged call tree. Thread-safe. */
#ifndef KILN_QUERIER_H
#define KILN_QUERIER_H

#include "http_server.h"
#include "overrides.h"
#include "rpc.h"
#include "store.h"

typedef struct kiln_querier kiln_querier_t;

typedef struct kiln_querier_config {
    kiln_store_t store;       /* where profiles are read (its state borrowed) */
    kiln_overrides_t *limits; /* per-tenant query limits (borrowed; NULL = none) */
} kiln_querier_config;

/** Creates a querier reading through cfg->store. Never NULL. */
kiln_querier_t *kiln_querier_create(const kiln_querier_config *cfg);
/** Frees it; NULL is a no-op. */
void kiln_querier_destroy(kiln_querier_t *q);
/** Registers the querier.v1.QuerierService methods. */
void kiln_querier_register(kiln_querier_t *q, kiln_rpc_registry_t *rpc);
/** Routes Pyroscope's legacy read API (/pyroscope/render, render-diff, label-values). */
void kiln_querier_register_http(kiln_querier_t *q, kiln_http_server_t *http);

#endif
