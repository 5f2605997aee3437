/* SPDX-License-Identifier: Apache-2.0
 * adhoc: adhocprofiles.v1 AdHocProfileService (Upload, Get, List, Diff):
 * profile files a user uploads to look at, outside the ingest path. A file
 * may be in any format the distributor ingests (profile_file.h: pprof,
 * folded, speedscope, OTLP; gzip or not). Upload decodes and checks it,
 * then keeps its bytes as they came, per tenant, in the shared object store
 * as <tenant>/adhoc/<id>, where id is "<ULID>-<name>" (the ULID's time is
 * the upload time, the name the file name with characters other than
 * [A-Za-z0-9._-] replaced by '_'), so every querier lists and serves the
 * same files. Get and Upload answer the flame graph of one profile type of
 * the file as flamebearer JSON (Pyroscope's), and every type the file holds
 * (name:sample_type:unit:period_type:period_unit); Diff the "double"
 * flamebearer of two files' common type. Limits: the base64 text at most
 * max_bytes (as upstream), the decoded and decompressed file too;
 * max_nodes 0 means 8192, more than 1048576 or negative is
 * INVALID_ARGUMENT. Statuses: INVALID_ARGUMENT (bad id, name, base64 or
 * profile; too large), NOT_FOUND, UNAVAILABLE (store). Thread-safe. */
#ifndef KILN_ADHOC_H
#define KILN_ADHOC_H

#include <stddef.h>
#include <stdint.h>

#include "adhocprofiles/v1/adhocprofiles.pb-c.h"
#include "arena.h"
#include "inflight.h"
#include "objstore.h"
#include "rpc.h"
#include "status.h"

typedef struct kiln_adhoc_config {
    kiln_objstore_t *store;    /* borrowed; outlives the service */
    size_t max_bytes;          /* -validation.max-profile-size-bytes */
    size_t max_stack_depth;    /* -validation.max-profile-stack-depth; 0 = all */
    kiln_inflight_t *inflight; /* borrowed, may be NULL: decompression budget */
} kiln_adhoc_config;

typedef struct kiln_adhoc kiln_adhoc_t;

/** Creates the service (cfg copied). */
kiln_adhoc_t *kiln_adhoc_create(const kiln_adhoc_config *cfg);
/** Frees it; NULL is a no-op. */
void kiln_adhoc_destroy(kiln_adhoc_t *ad);

/** Checks and stores file[0..len) (borrowed) named name for tenant at
 * now_ms; *out (in a) is what Get answers for it. */
kiln_status kiln_adhoc_upload(kiln_adhoc_t *ad, const char *tenant, const char *name,
                              const uint8_t *file, size_t len, int64_t now_ms, int64_t max_nodes,
                              kiln_arena_t *a, Adhocprofiles__V1__AdHocProfilesGetResponse **out,
                              kiln_err *err);
/** The flame graph of the file id, of profile_type (a sample type or a
 * type id; NULL or "" or not in the file: the first type). */
kiln_status kiln_adhoc_get(kiln_adhoc_t *ad, const char *tenant, const char *id,
                           const char *profile_type, int64_t max_nodes, kiln_arena_t *a,
                           Adhocprofiles__V1__AdHocProfilesGetResponse **out, kiln_err *err);
/** The tenant's files, newest first. */
kiln_status kiln_adhoc_list(kiln_adhoc_t *ad, const char *tenant, kiln_arena_t *a,
                            Adhocprofiles__V1__AdHocProfilesListResponse **out, kiln_err *err);

/** What Get answers for file[0..len) named name, decoded and rendered
 * without being stored (id "" and uploaded_at 0); cfg->store is not used. */
kiln_status kiln_adhoc_render(kiln_adhoc_t *ad, const char *name, const uint8_t *file, size_t len,
                              const char *profile_type, int64_t max_nodes, kiln_arena_t *a,
                              Adhocprofiles__V1__AdHocProfilesGetResponse **out, kiln_err *err);

/** Registers /adhocprofiles.v1.AdHocProfileService/{Upload,Get,List,Diff}. */
void kiln_adhoc_register(kiln_adhoc_t *ad, kiln_rpc_registry_t *rpc);

#endif
