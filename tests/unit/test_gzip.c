/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: gzip roundtrip, caps, corrupt input, config parsing. */
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "gzip.h"
#include "inflight.h"

TEST(roundtrip_and_cap)
{
    char data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 7);
    kiln_buf z;
    kiln_buf_init(&z, 0);
    CHECK(kiln_gzip(data, sizeof(data), 6, &z));
    CHECK(kiln_gzip_is((const uint8_t *)z.ptr, z.len));
    kiln_arena_t *a = kiln_arena_create(0);
    uint8_t *out;
    size_t len;
    CHECK_OK(kiln_gunzip(a, (const uint8_t *)z.ptr, z.len, 1 << 20, &out, &len, NULL));
    CHECK_EQ(len, sizeof(data));
    CHECK(memcmp(out, data, len) == 0);
    kiln_err err;
    CHECK_EQ(kiln_gunzip(a, (const uint8_t *)z.ptr, z.len, 1000, &out, &len, &err),
             KILN_OUT_OF_RANGE); /* too large: not retryable */
    CHECK(strstr(err.msg, "limit") != NULL);
    CHECK_EQ(kiln_gunzip(a, (const uint8_t *)z.ptr, z.len / 2, 1 << 20, &out, &len, &err),
             KILN_INVALID_ARGUMENT);
    const uint8_t *raw;
    CHECK_OK(kiln_gunzip_maybe(a, (const uint8_t *)"plain", 5, 100, &raw, &len, NULL));
    CHECK_EQ(len, 5);
    kiln_arena_destroy(a);
    kiln_buf_free(&z);
}

TEST(config_sources)
{
    int port = 0;
    size_t size = 0;
    bool flag = false;
    char *name = NULL, *file = NULL;
    const kiln_cfg_opt opts[] = {
        {"config.file", KILN_CFG_STRING, &file, "", "file"},
        {"server.http-listen-port", KILN_CFG_INT, &port, "4040", "port"},
        {"validation.max-profile-size-bytes", KILN_CFG_SIZE, &size, "4MiB", "size"},
        {"x.enabled", KILN_CFG_BOOL, &flag, "false", "flag"},
        {"target", KILN_CFG_STRING, &name, "all", "target"},
    };
    size_t n = sizeof(opts) / sizeof(opts[0]);
    char *argv1[] = {"kiln", NULL};
    CHECK_OK(kiln_cfg_parse(opts, n, 1, argv1, NULL));
    CHECK_EQ(port, 4040);
    CHECK_EQ(size, 4u << 20);
    CHECK_STR(name, "all");
    char *argv2[] = {"kiln",       "-server.http-listen-port=0",
                     "--target",   "ingester",
                     "-x.enabled", "-validation.max-profile-size-bytes=1KB",
                     NULL};
    CHECK_OK(kiln_cfg_parse(opts, n, 6, argv2, NULL));
    CHECK_EQ(port, 0);
    CHECK_STR(name, "ingester");
    CHECK(flag);
    CHECK_EQ(size, 1000);
    kiln_err err;
    char *argv3[] = {"kiln", "-nope=1", NULL};
    CHECK_EQ(kiln_cfg_parse(opts, n, 2, argv3, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "nope") != NULL);
    char *argv4[] = {"kiln", "-server.http-listen-port=abc", NULL};
    CHECK_EQ(kiln_cfg_parse(opts, n, 2, argv4, &err), KILN_INVALID_ARGUMENT);
    kiln_cfg_free(opts, n);
}

/* The in-flight budget (issue #10, item 8): decompression reserves before it
 * inflates, a busy budget is RESOURCE_EXHAUSTED (retryable), a request
 * larger than the whole budget is OUT_OF_RANGE, and the arena gives its
 * reservation back. */
TEST(inflight_budget)
{
    static char zeros[4 << 20];
    kiln_buf z;
    kiln_buf_init(&z, 0);
    CHECK(kiln_gzip(zeros, sizeof(zeros), 6, &z));
    kiln_inflight_t *b = kiln_inflight_create(6u << 20);
    kiln_arena_t *a1 = kiln_arena_create(0), *a2 = kiln_arena_create(0);
    uint8_t *out;
    size_t len;
    kiln_err err;
    CHECK_OK(kiln_gunzip_budget(a1, (const uint8_t *)z.ptr, z.len, 8u << 20, b, &out, &len, &err));
    CHECK_EQ(len, sizeof(zeros));
    CHECK(kiln_inflight_used(b) > sizeof(zeros));
    CHECK_EQ(kiln_gunzip_budget(a2, (const uint8_t *)z.ptr, z.len, 8u << 20, b, &out, &len, &err),
             KILN_RESOURCE_EXHAUSTED);
    CHECK(strstr(err.msg, "max-inflight-bytes") != NULL);
    kiln_arena_destroy(a1);
    CHECK_EQ(kiln_inflight_used(b), 0);
    CHECK_OK(kiln_gunzip_budget(a2, (const uint8_t *)z.ptr, z.len, 8u << 20, b, &out, &len, &err));
    kiln_arena_reset(a2);
    CHECK_EQ(kiln_inflight_used(b), 0);
    kiln_inflight_t *small = kiln_inflight_create(1u << 20);
    CHECK_EQ(
        kiln_gunzip_budget(a2, (const uint8_t *)z.ptr, z.len, 8u << 20, small, &out, &len, &err),
        KILN_OUT_OF_RANGE);
    CHECK_EQ(kiln_inflight_refused(small), 1);
    CHECK_EQ(kiln_inflight_used(small), 0);
    /* A lying ISIZE trailer cannot make a tiny body reserve much. */
    uint8_t lie[64];
    memcpy(lie, z.ptr, 30 < z.len ? 30 : z.len);
    CHECK(z.len >= 30);
    lie[26] = 0xff, lie[27] = 0xff, lie[28] = 0xff, lie[29] = 0x7f;
    CHECK(kiln_gunzip_budget(a2, lie, 30, 8u << 20, small, &out, &len, &err) != KILN_OUT_OF_RANGE);
    CHECK_EQ(kiln_inflight_used(small) < (1u << 20), 1);
    kiln_arena_destroy(a2);
    kiln_inflight_destroy(small);
    kiln_inflight_destroy(b);
    kiln_buf_free(&z);
}

int main(void)
{
    RUN(roundtrip_and_cap);
    RUN(inflight_budget);
    RUN(config_sources);
    return check_done();
}
