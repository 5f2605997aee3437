/* SPDX-License-Identifier: Apache-2.0
 * head: interning tables, the stack tree and sample columns of one tenant.
 * Interned strings are NUL-terminated copies in an arena that never moves,
 * so label sets can point at them. */
#include "head_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cancel.h"
#include "clock.h"
#include "hash_index.h"
#include "log.h"
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
        if (h->agg != NULL && h->agg[i] != NULL) {
            free(h->agg[i]->node);
            free(h->agg[i]->value);
            free(h->agg[i]);
        }
    }
    free(h->agg);
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

/* ---- interning ---------------------------------------------------------- */

typedef struct str_key {
    const kiln_head_t *h;
    const char *p;
    size_t len;
} str_key;

static bool str_eq(const void *ctx, uint32_t id)
{
    const str_key *k = ctx;
    const hstr *s = &k->h->strs[id];
    return s->len == k->len && memcmp(s->ptr, k->p, k->len) == 0;
}

uint32_t kiln_head__intern_str(kiln_head_t *h, const char *p, size_t len)
{
    str_key k = {h, p, len};
    uint64_t hash = XXH3_64bits(p, len);
    uint32_t id = kiln_hash_index_find(&h->str_idx, hash, str_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->strs, h->cap_strs, h->n_strs + 1);
    id = (uint32_t)h->n_strs++;
    h->strs[id].ptr = kiln_arena_strndup(h->mem, p, len);
    h->strs[id].len = (uint32_t)len;
    kiln_hash_index_insert(&h->str_idx, hash, id);
    return id;
}

static bool trace_eq(const void *ctx, uint32_t id)
{
    const struct {
        const kiln_head_t *h;
        kiln_trace_id t;
    } *k = ctx;
    return k->h->traces[id].hi == k->t.hi && k->h->traces[id].lo == k->t.lo;
}

uint32_t kiln_head__intern_trace(kiln_head_t *h, kiln_trace_id t)
{
    struct {
        const kiln_head_t *h;
        kiln_trace_id t;
    } k = {h, t};
    uint64_t hash = XXH3_64bits(&t, sizeof(t));
    uint32_t id = kiln_hash_index_find(&h->trace_idx, hash, trace_eq, &k);
    if (id != NONE)
        return id + 1;
    KILN_GROW(h->traces, h->cap_traces, h->n_traces + 1);
    id = (uint32_t)h->n_traces++;
    h->traces[id] = t;
    kiln_hash_index_insert(&h->trace_idx, hash, id);
    return id + 1;
}

void kiln_head__cols_free(hcols *c)
{
    free(c->node);
    free(c->value);
    free(c->span);
    free(c->trace);
    free(c->traces);
    memset(c, 0, sizeof(*c));
}

static const char *intern_cstr(kiln_head_t *h, const char *s)
{
    uint32_t id = kiln_head__intern_str(h, s, strlen(s)); /* may move h->strs: index after */
    return h->strs[id].ptr;
}

/* Functions and mappings are fixed-size records without padding, interned
 * by their bytes: one table-agnostic routine serves both. */
typedef struct record_key {
    const char *base; /* the table */
    size_t size;      /* of one record */
    const void *rec;
} record_key;

static bool record_eq(const void *ctx, uint32_t id)
{
    const record_key *k = ctx;
    return memcmp(k->base + (size_t)id * k->size, k->rec, k->size) == 0;
}

static uint32_t intern_record(kiln_hash_index *idx, void **table, size_t *n, size_t *cap,
                              const void *rec, size_t size, uint64_t hash)
{
    record_key k = {*table, size, rec};
    uint32_t id = kiln_hash_index_find(idx, hash, record_eq, &k);
    if (id == NONE) {
        kiln_grow(table, cap, *n + 1, size);
        id = (uint32_t)(*n)++;
        memcpy((char *)*table + (size_t)id * size, rec, size);
        kiln_hash_index_insert(idx, hash, id);
    }
    return id;
}

uint32_t kiln_head__intern_func(kiln_head_t *h, const hfunc *f)
{
    return intern_record(&h->func_idx, (void **)&h->funcs, &h->n_funcs, &h->cap_funcs, f,
                         sizeof(*f), XXH3_64bits(f, sizeof(*f)));
}

uint32_t kiln_head__intern_map(kiln_head_t *h, const hmap *m)
{
    return intern_record(&h->map_idx, (void **)&h->maps, &h->n_maps, &h->cap_maps, m, sizeof(*m),
                         XXH3_64bits(m, sizeof(*m)));
}

typedef struct loc_key {
    const kiln_head_t *h;
    const hloc *l;
    const hline *lines;
} loc_key;

static bool loc_eq(const void *ctx, uint32_t id)
{
    const loc_key *k = ctx;
    const hloc *a = &k->h->locs[id];
    return a->mapping == k->l->mapping && a->address == k->l->address &&
           a->n_lines == k->l->n_lines &&
           memcmp(&k->h->lines[a->line_off], k->lines, a->n_lines * sizeof(hline)) == 0;
}

static uint64_t loc_hash(const hloc *l, const hline *lines)
{
    return XXH3_64bits_withSeed(lines, l->n_lines * sizeof(hline), l->address * 31 + l->mapping);
}

static uint32_t intern_loc(kiln_head_t *h, hloc *l, const hline *lines, uint64_t hash)
{
    loc_key k = {h, l, lines};
    uint32_t id = kiln_hash_index_find(&h->loc_idx, hash, loc_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->lines, h->cap_lines, h->n_lines + l->n_lines);
    memcpy(&h->lines[h->n_lines], lines, l->n_lines * sizeof(hline));
    l->line_off = (uint32_t)h->n_lines;
    h->n_lines += l->n_lines;
    KILN_GROW(h->locs, h->cap_locs, h->n_locs + 1);
    id = (uint32_t)h->n_locs++;
    h->locs[id] = *l;
    kiln_hash_index_insert(&h->loc_idx, hash, id);
    return id;
}

uint32_t kiln_head__intern_loc(kiln_head_t *h, hloc *l, const hline *lines)
{
    return intern_loc(h, l, lines, loc_hash(l, lines));
}

static inline size_t node_slot(uint64_t key, size_t mask)
{
    /* A full 64-bit mix (murmur3's finaliser): parent and location must both
     * reach the low bits the mask keeps. */
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static void nodes_rehash(kiln_head_t *h)
{
    size_t ncap = h->nodes_cap ? h->nodes_cap * 2 : 1024;
    nslot *n = kiln_xcalloc(ncap, sizeof(nslot));
    for (size_t i = 0; i < h->nodes_cap; i++) {
        if (h->nodes_idx[i].key == 0)
            continue;
        size_t j = node_slot(h->nodes_idx[i].key, ncap - 1);
        while (n[j].key != 0)
            j = (j + 1) & (ncap - 1);
        n[j] = h->nodes_idx[i];
    }
    free(h->nodes_idx);
    h->nodes_idx = n;
    h->nodes_cap = ncap;
}

uint32_t kiln_head__stack_child(kiln_head_t *h, uint32_t parent, uint32_t loc)
{
    /* loc + 1 keeps the key of (root, location 0) nonzero. */
    uint64_t key = (uint64_t)parent << 32 | ((uint64_t)loc + 1);
    if ((h->n_nodes + 1) * 2 > h->nodes_cap)
        nodes_rehash(h);
    size_t mask = h->nodes_cap - 1, i = node_slot(key, mask);
    for (; h->nodes_idx[i].key != 0; i = (i + 1) & mask) {
        if (h->nodes_idx[i].key == key)
            return h->nodes_idx[i].id;
    }
    KILN_GROW(h->node_parent, h->cap_nodes, h->n_nodes + 1);
    KILN_GROW(h->node_loc, h->cap_nodes2, h->n_nodes + 1);
    uint32_t id = (uint32_t)h->n_nodes++;
    h->node_parent[id] = parent;
    h->node_loc[id] = loc;
    h->nodes_idx[i] = (nslot){key, id, 0};
    return id;
}

/* ---- the stack cache -------------------------------------------------------- */

static void stacks_rehash(kiln_head_t *h)
{
    size_t ncap = h->stacks_cap ? h->stacks_cap * 2 : 1024;
    sslot *n = kiln_xcalloc(ncap, sizeof(sslot));
    for (size_t i = 0; i < h->stacks_cap; i++) {
        if (h->stacks[i].node == 0)
            continue;
        size_t j = (size_t)h->stacks[i].hash & (ncap - 1);
        while (n[j].node != 0)
            j = (j + 1) & (ncap - 1);
        n[j] = h->stacks[i];
    }
    free(h->stacks);
    h->stacks = n;
    h->stacks_cap = ncap;
}

/* Whether node's path to the root is exactly ids[0..d) (leaf first). */
static bool stack_is(const kiln_head_t *h, uint32_t node, const uint32_t *ids, uint32_t d)
{
    for (uint32_t j = 0; j < d; j++, node = h->node_parent[node]) {
        if (node == 0 || h->node_loc[node] != ids[j])
            return false;
    }
    return node == 0;
}

static uint64_t stack_hash(const uint32_t *ids, uint32_t d)
{
    return XXH3_64bits(ids, (size_t)d * sizeof(*ids));
}

/* Starts loading the stack cache slot a lookup of hash begins at. */
static void stack_prefetch(const kiln_head_t *h, uint64_t hash)
{
    if (h->stacks_cap != 0)
        __builtin_prefetch(&h->stacks[(size_t)hash & (h->stacks_cap - 1)]);
}

/* The leaf node of the stack ids[0..d) (location ids, leaf first; hash is
 * stack_hash's), creating what the tree lacks; 0 for an empty stack. */
static uint32_t stack_node(kiln_head_t *h, const uint32_t *ids, uint32_t d, uint64_t hash)
{
    if (d == 0)
        return 0;
    if ((h->n_stacks + 1) * 2 > h->stacks_cap)
        stacks_rehash(h);
    size_t mask = h->stacks_cap - 1, i = (size_t)hash & mask;
    for (; h->stacks[i].node != 0; i = (i + 1) & mask) {
        const sslot *s = &h->stacks[i];
        if (s->hash == hash && s->depth == d && stack_is(h, s->node, ids, d))
            return s->node;
    }
    uint32_t node = 0;
    for (uint32_t j = d; j-- > 0;) /* root first */
        node = kiln_head__stack_child(h, node, ids[j]);
    h->stacks[i] = (sslot){hash, node, d};
    h->n_stacks++;
    return node;
}

/* ---- append --------------------------------------------------------------- */

/* Per-append translation of a profile's indices into head ids. */
typedef struct xlate {
    uint32_t *str, *map, *func, *loc;
} xlate;

static uint32_t x_str(kiln_head_t *h, xlate *x, const kiln_pprof_t *p, int64_t i)
{
    if (i < 0 || (uint64_t)i >= p->n_strings)
        i = 0;
    if (x->str[i] == NONE)
        x->str[i] = kiln_head__intern_str(h, p->strings[i].ptr, p->strings[i].len);
    return x->str[i];
}

/* Lookups issued ahead: a profile's symbols land all over tables of
 * megabytes, so translating them first hashes them all, then loads the
 * slots of the next few while one is compared, overlapping the misses. */
#define AHEAD 8

static void translate_functions(kiln_head_t *h, xlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    size_t n = p->n_functions;
    hfunc *f = kiln_arena_alloc(tmp, (n + 1) * sizeof(*f));
    uint64_t *hash = kiln_arena_alloc(tmp, (n + 1) * sizeof(*hash));
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_function *pf = &p->functions[i];
        f[i] = (hfunc){x_str(h, x, p, pf->name), x_str(h, x, p, pf->system_name),
                       x_str(h, x, p, pf->filename), 0, pf->start_line};
        hash[i] = XXH3_64bits(&f[i], sizeof(*f));
    }
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            kiln_hash_index_prefetch(&h->func_idx, hash[i + AHEAD]);
        x->func[i] = intern_record(&h->func_idx, (void **)&h->funcs, &h->n_funcs, &h->cap_funcs,
                                   &f[i], sizeof(*f), hash[i]);
    }
}

static void translate_locations(kiln_head_t *h, xlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    size_t n = p->n_locations;
    hloc *l = kiln_arena_alloc(tmp, (n + 1) * sizeof(*l));
    hline *lines = kiln_arena_alloc(tmp, (p->n_lines + 1) * sizeof(*lines)); /* as p->lines */
    uint64_t *hash = kiln_arena_alloc(tmp, (n + 1) * sizeof(*hash));
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_location *pl = &p->locations[i];
        for (uint32_t j = pl->line_off; j < pl->line_off + pl->n_lines; j++) {
            uint32_t fn = p->lines[j].function;
            lines[j] = (hline){fn == KILN_PPROF_NONE ? NONE : x->func[fn], 0, p->lines[j].line};
        }
        l[i] = (hloc){pl->mapping < p->n_mappings ? x->map[pl->mapping] : NONE, pl->address, 0,
                      pl->n_lines};
        hash[i] = loc_hash(&l[i], lines + pl->line_off);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            kiln_hash_index_prefetch(&h->loc_idx, hash[i + AHEAD]);
        x->loc[i] = intern_loc(h, &l[i], lines + p->locations[i].line_off, hash[i]);
    }
}

static void translate_symbols(kiln_head_t *h, xlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    for (size_t i = 0; i < p->n_mappings; i++) {
        const kiln_pprof_mapping *m = &p->mappings[i];
        hmap hm = {m->memory_start, m->memory_limit, m->file_offset, x_str(h, x, p, m->filename),
                   x_str(h, x, p, m->build_id)};
        x->map[i] = kiln_head__intern_map(h, &hm);
    }
    translate_functions(h, x, p, tmp);
    translate_locations(h, x, p, tmp);
}

typedef struct series_key {
    const kiln_head_t *h;
    const kiln_label_t *l;
    size_t n;
} series_key;

static bool series_eq(const void *ctx, uint32_t id)
{
    const series_key *k = ctx;
    const hseries *s = &k->h->series[id];
    if (s->n_labels != k->n)
        return false;
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(s->labels[i].name, k->l[i].name) != 0 ||
            strcmp(s->labels[i].value, k->l[i].value) != 0)
            return false;
    }
    return true;
}

/* kiln_head__intern_series with the fingerprint fp of l known. */
static uint32_t intern_series_fp(kiln_head_t *h, const kiln_label_t *l, size_t n, uint64_t fp)
{
    series_key k = {h, l, n};
    uint32_t id = kiln_hash_index_find(&h->series_idx, fp, series_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->series, h->cap_series, h->n_series + 1);
    id = (uint32_t)h->n_series++;
    hseries *s = &h->series[id];
    memset(s, 0, sizeof(*s));
    s->labels = kiln_arena_alloc(h->mem, n * sizeof(kiln_label_t));
    for (size_t i = 0; i < n; i++) {
        s->labels[i].name = intern_cstr(h, l[i].name);
        s->labels[i].value = intern_cstr(h, l[i].value);
    }
    s->n_labels = (uint32_t)n;
    kiln_hash_index_insert(&h->series_idx, fp, id);
    kiln_head__post_series(h, id);
    return id;
}

uint32_t kiln_head__intern_series(kiln_head_t *h, const kiln_label_t *l, size_t n)
{
    return intern_series_fp(h, l, n, kiln_labels_fingerprint(l, n));
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
static const uint32_t *candidates(const kiln_head_t *h, const kiln_selector_t *sel, size_t *n,
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

/* The stored series of sample type t (base labels plus the type labels,
 * sorted, and their fingerprint), its arrays in tmp. */
static kiln_head_series_key type_key(const kiln_label_t *base, size_t n, const kiln_pprof_t *p,
                                     size_t t, kiln_arena_t *tmp)
{
    kiln_label_t *l = kiln_arena_alloc(tmp, (n + TYPE_LABELS) * sizeof(*l));
    size_t m = TYPE_LABELS;
    const char *name = "", *svc = "";
    for (size_t i = 0; i < n; i++) {
        if (is_type_label(base[i].name))
            continue;
        if (strcmp(base[i].name, KILN_LABEL_NAME) == 0)
            name = base[i].value;
        else if (strcmp(base[i].name, KILN_LABEL_SERVICE_NAME) == 0)
            svc = base[i].value;
        l[m++] = base[i];
    }
    kiln_str_t f[4] = {
        kiln_pprof_str(p, p->sample_types[t].type), kiln_pprof_str(p, p->sample_types[t].unit),
        kiln_pprof_str(p, p->period_type.type), kiln_pprof_str(p, p->period_type.unit)};
    const char *values[TYPE_LABELS] = {kiln_arena_strndup(tmp, f[2].ptr, f[2].len),
                                       kiln_arena_strndup(tmp, f[3].ptr, f[3].len),
                                       profile_type_id(tmp, name, f),
                                       svc,
                                       kiln_arena_strndup(tmp, f[0].ptr, f[0].len),
                                       kiln_arena_strndup(tmp, f[1].ptr, f[1].len)};
    for (size_t i = 0; i < TYPE_LABELS; i++)
        l[i] = (kiln_label_t){type_label_names[i], values[i]};
    /* base is sorted: a name past "__unit__" costs one comparison */
    kiln_labels_sort(l, m);
    return (kiln_head_series_key){l, m, kiln_labels_fingerprint(l, m)};
}

/* Part pt's stored series of sample type t: keys[t], or built in tmp. */
static kiln_head_series_key part_series(const kiln_head_part *pt, const kiln_head_series_key *keys,
                                        size_t t, kiln_arena_t *tmp)
{
    if (keys != NULL)
        return keys[t];
    return type_key(pt->labels, pt->n_labels, pt->profile, t, tmp);
}

const kiln_head_series_key **kiln_head_series_keys(const kiln_head_part *parts, size_t n,
                                                   kiln_arena_t *a)
{
    const kiln_head_series_key **keys = kiln_arena_alloc(a, (n + 1) * sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_t *p = parts[i].profile;
        kiln_head_series_key *k = kiln_arena_alloc(a, (p->n_sample_types + 1) * sizeof(*k));
        for (size_t t = 0; t < p->n_sample_types; t++)
            k[t] = type_key(parts[i].labels, parts[i].n_labels, p, t, a);
        keys[i] = k;
    }
    return keys;
}

/* Whether h holds the series of sorted labels l (fingerprint fp). Read
 * lock held. */
static bool holds_series(const kiln_head_t *h, const kiln_label_t *l, size_t n, uint64_t fp)
{
    series_key k = {h, l, n};
    return h != NULL && kiln_hash_index_find(&h->series_idx, fp, series_eq, &k) != NONE;
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
            if (!holds_series(h, s.labels, s.n_labels, s.fp) &&
                !holds_series(also, s.labels, s.n_labels, s.fp))
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

void kiln_head__add_profile(kiln_head_t *h, uint32_t sid, int64_t time_ms, uint64_t id,
                            const hcols *c, size_t n, int64_t unstored)
{
    size_t off = h->n_samples;
    int64_t total = unstored;
    const uint32_t *node = c->node;
    const int64_t *value = c->value;
    KILN_GROW(h->s_node, h->cap_s_node, h->n_samples + n);
    KILN_GROW(h->s_value, h->cap_s_value, h->n_samples + n);
    want_spans(h, c->span, n);
    if (h->s_span != NULL)
        KILN_GROW(h->s_span, h->cap_s_span, h->n_samples + n);
    want_traces(h, c->trace, n);
    if (h->s_trace != NULL)
        KILN_GROW(h->s_trace, h->cap_s_trace, h->n_samples + n);
    uint32_t last[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        if (node[i] == 0) /* an empty stack: nothing to draw, but in the series total */
            total = kiln_add_wrap(total, value[i]);
        if (value[i] == 0 || node[i] == 0)
            continue;
        if (h->s_span != NULL)
            h->s_span[h->n_samples] = c->span != NULL ? c->span[i] : 0;
        if (h->s_trace != NULL)
            h->s_trace[h->n_samples] = c->trace != NULL ? head_trace(h, c, c->trace[i], last) : 0;
        h->s_node[h->n_samples] = node[i];
        h->s_value[h->n_samples++] = value[i];
        total = kiln_add_wrap(total, value[i]);
    }
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
    xlate x;
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
    translate_symbols(h, &b->x, p, b->tmp);
    b->sym = p;
}

/* The stack node of each sample of p, through the stack cache: every stack
 * translated and hashed first, then looked up with the cache slots of the
 * ones AHEAD prefetched (as translate_symbols). */
static uint32_t *sample_nodes(kiln_head_t *h, batch *b, const kiln_pprof_t *p)
{
    size_t n = p->n_samples, total = 0;
    for (size_t i = 0; i < n; i++)
        total += p->samples[i].n_locs; /* this part's, not all of p->locs */
    uint32_t *nodes = kiln_arena_alloc(b->tmp, (n + 1) * sizeof(uint32_t));
    uint32_t *ids = kiln_arena_alloc(b->tmp, (total + 1) * sizeof(uint32_t));
    uint64_t *hash = kiln_arena_alloc(b->tmp, (n + 1) * sizeof(uint64_t));
    uint32_t *at = ids;
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t j = 0; j < s->n_locs; j++)
            at[j] = b->x.loc[p->locs[s->loc_off + j]];
        hash[i] = stack_hash(at, s->n_locs);
        at += s->n_locs;
    }
    at = ids;
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            stack_prefetch(h, hash[i + AHEAD]);
        nodes[i] = stack_node(h, at, p->samples[i].n_locs, hash[i]);
        at += p->samples[i].n_locs;
    }
    return nodes;
}

/* Appends one part (its stored series keys, or NULL) under the write lock. */
static void append_part(kiln_head_t *h, batch *b, const kiln_head_part *pt,
                        const kiln_head_series_key *keys)
{
    const kiln_pprof_t *p = pt->profile;
    int64_t time_ns = p->time_nanos;
    int64_t time_ms = (time_ns > 0 ? time_ns : kiln_wall_ns()) / 1000000;
    batch_translate(h, b, p);
    uint32_t *nodes = sample_nodes(h, b, p);
    int64_t *values = kiln_arena_alloc(b->tmp, (p->n_samples + 1) * sizeof(int64_t));
    hcols c = {nodes, values, NULL, NULL, NULL, 0};
    sample_ids(p, b->tmp, &c);
    for (size_t t = 0; t < p->n_sample_types; t++) {
        for (size_t i = 0; i < p->n_samples; i++)
            values[i] = p->values[p->samples[i].value_off + t];
        kiln_head_series_key k = part_series(pt, keys, t, b->tmp);
        kiln_head__add_profile(h, intern_series_fp(h, k.labels, k.n_labels, k.fp), time_ms, pt->id,
                               &c, p->n_samples, 0);
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
    const uint32_t *c = candidates(h, sel, &n, &all);
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

uint64_t kiln_profile_key(const kiln_label_t *l, size_t n, int64_t time_ms, uint64_t id)
{
    uint64_t k[3] = {kiln_labels_fingerprint(l, n), (uint64_t)time_ms, id};
    return XXH3_64bits(k, sizeof(k));
}

/* Whether profile pr of series s is in the filter's range and passes its
 * id and key sets. */
static bool profile_kept(const hseries *s, const hprofile *pr, const kiln_read_filter *f)
{
    if (!kiln_head__in_range(pr->time_ms, f->start_ms, f->end_ms))
        return false;
    if (f->ids != NULL && !sorted_has(f->ids, f->n_ids, pr->id))
        return false;
    if (f->keys == NULL)
        return true;
    return sorted_has(f->keys, f->n_keys,
                      kiln_profile_key(s->labels, s->n_labels, pr->time_ms, pr->id));
}

/* Whether any profile of series s passes the filter (before spans). */
static bool series_kept(const kiln_head_t *h, const hseries *s, const kiln_read_filter *f)
{
    for (size_t j = 0; j < s->n_profiles; j++)
        if (profile_kept(s, &h->profiles[s->profiles[j]], f))
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
    cols c;
    if (r->st != KILN_OK || !series_kept(h, s, r->f) || !series_cols(h, sid, r, &c))
        return;
    span_sum *tmp = NULL;
    size_t cap = 0;
    for (size_t j = 0; j < s->n_profiles && !kiln_cancel_poll(); j++) {
        const hprofile *pr = &h->profiles[s->profiles[j]];
        bool hit;
        if (!profile_kept(s, pr, r->f))
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

/* The per-node sums of all of a block series' profiles: read with the
 * block's index (block.c), or built here once for a block without them.
 * KILN_DATA_LOSS when the series' chunk does not load. */
static kiln_status series_agg(kiln_head_t *h, uint32_t sid, const hagg **out, kiln_err *err)
{
    pthread_mutex_lock(&h->agg_mu);
    if (h->agg == NULL)
        h->agg = kiln_xcalloc(h->n_series + 1, sizeof(*h->agg));
    hagg *g = h->agg[sid];
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
        h->agg[sid] = g;
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

/* Sums series sid's kept samples into r->acc, from the head's columns, a
 * block's chunk, or the chunk's cached sums. */
static void accumulate_series(const kiln_head_t *h, uint32_t sid, void *arg)
{
    reader *r = arg;
    const hseries *s = &h->series[sid];
    const kiln_read_filter *f = r->f;
    if (r->st != KILN_OK || !series_kept(h, s, f))
        return;
    if (whole_series(h, s, f)) {
        const hagg *g;
        r->st = series_agg((kiln_head_t *)h, sid, &g, r->err);
        for (uint32_t k = 0; r->st == KILN_OK && k < g->n; k++)
            r->acc[g->node[k]] += g->value[k];
        r->any |= r->st == KILN_OK;
        return;
    }
    cols c;
    r->st = cols_load(h, sid, f->start_ms, f->end_ms, r, &c, r->err);
    for (size_t j = 0; r->st == KILN_OK && j < s->n_profiles && !kiln_cancel_poll(); j++) {
        const hprofile *pr = &h->profiles[s->profiles[j]];
        if (!profile_kept(s, pr, f))
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
