/* SPDX-License-Identifier: Apache-2.0
 * auth: authentication at the edge. Holds the tokens file (SHA-256 hashes of
 * tokens, each bound to tenants and a scope), reloads it when it changes,
 * and decides for each request entering by HTTP, Connect or gRPC whether
 * its credentials allow the tenants it names. Created in the app before the
 * servers start; kiln_auth_check is thread-safe. Statuses: KILN_OK,
 * KILN_UNAUTHENTICATED (no or unknown credentials, or no tenant with
 * multitenancy on), KILN_PERMISSION_DENIED (a valid token that does not
 * grant the scope or a tenant named). */
#ifndef KILN_AUTH_H
#define KILN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "status.h"

typedef struct kiln_auth kiln_auth_t;

typedef struct kiln_auth_config {
    const char *tokens_file; /* "" or NULL = no tokens: no credential is checked */
    bool multitenancy;       /* a request must name a tenant (or its token implies one) */
} kiln_auth_config;

/** What a request needs of its credentials. */
typedef enum kiln_auth_scope {
    KILN_AUTH_PUBLIC = 0, /* no credentials: reveals no tenant data */
    KILN_AUTH_READ = 1,
    KILN_AUTH_WRITE = 2,
} kiln_auth_scope;

/** Loads the tokens file (when set) into *out; KILN_INVALID_ARGUMENT or
 * KILN_NOT_FOUND with err when it cannot be read or parsed. With neither
 * tokens nor multitenancy, *out is NULL: every check passes. */
kiln_status kiln_auth_create(const kiln_auth_config *cfg, kiln_auth_t **out, kiln_err *err);
/** Frees it; NULL is a no-op. */
void kiln_auth_destroy(kiln_auth_t *a);

/** The scope a request path needs (HTTP routes, Connect and gRPC methods). */
kiln_auth_scope kiln_auth_path_scope(const char *path);

/** Checks one request. authz is its Authorization header (or gRPC
 * "authorization" metadata), org its X-Scope-OrgID, each with its length
 * (NULL = absent); source names the peer for the failure counter. On
 * KILN_OK, tenant (cap bytes) holds the X-Scope-OrgID the request goes on
 * with: org itself, the Basic auth user when org is absent, or for a write
 * with neither, the token's only tenant ("" = none: the default tenant).
 * Otherwise err says why without naming any tenant the request did not. */
kiln_status kiln_auth_check(kiln_auth_t *a, const char *authz, size_t authz_len, const char *org,
                            size_t org_len, kiln_auth_scope scope, const char *source, char *tenant,
                            size_t cap, kiln_err *err);

/** Appends kiln_auth_failures_total{source,reason} and
 * kiln_auth_tokens_loaded in Prometheus text; NULL appends nothing. */
void kiln_auth_render_metrics(kiln_auth_t *a, kiln_buf *out);

/** Writes the lowercase hex SHA-256 of token (65 bytes with the NUL). */
void kiln_auth_hash_hex(const char *token, size_t len, char hex[65]);

#endif
