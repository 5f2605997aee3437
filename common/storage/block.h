/* SPDX-License-Identifier: Apache-2.0
 * block: the immutable on-disk form of a head, in the object store at
 * <tenant>/blocks/<ULID>/{meta.json, index, symbols, samples} (format in
 * docs/block-format.md). Every section is zstd-compressed and checksummed;
 * the index locates each series' sample chunk so a query reads only the
 * series it selects. A block opens as a read-only head (common/head.h
 * queries work on it); its sample chunks are read on demand. Blocks are
 * immutable; an open block may be queried from many threads. */
#ifndef KILN_BLOCK_H
#define KILN_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/v1/block.pb-c.h"
#include "head.h"
#include "objstore.h"
#include "status.h"

typedef struct kiln_block kiln_block_t;

#define KILN_ULID_LEN 26

/** Writes a new ULID (26 Crockford base32 chars + NUL) for time ms. */
void kiln_ulid(int64_t ms, char out[KILN_ULID_LEN + 1]);

/** Writes head h (no appends may run on it) as a new block of tenant.
 * The objects are put data first and meta.json last, so a block without a
 * meta.json is incomplete and never opened. meta supplies ingester,
 * wal_until and compaction (ulid, times and stats are filled in here);
 * *ulid_out receives the new ULID. KILN_UNAVAILABLE when a put fails. */
kiln_status kiln_block_write(kiln_objstore_t *s, const char *tenant, kiln_head_t *h,
                             const Block__V1__BlockMeta *meta, char ulid_out[KILN_ULID_LEN + 1],
                             kiln_err *err);

/** kiln_block_write in layout version (1 or the current one, 2): version 1
 * is how builds before trace ids wrote blocks (no trace column, the span
 * column unmarked), kept so tests prove such blocks still read. */
kiln_status kiln_block_write_version(kiln_objstore_t *s, const char *tenant, kiln_head_t *h,
                                     const Block__V1__BlockMeta *meta, uint32_t version,
                                     char ulid_out[KILN_ULID_LEN + 1], kiln_err *err);

/** Opens a block: reads meta.json, symbols and index (verifying their
 * checksums) and checks that the samples object holds every chunk the
 * index locates, without reading it; a sample chunk is fetched (one ranged
 * read) and its checksum verified when a read needs it, a bad one failing
 * that read with KILN_DATA_LOSS. KILN_DATA_LOSS with err naming the file
 * and section when what open reads is corrupt or truncated, KILN_NOT_FOUND
 * when meta.json is missing. */
kiln_status kiln_block_open(kiln_objstore_t *s, const char *tenant, const char *ulid,
                            kiln_block_t **out, kiln_err *err);
/** True once a read of one of the block's sample chunks failed with
 * KILN_DATA_LOSS (missing, short, checksum, malformed; not a store that
 * did not answer): the block is damaged and should be quarantined; why
 * (may be NULL) gets the first failure. Thread-safe. */
bool kiln_block_damaged(const kiln_block_t *b, kiln_err *why);
/** Closes a block; NULL is a no-op. */
void kiln_block_close(kiln_block_t *b);

/** Bounds the bytes of the per-series sums (each series' samples summed per
 * stack node, which answer a query of the series' whole time range without
 * reading its chunk) that all open blocks of the process keep together
 * (default: no bound). A block opened past the bound, or a series summed
 * past it, keeps none: its queries read the chunks instead. Before blocks
 * open; any thread. */
void kiln_block_sums_budget(size_t bytes);
/** The bytes the open blocks' sums hold now. Any thread. */
size_t kiln_block_sums_bytes(void);

/** The block as a read-only head (owned by the block). */
kiln_head_t *kiln_block_head(kiln_block_t *b);
/** The block's meta (owned by the block). */
const Block__V1__BlockMeta *kiln_block_meta(const kiln_block_t *b);

/** True when name is "<tenant>/blocks/<ULID>/meta.json": *tenant_len gets
 * the length of its tenant part and ulid the ULID (NUL-terminated). */
bool kiln_block_meta_name(const char *name, size_t *tenant_len, char ulid[KILN_ULID_LEN + 1]);

/** Deletes a block's objects (meta.json first, so it is never half-open). */
kiln_status kiln_block_delete(kiln_objstore_t *s, const char *tenant, const char *ulid,
                              kiln_err *err);

#endif
