/* SPDX-License-Identifier: Apache-2.0
 * overrides: limits tables (swapped whole on each load) and token buckets. */
#include "overrides.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "xmalloc.h"

typedef struct tenant_limits {
    char *tenant;
    kiln_limits limits;
} tenant_limits;

typedef struct bucket {
    char *tenant;
    double tokens; /* bytes */
    int64_t last_ns;
} bucket;

/* One generation of the per-tenant table. Tables are immutable once
 * published; a load builds a new one and swaps it in, and the old one is
 * retired (kept until destroy) because kiln_overrides_get hands out pointers
 * into it that callers may still hold. */
typedef struct table {
    tenant_limits *t;
    size_t n, cap;
    struct table *retired_next;
} table;

struct kiln_overrides {
    kiln_limits defaults;
    _Atomic(table *) cur;    /* never NULL */
    pthread_mutex_t load_mu; /* serialises swaps; guards retired */
    table *retired;
    atomic_size_t shards; /* live distributors sharing each tenant's rate, >= 1 */
    pthread_mutex_t mu;   /* guards the buckets */
    bucket *b;
    size_t n_b, cap_b;
};

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->t[i].tenant);
    free(t->t);
    free(t);
}

kiln_overrides_t *kiln_overrides_create(const kiln_limits *defaults)
{
    kiln_overrides_t *o = kiln_xcalloc(1, sizeof(*o));
    o->defaults = *defaults;
    atomic_init(&o->cur, kiln_xcalloc(1, sizeof(table)));
    atomic_init(&o->shards, 1);
    pthread_mutex_init(&o->load_mu, NULL);
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

void kiln_overrides_destroy(kiln_overrides_t *o)
{
    if (o == NULL)
        return;
    table_free(atomic_load(&o->cur));
    while (o->retired != NULL) {
        table *next = o->retired->retired_next;
        table_free(o->retired);
        o->retired = next;
    }
    for (size_t i = 0; i < o->n_b; i++)
        free(o->b[i].tenant);
    free(o->b);
    pthread_mutex_destroy(&o->load_mu);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

const kiln_limits *kiln_overrides_get(const kiln_overrides_t *o, const char *tenant)
{
    /* The table is immutable once published: one acquire load is enough. */
    const table *t = atomic_load_explicit(&((kiln_overrides_t *)o)->cur, memory_order_acquire);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->t[i].tenant, tenant) == 0)
            return &t->t[i].limits;
    }
    return &o->defaults;
}

void kiln_overrides_set_shards(kiln_overrides_t *o, size_t n)
{
    atomic_store(&o->shards, n < 1 ? 1 : n);
}

bool kiln_parse_duration(const char *s, int64_t *ns)
{
    /* Longest unit names first, so "ms" is not read as "m" then "s". */
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"ms", 1000000LL},       {"us", 1000LL},          {"ns", 1LL},
                 {"s", 1000000000LL},     {"m", 60000000000LL},    {"h", 3600000000000LL},
                 {"d", 86400000000000LL}, {"w", 604800000000000LL}};
    int64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return true;
    }
    while (*s != '\0') {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || end == s || v < 0 || *s == '+' || *s == '-')
            return false;
        size_t i = 0, n = sizeof(units) / sizeof(units[0]);
        while (i < n && strncmp(end, units[i].unit, strlen(units[i].unit)) != 0)
            i++;
        if (i == n)
            return false;
        total += (int64_t)(v * (double)units[i].ns);
        s = end + strlen(units[i].unit);
    }
    *ns = total;
    return true;
}

/* Sets one named limit from its YAML text. */
static kiln_status set_limit(kiln_limits *l, const char *key, const char *val, kiln_err *err)
{
    char *end;
    double d = strtod(val, &end);
    bool num = end != val && *end == '\0' && d >= 0;
    size_t *sz = NULL;
    if (strcmp(key, "ingestion_rate_mb") == 0 && num)
        l->ingestion_rate_mb = d;
    else if (strcmp(key, "ingestion_burst_size_mb") == 0 && num)
        l->ingestion_burst_mb = d;
    else if (strcmp(key, "reject_older_than") == 0 &&
             kiln_parse_duration(val, &l->reject_older_than_ns))
        ;
    else if (strcmp(key, "reject_newer_than") == 0 &&
             kiln_parse_duration(val, &l->reject_newer_than_ns))
        ;
    else if (strcmp(key, "retention_period") == 0 && kiln_parse_duration(val, &l->retention_ns))
        ;
    else if (strcmp(key, "max_query_length") == 0 &&
             kiln_parse_duration(val, &l->max_query_length_ns))
        ;
    else if (strcmp(key, "max_query_lookback") == 0 &&
             kiln_parse_duration(val, &l->max_query_lookback_ns))
        ;
    else if (strcmp(key, "max_profile_size_bytes") == 0)
        sz = &l->max_profile_bytes;
    else if (strcmp(key, "max_profile_stacktrace_samples") == 0)
        sz = &l->max_samples;
    else if (strcmp(key, "max_label_names_per_series") == 0)
        sz = &l->max_label_names;
    else if (strcmp(key, "max_label_name_length") == 0)
        sz = &l->max_label_name_len;
    else if (strcmp(key, "max_label_value_length") == 0)
        sz = &l->max_label_value_len;
    else if (strcmp(key, "max_profile_stacktrace_sample_labels") == 0)
        sz = &l->max_sample_labels;
    else if (strcmp(key, "max_profile_stacktrace_depth") == 0)
        sz = &l->max_stack_depth;
    else if (strcmp(key, "max_global_series_per_tenant") == 0)
        sz = &l->max_global_series;
    else if (strcmp(key, "max_query_parallelism") == 0)
        sz = &l->max_query_parallelism;
    else
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "overrides: unknown limit or bad value %s: %s", key, val);
    if (sz != NULL) {
        if (!num)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "overrides: %s: not a number: %s", key,
                                val);
        *sz = (size_t)d;
    }
    return KILN_OK;
}

static kiln_status load_tenant(table *tb, const kiln_limits *defaults, yaml_document_t *doc,
                               const char *tenant, yaml_node_t *map, kiln_err *err)
{
    KILN_GROW(tb->t, tb->cap, tb->n + 1);
    tenant_limits *t = &tb->t[tb->n++];
    t->tenant = kiln_xstrdup(tenant);
    t->limits = *defaults;
    if (map->type != YAML_MAPPING_NODE)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "overrides: tenant %s: expected a mapping",
                            tenant);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key),
                    *v = yaml_document_get_node(doc, p->value);
        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "overrides: tenant %s: bad entry",
                                tenant);
        kiln_status st =
            set_limit(&t->limits, (char *)k->data.scalar.value, (char *)v->data.scalar.value, err);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

static kiln_status load_doc(table *tb, const kiln_limits *defaults, yaml_document_t *doc,
                            kiln_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        return KILN_OK;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key),
                    *v = yaml_document_get_node(doc, p->value);
        if (k->type != YAML_SCALAR_NODE || strcmp((char *)k->data.scalar.value, "overrides") != 0 ||
            v->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
             q++) {
            yaml_node_t *tk = yaml_document_get_node(doc, q->key);
            kiln_status st = load_tenant(tb, defaults, doc, (char *)tk->data.scalar.value,
                                         yaml_document_get_node(doc, q->value), err);
            if (st != KILN_OK)
                return st;
        }
    }
    return KILN_OK;
}

/* Parses the YAML text into a new table; what names the source in errors. */
static kiln_status parse_table(const kiln_overrides_t *o, const char *what, const char *yaml,
                               size_t len, table **out, kiln_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    table *tb = kiln_xcalloc(1, sizeof(*tb));
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    kiln_status st;
    if (!yaml_parser_load(&parser, &doc)) {
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "%s: parse error at line %zu", what,
                          parser.problem_mark.line + 1);
    } else {
        st = load_doc(tb, &o->defaults, &doc, err);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (st != KILN_OK)
        table_free(tb);
    else
        *out = tb;
    return st;
}

static kiln_status load_named(kiln_overrides_t *o, const char *what, const char *yaml, size_t len,
                              kiln_err *err)
{
    table *tb;
    kiln_status st = parse_table(o, what, yaml, len, &tb, err);
    if (st != KILN_OK)
        return st;
    pthread_mutex_lock(&o->load_mu);
    table *old = atomic_exchange_explicit(&o->cur, tb, memory_order_acq_rel);
    old->retired_next = o->retired;
    o->retired = old;
    pthread_mutex_unlock(&o->load_mu);
    return KILN_OK;
}

kiln_status kiln_overrides_load_text(kiln_overrides_t *o, const char *yaml, size_t len,
                                     kiln_err *err)
{
    return load_named(o, "runtime config", yaml, len, err);
}

kiln_status kiln_overrides_load(kiln_overrides_t *o, const char *path, kiln_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "cannot open runtime config %s: %s", path,
                            strerror(errno));
    kiln_buf text;
    kiln_buf_init(&text, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        kiln_buf_append(&text, chunk, n);
    bool failed = ferror(f) != 0;
    fclose(f);
    char what[300];
    snprintf(what, sizeof(what), "runtime config %s", path);
    kiln_status st = failed ? kiln_err_set(err, KILN_INVALID_ARGUMENT, "cannot read %s", what)
                            : load_named(o, what, text.ptr != NULL ? text.ptr : "", text.len, err);
    kiln_buf_free(&text);
    return st;
}

static bucket *bucket_of(kiln_overrides_t *o, const char *tenant, double burst, int64_t now_ns)
{
    for (size_t i = 0; i < o->n_b; i++) {
        if (strcmp(o->b[i].tenant, tenant) == 0)
            return &o->b[i];
    }
    KILN_GROW(o->b, o->cap_b, o->n_b + 1);
    bucket *b = &o->b[o->n_b++];
    *b = (bucket){kiln_xstrdup(tenant), burst, now_ns};
    return b;
}

kiln_status kiln_overrides_take(kiln_overrides_t *o, const char *tenant, size_t bytes,
                                int64_t now_ns, kiln_err *err)
{
    const kiln_limits *l = kiln_overrides_get(o, tenant);
    if (l->ingestion_rate_mb <= 0)
        return KILN_OK;
    /* Each of the n live distributors admits its share of the tenant's
     * rate; the burst is not divided, so one push up to the burst still
     * passes wherever it lands. */
    size_t shards = atomic_load_explicit(&o->shards, memory_order_relaxed);
    double rate = l->ingestion_rate_mb * 1e6 / (double)shards, burst = l->ingestion_burst_mb * 1e6;
    kiln_status st = KILN_OK;
    if ((double)bytes > burst)
        /* A bucket never holds more than the burst: this request can never
         * pass, so it is "too large", not retryable. */
        return kiln_err_set(err, KILN_OUT_OF_RANGE,
                            "request of %zu bytes is larger than tenant %s's ingestion burst of "
                            "%g MB (-distributor.ingestion-burst-size-mb): it can never be "
                            "accepted; split it",
                            bytes, tenant, l->ingestion_burst_mb);
    pthread_mutex_lock(&o->mu);
    bucket *b = bucket_of(o, tenant, burst, now_ns);
    double refill = (double)(now_ns - b->last_ns) / 1e9 * rate;
    b->tokens = b->tokens + refill > burst ? burst : b->tokens + refill;
    b->last_ns = now_ns;
    if ((double)bytes > b->tokens)
        st = kiln_err_set(
            err, KILN_RESOURCE_EXHAUSTED,
            "push rate limit (%g MB/s, burst %g MB, -distributor.ingestion-rate-limit-mb) "
            "exceeded for tenant %s while adding %zu bytes",
            l->ingestion_rate_mb, l->ingestion_burst_mb, tenant, bytes);
    else
        b->tokens -= (double)bytes;
    pthread_mutex_unlock(&o->mu);
    return st;
}
