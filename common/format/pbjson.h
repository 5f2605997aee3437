/* SPDX-License-Identifier: Apache-2.0
 * pbjson: proto3 canonical JSON (protojson) for any protobuf-c message,
 * driven by its descriptor, since protobuf-c has no JSON. Used for Connect's
 * application/json and OTLP/HTTP JSON. Stateless and thread-safe.
 *
 * Encoding follows protojson: lowerCamelCase field names, fields at their
 * default value omitted, int64/uint64/fixed64 as decimal strings, bytes as
 * standard base64, enums by value name, NaN/Infinity as strings.
 * Decoding accepts what connect-go's JSON codec accepts: lowerCamelCase or
 * proto field names, 64-bit integers as numbers or strings, enums by name or
 * number, bytes as standard or URL-safe base64 with or without padding,
 * `null` as the default, and unknown fields are ignored (DiscardUnknown), as
 * are unknown enum value names. Like protojson it rejects duplicate fields,
 * two members of one oneof, invalid UTF-8 and lone surrogates; it also
 * rejects \u0000 in strings, which protobuf-c's C strings cannot hold.
 * map<K, V> fields (repeated <Field>Entry messages in protobuf-c) are JSON
 * objects both ways. */
#ifndef KILN_PBJSON_H
#define KILN_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "status.h"

/** Appends msg as compact JSON to out. Invalid UTF-8 in a string field is
 * written as U+FFFD so the output stays valid JSON. Returns false only when
 * out's max is reached, and then leaves out as it was. */
bool kiln_pbjson_encode(const ProtobufCMessage *msg, kiln_buf *out);

/** Parses JSON text into a new message of type desc, allocated entirely in a
 * (a valid protobuf-c message: packable, never free_unpacked). Returns
 * KILN_INVALID_ARGUMENT with a message naming the field and byte offset on
 * malformed JSON or a type mismatch, KILN_RESOURCE_EXHAUSTED past the arena
 * cap. Nesting deeper than 64 levels is rejected. Writes *out only on OK. */
kiln_status kiln_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                               kiln_arena_t *a, ProtobufCMessage **out, kiln_err *err);

#endif
