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

/** A 128-bit trace id (OpenTelemetry's, 32 hex digits as written): hi
 * holds the first 16 digits; all zero = none. */
typedef struct kiln_trace_id {
    uint64_t hi, lo;
} kiln_trace_id;

/** Orders trace ids (hi, then lo), for sorted trace sets. */
static inline int kiln_trace_id_cmp(const kiln_trace_id *a, const kiln_trace_id *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

/** Writes t as 16 bytes, big endian (how blocks and the wire carry it). */
static inline void kiln_trace_id_put(const kiln_trace_id *t, uint8_t b[16])
{
    for (int k = 0; k < 8; k++) {
        b[k] = (uint8_t)(t->hi >> (56 - 8 * k));
        b[8 + k] = (uint8_t)(t->lo >> (56 - 8 * k));
    }
}

/** Reads 16 bytes written by kiln_trace_id_put. */
static inline kiln_trace_id kiln_trace_id_get(const uint8_t b[16])
{
    kiln_trace_id t = {0, 0};
    for (int k = 0; k < 8; k++) {
        t.hi = t.hi << 8 | b[k];
        t.lo = t.lo << 8 | b[8 + k];
    }
    return t;
}

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
    const kiln_trace_id *traces; /* trace ids: samples of these traces only
                                    (ascending by kiln_trace_id_cmp) */
    size_t n_traces;
} kiln_read_filter;

/** One stored profile as a read reports it: its series' sorted labels
 * (valid only during the call), time, the sum of its values under the
 * filter's spans and traces, and the push id (0 = none). */
typedef struct kiln_read_profile {
    const kiln_label_t *labels;
    size_t n_labels;
    int64_t time_ms;
    int64_t total;
    uint64_t id;
} kiln_read_profile;

/** One span of one stored profile as a span read reports it: the
 * profile's series labels (valid only during the call), time and push id,
 * the span id and its trace id (zero when the samples carried none), and
 * the sum of the profile's samples of that span under the filter. */
typedef struct kiln_read_span {
    const kiln_label_t *labels;
    size_t n_labels;
    int64_t time_ms;
    uint64_t id;
    uint64_t span;
    kiln_trace_id trace;
    int64_t total;
} kiln_read_span;

/** What a read delivers: exactly one of the four is set (a tree read may
 * add `merged`).
 * - series: once per matching stored series (a series with a profile in
 *   the range), with its sorted labels valid only during the call;
 * - profile: once per matching profile, without reading samples;
 * - tree: the samples of every matching profile are added to it, each
 *   location expanded into its (inlined) function frames, root first;
 * - span: once per (span, trace) of every matching profile whose samples
 *   carry a span id (span profiles), in no particular order; samples
 *   without a span id are not reported. */
typedef struct kiln_read_visitor {
    void (*series)(void *ctx, const kiln_label_t *l, size_t n);
    void (*profile)(void *ctx, const kiln_read_profile *p);
    void (*span)(void *ctx, const kiln_read_span *s);
    kiln_tree_t *tree;
    void *ctx;
    /* Tree reads of a head, a block or a database, optional: called in the
     * same pass, under the same locks, with the key (kiln_profile_key) of
     * each profile the read took by range, ids and keys (whether or not
     * its spans and traces kept samples), so the tree holds exactly the
     * samples of the profiles reported. A profile held twice (a head and
     * the block written from it) may be reported twice. The remote store
     * does not call it. */
    void (*merged)(void *ctx, uint64_t key);
} kiln_read_visitor;
#endif
