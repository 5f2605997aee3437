/* SPDX-License-Identifier: Apache-2.0
 * cluster: membership wiring, /ring and ring metrics. */
#include "cluster.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "membership.h"
#include "xmalloc.h"

struct kiln_cluster {
    const kiln_app_config *cfg;
    kiln_ring_t *ring;
    kiln_grpc_client_t *grpc;
    kiln_membership_t *members;
    char host[200]; /* the advertised host */
    bool joined;
};

/* The first non-loopback IPv4 address of the host (what a pod's peers
 * reach it at), or 127.0.0.1. */
static void first_ipv4(char *out, size_t cap)
{
    snprintf(out, cap, "127.0.0.1");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct sockaddr_in *sa = (const struct sockaddr_in *)i->ifa_addr;
        if ((ntohl(sa->sin_addr.s_addr) >> 24) == 127)
            continue;
        inet_ntop(AF_INET, &sa->sin_addr, out, (socklen_t)cap);
        break;
    }
    freeifaddrs(ifs);
}

static bool any_address(const char *a)
{
    return *a == '\0' || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
}

/* The host peers reach a listener on listen at: a loopback address is the
 * only one it answers on; otherwise the advertised address, else listen
 * when it names one, else the first non-loopback IPv4. */
static void advertised_host(const kiln_app_config *cfg, const char *listen, char *out, size_t cap)
{
    struct in_addr a4;
    bool loopback = strcmp(listen, "localhost") == 0 || strcmp(listen, "::1") == 0 ||
                    (inet_pton(AF_INET, listen, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
    const char *a = loopback ? listen : cfg->advertise_address;
    if (*a == '\0' && !any_address(listen))
        a = listen;
    if (*a != '\0')
        snprintf(out, cap, "%s", a);
    else
        first_ipv4(out, cap);
}

/* Every process applies the runtime overrides file it was given, and
 * hands it to the others over NATS. */
static void publish_overrides(kiln_cluster_t *c)
{
    if (*c->cfg->runtime_config == '\0')
        return;
    FILE *f = fopen(c->cfg->runtime_config, "rb");
    if (f == NULL)
        return;
    kiln_buf b;
    kiln_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        kiln_buf_append(&b, chunk, n);
    fclose(f);
    kiln_buf_putc(&b, '\0');
    kiln_err err;
    if (kiln_membership_publish_overrides(c->members, b.ptr, &err) != KILN_OK)
        KILN_LOG_WARN("cluster", "publishing the runtime overrides: %s", err.msg);
    kiln_buf_free(&b);
}

kiln_status kiln_cluster_create(const kiln_app_config *cfg, kiln_overrides_t *limits,
                                kiln_grpc_tls_t *tls, kiln_cluster_t **out, kiln_err *err)
{
    kiln_cluster_t *c = kiln_xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->ring = kiln_ring_create();
    c->grpc = kiln_grpc_client_create(cfg->grpc_max_recv);
    if (tls != NULL)
        kiln_grpc_client_set_tls(c->grpc, tls, cfg->cluster_tls_server_name);
    advertised_host(cfg, cfg->grpc_address, c->host, sizeof(c->host));
    kiln_membership_config mc = {
        .nats_urls = cfg->nats_url,
        .bucket = cfg->kv_bucket,
        .heartbeat_ns = cfg->heartbeat_ns,
        .heartbeat_timeout_ns = cfg->heartbeat_timeout_ns,
        .security = {.creds_file = cfg->nats_creds_file,
                     .user = cfg->nats_user,
                     .password = cfg->nats_password,
                     .token = cfg->nats_token,
                     .tls = {.ca_path = cfg->nats_tls_ca,
                             .cert_path = cfg->nats_tls_cert,
                             .key_path = cfg->nats_tls_key}},
    };
    kiln_status st = kiln_membership_create(&mc, c->ring, limits, &c->members, err);
    if (st != KILN_OK) {
        kiln_cluster_destroy(c);
        return st;
    }
    publish_overrides(c);
    *out = c;
    return KILN_OK;
}

void kiln_cluster_destroy(kiln_cluster_t *c)
{
    if (c == NULL)
        return;
    kiln_membership_destroy(c->members);
    kiln_grpc_client_destroy(c->grpc);
    kiln_ring_destroy(c->ring);
    free(c);
}

kiln_remote_t *kiln_cluster_remote(kiln_cluster_t *c, kiln_objstore_t *blocks)
{
    kiln_remote_config rc = {.ring = c->ring,
                             .grpc = c->grpc,
                             .blocks = blocks,
                             .rf = kiln_cluster_rf(c),
                             .timeout_ms = c->cfg->rpc_timeout_ns / 1000000};
    return kiln_remote_create(&rc);
}

kiln_ring_t *kiln_cluster_ring(kiln_cluster_t *c)
{
    return c->ring;
}

kiln_grpc_client_t *kiln_cluster_grpc(kiln_cluster_t *c)
{
    return c->grpc;
}

size_t kiln_cluster_rf(const kiln_cluster_t *c)
{
    return c->cfg->replication_factor > 0 ? (size_t)c->cfg->replication_factor : 3;
}

void kiln_cluster_join(kiln_cluster_t *c, const char *role, const char *instance,
                       const char *listen, int port, int http_port)
{
    char dial[200];
    advertised_host(c->cfg, listen, dial, sizeof(dial));
    kiln_ring_member self;
    memset(&self, 0, sizeof(self));
    if (instance != NULL) {
        snprintf(self.id, sizeof(self.id), "%s", instance);
    } else {
        char host[64] = "";
        gethostname(host, sizeof(host) - 1);
        snprintf(self.id, sizeof(self.id), "%.40s-%d", host, http_port);
    }
    snprintf(self.addr, sizeof(self.addr), "%s:%d", dial, port);
    snprintf(self.http_addr, sizeof(self.http_addr), "%s:%d", c->host, http_port);
    snprintf(self.zone, sizeof(self.zone), "%s", c->cfg->zone);
    self.state = KILN_RING_JOINING;
    self.heartbeat_ms = kiln_wall_ms();
    if (strcmp(role, "ingester") == 0) {
        self.n_tokens = KILN_RING_TOKENS;
        kiln_ring_tokens(self.id, self.tokens, KILN_RING_TOKENS);
    }
    kiln_membership_join(c->members, role, &self);
    c->joined = true;
    /* An ingester's WAL is replayed before its servers start: it can take
     * writes and serve reads at once. */
    if (self.n_tokens != 0)
        kiln_membership_set_state(c->members, KILN_RING_ACTIVE);
    KILN_LOG_INFO("cluster", "joined as %s %s at %s", role, self.id, self.addr);
}

void kiln_cluster_leaving(kiln_cluster_t *c)
{
    if (c->joined)
        kiln_membership_set_state(c->members, KILN_RING_LEAVING);
}

static void on_ring(void *ud, const kiln_http_req *req, kiln_http_resp *resp)
{
    kiln_cluster_t *c = ud;
    const char *format = kiln_http_query(req, "format");
    const char *accept = kiln_http_header(req, "Accept");
    bool json = (format != NULL && strcmp(format, "json") == 0) ||
                (accept != NULL && strstr(accept, "application/json") != NULL);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(c->ring);
    if (json)
        kiln_ring_json(s, kiln_wall_ms(), &resp->body);
    else
        kiln_ring_html(s, kiln_wall_ms(), &resp->body);
    kiln_ring_release(s);
    resp->status = 200;
    resp->content_type = json ? "application/json" : "text/html; charset=utf-8";
}

void kiln_cluster_register_http(kiln_cluster_t *c, kiln_http_server_t *http)
{
    kiln_http_server_route(http, "/ring", on_ring, c);
}

void kiln_cluster_metrics(kiln_cluster_t *c, kiln_buf *out)
{
    kiln_ring_snapshot_t *s = kiln_ring_acquire(c->ring);
    const kiln_ring_member *m;
    size_t n = kiln_ring_members(s, &m);
    double *own = kiln_xcalloc(n + 1, sizeof(double));
    kiln_ring_ownership(s, own);
    int64_t now = kiln_wall_ms();
    kiln_buf_puts(out, "# HELP kiln_ring_member_info A member of the ingester ring.\n"
                       "# TYPE kiln_ring_member_info gauge\n");
    for (size_t i = 0; i < n; i++)
        kiln_buf_printf(
            out, "kiln_ring_member_info{member=\"%s\",addr=\"%s\",zone=\"%s\",state=\"%s\"} 1\n",
            m[i].id, m[i].addr, m[i].zone, kiln_ring_state_str(m[i].state));
    kiln_buf_puts(out,
                  "# HELP kiln_ring_member_ownership_ratio Share of the key space a member owns.\n"
                  "# TYPE kiln_ring_member_ownership_ratio gauge\n");
    for (size_t i = 0; i < n; i++)
        kiln_buf_printf(out, "kiln_ring_member_ownership_ratio{member=\"%s\"} %.6f\n", m[i].id,
                        own[i]);
    kiln_buf_puts(
        out, "# HELP kiln_ring_member_heartbeat_age_seconds Age of a member's last heartbeat.\n"
             "# TYPE kiln_ring_member_heartbeat_age_seconds gauge\n");
    for (size_t i = 0; i < n; i++)
        kiln_buf_printf(out, "kiln_ring_member_heartbeat_age_seconds{member=\"%s\"} %.3f\n",
                        m[i].id, (double)(now - m[i].heartbeat_ms) / 1000.0);
    kiln_buf_puts(out, "# HELP kiln_ring_member_suspect 1 while calls to a member timed out and it "
                       "has not answered since (not waited on).\n"
                       "# TYPE kiln_ring_member_suspect gauge\n");
    for (size_t i = 0; i < n; i++)
        kiln_buf_printf(out, "kiln_ring_member_suspect{member=\"%s\"} %d\n", m[i].id,
                        kiln_grpc_client_peer(c->grpc, m[i].addr) != KILN_GRPC_PEER_OK);
    kiln_buf_printf(out,
                    "# HELP kiln_cluster_nats_connected 1 while connected to NATS.\n"
                    "# TYPE kiln_cluster_nats_connected gauge\nkiln_cluster_nats_connected %d\n",
                    kiln_membership_connected(c->members) ? 1 : 0);
    free(own);
    kiln_ring_release(s);
}
