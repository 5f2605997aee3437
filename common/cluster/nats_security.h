/* SPDX-License-Identifier: Apache-2.0
 * nats_security: how a kiln process proves itself to nats-server and checks
 * the server: one of a credentials file (JWT and NKey seed), a user and
 * password, or a token; and TLS (roots that verify the server, a client
 * certificate when the server verifies clients). The settings are checked
 * once at start and set on nats.c's options, which every reconnection
 * reuses. It also tells a first connection that the server refused (wrong
 * credentials, TLS that does not verify: a start error naming the cause)
 * from one that found no server yet (retried). Messages name the
 * -cluster.nats-* flags and never hold a secret. Plain functions; any
 * thread. */
#ifndef KILN_NATS_SECURITY_H
#define KILN_NATS_SECURITY_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "tls_config.h"

/** The flag values (borrowed strings; "" or NULL = not set). */
typedef struct kiln_nats_security {
    const char *creds_file; /* -cluster.nats-creds-file */
    const char *user;       /* -cluster.nats-user */
    const char *password;   /* -cluster.nats-password */
    const char *token;      /* -cluster.nats-token */
    /* ca_path verifies the server; cert_path and key_path are this
     * process's client certificate. client_auth is unused. */
    kiln_tls_config tls;
} kiln_nats_security;

/** Checks the combination: at most one way to authenticate, a password
 * with its user and a user with its password, a client certificate with
 * its key, readable files. KILN_INVALID_ARGUMENT with err
 * naming the flags otherwise. Blocks on a file access check. */
kiln_status kiln_nats_security_check(const kiln_nats_security *s, kiln_err *err);

/** True when the connection must be TLS: a TLS file is set, or one of the
 * n URLs is tls://. (A server that requires TLS gets it in any case.) */
bool kiln_nats_security_wants_tls(const kiln_nats_security *s, char *const *urls, int n);

/** Sets the credentials and, when tls, TLS on o (the CA and certificate
 * files are read now). KILN_INVALID_ARGUMENT with err naming the flag and
 * nats.c's reason when a file is refused. Blocks on file I/O. */
kiln_status kiln_nats_security_apply(const kiln_nats_security *s, bool tls, natsOptions *o,
                                     kiln_err *err);

/** Judges a failed first connection to urls (shown with their passwords
 * masked): KILN_OK when the servers were not reachable (worth retrying),
 * else KILN_UNAUTHENTICATED (credentials or certificates refused, server
 * not trusted) or KILN_FAILED_PRECONDITION (TLS asked of a server without
 * it, or another refusal), with err naming the cause and the flags to
 * check. why is nats.c's text for st. */
kiln_status kiln_nats_security_judge(const kiln_nats_security *s, bool tls, natsStatus st,
                                     const char *why, const char *urls, kiln_err *err);

/** nats.c's reason for st (its last error on this thread, without the
 * source position it opens with). Static or thread-local storage. */
const char *kiln_nats_reason(natsStatus st);

/** Copies urls to out (cap bytes, truncated, NUL-terminated) with the user
 * information of each URL ("nats://user:pass@host") masked, for messages. */
void kiln_nats_redact_urls(const char *urls, char *out, size_t cap);

#endif
