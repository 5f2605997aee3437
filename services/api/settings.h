/* SPDX-License-Identifier: Apache-2.0
 * settings: settings.v1 SettingsService (Get, Set, Delete), the per-tenant
 * name/value settings Grafana's Profiles Drilldown reads when it starts.
 * Each tenant's settings are one object, <tenant>/settings/settings.pb (a
 * packed GetSettingsResponse), in the shared object store. Every Get reads
 * it through (no cache), so every querier of a cluster answers the same at
 * once after a Set; a Set or Delete is a read-modify-write of that object,
 * serialised within the process (across processes the last writer of the
 * whole object wins, as upstream's bucket store). As upstream: a Set older
 * (modifiedAt) than the stored setting is ALREADY_EXISTS, a Set without a
 * setting or name INVALID_ARGUMENT; modifiedAt 0 means now. Settings come
 * back sorted by name. Store failures are UNAVAILABLE. Thread-safe. */
#ifndef KILN_SETTINGS_H
#define KILN_SETTINGS_H

#include <stdint.h>

#include "arena.h"
#include "objstore.h"
#include "rpc.h"
#include "settings/v1/setting.pb-c.h"
#include "status.h"

/** Most settings a tenant may keep, and the largest name and value: a
 * tenant cannot grow its object without bound. */
#define KILN_SETTINGS_MAX 1024
#define KILN_SETTINGS_MAX_NAME 256
#define KILN_SETTINGS_MAX_VALUE (64 << 10)

typedef struct kiln_settings kiln_settings_t;

/** Creates the service over store (borrowed; must outlive it). */
kiln_settings_t *kiln_settings_create(kiln_objstore_t *store);
/** Frees it; NULL is a no-op. */
void kiln_settings_destroy(kiln_settings_t *s);

/** The tenant's settings, sorted by name, allocated in a. */
kiln_status kiln_settings_get(kiln_settings_t *s, const char *tenant, kiln_arena_t *a,
                              Settings__V1__GetSettingsResponse **out, kiln_err *err);
/** Stores in (borrowed) for tenant; *out (in a) is the stored setting, its
 * modifiedAt filled with now_ms when 0. */
kiln_status kiln_settings_set(kiln_settings_t *s, const char *tenant,
                              const Settings__V1__Setting *in, int64_t now_ms, kiln_arena_t *a,
                              Settings__V1__Setting **out, kiln_err *err);
/** Removes the setting name (absent is OK); ALREADY_EXISTS when it was
 * modified after now_ms. */
kiln_status kiln_settings_delete(kiln_settings_t *s, const char *tenant, const char *name,
                                 int64_t now_ms, kiln_err *err);

/** Registers /settings.v1.SettingsService/{Get,Set,Delete} in rpc. */
void kiln_settings_register(kiln_settings_t *s, kiln_rpc_registry_t *rpc);

#endif
