/* SPDX-License-Identifier: Apache-2.0
 * go_fix: type parameters dropped and truncated stacks repaired (go_fix.h). */
#include "go_fix.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SHAPE "[go.shape."
#define ELIDED "[...]"
#define TOKEN_LEN 16                    /* frames in a token */
#define TOKENS 8                        /* tokens per suffix, one frame apart */
#define SUFFIX_LEN (TOKENS + TOKEN_LEN) /* root-most frames compared */
#define MAX_CHAIN 56                    /* deeper chains: recursion, leave all */

bool kiln_go_profile_like(const kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_str_t f = kiln_pprof_str(p, p->functions[i].filename);
        if (f.len > 3 && memcmp(f.ptr + f.len - 3, ".go", 3) == 0)
            return true;
    }
    return false;
}

/* ---- type parameters ---------------------------------------------------- */

/* s with "[go.shape." .. its last ']' replaced by "[...]"; s when none. */
static kiln_str_t drop_shape(kiln_arena_t *a, kiln_str_t s)
{
    const char *at = memmem(s.ptr, s.len, SHAPE, strlen(SHAPE));
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

/* Orders samples by their suffixes' bytes, as Pyroscope's bytes.Compare. */
static int by_suffix(const void *x, const void *y)
{
    const keyed *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return memcmp(a->suffix, b->suffix, SUFFIX_LEN * sizeof(uint64_t));
}

static bool same_suffix(const stack *a, const stack *b)
{
    return memcmp(suffix(a), suffix(b), SUFFIX_LEN * sizeof(uint64_t)) == 0;
}

/* A token's best group: the one holding it furthest from the root. */
typedef struct token_slot {
    const uint64_t *token; /* NULL = empty slot */
    uint64_t hash;         /* of the token: most probes end on it */
    uint32_t gid;          /* group index + 1 (0 = none) */
    uint32_t off;          /* frames between the token and that group's root */
} token_slot;

typedef struct token_map {
    token_slot *slot;
    size_t mask;
} token_map;

static token_slot *token_find(token_map *m, const uint64_t *tok)
{
    uint64_t h = XXH3_64bits(tok, TOKEN_LEN * sizeof(uint64_t));
    size_t i = h & m->mask;
    while (
        m->slot[i].token != NULL &&
        (m->slot[i].hash != h || memcmp(m->slot[i].token, tok, TOKEN_LEN * sizeof(uint64_t)) != 0))
        i = (i + 1) & m->mask;
    m->slot[i].hash = h; /* kept only once the caller fills token */
    return &m->slot[i];
}

/* The repair state: samples with a full suffix, sorted by it, in groups. */
typedef struct repair {
    kiln_arena_t *a;
    stack *st;       /* per sample */
    uint32_t *order; /* deep samples, sorted by suffix */
    size_t n_order;
    uint32_t *group; /* group g starts at order[group[g]] */
    size_t n_groups;
    token_map map;
    token_slot *dep; /* per group: the group its root-most token leads to */
    bool changed;    /* a stack was extended */
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

/* Each group's tokens: token j (1..8) lies j frames above its root part. */
static void index_tokens(repair *r)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        const uint64_t *s = suffix(group_first(r, g));
        for (uint32_t j = 1; j <= TOKENS; j++) {
            token_slot *t = token_find(&r->map, s + TOKENS - j);
            if (t->token == NULL || j > t->off)
                *t = (token_slot){s + TOKENS - j, t->hash, (uint32_t)g + 1, j};
        }
    }
}

static void link_groups(repair *r)
{
    for (size_t g = 0; g < r->n_groups; g++) {
        const token_slot *t = token_find(&r->map, suffix(group_first(r, g)) + TOKENS);
        if (t->token != NULL && t->gid - 1 != g)
            r->dep[g] = *t;
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
        token_slot c = r->dep[g];
        uint32_t off = 0;
        for (int links = 0; c.gid > 0 && c.off > 0;) {
            off += c.off;
            token_slot next = r->dep[c.gid - 1];
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

/* Sorts the deep samples by suffix (r->order). */
static bool sort_by_suffix(repair *r)
{
    keyed *k = kiln_arena_alloc(r->a, (r->n_order + 1) * sizeof(keyed));
    if (k == NULL)
        return false;
    for (size_t i = 0; i < r->n_order; i++) {
        const uint64_t *s = suffix(&r->st[r->order[i]]);
        k[i] = (keyed){__builtin_bswap64(s[0]), s, r->order[i]};
    }
    qsort(k, r->n_order, sizeof(keyed), by_suffix);
    for (size_t i = 0; i < r->n_order; i++)
        r->order[i] = k[i].sample;
    return true;
}

/* The token map and links, sized by the groups found. */
static bool alloc_links(repair *r)
{
    size_t slots = 16;
    while (slots < 2 * TOKENS * r->n_groups)
        slots *= 2;
    r->map = (token_map){kiln_arena_calloc(r->a, slots, sizeof(token_slot)), slots - 1};
    r->dep = kiln_arena_calloc(r->a, r->n_groups + 1, sizeof(token_slot));
    return r->map.slot != NULL && r->dep != NULL;
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
    index_tokens(&r);
    link_groups(&r);
    kiln_status st = apply_links(&r, err);
    return st == KILN_OK && r.changed ? store_stacks(&r, p, err) : st;
}

kiln_status kiln_go_fix(kiln_arena_t *a, kiln_pprof_t *p, kiln_err *err)
{
    drop_type_parameters(a, p);
    return may_be_truncated(p) ? repair_truncated(a, p, err) : KILN_OK;
}
