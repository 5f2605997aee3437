/* SPDX-License-Identifier: Apache-2.0
 * tls_config: the certificate files of one TLS endpoint (a server's
 * listener, or the client side of the cluster plane) as the flags give
 * them, the client-auth policy by Go's crypto/tls names, and a stamp of the
 * files so their owner can notice a rotation (cert-manager rewrites them in
 * place) and reload. No TLS library here: the servers and clients hand the
 * PEM bytes to theirs. Plain data; any thread. */
#ifndef KILN_TLS_CONFIG_H
#define KILN_TLS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/** Whether and how a server asks its clients for certificates. */
typedef enum kiln_tls_client_auth {
    KILN_TLS_NO_CLIENT_CERT = 0,            /* NoClientCert */
    KILN_TLS_REQUEST_CLIENT_CERT,           /* RequestClientCert: asked, not verified */
    KILN_TLS_REQUIRE_ANY_CLIENT_CERT,       /* RequireAnyClientCert: required, not verified */
    KILN_TLS_VERIFY_CLIENT_CERT_IF_GIVEN,   /* VerifyClientCertIfGiven */
    KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT /* RequireAndVerifyClientCert */
} kiln_tls_client_auth;

/** One endpoint's files (borrowed strings; "" or NULL = not set). */
typedef struct kiln_tls_config {
    const char *cert_path;            /* PEM certificate chain, leaf first */
    const char *key_path;             /* PEM private key of the leaf */
    const char *ca_path;              /* PEM roots that verify the peer */
    kiln_tls_client_auth client_auth; /* servers only */
} kiln_tls_config;

/** The files' contents, NUL-terminated (NULL where the path is unset). */
typedef struct kiln_tls_pem {
    char *cert, *key, *ca;
} kiln_tls_pem;

/** What the files looked like when read: a change in any of them (size,
 * mtime, inode: an atomic rename counts) differs. */
typedef struct kiln_tls_stamp {
    uint64_t v[3][4];
} kiln_tls_stamp;

/** Parses a Go crypto/tls ClientAuthType name ("" = NoClientCert);
 * KILN_INVALID_ARGUMENT with err naming the accepted values otherwise. */
kiln_status kiln_tls_client_auth_parse(const char *name, kiln_tls_client_auth *out, kiln_err *err);
/** The Go name of v. */
const char *kiln_tls_client_auth_name(kiln_tls_client_auth v);

/** True when a certificate is set: the endpoint speaks TLS. */
bool kiln_tls_enabled(const kiln_tls_config *c);

/** Checks that the set is complete for a server (what names the flags that
 * are wrong): cert and key together; a CA when the policy verifies client
 * certificates. prefix is the flag prefix for messages
 * ("server.http-tls"). KILN_INVALID_ARGUMENT otherwise. */
kiln_status kiln_tls_config_check(const kiln_tls_config *c, const char *prefix, kiln_err *err);

/** Reads the set files into *out (caller frees with kiln_tls_pem_fini) and
 * stamps them into *stamp (may be NULL). KILN_NOT_FOUND with err naming
 * the file when one cannot be read, KILN_INVALID_ARGUMENT when one holds
 * no PEM block. Blocks on file I/O. */
kiln_status kiln_tls_pem_load(const kiln_tls_config *c, kiln_tls_pem *out, kiln_tls_stamp *stamp,
                              kiln_err *err);
/** Frees the contents (keys are wiped first); the struct may be reused. */
void kiln_tls_pem_fini(kiln_tls_pem *p);

/** Stamps the files as they are now (a missing file stamps as zeros). */
void kiln_tls_stamp_files(const kiln_tls_config *c, kiln_tls_stamp *out);
/** True when the files differ from *stamp. */
bool kiln_tls_changed(const kiln_tls_config *c, const kiln_tls_stamp *stamp);

#endif
