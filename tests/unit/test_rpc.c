/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: tenant ids, rpc registry, status mapping. */
#include <string.h>

#include "check.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "rpc.h"
#include "status.h"

static kiln_status tenant(const char *s, bool multi, char *out)
{
    return kiln_tenant_parse(s, s ? strlen(s) : 0, multi, out, 1300, NULL);
}

TEST(tenant_default_and_valid)
{
    char out[1300];
    CHECK_OK(tenant(NULL, false, out));
    CHECK_STR(out, "anonymous");
    CHECK_OK(tenant("team-a_1.x(y)*'!", false, out));
    CHECK_STR(out, "team-a_1.x(y)*'!");
    CHECK_OK(tenant("a|b", true, out));
    CHECK_STR(out, "a|b");
}

TEST(tenant_rejects)
{
    char out[1300], long_id[200];
    memset(long_id, 'a', 151);
    long_id[151] = '\0';
    const char *bad[] = {"..", ".", "a/b", "a b", "x\xc3\xa9", long_id};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(tenant(bad[i], false, out), KILN_INVALID_ARGUMENT);
    CHECK_EQ(tenant("a|b", false, out), KILN_INVALID_ARGUMENT);
    CHECK_EQ(tenant("a||b", true, out), KILN_INVALID_ARGUMENT);
}

TEST(status_mapping)
{
    CHECK_EQ(kiln_status_http(KILN_INVALID_ARGUMENT), 400);
    CHECK_EQ(kiln_status_http(KILN_RESOURCE_EXHAUSTED), 429);
    CHECK_EQ(kiln_status_http(KILN_UNIMPLEMENTED), 501);
    CHECK_EQ(kiln_status_http(KILN_UNAVAILABLE), 503);
    CHECK_STR(kiln_status_str(KILN_CANCELLED), "canceled");
    CHECK_EQ(kiln_status_from_str("not_found", 9), KILN_NOT_FOUND);
}

static kiln_status dummy(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                         ProtobufCMessage **resp)
{
    (void)svc, (void)ctx, (void)req, (void)resp;
    return KILN_OK;
}

TEST(registry)
{
    kiln_rpc_registry_t *r = kiln_rpc_registry_create();
    kiln_rpc_method m = {"/a.B/C", NULL, NULL, dummy, NULL, KILN_RPC_PUBLIC, NULL};
    kiln_rpc_register(r, &m);
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, "/a.B/C", 6) != NULL);
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, "/a.B/D", 6) == NULL);
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, "/a.B/", 5) == NULL);
    kiln_rpc_registry_destroy(r);
}

/* A method is served on its plane only; the other plane finds an entry
 * that answers unimplemented, never the handler. */
TEST(registry_planes)
{
    kiln_rpc_registry_t *r = kiln_rpc_registry_create();
    const ProtobufCMessageDescriptor *d = (const ProtobufCMessageDescriptor *)1; /* unread */
    kiln_rpc_method pub = {"/push.v1.PusherService/Push", d, d, dummy, NULL, KILN_RPC_PUBLIC, NULL};
    kiln_rpc_method in = {
        "/ingester.v1.IngesterService/Push", d, d, dummy, NULL, KILN_RPC_INTERNAL, NULL};
    kiln_rpc_register(r, &pub);
    kiln_rpc_register(r, &in);
    const char *ip = in.path, *pp = pub.path;
    const kiln_rpc_method *m = kiln_rpc_find(r, KILN_RPC_INTERNAL, ip, strlen(ip));
    CHECK(m != NULL && m->fn == dummy);
    m = kiln_rpc_find(r, KILN_RPC_PUBLIC, pp, strlen(pp));
    CHECK(m != NULL && m->fn == dummy);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {"t", a, &err, false, NULL};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    m = kiln_rpc_find(r, KILN_RPC_PUBLIC, ip, strlen(ip));
    CHECK(m != NULL && m->fn == NULL && m->req == NULL);
    CHECK_EQ(kiln_rpc_invoke(m, &ctx, NULL, 0, KILN_CODEC_PROTO, &out), KILN_UNIMPLEMENTED);
    CHECK(strstr(err.msg, "cluster plane") != NULL);
    m = kiln_rpc_find(r, KILN_RPC_INTERNAL, pp, strlen(pp));
    CHECK(m != NULL && m->fn == NULL);
    CHECK_EQ(kiln_rpc_invoke(m, &ctx, NULL, 0, KILN_CODEC_PROTO, &out), KILN_UNIMPLEMENTED);
    /* Re-registering a path moves it to the new entry's plane. */
    in.plane = KILN_RPC_PUBLIC;
    kiln_rpc_register(r, &in);
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, ip, strlen(ip))->fn == dummy);
    CHECK(kiln_rpc_find(r, KILN_RPC_INTERNAL, ip, strlen(ip))->fn == NULL);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    kiln_rpc_registry_destroy(r);
}

#define PB(x) opentelemetry__proto__collector__profiles__v1development__##x

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse
    o_resp;

static int n_unpacked; /* calls of unpack_hook */

/* A method's own decoder: an empty message for no bytes or one NUL byte
 * (which it says is in a string), else "malformed". */
static ProtobufCMessage *unpack_hook(kiln_arena_t *a, const uint8_t *data, size_t len, bool *nul)
{
    n_unpacked++;
    *nul = len == 1 && data[0] == 0;
    o_resp *m = len == 0 || *nul ? kiln_arena_alloc(a, sizeof(*m)) : NULL;
    if (m == NULL)
        return NULL;
    PB(export_profiles_service_response__init)(m);
    return &m->base;
}

static kiln_status echo(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                        ProtobufCMessage **resp)
{
    (void)svc, (void)ctx;
    *resp = (ProtobufCMessage *)req;
    return KILN_OK;
}

/* A method with an unpack hook decodes protobuf bodies with it, and what
 * it refuses, or says holds a NUL in a string, is INVALID_ARGUMENT as
 * protobuf-c's refusals are. */
TEST(method_unpack_hook)
{
    const ProtobufCMessageDescriptor *d = &PB(export_profiles_service_response__descriptor);
    kiln_rpc_method m = {"/a.B/C", d, d, echo, NULL, KILN_RPC_PUBLIC, unpack_hook};
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {"t", a, &err, false, NULL};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    CHECK_OK(kiln_rpc_invoke(&m, &ctx, NULL, 0, KILN_CODEC_PROTO, &out));
    CHECK_EQ(n_unpacked, 1);
    CHECK_EQ(kiln_rpc_invoke(&m, &ctx, (const uint8_t *)"\x08\x01", 2, KILN_CODEC_PROTO, &out),
             KILN_INVALID_ARGUMENT);
    CHECK_EQ(n_unpacked, 2);
    CHECK(strstr(err.msg, "malformed") != NULL);
    CHECK_EQ(kiln_rpc_invoke(&m, &ctx, (const uint8_t *)"", 1, KILN_CODEC_PROTO, &out),
             KILN_INVALID_ARGUMENT);
    CHECK_EQ(n_unpacked, 3);
    CHECK(strcmp(err.msg, "failed to decode opentelemetry.proto.collector.profiles.v1development."
                          "ExportProfilesServiceResponse: a string field holds a NUL byte") == 0);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(tenant_default_and_valid);
    RUN(tenant_rejects);
    RUN(status_mapping);
    RUN(registry);
    RUN(registry_planes);
    RUN(method_unpack_hook);
    return check_done();
}
