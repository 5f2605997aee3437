/* SPDX-License-Identifier: Apache-2.0
 * connect: Connect unary over HTTP/1.1. */
#include "connect.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "grpc_web.h"
#include "gzip.h"
#include "json_writer.h"
#include "log.h"

void kiln_connect_error(kiln_http_resp *resp, kiln_status code, const char *msg)
{
    resp->status = kiln_status_http(code);
    resp->content_type = "application/json";
    resp->content_encoding = NULL;
    resp->body.len = 0;
    kiln_buf_printf(&resp->body, "{\"code\":\"%s\",\"message\":", kiln_status_str(code));
    kiln_json_string(&resp->body, msg, strlen(msg));
    kiln_buf_putc(&resp->body, '}');
}

/* The media type without parameters, compared case-insensitively. */
static int media_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct != NULL && strncasecmp(ct, want, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static double now_s(void)
{
    return (double)kiln_mono_ns() / 1e9;
}

/* Decompresses the body per Content-Encoding; KILN_OK leaves *body set. */
static kiln_status request_body(const kiln_connect *c, const kiln_http_req *req,
                                const uint8_t **body, size_t *len, kiln_err *err)
{
    const char *enc = kiln_http_header(req, "Content-Encoding");
    *body = req->body;
    *len = req->body_len;
    if (enc == NULL || strcasecmp(enc, "identity") == 0 || req->body_len == 0)
        return KILN_OK;
    if (strcasecmp(enc, "gzip") != 0)
        return kiln_err_set(err, KILN_UNIMPLEMENTED,
                            "content encoding \"%s\" is not supported; supported: gzip", enc);
    uint8_t *out;
    kiln_status st = kiln_gunzip_budget(req->arena, req->body, req->body_len, c->max_body,
                                        c->inflight, &out, len, err);
    if (st == KILN_OK)
        *body = out;
    /* Too large is not retryable: Connect's resource_exhausted (429) would
     * make clients retry a request that can never pass. */
    if (st == KILN_OUT_OF_RANGE)
        st = err->code = KILN_INVALID_ARGUMENT;
    return st;
}

static void maybe_gzip(const kiln_http_req *req, kiln_http_resp *resp)
{
    const char *ae = kiln_http_header(req, "Accept-Encoding");
    if (ae == NULL || strstr(ae, "gzip") == NULL || resp->body.len < 4096)
        return;
    kiln_buf z;
    kiln_buf_init(&z, 0);
    if (kiln_gzip(resp->body.ptr, resp->body.len, 1, &z)) {
        kiln_buf_free(&resp->body);
        resp->body = z;
        resp->content_encoding = "gzip";
    } else {
        kiln_buf_free(&z);
    }
}

/* Inflates a gRPC-Web message whose frame says compressed, as the
 * grpc-encoding header names (gzip only), capped and under the budget. */
static kiln_status grpcweb_inflate(const kiln_connect *c, const kiln_http_req *req,
                                   const uint8_t **body, size_t *len, kiln_err *err)
{
    const char *enc = kiln_http_header(req, "grpc-encoding");
    if (enc == NULL || strcasecmp(enc, "gzip") != 0)
        return kiln_err_set(err, KILN_UNIMPLEMENTED,
                            "compressed message with grpc-encoding \"%s\"; supported: gzip",
                            enc ? enc : "");
    uint8_t *out;
    kiln_status st =
        kiln_gunzip_budget(req->arena, *body, *len, c->max_body, c->inflight, &out, len, err);
    if (st == KILN_OK)
        *body = out;
    if (st == KILN_OUT_OF_RANGE) /* too large: never worth a retry */
        st = err->code = KILN_INVALID_ARGUMENT;
    return st;
}

/* The request message of a gRPC-Web call, unframed and inflated. */
static kiln_status grpcweb_body(const kiln_connect *c, const kiln_http_req *req, bool text,
                                const uint8_t **body, size_t *len, kiln_err *err)
{
    bool compressed;
    kiln_status st = kiln_grpcweb_message(req->arena, req->body, req->body_len, text, body, len,
                                          &compressed, err);
    if (st == KILN_OK && compressed)
        st = grpcweb_inflate(c, req, body, len, err);
    return st;
}

static kiln_status serve(const kiln_connect *c, const kiln_http_req *req, kiln_http_resp *resp,
                         const kiln_rpc_method *m, kiln_err *err)
{
    const char *ct = kiln_http_header(req, "Content-Type");
    kiln_rpc_codec codec;
    bool text = false, json = false;
    bool web = kiln_grpcweb_match(ct, &text, &json);
    if (web)
        codec = json ? KILN_CODEC_JSON : KILN_CODEC_PROTO;
    else if (media_is(ct, "application/proto"))
        codec = KILN_CODEC_PROTO;
    else if (media_is(ct, "application/json"))
        codec = KILN_CODEC_JSON;
    else {
        resp->status = 415;
        return kiln_err_set(err, KILN_UNKNOWN,
                            "unsupported content type \"%s\"; supported: application/proto, "
                            "application/json, application/grpc-web[-text][+proto|+json] (and "
                            "gRPC over HTTP/2)",
                            ct ? ct : "");
    }
    char tenant[KILN_TENANT_MAX * 8 + 8];
    const char *org = kiln_http_header(req, "X-Scope-OrgID");
    bool multi = kiln_rpc_multi_tenant(req->path);
    kiln_status st =
        kiln_tenant_parse(org, org ? strlen(org) : 0, multi, tenant, sizeof(tenant), err);
    const uint8_t *body;
    size_t len;
    if (st == KILN_OK)
        st = web ? grpcweb_body(c, req, text, &body, &len, err)
                 : request_body(c, req, &body, &len, err);
    if (st != KILN_OK)
        return st;
    const char *accept = kiln_http_header(req, "Accept");
    kiln_rpc_ctx ctx = {tenant, req->arena, err,
                        kiln_rpc_accepts_utf8_names(accept, accept ? strlen(accept) : 0),
                        req->cancel};
    st = kiln_rpc_invoke(m, &ctx, body, len, codec, &resp->body);
    if (st == KILN_OK && web) {
        kiln_grpcweb_reply(resp, text, json, KILN_OK, NULL);
    } else if (st == KILN_OK) {
        resp->status = 200;
        resp->content_type = codec == KILN_CODEC_JSON ? "application/json" : "application/proto";
        maybe_gzip(req, resp);
    }
    return st;
}

/* A browser's CORS preflight of a call: any origin may call (the API has
 * no cookies or credentials to protect; tenants are a header), with POST
 * and the headers it asks for. */
static void preflight(const kiln_http_req *req, kiln_http_resp *resp)
{
    const char *origin = kiln_http_header(req, "Origin");
    const char *hdrs = kiln_http_header(req, "Access-Control-Request-Headers");
    resp->status = 204;
    kiln_http_resp_header(resp, "Access-Control-Allow-Origin", origin ? origin : "*");
    kiln_http_resp_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
    if (hdrs != NULL)
        kiln_http_resp_header(resp, "Access-Control-Allow-Headers", hdrs);
    kiln_http_resp_header(resp, "Access-Control-Max-Age", "7200");
    kiln_http_resp_header(resp, "Vary", "Origin");
}

/* Cross-origin calls may read the answer and its gRPC-Web status. */
static void allow_origin(const kiln_http_req *req, kiln_http_resp *resp)
{
    const char *origin = kiln_http_header(req, "Origin");
    if (origin == NULL)
        return;
    kiln_http_resp_header(resp, "Access-Control-Allow-Origin", origin);
    kiln_http_resp_header(resp, "Access-Control-Expose-Headers",
                          "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin");
    kiln_http_resp_header(resp, "Vary", "Origin");
}

/* The metrics' protocol label of a call. */
static const char *protocol_of(const kiln_http_req *req)
{
    bool text, json;
    return kiln_grpcweb_match(kiln_http_header(req, "Content-Type"), &text, &json) ? "grpc-web"
                                                                                   : "connect";
}

void kiln_connect_handle(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    const kiln_connect *c = ud;
    double t0 = now_s();
    const kiln_rpc_method *m = kiln_rpc_find(c->rpc, KILN_RPC_PUBLIC, req->path, strlen(req->path));
    if (m == NULL) {
        kiln_connect_error(resp, KILN_NOT_FOUND, "404 page not found");
        resp->status = 404;
        return;
    }
    if (strcmp(req->method, "OPTIONS") == 0) {
        preflight(req, resp);
        return;
    }
    kiln_err err = {KILN_OK, ""};
    kiln_status st;
    allow_origin(req, resp);
    if (strcmp(req->method, "POST") != 0) {
        st = kiln_err_set(&err, KILN_UNIMPLEMENTED, "method %s not allowed; use POST", req->method);
        resp->status = 405;
    } else {
        st = serve(c, req, resp, m, &err);
    }
    if (st != KILN_OK) {
        int http = resp->status;
        const char *org = kiln_http_header(req, "X-Scope-OrgID");
        KILN_LOG_WARN_SAMPLED(org ? org : "", m->path, "connect", "%s failed code=%s: %s", m->path,
                              kiln_status_str(st), err.msg);
        bool text, json;
        if (http != 415 && http != 405 &&
            kiln_grpcweb_match(kiln_http_header(req, "Content-Type"), &text, &json))
            kiln_grpcweb_reply(resp, text, json, st, err.msg);
        else
            kiln_connect_error(resp, st, err.msg);
        if (http == 415 || http == 405)
            resp->status = http;
    }
    kiln_metrics_request(c->metrics, protocol_of(req), m->path, kiln_status_str(st), now_s() - t0);
}
