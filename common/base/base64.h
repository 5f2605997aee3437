/* SPDX-License-Identifier: Apache-2.0
 * base64: the one decoder of standard and URL-safe base64 (RFC 4648) that
 * protobuf JSON, ad-hoc uploads and HTTP Basic credentials read. Padding
 * is optional; the alphabet is URL-safe when the input holds '-' or '_',
 * as protojson reads it. Pure; thread-safe. */
#ifndef KILN_BASE64_H
#define KILN_BASE64_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The most bytes len base64 characters decode to. */
static inline size_t kiln_base64_max_decoded(size_t len)
{
    return len / 4 * 3 + 3;
}

/** Decodes in[0..len) into out (room for kiln_base64_max_decoded(len)),
 * setting *out_len. False when malformed, with *bad (when not NULL) the
 * offset of the first character that cannot be, or len for a length that
 * cannot be base64. */
bool kiln_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad);
#endif
