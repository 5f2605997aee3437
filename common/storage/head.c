/* SPDX-License-Identifier: Apache-2.0
 * head: one tenant's head, its series and their postings, and appending
 * profiles: stored series keys, the series limit's check, sample columns.
 * The symbol tables and the stack tree are head_intern.c's; reading and
 * merging heads, head_read.c's; the byte count, head_bytes.c's. */
#include "head_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "clock.h"
#include "hash_index.h"
#include "xmalloc.h"

#define NONE KILN_HEAD_NONE
#define TYPE_LABELS 6

kiln_head_t *kiln_head_create(void)
{
    kiln_head_t *h = kiln_xcalloc(1, sizeof(*h));
    pthread_rwlock_init(&h->lock, NULL);
    pthread_mutex_init(&h->agg_mu, NULL);
    h->mem = kiln_arena_create(0);
    kiln_hash_index_init(&h->str_idx);
    kiln_hash_index_init(&h->func_idx);
    kiln_hash_index_init(&h->map_idx);
    kiln_hash_index_init(&h->loc_idx);
    kiln_hash_index_init(&h->series_idx);
    kiln_hash_index_init(&h->post_idx);
    kiln_hash_index_init(&h->trace_idx);
    /* Node 0 is the root of every stack: no parent, no location. */
    KILN_GROW(h->node_parent, h->cap_nodes, 1);
    KILN_GROW(h->node_loc, h->cap_nodes2, 1);
    h->node_parent[0] = NONE;
    h->node_loc[0] = NONE;
    h->n_nodes = 1;
    return h;
}

void kiln_head_destroy(kiln_head_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_series; i++) {
        free(h->series[i].profiles);
        if (h->agg != NULL)
            kiln_head__hagg_free(h->agg[i]);
    }
    free(h->agg);
    kiln_head__sums_release(h->agg_reserved);
    pthread_mutex_destroy(&h->agg_mu);
    for (size_t i = 0; i < h->n_posts; i++)
        free(h->posts[i].ids);
    free(h->posts);
    kiln_hash_index *idx[] = {&h->str_idx,    &h->func_idx, &h->map_idx,  &h->loc_idx,
                              &h->series_idx, &h->post_idx, &h->trace_idx};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        kiln_hash_index_fini(idx[i]);
    void *arrays[] = {h->strs,      h->funcs,  h->maps,     h->locs,   h->lines,   h->node_parent,
                      h->node_loc,  h->series, h->profiles, h->s_node, h->s_value, h->s_span,
                      h->nodes_idx, h->stacks, h->s_trace,  h->traces};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
        free(arrays[i]);
    kiln_arena_destroy(h->mem);
    pthread_rwlock_destroy(&h->lock);
    free(h);
}

/* ---- append --------------------------------------------------------------- */

/* kiln_head__intern_series with the fingerprint and tag of l known. A
 * series is found by those 96 bits alone, as symbols are (head_intern.c):
 * comparing its labels' strings on every hit was most of the lookup, and
 * an OTLP export looks up eighty series twice. */
static uint32_t intern_series_fp(kiln_head_t *h, const kiln_label_t *l, size_t n, uint64_t fp,
                                 uint32_t tag)
{
    uint32_t id = kiln_hash_index_find_key(&h->series_idx, fp, tag);
    if (id != NONE)
        return id;
    KILN_GROW(h->series, h->cap_series, h->n_series + 1);
    id = (uint32_t)h->n_series++;
    hseries *s = &h->series[id];
    memset(s, 0, sizeof(*s));
    s->labels = kiln_arena_alloc(h->mem, n * sizeof(kiln_label_t));
    for (size_t i = 0; i < n; i++) {
        s->labels[i].name = kiln_head__intern_cstr(h, l[i].name);
        s->labels[i].value = kiln_head__intern_cstr(h, l[i].value);
    }
    s->n_labels = (uint32_t)n;
    kiln_hash_index_insert_key(&h->series_idx, fp, tag, id);
    kiln_head__post_series(h, id);
    return id;
}

uint32_t kiln_head__intern_series(kiln_head_t *h, const kiln_label_t *l, size_t n)
{
    uint32_t tag;
    uint64_t fp = kiln_labels_fingerprint_tag(l, n, &tag);
    return intern_series_fp(h, l, n, fp, tag);
}

static uint64_t post_hash(const char *name, const char *value)
{
    return XXH3_64bits_withSeed(value, strlen(value), XXH3_64bits(name, strlen(name)));
}

typedef struct post_key {
    const kiln_head_t *h;
    const char *name, *value;
} post_key;

static bool post_eq(const void *ctx, uint32_t id)
{
    const post_key *k = ctx;
    const hpost *p = &k->h->posts[id];
    return strcmp(p->name, k->name) == 0 && strcmp(p->value, k->value) == 0;
}

static const hpost *post_find(const kiln_head_t *h, const char *name, const char *value)
{
    post_key k = {h, name, value};
    uint32_t id = kiln_hash_index_find(&h->post_idx, post_hash(name, value), post_eq, &k);
    return id == NONE ? NULL : &h->posts[id];
}

void kiln_head__post_series(kiln_head_t *h, uint32_t sid)
{
    const hseries *s = &h->series[sid];
    for (uint32_t i = 0; i < s->n_labels; i++) {
        const kiln_label_t *l = &s->labels[i];
        post_key k = {h, l->name, l->value};
        uint64_t hash = post_hash(l->name, l->value);
        uint32_t id = kiln_hash_index_find(&h->post_idx, hash, post_eq, &k);
        if (id == NONE) {
            KILN_GROW(h->posts, h->cap_posts, h->n_posts + 1);
            id = (uint32_t)h->n_posts++;
            h->posts[id] = (hpost){l->name, l->value, NULL, 0, 0};
            kiln_hash_index_insert(&h->post_idx, hash, id);
        }
        hpost *p = &h->posts[id];
        kiln_head__grow_small(h, (void **)&p->ids, &p->cap, p->n + 1, sizeof(*p->ids));
        p->ids[p->n++] = sid;
    }
}

/* The series worth testing against sel: the shortest postings list of its
 * equality matchers (an empty list when a required pair is absent), or
 * every series (*all) when it has none. */
const uint32_t *kiln_head__candidates(const kiln_head_t *h, const kiln_selector_t *sel, size_t *n,
                                      bool *all)
{
    static const uint32_t none[1] = {0};
    const uint32_t *best = NULL;
    *all = true;
    *n = 0;
    for (size_t i = 0; sel != NULL && i < kiln_selector_count(sel); i++) {
        const char *name, *value;
        kiln_match_op op;
        kiln_selector_get(sel, i, &name, &op, &value);
        if (op != KILN_MATCH_EQ || *value == '\0')
            continue;
        const hpost *p = post_find(h, name, value);
        if (p == NULL) {
            *all = false;
            *n = 0;
            return none;
        }
        if (*all || p->n < *n) {
            best = p->ids;
            *n = p->n;
            *all = false;
        }
    }
    return best;
}

/* The labels a stored series' type adds, in byte order: type_key puts
 * them first, so sorting after them costs a comparison per base label. */
static const char *const type_label_names[TYPE_LABELS] = {
    KILN_LABEL_PERIOD_TYPE,       KILN_LABEL_PERIOD_UNIT, KILN_LABEL_PROFILE_TYPE,
    KILN_LABEL_SERVICE_NAME_PRIV, KILN_LABEL_TYPE,        KILN_LABEL_UNIT};

static bool is_type_label(const char *name)
{
    if (name[0] != '_' || name[1] != '_')
        return false; /* every type label starts with "__" */
    if (name[2] != 'p' && name[2] != 's' && name[2] != 't' && name[2] != 'u')
        return false; /* __name__, __delta__, __otel__: on every OTLP series */
    for (size_t i = 0; i < TYPE_LABELS; i++) {
        if (strcmp(name, type_label_names[i]) == 0)
            return true;
    }
    return false;
}

/* "name:type:unit:period_type:period_unit", Pyroscope's profile type ID,
 * in tmp (joined by hand: printf was a tenth of an OTLP push's CPU). */
static char *profile_type_id(kiln_arena_t *tmp, const char *name, const kiln_str_t *f)
{
    size_t nl = strlen(name), len = nl + 4;
    for (size_t i = 0; i < 4; i++)
        len += f[i].len;
    char *out = kiln_arena_alloc(tmp, len + 1), *at = out;
    memcpy(at, name, nl);
    at += nl;
    for (size_t i = 0; i < 4; i++) {
        *at++ = ':';
        if (f[i].len != 0)
            memcpy(at, f[i].ptr, f[i].len);
        at += f[i].len;
    }
    *at = '\0';
    return out;
}

/* The type labels' values but the service's, for one profile type and
 * __name__, kept between the parts kiln_head_series_keys keys: the series of
 * an export, and the parts a label split makes of each, mostly share their
 * type, so its strings are copied once rather than once per part. */
typedef struct type_values {
    const char *name; /* NULL: nothing kept yet */
    kiln_str_t f[4];  /* type, unit, period type, period unit: views that stay put */
    const char *v[TYPE_LABELS];
} type_values;

static bool same_type(const type_values *tv, const char *name, const kiln_str_t *f)
{
    if (tv->name == NULL || strcmp(tv->name, name) != 0)
        return false;
    for (size_t i = 0; i < 4; i++) {
        if (tv->f[i].ptr != f[i].ptr || tv->f[i].len != f[i].len)
            return false;
    }
    return true;
}

/* The type labels' values (svc's slot left to the caller) in tmp, or tv's
 * when it holds this type and name; tv (if any) then holds them. */
static void type_values_get(type_values *tv, const char *name, const kiln_str_t *f,
                            kiln_arena_t *tmp, const char **values)
{
    if (tv != NULL && same_type(tv, name, f)) {
        memcpy(values, tv->v, sizeof(tv->v));
        return;
    }
    values[0] = kiln_arena_strndup(tmp, f[2].ptr, f[2].len);
    values[1] = kiln_arena_strndup(tmp, f[3].ptr, f[3].len);
    values[2] = profile_type_id(tmp, name, f);
    values[3] = NULL;
    values[4] = kiln_arena_strndup(tmp, f[0].ptr, f[0].len);
    values[5] = kiln_arena_strndup(tmp, f[1].ptr, f[1].len);
    if (tv == NULL)
        return;
    tv->name = name;
    memcpy(tv->f, f, sizeof(tv->f));
    memcpy(tv->v, values, sizeof(tv->v));
}

/* The stored series of sample type t (base labels plus the type labels,
 * sorted, and their fingerprint), its arrays in tmp; tv, when not NULL,
 * carries the type labels' values from one call to the next. */
static kiln_head_series_key type_key(const kiln_label_t *base, size_t n, const kiln_pprof_t *p,
                                     size_t t, kiln_arena_t *tmp, type_values *tv)
{
    kiln_label_t *l = kiln_arena_alloc(tmp, (n + TYPE_LABELS) * sizeof(*l));
    size_t m = TYPE_LABELS, pre = 0;
    const char *name = "", *svc = "";
    for (size_t i = 0; i < n; i++) {
        const char *k = base[i].name;
        if (is_type_label(k))
            continue;
        /* the first byte first: most names are neither */
        if (k[0] == '_' && strcmp(k, KILN_LABEL_NAME) == 0)
            name = base[i].value;
        else if (k[0] == 's' && strcmp(k, KILN_LABEL_SERVICE_NAME) == 0)
            svc = base[i].value;
        if (pre == m - TYPE_LABELS && strcmp(k, type_label_names[0]) < 0)
            pre++; /* a leading name that sorts before every type label */
        l[m++] = base[i];
    }
    kiln_str_t f[4] = {
        kiln_pprof_str(p, p->sample_types[t].type), kiln_pprof_str(p, p->sample_types[t].unit),
        kiln_pprof_str(p, p->period_type.type), kiln_pprof_str(p, p->period_type.unit)};
    const char *values[TYPE_LABELS];
    type_values_get(tv, name, f, tmp, values);
    values[3] = svc;
    /* The type labels go after the leading names that sort before them
     * (__name__ and the like): with base sorted, the sort below then
     * compares each name once instead of moving those past all six. */
    memmove(l, l + TYPE_LABELS, pre * sizeof(*l));
    for (size_t i = 0; i < TYPE_LABELS; i++)
        l[pre + i] = (kiln_label_t){type_label_names[i], values[i]};
    kiln_labels_sort(l, m);
    kiln_head_series_key k = {l, m, 0, 0};
    k.fp = kiln_labels_fingerprint_tag(l, m, &k.tag);
    return k;
}

/* Part pt's stored series of sample type t: keys[t], or built in tmp. */
static kiln_head_series_key part_series(const kiln_head_part *pt, const kiln_head_series_key *keys,
                                        size_t t, kiln_arena_t *tmp)
{
    if (keys != NULL)
        return keys[t];
    return type_key(pt->labels, pt->n_labels, pt->profile, t, tmp, NULL);
}

const kiln_head_series_key **kiln_head_series_keys(const kiln_head_part *parts, size_t n,
                                                   kiln_arena_t *a)
{
    const kiln_head_series_key **keys = kiln_arena_alloc(a, (n + 1) * sizeof(*keys));
    type_values tv = {NULL, {{NULL, 0}}, {NULL}};
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_t *p = parts[i].profile;
        kiln_head_series_key *k = kiln_arena_alloc(a, (p->n_sample_types + 1) * sizeof(*k));
        for (size_t t = 0; t < p->n_sample_types; t++)
            k[t] = type_key(parts[i].labels, parts[i].n_labels, p, t, a, &tv);
        keys[i] = k;
    }
    return keys;
}

/* Whether h holds the series s. Read lock held. */
static bool holds_series(const kiln_head_t *h, const kiln_head_series_key *s)
{
    return h != NULL && kiln_hash_index_find_key(&h->series_idx, s->fp, s->tag) != NONE;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t kiln_head_new_series(kiln_head_t *h, kiln_head_t *also, const kiln_head_part *parts,
                            size_t n)
{
    return kiln_head_new_series_keyed(h, also, parts, NULL, n);
}

size_t kiln_head_new_series_keyed(kiln_head_t *h, kiln_head_t *also, const kiln_head_part *parts,
                                  const kiln_head_series_key *const *keys, size_t n)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].profile->n_sample_types;
    kiln_arena_t *tmp = kiln_arena_create(0);
    uint64_t *fps = kiln_arena_alloc(tmp, (total + 1) * sizeof(*fps));
    pthread_rwlock_rdlock(&h->lock);
    if (also != NULL)
        pthread_rwlock_rdlock(&also->lock);
    for (size_t i = 0; i < n; i++) {
        const kiln_head_part *pt = &parts[i];
        for (size_t t = 0; t < pt->profile->n_sample_types; t++) {
            kiln_head_series_key s = part_series(pt, keys ? keys[i] : NULL, t, tmp);
            if (!holds_series(h, &s) && !holds_series(also, &s))
                fps[k++] = s.fp;
        }
    }
    if (also != NULL)
        pthread_rwlock_unlock(&also->lock);
    pthread_rwlock_unlock(&h->lock);
    /* One series may come in several parts of a push: count it once (by
     * fingerprint; a collision would only undercount by one). */
    qsort(fps, k, sizeof(*fps), cmp_u64);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++)
        distinct += i == 0 || fps[i] != fps[i - 1];
    kiln_arena_destroy(tmp);
    return distinct;
}

size_t kiln_head_n_series(kiln_head_t *h)
{
    pthread_rwlock_rdlock(&h->lock);
    size_t n = h->n_series;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

/* Starts the span column (zeros for the samples before) on the first span. */
static void want_spans(kiln_head_t *h, const uint64_t *span, size_t n)
{
    bool any = false;
    for (size_t i = 0; span != NULL && i < n && !any; i++)
        any = span[i] != 0;
    if (!any || h->s_span != NULL)
        return;
    KILN_GROW(h->s_span, h->cap_s_span, h->n_samples + n + 1);
    memset(h->s_span, 0, h->n_samples * sizeof(uint64_t));
}

/* Starts the trace column (zeros for the samples before) on the first trace. */
static void want_traces(kiln_head_t *h, const uint32_t *trace, size_t n)
{
    bool any = false;
    for (size_t i = 0; trace != NULL && i < n && !any; i++)
        any = trace[i] != 0;
    if (!any || h->s_trace != NULL)
        return;
    KILN_GROW(h->s_trace, h->cap_s_trace, h->n_samples + n + 1);
    memset(h->s_trace, 0, h->n_samples * sizeof(uint32_t));
}

/* The head's trace for the sample's trace t of c (0 = none); last caches
 * the previous translation, as a span's samples come together. */
static uint32_t head_trace(kiln_head_t *h, const hcols *c, uint32_t t, uint32_t last[2])
{
    if (t == 0 || t > c->n_traces)
        return 0;
    if (t != last[0]) {
        last[0] = t;
        last[1] = kiln_head__intern_trace(h, c->traces[t - 1]);
    }
    return last[1];
}

/* Appends the stored samples of c[0, n) to the sample columns (grown for
 * them); returns the sum of the values, empty stacks' included. The
 * columns and their length are kept in locals: a store through the
 * int64_t * of the values may alias the head's size_t fields, which the
 * loop would otherwise reload after every sample. */
static int64_t add_samples(kiln_head_t *h, const hcols *c, size_t n, int64_t total)
{
    const uint32_t *node = c->node;
    const int64_t *value = c->value;
    uint32_t *s_node = h->s_node, *s_trace = h->s_trace;
    int64_t *s_value = h->s_value;
    uint64_t *s_span = h->s_span;
    size_t m = h->n_samples;
    uint32_t last[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int64_t v = value[i];
        if (node[i] == 0) /* an empty stack: nothing to draw, but in the series total */
            total = kiln_add_wrap(total, v);
        if (v == 0 || node[i] == 0)
            continue;
        if (s_span != NULL)
            s_span[m] = c->span != NULL ? c->span[i] : 0;
        if (s_trace != NULL) /* interning a trace grows h->traces, never the columns */
            s_trace[m] = c->trace != NULL ? head_trace(h, c, c->trace[i], last) : 0;
        s_node[m] = node[i];
        s_value[m++] = v;
        total = kiln_add_wrap(total, v);
    }
    h->n_samples = m;
    return total;
}

void kiln_head__add_profile(kiln_head_t *h, uint32_t sid, int64_t time_ms, uint64_t id,
                            const hcols *c, size_t n, int64_t unstored)
{
    size_t off = h->n_samples;
    KILN_GROW(h->s_node, h->cap_s_node, h->n_samples + n);
    KILN_GROW(h->s_value, h->cap_s_value, h->n_samples + n);
    want_spans(h, c->span, n);
    if (h->s_span != NULL)
        KILN_GROW(h->s_span, h->cap_s_span, h->n_samples + n);
    want_traces(h, c->trace, n);
    if (h->s_trace != NULL)
        KILN_GROW(h->s_trace, h->cap_s_trace, h->n_samples + n);
    int64_t total = add_samples(h, c, n, unstored);
    KILN_GROW(h->profiles, h->cap_profiles, h->n_profiles + 1);
    uint32_t pid = (uint32_t)h->n_profiles++;
    h->profiles[pid] = (hprofile){sid, (uint32_t)(h->n_samples - off), time_ms, off, total, id};
    hseries *s = &h->series[sid];
    kiln_head__grow_small(h, (void **)&s->profiles, &s->cap_profiles, s->n_profiles + 1,
                          sizeof(*s->profiles));
    s->profiles[s->n_profiles++] = pid;
    if (s->n_profiles == 1 || time_ms < s->min_ms)
        s->min_ms = time_ms;
    if (s->n_profiles == 1 || time_ms > s->max_ms)
        s->max_ms = time_ms;
}

/* A span id label: 16 hex digits (an 8-byte span id). */
static uint64_t parse_span(kiln_str_t v)
{
    if (v.len == 0 || v.len > 16)
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return 0;
        x = x << 4 | (uint64_t)d;
    }
    return x;
}

/* A trace id label: exactly 32 hex digits (a 16-byte trace id, as
 * OpenTelemetry writes it); zero (none) for anything else. */
static kiln_trace_id parse_trace(kiln_str_t v)
{
    kiln_trace_id t = {0, 0};
    if (v.len != 32)
        return t;
    kiln_str_t hi = {v.ptr, 16}, lo = {v.ptr + 16, 16};
    t.hi = parse_span(hi);
    t.lo = parse_span(lo);
    for (size_t i = 0; i < 32; i++) { /* parse_span's 0 is also "not hex" */
        char c = v.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return (kiln_trace_id){0, 0};
    }
    return t;
}

/* Sample i's trace from its trace_id label string str: 1 + an index into
 * c->traces, each distinct string parsed once (by_str, per string id). */
static uint32_t sample_trace(const kiln_pprof_t *p, uint32_t str, hcols *c, uint32_t **by_str,
                             kiln_arena_t *a)
{
    if (*by_str == NULL) {
        *by_str = kiln_arena_calloc(a, p->n_strings + 1, sizeof(uint32_t));
        c->traces = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(kiln_trace_id));
    }
    if ((*by_str)[str] == 0) {
        kiln_trace_id t = parse_trace(kiln_pprof_str(p, str));
        if (t.hi == 0 && t.lo == 0) {
            (*by_str)[str] = UINT32_MAX;
        } else {
            c->traces[c->n_traces++] = t;
            (*by_str)[str] = (uint32_t)c->n_traces;
        }
    }
    return (*by_str)[str] == UINT32_MAX ? 0 : (*by_str)[str];
}

/* Each sample's span id, from its span_id (or, as Pyroscope renames it,
 * profile_id) label, and its trace id, from its trace_id label: c->span
 * and c->trace stay NULL when no sample has one. */
static void sample_ids(const kiln_pprof_t *p, kiln_arena_t *a, hcols *c)
{
    uint32_t *by_str = NULL;
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t j = 0; j < s->n_labels; j++) {
            const kiln_pprof_label *l = &p->labels[s->label_off + j];
            kiln_str_t k = kiln_pprof_str(p, l->key);
            if (kiln_str_eq(k, "trace_id")) {
                uint32_t t = sample_trace(p, l->str, c, &by_str, a);
                if (t != 0 && c->trace == NULL)
                    c->trace = kiln_arena_calloc(a, p->n_samples + 1, sizeof(uint32_t));
                if (t != 0)
                    c->trace[i] = t;
                continue;
            }
            if (!kiln_str_eq(k, "span_id") && !kiln_str_eq(k, "profile_id"))
                continue;
            uint64_t id = parse_span(kiln_pprof_str(p, l->str));
            if (id != 0 && c->span == NULL)
                c->span = kiln_arena_calloc(a, p->n_samples + 1, sizeof(uint64_t));
            if (id != 0)
                c->span[i] = id;
        }
    }
}

/* What one batch keeps between its parts: the symbol translation of the
 * profile last appended (the parts of a label split share their symbols,
 * so they are interned once), in an arena for the batch. */
typedef struct batch {
    kiln_arena_t *tmp;
    const kiln_pprof_t *sym; /* whose symbols x translates; NULL = none yet */
    hxlate x;
} batch;

static bool same_symbols(const kiln_pprof_t *a, const kiln_pprof_t *b)
{
    return a->strings == b->strings && a->n_strings == b->n_strings && a->mappings == b->mappings &&
           a->n_mappings == b->n_mappings && a->functions == b->functions &&
           a->n_functions == b->n_functions && a->locations == b->locations &&
           a->n_locations == b->n_locations && a->lines == b->lines && a->n_lines == b->n_lines;
}

static void batch_translate(kiln_head_t *h, batch *b, const kiln_pprof_t *p)
{
    if (b->sym != NULL && same_symbols(b->sym, p))
        return;
    size_t nx = p->n_strings + p->n_mappings + p->n_functions + p->n_locations;
    uint32_t *all = kiln_arena_alloc(b->tmp, (nx + 1) * sizeof(uint32_t));
    memset(all, 0xff, (nx + 1) * sizeof(uint32_t));
    b->x.str = all;
    b->x.map = b->x.str + p->n_strings;
    b->x.func = b->x.map + p->n_mappings;
    b->x.loc = b->x.func + p->n_functions;
    kiln_head__translate_symbols(h, &b->x, p, b->tmp);
    b->sym = p;
}

/* Appends one part (its stored series keys, or NULL) under the write lock. */
static void append_part(kiln_head_t *h, batch *b, const kiln_head_part *pt,
                        const kiln_head_series_key *keys)
{
    const kiln_pprof_t *p = pt->profile;
    int64_t time_ns = p->time_nanos;
    int64_t time_ms = (time_ns > 0 ? time_ns : kiln_wall_ns()) / 1000000;
    batch_translate(h, b, p);
    uint32_t *nodes = kiln_head__sample_nodes(h, &b->x, p, b->tmp);
    int64_t *values = kiln_arena_alloc(b->tmp, (p->n_samples + 1) * sizeof(int64_t));
    hcols c = {nodes, values, NULL, NULL, NULL, 0};
    sample_ids(p, b->tmp, &c);
    const kiln_pprof_sample *samples = p->samples;
    const int64_t *in = p->values;
    size_t n = p->n_samples; /* in locals: values (int64_t) may alias p's size_t fields */
    for (size_t t = 0; t < p->n_sample_types; t++) {
        for (size_t i = 0; i < n; i++)
            values[i] = in[samples[i].value_off + t];
        kiln_head_series_key k = part_series(pt, keys, t, b->tmp);
        kiln_head__add_profile(h, intern_series_fp(h, k.labels, k.n_labels, k.fp, k.tag), time_ms,
                               pt->id, &c, p->n_samples, 0);
    }
}

size_t kiln_head_append_batch(kiln_head_t *h, const kiln_head_part *parts, size_t n)
{
    return kiln_head_append_keyed(h, parts, NULL, n);
}

size_t kiln_head_append_keyed(kiln_head_t *h, const kiln_head_part *parts,
                              const kiln_head_series_key *const *keys, size_t n)
{
    batch b = {kiln_arena_create(0), NULL, {NULL, NULL, NULL, NULL}};
    pthread_rwlock_wrlock(&h->lock);
    size_t before = kiln_head__bytes(h);
    for (size_t i = 0; i < n; i++)
        append_part(h, &b, &parts[i], keys ? keys[i] : NULL);
    size_t grown = kiln_head__bytes(h) - before; /* a head never shrinks */
    pthread_rwlock_unlock(&h->lock);
    kiln_arena_destroy(b.tmp);
    return grown;
}
