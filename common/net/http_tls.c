/* SPDX-License-Identifier: Apache-2.0
 * http_tls: counted GnuTLS credentials for the HTTPS port, rebuilt on a
 * rotation of their files. */
#include "http_tls.h"

#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

/* A credentials object and the holds on it. GnuTLS keeps a pointer to it in
 * every session given it (gnutls_credentials_set copies nothing) and reads
 * the certificate and key from it during that session's handshakes, so it
 * must outlive them: the module's hold (while it is current) and one per
 * session keep it alive; the last release frees it. Once built it is never
 * changed, which is what lets GnuTLS share it among threads. */
struct kiln_http_tls_creds {
    atomic_int refs;
    gnutls_certificate_credentials_t cred;
};

struct kiln_http_tls {
    kiln_tls_config cfg; /* owned copies of the paths */
    /* mu guards cur and tried: sessions start on every libmicrohttpd worker. */
    pthread_mutex_t mu;
    kiln_http_tls_creds *cur;
    /* The files as last read, loaded or not: a failed reload is not
     * retried (nor logged again) until they change once more. */
    kiln_tls_stamp tried;
};

static bool verifies(kiln_tls_client_auth v)
{
    return v == KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN ||
           v == KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT;
}

/* What the server asks of the client, as Go's crypto/tls policies do. */
static gnutls_certificate_request_t request_of(kiln_tls_client_auth v)
{
    switch (v) {
    case KILN_TLS_REQUEST_CLIENT_CERT:
    case KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN:
        return GNUTLS_CERT_REQUEST;
    case KILN_TLS_REQUIRE_ANY_CLIENT_CERT:
    case KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
        return GNUTLS_CERT_REQUIRE; /* GnuTLS fails the handshake without one */
    default:
        return GNUTLS_CERT_IGNORE;
    }
}

/* Runs in the handshake of a policy that verifies (set on its credentials
 * only): a certificate the client gave must chain to the CA, be valid now
 * and be fit for client authentication; non-zero fails the handshake with
 * an alert. A client that gave none passes here: REQUIRE has GnuTLS refuse
 * it before this is reached, REQUEST (VerifyClientCertIfGiven) admits it. */
static int verify_client(gnutls_session_t session)
{
    unsigned n = 0;
    if (gnutls_certificate_get_peers(session, &n) == NULL || n == 0)
        return 0;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers(session, &purpose, 1, &status);
    if (rc == 0 && status == 0)
        return 0;
    gnutls_datum_t why = {NULL, 0};
    if (rc == 0 &&
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0) {
        KILN_LOG_DEBUG("http", "TLS client certificate refused: %s", why.data);
        gnutls_free(why.data);
    }
    return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
}

static gnutls_datum_t datum(char *s)
{
    return (gnutls_datum_t){(unsigned char *)s, (unsigned)strlen(s)};
}

/* Puts the loaded files into cred. */
static kiln_status fill(const kiln_tls_config *c, kiln_tls_pem *pem,
                        gnutls_certificate_credentials_t cred, kiln_err *err)
{
    if (pem->cert == NULL || pem->key == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "TLS needs a certificate and its key");
    gnutls_datum_t cert = datum(pem->cert), key = datum(pem->key);
    int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "TLS certificate %s with key %s: %s",
                            c->cert_path, c->key_path, gnutls_strerror(rc));
    if (pem->ca != NULL) {
        gnutls_datum_t ca = datum(pem->ca);
        rc = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "TLS CA %s: %s", c->ca_path,
                                rc < 0 ? gnutls_strerror(rc) : "no certificate");
    }
    if (verifies(c->client_auth))
        gnutls_certificate_set_verify_function(cred, verify_client);
    return KILN_OK;
}

/* Reads the files (stamping them into *stamp) and builds credentials. */
static kiln_status build(const kiln_tls_config *c, kiln_tls_stamp *stamp, kiln_http_tls_creds **out,
                         kiln_err *err)
{
    kiln_tls_pem pem;
    kiln_status st = kiln_tls_pem_load(c, &pem, stamp, err);
    if (st != KILN_OK)
        return st;
    gnutls_certificate_credentials_t cred = NULL;
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc < 0)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "TLS credentials: %s", gnutls_strerror(rc));
    else
        st = fill(c, &pem, cred, err);
    kiln_tls_pem_fini(&pem); /* GnuTLS made its own copies */
    if (st != KILN_OK) {
        if (cred != NULL)
            gnutls_certificate_free_credentials(cred);
        return st;
    }
    kiln_http_tls_creds *h = kiln_xcalloc(1, sizeof(*h));
    atomic_init(&h->refs, 1);
    h->cred = cred;
    *out = h;
    return KILN_OK;
}

static char *dup_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? kiln_xstrdup(s) : NULL;
}

kiln_status kiln_http_tls_create(const kiln_tls_config *c, kiln_http_tls_t **out, kiln_err *err)
{
    kiln_http_tls_t *t = kiln_xcalloc(1, sizeof(*t));
    t->cfg = (kiln_tls_config){dup_or_null(c->cert_path), dup_or_null(c->key_path),
                               dup_or_null(c->ca_path), c->client_auth};
    pthread_mutex_init(&t->mu, NULL);
    kiln_status st = build(&t->cfg, &t->tried, &t->cur, err);
    if (st != KILN_OK) {
        kiln_http_tls_destroy(t);
        return st;
    }
    *out = t;
    return KILN_OK;
}

/* Rebuilds the credentials from the changed files; on failure the current
 * ones stay (a rotation caught half-written, key before certificate, is
 * retried when the second file lands, since that changes the stamp). */
static void reload(kiln_http_tls_t *t)
{
    kiln_http_tls_creds *h = NULL;
    kiln_err err = {KILN_OK, ""};
    if (build(&t->cfg, &t->tried, &h, &err) != KILN_OK) {
        KILN_LOG_WARN("http",
                      "TLS reload failed, serving the previous certificate until the files "
                      "change again: %s",
                      err.msg);
        return;
    }
    kiln_http_tls_detach(t->cur); /* sessions that hold it keep it alive */
    t->cur = h;
    KILN_LOG_INFO("http", "TLS certificate reloaded from %s", t->cfg.cert_path);
}

kiln_http_tls_creds *kiln_http_tls_attach(kiln_http_tls_t *t, gnutls_session_t session)
{
    /* Three stat calls per new connection: small beside its handshake, and
     * a rotation is seen by the next connection. */
    pthread_mutex_lock(&t->mu);
    if (kiln_tls_changed(&t->cfg, &t->tried))
        reload(t);
    kiln_http_tls_creds *h = t->cur;
    atomic_fetch_add(&h->refs, 1);
    pthread_mutex_unlock(&t->mu);
    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, h->cred);
    gnutls_certificate_server_set_request(session, request_of(t->cfg.client_auth));
    return h;
}

void kiln_http_tls_detach(kiln_http_tls_creds *h)
{
    if (h == NULL || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    gnutls_certificate_free_credentials(h->cred);
    free(h);
}

void kiln_http_tls_destroy(kiln_http_tls_t *t)
{
    if (t == NULL)
        return;
    kiln_http_tls_detach(t->cur);
    pthread_mutex_destroy(&t->mu);
    free((char *)t->cfg.cert_path);
    free((char *)t->cfg.key_path);
    free((char *)t->cfg.ca_path);
    free(t);
}
