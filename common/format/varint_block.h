/* SPDX-License-Identifier: Apache-2.0
 * varint_block: decodes a run of short protobuf varints (one to three
 * bytes: the location ids of a packed pprof stack) eight input bytes at a
 * time, with no branch on any varint's length. A stack mixes one- and
 * two-byte ids at random, and the byte-by-byte loop mispredicts at about
 * every fourth frame. Where the CPU lacks SSSE3 (or is not x86-64) it
 * decodes nothing, and the caller's own loop reads every varint. */
#ifndef KILN_VARINT_BLOCK_H
#define KILN_VARINT_BLOCK_H
#include <stddef.h>
#include <stdint.h>

/** Decodes the varints from p on into out[*n..], adding to *n, and returns
 * the bytes read. It stops before the first varint longer than three
 * bytes, the first not complete before end, or when fewer than 8 bytes
 * remain before limit (the end of the readable input, at or past end);
 * the caller reads on from there. out must have room for (end - p) + 7
 * more elements: each step stores eight, the unused ones to be overwritten
 * by the next step or the caller. */
size_t kiln_varint_block_decode(const uint8_t *p, const uint8_t *end, const uint8_t *limit,
                                uint64_t *out, size_t *n);

/** Slack elements out needs past (end - p); see kiln_varint_block_decode. */
#define KILN_VARINT_BLOCK_SLACK 8
#endif
