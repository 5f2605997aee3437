/* SPDX-License-Identifier: Apache-2.0
 * head: one tenant's in-memory profile store, the ingester's head block.
 * Symbols (strings, mappings, functions, locations) are de-duplicated;
 * every unique stack is stored once as a node of a location tree with parent
 * pointers; samples are columns (stack node, value) per stored profile. One
 * stored series per pprof sample type, labelled as Pyroscope labels it.
 * Thread-safe: appends take the write lock, queries the read lock. */
#ifndef KILN_HEAD_H
#define KILN_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "pprof.h"
#include "read.h"
#include "selector.h"
#include "status.h"
#include "tree.h"

typedef struct kiln_head kiln_head_t;

typedef struct kiln_head_stats {
    size_t series;
    size_t profiles;
    size_t samples;
    size_t stack_nodes;
    size_t locations;
    size_t strings;
    int64_t min_time_ms; /* 0 when empty */
    int64_t max_time_ms;
} kiln_head_stats_t;

/** Creates an empty head. */
kiln_head_t *kiln_head_create(void);
/** Frees a head and all it holds; NULL is a no-op. */
void kiln_head_destroy(kiln_head_t *h);

/** Appends a normalised profile of the series `labels` (sorted, validated,
 * without per-type labels). Stores one profile per sample type under labels
 * plus __profile_type__, __type__, __unit__, __period_type__,
 * __period_unit__ and __service_name__. Samples whose value for a type is
 * zero, and samples with an empty stack, are not stored (as Pyroscope). time_ns is the profile time
 * (0 = now). Returns KILN_OK; never fails on a validated, normalised profile. */
kiln_status kiln_head_append(kiln_head_t *h, const kiln_label_t *labels, size_t n,
                             const kiln_pprof_t *p, int64_t time_ns, kiln_err *err);

/** kiln_head_append with the push's profile id (a hash of the client's
 * profile id; 0 = none): compaction drops replicas by (series, time, id). */
kiln_status kiln_head_append_id(kiln_head_t *h, const kiln_label_t *labels, size_t n,
                                const kiln_pprof_t *p, int64_t time_ns, uint64_t id, kiln_err *err);

/** One normalised profile of one series, for kiln_head_append_batch. */
typedef struct kiln_head_part {
    const kiln_label_t *labels; /* sorted, validated, without per-type labels */
    size_t n_labels;
    const kiln_pprof_t *profile; /* its time_nanos is the profile time (0 = now) */
    uint64_t id;                 /* the push's profile id (0 = none) */
} kiln_head_part;

/** kiln_head_append_id of every part, under one write lock: a push is
 * visible to queries whole or not at all. Consecutive parts whose profiles
 * share their symbol arrays (a push split by sample labels) intern those
 * symbols once. Never fails on validated, normalised profiles. */
void kiln_head_append_batch(kiln_head_t *h, const kiln_head_part *parts, size_t n);

/** How many distinct stored series (one per part and sample type, as
 * kiln_head_append_batch stores them) neither h nor also (NULL = none)
 * holds: what appending parts would add to the two. Takes both read locks;
 * the parts are those kiln_head_append_batch takes. */
size_t kiln_head_new_series(kiln_head_t *h, kiln_head_t *also, const kiln_head_part *parts,
                            size_t n);

/** The number of stored series (unlike kiln_head_stats, without a scan). */
size_t kiln_head_n_series(kiln_head_t *h);

/** Called once per matching stored series with its sorted labels (valid only
 * during the call). */
typedef void (*kiln_head_series_fn)(void *ctx, const kiln_label_t *l, size_t n);

/** Visits the stored series that match sel (NULL = all) and have a profile
 * in [start_ms, end_ms] (end_ms 0 = no upper bound). */
void kiln_head_series(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                      kiln_head_series_fn fn, void *ctx);

/** Adds the samples of every matching profile in [start_ms, end_ms] to t,
 * expanding each location into its (inlined) function frames, root first. */
void kiln_head_merge_tree(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                          int64_t end_ms, kiln_tree_t *t);

/** Copies every profile of src (a head or an opened block) into dst,
 * re-interning its symbols, stacks and series; a profile dst already holds
 * (same series, time and samples: a replica) is skipped. *copied gets the
 * number of profiles copied. KILN_DATA_LOSS with err when a chunk of a block
 * cannot be loaded: dst then holds part of src and must be discarded.
 * Compaction is merge_from over its source blocks. */
kiln_status kiln_head_merge_from(kiln_head_t *dst, kiln_head_t *src, size_t *copied, kiln_err *err);

/** Called once per matching profile with its series' sorted labels (valid
 * only during the call), its time and the sum of its values. */
typedef void (*kiln_head_profile_fn)(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                                     int64_t total);

/** Visits every profile in [start_ms, end_ms] of the series matching sel,
 * without reading samples (time series are built from these totals). */
void kiln_head_profiles(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                        int64_t end_ms, kiln_head_profile_fn fn, void *ctx);

/** Like kiln_head_merge_tree, but only samples whose span id is in spans
 * (sorted ascending, n_spans of them; NULL = every sample): span profiles. */
void kiln_head_merge_spans(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                           int64_t end_ms, const uint64_t *spans, size_t n_spans, kiln_tree_t *t);

/** Like kiln_head_merge_spans, and only the profiles whose id (the push's
 * profile id given to kiln_head_append_id) is in ids (sorted ascending,
 * n_ids of them; NULL = every profile): profile_id_selector. */
void kiln_head_merge_ids(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                         int64_t end_ms, const uint64_t *spans, size_t n_spans, const uint64_t *ids,
                         size_t n_ids, kiln_tree_t *t);

/** The identity of a stored profile across replicas and blocks: a hash of
 * its series' sorted labels, its time and its push id. Queriers of a
 * cluster count each key once. */
uint64_t kiln_head_profile_key(const kiln_label_t *l, size_t n, int64_t time_ms, uint64_t id);

/** Like kiln_head_profile_fn, with the profile's push id. */
typedef void (*kiln_head_profile_id_fn)(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                                        int64_t total, uint64_t id);

/** kiln_head_profiles with each profile's push id. */
void kiln_head_profiles_id(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                           int64_t end_ms, kiln_head_profile_id_fn fn, void *ctx);

/** What a merge keeps: the profiles whose kiln_head_profile_key is in keys
 * (ascending; keys NULL = every profile) and whose push id is in ids
 * (ascending; NULL = any: profile_id_selector), and of those the samples
 * whose span id is in spans (ascending; spans NULL = every sample). */
typedef struct kiln_head_filter {
    const uint64_t *keys;
    size_t n_keys;
    const uint64_t *spans;
    size_t n_spans;
    const uint64_t *ids;
    size_t n_ids;
} kiln_head_filter;

/** kiln_head_merge_tree under a filter (NULL = none). */
void kiln_head_merge_filtered(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                              int64_t end_ms, const kiln_head_filter *f, kiln_tree_t *t);

/** Counts of what the head holds. */
void kiln_head_stats(kiln_head_t *h, kiln_head_stats_t *out);

/** One read of the head (or opened block) under f, delivered to v
 * (read.h). KILN_DATA_LOSS with err when a chunk of a block cannot be
 * loaded; the cancellation statuses when the thread's token fires. */
kiln_status kiln_head_read(kiln_head_t *h, const kiln_read_filter *f, const kiln_read_visitor *v,
                           kiln_err *err);
#endif
