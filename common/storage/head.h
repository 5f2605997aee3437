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
    size_t bytes;        /* memory held: arrays, tables, arena (and a block's
                            per-series sums) */
    int64_t min_time_ms; /* 0 when empty */
    int64_t max_time_ms;
} kiln_head_stats_t;

/** Creates an empty head. */
kiln_head_t *kiln_head_create(void);
/** Frees a head and all it holds; NULL is a no-op. */
void kiln_head_destroy(kiln_head_t *h);

/** One normalised profile of one series, for kiln_head_append_batch: the
 * series' labels (sorted, validated, without per-type labels) and its
 * profile. One profile is stored per sample type under labels plus
 * __profile_type__, __type__, __unit__, __period_type__, __period_unit__
 * and __service_name__. Samples whose value for a type is zero, and samples
 * with an empty stack, are not stored (as Pyroscope). */
typedef struct kiln_head_part {
    const kiln_label_t *labels; /* sorted, validated, without per-type labels */
    size_t n_labels;
    const kiln_pprof_t *profile; /* its time_nanos is the profile time (0 = now) */
    uint64_t id;                 /* the push's profile id (0 = none) */
} kiln_head_part;

/** A stored series: a part's labels plus one sample type's labels, sorted,
 * and their fingerprint and tag (kiln_labels_fingerprint_tag): the head
 * knows a series by those 96 bits, without comparing its labels. */
typedef struct kiln_head_series_key {
    kiln_label_t *labels;
    size_t n_labels;
    uint64_t fp;
    uint32_t tag;
} kiln_head_series_key;

/** The stored series of each part, built once: keys[i][t] is part i's of
 * sample type t. A push's series are checked against the series limit and
 * then appended, and building them (type labels, profile type ID, sort,
 * fingerprint) for each was most of a small part's cost. Arrays and
 * strings in a (the caller's), or borrowed from the parts. Any thread. */
const kiln_head_series_key **kiln_head_series_keys(const kiln_head_part *parts, size_t n,
                                                   kiln_arena_t *a);

/** Appends every part, under one write lock: a push is
 * visible to queries whole or not at all. Consecutive parts whose profiles
 * share their symbol arrays (a push split by sample labels) intern those
 * symbols once. Never fails on validated, normalised profiles. Returns the
 * bytes the head grew by (its kiln_head_stats_t.bytes after, less before):
 * what the database adds to its byte budget. */
size_t kiln_head_append_batch(kiln_head_t *h, const kiln_head_part *parts, size_t n);
/** kiln_head_append_batch with the parts' stored series given (from
 * kiln_head_series_keys over the same parts). */
size_t kiln_head_append_keyed(kiln_head_t *h, const kiln_head_part *parts,
                              const kiln_head_series_key *const *keys, size_t n);

/** How many distinct stored series (one per part and sample type, as
 * kiln_head_append_batch stores them) neither h nor also (NULL = none)
 * holds: what appending parts would add to the two. Takes both read locks;
 * the parts are those kiln_head_append_batch takes. */
size_t kiln_head_new_series(kiln_head_t *h, kiln_head_t *also, const kiln_head_part *parts,
                            size_t n);
/** kiln_head_new_series with the parts' stored series given (from
 * kiln_head_series_keys over the same parts). */
size_t kiln_head_new_series_keyed(kiln_head_t *h, kiln_head_t *also, const kiln_head_part *parts,
                                  const kiln_head_series_key *const *keys, size_t n);

/** The number of stored series (unlike kiln_head_stats, without a scan). */
size_t kiln_head_n_series(kiln_head_t *h);

/** Copies every profile of src (a head or an opened block) into dst,
 * re-interning its symbols, stacks and series; a profile dst already holds
 * (same series, time and samples: a replica) is skipped. *copied gets the
 * number of profiles copied. KILN_DATA_LOSS with err when a chunk of a block
 * cannot be loaded: dst then holds part of src and must be discarded.
 * Compaction is merge_from over its source blocks. */
kiln_status kiln_head_merge_from(kiln_head_t *dst, kiln_head_t *src, size_t *copied, kiln_err *err);

/** The identity of a stored profile across replicas and blocks, the one
 * hash of it: its series' sorted labels, its time and its push id.
 * Queriers of a cluster count each key once; the database's held keys,
 * read filters (kiln_read_filter.keys) and compaction's replica check use
 * it too. */
uint64_t kiln_profile_key(const kiln_label_t *l, size_t n, int64_t time_ms, uint64_t id);

/** Counts of what the head holds. */
void kiln_head_stats(kiln_head_t *h, kiln_head_stats_t *out);

/** The head's one query: a read of the head (or opened block) under f,
 * delivered to v (read.h); the filter's keys, ids and spans apply to every
 * visitor kind (a profile or series with no sample in the spans is not
 * visited). Takes the read lock. KILN_DATA_LOSS with err when a chunk of a
 * block cannot be loaded (what was delivered must be discarded); the
 * cancellation statuses when the thread's token fires. */
kiln_status kiln_head_read(kiln_head_t *h, const kiln_read_filter *f, const kiln_read_visitor *v,
                           kiln_err *err);
#endif
