/* SPDX-License-Identifier: Apache-2.0
 * grpc_tls: the last good set of files (PEM, stamp, generation) under a
 * mutex, a config fetcher per server port and channel credentials per
 * generation. */
#include "grpc_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

/* How often a client looks at the files (a server looks at each handshake). */
#define CLIENT_CHECK_NS 1000000000LL

/* One server port's fetcher: the generation its connector has. */
typedef struct fetcher {
    struct kiln_grpc_tls *t;
    unsigned given; /* 0 = none yet */
    struct fetcher *next;
} fetcher;

struct kiln_grpc_tls {
    kiln_tls_config cfg; /* own copies of the paths */
    char prefix[64];
    pthread_mutex_t mu;
    kiln_tls_pem pem;                /* the last good set */
    kiln_tls_stamp stamp;            /* the files as last looked at (good or not) */
    unsigned gen;                    /* of pem: 1 from create */
    int64_t checked_ns;              /* when a client last looked */
    grpc_channel_credentials *creds; /* for gen; NULL until a channel needs it */
    unsigned creds_gen;
    fetcher *fetchers;
};

static char *dup_or_null(const char *s)
{
    return s != NULL && *s != '\0' ? kiln_xstrdup(s) : NULL;
}

static X509 *first_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

/* What OpenSSL makes of the set: NULL when it is usable, else why not. */
static const char *pem_problem(const kiln_tls_pem *p, const kiln_tls_config *c, const char **file)
{
    const char *why = NULL;
    X509 *leaf = NULL, *root = NULL;
    EVP_PKEY *key = NULL;
    if (p->cert != NULL && (leaf = first_cert(p->cert)) == NULL)
        why = "no certificate OpenSSL can parse", *file = c->cert_path;
    if (why == NULL && p->key != NULL) {
        BIO *b = BIO_new_mem_buf(p->key, -1);
        key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (key == NULL)
            why = "no private key OpenSSL can parse", *file = c->key_path;
        else if (leaf != NULL && X509_check_private_key(leaf, key) != 1)
            why = "the key does not match the certificate", *file = c->key_path;
    }
    if (why == NULL && p->ca != NULL && (root = first_cert(p->ca)) == NULL)
        why = "no CA certificate OpenSSL can parse", *file = c->ca_path;
    ERR_clear_error(); /* OpenSSL's queue is per thread: leave it empty */
    X509_free(leaf);
    X509_free(root);
    EVP_PKEY_free(key);
    return why;
}

/* Reads the files into *pem and checks them. */
static kiln_status load(const kiln_tls_config *c, kiln_tls_pem *pem, kiln_tls_stamp *stamp,
                        kiln_err *err)
{
    kiln_status st = kiln_tls_pem_load(c, pem, stamp, err);
    if (st != KILN_OK)
        return st;
    const char *file = "";
    const char *why = pem_problem(pem, c, &file);
    if (why == NULL)
        return KILN_OK;
    kiln_tls_pem_fini(pem);
    return kiln_err_set(err, KILN_INVALID_ARGUMENT, "%s: %s", file, why);
}

kiln_status kiln_grpc_tls_create(const kiln_tls_config *c, const char *prefix,
                                 kiln_grpc_tls_t **out, kiln_err *err)
{
    kiln_status st = kiln_tls_config_check(c, prefix, err);
    if (st != KILN_OK)
        return st;
    kiln_grpc_tls_t *t = kiln_xcalloc(1, sizeof(*t));
    t->cfg = (kiln_tls_config){dup_or_null(c->cert_path), dup_or_null(c->key_path),
                               dup_or_null(c->ca_path), c->client_auth};
    snprintf(t->prefix, sizeof(t->prefix), "%s", prefix);
    pthread_mutex_init(&t->mu, NULL);
    st = load(&t->cfg, &t->pem, &t->stamp, err);
    if (st != KILN_OK) {
        kiln_grpc_tls_destroy(t);
        return st;
    }
    t->gen = 1;
    t->checked_ns = kiln_mono_ns();
    *out = t;
    return KILN_OK;
}

void kiln_grpc_tls_destroy(kiln_grpc_tls_t *t)
{
    if (t == NULL)
        return;
    while (t->fetchers != NULL) {
        fetcher *f = t->fetchers;
        t->fetchers = f->next;
        free(f);
    }
    if (t->creds != NULL)
        grpc_channel_credentials_release(t->creds);
    kiln_tls_pem_fini(&t->pem);
    free((char *)t->cfg.cert_path);
    free((char *)t->cfg.key_path);
    free((char *)t->cfg.ca_path);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Re-reads the files when they changed since last looked at; a bad set is
 * logged (once per change) and the last good one kept. Call with t->mu. */
static void refresh_locked(kiln_grpc_tls_t *t)
{
    if (!kiln_tls_changed(&t->cfg, &t->stamp))
        return;
    kiln_tls_pem pem;
    kiln_err err = {KILN_OK, ""};
    if (load(&t->cfg, &pem, &t->stamp, &err) != KILN_OK) {
        KILN_LOG_ERROR("tls",
                       "-%s-*: the files changed but cannot be used, keeping the last "
                       "good ones: %s",
                       t->prefix, err.msg);
        return;
    }
    kiln_tls_pem_fini(&t->pem);
    t->pem = pem;
    t->gen++;
    KILN_LOG_INFO("tls", "-%s-*: certificate files reloaded (generation %u)", t->prefix, t->gen);
}

/* gRPC's config fetcher, at each handshake of one server port. */
static grpc_ssl_certificate_config_reload_status fetch(void *ud,
                                                       grpc_ssl_server_certificate_config **out)
{
    fetcher *f = ud;
    kiln_grpc_tls_t *t = f->t;
    pthread_mutex_lock(&t->mu);
    refresh_locked(t);
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    if (f->given != t->gen) {
        grpc_ssl_pem_key_cert_pair pair = {t->pem.key, t->pem.cert};
        /* gRPC (1.51) asserts that a fetched config has roots even when it
         * verifies no client: without a CA the server's own chain stands
         * in, which then verifies nothing (clients are not asked, or their
         * certificates are not verified). The strings are copied; gRPC
         * owns and destroys the config. */
        const char *roots = t->pem.ca != NULL ? t->pem.ca : t->pem.cert;
        *out = grpc_ssl_server_certificate_config_create(roots, &pair, 1);
        f->given = t->gen;
        st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

grpc_ssl_client_certificate_request_type kiln_grpc_tls_request_type(kiln_tls_client_auth a)
{
    switch (a) {
    case KILN_TLS_REQUEST_CLIENT_CERT:
        return GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY;
    case KILN_TLS_REQUIRE_ANY_CLIENT_CERT:
        return GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY;
    case KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN:
        return GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    case KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
        return GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    case KILN_TLS_NO_CLIENT_CERT:
        break;
    }
    return GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
}

grpc_server_credentials *kiln_grpc_tls_server_credentials(kiln_grpc_tls_t *t)
{
    fetcher *f = kiln_xcalloc(1, sizeof(*f));
    f->t = t;
    pthread_mutex_lock(&t->mu);
    f->next = t->fetchers; /* freed with t: gRPC gives no destructor for it */
    t->fetchers = f;
    pthread_mutex_unlock(&t->mu);
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            kiln_grpc_tls_request_type(t->cfg.client_auth), fetch, f);
    return grpc_ssl_server_credentials_create_with_options(o);
}

unsigned kiln_grpc_tls_generation(kiln_grpc_tls_t *t)
{
    pthread_mutex_lock(&t->mu);
    int64_t now = kiln_mono_ns();
    if (now - t->checked_ns >= CLIENT_CHECK_NS) {
        t->checked_ns = now;
        refresh_locked(t);
    }
    unsigned gen = t->gen;
    pthread_mutex_unlock(&t->mu);
    return gen;
}

grpc_channel *kiln_grpc_tls_channel_create(kiln_grpc_tls_t *t, const char *target,
                                           const grpc_channel_args *args, const char *server_name,
                                           unsigned *generation)
{
    size_t n = args != NULL ? args->num_args : 0;
    grpc_arg *all = kiln_xcalloc(n + 1, sizeof(*all));
    if (n > 0)
        memcpy(all, args->args, n * sizeof(*all));
    if (server_name != NULL && *server_name != '\0') {
        all[n].type = GRPC_ARG_STRING;
        all[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        all[n++].value.string = (char *)server_name;
    }
    grpc_channel_args ca = {n, all};
    pthread_mutex_lock(&t->mu);
    if (t->creds == NULL || t->creds_gen != t->gen) {
        if (t->creds != NULL)
            grpc_channel_credentials_release(t->creds); /* channels keep their own ref */
        grpc_ssl_pem_key_cert_pair pair = {t->pem.key, t->pem.cert};
        t->creds = grpc_ssl_credentials_create_ex(t->pem.ca, t->pem.cert != NULL ? &pair : NULL,
                                                  NULL, NULL);
        t->creds_gen = t->gen;
    }
    grpc_channel *ch = grpc_channel_create(target, t->creds, &ca);
    if (generation != NULL)
        *generation = t->creds_gen;
    pthread_mutex_unlock(&t->mu);
    free(all);
    return ch;
}
