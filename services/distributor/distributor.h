/* SPDX-License-Identifier: Apache-2.0
 * distributor: the write path's front door. Serves push.v1.PusherService/Push
 * (gRPC and Connect): every RawSample is gunzipped (capped), decoded,
 * validated and normalised, its series labels completed as Pyroscope does
 * (service_name defaults to unknown_service; ingest markers stripped), and
 * appended through the ingester. A request is all-or-nothing: nothing of it
 * is appended unless every profile in it is valid. Thread-safe. */
#ifndef KILN_DISTRIBUTOR_H
#define KILN_DISTRIBUTOR_H

#include <stddef.h>

#include "ingester.h"
#include "metrics.h"
#include "rpc.h"

typedef struct kiln_distributor kiln_distributor_t;

typedef struct kiln_distributor_config {
    size_t max_profile_bytes; /* decompressed pprof, per profile (Pyroscope: 4 MiB) */
    size_t max_label_names;   /* per series (Pyroscope: 30) */
    size_t max_stack_depth;   /* frames kept, root side (Pyroscope: 1000) */
} kiln_distributor_config;

/** Creates a distributor writing to ing (borrowed; in-process ingester). */
kiln_distributor_t *kiln_distributor_create(const kiln_distributor_config *cfg,
                                            kiln_ingester_t *ing, kiln_metrics_t *metrics);
/** Frees it; NULL is a no-op. */
void kiln_distributor_destroy(kiln_distributor_t *d);
/** Registers /push.v1.PusherService/Push. */
void kiln_distributor_register(kiln_distributor_t *d, kiln_rpc_registry_t *rpc);

#endif
