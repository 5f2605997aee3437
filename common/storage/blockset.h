/* SPDX-License-Identifier: Apache-2.0
 * blockset: the blocks of every tenant in an object store, as a reader sees
 * them: kiln_blockset_sync lists <tenant>/blocks/<ULID>/meta.json, opens new
 * blocks, drops deleted ones and ones superseded by a compacted block that
 * lists them as sources, and quarantines a corrupt block (logged once, the
 * rest keeps serving): one that does not open with KILN_DATA_LOSS or
 * KILN_INVALID_ARGUMENT, or one a query found damaged when it read a
 * sample chunk (kiln_block_damaged), which later queries skip at once and
 * the next sync closes. A block the store could not serve (an outage) is
 * tried again at the next sync, and a chunk it could not serve leaves the
 * block in place. Queries visit a tenant's blocks under a read lock,
 * so a sync never closes a block a query is reading. Thread-safe. */
#ifndef KILN_BLOCKSET_H
#define KILN_BLOCKSET_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "objstore.h"
#include "status.h"

typedef struct kiln_blockset kiln_blockset_t;

/** Creates an empty set over store (borrowed). */
kiln_blockset_t *kiln_blockset_create(kiln_objstore_t *store);
/** Closes every block and frees the set; NULL is a no-op. */
void kiln_blockset_destroy(kiln_blockset_t *bs);

/** Brings the set in line with the store. KILN_UNAVAILABLE when listing fails
 * (the set is unchanged then). */
kiln_status kiln_blockset_sync(kiln_blockset_t *bs, kiln_err *err);

/** Calls fn for every block of tenant (NULL = every tenant) whose time range
 * meets [start_ms, end_ms] (end_ms 0 = no bound), under the read lock. */
void kiln_blockset_each(kiln_blockset_t *bs, const char *tenant, int64_t start_ms, int64_t end_ms,
                        void (*fn)(void *ctx, const char *tenant, kiln_block_t *b), void *ctx);

/** The largest wal_until of tenant's blocks flushed by ingester `instance`
 * (0 if none): that ingester's WAL records of tenant in segments below it
 * are in blocks. */
uint64_t kiln_blockset_wal_until(kiln_blockset_t *bs, const char *instance, const char *tenant);

/** Number of blocks in the set, and of blocks quarantined since create. */
void kiln_blockset_counts(kiln_blockset_t *bs, size_t *blocks, size_t *quarantined);

#endif
