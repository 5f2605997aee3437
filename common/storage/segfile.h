/* SPDX-License-Identifier: Apache-2.0
 * segfile: the numbered segment files the logs of storage share (wal.h,
 * maplog.h). A log is a directory of <16-digit id>.wal files, each a run of
 * frames [u32 length][u32 checksum][payload] (little endian; checksum = low
 * 32 bits of XXH3-64 of the payload). Replay keeps every frame up to the
 * first that is torn or corrupt and cuts the file there; a tail of zeros
 * (a preallocated segment never written that far) ends it without a word. */
#ifndef KILN_SEGFILE_H
#define KILN_SEGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define KILN_SEGFILE_HDR 8

/** The frame header of the payload rec (len bytes) into hdr. */
void kiln_segfile_frame(uint8_t hdr[KILN_SEGFILE_HDR], const void *rec, size_t len);

/** The path of segment id of dir, into out (cap bytes). */
void kiln_segfile_path(const char *dir, uint64_t id, char *out, size_t cap);

/** The segment ids of dir, ascending (*n of them); caller frees. */
uint64_t *kiln_segfile_list(const char *dir, size_t *n);

/** Calls fn for every intact frame of segment id of dir, in order, and cuts
 * the file after the last of them. KILN_UNAVAILABLE when it cannot be read. */
kiln_status kiln_segfile_replay(const char *dir, uint64_t id,
                                void (*fn)(void *ctx, uint64_t segment, const uint8_t *rec,
                                           size_t len),
                                void *ctx, kiln_err *err);

/** Deletes every segment of dir with an id below `segment`. */
void kiln_segfile_remove_before(const char *dir, uint64_t segment);

#endif
