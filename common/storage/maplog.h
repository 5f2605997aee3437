/* SPDX-License-Identifier: Apache-2.0
 * maplog: a log of small records kept without a system call per record.
 * Segments and frames are segfile.h's (the WAL's), but each segment is
 * preallocated and mapped shared: an append copies its frame into the
 * mapping, that is into the page cache, so it survives the process's end,
 * kill -9 included, as soon as the append returns. It is on disk only after
 * kiln_maplog_sync (fdatasync), which is the caller's to call before
 * anything that must not be taken back by a power loss leaves the process.
 * Replay cuts a segment at its first torn frame and drops the zeros after
 * the last one. Thread-safe after open; replay before the first append. */
#ifndef KILN_MAPLOG_H
#define KILN_MAPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kiln_maplog kiln_maplog_t;

/** Opens (creating) the log's directory; appends go to a new segment of
 * segment_bytes (more for a larger record). sync false makes
 * kiln_maplog_sync a no-op (benchmarks). KILN_UNAVAILABLE with err when the
 * directory or the segment cannot be made. */
kiln_status kiln_maplog_open(const char *dir, size_t segment_bytes, bool sync, kiln_maplog_t **out,
                             kiln_err *err);
/** Cuts the segment to what it holds and closes; NULL is a no-op. Nothing
 * is synced: call kiln_maplog_sync first if that matters. */
void kiln_maplog_close(kiln_maplog_t *l);

/** Calls fn for every intact record of the segments before the one open
 * for appends, oldest first, with the record's segment id. KILN_UNAVAILABLE
 * only for I/O errors. */
kiln_status kiln_maplog_replay(kiln_maplog_t *l,
                               void (*fn)(void *ctx, uint64_t segment, const uint8_t *rec,
                                          size_t len),
                               void *ctx, kiln_err *err);

/** Copies one record into the log. KILN_UNAVAILABLE when a new segment was
 * needed and cannot be made (the record is not in the log). */
kiln_status kiln_maplog_append(kiln_maplog_t *l, const void *rec, size_t len, kiln_err *err);

/** Puts every record appended before the call on disk (fdatasync).
 * KILN_UNAVAILABLE when the sync failed. */
kiln_status kiln_maplog_sync(kiln_maplog_t *l, kiln_err *err);

/** Starts a new segment and returns its id: every record appended after
 * this call goes to it or later ones. The old segment is synced first (when
 * sync is on), so removing the ones before a later snapshot loses nothing.
 * On failure the log stays on its segment (logged). */
uint64_t kiln_maplog_rotate(kiln_maplog_t *l);

/** Deletes every segment with an id below `segment`. */
void kiln_maplog_remove_before(kiln_maplog_t *l, uint64_t segment);

/** Framed bytes appended since open. */
uint64_t kiln_maplog_bytes(kiln_maplog_t *l);

#endif
