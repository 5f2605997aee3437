/* SPDX-License-Identifier: Apache-2.0
 * settings: per-tenant settings in the object store. */
#include "settings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "xmalloc.h"

struct kiln_settings {
    kiln_objstore_t *store;
    pthread_mutex_t mu; /* serialises read-modify-writes */
};

/* The largest object a tenant's settings can be (every limit at its max). */
#define MAX_OBJECT                                                                                 \
    ((size_t)KILN_SETTINGS_MAX * (KILN_SETTINGS_MAX_NAME + KILN_SETTINGS_MAX_VALUE + 32))

kiln_settings_t *kiln_settings_create(kiln_objstore_t *store)
{
    kiln_settings_t *s = kiln_xcalloc(1, sizeof(*s));
    s->store = store;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void kiln_settings_destroy(kiln_settings_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void object_name(const char *tenant, char *out, size_t cap)
{
    snprintf(out, cap, "%s/settings/settings.pb", tenant);
}

/* Reads the tenant's object into *out (arena); absent is an empty list. */
static kiln_status load(kiln_settings_t *s, const char *tenant, kiln_arena_t *a,
                        Settings__V1__GetSettingsResponse **out, kiln_err *err)
{
    char name[KILN_TENANT_MAX + 64];
    object_name(tenant, name, sizeof(name));
    kiln_buf data;
    kiln_buf_init(&data, MAX_OBJECT);
    kiln_status st = kiln_objstore_get(s->store, name, &data, err);
    Settings__V1__GetSettingsResponse *r = NULL;
    if (st == KILN_NOT_FOUND) {
        st = KILN_OK;
        r = kiln_arena_alloc(a, sizeof(*r));
        if (r != NULL)
            settings__v1__get_settings_response__init(r);
    } else if (st == KILN_OK) {
        ProtobufCAllocator al = kiln_arena_pb_allocator(a);
        r = settings__v1__get_settings_response__unpack(&al, data.len, (const uint8_t *)data.ptr);
        if (r == NULL)
            st = kiln_err_set(err, KILN_DATA_LOSS, "settings of tenant %s: %s is corrupt", tenant,
                              name);
    }
    kiln_buf_free(&data);
    if (st == KILN_OK && r == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st == KILN_OK)
        *out = r;
    return st;
}

static kiln_status save(kiln_settings_t *s, const char *tenant,
                        const Settings__V1__GetSettingsResponse *r, kiln_err *err)
{
    char name[KILN_TENANT_MAX + 64];
    object_name(tenant, name, sizeof(name));
    size_t n = settings__v1__get_settings_response__get_packed_size(r);
    uint8_t *buf = kiln_xmalloc(n ? n : 1);
    settings__v1__get_settings_response__pack(r, buf);
    kiln_status st = kiln_objstore_put(s->store, name, buf, n, err);
    free(buf);
    return st;
}

static int cmp_setting(const void *a, const void *b)
{
    return strcmp((*(Settings__V1__Setting *const *)a)->name,
                  (*(Settings__V1__Setting *const *)b)->name);
}

kiln_status kiln_settings_get(kiln_settings_t *s, const char *tenant, kiln_arena_t *a,
                              Settings__V1__GetSettingsResponse **out, kiln_err *err)
{
    Settings__V1__GetSettingsResponse *r;
    kiln_status st = load(s, tenant, a, &r, err);
    if (st != KILN_OK)
        return st;
    if (r->n_settings > 1)
        qsort(r->settings, r->n_settings, sizeof(*r->settings), cmp_setting);
    *out = r;
    return KILN_OK;
}

static ssize_t find(const Settings__V1__GetSettingsResponse *r, const char *name)
{
    for (size_t i = 0; i < r->n_settings; i++) {
        if (strcmp(r->settings[i]->name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static kiln_status check_setting(const Settings__V1__Setting *in, kiln_err *err)
{
    if (in == NULL || in->name == NULL || *in->name == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no setting values provided");
    if (strlen(in->name) > KILN_SETTINGS_MAX_NAME)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "setting name longer than %d bytes",
                            KILN_SETTINGS_MAX_NAME);
    if (strlen(in->value) > KILN_SETTINGS_MAX_VALUE)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "setting %.64s: value longer than %d bytes",
                            in->name, KILN_SETTINGS_MAX_VALUE);
    return KILN_OK;
}

/* Puts c in r, replacing the setting of that name (r's array in a). */
static kiln_status upsert(Settings__V1__GetSettingsResponse *r, Settings__V1__Setting *c,
                          kiln_arena_t *a, kiln_err *err)
{
    ssize_t i = find(r, c->name);
    if (i >= 0) {
        if (r->settings[i]->modifiedat > c->modifiedat)
            return kiln_err_set(err, KILN_ALREADY_EXISTS,
                                "failed to update %.64s: newer update already written", c->name);
        r->settings[i] = c;
        return KILN_OK;
    }
    if (r->n_settings >= KILN_SETTINGS_MAX)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "a tenant keeps at most %d settings",
                            KILN_SETTINGS_MAX);
    Settings__V1__Setting **v = kiln_arena_alloc(a, (r->n_settings + 1) * sizeof(*v));
    if (v == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (r->n_settings > 0)
        memcpy(v, r->settings, r->n_settings * sizeof(*v));
    v[r->n_settings++] = c;
    r->settings = v;
    return KILN_OK;
}

kiln_status kiln_settings_set(kiln_settings_t *s, const char *tenant,
                              const Settings__V1__Setting *in, int64_t now_ms, kiln_arena_t *a,
                              Settings__V1__Setting **out, kiln_err *err)
{
    kiln_status st = check_setting(in, err);
    if (st != KILN_OK)
        return st;
    Settings__V1__Setting *c = kiln_arena_alloc(a, sizeof(*c));
    if (c == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    settings__v1__setting__init(c);
    c->name = in->name;
    c->value = in->value;
    c->modifiedat = in->modifiedat != 0 ? in->modifiedat : now_ms;
    pthread_mutex_lock(&s->mu);
    Settings__V1__GetSettingsResponse *r;
    st = load(s, tenant, a, &r, err);
    if (st == KILN_OK)
        st = upsert(r, c, a, err);
    if (st == KILN_OK)
        st = save(s, tenant, r, err);
    pthread_mutex_unlock(&s->mu);
    if (st == KILN_OK)
        *out = c;
    return st;
}

kiln_status kiln_settings_delete(kiln_settings_t *s, const char *tenant, const char *name,
                                 int64_t now_ms, kiln_err *err)
{
    if (name == NULL || *name == '\0')
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no setting name provided");
    kiln_arena_t *a = kiln_arena_create(0);
    pthread_mutex_lock(&s->mu);
    Settings__V1__GetSettingsResponse *r;
    kiln_status st = load(s, tenant, a, &r, err);
    ssize_t i = st == KILN_OK ? find(r, name) : -1;
    if (i >= 0 && r->settings[i]->modifiedat > now_ms)
        st = kiln_err_set(err, KILN_ALREADY_EXISTS,
                          "failed to delete %.64s: newer update already written", name);
    else if (i >= 0) {
        r->settings[i] = r->settings[--r->n_settings];
        st = save(s, tenant, r, err);
    }
    pthread_mutex_unlock(&s->mu);
    kiln_arena_destroy(a);
    return st;
}

/* ---- RPC ---- */

static kiln_status on_get(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                          ProtobufCMessage **resp)
{
    (void)req;
    Settings__V1__GetSettingsResponse *r;
    kiln_status st = kiln_settings_get(svc, ctx->tenant, ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_set(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                          ProtobufCMessage **resp)
{
    const Settings__V1__SetSettingsRequest *in = (const void *)req;
    Settings__V1__SetSettingsResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    settings__v1__set_settings_response__init(r);
    kiln_status st = kiln_settings_set(svc, ctx->tenant, in->setting, kiln_wall_ms(), ctx->arena,
                                       &r->setting, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_delete(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage **resp)
{
    const Settings__V1__DeleteSettingsRequest *in = (const void *)req;
    Settings__V1__DeleteSettingsResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    if (r == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    settings__v1__delete_settings_response__init(r);
    kiln_status st = kiln_settings_delete(svc, ctx->tenant, in->name, kiln_wall_ms(), ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

void kiln_settings_register(kiln_settings_t *s, kiln_rpc_registry_t *rpc)
{
    const kiln_rpc_method m[] = {
        {"/settings.v1.SettingsService/Get", &settings__v1__get_settings_request__descriptor,
         &settings__v1__get_settings_response__descriptor, on_get, s, KILN_RPC_PUBLIC, NULL},
        {"/settings.v1.SettingsService/Set", &settings__v1__set_settings_request__descriptor,
         &settings__v1__set_settings_response__descriptor, on_set, s, KILN_RPC_PUBLIC, NULL},
        {"/settings.v1.SettingsService/Delete", &settings__v1__delete_settings_request__descriptor,
         &settings__v1__delete_settings_response__descriptor, on_delete, s, KILN_RPC_PUBLIC, NULL},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        kiln_rpc_register(rpc, &m[i]);
}
