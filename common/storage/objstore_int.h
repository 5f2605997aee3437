/* SPDX-License-Identifier: Apache-2.0
 * objstore_int: what objstore.c (the front: prefix, metrics, cache) and its
 * backends (objstore_fs.c, objstore_s3.c) share. A backend is a table of
 * operations over its own state; every operation may block and must be
 * safe to call from any number of threads at once. Names reaching a
 * backend are already checked (kiln_objstore__check_name) and carry the
 * store's prefix. */
#ifndef KILN_OBJSTORE_INT_H
#define KILN_OBJSTORE_INT_H

#include "objstore.h"

typedef struct kiln_objstore_ops {
    const char *backend; /* metric label: "filesystem", "s3" */
    kiln_status (*put)(void *impl, const char *name, const void *data, size_t len, kiln_err *err);
    /* len SIZE_MAX with off 0 reads the whole object. */
    kiln_status (*get_range)(void *impl, const char *name, uint64_t off, size_t len, kiln_buf *out,
                             kiln_err *err);
    kiln_status (*size)(void *impl, const char *name, uint64_t *size, kiln_err *err);
    kiln_status (*list)(void *impl, const char *prefix, void (*fn)(void *ctx, const char *name),
                        void *ctx, kiln_err *err);
    kiln_status (*del)(void *impl, const char *name, kiln_err *err);
    void (*close)(void *impl);
} kiln_objstore_ops;

/** Object name and list prefix rules (objstore.h); KILN_INVALID_ARGUMENT
 * with err otherwise. check_prefix sets *dir_len to the length of the
 * prefix's directory part (up to its last '/'). */
kiln_status kiln_objstore__check_name(const char *name, kiln_err *err);
kiln_status kiln_objstore__check_prefix(const char *prefix, size_t *dir_len, kiln_err *err);

struct fs_store;
extern const kiln_objstore_ops kiln_objstore__fs_ops;
kiln_status kiln_objstore__fs_open(const char *dir, struct fs_store **out, kiln_err *err);
bool kiln_objstore__fs_uses_uring(const struct fs_store *s);

extern const kiln_objstore_ops kiln_objstore__s3_ops;
/** Opens the S3 backend and checks the bucket with one signed request:
 * KILN_UNAUTHENTICATED / KILN_PERMISSION_DENIED for refused credentials,
 * KILN_NOT_FOUND for a missing bucket, KILN_UNAVAILABLE when unreachable. */
kiln_status kiln_objstore__s3_open(const kiln_objstore_s3_config *cfg, void **out, kiln_err *err);
/** Parses one ListObjectsV2 page (NUL-terminated): the number of valid
 * object names in it; *more (and token, unescaped) when another page
 * follows. For the fuzz target; the backend uses the same code. */
size_t kiln_objstore__s3_parse_list(const char *xml, char *token, size_t cap, bool *more);

/* The local cache (objstore_cache.c): thread-safe; failures to write it
 * are ignored (it is only a cache). get appends to out on a hit only. */
typedef struct kiln_objcache kiln_objcache_t;
bool kiln_objcache__cacheable(const char *name);
kiln_status kiln_objcache__open(const char *dir, uint64_t max, kiln_objcache_t **out,
                                kiln_err *err);
void kiln_objcache__close(kiln_objcache_t *c);
bool kiln_objcache__get(kiln_objcache_t *c, const char *name, uint64_t off, size_t len,
                        kiln_buf *out);
void kiln_objcache__put(kiln_objcache_t *c, const char *name, uint64_t off, size_t len,
                        const void *data, size_t n);
void kiln_objcache__drop(kiln_objcache_t *c, const char *name);
void kiln_objcache__metrics(kiln_objcache_t *c, kiln_buf *out);

#endif
