/* SPDX-License-Identifier: Apache-2.0
 * distributor: the write path's front door. Serves push.v1.PusherService/Push
 * (gRPC and Connect): every RawSample is gunzipped (capped), decoded,
 * validated and normalised, its series labels completed as Pyroscope does
 * (service_name defaults to unknown_service; ingest markers stripped), split
 * into one series per distinct set of string sample labels (trace_id,
 * span_id and profile_id stay with the sample), and appended through the
 * ingester. A request is all-or-nothing: nothing of it
 * is appended unless every profile in it is valid. Thread-safe. */
#ifndef KILN_DISTRIBUTOR_H
#define KILN_DISTRIBUTOR_H

#include <stddef.h>

#include "http_server.h"
#include "inflight.h"
#include "overrides.h"
#include "metrics.h"
#include "pprof.h"
#include "rpc.h"
#include "rules_eval.h"
#include "store.h"

typedef struct kiln_distributor kiln_distributor_t;

typedef struct kiln_distributor_config {
    kiln_overrides_t *limits; /* borrowed: per-tenant limits and rate buckets */
    size_t max_profile_bytes; /* decompressed bytes per profile, process-wide */
    kiln_store_t store;       /* where pushes are appended (its state borrowed) */
} kiln_distributor_config;

/** Creates a distributor appending to cfg->store, counting in metrics
 * (borrowed). */
kiln_distributor_t *kiln_distributor_create(const kiln_distributor_config *cfg,
                                            kiln_metrics_t *metrics);
/** Frees it; NULL is a no-op. */
void kiln_distributor_destroy(kiln_distributor_t *d);

/** Sets the process's budget of in-flight decompressed bytes (borrowed;
 * NULL, the default, is none) that every decompression reserves from. Call
 * before the servers start. */
void kiln_distributor_set_inflight(kiln_distributor_t *d, kiln_inflight_t *b);

/** Sets the recording rules evaluator (borrowed; NULL, the default, is
 * none) that every acknowledged push is fed to. Call before the servers
 * start. */
void kiln_distributor_set_rules(kiln_distributor_t *d, kiln_rules_eval_t *rules);

/** Registers /push.v1.PusherService/Push (push.c). */
void kiln_distributor_register(kiln_distributor_t *d, kiln_rpc_registry_t *rpc);

/** Registers Pyroscope's legacy ingest API (ingest.c), POST /ingest and its
 * alias /pyroscope/ingest, on http: the query's name=app.suffix{k=v,...},
 * from/until, sampleRate and spyName, and a body in pprof (format=pprof or
 * the SDKs' multipart form with sample_type_config), folded (the default),
 * lines or speedscope; trie, tree and jfr are answered 422. Tenant from
 * X-Scope-OrgID. Content-Encoding: gzip bodies are decoded (under the
 * profile size limit, from the in-flight budget; other encodings 415).
 * Answers 200 (empty), or plain text (control bytes escaped) with 400
 * (query, sampleRate, labels), 413 (too large, over the burst), 415, 422
 * (unreadable body) or 429 (rate limit, server busy): docs/api.md's
 * "Ingest errors". d and http are borrowed; call before the server starts. */
void kiln_distributor_register_http(kiln_distributor_t *d, kiln_http_server_t *http);

/** Registers OpenTelemetry profiles ingest (otlp.c): the unary method
 * /opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export
 * in rpc (gRPC, on both gRPC ports, and Connect) and the OTLP/HTTP route
 * POST /v1development/profiles on http (application/x-protobuf,
 * application/protobuf or application/json, optionally gzip; 415 otherwise).
 * Profiles are converted with common/otlp and ingested together through
 * kiln_distributor_ingest_groups: invalid ones are counted in the response's
 * partial_success, and a request whose profiles are all invalid (or whose
 * dictionary is broken) fails with INVALID_ARGUMENT (HTTP 400 with a
 * google.rpc.Status body). d, rpc and http are borrowed (http NULL: the
 * method only, as bench_otlp calls it); call before the servers start. */
void kiln_distributor_register_otlp(kiln_distributor_t *d, kiln_rpc_registry_t *rpc,
                                    kiln_http_server_t *http);

/** A profile on its way in, whatever format it came in: the series labels as
 * the client sent them (arena or request memory; ingest markers such as
 * __delta__ are read and dropped here) and a decoded, not yet validated
 * pprof (kiln_pprof_decode output, or a converter's equivalent with ids). */
typedef struct kiln_ingest_profile {
    kiln_label_t *labels;
    size_t n_labels;
    kiln_pprof_t profile;
    const char *id;   /* client profile id (RawSample.ID), NULL or "" when none */
    size_t raw_bytes; /* bytes as received, for metrics and rate limits */
} kiln_ingest_profile;

/** The shared pipeline of every ingest path: checks labels and limits,
 * validates and normalises every profile, then appends all of them, or
 * none when any fails (the status and err say which and why). May rewrite
 * in[]; all memory comes from a. */
kiln_status kiln_distributor_ingest(kiln_distributor_t *d, const char *tenant,
                                    kiln_ingest_profile *in, size_t n, kiln_arena_t *a,
                                    kiln_err *err);

/** What kiln_distributor_ingest_groups left out: how many groups, and why
 * the first was. Zero it before the call. */
typedef struct kiln_ingest_rejections {
    size_t rejected;
    kiln_err first;
} kiln_ingest_rejections;

/** kiln_distributor_ingest of independent profiles at once, as an OTLP
 * export carries them: in[i] belongs to group[i] (a group's entries are
 * adjacent). A group failing its own checks (size, labels, validation) is
 * left out and counted in rej; the others are appended together, one
 * batch and one WAL record for the request, all or none: a limit or a
 * refusal of the store is the status, and nothing was stored. KILN_OK
 * with every group rejected stores nothing. Adjacent profiles may point at
 * the same symbol tables (an OTLP export's series do): those are validated
 * and normalised once, and when they fail, every group with a profile
 * that shares them is rejected with that reason. */
kiln_status kiln_distributor_ingest_groups(kiln_distributor_t *d, const char *tenant,
                                           kiln_ingest_profile *in, const size_t *group, size_t n,
                                           kiln_arena_t *a, kiln_ingest_rejections *rej,
                                           kiln_err *err);

/** Gunzips (when gzip, reserving from the in-flight budget) under the
 * profile size limit and decodes pprof bytes into p (arena memory).
 * KILN_OUT_OF_RANGE past the size limit ("too large"), KILN_INVALID_ARGUMENT
 * for malformed data, KILN_RESOURCE_EXHAUSTED when the budget is busy. */
kiln_status kiln_distributor_decode_pprof(const kiln_distributor_t *d, const uint8_t *data,
                                          size_t len, kiln_arena_t *a, kiln_pprof_t *p,
                                          kiln_err *err);

/** Gunzips a whole request body (when gzip) under max bytes (0: the profile
 * size limit), reserving from the in-flight budget; a plain body longer
 * than that is too large as well. Statuses as kiln_distributor_decode_pprof. */
kiln_status kiln_distributor_body(const kiln_distributor_t *d, const uint8_t *data, size_t len,
                                  size_t max, kiln_arena_t *a, const uint8_t **out, size_t *out_len,
                                  kiln_err *err);

/* Error classes of the ingest paths (docs/api.md, "Ingest errors"). Inside
 * the distributor a "too large" failure is KILN_OUT_OF_RANGE, so that it is
 * told apart from the retryable KILN_RESOURCE_EXHAUSTED of rate and
 * concurrency limits; clients see it as INVALID_ARGUMENT (gRPC, Connect:
 * 400) or 413 (plain HTTP), never 429. */

/** The process-wide decompressed profile size limit
 * (-validation.max-profile-size-bytes). */
size_t kiln_distributor_max_profile_bytes(const kiln_distributor_t *d);

/** The reason label of a refused request for logs and metrics: "rate_limited"
 * (RESOURCE_EXHAUSTED), "too_large" (OUT_OF_RANGE), "invalid"
 * (INVALID_ARGUMENT), else the code's name. */
const char *kiln_distributor_reason(kiln_status st);

/** The code gRPC and Connect clients get for st: OUT_OF_RANGE becomes
 * INVALID_ARGUMENT (err->code too); others are unchanged. */
kiln_status kiln_distributor_public_code(kiln_status st, kiln_err *err);

/** The status plain-HTTP ingest paths answer for st: 429 for
 * RESOURCE_EXHAUSTED, 413 for OUT_OF_RANGE, 400 for INVALID_ARGUMENT,
 * otherwise Connect's mapping. */
int kiln_distributor_http_status(kiln_status st);

/** Records a refused ingest request: kiln_discarded_* metrics by tenant and
 * reason, and one log line, sampled per tenant and reason
 * (KILN_LOG_SAMPLE_BURST per interval). path names the API. */
void kiln_distributor_rejected(kiln_distributor_t *d, const char *tenant, const char *path,
                               kiln_status st, const kiln_err *err, size_t bytes);

#endif
