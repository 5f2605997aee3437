/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the tokens file, credentials (Bearer, Basic), the
 * tenant-binding rules, multitenancy, reload on change, failure counts. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"

static char path[64];

static void write_tokens(const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* a new inode, as a Secret update makes */
}

/* A tokens file: "tok-ab" reads and writes a and secret-b; "tok-a-w" writes
 * a; "tok-r" reads a. */
static void write_default(void)
{
    char h1[65], h2[65], h3[65], text[1024];
    kiln_auth_hash_hex("tok-ab", 6, h1);
    kiln_auth_hash_hex("tok-a-w", 7, h2);
    kiln_auth_hash_hex("tok-r", 5, h3);
    snprintf(text, sizeof(text),
             "tokens:\n"
             "  - sha256: %s\n    tenants: [a, secret-b]\n    scope: [read, write]\n"
             "  - sha256: %s\n    tenant: a\n    scope: write\n"
             "  - sha256: %s\n    tenant: a\n    scope: read\n",
             h1, h2, h3);
    write_tokens(text);
}

static kiln_status check(kiln_auth_t *a, const char *authz, const char *org, kiln_auth_scope sc,
                         char *tenant, kiln_err *err)
{
    return kiln_auth_check(a, authz, authz ? strlen(authz) : 0, org, org ? strlen(org) : 0, sc,
                           "10.0.0.9", tenant, 256, err);
}

static kiln_auth_t *open_default(void)
{
    kiln_auth_t *a = NULL;
    kiln_err err = {KILN_OK, ""};
    write_default();
    kiln_auth_config cfg = {path, false};
    CHECK_OK(kiln_auth_create(&cfg, &a, &err));
    CHECK(a != NULL);
    return a;
}

TEST(hash_is_sha256)
{
    char hex[65];
    kiln_auth_hash_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(off_by_default)
{
    kiln_auth_t *a = (kiln_auth_t *)1;
    kiln_err err = {KILN_OK, ""};
    kiln_auth_config cfg = {"", false};
    CHECK_OK(kiln_auth_create(&cfg, &a, &err));
    CHECK(a == NULL);
    char t[256];
    CHECK_OK(check(NULL, NULL, NULL, KILN_AUTH_WRITE, t, &err));
    CHECK_STR(t, "");
}

TEST(multitenancy_needs_a_tenant)
{
    kiln_auth_t *a = NULL;
    kiln_err err = {KILN_OK, ""};
    kiln_auth_config cfg = {NULL, true};
    CHECK_OK(kiln_auth_create(&cfg, &a, &err));
    char t[256];
    CHECK_EQ(check(a, NULL, NULL, KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    CHECK_OK(check(a, NULL, "x", KILN_AUTH_READ, t, &err));
    CHECK_STR(t, "x");
    CHECK_OK(check(a, NULL, NULL, KILN_AUTH_PUBLIC, t, &err));
    kiln_auth_destroy(a);
}

TEST(bearer_and_basic)
{
    kiln_auth_t *a = open_default();
    kiln_err err = {KILN_OK, ""};
    char t[256];
    CHECK_EQ(check(a, NULL, "a", KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    CHECK_EQ(check(a, "Bearer wrong", "a", KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    CHECK_EQ(check(a, "Basic !!!", "a", KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    CHECK_OK(check(a, "Bearer tok-ab", "a", KILN_AUTH_READ, t, &err));
    CHECK_STR(t, "a");
    /* base64("a:tok-r"): the user names the tenant */
    CHECK_OK(check(a, "Basic YTp0b2stcg==", NULL, KILN_AUTH_READ, t, &err));
    CHECK_STR(t, "a");
    /* base64("secret-b:tok-r"): a tenant the token does not have */
    CHECK_EQ(check(a, "Basic c2VjcmV0LWI6dG9rLXI=", NULL, KILN_AUTH_READ, t, &err),
             KILN_PERMISSION_DENIED);
    kiln_auth_destroy(a);
}

TEST(tenant_binding)
{
    kiln_auth_t *a = open_default();
    kiln_err err = {KILN_OK, ""};
    char t[256];
    CHECK_OK(check(a, "Bearer tok-ab", "a|secret-b", KILN_AUTH_READ, t, &err));
    CHECK_STR(t, "a|secret-b");
    CHECK_EQ(check(a, "Bearer tok-r", "a|secret-b", KILN_AUTH_READ, t, &err),
             KILN_PERMISSION_DENIED);
    CHECK(strstr(err.msg, "secret-b") != NULL); /* the request named it */
    CHECK_EQ(check(a, "Bearer tok-ab", "c", KILN_AUTH_READ, t, &err), KILN_PERMISSION_DENIED);
    CHECK(strstr(err.msg, "secret-b") == NULL); /* never a tenant the request did not name */
    CHECK(strstr(err.msg, "'a'") == NULL);
    /* A write with no header goes to the token's only tenant... */
    CHECK_OK(check(a, "Bearer tok-a-w", NULL, KILN_AUTH_WRITE, t, &err));
    CHECK_STR(t, "a");
    /* ...but not when it has several, nor for a read. */
    CHECK_EQ(check(a, "Bearer tok-ab", NULL, KILN_AUTH_WRITE, t, &err), KILN_PERMISSION_DENIED);
    CHECK(strstr(err.msg, "secret-b") == NULL);
    CHECK_EQ(check(a, "Bearer tok-r", NULL, KILN_AUTH_READ, t, &err), KILN_PERMISSION_DENIED);
    /* Scopes. */
    CHECK_EQ(check(a, "Bearer tok-a-w", "a", KILN_AUTH_READ, t, &err), KILN_PERMISSION_DENIED);
    CHECK_EQ(check(a, "Bearer tok-r", "a", KILN_AUTH_WRITE, t, &err), KILN_PERMISSION_DENIED);
    /* Public paths need nothing. */
    CHECK_OK(check(a, NULL, NULL, KILN_AUTH_PUBLIC, t, &err));
    kiln_auth_destroy(a);
}

TEST(bad_files_refused)
{
    kiln_auth_t *a = NULL;
    kiln_err err = {KILN_OK, ""};
    kiln_auth_config cfg = {path, false};
    const char *bad[] = {
        "tokens: [\n",                                                /* not YAML */
        "other: 1\n",                                                 /* no tokens list */
        "tokens:\n  - sha256: abc\n    tenant: a\n    scope: read\n", /* short hash */
        /* a bad scope; no tenant (parenthesised: one string each) */
        ("tokens:\n  - sha256: "
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n    tenant: a\n"
         "    scope: admin\n"),
        ("tokens:\n  - sha256: "
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n    scope: read\n"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_tokens(bad[i]);
        CHECK_EQ(kiln_auth_create(&cfg, &a, &err), KILN_INVALID_ARGUMENT);
        CHECK(a == NULL);
    }
    kiln_auth_config missing = {"/nonexistent/tokens.yaml", false};
    CHECK_EQ(kiln_auth_create(&missing, &a, &err), KILN_NOT_FOUND);
}

TEST(reload_on_change)
{
    kiln_auth_t *a = open_default();
    kiln_err err = {KILN_OK, ""};
    char t[256], h[65], text[256];
    CHECK_EQ(check(a, "Bearer fresh", "z", KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    kiln_auth_hash_hex("fresh", 5, h);
    snprintf(text, sizeof(text), "tokens:\n  - {sha256: %s, tenant: z, scope: read}\n", h);
    write_tokens(text);
    kiln_status st = KILN_UNAUTHENTICATED;
    /* The file is looked at at most once a second: poll for up to 5 s. */
    for (int i = 0; i < 50 && st != KILN_OK; i++) {
        usleep(100000);
        st = check(a, "Bearer fresh", "z", KILN_AUTH_READ, t, &err);
    }
    CHECK_OK(st);
    CHECK_EQ(check(a, "Bearer tok-ab", "a", KILN_AUTH_READ, t, &err), KILN_UNAUTHENTICATED);
    /* A broken file keeps the tokens in force. */
    write_tokens("tokens: [\n");
    for (int i = 0; i < 15; i++) {
        usleep(100000);
        CHECK_OK(check(a, "Bearer fresh", "z", KILN_AUTH_READ, t, &err));
    }
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_auth_render_metrics(a, &m);
    kiln_buf_putc(&m, '\0');
    /* One failure before the reload, more while the poll waited for it. */
    CHECK(strstr(m.ptr, "{source=\"10.0.0.9\",reason=\"invalid_token\"}") != NULL);
    CHECK(strstr(m.ptr, "kiln_auth_tokens_loaded 1") != NULL);
    kiln_buf_free(&m);
    kiln_auth_destroy(a);
}

TEST(path_scopes)
{
    CHECK_EQ(kiln_auth_path_scope("/ready"), KILN_AUTH_PUBLIC);
    CHECK_EQ(kiln_auth_path_scope("/metrics"), KILN_AUTH_PUBLIC);
    CHECK_EQ(kiln_auth_path_scope("/ring"), KILN_AUTH_PUBLIC);
    CHECK_EQ(kiln_auth_path_scope("/ingest"), KILN_AUTH_WRITE);
    CHECK_EQ(kiln_auth_path_scope("/push.v1.PusherService/Push"), KILN_AUTH_WRITE);
    CHECK_EQ(kiln_auth_path_scope("/v1development/profiles"), KILN_AUTH_WRITE);
    CHECK_EQ(kiln_auth_path_scope(
                 "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"),
             KILN_AUTH_WRITE);
    CHECK_EQ(kiln_auth_path_scope("/querier.v1.QuerierService/SelectMergeStacktraces"),
             KILN_AUTH_READ);
    CHECK_EQ(kiln_auth_path_scope("/pyroscope/render"), KILN_AUTH_READ);
    CHECK_EQ(kiln_auth_path_scope("/readyx"), KILN_AUTH_READ);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/kiln-test-auth-%d.yaml", (int)getpid());
    RUN(hash_is_sha256);
    RUN(off_by_default);
    RUN(multitenancy_needs_a_tenant);
    RUN(bearer_and_basic);
    RUN(tenant_binding);
    RUN(bad_files_refused);
    RUN(reload_on_change);
    RUN(path_scopes);
    unlink(path);
    return check_done();
}
