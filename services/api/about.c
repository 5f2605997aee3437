/* SPDX-License-Identifier: Apache-2.0
 * about: status.v1, version.v1 and capabilities.v1. */
#include "about.h"

#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "capabilities/v1/feature_flags.pb-c.h"
#include "pbjson.h"
#include "status/v1/status.pb-c.h"
#include "version/v1/version.pb-c.h"
#include "xmalloc.h"

struct kiln_about {
    char *config_yaml;
    char *default_yaml;
};

/* Upstream writes YAML as text/plain so that browsers show it. */
#define YAML_CONTENT_TYPE "text/plain; charset=utf-8"

kiln_about_t *kiln_about_create(const char *config_yaml, const char *default_yaml)
{
    kiln_about_t *a = kiln_xcalloc(1, sizeof(*a));
    a->config_yaml = kiln_xstrdup(config_yaml ? config_yaml : "");
    a->default_yaml = kiln_xstrdup(default_yaml ? default_yaml : "");
    return a;
}

void kiln_about_destroy(kiln_about_t *a)
{
    if (a == NULL)
        return;
    free(a->config_yaml);
    free(a->default_yaml);
    free(a);
}

static Status__V1__GetBuildInfoResponse *build_info(kiln_arena_t *ar)
{
    Status__V1__GetBuildInfoResponse *r = kiln_arena_alloc(ar, sizeof(*r));
    Status__V1__GetBuildInfoData *d = kiln_arena_alloc(ar, sizeof(*d));
    if (r == NULL || d == NULL)
        return NULL;
    status__v1__get_build_info_response__init(r);
    status__v1__get_build_info_data__init(d);
    /* Kiln is not Go: go_version stays empty; branch and user are not
     * recorded by the build. */
    d->version = (char *)kiln_build_version();
    d->revision = (char *)kiln_build_commit();
    d->build_date = (char *)kiln_build_date();
    r->status = "success";
    r->data = d;
    return r;
}

static kiln_status on_build_info(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp)
{
    (void)svc;
    (void)req;
    Status__V1__GetBuildInfoResponse *r = build_info(ctx->arena);
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    *resp = &r->base;
    return KILN_OK;
}

static kiln_status http_body(kiln_rpc_ctx *ctx, const char *text, ProtobufCMessage **resp)
{
    Google__Api__HttpBody *b = kiln_arena_alloc(ctx->arena, sizeof(*b));
    if (b == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    google__api__http_body__init(b);
    b->content_type = YAML_CONTENT_TYPE;
    b->data.data = (uint8_t *)text;
    b->data.len = strlen(text);
    *resp = &b->base;
    return KILN_OK;
}

static kiln_status on_config(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage **resp)
{
    (void)req;
    return http_body(ctx, ((kiln_about_t *)svc)->config_yaml, resp);
}

static kiln_status on_default_config(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                                     ProtobufCMessage **resp)
{
    (void)req;
    return http_body(ctx, ((kiln_about_t *)svc)->default_yaml, resp);
}

static kiln_status on_version(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                              ProtobufCMessage **resp)
{
    (void)svc;
    (void)req;
    Version__V1__VersionResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    version__v1__version_response__init(r);
    r->querierapi = KILN_QUERIER_API_VERSION;
    *resp = &r->base;
    return KILN_OK;
}

/* Pyroscope's flags, sorted by name, with what Kiln does: UTF-8 label names
 * are served (with the Accept opt-in), and the ruler (recording rules, with
 * function filters: Drilldown's "Create metric"); the v2 storage layer is
 * not. */
static const struct flag {
    const char *name;
    bool enabled;
    const char *description;
} flags[] = {
    {"pyroscopeRuler", true,
     "Supports the Pyroscope ruler, which exports Prometheus metrics from profiling data."},
    {"pyroscopeRulerFunctions", true, "Enables function support for the Pyroscope ruler."},
    {"utf8LabelNames", true, "Supports UTF-8 label names for the read and write APIs."},
    {"v2StorageLayer", false, "v2 storage layer"},
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static kiln_status on_feature_flags(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                                    ProtobufCMessage **resp)
{
    (void)svc;
    (void)req;
    Capabilities__V1__GetFeatureFlagsResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    Capabilities__V1__FeatureFlag *f = kiln_arena_calloc(ctx->arena, N_FLAGS, sizeof(*f));
    Capabilities__V1__FeatureFlag **fp = kiln_arena_calloc(ctx->arena, N_FLAGS, sizeof(*fp));
    if (r == NULL || f == NULL || fp == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    capabilities__v1__get_feature_flags_response__init(r);
    for (size_t i = 0; i < N_FLAGS; i++) {
        capabilities__v1__feature_flag__init(&f[i]);
        f[i].name = (char *)flags[i].name;
        f[i].enabled = flags[i].enabled;
        f[i].description = (char *)flags[i].description;
        fp[i] = &f[i];
    }
    r->n_feature_flags = N_FLAGS;
    r->feature_flags = fp;
    *resp = &r->base;
    return KILN_OK;
}

/* ---- HTTP routes ---- */

static bool only_get(const kiln_http_req *req, kiln_http_resp *resp)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        return true;
    kiln_http_text(resp, 405, "method not allowed; use GET\n");
    resp->allow = "GET";
    return false;
}

static void on_http_build_info(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    (void)ud;
    if (!only_get(req, resp))
        return;
    Status__V1__GetBuildInfoResponse *r = build_info(req->arena);
    if (r == NULL || !kiln_pbjson_encode(&r->base, &resp->body)) {
        kiln_http_text(resp, 500, "out of memory\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
}

static void yaml_route(const char *text, const kiln_http_req *req, kiln_http_resp *resp)
{
    if (!only_get(req, resp))
        return;
    kiln_http_text(resp, 200, text);
    resp->content_type = YAML_CONTENT_TYPE;
}

static void on_http_config(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    yaml_route(((kiln_about_t *)ud)->config_yaml, req, resp);
}

static void on_http_default_config(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    yaml_route(((kiln_about_t *)ud)->default_yaml, req, resp);
}

void kiln_about_register(kiln_about_t *a, kiln_rpc_registry_t *rpc, kiln_http_server_t *http)
{
    const kiln_rpc_method m[] = {
        {"/status.v1.StatusService/GetBuildInfo", &status__v1__get_build_info_request__descriptor,
         &status__v1__get_build_info_response__descriptor, on_build_info, a, KILN_RPC_PUBLIC, NULL},
        {"/status.v1.StatusService/GetConfig", &status__v1__get_config_request__descriptor,
         &google__api__http_body__descriptor, on_config, a, KILN_RPC_PUBLIC, NULL},
        {"/status.v1.StatusService/GetDefaultConfig", &status__v1__get_config_request__descriptor,
         &google__api__http_body__descriptor, on_default_config, a, KILN_RPC_PUBLIC, NULL},
        {"/version.v1.Version/Version", &version__v1__version_request__descriptor,
         &version__v1__version_response__descriptor, on_version, a, KILN_RPC_PUBLIC, NULL},
        {"/capabilities.v1.FeatureFlagsService/GetFeatureFlags",
         &capabilities__v1__get_feature_flags_request__descriptor,
         &capabilities__v1__get_feature_flags_response__descriptor, on_feature_flags, a,
         KILN_RPC_PUBLIC, NULL},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        kiln_rpc_register(rpc, &m[i]);
    kiln_http_server_route(http, "/api/v1/status/buildinfo", on_http_build_info, a);
    kiln_http_server_route(http, "/api/v1/status/config", on_http_config, a);
    kiln_http_server_route(http, "/api/v1/status/config/default", on_http_default_config, a);
}
