/* SPDX-License-Identifier: Apache-2.0
 * grpc_web: gRPC-Web frames and their base64 text form. */
#include "grpc_web.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FRAME_HDR 5
#define FLAG_COMPRESSED 0x01
#define FLAG_TRAILERS 0x80

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool kiln_grpcweb_match(const char *ct, bool *text, bool *json)
{
    static const char web[] = "application/grpc-web";
    if (ct == NULL || strncasecmp(ct, web, sizeof(web) - 1) != 0)
        return false;
    const char *p = ct + sizeof(web) - 1;
    *text = strncasecmp(p, "-text", 5) == 0;
    if (*text)
        p += 5;
    *json = strncasecmp(p, "+json", 5) == 0;
    if (*json)
        p += 5;
    else if (strncasecmp(p, "+proto", 6) == 0)
        p += 6;
    return *p == '\0' || *p == ';' || *p == ' ';
}

static int b64_value(uint8_t c)
{
    const char *p = c != 0 ? strchr(b64, c) : NULL;
    return p != NULL ? (int)(p - b64) : -1;
}

/* Decodes base64 that may be several padded pieces one after another (a
 * client may send each frame encoded apart): each group of four characters
 * on its own, '=' ending only its group. */
static kiln_status b64_decode(kiln_arena_t *a, const uint8_t *in, size_t len, uint8_t **out,
                              size_t *out_len, kiln_err *err)
{
    if (len % 4 != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "grpc-web-text body is not base64 (length %zu)", len);
    uint8_t *o = kiln_arena_alloc(a, len / 4 * 3 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = in[i + k] == '=' ? 0 : b64_value(in[i + k]);
            pad += in[i + k] == '=';
            if (v[k] < 0 || (pad > 0 && in[i + k] != '=') || (in[i + k] == '=' && k < 2))
                return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                    "grpc-web-text body is not base64 (at byte %zu)", i + k);
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[n++] = (uint8_t)(w >> 16);
        if (pad < 2)
            o[n++] = (uint8_t)(w >> 8);
        if (pad < 1)
            o[n++] = (uint8_t)w;
    }
    *out = o, *out_len = n;
    return KILN_OK;
}

kiln_status kiln_grpcweb_message(kiln_arena_t *a, const uint8_t *body, size_t len, bool text,
                                 const uint8_t **msg, size_t *msg_len, bool *compressed,
                                 kiln_err *err)
{
    if (text) {
        uint8_t *raw = NULL;
        kiln_status st = b64_decode(a, body, len, &raw, &len, err);
        if (st != KILN_OK)
            return st;
        body = raw;
    }
    if (len < FRAME_HDR)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "grpc-web request has no message frame (%zu bytes)", len);
    uint8_t flags = body[0];
    size_t n = (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 | body[4];
    if ((flags & ~FLAG_COMPRESSED) != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "grpc-web request frame has flags 0x%02x; a unary call sends one "
                            "message frame",
                            flags);
    if (n != len - FRAME_HDR)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "grpc-web request frame says %zu bytes but %zu follow; a unary call "
                            "sends one message",
                            n, len - FRAME_HDR);
    *msg = body + FRAME_HDR, *msg_len = n, *compressed = (flags & FLAG_COMPRESSED) != 0;
    return KILN_OK;
}

static void put_frame_header(kiln_buf *b, uint8_t flag, size_t n)
{
    uint8_t h[FRAME_HDR] = {flag, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                            (uint8_t)n};
    kiln_buf_append(b, h, sizeof(h));
}

/* grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
static void put_message(kiln_buf *b, const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%')
            kiln_buf_printf(b, "%%%02X", *p);
        else
            kiln_buf_putc(b, (char)*p);
    }
}

static void b64_encode(const kiln_buf *in, kiln_buf *out)
{
    const uint8_t *p = (const uint8_t *)in->ptr;
    for (size_t i = 0; i < in->len; i += 3) {
        size_t left = in->len - i;
        uint32_t w = (uint32_t)p[i] << 16 | (left > 1 ? (uint32_t)p[i + 1] << 8 : 0) |
                     (left > 2 ? p[i + 2] : 0);
        char q[4] = {b64[w >> 18 & 63], b64[w >> 12 & 63], left > 1 ? b64[w >> 6 & 63] : '=',
                     left > 2 ? b64[w & 63] : '='};
        kiln_buf_append(out, q, 4);
    }
}

void kiln_grpcweb_reply(kiln_http_resp *resp, bool text, bool json, kiln_status st, const char *msg)
{
    kiln_buf f, trailers;
    kiln_buf_init(&f, 0);
    kiln_buf_init(&trailers, 0);
    if (st == KILN_OK) {
        put_frame_header(&f, 0, resp->body.len);
        kiln_buf_append(&f, resp->body.ptr, resp->body.len);
    }
    kiln_buf_printf(&trailers, "grpc-status: %d\r\n", (int)st);
    if (st != KILN_OK && msg != NULL && *msg != '\0') {
        kiln_buf_puts(&trailers, "grpc-message: ");
        put_message(&trailers, msg);
        kiln_buf_puts(&trailers, "\r\n");
    }
    put_frame_header(&f, FLAG_TRAILERS, trailers.len);
    kiln_buf_append(&f, trailers.ptr, trailers.len);
    kiln_buf_free(&trailers);
    kiln_buf_free(&resp->body);
    if (text) {
        kiln_buf_init(&resp->body, 0);
        b64_encode(&f, &resp->body);
        kiln_buf_free(&f);
    } else {
        resp->body = f;
    }
    resp->status = 200;
    resp->content_encoding = NULL;
    resp->content_type =
        text   ? (json ? "application/grpc-web-text+json" : "application/grpc-web-text+proto")
        : json ? "application/grpc-web+json"
               : "application/grpc-web+proto";
}
