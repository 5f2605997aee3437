/* SPDX-License-Identifier: Apache-2.0
 * otlp: OpenTelemetry profiles ingest, the API of the OTel eBPF profiler and
 * the OTel Collector. ProfilesService/Export over gRPC and Connect (rpc
 * registry) and OTLP/HTTP POST /v1development/profiles (protobuf or JSON,
 * gzip or not). A request converts with common/otlp and is ingested profile
 * by profile, each all or nothing: invalid profiles are reported in
 * partial_success while the valid ones are stored; a request whose profiles
 * are all invalid fails with INVALID_ARGUMENT. */
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "connect.h"
#include "distributor.h"
#include "gzip.h"
#include "json_writer.h"
#include "log.h"
#include "otlp.h"
#include "pbjson.h"

#define EXPORT_PATH "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
#define HTTP_PATH "/v1development/profiles"
#define MAX_HTTP_BODY (256u << 20) /* decompressed OTLP/HTTP request bytes */
#define PB(x) opentelemetry__proto__collector__profiles__v1development__##x

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse
    o_resp;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesPartialSuccess
    o_partial;

/* What became of a request's profiles. */
typedef struct outcome {
    size_t profiles, rejected;
    kiln_err first; /* why the first rejected profile was */
} outcome;

/* Ingests every converted profile in one batch (one WAL record for the
 * request): a profile failing its own checks is rejected alone; a limit or
 * a refusal of the store fails the request, so the client may retry it. */
static kiln_status ingest_all(kiln_distributor_t *d, const char *tenant, const kiln_otlp_result *r,
                              kiln_arena_t *a, outcome *o, kiln_err *err)
{
    kiln_ingest_profile *in = kiln_arena_alloc(a, (r->n_series + 1) * sizeof(*in));
    size_t *group = kiln_arena_alloc(a, (r->n_series + 1) * sizeof(*group));
    if (in == NULL || group == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "request memory limit reached");
    for (size_t i = 0; i < r->n_series; i++) {
        const kiln_otlp_series *s = &r->series[i];
        in[i] =
            (kiln_ingest_profile){s->labels, s->n_labels, s->profile, s->profile_id, s->raw_bytes};
        group[i] = s->profile_index;
    }
    kiln_ingest_rejections rej = {0, {KILN_OK, ""}};
    kiln_status st =
        kiln_distributor_ingest_groups(d, tenant, in, group, r->n_series, a, &rej, err);
    if (st != KILN_OK)
        return st;
    if (rej.rejected != 0 && o->rejected == 0)
        o->first = rej.first;
    o->rejected += rej.rejected;
    return KILN_OK;
}

static o_resp *response(kiln_arena_t *a, const outcome *o)
{
    o_resp *r = kiln_arena_alloc(a, sizeof(*r));
    o_partial *p = kiln_arena_alloc(a, sizeof(*p));
    if (r == NULL || p == NULL)
        return NULL;
    PB(export_profiles_service_response__init)(r);
    if (o->rejected == 0)
        return r;
    PB(export_profiles_partial_success__init)(p);
    p->rejected_profiles = (int64_t)o->rejected;
    p->error_message = kiln_arena_printf(a, "%zu of %zu profiles rejected; the first: %s",
                                         o->rejected, o->profiles, o->first.msg);
    if (p->error_message == NULL)
        return NULL;
    r->partial_success = p;
    return r;
}

/* Converts and ingests req; on KILN_OK *resp says which profiles were rejected. */
static kiln_status export_request(kiln_distributor_t *d, const char *tenant,
                                  const kiln_otlp_request *req, kiln_arena_t *a, o_resp **resp,
                                  kiln_err *err)
{
    kiln_otlp_result r;
    kiln_status st = kiln_otlp_convert(a, req, &r, err);
    if (st != KILN_OK)
        return st;
    outcome o = {r.n_profiles, 0, {KILN_OK, ""}};
    if (r.n_rejected != 0) {
        o.rejected = r.n_rejected;
        o.first = r.first_rejection;
    }
    st = ingest_all(d, tenant, &r, a, &o, err);
    if (st != KILN_OK)
        return st;
    if (o.rejected != 0 && o.rejected != o.profiles) /* partial: counted and logged here */
        kiln_distributor_rejected(d, tenant, "otlp (partial)", o.first.code, &o.first, 0);
    if (o.rejected != 0 && o.rejected == o.profiles) {
        /* "Too large" (OUT_OF_RANGE: 413 over HTTP) stays itself. */
        kiln_status code =
            o.first.code == KILN_OUT_OF_RANGE ? KILN_OUT_OF_RANGE : KILN_INVALID_ARGUMENT;
        if (o.profiles == 1)
            return kiln_err_set(err, code, "%s", o.first.msg);
        return kiln_err_set(err, code, "all %zu profiles rejected; the first: %s", o.profiles,
                            o.first.msg);
    }
    *resp = response(a, &o);
    if (*resp == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "request memory limit reached");
    return KILN_OK;
}

static kiln_status h_export(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                            ProtobufCMessage **resp)
{
    o_resp *r = NULL;
    kiln_status st =
        export_request(svc, ctx->tenant, (const kiln_otlp_request *)msg, ctx->arena, &r, ctx->err);
    if (st == KILN_OK) {
        *resp = &r->base;
        return KILN_OK;
    }
    kiln_distributor_rejected(svc, ctx->tenant, "otlp", st, ctx->err, 0);
    return kiln_distributor_public_code(st, ctx->err);
}

/* True when the media type of ct (parameters ignored) is type. */
static bool media_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    if (ct == NULL || strncasecmp(ct, type, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* An OTLP/HTTP failure: a google.rpc.Status in the request's encoding. */
static void http_error(kiln_http_resp *resp, bool json, kiln_status st, const char *msg)
{
    size_t len = strlen(msg);
    resp->body.len = 0;
    if (resp->status == 200)
        resp->status = kiln_status_http(st);
    if (json) {
        resp->content_type = "application/json";
        kiln_buf_printf(&resp->body, "{\"code\":%d,\"message\":", (int)st);
        kiln_json_string(&resp->body, msg, len);
        kiln_buf_putc(&resp->body, '}');
        return;
    }
    /* Status{int32 code = 1; string message = 2}, written by hand. */
    resp->content_type = "application/x-protobuf";
    kiln_buf_putc(&resp->body, 0x08);
    kiln_buf_putc(&resp->body, (char)st);
    kiln_buf_putc(&resp->body, 0x12);
    for (size_t v = len;; v >>= 7) {
        kiln_buf_putc(&resp->body, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        if (v <= 0x7f)
            break;
    }
    kiln_buf_append(&resp->body, msg, len);
}

/* The request body, gunzipped when Content-Encoding says gzip. */
static kiln_status http_body(const kiln_distributor_t *d, const kiln_http_req *req,
                             kiln_http_resp *resp, const uint8_t **body, size_t *len, kiln_err *err)
{
    const char *enc = kiln_http_header(req, "Content-Encoding");
    *body = req->body;
    *len = req->body_len;
    if (enc == NULL || *enc == '\0' || strcasecmp(enc, "identity") == 0)
        return KILN_OK;
    if (strcasecmp(enc, "gzip") != 0) {
        resp->status = 415;
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "unsupported Content-Encoding \"%s\"; supported: gzip", enc);
    }
    /* Reserved from the in-flight budget: 413 past the cap, 429 when busy. */
    return kiln_distributor_body(d, req->body, req->body_len, MAX_HTTP_BODY, req->arena, body, len,
                                 err);
}

/* Decodes, converts and ingests; fills resp on success. */
static kiln_status serve_http(kiln_distributor_t *d, const kiln_http_req *req, bool json,
                              kiln_http_resp *resp, kiln_err *err)
{
    char tenant[KILN_TENANT_MAX + 8];
    const char *org = kiln_http_header(req, "X-Scope-OrgID");
    kiln_status st =
        kiln_tenant_parse(org, org ? strlen(org) : 0, false, tenant, sizeof(tenant), err);
    const uint8_t *body = NULL;
    size_t len = 0;
    kiln_otlp_request *msg = NULL;
    o_resp *r = NULL;
    if (st == KILN_OK)
        st = http_body(d, req, resp, &body, &len, err);
    if (st == KILN_OK)
        st = json ? kiln_otlp_decode_json(req->arena, (const char *)body, len, &msg, err)
                  : kiln_otlp_unpack(req->arena, body, len, &msg, err);
    if (st == KILN_OK)
        st = export_request(d, tenant, msg, req->arena, &r, err);
    if (st != KILN_OK)
        return st;
    bool ok = json ? kiln_pbjson_encode(&r->base, &resp->body)
                   : kiln_buf_reserve(&resp->body, protobuf_c_message_get_packed_size(&r->base));
    if (!ok)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "response too large");
    if (!json)
        resp->body.len += protobuf_c_message_pack(&r->base, (uint8_t *)resp->body.ptr);
    resp->status = 200;
    return KILN_OK;
}

static void on_http(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    kiln_distributor_t *d = ud;
    const char *ct = kiln_http_header(req, "Content-Type");
    bool json = media_is(ct, "application/json");
    kiln_err err = {KILN_OK, ""};
    kiln_status st;
    resp->status = 200;
    if (strcmp(req->method, "POST") != 0) {
        resp->status = 405;
        st = kiln_err_set(&err, KILN_UNIMPLEMENTED, "method %s not allowed; use POST", req->method);
    } else if (!json && !media_is(ct, "application/x-protobuf") &&
               !media_is(ct, "application/protobuf")) {
        resp->status = 415;
        st = kiln_err_set(&err, KILN_INVALID_ARGUMENT,
                          "unsupported Content-Type \"%s\"; use application/x-protobuf, "
                          "application/protobuf or application/json",
                          ct ? ct : "");
    } else {
        st = serve_http(d, req, json, resp, &err);
    }
    if (st == KILN_OK) {
        resp->content_type = json                                   ? "application/json"
                             : media_is(ct, "application/protobuf") ? "application/protobuf"
                                                                    : "application/x-protobuf";
    } else {
        const char *org = kiln_http_header(req, "X-Scope-OrgID");
        char tenant[KILN_TENANT_MAX + 8];
        if (kiln_tenant_parse(org, org ? strlen(org) : 0, false, tenant, sizeof(tenant), NULL) !=
            KILN_OK)
            snprintf(tenant, sizeof(tenant), "-"); /* never a raw header in metrics */
        kiln_distributor_rejected(d, tenant, HTTP_PATH, st, &err, req->body_len);
        if (resp->status == 200)
            resp->status = kiln_distributor_http_status(st);
        http_error(resp, json, kiln_distributor_public_code(st, &err), err.msg);
    }
}

void kiln_distributor_register_otlp(kiln_distributor_t *d, kiln_rpc_registry_t *rpc,
                                    kiln_http_server_t *http)
{
    kiln_rpc_method m = {EXPORT_PATH,
                         kiln_otlp_request_descriptor(),
                         &PB(export_profiles_service_response__descriptor),
                         h_export,
                         d,
                         KILN_RPC_PUBLIC,
                         kiln_otlp_unpack_message};
    kiln_rpc_register(rpc, &m);
    if (http != NULL)
        kiln_http_server_route(http, HTTP_PATH, on_http, d);
}
