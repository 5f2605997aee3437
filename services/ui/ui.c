/* SPDX-License-Identifier: Apache-2.0
 * ui: the embedded web UI's HTTP routes. */
#include "ui.h"

#include <string.h>

#include "gzip.h"
#include "ui_assets.h"

/* The hashed /ui/ files never change under their name; / names them, so it
 * is revalidated on every load (a 304 when kiln was not rebuilt). */
#define CACHE_FOREVER "public, max-age=31536000, immutable"
#define CACHE_REVALIDATE "no-cache"

/* True when the Accept-Encoding header lists gzip (any q but 0 counts:
 * every browser sends plain "gzip"). */
static bool accepts_gzip(const kiln_http_req *req)
{
    const char *ae = kiln_http_header(req, "Accept-Encoding");
    if (ae == NULL)
        return false;
    const char *g = strstr(ae, "gzip");
    return g != NULL && strncmp(g + 4, ";q=0,", 5) != 0 && strcmp(g + 4, ";q=0") != 0;
}

/* True when If-None-Match names the asset's ETag (or is "*"). */
static bool not_modified(const kiln_http_req *req, const kiln_ui_asset *a)
{
    const char *inm = kiln_http_header(req, "If-None-Match");
    return inm != NULL && (strstr(inm, a->etag) != NULL || strcmp(inm, "*") == 0);
}

/* The asset's bytes, inflated for a client that does not take gzip. */
static void put_identity(const kiln_http_req *req, const kiln_ui_asset *a, kiln_http_resp *resp)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    kiln_err err = {KILN_OK, ""};
    if (kiln_gunzip(req->arena, a->gzip, a->gzip_len, a->raw_len, &raw, &raw_len, &err) !=
        KILN_OK) {
        /* the build wrote these bytes: corrupt means a broken binary */
        kiln_http_text(resp, 500, "embedded UI asset is corrupt\n");
        return;
    }
    kiln_buf_append(&resp->body, raw, raw_len);
}

static void on_asset(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    const kiln_ui_asset *a = ud;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        kiln_http_text(resp, 405, "method not allowed: use GET\n");
        resp->allow = "GET, HEAD";
        return;
    }
    resp->headers[0][0] = "ETag";
    resp->headers[0][1] = a->etag;
    resp->headers[1][0] = "Cache-Control";
    resp->headers[1][1] = strcmp(a->path, "/") == 0 ? CACHE_REVALIDATE : CACHE_FOREVER;
    resp->headers[2][0] = "Vary";
    resp->headers[2][1] = "Accept-Encoding";
    if (not_modified(req, a)) {
        resp->status = 304;
        return;
    }
    resp->content_type = a->content_type;
    if (accepts_gzip(req)) {
        resp->content_encoding = "gzip";
        kiln_buf_append(&resp->body, a->gzip, a->gzip_len);
    } else {
        put_identity(req, a, resp);
    }
}

void kiln_ui_register(kiln_http_server_t *http)
{
    for (size_t i = 0; i < kiln_ui_n_assets; i++)
        kiln_http_server_route(http, kiln_ui_assets[i].path, on_asset, (void *)&kiln_ui_assets[i]);
}
