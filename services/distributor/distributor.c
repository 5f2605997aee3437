/* SPDX-License-Identifier: Apache-2.0
 * distributor: push validation and normalisation. Two passes per request:
 * decode and check everything first, append only when all of it is good. */
#include "distributor.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "clock.h"
#include "delta.h"
#include "go_fix.h"
#include "gzip.h"
#include "hash_index.h"
#include "seen_keys.h"
#include "labels.h"
#include "log.h"
#include "pprof.h"
#include "xmalloc.h"

/* Client profile ids remembered for retry de-duplication. */
#define SEEN_IDS (1u << 20)

struct kiln_distributor {
    kiln_distributor_config cfg;
    kiln_seen_keys_t *seen;
    kiln_delta_t *delta;
    kiln_metrics_t *metrics;
    kiln_inflight_t *inflight; /* borrowed, may be NULL */
    kiln_rules_eval_t *rules;  /* borrowed, may be NULL */
};

kiln_distributor_t *kiln_distributor_create(const kiln_distributor_config *cfg,
                                            kiln_metrics_t *metrics)
{
    kiln_distributor_t *d = kiln_xcalloc(1, sizeof(*d));
    d->cfg = *cfg;
    d->seen = kiln_seen_keys_create(SEEN_IDS);
    d->delta = kiln_delta_create();
    d->metrics = metrics;
    return d;
}

void kiln_distributor_set_inflight(kiln_distributor_t *d, kiln_inflight_t *b)
{
    d->inflight = b;
}

void kiln_distributor_set_rules(kiln_distributor_t *d, kiln_rules_eval_t *rules)
{
    d->rules = rules;
}

void kiln_distributor_destroy(kiln_distributor_t *d)
{
    if (d == NULL)
        return;
    kiln_seen_keys_destroy(d->seen);
    kiln_delta_destroy(d->delta);
    free(d);
}

/* Ingest markers the head does not store (Pyroscope strips them too). */
static bool is_marker(const char *name)
{
    return strcmp(name, KILN_LABEL_DELTA) == 0 || strcmp(name, "__otel__") == 0 ||
           strcmp(name, "__order__") == 0;
}

/* The series labels of an incoming profile: markers dropped, service_name
 * defaulted, sorted and validated. Rewrites in->labels in the arena. */
static kiln_status series_labels(const kiln_limits *lim, kiln_ingest_profile *in, kiln_arena_t *a,
                                 kiln_err *err)
{
    kiln_label_t *l = kiln_arena_alloc(a, (in->n_labels + 1) * sizeof(*l));
    size_t n = 0;
    bool has_service = false;
    for (size_t i = 0; i < in->n_labels; i++) {
        if (is_marker(in->labels[i].name))
            continue;
        has_service |= strcmp(in->labels[i].name, KILN_LABEL_SERVICE_NAME) == 0;
        l[n++] = in->labels[i];
    }
    if (!has_service)
        l[n++] = (kiln_label_t){KILN_LABEL_SERVICE_NAME, "unknown_service"};
    kiln_labels_sort(l, n);
    kiln_status st = kiln_labels_validate(l, n, lim->max_label_names, lim->max_label_name_len,
                                          lim->max_label_value_len, err);
    in->labels = l;
    in->n_labels = n;
    return st;
}

kiln_status kiln_distributor_body(const kiln_distributor_t *d, const uint8_t *data, size_t len,
                                  size_t max, kiln_arena_t *a, const uint8_t **out, size_t *out_len,
                                  kiln_err *err)
{
    return kiln_gunzip_maybe_budget(a, data, len, max ? max : d->cfg.max_profile_bytes, d->inflight,
                                    out, out_len, err);
}

kiln_status kiln_distributor_decode_pprof(const kiln_distributor_t *d, const uint8_t *data,
                                          size_t len, kiln_arena_t *a, kiln_pprof_t *p,
                                          kiln_err *err)
{
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    kiln_status st = kiln_distributor_body(d, data, len, 0, a, &raw, &raw_len, err);
    if (st == KILN_OK)
        st = kiln_pprof_decode(a, raw, raw_len, p, err);
    /* The decoder's RESOURCE_EXHAUSTED is the request arena's cap: the
     * profile is too large, which no retry changes. */
    if (st == KILN_RESOURCE_EXHAUSTED && raw != NULL)
        st = err->code = KILN_OUT_OF_RANGE;
    return st;
}

size_t kiln_distributor_max_profile_bytes(const kiln_distributor_t *d)
{
    return d->cfg.max_profile_bytes;
}

const char *kiln_distributor_reason(kiln_status st)
{
    switch (st) {
    case KILN_RESOURCE_EXHAUSTED:
        return "rate_limited";
    case KILN_OUT_OF_RANGE:
        return "too_large";
    case KILN_INVALID_ARGUMENT:
        return "invalid";
    default:
        return kiln_status_str(st);
    }
}

kiln_status kiln_distributor_public_code(kiln_status st, kiln_err *err)
{
    if (st != KILN_OUT_OF_RANGE)
        return st;
    if (err != NULL)
        err->code = KILN_INVALID_ARGUMENT;
    return KILN_INVALID_ARGUMENT;
}

int kiln_distributor_http_status(kiln_status st)
{
    switch (st) {
    case KILN_RESOURCE_EXHAUSTED:
        return 429;
    case KILN_OUT_OF_RANGE:
        return 413;
    case KILN_INVALID_ARGUMENT:
        return 400;
    default:
        return kiln_status_http(st);
    }
}

void kiln_distributor_rejected(kiln_distributor_t *d, const char *tenant, const char *path,
                               kiln_status st, const kiln_err *err, size_t bytes)
{
    const char *reason = kiln_distributor_reason(st);
    if (d->metrics != NULL)
        kiln_metrics_discarded(d->metrics, tenant, reason, bytes);
    KILN_LOG_WARN_SAMPLED(tenant, reason, "distributor",
                          "%s rejected tenant=%s reason=%s bytes=%zu err=\"%s\"", path, tenant,
                          reason, bytes, err != NULL ? err->msg : "");
}

/* The tenant's count and time limits on one decoded profile. */
static kiln_status check_limits(const kiln_limits *lim, const kiln_pprof_t *p, int64_t now,
                                kiln_err *err)
{
    if (lim->max_samples != 0 && p->n_samples > lim->max_samples)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "profile has %zu samples, more than the limit of %zu "
                            "(max_profile_stacktrace_samples)",
                            p->n_samples, lim->max_samples);
    for (size_t i = 0; lim->max_sample_labels != 0 && i < p->n_samples; i++) {
        if (p->samples[i].n_labels > lim->max_sample_labels)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "a sample has %u labels, more than the limit of %zu "
                                "(max_profile_stacktrace_sample_labels)",
                                p->samples[i].n_labels, lim->max_sample_labels);
    }
    if (p->time_nanos > 0 && lim->reject_older_than_ns != 0 &&
        p->time_nanos < now - lim->reject_older_than_ns)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "profile is too old: its time is more than %llds in the past "
                            "(reject_older_than)",
                            (long long)(lim->reject_older_than_ns / 1000000000));
    if (p->time_nanos > 0 && lim->reject_newer_than_ns != 0 &&
        p->time_nanos > now + lim->reject_newer_than_ns)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "profile is too far in the future: more than %llds ahead "
                            "(reject_newer_than)",
                            (long long)(lim->reject_newer_than_ns / 1000000000));
    return KILN_OK;
}

/* Symbol tables that adjacent profiles of one request share (the series of
 * an OTLP export all point at its dictionary's), validated and normalised
 * once for them all: normalising them once per profile would rewrite them
 * again, already rewritten. */
typedef struct shared_symbols {
    kiln_pprof_symbols *sym; /* NULL when they failed their checks */
    kiln_err why;            /* then why */
    bool *go_loc;            /* per location: in Go code (kiln_go_locations); NULL: none is */
} shared_symbols;

/* The arena's cap reached while preparing a profile means "too large". */
static kiln_status too_large(kiln_status st, kiln_err *err)
{
    if (st == KILN_RESOURCE_EXHAUSTED)
        st = err->code = KILN_OUT_OF_RANGE;
    return st;
}

/* Strict checks and normalisation of p, whose symbols are its own (sh
 * NULL) or sh's; then Go's repairs. Whether p is Go's is asked of its own
 * frames (those max_stack_depth keeps) when the tables are shared: they
 * hold other profiles' functions. The repair of Go's names then rewrites
 * the shared strings for every profile that shares them, which changes
 * nothing but Go's generic function names ("[go.shape."). */
static kiln_status normalize(const kiln_limits *lim, kiln_arena_t *a, kiln_pprof_t *p,
                             const shared_symbols *sh, kiln_err *err)
{
    kiln_status st;
    bool go;
    if (sh == NULL) {
        st = kiln_pprof_validate_normalize(a, p, lim->max_stack_depth, err);
        go = st == KILN_OK && kiln_go_profile_like(p);
    } else if (sh->sym == NULL) {
        *err = sh->why;
        return sh->why.code;
    } else {
        st = kiln_pprof_samples_prepare(a, p, sh->sym, lim->max_stack_depth, err);
        go = st == KILN_OK && sh->go_loc != NULL && kiln_go_samples_like(p, sh->go_loc);
    }
    return go ? kiln_go_fix(a, p, err) : st; /* as Pyroscope repairs Go's */
}

/* Limits, strict checks and normalisation of one decoded profile. */
static kiln_status prepare_profile(const kiln_limits *lim, kiln_arena_t *a, kiln_pprof_t *p,
                                   const shared_symbols *sh, int64_t now, kiln_err *err)
{
    kiln_status st = check_limits(lim, p, now, err);
    if (st == KILN_OK)
        st = normalize(lim, a, p, sh, err);
    return too_large(st, err);
}

/* Per-sample labels that stay with the sample rather than name a series. */
static bool is_sample_only(kiln_str_t key)
{
    return kiln_str_eq(key, "trace_id") || kiln_str_eq(key, "span_id") ||
           kiln_str_eq(key, "profile_id");
}

/* Appends "key\xffvalue\xff" for each series-making string label of sample i
 * (labels are sorted by key after normalize), giving the sample's group key. */
static void sample_key(const kiln_pprof_t *p, size_t i, kiln_buf *key)
{
    const kiln_pprof_sample *s = &p->samples[i];
    key->len = 0;
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        kiln_str_t k = kiln_pprof_str(p, l->key), v = kiln_pprof_str(p, l->str);
        if (l->str == 0 || is_sample_only(k))
            continue;
        kiln_buf_append(key, k.ptr, k.len);
        kiln_buf_putc(key, '\xff');
        kiln_buf_append(key, v.ptr, v.len);
        kiln_buf_putc(key, '\xff');
    }
}

/* The series labels plus a group's sample labels; the series label wins. */
static kiln_label_t *group_labels(const kiln_label_t *base, size_t n, const char *key,
                                  kiln_arena_t *a, size_t *n_out)
{
    size_t extra = 0;
    for (const char *c = key; *c != '\0'; c++)
        extra += *c == '\xff';
    kiln_label_t *l = kiln_arena_alloc(a, (n + extra / 2 + 1) * sizeof(*l));
    memcpy(l, base, n * sizeof(*l));
    size_t m = n;
    for (const char *c = key; *c != '\0';) {
        const char *s1 = strchr(c, 0xff), *s2 = strchr(s1 + 1, 0xff);
        char *name = kiln_arena_strndup(a, c, (size_t)(s1 - c));
        if (kiln_labels_get(base, n, name) == NULL)
            l[m++] = (kiln_label_t){name, kiln_arena_strndup(a, s1 + 1, (size_t)(s2 - s1 - 1))};
        c = s2 + 1;
    }
    kiln_labels_sort(l, m);
    *n_out = m;
    return l;
}

/* Splits a profile into one profile per distinct set of string sample labels
 * (Pyroscope's pprof split): each part shares the symbols and keeps its own
 * samples. Returns the number of parts written to out (capacity: samples). */
typedef struct group_key {
    char *const *keys;
    const char *k;
} group_key;

static bool group_eq(const void *ctx, uint32_t id)
{
    const group_key *g = ctx;
    return strcmp(g->keys[id], g->k) == 0;
}

/* Whether any sample has a label that makes a series (most profiles have
 * none, and then the split is the profile itself). */
static bool has_series_labels(const kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t j = 0; j < s->n_labels; j++) {
            const kiln_pprof_label *l = &p->labels[s->label_off + j];
            if (l->str != 0 && !is_sample_only(kiln_pprof_str(p, l->key)))
                return true;
        }
    }
    return false;
}

static size_t split_by_labels(const kiln_ingest_profile *in, kiln_arena_t *a,
                              kiln_ingest_profile *out)
{
    const kiln_pprof_t *p = &in->profile;
    if (!has_series_labels(p)) {
        out[0] = *in;
        return 1;
    }
    char **keys = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(*keys));
    uint32_t *group = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(*group));
    size_t *count = kiln_arena_calloc(a, p->n_samples + 1, sizeof(*count));
    size_t n_groups = 0;
    kiln_hash_index idx;
    kiln_hash_index_init(&idx);
    kiln_buf key;
    kiln_buf_init(&key, 0);
    for (size_t i = 0; i < p->n_samples; i++) { /* group id per sample, hashed */
        sample_key(p, i, &key);
        group_key gk = {keys, key.len ? key.ptr : ""};
        uint64_t h = XXH3_64bits(gk.k, strlen(gk.k));
        uint32_t g = kiln_hash_index_find(&idx, h, group_eq, &gk);
        if (g == KILN_HASH_INDEX_NONE) {
            g = (uint32_t)n_groups++;
            keys[g] = kiln_arena_strndup(a, gk.k, strlen(gk.k));
            kiln_hash_index_insert(&idx, h, g);
        }
        group[i] = g;
        count[g]++;
    }
    kiln_buf_free(&key);
    kiln_hash_index_fini(&idx);
    /* One array for all groups' samples, each group a slice (counting sort). */
    kiln_pprof_sample *all = kiln_arena_alloc(a, (p->n_samples + 1) * sizeof(*all));
    size_t off = 0;
    for (size_t g = 0; g < n_groups; g++) {
        out[g] = *in;
        out[g].labels = group_labels(in->labels, in->n_labels, keys[g], a, &out[g].n_labels);
        out[g].profile.samples = all + off;
        out[g].profile.n_samples = 0;
        off += count[g];
    }
    for (size_t i = 0; i < p->n_samples; i++) {
        kiln_pprof_t *q = &out[group[i]].profile;
        q->samples[q->n_samples++] = p->samples[i];
    }
    return n_groups;
}

/* Claims each profile's client id; a profile whose id was already ingested
 * (a client retry) is marked as a duplicate by clearing its samples.
 * Returns the claimed keys (to release if the append fails). */
static uint64_t *claim_ids(kiln_distributor_t *d, const char *tenant, kiln_ingest_profile *in,
                           size_t n, kiln_arena_t *a)
{
    uint64_t *keys = kiln_arena_calloc(a, n + 1, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        if (in[i].id == NULL || *in[i].id == '\0')
            continue;
        uint64_t k = kiln_profile_id_key(tenant, in[i].id);
        if (kiln_seen_keys_add(d->seen, k))
            keys[i] = k;
        else
            in[i].profile.n_samples = 0; /* already ingested: acknowledge, store nothing */
    }
    return keys;
}

/* A random base for the ids of one push's profiles that came without
 * one: a getrandom per push, not per profile (an OTLP export holds about
 * eighty profiles, and their syscalls were 2% of its CPU). */
static uint64_t random_base(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)kiln_wall_ns() * 0x9e3779b97f4a7c15ULL;
    return r;
}

/* The id stored with profile i of a push: the client's id hashed (so
 * replicas and retries of one push share it), or, when the client gave
 * none, splitmix64's output i steps after base: its steps and finaliser
 * are bijections, so the profiles of one push get distinct ids, and two
 * pushes of identical content stay two profiles. Never 0 ("no id"). */
static uint64_t profile_id(const char *tenant, const char *id, uint64_t base, size_t i)
{
    if (id != NULL && *id != '\0')
        return kiln_profile_id_key(tenant, id);
    uint64_t z = base + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

/* Appends every part of every prepared profile as one batch (one WAL
 * record): a push is stored whole or not at all. */
static kiln_status append_all(kiln_distributor_t *d, const char *tenant,
                              const kiln_ingest_profile *in, size_t k, kiln_arena_t *a,
                              kiln_err *err)
{
    size_t total = 0, m = 0;
    uint64_t *ids = kiln_arena_alloc(a, (k + 1) * sizeof(*ids)), base = random_base();
    for (size_t i = 0; i < k; i++) {
        total += in[i].profile.n_samples;
        ids[i] = profile_id(tenant, in[i].id, base, i);
    }
    kiln_head_part *batch = kiln_arena_alloc(a, (total + 1) * sizeof(*batch));
    for (size_t i = 0; i < k; i++) {
        kiln_ingest_profile *parts =
            kiln_arena_alloc(a, (in[i].profile.n_samples + 1) * sizeof(*parts));
        size_t n = in[i].profile.n_samples ? split_by_labels(&in[i], a, parts) : 0;
        for (size_t j = 0; j < n; j++) {
            kiln_pprof_t *p = kiln_arena_alloc(a, sizeof(*p));
            *p = parts[j].profile;
            batch[m++] = (kiln_head_part){parts[j].labels, parts[j].n_labels, p, ids[i]};
        }
    }
    kiln_status st = kiln_store_append(&d->cfg.store, tenant, batch, m, err);
    /* Only an acknowledged push counts: a refused one is retried. */
    if (st == KILN_OK && d->rules != NULL)
        kiln_rules_eval_observe(d->rules, tenant, batch, m);
    return st;
}

/* Every path's profiles meet the size limit (an OTLP profile's encoded
 * size, a text body's decoded one), checked before the rate limit takes
 * tokens for something that cannot be stored. */
static kiln_status check_size(const kiln_distributor_t *d, const kiln_ingest_profile *in,
                              kiln_err *err)
{
    if (d->cfg.max_profile_bytes == 0 || in->raw_bytes <= d->cfg.max_profile_bytes)
        return KILN_OK;
    return kiln_err_set(err, KILN_OUT_OF_RANGE,
                        "profile of %zu bytes exceeds the limit of %zu bytes "
                        "(-validation.max-profile-size-bytes)",
                        in->raw_bytes, d->cfg.max_profile_bytes);
}

/* Checks one profile's series labels, then validates and normalises it;
 * *cumulative says whether it is to be turned into a delta. */
static kiln_status check_profile(const kiln_limits *lim, kiln_ingest_profile *in,
                                 const shared_symbols *sh, int64_t now, kiln_arena_t *a,
                                 bool *cumulative, kiln_err *err)
{
    *cumulative = kiln_delta_needed(in->labels, in->n_labels);
    kiln_status st = series_labels(lim, in, a, err);
    return st == KILN_OK ? prepare_profile(lim, a, &in->profile, sh, now, err) : st;
}

/* Stores checked profiles in[0..n) (bytes as received in all): claims
 * their retry ids, turns cumulative ones into deltas, appends them as one
 * batch and counts them; a refused append releases the ids. */
static kiln_status store_checked(kiln_distributor_t *d, const char *tenant, kiln_ingest_profile *in,
                                 size_t n, const bool *cumulative, size_t bytes, kiln_arena_t *a,
                                 kiln_err *err)
{
    uint64_t *claimed = claim_ids(d, tenant, in, n, a);
    for (size_t i = 0; i < n; i++) {
        if (cumulative[i] && in[i].profile.n_samples != 0)
            kiln_delta_apply(d->delta, tenant,
                             kiln_labels_fingerprint(in[i].labels, in[i].n_labels), &in[i].profile);
    }
    kiln_status st = append_all(d, tenant, in, n, a, err);
    for (size_t i = 0; st != KILN_OK && i < n; i++) {
        if (claimed[i] != 0)
            kiln_seen_keys_remove(d->seen, claimed[i]);
    }
    if (st == KILN_OK)
        kiln_metrics_ingested(d->metrics, tenant, bytes, n);
    return st;
}

kiln_status kiln_distributor_ingest(kiln_distributor_t *d, const char *tenant,
                                    kiln_ingest_profile *in, size_t n, kiln_arena_t *a,
                                    kiln_err *err)
{
    const kiln_limits *lim = kiln_overrides_get(d->cfg.limits, tenant);
    int64_t now = kiln_wall_ns();
    size_t bytes = 0;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < n; i++) {
        bytes += in[i].raw_bytes;
        if (st == KILN_OK)
            st = check_size(d, &in[i], err);
    }
    if (st == KILN_OK)
        st = kiln_overrides_take(d->cfg.limits, tenant, bytes, now, err);
    bool *cumulative = kiln_arena_calloc(a, n + 1, sizeof(bool));
    for (size_t i = 0; st == KILN_OK && i < n; i++)
        st = check_profile(lim, &in[i], NULL, now, a, &cumulative[i], err);
    return st == KILN_OK ? store_checked(d, tenant, in, n, cumulative, bytes, a, err) : st;
}

/* Whether a and b point at the same symbol tables. */
static bool same_tables(const kiln_pprof_t *a, const kiln_pprof_t *b)
{
    return a->strings == b->strings && a->n_strings == b->n_strings && a->mappings == b->mappings &&
           a->n_mappings == b->n_mappings && a->functions == b->functions &&
           a->n_functions == b->n_functions && a->locations == b->locations &&
           a->n_locations == b->n_locations && a->lines == b->lines && a->n_lines == b->n_lines;
}

/* Prepares the symbol tables p shares with other profiles; NULL past the
 * arena cap. */
static shared_symbols *prepare_shared(kiln_pprof_t *p, kiln_arena_t *a)
{
    shared_symbols *s = kiln_arena_calloc(a, 1, sizeof(*s));
    if (s == NULL)
        return NULL;
    kiln_status st = kiln_pprof_symbols_prepare(a, p, &s->sym, &s->why);
    if (st != KILN_OK) {
        s->sym = NULL;
        too_large(st, &s->why);
        return s;
    }
    s->go_loc = kiln_arena_alloc(a, p->n_locations + 1);
    if (s->go_loc == NULL)
        return NULL;
    if (kiln_go_locations(p, s->go_loc) == 0)
        s->go_loc = NULL;
    return s;
}

/* For each of in[0..n), the symbol tables it shares with its neighbours,
 * prepared once (NULL: its own, prepared with it). Tables that fail their
 * checks fail every profile that shares them: in an OTLP export they are
 * the request's dictionary, so a broken one is a broken request, as when
 * the converter finds an index out of range in it. NULL past the arena cap. */
static shared_symbols **share_symbols(kiln_ingest_profile *in, size_t n, kiln_arena_t *a)
{
    shared_symbols **sh = kiln_arena_calloc(a, n + 1, sizeof(*sh));
    for (size_t i = 0, e; sh != NULL && i < n; i = e) {
        for (e = i + 1; e < n && same_tables(&in[i].profile, &in[e].profile);)
            e++;
        if (e - i == 1)
            continue;
        shared_symbols *s = prepare_shared(&in[i].profile, a);
        if (s == NULL)
            return NULL;
        for (size_t j = i; j < e; j++)
            sh[j] = s;
    }
    return sh;
}

/* Checks the profiles of one group, in[0..n), each on its own. */
static kiln_status check_group(const kiln_distributor_t *d, const kiln_limits *lim,
                               kiln_ingest_profile *in, shared_symbols *const *sh, size_t n,
                               int64_t now, kiln_arena_t *a, bool *cumulative, kiln_err *err)
{
    kiln_status st = KILN_OK;
    for (size_t i = 0; st == KILN_OK && i < n; i++)
        st = check_size(d, &in[i], err);
    for (size_t i = 0; st == KILN_OK && i < n; i++)
        st = check_profile(lim, &in[i], sh[i], now, a, &cumulative[i], err);
    return st;
}

kiln_status kiln_distributor_ingest_groups(kiln_distributor_t *d, const char *tenant,
                                           kiln_ingest_profile *in, const size_t *group, size_t n,
                                           kiln_arena_t *a, kiln_ingest_rejections *rej,
                                           kiln_err *err)
{
    const kiln_limits *lim = kiln_overrides_get(d->cfg.limits, tenant);
    int64_t now = kiln_wall_ns();
    kiln_ingest_profile *ok = kiln_arena_alloc(a, (n + 1) * sizeof(*ok));
    bool *cumulative = kiln_arena_calloc(a, n + 1, sizeof(bool));
    shared_symbols **sh = share_symbols(in, n, a);
    if (ok == NULL || cumulative == NULL || sh == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "request memory limit reached");
    size_t k = 0, bytes = 0;
    for (size_t i = 0, e; i < n; i = e) {
        for (e = i + 1; e < n && group[e] == group[i];)
            e++;
        kiln_err why = {KILN_OK, ""};
        if (check_group(d, lim, in + i, sh + i, e - i, now, a, cumulative + k, &why) != KILN_OK) {
            if (rej->rejected++ == 0)
                rej->first = why;
            continue;
        }
        for (size_t j = i; j < e; j++) {
            bytes += in[j].raw_bytes;
            ok[k++] = in[j];
        }
    }
    if (k == 0)
        return KILN_OK;
    kiln_status st = kiln_overrides_take(d->cfg.limits, tenant, bytes, now, err);
    return st == KILN_OK ? store_checked(d, tenant, ok, k, cumulative, bytes, a, err) : st;
}
