/* SPDX-License-Identifier: Apache-2.0
 * ingest_formats: tables and small transforms from Pyroscope's legacy ingest
 * path, written from its documented behaviour. */
#include "ingest_formats.h"

#include <string.h>

#include "json_reader.h"

static const struct {
    const char *suffix;
    kiln_ingest_kind kind;
} kinds[] = {
    {"cpu", {"process_cpu", "samples", "count", true}},
    {"itimer", {"process_cpu", "samples", "count", true}},
    {"wall", {"wall", "samples", "count", true}},
    {"seconds", {"wall", "samples", "count", true}},
    {"nanoseconds", {"wall", "samples", "count", true}},
    {"microseconds", {"wall", "samples", "count", true}},
    {"milliseconds", {"wall", "samples", "count", true}},
    {"inuse_objects", {"memory", "inuse_objects", "count", false}},
    {"inuse_space", {"memory", "inuse_space", "bytes", false}},
    {"alloc_objects", {"memory", "alloc_objects", "count", false}},
    {"alloc_space", {"memory", "alloc_space", "bytes", false}},
    {"alloc_in_new_tlab_objects", {"memory", "alloc_in_new_tlab_objects", "count", false}},
    {"alloc_in_new_tlab_bytes", {"memory", "alloc_in_new_tlab_bytes", "bytes", false}},
    {"alloc_outside_tlab_objects", {"memory", "alloc_outside_tlab_objects", "count", false}},
    {"alloc_outside_tlab_bytes", {"memory", "alloc_outside_tlab_bytes", "bytes", false}},
    {"live", {"memory", "live", "count", false}},
    {"bytes", {"memory", "samples", "bytes", false}},
    {"goroutines", {"goroutine", "goroutines", "count", false}},
    {"mutex_count", {"mutex", "contentions", "count", false}},
    {"mutex_duration", {"mutex", "delay", "nanoseconds", false}},
    {"block_count", {"block", "contentions", "count", false}},
    {"block_duration", {"block", "delay", "nanoseconds", false}},
    {"lock_count", {"block", "contentions", "count", false}},
    {"lock_duration", {"block", "delay", "nanoseconds", false}},
    {"exceptions", {"exceptions", "samples", "count", false}},
};

bool kiln_ingest_kind_of(const char *suffix, kiln_ingest_kind *out)
{
    if (suffix == NULL)
        suffix = "cpu";
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].suffix, suffix) == 0) {
            *out = kinds[i].kind;
            return true;
        }
    }
    return false;
}

/* A string or null (as ""); anything else is an error. */
static bool str_or_null(kiln_json *j, kiln_arena_t *a, kiln_str_t *out)
{
    *out = (kiln_str_t){"", 0};
    return kiln_json_null(j) || kiln_json_str(j, a, out);
}

static bool bool_or_null(kiln_json *j, bool *out)
{
    *out = false;
    return kiln_json_null(j) || kiln_json_bool(j, out);
}

/* One config entry's object (or null). */
static bool stconfig_entry(kiln_json *j, kiln_arena_t *a, kiln_sample_type_config *e)
{
    if (kiln_json_null(j)) {
        e->is_null = true;
        return true;
    }
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t k;
    while (kiln_json_obj_next(j, &k)) {
        bool ok = kiln_json_key_is(k, "units")          ? str_or_null(j, a, &e->units)
                  : kiln_json_key_is(k, "display-name") ? str_or_null(j, a, &e->display_name)
                  : kiln_json_key_is(k, "aggregation")  ? str_or_null(j, a, &e->aggregation)
                  : kiln_json_key_is(k, "cumulative")   ? bool_or_null(j, &e->cumulative)
                  : kiln_json_key_is(k, "sampled")      ? bool_or_null(j, &e->sampled)
                                                        : kiln_json_skip(j);
        if (!ok)
            return false;
    }
    return !kiln_json_failed(j);
}

kiln_status kiln_stconfig_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                kiln_stconfig *out, kiln_err *err)
{
    kiln_json j;
    kiln_json_init(&j, data, len, "sample_type_config", err);
    kiln_stconfig c = {false, NULL, 0};
    if (kiln_json_null(&j)) {
        kiln_json_end(&j);
    } else if (kiln_json_obj_begin(&j)) {
        c.present = true;
        c.entries = kiln_arena_calloc(a, KILN_STCONFIG_MAX, sizeof(*c.entries));
        if (c.entries == NULL)
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "sample_type_config: out of memory");
        kiln_str_t key;
        while (kiln_json_obj_next(&j, &key)) {
            if (c.n == KILN_STCONFIG_MAX) {
                kiln_json_fail(&j, "more than %d entries", KILN_STCONFIG_MAX);
                break;
            }
            kiln_sample_type_config *e = &c.entries[c.n++];
            *e = (kiln_sample_type_config){key, false, {"", 0}, {"", 0}, {"", 0}, false, false};
            if (!stconfig_entry(&j, a, e))
                break;
        }
        kiln_json_end(&j);
    }
    if (kiln_json_failed(&j))
        return KILN_INVALID_ARGUMENT;
    *out = c;
    return KILN_OK;
}

/* The last entry for type (Go's map keeps the last duplicate), or NULL. */
static const kiln_sample_type_config *config_of(const kiln_stconfig *cfg, kiln_str_t type)
{
    for (size_t i = cfg->n; i > 0; i--) {
        kiln_str_t k = cfg->entries[i - 1].type;
        if (k.len == type.len && memcmp(k.ptr, type.ptr, k.len) == 0)
            return &cfg->entries[i - 1];
    }
    return NULL;
}

/* Pyroscope's default display names (tree.DefaultSampleTypeMapping). */
static kiln_str_t default_display(kiln_str_t t)
{
    if (kiln_str_eq(t, "samples"))
        return KILN_STR("cpu");
    if (kiln_str_eq(t, "goroutine"))
        return KILN_STR("goroutines");
    if (kiln_str_eq(t, "contentions"))
        return KILN_STR("mutex_count");
    if (kiln_str_eq(t, "delay"))
        return KILN_STR("mutex_duration");
    return t;
}

static kiln_str_t display_name(kiln_str_t t, const kiln_stconfig *cfg)
{
    if (cfg == NULL || !cfg->present)
        return default_display(t);
    const kiln_sample_type_config *e = config_of(cfg, t);
    return e != NULL && !e->is_null && e->display_name.len != 0 ? e->display_name : t;
}

static bool has(kiln_str_t s, const char *sub)
{
    size_t n = strlen(sub);
    return s.len >= n && memmem(s.ptr, s.len, sub, n) != NULL;
}

/* The metric a (display) sample type name implies, or NULL. */
static const char *metric_of(kiln_str_t st)
{
    if (has(st, "cpu"))
        return "process_cpu";
    if (has(st, "alloc_") || has(st, "inuse_") || kiln_str_eq(st, "space") ||
        kiln_str_eq(st, "objects"))
        return "memory";
    if (has(st, "mutex_"))
        return "mutex";
    if (has(st, "block_"))
        return "block";
    if (has(st, "goroutines"))
        return "goroutines";
    return NULL;
}

const char *kiln_ingest_pprof_metric(kiln_arena_t *a, const kiln_pprof_t *p,
                                     const kiln_stconfig *cfg)
{
    for (size_t i = 0; i < p->n_sample_types; i++) {
        if (kiln_str_eq(kiln_pprof_str(p, p->sample_types[i].type), "wall"))
            return "wall";
    }
    kiln_str_t st = {"", 0};
    for (size_t i = 0; i < p->n_sample_types; i++) {
        st = display_name(kiln_pprof_str(p, p->sample_types[i].type), cfg);
        const char *m = metric_of(st);
        if (m != NULL)
            return m;
    }
    const char *s = kiln_arena_strndup(a, st.ptr, st.len);
    return s != NULL ? s : "";
}

bool kiln_ingest_is_dotnet(const char *spy, const kiln_stconfig *cfg)
{
    if (strcmp(spy, "dotnetspy") == 0)
        return true;
    if (strcmp(spy, "unknown") != 0 || cfg == NULL || !cfg->present)
        return false;
    const kiln_sample_type_config *e = config_of(cfg, KILN_STR("inuse-space"));
    return e != NULL && !e->is_null;
}

bool kiln_ingest_fix_dotnet(kiln_arena_t *a, kiln_pprof_t *p)
{
    for (size_t i = 0; i < p->n_sample_types; i++) {
        int64_t t = p->sample_types[i].type;
        kiln_str_t s = kiln_pprof_str(p, t);
        if (s.len == 0 || memchr(s.ptr, '-', s.len) == NULL)
            continue;
        char *c = kiln_arena_strndup(a, s.ptr, s.len);
        if (c == NULL)
            return false;
        for (size_t k = 0; k < s.len; k++)
            c[k] = c[k] == '-' ? '_' : c[k];
        p->strings[t] = (kiln_str_t){c, s.len};
    }
    bool all_zero = true;
    for (size_t i = 0; all_zero && i < p->n_functions; i++)
        all_zero = p->functions[i].id == 0;
    if (all_zero && p->n_functions == p->n_locations) {
        for (size_t i = 0; i < p->n_functions; i++)
            p->functions[i].id = p->locations[i].id;
    }
    return true;
}

/* Function id -> index (the last function with an id wins, as upstream's
 * map does); open addressing in arena memory. */
typedef struct idmap {
    uint64_t *key;
    uint32_t *val; /* index + 1; 0 = empty */
    size_t mask;
} idmap;

static bool idmap_build(kiln_arena_t *a, const kiln_pprof_t *p, idmap *m)
{
    size_t cap = 16;
    while (cap < 2 * p->n_functions + 2)
        cap *= 2;
    m->key = kiln_arena_alloc(a, cap * sizeof(*m->key));
    m->val = kiln_arena_calloc(a, cap, sizeof(*m->val));
    m->mask = cap - 1;
    if (m->key == NULL || m->val == NULL)
        return false;
    for (size_t i = 0; i < p->n_functions; i++) {
        uint64_t id = p->functions[i].id;
        size_t s = (size_t)(id * 0x9e3779b97f4a7c15ull) & m->mask;
        while (m->val[s] != 0 && m->key[s] != id)
            s = (s + 1) & m->mask;
        m->key[s] = id;
        m->val[s] = (uint32_t)i + 1;
    }
    return true;
}

static int64_t idmap_get(const idmap *m, uint64_t id)
{
    for (size_t s = (size_t)(id * 0x9e3779b97f4a7c15ull) & m->mask; m->val[s] != 0;
         s = (s + 1) & m->mask) {
        if (m->key[s] == id)
            return (int64_t)m->val[s] - 1;
    }
    return -1;
}

static bool is_scripting(const char *spy)
{
    return strcmp(spy, "pyspy") == 0 || strcmp(spy, "rbspy") == 0 || strcmp(spy, "scripting") == 0;
}

/* The new function for old function f: "<filename> <name>", appended to
 * fns[] and strs[] (both sized for it). Returns its id, 0 past the cap. */
static uint64_t renamed(kiln_arena_t *a, const kiln_pprof_t *p, const kiln_pprof_function *f,
                        kiln_pprof_function *fns, size_t *n_fns, kiln_str_t *strs, size_t *n_strs,
                        uint64_t *max_id)
{
    kiln_str_t file = kiln_pprof_str(p, f->filename), name = kiln_pprof_str(p, f->name);
    char *s = kiln_arena_alloc(a, file.len + name.len + 2);
    if (s == NULL)
        return 0;
    memcpy(s, file.ptr, file.len);
    s[file.len] = ' ';
    memcpy(s + file.len + 1, name.ptr, name.len);
    strs[*n_strs] = (kiln_str_t){s, file.len + name.len + 1};
    fns[*n_fns] = (kiln_pprof_function){++*max_id, (int64_t)*n_strs, f->system_name, f->filename,
                                        f->start_line};
    (*n_strs)++;
    (*n_fns)++;
    return *max_id;
}

bool kiln_ingest_fix_scripting(kiln_arena_t *a, kiln_pprof_t *p, const char *spy)
{
    if (!is_scripting(spy) || p->n_functions == 0)
        return true;
    bool pyspy = strcmp(spy, "pyspy") == 0;
    idmap m;
    size_t nf = p->n_functions, ns = p->n_strings;
    kiln_pprof_function *fns = kiln_arena_alloc(a, 2 * nf * sizeof(*fns));
    kiln_str_t *strs = kiln_arena_alloc(a, (ns + nf) * sizeof(*strs));
    uint64_t *memo = kiln_arena_calloc(a, nf, sizeof(*memo)), max_id = 0;
    if (fns == NULL || strs == NULL || memo == NULL || !idmap_build(a, p, &m))
        return false;
    memcpy(fns, p->functions, nf * sizeof(*fns));
    if (ns != 0)
        memcpy(strs, p->strings, ns * sizeof(*strs));
    for (size_t i = 0; i < nf; i++)
        max_id = p->functions[i].id > max_id ? p->functions[i].id : max_id;
    for (size_t i = 0; i < p->n_lines; i++) {
        int64_t f = p->lines[i].function == 0 ? -1 : idmap_get(&m, p->lines[i].function);
        if (f < 0)
            continue;
        kiln_str_t file = kiln_pprof_str(p, p->functions[f].filename);
        if (pyspy && file.len > 0 && file.ptr[0] == '/')
            continue; /* filepath.IsAbs */
        if (memo[f] == 0)
            memo[f] = renamed(a, p, &p->functions[f], fns, &nf, strs, &ns, &max_id);
        if (memo[f] == 0)
            return false;
        p->lines[i].function = memo[f];
    }
    p->functions = fns;
    p->n_functions = nf;
    p->strings = strs;
    p->n_strings = ns;
    return true;
}
