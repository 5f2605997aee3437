/* SPDX-License-Identifier: Apache-2.0
 * wal: the ingester's write-ahead log. Records are opaque bytes (the
 * ingester's are laid out in docs/wal-format.md) appended to numbered
 * segment files (<dir>/<16-digit id>.wal), each framed as
 * [u32 length][u32 checksum][payload] (little endian; checksum = low 32 bits
 * of XXH3-64 of the payload). kiln_wal_append returns only when the record
 * is durable: concurrent appenders share one write and one fdatasync (group
 * commit; the leader may wait up to max_delay for more records), and each
 * waiting appender is woken once, by the leader that wrote its record. Replay
 * reads every segment in order and truncates a segment at its first torn or
 * corrupt record (logged once), keeping everything before it.
 * Thread-safe after open; replay before the first append. */
#ifndef KILN_WAL_H
#define KILN_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kiln_wal kiln_wal_t;

typedef struct kiln_wal_config {
    int64_t max_delay_ns; /* group-commit wait for more records (0 = none) */
    size_t segment_bytes; /* start a new segment past this size */
    int fsync;            /* 0 only in benchmarks that measure without fsync */
} kiln_wal_config;

/* Since open, of the batches written (a failed batch counts nowhere):
 * records made durable, their framed bytes, and group commits (one write
 * and one fdatasync each; with fsync off, one write). */
typedef struct kiln_wal_stats {
    uint64_t records, bytes, syncs;
} kiln_wal_stats;

/** Opens (creating) the WAL directory; new records go to a new segment.
 * KILN_UNAVAILABLE with err when the directory cannot be used. */
kiln_status kiln_wal_open(const char *dir, const kiln_wal_config *cfg, kiln_wal_t **out,
                          kiln_err *err);
/** Closes the WAL; NULL is a no-op. Appends must have returned. */
void kiln_wal_close(kiln_wal_t *w);

/** Calls fn for every intact record of every segment, oldest first, with
 * the record's segment id. A record fn rejects is skipped (and logged).
 * Returns KILN_UNAVAILABLE only for I/O errors. */
kiln_status kiln_wal_replay(kiln_wal_t *w,
                            void (*fn)(void *ctx, uint64_t segment, const uint8_t *rec, size_t len),
                            void *ctx, kiln_err *err);

/** Appends one record and waits until it is on disk. *segment receives the
 * segment it went to. KILN_UNAVAILABLE when the write or sync failed (the
 * record must not be acknowledged). */
kiln_status kiln_wal_append(kiln_wal_t *w, const void *rec, size_t len, uint64_t *segment,
                            kiln_err *err);

/** Starts a new segment and returns its id: every record appended after
 * this call goes to it or later ones. */
uint64_t kiln_wal_rotate(kiln_wal_t *w);

/** Deletes every segment with an id below `segment` (their records are
 * safely in blocks). */
void kiln_wal_remove_before(kiln_wal_t *w, uint64_t segment);

/** Counters since open. */
void kiln_wal_stats_get(kiln_wal_t *w, kiln_wal_stats *out);

#endif
