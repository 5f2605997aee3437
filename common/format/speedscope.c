/* SPDX-License-Identifier: Apache-2.0
 * speedscope: two passes over the JSON. The first reads $schema and
 * shared.frames and notes where "profiles" is (it may come first); the
 * second walks each profile, whose "samples", "weights" and "events" are
 * read from spans noted while reading the profile's other fields. */
#include "speedscope.h"

#include <stdbool.h>
#include <string.h>

#include "json_reader.h"

/* A unit: its name, Pyroscope's precision multiplier and sample rate. The
 * nanoseconds rate differs from Pyroscope (whose 100e9 overflows uint32 and
 * zeroes every value): here 1 ns per unit. */
static const struct unit_info {
    const char *name;
    int64_t mult;
    uint64_t rate;
} units[] = {
    {"none", 100, 10000},          {"nanoseconds", 1, 1000000000}, {"microseconds", 100, 100000000},
    {"milliseconds", 100, 100000}, {"seconds", 100, 100},          {"bytes", 1, 0},
};

/* What a profile object holds; spans are empty when absent or null. */
typedef struct prof_fields {
    kiln_str_t type, name, unit;
    double start;
    kiln_str_t samples, weights, events;
} prof_fields;

typedef struct group {
    kiln_str_t type, name, unit;
    double start;
    const struct unit_info *u;
} group;

typedef struct ctx {
    kiln_arena_t *a;
    kiln_err *err;
    kiln_str_t *frames;
    size_t n_frames;
    group *groups;
    kiln_speedscope_profile *out;
    size_t n_groups, cap_groups, n_objects;
    uint64_t *stack; /* location ids, root first while collecting */
    size_t *open;    /* evented: the open frames' indices */
    size_t cap_stack;
} ctx;

static kiln_status oom(ctx *c)
{
    return kiln_err_set(c->err, KILN_RESOURCE_EXHAUSTED, "speedscope: profile too large");
}

/* Arena array doubling. */
static bool grow(kiln_arena_t *a, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 4 / elem)
            return false;
        ncap *= 2;
    }
    void *p = kiln_arena_alloc(a, ncap * elem);
    if (p == NULL)
        return false;
    if (*cap)
        memcpy(p, *arr, *cap * elem);
    *arr = p;
    *cap = ncap;
    return true;
}

/* Reads a string or null (as ""). */
static bool str_or_null(kiln_json *j, kiln_arena_t *a, kiln_str_t *out)
{
    *out = (kiln_str_t){"", 0};
    return kiln_json_null(j) || kiln_json_str(j, a, out);
}

static bool num_or_null(kiln_json *j, double *out)
{
    *out = 0;
    return kiln_json_null(j) || kiln_json_num(j, out);
}

/* A span of the next value, or empty for null. */
static bool span_or_null(kiln_json *j, kiln_str_t *out)
{
    *out = (kiln_str_t){"", 0};
    return kiln_json_null(j) || kiln_json_span(j, out);
}

/* Reads one frame object (only its name matters). */
static bool frame_name(kiln_json *j, kiln_arena_t *a, kiln_str_t *name)
{
    *name = (kiln_str_t){"", 0};
    if (kiln_json_null(j))
        return true;
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t key;
    while (kiln_json_obj_next(j, &key)) {
        bool ok = kiln_json_key_is(key, "name") ? str_or_null(j, a, name) : kiln_json_skip(j);
        if (!ok)
            return false;
    }
    return !kiln_json_failed(j);
}

/* shared: {"frames": [{"name": ...}, ...]} */
static bool parse_shared(kiln_json *j, ctx *c)
{
    if (kiln_json_null(j))
        return true;
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t key;
    size_t cap = 0;
    while (kiln_json_obj_next(j, &key)) {
        if (!kiln_json_key_is(key, "frames")) {
            if (!kiln_json_skip(j))
                return false;
            continue;
        }
        c->n_frames = 0;
        if (kiln_json_null(j))
            continue;
        if (!kiln_json_arr_begin(j))
            return false;
        while (kiln_json_arr_next(j)) {
            if (!grow(c->a, (void **)&c->frames, &cap, c->n_frames + 1, sizeof(*c->frames)))
                return kiln_json_fail(j, "too many frames");
            if (!frame_name(j, c->a, &c->frames[c->n_frames++]))
                return false;
        }
    }
    return !kiln_json_failed(j);
}

/* First pass: the schema check, the frames, and where the profiles are. */
static kiln_status parse_top(kiln_json *j, ctx *c, kiln_str_t *profiles)
{
    kiln_str_t key, schema = {"", 0};
    *profiles = (kiln_str_t){"", 0};
    if (kiln_json_obj_begin(j)) {
        while (kiln_json_obj_next(j, &key)) {
            if (kiln_json_key_is(key, "$schema"))
                str_or_null(j, c->a, &schema);
            else if (kiln_json_key_is(key, "shared"))
                parse_shared(j, c);
            else if (kiln_json_key_is(key, "profiles"))
                span_or_null(j, profiles);
            else
                kiln_json_skip(j);
        }
        kiln_json_end(j);
    }
    if (kiln_json_failed(j))
        return KILN_INVALID_ARGUMENT;
    if (!kiln_str_eq(schema, KILN_SPEEDSCOPE_SCHEMA))
        return kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: unknown schema \"%.*s\"",
                            (int)(schema.len > 80 ? 80 : schema.len), schema.ptr);
    return KILN_OK;
}

static bool parse_fields(kiln_json *j, kiln_arena_t *a, prof_fields *f)
{
    memset(f, 0, sizeof(*f));
    f->type = f->name = f->unit = f->samples = f->weights = f->events = (kiln_str_t){"", 0};
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t k;
    while (kiln_json_obj_next(j, &k)) {
        bool ok;
        if (kiln_json_key_is(k, "type"))
            ok = str_or_null(j, a, &f->type);
        else if (kiln_json_key_is(k, "name"))
            ok = str_or_null(j, a, &f->name);
        else if (kiln_json_key_is(k, "unit"))
            ok = str_or_null(j, a, &f->unit);
        else if (kiln_json_key_is(k, "startValue"))
            ok = num_or_null(j, &f->start);
        else if (kiln_json_key_is(k, "samples"))
            ok = span_or_null(j, &f->samples);
        else if (kiln_json_key_is(k, "weights"))
            ok = span_or_null(j, &f->weights);
        else if (kiln_json_key_is(k, "events"))
            ok = span_or_null(j, &f->events);
        else
            ok = kiln_json_skip(j);
        if (!ok)
            return false;
    }
    return !kiln_json_failed(j);
}

static bool str_same(kiln_str_t a, kiln_str_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static const struct unit_info *find_unit(kiln_str_t u)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (kiln_str_eq(u, units[i].name))
            return &units[i];
    }
    return NULL;
}

/* The group of profiles with f's name, type, unit and startValue, created
 * (with its builder) on first sight; NULL with err set on failure. */
static group *find_group(ctx *c, const prof_fields *f)
{
    for (size_t i = 0; i < c->n_groups; i++) {
        group *g = &c->groups[i];
        if (str_same(g->type, f->type) && str_same(g->name, f->name) &&
            str_same(g->unit, f->unit) && g->start == f->start)
            return g;
    }
    if (c->n_groups == KILN_SPEEDSCOPE_MAX_PROFILES) {
        kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: more than %d distinct profiles",
                     KILN_SPEEDSCOPE_MAX_PROFILES);
        return NULL;
    }
    const struct unit_info *u = find_unit(f->unit);
    if (u == NULL) {
        kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: invalid profile unit \"%.*s\"",
                     (int)(f->unit.len > 40 ? 40 : f->unit.len), f->unit.ptr);
        return NULL;
    }
    size_t cap = c->cap_groups;
    if (!grow(c->a, (void **)&c->groups, &c->cap_groups, c->n_groups + 1, sizeof(*c->groups)) ||
        !grow(c->a, (void **)&c->out, &cap, c->n_groups + 1, sizeof(*c->out)))
        return oom(c), NULL;
    group *g = &c->groups[c->n_groups];
    *g = (group){f->type, f->name, f->unit, f->start, u};
    kiln_pprof_build_t *b = kiln_pprof_build_create(c->a, 1);
    if (b == NULL)
        return oom(c), NULL;
    c->out[c->n_groups++] = (kiln_speedscope_profile){f->name, u->name, u->rate, b};
    return g;
}

static kiln_speedscope_profile *group_out(ctx *c, const group *g)
{
    return &c->out[g - c->groups];
}

/* The location id of frame index fid (a JSON number) in g's builder (which
 * interns frames by name). */
static kiln_status frame_loc(ctx *c, group *g, double fid, uint64_t *out)
{
    if (!(fid > -1.0 && fid < (double)c->n_frames))
        return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                            "speedscope: frame index %.0f out of range (%zu frames)", fid,
                            c->n_frames);
    *out = kiln_pprof_build_frame(group_out(c, g)->b, c->frames[(size_t)(int64_t)fid]);
    return *out != 0 ? KILN_OK : oom(c);
}

/* Adds the root-first stack[0..n) (reversed in place) with value units * mult. */
static kiln_status add(ctx *c, group *g, size_t n, double units_)
{
    double v = units_ * (double)g->u->mult;
    if (!(v < 9.2e18))
        return kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: weight %g too large",
                            units_);
    int64_t val = (int64_t)v;
    if (val == 0)
        return KILN_OK;
    uint64_t *leaf_first = c->stack + c->cap_stack / 2;
    for (size_t i = 0; i < n; i++)
        leaf_first[i] = c->stack[n - 1 - i];
    return kiln_pprof_build_sample(group_out(c, g)->b, leaf_first, n, &val, NULL, 0) == KILN_OK
               ? KILN_OK
               : oom(c);
}

/* Makes room for a stack of n frames (the scratch holds two: root first and
 * leaf first, plus the evented open-frame indices). */
static kiln_status stack_room(ctx *c, size_t n)
{
    if (2 * n <= c->cap_stack)
        return KILN_OK;
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    uint64_t *s = kiln_arena_alloc(c->a, cap * sizeof(*s));
    size_t *o = kiln_arena_alloc(c->a, cap / 2 * sizeof(*o));
    if (s == NULL || o == NULL)
        return oom(c);
    size_t half = c->cap_stack / 2;
    if (half) {
        memcpy(s, c->stack, half * sizeof(*s));
        memcpy(o, c->open, half * sizeof(*o));
    }
    c->stack = s;
    c->open = o;
    c->cap_stack = cap;
    return KILN_OK;
}

/* One sample: an array of frame indices, root first. */
static kiln_status read_sample(ctx *c, group *g, kiln_json *js, size_t *n)
{
    *n = 0;
    if (kiln_json_null(js))
        return KILN_OK;
    if (!kiln_json_arr_begin(js))
        return KILN_INVALID_ARGUMENT;
    kiln_status st = KILN_OK;
    while (st == KILN_OK && kiln_json_arr_next(js)) {
        double fid;
        st = kiln_json_num(js, &fid) ? stack_room(c, *n + 1) : KILN_INVALID_ARGUMENT;
        if (st == KILN_OK)
            st = frame_loc(c, g, fid, &c->stack[*n]);
        if (st == KILN_OK)
            (*n)++;
    }
    return st == KILN_OK && kiln_json_failed(js) ? KILN_INVALID_ARGUMENT : st;
}

/* samples[i] with weights[i], read side by side. */
static kiln_status sampled(ctx *c, group *g, const prof_fields *f)
{
    kiln_json js, jw;
    kiln_json_init(&js, f->samples.ptr, f->samples.len, "speedscope samples", c->err);
    kiln_json_init(&jw, f->weights.ptr, f->weights.len, "speedscope weights", c->err);
    bool s_open = f->samples.len != 0 && kiln_json_arr_begin(&js);
    bool w_open = f->weights.len != 0 && kiln_json_arr_begin(&jw);
    if (kiln_json_failed(&js) || kiln_json_failed(&jw))
        return KILN_INVALID_ARGUMENT;
    for (size_t i = 0;; i++) {
        bool ms = s_open && kiln_json_arr_next(&js), mw = w_open && kiln_json_arr_next(&jw);
        if (kiln_json_failed(&js) || kiln_json_failed(&jw))
            return KILN_INVALID_ARGUMENT;
        if (ms != mw)
            return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                                "speedscope: samples and weights differ in length (at %zu)", i);
        if (!ms)
            return KILN_OK;
        double w;
        size_t n;
        if (!kiln_json_num(&jw, &w))
            return KILN_INVALID_ARGUMENT;
        if (w < 0)
            return kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: negative weight %g", w);
        kiln_status st = read_sample(c, g, &js, &n);
        if (st == KILN_OK)
            st = add(c, g, n, w);
        if (st != KILN_OK)
            return st;
    }
}

/* One event object: {"type": "O"|"C", "at": number, "frame": number}. */
static bool read_event(kiln_json *j, kiln_arena_t *a, kiln_str_t *type, double *at, double *frame)
{
    *type = (kiln_str_t){"", 0};
    *at = *frame = 0;
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t k;
    while (kiln_json_obj_next(j, &k)) {
        bool ok = kiln_json_key_is(k, "type")    ? str_or_null(j, a, type)
                  : kiln_json_key_is(k, "at")    ? num_or_null(j, at)
                  : kiln_json_key_is(k, "frame") ? num_or_null(j, frame)
                                                 : kiln_json_skip(j);
        if (!ok)
            return false;
    }
    return !kiln_json_failed(j);
}

/* Applies one event to the open stack (depth *n). Time since the previous
 * event goes to the stack that was open during it. */
static kiln_status apply_event(ctx *c, group *g, kiln_str_t type, double fid, double dt, size_t *n)
{
    uint64_t loc;
    kiln_status st = frame_loc(c, g, fid, &loc);
    size_t idx = (size_t)(int64_t)fid;
    if (st == KILN_OK && *n > 0)
        st = add(c, g, *n, dt);
    if (st != KILN_OK)
        return st;
    if (kiln_str_eq(type, "C")) {
        if (*n == 0)
            return kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: no stack to close");
        if (c->open[*n - 1] != idx)
            return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                                "speedscope: closing frame %zu that is not open", idx);
        (*n)--;
        return KILN_OK;
    }
    if (!kiln_str_eq(type, "O"))
        return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                            "speedscope: unknown event type \"%.*s\"",
                            (int)(type.len > 20 ? 20 : type.len), type.ptr);
    if (stack_room(c, *n + 1) != KILN_OK)
        return KILN_RESOURCE_EXHAUSTED;
    c->stack[*n] = loc;
    c->open[(*n)++] = idx;
    return KILN_OK;
}

static kiln_status evented(ctx *c, group *g, const prof_fields *f)
{
    kiln_json j;
    kiln_json_init(&j, f->events.ptr, f->events.len, "speedscope events", c->err);
    if (f->events.len == 0)
        return KILN_OK;
    if (!kiln_json_arr_begin(&j))
        return KILN_INVALID_ARGUMENT;
    double last = f->start;
    size_t n = 0;
    kiln_status st = KILN_OK;
    while (st == KILN_OK && kiln_json_arr_next(&j)) {
        kiln_str_t type;
        double at, fid;
        if (!read_event(&j, c->a, &type, &at, &fid))
            return KILN_INVALID_ARGUMENT;
        if (at < last)
            return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                                "speedscope: events out of order, %g < %g", at, last);
        st = apply_event(c, g, type, fid, at - last, &n);
        last = at;
    }
    return st == KILN_OK && kiln_json_failed(&j) ? KILN_INVALID_ARGUMENT : st;
}

static kiln_status one_profile(ctx *c, kiln_json *j)
{
    prof_fields f;
    if (++c->n_objects > KILN_SPEEDSCOPE_MAX_OBJECTS)
        return kiln_err_set(c->err, KILN_INVALID_ARGUMENT, "speedscope: more than %d profiles",
                            KILN_SPEEDSCOPE_MAX_OBJECTS);
    if (!parse_fields(j, c->a, &f))
        return KILN_INVALID_ARGUMENT;
    group *g = find_group(c, &f);
    if (g == NULL)
        return c->err ? c->err->code : KILN_INVALID_ARGUMENT;
    if (kiln_str_eq(f.type, "sampled"))
        return sampled(c, g, &f);
    if (kiln_str_eq(f.type, "evented"))
        return evented(c, g, &f);
    return kiln_err_set(c->err, KILN_INVALID_ARGUMENT,
                        "speedscope: profile type \"%.*s\" not supported",
                        (int)(f.type.len > 40 ? 40 : f.type.len), f.type.ptr);
}

kiln_status kiln_speedscope_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                  kiln_speedscope_profile **out, size_t *n_out, kiln_err *err)
{
    kiln_err local;
    if (err == NULL)
        err = &local;
    ctx c;
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.err = err;
    if (stack_room(&c, 1) != KILN_OK) /* no NULL scratch even for empty stacks */
        return KILN_RESOURCE_EXHAUSTED;
    kiln_json j;
    kiln_json_init(&j, data, len, "speedscope", err);
    kiln_str_t profiles;
    kiln_status st = parse_top(&j, &c, &profiles);
    if (st != KILN_OK)
        return st;
    kiln_json_init(&j, profiles.ptr, profiles.len, "speedscope profiles", err);
    if (profiles.len != 0 && !kiln_json_arr_begin(&j))
        return KILN_INVALID_ARGUMENT;
    while (st == KILN_OK && profiles.len != 0 && kiln_json_arr_next(&j))
        st = one_profile(&c, &j);
    if (st == KILN_OK && kiln_json_failed(&j))
        st = KILN_INVALID_ARGUMENT;
    if (st == KILN_OK) {
        *out = c.out;
        *n_out = c.n_groups;
    }
    return st;
}
