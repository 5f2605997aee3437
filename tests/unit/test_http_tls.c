/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the HTTPS port's credentials (http_tls.h): loading, refusing
 * bad files, rebuilding on rotation, and the holds that keep a rotated-out
 * credentials object alive for the sessions using it (ASan checks the
 * frees). Certificates are made with GnuTLS itself. */
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http_tls.h"

static char dir[64];

static void path_of(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Writes d to name by rename, as cert-manager's volume swaps files. */
static void write_datum(const char *name, const gnutls_datum_t *d)
{
    char path[128], tmp[140];
    path_of(name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    fwrite(d->data, 1, d->size, f);
    fclose(f);
    rename(tmp, path);
}

/* A self-signed P-256 certificate (cert_name) and its key (key_name). */
static void make_cert(const char *cert_name, const char *key_name)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_datum_t d;
    unsigned char serial[8];
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    serial[0] &= 0x7f;
    gnutls_x509_privkey_init(&key);
    CHECK_OK(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
    gnutls_x509_crt_init(&crt);
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    gnutls_x509_crt_set_activation_time(crt, time(NULL) - 3600);
    gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400);
    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9);
    gnutls_x509_crt_set_key(crt, key);
    CHECK_OK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
    CHECK_OK(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d));
    write_datum(cert_name, &d);
    gnutls_free(d.data);
    CHECK_OK(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d));
    write_datum(key_name, &d);
    gnutls_free(d.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
}

TEST(bad_files_are_refused)
{
    char a[128], ka[128], b[128], kb[128];
    make_cert("a.pem", "a-key.pem");
    make_cert("b.pem", "b-key.pem");
    path_of("a.pem", a, sizeof(a));
    path_of("a-key.pem", ka, sizeof(ka));
    path_of("b.pem", b, sizeof(b));
    path_of("b-key.pem", kb, sizeof(kb));
    kiln_http_tls_t *t = NULL;
    kiln_err err = {0};
    kiln_tls_config c = {.cert_path = "/nonexistent/a.pem", .key_path = ka};
    CHECK_EQ(kiln_http_tls_create(&c, &t, &err), KILN_NOT_FOUND);
    CHECK(strstr(err.msg, "/nonexistent/a.pem") != NULL);
    c = (kiln_tls_config){.cert_path = a, .key_path = kb};
    CHECK_EQ(kiln_http_tls_create(&c, &t, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, kb) != NULL);
    c = (kiln_tls_config){.cert_path = a, .key_path = ka, .ca_path = ka}; /* a key is no CA */
    CHECK_EQ(kiln_http_tls_create(&c, &t, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "CA") != NULL);
    CHECK(t == NULL);
    c = (kiln_tls_config){.cert_path = a,
                          .key_path = ka,
                          .ca_path = b,
                          .client_auth = KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT};
    CHECK_EQ(kiln_http_tls_create(&c, &t, &err), KILN_OK);
    kiln_http_tls_destroy(t);
}

static gnutls_session_t server_session(void)
{
    gnutls_session_t s;
    CHECK_OK(gnutls_init(&s, GNUTLS_SERVER));
    return s;
}

TEST(rotation_keeps_holds)
{
    char cert[128], key[128];
    make_cert("r.pem", "r-key.pem");
    path_of("r.pem", cert, sizeof(cert));
    path_of("r-key.pem", key, sizeof(key));
    kiln_http_tls_t *t = NULL;
    kiln_err err = {0};
    kiln_tls_config c = {.cert_path = cert, .key_path = key};
    CHECK_EQ(kiln_http_tls_create(&c, &t, &err), KILN_OK);
    gnutls_session_t s1 = server_session(), s2 = server_session(), s3 = server_session();
    kiln_http_tls_creds *h1 = kiln_http_tls_attach(t, s1);
    kiln_http_tls_creds *h2 = kiln_http_tls_attach(t, s2);
    CHECK(h1 == h2); /* no change: the same credentials */
    /* Half a rotation (the new key, the old certificate): they do not
     * match, so the old credentials stay. */
    make_cert("next.pem", "r-key.pem");
    kiln_http_tls_creds *h3 = kiln_http_tls_attach(t, s3);
    CHECK(h3 == h1);
    kiln_http_tls_detach(h3);
    gnutls_deinit(s3);
    /* The certificate lands: the next session gets new credentials. */
    char next[128];
    path_of("next.pem", next, sizeof(next));
    CHECK_EQ(rename(next, cert), 0);
    s3 = server_session();
    h3 = kiln_http_tls_attach(t, s3);
    CHECK(h3 != h1);
    /* The module goes first; the sessions' holds keep both objects alive
     * until their sessions end (ASan reports a use after free or a leak). */
    kiln_http_tls_destroy(t);
    gnutls_deinit(s1);
    kiln_http_tls_detach(h1);
    gnutls_deinit(s3);
    kiln_http_tls_detach(h3);
    gnutls_deinit(s2);
    kiln_http_tls_detach(h2);
    kiln_http_tls_detach(NULL);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-http-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    RUN(bad_files_are_refused);
    RUN(rotation_keeps_holds);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
