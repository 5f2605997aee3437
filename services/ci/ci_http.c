/* SPDX-License-Identifier: Apache-2.0
 * libcurl for the gate (ci_http.h): the one place curl's errors are translated. */
#include "ci_http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* Replies are capped: a merged profile is bounded by the server's own limits. */
#define REPLY_MAX (512u << 20)

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    kiln_ci_body *b = arg;
    size_t len = size * n;
    if (b->len + len > REPLY_MAX)
        return 0;
    KILN_GROW(b->ptr, b->cap, b->len + len + 1);
    memcpy(b->ptr + b->len, p, len);
    b->len += len;
    b->ptr[b->len] = 0;
    return len;
}

static struct curl_slist *headers(const kiln_ci_conn *c, const char *ctype)
{
    char line[1024];
    struct curl_slist *h = NULL;
    snprintf(line, sizeof(line), "Content-Type: %s", ctype);
    h = curl_slist_append(h, line);
    if (c->token && *c->token) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, line);
    }
    if (c->tenant && *c->tenant) {
        snprintf(line, sizeof(line), "X-Scope-OrgID: %s", c->tenant);
        h = curl_slist_append(h, line);
    }
    return curl_slist_append(h, "Expect:");
}

static kiln_status http_error(long code, const kiln_ci_body *b, kiln_err *err)
{
    kiln_status st = code == 401   ? KILN_UNAUTHENTICATED
                     : code == 403 ? KILN_PERMISSION_DENIED
                     : code == 429 ? KILN_RESOURCE_EXHAUSTED
                     : code < 500  ? KILN_INVALID_ARGUMENT
                                   : KILN_UNAVAILABLE;
    return kiln_err_set(err, st, "HTTP %ld: %.*s", code, (int)(b->len > 200 ? 200 : b->len),
                        b->ptr ? (const char *)b->ptr : "");
}

kiln_status kiln_ci_post(const kiln_ci_conn *conn, const char *path, const char *ctype,
                         const void *body, size_t len, kiln_ci_body *reply, kiln_err *err)
{
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", conn->url, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = headers(conn, ctype);
    kiln_ci_body b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (conn->basic && *conn->basic) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, conn->basic);
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    kiln_status st = KILN_OK;
    if (rc != CURLE_OK)
        st = kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", url, curl_easy_strerror(rc));
    else if (code < 200 || code > 299)
        st = http_error(code, &b, err);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (st != KILN_OK) {
        free(b.ptr);
        return st;
    }
    *reply = b;
    return KILN_OK;
}

char *kiln_ci_escape(const char *s)
{
    char *e = curl_escape(s, 0);
    char *out = kiln_xstrdup(e ? e : "");
    curl_free(e);
    return out;
}
