/* SPDX-License-Identifier: Apache-2.0
 * kiln: flags, then the target's modules until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "build_info.h"
#include "ci.h"
#include "config.h"
#include "grpc_server.h"
#include "log.h"

static kiln_app_config cfg;

#define OPT(n, t, f, d, h)                                                                         \
    {                                                                                              \
        n, t, &cfg.f, d, h                                                                         \
    }
static const kiln_cfg_opt opts[] = {
    OPT("target", KILN_CFG_STRING, target, "all",
        "module set: all, ingester, distributor, querier, compactor"),
    OPT("config.file", KILN_CFG_STRING, config_file, "", "YAML configuration file"),
    OPT("log.level", KILN_CFG_STRING, log_level, "info", "debug, info, warn or error"),
    OPT("server.http-listen-address", KILN_CFG_STRING, http_address, "", "HTTP listen address"),
    OPT("server.http-listen-port", KILN_CFG_INT, http_port, "4040",
        "HTTP listen port (Connect, gRPC-Web and gRPC over h2c, /ready, /metrics)"),
    OPT("server.grpc-listen-address", KILN_CFG_STRING, grpc_address, "", "gRPC listen address"),
    OPT("server.grpc-listen-port", KILN_CFG_INT, grpc_port, "9095", "gRPC listen port"),
    OPT("server.otlp-grpc-listen-address", KILN_CFG_STRING, otlp_grpc_address, "",
        "OTLP gRPC listen address"),
    OPT("server.otlp-grpc-listen-port", KILN_CFG_INT, otlp_grpc_port, "4317",
        "OTLP gRPC listen port, the gRPC services on a second port (0 = ephemeral, -1 = off)"),
    OPT("server.grpc-max-recv-msg-size-bytes", KILN_CFG_SIZE, grpc_max_recv, "256MiB",
        "largest gRPC request"),
    OPT("server.http-max-request-size-bytes", KILN_CFG_SIZE, http_max_body, "256MiB",
        "largest HTTP request body, compressed or not"),
    OPT("server.max-inflight-bytes", KILN_CFG_SIZE, max_inflight_bytes, "512MiB",
        "decompressed request bytes held at once by all requests; past it 429 (0 = no limit)"),
    OPT("server.worker-threads", KILN_CFG_INT, threads, "0",
        "request workers per server, HTTP and gRPC (0 = 64, or two per core if more)"),
    OPT("server.query-worker-threads", KILN_CFG_INT, query_threads, "0",
        "query workers, apart from the request workers (0 = one per core, at least 2)"),
    OPT("server.query-max-queued", KILN_CFG_SIZE, query_max_queued, "1024",
        "queries waiting for a query worker; beyond, unavailable"),
    OPT("querier.timeout", KILN_CFG_DURATION, query_timeout_ns, "2m",
        "deadline of a query (Connect-Timeout-Ms and gRPC deadlines apply when shorter; 0 = none)"),
    OPT("querier.max-query-parallelism", KILN_CFG_SIZE, limits.max_query_parallelism, "32",
        "per tenant, queries running or queued at once (0 = no limit; override: "
        "max_query_parallelism)"),
    OPT("storage.path", KILN_CFG_STRING, storage_path, "./data",
        "this process's own state directory"),
    OPT("storage.filesystem.dir", KILN_CFG_STRING, bucket_dir, "",
        "object store directory for blocks (default <storage.path>/bucket; shared in a cluster)"),
    OPT("storage.backend", KILN_CFG_STRING, storage_backend, "filesystem",
        "object store of the blocks: filesystem or s3"),
    OPT("storage.prefix", KILN_CFG_STRING, storage_prefix, "",
        "prefix of every object within the store (components of [A-Za-z0-9._-])"),
    OPT("storage.s3.endpoint", KILN_CFG_STRING, s3_endpoint, "",
        "S3 endpoint, host[:port] or an http(s):// URL"),
    OPT("storage.s3.bucket-name", KILN_CFG_STRING, s3_bucket, "", "S3 bucket of the blocks"),
    OPT("storage.s3.region", KILN_CFG_STRING, s3_region, "", "S3 region (empty = us-east-1)"),
    OPT("storage.s3.access-key-id", KILN_CFG_STRING, s3_access_key_id, "",
        "S3 access key ID (empty = $AWS_ACCESS_KEY_ID)"),
    OPT("storage.s3.secret-access-key", KILN_CFG_STRING, s3_secret_access_key, "",
        "S3 secret access key (empty = $AWS_SECRET_ACCESS_KEY; $AWS_SESSION_TOKEN is sent if set)"),
    OPT("storage.s3.sts-endpoint", KILN_CFG_STRING, s3_sts_endpoint, "",
        "STS URL for web identity credentials (empty = $AWS_ENDPOINT_URL_STS, else AWS's)"),
    OPT("storage.s3.insecure", KILN_CFG_BOOL, s3_insecure, "false",
        "plain HTTP to an endpoint given without a scheme"),
    OPT("storage.s3.force-path-style", KILN_CFG_BOOL, s3_force_path_style, "false",
        "address objects as <endpoint>/<bucket>/<key> (most S3-compatible servers need it)"),
    OPT("storage.s3.part-size-bytes", KILN_CFG_SIZE, s3_part_size, "16MiB",
        "objects above this go up as multipart uploads in parts of this size (at least 5MiB)"),
    OPT("storage.s3.max-retries", KILN_CFG_INT, s3_max_retries, "5",
        "retries of an S3 request on 5xx, 429 and network errors, with jittered backoff"),
    OPT("storage.cache.dir", KILN_CFG_STRING, cache_dir, "",
        "local cache of block index, symbols and sample chunks read from the object store "
        "(empty = none)"),
    OPT("storage.cache.max-size-bytes", KILN_CFG_SIZE, cache_max_bytes, "1GiB",
        "size of -storage.cache.dir; least recently used entries go first"),
    OPT("storage.block-sums-max-bytes", KILN_CFG_SIZE, block_sums_bytes, "auto",
        "memory the open blocks may keep as per-series sums, which answer queries of a "
        "block's whole range without reading its chunks; past it blocks keep none (auto = an "
        "eighth of the memory limit, as for -ingester.max-head-bytes; 0 = none kept)"),
    OPT("storage.s3.request-timeout", KILN_CFG_DURATION, s3_timeout_ns, "30s",
        "deadline of one S3 request attempt"),
    OPT("ingester.max-block-duration", KILN_CFG_DURATION, max_block_duration_ns, "1h",
        "cut the head into a block after this long"),
    OPT("ingester.max-head-samples", KILN_CFG_SIZE, max_head_samples, "50000000",
        "...or once it holds this many samples (0 = no limit)"),
    OPT("ingester.max-head-bytes", KILN_CFG_SIZE, max_head_bytes, "auto",
        "...or once the heads of all tenants hold this many bytes together; pushes are refused "
        "at twice it while flushing is behind (auto = a quarter of the cgroup's memory limit, "
        "v2 or v1, else of MemTotal; 0 = no limit)"),
    OPT("ingester.max-global-series-per-tenant", KILN_CFG_SIZE, limits.max_global_series, "5000",
        "in-memory series per tenant across the ring, split over the ingesters as global / "
        "ingesters * RF (0 = no limit; override: max_global_series_per_tenant)"),
    OPT("ingester.flush-check-period", KILN_CFG_DURATION, flush_check_ns, "5s",
        "how often heads are checked for cutting and the object store for new blocks"),
    OPT("ingester.flush-on-shutdown", KILN_CFG_BOOL, flush_on_shutdown, "true",
        "write the heads as blocks on SIGTERM"),
    OPT("recording-rules.refresh-period", KILN_CFG_DURATION, rules_refresh_ns, "10s",
        "how often a distributor re-reads a tenant's recording rules from the object store"),
    OPT("recording-rules.remote-write-url", KILN_CFG_STRING, rules_remote_write_url, "",
        "Prometheus remote write URL (http:// or https://) the recording rules' samples are sent "
        "to"),
    OPT("recording-rules.remote-write-interval", KILN_CFG_DURATION, rules_remote_write_ns, "5s",
        "how often changed recording rule series are sent to the remote write URL"),
    OPT("compactor.compaction-interval", KILN_CFG_DURATION, compaction_interval_ns, "1m",
        "between compaction rounds"),
    OPT("compactor.deletion-delay", KILN_CFG_DURATION, deletion_delay_ns, "30s",
        "delete a compacted block's sources this long after it appears (longer than "
        "-ingester.flush-check-period)"),
    OPT("storage.retention", KILN_CFG_DURATION, limits.retention_ns, "0",
        "delete blocks older than this (0 = keep forever; override per tenant: retention_period)"),
    OPT("ingester.wal-max-delay", KILN_CFG_DURATION, wal_max_delay_ns, "0",
        "how long a WAL group commit waits for more pushes before its fsync"),
    OPT("ingester.wal-segment-size-bytes", KILN_CFG_SIZE, wal_segment_bytes, "128MiB",
        "WAL segment size"),
    OPT("runtime-config.file", KILN_CFG_STRING, runtime_config, "",
        "YAML file of per-tenant limit overrides"),
    OPT("distributor.ingestion-rate-limit-mb", KILN_CFG_DOUBLE, limits.ingestion_rate_mb, "4",
        "per-tenant ingestion rate, MB/s of profile bytes as received (0 = unlimited)"),
    OPT("distributor.ingestion-burst-size-mb", KILN_CFG_DOUBLE, limits.ingestion_burst_mb, "2",
        "per-tenant ingestion burst, MB"),
    OPT("validation.max-profile-size-bytes", KILN_CFG_SIZE, limits.max_profile_bytes, "4MiB",
        "largest decompressed profile (process-wide)"),
    OPT("validation.max-label-names-per-series", KILN_CFG_SIZE, limits.max_label_names, "30",
        "label names per series"),
    OPT("validation.max-length-label-name", KILN_CFG_SIZE, limits.max_label_name_len, "1024",
        "bytes per label name"),
    OPT("validation.max-length-label-value", KILN_CFG_SIZE, limits.max_label_value_len, "2048",
        "bytes per label value"),
    OPT("validation.max-profile-stacktrace-samples", KILN_CFG_SIZE, limits.max_samples, "16000",
        "samples per profile (0 = no limit)"),
    OPT("validation.max-profile-stacktrace-sample-labels", KILN_CFG_SIZE, limits.max_sample_labels,
        "100", "labels per sample (0 = no limit)"),
    OPT("validation.max-profile-stack-depth", KILN_CFG_SIZE, limits.max_stack_depth, "1000",
        "frames kept per stack, root side (0 = no limit)"),
    OPT("querier.max-query-length", KILN_CFG_DURATION, limits.max_query_length_ns, "24h",
        "longest Select* range (0 = no limit)"),
    OPT("querier.max-query-lookback", KILN_CFG_DURATION, limits.max_query_lookback_ns, "7d",
        "how far back queries reach (0 = no limit)"),
    OPT("validation.reject-older-than", KILN_CFG_DURATION, limits.reject_older_than_ns, "1h",
        "reject profiles older than this (0 = off)"),
    OPT("validation.reject-newer-than", KILN_CFG_DURATION, limits.reject_newer_than_ns, "10m",
        "reject profiles further in the future than this (0 = off)"),
    OPT("cluster.nats-url", KILN_CFG_STRING, nats_url, "",
        "NATS server URLs (comma-separated); set = run as part of a cluster"),
    OPT("cluster.advertise-address", KILN_CFG_STRING, advertise_address, "",
        "address other processes reach this one at (default: the listen address, else the first "
        "non-loopback IPv4)"),
    OPT("cluster.kv-bucket", KILN_CFG_STRING, kv_bucket, "kiln-ring",
        "JetStream KV bucket of the members"),
    OPT("cluster.heartbeat-period", KILN_CFG_DURATION, heartbeat_ns, "5s",
        "how often a member refreshes its entry"),
    OPT("cluster.heartbeat-timeout", KILN_CFG_DURATION, heartbeat_timeout_ns, "1m",
        "members whose entry is older leave the ring"),
    OPT("cluster.rpc-timeout", KILN_CFG_DURATION, rpc_timeout_ns, "10s",
        "deadline of a call to ingesters (pushes and reads)"),
    OPT("distributor.replication-factor", KILN_CFG_INT, replication_factor, "0",
        "ingesters each series is written to (0 = 3 in a cluster, 1 alone)"),
    OPT("ingester.availability-zone", KILN_CFG_STRING, zone, "",
        "zone of this ingester: replicas go to distinct zones"),
    OPT("ingester.ownership-grace-period", KILN_CFG_DURATION, ownership_grace_ns, "1m",
        "after a ring change, accept writes of series this ingester does not own for this long"),
    OPT("auth.multitenancy-enabled", KILN_CFG_BOOL, auth_multitenancy, "false",
        "refuse (401) a request that names no tenant (X-Scope-OrgID) and whose token implies none"),
    OPT("auth.tokens-file", KILN_CFG_STRING, auth_tokens_file, "",
        "YAML file of SHA-256 token hashes, their tenants and scope; set = every request but "
        "/ready, /metrics and /ring needs a token (reloaded on change; docs/security.md)"),
    OPT("server.metrics-tenant-labels", KILN_CFG_BOOL, metrics_tenant_labels, "true",
        "per-tenant series in /metrics (false: summed over tenants, no tenant label)"),
    OPT("server.http-tls-cert-path", KILN_CFG_STRING, http_tls_cert, "",
        "PEM certificate chain of the HTTP port; set = HTTPS only (reloaded on change)"),
    OPT("server.http-tls-key-path", KILN_CFG_STRING, http_tls_key, "",
        "PEM private key of -server.http-tls-cert-path"),
    OPT("server.http-tls-ca-path", KILN_CFG_STRING, http_tls_ca, "",
        "PEM roots that verify HTTP clients' certificates"),
    OPT("server.http-tls-client-auth", KILN_CFG_STRING, http_tls_client_auth, "",
        "HTTP client certificates: NoClientCert, RequestClientCert, RequireAnyClientCert, "
        "VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
    OPT("server.grpc-tls-cert-path", KILN_CFG_STRING, grpc_tls_cert, "",
        "PEM certificate chain of the gRPC and OTLP gRPC ports; set = TLS only (reloaded on "
        "change)"),
    OPT("server.grpc-tls-key-path", KILN_CFG_STRING, grpc_tls_key, "",
        "PEM private key of -server.grpc-tls-cert-path"),
    OPT("server.grpc-tls-ca-path", KILN_CFG_STRING, grpc_tls_ca, "",
        "PEM roots that verify gRPC clients' certificates"),
    OPT("server.grpc-tls-client-auth", KILN_CFG_STRING, grpc_tls_client_auth, "",
        "gRPC client certificates, as -server.http-tls-client-auth"),
    OPT("server.internal-grpc-listen-address", KILN_CFG_STRING, internal_grpc_address, "",
        "listen address of the cluster plane (ingester.v1); without -cluster.tls-cert-path "
        "only a loopback address is allowed (default 127.0.0.1 then)"),
    OPT("server.internal-grpc-listen-port", KILN_CFG_INT, internal_grpc_port, "9096",
        "listen port of the cluster plane (ingester.v1), served by ingesters in a cluster"),
    OPT("cluster.tls-cert-path", KILN_CFG_STRING, cluster_tls_cert, "",
        "PEM certificate of this process on the cluster plane, as server and as client "
        "(mutual TLS; reloaded on change)"),
    OPT("cluster.tls-key-path", KILN_CFG_STRING, cluster_tls_key, "",
        "PEM private key of -cluster.tls-cert-path"),
    OPT("cluster.tls-ca-path", KILN_CFG_STRING, cluster_tls_ca, "",
        "PEM roots that verify the other processes' cluster certificates"),
    OPT("cluster.tls-server-name", KILN_CFG_STRING, cluster_tls_server_name, "",
        "name the ingesters' certificates are checked against (default: the dialled host)"),
    OPT("cluster.nats-creds-file", KILN_CFG_STRING, nats_creds_file, "",
        "NATS credentials file (JWT and NKey seed)"),
    OPT("cluster.nats-user", KILN_CFG_STRING, nats_user, "", "NATS user name"),
    OPT("cluster.nats-password", KILN_CFG_STRING, nats_password, "",
        "NATS password (of -cluster.nats-user)"),
    OPT("cluster.nats-token", KILN_CFG_STRING, nats_token, "", "NATS authentication token"),
    OPT("cluster.nats-tls-ca-path", KILN_CFG_STRING, nats_tls_ca, "",
        "PEM roots that verify the NATS server; set = TLS to NATS"),
    OPT("cluster.nats-tls-cert-path", KILN_CFG_STRING, nats_tls_cert, "",
        "PEM client certificate for NATS (when it verifies clients)"),
    OPT("cluster.nats-tls-key-path", KILN_CFG_STRING, nats_tls_key, "",
        "PEM private key of -cluster.nats-tls-cert-path"),
};
#undef OPT
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* Signals are blocked in every thread and taken by sigwait here, so no
 * handler runs on a server thread. */
static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

/* -version (or --version) anywhere on the command line. */
static bool wants_version(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0)
            return true;
    }
    return false;
}

/* `kiln hash-token`: the SHA-256 of the token on stdin (one line, its
 * newline dropped), as the tokens file holds it. */
static int hash_token(void)
{
    char line[4096], hex[65];
    if (fgets(line, sizeof(line), stdin) == NULL) {
        fprintf(stderr, "kiln hash-token: no token on stdin\n");
        return 2;
    }
    size_t n = strcspn(line, "\r\n");
    kiln_auth_hash_hex(line, n, hex);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    if (wants_version(argc, argv)) {
        printf("kiln, version %s (revision: %s)\n  build date: %s\n", kiln_build_version(),
               kiln_build_commit(), kiln_build_date());
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ci") == 0) /* the CI gate, a client: docs/ci.md */
        return kiln_ci_main(argc - 1, argv + 1);
    kiln_err err = {KILN_OK, ""};
    if (argc == 2 && strcmp(argv[1], "hash-token") == 0)
        return hash_token();
    kiln_status st = kiln_cfg_parse(opts, N_OPTS, argc, argv, &err);
    if (st == KILN_CANCELLED)
        return 0;
    int level = st == KILN_OK ? kiln_log_parse_level(cfg.log_level) : 0;
    if (st == KILN_OK && level < 0)
        st = kiln_err_set(&err, KILN_INVALID_ARGUMENT, "invalid -log.level \"%s\"", cfg.log_level);
    if (st == KILN_OK && cfg.rpc_timeout_ns <= 0) /* 0 would fail every call at once */
        st = kiln_err_set(&err, KILN_INVALID_ARGUMENT, "-cluster.rpc-timeout must be positive");
    if (st != KILN_OK) {
        fprintf(stderr, "kiln: %s\n", err.msg);
        return 2;
    }
    kiln_log_min = (kiln_log_level)level;
    cfg.flags = opts;
    cfg.n_flags = N_OPTS;
    kiln_grpc_log_setup(kiln_log_min == KILN_LOG_LEVEL_DEBUG);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    kiln_app_t *app = NULL;
    st = kiln_app_create(&cfg, &app, &err);
    if (st == KILN_OK)
        st = kiln_app_start(app, &err);
    if (st == KILN_OK) {
        int sig = wait_for_signal();
        KILN_LOG_INFO("kiln", "signal %s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    } else {
        KILN_LOG_ERROR("kiln", "%s", err.msg);
    }
    kiln_app_destroy(app);
    kiln_cfg_free(opts, N_OPTS);
    return st == KILN_OK ? 0 : 1;
}
