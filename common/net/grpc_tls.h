/* SPDX-License-Identifier: Apache-2.0
 * grpc_tls: gRPC core's own TLS credentials (grpc_security.h) from one
 * endpoint's files (kiln_tls_config). Server credentials fetch the
 * certificate again when the files changed, looked at on each new
 * connection's handshake: a rotation reaches new connections and leaves
 * open ones alone. Channels get the files as they are when made; the
 * generation, re-checked at most once a second, tells a client when to
 * make new ones. The files are checked when read (PEM that OpenSSL parses,
 * the key matching the certificate): at create a bad set is an error; a
 * rotation to a bad set is logged once and the last good set stays in use.
 * Thread-safe. */
#ifndef KILN_GRPC_TLS_H
#define KILN_GRPC_TLS_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "status.h"
#include "tls_config.h"

typedef struct kiln_grpc_tls kiln_grpc_tls_t;

/** Reads and checks the files of c (the paths are copied); prefix names
 * the flags in messages ("server.grpc-tls"). KILN_NOT_FOUND (a file cannot
 * be read) or KILN_INVALID_ARGUMENT (not PEM, key and certificate do not
 * match), with err naming the file. Blocks on file I/O. */
kiln_status kiln_grpc_tls_create(const kiln_tls_config *c, const char *prefix,
                                 kiln_grpc_tls_t **out, kiln_err *err);
/** Frees t; only once every server and channel made from it is destroyed.
 * NULL is a no-op. */
void kiln_grpc_tls_destroy(kiln_grpc_tls_t *t);

/** New server credentials (the caller releases them) asking clients for
 * certificates as the config's client_auth says, verified against its CA,
 * and reloading the files when they change. One per listening port. */
grpc_server_credentials *kiln_grpc_tls_server_credentials(kiln_grpc_tls_t *t);

/** A new channel to target (host:port) over TLS with the files as they are
 * now: the CA as roots (the system's when unset), the certificate as
 * client certificate when set. server_name ("" or NULL = the target's
 * host) is the name the server's certificate must carry. args (may be
 * NULL) are added. *generation (may be NULL) receives the files' version. */
grpc_channel *kiln_grpc_tls_channel_create(kiln_grpc_tls_t *t, const char *target,
                                           const grpc_channel_args *args, const char *server_name,
                                           unsigned *generation);
/** The files' version now: it grows when they changed and the new set
 * loaded. Looks at the files at most once a second. */
unsigned kiln_grpc_tls_generation(kiln_grpc_tls_t *t);

/** The gRPC client-certificate request of a Go ClientAuthType. */
grpc_ssl_client_certificate_request_type kiln_grpc_tls_request_type(kiln_tls_client_auth a);

#endif
