/* SPDX-License-Identifier: Apache-2.0
 * s3_creds: static keys, or web identity traded at STS (over libcurl) and
 * refreshed on demand by whichever caller first finds them due. */
#include "s3_creds.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "sigv4.h"
#include "xmalloc.h"
#include "xml_text.h"

#define MOD "objstore"
#define STS_BODY_MAX (1u << 20)
#define STS_ATTEMPTS 3
#define NS 1000000000LL

struct kiln_s3_creds {
    bool web; /* web identity; else static */
    char *role_arn, *token_file, *session_name, *sts_url;
    char describe[512];
    long timeout_ms;
    const kiln_clock *clock;
    pthread_mutex_t mu;
    pthread_cond_t done; /* a refresh finished */
    kiln_s3_keys keys;   /* current (under mu) */
    int64_t refresh_at_ns, next_try_ns;
    bool refreshing;
    kiln_err last; /* the last failed refresh's reason */
    uint64_t calls, failed;
};

/* ---- the STS answer ---- */

/* The text of <tag> within [from, to), unescaped: false when absent,
 * empty or longer than cap - 1. */
static bool xml_field(const char *from, const char *to, const char *tag, char *out, size_t cap)
{
    return kiln_xml_text(from, to, tag, out, cap) && out[0] != '\0';
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)" -> ns since the epoch. */
static bool parse_time(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return false;
    const char *p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return false;
    /* Nanoseconds since the epoch overflow in 2262. */
    if (tm.tm_year < 1970 || tm.tm_year > 2200 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *ns = (int64_t)t * NS;
    return t > 0;
}

kiln_status kiln_s3_creds_parse_sts(const char *xml, kiln_s3_keys *out, kiln_err *err)
{
    const char *c = xml != NULL ? strstr(xml, "<Credentials>") : NULL;
    const char *end = c != NULL ? strstr(c, "</Credentials>") : NULL;
    if (end == NULL)
        return kiln_err_set(err, KILN_UNAVAILABLE, "STS answer holds no <Credentials>");
    kiln_s3_keys k;
    memset(&k, 0, sizeof(k)); /* a token may be absent: then it is "" */
    char exp[64];
    const char *missing = NULL;
    if (!xml_field(c, end, "AccessKeyId", k.access_key_id, sizeof(k.access_key_id)))
        missing = "AccessKeyId";
    else if (!xml_field(c, end, "SecretAccessKey", k.secret_access_key,
                        sizeof(k.secret_access_key)))
        missing = "SecretAccessKey";
    /* absent or empty is fine (some S3-compatible STS services issue keys
     * that need none); too long is not */
    else if (!kiln_xml_text(c, end, "SessionToken", k.session_token, sizeof(k.session_token)) &&
             kiln_xml_has(c, end, "SessionToken"))
        missing = "SessionToken";
    else if (!xml_field(c, end, "Expiration", exp, sizeof(exp)) || !parse_time(exp, &k.expires_ns))
        missing = "Expiration";
    if (missing != NULL) {
        OPENSSL_cleanse(&k, sizeof(k));
        return kiln_err_set(err, KILN_UNAVAILABLE,
                            "STS answer: <%s> is missing, empty, too long or malformed", missing);
    }
    *out = k;
    OPENSSL_cleanse(&k, sizeof(k));
    return KILN_OK;
}

/* ---- the STS call ---- */

/* The web identity token, trimmed, into out (a JWT: no secret to wipe
 * beyond what the file itself holds, but wiped anyway by the caller). */
static kiln_status read_token(const char *path, kiln_buf *out, kiln_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", path,
                            strerror(errno));
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0 && out->len <= KILN_S3_JWT_MAX)
        kiln_buf_append(out, chunk, (size_t)n);
    int e = errno;
    close(fd);
    while (out->len > 0 && (out->ptr[out->len - 1] == '\n' || out->ptr[out->len - 1] == '\r' ||
                            out->ptr[out->len - 1] == ' '))
        out->len--;
    if (n < 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", path,
                            strerror(e));
    if (out->len == 0 || out->len > KILN_S3_JWT_MAX)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "AWS_WEB_IDENTITY_TOKEN_FILE %s: empty or larger than %d bytes", path,
                            KILN_S3_JWT_MAX);
    return KILN_OK;
}

static void form_field(kiln_buf *b, const char *name, const char *v, size_t n)
{
    if (b->len > 0)
        kiln_buf_putc(b, '&');
    kiln_buf_printf(b, "%s=", name);
    kiln_sigv4_uri_encode(v, n, false, b);
}

/* The POST body: AssumeRoleWithWebIdentity needs no signature; the token is
 * the proof. In the body rather than the URL, so no proxy logs it. */
static void sts_form(const kiln_s3_creds_t *c, const kiln_buf *jwt, kiln_buf *form)
{
    form_field(form, "Action", "AssumeRoleWithWebIdentity", 25);
    form_field(form, "RoleArn", c->role_arn, strlen(c->role_arn));
    form_field(form, "RoleSessionName", c->session_name, strlen(c->session_name));
    form_field(form, "Version", "2011-06-15", 10);
    form_field(form, "WebIdentityToken", jwt->ptr, jwt->len);
}

static size_t on_sts_body(char *p, size_t size, size_t n, void *ud)
{
    kiln_buf *b = ud;
    size_t len = size * n;
    return b->len + len <= STS_BODY_MAX && kiln_buf_append(b, p, len) ? len : 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* One POST; *status holds the HTTP status when the call returns CURLE_OK. */
static CURLcode sts_post(const kiln_s3_creds_t *c, const kiln_buf *form, kiln_buf *body,
                         long *status)
{
    pthread_once(&curl_once, init_curl);
    CURL *h = curl_easy_init();
    if (h == NULL)
        return CURLE_FAILED_INIT;
    struct curl_slist *hl =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    hl = curl_slist_append(hl, "Accept: application/xml");
    curl_easy_setopt(h, CURLOPT_URL, c->sts_url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form->ptr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form->len);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sts_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* A refusal's status from the STS error's <Code>. */
static kiln_status sts_refusal(long status, const char *code)
{
    if (strcmp(code, "AccessDenied") == 0)
        return KILN_PERMISSION_DENIED;
    if (status >= 500 || status == 429 || strcmp(code, "IDPCommunicationError") == 0 ||
        strcmp(code, "Throttling") == 0)
        return KILN_UNAVAILABLE;
    return status >= 400 ? KILN_UNAUTHENTICATED : KILN_UNAVAILABLE;
}

/* Translates one answer (2xx parsed into *out). */
static kiln_status sts_answer(const kiln_s3_creds_t *c, CURLcode rc, long status, kiln_buf *body,
                              kiln_s3_keys *out, kiln_err *err)
{
    if (rc != CURLE_OK)
        return kiln_err_set(err, KILN_UNAVAILABLE, "STS %s: %s", c->sts_url,
                            curl_easy_strerror(rc));
    kiln_buf_putc(body, '\0');
    if (status >= 200 && status < 300) {
        kiln_err e2;
        kiln_status st = kiln_s3_creds_parse_sts(body->ptr, out, &e2);
        return st == KILN_OK ? st : kiln_err_set(err, st, "STS %s: %s", c->sts_url, e2.msg);
    }
    char code[64] = "", msg[200] = "";
    const char *end = body->ptr + body->len;
    xml_field(body->ptr, end, "Code", code, sizeof(code));
    xml_field(body->ptr, end, "Message", msg, sizeof(msg));
    return kiln_err_set(err, sts_refusal(status, code),
                        "STS %s refused AssumeRoleWithWebIdentity for %s: HTTP %ld %s %s",
                        c->sts_url, c->role_arn, status, code, msg);
}

/* Reads the token file and trades it at STS; a network error or a busy
 * STS is tried again twice, shortly. */
static kiln_status fetch(kiln_s3_creds_t *c, kiln_s3_keys *out, kiln_err *err)
{
    kiln_buf jwt, form, body;
    kiln_buf_init(&jwt, 0);
    kiln_buf_init(&form, 0);
    kiln_buf_init(&body, 0);
    kiln_status st = read_token(c->token_file, &jwt, err);
    if (st == KILN_OK)
        sts_form(c, &jwt, &form);
    for (int i = 0; st == KILN_OK && i < STS_ATTEMPTS; i++) {
        long status = 0;
        body.len = 0;
        CURLcode rc = sts_post(c, &form, &body, &status);
        st = sts_answer(c, rc, status, &body, out, err);
        if (st != KILN_UNAVAILABLE || i + 1 == STS_ATTEMPTS)
            break;
        struct timespec ts = {0, (long)(200 << i) * 1000000L};
        nanosleep(&ts, NULL);
        st = KILN_OK;
    }
    if (jwt.ptr != NULL)
        OPENSSL_cleanse(jwt.ptr, jwt.len);
    if (form.ptr != NULL)
        OPENSSL_cleanse(form.ptr, form.len);
    kiln_buf_free(&jwt);
    kiln_buf_free(&form);
    kiln_buf_free(&body);
    return st;
}

/* ---- refresh ---- */

/* When keys fetched at now are due again: the margin before expiry, or
 * half their lifetime when that is shorter (short-lived keys). */
static int64_t refresh_at(int64_t now, int64_t expires)
{
    int64_t margin = (expires - now) / 2;
    if (margin > KILN_S3_CREDS_MARGIN_NS)
        margin = KILN_S3_CREDS_MARGIN_NS;
    return expires - (margin > 0 ? margin : 0);
}

/* One refresh, the lock dropped around the STS call. Lock held. */
static void refresh(kiln_s3_creds_t *c, int64_t now)
{
    c->refreshing = true;
    pthread_mutex_unlock(&c->mu);
    kiln_s3_keys *fresh = kiln_xmalloc(sizeof(*fresh));
    kiln_err e = {KILN_OK, ""};
    kiln_status st = fetch(c, fresh, &e);
    pthread_mutex_lock(&c->mu);
    c->calls++;
    c->refreshing = false;
    if (st == KILN_OK) {
        c->keys = *fresh;
        c->refresh_at_ns = refresh_at(now, fresh->expires_ns);
        KILN_LOG_INFO(MOD, "s3 credentials of role %s refreshed (key %s, valid for %llds)",
                      c->role_arn, fresh->access_key_id,
                      (long long)((fresh->expires_ns - now) / NS));
    } else {
        c->failed++;
        c->last = e;
        c->next_try_ns = now + KILN_S3_CREDS_RETRY_NS;
        KILN_LOG_WARN_SAMPLED("-", "s3-credentials", MOD,
                              "s3 credentials refresh failed (current keys expire in %llds): %s",
                              (long long)((c->keys.expires_ns - now) / NS), e.msg);
    }
    OPENSSL_cleanse(fresh, sizeof(*fresh));
    free(fresh);
    pthread_cond_broadcast(&c->done);
}

kiln_status kiln_s3_creds_get(kiln_s3_creds_t *c, kiln_s3_keys *out, kiln_err *err)
{
    pthread_mutex_lock(&c->mu);
    int64_t now = c->clock->wall_ns(c->clock->ctx);
    if (c->web && !c->refreshing && now >= c->refresh_at_ns && now >= c->next_try_ns)
        refresh(c, now);
    /* Another caller is refreshing and ours have run out: wait for it
     * (bounded by its STS timeout). */
    while (c->web && c->refreshing && now >= c->keys.expires_ns)
        pthread_cond_wait(&c->done, &c->mu);
    kiln_status st = KILN_OK;
    if (c->web && now >= c->keys.expires_ns)
        st = kiln_err_set(err, KILN_UNAVAILABLE,
                          "objstore: the S3 credentials of role %s expired and could not be "
                          "refreshed: %s",
                          c->role_arn, c->last.msg);
    else
        *out = c->keys;
    pthread_mutex_unlock(&c->mu);
    return st;
}

void kiln_s3_creds_expire(kiln_s3_creds_t *c)
{
    if (!c->web)
        return;
    pthread_mutex_lock(&c->mu);
    c->refresh_at_ns = 0;
    pthread_mutex_unlock(&c->mu);
}

void kiln_s3_creds_counts(kiln_s3_creds_t *c, uint64_t *calls, uint64_t *failed)
{
    pthread_mutex_lock(&c->mu);
    *calls = c->calls;
    *failed = c->failed;
    pthread_mutex_unlock(&c->mu);
}

/* ---- create ---- */

/* The setting's value, else the environment variable's, else "". */
static const char *setting(const char *v, const char *env)
{
    if (v != NULL && v[0] != '\0')
        return v;
    v = getenv(env);
    return v != NULL ? v : "";
}

static bool copy_key(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap)
        return false;
    memcpy(dst, v, n + 1);
    return true;
}

static kiln_status static_keys(kiln_s3_creds_t *c, const kiln_s3_creds_config *cfg, const char *id,
                               const char *secret, kiln_err *err)
{
    const char *token = setting(cfg->session_token, "AWS_SESSION_TOKEN");
    if (!copy_key(c->keys.access_key_id, sizeof(c->keys.access_key_id), id) ||
        !copy_key(c->keys.secret_access_key, sizeof(c->keys.secret_access_key), secret) ||
        !copy_key(c->keys.session_token, sizeof(c->keys.session_token), token))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "S3 access key ID, secret or session token longer than allowed");
    snprintf(c->describe, sizeof(c->describe),
             "-storage.s3.access-key-id, -storage.s3.secret-access-key");
    return KILN_OK;
}

/* The STS URL: the setting, AWS_ENDPOINT_URL_STS, or the region's. */
static char *sts_url(const kiln_s3_creds_config *cfg)
{
    const char *v = setting(cfg->sts_endpoint, "AWS_ENDPOINT_URL_STS");
    kiln_buf b;
    kiln_buf_init(&b, 0);
    const char *region = cfg->region != NULL && cfg->region[0] ? cfg->region : "us-east-1";
    const char *mode = getenv("AWS_STS_REGIONAL_ENDPOINTS");
    if (v[0] != '\0')
        kiln_buf_printf(&b, "%s%s", strstr(v, "://") != NULL ? "" : "https://", v);
    else if (mode != NULL && strcmp(mode, "legacy") == 0)
        kiln_buf_puts(&b, "https://sts.amazonaws.com");
    else
        kiln_buf_printf(&b, "https://sts.%s.amazonaws.com%s", region,
                        strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    size_t n;
    return kiln_buf_detach(&b, &n);
}

static kiln_status web_identity(kiln_s3_creds_t *c, const kiln_s3_creds_config *cfg,
                                const char *arn, const char *file, kiln_err *err)
{
    c->web = true;
    c->role_arn = kiln_xstrdup(arn);
    c->token_file = kiln_xstrdup(file);
    const char *name = setting(cfg->session_name, "AWS_ROLE_SESSION_NAME");
    char def[32];
    snprintf(def, sizeof(def), "kiln-%lld", (long long)(c->clock->wall_ns(c->clock->ctx) / NS));
    c->session_name = kiln_xstrdup(name[0] != '\0' ? name : def);
    c->sts_url = sts_url(cfg);
    snprintf(c->describe, sizeof(c->describe), "web identity, role %s", arn);
    int64_t now = c->clock->wall_ns(c->clock->ctx);
    kiln_s3_keys k;
    kiln_status st = fetch(c, &k, err);
    c->calls++;
    if (st != KILN_OK)
        return st;
    c->keys = k;
    c->refresh_at_ns = refresh_at(now, k.expires_ns);
    OPENSSL_cleanse(&k, sizeof(k));
    KILN_LOG_INFO(MOD, "s3 credentials from web identity: role %s, session %s, STS %s", arn,
                  c->session_name, c->sts_url);
    return KILN_OK;
}

static kiln_status pick(kiln_s3_creds_t *c, const kiln_s3_creds_config *cfg, kiln_err *err)
{
    const char *id = setting(cfg->access_key_id, "AWS_ACCESS_KEY_ID");
    const char *secret = setting(cfg->secret_access_key, "AWS_SECRET_ACCESS_KEY");
    const char *arn = setting(cfg->role_arn, "AWS_ROLE_ARN");
    const char *file = setting(cfg->token_file, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (id[0] != '\0' && secret[0] != '\0')
        return static_keys(c, cfg, id, secret, err);
    if (id[0] == '\0' && secret[0] == '\0' && arn[0] != '\0' && file[0] != '\0')
        return web_identity(c, cfg, arn, file, err);
    return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                        "-storage.backend=s3 needs -storage.s3.access-key-id and "
                        "-storage.s3.secret-access-key (or AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY), or a web identity (AWS_ROLE_ARN and "
                        "AWS_WEB_IDENTITY_TOKEN_FILE)%s",
                        id[0] != '\0' || secret[0] != '\0' ? ": only one static key is set" : "");
}

kiln_status kiln_s3_creds_create(const kiln_s3_creds_config *cfg, kiln_s3_creds_t **out,
                                 kiln_err *err)
{
    kiln_s3_creds_t *c = kiln_xcalloc(1, sizeof(*c));
    c->clock = cfg->clock != NULL ? cfg->clock : &kiln_system_clock;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->done, NULL);
    kiln_status st = pick(c, cfg, err);
    if (st != KILN_OK) {
        kiln_s3_creds_destroy(c);
        return st;
    }
    *out = c;
    return KILN_OK;
}

void kiln_s3_creds_destroy(kiln_s3_creds_t *c)
{
    if (c == NULL)
        return;
    OPENSSL_cleanse(&c->keys, sizeof(c->keys));
    free(c->role_arn);
    free(c->token_file);
    free(c->session_name);
    free(c->sts_url);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *kiln_s3_creds_source(const kiln_s3_creds_t *c)
{
    return c->web ? "web-identity" : "static";
}

const char *kiln_s3_creds_describe(const kiln_s3_creds_t *c)
{
    return c->describe;
}
