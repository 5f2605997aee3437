/* SPDX-License-Identifier: Apache-2.0
 * head_bytes: what a head holds in memory, counted from the capacities of
 * its arrays, hash tables and arena (kiln_head_stats_t.bytes, and what the
 * database's byte budget adds up). */
#include "head_int.h"

#include <stdlib.h>

#include "arena.h"
#include "block.h" /* kiln_block_sums_*: the sums are the blocks', kept here with their count */
#include "xmalloc.h"

/* What malloc adds to each block (glibc: a size word, the size rounded up
 * to 16): it matters for the small arrays of each series and label pair,
 * which a head has hundreds of thousands of. */
#define MALLOC_OVERHEAD 16

static size_t arr(size_t cap, size_t elem)
{
    return cap == 0 ? 0 : cap * elem + MALLOC_OVERHEAD;
}

static size_t index_bytes(const kiln_hash_index *x)
{
    return arr(x->cap, sizeof(kiln_hash_index_slot));
}

/* The capacities, not the lengths, are counted: an array doubled is
 * allocated whole, and counting what may not be resident yet (the tail of
 * a large array not written) errs on the side of a lower RSS. The
 * per-series profile lists and per-pair postings are counted as they grow
 * (small_bytes), so this stays O(1) and an append can afford it. The
 * per-series sums of a block opened read-only (agg) are counted apart
 * (kiln_head__agg_bytes): only heads taking appends, which have none,
 * count against the budget. */
size_t kiln_head__bytes(const kiln_head_t *h)
{
    size_t b = sizeof(*h) + MALLOC_OVERHEAD + kiln_arena_footprint(h->mem) + h->small_bytes;
    b += arr(h->cap_strs, sizeof(hstr)) + arr(h->cap_funcs, sizeof(hfunc)) +
         arr(h->cap_maps, sizeof(hmap)) + arr(h->cap_locs, sizeof(hloc)) +
         arr(h->cap_lines, sizeof(hline));
    b += arr(h->cap_nodes, sizeof(uint32_t)) + arr(h->cap_nodes2, sizeof(uint32_t)) +
         arr(h->nodes_cap, sizeof(nslot)) + arr(h->stacks_cap, sizeof(sslot));
    b += arr(h->cap_series, sizeof(hseries)) + arr(h->cap_posts, sizeof(hpost)) +
         arr(h->cap_profiles, sizeof(hprofile));
    b += arr(h->cap_s_node, sizeof(uint32_t)) + arr(h->cap_s_value, sizeof(int64_t)) +
         arr(h->cap_s_span, sizeof(uint64_t)) + arr(h->cap_s_trace, sizeof(uint32_t)) +
         arr(h->cap_traces, sizeof(kiln_trace_id));
    const kiln_hash_index *idx[] = {&h->str_idx,    &h->func_idx, &h->map_idx,  &h->loc_idx,
                                    &h->series_idx, &h->post_idx, &h->trace_idx};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        b += index_bytes(idx[i]);
    return b;
}

void kiln_head__grow_small(kiln_head_t *h, void **a, size_t *cap, size_t need, size_t elem)
{
    size_t old = *cap;
    kiln_grow(a, cap, need, elem);
    h->small_bytes += arr(*cap, elem) - arr(old, elem);
}

void kiln_head__hagg_free(hagg *g)
{
    if (g != NULL) {
        free(g->node);
        free(g->value);
        free(g);
    }
}

size_t kiln_head__hagg_bytes(const hagg *g)
{
    /* the node and value arrays are allocated with one spare */
    return arr(1, sizeof(*g)) + arr((size_t)g->n + 1, sizeof(*g->node)) +
           arr((size_t)g->n + 1, sizeof(*g->value));
}

size_t kiln_head__agg_array_bytes(const kiln_head_t *h)
{
    return arr(h->n_series + 1, sizeof(*h->agg));
}

size_t kiln_head__agg_bytes(kiln_head_t *h)
{
    size_t b = 0;
    pthread_mutex_lock(&h->agg_mu);
    if (h->agg != NULL) {
        b = kiln_head__agg_array_bytes(h);
        for (size_t i = 0; i < h->n_series; i++) {
            if (h->agg[i] != NULL)
                b += kiln_head__hagg_bytes(h->agg[i]);
        }
    }
    pthread_mutex_unlock(&h->agg_mu);
    return b;
}

/* The process's budget for blocks' per-series sums and what they hold:
 * one bound over every block any reader opened. */
static size_t g_sums_budget = SIZE_MAX;
static size_t g_sums_used;

void kiln_block_sums_budget(size_t bytes)
{
    __atomic_store_n(&g_sums_budget, bytes, __ATOMIC_RELAXED);
}

size_t kiln_block_sums_bytes(void)
{
    return __atomic_load_n(&g_sums_used, __ATOMIC_RELAXED);
}

bool kiln_head__sums_reserve(size_t n)
{
    size_t budget = __atomic_load_n(&g_sums_budget, __ATOMIC_RELAXED);
    size_t used = __atomic_load_n(&g_sums_used, __ATOMIC_RELAXED);
    do {
        if (n > budget || used > budget - n)
            return false;
    } while (!__atomic_compare_exchange_n(&g_sums_used, &used, used + n, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

void kiln_head__sums_release(size_t n)
{
    __atomic_fetch_sub(&g_sums_used, n, __ATOMIC_RELAXED);
}
