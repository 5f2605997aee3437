/* SPDX-License-Identifier: Apache-2.0
 * pb_nul: whether the string fields of protobuf wire bytes hold a NUL
 * byte, which protobuf-c's C strings would silently cut there (a label
 * "a\0b" stored as "a"), so a request carrying one is refused rather than
 * stored cut. The check reads only the message types that can hold a
 * string (a string field, or a message field of such a type): OTLP's
 * samples, locations and stacks, most of an export's bytes, are skipped.
 * Which types those are is worked out once per request type and kept for
 * the process's life. Thread-safe. The rpc layer runs it on requests that
 * protobuf-c decoded; a method's own decoder reports the same NULs while it
 * copies the strings (rpc.h, pbdec.h), checked against this walk by
 * tests/fuzz/fuzz_pbdec.c. */
#ifndef KILN_PB_NUL_H
#define KILN_PB_NUL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** False when a string field of a message of type md, in data[0..len),
 * holds a NUL byte, at any depth up to 24 messages down. Malformed wire
 * data passes: call it after the decoder has accepted the bytes. */
bool kiln_pb_nul_free(const ProtobufCMessageDescriptor *md, const uint8_t *data, size_t len);

#endif
