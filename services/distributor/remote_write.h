/* SPDX-License-Identifier: Apache-2.0
 * remote_write: a Prometheus remote write 1.0 sender, the one way recording
 * rules' samples leave Kiln for a Prometheus-compatible receiver: a packed
 * prometheus.WriteRequest, snappy-compressed (block format, as the protocol
 * defines), POSTed with libcurl to an http:// or https:// URL with the
 * tenant in X-Scope-OrgID. A connection failure, timeout (10 s), 429 or 5xx
 * is retried with jittered backoff; another 4xx is not (the receiver will
 * never take it). Blocks; thread-safe (sends are serialised). */
#ifndef KILN_REMOTE_WRITE_H
#define KILN_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kiln_rw kiln_rw_t;

/** Checks url (http(s)://host[:port]/path) and creates a sender.
 * KILN_INVALID_ARGUMENT naming the URL otherwise. */
kiln_status kiln_rw_create(const char *url, kiln_rw_t **out, kiln_err *err);
/** Frees it; NULL is a no-op. */
void kiln_rw_destroy(kiln_rw_t *rw);

/** Sends one packed WriteRequest (borrowed) for tenant, retrying up to
 * max_attempts times. KILN_OK when the receiver answered 2xx,
 * KILN_INVALID_ARGUMENT when it refused the request (4xx but 429),
 * KILN_UNAVAILABLE when every attempt failed. */
kiln_status kiln_rw_send(kiln_rw_t *rw, const char *tenant, const uint8_t *req, size_t len,
                         int max_attempts, kiln_err *err);

#endif
