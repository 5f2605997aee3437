/* SPDX-License-Identifier: Apache-2.0
 * labels: sorting, fingerprints and validation of series label sets. */
#include "labels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

/* strcmp, with the first bytes compared inline: label names mostly differ
 * there, and a push sorts and searches a few hundred sets, every compare
 * otherwise a call. */
static inline int name_cmp(const char *a, const char *b)
{
    unsigned char x = (unsigned char)a[0], y = (unsigned char)b[0];
    if (x != y)
        return x < y ? -1 : 1;
    return x == 0 ? 0 : strcmp(a + 1, b + 1);
}

static int cmp_label(const void *a, const void *b)
{
    return name_cmp(((const kiln_label_t *)a)->name, ((const kiln_label_t *)b)->name);
}

void kiln_labels_sort(kiln_label_t *l, size_t n)
{
    /* Label sets are small (<= 30 names); insertion sort beats qsort here. */
    if (n > 32) {
        qsort(l, n, sizeof(*l), cmp_label);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        kiln_label_t x = l[i];
        size_t j = i;
        while (j > 0 && name_cmp(l[j - 1].name, x.name) > 0) {
            l[j] = l[j - 1];
            j--;
        }
        l[j] = x;
    }
}

const char *kiln_labels_get(const kiln_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (name_cmp(l[i].name, name) == 0)
            return l[i].value;
    }
    return NULL;
}

/* Pyroscope's fingerprint hashed in one pass: XXH64 of the streamed
 * fields is XXH64 of their concatenation, and the streaming state copies
 * each of the 4n small fields on its own, which made this a push's largest
 * hashing cost. Sets that do not fit the buffer are streamed. */
#define FP_BUF 1024

static uint64_t fingerprint_streamed(const kiln_label_t *l, size_t n, uint32_t *tag)
{
    XXH64_state_t state, *st = &state;
    XXH3_state_t tag_state, *ts = &tag_state;
    static const char sep = '\xff';
    XXH64_reset(st, 0);
    XXH3_64bits_reset(ts);
    for (size_t i = 0; i < n; i++) {
        const char *f[2] = {l[i].name, l[i].value};
        for (int j = 0; j < 2; j++) {
            size_t len = strlen(f[j]);
            XXH64_update(st, f[j], len), XXH64_update(st, &sep, 1);
            XXH3_64bits_update(ts, f[j], len), XXH3_64bits_update(ts, &sep, 1);
        }
    }
    *tag = (uint32_t)XXH3_64bits_digest(ts);
    return XXH64_digest(st);
}

/* name\xffvalue\xff... of l into buf[FP_BUF]: its length, or SIZE_MAX when
 * it does not fit (and the fields are streamed). */
static size_t fp_bytes(const kiln_label_t *l, size_t n, char *buf)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name), b = strlen(l[i].value);
        if (a + b + 2 > FP_BUF - len)
            return SIZE_MAX;
        memcpy(buf + len, l[i].name, a);
        buf[len + a] = '\xff';
        memcpy(buf + len + a + 1, l[i].value, b);
        buf[len + a + 1 + b] = '\xff';
        len += a + b + 2;
    }
    return len;
}

uint64_t kiln_labels_fingerprint(const kiln_label_t *l, size_t n)
{
    char buf[FP_BUF];
    size_t len = fp_bytes(l, n, buf);
    uint32_t tag;
    return len == SIZE_MAX ? fingerprint_streamed(l, n, &tag) : XXH64(buf, len, 0);
}

uint64_t kiln_labels_fingerprint_tag(const kiln_label_t *l, size_t n, uint32_t *tag)
{
    char buf[FP_BUF];
    size_t len = fp_bytes(l, n, buf);
    if (len == SIZE_MAX)
        return fingerprint_streamed(l, n, tag);
    *tag = (uint32_t)XXH3_64bits(buf, len);
    return XXH64(buf, len, 0);
}

bool kiln_label_name_is_legacy(const char *s)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

bool kiln_utf8_valid(const char *s, size_t len)
{
    if (len == 0)
        return true; /* s may be NULL then */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

/* Control bytes (C0 and DEL) break logs, selectors and the text formats;
 * Pyroscope's label names cannot hold them either. */
static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

kiln_status kiln_labels_validate(const kiln_label_t *l, size_t n, size_t max_names,
                                 size_t max_name_len, size_t max_value_len, kiln_err *err)
{
    if (n == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "error at least one label pair is required per profile");
    if (max_names != 0 && n > max_names)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "profile series has %zu label names; limit %zu", n, max_names);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        if (nl == 0 || !kiln_utf8_valid(l[i].name, nl))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid label name '%.64s'",
                                l[i].name);
        if (max_name_len != 0 && nl > max_name_len)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "label name too long: '%.64s...' has %zu bytes, limit %zu",
                                l[i].name, nl, max_name_len);
        if (max_value_len != 0 && vl > max_value_len)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "label value too long for '%.64s': %zu bytes, limit %zu", l[i].name,
                                vl, max_value_len);
        if (!kiln_utf8_valid(l[i].value, vl))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "label '%.64s' value is not valid UTF-8", l[i].name);
        if (has_control(l[i].name, nl))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "invalid label name '%.64s': control characters are not allowed",
                                l[i].name);
        if (has_control(l[i].value, vl))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "label '%.64s' value has control characters, which are not allowed",
                                l[i].name);
        if (i > 0 && strcmp(l[i - 1].name, l[i].name) == 0)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "duplicate label name '%.64s'",
                                l[i].name);
    }
    const char *name = kiln_labels_get(l, n, KILN_LABEL_NAME);
    if (name == NULL || !kiln_label_name_is_legacy(name))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid or missing %s label '%.64s'",
                            KILN_LABEL_NAME, name ? name : "");
    const char *svc = kiln_labels_get(l, n, KILN_LABEL_SERVICE_NAME);
    if (svc != NULL && *svc == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "empty %s label", KILN_LABEL_SERVICE_NAME);
    return KILN_OK;
}
