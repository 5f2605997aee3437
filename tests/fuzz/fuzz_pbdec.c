/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/pbdec, differential: arbitrary bytes decoded
 * as an OTLP ExportProfilesServiceRequest by pbdec and by protobuf-c (both
 * through the bounded descriptor) must be accepted or refused alike, and
 * when accepted pack to the same bytes and read the same as JSON (known
 * fields: a value past the depth bound packs like one decoded, but must
 * stay an unknown field), and pbdec notes a NUL in a string field exactly
 * when pb_nul's walk of the bytes finds one (the rpc layer trusts the note
 * instead of walking). Aborts on any difference. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "otlp.h"
#include "pb_compare.h"
#include "pb_nul.h"
#include "pbjson.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* No cap: the decoders need different amounts, so only input decides. */
    kiln_arena_t *a = kiln_arena_create(0), *b = kiln_arena_create(0);
    ProtobufCAllocator al = kiln_arena_pb_allocator(b);
    const ProtobufCMessageDescriptor *md = kiln_otlp_request_descriptor();
    bool nul = false;
    ProtobufCMessage *x = kiln_otlp_unpack_message(a, data, size, &nul);
    ProtobufCMessage *y = protobuf_c_message_unpack(md, &al, size, data);
    if ((x == NULL) != (y == NULL))
        abort();
    if (x != NULL) {
        size_t nx, ny;
        uint8_t *px = packed(x, &nx), *py = packed(y, &ny);
        if (nx != ny || memcmp(px, py, nx) != 0 || !same_json(x, y))
            abort();
        if (nul != !kiln_pb_nul_free(md, data, size))
            abort();
        free(px);
        free(py);
    }
    kiln_arena_destroy(a);
    kiln_arena_destroy(b);
    return 0;
}
