/* SPDX-License-Identifier: Apache-2.0
 * s3_creds: where the S3 backend's keys come from, and when they change.
 * Two sources, tried in this order, as the AWS SDKs do: static keys (the
 * -storage.s3.* flags, else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
 * with AWS_SESSION_TOKEN), which never change; then web identity
 * (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, what an EKS ServiceAccount
 * annotated with eks.amazonaws.com/role-arn puts in its pods), which
 * trades the token file's JWT for temporary keys at STS
 * AssumeRoleWithWebIdentity, reading the file afresh each time (kubelet
 * rotates it), and trades again before the keys expire. EC2 and ECS
 * instance metadata are not sources. A failed refresh keeps the old keys
 * until they expire (logged, sampled) and is tried again at most every
 * KILN_S3_CREDS_RETRY_NS. Never logs a secret or a token. Thread-safe;
 * kiln_s3_creds_get blocks on STS while a refresh is due. */
#ifndef KILN_S3_CREDS_H
#define KILN_S3_CREDS_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "status.h"

#define KILN_S3_KEY_MAX 256                            /* access key ID or secret */
#define KILN_S3_TOKEN_MAX 8192                         /* session token */
#define KILN_S3_JWT_MAX 65536                          /* the web identity token file */
#define KILN_S3_CREDS_MARGIN_NS (300LL * 1000000000LL) /* refresh this long before expiry */
#define KILN_S3_CREDS_RETRY_NS (10LL * 1000000000LL)   /* between failed refreshes */

typedef struct kiln_s3_creds kiln_s3_creds_t;

/** One set of keys. */
typedef struct kiln_s3_keys {
    char access_key_id[KILN_S3_KEY_MAX + 1];
    char secret_access_key[KILN_S3_KEY_MAX + 1];
    char session_token[KILN_S3_TOKEN_MAX + 1]; /* "" = none */
    int64_t expires_ns;                        /* wall clock; 0 = never (static keys) */
} kiln_s3_keys;

/** Where to look (strings borrowed for the create call only; "" or NULL
 * means the environment variable named). */
typedef struct kiln_s3_creds_config {
    const char *access_key_id;     /* AWS_ACCESS_KEY_ID */
    const char *secret_access_key; /* AWS_SECRET_ACCESS_KEY */
    const char *session_token;     /* AWS_SESSION_TOKEN */
    const char *role_arn;          /* AWS_ROLE_ARN */
    const char *token_file;        /* AWS_WEB_IDENTITY_TOKEN_FILE */
    const char *session_name;      /* AWS_ROLE_SESSION_NAME, else "kiln-<unix seconds>" */
    /* STS: this URL (http:// or https://), else AWS_ENDPOINT_URL_STS, else
     * https://sts.<region>.amazonaws.com (https://sts.amazonaws.com when
     * AWS_STS_REGIONAL_ENDPOINTS=legacy). */
    const char *sts_endpoint;
    const char *region;      /* "" = us-east-1 */
    int timeout_ms;          /* one STS call (0 = 10 s) */
    const kiln_clock *clock; /* NULL = the system's */
} kiln_s3_creds_config;

/** Picks the source. Web identity fetches its first keys here, so that a
 * wrong role or token fails at start: KILN_UNAUTHENTICATED or
 * KILN_PERMISSION_DENIED (STS refused), KILN_UNAVAILABLE (STS unreachable
 * or answering nonsense), KILN_INVALID_ARGUMENT when no source is complete
 * (one static key without the other, or no keys and no web identity), or
 * the token file cannot be read; err says which setting to look at. */
kiln_status kiln_s3_creds_create(const kiln_s3_creds_config *cfg, kiln_s3_creds_t **out,
                                 kiln_err *err);
/** Frees (secrets wiped); NULL is a no-op. */
void kiln_s3_creds_destroy(kiln_s3_creds_t *c);
/** "static" or "web-identity". */
const char *kiln_s3_creds_source(const kiln_s3_creds_t *c);
/** A short description for errors: the static keys' flags, or "web
 * identity, role <arn>". */
const char *kiln_s3_creds_describe(const kiln_s3_creds_t *c);

/** Copies the keys to sign with into *out, refreshing them first when due
 * (KILN_S3_CREDS_MARGIN_NS before expiry, or half their lifetime when
 * shorter). KILN_UNAVAILABLE with err when the keys have expired and no
 * refresh succeeded: the request is not sent. */
kiln_status kiln_s3_creds_get(kiln_s3_creds_t *c, kiln_s3_keys *out, kiln_err *err);
/** The server refused the keys as expired or unknown: a web identity's
 * next get refreshes (at most every KILN_S3_CREDS_RETRY_NS). */
void kiln_s3_creds_expire(kiln_s3_creds_t *c);
/** STS calls made so far, and how many of them failed. */
void kiln_s3_creds_counts(kiln_s3_creds_t *c, uint64_t *calls, uint64_t *failed);

/** Parses an AssumeRoleWithWebIdentity answer (NUL-terminated XML) into
 * *out. KILN_UNAVAILABLE with err when a field is missing, too long or
 * the expiration is not an ISO 8601 UTC time; a missing or empty
 * SessionToken is allowed (some S3-compatible STS services issue keys
 * that need none; AWS always sends one), and then none is sent. For tests and the fuzz
 * target; the provider uses the same code. */
kiln_status kiln_s3_creds_parse_sts(const char *xml, kiln_s3_keys *out, kiln_err *err);

#endif
