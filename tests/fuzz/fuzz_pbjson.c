/* SPDX-License-Identifier: Apache-2.0
 * fuzz_pbjson: libFuzzer target for the protojson decoder. Each input is
 * decoded as a querier SelectMergeStacktracesRequest and as an OTLP
 * ExportProfilesServiceRequest under a 64 MiB arena cap. A message that
 * decodes must encode, decode again to the same JSON, and pack to bytes
 * protobuf-c reads back; any break in that chain aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "pbjson.h"
#include "querier/v1/querier.pb-c.h"

#define ARENA_CAP (64u << 20)
#define OTLP_DESC                                                                                  \
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Packs m, unpacks it with protobuf-c and checks the repacked bytes match. */
static void check_pack(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(n ? n : 1), *q = malloc(n ? n : 1);
    if (p == NULL || q == NULL || protobuf_c_message_pack(m, p) != n)
        abort();
    ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, NULL, n, p);
    if (u == NULL || protobuf_c_message_get_packed_size(u) != n ||
        protobuf_c_message_pack(u, q) != n || memcmp(p, q, n) != 0)
        abort();
    protobuf_c_message_free_unpacked(u, NULL);
    free(p);
    free(q);
}

/* Our own output must decode and re-encode to itself. */
static void check_stable(const ProtobufCMessageDescriptor *desc, const kiln_buf *b)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    ProtobufCMessage *m = NULL;
    kiln_err err;
    kiln_status st = kiln_pbjson_decode(desc, b->ptr, b->len, a, &m, &err);
    if (st == KILN_RESOURCE_EXHAUSTED) {
        kiln_arena_destroy(a);
        return;
    }
    kiln_buf b2;
    kiln_buf_init(&b2, 0);
    if (st != KILN_OK || !kiln_pbjson_encode(m, &b2) || b2.len != b->len ||
        memcmp(b2.ptr, b->ptr, b->len) != 0)
        abort();
    kiln_buf_free(&b2);
    kiln_arena_destroy(a);
}

static void fuzz_one(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    ProtobufCMessage *m = NULL;
    kiln_err err;
    kiln_status st = kiln_pbjson_decode(desc, (const char *)data, size, a, &m, &err);
    if (st == KILN_OK) {
        kiln_buf b;
        kiln_buf_init(&b, 0);
        if (!kiln_pbjson_encode(m, &b))
            abort();
        check_stable(desc, &b);
        check_pack(m);
        kiln_buf_free(&b);
    } else if ((st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED) || err.code != st ||
               strncmp(err.msg, "json: ", 6) != 0 || m != NULL) {
        abort();
    }
    kiln_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(&querier__v1__select_merge_stacktraces_request__descriptor, data, size);
    fuzz_one(&OTLP_DESC, data, size);
    return 0;
}
