/* SPDX-License-Identifier: Apache-2.0
 * otlp_decode: depth-bounded copies of the generated OTLP descriptors, and
 * decoding through them. protobuf-c (and a descriptor-driven JSON decoder)
 * recurse once per nested message with no limit, and AnyValue nests without
 * end (array_value, kvlist_value), so a small request could exhaust the
 * stack. Each copy knows how many more levels it may descend; at the last
 * level a message has no known fields, so its bytes stay unknown fields.
 * Protobuf bytes are decoded by a pbdec built on the bounded descriptor:
 * protobuf-c's result, at a fraction of its cost per byte. */
#include "otlp.h"
#include "otlp_int.h"

#include <pthread.h>
#include <string.h>

#include "pbdec.h"
#include "pbjson.h"
#include "xmalloc.h"

/* One bounded copy: orig seen with `budget` levels still allowed below it. */
typedef struct bounded {
    const ProtobufCMessageDescriptor *orig;
    unsigned budget;
    const ProtobufCMessageDescriptor *copy;
} bounded;

/* Process-lifetime, read-only after build_once: never freed. */
static bounded *memo;
static size_t n_memo, cap_memo;
static const ProtobufCMessageDescriptor *request_desc;
static kiln_pbdec_t *request_dec;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool has_message_fields(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            return true;
    }
    return false;
}

static const ProtobufCMessageDescriptor *bound(const ProtobufCMessageDescriptor *d, unsigned budget)
{
    if (!has_message_fields(d))
        return d; /* nothing below it: the generated descriptor is bounded */
    for (size_t i = 0; i < n_memo; i++) {
        if (memo[i].orig == d && memo[i].budget == budget)
            return memo[i].copy;
    }
    ProtobufCMessageDescriptor *c = kiln_xmalloc(sizeof(*c));
    *c = *d;
    if (budget == 0) {
        /* The last level: every field is unknown, so nothing recurses. Its
         * message_init still builds a valid, empty struct of the real type. */
        c->n_fields = 0;
        c->fields = NULL;
        c->fields_sorted_by_name = NULL;
        c->n_field_ranges = 0;
        c->field_ranges = NULL;
    } else {
        ProtobufCFieldDescriptor *f = kiln_xmalloc(d->n_fields * sizeof(*f));
        memcpy(f, d->fields, d->n_fields * sizeof(*f));
        for (unsigned i = 0; i < d->n_fields; i++) {
            if (f[i].type == PROTOBUF_C_TYPE_MESSAGE)
                f[i].descriptor = bound(f[i].descriptor, budget - 1);
        }
        c->fields = f;
    }
    KILN_GROW(memo, cap_memo, n_memo + 1);
    memo[n_memo++] = (bounded){d, budget, c};
    return c;
}

#define PB(x) opentelemetry__proto__collector__profiles__v1development__##x
#define REQUEST_DESC PB(export_profiles_service_request__descriptor)

static void build_once(void)
{
    request_desc = bound(&REQUEST_DESC, KILN_OTLP_MAX_DEPTH - 1);
    request_dec = kiln_pbdec_create(request_desc);
    kiln_otlp__fast_decoders(request_dec);
}

const ProtobufCMessageDescriptor *kiln_otlp_request_descriptor(void)
{
    pthread_once(&once, build_once);
    return request_desc;
}

ProtobufCMessage *kiln_otlp_unpack_message(kiln_arena_t *a, const uint8_t *data, size_t len,
                                           bool *nul)
{
    pthread_once(&once, build_once);
    return kiln_pbdec_unpack(request_dec, a, data, len, nul);
}

kiln_status kiln_otlp_unpack(kiln_arena_t *a, const uint8_t *data, size_t len,
                             kiln_otlp_request **out, kiln_err *err)
{
    bool nul;
    ProtobufCMessage *m = kiln_otlp_unpack_message(a, data, len, &nul);
    if (m == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: malformed ExportProfilesServiceRequest protobuf (%zu bytes), "
                            "or larger than the request memory limit",
                            len);
    /* Refused as the rpc layer and the JSON decoder refuse it: C strings
     * would store "a\0b" as "a". */
    if (nul)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: a string field of the ExportProfilesServiceRequest holds a "
                            "NUL byte");
    *out = (kiln_otlp_request *)m;
    return KILN_OK;
}

kiln_status kiln_otlp_decode_json(kiln_arena_t *a, const char *json, size_t len,
                                  kiln_otlp_request **out, kiln_err *err)
{
    ProtobufCMessage *m = NULL;
    kiln_status st = kiln_pbjson_decode(kiln_otlp_request_descriptor(), json, len, a, &m, err);
    if (st == KILN_OK)
        *out = (kiln_otlp_request *)m;
    return st;
}
