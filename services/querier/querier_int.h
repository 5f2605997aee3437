/* SPDX-License-Identifier: Apache-2.0
 * querier_int: what the querier's files share (querier.c: metadata and
 * flame graphs; timeseries.c: SelectSeries; pprof_out.c: SelectMergeProfile). */
#ifndef KILN_QUERIER_INT_H
#define KILN_QUERIER_INT_H

#include "overrides.h"
#include "querier.h"
#include "read.h"
#include "store.h"
#include "google/v1/profile.pb-c.h"
#include "types/v1/types.pb-c.h"
#include "selector.h"
#include "tree.h"

struct kiln_querier {
    kiln_store_t store;       /* where profiles are read (its state borrowed) */
    kiln_overrides_t *limits; /* borrowed; may be NULL (no query limits) */
};

/** Called once per matching series with its sorted labels (valid only
 * during the call). */
typedef void (*kiln_querier__series_fn)(void *arg, const kiln_label_t *l, size_t n);
/** Called once per matching profile (valid only during the call). */
typedef void (*kiln_querier__profile_fn)(void *arg, const kiln_read_profile *p);
typedef void (*kiln_querier__span_fn)(void *arg, const kiln_read_span *s);

/** Applies the tenant's query limits to a Select* range: *start is raised
 * to the lookback limit; a range longer than max_query_length is
 * KILN_INVALID_ARGUMENT naming the limit. Also checks start <= end, both set. */
kiln_status kiln_querier__limit_range(const kiln_querier_t *q, kiln_rpc_ctx *ctx, int64_t *start,
                                      int64_t end);

/** The selector of a Select* request: label_selector (empty = all) plus
 * __profile_type__=type_id (a ":delta" suffix tolerated). Owned by the
 * request arena. KILN_INVALID_ARGUMENT for a bad selector or no type. */
kiln_status kiln_querier__selector(const char *type_id, const char *label_selector,
                                   kiln_rpc_ctx *ctx, kiln_selector_t **out);

/** The profiles matching f (selector, range, spans, ids) merged into a new
 * tree (*out, the caller destroys it); nothing is allocated on failure. */
kiln_status kiln_querier__read_merge(kiln_querier_t *q, kiln_rpc_ctx *ctx,
                                     const kiln_read_filter *f, kiln_tree_t **out);

/** Visits every matching profile once (labels, time, total, id). */
kiln_status kiln_querier__profiles(kiln_querier_t *q, kiln_rpc_ctx *ctx, const kiln_selector_t *sel,
                                   int64_t start, int64_t end, kiln_querier__profile_fn fn,
                                   void *arg);

/** Visits every (span, trace) of every matching profile whose samples
 * carry span ids, with its sum (read.h's span visitor). */
kiln_status kiln_querier__spans(kiln_querier_t *q, kiln_rpc_ctx *ctx, const kiln_selector_t *sel,
                                int64_t start, int64_t end, kiln_querier__span_fn fn, void *arg);

/** Visits every matching series (possibly more than once). */
kiln_status kiln_querier__series(kiln_querier_t *q, const char *tenants, const kiln_selector_t *sel,
                                 int64_t start, int64_t end, kiln_querier__series_fn fn, void *arg,
                                 kiln_err *err);
/** The selection of a SelectMergeStacktraces request (also a Diff side)
 * merged into a new tree *out the caller destroys: range limits, selector,
 * span_selector, trace_id_selector, profile_id_selector, then
 * stack_trace_selector's call site. Statuses as the request's checks fail;
 * nothing is allocated then. */
kiln_status kiln_querier__merge(kiln_querier_t *q, kiln_rpc_ctx *ctx,
                                const Querier__V1__SelectMergeStacktracesRequest *req,
                                kiln_tree_t **out);

/** The stored ids of profile_id_selector's client profile ids (as the
 * distributor hashes them: kiln_profile_id_key per tenant of ctx->tenant),
 * and a selector of exactly 16 lowercase hex digits also as the stored id
 * itself (how exemplars name profiles), sorted, in the request arena.
 * KILN_INVALID_ARGUMENT for an empty id. */
kiln_status kiln_querier__profile_ids(char **sel, size_t n, kiln_rpc_ctx *ctx, uint64_t **out,
                                      size_t *n_out);

/** The trace ids of a trace_id_selector (exactly 32 hex digits each, as
 * Pyroscope takes them), sorted, in the request arena; *out stays NULL
 * when n is 0. KILN_INVALID_ARGUMENT for any other form. */
kiln_status kiln_querier__trace_ids(char **sel, size_t n, kiln_rpc_ctx *ctx, kiln_trace_id **out);

/** A span id or trace id as exemplars write it: 16 or 32 lowercase hex
 * digits (the form span_selector and trace_id_selector take back), in
 * the arena. */
char *kiln_querier__span_hex(uint64_t span, kiln_arena_t *a);
char *kiln_querier__trace_hex(kiln_trace_id t, kiln_arena_t *a);

/** SelectSeries (timeseries.c). */
kiln_status kiln_querier__select_series(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        ProtobufCMessage **resp);

/** The step (0-based) of a profile at t when steps of step_ms (>= 1) start
 * at start: the first boundary at or after t, as Pyroscope places it; any
 * int64 range, no overflow. */
uint64_t kiln_querier__step_of(int64_t start, int64_t t, int64_t step_ms);
/** A request's step (s) in whole ms, at least 1 and at most 1e15. */
int64_t kiln_querier__step_ms(double step);
/** Steps of step_ms (>= 1) in [start, end] (start <= end). */
uint64_t kiln_querier__n_steps(int64_t start, int64_t end, int64_t step_ms);
/** Where SelectSeries reads from: one step before start (saturating), so
 * the first point covers the step before start as Pyroscope's does. */
int64_t kiln_querier__series_from(int64_t start, int64_t step_ms);
/** The time of step i (< kiln_querier__n_steps) of steps from start. */
int64_t kiln_querier__step_time(int64_t start, uint64_t i, int64_t step_ms);

/** Diff (diff.c); also called by /pyroscope/render-diff (render.c). */
kiln_status kiln_querier__diff(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                               ProtobufCMessage **resp);

/** The stacks of t through sel's call site (root first): a new tree the
 * caller destroys; NULL past the arena cap (focus.c). */
kiln_tree_t *kiln_querier__focus(const kiln_tree_t *t, const Types__V1__StackTraceSelector *sel,
                                 kiln_arena_t *a);

/** AnalyzeQuery and SelectHeatmap (analyze.c). */
kiln_status kiln_querier__analyze_query(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                        ProtobufCMessage **resp);
kiln_status kiln_querier__select_heatmap(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                                         ProtobufCMessage **resp);

/** SelectMergeProfile (pprof_out.c). */
kiln_status kiln_querier__select_merge_profile(void *svc, kiln_rpc_ctx *ctx,
                                               const ProtobufCMessage *msg,
                                               ProtobufCMessage **resp);

/** The merged tree as a pprof profile of type type_id over [start, end]
 * (ms), allocated in a; NULL past the arena cap. */
Google__V1__Profile *kiln_querier__pprof(const kiln_tree_t *tree, const char *type_id,
                                         int64_t start, int64_t end, kiln_arena_t *a);

/** Appends the Graphviz dot call graph of a flame graph of type type_id
 * (pprof's layout, as /pyroscope/render?format=dot draws it) to out;
 * nothing when the graph is empty (render.c). */
void kiln_querier__dot(const Querier__V1__FlameGraph *fg, const char *type_id, kiln_arena_t *a,
                       kiln_buf *out);

/** Checks a Select* time range: both set, start <= end. */
kiln_status kiln_querier__check_range(int64_t start, int64_t end, kiln_err *err);

#endif
