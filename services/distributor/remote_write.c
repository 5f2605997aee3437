/* SPDX-License-Identifier: Apache-2.0
 * remote_write: snappy, then one POST per attempt through libcurl, on one
 * handle kept for its connection (sends are serialised by a mutex). */
#include "remote_write.h"

#include <curl/curl.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "xmalloc.h"

#define TIMEOUT_MS 10000L /* a stalled receiver does not hold the sender */
#define BACKOFF_MS 100u
#define BACKOFF_MAX_MS 2000u

struct kiln_rw {
    char url[1024];
    pthread_mutex_t mu;
    CURL *h; /* under mu */
};

kiln_status kiln_rw_create(const char *url, kiln_rw_t **out, kiln_err *err)
{
    bool http = strncmp(url, "http://", 7) == 0, https = strncmp(url, "https://", 8) == 0;
    const char *host = url + (http ? 7 : 8);
    if ((!http && !https) || *host == '\0' || *host == '/' || *host == ':' ||
        strlen(url) >= sizeof(((kiln_rw_t *)0)->url))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "remote write URL %.200s: want http(s)://host[:port]/path", url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    kiln_rw_t *rw = kiln_xcalloc(1, sizeof(*rw));
    snprintf(rw->url, sizeof(rw->url), "%s", url);
    pthread_mutex_init(&rw->mu, NULL);
    rw->h = curl_easy_init();
    if (rw->h == NULL) {
        kiln_rw_destroy(rw);
        return kiln_err_set(err, KILN_INTERNAL, "remote write: curl_easy_init failed");
    }
    *out = rw;
    return KILN_OK;
}

void kiln_rw_destroy(kiln_rw_t *rw)
{
    if (rw == NULL)
        return;
    curl_easy_cleanup(rw->h);
    pthread_mutex_destroy(&rw->mu);
    free(rw);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* One POST; the HTTP status, or -1 when the exchange failed (curl's reason
 * in why). Called under rw->mu. */
static long post(kiln_rw_t *rw, const char *tenant, const char *body, size_t len, char *why,
                 size_t why_cap)
{
    char org[300];
    snprintf(org, sizeof(org), "X-Scope-OrgID: %s", tenant);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/x-protobuf");
    hdrs = curl_slist_append(hdrs, "Content-Encoding: snappy");
    hdrs = curl_slist_append(hdrs, "X-Prometheus-Remote-Write-Version: 0.1.0");
    hdrs = curl_slist_append(hdrs, org);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    CURL *h = rw->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, rw->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(why, why_cap, "%s", curl_easy_strerror(rc));
    return status;
}

/* Full jitter: a random wait in [0, min(cap, base * 2^n)), so senders
 * retrying after one outage do not arrive together. */
static void backoff(int n)
{
    uint64_t ms = (uint64_t)BACKOFF_MS << (n < 5 ? n : 5), rnd = 0;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint64_t)clock();
    uint64_t wait = rnd % ms;
    struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool retryable(long status)
{
    return status < 0 || status >= 500 || status == 429;
}

kiln_status kiln_rw_send(kiln_rw_t *rw, const char *tenant, const uint8_t *req, size_t len,
                         int max_attempts, kiln_err *err)
{
    size_t cap = snappy_max_compressed_length(len), n = cap;
    char *z = kiln_xmalloc(cap ? cap : 1);
    if (snappy_compress((const char *)req, len, z, &n) != SNAPPY_OK) {
        free(z);
        return kiln_err_set(err, KILN_INTERNAL, "snappy: cannot compress %zu bytes", len);
    }
    long status = -1;
    char why[CURL_ERROR_SIZE] = "no answer";
    pthread_mutex_lock(&rw->mu);
    for (int i = 0; i < max_attempts; i++) {
        if (i > 0)
            backoff(i);
        status = post(rw, tenant, z, n, why, sizeof(why));
        if (!retryable(status))
            break;
    }
    pthread_mutex_unlock(&rw->mu);
    free(z);
    if (status >= 200 && status < 300)
        return KILN_OK;
    if (!retryable(status))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "remote write %.200s refused: HTTP %ld",
                            rw->url, status);
    if (status > 0)
        snprintf(why, sizeof(why), "HTTP %ld", status);
    return kiln_err_set(err, KILN_UNAVAILABLE, "remote write %.200s: %s after %d attempts", rw->url,
                        why, max_attempts);
}
