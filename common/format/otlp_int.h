/* SPDX-License-Identifier: Apache-2.0
 * otlp_int: names shared by the otlp module's own files (otlp.c converts,
 * otlp_check.c checks indices, otlp_fast.c decodes the hot messages). Not for use outside
 * common/otlp*.c. */
#ifndef KILN_OTLP_INT_H
#define KILN_OTLP_INT_H

#include <stdbool.h>

#include "otlp.h"
#include "pbdec.h"

typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary o_dict;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles o_rprof;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles o_sprof;
typedef Opentelemetry__Proto__Profiles__V1development__Profile o_profile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample o_sample;
typedef Opentelemetry__Proto__Profiles__V1development__Location o_loc;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping o_map;
typedef Opentelemetry__Proto__Profiles__V1development__Function o_fn;
typedef Opentelemetry__Proto__Profiles__V1development__Line o_line;
typedef Opentelemetry__Proto__Profiles__V1development__Link o_link;
typedef Opentelemetry__Proto__Profiles__V1development__Stack o_stack;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit o_kvu;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType o_vtype;
typedef Opentelemetry__Proto__Common__V1__AnyValue o_any;
typedef Opentelemetry__Proto__Common__V1__KeyValue o_kv;

#define O_ANY(c) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##c

/** True when i indexes a table of n entries. */
static inline bool kiln_otlp__idx_ok(int32_t i, size_t n)
{
    return i >= 0 && (size_t)i < n;
}

/** Checks that d exists, that string_table[0] is "", and that every index
 * inside d (mappings, locations, lines, functions, stacks, attributes, down
 * to nested AnyValue string indices) is in range. KILN_INVALID_ARGUMENT with
 * err naming the table, entry, field and index otherwise. */
kiln_status kiln_otlp__check_dictionary(const o_dict *d, kiln_err *err);

/** Checks one Profile (with its resource's and scope's attributes) against
 * the checked dictionary d: sample_type present, every index in range, and
 * each sample of an allowed shape. err starts with where (e.g.
 * "resource_profiles[0].scope_profiles[1].profiles[2]"). */
kiln_status kiln_otlp__check_profile(const o_dict *d, const o_rprof *rp, const o_sprof *sp,
                                     const o_profile *p, const char *where, kiln_err *err);

/** protobuf_c_message_get_packed_size(&p->base), the Profile's encoded
 * size, with its samples' sizes summed by hand (otlp.c). */
size_t kiln_otlp__profile_size(const o_profile *p);

/** Gives p the hand-written decoders of Sample, Location, Line, Stack,
 * Function, Mapping, ValueType, KeyValueAndUnit and scalar AnyValues
 * (otlp_fast.c), which leave anything unusual to p's
 * generic decoding. Call once, before p is used. */
void kiln_otlp__fast_decoders(kiln_pbdec_t *p);

#endif
