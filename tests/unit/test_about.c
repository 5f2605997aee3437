/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for what status.v1 serves and the 501 rule: the config YAML
 * (masked secrets, read back by -config.file) and the unimplemented
 * registry entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "rpc.h"
#include "unimplemented.h"

static char *url, *token, *path, *cf;
static int port;
static int64_t timeout;
static bool flag;

static const kiln_cfg_opt opts[] = {
    {"server.http-listen-port", KILN_CFG_INT, &port, "4040", ""},
    {"cluster.nats-url", KILN_CFG_STRING, &url, "", ""},
    {"storage.s3.secret-access-key", KILN_CFG_STRING, &token, "", ""},
    {"storage.path", KILN_CFG_STRING, &path, "./data", ""},
    {"querier.timeout", KILN_CFG_DURATION, &timeout, "2m", ""},
    {"ingester.flush-on-shutdown", KILN_CFG_BOOL, &flag, "true", ""},
    {"config.file", KILN_CFG_STRING, &cf, "", ""},
};
#define N (sizeof(opts) / sizeof(opts[0]))

TEST(yaml_masks_and_reads_back)
{
    char *argv[] = {"kiln", "-cluster.nats-url=nats://user:pw@h1:4222,nats://h2:4222",
                    "-storage.s3.secret-access-key=hunter2", "-querier.timeout=90s",
                    "-server.http-listen-port=5050"};
    kiln_err err = {0};
    CHECK_OK(kiln_cfg_parse(opts, N, 5, argv, &err));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK(kiln_cfg_write_yaml(opts, N, false, &b));
    kiln_buf_putc(&b, '\0');
    printf("%s", b.ptr);
    CHECK(strstr(b.ptr, "hunter2") == NULL);
    CHECK(strstr(b.ptr, "pw@") == NULL);
    CHECK(strstr(b.ptr, "\"nats://********@h1:4222,nats://h2:4222\"") != NULL);
    CHECK(strstr(b.ptr, "server:\n  http_listen_port: 5050\n") != NULL);
    CHECK(strstr(b.ptr, "storage:\n  path: \"./data\"\n  s3:\n    secret_access_key:") != NULL);
    /* Read back as a config file (masked values aside), the same settings. */
    char file[] = "/tmp/kiln-about-XXXXXX";
    int fd = mkstemp(file);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(b.ptr, f);
    fclose(f);
    kiln_cfg_free(opts, N);
    char arg[64];
    snprintf(arg, sizeof(arg), "-config.file=%s", file);
    char *argv2[] = {"kiln", arg};
    CHECK_OK(kiln_cfg_parse(opts, N, 2, argv2, &err));
    printf("# %s\n", err.msg);
    CHECK_EQ(port, 5050);
    CHECK_EQ(timeout, 90000000000);
    CHECK_STR(path, "./data");
    kiln_cfg_free(opts, N);
    remove(file);
    kiln_buf_free(&b);
    kiln_buf_init(&b, 0);
    CHECK(kiln_cfg_write_yaml(opts, N, true, &b)); /* defaults */
    kiln_buf_putc(&b, '\0');
    CHECK(strstr(b.ptr, "http_listen_port: 4040") != NULL);
    CHECK(strstr(b.ptr, "timeout: 2m") != NULL);
    kiln_buf_free(&b);
}

static kiln_status served(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                          ProtobufCMessage **resp)
{
    (void)svc, (void)ctx, (void)req, (void)resp;
    return KILN_OK;
}

TEST(unimplemented_entries)
{
    kiln_rpc_registry_t *r = kiln_rpc_registry_create();
    kiln_rpc_method m = {
        "/settings.v1.SettingsService/Get", NULL, NULL, served, NULL, KILN_RPC_PUBLIC, NULL};
    m.req = m.resp = (const ProtobufCMessageDescriptor *)1; /* only compared */
    kiln_rpc_register(r, &m);
    size_t n = 0;
    while (kiln_api_methods[n] != NULL)
        n++;
    CHECK_EQ(kiln_unimplemented_register(r), n - 1);
    const char *p = "/settings.v1.SettingsService/Get";
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, p, strlen(p))->fn == served); /* kept */
    p = "/vcs.v1.VCSService/GetFile";
    const kiln_rpc_method *u = kiln_rpc_find(r, KILN_RPC_PUBLIC, p, strlen(p));
    CHECK(u != NULL && u->fn == NULL);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    kiln_rpc_ctx ctx = {"t", a, &err, false, NULL};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    CHECK_EQ(kiln_rpc_invoke(u, &ctx, (const uint8_t *)"{}", 2, KILN_CODEC_JSON, &out),
             KILN_UNIMPLEMENTED);
    CHECK(strstr(err.msg, "VCSService/GetFile") != NULL);
    p = "/vcs.v1.VCSService/NoSuchMethod";
    CHECK(kiln_rpc_find(r, KILN_RPC_PUBLIC, p, strlen(p)) ==
          NULL); /* not an API method: 404 stays */
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    kiln_rpc_registry_destroy(r);
}

int main(void)
{
    RUN(yaml_masks_and_reads_back);
    RUN(unimplemented_entries);
    return check_done();
}
