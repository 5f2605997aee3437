/* SPDX-License-Identifier: Apache-2.0
 * pbdec: protobuf_c_message_unpack's result, faster. A decoder is built once
 * for a message type (and every type below it) and then decodes into the
 * caller's request arena the very structs protobuf-c would: same accepted and
 * refused bytes, same values, unknown fields kept, repeated singular fields
 * merged as protobuf-c merges them. It also tells whether a string field
 * holds a NUL byte, noted while copying the strings, so that callers need
 * not walk the bytes again to refuse those (pb_nul.h). Built decoders are
 * read-only, so any thread may use one at once. Types with required
 * (proto2) fields are not supported. */
#ifndef KILN_PBDEC_H
#define KILN_PBDEC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef struct kiln_pbdec kiln_pbdec_t;

/** Builds the decoder of messages of type root (borrowed: it and the
 * descriptors below it must outlive the decoder). Nesting is followed as
 * far as the descriptors go, as protobuf-c does: give it depth-bounded
 * descriptors (otlp.h) when the type nests without end. Aborts when a
 * reachable type has a required field; allocation failure aborts too. */
kiln_pbdec_t *kiln_pbdec_create(const ProtobufCMessageDescriptor *root);

/** A hand-written decoder of one message type for the common shape of its
 * bytes: the message, or NULL to leave the bytes to the exact generic
 * decoder (anything unusual, malformed or not). It must give NULL when a
 * string field it decodes (at any depth) holds a NUL byte: the generic
 * decoder then reads those bytes and notes the NUL (kiln_pbdec_unpack's
 * *nul), which a fast decoder has no way to report. Allocates in a. */
typedef ProtobufCMessage *(*kiln_pbdec_fast_fn)(kiln_arena_t *a, const uint8_t *data, size_t len);

/** Makes p try fn first for messages of type d (matched by name, among the
 * copies with all of d's fields whose message fields' types have all
 * theirs too, so that fn may decode a message and its children by hand
 * at any depth the copies reach). fn must give what the generic decoder
 * would whenever it does not return NULL. Call before p is shared. */
void kiln_pbdec_set_fast(kiln_pbdec_t *p, const ProtobufCMessageDescriptor *d,
                         kiln_pbdec_fast_fn fn);

/** Frees it; NULL is a no-op. */
void kiln_pbdec_destroy(kiln_pbdec_t *p);

/** Decodes data[0..len) as protobuf_c_message_unpack(root, arena allocator,
 * len, data) does, into a (every part of the message lives there). NULL
 * when the bytes are malformed or the arena cap was reached, the cases in
 * which protobuf-c returns NULL (a request protobuf-c would refuse only for
 * memory may decode here: this decoder needs less). *nul is set to whether
 * a string field decoded (any occurrence, at any depth the descriptors
 * reach; not bytes fields, not unknown fields) holds a NUL byte: a NUL is
 * decoded as protobuf-c decodes it, and refusing it is the caller's call.
 * With the same descriptor, that is !kiln_pb_nul_free for bytes that decode
 * and nest at most 24 messages deep. Does not block. */
ProtobufCMessage *kiln_pbdec_unpack(const kiln_pbdec_t *p, kiln_arena_t *a, const uint8_t *data,
                                    size_t len, bool *nul);

#endif
