/* SPDX-License-Identifier: Apache-2.0
 * go_fix: type parameters dropped and truncated stacks repaired (go_fix.h). */
#include "go_fix.h"

#include <stdlib.h>
#include <string.h>

#define SHAPE "[go.shape."
#define ELIDED "[...]"
#define TOKEN_LEN 16                    /* frames in a token */
#define TOKENS 8                        /* tokens per suffix, one frame apart */
#define SUFFIX_LEN (TOKENS + TOKEN_LEN) /* root-most frames compared */
#define MAX_CHAIN 56                    /* deeper chains: recursion, leave all */

static bool go_function(const kiln_pprof_t *p, const kiln_pprof_function *fn)
{
    kiln_str_t f = kiln_pprof_str(p, fn->filename);
    return f.len > 3 && memcmp(f.ptr + f.len - 3, ".go", 3) == 0;
}

bool kiln_go_profile_like(const kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_functions; i++) {
        if (go_function(p, &p->functions[i]))
            return true;
    }
    return false;
}

/* Whether a line of location index l is in a Go function. */
static bool go_location(const kiln_pprof_t *p, size_t l)
{
    const kiln_pprof_location *loc = &p->locations[l];
    for (uint32_t j = loc->line_off; j < loc->line_off + loc->n_lines; j++) {
        uint64_t fn = p->lines[j].function;
        if (fn < p->n_functions && go_function(p, &p->functions[fn]))
            return true;
    }
    return false;
}

size_t kiln_go_locations(const kiln_pprof_t *p, bool *go_loc)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_locations; i++)
        n += go_loc[i] = go_location(p, i);
    return n;
}

bool kiln_go_samples_like(const kiln_pprof_t *p, const bool *go_loc)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t j = 0; j < s->n_locs; j++) {
            if (go_loc[p->locs[s->loc_off + j]])
                return true;
        }
    }
    return false;
}

/* ---- type parameters ---------------------------------------------------- */

/* The first "[go.shape." in s, or NULL. Most strings hold no '[' at all:
 * memchr finds that faster than memmem's setup for a 10-byte needle. */
static const char *find_shape(kiln_str_t s)
{
    const char *at = s.ptr, *end = s.ptr + s.len;
    while ((at = memchr(at, '[', (size_t)(end - at))) != NULL) {
        if ((size_t)(end - at) >= strlen(SHAPE) && memcmp(at, SHAPE, strlen(SHAPE)) == 0)
            return at;
        at++;
    }
    return NULL;
}

/* s with "[go.shape." .. its last ']' replaced by "[...]"; s when none. */
static kiln_str_t drop_shape(kiln_arena_t *a, kiln_str_t s)
{
    const char *at = find_shape(s);
    if (at == NULL)
        return s;
    size_t from = (size_t)(at - s.ptr), to = s.len;
    while (to > from + strlen(SHAPE) && s.ptr[to - 1] != ']')
        to--;
    if (s.ptr[to - 1] != ']')
        return s;
    size_t n = from + strlen(ELIDED) + (s.len - to);
    char *out = kiln_arena_alloc(a, n);
    if (out == NULL)
        return s;
    memcpy(out, s.ptr, from);
    memcpy(out + from, ELIDED, strlen(ELIDED));
    memcpy(out + from + strlen(ELIDED), s.ptr + to, s.len - to);
    return (kiln_str_t){out, n};
}

static void drop_type_parameters(kiln_arena_t *a, kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_strings; i++)
        p->strings[i] = drop_shape(a, p->strings[i]);
}

/* ---- truncated stacks --------------------------------------------------- */

/* Each sample's stack while repairs extend it: leaf first. */
typedef struct stack {
    const uint64_t *locs;
    uint32_t n;
} stack;

static bool has_type(const kiln_pprof_t *p, const char *const *names)
{
    for (size_t i = 0; i < p->n_sample_types; i++) {
        for (const char *const *n = names; *n != NULL; n++) {
            if (kiln_str_eq(kiln_pprof_str(p, p->sample_types[i].type), *n))
                return true;
        }
    }
    return false;
}

/* Whether p may hold stacks the Go runtime cut (see go_fix.h). */
static bool may_be_truncated(const kiln_pprof_t *p)
{
    static const char *const heap[] = {"alloc_objects", "alloc_space", "inuse_objects",
                                       "inuse_space", NULL};
    static const char *const cpu[] = {"cpu", NULL};
    uint32_t min_depth, max_depth = 0;
    if (has_type(p, heap)) {
        min_depth = 32 - 4, max_depth = 33;
    } else if (has_type(p, cpu)) {
        min_depth = 64 - 4;
    } else {
        return false;
    }
    bool deep = false;
    for (size_t i = 0; i < p->n_samples; i++) {
        uint32_t n = p->samples[i].n_locs;
        deep |= n >= min_depth;
        if (max_depth != 0 && n >= max_depth)
            return false;
    }
    return deep;
}

static const uint64_t *suffix(const stack *s)
{
    return s->locs + s->n - SUFFIX_LEN;
}

/* A sample to sort: its suffix's first 8 bytes as a number that orders as
 * memcmp orders them (most comparisons end there), and the sample. */
typedef struct keyed {
    uint64_t key;
    const uint64_t *suffix;
    uint32_t sample;
} keyed;

/* Orders samples of equal keys by the rest of their suffixes' bytes, as
 * Pyroscope's bytes.Compare, then by sample (as the stable sort did). */
static int by_rest_of_suffix(const void *x, const void *y)
{
    const keyed *a = x, *b = y;
    int c = memcmp(a->suffix + 1, b->suffix + 1, (SUFFIX_LEN - 1) * sizeof(uint64_t));
    if (c != 0)
        return c;
    return a->sample < b->sample ? -1 : a->sample > b->sample;
}

/* Sorts k[0..n) by key, stably: LSD radix sort, 8 bits a pass over the
 * bytes that differ (location indices are small: most bytes of a key are
 * the same), through tmp. Returns k or tmp, whichever holds the result. */
static keyed *radix_sort(keyed *k, keyed *tmp, size_t n)
{
    uint64_t diff = 0;
    for (size_t i = 1; i < n; i++)
        diff |= k[i].key ^ k[0].key;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        if (((diff >> shift) & 0xff) == 0)
            continue; /* every key has the same byte here */
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((k[i].key >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(k[i].key >> shift) & 0xff]++] = k[i];
        keyed *t = k;
        k = tmp, tmp = t;
    }
    return k;
}

static bool same_suffix(const stack *a, const stack *b)
{
    return memcmp(suffix(a), suffix(b), SUFFIX_LEN * sizeof(uint64_t)) == 0;
}

/* A group's link: the group holding its root-most token furthest from the
 * root, and how far. */
typedef struct group_link {
    uint32_t gid; /* group index + 1 (0 = none) */
    uint32_t off; /* frames between the token and that group's root */
} group_link;

/* A slot of the root map: the groups' root-most tokens, each kept once, by
 * the first group that has it (its owner). The token is the owner's; the
 * tag, 32 bits of its hash, spares most probes a look at the frames. */
typedef struct root_slot {
    uint32_t tag;
    uint32_t owner; /* group index + 1 (0 = empty slot) */
} root_slot;

typedef struct root_map {
    root_slot *slot;
    size_t mask;
} root_map;

#define HASH_BASE 0x9e3779b97f4a7c15ull

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

/* HASH_BASE^(TOKEN_LEN-1) mod 2^64, the weight of a window's first frame. */
#define HASH_TOP_WEIGHT 0x82fe791be9b804fdull

/* The hashes of the TOKENS + 1 tokens of a suffix, win[k] of the token at
 * s + k: a rolling polynomial over 16 frames, then a mix. The frames are
 * not mixed one by one (that was half of the repair's cost): with an odd
 * base, tokens of small location indices that differ still differ before
 * the final mix. Equal tokens hash alike; the map compares frames on equal
 * tags, so collisions only cost a comparison and never change a result. */
static void window_hashes(const uint64_t *s, uint64_t *win)
{
    uint64_t h = 0;
    for (int i = 0; i < TOKEN_LEN; i++)
        h = h * HASH_BASE + s[i];
    win[0] = mix(h);
    for (int k = 1; k <= TOKENS; k++) {
        h = (h - s[k - 1] * HASH_TOP_WEIGHT) * HASH_BASE + s[k - 1 + TOKEN_LEN];
        win[k] = mix(h);
    }
}

/* The repair state: samples with a full suffix, sorted by it, in groups. */
typedef struct repair {
    kiln_arena_t *a;
    stack *st;       /* per sample */
    uint32_t *order; /* deep samples, sorted by suffix */
    size_t n_order;
    uint32_t *group; /* group g starts at order[group[g]] */
    size_t n_groups;
    uint64_t *win; /* per group: its TOKENS + 1 window hashes */
    root_map map;
    uint32_t *root_owner; /* per group: the owner of its root-most token */
    group_link *best;     /* per owner: the group holding its token furthest up */
    group_link *dep;      /* per group: the group its root-most token leads to */
    bool changed;         /* a stack was extended */
} repair;

static size_t group_end(const repair *r, size_t g)
{
    return g + 1 < r->n_groups ? r->group[g + 1] : r->n_order;
}

static const stack *group_first(const repair *r, size_t g)
{
    return &r->st[r->order[r->group[g]]];
}

static void split_groups(repair *r)
{
    for (size_t i = 0; i < r->n_order; i++) {
        if (i == 0 || !same_suffix(&r->st[r->order[i - 1]], &r->st[r->order[i]]))
            r->group[r->n_groups++] = (uint32_t)i;
    }
}

#define AHEAD 8 /* groups ahead whose suffixes index_roots loads early */

static void prefetch_suffix(const uint64_t *s)
{
    for (size_t i = 0; i < SUFFIX_LEN; i += 64 / sizeof(uint64_t))
        __builtin_prefetch(s + i);
}

static const uint64_t *root_token(const repair *r, size_t g)
{
    return suffix(group_first(r, g)) + TOKENS;
}

/* The slot of tok in the root map: its owner's, or the empty one to fill.
 * Inlined: find_best calls it eight times per group, and a call cost more
 * than the probe (the frames are compared only on equal tags). */
static inline __attribute__((always_inline)) root_slot *
root_find(const repair *r, const uint64_t *tok, uint64_t hash)
{
    uint32_t tag = (uint32_t)(hash >> 32);
    for (size_t i = hash & r->map.mask;; i = (i + 1) & r->map.mask) {
        root_slot *t = &r->map.slot[i];
        if (t->owner == 0 || (t->tag == tag && memcmp(root_token(r, t->owner - 1), tok,
                                                      TOKEN_LEN * sizeof(uint64_t)) == 0))
            return t;
    }
}

/* Each group's root-most token into the map, kept by its first group; the
 * hashes of its tokens kept for find_best, which then reads only the groups'
 * frames whose tags match. */
static void index_roots(repair *r)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        if (g + AHEAD < r->n_groups) /* suffixes lie all over p->locs: load ahead */
            prefetch_suffix(suffix(group_first(r, g + AHEAD)));
        const uint64_t *s = suffix(group_first(r, g));
        uint64_t *win = r->win + g * (TOKENS + 1);
        window_hashes(s, win);
        root_slot *t = root_find(r, s + TOKENS, win[TOKENS]);
        if (t->owner == 0)
            *t = (root_slot){(uint32_t)(win[TOKENS] >> 32), (uint32_t)g + 1};
        r->root_owner[g] = t->owner - 1;
    }
}

/* For each root-most token, the group holding it furthest from its root:
 * token j (1..8) of a group lies j frames above its root part, and of
 * groups holding it equally far, the first in suffix order wins. */
static void find_best(repair *r)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        const uint64_t *s = suffix(group_first(r, g)), *win = r->win + g * (TOKENS + 1);
        for (uint32_t j = 1; j <= TOKENS; j++) {
            const root_slot *t = root_find(r, s + TOKENS - j, win[TOKENS - j]);
            group_link *b = t->owner != 0 ? &r->best[t->owner - 1] : NULL;
            if (b != NULL && (b->gid == 0 || j > b->off))
                *b = (group_link){(uint32_t)g + 1, j};
        }
    }
}

static void link_groups(repair *r)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        group_link b = r->best[r->root_owner[g]];
        if (b.gid != 0 && b.gid - 1 != g)
            r->dep[g] = b;
    }
}

/* Appends ref's root-most off frames to every stack of group g. */
static bool extend_group(repair *r, size_t g, const stack *ref, uint32_t off)
{
    const uint64_t *tail = ref->locs + ref->n - off;
    for (size_t i = r->group[g]; i < group_end(r, g); i++) {
        stack *s = &r->st[r->order[i]];
        uint64_t *grown = kiln_arena_alloc(r->a, (s->n + off) * sizeof(uint64_t));
        if (grown == NULL)
            return false;
        memcpy(grown, s->locs, s->n * sizeof(uint64_t));
        memcpy(grown + s->n, tail, off * sizeof(uint64_t));
        *s = (stack){grown, s->n + off};
    }
    r->changed = true;
    return true;
}

/* Follows each group's chain of more complete groups and extends it. */
static kiln_status apply_links(repair *r, kiln_err *err)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        group_link c = r->dep[g];
        uint32_t off = 0;
        for (int links = 0; c.gid > 0 && c.off > 0;) {
            off += c.off;
            group_link next = r->dep[c.gid - 1];
            if (next.gid == 0)
                break;
            c = next;
            if (++links == MAX_CHAIN)
                return KILN_OK;
        }
        if (off == 0)
            continue;
        const stack *ref = group_first(r, c.gid - 1);
        if (off >= ref->n)
            continue;
        stack copy = *ref; /* a chain may lead back to g, whose stacks change */
        if (!extend_group(r, g, &copy, off))
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "go profile repair: out of memory");
    }
    return KILN_OK;
}

/* Writes the repaired stacks back into p's concatenated locations. */
static kiln_status store_stacks(repair *r, kiln_pprof_t *p, kiln_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        total += r->st[i].n;
    uint64_t *locs = kiln_arena_alloc(r->a, (total + 1) * sizeof(uint64_t));
    if (locs == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "go profile repair: out of memory");
    size_t at = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        memcpy(locs + at, r->st[i].locs, r->st[i].n * sizeof(uint64_t));
        p->samples[i].loc_off = (uint32_t)at;
        p->samples[i].n_locs = r->st[i].n;
        at += r->st[i].n;
    }
    p->locs = locs;
    p->n_locs = total;
    return KILN_OK;
}

static bool repair_init(repair *r, kiln_arena_t *a, const kiln_pprof_t *p)
{
    memset(r, 0, sizeof(*r));
    r->a = a;
    r->st = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(stack));
    r->order = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(uint32_t));
    if (r->st == NULL || r->order == NULL)
        return false;
    for (size_t i = 0; i < p->n_samples; i++) {
        r->st[i] = (stack){p->locs + p->samples[i].loc_off, p->samples[i].n_locs};
        if (r->st[i].n >= SUFFIX_LEN)
            r->order[r->n_order++] = (uint32_t)i;
    }
    r->group = kiln_arena_alloc(a, (r->n_order + 1) * sizeof(uint32_t));
    return r->group != NULL;
}

/* Sorts the deep samples by suffix (r->order): by key, then the runs of
 * equal keys by the rest. */
static bool sort_by_suffix(repair *r)
{
    keyed *k = kiln_arena_alloc(r->a, (r->n_order + 1) * sizeof(keyed));
    keyed *tmp = kiln_arena_alloc(r->a, (r->n_order + 1) * sizeof(keyed));
    if (k == NULL || tmp == NULL)
        return false;
    for (size_t i = 0; i < r->n_order; i++) {
        const uint64_t *s = suffix(&r->st[r->order[i]]);
        k[i] = (keyed){__builtin_bswap64(s[0]), s, r->order[i]};
    }
    k = radix_sort(k, tmp, r->n_order);
    for (size_t i = 0, end; i < r->n_order; i = end) {
        for (end = i + 1; end < r->n_order && k[end].key == k[i].key;)
            end++;
        if (end - i > 1)
            qsort(k + i, end - i, sizeof(keyed), by_rest_of_suffix);
    }
    for (size_t i = 0; i < r->n_order; i++)
        r->order[i] = k[i].sample;
    return true;
}

/* The root map (at most half full) and the links, sized by the groups. */
static bool alloc_links(repair *r)
{
    size_t slots = 16;
    while (slots < 2 * r->n_groups)
        slots *= 2;
    r->win = kiln_arena_alloc(r->a, (r->n_groups + 1) * (TOKENS + 1) * sizeof(uint64_t));
    r->map = (root_map){kiln_arena_calloc(r->a, slots, sizeof(root_slot)), slots - 1};
    r->root_owner = kiln_arena_alloc(r->a, (r->n_groups + 1) * sizeof(uint32_t));
    r->best = kiln_arena_calloc(r->a, r->n_groups + 1, sizeof(group_link));
    r->dep = kiln_arena_calloc(r->a, r->n_groups + 1, sizeof(group_link));
    return r->win != NULL && r->map.slot != NULL && r->root_owner != NULL && r->best != NULL &&
           r->dep != NULL;
}

static kiln_status repair_truncated(kiln_arena_t *a, kiln_pprof_t *p, kiln_err *err)
{
    repair r;
    if (!repair_init(&r, a, p) || !sort_by_suffix(&r))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "go profile repair: out of memory");
    if (r.n_order == 0)
        return KILN_OK;
    split_groups(&r);
    if (!alloc_links(&r))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "go profile repair: out of memory");
    index_roots(&r);
    find_best(&r);
    link_groups(&r);
    kiln_status st = apply_links(&r, err);
    return st == KILN_OK && r.changed ? store_stacks(&r, p, err) : st;
}

kiln_status kiln_go_fix(kiln_arena_t *a, kiln_pprof_t *p, kiln_err *err)
{
    drop_type_parameters(a, p);
    return may_be_truncated(p) ? repair_truncated(a, p, err) : KILN_OK;
}
