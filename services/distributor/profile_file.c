/* SPDX-License-Identifier: Apache-2.0
 * profile_file: format detection and decoding of whole profile files. */
#include "profile_file.h"

#include <ctype.h>
#include <string.h>

#include "folded.h"
#include "gzip.h"
#include "otlp.h"
#include "pprof_build.h"
#include "speedscope.h"

typedef enum kind { KIND_UNKNOWN, KIND_BINARY, KIND_JSON, KIND_FOLDED } kind;

/* Most profiles one file may hold (a speedscope file's or an OTLP request's). */
#define MAX_PROFILES 1000

static bool ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && strcasecmp(s + n - m, sfx) == 0;
}

static kind by_name(const char *name)
{
    if (name == NULL)
        return KIND_UNKNOWN;
    static const struct {
        const char *sfx;
        kind k;
    } ext[] = {
        {".pprof", KIND_BINARY},    {".pb", KIND_BINARY},        {".pb.gz", KIND_BINARY},
        {".pprof.gz", KIND_BINARY}, {".json", KIND_JSON},        {".json.gz", KIND_JSON},
        {".txt", KIND_FOLDED},      {".folded", KIND_FOLDED},    {".collapsed", KIND_FOLDED},
        {".txt.gz", KIND_FOLDED},   {".folded.gz", KIND_FOLDED}, {".collapsed.gz", KIND_FOLDED}};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (ends_with(name, ext[i].sfx))
            return ext[i].k;
    }
    return KIND_UNKNOWN;
}

/* Upstream's content sniffing, for names that say nothing. */
static kind by_content(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && isspace(p[i]))
        i++;
    if (i < len && p[i] == '{')
        return KIND_JSON;
    for (i = 0; i < len && i < 100; i++) {
        if (p[i] < 0x20 && !isspace(p[i]))
            return KIND_BINARY;
    }
    return KIND_FOLDED;
}

static kiln_status normalise(kiln_arena_t *a, kiln_pprof_t *p, size_t depth, kiln_err *err)
{
    return kiln_pprof_validate_normalize(a, p, depth, err);
}

static kiln_status one(kiln_arena_t *a, kiln_pprof_t *p, kiln_pprof_t **out, size_t *n)
{
    *out = kiln_arena_alloc(a, sizeof(**out));
    if (*out == NULL)
        return KILN_RESOURCE_EXHAUSTED;
    **out = *p;
    *n = 1;
    return KILN_OK;
}

/* OTLP: every converted series is one profile. */
static kiln_status from_otlp(const kiln_profile_file_limits *lim, const kiln_otlp_request *req,
                             kiln_arena_t *a, kiln_pprof_t **out, size_t *n, kiln_err *err)
{
    kiln_otlp_result r;
    kiln_status st = kiln_otlp_convert(a, req, &r, err);
    if (st != KILN_OK)
        return st;
    if (r.n_series == 0)
        return r.n_rejected ? kiln_err_set(err, KILN_INVALID_ARGUMENT, "%s", r.first_rejection.msg)
                            : kiln_err_set(err, KILN_INVALID_ARGUMENT, "no profiles in the file");
    if (r.n_series > MAX_PROFILES)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "more than %d profiles in one file",
                            MAX_PROFILES);
    kiln_pprof_t *v = kiln_arena_calloc(a, r.n_series, sizeof(*v));
    if (v == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "profile too large");
    /* The series share the request's symbol tables (otlp.h): those are
     * validated and normalised once, then each series' samples. */
    kiln_pprof_symbols *sym = NULL;
    st = kiln_pprof_symbols_prepare(a, &r.series[0].profile, &sym, err);
    for (size_t i = 0; i < r.n_series && st == KILN_OK; i++) {
        v[i] = r.series[i].profile;
        st = kiln_pprof_samples_prepare(a, &v[i], sym, lim->max_stack_depth, err);
    }
    if (st != KILN_OK)
        return st;
    *out = v;
    *n = r.n_series;
    return KILN_OK;
}

static kiln_status binary(const kiln_profile_file_limits *lim, const uint8_t *d, size_t len,
                          kiln_arena_t *a, kiln_pprof_t **out, size_t *n, kiln_err *err)
{
    kiln_pprof_t p;
    kiln_status st = kiln_pprof_decode(a, d, len, &p, err);
    if (st == KILN_OK)
        st = normalise(a, &p, lim->max_stack_depth, err);
    if (st == KILN_OK)
        return one(a, &p, out, n);
    kiln_err first = *err;
    kiln_otlp_request *req;
    if (kiln_otlp_unpack(a, d, len, &req, err) == KILN_OK &&
        from_otlp(lim, req, a, out, n, err) == KILN_OK)
        return KILN_OK;
    *err = first; /* not OTLP either: the pprof decoder's reason is the clearer */
    return first.code;
}

/* Time units become cpu/nanoseconds, as /ingest stores speedscope. */
static void speedscope_type(kiln_speedscope_profile *p)
{
    if (p->default_rate == 0) {
        kiln_pprof_build_sample_type(p->b, 0, strcmp(p->unit, "bytes") == 0 ? "space" : "samples",
                                     strcmp(p->unit, "bytes") == 0 ? "bytes" : "count");
        return;
    }
    int64_t period = (int64_t)(1000000000ull / p->default_rate);
    kiln_pprof_build_sample_type(p->b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(p->b, "cpu", "nanoseconds", period);
    kiln_pprof_build_scale(p->b, 0, period);
}

static kiln_status json(const kiln_profile_file_limits *lim, const uint8_t *d, size_t len,
                        kiln_arena_t *a, kiln_pprof_t **out, size_t *n, kiln_err *err)
{
    kiln_speedscope_profile *sp;
    size_t ns;
    kiln_status st = kiln_speedscope_parse(a, d, len, &sp, &ns, err);
    if (st != KILN_OK) {
        kiln_err first = *err;
        kiln_otlp_request *req;
        if (kiln_otlp_decode_json(a, (const char *)d, len, &req, err) == KILN_OK &&
            from_otlp(lim, req, a, out, n, err) == KILN_OK)
            return KILN_OK;
        *err = first;
        return first.code;
    }
    if (ns == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no profiles in the file");
    kiln_pprof_t *v = kiln_arena_calloc(a, ns, sizeof(*v));
    if (v == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "profile too large");
    for (size_t i = 0; i < ns && st == KILN_OK; i++) {
        speedscope_type(&sp[i]);
        st = kiln_pprof_build_finish(sp[i].b, &v[i], err);
        if (st == KILN_OK)
            st = normalise(a, &v[i], lim->max_stack_depth, err);
    }
    if (st == KILN_OK) {
        *out = v;
        *n = ns;
    }
    return st;
}

static kiln_status folded(const kiln_profile_file_limits *lim, const uint8_t *d, size_t len,
                          kiln_arena_t *a, kiln_pprof_t **out, size_t *n, kiln_err *err)
{
    kiln_pprof_build_t *b;
    kiln_status st = kiln_folded_parse(a, d, len, &b, err);
    if (st != KILN_OK)
        return st;
    size_t types = kiln_pprof_build_n_types(b);
    for (size_t i = 0; i < types; i++) {
        const char *t = types == 1 ? "samples" : kiln_arena_printf(a, "samples_%zu", i + 1);
        kiln_pprof_build_sample_type(b, i, t ? t : "samples", "count");
    }
    kiln_pprof_t p;
    st = kiln_pprof_build_finish(b, &p, err);
    if (st == KILN_OK)
        st = normalise(a, &p, lim->max_stack_depth, err);
    if (st == KILN_OK && p.n_samples == 0)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "no stacks with a count in the file");
    return st == KILN_OK ? one(a, &p, out, n) : st;
}

kiln_status kiln_profile_file_decode(const kiln_profile_file_limits *lim, const char *name,
                                     const uint8_t *data, size_t len, kiln_arena_t *a,
                                     kiln_pprof_t **out, size_t *n_out, kiln_err *err)
{
    const uint8_t *raw;
    size_t raw_len;
    kiln_status st =
        kiln_gunzip_maybe_budget(a, data, len, lim->max_bytes, lim->inflight, &raw, &raw_len, err);
    if (st != KILN_OK)
        return st;
    if (raw_len > lim->max_bytes)
        return kiln_err_set(err, KILN_OUT_OF_RANGE, "profile of %zu bytes is larger than %zu",
                            raw_len, lim->max_bytes);
    if (raw_len == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "the profile is empty");
    kind k = by_name(name);
    if (k == KIND_UNKNOWN)
        k = by_content(raw, raw_len);
    kiln_pprof_t *v = NULL;
    size_t n = 0;
    if (k == KIND_BINARY)
        st = binary(lim, raw, raw_len, a, &v, &n, err);
    else if (k == KIND_JSON)
        st = json(lim, raw, raw_len, a, &v, &n, err);
    else
        st = folded(lim, raw, raw_len, a, &v, &n, err);
    if (st == KILN_RESOURCE_EXHAUSTED) /* the arena's cap: too large, not busy */
        st = kiln_err_set(err, KILN_OUT_OF_RANGE, "profile too large to decode");
    if (st == KILN_OK) {
        *out = v;
        *n_out = n;
    }
    return st;
}
