/* SPDX-License-Identifier: Apache-2.0
 * tls_config: flag values, file contents and stamps of a TLS endpoint. */
#include "tls_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xmalloc.h"

/* Certificates and keys are small; a larger file is not one. */
#define PEM_MAX_BYTES (1u << 20)

static const char *const auth_names[] = {
    [KILN_TLS_NO_CLIENT_CERT] = "NoClientCert",
    [KILN_TLS_REQUEST_CLIENT_CERT] = "RequestClientCert",
    [KILN_TLS_REQUIRE_ANY_CLIENT_CERT] = "RequireAnyClientCert",
    [KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN] = "VerifyClientCertIfGiven",
    [KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT] = "RequireAndVerifyClientCert",
};
#define N_AUTH (sizeof(auth_names) / sizeof(auth_names[0]))

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

kiln_status kiln_tls_client_auth_parse(const char *name, kiln_tls_client_auth *out, kiln_err *err)
{
    if (!is_set(name)) {
        *out = KILN_TLS_NO_CLIENT_CERT;
        return KILN_OK;
    }
    for (size_t i = 0; i < N_AUTH; i++) {
        if (strcmp(name, auth_names[i]) == 0) {
            *out = (kiln_tls_client_auth)i;
            return KILN_OK;
        }
    }
    return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                        "unknown TLS client auth %s (NoClientCert, RequestClientCert, "
                        "RequireAnyClientCert, VerifyClientCertIfGiven, "
                        "RequireAndVerifyClientCert)",
                        name);
}

const char *kiln_tls_client_auth_name(kiln_tls_client_auth v)
{
    return (size_t)v < N_AUTH ? auth_names[v] : "unknown";
}

bool kiln_tls_enabled(const kiln_tls_config *c)
{
    return is_set(c->cert_path);
}

static bool verifies_clients(kiln_tls_client_auth v)
{
    return v == KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN ||
           v == KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT;
}

kiln_status kiln_tls_config_check(const kiln_tls_config *c, const char *prefix, kiln_err *err)
{
    if (is_set(c->cert_path) != is_set(c->key_path))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-%s-cert-path and -%s-key-path go together", prefix, prefix);
    if (!is_set(c->cert_path) && (is_set(c->ca_path) || c->client_auth != KILN_TLS_NO_CLIENT_CERT))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-%s-ca-path and -%s-client-auth need -%s-cert-path", prefix, prefix,
                            prefix);
    if (verifies_clients(c->client_auth) && !is_set(c->ca_path))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "-%s-client-auth=%s needs -%s-ca-path",
                            prefix, kiln_tls_client_auth_name(c->client_auth), prefix);
    return KILN_OK;
}

/* Reads one PEM file whole; NULL path leaves *out NULL. */
static kiln_status read_pem(const char *path, char **out, kiln_err *err)
{
    *out = NULL;
    if (!is_set(path))
        return KILN_OK;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_NOT_FOUND, "cannot read %s: %s", path, strerror(errno));
    char *data = kiln_xmalloc(PEM_MAX_BYTES + 1);
    size_t n = fread(data, 1, PEM_MAX_BYTES + 1, f);
    fclose(f);
    data[n < PEM_MAX_BYTES ? n : PEM_MAX_BYTES] = '\0';
    if (n > PEM_MAX_BYTES || strstr(data, "-----BEGIN ") == NULL) {
        free(data);
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "%s holds no PEM block%s", path,
                            n > PEM_MAX_BYTES ? " (over 1 MiB)" : "");
    }
    *out = kiln_xrealloc(data, n + 1);
    return KILN_OK;
}

kiln_status kiln_tls_pem_load(const kiln_tls_config *c, kiln_tls_pem *out, kiln_tls_stamp *stamp,
                              kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    /* Stamp first: a rotation during the reads shows up as a change later. */
    if (stamp != NULL)
        kiln_tls_stamp_files(c, stamp);
    kiln_status st = read_pem(c->cert_path, &out->cert, err);
    if (st == KILN_OK)
        st = read_pem(c->key_path, &out->key, err);
    if (st == KILN_OK)
        st = read_pem(c->ca_path, &out->ca, err);
    if (st != KILN_OK)
        kiln_tls_pem_fini(out);
    return st;
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    /* volatile: the compiler may not drop a store to memory about to be freed */
    for (volatile char *p = s; *p != '\0'; p++)
        *p = '\0';
    free(s);
}

void kiln_tls_pem_fini(kiln_tls_pem *p)
{
    free(p->cert);
    wipe_free(p->key);
    free(p->ca);
    memset(p, 0, sizeof(*p));
}

static void stamp_one(const char *path, uint64_t v[4])
{
    struct stat st;
    memset(v, 0, 4 * sizeof(v[0]));
    if (!is_set(path) || stat(path, &st) != 0)
        return;
    v[0] = (uint64_t)st.st_size;
    v[1] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    v[2] = (uint64_t)st.st_ino;
    v[3] = (uint64_t)st.st_dev;
}

void kiln_tls_stamp_files(const kiln_tls_config *c, kiln_tls_stamp *out)
{
    stamp_one(c->cert_path, out->v[0]);
    stamp_one(c->key_path, out->v[1]);
    stamp_one(c->ca_path, out->v[2]);
}

bool kiln_tls_changed(const kiln_tls_config *c, const kiln_tls_stamp *stamp)
{
    kiln_tls_stamp now = {0};
    kiln_tls_stamp_files(c, &now);
    return memcmp(&now, stamp, sizeof(now)) != 0;
}
