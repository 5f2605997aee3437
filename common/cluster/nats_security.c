/* SPDX-License-Identifier: Apache-2.0
 * nats_security: NATS credentials and TLS on nats.c's options, and what a
 * refused first connection means. */
#include "nats_security.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define MASK "********"

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* The ways to authenticate that are set, for a message ("" when none). */
static void list_methods(const kiln_nats_security *s, char *out, size_t cap, int *n)
{
    const char *names[3];
    *n = 0;
    if (is_set(s->creds_file))
        names[(*n)++] = "-cluster.nats-creds-file";
    if (is_set(s->user) || is_set(s->password))
        names[(*n)++] = "-cluster.nats-user/-cluster.nats-password";
    if (is_set(s->token))
        names[(*n)++] = "-cluster.nats-token";
    out[0] = '\0';
    for (int i = 0; i < *n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i == 0 ? "" : " and ", names[i]);
    }
}

const char *kiln_nats_reason(natsStatus st)
{
    const char *last = nats_GetLastError(NULL);
    if (last == NULL || *last == '\0')
        return natsStatus_GetText(st);
    /* nats.c opens with where it failed, "(conn.c:733): ": not for users. */
    if (last[0] == '(') {
        const char *end = strstr(last, "): ");
        if (end != NULL && (size_t)(end - last) < 32)
            return end + 3;
    }
    return last;
}

/* A file that cannot be read is named with its flag, before nats.c (which
 * reads some only when it connects) says it less clearly. */
static kiln_status check_readable(const char *flag, const char *path, kiln_err *err)
{
    FILE *f = is_set(path) ? fopen(path, "r") : NULL;
    if (is_set(path) && f == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "cannot read -%s %s: %s", flag, path,
                            strerror(errno));
    if (f != NULL)
        fclose(f);
    return KILN_OK;
}

kiln_status kiln_nats_security_check(const kiln_nats_security *s, kiln_err *err)
{
    char methods[160];
    int n;
    list_methods(s, methods, sizeof(methods), &n);
    if (n > 1)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "%s are set: NATS takes one way to authenticate, set only one",
                            methods);
    if (is_set(s->password) && !is_set(s->user))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-cluster.nats-password is set without -cluster.nats-user");
    if (is_set(s->user) && !is_set(s->password))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-cluster.nats-user is set without -cluster.nats-password");
    if (is_set(s->tls.cert_path) != is_set(s->tls.key_path))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-cluster.nats-tls-cert-path and -cluster.nats-tls-key-path go "
                            "together: %s is missing",
                            is_set(s->tls.cert_path) ? "the key" : "the certificate");
    kiln_status st = check_readable("cluster.nats-creds-file", s->creds_file, err);
    if (st == KILN_OK)
        st = check_readable("cluster.nats-tls-ca-path", s->tls.ca_path, err);
    if (st == KILN_OK)
        st = check_readable("cluster.nats-tls-cert-path", s->tls.cert_path, err);
    if (st == KILN_OK)
        st = check_readable("cluster.nats-tls-key-path", s->tls.key_path, err);
    return st;
}

bool kiln_nats_security_wants_tls(const kiln_nats_security *s, char *const *urls, int n)
{
    if (is_set(s->tls.ca_path) || is_set(s->tls.cert_path))
        return true;
    for (int i = 0; i < n; i++) {
        if (strncasecmp(urls[i], "tls://", 6) == 0)
            return true;
    }
    return false;
}

static natsStatus set_credentials(const kiln_nats_security *s, natsOptions *o)
{
    if (is_set(s->creds_file)) /* the JWT and the seed in one file */
        return natsOptions_SetUserCredentialsFromFiles(o, s->creds_file, NULL);
    if (is_set(s->user))
        return natsOptions_SetUserInfo(o, s->user, s->password);
    if (is_set(s->token))
        return natsOptions_SetToken(o, s->token);
    return NATS_OK;
}

kiln_status kiln_nats_security_apply(const kiln_nats_security *s, bool tls, natsOptions *o,
                                     kiln_err *err)
{
    natsStatus st = set_credentials(s, o);
    if (st != NATS_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "NATS credentials: %s",
                            kiln_nats_reason(st));
    if (!tls)
        return KILN_OK;
    /* Without a CA file nats.c verifies the server against the system's
     * roots; it always checks the dialled host against the certificate. */
    st = natsOptions_SetSecure(o, true);
    if (st == NATS_OK && is_set(s->tls.ca_path)) {
        st = natsOptions_LoadCATrustedCertificates(o, s->tls.ca_path);
        if (st != NATS_OK)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "-cluster.nats-tls-ca-path %s: %s",
                                s->tls.ca_path, kiln_nats_reason(st));
    }
    if (st == NATS_OK && is_set(s->tls.cert_path)) {
        st = natsOptions_LoadCertificatesChain(o, s->tls.cert_path, s->tls.key_path);
        if (st != NATS_OK)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "-cluster.nats-tls-cert-path %s with -cluster.nats-tls-key-path "
                                "%s: %s",
                                s->tls.cert_path, s->tls.key_path, kiln_nats_reason(st));
    }
    if (st != NATS_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "NATS TLS: %s", kiln_nats_reason(st));
    return KILN_OK;
}

/* What the server was shown, for an authentication refusal. */
static void describe_credentials(const kiln_nats_security *s, char *out, size_t cap)
{
    if (is_set(s->creds_file))
        snprintf(out, cap, "-cluster.nats-creds-file %s", s->creds_file);
    else if (is_set(s->user))
        snprintf(out, cap, "-cluster.nats-user %s and its password", s->user);
    else if (is_set(s->token))
        snprintf(out, cap, "-cluster.nats-token");
    else
        snprintf(out, cap, "no credentials set");
}

/* The server hung up right after a TLS handshake that went well on our
 * side: with TLS 1.3 that is how it refuses our client certificate (or
 * its absence); nats.c then finds no reply to its CONNECT. */
static kiln_status judge_hangup(const kiln_nats_security *s, const char *why, const char *urls,
                                kiln_err *err)
{
    if (!is_set(s->tls.cert_path))
        return kiln_err_set(err, KILN_UNAUTHENTICATED,
                            "NATS %s requires a client certificate: set "
                            "-cluster.nats-tls-cert-path and -key-path (it closed the "
                            "connection after the TLS handshake: %s)",
                            urls, why);
    return kiln_err_set(err, KILN_UNAUTHENTICATED,
                        "NATS %s refused the client certificate -cluster.nats-tls-cert-path %s "
                        "(it closed the connection after the TLS handshake: %s)",
                        urls, s->tls.cert_path, why);
}

kiln_status kiln_nats_security_judge(const kiln_nats_security *s, bool tls, natsStatus st,
                                     const char *why, const char *urls, kiln_err *err)
{
    char creds[160];
    switch (st) {
    case NATS_CONNECTION_AUTH_FAILED:
        describe_credentials(s, creds, sizeof(creds));
        return kiln_err_set(err, KILN_UNAUTHENTICATED,
                            "NATS %s refused the authentication (%s): %s", urls, creds, why);
    case NATS_SSL_ERROR:
        return kiln_err_set(err, KILN_UNAUTHENTICATED,
                            "NATS %s: TLS failed, its certificate is not trusted by %s%s or not "
                            "for that host: %s",
                            urls, is_set(s->tls.ca_path) ? "-cluster.nats-tls-ca-path " : "",
                            is_set(s->tls.ca_path) ? s->tls.ca_path : "the system's roots", why);
    case NATS_SECURE_CONNECTION_WANTED:
        return kiln_err_set(err, KILN_FAILED_PRECONDITION,
                            "NATS %s does not offer TLS, which -cluster.nats-tls-* or a tls:// "
                            "URL asks for: %s",
                            urls, why);
    case NATS_PROTOCOL_ERROR:
    case NATS_IO_ERROR:
        if (tls && (st == NATS_PROTOCOL_ERROR || strstr(why, "SSL") != NULL))
            return judge_hangup(s, why, urls, err);
        return KILN_OK; /* a server going away under us: try again */
    case NATS_ERR:
    case NATS_NOT_PERMITTED:
        return kiln_err_set(err, KILN_FAILED_PRECONDITION, "NATS %s refused the connection: %s",
                            urls, why);
    default:
        return KILN_OK; /* no server, timeouts, closed sockets: not there yet */
    }
}

void kiln_nats_redact_urls(const char *urls, char *out, size_t cap)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (const char *p = urls != NULL ? urls : "";;) {
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        const char *scheme = memmem(p, len, "://", 3);
        const char *at = scheme != NULL ? memchr(scheme, '@', (size_t)(end - scheme)) : NULL;
        if (at != NULL) {
            kiln_buf_append(&b, p, (size_t)(scheme + 3 - p));
            kiln_buf_puts(&b, MASK);
            kiln_buf_append(&b, at, (size_t)(end - at));
        } else {
            kiln_buf_append(&b, p, len);
        }
        if (*end == '\0')
            break;
        kiln_buf_putc(&b, ',');
        p = end + 1;
    }
    snprintf(out, cap, "%.*s", (int)b.len, b.len > 0 ? (const char *)b.ptr : "");
    kiln_buf_free(&b);
}
