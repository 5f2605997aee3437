/* SPDX-License-Identifier: Apache-2.0
 * head: interning tables, the stack tree and sample columns of one tenant.
 * Interned strings are NUL-terminated copies in an arena that never moves,
 * so label sets can point at them. */
#include "head.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "hidx.h"
#include "xmalloc.h"

#define NONE UINT32_MAX
#define TYPE_LABELS 6

typedef struct hstr { const char *ptr; uint32_t len; } hstr;
/* Interned records are hashed and compared as raw bytes, so none may have
 * padding: every field is 64 bits or they pair up to 64. */
typedef struct hfunc { uint32_t name, system_name, filename, pad; int64_t start_line; } hfunc;
typedef struct hmap {
    uint64_t start, limit, offset;
    uint32_t filename, build_id;
} hmap;
typedef struct hline { uint32_t func, pad; int64_t line; } hline;
_Static_assert(sizeof(hfunc) == 24 && sizeof(hline) == 16 && sizeof(hmap) == 32,
               "interned records must have no padding");
typedef struct hloc { uint32_t mapping; uint64_t address; uint32_t line_off, n_lines; } hloc;
typedef struct hseries {
    kiln_label_t *labels;
    uint32_t n_labels;
    uint32_t *profiles;
    size_t n_profiles, cap_profiles;
    int64_t min_ms, max_ms;
} hseries;
typedef struct hprofile { uint32_t series; int64_t time_ms; size_t off; uint32_t n; } hprofile;

struct kiln_head {
    pthread_rwlock_t lock;
    kiln_arena_t *mem;
    hstr *strs; size_t n_strs, cap_strs; kiln_hidx str_idx;
    hfunc *funcs; size_t n_funcs, cap_funcs; kiln_hidx func_idx;
    hmap *maps; size_t n_maps, cap_maps; kiln_hidx map_idx;
    hloc *locs; size_t n_locs, cap_locs; kiln_hidx loc_idx;
    hline *lines; size_t n_lines, cap_lines;
    uint32_t *node_parent, *node_loc; size_t n_nodes, cap_nodes, cap_nodes2; kiln_hidx node_idx;
    hseries *series; size_t n_series, cap_series; kiln_hidx series_idx;
    hprofile *profiles; size_t n_profiles, cap_profiles;
    uint32_t *s_node; size_t cap_s_node;
    int64_t *s_value; size_t n_samples, cap_s_value;
};

kiln_head_t *kiln_head_create(void)
{
    kiln_head_t *h = kiln_xcalloc(1, sizeof(*h));
    pthread_rwlock_init(&h->lock, NULL);
    h->mem = kiln_arena_create(0);
    kiln_hidx_init(&h->str_idx);
    kiln_hidx_init(&h->func_idx);
    kiln_hidx_init(&h->map_idx);
    kiln_hidx_init(&h->loc_idx);
    kiln_hidx_init(&h->node_idx);
    kiln_hidx_init(&h->series_idx);
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
    for (size_t i = 0; i < h->n_series; i++)
        free(h->series[i].profiles);
    kiln_hidx *idx[] = {&h->str_idx, &h->func_idx, &h->map_idx, &h->loc_idx, &h->node_idx, &h->series_idx};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
        kiln_hidx_fini(idx[i]);
    void *arrays[] = {h->strs, h->funcs, h->maps, h->locs, h->lines, h->node_parent, h->node_loc,
                      h->series, h->profiles, h->s_node, h->s_value};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
        free(arrays[i]);
    kiln_arena_destroy(h->mem);
    pthread_rwlock_destroy(&h->lock);
    free(h);
}

/* ---- interning ---------------------------------------------------------- */

typedef struct str_key { const kiln_head_t *h; const char *p; size_t len; } str_key;

static bool str_eq(const void *ctx, uint32_t id)
{
    const str_key *k = ctx;
    const hstr *s = &k->h->strs[id];
    return s->len == k->len && memcmp(s->ptr, k->p, k->len) == 0;
}

static uint32_t intern_str(kiln_head_t *h, const char *p, size_t len)
{
    str_key k = {h, p, len};
    uint64_t hash = XXH3_64bits(p, len);
    uint32_t id = kiln_hidx_find(&h->str_idx, hash, str_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->strs, h->cap_strs, h->n_strs + 1);
    id = (uint32_t)h->n_strs++;
    h->strs[id].ptr = kiln_arena_strndup(h->mem, p, len);
    h->strs[id].len = (uint32_t)len;
    kiln_hidx_insert(&h->str_idx, hash, id);
    return id;
}

static const char *intern_cstr(kiln_head_t *h, const char *s)
{
    uint32_t id = intern_str(h, s, strlen(s)); /* may move h->strs: index after */
    return h->strs[id].ptr;
}

typedef struct blob_key { const kiln_head_t *h; const void *v; } blob_key;

static bool func_eq(const void *ctx, uint32_t id)
{
    const blob_key *k = ctx;
    return memcmp(&k->h->funcs[id], k->v, sizeof(hfunc)) == 0;
}

static bool map_eq(const void *ctx, uint32_t id)
{
    const blob_key *k = ctx;
    return memcmp(&k->h->maps[id], k->v, sizeof(hmap)) == 0;
}

static uint32_t intern_func(kiln_head_t *h, const hfunc *f)
{
    blob_key k = {h, f};
    uint64_t hash = XXH3_64bits(f, sizeof(*f));
    uint32_t id = kiln_hidx_find(&h->func_idx, hash, func_eq, &k);
    if (id == NONE) {
        KILN_GROW(h->funcs, h->cap_funcs, h->n_funcs + 1);
        id = (uint32_t)h->n_funcs++;
        h->funcs[id] = *f;
        kiln_hidx_insert(&h->func_idx, hash, id);
    }
    return id;
}

static uint32_t intern_map(kiln_head_t *h, const hmap *m)
{
    blob_key k = {h, m};
    uint64_t hash = XXH3_64bits(m, sizeof(*m));
    uint32_t id = kiln_hidx_find(&h->map_idx, hash, map_eq, &k);
    if (id == NONE) {
        KILN_GROW(h->maps, h->cap_maps, h->n_maps + 1);
        id = (uint32_t)h->n_maps++;
        h->maps[id] = *m;
        kiln_hidx_insert(&h->map_idx, hash, id);
    }
    return id;
}

typedef struct loc_key { const kiln_head_t *h; const hloc *l; const hline *lines; } loc_key;

static bool loc_eq(const void *ctx, uint32_t id)
{
    const loc_key *k = ctx;
    const hloc *a = &k->h->locs[id];
    return a->mapping == k->l->mapping && a->address == k->l->address &&
           a->n_lines == k->l->n_lines &&
           memcmp(&k->h->lines[a->line_off], k->lines, a->n_lines * sizeof(hline)) == 0;
}

static uint32_t intern_loc(kiln_head_t *h, hloc *l, const hline *lines)
{
    loc_key k = {h, l, lines};
    uint64_t hash = XXH3_64bits_withSeed(lines, l->n_lines * sizeof(hline),
                                         l->address * 31 + l->mapping);
    uint32_t id = kiln_hidx_find(&h->loc_idx, hash, loc_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->lines, h->cap_lines, h->n_lines + l->n_lines);
    memcpy(&h->lines[h->n_lines], lines, l->n_lines * sizeof(hline));
    l->line_off = (uint32_t)h->n_lines;
    h->n_lines += l->n_lines;
    KILN_GROW(h->locs, h->cap_locs, h->n_locs + 1);
    id = (uint32_t)h->n_locs++;
    h->locs[id] = *l;
    kiln_hidx_insert(&h->loc_idx, hash, id);
    return id;
}

typedef struct node_key { const kiln_head_t *h; uint32_t parent, loc; } node_key;

static bool node_eq(const void *ctx, uint32_t id)
{
    const node_key *k = ctx;
    return k->h->node_parent[id] == k->parent && k->h->node_loc[id] == k->loc;
}

static uint32_t stack_child(kiln_head_t *h, uint32_t parent, uint32_t loc)
{
    node_key k = {h, parent, loc};
    uint64_t hash = XXH3_64bits_withSeed(&loc, sizeof(loc), parent);
    uint32_t id = kiln_hidx_find(&h->node_idx, hash, node_eq, &k);
    if (id != NONE)
        return id;
    KILN_GROW(h->node_parent, h->cap_nodes, h->n_nodes + 1);
    KILN_GROW(h->node_loc, h->cap_nodes2, h->n_nodes + 1);
    id = (uint32_t)h->n_nodes++;
    h->node_parent[id] = parent;
    h->node_loc[id] = loc;
    kiln_hidx_insert(&h->node_idx, hash, id);
    return id;
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
        x->str[i] = intern_str(h, p->strings[i].ptr, p->strings[i].len);
    return x->str[i];
}

static void translate_symbols(kiln_head_t *h, xlate *x, const kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_mappings; i++) {
        const kiln_pprof_mapping *m = &p->mappings[i];
        hmap hm = {m->memory_start, m->memory_limit, m->file_offset,
                   x_str(h, x, p, m->filename), x_str(h, x, p, m->build_id)};
        x->map[i] = intern_map(h, &hm);
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        const kiln_pprof_function *f = &p->functions[i];
        hfunc hf = {x_str(h, x, p, f->name), x_str(h, x, p, f->system_name),
                    x_str(h, x, p, f->filename), 0, f->start_line};
        x->func[i] = intern_func(h, &hf);
    }
    hline tmp[64];
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        hline *lines = l->n_lines <= 64 ? tmp : kiln_xmalloc(l->n_lines * sizeof(hline));
        for (uint32_t j = 0; j < l->n_lines; j++) {
            const kiln_pprof_line *pl = &p->lines[l->line_off + j];
            lines[j].func = pl->function == KILN_PPROF_NONE ? NONE : x->func[pl->function];
            lines[j].pad = 0;
            lines[j].line = pl->line;
        }
        hloc hl = {l->mapping < p->n_mappings ? x->map[l->mapping] : NONE, l->address, 0,
                   l->n_lines};
        x->loc[i] = intern_loc(h, &hl, lines);
        if (lines != tmp)
            free(lines);
    }
}

typedef struct series_key { const kiln_head_t *h; const kiln_label_t *l; size_t n; } series_key;

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

static uint32_t intern_series(kiln_head_t *h, const kiln_label_t *l, size_t n)
{
    series_key k = {h, l, n};
    uint64_t fp = kiln_labels_fingerprint(l, n);
    uint32_t id = kiln_hidx_find(&h->series_idx, fp, series_eq, &k);
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
    kiln_hidx_insert(&h->series_idx, fp, id);
    return id;
}

static bool is_type_label(const char *name)
{
    static const char *const reserved[] = {
        KILN_LABEL_PROFILE_TYPE, KILN_LABEL_TYPE, KILN_LABEL_UNIT,
        KILN_LABEL_PERIOD_TYPE, KILN_LABEL_PERIOD_UNIT, KILN_LABEL_SERVICE_NAME_PRIV};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(name, reserved[i]) == 0)
            return true;
    }
    return false;
}

/* The stored series of sample type t: base labels plus the type labels. */
static uint32_t type_series(kiln_head_t *h, const kiln_label_t *base, size_t n,
                            const kiln_pprof_t *p, size_t t, kiln_arena_t *tmp)
{
    kiln_label_t *l = kiln_arena_alloc(tmp, (n + TYPE_LABELS) * sizeof(*l));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_type_label(base[i].name))
            l[m++] = base[i];
    }
    kiln_str_t ty = kiln_pprof_str(p, p->sample_types[t].type);
    kiln_str_t un = kiln_pprof_str(p, p->sample_types[t].unit);
    kiln_str_t pt = kiln_pprof_str(p, p->period_type.type);
    kiln_str_t pu = kiln_pprof_str(p, p->period_type.unit);
    const char *name = kiln_labels_get(base, n, KILN_LABEL_NAME);
    const char *svc = kiln_labels_get(base, n, KILN_LABEL_SERVICE_NAME);
    l[m++] = (kiln_label_t){KILN_LABEL_TYPE, kiln_arena_strndup(tmp, ty.ptr, ty.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_UNIT, kiln_arena_strndup(tmp, un.ptr, un.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_PERIOD_TYPE, kiln_arena_strndup(tmp, pt.ptr, pt.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_PERIOD_UNIT, kiln_arena_strndup(tmp, pu.ptr, pu.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_SERVICE_NAME_PRIV, svc ? svc : ""};
    l[m++] = (kiln_label_t){KILN_LABEL_PROFILE_TYPE,
                            kiln_arena_printf(tmp, "%s:%.*s:%.*s:%.*s:%.*s", name ? name : "",
                                              (int)ty.len, ty.ptr, (int)un.len, un.ptr,
                                              (int)pt.len, pt.ptr, (int)pu.len, pu.ptr)};
    kiln_labels_sort(l, m);
    return intern_series(h, l, m);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void add_profile(kiln_head_t *h, uint32_t sid, int64_t time_ms, const uint32_t *nodes,
                        const kiln_pprof_t *p, size_t t)
{
    size_t n_types = p->n_sample_types, off = h->n_samples;
    KILN_GROW(h->s_node, h->cap_s_node, h->n_samples + p->n_samples);
    KILN_GROW(h->s_value, h->cap_s_value, h->n_samples + p->n_samples);
    for (size_t i = 0; i < p->n_samples; i++) {
        int64_t v = p->values[p->samples[i].value_off + t];
        (void)n_types;
        if (v == 0)
            continue;
        h->s_node[h->n_samples] = nodes[i];
        h->s_value[h->n_samples++] = v;
    }
    KILN_GROW(h->profiles, h->cap_profiles, h->n_profiles + 1);
    uint32_t pid = (uint32_t)h->n_profiles++;
    h->profiles[pid] = (hprofile){sid, time_ms, off, (uint32_t)(h->n_samples - off)};
    hseries *s = &h->series[sid];
    KILN_GROW(s->profiles, s->cap_profiles, s->n_profiles + 1);
    s->profiles[s->n_profiles++] = pid;
    if (s->n_profiles == 1 || time_ms < s->min_ms)
        s->min_ms = time_ms;
    if (s->n_profiles == 1 || time_ms > s->max_ms)
        s->max_ms = time_ms;
}

kiln_status kiln_head_append(kiln_head_t *h, const kiln_label_t *labels, size_t n,
                             const kiln_pprof_t *p, int64_t time_ns, kiln_err *err)
{
    (void)err;
    kiln_arena_t *tmp = kiln_arena_create(0);
    xlate x;
    size_t nx = p->n_strings + p->n_mappings + p->n_functions + p->n_locations;
    uint32_t *all = kiln_arena_alloc(tmp, (nx + 1) * sizeof(uint32_t));
    memset(all, 0xff, (nx + 1) * sizeof(uint32_t));
    x.str = all;
    x.map = x.str + p->n_strings;
    x.func = x.map + p->n_mappings;
    x.loc = x.func + p->n_functions;
    uint32_t *nodes = kiln_arena_alloc(tmp, (p->n_samples + 1) * sizeof(uint32_t));
    int64_t time_ms = (time_ns > 0 ? time_ns : now_ns()) / 1000000;

    pthread_rwlock_wrlock(&h->lock);
    translate_symbols(h, &x, p);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        uint32_t node = 0;
        for (uint32_t j = s->n_locs; j-- > 0;) /* stacks are leaf first */
            node = stack_child(h, node, x.loc[p->locs[s->loc_off + j]]);
        nodes[i] = node;
    }
    for (size_t t = 0; t < p->n_sample_types; t++)
        add_profile(h, type_series(h, labels, n, p, t, tmp), time_ms, nodes, p, t);
    pthread_rwlock_unlock(&h->lock);
    kiln_arena_destroy(tmp);
    return KILN_OK;
}

/* ---- queries -------------------------------------------------------------- */

static bool in_range(int64_t t, int64_t start_ms, int64_t end_ms)
{
    return t >= start_ms && (end_ms == 0 || t <= end_ms);
}

static bool series_selected(const hseries *s, const kiln_selector_t *sel, int64_t start_ms,
                            int64_t end_ms)
{
    if (s->n_profiles == 0 || s->max_ms < start_ms || (end_ms != 0 && s->min_ms > end_ms))
        return false;
    return sel == NULL || kiln_selector_match(sel, s->labels, s->n_labels);
}

void kiln_head_series(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                      int64_t end_ms, kiln_head_series_fn fn, void *ctx)
{
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        if (!series_selected(s, sel, start_ms, end_ms))
            continue;
        bool any = false;
        for (size_t j = 0; j < s->n_profiles && !any; j++)
            any = in_range(h->profiles[s->profiles[j]].time_ms, start_ms, end_ms);
        if (any)
            fn(ctx, s->labels, s->n_labels);
    }
    pthread_rwlock_unlock(&h->lock);
}

/* Sums matching sample values per stack node; returns true if any matched. */
static bool accumulate(const kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                       int64_t end_ms, int64_t *acc)
{
    bool any = false;
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        if (!series_selected(s, sel, start_ms, end_ms))
            continue;
        for (size_t j = 0; j < s->n_profiles; j++) {
            const hprofile *pr = &h->profiles[s->profiles[j]];
            if (!in_range(pr->time_ms, start_ms, end_ms))
                continue;
            for (size_t k = pr->off; k < pr->off + pr->n; k++)
                acc[h->s_node[k]] += h->s_value[k];
            any = true;
        }
    }
    return any;
}

/* Appends a location's frames under parent, outermost (last line) first. */
static uint32_t expand_location(const kiln_head_t *h, kiln_tree_t *t, uint32_t parent,
                                uint32_t loc)
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

void kiln_head_merge_tree(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                          int64_t end_ms, kiln_tree_t *t)
{
    pthread_rwlock_rdlock(&h->lock);
    size_t n = h->n_nodes;
    int64_t *acc = kiln_xcalloc(n, sizeof(int64_t));
    if (!accumulate(h, sel, start_ms, end_ms, acc))
        goto out;
    /* Map stack nodes to tree nodes. Parents always have smaller ids than
     * their children, so one ascending pass over the needed nodes works. */
    uint32_t *map = kiln_xmalloc(n * sizeof(uint32_t));
    memset(map, 0xff, n * sizeof(uint32_t));
    map[0] = KILN_TREE_ROOT;
    for (size_t i = n; i-- > 1;) {
        if (acc[i] == 0)
            continue;
        for (uint32_t j = (uint32_t)i; j != 0 && map[j] == NONE; j = h->node_parent[j])
            map[j] = NONE - 1; /* needed, not yet mapped */
    }
    for (size_t i = 1; i < n; i++) {
        if (map[i] != NONE - 1)
            continue;
        map[i] = expand_location(h, t, map[h->node_parent[i]], h->node_loc[i]);
        if (acc[i] != 0)
            kiln_tree_add_self(t, map[i], acc[i]);
    }
    free(map);
out:
    free(acc);
    pthread_rwlock_unlock(&h->lock);
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
