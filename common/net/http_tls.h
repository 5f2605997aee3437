/* SPDX-License-Identifier: Apache-2.0
 * http_tls: the HTTPS side of the HTTP server. GnuTLS certificate
 * credentials built from a kiln_tls_config's files (certificate, key, the
 * roots that verify clients, and the client-auth policy), rebuilt when the
 * files change (cert-manager rotates them in place), and put on each new
 * libmicrohttpd TLS session before its handshake. Credentials are
 * reference-counted: the module holds the current set, each session the
 * set it started with, so a rotation changes what new sessions get while
 * open connections keep theirs until they close. Any thread. */
#ifndef KILN_HTTP_TLS_H
#define KILN_HTTP_TLS_H

#include <gnutls/gnutls.h>

#include "status.h"
#include "tls_config.h"

typedef struct kiln_http_tls kiln_http_tls_t;
/** One session's hold on the credentials it was given. */
typedef struct kiln_http_tls_creds kiln_http_tls_creds;

/** Loads c's files (c is copied) and builds the first credentials.
 * KILN_NOT_FOUND when a file cannot be read, KILN_INVALID_ARGUMENT when
 * one holds no usable certificate or key, or the key does not match the
 * certificate; err names the file. Blocks on file I/O. */
kiln_status kiln_http_tls_create(const kiln_tls_config *c, kiln_http_tls_t **out, kiln_err *err);

/** Gives session (a server session, not yet handshaking) the current
 * credentials and the client-auth policy, first rebuilding the credentials
 * if the files changed since they were last read (when the new files do not
 * load, the old credentials stay and a warning names why, once per change).
 * Returns the session's hold, to be released by kiln_http_tls_detach once
 * the session is gone (gnutls_deinit done). Never NULL. */
kiln_http_tls_creds *kiln_http_tls_attach(kiln_http_tls_t *t, gnutls_session_t session);

/** Releases a session's hold; the credentials are freed with the last one.
 * NULL is a no-op. */
void kiln_http_tls_detach(kiln_http_tls_creds *h);

/** Releases the module's hold on the current credentials and frees it
 * (sessions still holding credentials keep them alive); NULL is a no-op. */
void kiln_http_tls_destroy(kiln_http_tls_t *t);

/** The GnuTLS priority string of the HTTP port: TLS 1.2 and 1.3 only. */
#define KILN_HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#endif
