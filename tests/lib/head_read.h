/* SPDX-License-Identifier: Apache-2.0
 * head_read: unit-test shorthands over the storage read API: append one
 * profile (kiln_head_append_batch) and read a head or an opened block
 * (kiln_head_read) with positional arguments (head_append.h). Each read asserts KILN_OK
 * unless the caller wants the status. Header-only, for tests. */
#ifndef KILN_TEST_HEAD_READ_H
#define KILN_TEST_HEAD_READ_H

#include "check.h"
#include "head_append.h"
#include "head.h"
#include "read.h"

/* A tree read under spans and ids (NULL = none); its status. */
static inline kiln_status check_head_merge_st(kiln_head_t *h, const kiln_selector_t *sel,
                                              int64_t start_ms, int64_t end_ms,
                                              const uint64_t *spans, size_t n_spans,
                                              const uint64_t *ids, size_t n_ids, kiln_tree_t *t)
{
    kiln_read_filter f = {.sel = sel,
                          .start_ms = start_ms,
                          .end_ms = end_ms,
                          .spans = spans,
                          .n_spans = n_spans,
                          .ids = ids,
                          .n_ids = n_ids};
    kiln_read_visitor v = {.tree = t};
    return kiln_head_read(h, &f, &v, NULL);
}

static inline void check_head_merge(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                                    int64_t end_ms, kiln_tree_t *t)
{
    CHECK(check_head_merge_st(h, sel, start_ms, end_ms, NULL, 0, NULL, 0, t) == KILN_OK);
}

static inline void check_head_merge_spans(kiln_head_t *h, const kiln_selector_t *sel,
                                          int64_t start_ms, int64_t end_ms, const uint64_t *spans,
                                          size_t n_spans, kiln_tree_t *t)
{
    CHECK(check_head_merge_st(h, sel, start_ms, end_ms, spans, n_spans, NULL, 0, t) == KILN_OK);
}

static inline void check_head_merge_ids(kiln_head_t *h, const kiln_selector_t *sel,
                                        int64_t start_ms, int64_t end_ms, const uint64_t *spans,
                                        size_t n_spans, const uint64_t *ids, size_t n_ids,
                                        kiln_tree_t *t)
{
    CHECK(check_head_merge_st(h, sel, start_ms, end_ms, spans, n_spans, ids, n_ids, t) == KILN_OK);
}

static inline void check_head_series(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                                     int64_t end_ms,
                                     void (*fn)(void *ctx, const kiln_label_t *l, size_t n),
                                     void *ctx)
{
    kiln_read_filter f = {.sel = sel, .start_ms = start_ms, .end_ms = end_ms};
    kiln_read_visitor v = {.series = fn, .ctx = ctx};
    CHECK(kiln_head_read(h, &f, &v, NULL) == KILN_OK);
}

/* A profile read delivering kiln_read_profile to fn. */
static inline void check_head_profiles(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                                       int64_t end_ms,
                                       void (*fn)(void *ctx, const kiln_read_profile *p), void *ctx)
{
    kiln_read_filter f = {.sel = sel, .start_ms = start_ms, .end_ms = end_ms};
    kiln_read_visitor v = {.profile = fn, .ctx = ctx};
    CHECK(kiln_head_read(h, &f, &v, NULL) == KILN_OK);
}
#endif
