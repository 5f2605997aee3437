/* SPDX-License-Identifier: Apache-2.0
 * app: the kiln process. A target is a list of modules (server, ingester,
 * distributor, querier); `all` wires every module in one process, the other
 * targets run the same code alone. Modules are created and started in
 * dependency order and stopped in reverse. Driven from main's thread only. */
#ifndef KILN_APP_H
#define KILN_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "overrides.h"
#include "status.h"

typedef struct kiln_app_config {
    char *target;
    char *http_address;
    int http_port;
    char *grpc_address;
    int grpc_port;
    size_t grpc_max_recv;
    char *otlp_grpc_address;
    int otlp_grpc_port; /* 0 = ephemeral, -1 = off */
    size_t http_max_body;
    size_t max_inflight_bytes; /* decompressed request bytes in flight, process-wide; 0 = off */
    int threads;
    int query_threads;        /* query pool workers (0 = one per core, at least 2) */
    size_t query_max_queued;  /* queries waiting for a query worker */
    int64_t query_timeout_ns; /* -querier.timeout: per query; 0 = none */
    char *storage_path;
    char *config_file;
    char *log_level;
    char *runtime_config;
    int64_t wal_max_delay_ns;
    char *bucket_dir;
    char *storage_backend; /* -storage.backend: filesystem or s3 */
    char *storage_prefix;
    char *s3_endpoint, *s3_bucket, *s3_region, *s3_access_key_id, *s3_secret_access_key;
    char *s3_sts_endpoint; /* -storage.s3.sts-endpoint ("" = $AWS_ENDPOINT_URL_STS, AWS's) */
    bool s3_insecure, s3_force_path_style;
    size_t s3_part_size;
    int s3_max_retries;
    int64_t s3_timeout_ns;
    char *cache_dir; /* -storage.cache.dir ("" = no cache) */
    size_t cache_max_bytes;
    int64_t max_block_duration_ns;
    size_t max_head_samples;
    size_t max_head_bytes;   /* KILN_CFG_SIZE_AUTO: kiln_db_default_head_bytes */
    size_t block_sums_bytes; /* KILN_CFG_SIZE_AUTO: an eighth of the memory limit */
    int64_t flush_check_ns;
    int64_t rules_refresh_ns;      /* -recording-rules.refresh-period */
    char *rules_remote_write_url;  /* -recording-rules.remote-write-url ("" = none) */
    int64_t rules_remote_write_ns; /* -recording-rules.remote-write-interval */
    bool flush_on_shutdown;
    int64_t compaction_interval_ns;
    int64_t deletion_delay_ns;
    size_t wal_segment_bytes;
    kiln_limits limits; /* defaults for every tenant */

    /* Cluster (all empty/0: one process on its in-process default). */
    char *nats_url;          /* -cluster.nats-url: comma-separated */
    char *advertise_address; /* host peers dial ("" = first non-loopback IPv4) */
    char *kv_bucket;
    int64_t heartbeat_ns;
    int64_t heartbeat_timeout_ns;
    int replication_factor; /* 0 = 3 in a cluster, 1 alone */
    char *zone;
    int64_t ownership_grace_ns;
    int64_t rpc_timeout_ns;     /* distributor -> ingester, querier -> ingester */
    char *auth_tokens_file;     /* -auth.tokens-file ("" = no tokens) */
    bool auth_multitenancy;     /* -auth.multitenancy-enabled */
    bool metrics_tenant_labels; /* -server.metrics-tenant-labels */

    /* TLS ("" = plain text). The gRPC set covers the OTLP gRPC port too. */
    char *http_tls_cert, *http_tls_key, *http_tls_ca, *http_tls_client_auth;
    char *grpc_tls_cert, *grpc_tls_key, *grpc_tls_ca, *grpc_tls_client_auth;
    /* The cluster plane: ingester.v1 on its own listener, mutual TLS with
     * the cluster certificate as server and as client. */
    char *internal_grpc_address;
    int internal_grpc_port;
    char *cluster_tls_cert, *cluster_tls_key, *cluster_tls_ca, *cluster_tls_server_name;
    /* NATS credentials and TLS ("" = none). */
    char *nats_creds_file, *nats_user, *nats_password, *nats_token;
    char *nats_tls_ca, *nats_tls_cert, *nats_tls_key;

    /* The flag table these values came from (status.v1 shows it as YAML). */
    const kiln_cfg_opt *flags;
    size_t n_flags;
} kiln_app_config;

typedef struct kiln_app kiln_app_t;

/** Builds the modules of cfg->target (borrowed cfg). KILN_INVALID_ARGUMENT
 * for an unknown target. */
kiln_status kiln_app_create(const kiln_app_config *cfg, kiln_app_t **out, kiln_err *err);
/** Starts listening; KILN_UNAVAILABLE when a port cannot be bound. */
kiln_status kiln_app_start(kiln_app_t *app, kiln_err *err);
/** Stops serving and frees everything; NULL is a no-op. */
void kiln_app_destroy(kiln_app_t *app);

#endif
