/* SPDX-License-Identifier: Apache-2.0
 * head_read: reading a head (kiln_head_read, stats), the series selected
 * by a query folded into a call tree or visited profile by profile, from
 * the head's own columns or a block's loaded chunks; and merging one head
 * into another (compaction), which reads its source the same way. */
#include "head_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cancel.h"
#include "hash_index.h"
#include "xmalloc.h"

#define NONE KILN_HEAD_NONE

/* ---- queries -------------------------------------------------------------- */

static bool series_selected(const hseries *s, const kiln_selector_t *sel, int64_t start_ms,
                            int64_t end_ms)
{
    if (s->n_profiles == 0 || s->max_ms < start_ms || (end_ms != 0 && s->min_ms > end_ms))
        return false;
    return sel == NULL || kiln_selector_match(sel, s->labels, s->n_labels);
}

/* Calls fn for every series selected by sel over the range: the postings
 * candidates (or all series), then labels and time range checked. The
 * caller holds the head's lock. */
static void each_selected(const kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                          int64_t end_ms, void (*fn)(const kiln_head_t *h, uint32_t sid, void *arg),
                          void *arg)
{
    size_t n;
    bool all;
    const uint32_t *c = kiln_head__candidates(h, sel, &n, &all);
    for (size_t k = 0; k < (all ? h->n_series : n) && !kiln_cancel_poll(); k++) {
        uint32_t sid = all ? (uint32_t)k : c[k];
        if (series_selected(&h->series[sid], sel, start_ms, end_ms))
            fn(h, sid, arg);
    }
}

/* A series' sums per node, nodes ascending, zero sums left out: fresh
 * arrays of just the distinct nodes (the chunk's arrays, every sample, are
 * freed by the caller, not kept shrunk in place behind the sums). */
static hagg *agg_new(size_t n)
{
    hagg *g = kiln_xcalloc(1, sizeof(*g));
    g->node = kiln_xmalloc((n + 1) * sizeof(*g->node));
    g->value = kiln_xmalloc((n + 1) * sizeof(*g->value));
    return g;
}

/* By a dense array over every node of the block: O(nodes), for a series
 * whose samples touch a good part of them. */
static hagg *agg_dense(const kiln_head_t *h, const uint32_t *ln, const int64_t *lv, size_t total)
{
    int64_t *sum = kiln_xcalloc(h->n_nodes, sizeof(int64_t));
    for (size_t k = 0; k < total; k++)
        sum[ln[k]] += lv[k];
    size_t distinct = 0;
    for (size_t node = 0; node < h->n_nodes; node++)
        distinct += sum[node] != 0;
    hagg *g = agg_new(distinct);
    for (size_t node = 0; node < h->n_nodes; node++) {
        if (sum[node] == 0)
            continue;
        g->node[g->n] = (uint32_t)node;
        g->value[g->n++] = sum[node];
    }
    free(sum);
    return g;
}

typedef struct node_value {
    uint32_t node;
    int64_t value;
} node_value;

static int cmp_node_value(const void *a, const void *b)
{
    uint32_t x = ((const node_value *)a)->node, y = ((const node_value *)b)->node;
    return (x > y) - (x < y);
}

/* By sorting the series' own samples: O(s log s) for s samples, so a block
 * of many small series costs its samples, not series x nodes. */
static hagg *agg_sparse(const uint32_t *ln, const int64_t *lv, size_t total)
{
    node_value *nv = kiln_xmalloc((total + 1) * sizeof(*nv));
    for (size_t k = 0; k < total; k++)
        nv[k] = (node_value){ln[k], lv[k]};
    if (total > 1)
        qsort(nv, total, sizeof(*nv), cmp_node_value);
    size_t m = 0; /* runs of one node summed in place */
    for (size_t k = 0; k < total;) {
        node_value run = {nv[k].node, 0};
        for (; k < total && nv[k].node == run.node; k++)
            run.value += nv[k].value;
        if (run.value != 0)
            nv[m++] = run;
    }
    hagg *g = agg_new(m);
    for (size_t k = 0; k < m; k++) {
        g->node[k] = nv[k].node;
        g->value[k] = nv[k].value;
    }
    g->n = (uint32_t)m;
    free(nv);
    return g;
}

/* Binary search in an ascending array. */
static bool sorted_has(const uint64_t *ids, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id;
}

/* kiln_profile_key of a profile whose series' labels have fingerprint fp. */
static uint64_t key_of(uint64_t fp, int64_t time_ms, uint64_t id)
{
    uint64_t k[3] = {fp, (uint64_t)time_ms, id};
    return XXH3_64bits(k, sizeof(k));
}

uint64_t kiln_profile_key(const kiln_label_t *l, size_t n, int64_t time_ms, uint64_t id)
{
    return key_of(kiln_labels_fingerprint(l, n), time_ms, id);
}

/* The fingerprint of series s's labels when the read needs its profiles'
 * keys (a key set to pass, or a visitor told what was merged), else 0:
 * hashed once per series rather than once per profile. */
static uint64_t series_fp(const hseries *s, const kiln_read_filter *f, const kiln_read_visitor *v)
{
    if (f->keys == NULL && (v == NULL || v->merged == NULL))
        return 0;
    return kiln_labels_fingerprint(s->labels, s->n_labels);
}

/* Whether profile pr of a series (its fingerprint fp, from series_fp) is
 * in the filter's range and passes its id and key sets. */
static bool profile_kept(uint64_t fp, const hprofile *pr, const kiln_read_filter *f)
{
    if (!kiln_head__in_range(pr->time_ms, f->start_ms, f->end_ms))
        return false;
    if (f->ids != NULL && !sorted_has(f->ids, f->n_ids, pr->id))
        return false;
    return f->keys == NULL || sorted_has(f->keys, f->n_keys, key_of(fp, pr->time_ms, pr->id));
}

/* Whether any profile of series s (fingerprint fp) passes the filter
 * (before spans). */
static bool series_kept(const kiln_head_t *h, const hseries *s, uint64_t fp,
                        const kiln_read_filter *f)
{
    for (size_t j = 0; j < s->n_profiles; j++)
        if (profile_kept(fp, &h->profiles[s->profiles[j]], f))
            return true;
    return false;
}

/* One read in progress: what it wants, where it goes, its first failure. */
typedef struct reader {
    const kiln_read_filter *f;
    const kiln_read_visitor *v;
    int64_t *acc;        /* tree reads: the sums per stack node */
    bool any;            /* tree reads: some profile was added */
    uint8_t *head_match; /* the head's traces the filter takes (built once a read) */
    kiln_status st;
    kiln_err *err;
} reader;

/* The sample columns of one series: the head's own, or a block chunk's
 * (loaded, freed by cols_free), and which of their traces the filter's
 * trace set takes (match[t - 1]; NULL when the filter has none). */
typedef struct cols {
    hcols c;
    bool owned;
    uint8_t *match;
} cols;

/* Whether trace t is in the filter's sorted trace set. */
static bool trace_wanted(const kiln_read_filter *f, const kiln_trace_id *t)
{
    size_t lo = 0, hi = f->n_traces;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kiln_trace_id_cmp(&f->traces[mid], t) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_traces && kiln_trace_id_cmp(&f->traces[lo], t) == 0;
}

/* match[i]: whether traces[i] is in the filter's set (malloc'd). */
static uint8_t *trace_match(const kiln_read_filter *f, const kiln_trace_id *traces, size_t n)
{
    uint8_t *m = kiln_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        m[i] = trace_wanted(f, &traces[i]);
    return m;
}

/* Loads series sid's samples of the profiles in [start_ms, end_ms].
 * KILN_DATA_LOSS when a block's chunk does not load. */
static kiln_status cols_load(const kiln_head_t *h, uint32_t sid, int64_t start_ms, int64_t end_ms,
                             reader *r, cols *c, kiln_err *err)
{
    memset(c, 0, sizeof(*c));
    const kiln_read_filter *f = r != NULL ? r->f : NULL;
    if (h->loader == NULL) {
        c->c = (hcols){h->s_node, h->s_value, h->s_span, h->s_trace, h->traces, h->n_traces};
        if (f != NULL && f->traces != NULL && r->head_match == NULL)
            r->head_match = trace_match(f, h->traces, h->n_traces);
        c->match = f != NULL && f->traces != NULL ? r->head_match : NULL;
        return KILN_OK;
    }
    kiln_err why = {KILN_OK, ""};
    if (h->loader(h->loader_ctx, sid, start_ms, end_ms, &c->c, &why) != KILN_OK)
        return kiln_err_set(err, KILN_DATA_LOSS, "a chunk of a block does not load: %s", why.msg);
    c->owned = true;
    if (f != NULL && f->traces != NULL)
        c->match = trace_match(f, c->c.traces, c->c.n_traces);
    return KILN_OK;
}

static void cols_free(cols *c)
{
    if (c->owned) {
        kiln_head__cols_free(&c->c);
        free(c->match);
    }
    memset(c, 0, sizeof(*c));
}

/* Whether the filter's spans and traces take sample k of c. */
static inline bool sample_kept(const kiln_read_filter *f, const cols *c, size_t k)
{
    if (f->spans != NULL && (c->c.span == NULL || !sorted_has(f->spans, f->n_spans, c->c.span[k])))
        return false;
    if (f->traces != NULL &&
        (c->c.trace == NULL || c->c.trace[k] == 0 || !c->match[c->c.trace[k] - 1]))
        return false;
    return true;
}

/* Whether the filter selects samples (spans or traces), not whole profiles. */
static bool by_sample(const kiln_read_filter *f)
{
    return f->spans != NULL || f->traces != NULL;
}

/* The sum of pr's samples the filter's spans and traces take (every
 * sample without them); *hit tells whether any sample was taken. */
static int64_t kept_total(const hprofile *pr, const cols *c, const kiln_read_filter *f, bool *hit)
{
    *hit = !by_sample(f);
    if (!by_sample(f))
        return pr->total;
    int64_t sum = 0;
    for (size_t k = pr->off; k < pr->off + pr->n; k++) {
        if (sample_kept(f, c, k)) {
            sum = kiln_add_wrap(sum, c->c.value[k]);
            *hit = true;
        }
    }
    return sum;
}

/* Reads series sid's columns when the filter or visitor needs samples
 * (spans, traces, span visits); false when it cannot (r->st is set). */
static bool series_cols(const kiln_head_t *h, uint32_t sid, reader *r, cols *c)
{
    memset(c, 0, sizeof(*c));
    if (!by_sample(r->f) && r->v->span == NULL)
        return true;
    r->st = cols_load(h, sid, r->f->start_ms, r->f->end_ms, r, c, r->err);
    return r->st == KILN_OK;
}

/* One span of a profile being summed for a span visit. */
typedef struct span_sum {
    uint64_t span;
    uint32_t trace;
    int64_t total;
} span_sum;

static int cmp_span_sum(const void *a, const void *b)
{
    const span_sum *x = a, *y = b;
    if (x->span != y->span)
        return x->span < y->span ? -1 : 1;
    return (x->trace > y->trace) - (x->trace < y->trace);
}

/* Reports profile pr's kept samples summed per (span, trace) to the span
 * visitor; tmp is scratch space, grown as needed. */
static void visit_spans(const hseries *s, const hprofile *pr, const cols *c, reader *r,
                        span_sum **tmp, size_t *cap)
{
    if (c->c.span == NULL)
        return;
    size_t n = 0;
    KILN_GROW(*tmp, *cap, (size_t)pr->n + 1);
    for (size_t k = pr->off; k < pr->off + pr->n; k++)
        if (c->c.span[k] != 0 && sample_kept(r->f, c, k))
            (*tmp)[n++] =
                (span_sum){c->c.span[k], c->c.trace != NULL ? c->c.trace[k] : 0, c->c.value[k]};
    qsort(*tmp, n, sizeof(span_sum), cmp_span_sum);
    for (size_t i = 0; i < n;) {
        span_sum x = (*tmp)[i++];
        while (i < n && cmp_span_sum(&x, &(*tmp)[i]) == 0)
            x.total = kiln_add_wrap(x.total, (*tmp)[i++].total);
        kiln_read_span sp = {
            s->labels, s->n_labels, pr->time_ms,
            pr->id,    x.span,      x.trace != 0 ? c->c.traces[x.trace - 1] : (kiln_trace_id){0, 0},
            x.total};
        r->v->span(r->v->ctx, &sp);
    }
}

/* Visits profile after profile of series sid that the filter keeps; with
 * a series visitor, stops at the first. */
static void visit_series_profiles(const kiln_head_t *h, uint32_t sid, void *arg)
{
    reader *r = arg;
    const hseries *s = &h->series[sid];
    uint64_t fp = series_fp(s, r->f, NULL);
    cols c;
    if (r->st != KILN_OK || !series_kept(h, s, fp, r->f) || !series_cols(h, sid, r, &c))
        return;
    span_sum *tmp = NULL;
    size_t cap = 0;
    for (size_t j = 0; j < s->n_profiles && !kiln_cancel_poll(); j++) {
        const hprofile *pr = &h->profiles[s->profiles[j]];
        bool hit;
        if (!profile_kept(fp, pr, r->f))
            continue;
        if (r->v->span != NULL) {
            visit_spans(s, pr, &c, r, &tmp, &cap);
            continue;
        }
        int64_t total = kept_total(pr, &c, r->f, &hit);
        if (!hit)
            continue;
        if (r->v->series != NULL) {
            r->v->series(r->v->ctx, s->labels, s->n_labels);
            break;
        }
        kiln_read_profile p = {s->labels, s->n_labels, pr->time_ms, total, pr->id};
        r->v->profile(r->v->ctx, &p);
    }
    free(tmp);
    cols_free(&c);
}

/* Keeps g as series sid's sums when the process's budget has room for it
 * (and for the block's array of them, the first time); false when not. */
static bool agg_keep(kiln_head_t *h, uint32_t sid, hagg *g)
{
    size_t array = h->agg == NULL ? kiln_head__agg_array_bytes(h) : 0;
    size_t bytes = array + kiln_head__hagg_bytes(g);
    if (!kiln_head__sums_reserve(bytes))
        return false;
    if (h->agg == NULL)
        h->agg = kiln_xcalloc(h->n_series + 1, sizeof(*h->agg));
    h->agg[sid] = g;
    h->agg_reserved += bytes;
    return true;
}

/* The per-node sums of all of a block series' profiles: read with the
 * block's index (block.c), or built here once for a block without them and
 * kept while the process's budget allows; *owned tells the caller to free
 * sums that were not kept. KILN_DATA_LOSS when the series' chunk does not
 * load. */
static kiln_status series_agg(kiln_head_t *h, uint32_t sid, hagg **out, bool *owned, kiln_err *err)
{
    pthread_mutex_lock(&h->agg_mu);
    hagg *g = h->agg != NULL ? h->agg[sid] : NULL;
    *owned = false;
    if (g == NULL) {
        cols c;
        kiln_status st = cols_load(h, sid, INT64_MIN, 0, NULL, &c, err);
        if (st != KILN_OK) {
            pthread_mutex_unlock(&h->agg_mu);
            return st;
        }
        const hseries *s = &h->series[sid];
        size_t total = 0;
        for (size_t j = 0; j < s->n_profiles; j++)
            total += h->profiles[s->profiles[j]].n;
        g = total * 16 < h->n_nodes ? agg_sparse(c.c.node, c.c.value, total)
                                    : agg_dense(h, c.c.node, c.c.value, total);
        cols_free(&c);
        *owned = !agg_keep(h, sid, g);
    }
    pthread_mutex_unlock(&h->agg_mu);
    *out = g;
    return KILN_OK;
}

/* Whether a tree read of series s may add the block's cached per-node sums:
 * no profile or sample filter and the read covers the series' time range. */
static bool whole_series(const kiln_head_t *h, const hseries *s, const kiln_read_filter *f)
{
    return h->loader != NULL && f->keys == NULL && f->ids == NULL && !by_sample(f) &&
           f->start_ms <= s->min_ms && (f->end_ms == 0 || f->end_ms >= s->max_ms);
}

/* Tells the visitor's `merged`, when set, that profile pr of the series
 * of fingerprint fp was taken into the tree. */
static void report_merged(const reader *r, uint64_t fp, const hprofile *pr)
{
    if (r->v->merged != NULL)
        r->v->merged(r->v->ctx, key_of(fp, pr->time_ms, pr->id));
}

/* Sums series sid's kept samples into r->acc, from the head's columns, a
 * block's chunk, or the chunk's cached sums. */
static void accumulate_series(const kiln_head_t *h, uint32_t sid, void *arg)
{
    reader *r = arg;
    const hseries *s = &h->series[sid];
    const kiln_read_filter *f = r->f;
    uint64_t fp = series_fp(s, f, r->v);
    if (r->st != KILN_OK || !series_kept(h, s, fp, f))
        return;
    if (whole_series(h, s, f)) {
        hagg *g;
        bool owned;
        r->st = series_agg((kiln_head_t *)h, sid, &g, &owned, r->err);
        for (uint32_t k = 0; r->st == KILN_OK && k < g->n; k++)
            r->acc[g->node[k]] += g->value[k];
        r->any |= r->st == KILN_OK;
        if (r->st == KILN_OK && owned)
            kiln_head__hagg_free(g);
        for (size_t j = 0; r->st == KILN_OK && j < s->n_profiles; j++)
            report_merged(r, fp, &h->profiles[s->profiles[j]]); /* all in range */
        return;
    }
    cols c;
    r->st = cols_load(h, sid, f->start_ms, f->end_ms, r, &c, r->err);
    for (size_t j = 0; r->st == KILN_OK && j < s->n_profiles && !kiln_cancel_poll(); j++) {
        const hprofile *pr = &h->profiles[s->profiles[j]];
        if (!profile_kept(fp, pr, f))
            continue;
        const uint32_t *node = c.c.node;
        const int64_t *value = c.c.value;
        if (!by_sample(f)) {
            for (size_t k = pr->off; k < pr->off + pr->n; k++)
                r->acc[node[k]] = kiln_add_wrap(r->acc[node[k]], value[k]);
        } else {
            for (size_t k = pr->off; k < pr->off + pr->n; k++)
                if (sample_kept(f, &c, k))
                    r->acc[node[k]] = kiln_add_wrap(r->acc[node[k]], value[k]);
        }
        r->any = true;
        report_merged(r, fp, pr);
    }
    cols_free(&c);
}

/* Appends a location's frames under parent, outermost (last line) first. */
static uint32_t expand_location(const kiln_head_t *h, kiln_tree_t *t, uint32_t parent, uint32_t loc)
{
    const hloc *l = &h->locs[loc];
    if (l->n_lines == 0) {
        char addr[32];
        int n = snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)l->address);
        return kiln_tree_child(t, parent, addr, (size_t)n);
    }
    for (uint32_t j = l->n_lines; j-- > 0;) {
        uint32_t f = h->lines[l->line_off + j].func;
        if (f == NONE) {
            parent = kiln_tree_child(t, parent, "unknown", 7);
            continue;
        }
        const hstr *name = &h->strs[h->funcs[f].name];
        parent = kiln_tree_child(t, parent, name->ptr, name->len);
    }
    return parent;
}

/* Adds the per-node sums acc to t. Parents always have smaller ids than
 * their children, so one ascending pass over the needed nodes maps stack
 * nodes to tree nodes. */
static void add_sums(const kiln_head_t *h, const int64_t *acc, kiln_tree_t *t)
{
    size_t n = h->n_nodes;
    uint32_t *map = kiln_xmalloc(n * sizeof(uint32_t));
    memset(map, 0xff, n * sizeof(uint32_t));
    map[0] = KILN_TREE_ROOT;
    for (size_t i = n; i-- > 1;) {
        if (acc[i] == 0)
            continue;
        for (uint32_t j = (uint32_t)i; j != 0 && map[j] == NONE; j = h->node_parent[j])
            map[j] = NONE - 1; /* needed, not yet mapped */
    }
    for (size_t i = 1; i < n && !kiln_cancel_poll(); i++) {
        if (map[i] != NONE - 1)
            continue;
        map[i] = expand_location(h, t, map[h->node_parent[i]], h->node_loc[i]);
        if (acc[i] != 0)
            kiln_tree_add_self(t, map[i], acc[i]);
    }
    free(map);
}

/* A tree read: sums per stack node first, then one pass into the tree. */
static void read_tree(const kiln_head_t *h, reader *r)
{
    r->acc = kiln_xcalloc(h->n_nodes, sizeof(int64_t));
    each_selected(h, r->f->sel, r->f->start_ms, r->f->end_ms, accumulate_series, r);
    if (r->st == KILN_OK && r->any)
        add_sums(h, r->acc, r->v->tree);
    free(r->acc);
}

/* The bound token's status once it fired (loops broke out early). */
static kiln_status cancel_status(kiln_err *err)
{
    kiln_cancel_t *c = kiln_cancel_current();
    kiln_status why = c != NULL ? (kiln_status)atomic_load(&c->why) : KILN_OK;
    if (why == KILN_OK)
        return KILN_OK;
    return kiln_err_set(err, why, "%s", *c->fail_msg ? c->fail_msg : kiln_status_str(why));
}

kiln_status kiln_head_read(kiln_head_t *h, const kiln_read_filter *f, const kiln_read_visitor *v,
                           kiln_err *err)
{
    reader r = {f, v, NULL, false, NULL, KILN_OK, err};
    pthread_rwlock_rdlock(&h->lock);
    if (v->tree != NULL)
        read_tree(h, &r);
    else if (v->series != NULL || v->profile != NULL || v->span != NULL)
        each_selected(h, f->sel, f->start_ms, f->end_ms, visit_series_profiles, &r);
    pthread_rwlock_unlock(&h->lock);
    free(r.head_match);
    return r.st != KILN_OK ? r.st : cancel_status(err);
}

void kiln_head_stats(kiln_head_t *h, kiln_head_stats_t *out)
{
    pthread_rwlock_rdlock(&h->lock);
    memset(out, 0, sizeof(*out));
    out->series = h->n_series;
    out->profiles = h->n_profiles;
    out->samples = h->n_samples;
    out->stack_nodes = h->n_nodes;
    out->locations = h->n_locs;
    out->strings = h->n_strs;
    out->bytes = kiln_head__bytes(h) + kiln_head__agg_bytes(h);
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        if (s->n_profiles == 0)
            continue;
        if (out->min_time_ms == 0 || s->min_ms < out->min_time_ms)
            out->min_time_ms = s->min_ms;
        if (s->max_ms > out->max_time_ms)
            out->max_time_ms = s->max_ms;
    }
    pthread_rwlock_unlock(&h->lock);
}

/* ---- merging heads (compaction) ---------------------------------------------- */

/* Maps from src ids to dst ids, filled as merge_from goes. */
typedef struct remap {
    uint32_t *str, *func, *map, *loc, *node;
} remap;

static uint32_t r_str(kiln_head_t *dst, const kiln_head_t *src, remap *m, uint32_t i)
{
    if (m->str[i] == NONE)
        m->str[i] = kiln_head__intern_str(dst, src->strs[i].ptr, src->strs[i].len);
    return m->str[i];
}

static void remap_symbols(kiln_head_t *dst, const kiln_head_t *src, remap *m)
{
    for (size_t i = 0; i < src->n_funcs; i++) {
        const hfunc *f = &src->funcs[i];
        hfunc g = {r_str(dst, src, m, f->name), r_str(dst, src, m, f->system_name),
                   r_str(dst, src, m, f->filename), 0, f->start_line};
        m->func[i] = kiln_head__intern_func(dst, &g);
    }
    for (size_t i = 0; i < src->n_maps; i++) {
        hmap g = src->maps[i];
        g.filename = r_str(dst, src, m, g.filename);
        g.build_id = r_str(dst, src, m, g.build_id);
        m->map[i] = kiln_head__intern_map(dst, &g);
    }
    hline tmp[256];
    for (size_t i = 0; i < src->n_locs; i++) {
        hloc l = src->locs[i];
        hline *lines = l.n_lines <= 256 ? tmp : kiln_xmalloc(l.n_lines * sizeof(hline));
        for (uint32_t j = 0; j < l.n_lines; j++) {
            lines[j] = src->lines[l.line_off + j];
            lines[j].func = lines[j].func == NONE ? NONE : m->func[lines[j].func];
        }
        l.mapping = l.mapping == NONE ? NONE : m->map[l.mapping];
        m->loc[i] = kiln_head__intern_loc(dst, &l, lines);
        if (lines != tmp)
            free(lines);
    }
    m->node[0] = 0;
    for (size_t i = 1; i < src->n_nodes; i++)
        m->node[i] =
            kiln_head__stack_child(dst, m->node[src->node_parent[i]], m->loc[src->node_loc[i]]);
}

/* A replica's identity: kiln_profile_key (the same series, time and
 * profile id: replicas of one push carry its id); for profiles without an
 * id, the same samples too. */
static uint64_t replica_key(const hseries *s, int64_t t, uint64_t id, const uint32_t *node,
                            const int64_t *value, size_t n)
{
    uint64_t h = kiln_profile_key(s->labels, s->n_labels, t, id);
    if (id != 0)
        return h;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (uint64_t)node[i] * 0x9e3779b97f4a7c15ULL ^ (uint64_t)value[i];
        h += x * 0xff51afd7ed558ccdULL; /* order-independent */
    }
    return h;
}

typedef struct dedup {
    kiln_hash_index idx;
    uint64_t *keys;
    size_t n, cap;
} dedup;

static bool key_eq(const void *ctx, uint32_t id)
{
    const struct {
        const dedup *d;
        uint64_t k;
    } *c = ctx;
    return c->d->keys[id] == c->k;
}

/* True when k was not seen before (and remembers it). */
static bool dedup_add(dedup *d, uint64_t k)
{
    struct {
        const dedup *d;
        uint64_t k;
    } c = {d, k};
    if (kiln_hash_index_find(&d->idx, k, key_eq, &c) != NONE)
        return false;
    KILN_GROW(d->keys, d->cap, d->n + 1);
    d->keys[d->n] = k;
    kiln_hash_index_insert(&d->idx, k, (uint32_t)d->n++);
    return true;
}

/* Copies series i of src into dst, adding the profiles copied to *copied.
 * KILN_DATA_LOSS when a block's chunk cannot be loaded. */
static kiln_status merge_series(kiln_head_t *dst, const kiln_head_t *src, const remap *m,
                                uint32_t i, dedup *seen, size_t *copied, kiln_err *err)
{
    const hseries *s = &src->series[i];
    uint32_t *mapped = NULL;
    size_t cap = 0;
    cols c;
    kiln_status st = cols_load(src, i, INT64_MIN, 0, NULL, &c, err);
    if (st != KILN_OK)
        return st;
    const uint32_t *node = c.c.node;
    const int64_t *value = c.c.value;
    uint32_t sid = kiln_head__intern_series(dst, s->labels, s->n_labels);
    for (size_t j = 0; j < s->n_profiles; j++) {
        const hprofile *p = &src->profiles[s->profiles[j]];
        KILN_GROW(mapped, cap, (size_t)p->n + 1);
        for (uint32_t k = 0; k < p->n; k++)
            mapped[k] = m->node[node[p->off + k]];
        if (!dedup_add(seen, replica_key(&dst->series[sid], p->time_ms, p->id, mapped,
                                         value + p->off, p->n)))
            continue;
        int64_t stored = 0; /* the rest of p's total: its frameless samples */
        for (uint32_t k = 0; k < p->n; k++)
            stored = kiln_add_wrap(stored, value[p->off + k]);
        hcols pc = {mapped,
                    (int64_t *)value + p->off,
                    c.c.span != NULL ? c.c.span + p->off : NULL,
                    c.c.trace != NULL ? c.c.trace + p->off : NULL,
                    c.c.traces,
                    c.c.n_traces};
        kiln_head__add_profile(dst, sid, p->time_ms, p->id, &pc, p->n,
                               (int64_t)((uint64_t)p->total - (uint64_t)stored));
        (*copied)++;
    }
    free(mapped);
    cols_free(&c);
    return KILN_OK;
}

kiln_status kiln_head_merge_from(kiln_head_t *dst, kiln_head_t *src, size_t *copied, kiln_err *err)
{
    remap m;
    size_t n = src->n_strs + src->n_funcs + src->n_maps + src->n_locs + src->n_nodes;
    uint32_t *all = kiln_xmalloc((n + 1) * sizeof(uint32_t));
    memset(all, 0xff, (n + 1) * sizeof(uint32_t));
    m.str = all, m.func = m.str + src->n_strs, m.map = m.func + src->n_funcs;
    m.loc = m.map + src->n_maps, m.node = m.loc + src->n_locs;
    dedup seen;
    memset(&seen, 0, sizeof(seen));
    kiln_hash_index_init(&seen.idx);
    kiln_status st = KILN_OK;
    *copied = 0;
    pthread_rwlock_wrlock(&dst->lock);
    pthread_rwlock_rdlock(&src->lock);
    for (size_t i = 0; i < dst->n_profiles; i++) { /* what dst already holds counts as seen */
        const hprofile *p = &dst->profiles[i];
        dedup_add(&seen, replica_key(&dst->series[p->series], p->time_ms, p->id,
                                     dst->s_node + p->off, dst->s_value + p->off, p->n));
    }
    remap_symbols(dst, src, &m);
    for (size_t i = 0; i < src->n_series && st == KILN_OK; i++)
        st = merge_series(dst, src, &m, (uint32_t)i, &seen, copied, err);
    pthread_rwlock_unlock(&src->lock);
    pthread_rwlock_unlock(&dst->lock);
    kiln_hash_index_fini(&seen.idx);
    free(seen.keys);
    free(all);
    return st;
}
