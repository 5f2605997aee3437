/* SPDX-License-Identifier: Apache-2.0
 * gzip: libdeflate wrappers with an output cap. */
#include "gzip.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

bool kiln_gzip_is(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/* Deflate cannot expand its input more than 1032 times: a larger ISIZE lies. */
#define DEFLATE_MAX_RATIO 1032

/* The trailer's ISIZE is the size mod 2^32: a good first guess, not a promise
 * (a lying one is bounded by the deflate ratio, so a small body cannot make us
 * reserve much budget). */
static size_t size_hint(const uint8_t *data, size_t len, size_t max)
{
    size_t hint = len * 4;
    if (len >= 18) {
        const uint8_t *t = data + len - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if (isize >= len / 2 && isize / DEFLATE_MAX_RATIO <= len)
            hint = isize;
    }
    if (hint < 4096)
        hint = 4096;
    return hint > max ? max : hint;
}

/* One decompressor per thread, made on its first body and freed when the
 * thread ends: making one per body (a malloc and the clearing of its
 * tables) was 1.4% of a small push's server CPU. libdeflate keeps no state
 * between calls, so a failed body leaves nothing behind for the next. */
static pthread_key_t dec_key;
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void free_decompressor(void *d)
{
    libdeflate_free_decompressor(d);
}

static void make_dec_key(void)
{
    if (pthread_key_create(&dec_key, free_decompressor) != 0)
        abort(); /* only when the process is out of keys: a build defect */
}

static struct libdeflate_decompressor *thread_decompressor(void)
{
    pthread_once(&dec_once, make_dec_key);
    struct libdeflate_decompressor *d = pthread_getspecific(dec_key);
    if (d == NULL) {
        d = libdeflate_alloc_decompressor();
        if (d != NULL && pthread_setspecific(dec_key, d) != 0) {
            libdeflate_free_decompressor(d);
            d = NULL;
        }
    }
    return d;
}

kiln_status kiln_gunzip(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max, uint8_t **out,
                        size_t *out_len, kiln_err *err)
{
    return kiln_gunzip_budget(a, data, len, max, NULL, out, out_len, err);
}

kiln_status kiln_gunzip_maybe(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                              const uint8_t **out, size_t *out_len, kiln_err *err)
{
    return kiln_gunzip_maybe_budget(a, data, len, max, NULL, out, out_len, err);
}

kiln_status kiln_gunzip_budget(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                               kiln_inflight_t *budget, uint8_t **out, size_t *out_len,
                               kiln_err *err)
{
    struct libdeflate_decompressor *d = thread_decompressor();
    if (d == NULL)
        return kiln_err_set(err, KILN_INTERNAL, "gzip: cannot allocate decompressor");
    kiln_status st = KILN_OK;
    size_t cap = size_hint(data, len, max);
    for (;;) {
        /* Every attempt's buffer stays in the arena until the request ends,
         * so each one is reserved from the budget before it is touched. */
        st = kiln_inflight_reserve(budget, cap + 1, a, err);
        if (st != KILN_OK)
            break;
        uint8_t *buf = kiln_arena_alloc(a, cap + 1);
        if (buf == NULL) {
            st = kiln_err_set(err, KILN_OUT_OF_RANGE, "gzip: request memory limit reached");
            break;
        }
        size_t in_used = 0, got = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(d, data, len, buf, cap, &in_used, &got);
        if (r == LIBDEFLATE_SUCCESS) {
            *out = buf;
            *out_len = got;
            break;
        }
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE) {
            st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "gzip: corrupt or truncated data");
            break;
        }
        if (cap >= max) {
            st = kiln_err_set(err, KILN_OUT_OF_RANGE,
                              "decompressed size exceeds the limit of %zu bytes", max);
            break;
        }
        cap = cap > max / 4 ? max : cap * 4;
    }
    return st;
}

kiln_status kiln_gunzip_maybe_budget(kiln_arena_t *a, const uint8_t *data, size_t len, size_t max,
                                     kiln_inflight_t *budget, const uint8_t **out, size_t *out_len,
                                     kiln_err *err)
{
    if (!kiln_gzip_is(data, len)) {
        if (len > max)
            return kiln_err_set(err, KILN_OUT_OF_RANGE,
                                "profile size %zu exceeds the limit of %zu bytes", len, max);
        *out = data;
        *out_len = len;
        return KILN_OK;
    }
    uint8_t *o;
    size_t ol;
    kiln_status st = kiln_gunzip_budget(a, data, len, max, budget, &o, &ol, err);
    if (st == KILN_OK) {
        *out = o;
        *out_len = ol;
    }
    return st;
}

bool kiln_gzip(const void *data, size_t len, int level, kiln_buf *out)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    if (c == NULL)
        return false;
    size_t bound = libdeflate_gzip_compress_bound(c, len);
    bool ok = kiln_buf_reserve(out, bound);
    if (ok) {
        size_t n = libdeflate_gzip_compress(c, data, len, out->ptr + out->len, bound);
        ok = n != 0;
        out->len += n;
    }
    libdeflate_free_compressor(c);
    return ok;
}
