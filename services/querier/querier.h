/* SPDX-License-Identifier: Apache-2.0
 * querier: querier.v1.QuerierService, the API Grafana's Pyroscope data source
 * calls. Reads through a reader (the in-process ingester in -target=all,
 * the ring and the shared store in a cluster); label
 * names, values, profile types and series are derived from the matching
 * stored series, flame graphs from the merged call tree. Thread-safe. */
#ifndef KILN_QUERIER_H
#define KILN_QUERIER_H

#include "http_server.h"
#include "ingester.h"
#include "overrides.h"
#include "reader.h"
#include "rpc.h"

typedef struct kiln_querier kiln_querier_t;

/** Creates a querier reading through rd (the in-process ingester or the
 * cluster: reader.h), under the per-tenant query limits (both borrowed;
 * limits may be NULL). */
kiln_querier_t *kiln_querier_create(kiln_reader_t *rd, kiln_overrides_t *limits);
/** Frees it; NULL is a no-op. */
void kiln_querier_destroy(kiln_querier_t *q);
/** Registers the querier.v1.QuerierService methods. */
void kiln_querier_register(kiln_querier_t *q, kiln_rpc_registry_t *rpc);
/** Routes Pyroscope's legacy read API (/pyroscope/render, render-diff, label-values). */
void kiln_querier_register_http(kiln_querier_t *q, kiln_http_server_t *http);

#endif
