/* SPDX-License-Identifier: Apache-2.0
 * read: the one way stored profiles are read, the same over a head, an
 * opened block, a tenant's database and the ingester interface (store.h).
 * A read names what it wants with a filter and receives it through a
 * visitor; it returns a status: a chunk that cannot be loaded is
 * KILN_DATA_LOSS to the caller (never a logged skip and a partial answer
 * called whole), a read cancelled through the calling thread's token
 * (cancel.h) is KILN_CANCELLED or KILN_DEADLINE_EXCEEDED. Build both with
 * designated initialisers; a zero field means "no constraint". */
#ifndef KILN_READ_H
#define KILN_READ_H
#include <stddef.h>
#include <stdint.h>
#include "labels.h"
#include "selector.h"
#include "status.h"
#include "tree.h"

/** Which profiles, and which of their samples, a read covers. */
typedef struct kiln_read_filter {
    const kiln_selector_t *sel; /* series matchers (NULL = every series) */
    int64_t start_ms;           /* profile time range, inclusive */
    int64_t end_ms;             /* 0 = no upper bound */
    /* Each set below is sorted ascending; NULL = no constraint. */
    const uint64_t *keys; /* profile identities (kiln_profile_key) */
    size_t n_keys;
    const uint64_t *ids; /* push ids: profile_id_selector */
    size_t n_ids;
    const uint64_t *spans; /* span ids: samples of these spans only */
    size_t n_spans;
} kiln_read_filter;

/** One stored profile as a read reports it: its series' sorted labels
 * (valid only during the call), time, the sum of its values under the
 * filter's spans, and the push id (0 = none). */
typedef struct kiln_read_profile {
    const kiln_label_t *labels;
    size_t n_labels;
    int64_t time_ms;
    int64_t total;
    uint64_t id;
} kiln_read_profile;

/** What a read delivers: exactly one of the three is set.
 * - series: once per matching stored series (a series with a profile in
 *   the range), with its sorted labels valid only during the call;
 * - profile: once per matching profile, without reading samples;
 * - tree: the samples of every matching profile are added to it, each
 *   location expanded into its (inlined) function frames, root first. */
typedef struct kiln_read_visitor {
    void (*series)(void *ctx, const kiln_label_t *l, size_t n);
    void (*profile)(void *ctx, const kiln_read_profile *p);
    kiln_tree_t *tree;
    void *ctx;
} kiln_read_visitor;
#endif
