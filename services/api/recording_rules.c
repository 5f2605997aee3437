/* SPDX-License-Identifier: Apache-2.0
 * recording_rules: the rules of each tenant in the object store. */
#include "recording_rules.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "recording_rule.h"
#include "xmalloc.h"

struct kiln_rules {
    kiln_objstore_t *store;
    pthread_mutex_t mu; /* serialises read-modify-writes */
};

#define MAX_OBJECT ((size_t)KILN_RULES_MAX * (64 << 10))

typedef Settings__V1__RecordingRulesStore rules_store;
typedef Settings__V1__RecordingRuleStore rule_store;
typedef Settings__V1__RecordingRule rule_t;

kiln_rules_t *kiln_rules_create(kiln_objstore_t *store)
{
    kiln_rules_t *s = kiln_xcalloc(1, sizeof(*s));
    s->store = store;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void kiln_rules_destroy(kiln_rules_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void object_name(const char *tenant, char *out, size_t cap)
{
    snprintf(out, cap, "%s/settings/recording_rules.pb", tenant);
}

/* Reads the tenant's object into *out (arena); absent is no rules. */
static kiln_status load(kiln_rules_t *s, const char *tenant, kiln_arena_t *a, rules_store **out,
                        kiln_err *err)
{
    char name[KILN_TENANT_MAX + 64];
    object_name(tenant, name, sizeof(name));
    kiln_buf data;
    kiln_buf_init(&data, MAX_OBJECT);
    kiln_status st = kiln_objstore_get(s->store, name, &data, err);
    rules_store *r = NULL;
    if (st == KILN_NOT_FOUND) {
        st = KILN_OK;
        r = kiln_arena_alloc(a, sizeof(*r));
        if (r != NULL)
            settings__v1__recording_rules_store__init(r);
    } else if (st == KILN_OK) {
        ProtobufCAllocator al = kiln_arena_pb_allocator(a);
        r = settings__v1__recording_rules_store__unpack(&al, data.len, (const uint8_t *)data.ptr);
        if (r == NULL)
            st = kiln_err_set(err, KILN_DATA_LOSS, "recording rules of tenant %s: %s is corrupt",
                              tenant, name);
    }
    kiln_buf_free(&data);
    if (st == KILN_OK && r == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st == KILN_OK)
        *out = r;
    return st;
}

static kiln_status save(kiln_rules_t *s, const char *tenant, const rules_store *r, kiln_err *err)
{
    char name[KILN_TENANT_MAX + 64];
    object_name(tenant, name, sizeof(name));
    size_t n = settings__v1__recording_rules_store__get_packed_size(r);
    uint8_t *buf = kiln_xmalloc(n ? n : 1);
    settings__v1__recording_rules_store__pack(r, buf);
    kiln_status st = kiln_objstore_put(s->store, name, buf, n, err);
    free(buf);
    return st;
}

/* The API's view of a stored rule (sharing its arrays); profile_type is
 * the rule's __profile_type__ matcher, found by compiling it. */
static rule_t *to_api(const rule_store *in, kiln_arena_t *a)
{
    rule_t *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL)
        return NULL;
    kiln_rule_from_store(in, r);
    kiln_rule_t *c = NULL;
    kiln_err err = {0};
    if (kiln_rule_compile(r, &c, &err) == KILN_OK) {
        const char *pt = kiln_rule_profile_type(c);
        size_t n = strlen(pt);
        char *copy = kiln_arena_alloc(a, n + 1);
        if (copy != NULL) {
            memcpy(copy, pt, n + 1);
            r->profile_type = copy;
        }
        kiln_rule_destroy(c);
    }
    return r;
}

static ssize_t find(const rules_store *r, const char *id)
{
    for (size_t i = 0; i < r->n_rules; i++) {
        if (strcmp(r->rules[i]->id, id) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static int cmp_rule(const void *a, const void *b)
{
    return strcmp((*(rule_t *const *)a)->id, (*(rule_t *const *)b)->id);
}

kiln_status kiln_rules_list(kiln_rules_t *s, const char *tenant, kiln_arena_t *a,
                            Settings__V1__ListRecordingRulesResponse **out, kiln_err *err)
{
    rules_store *r;
    kiln_status st = load(s, tenant, a, &r, err);
    if (st != KILN_OK)
        return st;
    Settings__V1__ListRecordingRulesResponse *resp = kiln_arena_alloc(a, sizeof(*resp));
    rule_t **v = kiln_arena_alloc(a, (r->n_rules + 1) * sizeof(*v));
    if (resp == NULL || v == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    settings__v1__list_recording_rules_response__init(resp);
    for (size_t i = 0; i < r->n_rules; i++) {
        if ((v[i] = to_api(r->rules[i], a)) == NULL)
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    }
    qsort(v, r->n_rules, sizeof(*v), cmp_rule);
    resp->rules = v;
    resp->n_rules = r->n_rules;
    *out = resp;
    return KILN_OK;
}

kiln_status kiln_rules_get(kiln_rules_t *s, const char *tenant, const char *id, kiln_arena_t *a,
                           rule_t **out, kiln_err *err)
{
    if (id == NULL || *id == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no id provided");
    rules_store *r;
    kiln_status st = load(s, tenant, a, &r, err);
    if (st != KILN_OK)
        return st;
    ssize_t i = find(r, id);
    if (i < 0)
        return kiln_err_set(err, KILN_NOT_FOUND, "no recording rule with id %.64s", id);
    rule_t *api = to_api(r->rules[i], a);
    if (api == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    *out = api;
    return KILN_OK;
}

/* A new id: 16 lowercase hex digits from the kernel's generator. */
static char *new_id(kiln_arena_t *a)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v ^= (uint64_t)(uintptr_t)&v *
             0x9e3779b97f4a7c15u; /* getrandom cannot fail on Linux >= 3.17 */
    char *id = kiln_arena_alloc(a, 17);
    if (id != NULL)
        snprintf(id, 17, "%016llx", (unsigned long long)v);
    return id;
}

static rule_store *from_request(const Settings__V1__UpsertRecordingRuleRequest *in, kiln_arena_t *a)
{
    rule_store *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL)
        return NULL;
    settings__v1__recording_rule_store__init(r);
    r->id = in->id;
    r->metric_name = in->metric_name;
    r->n_matchers = in->n_matchers;
    r->matchers = in->matchers;
    r->n_group_by = in->n_group_by;
    r->group_by = in->group_by;
    r->n_external_labels = in->n_external_labels;
    r->external_labels = in->external_labels;
    r->stacktrace_filter = in->stacktrace_filter;
    return r;
}

/* Puts c in r: a new rule, or the replacement of the one of its id. */
static kiln_status put_rule(rules_store *r, rule_store *c, int64_t generation, kiln_arena_t *a,
                            kiln_err *err)
{
    ssize_t i = *c->id != '\0' ? find(r, c->id) : -1;
    if (*c->id != '\0' && i < 0)
        return kiln_err_set(err, KILN_NOT_FOUND, "no recording rule with id %.64s", c->id);
    if (i >= 0) {
        if (r->rules[i]->generation != generation)
            return kiln_err_set(err, KILN_FAILED_PRECONDITION,
                                "recording rule %.64s: generation %lld is not the stored %lld "
                                "(changed concurrently: read it again)",
                                c->id, (long long)generation, (long long)r->rules[i]->generation);
        c->generation = generation + 1;
        r->rules[i] = c;
        return KILN_OK;
    }
    if (r->n_rules >= KILN_RULES_MAX)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "a tenant keeps at most %d rules",
                            KILN_RULES_MAX);
    rule_store **v = kiln_arena_alloc(a, (r->n_rules + 1) * sizeof(*v));
    if (v == NULL || (c->id = new_id(a)) == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (r->n_rules > 0)
        memcpy(v, r->rules, r->n_rules * sizeof(*v));
    c->generation = 1;
    v[r->n_rules++] = c;
    r->rules = v;
    return KILN_OK;
}

static kiln_status check_rule(const rule_store *c, kiln_arena_t *a, kiln_err *err)
{
    rule_t *api = to_api(c, a);
    if (api == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    kiln_rule_t *compiled = NULL;
    kiln_status st = kiln_rule_compile(api, &compiled, err);
    kiln_rule_destroy(compiled);
    return st;
}

kiln_status kiln_rules_upsert(kiln_rules_t *s, const char *tenant,
                              const Settings__V1__UpsertRecordingRuleRequest *in, kiln_arena_t *a,
                              rule_t **out, kiln_err *err)
{
    rule_store *c = from_request(in, a);
    if (c == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    kiln_status st = check_rule(c, a, err);
    if (st != KILN_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    rules_store *r;
    st = load(s, tenant, a, &r, err);
    if (st == KILN_OK)
        st = put_rule(r, c, in->generation, a, err);
    if (st == KILN_OK) {
        r->generation++;
        st = save(s, tenant, r, err);
    }
    pthread_mutex_unlock(&s->mu);
    rule_t *api = st == KILN_OK ? to_api(c, a) : NULL;
    if (st == KILN_OK && api == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st == KILN_OK)
        *out = api;
    return st;
}

kiln_status kiln_rules_delete(kiln_rules_t *s, const char *tenant, const char *id, kiln_err *err)
{
    if (id == NULL || *id == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no id provided");
    kiln_arena_t *a = kiln_arena_create(0);
    pthread_mutex_lock(&s->mu);
    rules_store *r;
    kiln_status st = load(s, tenant, a, &r, err);
    ssize_t i = st == KILN_OK ? find(r, id) : -1;
    if (i >= 0) {
        r->rules[i] = r->rules[--r->n_rules];
        r->generation++;
        st = save(s, tenant, r, err);
    }
    pthread_mutex_unlock(&s->mu);
    kiln_arena_destroy(a);
    return st;
}

/* ---- RPC ---- */

#define ALLOC_RESP(type, init)                                                                     \
    type *r = kiln_arena_alloc(ctx->arena, sizeof(*r));                                            \
    if (r == NULL)                                                                                 \
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");                   \
    init(r)

static kiln_status on_get(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                          ProtobufCMessage **resp)
{
    const Settings__V1__GetRecordingRuleRequest *in = (const void *)req;
    ALLOC_RESP(Settings__V1__GetRecordingRuleResponse,
               settings__v1__get_recording_rule_response__init);
    kiln_status st = kiln_rules_get(svc, ctx->tenant, in->id, ctx->arena, &r->rule, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_list(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp)
{
    (void)req;
    Settings__V1__ListRecordingRulesResponse *r;
    kiln_status st = kiln_rules_list(svc, ctx->tenant, ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_upsert(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage **resp)
{
    ALLOC_RESP(Settings__V1__UpsertRecordingRuleResponse,
               settings__v1__upsert_recording_rule_response__init);
    kiln_status st =
        kiln_rules_upsert(svc, ctx->tenant, (const void *)req, ctx->arena, &r->rule, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_delete(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage **resp)
{
    const Settings__V1__DeleteRecordingRuleRequest *in = (const void *)req;
    ALLOC_RESP(Settings__V1__DeleteRecordingRuleResponse,
               settings__v1__delete_recording_rule_response__init);
    kiln_status st = kiln_rules_delete(svc, ctx->tenant, in->id, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

#define SVC "/settings.v1.RecordingRulesService/"

void kiln_rules_register(kiln_rules_t *s, kiln_rpc_registry_t *rpc)
{
    const kiln_rpc_method m[] = {
        {SVC "GetRecordingRule", &settings__v1__get_recording_rule_request__descriptor,
         &settings__v1__get_recording_rule_response__descriptor, on_get, s, KILN_RPC_PUBLIC, NULL},
        {SVC "ListRecordingRules", &settings__v1__list_recording_rules_request__descriptor,
         &settings__v1__list_recording_rules_response__descriptor, on_list, s, KILN_RPC_PUBLIC,
         NULL},
        {SVC "UpsertRecordingRule", &settings__v1__upsert_recording_rule_request__descriptor,
         &settings__v1__upsert_recording_rule_response__descriptor, on_upsert, s, KILN_RPC_PUBLIC,
         NULL},
        {SVC "DeleteRecordingRule", &settings__v1__delete_recording_rule_request__descriptor,
         &settings__v1__delete_recording_rule_response__descriptor, on_delete, s, KILN_RPC_PUBLIC,
         NULL},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        kiln_rpc_register(rpc, &m[i]);
}
