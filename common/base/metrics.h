/* SPDX-License-Identifier: Apache-2.0
 * metrics: the process's Prometheus metrics: requests by method and code
 * with a latency histogram, and ingested bytes and profiles. One registry per
 * process, created in main and passed to the servers; thread-safe. */
#ifndef KILN_METRICS_H
#define KILN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

typedef struct kiln_metrics kiln_metrics_t;

/** Creates an empty registry. */
kiln_metrics_t *kiln_metrics_create(void);
/** Frees it; NULL is a no-op. */
void kiln_metrics_destroy(kiln_metrics_t *m);

/** Records one finished request: protocol ("connect", "grpc", "http"),
 * method or route, result code name, and duration in seconds. */
void kiln_metrics_request(kiln_metrics_t *m, const char *protocol, const char *method,
                          const char *code, double seconds);
/** Counts received bytes (compressed, as sent) and decoded profiles for a tenant. */
void kiln_metrics_ingested(kiln_metrics_t *m, const char *tenant, uint64_t bytes,
                           uint64_t profiles);
/** Counts one refused ingest request of tenant for reason ("rate_limited",
 * "too_large", "invalid", ...) and its bytes as received
 * (kiln_discarded_requests_total, kiln_discarded_bytes_total). */
void kiln_metrics_discarded(kiln_metrics_t *m, const char *tenant, const char *reason,
                            uint64_t bytes);
/** With on false, ingested and discarded counts are summed over tenants
 * and rendered without a tenant label (-server.metrics-tenant-labels).
 * Call before any count. */
void kiln_metrics_tenant_labels(kiln_metrics_t *m, bool on);
/** Appends the Prometheus text exposition of everything recorded. */
void kiln_metrics_render(kiln_metrics_t *m, kiln_buf *out);

#endif
