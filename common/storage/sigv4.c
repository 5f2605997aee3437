/* SPDX-License-Identifier: Apache-2.0
 * sigv4: the AWS Signature Version 4 algorithm over OpenSSL's primitives. */
#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void kiln_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    to_hex(md, 32, out);
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &n);
}

void kiln_sigv4_uri_encode(const char *s, size_t n, bool keep_slash, kiln_buf *out)
{
    static const char up[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        if (plain) {
            kiln_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', up[c >> 4], up[c & 15]};
            kiln_buf_append(out, e, 3);
        }
    }
}

/* ---- canonical request ---- */

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Compares "name=value" pairs by name, then by value, byte by byte. */
static int cmp_pair(const void *a, const void *b)
{
    const span *x = a, *y = b;
    const char *ex = memchr(x->p, '=', x->n), *ey = memchr(y->p, '=', y->n);
    size_t kx = ex ? (size_t)(ex - x->p) : x->n, ky = ey ? (size_t)(ey - y->p) : y->n;
    int c = memcmp(x->p, y->p, kx < ky ? kx : ky);
    if (c != 0 || kx != ky)
        return c != 0 ? c : (kx < ky ? -1 : 1);
    c = memcmp(x->p + kx, y->p + ky, x->n - kx < y->n - ky ? x->n - kx : y->n - ky);
    return c != 0 ? c : (x->n < y->n ? -1 : (x->n > y->n));
}

static void put_query(const char *q, kiln_buf *out)
{
    size_t n = 1;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    span *v = kiln_xcalloc(n, sizeof(*v));
    size_t k = 0;
    for (const char *p = q; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0)
            v[k++] = (span){p, len};
        p += len + (amp != NULL);
    }
    qsort(v, k, sizeof(*v), cmp_pair);
    for (size_t i = 0; i < k; i++) {
        if (i > 0)
            kiln_buf_putc(out, '&');
        kiln_buf_append(out, v[i].p, v[i].n);
        if (memchr(v[i].p, '=', v[i].n) == NULL)
            kiln_buf_putc(out, '='); /* "a" signs as "a=" */
    }
    free(v);
}

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const kiln_sigv4_header *)a)->name, ((const kiln_sigv4_header *)b)->name);
}

/* The value with leading and trailing spaces dropped and inner runs of spaces made one. */
static void put_value(const char *v, kiln_buf *out)
{
    while (*v == ' ' || *v == '\t')
        v++;
    bool space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = true;
            continue;
        }
        if (space)
            kiln_buf_putc(out, ' ');
        space = false;
        kiln_buf_putc(out, *v);
    }
}

static kiln_sigv4_header *sorted_headers(const kiln_sigv4_request *r)
{
    kiln_sigv4_header *h = kiln_xcalloc(r->n_headers + 1, sizeof(*h));
    memcpy(h, r->headers, r->n_headers * sizeof(*h));
    qsort(h, r->n_headers, sizeof(*h), cmp_header);
    return h;
}

static void put_signed_names(const kiln_sigv4_header *h, size_t n, kiln_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            kiln_buf_putc(out, ';');
        kiln_buf_puts(out, h[i].name);
    }
}

void kiln_sigv4_canonical_request(const kiln_sigv4_request *r, kiln_buf *out)
{
    kiln_buf_printf(out, "%s\n%s\n", r->method, r->path);
    put_query(r->query ? r->query : "", out);
    kiln_buf_putc(out, '\n');
    kiln_sigv4_header *h = sorted_headers(r);
    for (size_t i = 0; i < r->n_headers; i++) {
        kiln_buf_printf(out, "%s:", h[i].name);
        put_value(h[i].value, out);
        kiln_buf_putc(out, '\n');
    }
    kiln_buf_putc(out, '\n');
    put_signed_names(h, r->n_headers, out);
    kiln_buf_printf(out, "\n%s", r->payload_hash);
    free(h);
}

/* ---- signing ---- */

static void put_scope(const kiln_sigv4_key *k, kiln_buf *out)
{
    kiln_buf_printf(out, "%.8s/%s/%s/aws4_request", k->amz_date, k->region, k->service);
}

void kiln_sigv4_string_to_sign(const kiln_sigv4_key *k, const char *canon, kiln_buf *out)
{
    char hash[65];
    kiln_sigv4_sha256_hex(canon, strlen(canon), hash);
    kiln_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n", k->amz_date);
    put_scope(k, out);
    kiln_buf_printf(out, "\n%s", hash);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
static void signing_key(const kiln_sigv4_key *k, unsigned char out[32])
{
    kiln_buf secret;
    kiln_buf_init(&secret, 0);
    kiln_buf_printf(&secret, "AWS4%s", k->secret_access_key);
    char date[9];
    memcpy(date, k->amz_date, 8);
    date[8] = '\0';
    unsigned char a[32], b[32];
    hmac(secret.ptr, secret.len, date, a);
    hmac(a, 32, k->region, b);
    hmac(b, 32, k->service, a);
    hmac(a, 32, "aws4_request", out);
    OPENSSL_cleanse(secret.ptr, secret.len);
    kiln_buf_free(&secret);
}

void kiln_sigv4_authorization(const kiln_sigv4_key *k, const kiln_sigv4_request *r, kiln_buf *out)
{
    kiln_buf canon, sts;
    kiln_buf_init(&canon, 0);
    kiln_buf_init(&sts, 0);
    kiln_sigv4_canonical_request(r, &canon);
    kiln_sigv4_string_to_sign(k, canon.ptr, &sts);
    unsigned char key[32], sig[32];
    signing_key(k, key);
    hmac(key, 32, sts.ptr, sig);
    char hex[65];
    to_hex(sig, 32, hex);
    kiln_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/", k->access_key_id);
    put_scope(k, out);
    kiln_buf_puts(out, ", SignedHeaders=");
    kiln_sigv4_header *h = sorted_headers(r);
    put_signed_names(h, r->n_headers, out);
    free(h);
    kiln_buf_printf(out, ", Signature=%s", hex);
    kiln_buf_free(&canon);
    kiln_buf_free(&sts);
}
