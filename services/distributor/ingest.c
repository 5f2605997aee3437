/* SPDX-License-Identifier: Apache-2.0
 * ingest: Pyroscope's legacy HTTP API, POST /ingest and /pyroscope/ingest
 * (pkg/ingester/pyroscope). The query names the app and its tags, the time
 * range and the sampling; the body is pprof (raw or in a multipart form from
 * the SDKs), JFR (raw, gzip, or the Java agent's form with the labels of
 * its contexts), folded stacks (the default), lines or speedscope. Every body
 * becomes kiln_ingest_profile values for kiln_distributor_ingest, the
 * pipeline of every ingest path. Responses: 200 empty; 400 for the query
 * (and, for the text formats, for what the pipeline rejects); 413 too large;
 * 422 a body that cannot be read or a format not supported; 429 rate
 * limited. Errors are plain text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "appname.h"
#include "clock.h"
#include "time_param.h"
#include "distributor.h"
#include "folded.h"
#include "gzip.h"
#include "ingest_formats.h"
#include "jfr.h"
#include "labels.h"
#include "log.h"
#include "multipart.h"
#include "pprof_build.h"
#include "speedscope.h"

#define DEFAULT_SAMPLE_RATE 100
/* Upstream replaces pprof times in 1970 (old SDKs sent microseconds). */
#define NS_1971 31536000000000000LL

/* One /ingest request. */
typedef struct ingest {
    kiln_distributor_t *d;
    const kiln_http_req *http;
    kiln_arena_t *a;
    char tenant[KILN_TENANT_MAX + 8];
    kiln_appname_t name;
    int64_t from, until;
    uint32_t sample_rate;
    const char *spy;
    const char *format;       /* "" when absent */
    const char *content_type; /* "" when absent */
    const char *kind;         /* the body format, for logs */
    const uint8_t *body;      /* the body, gunzipped when Content-Encoding said gzip */
    size_t body_len;
    kiln_err err;
    int status; /* HTTP status of the failure */
} ingest;

/* Records the HTTP status of a failure (its message is in r->err); returns st. */
static kiln_status reject(ingest *r, int status, kiln_status st)
{
    r->status = status;
    return st;
}

/* A body that could not be read: 413 when too large (a decoder's arena cap
 * included: no retry helps, so never 429), 422 otherwise. */
static kiln_status body_failed(ingest *r, kiln_status st)
{
    if (st == KILN_RESOURCE_EXHAUSTED || st == KILN_OUT_OF_RANGE) {
        r->err.code = KILN_OUT_OF_RANGE;
        return reject(r, 413, KILN_OUT_OF_RANGE);
    }
    return reject(r, 422, st);
}

/* A body decompression (kiln_distributor_body, _decode_pprof) failed: its
 * RESOURCE_EXHAUSTED is the in-flight budget, busy now (429, retryable). */
static kiln_status decode_failed(ingest *r, kiln_status st)
{
    return st == KILN_RESOURCE_EXHAUSTED ? reject(r, 429, st) : body_failed(r, st);
}

/* What the pipeline rejected: 429 for rate limits, 413 too large, 400 (or
 * 422 for pprof, as upstream answers) for invalid profiles. */
static kiln_status pipeline_failed(ingest *r, kiln_status st, bool pprof)
{
    if (st == KILN_INVALID_ARGUMENT)
        return reject(r, pprof ? 422 : 400, st);
    return reject(r, kiln_distributor_http_status(st), st);
}

static const char *query(const ingest *r, const char *key)
{
    const char *v = kiln_http_query(r->http, key);
    return v != NULL ? v : "";
}

/* Whether query parameter key holds a NUL byte (%00), which the C string
 * view of it would silently cut off. */
static bool query_has_nul(const ingest *r, const char *key)
{
    const char *v = NULL;
    size_t n = 0;
    if (!kiln_http_query_n(r->http, key, &v, &n) || v == NULL)
        return false;
    return strlen(v) != n;
}

/* sampleRate: absent gives 100; otherwise a positive integer (upstream
 * falls back to 100 on garbage and stores a rate of 0 as is, which turns
 * every value into 0: both are refused here so a client learns of it). */
static kiln_status sample_rate(ingest *r, const char *s)
{
    r->sample_rate = DEFAULT_SAMPLE_RATE;
    if (*s == '\0')
        return KILN_OK;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || end == s || v <= 0 || v > UINT32_MAX || errno == ERANGE || s[0] == ' ' ||
        s[0] == '\t')
        return reject(r, 400,
                      kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                   "invalid sampleRate \"%.40s\": must be a positive "
                                   "integer (samples per second)",
                                   s));
    r->sample_rate = (uint32_t)v;
    return KILN_OK;
}

/* Tenant and query parameters. */
static kiln_status parse_request(ingest *r)
{
    const char *org = kiln_http_header(r->http, "X-Scope-OrgID");
    kiln_status st =
        kiln_tenant_parse(org, org ? strlen(org) : 0, false, r->tenant, sizeof(r->tenant), &r->err);
    if (st != KILN_OK)
        return reject(r, kiln_status_http(st), st);
    const char *name = query(r, "name");
    if (query_has_nul(r, "name"))
        return reject(
            r, 400,
            kiln_err_set(&r->err, KILN_INVALID_ARGUMENT, "name: a NUL byte (%%00) is not allowed"));
    st = kiln_appname_parse(r->a, name, strlen(name), &r->name, &r->err);
    if (st != KILN_OK)
        return reject(r, 400, st);
    int64_t now = kiln_wall_ns();
    const char *from = query(r, "from"), *until = query(r, "until");
    r->from = *from ? kiln_time_param_parse(from, strlen(from), now) : now;
    r->until = *until ? kiln_time_param_parse(until, strlen(until), now) : now;
    st = sample_rate(r, query(r, "sampleRate"));
    if (st != KILN_OK)
        return st;
    r->spy = *query(r, "spyName") ? query(r, "spyName") : "unknown";
    r->format = query(r, "format");
    const char *ct = kiln_http_header(r->http, "Content-Type");
    r->content_type = ct ? ct : "";
    return KILN_OK;
}

/* Appends label name=value to l (capacity checked by the caller). */
static void put(kiln_label_t *l, size_t *n, const char *name, const char *value)
{
    l[(*n)++] = (kiln_label_t){name, value};
}

/* The labels every format shares: __name__, __delta__=false, pyroscope_spy
 * and the tags, with room for extra more. */
static kiln_label_t *base_labels(ingest *r, const char *metric, const kiln_appname_t *n,
                                 size_t extra, size_t *count)
{
    kiln_label_t *l = kiln_arena_alloc(r->a, (n->n_tags + 3 + extra) * sizeof(*l));
    if (l == NULL)
        return NULL;
    *count = 0;
    put(l, count, KILN_LABEL_NAME, metric);
    put(l, count, KILN_LABEL_DELTA, "false");
    put(l, count, "pyroscope_spy", r->spy);
    for (size_t i = 0; i < n->n_tags; i++)
        l[(*count)++] = n->tags[i];
    return l;
}

/* Runs the pipeline on profiles in[0..n). */
static kiln_status push(ingest *r, kiln_ingest_profile *in, size_t n, bool pprof)
{
    if (n == 0)
        return KILN_OK;
    kiln_status st = kiln_distributor_ingest(r->d, r->tenant, in, n, r->a, &r->err);
    return st == KILN_OK ? KILN_OK : pipeline_failed(r, st, pprof);
}

/* ---- pprof (raw body or the form's profile part) ---- */

static kiln_status ingest_pprof(ingest *r, const uint8_t *data, size_t len,
                                const kiln_stconfig *cfg)
{
    if (len == 0)
        return KILN_OK; /* upstream: an empty profile is accepted and dropped */
    kiln_ingest_profile in = {NULL, 0, {0}, NULL, len};
    kiln_status st = kiln_distributor_decode_pprof(r->d, data, len, r->a, &in.profile, &r->err);
    if (st != KILN_OK)
        return decode_failed(r, st);
    kiln_pprof_t *p = &in.profile;
    if (p->time_nanos >= 0 && p->time_nanos < NS_1971)
        p->time_nanos = r->from;
    if (!kiln_ingest_fix_scripting(r->a, p, r->spy) ||
        (kiln_ingest_is_dotnet(r->spy, cfg) && !kiln_ingest_fix_dotnet(r->a, p)))
        return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "profile too large"));
    const char *metric = kiln_ingest_pprof_metric(r->a, p, cfg);
    in.labels = base_labels(r, metric, &r->name, 1, &in.n_labels);
    if (in.labels == NULL)
        return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory"));
    if (kiln_appname_tag(&r->name, KILN_LABEL_SERVICE_NAME) == NULL)
        put(in.labels, &in.n_labels, KILN_LABEL_SERVICE_NAME, r->name.name);
    return push(r, &in, 1, true);
}

/* The parts of a multipart/form-data body (in the request's arena). */
static kiln_status form_parts(ingest *r, kiln_multipart_part **parts, size_t *n)
{
    kiln_str_t boundary;
    kiln_status st = kiln_multipart_boundary(r->a, r->content_type, &boundary, &r->err);
    if (st == KILN_OK)
        st = kiln_multipart_parse(r->a, r->body, r->body_len, boundary, parts, n, &r->err);
    return st;
}

static kiln_status ingest_form(ingest *r)
{
    kiln_multipart_part *parts;
    size_t n;
    kiln_status st = form_parts(r, &parts, &n);
    if (st != KILN_OK)
        return body_failed(r, st);
    if (kiln_multipart_find(parts, n, "prev_profile") != NULL)
        return body_failed(r, kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                           "unsupported client version: a prev_profile part was "
                                           "sent. Please update github.com/grafana/pyroscope-go "
                                           "to the latest version"));
    kiln_stconfig cfg = {false, NULL, 0};
    const kiln_multipart_part *c = kiln_multipart_find(parts, n, "sample_type_config");
    if (c != NULL && (st = kiln_stconfig_parse(r->a, c->data, c->len, &cfg, &r->err)) != KILN_OK)
        return body_failed(r, st);
    const kiln_multipart_part *p = kiln_multipart_find(parts, n, "profile");
    return p != NULL ? ingest_pprof(r, p->data, p->len, &cfg) : KILN_OK;
}

/* ---- text formats (folded, lines) and speedscope ---- */

/* Sets the sample type (and for cpu/wall the period, scaling sample counts
 * to nanoseconds by 1e9/rate) of a one-type builder, as upstream's Put. */
static void apply_kind(kiln_pprof_build_t *b, const kiln_ingest_kind *k, uint64_t rate)
{
    if (!k->timed || rate == 0) {
        kiln_pprof_build_sample_type(b, 0, k->type, k->unit);
        return;
    }
    int64_t period = (int64_t)(1000000000ull / rate);
    kiln_pprof_build_sample_type(b, 0, strcmp(k->metric, "wall") == 0 ? "wall" : "cpu",
                                 "nanoseconds");
    if (period != 0)
        kiln_pprof_build_period(b, "cpu", "nanoseconds", period);
    kiln_pprof_build_scale(b, 0, period);
}

/* Finishes builder b of app name n into *in: kind from the name's suffix
 * (400 when unknown), labels with service_name (or app_name) = the name
 * without its suffix. */
static kiln_status text_profile(ingest *r, kiln_pprof_build_t *b, const kiln_appname_t *n,
                                uint64_t rate, size_t raw_bytes, kiln_ingest_profile *in)
{
    const char *app, *suffix = kiln_appname_split(r->a, n->name, &app);
    kiln_ingest_kind k;
    if (!kiln_ingest_kind_of(suffix, &k))
        return reject(r, 400,
                      kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                   "unknown profile type: %.60s (the app name's suffix "
                                   "after the last '.')",
                                   suffix));
    apply_kind(b, &k, rate);
    /* from and until may be anything time_param parses (now-9999999999h...):
     * a duration past int64 is unknown, 0. */
    int64_t duration = 0;
    if (r->until > r->from && __builtin_sub_overflow(r->until, r->from, &duration))
        duration = 0;
    kiln_pprof_build_time(b, r->from, duration);
    *in = (kiln_ingest_profile){NULL, 0, {0}, NULL, raw_bytes};
    kiln_status st = kiln_pprof_build_finish(b, &in->profile, &r->err);
    if (st == KILN_OK && (in->labels = base_labels(r, k.metric, n, 1, &in->n_labels)) == NULL)
        st = kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st != KILN_OK)
        return body_failed(r, st);
    if (kiln_appname_tag(n, KILN_LABEL_SERVICE_NAME) == NULL)
        put(in->labels, &in->n_labels, KILN_LABEL_SERVICE_NAME, app);
    else if (kiln_appname_tag(n, "app_name") == NULL)
        put(in->labels, &in->n_labels, "app_name", app);
    return KILN_OK;
}

/* Upstream's Put ignores text-format uploads tagged with a profile_id. */
static bool has_profile_id(const kiln_appname_t *n)
{
    return kiln_appname_tag(n, "profile_id") != NULL;
}

/* A text body under -validation.max-profile-size-bytes (decompressed when
 * it is gzip, whatever the headers say). */
static kiln_status text_body(ingest *r, const uint8_t **body, size_t *len)
{
    kiln_status st = kiln_distributor_body(r->d, r->body, r->body_len, 0, r->a, body, len, &r->err);
    return st == KILN_OK ? KILN_OK : decode_failed(r, st);
}

static kiln_status ingest_text(ingest *r, bool lines)
{
    kiln_pprof_build_t *b;
    const uint8_t *body;
    size_t len;
    kiln_status st = text_body(r, &body, &len);
    if (st != KILN_OK)
        return st;
    st = lines ? kiln_lines_parse(r->a, body, len, &b, &r->err)
               : kiln_folded_parse(r->a, body, len, &b, &r->err);
    if (st != KILN_OK)
        return body_failed(r, st);
    if (kiln_pprof_build_n_types(b) != 1)
        return body_failed(r, kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                           "folded: lines carry %zu values; /ingest takes one "
                                           "value per stack",
                                           kiln_pprof_build_n_types(b)));
    if (has_profile_id(&r->name))
        return KILN_OK;
    kiln_ingest_profile in;
    st = text_profile(r, b, &r->name, r->sample_rate, len, &in);
    return st == KILN_OK ? push(r, &in, 1, false) : st;
}

/* The app name a speedscope profile is stored under: with several profiles
 * upstream renames each to "<name>.<unit>" and tags it with profile_name. */
static kiln_status speedscope_name(ingest *r, const kiln_speedscope_profile *p, bool multi,
                                   kiln_appname_t *n)
{
    *n = r->name;
    n->tags = kiln_arena_alloc(r->a, (r->name.n_tags + 1) * sizeof(*n->tags));
    char *pname = kiln_arena_strndup(r->a, p->name.ptr, p->name.len);
    if (multi)
        n->name = kiln_arena_printf(r->a, "%s.%s", r->name.name, p->unit);
    if (n->tags == NULL || pname == NULL || n->name == NULL)
        return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory"));
    size_t k = 0;
    for (size_t i = 0; i < r->name.n_tags; i++) {
        if (strcmp(r->name.tags[i].name, "profile_name") != 0)
            n->tags[k++] = r->name.tags[i];
    }
    if (*pname != '\0')
        n->tags[k++] = (kiln_label_t){"profile_name", pname};
    n->n_tags = k;
    return KILN_OK;
}

static kiln_status ingest_speedscope(ingest *r)
{
    kiln_speedscope_profile *p;
    size_t n, k = 0, len;
    const uint8_t *body;
    kiln_status st = text_body(r, &body, &len);
    if (st != KILN_OK)
        return st;
    st = kiln_speedscope_parse(r->a, body, len, &p, &n, &r->err);
    if (st != KILN_OK)
        return body_failed(r, st);
    kiln_ingest_profile *in = kiln_arena_calloc(r->a, n + 1, sizeof(*in));
    if (in == NULL)
        return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory"));
    for (size_t i = 0; i < n && st == KILN_OK; i++) {
        kiln_appname_t name;
        st = speedscope_name(r, &p[i], n > 1, &name);
        if (st != KILN_OK || has_profile_id(&name))
            continue;
        /* Upstream: the default rate 100 means "unset": the unit decides. */
        uint64_t rate = r->sample_rate == DEFAULT_SAMPLE_RATE ? p[i].default_rate : r->sample_rate;
        st = text_profile(r, p[i].b, &name, rate, r->body_len, &in[k]);
        k += st == KILN_OK;
    }
    return st == KILN_OK ? push(r, in, k, false) : st;
}

/* ---- jfr (the Pyroscope Java agent) ---- */

/* The recording and the LabelsSnapshot of a JFR upload: the whole body, or
 * the form's jfr and labels parts, each gunzipped when gzip, each under the
 * profile size limit. */
static kiln_status jfr_parts(ingest *r, const uint8_t **rec, size_t *rec_len,
                             const uint8_t **labels, size_t *labels_len)
{
    *labels = NULL;
    *labels_len = 0;
    if (strstr(r->content_type, "multipart/form-data") == NULL)
        return text_body(r, rec, rec_len);
    kiln_multipart_part *parts;
    size_t n;
    kiln_status st = form_parts(r, &parts, &n);
    if (st != KILN_OK)
        return body_failed(r, st);
    const kiln_multipart_part *j = kiln_multipart_find(parts, n, "jfr");
    const kiln_multipart_part *l = kiln_multipart_find(parts, n, "labels");
    if (j == NULL)
        return body_failed(
            r, kiln_err_set(&r->err, KILN_INVALID_ARGUMENT, "jfr: the form has no \"jfr\" part"));
    st = kiln_distributor_body(r->d, j->data, j->len, 0, r->a, rec, rec_len, &r->err);
    if (st == KILN_OK && l != NULL && l->len > 0)
        st = kiln_distributor_body(r->d, l->data, l->len, 0, r->a, labels, labels_len, &r->err);
    return st == KILN_OK ? KILN_OK : decode_failed(r, st);
}

/* The series labels of one JFR profile, as upstream's jfr conversion gives
 * them: the tags, pyroscope_spy, __delta__, jfr_event, __name__ and the app
 * name as service_name (as app_name when a tag sets service_name). */
static kiln_label_t *jfr_labels(ingest *r, const char *metric, const char *event, size_t *n)
{
    kiln_label_t *l = base_labels(r, metric, &r->name, 2, n);
    if (l == NULL)
        return NULL;
    if (*event != '\0')
        put(l, n, "jfr_event", event);
    bool tagged = kiln_appname_tag(&r->name, KILN_LABEL_SERVICE_NAME) != NULL;
    if (!tagged || kiln_appname_tag(&r->name, "app_name") == NULL)
        put(l, n, tagged ? "app_name" : KILN_LABEL_SERVICE_NAME, r->name.name);
    return l;
}

static kiln_status ingest_jfr(ingest *r)
{
    const uint8_t *rec, *labels;
    size_t len, labels_len;
    kiln_status st = jfr_parts(r, &rec, &len, &labels, &labels_len);
    if (st != KILN_OK)
        return st;
    kiln_jfr_input jin = {r->from, r->until, r->sample_rate, labels, labels_len};
    kiln_jfr_result res;
    if ((st = kiln_jfr_parse(r->a, rec, len, &jin, &res, &r->err)) != KILN_OK)
        return body_failed(r, st);
    kiln_ingest_profile *in = kiln_arena_calloc(r->a, res.n + 1, sizeof(*in));
    if (in == NULL)
        return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory"));
    for (size_t i = 0; i < res.n; i++) {
        in[i].profile = res.profiles[i].profile;
        in[i].raw_bytes = i == 0 ? r->body_len : 0; /* the body counts once */
        in[i].labels = jfr_labels(r, res.profiles[i].metric, res.event, &in[i].n_labels);
        if (in[i].labels == NULL)
            return body_failed(r, kiln_err_set(&r->err, KILN_RESOURCE_EXHAUSTED, "out of memory"));
    }
    return push(r, in, res.n, false);
}

/* ---- dispatch ---- */

static bool format_is(const ingest *r, const char *f)
{
    return strcmp(r->format, f) == 0;
}

static kiln_status unsupported(ingest *r, const char *what)
{
    return reject(r, 422,
                  kiln_err_set(&r->err, KILN_UNIMPLEMENTED,
                               "format %s is not supported by this server; send pprof, "
                               "jfr, folded, lines or speedscope",
                               what));
}

/* Upstream's order: trie, tree, lines, jfr, pprof, speedscope, a multipart
 * form (pprof), and folded for everything else. */
static kiln_status dispatch(ingest *r)
{
    r->kind = r->format;
    if (format_is(r, "trie") || strcmp(r->content_type, "binary/octet-stream+trie") == 0)
        return unsupported(r, "trie");
    if (format_is(r, "tree") || strcmp(r->content_type, "binary/octet-stream+tree") == 0)
        return unsupported(r, "tree");
    if (format_is(r, "lines"))
        return ingest_text(r, true);
    if (format_is(r, "jfr"))
        return ingest_jfr(r);
    if (format_is(r, "pprof"))
        return ingest_pprof(r, r->body, r->body_len, NULL);
    if (format_is(r, "speedscope"))
        return ingest_speedscope(r);
    if (strstr(r->content_type, "multipart/form-data") != NULL) {
        r->kind = "pprof form";
        return ingest_form(r);
    }
    r->kind = "folded";
    return ingest_text(r, false);
}

/* Content-Encoding: gzip is decoded (under the profile size limit plus room
 * for a form's other parts, from the in-flight budget); identity or none
 * keeps the body; anything else is 415. Never silently ignored: a gzip body
 * read as text would store nothing. */
#define FORM_SLACK (64u << 10)

static kiln_status request_body(ingest *r)
{
    const char *enc = kiln_http_header(r->http, "Content-Encoding");
    r->body = r->http->body;
    r->body_len = r->http->body_len;
    if (enc == NULL || *enc == '\0' || strcasecmp(enc, "identity") == 0 || r->body_len == 0)
        return KILN_OK;
    if (strcasecmp(enc, "gzip") != 0)
        return reject(r, 415,
                      kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                   "unsupported Content-Encoding \"%.40s\"; supported: "
                                   "gzip",
                                   enc));
    if (!kiln_gzip_is(r->body, r->body_len))
        return reject(r, 400,
                      kiln_err_set(&r->err, KILN_INVALID_ARGUMENT,
                                   "Content-Encoding is gzip but the body is not gzip"));
    size_t max = kiln_distributor_max_profile_bytes(r->d) + FORM_SLACK;
    kiln_status st = kiln_distributor_body(r->d, r->body, r->body_len, max, r->a, &r->body,
                                           &r->body_len, &r->err);
    return st == KILN_OK ? KILN_OK : decode_failed(r, st);
}

/* Appends msg with its control bytes (and backslashes) as \xNN, so an
 * error body never echoes raw control characters back. */
static char *escape_text(kiln_arena_t *a, const char *msg)
{
    size_t n = strlen(msg);
    char *o = kiln_arena_alloc(a, n * 4 + 2);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            k += (size_t)snprintf(o + k, 5, "\\x%02x", *p);
        else
            o[k++] = (char)*p;
    }
    o[k++] = '\n';
    o[k] = '\0';
    return o;
}

static void on_ingest(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    if (strcmp(req->method, "POST") != 0) { /* agents push; nothing to GET here */
        kiln_http_text(resp, 405, "/ingest takes POST\n");
        resp->allow = "POST";
        return;
    }
    ingest r;
    memset(&r, 0, sizeof(r));
    r.d = ud;
    r.http = req;
    r.a = req->arena;
    r.kind = "";
    kiln_status st = parse_request(&r);
    if (st == KILN_OK)
        st = request_body(&r);
    if (st == KILN_OK)
        st = dispatch(&r);
    if (st == KILN_OK) {
        resp->status = 200;
        return;
    }
    if (r.err.msg[0] == '\0')
        kiln_err_set(&r.err, st, "%s", kiln_status_str(st));
    kiln_distributor_rejected(r.d, r.tenant[0] ? r.tenant : "-", "/ingest", st, &r.err,
                              req->body_len);
    char *msg = escape_text(r.a, r.err.msg);
    kiln_http_text(resp, r.status ? r.status : 500, msg ? msg : "error\n");
}

void kiln_distributor_register_http(kiln_distributor_t *d, kiln_http_server_t *http)
{
    kiln_http_server_route(http, "/ingest", on_ingest, d);
    kiln_http_server_route(http, "/pyroscope/ingest", on_ingest, d);
}
