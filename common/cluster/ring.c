/* SPDX-License-Identifier: Apache-2.0
 * ring: snapshots hold the members sorted by id and every token sorted by
 * value with the index of its member, so a lookup is one binary search and a
 * short clockwise walk. The ring object only swaps the current snapshot
 * under a mutex; building one happens outside it. */
#include "ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "json_writer.h"
#include "xmalloc.h"

#define NO_ZONE UINT32_MAX
#define CIRCLE 4294967296.0 /* 2^32 points */

typedef struct ring_token {
    uint32_t value;
    uint32_t member; /* index into members */
} ring_token;

struct kiln_ring_snapshot {
    atomic_size_t refs;
    size_t n_members;
    kiln_ring_member *members; /* sorted by id */
    uint32_t *zone;            /* per member: a small zone number, NO_ZONE for "" */
    size_t n_tokens;
    ring_token *tokens; /* sorted by value, then member */
    /* The most members a first (distinct-zone) walk can pick: distinct zones
     * among ACTIVE members plus the ACTIVE members without a zone. */
    size_t zone_slots;
};

struct kiln_ring {
    pthread_mutex_t mu;
    kiln_ring_snapshot_t *cur;
};

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const kiln_ring_member *)a)->id, ((const kiln_ring_member *)b)->id);
}

static int cmp_token(const void *a, const void *b)
{
    const ring_token *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->member < y->member ? -1 : x->member > y->member;
}

/* Numbers zones in order of first appearance and counts the first walk's slots. */
static void number_zones(kiln_ring_snapshot_t *s)
{
    s->zone = kiln_xcalloc(s->n_members ? s->n_members : 1, sizeof(*s->zone));
    bool *active_zone = kiln_xcalloc(s->n_members ? s->n_members : 1, sizeof(bool));
    for (size_t i = 0; i < s->n_members; i++) {
        const kiln_ring_member *m = &s->members[i];
        s->zone[i] = NO_ZONE;
        if (m->zone[0] != '\0') {
            s->zone[i] = (uint32_t)i;
            for (size_t j = 0; j < i; j++) {
                if (strcmp(s->members[j].zone, m->zone) == 0) {
                    s->zone[i] = s->zone[j];
                    break;
                }
            }
        }
        if (m->state != KILN_RING_ACTIVE)
            continue;
        if (s->zone[i] == NO_ZONE) {
            s->zone_slots++;
        } else if (!active_zone[s->zone[i]]) {
            active_zone[s->zone[i]] = true;
            s->zone_slots++;
        }
    }
    free(active_zone);
}

/* Gives a member without tokens the ones derived from its id, so the
 * snapshot's copy always lists the tokens it is placed by. */
static void fill_tokens(kiln_ring_member *m)
{
    if (m->n_tokens == 0) {
        kiln_ring_tokens(m->id, m->tokens, KILN_RING_TOKENS);
        m->n_tokens = KILN_RING_TOKENS;
    } else if (m->n_tokens > KILN_RING_TOKENS) {
        m->n_tokens = KILN_RING_TOKENS;
    }
}

static kiln_ring_snapshot_t *snapshot_build(const kiln_ring_member *m, size_t n)
{
    kiln_ring_snapshot_t *s = kiln_xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->n_members = n;
    s->members = kiln_xmalloc((n ? n : 1) * sizeof(*m));
    if (n > 0)
        memcpy(s->members, m, n * sizeof(*m));
    qsort(s->members, n, sizeof(*m), cmp_member);
    s->tokens = kiln_xmalloc((n ? n : 1) * KILN_RING_TOKENS * sizeof(ring_token));
    for (size_t i = 0; i < n; i++) {
        kiln_ring_member *mi = &s->members[i];
        fill_tokens(mi);
        for (size_t j = 0; j < mi->n_tokens; j++)
            s->tokens[s->n_tokens++] = (ring_token){mi->tokens[j], (uint32_t)i};
    }
    qsort(s->tokens, s->n_tokens, sizeof(ring_token), cmp_token);
    number_zones(s);
    return s;
}

kiln_ring_t *kiln_ring_create(void)
{
    kiln_ring_t *r = kiln_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->cur = snapshot_build(NULL, 0);
    return r;
}

void kiln_ring_destroy(kiln_ring_t *r)
{
    if (r == NULL)
        return;
    kiln_ring_release(r->cur);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void kiln_ring_set(kiln_ring_t *r, const kiln_ring_member *m, size_t n)
{
    kiln_ring_snapshot_t *s = snapshot_build(m, n);
    pthread_mutex_lock(&r->mu);
    kiln_ring_snapshot_t *old = r->cur;
    r->cur = s;
    pthread_mutex_unlock(&r->mu);
    kiln_ring_release(old);
}

kiln_ring_snapshot_t *kiln_ring_acquire(kiln_ring_t *r)
{
    /* The mutex keeps set from freeing cur between the load and the ref. */
    pthread_mutex_lock(&r->mu);
    kiln_ring_snapshot_t *s = r->cur;
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->mu);
    return s;
}

void kiln_ring_release(kiln_ring_snapshot_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(s->members);
    free(s->zone);
    free(s->tokens);
    free(s);
}

size_t kiln_ring_members(const kiln_ring_snapshot_t *s, const kiln_ring_member **out)
{
    *out = s->members;
    return s->n_members;
}

/* The first token at or after key, wrapping to 0 past the last. */
static size_t token_at(const kiln_ring_snapshot_t *s, uint32_t key)
{
    size_t lo = 0, hi = s->n_tokens;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->tokens[mid].value < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == s->n_tokens ? 0 : lo;
}

static bool picked(const size_t *idx, size_t n, size_t member)
{
    for (size_t i = 0; i < n; i++) {
        if (idx[i] == member)
            return true;
    }
    return false;
}

static bool zone_used(const kiln_ring_snapshot_t *s, const size_t *idx, size_t n, uint32_t zone)
{
    if (zone == NO_ZONE)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s->zone[idx[i]] == zone)
            return true;
    }
    return false;
}

/* One clockwise walk from start adding ACTIVE members not yet picked (and,
 * with distinct_zones, whose zone is not yet used) until idx holds want. */
static size_t walk(const kiln_ring_snapshot_t *s, size_t start, bool distinct_zones, size_t want,
                   size_t *idx, size_t n)
{
    for (size_t step = 0; step < s->n_tokens && n < want; step++) {
        size_t t = start + step;
        size_t member = s->tokens[t < s->n_tokens ? t : t - s->n_tokens].member;
        if (s->members[member].state != KILN_RING_ACTIVE || picked(idx, n, member))
            continue;
        if (distinct_zones && zone_used(s, idx, n, s->zone[member]))
            continue;
        idx[n++] = member;
    }
    return n;
}

size_t kiln_ring_replicas(const kiln_ring_snapshot_t *s, uint32_t key, size_t rf, size_t *idx)
{
    if (s->n_tokens == 0 || rf == 0)
        return 0;
    size_t start = token_at(s, key);
    /* The first walk stops once no further zone can be added, so a ring
     * without zones is walked once and only as far as rf members. */
    size_t first = rf < s->zone_slots ? rf : s->zone_slots;
    size_t n = walk(s, start, true, first, idx, 0);
    if (n < rf)
        n = walk(s, start, false, rf, idx, n);
    return n;
}

static void hash_field(XXH64_state_t *st, const char *s)
{
    /* Length-prefixed, so no byte of a name or value can pose as a boundary. */
    uint64_t len = s != NULL ? strlen(s) : 0;
    XXH64_update(st, &len, sizeof(len));
    if (len > 0)
        XXH64_update(st, s, (size_t)len);
}

uint32_t kiln_ring_key(const char *tenant, const kiln_label_t *l, size_t n)
{
    XXH64_state_t state, *st = &state;
    XXH64_reset(st, 0);
    hash_field(st, tenant);
    for (size_t i = 0; i < n; i++) {
        hash_field(st, l[i].name);
        hash_field(st, l[i].value);
    }
    uint64_t h = XXH64_digest(st);
    return (uint32_t)(h ^ (h >> 32));
}

static bool token_seen(const uint32_t *out, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++) {
        if (out[i] == v)
            return true;
    }
    return false;
}

void kiln_ring_tokens(const char *id, uint32_t *out, size_t n)
{
    /* Token i is the hash of the id seeded with a counter; a value already
     * taken moves the counter on, so the n values are distinct and depend
     * on the id alone. */
    size_t len = strlen(id);
    uint64_t seed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        do {
            v = (uint32_t)(XXH64(id, len, seed++) >> 32);
        } while (token_seen(out, i, v));
        out[i] = v;
    }
}

void kiln_ring_ownership(const kiln_ring_snapshot_t *s, double *ownership)
{
    for (size_t i = 0; i < s->n_members; i++)
        ownership[i] = 0;
    if (s->n_tokens == 0)
        return;
    /* Token j owns the arc (token j-1, token j]; the first token's arc wraps
     * past 2^32, so the arcs add up to the whole circle even when every
     * token has the same value. */
    const ring_token *t = s->tokens;
    size_t last = s->n_tokens - 1;
    ownership[t[0].member] += (CIRCLE - (double)(t[last].value - t[0].value)) / CIRCLE;
    for (size_t j = 1; j < s->n_tokens; j++)
        ownership[t[j].member] += (double)(t[j].value - t[j - 1].value) / CIRCLE;
}

static const char *const state_names[] = {"JOINING", "ACTIVE", "LEAVING"};

const char *kiln_ring_state_str(kiln_ring_state st)
{
    if ((unsigned)st < sizeof(state_names) / sizeof(state_names[0]))
        return state_names[st];
    return "UNKNOWN";
}

int kiln_ring_state_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (s != NULL && strcmp(s, state_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

static void json_field(kiln_buf *out, const char *name, const char *value)
{
    kiln_buf_printf(out, "\"%s\":", name);
    kiln_json_string(out, value, strlen(value));
    kiln_buf_putc(out, ',');
}

static void json_member(kiln_buf *out, const kiln_ring_member *m, double own, int64_t now_ms)
{
    kiln_buf_putc(out, '{');
    json_field(out, "id", m->id);
    json_field(out, "addr", m->addr);
    json_field(out, "http_addr", m->http_addr);
    json_field(out, "zone", m->zone);
    json_field(out, "state", kiln_ring_state_str(m->state));
    kiln_buf_printf(out, "\"tokens\":%zu,\"ownership\":%.6f,\"heartbeat_age_ms\":%lld}",
                    m->n_tokens, own, (long long)(now_ms - m->heartbeat_ms));
}

void kiln_ring_json(const kiln_ring_snapshot_t *s, int64_t now_ms, kiln_buf *out)
{
    double *own = kiln_xcalloc(s->n_members ? s->n_members : 1, sizeof(double));
    kiln_ring_ownership(s, own);
    kiln_buf_puts(out, "{\"members\":[");
    for (size_t i = 0; i < s->n_members; i++) {
        if (i > 0)
            kiln_buf_putc(out, ',');
        json_member(out, &s->members[i], own[i], now_ms);
    }
    kiln_buf_puts(out, "]}");
    free(own);
}

static void html_text(kiln_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            kiln_buf_puts(out, "&lt;");
            break;
        case '>':
            kiln_buf_puts(out, "&gt;");
            break;
        case '&':
            kiln_buf_puts(out, "&amp;");
            break;
        case '"':
            kiln_buf_puts(out, "&quot;");
            break;
        case '\'':
            kiln_buf_puts(out, "&#39;");
            break;
        default:
            kiln_buf_putc(out, *s);
        }
    }
}

static void html_cell(kiln_buf *out, const char *s)
{
    kiln_buf_puts(out, "<td>");
    html_text(out, s);
    kiln_buf_puts(out, "</td>");
}

static void html_row(kiln_buf *out, const kiln_ring_member *m, double own, int64_t now_ms)
{
    kiln_buf_puts(out, "<tr>");
    html_cell(out, m->id);
    html_cell(out, kiln_ring_state_str(m->state));
    html_cell(out, m->addr);
    html_cell(out, m->zone);
    kiln_buf_printf(out, "<td>%zu</td><td>%.2f%%</td><td>%.1f s</td></tr>\n", m->n_tokens,
                    own * 100, (double)(now_ms - m->heartbeat_ms) / 1000.0);
}

void kiln_ring_html(const kiln_ring_snapshot_t *s, int64_t now_ms, kiln_buf *out)
{
    double *own = kiln_xcalloc(s->n_members ? s->n_members : 1, sizeof(double));
    kiln_ring_ownership(s, own);
    kiln_buf_puts(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ring</title>"
                       "</head><body>\n<h1>Ring</h1>\n<table border=\"1\">\n<tr><th>ID</th>"
                       "<th>State</th><th>Address</th><th>Zone</th><th>Tokens</th>"
                       "<th>Ownership</th><th>Last heartbeat</th></tr>\n");
    for (size_t i = 0; i < s->n_members; i++)
        html_row(out, &s->members[i], own[i], now_ms);
    kiln_buf_puts(out, "</table>\n</body></html>\n");
    free(own);
}
