/* SPDX-License-Identifier: Apache-2.0
 * pb_compare: what the decoder tests and the decoder fuzzer compare two
 * decodings of the same bytes by: their packed bytes and their JSON. */
#ifndef KILN_TEST_PB_COMPARE_H
#define KILN_TEST_PB_COMPARE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "pbjson.h"
#include "xmalloc.h"

/* m packed into a malloc'd buffer of *n bytes. */
static inline uint8_t *packed(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = kiln_xmalloc(*n + 1);
    protobuf_c_message_pack(m, p);
    return p;
}

/* Whether x and y read the same as JSON: their known fields, which packing
 * cannot tell from unknown ones of the same bytes (a value past the depth
 * bound is one, and must stay one). */
static inline bool same_json(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
    kiln_buf jx, jy;
    kiln_buf_init(&jx, 0);
    kiln_buf_init(&jy, 0);
    bool ok = kiln_pbjson_encode(x, &jx) && kiln_pbjson_encode(y, &jy) && jx.len == jy.len &&
              memcmp(jx.ptr, jy.ptr, jx.len) == 0;
    kiln_buf_free(&jx);
    kiln_buf_free(&jy);
    return ok;
}

#endif
