/* SPDX-License-Identifier: Apache-2.0
 * rpc: method registry, codec dispatch and tenant validation. */
#include "rpc.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pb_nul.h"
#include "pbjson.h"
#include "xmalloc.h"

/* A method, and what a server of the other plane finds in its place. */
typedef struct entry {
    kiln_rpc_method m;
    kiln_rpc_method elsewhere; /* m without request type or handler */
} entry;

struct kiln_rpc_registry {
    entry *e;
    size_t n, cap;
};

kiln_rpc_registry_t *kiln_rpc_registry_create(void)
{
    return kiln_xcalloc(1, sizeof(kiln_rpc_registry_t));
}

void kiln_rpc_registry_destroy(kiln_rpc_registry_t *r)
{
    if (r == NULL)
        return;
    free(r->e);
    free(r);
}

void kiln_rpc_register(kiln_rpc_registry_t *r, const kiln_rpc_method *m)
{
    size_t i = 0;
    while (i < r->n && strcmp(r->e[i].m.path, m->path) != 0)
        i++;
    if (i == r->n) {
        KILN_GROW(r->e, r->cap, r->n + 1);
        r->n++;
    }
    r->e[i].m = *m;
    r->e[i].elsewhere = (kiln_rpc_method){.path = m->path, .plane = m->plane};
}

const kiln_rpc_method *kiln_rpc_find(const kiln_rpc_registry_t *r, kiln_rpc_plane plane,
                                     const char *path, size_t len)
{
    for (size_t i = 0; i < r->n; i++) {
        const entry *e = &r->e[i];
        if (strlen(e->m.path) == len && memcmp(e->m.path, path, len) == 0)
            return e->m.plane == plane ? &e->m : &e->elsewhere;
    }
    return NULL;
}

static kiln_status decode(const kiln_rpc_method *m, kiln_rpc_ctx *ctx, const uint8_t *body,
                          size_t len, kiln_rpc_codec codec, ProtobufCMessage **req)
{
    if (codec == KILN_CODEC_JSON)
        return kiln_pbjson_decode(m->req, (const char *)body, len, ctx->arena, req, ctx->err);
    ProtobufCAllocator al = kiln_arena_pb_allocator(ctx->arena);
    bool nul = false;
    *req = m->unpack != NULL ? m->unpack(ctx->arena, body, len, &nul)
                             : protobuf_c_message_unpack(m->req, &al, len, body);
    if (*req == NULL)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "failed to decode %s: malformed protobuf", m->req->name);
    /* protobuf-c does not tell: its strings get the second walk (rpc.h). */
    if (m->unpack == NULL)
        nul = !kiln_pb_nul_free(m->req, body, len);
    if (nul)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "failed to decode %s: a string field holds a NUL byte", m->req->name);
    return KILN_OK;
}

/* The status of a query whose token ended: its partial answer is dropped. */
static kiln_status stopped(kiln_rpc_ctx *ctx)
{
    kiln_status why = (kiln_status)atomic_load(&ctx->cancel->why);
    if (why == KILN_DEADLINE_EXCEEDED)
        return kiln_err_set(ctx->err, why, "query deadline exceeded");
    if (why == KILN_CANCELLED)
        return kiln_err_set(ctx->err, why, "query canceled: client gone or shutting down");
    return kiln_err_set(ctx->err, why, "%s", ctx->cancel->fail_msg); /* kiln_cancel_fail */
}

kiln_status kiln_rpc_invoke(const kiln_rpc_method *m, kiln_rpc_ctx *ctx, const uint8_t *body,
                            size_t len, kiln_rpc_codec codec, kiln_buf *out)
{
    ProtobufCMessage *req = NULL, *resp = NULL;
    if (m->req == NULL && m->plane == KILN_RPC_INTERNAL) /* found from the public plane */
        return kiln_err_set(ctx->err, KILN_UNIMPLEMENTED,
                            "%s is served on the cluster plane only, not on this port", m->path);
    if (m->req == NULL) /* an API method Kiln does not serve here (rpc.h) */
        return kiln_err_set(ctx->err, KILN_UNIMPLEMENTED, "%s is not implemented by this server",
                            m->path);
    kiln_status st = decode(m, ctx, body, len, codec, &req);
    if (st != KILN_OK)
        return st;
    if (kiln_cancel_check(ctx->cancel) == KILN_OK)
        st = m->fn(m->svc, ctx, req, &resp);
    if (ctx->cancel != NULL && atomic_load(&ctx->cancel->why) != KILN_OK)
        return stopped(ctx);
    if (st != KILN_OK)
        return st;
    if (codec == KILN_CODEC_JSON) {
        if (!kiln_pbjson_encode(resp, out))
            return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "response too large");
        return KILN_OK;
    }
    size_t n = protobuf_c_message_get_packed_size(resp);
    if (!kiln_buf_reserve(out, n))
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "response too large");
    out->len += protobuf_c_message_pack(resp, (uint8_t *)out->ptr + out->len);
    return KILN_OK;
}

bool kiln_rpc_accepts_utf8_names(const char *accept, size_t len)
{
    static const char want[] = "allow-utf8-labelnames=true";
    return accept != NULL && len >= sizeof(want) - 1 &&
           memmem(accept, len, want, sizeof(want) - 1) != NULL;
}

static bool tenant_char(char c)
{
    /* Pyroscope's set: alphanumerics and !-_.*'() */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!-_.*'()", c) != NULL;
}

static kiln_status check_one(const char *s, size_t len, kiln_err *err)
{
    if (len == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID is empty");
    if (len > KILN_TENANT_MAX)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID is too long: max %d characters",
                            KILN_TENANT_MAX);
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID is '.' or '..'");
    for (size_t i = 0; i < len; i++) {
        if (!tenant_char(s[i]))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "tenant ID '%.*s' contains unsupported character '%c'",
                                (int)(len > 64 ? 64 : len), s, s[i] >= 32 ? s[i] : '?');
    }
    return KILN_OK;
}

kiln_status kiln_tenant_parse(const char *hdr, size_t len, bool allow_multi, char *out,
                              size_t out_cap, kiln_err *err)
{
    if (hdr == NULL || len == 0) {
        hdr = KILN_TENANT_DEFAULT;
        len = strlen(hdr);
    }
    if (len >= out_cap)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID is too long");
    for (size_t start = 0, i = 0; i <= len; i++) {
        if (i < len && hdr[i] != '|')
            continue;
        if (i < len && !allow_multi)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID contains '|'");
        kiln_status st = check_one(hdr + start, i - start, err);
        if (st != KILN_OK)
            return st;
        start = i + 1;
    }
    memcpy(out, hdr, len);
    out[len] = '\0';
    return KILN_OK;
}

bool kiln_rpc_multi_tenant(const char *path)
{
    static const char ing[] = "/ingester.v1.IngesterService/";
    if (strncmp(path, "/querier.", 9) == 0)
        return true;
    return strncmp(path, ing, sizeof(ing) - 1) == 0 && strcmp(path + sizeof(ing) - 1, "Push") != 0;
}

bool kiln_rpc_is_query(const char *path)
{
    return strncmp(path, "/querier.", 9) == 0;
}
