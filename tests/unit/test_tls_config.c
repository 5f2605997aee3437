/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: TLS flag values, PEM loading and rotation stamps (tls_config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tls_config.h"

static char dir[64];

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* as cert-manager's volume swaps files */
}

TEST(client_auth_names)
{
    kiln_tls_client_auth v = KILN_TLS_REQUEST_CLIENT_CERT;
    kiln_err err = {0};
    CHECK_EQ(kiln_tls_client_auth_parse("", &v, &err), KILN_OK);
    CHECK_EQ(v, KILN_TLS_NO_CLIENT_CERT);
    CHECK_EQ(kiln_tls_client_auth_parse("RequireAndVerifyClientCert", &v, &err), KILN_OK);
    CHECK_EQ(v, KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT);
    CHECK_STR(kiln_tls_client_auth_name(v), "RequireAndVerifyClientCert");
    CHECK_EQ(kiln_tls_client_auth_parse("require", &v, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "VerifyClientCertIfGiven") != NULL);
}

TEST(config_check_names_the_flags)
{
    kiln_err err = {0};
    kiln_tls_config c = {.cert_path = "c.pem"};
    CHECK_EQ(kiln_tls_config_check(&c, "server.http-tls", &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-server.http-tls-key-path") != NULL);
    c = (kiln_tls_config){.ca_path = "ca.pem"};
    CHECK_EQ(kiln_tls_config_check(&c, "server.http-tls", &err), KILN_INVALID_ARGUMENT);
    c = (kiln_tls_config){
        .cert_path = "c", .key_path = "k", .client_auth = KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT};
    CHECK_EQ(kiln_tls_config_check(&c, "server.grpc-tls", &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-server.grpc-tls-ca-path") != NULL);
    c.ca_path = "ca";
    CHECK_EQ(kiln_tls_config_check(&c, "server.grpc-tls", &err), KILN_OK);
    CHECK(!kiln_tls_enabled(&(kiln_tls_config){.cert_path = ""}));
    CHECK(kiln_tls_enabled(&c));
}

TEST(load_and_notice_rotation)
{
    char cert[128], key[128];
    write_file("cert.pem", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", cert,
               sizeof(cert));
    write_file("key.pem", "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", key,
               sizeof(key));
    kiln_tls_config c = {.cert_path = cert, .key_path = key};
    kiln_tls_pem pem;
    kiln_tls_stamp stamp;
    kiln_err err = {0};
    CHECK_EQ(kiln_tls_pem_load(&c, &pem, &stamp, &err), KILN_OK);
    CHECK(strstr(pem.cert, "BEGIN CERTIFICATE") != NULL);
    CHECK(pem.ca == NULL);
    CHECK(!kiln_tls_changed(&c, &stamp));
    write_file("cert.pem", "-----BEGIN CERTIFICATE-----\nBB==\n-----END CERTIFICATE-----\n", cert,
               sizeof(cert));
    CHECK(kiln_tls_changed(&c, &stamp));
    kiln_tls_pem_fini(&pem);
    CHECK(pem.key == NULL);
}

TEST(bad_files)
{
    char junk[128];
    write_file("junk.pem", "not a certificate\n", junk, sizeof(junk));
    kiln_tls_pem pem;
    kiln_err err = {0};
    kiln_tls_config c = {.cert_path = junk};
    CHECK_EQ(kiln_tls_pem_load(&c, &pem, NULL, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "no PEM block") != NULL);
    c.cert_path = "/nonexistent/cert.pem";
    CHECK_EQ(kiln_tls_pem_load(&c, &pem, NULL, &err), KILN_NOT_FOUND);
    CHECK(strstr(err.msg, "/nonexistent/cert.pem") != NULL);
    CHECK(pem.cert == NULL);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    RUN(client_auth_names);
    RUN(config_check_names_the_flags);
    RUN(load_and_notice_rotation);
    RUN(bad_files);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
