/* SPDX-License-Identifier: Apache-2.0
 * head_intern: a head's symbol tables (strings, traces, functions,
 * mappings, locations), its stack tree and the stack cache in front of
 * it, and the translation of a profile's symbols and stacks into them.
 * Interned strings are NUL-terminated copies in an arena that never moves,
 * so label sets can point at them. The write lock of the head is held. */
#include "head_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hash_index.h"
#include "xmalloc.h"

#define NONE KILN_HEAD_NONE

/* A symbol's key in its table's index: 96 bits of its XXH3-128, trusted
 * alone as the stack cache trusts its hashes (kiln_head_t.stacks). A probe
 * that had to confirm a match read the interned symbol, a cache miss per
 * symbol on top of the slot's when a large profile's tens of thousands of
 * symbols are interned again on every push; the odds that two of the 2^32
 * symbols a table can hold share a key are under 2^-33 times 2^-32. */
typedef struct sym_key {
    uint64_t hash;
    uint32_t tag;
} sym_key;

static sym_key sym_key_of(XXH128_hash_t x)
{
    return (sym_key){x.low64, (uint32_t)x.high64};
}

static sym_key bytes_key(const void *p, size_t len)
{
    return sym_key_of(XXH3_128bits(p, len));
}

/* kiln_head__intern_str with the string's key given. */
static uint32_t intern_str(kiln_head_t *h, const char *p, size_t len, sym_key k)
{
    uint32_t id = kiln_hash_index_find_key(&h->str_idx, k.hash, k.tag);
    if (id != NONE)
        return id;
    KILN_GROW(h->strs, h->cap_strs, h->n_strs + 1);
    id = (uint32_t)h->n_strs++;
    h->strs[id].ptr = kiln_arena_strndup(h->mem, p, len);
    h->strs[id].len = (uint32_t)len;
    kiln_hash_index_insert_key(&h->str_idx, k.hash, k.tag, id);
    return id;
}

uint32_t kiln_head__intern_str(kiln_head_t *h, const char *p, size_t len)
{
    return intern_str(h, p, len, bytes_key(p, len));
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

const char *kiln_head__intern_cstr(kiln_head_t *h, const char *s)
{
    uint32_t id = kiln_head__intern_str(h, s, strlen(s)); /* may move h->strs: index after */
    return h->strs[id].ptr;
}

/* Functions and mappings are fixed-size records without padding, interned
 * by their bytes: one table-agnostic routine serves both. */
static uint32_t intern_record(kiln_hash_index *idx, void **table, size_t *n, size_t *cap,
                              const void *rec, size_t size, sym_key k)
{
    uint32_t id = kiln_hash_index_find_key(idx, k.hash, k.tag);
    if (id == NONE) {
        kiln_grow(table, cap, *n + 1, size);
        id = (uint32_t)(*n)++;
        memcpy((char *)*table + (size_t)id * size, rec, size);
        kiln_hash_index_insert_key(idx, k.hash, k.tag, id);
    }
    return id;
}

uint32_t kiln_head__intern_func(kiln_head_t *h, const hfunc *f)
{
    return intern_record(&h->func_idx, (void **)&h->funcs, &h->n_funcs, &h->cap_funcs, f,
                         sizeof(*f), bytes_key(f, sizeof(*f)));
}

uint32_t kiln_head__intern_map(kiln_head_t *h, const hmap *m)
{
    return intern_record(&h->map_idx, (void **)&h->maps, &h->n_maps, &h->cap_maps, m, sizeof(*m),
                         bytes_key(m, sizeof(*m)));
}

/* A location's key: its lines' bytes hashed with its address as the seed,
 * its mapping then folded in by an odd multiple (a bijection, so locations
 * that differ only in mapping never share a key); the lines' count is
 * their length. */
static sym_key loc_key(const hloc *l, const hline *lines)
{
    XXH128_hash_t x = XXH3_128bits_withSeed(lines, l->n_lines * sizeof(hline), l->address);
    x.low64 ^= ((uint64_t)l->mapping + 1) * 0x9e3779b97f4a7c15ULL;
    return sym_key_of(x);
}

static uint32_t intern_loc(kiln_head_t *h, hloc *l, const hline *lines, sym_key k)
{
    uint32_t id = kiln_hash_index_find_key(&h->loc_idx, k.hash, k.tag);
    if (id != NONE)
        return id;
    KILN_GROW(h->lines, h->cap_lines, h->n_lines + l->n_lines);
    memcpy(&h->lines[h->n_lines], lines, l->n_lines * sizeof(hline));
    l->line_off = (uint32_t)h->n_lines;
    h->n_lines += l->n_lines;
    KILN_GROW(h->locs, h->cap_locs, h->n_locs + 1);
    id = (uint32_t)h->n_locs++;
    h->locs[id] = *l;
    kiln_hash_index_insert_key(&h->loc_idx, k.hash, k.tag, id);
    return id;
}

uint32_t kiln_head__intern_loc(kiln_head_t *h, hloc *l, const hline *lines)
{
    return intern_loc(h, l, lines, loc_key(l, lines));
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
        size_t j = (size_t)h->stacks[i].hash.lo & (ncap - 1);
        while (n[j].node != 0)
            j = (j + 1) & (ncap - 1);
        n[j] = h->stacks[i];
    }
    free(h->stacks);
    h->stacks = n;
    h->stacks_cap = ncap;
}

static stack_id stack_hash(const uint32_t *ids, uint32_t d)
{
    XXH128_hash_t x = XXH3_128bits(ids, (size_t)d * sizeof(*ids));
    return (stack_id){x.low64, x.high64};
}

/* Starts loading the stack cache slot a lookup of hash begins at. */
static void stack_prefetch(const kiln_head_t *h, stack_id hash)
{
    if (h->stacks_cap != 0)
        __builtin_prefetch(&h->stacks[(size_t)hash.lo & (h->stacks_cap - 1)]);
}

/* The leaf node of the stack ids[0..d) (location ids, leaf first; hash is
 * stack_hash's), creating what the tree lacks; 0 for an empty stack. */
static uint32_t stack_node(kiln_head_t *h, const uint32_t *ids, uint32_t d, stack_id hash)
{
    if (d == 0)
        return 0;
    if ((h->n_stacks + 1) * 2 > h->stacks_cap)
        stacks_rehash(h);
    size_t mask = h->stacks_cap - 1, i = (size_t)hash.lo & mask;
    for (; h->stacks[i].node != 0; i = (i + 1) & mask) {
        const sslot *s = &h->stacks[i];
        if (s->hash.lo == hash.lo && s->hash.hi == hash.hi && s->depth == d)
            return s->node; /* the same stack: see kiln_head_t.stacks */
    }
    uint32_t node = 0;
    for (uint32_t j = d; j-- > 0;) /* root first */
        node = kiln_head__stack_child(h, node, ids[j]);
    h->stacks[i] = (sslot){hash, node, d};
    h->n_stacks++;
    return node;
}

/* The string a reference of p names: itself, or 0 ("") when out of range. */
static size_t str_index(const kiln_pprof_t *p, int64_t i)
{
    return i < 0 || (uint64_t)i >= p->n_strings ? 0 : (size_t)i;
}

/* The head's id of string i of p (translate_strings interned it). */
static uint32_t x_str(const hxlate *x, const kiln_pprof_t *p, int64_t i)
{
    return x->str[str_index(p, i)];
}

/* Lookups issued ahead: a profile's symbols land all over tables of
 * megabytes, so translating them first hashes them all, then loads the
 * slots of the next few while one is compared, overlapping the misses. */
#define AHEAD 8

/* x->str of a string queued by queue_str, not interned yet. */
#define QUEUED (NONE - 1)

/* Queues the string reference i of p names for translate_strings, once,
 * hashing it. */
static void queue_str(hxlate *x, const kiln_pprof_t *p, int64_t ref, uint32_t *want, sym_key *key,
                      size_t *n)
{
    size_t i = str_index(p, ref);
    if (x->str[i] != NONE)
        return;
    x->str[i] = QUEUED;
    want[*n] = (uint32_t)i;
    key[(*n)++] = bytes_key(p->strings[i].ptr, p->strings[i].len);
}

/* Interns every string the mappings and functions of p name, all at once
 * with lookups issued ahead, as functions and locations are: a large Go
 * profile names tens of thousands, each one lookup a miss, and interned
 * one at a time they were the largest stall of its push. */
static void translate_strings(kiln_head_t *h, hxlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    size_t cap = 2 * p->n_mappings + 3 * p->n_functions + 1, n = 0;
    uint32_t *want = kiln_arena_alloc(tmp, cap * sizeof(*want));
    sym_key *key = kiln_arena_alloc(tmp, cap * sizeof(*key));
    for (size_t i = 0; i < p->n_mappings; i++) {
        queue_str(x, p, p->mappings[i].filename, want, key, &n);
        queue_str(x, p, p->mappings[i].build_id, want, key, &n);
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        const kiln_pprof_function *f = &p->functions[i];
        queue_str(x, p, f->name, want, key, &n);
        queue_str(x, p, f->system_name, want, key, &n);
        queue_str(x, p, f->filename, want, key, &n);
    }
    for (size_t k = 0; k < n; k++) {
        if (k + AHEAD < n)
            kiln_hash_index_prefetch(&h->str_idx, key[k + AHEAD].hash);
        const kiln_str_t *str = &p->strings[want[k]];
        x->str[want[k]] = intern_str(h, str->ptr, str->len, key[k]);
    }
}

static void translate_functions(kiln_head_t *h, hxlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    size_t n = p->n_functions;
    hfunc *f = kiln_arena_alloc(tmp, (n + 1) * sizeof(*f));
    sym_key *key = kiln_arena_alloc(tmp, (n + 1) * sizeof(*key));
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_function *pf = &p->functions[i];
        f[i] = (hfunc){x_str(x, p, pf->name), x_str(x, p, pf->system_name),
                       x_str(x, p, pf->filename), 0, pf->start_line};
        key[i] = bytes_key(&f[i], sizeof(*f));
    }
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            kiln_hash_index_prefetch(&h->func_idx, key[i + AHEAD].hash);
        x->func[i] = intern_record(&h->func_idx, (void **)&h->funcs, &h->n_funcs, &h->cap_funcs,
                                   &f[i], sizeof(*f), key[i]);
    }
}

static void translate_locations(kiln_head_t *h, hxlate *x, const kiln_pprof_t *p, kiln_arena_t *tmp)
{
    size_t n = p->n_locations;
    hloc *l = kiln_arena_alloc(tmp, (n + 1) * sizeof(*l));
    hline *lines = kiln_arena_alloc(tmp, (p->n_lines + 1) * sizeof(*lines)); /* as p->lines */
    sym_key *key = kiln_arena_alloc(tmp, (n + 1) * sizeof(*key));
    for (size_t i = 0; i < n; i++) {
        const kiln_pprof_location *pl = &p->locations[i];
        for (uint32_t j = pl->line_off; j < pl->line_off + pl->n_lines; j++) {
            uint32_t fn = p->lines[j].function;
            lines[j] = (hline){fn == KILN_PPROF_NONE ? NONE : x->func[fn], 0, p->lines[j].line};
        }
        l[i] = (hloc){pl->mapping < p->n_mappings ? x->map[pl->mapping] : NONE, pl->address, 0,
                      pl->n_lines};
        key[i] = loc_key(&l[i], lines + pl->line_off);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            kiln_hash_index_prefetch(&h->loc_idx, key[i + AHEAD].hash);
        x->loc[i] = intern_loc(h, &l[i], lines + p->locations[i].line_off, key[i]);
    }
}

void kiln_head__translate_symbols(kiln_head_t *h, hxlate *x, const kiln_pprof_t *p,
                                  kiln_arena_t *tmp)
{
    translate_strings(h, x, p, tmp);
    for (size_t i = 0; i < p->n_mappings; i++) {
        const kiln_pprof_mapping *m = &p->mappings[i];
        hmap hm = {m->memory_start, m->memory_limit, m->file_offset, x_str(x, p, m->filename),
                   x_str(x, p, m->build_id)};
        x->map[i] = kiln_head__intern_map(h, &hm);
    }
    translate_functions(h, x, p, tmp);
    translate_locations(h, x, p, tmp);
}

/* The stack node of each sample of p, through the stack cache: every stack
 * translated and hashed first, then looked up with the cache slots of the
 * ones AHEAD prefetched (as kiln_head__translate_symbols). */
uint32_t *kiln_head__sample_nodes(kiln_head_t *h, const hxlate *x, const kiln_pprof_t *p,
                                  kiln_arena_t *tmp)
{
    size_t n = p->n_samples, total = 0;
    for (size_t i = 0; i < n; i++)
        total += p->samples[i].n_locs; /* this part's, not all of p->locs */
    uint32_t *nodes = kiln_arena_alloc(tmp, (n + 1) * sizeof(uint32_t));
    uint32_t *ids = kiln_arena_alloc(tmp, (total + 1) * sizeof(uint32_t));
    stack_id *hash = kiln_arena_alloc(tmp, (n + 1) * sizeof(*hash));
    uint32_t *at = ids;
    const uint32_t *loc = x->loc;
    const uint64_t *in = p->locs; /* may be NULL: indexed, never offset */
    for (size_t i = 0; i < n; i++) {
        /* in locals: a store to at (uint32_t) may alias the sample's
         * fields, and would reload them every frame */
        size_t off = p->samples[i].loc_off;
        uint32_t d = p->samples[i].n_locs;
        for (uint32_t j = 0; j < d; j++)
            at[j] = loc[in[off + j]];
        hash[i] = stack_hash(at, d);
        at += d;
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
