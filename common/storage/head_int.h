/* SPDX-License-Identifier: Apache-2.0
 * head_int: the head's representation, shared by the head's files (head.c,
 * head_intern.c, head_read.c, head_bytes.c) and block.c (which writes a
 * head as an immutable block and opens a block as a read-only head). Not
 * part of any other module's contract. */
#ifndef KILN_HEAD_INT_H
#define KILN_HEAD_INT_H

#include <pthread.h>

#include "head.h"
#include "hash_index.h"

#define KILN_HEAD_NONE UINT32_MAX

typedef struct hstr {
    const char *ptr;
    uint32_t len;
} hstr;
/* Interned records are hashed and compared as raw bytes, so none may have
 * padding: every field is 64 bits or they pair up to 64. */
typedef struct hfunc {
    uint32_t name, system_name, filename, pad;
    int64_t start_line;
} hfunc;
typedef struct hmap {
    uint64_t start, limit, offset;
    uint32_t filename, build_id;
} hmap;
typedef struct hline {
    uint32_t func, pad;
    int64_t line;
} hline;
_Static_assert(sizeof(hfunc) == 24 && sizeof(hline) == 16 && sizeof(hmap) == 32,
               "interned records must have no padding");
typedef struct hloc {
    uint32_t mapping;
    uint64_t address;
    uint32_t line_off, n_lines;
} hloc;
typedef struct hseries {
    kiln_label_t *labels;
    uint32_t n_labels;
    uint32_t *profiles;
    size_t n_profiles, cap_profiles;
    int64_t min_ms, max_ms;
} hseries;
typedef struct hprofile {
    uint32_t series;
    uint32_t n; /* samples */
    int64_t time_ms;
    size_t off;    /* first sample (in a block: within the series chunk) */
    int64_t total; /* sum of the values, so time series never read samples */
    uint64_t id;   /* the push's profile id (hash of RawSample.ID; 0 = none) */
} hprofile;

/* Whether a profile time falls in a query window [start_ms, end_ms]
 * (end_ms 0 = no end). */
static inline bool kiln_head__in_range(int64_t t, int64_t start_ms, int64_t end_ms)
{
    return t >= start_ms && (end_ms == 0 || t <= end_ms);
}

/* The sample columns of samples [0, n): stack node and value, and, when
 * any sample has one, the span id (0 = none) and the trace (0 = none, else
 * 1 + an index into traces). A head's columns point into the head; a block
 * chunk's are malloc'd (kiln_head__cols_free). */
typedef struct hcols {
    uint32_t *node;
    int64_t *value;
    uint64_t *span;
    uint32_t *trace;
    kiln_trace_id *traces;
    size_t n_traces;
} hcols;

/** Frees columns a loader returned. */
void kiln_head__cols_free(hcols *c);

/* Loads the samples of series `series` of a block-backed head into *out:
 * the samples of every profile in [start_ms, end_ms]
 * (kiln_head__in_range), profile p's at [p.off, p.off + p.n); the slots of
 * other profiles are left unset, their bytes skipped rather than decoded
 * (a query straddling a block reads half of it). Span and trace columns
 * are NULL when the series has none. */
typedef kiln_status (*kiln_head__loader)(void *ctx, uint32_t series, int64_t start_ms,
                                         int64_t end_ms, hcols *out, kiln_err *err);

struct kiln_head {
    pthread_rwlock_t lock;
    kiln_arena_t *mem;
    hstr *strs;
    size_t n_strs, cap_strs;
    kiln_hash_index str_idx;
    hfunc *funcs;
    size_t n_funcs, cap_funcs;
    kiln_hash_index func_idx;
    hmap *maps;
    size_t n_maps, cap_maps;
    kiln_hash_index map_idx;
    hloc *locs;
    size_t n_locs, cap_locs;
    kiln_hash_index loc_idx;
    hline *lines;
    size_t n_lines, cap_lines;
    uint32_t *node_parent, *node_loc;
    size_t n_nodes, cap_nodes, cap_nodes2;
    /* (parent, location) -> child, with the key in the slot: the hottest
     * lookup of an append (once per frame per sample) costs one cache line. */
    struct nslot *nodes_idx;
    size_t nodes_cap;
    /* Whole stacks (location ids, leaf first) -> their leaf node: a stack
     * appended before costs one hash of its ids and one probe, instead of
     * one nodes_idx probe per frame scattered over a table that outgrows
     * the caches on deep, wide profiles. A stack is known by its 128-bit
     * hash and depth, not confirmed by a walk up the tree (a cache miss
     * per frame, the largest cost of the lookup): two of the 2^32 stacks
     * a head can hold share a hash with odds under 2^-64, and a tenant
     * crafting collisions would only misfile its own samples, as each
     * tenant has its own head. One entry per distinct stack appended, so
     * it is bounded by the nodes. */
    struct sslot *stacks;
    size_t stacks_cap, n_stacks;
    hseries *series;
    size_t n_series, cap_series;
    kiln_hash_index series_idx;
    /* Postings: for each label pair, the series that have it, ascending. */
    struct hpost *posts;
    size_t n_posts, cap_posts;
    kiln_hash_index post_idx;
    hprofile *profiles;
    size_t n_profiles, cap_profiles;
    uint32_t *s_node;
    size_t cap_s_node;
    int64_t *s_value;
    size_t n_samples, cap_s_value;
    /* Per-sample span ids (0 = none), parallel to s_node once any sample
     * of the head had one (span profiles); NULL before. */
    uint64_t *s_span;
    size_t cap_s_span;
    /* Per-sample traces (0 = none, else 1 + an index into traces), parallel
     * to s_node once any sample of the head had a trace id; NULL before.
     * Each distinct trace id is kept once: a trace spans many samples. */
    uint32_t *s_trace;
    size_t cap_s_trace;
    kiln_trace_id *traces;
    size_t n_traces, cap_traces;
    kiln_hash_index trace_idx;
    kiln_head__loader loader; /* set for a block opened read-only; samples live there */
    void *loader_ctx;
    /* Blocks are immutable, so a series' samples summed per stack node over
     * all its profiles can be kept: a query covering the series' whole time
     * range (most of a long query's blocks) adds these instead of decoding
     * every profile. Built on first use, under agg_mu. */
    pthread_mutex_t agg_mu;
    struct hagg **agg;   /* per series, NULL until built */
    size_t agg_reserved; /* of the process's sums budget (kiln_block_sums_budget) */
    /* Bytes of the series' profile lists and the postings' id lists,
     * counted as they grow (kiln_head__grow_small): kiln_head__bytes adds
     * them without visiting every series. */
    size_t small_bytes;
};

typedef struct hpost {
    const char *name, *value; /* interned */
    uint32_t *ids;
    size_t n, cap;
} hpost;

typedef struct nslot {
    uint64_t key; /* parent << 32 | location; 0 = empty (node 0 is never a child) */
    uint32_t id;
    uint32_t pad;
} nslot;

/* A stack's identity: XXH3-128 of its location ids. */
typedef struct stack_id {
    uint64_t lo, hi;
} stack_id;

typedef struct sslot {
    stack_id hash;
    uint32_t node; /* its leaf; 0 = empty slot (an empty stack is never cached) */
    uint32_t depth;
} sslot;

typedef struct hagg {
    uint32_t n;
    uint32_t *node;
    int64_t *value;
} hagg;

/** The bytes h holds (head_bytes.c): arrays, tables and arena by their
 * capacity, with malloc's overhead. O(1). A lock of h held. */
size_t kiln_head__bytes(const kiln_head_t *h);
/** The bytes of the per-series sums a block keeps (agg): O(series), takes
 * agg_mu; 0 for a head taking appends. */
size_t kiln_head__agg_bytes(kiln_head_t *h);
/** Frees one series' sums; NULL is a no-op. */
void kiln_head__hagg_free(hagg *g);
/** The bytes of one series' sums, g. */
size_t kiln_head__hagg_bytes(const hagg *g);
/** The bytes of the per-series pointer array of h's sums. */
size_t kiln_head__agg_array_bytes(const kiln_head_t *h);
/** Takes n bytes from the process's budget for blocks' sums; false (and
 * nothing taken) when they do not fit. Any thread. */
bool kiln_head__sums_reserve(size_t n);
/** Gives back n bytes taken by kiln_head__sums_reserve. */
void kiln_head__sums_release(size_t n);
/** KILN_GROW of a small per-series or per-pair array of h, counted in
 * h->small_bytes. Write lock held. */
void kiln_head__grow_small(kiln_head_t *h, void **a, size_t *cap, size_t need, size_t elem);

/* head_intern.c: the symbol tables, the stack tree and cache. Write lock
 * held. */

/** Interns a string; returns its id. */
uint32_t kiln_head__intern_str(kiln_head_t *h, const char *p, size_t len);
/** Interns a NUL-terminated string; returns the head's copy. */
const char *kiln_head__intern_cstr(kiln_head_t *h, const char *s);
/** Interns a function, mapping, location (with its lines) or stack node. */
uint32_t kiln_head__intern_func(kiln_head_t *h, const hfunc *f);
uint32_t kiln_head__intern_map(kiln_head_t *h, const hmap *m);
uint32_t kiln_head__intern_loc(kiln_head_t *h, hloc *l, const hline *lines);
uint32_t kiln_head__stack_child(kiln_head_t *h, uint32_t parent, uint32_t loc);

/** A profile's indices translated into head ids (NONE: not yet). */
typedef struct hxlate {
    uint32_t *str, *map, *func, *loc;
} hxlate;
/** Translates every mapping, function and location of p into x (its
 * arrays sized to p's tables, NONE-filled); tmp holds scratch. */
void kiln_head__translate_symbols(kiln_head_t *h, hxlate *x, const kiln_pprof_t *p,
                                  kiln_arena_t *tmp);
/** The stack node of each sample of p (x translated its locations), in
 * tmp, through the stack cache. */
uint32_t *kiln_head__sample_nodes(kiln_head_t *h, const hxlate *x, const kiln_pprof_t *p,
                                  kiln_arena_t *tmp);

/* head.c */

/** Interns a series by its sorted labels (copied). */
uint32_t kiln_head__intern_series(kiln_head_t *h, const kiln_label_t *l, size_t n);
/** Adds series sid to the postings of each of its label pairs (after the
 * series is interned or read from a block). */
void kiln_head__post_series(kiln_head_t *h, uint32_t sid);
/** The series worth testing against sel: the shortest postings list of its
 * equality matchers, or every series (*all). Lock held. */
const uint32_t *kiln_head__candidates(const kiln_head_t *h, const kiln_selector_t *sel, size_t *n,
                                      bool *all);

/** Interns a trace id (not zero); returns 1 + its index in h->traces. */
uint32_t kiln_head__intern_trace(kiln_head_t *h, kiln_trace_id t);

/** Adds a profile of series sid with samples c->...[0, n) (node ids of h,
 * values, span ids or NULL, traces or NULL: indices into c->traces,
 * interned here). Samples with an empty stack (node 0) are not stored but
 * count in the profile's total, as in Pyroscope's series; so does
 * unstored, the part of a copied profile's total no stored sample holds. */
void kiln_head__add_profile(kiln_head_t *h, uint32_t sid, int64_t time_ms, uint64_t id,
                            const hcols *c, size_t n, int64_t unstored);

#endif
