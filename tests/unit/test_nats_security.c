/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: NATS credential and TLS flags (nats_security.h): the
 * combinations refused, when TLS is on, the options nats.c takes, how a
 * refused first connection is told from an absent server, and URLs shown
 * without their passwords. The refusals by a real nats-server are the peer
 * test's (tests/peer/natssec). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nats_security.h"

static char dir[] = "/tmp/kiln-nats-sec-XXXXXX";
static char creds[128];

TEST(combinations_name_the_flags)
{
    kiln_err err = {0};
    kiln_nats_security none = {0};
    CHECK_OK(kiln_nats_security_check(&none, &err));
    kiln_nats_security pw_only = {.password = "p"};
    CHECK_EQ(kiln_nats_security_check(&pw_only, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-cluster.nats-password is set without -cluster.nats-user") != NULL);
    CHECK(strstr(err.msg, "\"p\"") == NULL);
    kiln_nats_security user_only = {.user = "u"};
    CHECK_EQ(kiln_nats_security_check(&user_only, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "without -cluster.nats-password") != NULL);
    kiln_nats_security both = {.user = "u", .password = "p", .token = "t"};
    CHECK_EQ(kiln_nats_security_check(&both, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-cluster.nats-token are set") != NULL);
    kiln_nats_security three = {.creds_file = creds, .user = "u", .password = "p", .token = "t"};
    CHECK_EQ(kiln_nats_security_check(&three, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-cluster.nats-creds-file and ") != NULL);
    kiln_nats_security cert_only = {.tls = {.cert_path = creds}};
    CHECK_EQ(kiln_nats_security_check(&cert_only, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "the key is missing") != NULL);
    kiln_nats_security key_only = {.tls = {.key_path = creds}};
    CHECK_EQ(kiln_nats_security_check(&key_only, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "the certificate is missing") != NULL);
}

TEST(files_must_be_readable)
{
    kiln_err err = {0};
    kiln_nats_security ok = {.creds_file = creds};
    CHECK_OK(kiln_nats_security_check(&ok, &err));
    kiln_nats_security gone = {.creds_file = "/nonexistent/kiln.creds"};
    CHECK_EQ(kiln_nats_security_check(&gone, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "cannot read -cluster.nats-creds-file /nonexistent/kiln.creds") != NULL);
    kiln_nats_security ca = {.tls = {.ca_path = "/nonexistent/ca.pem"}};
    CHECK_EQ(kiln_nats_security_check(&ca, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-cluster.nats-tls-ca-path") != NULL);
}

TEST(tls_is_on_for_a_file_or_a_tls_url)
{
    char *plain[] = {"nats://a:4222", "nats://b:4222"};
    char *mixed[] = {"nats://a:4222", "TLS://b:4222"};
    kiln_nats_security none = {0}, ca = {.tls = {.ca_path = "ca.pem"}};
    CHECK(!kiln_nats_security_wants_tls(&none, plain, 2));
    CHECK(kiln_nats_security_wants_tls(&none, mixed, 2));
    CHECK(kiln_nats_security_wants_tls(&ca, plain, 2));
}

TEST(apply_reports_the_file_nats_refuses)
{
    natsOptions *o = NULL;
    CHECK(natsOptions_Create(&o) == NATS_OK);
    kiln_err err = {0};
    kiln_nats_security token = {.token = "t"};
    CHECK_OK(kiln_nats_security_apply(&token, false, o, &err));
    /* A creds file that holds no PEM: nats.c refuses it as CA roots. */
    kiln_nats_security bad_ca = {.tls = {.ca_path = creds}};
    CHECK_EQ(kiln_nats_security_apply(&bad_ca, true, o, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "-cluster.nats-tls-ca-path") != NULL);
    CHECK(strstr(err.msg, "(opts.c:") == NULL); /* nats.c's source position stripped */
    natsOptions_Destroy(o);
}

TEST(refusals_are_told_from_absence)
{
    kiln_err err = {0};
    kiln_nats_security user = {.user = "kiln", .password = "s3cret"};
    CHECK_OK(kiln_nats_security_judge(&user, false, NATS_NO_SERVER, "no server", "u", &err));
    CHECK_OK(kiln_nats_security_judge(&user, false, NATS_TIMEOUT, "timeout", "u", &err));
    CHECK_OK(kiln_nats_security_judge(&user, false, NATS_PROTOCOL_ERROR, "x", "u", &err));
    CHECK_OK(kiln_nats_security_judge(&user, true, NATS_IO_ERROR, "recv error: 104", "u", &err));
    CHECK_EQ(kiln_nats_security_judge(&user, false, NATS_CONNECTION_AUTH_FAILED,
                                      "Authorization Violation", "nats://h:4222", &err),
             KILN_UNAUTHENTICATED);
    CHECK(strstr(err.msg, "refused the authentication (-cluster.nats-user kiln") != NULL);
    CHECK(strstr(err.msg, "s3cret") == NULL);
    CHECK_EQ(kiln_nats_security_judge(&user, true, NATS_SSL_ERROR, "verify failed", "u", &err),
             KILN_UNAUTHENTICATED);
    CHECK(strstr(err.msg, "the system's roots") != NULL);
    CHECK_EQ(kiln_nats_security_judge(&user, true, NATS_PROTOCOL_ERROR, "got ''", "u", &err),
             KILN_UNAUTHENTICATED);
    CHECK(strstr(err.msg, "requires a client certificate") != NULL);
    kiln_nats_security cert = {.tls = {.cert_path = "c.pem", .key_path = "k.pem"}};
    CHECK_EQ(kiln_nats_security_judge(&cert, true, NATS_IO_ERROR, "SSL_write error", "u", &err),
             KILN_UNAUTHENTICATED);
    CHECK(strstr(err.msg, "refused the client certificate -cluster.nats-tls-cert-path c.pem") !=
          NULL);
    CHECK_EQ(kiln_nats_security_judge(&cert, true, NATS_SECURE_CONNECTION_WANTED, "x", "u", &err),
             KILN_FAILED_PRECONDITION);
    CHECK(strstr(err.msg, "does not offer TLS") != NULL);
}

TEST(urls_are_shown_without_passwords)
{
    char out[256];
    kiln_nats_redact_urls("nats://kiln:s3cret@a:4222, tls://tok@b:4222,nats://c:4222", out,
                          sizeof(out));
    CHECK_STR(out, "nats://********@a:4222, tls://********@b:4222,nats://c:4222");
    kiln_nats_redact_urls("", out, sizeof(out));
    CHECK_STR(out, "");
    kiln_nats_redact_urls("nats://u:p@host:4222", out, 12);
    CHECK_STR(out, "nats://****"); /* truncated to cap, NUL included */
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(creds, sizeof(creds), "%s/kiln.creds", dir);
    FILE *f = fopen(creds, "w");
    fputs("not a creds file\n", f);
    fclose(f);
    RUN(combinations_name_the_flags);
    RUN(files_must_be_readable);
    RUN(tls_is_on_for_a_file_or_a_tls_url);
    RUN(apply_reports_the_file_nats_refuses);
    RUN(refusals_are_told_from_absence);
    RUN(urls_are_shown_without_passwords);
    remove(creds);
    rmdir(dir);
    nats_Close();
    return check_done();
}
