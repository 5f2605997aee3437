/* SPDX-License-Identifier: Apache-2.0
 * inflight: a process-wide budget of in-flight decompressed request bytes
 * (-server.max-inflight-bytes). Decompression reserves from it before it
 * inflates, and the reservation is released when the request's arena goes,
 * so N parallel gzip bombs hold at most the budget, not N x the size cap.
 * One budget per process, created in main and borrowed by the servers;
 * thread-safe (one atomic counter). */
#ifndef KILN_INFLIGHT_H
#define KILN_INFLIGHT_H

#include <stddef.h>

#include "arena.h"
#include "status.h"

typedef struct kiln_inflight kiln_inflight_t;

/** Creates a budget of cap bytes (0 = unlimited: reservations always pass). */
kiln_inflight_t *kiln_inflight_create(size_t cap);
/** Frees it; NULL is a no-op. Every reservation must have been released. */
void kiln_inflight_destroy(kiln_inflight_t *b);

/** Reserves n bytes until arena a is destroyed or reset. b NULL always
 * passes. KILN_RESOURCE_EXHAUSTED (retryable: others hold the budget now)
 * when the budget cannot take n more bytes at the moment;
 * KILN_OUT_OF_RANGE (never retryable: the request alone is larger than the
 * whole budget). Both with a message naming -server.max-inflight-bytes. */
kiln_status kiln_inflight_reserve(kiln_inflight_t *b, size_t n, kiln_arena_t *a, kiln_err *err);

/** Bytes reserved now. */
size_t kiln_inflight_used(const kiln_inflight_t *b);
/** Requests refused so far for lack of budget. */
size_t kiln_inflight_refused(const kiln_inflight_t *b);

#endif
