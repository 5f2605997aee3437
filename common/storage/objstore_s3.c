/* SPDX-License-Identifier: Apache-2.0
 * objstore_s3: the S3 backend, over libcurl with requests signed by
 * sigv4.c. Each thread keeps one curl handle (and so its connections) for
 * every store; a request is retried with jittered exponential backoff on
 * 5xx, 429 and network errors, a bounded number of times; objects above the
 * part size go up as multipart uploads. */
#include "objstore_int.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "s3_creds.h"
#include "sigv4.h"
#include "xmalloc.h"
#include "xml_text.h"

#define MOD "objstore"
#define ERR_BODY_MAX 4096
#define MIN_PART (5u << 20)
#define DEF_PART (16u << 20)
#define BACKOFF_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000

typedef struct s3_store {
    char *scheme; /* "http" or "https" */
    char *host;   /* the Host header (bucket.endpoint when virtual-hosted) */
    char *base;   /* "<scheme>://<host>" */
    char *bucket;
    char *region;
    kiln_s3_creds_t *creds; /* static keys or web identity */
    bool path_style;
    uint64_t part_size;
    long timeout_ms;
    int max_retries;
} s3_store;

/* One request and what came back. */
typedef struct s3_req {
    const char *method;
    const char *key;   /* NULL: the bucket itself */
    const char *query; /* encoded "k=v&..." or "" */
    const void *body;
    size_t body_len;
    const char *range; /* "bytes=a-b" or NULL */
    kiln_buf *out;     /* the body of a 2xx answer (NULL: discarded) */
    bool quiet;        /* the caller reports a failure itself: log nothing */
    /* answers */
    long status;
    kiln_buf err_body; /* the body of any other answer, for its <Code> */
    char content_range[96];
    char etag[128];
    uint64_t content_length;
    bool overflow; /* out's maximum was passed */
} s3_req;

/* ---- one curl handle per thread ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;

static void free_handle(void *h)
{
    curl_easy_cleanup(h);
}

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&curl_key, free_handle);
}

/* The calling thread's handle, reset but keeping its connection cache. */
static CURL *thread_handle(void)
{
    pthread_once(&curl_once, init_curl);
    CURL *h = pthread_getspecific(curl_key);
    if (h == NULL) {
        h = curl_easy_init();
        if (h == NULL) {
            KILN_LOG_ERROR(MOD, "curl_easy_init failed");
            abort();
        }
        pthread_setspecific(curl_key, h);
    } else {
        curl_easy_reset(h);
    }
    return h;
}

/* ---- callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    s3_req *r = ud;
    size_t len = size * n;
    bool ok_status = r->status >= 200 && r->status < 300;
    if (ok_status && r->out != NULL) {
        if (!kiln_buf_append(r->out, p, len)) {
            r->overflow = true;
            return 0; /* aborts the transfer */
        }
    } else if (!ok_status && r->err_body.len + len <= ERR_BODY_MAX) {
        kiln_buf_append(&r->err_body, p, len);
    }
    return len;
}

/* Copies a header's value (trimmed) when its name matches. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0)
        return;
    const char *v = line + nl, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    s3_req *r = ud;
    size_t len = size * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or 100-continue): the status comes first. */
        r->status = strtol(memchr(p, ' ', len) ? (char *)memchr(p, ' ', len) + 1 : p, NULL, 10);
        r->content_range[0] = r->etag[0] = '\0';
        return len;
    }
    char cl[32] = "";
    header_value(p, len, "content-length:", cl, sizeof(cl));
    if (cl[0] != '\0')
        r->content_length = strtoull(cl, NULL, 10);
    header_value(p, len, "content-range:", r->content_range, sizeof(r->content_range));
    header_value(p, len, "etag:", r->etag, sizeof(r->etag));
    return len;
}

/* ---- signing and sending ---- */

static void amz_date(char out[17])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The canonical path: "/<bucket>/<key>" (path style) or "/<key>", encoded. */
static void req_path(const s3_store *s, const s3_req *r, kiln_buf *out)
{
    kiln_buf_putc(out, '/');
    if (s->path_style) {
        kiln_sigv4_uri_encode(s->bucket, strlen(s->bucket), false, out);
        if (r->key != NULL)
            kiln_buf_putc(out, '/');
    }
    if (r->key != NULL)
        kiln_sigv4_uri_encode(r->key, strlen(r->key), true, out);
}

/* Adds the signed headers and the Authorization header to *hl. */
static struct curl_slist *sign(const s3_store *s, const kiln_s3_keys *keys, const s3_req *r,
                               const char *path, struct curl_slist *hl)
{
    char date[17], sha[65];
    amz_date(date);
    kiln_sigv4_sha256_hex(r->body ? r->body : "", r->body_len, sha);
    kiln_sigv4_header h[5] = {
        {"host", s->host}, {"x-amz-content-sha256", sha}, {"x-amz-date", date}};
    size_t n = 3;
    if (r->range != NULL)
        h[n++] = (kiln_sigv4_header){"range", r->range};
    if (keys->session_token[0] != '\0')
        h[n++] = (kiln_sigv4_header){"x-amz-security-token", keys->session_token};
    kiln_sigv4_request sr = {r->method, path, r->query, h, n, sha};
    kiln_sigv4_key k = {keys->access_key_id, keys->secret_access_key, s->region, "s3", date};
    kiln_buf line;
    kiln_buf_init(&line, 0);
    kiln_buf_puts(&line, "Authorization: ");
    kiln_sigv4_authorization(&k, &sr, &line);
    hl = curl_slist_append(hl, line.ptr);
    for (size_t i = 1; i < n; i++) { /* curl sends Host itself, from the URL */
        line.len = 0;
        kiln_buf_printf(&line, "%s: %s", h[i].name, h[i].value);
        hl = curl_slist_append(hl, line.ptr);
    }
    kiln_buf_free(&line);
    /* No 100-continue round trip, and no form content type on bodies. */
    hl = curl_slist_append(hl, "Expect:");
    return curl_slist_append(hl, "Content-Type:");
}

static void set_method(CURL *h, const s3_req *r)
{
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        if (r->body != NULL || strcmp(r->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        }
    }
}

/* One attempt, signed with keys. Returns the curl result; r->status holds
 * the HTTP status. */
static CURLcode attempt(const s3_store *s, const kiln_s3_keys *keys, s3_req *r)
{
    kiln_buf path, url;
    kiln_buf_init(&path, 0);
    kiln_buf_init(&url, 0);
    req_path(s, r, &path);
    kiln_buf_printf(&url, "%s%s%s%s", s->base, path.ptr, r->query[0] ? "?" : "", r->query);
    CURL *h = thread_handle();
    struct curl_slist *hl = sign(s, keys, r, path.ptr, NULL);
    curl_easy_setopt(h, CURLOPT_URL, url.ptr);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    set_method(h, r);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    kiln_buf_free(&path);
    kiln_buf_free(&url);
    return rc;
}

static bool retryable(CURLcode rc, long status, bool overflow)
{
    if (overflow)
        return false;
    if (rc != CURLE_OK)
        return true; /* connect, send, receive, timeout: the network */
    return status >= 500 || status == 429;
}

/* Full jitter: a random wait in [0, min(cap, base * 2^n)). */
static void backoff(int n)
{
    uint64_t ms = BACKOFF_MS << (n < 6 ? n : 6), rnd = 0;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint64_t)clock();
    uint64_t wait = rnd % ms;
    struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Translates a final answer into a status (logged once here). */
static kiln_status answer(const s3_store *s, s3_req *r, CURLcode rc, kiln_err *err)
{
    const char *what = r->key ? r->key : s->bucket;
    if (r->overflow)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "objstore: %s does not fit the buffer",
                            what);
    if (rc != CURLE_OK) {
        if (!r->quiet)
            KILN_LOG_ERROR(MOD, "s3 %s %s: curl error %d: %s", r->method, what, (int)rc,
                           curl_easy_strerror(rc));
        return kiln_err_set(err, KILN_UNAVAILABLE, "objstore: s3 %s %s: %s", r->method, what,
                            curl_easy_strerror(rc));
    }
    if (r->status >= 200 && r->status < 300)
        return KILN_OK;
    char code[64] = "";
    kiln_buf_putc(&r->err_body, '\0');
    kiln_xml_text(r->err_body.ptr, NULL, "Code", code, sizeof(code));
    kiln_status st = KILN_UNAVAILABLE;
    /* Servers differ on an unknown key's status (403 on AWS, 404 on versitygw): the code says. */
    if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
        strcmp(code, "XAdminUserNotFound") == 0 || strcmp(code, "InvalidToken") == 0 ||
        strcmp(code, "ExpiredToken") == 0)
        st = KILN_UNAUTHENTICATED;
    else if (r->status == 404)
        st = KILN_NOT_FOUND;
    else if (r->status == 416)
        st = KILN_OUT_OF_RANGE;
    else if (r->status == 403)
        st = KILN_PERMISSION_DENIED;
    if (st != KILN_NOT_FOUND && st != KILN_OUT_OF_RANGE && !r->quiet)
        KILN_LOG_ERROR(MOD, "s3 %s %s: HTTP %ld %s", r->method, what, r->status, code);
    return kiln_err_set(err, st, "objstore: s3 %s %s: HTTP %ld %s", r->method, what, r->status,
                        code[0] ? code : "");
}

/* Sends r, retrying what may succeed later; each attempt signs with the
 * keys of the moment (a refresh may land between two). A 2xx body is
 * appended to r->out (restored to its length before on failure). */
static kiln_status perform(const s3_store *s, s3_req *r, kiln_err *err)
{
    size_t before = r->out ? r->out->len : 0;
    kiln_s3_keys *keys = kiln_xmalloc(sizeof(*keys));
    kiln_buf_init(&r->err_body, 0);
    CURLcode rc = CURLE_OK;
    for (int n = 0;; n++) {
        r->status = 0;
        r->overflow = false;
        r->err_body.len = 0;
        if (r->out != NULL)
            r->out->len = before;
        kiln_status st = kiln_s3_creds_get(s->creds, keys, err);
        if (st != KILN_OK) { /* expired, not refreshed: nothing to sign with */
            free(keys);
            kiln_buf_free(&r->err_body);
            return st;
        }
        rc = attempt(s, keys, r);
        if (n >= s->max_retries || !retryable(rc, r->status, r->overflow))
            break;
        KILN_LOG_WARN(MOD, "s3 %s %s: %s, retry %d of %d", r->method, r->key ? r->key : s->bucket,
                      rc != CURLE_OK ? curl_easy_strerror(rc) : "server busy", n + 1,
                      s->max_retries);
        backoff(n);
    }
    OPENSSL_cleanse(keys, sizeof(*keys));
    free(keys);
    kiln_status st = answer(s, r, rc, err);
    if (st == KILN_UNAUTHENTICATED) /* expired or revoked temporary keys: get new ones */
        kiln_s3_creds_expire(s->creds);
    if (st != KILN_OK && r->out != NULL)
        r->out->len = before;
    if (r->out != NULL && r->out->ptr != NULL && r->out->len < r->out->cap)
        r->out->ptr[r->out->len] = '\0';
    kiln_buf_free(&r->err_body);
    return st;
}

/* ---- put ---- */

static kiln_status put_single(void *impl, const char *name, const void *data, size_t len,
                              kiln_err *err)
{
    s3_req r = {.method = "PUT", .key = name, .query = "", .body = data, .body_len = len};
    return perform(impl, &r, err);
}

/* Multipart: initiate, one PUT per part (each retried on its own), complete;
 * any failure aborts the upload so that no parts are left behind. */
static kiln_status start_upload(s3_store *s, const char *name, char *id, size_t cap, kiln_err *err)
{
    kiln_buf out;
    kiln_buf_init(&out, 1 << 20);
    s3_req r = {.method = "POST", .key = name, .query = "uploads=", .body = "", .out = &out};
    kiln_status st = perform(s, &r, err);
    if (st == KILN_OK && !kiln_xml_text(out.ptr, NULL, "UploadId", id, cap))
        st = kiln_err_set(err, KILN_UNAVAILABLE, "objstore: s3 multipart %s: no UploadId", name);
    kiln_buf_free(&out);
    return st;
}

static kiln_status put_parts(s3_store *s, const char *name, const char *id, const char *data,
                             size_t len, kiln_buf *done, kiln_err *err)
{
    kiln_buf q, enc;
    kiln_buf_init(&q, 0);
    kiln_buf_init(&enc, 0);
    kiln_sigv4_uri_encode(id, strlen(id), false, &enc);
    kiln_status st = KILN_OK;
    kiln_buf_puts(done, "<CompleteMultipartUpload>");
    for (size_t off = 0, part = 1; off < len && st == KILN_OK; off += s->part_size, part++) {
        size_t n = len - off < s->part_size ? len - off : (size_t)s->part_size;
        q.len = 0;
        kiln_buf_printf(&q, "partNumber=%zu&uploadId=%s", part, enc.ptr);
        s3_req r = {
            .method = "PUT", .key = name, .query = q.ptr, .body = data + off, .body_len = n};
        st = perform(s, &r, err);
        kiln_buf_printf(done, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", part,
                        r.etag);
    }
    kiln_buf_puts(done, "</CompleteMultipartUpload>");
    kiln_buf_free(&q);
    kiln_buf_free(&enc);
    return st;
}

static kiln_status put_multipart(s3_store *s, const char *name, const void *data, size_t len,
                                 kiln_err *err)
{
    char id[1024];
    kiln_status st = start_upload(s, name, id, sizeof(id), err);
    if (st != KILN_OK)
        return st;
    kiln_buf done, q;
    kiln_buf_init(&done, 0);
    kiln_buf_init(&q, 0);
    kiln_buf_puts(&q, "uploadId=");
    kiln_sigv4_uri_encode(id, strlen(id), false, &q);
    st = put_parts(s, name, id, data, len, &done, err);
    if (st == KILN_OK) {
        s3_req r = {
            .method = "POST", .key = name, .query = q.ptr, .body = done.ptr, .body_len = done.len};
        st = perform(s, &r, err);
    }
    if (st != KILN_OK) {
        s3_req r = {.method = "DELETE", .key = name, .query = q.ptr};
        perform(s, &r, NULL);
    }
    kiln_buf_free(&done);
    kiln_buf_free(&q);
    return st;
}

static kiln_status s3_put(void *impl, const char *name, const void *data, size_t len, kiln_err *err)
{
    s3_store *s = impl;
    if (len > s->part_size)
        return put_multipart(s, name, data, len, err);
    return put_single(s, name, data, len, err);
}

/* ---- reads ---- */

static kiln_status s3_size(void *impl, const char *name, uint64_t *size, kiln_err *err)
{
    s3_req r = {.method = "HEAD", .key = name, .query = ""};
    kiln_status st = perform(impl, &r, err);
    if (st == KILN_NOT_FOUND)
        return kiln_err_set(err, KILN_NOT_FOUND, "objstore: no object %s", name);
    if (st == KILN_OK)
        *size = r.content_length;
    return st;
}

static kiln_status past_end(const char *name, uint64_t off, size_t len, kiln_err *err)
{
    return kiln_err_set(err, KILN_OUT_OF_RANGE, "objstore: range %llu+%zu past the end of %s",
                        (unsigned long long)off, len, name);
}

/* A 206 must cover exactly the asked bytes: S3 answers a range that runs
 * past the end with the bytes there are ("bytes a-b/size" with b short). */
static bool range_whole(const char *content_range, uint64_t off, size_t len)
{
    unsigned long long a = 0, b = 0;
    if (sscanf(content_range, "bytes %llu-%llu/", &a, &b) != 2)
        return false;
    return a == off && b + 1 == off + len;
}

/* A 200 to a ranged GET (a server that ignores Range) holds the whole
 * object: keep only the asked bytes. */
static kiln_status keep_slice(kiln_buf *out, size_t before, uint64_t off, size_t len,
                              const char *name, kiln_err *err)
{
    size_t got = out->len - before;
    if (off > got || len > got - off) {
        out->len = before;
        return past_end(name, off, len, err);
    }
    memmove(out->ptr + before, out->ptr + before + off, len);
    out->len = before + len;
    return KILN_OK;
}

static kiln_status s3_get_range(void *impl, const char *name, uint64_t off, size_t len,
                                kiln_buf *out, kiln_err *err)
{
    s3_req r = {.method = "GET", .key = name, .query = "", .out = out};
    if (off == 0 && len == SIZE_MAX) {
        kiln_status st = perform(impl, &r, err);
        return st == KILN_NOT_FOUND ? kiln_err_set(err, st, "objstore: no object %s", name) : st;
    }
    if (len == 0) { /* no byte range can say "nothing": check the size instead */
        uint64_t size;
        kiln_status st = s3_size(impl, name, &size, err);
        return st != KILN_OK || off <= size ? st : past_end(name, off, len, err);
    }
    char range[64];
    snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    r.range = range;
    size_t before = out->len;
    kiln_status st = perform(impl, &r, err);
    if (st == KILN_NOT_FOUND)
        return kiln_err_set(err, st, "objstore: no object %s", name);
    if (st == KILN_OUT_OF_RANGE) /* 416: the range starts at or past the end */
        return past_end(name, off, len, err);
    if (st != KILN_OK)
        return st;
    if (r.status == 200)
        return keep_slice(out, before, off, len, name, err);
    if (!range_whole(r.content_range, off, len) || out->len - before != len) {
        out->len = before;
        return past_end(name, off, len, err);
    }
    return KILN_OK;
}

/* ---- list ---- */

typedef struct namevec {
    char **v;
    size_t len, cap;
} namevec;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects every <Key> of a ListObjectsV2 page that is a valid object name. */
static void page_keys(const char *xml, namevec *names)
{
    for (const char *p = strstr(xml, "<Key>"); p != NULL; p = strstr(p, "<Key>")) {
        p += 5;
        const char *e = strstr(p, "</Key>");
        if (e == NULL)
            break;
        char *k = kiln_xstrndup(p, (size_t)(e - p));
        kiln_xml_unescape(k);
        if (kiln_objstore__check_name(k, NULL) == KILN_OK) {
            KILN_GROW(names->v, names->cap, names->len + 1);
            names->v[names->len++] = k;
        } else {
            free(k);
        }
        p = e;
    }
}

/* One page: list-type=2, the prefix and the continuation token, encoded. */
static kiln_status list_page(s3_store *s, const char *prefix, const char *token, kiln_buf *xml,
                             kiln_err *err)
{
    kiln_buf q;
    kiln_buf_init(&q, 0);
    if (token[0] != '\0') {
        kiln_buf_puts(&q, "continuation-token=");
        kiln_sigv4_uri_encode(token, strlen(token), false, &q);
        kiln_buf_putc(&q, '&');
    }
    kiln_buf_puts(&q, "list-type=2&prefix=");
    kiln_sigv4_uri_encode(prefix, strlen(prefix), false, &q);
    xml->len = 0;
    s3_req r = {.method = "GET", .query = q.ptr, .out = xml};
    kiln_status st = perform(s, &r, err);
    kiln_buf_free(&q);
    return st;
}

/* Takes a ListObjectsV2 page's keys into names; true (token set to the
 * unescaped NextContinuationToken) when another page follows. */
static bool parse_page(const char *xml, namevec *names, char *token, size_t cap)
{
    char truncated[16] = "";
    page_keys(xml, names);
    if (!kiln_xml_text(xml, NULL, "IsTruncated", truncated, sizeof(truncated)) ||
        strcmp(truncated, "true") != 0 ||
        !kiln_xml_text(xml, NULL, "NextContinuationToken", token, cap) || token[0] == '\0')
        return false;
    return true;
}

static void free_names(namevec *names)
{
    for (size_t i = 0; i < names->len; i++)
        free(names->v[i]);
    free(names->v);
    *names = (namevec){0};
}

size_t kiln_objstore__s3_parse_list(const char *xml, char *token, size_t cap, bool *more)
{
    namevec names = {0};
    *more = parse_page(xml, &names, token, cap);
    size_t n = names.len;
    free_names(&names);
    return n;
}

#define MAX_PAGES 1000000 /* a billion keys: a bound, not a limit anyone meets */

static kiln_status s3_list(void *impl, const char *prefix, void (*fn)(void *ctx, const char *name),
                           void *ctx, kiln_err *err)
{
    namevec names = {0};
    kiln_buf xml;
    kiln_buf_init(&xml, 64u << 20);
    char token[2048] = "";
    kiln_status st = KILN_OK;
    for (int page = 0; page < MAX_PAGES; page++) {
        st = list_page(impl, prefix, token, &xml, err);
        if (st != KILN_OK || !parse_page(xml.ptr, &names, token, sizeof(token)))
            break;
    }
    kiln_buf_free(&xml);
    if (st == KILN_OK && names.len > 0) { /* qsort wants a non-NULL array */
        qsort(names.v, names.len, sizeof(char *), cmp_name);
        for (size_t i = 0; i < names.len; i++)
            fn(ctx, names.v[i]);
    }
    free_names(&names);
    return st;
}

/* ---- delete ---- */

static kiln_status s3_delete(void *impl, const char *name, kiln_err *err)
{
    s3_req r = {.method = "DELETE", .key = name, .query = ""};
    kiln_status st = perform(impl, &r, err);
    return st == KILN_NOT_FOUND ? KILN_OK : st;
}

/* ---- open / close ---- */

static void s3_close(void *impl)
{
    s3_store *s = impl;
    if (s == NULL)
        return;
    free(s->scheme);
    free(s->host);
    free(s->base);
    free(s->bucket);
    free(s->region);
    kiln_s3_creds_destroy(s->creds);
    free(s);
}

/* Splits the endpoint into scheme and host; the host is the bucket's own
 * subdomain unless path style is forced. */
static kiln_status set_endpoint(s3_store *s, const kiln_objstore_s3_config *c, kiln_err *err)
{
    const char *e = c->endpoint ? c->endpoint : "";
    const char *scheme = c->insecure ? "http" : "https";
    if (strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0) {
        scheme = e[4] == 's' ? "https" : "http";
        e = strstr(e, "://") + 3;
    }
    size_t n = strlen(e);
    while (n > 0 && e[n - 1] == '/')
        n--;
    if (n == 0 || memchr(e, '/', n) != NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-storage.s3.endpoint \"%s\": want host[:port] or a URL without a path",
                            c->endpoint ? c->endpoint : "");
    s->scheme = kiln_xstrdup(scheme);
    kiln_buf h;
    kiln_buf_init(&h, 0);
    kiln_buf_printf(&h, "%s%s%.*s", s->path_style ? "" : s->bucket, s->path_style ? "" : ".",
                    (int)n, e);
    s->host = kiln_buf_detach(&h, &n);
    kiln_buf_printf(&h, "%s://%s", s->scheme, s->host);
    s->base = kiln_buf_detach(&h, &n);
    return KILN_OK;
}

static kiln_status configure(s3_store *s, const kiln_objstore_s3_config *c, kiln_err *err)
{
    s->bucket = kiln_xstrdup(c->bucket ? c->bucket : "");
    s->region = kiln_xstrdup(c->region && c->region[0] ? c->region : "us-east-1");
    s->path_style = c->force_path_style;
    s->part_size =
        c->part_size == 0 ? DEF_PART : (c->part_size < MIN_PART ? MIN_PART : c->part_size);
    s->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 30000;
    s->max_retries = c->max_retries > 0 ? c->max_retries : 5;
    if (s->bucket[0] == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "-storage.backend=s3 needs -storage.s3.bucket-name");
    kiln_status st = set_endpoint(s, c, err);
    if (st != KILN_OK)
        return st;
    kiln_s3_creds_config cc = {.access_key_id = c->access_key_id,
                               .secret_access_key = c->secret_access_key,
                               .session_token = c->session_token,
                               .sts_endpoint = c->sts_endpoint,
                               .region = s->region,
                               .timeout_ms = (int)s->timeout_ms};
    return kiln_s3_creds_create(&cc, &s->creds, err);
}

/* One listing of at most one key proves the endpoint, the credentials and
 * the bucket, so that a wrong one fails at start rather than at the first
 * flush. */
static kiln_status check_bucket(s3_store *s, kiln_err *err)
{
    kiln_buf xml;
    kiln_buf_init(&xml, 1 << 20);
    s3_req r = {.method = "GET", .query = "list-type=2&max-keys=1", .out = &xml, .quiet = true};
    kiln_err e2;
    kiln_status st = perform(s, &r, &e2);
    kiln_buf_free(&xml);
    if (st == KILN_OK)
        return KILN_OK;
    if (st == KILN_NOT_FOUND)
        return kiln_err_set(err, st,
                            "S3 bucket \"%s\" does not exist at %s (-storage.s3.bucket-name)",
                            s->bucket, s->base);
    if (st == KILN_UNAUTHENTICATED || st == KILN_PERMISSION_DENIED)
        return kiln_err_set(err, st, "S3 at %s refused the credentials for bucket \"%s\": %s (%s)",
                            s->base, s->bucket, e2.msg, kiln_s3_creds_describe(s->creds));
    return kiln_err_set(err, st, "S3 at %s (-storage.s3.endpoint): %s", s->base, e2.msg);
}

kiln_status kiln_objstore__s3_open(const kiln_objstore_s3_config *cfg, void **out, kiln_err *err)
{
    s3_store *s = kiln_xcalloc(1, sizeof(*s));
    kiln_status st = configure(s, cfg, err);
    if (st == KILN_OK)
        st = check_bucket(s, err);
    if (st != KILN_OK) {
        s3_close(s);
        return st;
    }
    KILN_LOG_INFO(MOD, "s3 bucket %s at %s (region %s, %s credentials)", s->bucket, s->base,
                  s->region, kiln_s3_creds_source(s->creds));
    *out = s;
    return KILN_OK;
}

const kiln_objstore_ops kiln_objstore__s3_ops = {
    "s3", s3_put, s3_get_range, s3_size, s3_list, s3_delete, s3_close,
};
