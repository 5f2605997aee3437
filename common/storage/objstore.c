/* SPDX-License-Identifier: Apache-2.0
 * objstore: the front every caller goes through, whatever the backend: it
 * checks names, puts them under the store's prefix, and counts each call
 * (requests, bytes, latency by operation) for /metrics. */
#include "objstore_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "xmalloc.h"

#define PREFIX_MAX 256

enum { OP_PUT, OP_GET, OP_GET_RANGE, OP_SIZE, OP_LIST, OP_DELETE, N_OPS };
static const char *const op_names[N_OPS] = {"put", "get", "get_range", "size", "list", "delete"};

/* Latency buckets, in seconds: from a local file to a slow, retried request. */
static const double bucket_le[] = {0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10};
#define N_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

typedef struct op_stats {
    atomic_uint_least64_t ok, failed, bytes, micros;
    atomic_uint_least64_t le[N_BUCKETS]; /* not cumulative; summed when rendered */
} op_stats;

struct kiln_objstore {
    const kiln_objstore_ops *ops;
    void *impl;
    char prefix[PREFIX_MAX + 2]; /* "" or "<prefix>/" */
    size_t prefix_len;
    op_stats stats[N_OPS];
    kiln_objcache_t *cache; /* NULL: none */
};

static kiln_objstore_t *wrap(const kiln_objstore_ops *ops, void *impl)
{
    kiln_objstore_t *s = kiln_xcalloc(1, sizeof(*s));
    s->ops = ops;
    s->impl = impl;
    return s;
}

kiln_status kiln_objstore_open_fs(const char *dir, kiln_objstore_t **out, kiln_err *err)
{
    struct fs_store *fs;
    kiln_status st = kiln_objstore__fs_open(dir, &fs, err);
    if (st == KILN_OK)
        *out = wrap(&kiln_objstore__fs_ops, fs);
    return st;
}

/* A prefix is one or more name components; a trailing '/' is dropped. */
static kiln_status set_prefix(kiln_objstore_t *s, const char *prefix, kiln_err *err)
{
    size_t n = prefix ? strlen(prefix) : 0;
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (n == 0)
        return KILN_OK;
    char tmp[PREFIX_MAX + 1];
    if (n > PREFIX_MAX)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "-storage.prefix is longer than %d bytes",
                            PREFIX_MAX);
    memcpy(tmp, prefix, n);
    tmp[n] = '\0';
    kiln_err e2;
    if (kiln_objstore__check_name(tmp, &e2) != KILN_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-storage.prefix \"%s\": components of [A-Za-z0-9._-] separated by '/'",
                            tmp);
    memcpy(s->prefix, tmp, n);
    s->prefix[n] = '/';
    s->prefix[n + 1] = '\0';
    s->prefix_len = n + 1;
    return KILN_OK;
}

static kiln_status open_backend(const kiln_objstore_config *cfg, kiln_objstore_t **out,
                                kiln_err *err)
{
    const char *b = cfg->backend != NULL ? cfg->backend : "";
    if (*b == '\0' || strcmp(b, "filesystem") == 0)
        return kiln_objstore_open_fs(cfg->dir, out, err);
    if (strcmp(b, "s3") != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-storage.backend \"%s\": want filesystem or s3", b);
    void *impl;
    kiln_status st = kiln_objstore__s3_open(&cfg->s3, &impl, err);
    if (st == KILN_OK)
        *out = wrap(&kiln_objstore__s3_ops, impl);
    return st;
}

kiln_status kiln_objstore_open(const kiln_objstore_config *cfg, kiln_objstore_t **out,
                               kiln_err *err)
{
    kiln_objstore_t *s = NULL;
    kiln_status st = open_backend(cfg, &s, err);
    if (st == KILN_OK)
        st = set_prefix(s, cfg->prefix, err);
    if (st == KILN_OK && cfg->cache_dir != NULL && cfg->cache_dir[0] != '\0' &&
        cfg->cache_max_bytes > 0)
        st = kiln_objcache__open(cfg->cache_dir, cfg->cache_max_bytes, &s->cache, err);
    if (st != KILN_OK) {
        kiln_objstore_close(s);
        return st;
    }
    *out = s;
    return KILN_OK;
}

void kiln_objstore_close(kiln_objstore_t *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    kiln_objcache__close(s->cache);
    free(s);
}

const char *kiln_objstore_backend(const kiln_objstore_t *s)
{
    return s->ops->backend;
}

bool kiln_objstore_uses_uring(const kiln_objstore_t *s)
{
    return s->ops == &kiln_objstore__fs_ops && kiln_objstore__fs_uses_uring(s->impl);
}

/* ---- names under the prefix ---- */

/* name checked, then "<prefix><name>" into buf (which holds PREFIX_MAX + 1026 bytes). */
static kiln_status full_name(const kiln_objstore_t *s, const char *name, char *buf, size_t cap,
                             kiln_err *err)
{
    kiln_status st = kiln_objstore__check_name(name, err);
    if (st == KILN_OK)
        snprintf(buf, cap, "%s%s", s->prefix, name);
    return st;
}

#define NAME_BUF (PREFIX_MAX + 1100)

/* ---- counting ---- */

static uint64_t now_us(void)
{
    return (uint64_t)kiln_mono_ns() / 1000u;
}

/* Records one call of op that started at t0 and moved `bytes`. A missing
 * object is an answer, not a failure. */
static kiln_status count(kiln_objstore_t *s, int op, uint64_t t0, kiln_status st, uint64_t bytes)
{
    op_stats *o = &s->stats[op];
    uint64_t us = now_us() - t0;
    atomic_fetch_add(st == KILN_OK || st == KILN_NOT_FOUND ? &o->ok : &o->failed, 1);
    atomic_fetch_add(&o->bytes, bytes);
    atomic_fetch_add(&o->micros, us);
    for (size_t i = 0; i < N_BUCKETS; i++)
        if ((double)us / 1e6 <= bucket_le[i]) {
            atomic_fetch_add(&o->le[i], 1);
            break;
        }
    return st;
}

static void render_op(const kiln_objstore_t *s, int op, kiln_buf *out)
{
    const op_stats *o = &s->stats[op];
    const char *b = s->ops->backend, *n = op_names[op];
    uint64_t ok = atomic_load(&o->ok), failed = atomic_load(&o->failed), cum = 0;
    kiln_buf_printf(
        out,
        "kiln_objstore_requests_total{backend=\"%s\",operation=\"%s\",result=\"ok\"} "
        "%llu\n"
        "kiln_objstore_requests_total{backend=\"%s\",operation=\"%s\",result=\"error\"} "
        "%llu\n",
        b, n, (unsigned long long)ok, b, n, (unsigned long long)failed);
    kiln_buf_printf(out, "kiln_objstore_bytes_total{backend=\"%s\",operation=\"%s\"} %llu\n", b, n,
                    (unsigned long long)atomic_load(&o->bytes));
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += atomic_load(&o->le[i]);
        kiln_buf_printf(out,
                        "kiln_objstore_request_duration_seconds_bucket{backend=\"%s\","
                        "operation=\"%s\",le=\"%g\"} %llu\n",
                        b, n, bucket_le[i], (unsigned long long)cum);
    }
    kiln_buf_printf(out,
                    "kiln_objstore_request_duration_seconds_bucket{backend=\"%s\",operation=\"%s\","
                    "le=\"+Inf\"} %llu\n"
                    "kiln_objstore_request_duration_seconds_sum{backend=\"%s\",operation=\"%s\"} "
                    "%.6f\n"
                    "kiln_objstore_request_duration_seconds_count{backend=\"%s\",operation=\"%s\"} "
                    "%llu\n",
                    b, n, (unsigned long long)(ok + failed), b, n,
                    (double)atomic_load(&o->micros) / 1e6, b, n, (unsigned long long)(ok + failed));
}

void kiln_objstore_metrics(kiln_objstore_t *s, kiln_buf *out)
{
    kiln_buf_puts(out, "# HELP kiln_objstore_requests_total Object store calls by operation.\n"
                       "# TYPE kiln_objstore_requests_total counter\n"
                       "# HELP kiln_objstore_bytes_total Object bytes written or read.\n"
                       "# TYPE kiln_objstore_bytes_total counter\n"
                       "# HELP kiln_objstore_request_duration_seconds Object store call latency, "
                       "retries included.\n"
                       "# TYPE kiln_objstore_request_duration_seconds histogram\n");
    for (int op = 0; op < N_OPS; op++)
        render_op(s, op, out);
    if (s->cache != NULL)
        kiln_objcache__metrics(s->cache, out);
}

/* ---- the operations ---- */

kiln_status kiln_objstore_put(kiln_objstore_t *s, const char *name, const void *data, size_t len,
                              kiln_err *err)
{
    char full[NAME_BUF];
    kiln_status st = full_name(s, name, full, sizeof(full), err);
    if (st != KILN_OK)
        return st;
    uint64_t t0 = now_us();
    st = s->ops->put(s->impl, full, data, len, err);
    return count(s, OP_PUT, t0, st, st == KILN_OK ? len : 0);
}

static kiln_status read_range(kiln_objstore_t *s, int op, const char *name, uint64_t off,
                              size_t len, kiln_buf *out, kiln_err *err)
{
    char full[NAME_BUF];
    kiln_status st = full_name(s, name, full, sizeof(full), err);
    if (st != KILN_OK)
        return st;
    /* Block objects are immutable: a cached copy is the object. */
    bool cacheable = s->cache != NULL && kiln_objcache__cacheable(full);
    if (cacheable && kiln_objcache__get(s->cache, full, off, len, out))
        return KILN_OK;
    uint64_t t0 = now_us();
    size_t before = out->len;
    st = s->ops->get_range(s->impl, full, off, len, out, err);
    if (st == KILN_OK && cacheable)
        kiln_objcache__put(s->cache, full, off, len, out->ptr + before, out->len - before);
    return count(s, op, t0, st, st == KILN_OK ? out->len - before : 0);
}

kiln_status kiln_objstore_get(kiln_objstore_t *s, const char *name, kiln_buf *out, kiln_err *err)
{
    return read_range(s, OP_GET, name, 0, SIZE_MAX, out, err);
}

kiln_status kiln_objstore_get_range(kiln_objstore_t *s, const char *name, uint64_t off, size_t len,
                                    kiln_buf *out, kiln_err *err)
{
    if (len == SIZE_MAX)
        return kiln_err_set(err, KILN_OUT_OF_RANGE, "objstore: range too long");
    return read_range(s, OP_GET_RANGE, name, off, len, out, err);
}

kiln_status kiln_objstore_size(kiln_objstore_t *s, const char *name, uint64_t *size, kiln_err *err)
{
    char full[NAME_BUF];
    kiln_status st = full_name(s, name, full, sizeof(full), err);
    if (st != KILN_OK)
        return st;
    uint64_t t0 = now_us();
    return count(s, OP_SIZE, t0, s->ops->size(s->impl, full, size, err), 0);
}

/* Hands the caller's fn each name with the store's prefix taken off. */
typedef struct strip_ctx {
    size_t n;
    void (*fn)(void *ctx, const char *name);
    void *ctx;
} strip_ctx;

static void on_name(void *ctx, const char *name)
{
    strip_ctx *c = ctx;
    c->fn(c->ctx, name + c->n);
}

kiln_status kiln_objstore_list(kiln_objstore_t *s, const char *prefix,
                               void (*fn)(void *ctx, const char *name), void *ctx, kiln_err *err)
{
    if (prefix == NULL)
        prefix = "";
    size_t dir_len;
    kiln_status st = kiln_objstore__check_prefix(prefix, &dir_len, err);
    if (st != KILN_OK)
        return st;
    char full[NAME_BUF];
    snprintf(full, sizeof(full), "%s%s", s->prefix, prefix);
    strip_ctx c = {s->prefix_len, fn, ctx};
    uint64_t t0 = now_us();
    return count(s, OP_LIST, t0, s->ops->list(s->impl, full, on_name, &c, err), 0);
}

kiln_status kiln_objstore_delete(kiln_objstore_t *s, const char *name, kiln_err *err)
{
    char full[NAME_BUF];
    kiln_status st = full_name(s, name, full, sizeof(full), err);
    if (st != KILN_OK)
        return st;
    if (s->cache != NULL)
        kiln_objcache__drop(s->cache, full);
    uint64_t t0 = now_us();
    return count(s, OP_DELETE, t0, s->ops->del(s->impl, full, err), 0);
}
