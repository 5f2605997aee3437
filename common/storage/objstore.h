/* SPDX-License-Identifier: Apache-2.0
 * objstore: an object store interface (put, get, get-range, size, list by
 * prefix, delete) over two backends, chosen by kiln_objstore_open: S3
 * (objstore_s3.c: any S3-compatible server, over libcurl, requests signed
 * with AWS Signature V4 by keys from s3_creds.h, static or web identity;
 * every operation blocks on the network, with timeouts and bounded
 * retries) and the filesystem, which lays objects out
 * as an object store would: object "a/b/c" is the file <root>/a/b/c. A put writes to a
 * temporary name in the same directory, fsyncs it, renames it into place
 * and fsyncs the directory, so a reader never sees half an object and a
 * put that returned KILN_OK survives a crash. Writes go through io_uring
 * (liburing) and fall back to pwrite when io_uring is unavailable; setting
 * the environment variable KILN_OBJSTORE_NO_URING=1 before open forces the
 * fallback (tests use it; containers often forbid io_uring).
 * Object names are relative paths of [A-Za-z0-9._-] components separated by
 * '/', at most 1024 bytes; "." and ".." components, empty components (a
 * leading, trailing or doubled '/'), components longer than 255 bytes and
 * components starting with ".tmp-" (temporary files) are refused with
 * KILN_INVALID_ARGUMENT. I/O errors are KILN_UNAVAILABLE with err naming the
 * path and errno, logged once. Every call blocks on the filesystem.
 * Thread-safe: one store may be shared by any number of threads. */
#ifndef KILN_OBJSTORE_H
#define KILN_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "status.h"

typedef struct kiln_objstore kiln_objstore_t;

/** The S3 backend's settings (strings borrowed for the open call only). */
typedef struct kiln_objstore_s3_config {
    const char *endpoint; /* host[:port], or a URL (http:// or https://) */
    const char *bucket;
    const char *region;            /* "" = us-east-1 */
    const char *access_key_id;     /* "" = AWS_ACCESS_KEY_ID */
    const char *secret_access_key; /* "" = AWS_SECRET_ACCESS_KEY */
    const char *session_token;     /* "" = AWS_SESSION_TOKEN (may stay empty) */
    bool insecure;                 /* plain http when the endpoint names no scheme */
    bool force_path_style;         /* <endpoint>/<bucket>/<key>, not <bucket>.<endpoint> */
    uint64_t part_size;            /* multipart upload above this (0 = 16 MiB, min 5 MiB) */
    int timeout_ms;                /* per request (0 = 30 s) */
    int max_retries;               /* on 5xx, 429 and network errors (0 = 5) */
    /* Without static keys: web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE;
     * s3_creds.h) traded at this STS URL ("" = AWS_ENDPOINT_URL_STS, else AWS's). */
    const char *sts_endpoint;
} kiln_objstore_s3_config;

/** Which store to open. */
typedef struct kiln_objstore_config {
    const char *backend; /* "filesystem" (also "" or NULL) or "s3" */
    const char *dir;     /* the filesystem backend's root */
    const char *prefix;  /* names live under "<prefix>/" in the store ("" = none) */
    kiln_objstore_s3_config s3;
    /* A local cache of block index, symbols and sample chunks (objects that
     * never change once written), in front of the backend: "" or a 0 size =
     * none. Hits are not backend requests in the metrics. */
    const char *cache_dir;
    uint64_t cache_max_bytes;
} kiln_objstore_config;

/** Opens the store cfg names (the caller keeps cfg). An S3 store is
 * checked with one request here, so that wrong credentials or a missing
 * bucket fail at start: KILN_UNAUTHENTICATED or KILN_PERMISSION_DENIED,
 * KILN_NOT_FOUND (bucket), KILN_UNAVAILABLE (unreachable), each with err
 * saying which flag to look at. KILN_INVALID_ARGUMENT for an unknown backend,
 * a bad prefix or a missing endpoint or bucket. */
kiln_status kiln_objstore_open(const kiln_objstore_config *cfg, kiln_objstore_t **out,
                               kiln_err *err);
/** The backend's name: "filesystem" or "s3". */
const char *kiln_objstore_backend(const kiln_objstore_t *s);
/** Appends the store's Prometheus metrics (kiln_objstore_requests_total,
 * kiln_objstore_bytes_total, kiln_objstore_request_duration_seconds, by
 * operation and backend) to out. */
void kiln_objstore_metrics(kiln_objstore_t *s, kiln_buf *out);

/** Opens a filesystem store rooted at dir (created with its parents if
 * missing; the caller keeps dir, the store copies it). io_uring is tried here
 * once per store. KILN_UNAVAILABLE with err when dir cannot be used,
 * KILN_INVALID_ARGUMENT when it is empty or longer than 2048 bytes. */
kiln_status kiln_objstore_open_fs(const char *dir, kiln_objstore_t **out, kiln_err *err);
/** Closes the store; NULL is a no-op. */
void kiln_objstore_close(kiln_objstore_t *s);

/** Stores data under name, atomically and durably (see above), replacing any
 * previous object; borrows data. Parent directories are created as needed.
 * KILN_UNAVAILABLE (the temporary file removed) when any step fails. */
kiln_status kiln_objstore_put(kiln_objstore_t *s, const char *name, const void *data, size_t len,
                              kiln_err *err);
/** Appends the whole object to out. KILN_NOT_FOUND when absent (a directory
 * is not an object); KILN_RESOURCE_EXHAUSTED when it passes out's max. out is
 * unchanged unless KILN_OK. */
kiln_status kiln_objstore_get(kiln_objstore_t *s, const char *name, kiln_buf *out, kiln_err *err);
/** Appends len bytes at offset off to out. KILN_OUT_OF_RANGE when the object
 * is shorter than off + len (len 0 at the end is fine); KILN_NOT_FOUND when
 * absent. out is unchanged unless KILN_OK. */
kiln_status kiln_objstore_get_range(kiln_objstore_t *s, const char *name, uint64_t off, size_t len,
                                    kiln_buf *out, kiln_err *err);
/** Size of an object; KILN_NOT_FOUND when absent. */
kiln_status kiln_objstore_size(kiln_objstore_t *s, const char *name, uint64_t *size, kiln_err *err);

/** Calls fn with the name of every object whose name starts with prefix
 * (recursively), sorted by name (byte order), after the walk has finished,
 * so fn may call back into the store; the name is borrowed for the call.
 * Temporary files of puts in progress are never listed. prefix ("" or NULL:
 * everything) is a name that may end in a partial component or a '/';
 * otherwise KILN_INVALID_ARGUMENT. A prefix matching nothing is KILN_OK. */
kiln_status kiln_objstore_list(kiln_objstore_t *s, const char *prefix,
                               void (*fn)(void *ctx, const char *name), void *ctx, kiln_err *err);
/** Deletes an object (absent is OK); parent directories left empty are
 * removed, up to but not including the root. */
kiln_status kiln_objstore_delete(kiln_objstore_t *s, const char *name, kiln_err *err);

/** True when writes go through io_uring (false: the pwrite fallback, either
 * forced, because io_uring_queue_init failed, or because the ring failed). */
bool kiln_objstore_uses_uring(const kiln_objstore_t *s);

#endif
