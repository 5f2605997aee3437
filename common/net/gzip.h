/* SPDX-License-Identifier: Apache-2.0
 * gzip: gzip detection, capped decompression (gzip bombs stop at the cap)
 * and compression, on libdeflate. Thread-safe: a thread's decompressions
 * share its own libdeflate state (kept until the thread ends), each
 * compression has one of its own. */
#ifndef KILN_GZIP_H
#define KILN_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "inflight.h"
#include "status.h"

/** True when data starts with the gzip magic 1f 8b. */
bool kiln_gzip_is(const uint8_t *data, size_t len);

/** Decompresses gzip data into arena memory, refusing output past max bytes:
 * kiln_gunzip_budget without a budget. */
kiln_status kiln_gunzip(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max, uint8_t **out,
                        size_t *out_len, kiln_err *err);

/** kiln_gunzip_maybe_budget without a budget. */
kiln_status kiln_gunzip_maybe(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                              const uint8_t **out, size_t *out_len, kiln_err *err);

/** Decompresses gzip data into arena memory, refusing output past max bytes.
 * Each output buffer is reserved from budget (borrowed; NULL = none) until
 * the arena goes. KILN_INVALID_ARGUMENT for corrupt or truncated data;
 * KILN_OUT_OF_RANGE ("too large", never retryable; message naming the
 * limit) past max or the arena's cap; the budget's statuses (see
 * kiln_inflight_reserve: KILN_RESOURCE_EXHAUSTED when busy). Writes *out
 * and *out_len only on OK. */
kiln_status kiln_gunzip_budget(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                               kiln_inflight_t *budget, uint8_t **out, size_t *out_len,
                               kiln_err *err);

/** If data is gzip, decompresses it (as kiln_gunzip); otherwise returns it as
 * is, KILN_OUT_OF_RANGE when longer than max. */
kiln_status kiln_gunzip_maybe_budget(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                                     kiln_inflight_t *budget, const uint8_t **out, size_t *out_len,
                                     kiln_err *err);

/** Appends the gzip compression of data to out (level 1-12); false past out's max. */
bool kiln_gzip(const void *data, size_t len, int level, kiln_buf *out);

#endif
