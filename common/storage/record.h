/* SPDX-License-Identifier: Apache-2.0
 * record: one push of one tenant as bytes, the form a push takes in the
 * write-ahead log and on the wire from distributor to ingester
 * (ingester.v1 PushRequest.record). docs/wal-format.md lays it out: format
 * 2, written since, is Kiln's own packed form of the normalised parts
 * (each distinct symbol table once, then each part's labels, header and
 * samples, as varints), so a reader rebuilds the very parts that were
 * written with no pprof decode or normalisation. Format 1 (a protobuf
 * WalRecord holding re-encoded pprof) is still read; a newer format is
 * refused, never guessed at. Decoding bounds-checks every field: bytes
 * from a peer or a damaged disk never read out of bounds. */
#ifndef KILN_RECORD_H
#define KILN_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "buf.h"
#include "head.h"
#include "status.h"

/** A decoded record: one push of one tenant (arena memory). */
typedef struct kiln_record {
    const char *tenant;
    kiln_head_part *parts;
    size_t n;
} kiln_record;

/** Appends the record of a push (normalised parts of one tenant) to out, in
 * the current format. */
void kiln_record_encode(const char *tenant, const kiln_head_part *parts, size_t n, kiln_buf *out);

/** Decodes a record of any format this build reads into *out (symbol
 * strings point into data, which must outlive *out). KILN_DATA_LOSS for a
 * record that does not decode, KILN_FAILED_PRECONDITION for a format this
 * build does not know (a newer one); err says which. */
kiln_status kiln_record_decode(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_record *out,
                               kiln_err *err);
#endif
