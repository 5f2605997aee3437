/* SPDX-License-Identifier: Apache-2.0
 * remote_write: the remote store's append (remote.h): series -> ring
 * replicas -> one Push per ingester, quorum per series. */
#include "remote_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ingester.h"
#include "ingester/v1/ingester.pb-c.h"
#include "record.h"
#include "xmalloc.h"

#define M_PUSH "/ingester.v1.IngesterService/Push"

/* What one ingester is sent: the parts it replicates, as one push record
 * (PushRequest.record): the distributor's normalised parts in the WAL
 * record format, so the ingester neither decodes pprof nor normalises
 * again. */
typedef struct target {
    Ingester__V1__PushRequest req;
    const kiln_head_part **parts;
    size_t n, cap;
    uint8_t *body; /* the packed request (arena) */
    size_t len;
} target;

static void target_add(target *t, const kiln_head_part *p, kiln_arena_t *a)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        t->parts =
            kiln_arena_grow(a, t->parts, t->cap * sizeof(*t->parts), ncap * sizeof(*t->parts));
        t->cap = ncap;
    }
    t->parts[t->n++] = p;
}

/* Packs the target's PushRequest: one record of its parts. Targets sent
 * every part of the push (each ingester, when the ring has no more than
 * rf of them) share the first one's request (*whole), encoded once. */
static void target_pack(target *t, const char *tenant, size_t n, const target **whole,
                        kiln_arena_t *a)
{
    if (t->n == n && *whole != NULL) {
        t->body = (*whole)->body;
        t->len = (*whole)->len;
        return;
    }
    kiln_head_part *parts = kiln_arena_alloc(a, (t->n + 1) * sizeof(*parts));
    for (size_t i = 0; i < t->n; i++)
        parts[i] = *t->parts[i];
    kiln_buf rec;
    kiln_buf_init(&rec, 0);
    kiln_record_encode(tenant, parts, t->n, &rec);
    ingester__v1__push_request__init(&t->req);
    t->req.record.data = (uint8_t *)rec.ptr;
    t->req.record.len = rec.len;
    t->len = ingester__v1__push_request__get_packed_size(&t->req);
    t->body = kiln_arena_alloc(a, t->len + 1);
    ingester__v1__push_request__pack(&t->req, t->body);
    kiln_buf_free(&rec);
    t->req.record.data = NULL;
    if (t->n == n)
        *whole = t;
}

/* The outcome: OK when every part has a quorum, else the most telling
 * failure with the ingesters' messages. */
static kiln_status quorum_outcome(const kiln_remote_t *r, const kiln_ring_member *m,
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
    if (nm < r->cfg.rf)
        len += (size_t)snprintf(msg, sizeof(msg), "; the ring has %zu ingesters", nm);
    /* Calls not waited for (the push was lost without them) say nothing. */
    for (size_t i = 0; i < nm && len < sizeof(msg); i++) {
        if (calls[i].addr == NULL || calls[i].err.code == KILN_OK ||
            calls[i].err.code == KILN_CANCELLED)
            continue;
        if (calls[i].err.code == KILN_RESOURCE_EXHAUSTED)
            code = KILN_RESOURCE_EXHAUSTED;
        else if (code == KILN_UNAVAILABLE && kiln_ingester_is_series_limit(&calls[i].err))
            code = KILN_FAILED_PRECONDITION; /* a client error: retrying cannot help */
        len +=
            (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s: %s", m[i].id, calls[i].err.msg);
    }
    return kiln_err_set(err, code, "%zu series did not reach a quorum of %zu of %zu replicas%s",
                        short_parts, quorum, r->cfg.rf, msg);
}

/* Where one push stands: each part's replicas (member indices), the acks
 * it has and the calls to its replicas still running. */
typedef struct tally {
    size_t rf, quorum, n;
    const size_t *replica, *n_replicas;
    size_t *ok;
} tally;

/* Whether every part has its quorum (1), or some part cannot get it any
 * more from the calls still running (-1), or neither yet (0). */
static int tally_state(const tally *t, const bool *running)
{
    int state = 1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->ok[i] >= t->quorum)
            continue;
        size_t could = t->ok[i];
        for (size_t j = 0; j < t->n_replicas[i]; j++)
            could += running[t->replica[i * t->rf + j]];
        if (could < t->quorum)
            return -1;
        state = 0;
    }
    return state;
}

/* Which members get their call: all but saturated suspects (a suspect
 * timed out and has not answered since; saturated, it has so many calls
 * running that another would only hold memory). A suspect is called all
 * the same, as a probe and a fallback should a healthy replica fail: the
 * push returns at its quorum, so it is not waited on while the others
 * answer. A part with too few healthy replicas for its quorum has all of
 * its replicas called. */
static void plan_calls(const kiln_remote_t *r, const kiln_ring_member *m,
                       const kiln_grpc_call *calls, size_t nm, const tally *t, bool *skip)
{
    bool *healthy = kiln_xcalloc(nm + 1, sizeof(bool));
    for (size_t i = 0; i < nm; i++) {
        kiln_grpc_peer h =
            calls[i].addr ? kiln_grpc_client_peer(r->cfg.grpc, m[i].addr) : KILN_GRPC_PEER_OK;
        healthy[i] = h == KILN_GRPC_PEER_OK;
        skip[i] = h == KILN_GRPC_PEER_SATURATED;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t good = 0;
        for (size_t j = 0; j < t->n_replicas[i]; j++)
            good += healthy[t->replica[i * t->rf + j]];
        for (size_t j = 0; good < t->quorum && j < t->n_replicas[i]; j++)
            skip[t->replica[i * t->rf + j]] = false;
    }
    free(healthy);
}

/* Runs the calls until every part has its quorum (or cannot get it), and
 * leaves the others to end in the background: a replica that is slow or
 * frozen holds neither the push nor its memory (the gRPC client copied
 * the requests). calls[i] not sent or not waited for end with an error. */
static void run_calls(const kiln_remote_t *r, const kiln_ring_member *m, kiln_grpc_call *calls,
                      size_t nm, tally *t)
{
    bool *skip = kiln_xcalloc(nm + 1, sizeof(bool));
    bool *running = kiln_xcalloc(nm + 1, sizeof(bool));
    size_t *live_of = kiln_xcalloc(nm + 1, sizeof(size_t)), nl = 0;
    kiln_grpc_call *live = kiln_xcalloc(nm + 1, sizeof(*live));
    plan_calls(r, m, calls, nm, t, skip);
    for (size_t i = 0; i < nm; i++) {
        if (calls[i].addr == NULL)
            continue;
        if (skip[i]) {
            kiln_err_set(&calls[i].err, KILN_UNAVAILABLE,
                         "%s: timed out before and not answered since", m[i].addr);
            continue;
        }
        running[i] = true;
        live_of[nl] = i;
        live[nl++] = calls[i];
    }
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(r->cfg.grpc, live, nl, r->cfg.timeout_ms);
    while (tally_state(t, running) == 0) {
        size_t k = kiln_grpc_batch_next(b);
        if (k == KILN_GRPC_BATCH_DONE)
            break;
        size_t mi = live_of[k];
        running[mi] = false;
        calls[mi].err = live[k].err;
        free(live[k].resp);
        for (size_t i = 0; i < t->n; i++) {
            for (size_t j = 0; j < t->n_replicas[i]; j++)
                t->ok[i] += t->replica[i * t->rf + j] == mi && live[k].err.code == KILN_OK;
        }
    }
    kiln_grpc_batch_end(b);
    for (size_t k = 0; k < nl; k++) {
        if (running[live_of[k]])
            calls[live_of[k]].err = live[k].err; /* "not waited for" */
    }
    free(live);
    free(live_of);
    free(running);
    free(skip);
}

kiln_status kiln_remote__append(void *self, const char *tenant, const kiln_head_part *parts,
                                size_t n, kiln_err *err)
{
    kiln_remote_t *r = self;
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
        for (size_t j = 0; j < n_replicas[i]; j++)
            target_add(&t[replica[i * r->cfg.rf + j]], &parts[i], a);
    }
    kiln_grpc_call *calls = kiln_arena_calloc(a, nm + 1, sizeof(*calls));
    const target *whole = NULL;
    for (size_t i = 0; i < nm; i++) {
        if (t[i].n == 0)
            continue;
        target_pack(&t[i], tenant, n, &whole, a);
        calls[i] = (kiln_grpc_call){.addr = m[i].addr,
                                    .method = M_PUSH,
                                    .tenant = tenant,
                                    .req = t[i].body,
                                    .req_len = t[i].len};
    }
    size_t *part_ok = kiln_arena_calloc(a, n + 1, sizeof(size_t));
    tally ty = {r->cfg.rf, r->cfg.rf / 2 + 1, n, replica, n_replicas, part_ok};
    run_calls(r, m, calls, nm, &ty);
    kiln_status st = nm == 0 ? kiln_err_set(err, KILN_UNAVAILABLE, "no ingester in the ring")
                             : quorum_outcome(r, m, calls, nm, part_ok, n, err);
    kiln_arena_destroy(a);
    kiln_ring_release(snap);
    return st;
}
