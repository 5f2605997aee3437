/* SPDX-License-Identifier: Apache-2.0
 * app: module wiring per target, and the operational HTTP routes. */
#include "app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "about.h"
#include "adhoc.h"
#include "auth.h"
#include "build_info.h"
#include "cluster.h"
#include "compactor.h"
#include "connect.h"
#include "block.h"
#include "db.h"
#include "distributor.h"
#include "grpc_server.h"
#include "grpc_tls.h"
#include "http_server.h"
#include "ingester.h"
#include "log.h"
#include "memlimit.h"
#include "metrics.h"
#include "objstore.h"
#include "querier.h"
#include "query_pool.h"
#include "rpc.h"
#include "recording_rules.h"
#include "settings.h"
#include "unimplemented.h"
#include "ui.h"
#include "xmalloc.h"

struct kiln_app {
    const kiln_app_config *cfg;
    kiln_metrics_t *metrics;
    kiln_overrides_t *limits;
    kiln_rpc_registry_t *rpc;
    kiln_ingester_t *ingester;
    kiln_distributor_t *distributor;
    kiln_querier_t *querier;
    kiln_objstore_t *store;       /* the object store, opened once: the ingester's blocks,
                                     the querier's view of them, settings, ad-hoc profiles */
    kiln_remote_t *remote_writes; /* the distributor's ingesters (cluster) */
    kiln_remote_t *remote_reads;  /* the querier's ingesters and blocks (cluster) */
    kiln_cluster_t *cluster;      /* NULL on the in-process default */
    kiln_auth_t *auth;            /* NULL: authentication off */
    kiln_compactor_t *compactor;
    kiln_settings_t *settings;
    kiln_rules_t *rules;           /* settings.v1 recording rules */
    kiln_rules_eval_t *rules_eval; /* the distributor's counters of them */
    kiln_rw_t *rules_rw;           /* where they are remote-written (NULL = nowhere) */
    kiln_adhoc_t *adhoc;
    kiln_about_t *about; /* status.v1, version.v1, capabilities.v1 (every target) */
    kiln_connect connect;
    kiln_inflight_t *inflight; /* decompressed request bytes in flight */
    kiln_http_server_t *http;
    kiln_tls_config http_tls;     /* the -server.http-tls-* flags (no certificate = plain HTTP) */
    kiln_grpc_server_t *grpc;     /* the public gRPC and OTLP gRPC ports */
    kiln_grpc_server_t *internal; /* the cluster plane (ingester.v1); NULL unless an
                                     ingester in a cluster */
    kiln_grpc_tls_t *grpc_tls;    /* -server.grpc-tls-*; NULL = plain text */
    kiln_grpc_tls_t *cluster_tls; /* -cluster.tls-*, as server and client; NULL = none */
    kiln_query_pool_t *queries;   /* both servers' query calls */
    kiln_query_pool_t *reads; /* the ingester's reads (gRPC), apart from the queries making them */
    unsigned modules;         /* of the target */
    atomic_int ready;
};

static void on_ready(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    (void)req;
    kiln_app_t *app = ud;
    if (atomic_load(&app->ready))
        kiln_http_text(resp, 200, "ready\n");
    else
        kiln_http_text(resp, 503, "not ready: starting\n");
}

/* Prometheus' build_info convention: a gauge of 1 whose labels say what
 * this binary is. */
static void build_info_metric(kiln_buf *out)
{
    kiln_buf_puts(out, "# HELP kiln_build_info A metric with a constant '1' value labeled by "
                       "version, revision, branch, goversion and build date.\n"
                       "# TYPE kiln_build_info gauge\n");
    kiln_buf_printf(out,
                    "kiln_build_info{version=\"%s\",revision=\"%s\",branch=\"\","
                    "goversion=\"\",builddate=\"%s\"} 1\n",
                    kiln_build_version(), kiln_build_commit(), kiln_build_date());
}

/* With -server.metrics-tenant-labels=false, drops every sample carrying a
 * tenant label that a module rendered (the ingester's per-tenant series),
 * so /metrics names no tenant. */
static void drop_tenant_series(kiln_buf *b, size_t from)
{
    size_t w = from;
    for (size_t r = from; r < b->len;) {
        const char *nl = memchr(b->ptr + r, '\n', b->len - r);
        size_t n = nl != NULL ? (size_t)(nl - (b->ptr + r)) + 1 : b->len - r;
        if (memmem(b->ptr + r, n, "tenant=\"", 8) == NULL) {
            memmove(b->ptr + w, b->ptr + r, n);
            w += n;
        }
        r += n;
    }
    b->len = w;
}

/* kiln_blocks_quarantined_total: damaged blocks shut out, by who found
 * them (the ingester's and the cluster querier's block sets, the
 * compactor); each keeps its own list, so one block may count twice. */
static void quarantine_metric(kiln_app_t *app, kiln_buf *out)
{
    kiln_buf_puts(out, "# HELP kiln_blocks_quarantined_total Blocks shut out of queries or "
                       "compaction as damaged (open or a sample chunk failed with data_loss).\n"
                       "# TYPE kiln_blocks_quarantined_total counter\n");
    if (app->ingester != NULL)
        kiln_buf_printf(out, "kiln_blocks_quarantined_total{component=\"ingester\"} %zu\n",
                        kiln_db_blocks_quarantined(kiln_ingester_db(app->ingester)));
    if (app->remote_reads != NULL)
        kiln_buf_printf(out, "kiln_blocks_quarantined_total{component=\"querier\"} %zu\n",
                        kiln_remote_blocks_quarantined(app->remote_reads));
    if (app->compactor != NULL)
        kiln_buf_printf(out, "kiln_blocks_quarantined_total{component=\"compactor\"} %llu\n",
                        (unsigned long long)kiln_compactor_quarantined(app->compactor));
}

static void on_metrics(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    (void)req;
    kiln_app_t *app = ud;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    kiln_metrics_render(app->metrics, &resp->body);
    build_info_metric(&resp->body);
    size_t modules_from = resp->body.len;
    if (app->ingester != NULL)
        kiln_ingester_metrics(app->ingester, &resp->body);
    kiln_query_pool_metrics(app->queries, &resp->body);
    if (app->store != NULL)
        kiln_objstore_metrics(app->store, &resp->body);
    quarantine_metric(app, &resp->body);
    kiln_auth_render_metrics(app->auth, &resp->body);
    if (app->cluster != NULL)
        kiln_cluster_metrics(app->cluster, &resp->body);
    if (!app->cfg->metrics_tenant_labels)
        drop_tenant_series(&resp->body, modules_from);
}

/* GET /metrics/tenant/<id>: the recording rules' counters of one tenant,
 * kept by this process's distributor (Prometheus text, with timestamps);
 * every other path is the API's. */
#define TENANT_METRICS "/metrics/tenant/"

static void on_fallback(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    kiln_app_t *app = ud;
    const char *id = req->path + strlen(TENANT_METRICS);
    if (app->rules_eval == NULL ||
        strncmp(req->path, TENANT_METRICS, strlen(TENANT_METRICS)) != 0) {
        kiln_connect_handle(&app->connect, req, resp);
        return;
    }
    if (*id == '\0' || strlen(id) > KILN_TENANT_MAX || strchr(id, '/') != NULL) {
        kiln_http_text(resp, 400, "a tenant id: /metrics/tenant/<id>\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    kiln_rules_eval_metrics(app->rules_eval, id, &resp->body);
}

/* Request workers per server: by default 64, or twice the cores where
 * that is more. A push's worker waits on the WAL's group commit
 * (fdatasync), and one commit can only gather the pushes of the workers
 * waiting in it: at two per core a 2-core machine synced 2.4 pushes at a
 * time and 64 clients got 2,400 pushes/s; waiting workers cost no CPU. */
#define MIN_WORKERS 64

static int worker_threads(const kiln_app_config *cfg)
{
    if (cfg->threads > 0)
        return cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > MIN_WORKERS / 2 ? 2 * (int)n : MIN_WORKERS;
}

/* Query workers: by default one per core (queries are CPU-bound), at
 * least two so one long query does not hold up every other. */
static int query_threads(const kiln_app_config *cfg)
{
    if (cfg->query_threads > 0)
        return cfg->query_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 2 ? (int)n : 2;
}

/* The HTTP port's TLS flags, checked together. */
static kiln_status http_tls_flags(kiln_app_t *app, kiln_err *err)
{
    const kiln_app_config *cfg = app->cfg;
    app->http_tls = (kiln_tls_config){cfg->http_tls_cert, cfg->http_tls_key, cfg->http_tls_ca,
                                      KILN_TLS_NO_CLIENT_CERT};
    kiln_status st =
        kiln_tls_client_auth_parse(cfg->http_tls_client_auth, &app->http_tls.client_auth, err);
    if (st == KILN_OK)
        st = kiln_tls_config_check(&app->http_tls, "server.http-tls", err);
    return st;
}

/* A connection on the HTTP port that opened with HTTP/2: gRPC's. */
static void on_h2c(void *ud, int fd)
{
    kiln_grpc_server_add_fd(ud, fd);
}

enum { MOD_INGESTER = 1, MOD_DISTRIBUTOR = 2, MOD_QUERIER = 4, MOD_COMPACTOR = 8 };

/* The cluster plane's listen address: the flag, else loopback without
 * the cluster certificate and every interface with it. */
static const char *internal_address(const kiln_app_config *cfg)
{
    if (*cfg->internal_grpc_address != '\0')
        return cfg->internal_grpc_address;
    return *cfg->cluster_tls_cert != '\0' ? "0.0.0.0" : "127.0.0.1";
}

static bool is_loopback(const char *host)
{
    unsigned char a[16];
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    static const unsigned char one[16] = {[15] = 1};
    return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, one, 16) == 0;
}

/* The TLS flags: each set complete, and the cluster plane either mutual TLS
 * or on loopback only, since it takes writes that skip the distributor's
 * checks and reads of every tenant. */
static kiln_status check_tls_flags(const kiln_app_config *cfg, kiln_tls_config *grpc,
                                   kiln_tls_config *cluster, kiln_err *err)
{
    *grpc = (kiln_tls_config){cfg->grpc_tls_cert, cfg->grpc_tls_key, cfg->grpc_tls_ca, 0};
    kiln_status st = kiln_tls_client_auth_parse(cfg->grpc_tls_client_auth, &grpc->client_auth, err);
    if (st == KILN_OK)
        st = kiln_tls_config_check(grpc, "server.grpc-tls", err);
    *cluster = (kiln_tls_config){cfg->cluster_tls_cert, cfg->cluster_tls_key, cfg->cluster_tls_ca,
                                 KILN_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT};
    bool mtls = kiln_tls_enabled(cluster);
    if (st == KILN_OK && !mtls && (*cfg->cluster_tls_key || *cfg->cluster_tls_ca))
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT,
                          "-cluster.tls-key-path and -cluster.tls-ca-path need "
                          "-cluster.tls-cert-path");
    if (st == KILN_OK && mtls)
        st = kiln_tls_config_check(cluster, "cluster.tls", err);
    if (st == KILN_OK && !mtls && !is_loopback(internal_address(cfg)))
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT,
                          "-server.internal-grpc-listen-address=%s is not a loopback address: "
                          "the cluster plane listens on a network only with mutual TLS "
                          "(-cluster.tls-cert-path, -cluster.tls-key-path, -cluster.tls-ca-path)",
                          internal_address(cfg));
    return st;
}

/* Loads the certificates of the gRPC ports and of the cluster plane. */
static kiln_status create_tls(kiln_app_t *app, kiln_err *err)
{
    kiln_tls_config grpc, cluster;
    kiln_status st = check_tls_flags(app->cfg, &grpc, &cluster, err);
    if (st == KILN_OK && kiln_tls_enabled(&grpc))
        st = kiln_grpc_tls_create(&grpc, "server.grpc-tls", &app->grpc_tls, err);
    if (st == KILN_OK && kiln_tls_enabled(&cluster))
        st = kiln_grpc_tls_create(&cluster, "cluster.tls", &app->cluster_tls, err);
    return st;
}

static void create_servers(kiln_app_t *app)
{
    const kiln_app_config *cfg = app->cfg;
    int threads = worker_threads(cfg);
    kiln_query_pool_config qc = {query_threads(cfg), cfg->query_max_queued, app->limits};
    app->queries = kiln_query_pool_create(&qc);
    qc.limits = NULL; /* the querier admitted the query these reads serve */
    app->reads = kiln_query_pool_create(&qc);
    kiln_http_config hc = {.address = cfg->http_address,
                           .port = cfg->http_port,
                           .threads = threads,
                           .max_body = cfg->http_max_body,
                           .query_pool = app->queries,
                           .query_timeout_ns = cfg->query_timeout_ns};
    /* The second gRPC listener serves the OTLP port (4317); -1 turns it off. */
    const char *otlp_address = cfg->otlp_grpc_port >= 0 ? cfg->otlp_grpc_address : NULL;
    kiln_grpc_config gc = {.address = cfg->grpc_address,
                           .port = cfg->grpc_port,
                           .address2 = otlp_address,
                           .port2 = cfg->otlp_grpc_port,
                           .threads = threads,
                           .max_recv = cfg->grpc_max_recv,
                           .query_pool = app->queries,
                           .read_pool = app->reads,
                           .query_timeout_ns = cfg->query_timeout_ns,
                           .inflight = app->inflight,
                           .auth = app->auth,
                           .plane = KILN_RPC_PUBLIC,
                           .tls = app->grpc_tls};
    app->grpc = kiln_grpc_server_create(&gc, app->rpc, app->metrics);
    if (app->cluster != NULL && (app->modules & MOD_INGESTER)) {
        /* Distributors and queriers call it: no client's token, no client's
         * limits; it is reachable only with the cluster certificate (or
         * only from this host). */
        kiln_grpc_config ic = {.address = internal_address(cfg),
                               .port = cfg->internal_grpc_port,
                               .threads = threads,
                               .max_recv = cfg->grpc_max_recv,
                               .read_pool = app->reads,
                               .inflight = app->inflight,
                               .plane = KILN_RPC_INTERNAL,
                               .tls = app->cluster_tls};
        app->internal = kiln_grpc_server_create(&ic, app->rpc, app->metrics);
    }
    /* One URL for every protocol: gRPC (h2c) on the HTTP port too, unless
     * it speaks HTTPS (then gRPC clients use the gRPC port). */
    hc.h2c = on_h2c;
    hc.h2c_ud = app->grpc;
    hc.tls = &app->http_tls;
    app->http = kiln_http_server_create(&hc);
    kiln_http_server_auth(app->http, app->auth);
    app->connect = (kiln_connect){app->rpc, app->metrics, cfg->http_max_body, app->inflight};
    kiln_http_server_route(app->http, "/ready", on_ready, app);
    kiln_http_server_route(app->http, "/metrics", on_metrics, app);
    kiln_http_server_fallback(app->http, on_fallback, app);
    kiln_http_server_fallback_query(app->http, kiln_rpc_is_query);
}

/* ---- modules ----------------------------------------------------------------
 * A module is created (and registers its RPCs and routes) in table order
 * and destroyed in reverse; the servers start after every module exists and
 * stop before any is destroyed. A target is a set of modules. */

static const char *bucket_dir(const kiln_app_t *app, char *buf, size_t cap)
{
    if (*app->cfg->bucket_dir != '\0')
        return app->cfg->bucket_dir;
    snprintf(buf, cap, "%s/bucket", app->cfg->storage_path);
    return buf;
}

/* A byte budget flag's value: as given, or for "auto" a share of the memory
 * the process may use (what), logged with where it came from. */
static size_t memory_budget(const char *name, const char *flag, size_t value,
                            size_t (*share)(uint64_t memory), const char *what)
{
    if (value != KILN_CFG_SIZE_AUTO) {
        KILN_LOG_INFO("kiln", "%s %s=%zu (%.0f MiB%s)", name, flag, value, (double)value / 1048576,
                      value == 0 ? ", 0: none" : "");
        return value;
    }
    const char *source;
    uint64_t memory = kiln_memlimit_read(&source);
    size_t b = share(memory);
    if (memory == 0)
        KILN_LOG_WARN("kiln",
                      "%s: the memory limit is unknown (no cgroup limit, no "
                      "/proc/meminfo): none; set -%s",
                      name, flag);
    else
        KILN_LOG_INFO("kiln", "%s %s=%zu (%.0f MiB, auto: %s of %s %.0f MiB)", name, flag, b,
                      (double)b / 1048576, what, source, (double)memory / 1048576);
    return b;
}

static size_t eighth(uint64_t memory)
{
    return memory / 8 > SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)(memory / 8);
}

/* -ingester.max-head-bytes, "auto" a quarter of the memory. */
static size_t head_bytes(const kiln_app_config *cfg)
{
    return memory_budget("ingester head budget", "ingester.max-head-bytes", cfg->max_head_bytes,
                         kiln_db_default_head_bytes, "a quarter");
}

/* -storage.block-sums-max-bytes, "auto" an eighth of the memory; 0 (an
 * unknown limit, or the flag) keeps no sums. */
static void block_sums_budget(const kiln_app_config *cfg)
{
    kiln_block_sums_budget(memory_budget("block sums budget", "storage.block-sums-max-bytes",
                                         cfg->block_sums_bytes, eighth, "an eighth"));
}

static kiln_status ingester_create(kiln_app_t *app, kiln_err *err)
{
    const kiln_app_config *cfg = app->cfg;
    kiln_ingester_config ic = {
        .storage_path = cfg->storage_path,
        .store = app->store,
        .wal_max_delay_ns = cfg->wal_max_delay_ns,
        .wal_segment_bytes = cfg->wal_segment_bytes,
        .max_block_duration_ns = cfg->max_block_duration_ns,
        .max_head_samples = cfg->max_head_samples,
        .max_head_bytes = head_bytes(cfg),
        .flush_check_ns = cfg->flush_check_ns,
        .flush_on_shutdown = cfg->flush_on_shutdown,
        .heads_only = app->cluster != NULL,
        /* A querier's listing and its merge are each bounded by the RPC
         * timeout: a head kept that long after its block outlives the
         * merges that may still ask for it, so the querier seldom has to
         * read a share from the blocks instead. */
        .retire_delay_ns = app->cluster != NULL ? cfg->rpc_timeout_ns : 0,
        .limits = app->limits,
    };
    kiln_status st = kiln_ingester_create(&ic, &app->ingester, err);
    if (st != KILN_OK)
        return st;
    kiln_ingester_register(app->ingester, app->rpc);
    if (app->cluster != NULL)
        kiln_ingester_set_ring(app->ingester, kiln_cluster_ring(app->cluster),
                               kiln_cluster_rf(app->cluster), cfg->ownership_grace_ns);
    return KILN_OK;
}

static void ingester_destroy(kiln_app_t *app)
{
    kiln_ingester_destroy(app->ingester);
}

/* The ingester interface a module uses: the ring's ingesters (remote, made
 * into *remote) in a cluster, else this process's own ingester. */
static kiln_store_t module_store(kiln_app_t *app, kiln_objstore_t *blocks, kiln_remote_t **remote)
{
    if (app->cluster == NULL)
        return kiln_db_store(kiln_ingester_db(app->ingester));
    *remote = kiln_cluster_remote(app->cluster, blocks);
    return kiln_remote_store(*remote);
}

static kiln_status distributor_create(kiln_app_t *app, kiln_err *err)
{
    const char *url = app->cfg->rules_remote_write_url;
    if (url != NULL && *url != '\0' && kiln_rw_create(url, &app->rules_rw, err) != KILN_OK)
        return err->code;
    kiln_distributor_config dc = {.limits = app->limits,
                                  .max_profile_bytes = app->cfg->limits.max_profile_bytes,
                                  .store = module_store(app, NULL, &app->remote_writes)};
    app->rules_eval = kiln_rules_eval_create(app->store, app->cfg->rules_refresh_ns);
    if (app->cluster != NULL) /* other distributors count the same series */
        kiln_rules_eval_label_writer(app->rules_eval);
    /* The counters are kept next to the WAL: a restart continues them. A
     * distributor of its own has no WAL that would have made the path. */
    if (mkdir(app->cfg->storage_path, 0755) != 0 && errno != EEXIST)
        return kiln_err_set(err, KILN_UNAVAILABLE, "cannot create -storage.path %s: %s",
                            app->cfg->storage_path, strerror(errno));
    char state[4096];
    snprintf(state, sizeof(state), "%s/recording_rules.state", app->cfg->storage_path);
    kiln_status st = kiln_rules_eval_state_file(app->rules_eval, state, true, err);
    if (st != KILN_OK)
        return st;
    kiln_rules_eval_remote_write(app->rules_eval, app->rules_rw, app->cfg->rules_remote_write_ns);
    app->distributor = kiln_distributor_create(&dc, app->metrics);
    kiln_distributor_set_rules(app->distributor, app->rules_eval);
    kiln_distributor_set_inflight(app->distributor, app->inflight);
    kiln_distributor_register(app->distributor, app->rpc);
    kiln_distributor_register_otlp(app->distributor, app->rpc, app->http);
    kiln_distributor_register_http(app->distributor, app->http);
    return KILN_OK;
}

static void distributor_destroy(kiln_app_t *app)
{
    kiln_distributor_destroy(app->distributor);
    kiln_rules_eval_destroy(app->rules_eval); /* sends what is left first */
    app->rules_eval = NULL;
    kiln_rw_destroy(app->rules_rw);
    app->rules_rw = NULL;
    kiln_remote_destroy(app->remote_writes);
}

static kiln_status querier_create(kiln_app_t *app, kiln_err *err)
{
    (void)err;
    kiln_querier_config qc = {.store = module_store(app, app->store, &app->remote_reads),
                              .limits = app->limits};
    app->querier = kiln_querier_create(&qc);
    kiln_querier_register(app->querier, app->rpc);
    kiln_querier_register_http(app->querier, app->http);
    kiln_ui_register(app->http); /* the web UI goes wherever queries are served */
    return KILN_OK;
}

static void querier_destroy(kiln_app_t *app)
{
    kiln_querier_destroy(app->querier);
    kiln_remote_destroy(app->remote_reads);
}

/* settings.v1 and adhocprofiles.v1 keep their objects in the shared store,
 * so every querier of a cluster answers the same. */
static kiln_status api_create(kiln_app_t *app, kiln_err *err)
{
    (void)err;
    app->settings = kiln_settings_create(app->store);
    kiln_settings_register(app->settings, app->rpc);
    app->rules = kiln_rules_create(app->store);
    kiln_rules_register(app->rules, app->rpc);
    kiln_adhoc_config ac = {app->store, app->cfg->limits.max_profile_bytes,
                            app->cfg->limits.max_stack_depth, app->inflight};
    app->adhoc = kiln_adhoc_create(&ac);
    kiln_adhoc_register(app->adhoc, app->rpc);
    return KILN_OK;
}

static void api_destroy(kiln_app_t *app)
{
    kiln_adhoc_destroy(app->adhoc);
    kiln_rules_destroy(app->rules);
    kiln_settings_destroy(app->settings);
}

/* status.v1's configuration texts: the effective flags and the defaults. */
static void about_create(kiln_app_t *app)
{
    kiln_buf now, def;
    kiln_buf_init(&now, 0);
    kiln_buf_init(&def, 0);
    kiln_cfg_write_yaml(app->cfg->flags, app->cfg->n_flags, false, &now);
    kiln_cfg_write_yaml(app->cfg->flags, app->cfg->n_flags, true, &def);
    kiln_buf_putc(&now, '\0');
    kiln_buf_putc(&def, '\0');
    app->about = kiln_about_create(now.ptr, def.ptr);
    kiln_buf_free(&now);
    kiln_buf_free(&def);
    kiln_about_register(app->about, app->rpc, app->http);
}

static kiln_status compactor_create(kiln_app_t *app, kiln_err *err)
{
    char bucket[4096];
    kiln_compactor_config cc = {bucket_dir(app, bucket, sizeof(bucket)),
                                app->cfg->compaction_interval_ns,
                                app->cfg->limits.retention_ns,
                                app->limits,
                                app->cfg->deletion_delay_ns,
                                app->store};
    return kiln_compactor_create(&cc, &app->compactor, err);
}

static void compactor_destroy(kiln_app_t *app)
{
    kiln_compactor_destroy(app->compactor);
}

static const struct module {
    const char *name;
    unsigned bit;
    unsigned needs; /* modules it calls in-process when not in a cluster */
    kiln_status (*create)(kiln_app_t *app, kiln_err *err);
    void (*destroy)(kiln_app_t *app);
} modules[] = {
    {"ingester", MOD_INGESTER, 0, ingester_create, ingester_destroy},
    {"distributor", MOD_DISTRIBUTOR, MOD_INGESTER, distributor_create, distributor_destroy},
    {"querier", MOD_QUERIER, MOD_INGESTER, querier_create, querier_destroy},
    {"api", MOD_QUERIER, 0, api_create, api_destroy},
    {"compactor", MOD_COMPACTOR, 0, compactor_create, compactor_destroy},
};
#define N_MODULES (sizeof(modules) / sizeof(modules[0]))

static const struct {
    const char *name;
    unsigned modules;
} targets[] = {
    {"all", MOD_INGESTER | MOD_DISTRIBUTOR | MOD_QUERIER | MOD_COMPACTOR},
    {"ingester", MOD_INGESTER},
    {"distributor", MOD_DISTRIBUTOR},
    {"querier", MOD_QUERIER},
    {"compactor", MOD_COMPACTOR},
};

/* The role a process takes in the membership: its most stateful module. */
static const char *app_role(unsigned mods)
{
    if (mods & MOD_INGESTER)
        return "ingester";
    if (mods & MOD_DISTRIBUTOR)
        return "distributor";
    return (mods & MOD_QUERIER) ? "querier" : "compactor";
}

static unsigned target_modules(const char *name)
{
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        if (strcmp(targets[i].name, name) == 0)
            return targets[i].modules;
    }
    return 0;
}

static kiln_status check_target(const char *target, unsigned mods, bool cluster, kiln_err *err)
{
    if (mods == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "unknown target \"%s\": use all, ingester, distributor, querier or "
                            "compactor",
                            target);
    for (size_t i = 0; i < N_MODULES; i++) {
        if (!cluster && (mods & modules[i].bit) && (mods & modules[i].needs) != modules[i].needs)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "target \"%s\": the %s reaches its ingesters through the ring: "
                                "set -cluster.nats-url, or run -target=all",
                                target, modules[i].name);
    }
    return KILN_OK;
}

/* The ingesters and the compactor write blocks, queriers read them (in a
 * cluster) and keep settings and ad-hoc profiles there, and distributors
 * read the recording rules from it. */
static bool needs_store(unsigned mods)
{
    return (mods & (MOD_INGESTER | MOD_COMPACTOR | MOD_QUERIER | MOD_DISTRIBUTOR)) != 0;
}

/* Opens the object store once from the -storage.* flags; every module
 * borrows it, and it closes after the last of them. */
static kiln_status open_store(kiln_app_t *app, kiln_err *err)
{
    const kiln_app_config *c = app->cfg;
    char bucket[4096];
    kiln_objstore_config oc = {
        .backend = c->storage_backend,
        .dir = bucket_dir(app, bucket, sizeof(bucket)),
        .prefix = c->storage_prefix,
        .s3 = {.endpoint = c->s3_endpoint,
               .bucket = c->s3_bucket,
               .region = c->s3_region,
               .access_key_id = c->s3_access_key_id,
               .secret_access_key = c->s3_secret_access_key,
               .sts_endpoint = c->s3_sts_endpoint,
               .insecure = c->s3_insecure,
               .force_path_style = c->s3_force_path_style,
               .part_size = c->s3_part_size,
               .timeout_ms = (int)(c->s3_timeout_ns / 1000000),
               .max_retries = c->s3_max_retries},
        .cache_dir = c->cache_dir,
        .cache_max_bytes = c->cache_max_bytes,
    };
    return kiln_objstore_open(&oc, &app->store, err);
}

kiln_status kiln_app_create(const kiln_app_config *cfg, kiln_app_t **out, kiln_err *err)
{
    unsigned mods = target_modules(cfg->target);
    bool cluster = *cfg->nats_url != '\0';
    kiln_status st = check_target(cfg->target, mods, cluster, err);
    if (st != KILN_OK)
        return st;
    kiln_app_t *app = kiln_xcalloc(1, sizeof(*app));
    app->cfg = cfg;
    app->modules = mods;
    app->limits = kiln_overrides_create(&cfg->limits);
    app->metrics = kiln_metrics_create();
    kiln_metrics_tenant_labels(app->metrics, cfg->metrics_tenant_labels);
    app->inflight = kiln_inflight_create(cfg->max_inflight_bytes);
    app->rpc = kiln_rpc_registry_create();
    if (*cfg->runtime_config != '\0')
        st = kiln_overrides_load(app->limits, cfg->runtime_config, err);
    if (st == KILN_OK)
        st = http_tls_flags(app, err);
    if (st == KILN_OK) {
        kiln_auth_config ac = {cfg->auth_tokens_file, cfg->auth_multitenancy};
        st = kiln_auth_create(&ac, &app->auth, err);
    }
    if (st == KILN_OK)
        st = create_tls(app, err);
    if (st == KILN_OK && cluster)
        st = kiln_cluster_create(cfg, app->limits, app->cluster_tls, &app->cluster, err);
    if (st == KILN_OK && needs_store(mods)) {
        block_sums_budget(cfg);
        st = open_store(app, err);
    }
    if (st == KILN_OK)
        create_servers(app);
    if (st == KILN_OK && app->cluster != NULL)
        kiln_cluster_register_http(app->cluster, app->http);
    if (st == KILN_OK)
        about_create(app);
    for (size_t i = 0; st == KILN_OK && i < N_MODULES; i++) {
        if (mods & modules[i].bit)
            st = modules[i].create(app, err);
    }
    if (st == KILN_OK)
        kiln_unimplemented_register(app->rpc);
    if (st != KILN_OK) {
        kiln_app_destroy(app);
        return st;
    }
    *out = app;
    return KILN_OK;
}

kiln_status kiln_app_start(kiln_app_t *app, kiln_err *err)
{
    kiln_status st = kiln_grpc_server_start(app->grpc, err);
    if (st == KILN_OK && app->internal != NULL)
        st = kiln_grpc_server_start(app->internal, err);
    if (st == KILN_OK)
        st = kiln_http_server_start(app->http, err);
    if (st != KILN_OK)
        return st;
    char otlp[16] = "off", internal[16] = "off";
    if (kiln_grpc_server_port2(app->grpc) != 0)
        snprintf(otlp, sizeof(otlp), "%d", kiln_grpc_server_port2(app->grpc));
    if (app->internal != NULL)
        snprintf(internal, sizeof(internal), "%d", kiln_grpc_server_port(app->internal));
    const char *https = kiln_tls_enabled(&app->http_tls)
                            ? kiln_tls_client_auth_name(app->http_tls.client_auth)
                            : "off";
    KILN_LOG_INFO("kiln",
                  "target=%s version=%s http=%d https=%s grpc=%d otlp_grpc=%s internal_grpc=%s "
                  "grpc_tls=%s cluster_tls=%s listening",
                  app->cfg->target, kiln_build_version(), kiln_http_server_port(app->http), https,
                  kiln_grpc_server_port(app->grpc), otlp, internal, app->grpc_tls ? "on" : "off",
                  app->cluster_tls ? "mutual" : "off");
    /* Peers dial an ingester's cluster plane; other members' address is
     * their public gRPC port, for /ring only. */
    if (app->cluster != NULL && app->internal != NULL)
        kiln_cluster_join(app->cluster, app_role(app->modules),
                          kiln_ingester_instance(app->ingester), internal_address(app->cfg),
                          kiln_grpc_server_port(app->internal), kiln_http_server_port(app->http));
    else if (app->cluster != NULL)
        kiln_cluster_join(app->cluster, app_role(app->modules), NULL, app->cfg->grpc_address,
                          kiln_grpc_server_port(app->grpc), kiln_http_server_port(app->http));
    atomic_store(&app->ready, 1);
    return KILN_OK;
}

/* A leaving ingester flushes its heads to the store while it still serves
 * reads, so queriers find every profile either in its head or in a block. */
static void leave_ring(kiln_app_t *app)
{
    if (app->cluster == NULL || app->ingester == NULL)
        return;
    kiln_cluster_leaving(app->cluster);
    kiln_err err;
    if (app->cfg->flush_on_shutdown && kiln_ingester_flush(app->ingester, &err) != KILN_OK)
        KILN_LOG_WARN("kiln", "flush before leaving: %s (the WAL keeps the data)", err.msg);
}

void kiln_app_destroy(kiln_app_t *app)
{
    if (app == NULL)
        return;
    leave_ring(app);
    atomic_store(&app->ready, 0);
    /* Queries in flight end now (canceled) so shutdown does not wait for
     * them; the pool drains (resuming their connections, sending their
     * calls' status) before the servers stop. */
    kiln_cancel_shutdown();
    if (app->queries != NULL)
        kiln_query_pool_close(app->queries);
    if (app->reads != NULL)
        kiln_query_pool_close(app->reads);
    kiln_http_server_destroy(app->http);
    kiln_grpc_server_destroy(app->grpc);
    kiln_grpc_server_destroy(app->internal);
    kiln_query_pool_destroy(app->queries);
    kiln_query_pool_destroy(app->reads);
    for (size_t i = N_MODULES; i-- > 0;) {
        if (app->modules & modules[i].bit)
            modules[i].destroy(app);
    }
    kiln_about_destroy(app->about);
    kiln_objstore_close(app->store);
    kiln_cluster_destroy(app->cluster);
    kiln_grpc_tls_destroy(app->grpc_tls); /* after every server and channel using them */
    kiln_grpc_tls_destroy(app->cluster_tls);
    kiln_rpc_registry_destroy(app->rpc);
    kiln_metrics_destroy(app->metrics);
    kiln_auth_destroy(app->auth);
    kiln_inflight_destroy(app->inflight);
    kiln_overrides_destroy(app->limits);
    free(app);
}
