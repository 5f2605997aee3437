/* SPDX-License-Identifier: Apache-2.0
 * jfr: chunks, events and the profiles made of them. Events of one chunk
 * are summed per (profile type, stack trace id, context id) first, as
 * Pyroscope's conversion does, and turned into stacks of frame names at the
 * chunk's end, while its constant pools are at hand. */
#include <string.h>

#include "jfr.h"
#include "jfr_int.h"
#include "pprof_build.h"

#define CHUNK_HEADER_BYTES 68
#define FEATURE_COMPRESSED_INTS 1u
/* Values read per byte of input at most (bounds nested empty structs). */
#define WORK_PER_BYTE 64u

/* The profile types, in Pyroscope's order. */
enum {
    K_CPU,
    K_WALL,
    K_TLAB_IN,
    K_TLAB_OUT,
    K_LOCK,
    K_PARK,
    K_LIVE,
    K_ALLOC_SAMPLE,
    K_MALLOC,
    K_COUNT
};

static const struct kind_def {
    const char *metric, *type0, *unit0, *type1, *unit1, *period_type, *period_unit;
} KINDS[K_COUNT] = {
    {"process_cpu", "cpu", "nanoseconds", NULL, NULL, "cpu", "nanoseconds"},
    {"wall", "wall", "nanoseconds", NULL, NULL, "wall", "nanoseconds"},
    {"memory", "alloc_in_new_tlab_objects", "count", "alloc_in_new_tlab_bytes", "bytes", "space",
     "bytes"},
    {"memory", "alloc_outside_tlab_objects", "count", "alloc_outside_tlab_bytes", "bytes", "space",
     "bytes"},
    {"mutex", "contentions", "count", "delay", "nanoseconds", "mutex", "count"},
    {"block", "contentions", "count", "delay", "nanoseconds", "block", "count"},
    {"memory", "live", "count", NULL, NULL, "objects", "count"},
    {"memory", "alloc_sample_objects", "count", "alloc_sample_bytes", "bytes", "space", "bytes"},
    {"memory", "malloc_objects", "count", "malloc_bytes", "bytes", "space", "bytes"},
};

/* Events of one chunk summed by kind, stack trace id and context id. */
typedef struct agg_entry {
    uint64_t stack, ctx;
    uint64_t span, span_name; /* the event's span id and span name string id, or 0 */
    int64_t v[2];
    uint8_t kind, used;
} agg_entry;

typedef struct agg {
    agg_entry *e;
    size_t cap, len;
} agg;

/* The state of one parse. */
typedef struct jfr_parse {
    kiln_arena_t *a;
    const kiln_jfr_input *in;
    kiln_jfr_labels labels;
    kiln_pprof_build_t *b[K_COUNT];
    const char *event; /* the last "event" setting seen */
    uint64_t budget;
    int64_t period;
    /* the chunk being read */
    jfr_meta meta;
    jfr_pools pools;
    agg agg;
    uint64_t span, span_name; /* of the event being read */
    uint64_t ticks_per_sec;
    jfr_val *vals;
    uint64_t *locs;
} jfr_parse;

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

bool kiln_jfr_is(const uint8_t *data, size_t len)
{
    return len >= 4 && memcmp(data, "FLR\0", 4) == 0;
}

/* ---- aggregation ---- */

static bool agg_same(const agg_entry *e, const agg_entry *k)
{
    return e->kind == k->kind && e->stack == k->stack && e->ctx == k->ctx && e->span == k->span &&
           e->span_name == k->span_name;
}

static size_t agg_slot(const agg *g, const agg_entry *k)
{
    uint64_t h = (k->stack * 0x9e3779b97f4a7c15ull) ^ (k->ctx * 0xc2b2ae3d27d4eb4full) ^
                 (k->span * 0x165667b19e3779f9ull) ^ k->span_name ^ k->kind;
    size_t s = (size_t)(h ^ (h >> 29)) & (g->cap - 1);
    while (g->e[s].used && !agg_same(&g->e[s], k))
        s = (s + 1) & (g->cap - 1);
    return s;
}

static bool agg_grow(kiln_arena_t *a, agg *g)
{
    agg old = *g;
    g->cap = old.cap ? old.cap * 2 : 256;
    g->e = kiln_arena_calloc(a, g->cap, sizeof(*g->e));
    if (g->e == NULL)
        return false;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.e[i].used)
            g->e[agg_slot(g, &old.e[i])] = old.e[i];
    }
    return true;
}

static bool add(jfr_parse *p, uint8_t kind, uint64_t stack, uint64_t ctx, int64_t v0, int64_t v1)
{
    agg *g = &p->agg;
    if (g->len >= KILN_JFR_MAX_SAMPLES || ((g->len + 1) * 2 > g->cap && !agg_grow(p->a, g)))
        return false;
    agg_entry k = {stack, ctx, p->span, p->span_name, {0, 0}, kind, 1};
    agg_entry *e = &g->e[agg_slot(g, &k)];
    if (!e->used) {
        *e = k;
        g->len++;
    }
    e->v[0] += v0;
    e->v[1] += v1;
    return true;
}

/* ---- events ---- */

static int64_t ev_i(const jfr_parse *p, const jfr_class *c, int f)
{
    return c->ix[f] >= 0 ? p->vals[c->ix[f]].i : 0;
}

/* The name of a thread state pool key, "" when unknown. */
static kiln_str_t thread_state(const jfr_parse *p, const jfr_class *c, bool *found)
{
    uint32_t i;
    *found = c->ix[F_STATE] >= 0 &&
             kiln_jfr__map_get(&p->pools.state, (uint64_t)ev_i(p, c, F_STATE), &i);
    if (!*found)
        return (kiln_str_t){"", 0};
    return kiln_jfr__resolve(&p->pools, ((const jfr_str *)p->pools.states.v)[i]);
}

/* A duration in the chunk's ticks, in nanoseconds. */
static int64_t ticks_ns(const jfr_parse *p, int64_t ticks)
{
    if (p->ticks_per_sec == 0 || p->ticks_per_sec == 1000000000u || ticks <= 0)
        return ticks;
    return (int64_t)((unsigned __int128)ticks * 1000000000u / p->ticks_per_sec);
}

static void on_setting(jfr_parse *p, const jfr_class *c)
{
    if (c->ix[F_NAME] < 0 || c->ix[F_VALUE] < 0)
        return;
    kiln_str_t name = kiln_jfr__resolve(&p->pools, p->vals[c->ix[F_NAME]].s);
    kiln_str_t value = kiln_jfr__resolve(&p->pools, p->vals[c->ix[F_VALUE]].s);
    if (kiln_str_eq(name, "event"))
        p->event = kiln_arena_strndup(p->a, value.ptr, value.len);
}

/* Counts an execution or wall-clock sample as cpu and/or wall. */
static bool on_sample(jfr_parse *p, const jfr_class *c, uint64_t st, uint64_t ctx)
{
    bool found, wall = p->event != NULL && strcmp(p->event, "wall") == 0;
    kiln_str_t state = thread_state(p, c, &found);
    if (c->role == E_EXEC)
        return (!found || kiln_str_eq(state, "STATE_SLEEPING") || add(p, K_CPU, st, ctx, 1, 0)) &&
               (!wall || add(p, K_WALL, st, ctx, 1, 0));
    int64_t n = ev_i(p, c, F_SAMPLES);
    return (!found || !wall || !kiln_str_eq(state, "STATE_RUNNABLE") ||
            add(p, K_CPU, st, ctx, n, 0)) &&
           add(p, K_WALL, st, ctx, n, 0);
}

/* One event of class c whose fields are in p->vals. */
static bool on_event(jfr_parse *p, const jfr_class *c)
{
    uint64_t st = (uint64_t)ev_i(p, c, F_STACK), ctx = (uint64_t)ev_i(p, c, F_CONTEXT);
    p->span = (uint64_t)ev_i(p, c, F_SPAN_ID);
    p->span_name = (uint64_t)ev_i(p, c, F_SPAN_NAME);
    switch (c->role) {
    case E_EXEC:
    case E_WALL:
        return on_sample(p, c, st, ctx);
    case E_TLAB_IN:
        return add(p, K_TLAB_IN, st, ctx, 1, ev_i(p, c, F_TLAB));
    case E_TLAB_OUT:
        return add(p, K_TLAB_OUT, st, ctx, 1, ev_i(p, c, F_ALLOC_SIZE));
    case E_ALLOC_SAMPLE:
        return add(p, K_ALLOC_SAMPLE, st, ctx, 1, ev_i(p, c, F_WEIGHT));
    case E_MONITOR:
        return add(p, K_LOCK, st, ctx, 1, ticks_ns(p, ev_i(p, c, F_DURATION)));
    case E_PARK:
        return add(p, K_PARK, st, ctx, 1, ticks_ns(p, ev_i(p, c, F_DURATION)));
    case E_LIVE:
        return add(p, K_LIVE, st, ctx, 1, 0);
    case E_MALLOC:
        return add(p, K_MALLOC, st, ctx, 1, ev_i(p, c, F_SIZE));
    case E_SETTING:
        on_setting(p, c);
        return true;
    default:
        return true;
    }
}

/* Reads the events of a chunk, r over [header end, chunk end). */
static kiln_status read_events(jfr_parse *p, jfr_reader *r, kiln_err *err)
{
    while (r->p < r->end) {
        const uint8_t *start = r->p;
        uint64_t size = kiln_jfr__long(r);
        uint64_t type = kiln_jfr__long(r);
        if (r->bad || size == 0 || size > (uint64_t)(r->end - start) || r->p > start + size)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: malformed event header");
        const jfr_class *c = type > 1 ? kiln_jfr__class(&p->meta, type) : NULL;
        if (c != NULL && c->role >= E_EXEC) {
            jfr_reader ev = {r->p, start + size, true, false, r->budget};
            kiln_jfr__read_struct(&ev, p->a, &p->meta, c, 0, p->vals);
            if (ev.bad && *r->budget == 0)
                return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: recording too complex");
            if (ev.bad)
                return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                    "jfr: malformed %s event (%zu bytes)", c->name, (size_t)size);
            if (!on_event(p, c))
                return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                                    "jfr: more than %u distinct stacks in a chunk",
                                    KILN_JFR_MAX_SAMPLES);
        }
        r->p = start + size;
    }
    return KILN_OK;
}

/* ---- profiles ---- */

/* The builder of a kind, created on its first sample. */
static kiln_pprof_build_t *builder(jfr_parse *p, int kind)
{
    if (p->b[kind] != NULL)
        return p->b[kind];
    const struct kind_def *k = &KINDS[kind];
    kiln_pprof_build_t *b = kiln_pprof_build_create(p->a, k->type1 != NULL ? 2 : 1);
    if (b == NULL)
        return NULL;
    kiln_pprof_build_sample_type(b, 0, k->type0, k->unit0);
    if (k->type1 != NULL)
        kiln_pprof_build_sample_type(b, 1, k->type1, k->unit1);
    kiln_pprof_build_period(b, k->period_type, k->period_unit, kind <= K_WALL ? p->period : 0);
    int64_t duration = 0;
    if (p->in->end_ns > p->in->start_ns &&
        __builtin_sub_overflow(p->in->end_ns, p->in->start_ns, &duration))
        duration = 0;
    kiln_pprof_build_time(b, p->in->start_ns, duration);
    p->b[kind] = b;
    return b;
}

/* The span of an event as Pyroscope labels it: profile_id (the span id in
 * 16 hex digits, kept per sample, not as a series) and span_name (from the
 * LabelsSnapshot's strings). False past the arena's cap. */
static bool span_labels(jfr_parse *p, const agg_entry *e, kiln_pprof_build_label *l, size_t *n)
{
    if (e->span != 0) {
        char *id = kiln_arena_printf(p->a, "%016llx", (unsigned long long)e->span);
        if (id == NULL)
            return false;
        l[(*n)++] = (kiln_pprof_build_label){KILN_STR("profile_id"), {id, 16}};
    }
    kiln_str_t name = kiln_jfr__labels_string(&p->labels, (int64_t)e->span_name);
    if (e->span_name != 0 && name.len > 0)
        l[(*n)++] = (kiln_pprof_build_label){KILN_STR("span_name"), name};
    return true;
}

/* Adds one summed entry as a sample: its stack's frames (leaf first, as
 * both JFR and pprof order them) and its context's labels. A stack trace
 * missing from the pools is left out, as Pyroscope leaves it out. */
static bool emit(jfr_parse *p, const agg_entry *e)
{
    uint32_t si;
    if (!kiln_jfr__map_get(&p->pools.stack, e->stack, &si))
        return true;
    const jfr_stack *st = &((const jfr_stack *)p->pools.stacks.v)[si];
    const jfr_frame *fr = (const jfr_frame *)p->pools.frames.v + st->off;
    kiln_pprof_build_t *b = builder(p, e->kind);
    if (b == NULL)
        return false;
    size_t n = 0;
    for (uint32_t i = 0; i < st->n; i++) {
        kiln_str_t name = kiln_jfr__frame_name(p->a, &p->pools, fr[i].method);
        if (name.ptr == NULL)
            continue;
        if ((p->locs[n++] = kiln_pprof_build_frame(b, name)) == 0)
            return false;
    }
    kiln_pprof_build_label *labels;
    size_t nl = kiln_jfr__labels_of(p->a, &p->labels, e->ctx, &labels);
    if (labels == NULL || !span_labels(p, e, labels, &nl))
        return false;
    int64_t v[2] = {e->v[0], e->v[1]};
    if (e->kind <= K_WALL)
        v[0] = (int64_t)((uint64_t)v[0] * (uint64_t)p->period);
    return kiln_pprof_build_sample(b, p->locs, n, v, labels, nl) == KILN_OK;
}

static kiln_status chunk_header(const uint8_t *c, size_t avail, size_t at, uint64_t *size,
                                kiln_err *err)
{
    if (avail < CHUNK_HEADER_BYTES || !kiln_jfr_is(c, avail))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: no JFR chunk (magic \"FLR\" and a 68-byte header) at byte %zu",
                            at);
    unsigned major = (unsigned)c[4] << 8 | c[5];
    uint32_t features =
        (uint32_t)c[64] << 24 | (uint32_t)c[65] << 16 | (uint32_t)c[66] << 8 | c[67];
    *size = be64(c + 8);
    if (major != 2)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: version %u is not supported (JFR 2.x is: JDK 11+, "
                            "async-profiler)",
                            major);
    if (*size < CHUNK_HEADER_BYTES || *size > avail)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: chunk at byte %zu claims %llu bytes, %zu are left", at,
                            (unsigned long long)*size, avail);
    if ((features & FEATURE_COMPRESSED_INTS) == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: chunks without compressed integers are not supported");
    return KILN_OK;
}

static kiln_status read_chunk(jfr_parse *p, const uint8_t *c, size_t avail, size_t at, size_t *used,
                              kiln_err *err)
{
    uint64_t size = 0;
    kiln_status st = chunk_header(c, avail, at, &size, err);
    if (st != KILN_OK)
        return st;
    uint64_t cp = be64(c + 16), meta = be64(c + 24);
    p->ticks_per_sec = be64(c + 56);
    if (meta < CHUNK_HEADER_BYTES || meta >= size || cp < CHUNK_HEADER_BYTES || cp >= size)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "jfr: chunk at byte %zu has its metadata or constant pools outside "
                            "it",
                            at);
    jfr_reader chunk = {c, c + size, true, false, &p->budget};
    jfr_reader mr = chunk;
    mr.p = c + meta;
    if ((st = kiln_jfr__read_meta(p->a, &mr, &p->meta, err)) != KILN_OK ||
        (st = kiln_jfr__read_pools(p->a, &chunk, (size_t)cp, &p->meta, &p->pools, err)) != KILN_OK)
        return st;
    jfr_reader er = chunk;
    er.p = c + CHUNK_HEADER_BYTES;
    memset(&p->agg, 0, sizeof(p->agg));
    if ((st = read_events(p, &er, err)) != KILN_OK)
        return st;
    for (size_t i = 0; i < p->agg.cap; i++) {
        if (p->agg.e[i].used && !emit(p, &p->agg.e[i]))
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: recording too large");
    }
    *used = (size_t)size;
    return KILN_OK;
}

static kiln_status finish(jfr_parse *p, kiln_jfr_result *out, kiln_err *err)
{
    kiln_jfr_profile *profiles = kiln_arena_calloc(p->a, K_COUNT, sizeof(*profiles));
    if (profiles == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: out of memory");
    size_t n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        if (p->b[k] == NULL || kiln_pprof_build_n_samples(p->b[k]) == 0)
            continue;
        kiln_status st = kiln_pprof_build_finish(p->b[k], &profiles[n].profile, err);
        if (st != KILN_OK)
            return st;
        profiles[n++].metric = KINDS[k].metric;
    }
    out->profiles = profiles;
    out->n = n;
    out->event = p->event != NULL ? p->event : "";
    return KILN_OK;
}

kiln_status kiln_jfr_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                           const kiln_jfr_input *in, kiln_jfr_result *out, kiln_err *err)
{
    jfr_parse p;
    memset(&p, 0, sizeof(p));
    p.a = a;
    p.in = in;
    p.budget = (uint64_t)len * WORK_PER_BYTE + (1u << 20);
    p.period = in->sample_rate != 0 ? 1000000000 / (int64_t)in->sample_rate : 0;
    p.vals = kiln_arena_alloc(a, JFR_MAX_FIELDS * sizeof(*p.vals));
    p.locs = kiln_arena_alloc(a, KILN_JFR_MAX_DEPTH * sizeof(*p.locs));
    if (p.vals == NULL || p.locs == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: out of memory");
    kiln_status st = KILN_OK;
    if (in->labels != NULL && in->labels_len > 0)
        st = kiln_jfr__labels_parse(a, in->labels, in->labels_len, &p.labels, err);
    if (st == KILN_OK && len == 0)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: empty recording");
    for (size_t off = 0, used = 0; st == KILN_OK && off < len; off += used)
        st = read_chunk(&p, data + off, len - off, off, &used, err);
    return st == KILN_OK ? finish(&p, out, err) : st;
}
