/* SPDX-License-Identifier: Apache-2.0
 * rules_eval: per-tenant compiled rules and their counters. */
#include "rules_eval.h"
#include "rules_eval_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <xxhash.h>

#include "block.h"
#include "clock.h"
#include "labels.h"
#include "log.h"
#include "prometheus/remote.pb-c.h"
#include "recording_rule.h"
#include "rule_values.h"
#include "settings/v1/recording_rules.pb-c.h"
#include "tenants.h"
#include "xmalloc.h"

#define DEFAULT_REFRESH_NS (10 * 1000000000LL)
#define MAX_OBJECT ((size_t)64 << 20)
#define TYPE_LABELS 6

typedef kiln_rules_eval__counter counter;
typedef kiln_rules_eval__tenant tenant;
typedef kiln_rules_eval__routes series_routes;

/* Which counters one stored series feeds (a rule index and its counter
 * each): a series pushed again skips matching and naming. */
typedef struct route {
    size_t rule;
    counter *c;
} route;

struct kiln_rules_eval__routes {
    char *key; /* the series, flattened (series_key) */
    size_t key_len;
    uint64_t hash;
    route *routes;
    size_t n;
    struct kiln_rules_eval__routes *next;
};

/* Routes kept per tenant before they are all dropped and rebuilt as
 * series come again: a bound on their memory under series churn. */
#define MAX_ROUTES 65536

kiln_rules_eval_t *kiln_rules_eval_create(kiln_objstore_t *store, int64_t refresh_ns)
{
    kiln_rules_eval_t *ev = kiln_xcalloc(1, sizeof(*ev));
    ev->store = store;
    ev->refresh_ns = refresh_ns > 0 ? refresh_ns : DEFAULT_REFRESH_NS;
    pthread_mutex_init(&ev->mu, NULL);
    pthread_mutex_init(&ev->send_mu, NULL);
    pthread_cond_init(&ev->wake, NULL);
    ev->scratch = kiln_arena_create(0);
    kiln_buf_init(&ev->key, 0);
    kiln_buf_init(&ev->rec, 0);
    kiln_ulid(kiln_wall_ms(), ev->writer_id);
    return ev;
}

static void free_routes(tenant *t)
{
    for (size_t i = 0; i < t->n_route_buckets; i++) {
        for (series_routes *r = t->routes[i], *next; r != NULL; r = next) {
            next = r->next;
            free(r->key);
            free(r->routes);
            free(r);
        }
    }
    free(t->routes);
    t->routes = NULL;
    t->n_routes = t->n_route_buckets = 0;
}

static void routes_grow(tenant *t)
{
    size_t n = t->n_route_buckets ? t->n_route_buckets * 2 : 64;
    series_routes **b = kiln_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->n_route_buckets; i++) {
        for (series_routes *r = t->routes[i], *next; r != NULL; r = next) {
            next = r->next;
            r->next = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
        }
    }
    free(t->routes);
    t->routes = b;
    t->n_route_buckets = n;
}

static void free_rules(tenant *t)
{
    free_routes(t); /* they name rules by index */
    for (size_t i = 0; i < t->n_rules; i++)
        kiln_rule_destroy(t->rules[i]);
    free(t->rules);
    t->rules = NULL;
    t->n_rules = 0;
}

static void free_tenant(tenant *t)
{
    free_rules(t);
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (counter *c = t->buckets[i], *next; c != NULL; c = next) {
            next = c->next;
            free(c->series);
            free(c);
        }
    }
    free(t->buckets);
    free(t->id);
    free(t);
}

void kiln_rules_eval_destroy(kiln_rules_eval_t *ev)
{
    if (ev == NULL)
        return;
    if (ev->started) {
        pthread_mutex_lock(&ev->mu);
        ev->stop = true;
        pthread_cond_signal(&ev->wake);
        pthread_mutex_unlock(&ev->mu);
        pthread_join(ev->sender, NULL);
        kiln_err err = {0};
        if (ev->rw != NULL && kiln_rules_eval_flush(ev, &err) != KILN_OK)
            KILN_LOG_WARN("rules", "remote write at shutdown: %s", err.msg);
    }
    kiln_rules_eval__state_close(ev);
    pthread_cond_destroy(&ev->wake);
    kiln_arena_destroy(ev->scratch);
    kiln_buf_free(&ev->key);
    kiln_buf_free(&ev->rec);
    pthread_mutex_destroy(&ev->send_mu);
    for (tenant *t = ev->tenants, *next; t != NULL; t = next) {
        next = t->next;
        free_tenant(t);
    }
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}

static void compile_all(tenant *t, const Settings__V1__RecordingRulesStore *s)
{
    free_rules(t);
    t->rules = kiln_xcalloc(s->n_rules + 1, sizeof(*t->rules));
    for (size_t i = 0; i < s->n_rules; i++) {
        Settings__V1__RecordingRule r;
        kiln_rule_from_store(s->rules[i], &r);
        kiln_err err = {0};
        if (kiln_rule_compile(&r, &t->rules[t->n_rules], &err) == KILN_OK)
            t->n_rules++;
        else
            KILN_LOG_WARN("rules", "tenant=%s rule=%s skipped: %s", t->id, r.id, err.msg);
    }
}

/* Re-reads the tenant's rules; on failure keeps those it had. */
static void load_rules(kiln_rules_eval_t *ev, tenant *t)
{
    char name[KILN_TENANT_MAX + 64];
    snprintf(name, sizeof(name), "%s/settings/recording_rules.pb", t->id);
    kiln_buf data;
    kiln_buf_init(&data, MAX_OBJECT);
    kiln_err err = {0};
    kiln_status st = kiln_objstore_get(ev->store, name, &data, &err);
    t->loaded_ns = kiln_mono_ns();
    if (st == KILN_NOT_FOUND) {
        free_rules(t);
    } else if (st != KILN_OK) {
        KILN_LOG_WARN("rules", "tenant=%s rules not re-read: %s", t->id, err.msg);
    } else {
        Settings__V1__RecordingRulesStore *s =
            settings__v1__recording_rules_store__unpack(NULL, data.len, (const uint8_t *)data.ptr);
        if (s != NULL)
            compile_all(t, s);
        else
            KILN_LOG_WARN("rules", "tenant=%s %s is corrupt: rules kept", t->id, name);
        settings__v1__recording_rules_store__free_unpacked(s, NULL);
    }
    kiln_buf_free(&data);
}

/* The tenant's state, its rules fresh; under ev->mu. */
tenant *kiln_rules_eval__tenant_get(kiln_rules_eval_t *ev, const char *id, bool refresh)
{
    tenant *t = ev->tenants;
    while (t != NULL && strcmp(t->id, id) != 0)
        t = t->next;
    if (t == NULL) {
        t = kiln_xcalloc(1, sizeof(*t));
        t->id = kiln_xstrdup(id);
        t->next = ev->tenants;
        ev->tenants = t;
    }
    if (refresh && (t->loaded_ns == 0 || kiln_mono_ns() - t->loaded_ns >= ev->refresh_ns))
        load_rules(ev, t);
    return t;
}

static void grow(tenant *t)
{
    size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
    counter **b = kiln_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (counter *c = t->buckets[i], *next; c != NULL; c = next) {
            next = c->next;
            size_t h = XXH3_64bits(c->series, strlen(c->series)) & (n - 1);
            c->next = b[h];
            b[h] = c;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

void kiln_rules_eval__count(counter *c, double v, int64_t ts_ms)
{
    c->value += v;
    c->dirty = true;
    if (ts_ms > c->ts_ms)
        c->ts_ms = ts_ms;
}

counter *kiln_rules_eval__counter_get(tenant *t, const char *series, size_t len)
{
    if (t->n_counters >= t->n_buckets)
        grow(t);
    size_t h = XXH3_64bits(series, len) & (t->n_buckets - 1);
    counter *c = t->buckets[h];
    while (c != NULL && (strncmp(c->series, series, len) != 0 || c->series[len] != '\0'))
        c = c->next;
    if (c == NULL) {
        c = kiln_xcalloc(1, sizeof(*c));
        c->series = kiln_xstrndup(series, len);
        c->next = t->buckets[h];
        t->buckets[h] = c;
        t->n_counters++;
    }
    return c;
}

static bool is_type_label(const char *name)
{
    return strcmp(name, KILN_LABEL_PROFILE_TYPE) == 0 || strcmp(name, KILN_LABEL_TYPE) == 0 ||
           strcmp(name, KILN_LABEL_UNIT) == 0 || strcmp(name, KILN_LABEL_PERIOD_TYPE) == 0 ||
           strcmp(name, KILN_LABEL_PERIOD_UNIT) == 0;
}

/* The labels of the part's series of sample type t, as the head stores
 * them (base plus type labels, sorted), in tmp. */
static kiln_label_t *series_labels(const kiln_head_part *pt, size_t t, kiln_arena_t *tmp,
                                   size_t *out_m)
{
    const kiln_pprof_t *p = pt->profile;
    kiln_label_t *l = kiln_arena_alloc(tmp, (pt->n_labels + TYPE_LABELS) * sizeof(*l));
    size_t m = 0;
    for (size_t i = 0; i < pt->n_labels; i++) {
        if (!is_type_label(pt->labels[i].name))
            l[m++] = pt->labels[i];
    }
    kiln_str_t ty = kiln_pprof_str(p, p->sample_types[t].type);
    kiln_str_t un = kiln_pprof_str(p, p->sample_types[t].unit);
    kiln_str_t pty = kiln_pprof_str(p, p->period_type.type);
    kiln_str_t pu = kiln_pprof_str(p, p->period_type.unit);
    const char *name = kiln_labels_get(pt->labels, pt->n_labels, KILN_LABEL_NAME);
    l[m++] = (kiln_label_t){KILN_LABEL_TYPE, kiln_arena_strndup(tmp, ty.ptr, ty.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_UNIT, kiln_arena_strndup(tmp, un.ptr, un.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_PERIOD_TYPE, kiln_arena_strndup(tmp, pty.ptr, pty.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_PERIOD_UNIT, kiln_arena_strndup(tmp, pu.ptr, pu.len)};
    l[m++] = (kiln_label_t){KILN_LABEL_PROFILE_TYPE,
                            kiln_arena_printf(tmp, "%s:%.*s:%.*s:%.*s:%.*s", name ? name : "",
                                              (int)ty.len, ty.ptr, (int)un.len, un.ptr,
                                              (int)pty.len, pty.ptr, (int)pu.len, pu.ptr)};
    kiln_labels_sort(l, m);
    *out_m = m;
    return l;
}

/* The key of a part's stored series, in two steps: series_key_labels puts
 * each base label's name and value, NUL-separated, in out once per part;
 * series_key_type appends the four strings of sample type ty, so that the
 * keys of a part's types share the labels' copy. */
static void series_key_labels(const kiln_head_part *pt, kiln_buf *out)
{
    out->len = 0;
    for (size_t i = 0; i < pt->n_labels; i++) {
        kiln_buf_append(out, pt->labels[i].name, strlen(pt->labels[i].name) + 1);
        kiln_buf_append(out, pt->labels[i].value, strlen(pt->labels[i].value) + 1);
    }
}

static void series_key_type(const kiln_pprof_t *p, size_t ty, kiln_buf *out)
{
    uint64_t s[4] = {p->sample_types[ty].type, p->sample_types[ty].unit, p->period_type.type,
                     p->period_type.unit};
    for (size_t i = 0; i < 4; i++) {
        kiln_str_t v = kiln_pprof_str(p, s[i]);
        kiln_buf_append(out, v.ptr, v.len);
        kiln_buf_putc(out, '\0');
    }
}

static series_routes *routes_find(const tenant *t, const kiln_buf *key, uint64_t h)
{
    if (t->n_route_buckets == 0)
        return NULL;
    series_routes *r = t->routes[h & (t->n_route_buckets - 1)];
    while (r != NULL &&
           (r->hash != h || r->key_len != key->len || memcmp(r->key, key->ptr, key->len) != 0))
        r = r->next;
    return r;
}

/* Matches the series against every rule once and remembers the counters
 * it feeds. */
static series_routes *routes_build(const kiln_rules_eval_t *ev, tenant *t, const kiln_head_part *pt,
                                   size_t ty, const kiln_buf *key, uint64_t h, kiln_arena_t *tmp)
{
    const kiln_label_t writer = {KILN_RULES_WRITER_LABEL, ev->writer_id};
    if (t->n_routes >= MAX_ROUTES)
        free_routes(t);
    if (t->n_routes >= t->n_route_buckets)
        routes_grow(t);
    series_routes *r = kiln_xcalloc(1, sizeof(*r));
    r->key = kiln_xmalloc(key->len + 1);
    memcpy(r->key, key->ptr, key->len);
    r->key_len = key->len;
    r->hash = h;
    r->routes = kiln_xcalloc(t->n_rules + 1, sizeof(*r->routes));
    size_t m;
    kiln_label_t *l = series_labels(pt, ty, tmp, &m);
    kiln_buf name;
    kiln_buf_init(&name, 0);
    for (size_t i = 0; i < t->n_rules; i++) {
        if (!kiln_rule_match(t->rules[i], l, m))
            continue;
        name.len = 0;
        kiln_rule_series(t->rules[i], l, m, ev->label_writer ? &writer : NULL, &name);
        r->routes[r->n++] = (route){i, kiln_rules_eval__counter_get(t, name.ptr, name.len)};
    }
    kiln_buf_free(&name);
    r->next = t->routes[h & (t->n_route_buckets - 1)];
    t->routes[h & (t->n_route_buckets - 1)] = r;
    t->n_routes++;
    return r;
}

/* The counters one sample type of a part feeds and the value filter of
 * each, copied from its routes (which a later type may free). */
typedef struct type_counts {
    counter **c;
    size_t *filter;
    size_t n;
} type_counts;

/* key holds the part's labels (series_key_labels), labels_len bytes. */
static type_counts counts_of(const kiln_rules_eval_t *ev, tenant *t, const kiln_head_part *pt,
                             size_t ty, kiln_rule_values *rv, kiln_arena_t *tmp, kiln_buf *key,
                             size_t labels_len)
{
    key->len = labels_len;
    series_key_type(pt->profile, ty, key);
    uint64_t h = XXH3_64bits(key->ptr, key->len);
    const series_routes *r = routes_find(t, key, h);
    if (r == NULL)
        r = routes_build(ev, t, pt, ty, key, h, tmp);
    type_counts tc = {kiln_arena_alloc(tmp, (r->n + 1) * sizeof(*tc.c)),
                      kiln_arena_alloc(tmp, (r->n + 1) * sizeof(*tc.filter)), r->n};
    for (size_t i = 0; i < r->n; i++) {
        const kiln_rule_t *rule = t->rules[r->routes[i].rule];
        tc.c[i] = r->routes[i].c;
        tc.filter[i] = kiln_rule_values_want(rv, kiln_rule_function(rule), kiln_rule_self(rule));
    }
    return tc;
}

/* Every type's counters first, so that the values of all the filters they
 * ask for are computed in one pass; each addition is journaled in rec when
 * the counters are kept. */
static void observe_part(kiln_rules_eval_t *ev, tenant *t, const kiln_head_part *pt,
                         kiln_arena_t *tmp, kiln_buf *key, kiln_buf *rec)
{
    const kiln_pprof_t *p = pt->profile;
    int64_t ts_ms = p->time_nanos > 0 ? p->time_nanos / 1000000 : kiln_wall_ms();
    kiln_rule_values *rv = kiln_rule_values_create(p, tmp);
    type_counts *tc = kiln_arena_alloc(tmp, (p->n_sample_types + 1) * sizeof(*tc));
    series_key_labels(pt, key);
    size_t labels_len = key->len;
    for (size_t ty = 0; ty < p->n_sample_types; ty++)
        tc[ty] = counts_of(ev, t, pt, ty, rv, tmp, key, labels_len);
    kiln_rule_values_compute(rv);
    for (size_t ty = 0; ty < p->n_sample_types; ty++) {
        for (size_t i = 0; i < tc[ty].n; i++) {
            double v = kiln_rule_values_get(rv, tc[ty].filter[i])[ty];
            kiln_rules_eval__count(tc[ty].c[i], v, ts_ms);
            if (ev->journal != NULL)
                kiln_rules_eval__journal_add(ev, t, tc[ty].c[i], v, ts_ms, rec);
        }
    }
}

void kiln_rules_eval_observe(kiln_rules_eval_t *ev, const char *tenant_id,
                             const kiln_head_part *parts, size_t n)
{
    pthread_mutex_lock(&ev->mu);
    tenant *t = kiln_rules_eval__tenant_get(ev, tenant_id, true);
    if (t->n_rules > 0 && n > 0) {
        ev->rec.len = 0;
        for (size_t i = 0; i < n; i++)
            observe_part(ev, t, &parts[i], ev->scratch, &ev->key, &ev->rec);
        kiln_arena_reset(ev->scratch);
        /* Under the mutex: a send that took these counts finds them in
         * the journal, and syncs it before sending. */
        if (ev->rec.len > 0)
            kiln_rules_eval__journal_write(ev, ev->rec.ptr, ev->rec.len);
    }
    pthread_mutex_unlock(&ev->mu);
}

static int cmp_counter(const void *a, const void *b)
{
    return strcmp((*(counter *const *)a)->series, (*(counter *const *)b)->series);
}

void kiln_rules_eval_metrics(kiln_rules_eval_t *ev, const char *tenant_id, kiln_buf *out)
{
    pthread_mutex_lock(&ev->mu);
    tenant *t = kiln_rules_eval__tenant_get(ev, tenant_id, false);
    counter **v = kiln_xcalloc(t->n_counters + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (counter *c = t->buckets[i]; c != NULL; c = c->next)
            v[k++] = c;
    }
    qsort(v, k, sizeof(*v), cmp_counter);
    for (size_t i = 0; i < k; i++)
        kiln_buf_printf(out, "%s %.17g %lld\n", v[i]->series, v[i]->value, (long long)v[i]->ts_ms);
    free(v);
    pthread_mutex_unlock(&ev->mu);
    kiln_err err = {0}; /* a scraper too must not see a value taken back */
    if (kiln_rules_eval__journal_sync(ev, &err) != KILN_OK)
        KILN_LOG_WARN_SAMPLED("", "rules_sync", "rules", "counters scraped unsynced: %s", err.msg);
}

/* ---- remote write ---- */

/* The labels of a series key `name{a="x",...}` (as kiln_rule_series
 * writes it), __name__ first then sorted, in a. */
static Prometheus__TimeSeries *series_of(const counter *c, kiln_arena_t *a)
{
    Prometheus__TimeSeries *ts = kiln_arena_alloc(a, sizeof(*ts));
    Prometheus__Sample *smp = kiln_arena_alloc(a, sizeof(*smp));
    Prometheus__Sample **smps = kiln_arena_alloc(a, sizeof(*smps));
    size_t cap = 2;
    for (const char *p = c->series; *p; p++)
        cap += *p == '=';
    Prometheus__Label **l = kiln_arena_alloc(a, cap * sizeof(*l));
    prometheus__time_series__init(ts);
    prometheus__sample__init(smp);
    smp->value = c->value;
    smp->timestamp = c->ts_ms;
    smps[0] = smp;
    ts->samples = smps;
    ts->n_samples = 1;
    const char *p = c->series;
    size_t n = 0, nl = strcspn(p, "{");
    l[n] = kiln_arena_alloc(a, sizeof(**l));
    prometheus__label__init(l[n]);
    l[n]->name = "__name__";
    l[n++]->value = kiln_arena_strndup(a, p, nl);
    p += nl;
    while (*p == '{' || *p == ',') {
        p++;
        size_t k = strcspn(p, "=");
        Prometheus__Label *lab = kiln_arena_alloc(a, sizeof(*lab));
        prometheus__label__init(lab);
        lab->name = kiln_arena_strndup(a, p, k);
        p += k + 2; /* =" */
        char *v = kiln_arena_alloc(a, strlen(p) + 1), *w = v;
        for (; *p != '\0' && *p != '"'; p++) {
            if (*p == '\\' && p[1] != '\0') {
                p++;
                *w++ = *p == 'n' ? '\n' : *p;
            } else {
                *w++ = *p;
            }
        }
        *w = '\0';
        lab->value = v;
        l[n++] = lab;
        if (*p == '"')
            p++;
    }
    ts->labels = l;
    ts->n_labels = n;
    return ts;
}

/* The tenant's changed counters (marked sent) packed as a WriteRequest
 * into out; their pointers in *sent (a) for a retry. Under ev->mu. */
static size_t take_changed(tenant *t, kiln_arena_t *a, kiln_buf *out, counter ***sent)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (counter *c = t->buckets[i]; c != NULL; c = c->next)
            n += c->dirty;
    }
    if (n == 0)
        return 0;
    Prometheus__TimeSeries **v = kiln_arena_alloc(a, n * sizeof(*v));
    *sent = kiln_arena_alloc(a, n * sizeof(**sent));
    size_t k = 0;
    for (size_t i = 0; i < t->n_buckets; i++) {
        for (counter *c = t->buckets[i]; c != NULL; c = c->next) {
            if (!c->dirty)
                continue;
            c->dirty = false;
            (*sent)[k] = c;
            v[k++] = series_of(c, a);
        }
    }
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    req.timeseries = v;
    req.n_timeseries = k;
    size_t len = prometheus__write_request__get_packed_size(&req);
    kiln_buf_reserve(out, len);
    prometheus__write_request__pack(&req, (uint8_t *)out->ptr);
    out->len = len;
    return k;
}

/* One tenant's changed counters, taken for one send. */
typedef struct outgoing {
    char *tenant;
    kiln_arena_t *a;
    kiln_buf body;
    counter **sent;
    size_t n;
} outgoing;

/* Every tenant's changed counters, marked sent; under ev->mu. */
static outgoing *take_all(kiln_rules_eval_t *ev, size_t *n_out)
{
    size_t n = 0;
    for (const tenant *t = ev->tenants; t != NULL; t = t->next)
        n++;
    outgoing *o = kiln_xcalloc(n + 1, sizeof(*o));
    size_t k = 0;
    for (tenant *t = ev->tenants; t != NULL; t = t->next) {
        o[k].a = kiln_arena_create(0);
        kiln_buf_init(&o[k].body, 0);
        o[k].n = take_changed(t, o[k].a, &o[k].body, &o[k].sent);
        o[k].tenant = kiln_xstrdup(t->id);
        k++;
    }
    *n_out = k;
    return o;
}

/* Marks what o took as changed again, so the next round sends the latest
 * values; under ev->mu (counters live as long as ev). */
static void retake(outgoing *o)
{
    for (size_t i = 0; i < o->n; i++)
        o->sent[i]->dirty = true;
}

static void free_outgoing(outgoing *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(o[i].tenant);
        kiln_buf_free(&o[i].body);
        kiln_arena_destroy(o[i].a);
    }
    free(o);
}

/* Sends each taken tenant; a send that may succeed later is taken again. */
static kiln_status send_all(kiln_rules_eval_t *ev, outgoing *o, size_t n, kiln_err *err)
{
    kiln_status first = KILN_OK;
    for (size_t i = 0; i < n; i++) {
        if (o[i].n == 0)
            continue;
        kiln_err e = {0};
        kiln_status st =
            kiln_rw_send(ev->rw, o[i].tenant, (const uint8_t *)o[i].body.ptr, o[i].body.len, 5, &e);
        if (st == KILN_OK)
            continue;
        if (st == KILN_UNAVAILABLE) {
            pthread_mutex_lock(&ev->mu);
            retake(&o[i]);
            pthread_mutex_unlock(&ev->mu);
        }
        KILN_LOG_WARN("rules", "tenant=%s %zu series not sent: %s", o[i].tenant, o[i].n, e.msg);
        if (first == KILN_OK)
            first = kiln_err_set(err, st, "%s", e.msg);
    }
    return first;
}

kiln_status kiln_rules_eval_flush(kiln_rules_eval_t *ev, kiln_err *err)
{
    pthread_mutex_lock(&ev->send_mu);
    kiln_rules_eval__snapshot_if_large(ev);
    if (ev->rw == NULL) {
        pthread_mutex_unlock(&ev->send_mu);
        return KILN_OK;
    }
    size_t n = 0;
    pthread_mutex_lock(&ev->mu);
    outgoing *o = take_all(ev, &n);
    pthread_mutex_unlock(&ev->mu);
    /* No value leaves before every addition in it is on disk: a power loss
     * would take it back, and the counter go back across the restart. */
    kiln_status st = kiln_rules_eval__journal_sync(ev, err);
    if (st == KILN_OK) {
        st = send_all(ev, o, n, err);
    } else {
        KILN_LOG_WARN_SAMPLED("", "rules_sync", "rules", "nothing sent: %s", err->msg);
        pthread_mutex_lock(&ev->mu);
        for (size_t i = 0; i < n; i++)
            retake(&o[i]);
        pthread_mutex_unlock(&ev->mu);
    }
    free_outgoing(o, n);
    pthread_mutex_unlock(&ev->send_mu);
    return st;
}

static void *sender_main(void *arg)
{
    kiln_rules_eval_t *ev = arg;
    pthread_mutex_lock(&ev->mu);
    while (!ev->stop) {
        struct timespec until = kiln_deadline_in(ev->rw_interval_ns);
        pthread_cond_timedwait(&ev->wake, &ev->mu, &until);
        if (ev->stop)
            break;
        pthread_mutex_unlock(&ev->mu);
        kiln_err err = {0};
        (void)kiln_rules_eval_flush(ev, &err); /* logged there */
        pthread_mutex_lock(&ev->mu);
    }
    pthread_mutex_unlock(&ev->mu);
    return NULL;
}

void kiln_rules_eval_remote_write(kiln_rules_eval_t *ev, kiln_rw_t *rw, int64_t interval_ns)
{
    ev->rw = rw;
    ev->rw_interval_ns = interval_ns > 0 ? interval_ns : 5 * 1000000000LL;
    ev->started = pthread_create(&ev->sender, NULL, sender_main, ev) == 0;
}

void kiln_rules_eval_label_writer(kiln_rules_eval_t *ev)
{
    ev->label_writer = true;
}

const char *kiln_rules_eval_writer(const kiln_rules_eval_t *ev)
{
    return ev->writer_id;
}
