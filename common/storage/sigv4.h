/* SPDX-License-Identifier: Apache-2.0
 * sigv4: AWS Signature Version 4 for S3 requests (header form), on
 * OpenSSL's SHA-256 and HMAC. Pure functions of their arguments: the
 * caller supplies the time, the headers to sign and the payload's hash, and
 * gets back the canonical request, the string to sign and the
 * Authorization header's value. Thread-safe; never fails (the output
 * buffers grow without a maximum). */
#ifndef KILN_SIGV4_H
#define KILN_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/** One header to sign: a lowercase name and its value (trimmed here). */
typedef struct kiln_sigv4_header {
    const char *name;
    const char *value;
} kiln_sigv4_header;

/** The request as signed (all strings borrowed). */
typedef struct kiln_sigv4_request {
    const char *method;
    const char *path;  /* URI-encoded, '/' kept (kiln_sigv4_uri_encode) */
    const char *query; /* "k=v&k2=v2" of encoded names and values, any order; "" = none */
    const kiln_sigv4_header *headers; /* any order; host and x-amz-date among them */
    size_t n_headers;
    const char *payload_hash; /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
} kiln_sigv4_request;

/** Who signs, where, and when. */
typedef struct kiln_sigv4_key {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;
    const char *service;  /* "s3" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ", the value of x-amz-date */
} kiln_sigv4_key;

/** Lowercase hex SHA-256 of data. */
void kiln_sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/** Appends s[0..n) %-encoded as SigV4 wants: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as they are, '/' as it is when keep_slash, every
 * other byte as %XX (uppercase hex). */
void kiln_sigv4_uri_encode(const char *s, size_t n, bool keep_slash, kiln_buf *out);
/** Appends the canonical request: method, path, the query sorted by name
 * then value (byte order), the headers sorted by name, their names, and
 * the payload hash, one per line. */
void kiln_sigv4_canonical_request(const kiln_sigv4_request *r, kiln_buf *out);
/** Appends the string to sign for the canonical request canon. */
void kiln_sigv4_string_to_sign(const kiln_sigv4_key *k, const char *canon, kiln_buf *out);
/** Appends the Authorization header's value for r. */
void kiln_sigv4_authorization(const kiln_sigv4_key *k, const kiln_sigv4_request *r, kiln_buf *out);

#endif
