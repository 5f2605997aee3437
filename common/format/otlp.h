/* SPDX-License-Identifier: Apache-2.0
 * otlp: OpenTelemetry profiles (OTLP v1development, the proto v1.10+ layout)
 * turned into decoded pprof profiles with Pyroscope's rules, ready for the
 * distributor's ingest pipeline. Decoding uses bounded descriptors so that
 * nested AnyValues cannot exhaust the stack, with protobuf-c's rules but
 * a faster decoder (pbdec); conversion checks every index
 * against the request's dictionary. Everything lives in the caller's request
 * arena; no global state besides the read-only descriptor table built once.
 * Thread-safe. Statuses: KILN_OK, KILN_INVALID_ARGUMENT (malformed request or
 * broken dictionary), KILN_RESOURCE_EXHAUSTED (arena cap). */
#ifndef KILN_OTLP_H
#define KILN_OTLP_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "labels.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "pprof.h"
#include "status.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
    kiln_otlp_request;

/* Messages are decoded at most this deep (the request is level 1). Real
 * requests need 5 levels (request, resource_profiles, scope_profiles,
 * profiles, samples; or down to a resource attribute's AnyValue), plus 2 per
 * AnyValue nested in an array or kvlist. */
#define KILN_OTLP_MAX_DEPTH 24

/** The ExportProfilesServiceRequest descriptor to decode requests with
 * (protobuf-c unpack, or kiln_pbjson_decode) instead of the generated one.
 * It is a copy whose messages deeper than KILN_OTLP_MAX_DEPTH have no known
 * fields: their bytes are kept as unknown fields (JSON members are ignored),
 * so decoding never recurses further however deeply a sender nests AnyValue,
 * while the decoded structs keep the generated types (deep arrays and
 * kvlists just come out empty). Built once on first use; read-only after. */
const ProtobufCMessageDescriptor *kiln_otlp_request_descriptor(void);

/** The request protobuf_c_message_unpack(kiln_otlp_request_descriptor(),
 * arena allocator, len, data) would give, decoded faster (pbdec.h) into a:
 * the same structs, the same bytes refused. NULL when data is malformed or
 * the arena cap was reached. The rpc method's unpack hook (rpc.h). */
ProtobufCMessage *kiln_otlp_unpack_message(kiln_arena_t *a, const uint8_t *data, size_t len,
                                           bool *nul);

/** Unpacks protobuf bytes (not compressed) into a request allocated in a,
 * as kiln_otlp_unpack_message does. KILN_INVALID_ARGUMENT with err set
 * when the bytes are malformed or the arena cap was reached (protobuf-c does
 * not tell which), or when a string field holds a NUL byte (refused as the
 * rpc layer refuses it). Writes *out only on KILN_OK. */
kiln_status kiln_otlp_unpack(kiln_arena_t *a, const uint8_t *data, size_t len,
                             kiln_otlp_request **out, kiln_err *err);

/** Parses an OTLP/JSON body (protojson) into a request allocated in a, as
 * kiln_pbjson_decode does with kiln_otlp_request_descriptor(). */
kiln_status kiln_otlp_decode_json(kiln_arena_t *a, const char *json, size_t len,
                                  kiln_otlp_request **out, kiln_err *err);

/** One series: the labels and the samples of one OTLP Profile that share a
 * service name. */
typedef struct kiln_otlp_series {
    /* __delta__=false, __otel__=true, __name__, the resource then the scope
     * attributes (keys verbatim, string or int values, first wins), then
     * service_name. Strings live in the arena or the request. */
    kiln_label_t *labels;
    size_t n_labels;
    /* Decoded form: one sample type, ids are index+1, strings[0] is "",
     * string views point into the request or the arena. Not yet validated.
     * The symbol tables (strings, mappings, functions, locations, lines)
     * are the same arrays in every series of the request, holding what any
     * of them uses: validate and normalise them once
     * (kiln_pprof_symbols_prepare), then each series' samples
     * (kiln_pprof_samples_prepare); kiln_pprof_validate_normalize of one
     * series would rewrite the tables under the others. */
    kiln_pprof_t profile;
    size_t profile_index;   /* the OTLP Profile, counted across the request */
    const char *profile_id; /* Profile.profile_id as hex, or NULL */
    size_t raw_bytes;       /* the Profile's encoded size, on its first series */
} kiln_otlp_series;

/** What a request converted to. Series come in profile order, and those of
 * one profile are adjacent. */
typedef struct kiln_otlp_result {
    kiln_otlp_series *series;
    size_t n_series;
    size_t n_profiles;        /* OTLP Profiles in the request */
    size_t n_rejected;        /* profiles left out because they are invalid */
    kiln_err first_rejection; /* why the first rejected profile was */
} kiln_otlp_result;

/** Converts req (borrowed; the series point into it) into series in arena a,
 * one per Profile and service name, with Pyroscope's rules:
 * - __name__: samples/count with a cpu/nanoseconds period becomes
 *   process_cpu with type cpu/nanoseconds and value count*period;
 *   off_cpu/nanoseconds becomes off_cpu; otherwise the period type, and
 *   process_cpu when there is none.
 * - service_name: the sample's service.name attribute (the profile is split
 *   per service), else the resource's service.name, else
 *   unknown_service[:<process.executable.name>].
 * - each sample gets one value: the sum of its values, or the number of its
 *   timestamps when it has none (values and timestamps must then pair up);
 *   its other string or int attributes, and its link's trace_id and span_id
 *   (hex), become pprof string labels.
 * A request without a dictionary, or whose dictionary has an index out of
 * range or a string_table that does not start with "", fails entirely
 * (KILN_INVALID_ARGUMENT, err names the table, entry and index). A Profile
 * with a bad index, no sample_type or a sample of a shape OTLP does not allow
 * is left out and counted in out->n_rejected instead. KILN_RESOURCE_EXHAUSTED
 * past the arena cap. Writes *out only on KILN_OK. Does not block. */
kiln_status kiln_otlp_convert(kiln_arena_t *a, const kiln_otlp_request *req, kiln_otlp_result *out,
                              kiln_err *err);

#endif
