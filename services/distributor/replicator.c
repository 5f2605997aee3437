/* SPDX-License-Identifier: Apache-2.0
 * replicator: series -> ring replicas -> one Push per ingester, quorum per
 * series. */
#include "replicator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ingester/v1/ingester.pb-c.h"
#include "xmalloc.h"

#define M_PUSH "/ingester.v1.IngesterService/Push"
#define MAX_RF 16

struct kiln_replicator {
    kiln_replicator_config cfg;
};

kiln_replicator_t *kiln_replicator_create(const kiln_replicator_config *cfg)
{
    kiln_replicator_t *r = kiln_xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    if (r->cfg.rf < 1)
        r->cfg.rf = 1;
    if (r->cfg.rf > MAX_RF)
        r->cfg.rf = MAX_RF;
    return r;
}

void kiln_replicator_destroy(kiln_replicator_t *r)
{
    free(r);
}

/* The wire form of one part: its labels, pprof bytes and push id. */
static Ingester__V1__ProfileSeries *wire_part(const kiln_ingester_part *p, kiln_arena_t *a)
{
    Ingester__V1__ProfileSeries *s = kiln_arena_alloc(a, sizeof(*s));
    ingester__v1__profile_series__init(s);
    s->n_labels = p->n_labels;
    s->labels = kiln_arena_alloc(a, (p->n_labels + 1) * sizeof(*s->labels));
    for (size_t j = 0; j < p->n_labels; j++) {
        Types__V1__LabelPair *lp = kiln_arena_alloc(a, sizeof(*lp));
        types__v1__label_pair__init(lp);
        lp->name = (char *)p->labels[j].name;
        lp->value = (char *)p->labels[j].value;
        s->labels[j] = lp;
    }
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_pprof_encode(p->profile, true, &b);
    s->profile.data = kiln_arena_alloc(a, b.len + 1);
    memcpy(s->profile.data, b.ptr ? b.ptr : "", b.len);
    s->profile.len = b.len;
    kiln_buf_free(&b);
    s->key = p->id;
    return s;
}

/* What one ingester is sent: the series it replicates. */
typedef struct target {
    Ingester__V1__PushRequest req;
    size_t cap;
    uint8_t *body;
} target;

static void target_add(target *t, Ingester__V1__ProfileSeries *s, kiln_arena_t *a)
{
    if (t->req.n_series == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        t->req.series = kiln_arena_grow(a, t->req.series, t->cap * sizeof(*t->req.series),
                                        ncap * sizeof(*t->req.series));
        t->cap = ncap;
    }
    t->req.series[t->req.n_series++] = s;
}

/* The outcome: OK when every part has a quorum, else the most telling
 * failure with the ingesters' messages. */
static kiln_status quorum_outcome(const kiln_replicator_t *r, const kiln_ring_member *m,
                                  const kiln_grpc_call *calls, size_t nm, const size_t *part_ok,
                                  size_t n, kiln_err *err)
{
    size_t quorum = r->cfg.rf / 2 + 1, short_parts = 0;
    for (size_t i = 0; i < n; i++)
        short_parts += part_ok[i] < quorum;
    if (short_parts == 0)
        return KILN_OK;
    kiln_status code = KILN_UNAVAILABLE;
    char msg[KILN_ERR_MSG_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < nm && len < sizeof(msg); i++) {
        if (calls[i].addr == NULL || calls[i].err.code == KILN_OK)
            continue;
        if (calls[i].err.code == KILN_RESOURCE_EXHAUSTED)
            code = KILN_RESOURCE_EXHAUSTED;
        else if (code == KILN_UNAVAILABLE && kiln_ingester_is_series_limit(&calls[i].err))
            code = KILN_FAILED_PRECONDITION; /* a client error: retrying cannot help */
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s: %s", m[i].id,
                                calls[i].err.msg);
    }
    return kiln_err_set(err, code, "%zu series did not reach a quorum of %zu of %zu replicas%s",
                        short_parts, quorum, r->cfg.rf, msg);
}

kiln_status kiln_replicator_append(kiln_replicator_t *r, const char *tenant,
                                   const kiln_ingester_part *parts, size_t n, kiln_err *err)
{
    if (n == 0)
        return KILN_OK;
    kiln_ring_snapshot_t *snap = kiln_ring_acquire(r->cfg.ring);
    const kiln_ring_member *m;
    size_t nm = kiln_ring_members(snap, &m);
    kiln_arena_t *a = kiln_arena_create(0);
    target *t = kiln_arena_calloc(a, nm + 1, sizeof(*t));
    size_t *replica = kiln_arena_calloc(a, n * r->cfg.rf + 1, sizeof(size_t));
    size_t *n_replicas = kiln_arena_calloc(a, n + 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        uint32_t key = kiln_ring_key(tenant, parts[i].labels, parts[i].n_labels);
        n_replicas[i] = kiln_ring_replicas(snap, key, r->cfg.rf, replica + i * r->cfg.rf);
        Ingester__V1__ProfileSeries *s = n_replicas[i] ? wire_part(&parts[i], a) : NULL;
        for (size_t j = 0; j < n_replicas[i]; j++)
            target_add(&t[replica[i * r->cfg.rf + j]], s, a);
    }
    kiln_grpc_call *calls = kiln_arena_calloc(a, nm + 1, sizeof(*calls));
    for (size_t i = 0; i < nm; i++) {
        if (t[i].req.n_series == 0)
            continue;
        t[i].req.base.descriptor = &ingester__v1__push_request__descriptor;
        size_t len = ingester__v1__push_request__get_packed_size(&t[i].req);
        t[i].body = kiln_arena_alloc(a, len + 1);
        ingester__v1__push_request__pack(&t[i].req, t[i].body);
        calls[i] = (kiln_grpc_call){.addr = m[i].addr, .method = M_PUSH, .tenant = tenant,
                                    .req = t[i].body, .req_len = len};
    }
    /* Calls with no address are not started; run the others together. */
    kiln_grpc_call *live = kiln_arena_calloc(a, nm + 1, sizeof(*live));
    size_t *live_of = kiln_arena_calloc(a, nm + 1, sizeof(size_t)), nl = 0;
    for (size_t i = 0; i < nm; i++) {
        if (calls[i].addr != NULL) {
            live_of[nl] = i;
            live[nl++] = calls[i];
        }
    }
    kiln_grpc_client_run(r->cfg.grpc, live, nl, r->cfg.timeout_ms);
    for (size_t k = 0; k < nl; k++) {
        calls[live_of[k]] = live[k];
        free(live[k].resp);
    }
    size_t *part_ok = kiln_arena_calloc(a, n + 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n_replicas[i]; j++)
            part_ok[i] += calls[replica[i * r->cfg.rf + j]].err.code == KILN_OK;
    }
    kiln_status st = nm == 0 ? kiln_err_set(err, KILN_UNAVAILABLE, "no ingester in the ring")
                             : quorum_outcome(r, m, calls, nm, part_ok, n, err);
    kiln_arena_destroy(a);
    kiln_ring_release(snap);
    return st;
}
