/* SPDX-License-Identifier: Apache-2.0
 * overrides: per-tenant ingest limits with Pyroscope's defaults and names,
 * runtime overrides per tenant (YAML `overrides: {<tenant>: {<limit>: v}}`),
 * and the per-tenant ingestion rate limiter (a token bucket in bytes).
 * Overrides may be reloaded at run time (the cluster publishes them over
 * NATS): each load builds a new table and swaps it in whole, so readers see
 * either the old or the new overrides, never a mix. Thread-safe. */
#ifndef KILN_OVERRIDES_H
#define KILN_OVERRIDES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kiln_limits {
    double ingestion_rate_mb;  /* MB/s of decompressed profile bytes; 0 = unlimited */
    double ingestion_burst_mb; /* bucket size; a single push up to this size passes */
    size_t max_profile_bytes;  /* decompressed, per profile */
    size_t max_samples;        /* per profile; 0 = unlimited */
    size_t max_label_names;    /* per series */
    size_t max_label_name_len;
    size_t max_label_value_len;
    size_t max_sample_labels;      /* string labels per sample */
    size_t max_stack_depth;        /* frames kept, root side */
    int64_t reject_older_than_ns;  /* 0 = off */
    int64_t reject_newer_than_ns;  /* 0 = off */
    int64_t retention_ns;          /* blocks older than this are deleted; 0 = keep */
    int64_t max_query_length_ns;   /* longest Select* range; 0 = no limit */
    int64_t max_query_lookback_ns; /* how far back a query may reach; 0 = no limit */
    size_t max_global_series;      /* in-memory series per tenant, cluster-wide; 0 = off */
    size_t max_query_parallelism;  /* queries of a tenant running or queued at once; 0 = no limit */
} kiln_limits;

typedef struct kiln_overrides kiln_overrides_t;

/** Creates the override table over the process defaults (copied). */
kiln_overrides_t *kiln_overrides_create(const kiln_limits *defaults);
/** Frees it; NULL is a no-op. */
void kiln_overrides_destroy(kiln_overrides_t *o);

/** Loads per-tenant overrides from a YAML file:
 *   overrides:
 *     tenant-a: {ingestion_rate_mb: 8, max_profile_size_bytes: 8388608}
 * Keys are Pyroscope's limit names (ingestion_rate_mb, ingestion_burst_size_mb,
 * max_profile_size_bytes, max_profile_stacktrace_samples,
 * max_label_names_per_series, max_label_name_length, max_label_value_length,
 * max_profile_stacktrace_sample_labels, max_profile_stacktrace_depth,
 * reject_older_than, reject_newer_than, retention_period, max_query_length,
 * max_query_lookback, max_global_series_per_tenant, max_query_parallelism). Unknown keys are
 * an error. Replaces the whole table
 * (tenants absent from the file fall back to the defaults); on an error the
 * table in force is kept. */
kiln_status kiln_overrides_load(kiln_overrides_t *o, const char *path, kiln_err *err);

/** Like kiln_overrides_load, from the YAML text yaml[0..len) (borrowed). */
kiln_status kiln_overrides_load_text(kiln_overrides_t *o, const char *yaml, size_t len,
                                     kiln_err *err);

/** The limits in force for tenant (its override, or the defaults). The
 * pointer stays valid until kiln_overrides_destroy, even across reloads:
 * replaced tables are retired, not freed (a few hundred bytes per tenant per
 * reload; reloads are rare), so a caller may hold it for a whole request
 * without a lock. A reload is seen by the next call. */
const kiln_limits *kiln_overrides_get(const kiln_overrides_t *o, const char *tenant);

/** Sets how many processes share each tenant's ingestion rate (the live
 * distributors; values below 1 count as 1): kiln_overrides_take admits
 * rate / n per process, with the burst not divided. Starts at 1. */
void kiln_overrides_set_shards(kiln_overrides_t *o, size_t n);

/** Takes bytes from tenant's bucket at time now_ns. KILN_OK;
 * KILN_RESOURCE_EXHAUSTED (retryable) when the bucket lacks the tokens now;
 * KILN_OUT_OF_RANGE (never retryable: "too large") when bytes exceed the
 * burst, which no wait can gather. Messages name the limit. */
kiln_status kiln_overrides_take(kiln_overrides_t *o, const char *tenant, size_t bytes,
                                int64_t now_ns, kiln_err *err);

/** Parses a duration: "0", "500ms", "1.5s", "90s", "10m", "1h30m", "7d", "2w" -> ns. */
bool kiln_parse_duration(const char *s, int64_t *ns);

#endif
