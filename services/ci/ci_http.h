/* SPDX-License-Identifier: Apache-2.0
 * The gate's HTTP client (libcurl): POSTs with Kiln's auth and tenant headers.
 * Blocking; one call at a time per kiln_ci_conn; the caller owns the reply. */
#ifndef KILN_CI_HTTP_H
#define KILN_CI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/** Where Kiln is and who asks (all borrowed; NULL or "" = not sent). */
typedef struct kiln_ci_conn {
    const char *url;    /* base, e.g. http://127.0.0.1:4040 */
    const char *token;  /* Authorization: Bearer */
    const char *basic;  /* user:password for Authorization: Basic */
    const char *tenant; /* X-Scope-OrgID */
} kiln_ci_conn;

/** A reply body (owned; free with free(body.ptr)). */
typedef struct kiln_ci_body {
    uint8_t *ptr;
    size_t len, cap;
} kiln_ci_body;

/** POSTs `body` to conn->url + path with Content-Type `ctype`. Fills *reply and returns
 * KILN_OK for 2xx; otherwise the reply's text goes to err with UNAVAILABLE (transport) or
 * the matching code (4xx INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED). */
kiln_status kiln_ci_post(const kiln_ci_conn *conn, const char *path, const char *ctype,
                         const void *body, size_t len, kiln_ci_body *reply, kiln_err *err);
/** Percent-encodes s for a URL query (owned result, free()). */
char *kiln_ci_escape(const char *s);

#endif
