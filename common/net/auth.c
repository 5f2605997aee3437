/* SPDX-License-Identifier: Apache-2.0
 * auth: tokens file (libyaml), SHA-256 (OpenSSL EVP), constant-time lookup
 * (CRYPTO_memcmp) and the tenant-binding rules. The table is immutable once
 * loaded; a reload swaps it under the write lock. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "base64.h"
#include "clock.h"
#include "log.h"
#include "xmalloc.h"

#define SCOPE_READ 1u
#define SCOPE_WRITE 2u
#define MAX_SOURCES 1024             /* distinct failure sources kept; then "other" */
#define RELOAD_CHECK_NS 1000000000LL /* stat the file at most once a second */

typedef struct token {
    unsigned char hash[32];
    char **tenants;
    size_t n_tenants;
    unsigned scope;
} token;

typedef struct table {
    token *t;
    size_t n, cap;
} table;

typedef struct failure {
    char *source, *reason;
    unsigned long long n;
} failure;

struct kiln_auth {
    char *path;
    bool multitenancy;
    pthread_rwlock_t lock; /* guards tab and the file identity */
    table tab;
    struct stat st; /* the loaded file's identity, to notice a change */
    _Atomic int64_t next_check_ns;
    pthread_mutex_t fail_lock;
    failure *fails;
    size_t n_fails, cap_fails;
};

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->t[i].n_tenants; j++)
            free(t->t[i].tenants[j]);
        free(t->t[i].tenants);
    }
    free(t->t);
    *t = (table){0};
}

void kiln_auth_hash_hex(const char *token_text, size_t len, char hex[65])
{
    unsigned char h[32];
    unsigned hl = 0;
    EVP_Digest(token_text, len, h, &hl, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool parse_hash(const char *s, unsigned char out[32])
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
    (void)d;
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A scalar or a sequence of scalars, each passed to fn; false on another shape. */
static bool each_scalar(yaml_document_t *d, yaml_node_t *n, bool (*fn)(token *, const char *),
                        token *t)
{
    if (n->type == YAML_SCALAR_NODE)
        return fn(t, scalar(d, n));
    if (n->type != YAML_SEQUENCE_NODE)
        return false;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        const char *s = scalar(d, yaml_document_get_node(d, *i));
        if (s == NULL || !fn(t, s))
            return false;
    }
    return true;
}

static bool add_tenant(token *t, const char *s)
{
    if (*s == '\0' || strchr(s, '|') != NULL)
        return false;
    t->tenants = kiln_xrealloc(t->tenants, (t->n_tenants + 1) * sizeof(char *));
    t->tenants[t->n_tenants++] = kiln_xstrdup(s);
    return true;
}

/* "read", "write", or both as "read,write" / "read write" / a list. */
static bool add_scope(token *t, const char *s)
{
    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, ", ");
        if (n == 4 && strncmp(p, "read", 4) == 0)
            t->scope |= SCOPE_READ;
        else if (n == 5 && strncmp(p, "write", 5) == 0)
            t->scope |= SCOPE_WRITE;
        else if (n != 0)
            return false;
        p += n + (p[n] != '\0');
    }
    return true;
}

/* One entry: {sha256: <hex>, tenant(s): a | [a, b], scope: read | write | [..]}. */
static kiln_status parse_entry(yaml_document_t *d, yaml_node_t *n, size_t idx, token *t,
                               kiln_err *err)
{
    if (n->type != YAML_MAPPING_NODE)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tokens[%zu] is not a mapping", idx);
    bool have_hash = false;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        bool ok = k != NULL && v != NULL;
        if (ok && strcmp(k, "sha256") == 0)
            ok = have_hash = scalar(d, v) != NULL && parse_hash(scalar(d, v), t->hash);
        else if (ok && (strcmp(k, "tenant") == 0 || strcmp(k, "tenants") == 0))
            ok = each_scalar(d, v, add_tenant, t);
        else if (ok && strcmp(k, "scope") == 0)
            ok = each_scalar(d, v, add_scope, t);
        else if (ok && strcmp(k, "name") != 0) /* a comment-like label, ignored */
            ok = false;
        if (!ok)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tokens[%zu]: invalid field \"%s\"",
                                idx, k ? k : "?");
    }
    if (!have_hash || t->n_tenants == 0 || t->scope == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "tokens[%zu] needs sha256 (64 hex digits), tenant(s) and scope", idx);
    return KILN_OK;
}

static kiln_status parse_doc(yaml_document_t *d, table *tab, kiln_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    yaml_node_t *list = NULL;
    if (root != NULL && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            const char *k = scalar(d, yaml_document_get_node(d, p->key));
            if (k != NULL && strcmp(k, "tokens") == 0)
                list = yaml_document_get_node(d, p->value);
        }
    }
    if (list == NULL || list->type != YAML_SEQUENCE_NODE)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "the tokens file needs a 'tokens:' list");
    size_t idx = 0;
    for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
         i++, idx++) {
        KILN_GROW(tab->t, tab->cap, tab->n + 1);
        token *t = &tab->t[tab->n++];
        *t = (token){0};
        kiln_status st = parse_entry(d, yaml_document_get_node(d, *i), idx, t, err);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

/* Reads path into tab; on failure tab is left empty. */
static kiln_status load_file(const char *path, table *tab, kiln_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_NOT_FOUND, "cannot open tokens file %s", path);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    kiln_status st;
    if (!yaml_parser_load(&p, &d)) {
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "tokens file %s: %s at line %zu", path,
                          p.problem ? p.problem : "invalid YAML", p.problem_mark.line + 1);
    } else {
        st = parse_doc(&d, tab, err);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (st != KILN_OK)
        table_free(tab);
    return st;
}

kiln_status kiln_auth_create(const kiln_auth_config *cfg, kiln_auth_t **out, kiln_err *err)
{
    bool tokens = cfg->tokens_file != NULL && cfg->tokens_file[0] != '\0';
    *out = NULL;
    if (!tokens && !cfg->multitenancy)
        return KILN_OK;
    table tab = {0};
    struct stat st = {0};
    if (tokens) {
        if (stat(cfg->tokens_file, &st) != 0)
            return kiln_err_set(err, KILN_NOT_FOUND, "cannot open tokens file %s",
                                cfg->tokens_file);
        kiln_status s = load_file(cfg->tokens_file, &tab, err);
        if (s != KILN_OK)
            return s;
    }
    kiln_auth_t *a = kiln_xcalloc(1, sizeof(*a));
    a->path = tokens ? kiln_xstrdup(cfg->tokens_file) : NULL;
    a->multitenancy = cfg->multitenancy;
    a->tab = tab;
    a->st = st;
    atomic_store(&a->next_check_ns, kiln_mono_ns() + RELOAD_CHECK_NS);
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->fail_lock, NULL);
    *out = a;
    return KILN_OK;
}

void kiln_auth_destroy(kiln_auth_t *a)
{
    if (a == NULL)
        return;
    table_free(&a->tab);
    for (size_t i = 0; i < a->n_fails; i++) {
        free(a->fails[i].source);
        free(a->fails[i].reason);
    }
    free(a->fails);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->fail_lock);
    free(a->path);
    free(a);
}

static bool same_file(const struct stat *x, const struct stat *y)
{
    return x->st_ino == y->st_ino && x->st_dev == y->st_dev && x->st_size == y->st_size &&
           x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

/* At most once a second, reloads the file when its identity changed (a
 * Kubernetes Secret update swaps a symlink, so the inode changes). A file
 * that no longer parses keeps the old tokens, loudly. */
static void maybe_reload(kiln_auth_t *a)
{
    int64_t now = kiln_mono_ns(), due = atomic_load(&a->next_check_ns);
    if (a->path == NULL || now < due ||
        !atomic_compare_exchange_strong(&a->next_check_ns, &due, now + RELOAD_CHECK_NS))
        return;
    struct stat st;
    pthread_rwlock_rdlock(&a->lock);
    bool changed = stat(a->path, &st) == 0 && !same_file(&st, &a->st);
    pthread_rwlock_unlock(&a->lock);
    if (!changed)
        return;
    table tab = {0};
    kiln_err err = {KILN_OK, ""};
    if (load_file(a->path, &tab, &err) != KILN_OK) {
        KILN_LOG_ERROR("auth", "reload failed, keeping the previous tokens: %s", err.msg);
        pthread_rwlock_wrlock(&a->lock);
        a->st = st; /* do not retry the same broken file every second */
        pthread_rwlock_unlock(&a->lock);
        return;
    }
    pthread_rwlock_wrlock(&a->lock);
    table old = a->tab;
    a->tab = tab;
    a->st = st;
    pthread_rwlock_unlock(&a->lock);
    table_free(&old);
    KILN_LOG_INFO("auth", "reloaded %s: %zu tokens", a->path, tab.n);
}

/* Counts a failure by source and reason, then logs it sampled per source. */
static void record_failure(kiln_auth_t *a, const char *source, const char *reason)
{
    const char *src = source != NULL && *source != '\0' ? source : "unknown";
    pthread_mutex_lock(&a->fail_lock);
    failure *f = NULL;
    for (size_t i = 0; i < a->n_fails && f == NULL; i++) {
        if (strcmp(a->fails[i].source, src) == 0 && strcmp(a->fails[i].reason, reason) == 0)
            f = &a->fails[i];
    }
    if (f == NULL && a->n_fails >= MAX_SOURCES) /* bounded: a scan cannot grow it without end */
        src = "other";
    for (size_t i = 0; i < a->n_fails && f == NULL; i++) {
        if (strcmp(a->fails[i].source, src) == 0 && strcmp(a->fails[i].reason, reason) == 0)
            f = &a->fails[i];
    }
    if (f == NULL) {
        KILN_GROW(a->fails, a->cap_fails, a->n_fails + 1);
        f = &a->fails[a->n_fails++];
        *f = (failure){kiln_xstrdup(src), kiln_xstrdup(reason), 0};
    }
    f->n++;
    pthread_mutex_unlock(&a->fail_lock);
    KILN_LOG_WARN_SAMPLED(src, "auth", "auth", "refused source=%s reason=%s", src, reason);
}

/* Standard base64 into out as a string; false when malformed or too long. */
static bool b64_decode(const char *s, size_t len, char *out, size_t cap, size_t *n)
{
    if (kiln_base64_max_decoded(len) >= cap || !kiln_base64_decode(s, len, (uint8_t *)out, n, NULL))
        return false;
    out[*n] = '\0';
    return true;
}

typedef struct creds {
    char buf[1024]; /* decoded Basic "user:password", or the bearer token */
    const char *user, *token;
    size_t user_len, token_len;
} creds;

/* Bearer <token> or Basic base64(user:token); false when neither. */
static bool parse_creds(const char *h, size_t len, creds *c)
{
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len > 7 && strncasecmp(h, "Bearer ", 7) == 0) {
        if (len - 7 >= sizeof(c->buf))
            return false;
        memcpy(c->buf, h + 7, len - 7);
        c->token = c->buf, c->token_len = len - 7, c->user = "", c->user_len = 0;
        return c->token_len > 0;
    }
    size_t n;
    if (len <= 6 || strncasecmp(h, "Basic ", 6) != 0 ||
        !b64_decode(h + 6, len - 6, c->buf, sizeof(c->buf), &n))
        return false;
    const char *colon = memchr(c->buf, ':', n);
    if (colon == NULL)
        return false;
    c->user = c->buf, c->user_len = (size_t)(colon - c->buf);
    c->token = colon + 1, c->token_len = n - c->user_len - 1;
    return c->token_len > 0;
}

/* The entry whose hash matches, comparing against every entry in constant
 * time so the timing says nothing of which (or whether one) matched. */
static const token *find_token(const table *tab, const creds *c)
{
    char hex[65];
    unsigned char h[32];
    kiln_auth_hash_hex(c->token, c->token_len, hex);
    parse_hash(hex, h);
    const token *hit = NULL;
    for (size_t i = 0; i < tab->n; i++) {
        if (CRYPTO_memcmp(tab->t[i].hash, h, sizeof(h)) == 0 && hit == NULL)
            hit = &tab->t[i];
    }
    return hit;
}

static bool grants(const token *t, const char *s, size_t len)
{
    for (size_t i = 0; i < t->n_tenants; i++) {
        if (strlen(t->tenants[i]) == len && memcmp(t->tenants[i], s, len) == 0)
            return true;
    }
    return false;
}

static kiln_status put_tenant(const char *s, size_t len, char *tenant, size_t cap, kiln_err *err)
{
    if (len >= cap)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "tenant ID is too long");
    memcpy(tenant, s, len);
    tenant[len] = '\0';
    return KILN_OK;
}

/* The tenant-binding rules for a known token: every tenant named ('|'
 * separated for reads) must be the token's; a write naming none goes to the
 * token's only tenant. Messages name only what the request named. */
static kiln_status bind_tenants(const token *t, const creds *c, const char *org, size_t org_len,
                                kiln_auth_scope scope, char *tenant, size_t cap, kiln_err *err)
{
    unsigned need = scope == KILN_AUTH_WRITE ? SCOPE_WRITE : SCOPE_READ;
    if ((t->scope & need) == 0)
        return kiln_err_set(err, KILN_PERMISSION_DENIED, "the token does not allow %s",
                            need == SCOPE_WRITE ? "writes" : "reads");
    if (org == NULL || org_len == 0)
        org = c->user, org_len = c->user_len; /* Basic auth: user = tenant */
    if (org_len == 0) {
        if (scope == KILN_AUTH_WRITE && t->n_tenants == 1)
            return put_tenant(t->tenants[0], strlen(t->tenants[0]), tenant, cap, err);
        return kiln_err_set(err, KILN_PERMISSION_DENIED,
                            "no tenant named: set X-Scope-OrgID (or the Basic auth user)");
    }
    for (size_t s = 0, i = 0; i <= org_len; i++) {
        if (i < org_len && org[i] != '|')
            continue;
        if (!grants(t, org + s, i - s))
            return kiln_err_set(err, KILN_PERMISSION_DENIED,
                                "the token does not grant tenant '%.*s'",
                                (int)((i - s) > 150 ? 150 : i - s), org + s);
        s = i + 1;
    }
    return put_tenant(org, org_len, tenant, cap, err);
}

kiln_status kiln_auth_check(kiln_auth_t *a, const char *authz, size_t authz_len, const char *org,
                            size_t org_len, kiln_auth_scope scope, const char *source, char *tenant,
                            size_t cap, kiln_err *err)
{
    if (org == NULL)
        org_len = 0;
    if (a == NULL || scope == KILN_AUTH_PUBLIC || a->path == NULL) {
        if (a != NULL && scope != KILN_AUTH_PUBLIC && a->multitenancy && org_len == 0) {
            record_failure(a, source, "no_tenant");
            return kiln_err_set(err, KILN_UNAUTHENTICATED, "no org id");
        }
        return put_tenant(org != NULL ? org : "", org_len, tenant, cap, err);
    }
    maybe_reload(a);
    static creds zero;
    creds c = zero;
    if (authz == NULL || !parse_creds(authz, authz_len, &c)) {
        record_failure(a, source, authz == NULL ? "no_credentials" : "malformed");
        return kiln_err_set(err, KILN_UNAUTHENTICATED,
                            "authentication required: a bearer token or Basic auth");
    }
    pthread_rwlock_rdlock(&a->lock);
    const token *t = find_token(&a->tab, &c);
    kiln_status st = t == NULL ? kiln_err_set(err, KILN_UNAUTHENTICATED, "invalid token")
                               : bind_tenants(t, &c, org, org_len, scope, tenant, cap, err);
    pthread_rwlock_unlock(&a->lock);
    if (st != KILN_OK)
        record_failure(a, source, t == NULL ? "invalid_token" : "forbidden");
    OPENSSL_cleanse(&c, sizeof(c));
    return st;
}

kiln_auth_scope kiln_auth_path_scope(const char *path)
{
    static const char *const pub[] = {"/ready", "/metrics", "/ring", "/api/v1/status/buildinfo"};
    static const char *const writes[] = {"/ingest", "/pyroscope/ingest", "/push.v1.PusherService/",
                                         "/opentelemetry.proto.collector.", "/v1development/"};
    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        if (strcmp(path, pub[i]) == 0)
            return KILN_AUTH_PUBLIC;
    }
    /* ingester.v1 is the cluster plane's (distributors and queriers call
     * it without a client's credentials): its own listener, mutual TLS or
     * loopback, serves it; the public ports answer it unimplemented. */
    if (strncmp(path, "/ingester.v1.", 13) == 0)
        return KILN_AUTH_PUBLIC;
    /* The web UI's static files hold no data; its API calls are checked. */
    if (strcmp(path, "/") == 0 || strncmp(path, "/ui/", 4) == 0)
        return KILN_AUTH_PUBLIC;
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        size_t n = strlen(writes[i]);
        bool prefix = writes[i][n - 1] == '/' || writes[i][n - 1] == '.';
        if (prefix ? strncmp(path, writes[i], n) == 0 : strcmp(path, writes[i]) == 0)
            return KILN_AUTH_WRITE;
    }
    return KILN_AUTH_READ;
}

void kiln_auth_render_metrics(kiln_auth_t *a, kiln_buf *out)
{
    if (a == NULL)
        return;
    kiln_buf_puts(out, "# HELP kiln_auth_failures_total Refused authentication attempts by "
                       "source address and reason.\n# TYPE kiln_auth_failures_total counter\n");
    pthread_mutex_lock(&a->fail_lock);
    for (size_t i = 0; i < a->n_fails; i++)
        kiln_buf_printf(out, "kiln_auth_failures_total{source=\"%s\",reason=\"%s\"} %llu\n",
                        a->fails[i].source, a->fails[i].reason, a->fails[i].n);
    pthread_mutex_unlock(&a->fail_lock);
    pthread_rwlock_rdlock(&a->lock);
    kiln_buf_printf(out, "# TYPE kiln_auth_tokens_loaded gauge\nkiln_auth_tokens_loaded %zu\n",
                    a->tab.n);
    pthread_rwlock_unlock(&a->lock);
}
