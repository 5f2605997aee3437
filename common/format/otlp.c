/* SPDX-License-Identifier: Apache-2.0
 * otlp: ExportProfilesServiceRequest -> one decoded pprof per Profile and
 * service (Pyroscope's rules, see otlp.h). The series of a request share
 * one set of symbol tables: the dictionary entries that some converted
 * profile uses, each copied once, found through slots filled on first use,
 * so that a request over a big dictionary stays linear in what it uses, and
 * the distributor normalises and the head interns those tables once per
 * request instead of once per series. Indices are trusted here only after
 * otlp_check.c has checked them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "otlp_int.h"

#define MAX_SERIES_ATTRS 4096 /* resource + scope attributes per profile */
#define DEFAULT_DURATION_NS 10000000000LL

/* A dictionary entry's index in the request's tables, once it is there. */
typedef struct slot {
    bool set;
    uint32_t idx;
} slot;

/* An arena array grown by doubling (outgrown copies stay in the arena). */
typedef struct vec {
    void *p;
    size_t n, cap;
} vec;

/* The symbol tables every series of the request shares (see otlp.h). */
typedef struct symbol_vecs {
    vec strs;      /* kiln_str_t; [0] is "" */
    vec locs_used; /* int32_t: dictionary location index of each local location */
    vec locations, lines, functions, mappings;
} symbol_vecs;

/* The arrays of the series being built, its own part of its kiln_pprof_t. */
typedef struct series_vecs {
    vec stack, values, labels, samples;
} series_vecs;

typedef struct conv {
    kiln_arena_t *a;
    const o_dict *d;
    bool oom; /* sticky: an arena allocation failed */
    slot *str, *loc, *fn, *map, *attr, *link;
    bool *svc_attr;    /* per dictionary attribute: its key is service.name */
    bool *label_attr;  /* per dictionary attribute: a sample's label (a key, not service.name) */
    uint32_t *str_len; /* per dictionary string: its length + 1, 0 until measured */
    slot key_trace, key_span, key_cpu, key_ns;
    symbol_vecs sym;
    series_vecs v;
    union { /* written instead of a vec element once the arena is full */
        kiln_str_t s;
        kiln_pprof_location l;
        kiln_pprof_line ln;
        kiln_pprof_function f;
        kiln_pprof_mapping m;
        kiln_pprof_label lb;
        kiln_pprof_sample sm;
        uint64_t u;
    } sink;
} conv;

/* What every series of one Profile shares. */
typedef struct prof_ctx {
    const o_profile *p;
    const char *name;     /* __name__ */
    bool to_nanos;        /* samples/count with a cpu period: values become cpu ns */
    kiln_label_t *labels; /* without service_name */
    size_t n_labels;
    const char *service; /* from the resource */
    size_t index;
    const char *id;
    size_t raw_bytes;
} prof_ctx;

/* A sample and its own service.name (NULL: the resource's). */
typedef struct svc_ref {
    const char *svc;
    size_t i;
} svc_ref;

static void *cv_alloc(conv *c, size_t n)
{
    void *p = kiln_arena_alloc(c->a, n ? n : 1);
    if (p == NULL)
        c->oom = true;
    return p;
}

/* push's rare part: v full, its elements moved to twice the room. */
static __attribute__((noinline)) void *push_grow(conv *c, vec *v, size_t elem)
{
    size_t cap = v->cap ? v->cap * 2 : 16;
    void *p = kiln_arena_alloc(c->a, cap * elem);
    if (p == NULL) {
        c->oom = true;
        return &c->sink;
    }
    if (v->n != 0)
        memcpy(p, v->p, v->n * elem);
    v->p = p;
    v->cap = cap;
    return (char *)v->p + elem * v->n++;
}

/* Room for one more element of v (c->sink once the arena is full): inlined,
 * as it runs for every string, label, location, line and function of
 * every series. */
static inline void *push(conv *c, vec *v, size_t elem)
{
    if (__builtin_expect(v->n == v->cap, 0))
        return push_grow(c, v, elem);
    return (char *)v->p + elem * v->n++;
}

/* Room for k more elements of v, counted as used: where they go (NULL when
 * k is 0 and v still empty), or NULL (c->oom set) once the arena is full.
 * One capacity check for a run of elements whose number is known, such as
 * a stack's frames. */
static void *push_n(conv *c, vec *v, size_t elem, size_t k)
{
    if (k == 0)
        return v->p; /* nothing to add: v->p may still be NULL, never NULL + 0 */
    if (v->n + k > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        while (cap < v->n + k)
            cap *= 2;
        void *p = kiln_arena_alloc(c->a, cap * elem);
        if (p == NULL) {
            c->oom = true;
            return NULL;
        }
        if (v->n != 0)
            memcpy(p, v->p, v->n * elem);
        v->p = p;
        v->cap = cap;
    }
    void *at = (char *)v->p + elem * v->n;
    v->n += k;
    return at;
}

static uint32_t push_str(conv *c, const char *s, size_t len)
{
    uint32_t i = (uint32_t)c->sym.strs.n;
    kiln_str_t *e = push(c, &c->sym.strs, sizeof(*e));
    *e = (kiln_str_t){s, len};
    return i;
}

/* The length of dictionary string i, measured once per request: the series
 * of an export use the same strings over and over. */
static size_t dict_str_len(conv *c, int32_t i)
{
    if (c->str_len[i] == 0)
        c->str_len[i] = (uint32_t)strlen(c->d->string_table[i]) + 1;
    return c->str_len[i] - 1;
}

/* Local index of dictionary string i (0 stays 0: both are ""). */
static int64_t dict_str(conv *c, int32_t i)
{
    slot *s = &c->str[i];
    if (i != 0 && !s->set) {
        s->set = true;
        s->idx = push_str(c, c->d->string_table[i], dict_str_len(c, i));
    }
    return i == 0 ? 0 : s->idx;
}

/* Local index of a constant string, added once per request. */
static int64_t const_str(conv *c, slot *s, const char *text)
{
    if (!s->set) {
        s->set = true;
        s->idx = push_str(c, text, strlen(text));
    }
    return s->idx;
}

/* An attribute value as a label value: a string, an int in decimal, or the
 * only element of a one-element array of those; NULL otherwise or when "". */
/* v in decimal, in the arena (printf was a twentieth of an export's CPU:
 * resource attributes such as process.pid are ints, on every profile). */
static const char *int_str(conv *c, int64_t v)
{
    char buf[24], *end = buf + sizeof(buf), *at = end;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    do {
        *--at = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--at = '-';
    return kiln_arena_strndup(c->a, at, (size_t)(end - at));
}

static const char *any_str(conv *c, const o_any *v, bool in_array)
{
    const char *s = NULL;
    if (v == NULL)
        return NULL;
    switch (v->value_case) {
    case O_ANY(STRING_VALUE):
        s = v->string_value;
        break;
    case O_ANY(STRING_VALUE_STRINDEX):
        s = c->d->string_table[v->string_value_strindex];
        break;
    case O_ANY(INT_VALUE):
        s = int_str(c, v->int_value);
        c->oom |= s == NULL;
        break;
    case O_ANY(ARRAY_VALUE):
        if (!in_array && v->array_value != NULL && v->array_value->n_values == 1)
            s = any_str(c, v->array_value->values[0], true);
        break;
    default:
        break;
    }
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static const char *kv_key(const conv *c, const o_kv *kv)
{
    return kv->key[0] != '\0' ? kv->key : c->d->string_table[kv->key_strindex];
}

static const char *attr_key(const conv *c, int32_t ai)
{
    return c->d->string_table[c->d->attribute_table[ai]->key_strindex];
}

/* Local string index of dictionary attribute ai's value (0 when none). */
static int64_t attr_value(conv *c, int32_t ai)
{
    slot *s = &c->attr[ai];
    if (!s->set) {
        const char *v = any_str(c, c->d->attribute_table[ai]->value, false);
        s->set = true;
        s->idx = v != NULL ? push_str(c, v, strlen(v)) : 0;
    }
    return s->idx;
}

static char *hex(conv *c, const ProtobufCBinaryData *b)
{
    static const char digits[] = "0123456789abcdef";
    char *s = cv_alloc(c, b->len * 2 + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < b->len; i++) {
        s[2 * i] = digits[b->data[i] >> 4];
        s[2 * i + 1] = digits[b->data[i] & 15];
    }
    s[b->len * 2] = '\0';
    return s;
}

/* True for an id of exactly len bytes that are not all zero. */
static bool valid_id(const ProtobufCBinaryData *b, size_t len)
{
    if (b->len != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (b->data[i] != 0)
            return true;
    }
    return false;
}

static void add_label(conv *c, int64_t key, int64_t str)
{
    kiln_pprof_label *l = push(c, &c->v.labels, sizeof(*l));
    *l = (kiln_pprof_label){key, str, 0, 0};
}

/* trace_id and span_id labels (hex) for link li, the strings made once per request. */
static void link_labels(conv *c, int32_t li)
{
    const o_link *l = c->d->link_table[li];
    bool has_trace = valid_id(&l->trace_id, 16), has_span = valid_id(&l->span_id, 8);
    slot *s = &c->link[li];
    if (!has_trace && !has_span)
        return;
    if (!s->set) {
        char *t = has_trace ? hex(c, &l->trace_id) : NULL;
        char *sp = has_span ? hex(c, &l->span_id) : NULL;
        s->set = true;
        s->idx = push_str(c, t ? t : "", t ? strlen(t) : 0);
        push_str(c, sp ? sp : "", sp ? strlen(sp) : 0);
    }
    if (has_trace)
        add_label(c, const_str(c, &c->key_trace, "trace_id"), s->idx);
    if (has_span)
        add_label(c, const_str(c, &c->key_span, "span_id"), s->idx + 1);
}

/* The sample's attributes other than service.name, and its link, as labels. */
static void sample_labels(conv *c, const o_sample *s, kiln_pprof_sample *out)
{
    size_t off = c->v.labels.n;
    for (size_t k = 0; k < s->n_attribute_indices; k++) {
        int32_t ai = s->attribute_indices[k];
        if (!c->label_attr[ai])
            continue;
        int64_t v = attr_value(c, ai);
        if (v != 0)
            add_label(c, dict_str(c, c->d->attribute_table[ai]->key_strindex), v);
    }
    if (s->link_index != 0)
        link_labels(c, s->link_index);
    out->label_off = (uint32_t)off;
    out->n_labels = (uint32_t)(c->v.labels.n - off);
}

/* Location id (local index + 1) of dictionary location li. */
static uint64_t loc_id(conv *c, int32_t li)
{
    slot *s = &c->loc[li];
    if (!s->set) {
        s->set = true;
        s->idx = (uint32_t)c->sym.locs_used.n;
        int32_t *e = push(c, &c->sym.locs_used, sizeof(*e));
        *e = li;
    }
    return (uint64_t)s->idx + 1;
}

static void sample_stack(conv *c, const o_sample *s, kiln_pprof_sample *out)
{
    const o_stack *st = c->d->stack_table[s->stack_index];
    size_t off = c->v.stack.n, n = st->n_location_indices;
    uint64_t *e = push_n(c, &c->v.stack, sizeof(*e), n);
    for (size_t k = 0; e != NULL && k < n; k++)
        e[k] = loc_id(c, st->location_indices[k]);
    out->loc_off = (uint32_t)off;
    out->n_locs = (uint32_t)(c->v.stack.n - off);
}

/* One value: the sum of the values, or the number of timestamps when there
 * are none; times the period for samples/count converted to cpu ns. Sums
 * wrap on overflow, as pprof's do. */
static int64_t sample_value(const o_sample *s, const prof_ctx *pc)
{
    uint64_t v = s->n_values == 0 ? (uint64_t)s->n_timestamps_unix_nano : 0;
    for (size_t k = 0; k < s->n_values; k++)
        v += (uint64_t)s->values[k];
    if (pc->to_nanos)
        v *= (uint64_t)pc->p->period;
    return (int64_t)v;
}

/* Build id of a mapping: its process.executable.build_id.gnu attribute. */
static int64_t build_id(conv *c, const o_map *m)
{
    for (size_t k = 0; k < m->n_attribute_indices; k++) {
        if (strcmp(attr_key(c, m->attribute_indices[k]), "process.executable.build_id.gnu") == 0)
            return attr_value(c, m->attribute_indices[k]);
    }
    return 0;
}

/* Mapping id (local index + 1) of dictionary mapping mi (not 0). */
static uint64_t map_id(conv *c, int32_t mi)
{
    slot *s = &c->map[mi];
    if (!s->set) {
        const o_map *m = c->d->mapping_table[mi];
        s->set = true;
        s->idx = (uint32_t)c->sym.mappings.n;
        int64_t file = dict_str(c, m->filename_strindex), bid = build_id(c, m);
        kiln_pprof_mapping *o = push(c, &c->sym.mappings, sizeof(*o));
        *o = (kiln_pprof_mapping){.id = (uint64_t)s->idx + 1,
                                  .memory_start = m->memory_start,
                                  .memory_limit = m->memory_limit,
                                  .file_offset = m->file_offset,
                                  .filename = file,
                                  .build_id = bid,
                                  .has_functions = true,
                                  .has_filenames = true,
                                  .has_line_numbers = true};
    }
    return (uint64_t)s->idx + 1;
}

/* Function id (local index + 1) of dictionary function fi (not 0). */
static uint64_t fn_id(conv *c, int32_t fi)
{
    slot *s = &c->fn[fi];
    if (!s->set) {
        const o_fn *f = c->d->function_table[fi];
        s->set = true;
        s->idx = (uint32_t)c->sym.functions.n;
        int64_t name = dict_str(c, f->name_strindex), sys = dict_str(c, f->system_name_strindex);
        int64_t file = dict_str(c, f->filename_strindex);
        kiln_pprof_function *o = push(c, &c->sym.functions, sizeof(*o));
        *o = (kiln_pprof_function){(uint64_t)s->idx + 1, name, sys, file, f->start_line};
    }
    return (uint64_t)s->idx + 1;
}

/* A mapping has functions (file names, line numbers) only when every line of
 * every location in it does; inline frames when some location has several
 * (over the locations of the whole request: they share the mapping; only
 * pprof output reads these flags, the head and the WAL do not keep them). */
static void mapping_flags(conv *c, uint64_t id, const o_loc *l)
{
    if (id == 0 || id > c->sym.mappings.n)
        return;
    kiln_pprof_mapping *m = &((kiln_pprof_mapping *)c->sym.mappings.p)[id - 1];
    if (l->n_lines == 0)
        m->has_functions = m->has_filenames = m->has_line_numbers = false;
    m->has_inline_frames |= l->n_lines > 1;
    for (size_t k = 0; k < l->n_lines; k++) {
        int32_t fi = l->lines[k]->function_index;
        m->has_functions &= fi > 0;
        m->has_line_numbers &= l->lines[k]->line > 0;
        if (fi > 0)
            m->has_filenames &= c->d->function_table[fi]->filename_strindex > 0;
    }
}

/* Copies the locations the samples use, with their lines, functions and
 * mappings, once all series are built. Index 0 of mapping_index and
 * function_index means none. */
static void resolve_locations(conv *c)
{
    for (size_t i = 0; i < c->sym.locs_used.n; i++) {
        const o_loc *l = c->d->location_table[((int32_t *)c->sym.locs_used.p)[i]];
        uint64_t mapping = l->mapping_index != 0 ? map_id(c, l->mapping_index) : 0;
        kiln_pprof_location *o = push(c, &c->sym.locations, sizeof(*o));
        *o = (kiln_pprof_location){.id = i + 1,
                                   .mapping = mapping,
                                   .address = l->address,
                                   .line_off = (uint32_t)c->sym.lines.n,
                                   .n_lines = (uint32_t)l->n_lines};
        for (size_t k = 0; k < l->n_lines; k++) {
            const o_line *ln = l->lines[k];
            uint64_t fn = ln->function_index != 0 ? fn_id(c, ln->function_index) : 0;
            kiln_pprof_line *e = push(c, &c->sym.lines, sizeof(*e));
            *e = (kiln_pprof_line){fn, ln->line, ln->column};
        }
        mapping_flags(c, mapping, l);
    }
}

/* Fills p from the series arrays and the Profile's types and times. */
static void series_profile(conv *c, const prof_ctx *pc, kiln_pprof_t *p)
{
    const o_profile *op = pc->p;
    kiln_pprof_value_type *st = cv_alloc(c, sizeof(*st));
    memset(p, 0, sizeof(*p));
    if (st == NULL)
        return;
    if (pc->to_nanos)
        *st = (kiln_pprof_value_type){const_str(c, &c->key_cpu, "cpu"),
                                      const_str(c, &c->key_ns, "nanoseconds")};
    else
        *st = (kiln_pprof_value_type){dict_str(c, op->sample_type->type_strindex),
                                      dict_str(c, op->sample_type->unit_strindex)};
    if (op->period_type != NULL)
        p->period_type = (kiln_pprof_value_type){dict_str(c, op->period_type->type_strindex),
                                                 dict_str(c, op->period_type->unit_strindex)};
    p->sample_types = st;
    p->n_sample_types = 1;
    p->default_sample_type = st->type;
    p->period = op->period;
    p->time_nanos = op->time_unix_nano != 0 ? (int64_t)op->time_unix_nano : kiln_wall_ns();
    p->duration_nanos = op->duration_nano != 0 ? (int64_t)op->duration_nano : DEFAULT_DURATION_NS;
    p->samples = c->v.samples.p, p->n_samples = c->v.samples.n;
    p->locs = c->v.stack.p, p->n_locs = c->v.stack.n;
    p->values = c->v.values.p, p->n_values = c->v.values.n;
    p->labels = c->v.labels.p, p->n_labels = c->v.labels.n;
}

/* Points every series at the request's symbol tables, complete now: the
 * same arrays, so that later stages can tell they are shared. */
static void share_symbols(const conv *c, kiln_otlp_series *series, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kiln_pprof_t *p = &series[i].profile;
        p->strings = c->sym.strs.p, p->n_strings = c->sym.strs.n;
        p->mappings = c->sym.mappings.p, p->n_mappings = c->sym.mappings.n;
        p->functions = c->sym.functions.p, p->n_functions = c->sym.functions.n;
        p->locations = c->sym.locations.p, p->n_locations = c->sym.locations.n;
        p->lines = c->sym.lines.p, p->n_lines = c->sym.lines.n;
    }
}

/* One series: the samples refs[0..n) of pc's profile, which share a service. */
static void build_series(conv *c, const prof_ctx *pc, const svc_ref *refs, size_t n,
                         kiln_otlp_series *out)
{
    memset(&c->v, 0, sizeof(c->v));
    kiln_pprof_sample *o = push_n(c, &c->v.samples, sizeof(*o), n);
    int64_t *v = push_n(c, &c->v.values, sizeof(*v), n);
    for (size_t i = 0; o != NULL && v != NULL && i < n; i++) {
        const o_sample *s = pc->p->samples[refs[i].i];
        v[i] = sample_value(s, pc);
        o[i] = (kiln_pprof_sample){.value_off = (uint32_t)i, .n_values = 1};
        sample_stack(c, s, &o[i]);
        sample_labels(c, s, &o[i]);
    }
    series_profile(c, pc, &out->profile);
    kiln_label_t *l = cv_alloc(c, (pc->n_labels + 1) * sizeof(*l));
    if (l == NULL)
        return;
    memcpy(l, pc->labels, pc->n_labels * sizeof(*l));
    const char *svc = refs[0].svc != NULL ? refs[0].svc : pc->service;
    l[pc->n_labels] = (kiln_label_t){KILN_LABEL_SERVICE_NAME, svc};
    out->labels = l;
    out->n_labels = pc->n_labels + 1;
    out->profile_index = pc->index;
    out->profile_id = pc->id;
    out->raw_bytes = 0;
}

/* The sample's own service.name attribute (the first one), or NULL. */
static const char *sample_service(conv *c, const o_sample *s)
{
    for (size_t k = 0; k < s->n_attribute_indices; k++) {
        int32_t ai = s->attribute_indices[k];
        if (c->svc_attr[ai])
            return any_str(c, c->d->attribute_table[ai]->value, false);
    }
    return NULL;
}

static int cmp_svc(const void *a, const void *b)
{
    const svc_ref *x = a, *y = b;
    int r = strcmp(x->svc ? x->svc : "", y->svc ? y->svc : "");
    if (r != 0)
        return r;
    return x->i < y->i ? -1 : x->i > y->i;
}

static bool same_svc(const char *a, const char *b)
{
    return a == b || strcmp(a ? a : "", b ? b : "") == 0;
}

/* Appends the profile's series (one per service) to series. */
static void convert_samples(conv *c, const prof_ctx *pc, vec *series)
{
    const o_profile *p = pc->p;
    size_t n = p->n_samples;
    svc_ref *refs = cv_alloc(c, n * sizeof(*refs));
    bool split = false;
    if (refs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        refs[i] = (svc_ref){sample_service(c, p->samples[i]), i};
        /* A profile of one service (the common case) needs no sort. */
        split |= !same_svc(refs[i].svc, refs[0].svc);
    }
    if (split)
        qsort(refs, n, sizeof(*refs), cmp_svc);
    for (size_t g = 0, e; g < n; g = e) {
        for (e = g + 1; e < n && same_svc(refs[e].svc, refs[g].svc);)
            e++;
        kiln_otlp_series *s = push(c, series, sizeof(*s));
        if (c->oom)
            return;
        build_series(c, pc, refs + g, e - g, s);
        s->raw_bytes = g == 0 ? pc->raw_bytes : 0;
    }
}

/* __name__, and whether values convert to cpu nanoseconds (see otlp.h). */
static void profile_name(const conv *c, const o_profile *p, prof_ctx *pc)
{
    char *const *s = c->d->string_table;
    const char *type = s[p->sample_type->type_strindex], *unit = s[p->sample_type->unit_strindex];
    const char *ptype = "", *punit = "";
    if (p->period_type != NULL && p->period != 0) {
        ptype = s[p->period_type->type_strindex];
        punit = s[p->period_type->unit_strindex];
    }
    pc->to_nanos = strcmp(type, "samples") == 0 && strcmp(unit, "count") == 0 &&
                   strcmp(ptype, "cpu") == 0 && strcmp(punit, "nanoseconds") == 0;
    if (pc->to_nanos)
        pc->name = "process_cpu";
    else if (strcmp(type, "off_cpu") == 0 && strcmp(unit, "nanoseconds") == 0)
        pc->name = "off_cpu";
    else
        pc->name = ptype[0] != '\0' ? ptype : "process_cpu";
}

/* Adds attributes as labels, keys verbatim, skipping names already there. */
static void add_attrs(conv *c, o_kv *const *kv, size_t n, kiln_label_t *l, size_t *nl)
{
    for (size_t i = 0; i < n; i++) {
        const char *key = kv_key(c, kv[i]), *v = any_str(c, kv[i]->value, false);
        bool dup = key[0] == '\0' || v == NULL || strcmp(key, KILN_LABEL_SERVICE_NAME) == 0;
        for (size_t k = 0; k < *nl && !dup; k++)
            dup = strcmp(l[k].name, key) == 0;
        if (!dup)
            l[(*nl)++] = (kiln_label_t){key, v};
    }
}

/* The resource's service.name, else unknown_service[:<process.executable.name>]. */
static const char *resource_service(conv *c, const Opentelemetry__Proto__Resource__V1__Resource *r)
{
    const char *exe = NULL;
    for (size_t i = 0; r != NULL && i < r->n_attributes; i++) {
        const o_kv *kv = r->attributes[i];
        const char *key = kv_key(c, kv), *v;
        if (strcmp(key, "service.name") == 0 && (v = any_str(c, kv->value, false)) != NULL)
            return v;
        if (exe == NULL && strcmp(key, "process.executable.name") == 0)
            exe = any_str(c, kv->value, false);
    }
    if (exe == NULL)
        return "unknown_service";
    const char *s = kiln_arena_printf(c->a, "unknown_service:%s", exe);
    c->oom |= s == NULL;
    return s ? s : "unknown_service";
}

/* Bytes of a varint by the leading zeros of its value (7 bits a byte): a
 * table, not a division, as it runs for every value of every sample. */
static const uint8_t varint_bytes[64] = {10, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 7,
                                         7,  7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5,
                                         5,  5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3,
                                         3,  3, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1};

static size_t varint_size(uint64_t v)
{
    return varint_bytes[__builtin_clzll(v | 1)];
}

/* An int32 field's value as protobuf-c packs it (negatives take 10 bytes). */
static size_t int32_size(int32_t v)
{
    return v < 0 ? 10 : varint_size((uint32_t)v);
}

/* A packed repeated field of body bytes: tag (field numbers below 16 take
 * one byte), length, body; nothing when empty. */
static size_t packed_size(size_t count, size_t body)
{
    return count == 0 ? 0 : 1 + varint_size(body) + body;
}

/* protobuf_c_message_get_packed_size of a sample, its five fields by hand:
 * the generic walk of the descriptor for every sample was a thirtieth of
 * an export's CPU. Unknown fields are left to protobuf-c. */
static size_t sample_size(const o_sample *s)
{
    if (s->base.n_unknown_fields != 0)
        return protobuf_c_message_get_packed_size(&s->base);
    size_t n = 0, body = 0;
    if (s->stack_index != 0)
        n += 1 + int32_size(s->stack_index);
    for (size_t i = 0; i < s->n_attribute_indices; i++)
        body += int32_size(s->attribute_indices[i]);
    n += packed_size(s->n_attribute_indices, body);
    if (s->link_index != 0)
        n += 1 + int32_size(s->link_index);
    body = 0;
    for (size_t i = 0; i < s->n_values; i++)
        body += varint_size((uint64_t)s->values[i]);
    n += packed_size(s->n_values, body);
    return n + packed_size(s->n_timestamps_unix_nano, 8 * s->n_timestamps_unix_nano);
}

/* protobuf-c's own count for all but the samples (field 2, one-byte tag). */
size_t kiln_otlp__profile_size(const o_profile *p)
{
    o_profile rest = *p;
    rest.n_samples = 0;
    size_t n = protobuf_c_message_get_packed_size(&rest.base);
    for (size_t i = 0; i < p->n_samples; i++) {
        size_t len = sample_size(p->samples[i]);
        n += 1 + varint_size(len) + len;
    }
    return n;
}

static kiln_status profile_ctx(conv *c, const o_rprof *rp, const o_sprof *sp, const o_profile *p,
                               prof_ctx *pc, kiln_err *err)
{
    size_t nr = rp->resource ? rp->resource->n_attributes : 0;
    size_t ns = sp->scope ? sp->scope->n_attributes : 0;
    if (nr + ns > MAX_SERIES_ATTRS)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "otlp: %zu resource and scope attributes, more than %d", nr + ns,
                            MAX_SERIES_ATTRS);
    pc->p = p;
    profile_name(c, p, pc);
    pc->labels = cv_alloc(c, (3 + nr + ns) * sizeof(*pc->labels));
    if (pc->labels == NULL)
        return KILN_RESOURCE_EXHAUSTED;
    pc->labels[0] = (kiln_label_t){KILN_LABEL_DELTA, "false"};
    pc->labels[1] = (kiln_label_t){"__otel__", "true"};
    pc->labels[2] = (kiln_label_t){KILN_LABEL_NAME, pc->name};
    pc->n_labels = 3;
    if (nr != 0)
        add_attrs(c, rp->resource->attributes, nr, pc->labels, &pc->n_labels);
    if (ns != 0)
        add_attrs(c, sp->scope->attributes, ns, pc->labels, &pc->n_labels);
    pc->service = resource_service(c, rp->resource);
    pc->id = valid_id(&p->profile_id, 16) ? hex(c, &p->profile_id) : NULL;
    pc->raw_bytes = kiln_otlp__profile_size(p);
    return KILN_OK;
}

static void reject(kiln_otlp_result *r, const kiln_err *perr)
{
    if (r->n_rejected++ == 0)
        r->first_rejection = *perr;
}

/* Converts (or rejects) every Profile of one ScopeProfiles. */
static void convert_scope(conv *c, const o_rprof *rp, size_t i, size_t j, kiln_otlp_result *r,
                          vec *series)
{
    const o_sprof *sp = rp->scope_profiles[j];
    for (size_t k = 0; k < sp->n_profiles && !c->oom; k++, r->n_profiles++) {
        const o_profile *p = sp->profiles[k];
        char where[112];
        kiln_err perr = {KILN_OK, ""};
        prof_ctx pc = {.index = r->n_profiles};
        /* Where the profile is goes into a refusal's message only: checked
         * again with it when refused, not printed for every profile (a
         * sixtieth of an export's CPU). */
        kiln_status st = kiln_otlp__check_profile(c->d, rp, sp, p, "", &perr);
        if (st != KILN_OK) {
            snprintf(where, sizeof(where),
                     "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu]", i, j, k);
            st = kiln_otlp__check_profile(c->d, rp, sp, p, where, &perr);
        }
        if (st == KILN_OK)
            st = profile_ctx(c, rp, sp, p, &pc, &perr);
        if (st == KILN_OK)
            convert_samples(c, &pc, series);
        else if (st == KILN_INVALID_ARGUMENT)
            reject(r, &perr);
    }
}

static kiln_status conv_init(conv *c, kiln_arena_t *a, const o_dict *d)
{
    memset(c, 0, sizeof(*c));
    c->a = a;
    c->d = d;
    c->str = kiln_arena_calloc(a, d->n_string_table + 1, sizeof(slot));
    c->loc = kiln_arena_calloc(a, d->n_location_table + 1, sizeof(slot));
    c->fn = kiln_arena_calloc(a, d->n_function_table + 1, sizeof(slot));
    c->map = kiln_arena_calloc(a, d->n_mapping_table + 1, sizeof(slot));
    c->attr = kiln_arena_calloc(a, d->n_attribute_table + 1, sizeof(slot));
    c->link = kiln_arena_calloc(a, d->n_link_table + 1, sizeof(slot));
    c->svc_attr = kiln_arena_calloc(a, d->n_attribute_table + 1, sizeof(bool));
    c->label_attr = kiln_arena_calloc(a, d->n_attribute_table + 1, sizeof(bool));
    c->str_len = kiln_arena_calloc(a, d->n_string_table + 1, sizeof(uint32_t));
    if (!c->str || !c->loc || !c->fn || !c->map || !c->attr || !c->link || !c->svc_attr ||
        !c->label_attr || !c->str_len)
        return KILN_RESOURCE_EXHAUSTED;
    push_str(c, "", 0);
    /* Once per request, not per sample: samples name attributes by index. */
    for (size_t i = 0; i < d->n_attribute_table; i++) {
        const char *key = attr_key(c, (int32_t)i);
        c->svc_attr[i] = strcmp(key, "service.name") == 0;
        c->label_attr[i] = key[0] != '\0' && !c->svc_attr[i];
    }
    return KILN_OK;
}

kiln_status kiln_otlp_convert(kiln_arena_t *a, const kiln_otlp_request *req, kiln_otlp_result *out,
                              kiln_err *err)
{
    kiln_status st = kiln_otlp__check_dictionary(req->dictionary, err);
    if (st != KILN_OK)
        return st;
    conv c;
    if (conv_init(&c, a, req->dictionary) != KILN_OK)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "otlp: request memory limit reached");
    kiln_otlp_result r = {.first_rejection = {KILN_OK, ""}};
    vec series = {NULL, 0, 0};
    for (size_t i = 0; i < req->n_resource_profiles && !c.oom; i++) {
        const o_rprof *rp = req->resource_profiles[i];
        for (size_t j = 0; j < rp->n_scope_profiles && !c.oom; j++)
            convert_scope(&c, rp, i, j, &r, &series);
    }
    resolve_locations(&c);
    share_symbols(&c, series.p, series.n);
    if (c.oom)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "otlp: request memory limit reached");
    r.series = series.p;
    r.n_series = series.n;
    *out = r;
    return KILN_OK;
}
