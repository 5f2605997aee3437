/* SPDX-License-Identifier: Apache-2.0
 * multipart: multipart/form-data (RFC 7578) bodies as the Pyroscope SDKs
 * send them to /ingest: the boundary from the Content-Type header, then the
 * parts with the name (and filename) of their Content-Disposition. Part
 * bodies may be binary and are views into the request body (borrowed). Like
 * Go's mime/multipart: a preamble before the first boundary and an epilogue
 * after the last are ignored, lines end in CRLF or LF (decided by the first
 * boundary line), padding after a boundary is allowed. Not supported:
 * Content-Transfer-Encoding (bodies are taken as sent) and nested multipart.
 * At most KILN_MULTIPART_MAX_PARTS parts of at most 100 header lines each.
 * No recursion; no allocation except small arena strings. */
#ifndef KILN_MULTIPART_H
#define KILN_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "status.h"

#define KILN_MULTIPART_MAX_PARTS 1000

typedef struct kiln_multipart_part {
    kiln_str_t name;         /* Content-Disposition name= ("" when absent) */
    kiln_str_t filename;     /* Content-Disposition filename= ("" when absent) */
    kiln_str_t content_type; /* the part's Content-Type header ("" when absent) */
    const uint8_t *data;     /* the body, a view into the input */
    size_t len;
} kiln_multipart_part;

/** Finds parameter key (ASCII case-insensitive) of a MIME header value such
 * as `multipart/form-data; boundary="x"` or `form-data; name=profile`: a
 * token or a quoted string (backslash escapes removed, into the arena). True
 * with *out set when present. */
bool kiln_mime_param(kiln_arena_t *a, kiln_str_t header, const char *key, kiln_str_t *out);

/** The boundary of a multipart Content-Type value. KILN_INVALID_ARGUMENT
 * (with err) when the value has no boundary parameter or it is empty or
 * longer than 200 bytes. */
kiln_status kiln_multipart_boundary(kiln_arena_t *a, const char *content_type, kiln_str_t *out,
                                    kiln_err *err);

/** Splits body into its parts (*parts: an arena array of *n_parts).
 * KILN_INVALID_ARGUMENT with err when there is no first boundary, a part's
 * headers do not end, the closing boundary is missing, or there are too many
 * parts or header lines; KILN_RESOURCE_EXHAUSTED past the arena's cap.
 * Writes *parts and *n_parts only on KILN_OK. */
kiln_status kiln_multipart_parse(kiln_arena_t *a, const uint8_t *body, size_t len,
                                 kiln_str_t boundary, kiln_multipart_part **parts, size_t *n_parts,
                                 kiln_err *err);

/** The first part called name whose body is not empty, or NULL (Pyroscope
 * treats an empty part as absent). */
const kiln_multipart_part *kiln_multipart_find(const kiln_multipart_part *parts, size_t n,
                                               const char *name);

#endif
