/* SPDX-License-Identifier: Apache-2.0
 * about: what this server is and supports, as Pyroscope answers it:
 * status.v1 (build info; the effective and default configuration as YAML,
 * also GET /api/v1/status/buildinfo, /api/v1/status/config and
 * /api/v1/status/config/default), version.v1 (the querier API version) and
 * capabilities.v1 (feature flags). Stateless after registration: the
 * texts are copied at registration and read-only after; any thread. */
#ifndef KILN_ABOUT_H
#define KILN_ABOUT_H

#include "http_server.h"
#include "rpc.h"

/** The querier API version version.v1 reports (Pyroscope's current one). */
#define KILN_QUERIER_API_VERSION 1

typedef struct kiln_about kiln_about_t;

/** Creates the services with the configuration texts they serve (copied;
 * secrets already masked by the caller, e.g. kiln_cfg_write_yaml). */
kiln_about_t *kiln_about_create(const char *config_yaml, const char *default_yaml);
/** Frees it; NULL is a no-op. Only after the servers stopped. */
void kiln_about_destroy(kiln_about_t *a);

/** Registers the RPCs (status.v1 GetBuildInfo, GetConfig, GetDefaultConfig;
 * version.v1 Version; capabilities.v1 GetFeatureFlags) in rpc and the
 * /api/v1/status/ routes on http (GET, or 405). Before the servers start. */
void kiln_about_register(kiln_about_t *a, kiln_rpc_registry_t *rpc, kiln_http_server_t *http);

#endif
