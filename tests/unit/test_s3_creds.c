/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: where the S3 backend's keys come from (s3_creds.h). The STS
 * answer's XML (a sample in the format AWS documents, written here), and
 * malformed ones; static keys; web identity against an STS endpoint run
 * here on Kiln's own HTTP server, which checks every request (POST, Action,
 * Version, RoleArn, RoleSessionName, and a WebIdentityToken equal to the
 * token file's contents at that moment) and answers keys numbered by call,
 * valid for a lifetime from a manual clock: the refresh falls due before
 * expiry, rereads the rotated token file, keeps the old keys when STS fails
 * and retries at most every KILN_S3_CREDS_RETRY_NS, and nothing is signed
 * with expired keys. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "http_server.h"
#include "s3_creds.h"
#include "tmpdir.h"

#define S 1000000000LL
#define T0 (1767225600LL * S) /* 2026-01-01T00:00:00Z */
#define ROLE "arn:aws:iam::123456789012:role/kiln-blocks"

/* ---- the STS answer ---- */

static const char sample[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    "
    "<SubjectFromWebIdentityToken>system:serviceaccount:obs:kiln</SubjectFromWebIdentityToken>\n"
    "    <Audience>sts.amazonaws.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/kiln-blocks/kiln-1</Arn>\n"
    "      <AssumedRoleId>AROAEXAMPLEROLEID:kiln-1</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLE/token+with&amp;escapes==</SessionToken>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
    "      <Expiration>2026-01-01T01:00:00Z</Expiration>\n"
    "      <AccessKeyId>ASIAEXAMPLEKILN12345</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <SourceIdentity></SourceIdentity>\n"
    "    <Provider>oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata><RequestId>0a1b2c3d-example</RequestId></ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

TEST(parse_sample)
{
    kiln_s3_keys k;
    CHECK_OK(kiln_s3_creds_parse_sts(sample, &k, NULL));
    CHECK_STR(k.access_key_id, "ASIAEXAMPLEKILN12345");
    CHECK_STR(k.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    CHECK_STR(k.session_token, "IQoJb3JpZ2luX2VjEXAMPLE/token+with&escapes==");
    CHECK_EQ(k.expires_ns, T0 + 3600 * S);
    /* Fractional seconds and a numeric UTC offset, as some STS servers write. */
    const char *frac = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>B"
                       "</SecretAccessKey><SessionToken>C</SessionToken><Expiration>"
                       "2026-01-01T00:10:00.250+00:00</Expiration></Credentials>";
    CHECK_OK(kiln_s3_creds_parse_sts(frac, &k, NULL));
    CHECK_EQ(k.expires_ns, T0 + 600 * S);
}

/* Replaces the first `what` in sample by `with`; parses; the status. */
static kiln_status parse_edited(const char *what, const char *with, kiln_err *err)
{
    char buf[8192];
    const char *at = strstr(sample, what);
    CHECK(at != NULL);
    if (at == NULL)
        return KILN_INTERNAL;
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - sample), sample, with, at + strlen(what));
    kiln_s3_keys k;
    memset(&k, 0x5a, sizeof(k));
    return kiln_s3_creds_parse_sts(buf, &k, err);
}

TEST(parse_malformed)
{
    kiln_err err;
    kiln_s3_keys k;
    CHECK_EQ(kiln_s3_creds_parse_sts("", &k, &err), KILN_UNAVAILABLE);
    CHECK_EQ(kiln_s3_creds_parse_sts(NULL, &k, &err), KILN_UNAVAILABLE);
    CHECK_EQ(kiln_s3_creds_parse_sts("<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                                     "</Error></ErrorResponse>",
                                     &k, &err),
             KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "Credentials") != NULL);
    CHECK_EQ(parse_edited("</Credentials>", "", &err), KILN_UNAVAILABLE); /* cut short */
    CHECK_EQ(parse_edited("</SessionToken>", "</SessionTokn>", &err), KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "SessionToken") != NULL); /* opened, never closed */
    CHECK_EQ(parse_edited("<Expiration>", "<Expiratio>", &err), KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "Expiration") != NULL);
    /* No session token, or an empty one: keys that need none. */
    CHECK_OK(parse_edited("<SessionToken>IQoJb3JpZ2luX2VjEXAMPLE/token+with&amp;escapes=="
                          "</SessionToken>",
                          "", &err));
    CHECK_OK(parse_edited("IQoJb3JpZ2luX2VjEXAMPLE/token+with&amp;escapes==", "", &err));
    char *long_token = malloc(KILN_S3_TOKEN_MAX + 2);
    memset(long_token, 'T', KILN_S3_TOKEN_MAX + 1);
    long_token[KILN_S3_TOKEN_MAX + 1] = '\0';
    size_t cap = sizeof(sample) + KILN_S3_TOKEN_MAX + 2;
    char *edited = malloc(cap);
    const char *at = strstr(sample, "IQoJ");
    const char *rest = strstr(sample, "</SessionToken>");
    snprintf(edited, cap, "%.*s%s%s", (int)(at - sample), sample, long_token, rest);
    CHECK_EQ(kiln_s3_creds_parse_sts(edited, &k, &err), KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "SessionToken") != NULL);
    free(edited);
    free(long_token);
    CHECK_EQ(parse_edited("ASIAEXAMPLEKILN12345", "", &err), KILN_UNAVAILABLE); /* empty */
    CHECK(strstr(err.msg, "AccessKeyId") != NULL);
    CHECK_EQ(parse_edited("2026-01-01T01:00:00Z", "tomorrow", &err), KILN_UNAVAILABLE);
    CHECK(strstr(err.msg, "Expiration") != NULL);
    CHECK_EQ(parse_edited("2026-01-01T01:00:00Z", "2026-13-01T01:00:00Z", &err), KILN_UNAVAILABLE);
    /* Found by fuzz_sts_creds: a year whose nanoseconds overflow int64. */
    CHECK_EQ(parse_edited("2026-01-01T01:00:00Z", "4052-01-01T01:00:00Z", &err), KILN_UNAVAILABLE);
    CHECK_EQ(parse_edited("2026-01-01T01:00:00Z", "2026-01-01T01:00:00+02:00", &err),
             KILN_UNAVAILABLE);
    /* Without a token, none is left over from whatever was in memory. */
    const char *no_token = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>B"
                           "</SecretAccessKey><Expiration>2026-01-01T00:10:00Z</Expiration>"
                           "</Credentials>";
    memset(&k, 0x5a, sizeof(k));
    CHECK_OK(kiln_s3_creds_parse_sts(no_token, &k, NULL));
    CHECK_STR(k.session_token, "");
    CHECK_STR(k.access_key_id, "A");
    /* A key past its maximum is refused, not cut. */
    char *big = malloc(KILN_S3_KEY_MAX + 2);
    memset(big, 'K', KILN_S3_KEY_MAX + 1);
    big[KILN_S3_KEY_MAX + 1] = '\0';
    CHECK_EQ(parse_edited("ASIAEXAMPLEKILN12345", big, &err), KILN_UNAVAILABLE);
    free(big);
    /* Credentials elsewhere than in <Credentials> do not count. */
    CHECK_EQ(kiln_s3_creds_parse_sts("<AccessKeyId>A</AccessKeyId><Credentials></Credentials>", &k,
                                     &err),
             KILN_UNAVAILABLE);
}

/* ---- static keys ---- */

TEST(static_keys)
{
    kiln_s3_creds_config c = {.access_key_id = "AKIDSTATIC", .secret_access_key = "sec"};
    kiln_s3_creds_t *p = NULL;
    CHECK_OK(kiln_s3_creds_create(&c, &p, NULL));
    CHECK_STR(kiln_s3_creds_source(p), "static");
    kiln_s3_keys k;
    CHECK_OK(kiln_s3_creds_get(p, &k, NULL));
    CHECK_STR(k.access_key_id, "AKIDSTATIC");
    CHECK_STR(k.session_token, "");
    CHECK_EQ(k.expires_ns, 0);
    kiln_s3_creds_expire(p); /* no effect on static keys */
    uint64_t calls, failed;
    kiln_s3_creds_counts(p, &calls, &failed);
    CHECK_EQ(calls, 0);
    kiln_s3_creds_destroy(p);

    /* From the environment; the flags win over it. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secenv", 1);
    setenv("AWS_SESSION_TOKEN", "tokenv", 1);
    kiln_s3_creds_config e = {0};
    CHECK_OK(kiln_s3_creds_create(&e, &p, NULL));
    CHECK_OK(kiln_s3_creds_get(p, &k, NULL));
    CHECK_STR(k.access_key_id, "AKIDENV");
    CHECK_STR(k.session_token, "tokenv");
    kiln_s3_creds_destroy(p);
    CHECK_OK(kiln_s3_creds_create(&c, &p, NULL));
    CHECK_OK(kiln_s3_creds_get(p, &k, NULL));
    CHECK_STR(k.access_key_id, "AKIDSTATIC");
    kiln_s3_creds_destroy(p);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");

    kiln_err err;
    kiln_s3_creds_config half = {.access_key_id = "AKIDSTATIC"};
    CHECK_EQ(kiln_s3_creds_create(&half, &p, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "only one static key") != NULL);
    kiln_s3_creds_config none = {0};
    CHECK_EQ(kiln_s3_creds_create(&none, &p, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "AWS_WEB_IDENTITY_TOKEN_FILE") != NULL);
}

/* ---- web identity against a test STS ---- */

typedef struct sts {
    pthread_mutex_t mu;
    kiln_manual_clock clock;
    int64_t lifetime_ns;
    int fail_status; /* 0 = answer keys */
    const char *fail_code;
    int hits, issued;
    char last_token[256], last_session[128], bad[256];
} sts;

static sts fake;

/* The value of name in an x-www-form-urlencoded body, decoded, into out. */
static bool form_value(const uint8_t *body, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && body[e] != '&')
            e++;
        if (e - i > nl && memcmp(body + i, name, nl) == 0 && body[i + nl] == '=') {
            size_t w = 0;
            for (size_t k = i + nl + 1; k < e && w + 1 < cap; k++) {
                unsigned v;
                if (body[k] == '%' && k + 2 < e &&
                    sscanf((const char *)body + k + 1, "%2x", &v) == 1) {
                    out[w++] = (char)v;
                    k += 2;
                } else {
                    out[w++] = body[k] == '+' ? ' ' : (char)body[k];
                }
            }
            out[w] = '\0';
            return true;
        }
        i = e + 1;
    }
    return false;
}

static void bad_request(sts *s, const char *what)
{
    if (s->bad[0] == '\0')
        snprintf(s->bad, sizeof(s->bad), "%s", what);
}

static void check_request(sts *s, const kiln_http_req *req)
{
    char v[256];
    const char *ct = kiln_http_header(req, "Content-Type");
    if (strcmp(req->method, "POST") != 0 || ct == NULL ||
        strcmp(ct, "application/x-www-form-urlencoded") != 0)
        bad_request(s, "not a form POST");
    if (!form_value(req->body, req->body_len, "Action", v, sizeof(v)) ||
        strcmp(v, "AssumeRoleWithWebIdentity") != 0)
        bad_request(s, "Action");
    if (!form_value(req->body, req->body_len, "Version", v, sizeof(v)) ||
        strcmp(v, "2011-06-15") != 0)
        bad_request(s, "Version");
    if (!form_value(req->body, req->body_len, "RoleArn", v, sizeof(v)) || strcmp(v, ROLE) != 0)
        bad_request(s, "RoleArn");
    if (!form_value(req->body, req->body_len, "RoleSessionName", s->last_session,
                    sizeof(s->last_session)))
        bad_request(s, "RoleSessionName");
    if (!form_value(req->body, req->body_len, "WebIdentityToken", s->last_token,
                    sizeof(s->last_token)))
        bad_request(s, "WebIdentityToken");
}

static void on_sts(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    sts *s = ud;
    pthread_mutex_lock(&s->mu);
    s->hits++;
    check_request(s, req);
    resp->content_type = "text/xml";
    if (s->fail_status != 0) {
        resp->status = s->fail_status;
        kiln_buf_printf(&resp->body,
                        "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>no "
                        "&amp; never</Message></Error></ErrorResponse>",
                        s->fail_code);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int n = ++s->issued;
    time_t exp = (time_t)((s->clock.wall_ns + s->lifetime_ns) / S);
    struct tm tm;
    gmtime_r(&exp, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    kiln_buf_printf(&resp->body,
                    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                    "<Credentials><AccessKeyId>ASIAKEY%d</AccessKeyId><SecretAccessKey>secret%d"
                    "</SecretAccessKey><SessionToken>token%d</SessionToken><Expiration>%s"
                    "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                    "</AssumeRoleWithWebIdentityResponse>",
                    n, n, n, when);
    pthread_mutex_unlock(&s->mu);
}

static char dir[64], token_file[128], sts_url[64];

static void write_token(const char *jwt)
{
    FILE *f = fopen(token_file, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fprintf(f, "%s\n", jwt); /* kubelet's files end without one; ours with: trimmed */
        fclose(f);
    }
}

static void set_sts(int fail_status, const char *code, int64_t lifetime_ns)
{
    pthread_mutex_lock(&fake.mu);
    fake.fail_status = fail_status;
    fake.fail_code = code;
    fake.lifetime_ns = lifetime_ns;
    pthread_mutex_unlock(&fake.mu);
}

static int hits(void)
{
    pthread_mutex_lock(&fake.mu);
    int n = fake.hits;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static kiln_s3_creds_config web_config(void)
{
    return (kiln_s3_creds_config){.role_arn = ROLE,
                                  .token_file = token_file,
                                  .session_name = "kiln-test",
                                  .sts_endpoint = sts_url,
                                  .timeout_ms = 5000,
                                  .clock = &fake.clock.clock};
}

static void advance(int64_t ns)
{
    pthread_mutex_lock(&fake.mu);
    kiln_manual_clock_advance(&fake.clock, ns);
    pthread_mutex_unlock(&fake.mu);
}

/* The key the provider signs with now (NULL when it has none). */
static const char *key_now(kiln_s3_creds_t *p, kiln_err *err)
{
    static kiln_s3_keys k;
    return kiln_s3_creds_get(p, &k, err) == KILN_OK ? k.access_key_id : NULL;
}

TEST(web_identity_refresh)
{
    set_sts(0, NULL, 3600 * S);
    write_token("eyJhbGciOiJSUzI1NiJ9.first+token/with=chars.sig");
    kiln_s3_creds_config c = web_config();
    kiln_s3_creds_t *p = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_s3_creds_create(&c, &p, &err));
    if (p == NULL) {
        printf("  %s\n", err.msg);
        return;
    }
    CHECK_STR(kiln_s3_creds_source(p), "web-identity");
    CHECK_STR(fake.bad, "");
    CHECK_STR(fake.last_token, "eyJhbGciOiJSUzI1NiJ9.first+token/with=chars.sig");
    CHECK_STR(fake.last_session, "kiln-test");
    kiln_s3_keys k;
    CHECK_OK(kiln_s3_creds_get(p, &k, NULL));
    CHECK_STR(k.access_key_id, "ASIAKEY1");
    CHECK_STR(k.secret_access_key, "secret1");
    CHECK_STR(k.session_token, "token1");
    CHECK_EQ(k.expires_ns, T0 + 3600 * S);

    /* Not due until 5 minutes before expiry. */
    advance(3600 * S - KILN_S3_CREDS_MARGIN_NS - S);
    CHECK_STR(key_now(p, NULL), "ASIAKEY1");
    CHECK_EQ(hits(), 1);
    /* Due: the rotated token file is read afresh. */
    write_token("eyJhbGciOiJSUzI1NiJ9.second.sig");
    advance(2 * S);
    CHECK_STR(key_now(p, NULL), "ASIAKEY2");
    CHECK_EQ(hits(), 2);
    CHECK_STR(fake.last_token, "eyJhbGciOiJSUzI1NiJ9.second.sig");
    CHECK_STR(fake.bad, "");

    /* STS fails when the next refresh is due: the old keys stay. */
    set_sts(400, "InvalidIdentityToken", 3600 * S);
    advance(3600 * S - KILN_S3_CREDS_MARGIN_NS + S);
    CHECK_STR(key_now(p, NULL), "ASIAKEY2");
    CHECK_EQ(hits(), 3);
    CHECK_STR(key_now(p, NULL), "ASIAKEY2"); /* no second call within the retry delay */
    CHECK_EQ(hits(), 3);
    advance(KILN_S3_CREDS_RETRY_NS);
    CHECK_STR(key_now(p, NULL), "ASIAKEY2");
    CHECK_EQ(hits(), 4);
    /* Expired with STS still refusing: nothing to sign with. */
    advance(KILN_S3_CREDS_MARGIN_NS);
    CHECK(key_now(p, &err) == NULL);
    CHECK_EQ(err.code, KILN_UNAVAILABLE);
    printf("  %s\n", err.msg);
    CHECK(strstr(err.msg, "expired") != NULL && strstr(err.msg, "InvalidIdentityToken") != NULL);
    /* STS back: the next try (after the delay) brings keys again. */
    set_sts(0, NULL, 3600 * S);
    advance(KILN_S3_CREDS_RETRY_NS);
    CHECK_STR(key_now(p, NULL), "ASIAKEY3");
    uint64_t calls, failed;
    kiln_s3_creds_counts(p, &calls, &failed);
    CHECK_EQ(calls, 6);
    CHECK_EQ(failed, 3);

    /* S3 said the keys were expired or unknown: the next get refreshes. */
    kiln_s3_creds_expire(p);
    CHECK_STR(key_now(p, NULL), "ASIAKEY4");
    CHECK_STR(key_now(p, NULL), "ASIAKEY4");

    /* Short-lived keys are refreshed at half their lifetime. */
    set_sts(0, NULL, 60 * S);
    kiln_s3_creds_expire(p);
    CHECK_STR(key_now(p, NULL), "ASIAKEY5");
    advance(29 * S);
    CHECK_STR(key_now(p, NULL), "ASIAKEY5");
    advance(2 * S);
    CHECK_STR(key_now(p, NULL), "ASIAKEY6");
    kiln_s3_creds_destroy(p);
}

TEST(web_identity_refused_at_start)
{
    kiln_s3_creds_config c = web_config();
    kiln_s3_creds_t *p = NULL;
    kiln_err err;
    write_token("eyJ.x.y");
    set_sts(403, "AccessDenied", 3600 * S);
    CHECK_EQ(kiln_s3_creds_create(&c, &p, &err), KILN_PERMISSION_DENIED);
    printf("  %s\n", err.msg);
    CHECK(strstr(err.msg, ROLE) != NULL && strstr(err.msg, "AccessDenied") != NULL);
    set_sts(400, "InvalidIdentityToken", 3600 * S);
    CHECK_EQ(kiln_s3_creds_create(&c, &p, &err), KILN_UNAUTHENTICATED);
    int before = hits();
    set_sts(503, "ServiceUnavailable", 3600 * S); /* tried three times */
    CHECK_EQ(kiln_s3_creds_create(&c, &p, &err), KILN_UNAVAILABLE);
    CHECK_EQ(hits(), before + 3);
    set_sts(0, NULL, 3600 * S);
    /* A missing or empty token file, and an STS nobody answers at. */
    kiln_s3_creds_config m = c;
    m.token_file = "/nonexistent/kiln/token";
    CHECK_EQ(kiln_s3_creds_create(&m, &p, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "/nonexistent/kiln/token") != NULL);
    write_token("");
    CHECK_EQ(kiln_s3_creds_create(&c, &p, &err), KILN_INVALID_ARGUMENT);
    write_token("eyJ.x.y");
    m = c;
    m.sts_endpoint = "http://127.0.0.1:1";
    CHECK_EQ(kiln_s3_creds_create(&m, &p, &err), KILN_UNAVAILABLE);
    /* A web identity and one static key: a mistake, said so. */
    m = c;
    m.access_key_id = "AKIDHALF";
    CHECK_EQ(kiln_s3_creds_create(&m, &p, &err), KILN_INVALID_ARGUMENT);
    /* From the environment, with the STS URL from AWS_ENDPOINT_URL_STS. */
    setenv("AWS_ROLE_ARN", ROLE, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_file, 1);
    setenv("AWS_ENDPOINT_URL_STS", sts_url, 1);
    kiln_s3_creds_config e = {.clock = &fake.clock.clock};
    CHECK_OK(kiln_s3_creds_create(&e, &p, &err));
    CHECK(p != NULL && strncmp(fake.last_session, "kiln-", 5) == 0);
    kiln_s3_creds_destroy(p);
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ENDPOINT_URL_STS");
    CHECK_STR(fake.bad, "");
}

/* Threads asking for keys while a refresh is due all get valid keys, and
 * one STS call serves them. */
typedef struct racer {
    kiln_s3_creds_t *p;
    int bad;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 200; i++) {
        kiln_s3_keys k;
        if (kiln_s3_creds_get(r->p, &k, NULL) != KILN_OK || strncmp(k.access_key_id, "ASIA", 4))
            r->bad++;
    }
    return NULL;
}

TEST(concurrent_gets)
{
    set_sts(0, NULL, 3600 * S);
    write_token("eyJ.race.sig");
    kiln_s3_creds_config c = web_config();
    kiln_s3_creds_t *p = NULL;
    CHECK_OK(kiln_s3_creds_create(&c, &p, NULL));
    if (p == NULL)
        return;
    int before = hits();
    advance(3600 * S - KILN_S3_CREDS_MARGIN_NS + S);
    pthread_t th[4];
    racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){p, 0};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(r[i].bad, 0);
    }
    CHECK_EQ(hits(), before + 1);
    kiln_s3_creds_destroy(p);
}

int main(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ROLE_SESSION_NAME");
    unsetenv("AWS_STS_REGIONAL_ENDPOINTS");
    RUN(parse_sample);
    RUN(parse_malformed);
    RUN(static_keys);
    snprintf(dir, sizeof(dir), "/tmp/kiln-s3creds-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(token_file, sizeof(token_file), "%s/token", dir);
    pthread_mutex_init(&fake.mu, NULL);
    kiln_manual_clock_init(&fake.clock, T0);
    kiln_http_config cfg = {.address = "127.0.0.1", .threads = 2, .max_body = 1 << 20};
    kiln_http_server_t *srv = kiln_http_server_create(&cfg);
    kiln_http_server_route(srv, "/", on_sts, &fake);
    kiln_err err = {KILN_OK, ""};
    if (kiln_http_server_start(srv, &err) != KILN_OK) {
        printf("cannot start the test STS: %s\n", err.msg);
        return 1;
    }
    snprintf(sts_url, sizeof(sts_url), "http://127.0.0.1:%d/", kiln_http_server_port(srv));
    RUN(web_identity_refresh);
    RUN(web_identity_refused_at_start);
    RUN(concurrent_gets);
    kiln_http_server_destroy(srv);
    tmpdir_remove(dir);
    return check_done();
}
