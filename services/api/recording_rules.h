/* SPDX-License-Identifier: Apache-2.0
 * recording_rules: settings.v1 RecordingRulesService (Get, List, Upsert,
 * Delete), the rules that turn profiles into Prometheus metrics. Each
 * tenant's rules are one object, <tenant>/settings/recording_rules.pb (a
 * packed RecordingRulesStore), in the shared object store, read through on
 * every call so every querier answers the same at once. An upsert without
 * id creates a rule (a new random id, generation 1); with an id it replaces
 * that rule when its generation is the stored one (else
 * FAILED_PRECONDITION), bumping it. A rule that does not compile
 * (recording_rule.h) is INVALID_ARGUMENT, an unknown id NOT_FOUND (Delete
 * of an unknown id is OK, as upstream), store failures UNAVAILABLE.
 * Changes are serialised within the process. Thread-safe. */
#ifndef KILN_RECORDING_RULES_H
#define KILN_RECORDING_RULES_H

#include "arena.h"
#include "objstore.h"
#include "rpc.h"
#include "settings/v1/recording_rules.pb-c.h"
#include "status.h"

/** Most rules a tenant may keep. */
#define KILN_RULES_MAX 1000

typedef struct kiln_rules kiln_rules_t;

/** Creates the service over store (borrowed; must outlive it). */
kiln_rules_t *kiln_rules_create(kiln_objstore_t *store);
/** Frees it; NULL is a no-op. */
void kiln_rules_destroy(kiln_rules_t *s);

/** The tenant's rules, sorted by id, allocated in a. */
kiln_status kiln_rules_list(kiln_rules_t *s, const char *tenant, kiln_arena_t *a,
                            Settings__V1__ListRecordingRulesResponse **out, kiln_err *err);
/** One rule by id (in a); NOT_FOUND when absent. */
kiln_status kiln_rules_get(kiln_rules_t *s, const char *tenant, const char *id, kiln_arena_t *a,
                           Settings__V1__RecordingRule **out, kiln_err *err);
/** Creates or replaces a rule (in borrowed); *out (in a) is the stored one. */
kiln_status kiln_rules_upsert(kiln_rules_t *s, const char *tenant,
                              const Settings__V1__UpsertRecordingRuleRequest *in, kiln_arena_t *a,
                              Settings__V1__RecordingRule **out, kiln_err *err);
/** Deletes a rule by id; an unknown id is OK. */
kiln_status kiln_rules_delete(kiln_rules_t *s, const char *tenant, const char *id, kiln_err *err);

/** Registers the four methods on rpc (before kiln_unimplemented_register). */
void kiln_rules_register(kiln_rules_t *s, kiln_rpc_registry_t *rpc);

#endif
