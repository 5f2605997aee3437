/* SPDX-License-Identifier: Apache-2.0
 * grpc_server: completion-queue workers with per-call state machines:
 * REQUESTED (waiting for a call) -> RECEIVING (reading its message) ->
 * SENDING (reply batch in flight) -> freed. Besides that batch, every call
 * has its RECV_CLOSE_ON_SERVER op posted from the start (tagged with the
 * slot's address + 1), so a client's cancellation reaches a query while it
 * runs; the slot is freed when both have completed (refs). */
#include "grpc_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/support/alloc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "grpc_tsan.h"
#include "gzip.h"
#include "log.h"
#include "xmalloc.h"

#define SLOTS_PER_WORKER 16
/* Request arenas kept for the next calls (take_arena). */
#define ARENAS_KEPT 8

typedef enum { REQUESTED, RECEIVING, SENDING } call_state;

struct kiln_grpc_server;

typedef struct worker {
    struct kiln_grpc_server *srv;
    grpc_completion_queue *cq;
    pthread_t thread;
} worker;

typedef struct call_slot {
    call_state state;
    worker *w;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *recv;
    grpc_byte_buffer *send;
    grpc_slice status_details;
    int cancelled;
    int64_t t0_ns;        /* monotonic: when the call arrived */
    atomic_int refs;      /* the main op chain and the close op */
    kiln_cancel_t cancel; /* queries */
} call_slot;

struct kiln_grpc_server {
    kiln_grpc_config cfg;
    const kiln_rpc_registry_t *rpc;
    kiln_metrics_t *metrics;
    grpc_server *server;
    worker *workers;
    int n_workers;
    int port;
    int port2; /* 0 = no second listener */
    int shutdown_tag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int shut_down;
    kiln_query_pool_t *handlers; /* runs the calls no query pool takes (dispatch) */
    /* Request arenas kept for the next calls: an OTLP export takes about
     * 2 MB of arena, and freed at each reply glibc gave the pages back to
     * the kernel (a handler thread's malloc arena is trimmed) and the next
     * call faulted them in again, a few percent of the CPU. */
    kiln_arena_pool_t *arenas;
};

kiln_grpc_server_t *kiln_grpc_server_create(const kiln_grpc_config *cfg,
                                            const kiln_rpc_registry_t *rpc, kiln_metrics_t *metrics)
{
    kiln_grpc_server_t *s = kiln_xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->rpc = rpc;
    s->metrics = metrics;
    s->n_workers = cfg->threads > 0 ? cfg->threads : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->arenas = kiln_arena_pool_create(ARENAS_KEPT);
    return s;
}

static void post_slot(worker *w)
{
    call_slot *c = kiln_xcalloc(1, sizeof(*c));
    c->w = w;
    c->state = REQUESTED;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    KILN_GRPC_HANDOFF_RELEASE(c);
    grpc_call_error e =
        grpc_server_request_call(w->srv->server, &c->call, &c->details, &c->md, w->cq, w->cq, c);
    if (e != GRPC_CALL_OK) {
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->md);
        free(c);
    }
}

static void free_slot(call_slot *c)
{
    if (c->call != NULL)
        grpc_call_unref(c->call);
    if (c->recv != NULL)
        grpc_byte_buffer_destroy(c->recv);
    if (c->send != NULL)
        grpc_byte_buffer_destroy(c->send);
    grpc_slice_unref(c->status_details);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    free(c);
}

/* Drops one of the slot's two references (main chain, close op). */
static void unref_slot(call_slot *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        free_slot(c);
}

/* The main chain ended early: cancel the call (which completes the close
 * op) and drop the chain's reference. */
static void abort_slot(call_slot *c)
{
    grpc_call_cancel(c->call, NULL);
    unref_slot(c);
}

static int64_t query_deadline(const call_slot *c);

#define CLOSE_TAG(c) ((void *)((uintptr_t)(c) + 1)) /* slots are malloc-aligned */

/* Starts ops on the slot's call with tag. The slot is released to the
 * thread that takes the event (grpc_tsan.h) only after the last read of it
 * here: that thread may free it as soon as the batch is started. */
static grpc_call_error start_batch(call_slot *c, const grpc_op *ops, size_t n, void *tag)
{
    grpc_call *call = c->call;
    KILN_GRPC_HANDOFF_RELEASE(c);
    return grpc_call_start_batch(call, ops, n, tag, NULL);
}

static void start_recv(call_slot *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    kiln_cancel_init(&c->cancel, query_deadline(c)); /* before on_close may set it */
    atomic_init(&c->refs, 2);
    if (start_batch(c, &op, 1, CLOSE_TAG(c)) != GRPC_CALL_OK)
        atomic_store(&c->refs, 1);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv;
    c->state = RECEIVING;
    if (start_batch(c, &op, 1, c) != GRPC_CALL_OK)
        abort_slot(c);
}

/* The close op completed: the call ended, or the client cancelled it (or
 * its deadline passed) while a query may still run. */
static void on_close(call_slot *c)
{
    if (c->cancelled) {
        gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
        gpr_timespec dl = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC);
        kiln_cancel_set(&c->cancel,
                        gpr_time_cmp(now, dl) >= 0 ? KILN_DEADLINE_EXCEEDED : KILN_CANCELLED);
    }
    unref_slot(c);
}

static const char *metadata_value(const call_slot *c, const char *key, size_t *len)
{
    for (size_t i = 0; i < c->md.count; i++) {
        if (grpc_slice_str_cmp(c->md.metadata[i].key, key) == 0) {
            *len = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
            return (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
        }
    }
    *len = 0;
    return NULL;
}

/* The pool a method runs on, or NULL for the request workers. */
static kiln_query_pool_t *pool_of(const kiln_grpc_server_t *s, const char *path)
{
    if (kiln_rpc_is_query(path))
        return s->cfg.query_pool;
    return kiln_rpc_multi_tenant(path) ? s->cfg.read_pool : NULL;
}

/* The request message's bytes in the arena, inflated here when the client
 * compressed it (grpc-encoding gzip): gRPC's own decompression is off so
 * that the output is capped and reserved from the in-flight budget. */
static kiln_status request_message(call_slot *c, kiln_arena_t *arena, const uint8_t **body,
                                   size_t *len, kiln_err *err)
{
    grpc_compression_algorithm alg = c->recv->data.raw.compression;
    if (alg != GRPC_COMPRESS_NONE && alg != GRPC_COMPRESS_GZIP)
        return kiln_err_set(err, KILN_UNIMPLEMENTED,
                            "grpc-encoding other than gzip is not supported");
    const grpc_slice_buffer *sb = &c->recv->data.raw.slice_buffer;
    uint8_t *raw = kiln_arena_alloc(arena, sb->length + 1);
    size_t n = 0;
    for (size_t i = 0; i < sb->count; i++) {
        memcpy(raw + n, GRPC_SLICE_START_PTR(sb->slices[i]), GRPC_SLICE_LENGTH(sb->slices[i]));
        n += GRPC_SLICE_LENGTH(sb->slices[i]);
    }
    *body = raw, *len = n;
    if (alg == GRPC_COMPRESS_NONE)
        return KILN_OK;
    const kiln_grpc_config *cfg = &c->w->srv->cfg;
    uint8_t *out;
    kiln_status st =
        kiln_gunzip_budget(arena, raw, n, cfg->max_recv, cfg->inflight, &out, len, err);
    if (st == KILN_OK)
        *body = out;
    if (st == KILN_OUT_OF_RANGE) /* too large: never worth a retry */
        st = err->code = KILN_INVALID_ARGUMENT;
    return st;
}

/* Authenticates a call (kiln_auth) from its "authorization" metadata; on
 * KILN_OK, *org is the tenant the call goes on with (copied into tenant
 * when the credentials implied it). */
static kiln_status authorize(call_slot *c, const char *path, const char **org, size_t *olen,
                             char *tenant, size_t cap, kiln_err *err)
{
    kiln_auth_t *a = c->w->srv->cfg.auth;
    kiln_auth_scope scope = kiln_auth_path_scope(path);
    if (a == NULL || scope == KILN_AUTH_PUBLIC)
        return KILN_OK;
    size_t alen;
    const char *authz = metadata_value(c, "authorization", &alen);
    char *peer = grpc_call_get_peer(c->call);
    kiln_status st = kiln_auth_check(a, authz, alen, *org, *olen, scope, peer, tenant, cap, err);
    gpr_free(peer);
    if (st == KILN_OK && (*org == NULL || *olen == 0))
        *org = tenant, *olen = strlen(tenant);
    return st;
}

/* Runs the method; fills out on success. */
static kiln_status run_call(call_slot *c, kiln_arena_t *arena, kiln_buf *out, kiln_err *err,
                            const char **method_name)
{
    const char *path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    size_t plen = GRPC_SLICE_LENGTH(c->details.method);
    const kiln_rpc_method *m = kiln_rpc_find(c->w->srv->rpc, c->w->srv->cfg.plane, path, plen);
    if (m == NULL)
        return kiln_err_set(err, KILN_UNIMPLEMENTED, "unknown method %.*s", (int)plen, path);
    *method_name = m->path;
    if (m->req == NULL) { /* not served on this plane: answered unread (rpc.h) */
        kiln_rpc_ctx none = {"", arena, err, false, NULL};
        return kiln_rpc_invoke(m, &none, NULL, 0, KILN_CODEC_PROTO, out);
    }
    if (c->recv == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no request message");
    char tenant[KILN_TENANT_MAX * 8 + 8];
    size_t tlen;
    const char *org = metadata_value(c, "x-scope-orgid", &tlen);
    bool multi = kiln_rpc_multi_tenant(m->path);
    char bound[KILN_TENANT_MAX * 8 + 8];
    kiln_status st = authorize(c, m->path, &org, &tlen, bound, sizeof(bound), err);
    if (st == KILN_OK)
        st = kiln_tenant_parse(org, tlen, multi, tenant, sizeof(tenant), err);
    if (st != KILN_OK)
        return st;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    st = request_message(c, arena, &body, &body_len, err);
    if (st != KILN_OK)
        return st;
    size_t alen;
    const char *accept = metadata_value(c, "accept", &alen);
    bool query = kiln_rpc_multi_tenant(m->path); /* client queries and ingester reads */
    kiln_rpc_ctx ctx = {tenant, arena, err, kiln_rpc_accepts_utf8_names(accept, alen),
                        query ? &c->cancel : NULL};
    if (query)
        kiln_cancel_bind(&c->cancel);
    st = kiln_rpc_invoke(m, &ctx, body, body_len, KILN_CODEC_PROTO, out);
    kiln_cancel_bind(NULL);
    kiln_query_pool_t *pool = pool_of(c->w->srv, m->path);
    if (query && pool != NULL)
        kiln_query_pool_ended(pool, st);
    return st;
}

/* Seconds since the monotonic instant t0_ns. */
static double since(int64_t t0_ns)
{
    return (double)(kiln_mono_ns() - t0_ns) / 1e9;
}

/* Sends the answer: out's bytes on KILN_OK, else st with err's message. */
static void finish(call_slot *c, kiln_status st, const kiln_buf *out, const kiln_err *err,
                   const char *method)
{
    if (st != KILN_OK) {
        KILN_LOG_WARN_SAMPLED(method, kiln_status_str(st), "grpc", "%s failed code=%s: %s", method,
                              kiln_status_str(st), err->msg);
        c->status_details = grpc_slice_from_copied_string(err->msg);
    } else {
        grpc_slice body = grpc_slice_from_copied_buffer(out->ptr ? out->ptr : "", out->len);
        c->send = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
    }
    kiln_metrics_request(c->w->srv->metrics, "grpc", method, kiln_status_str(st), since(c->t0_ns));

    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->send != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->send;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)st;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    c->state = SENDING;
    if (start_batch(c, ops, n, c) != GRPC_CALL_OK)
        abort_slot(c);
}

static void reply(call_slot *c)
{
    kiln_arena_t *arena = kiln_arena_pool_take(c->w->srv->arenas);
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_err err = {KILN_OK, ""};
    const char *method = "unknown";
    kiln_status st = run_call(c, arena, &out, &err, &method);
    kiln_grpc_server_t *srv = c->w->srv; /* c may be freed once the reply is started */
    finish(c, st, &out, &err, method);
    kiln_buf_free(&out);
    kiln_arena_pool_give(srv->arenas, arena);
}

static void on_job(void *arg)
{
    reply(arg);
}

/* The query's deadline: the call's, or the server's timeout when shorter. */
static int64_t query_deadline(const call_slot *c)
{
    int64_t now = kiln_cancel_now(), dl = 0;
    const kiln_grpc_config *cfg = &c->w->srv->cfg;
    if (cfg->query_timeout_ns > 0)
        dl = now + cfg->query_timeout_ns;
    gpr_timespec left =
        gpr_time_sub(gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC),
                     gpr_now(GPR_CLOCK_MONOTONIC));
    if (gpr_time_cmp(left, gpr_inf_future(GPR_TIMESPAN)) != 0 && left.tv_sec < 10LL * 365 * 86400) {
        int64_t ns = left.tv_sec < 0 ? 0 : left.tv_sec * 1000000000LL + left.tv_nsec;
        if (dl == 0 || now + ns < dl)
            dl = now + ns;
    }
    return dl;
}

/* Runs a call on the handler pool. gRPC hands every call of a connection
 * to the one completion queue the connection is bound to, so one worker
 * takes all of a client's calls (an OTel exporter has one connection):
 * run there they would run one at a time, each push waiting alone for its
 * own WAL fsync. On the pool they run side by side and share the group
 * commit, as the HTTP server's request workers do. When the pool's queue
 * is full the worker runs the call itself, so the completion queue holds
 * the calls beyond it, as without the pool, instead of the pool growing. */
static void run_on_handlers(call_slot *c)
{
    kiln_err err = {KILN_OK, ""};
    if (kiln_query_pool_submit(c->w->srv->handlers, NULL, on_job, c, &err) != KILN_OK)
        reply(c);
}

/* A query call goes to the query pool (a read to the read pool); a refusal
 * is answered at once. Every other call with a message to handle runs on
 * the handler pool; the rest (unknown methods, no message) are answered on
 * this worker. */
static void dispatch(call_slot *c)
{
    const char *path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    size_t plen = GRPC_SLICE_LENGTH(c->details.method);
    const kiln_rpc_method *m = kiln_rpc_find(c->w->srv->rpc, c->w->srv->cfg.plane, path, plen);
    if (m == NULL || m->req == NULL || c->recv == NULL) {
        reply(c);
        return;
    }
    kiln_query_pool_t *pool = pool_of(c->w->srv, m->path);
    if (pool == NULL) {
        run_on_handlers(c);
        return;
    }
    size_t tlen;
    const char *org = metadata_value(c, "x-scope-orgid", &tlen);
    char tenant[KILN_TENANT_MAX * 8 + 8], bound[KILN_TENANT_MAX * 8 + 8];
    kiln_err err = {KILN_OK, ""};
    /* Authenticated before it queues, so a refused caller takes no
     * tenant's query slot (run_call checks again, cheaply). */
    kiln_status st = authorize(c, m->path, &org, &tlen, bound, sizeof(bound), &err);
    snprintf(tenant, sizeof(tenant), "%.*s", (int)tlen, org ? org : "");
    if (st == KILN_OK)
        st = kiln_query_pool_submit(pool, tenant, on_job, c, &err);
    kiln_buf none;
    kiln_buf_init(&none, 0);
    if (st != KILN_OK)
        finish(c, st, &none, &err, m->path);
}

static void on_event(worker *w, call_slot *c, int success)
{
    switch (c->state) {
    case REQUESTED:
        if (!success) {   /* server shutting down: do not re-post */
            free_slot(c); /* no op of the call was started: not counted */
            return;
        }
        c->t0_ns = kiln_mono_ns();
        post_slot(w);
        start_recv(c);
        return;
    case RECEIVING:
        if (!success) {
            abort_slot(c);
            return;
        }
        dispatch(c);
        return;
    case SENDING:
        unref_slot(c);
        return;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    kiln_grpc_server_t *s = w->srv;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &s->shutdown_tag) {
            pthread_mutex_lock(&s->mu);
            s->shut_down = 1;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        call_slot *c = (call_slot *)((uintptr_t)ev.tag & ~(uintptr_t)1);
        KILN_GRPC_HANDOFF_ACQUIRE(c);
        if ((uintptr_t)ev.tag & 1)
            on_close(c);
        else
            on_event(w, c, ev.success);
    }
    return NULL;
}

static int add_port(kiln_grpc_server_t *s, const char *address, int port, kiln_err *err)
{
    char addr[300];
    snprintf(addr, sizeof(addr), "%s:%d", address && *address ? address : "0.0.0.0", port);
    grpc_server_credentials *creds = s->cfg.tls != NULL
                                         ? kiln_grpc_tls_server_credentials(s->cfg.tls)
                                         : grpc_insecure_server_credentials_create();
    int bound = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (bound == 0)
        kiln_err_set(err, KILN_UNAVAILABLE, "cannot listen on %s (gRPC%s)", addr,
                     s->cfg.tls != NULL ? " over TLS" : "");
    return bound;
}

kiln_status kiln_grpc_server_start(kiln_grpc_server_t *s, kiln_err *err)
{
    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = s->cfg.max_recv > 0x7fffffff ? -1 : (int)s->cfg.max_recv;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    /* Inflated in request_message instead, capped and under the budget. */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION;
    args[2].value.integer = 0;
    grpc_channel_args ch = {3, args};
    grpc_init();
    s->server = grpc_server_create(&ch, NULL);
    s->workers = kiln_xcalloc((size_t)s->n_workers, sizeof(worker));
    for (int i = 0; i < s->n_workers; i++) {
        s->workers[i].srv = s;
        s->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->workers[i].cq, NULL);
    }
    s->port = add_port(s, s->cfg.address, s->cfg.port, err);
    if (s->port != 0 && s->cfg.address2 != NULL)
        s->port2 = add_port(s, s->cfg.address2, s->cfg.port2, err);
    if (s->port == 0 || (s->cfg.address2 != NULL && s->port2 == 0)) {
        /* Started with no worker: only a started server's shutdown
         * completes, so destroy can release it (drain). */
        grpc_server_start(s->server);
        return KILN_UNAVAILABLE;
    }
    grpc_server_start(s->server);
    /* As many handlers as workers: each push waiting for its fsync holds
     * one, and one commit gathers only the pushes waiting in it. */
    kiln_query_pool_config hc = {s->n_workers, (size_t)s->n_workers, NULL};
    s->handlers = kiln_query_pool_create(&hc);
    for (int i = 0; i < s->n_workers; i++) {
        for (int k = 0; k < SLOTS_PER_WORKER; k++)
            post_slot(&s->workers[i]);
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    }
    return KILN_OK;
}

int kiln_grpc_server_port(const kiln_grpc_server_t *s)
{
    return s->port;
}

int kiln_grpc_server_port2(const kiln_grpc_server_t *s)
{
    return s->port2;
}

void kiln_grpc_server_add_fd(kiln_grpc_server_t *s, int fd)
{
    if (s->server == NULL || s->workers == NULL || s->workers[0].thread == 0) {
        close(fd);
        return;
    }
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    grpc_server_add_channel_from_fd(s->server, fd, creds);
    grpc_server_credentials_release(creds);
}

static void on_grpc_log(gpr_log_func_args *args)
{
    KILN_LOG_DEBUG("grpc-core", "%s:%d %s", args->file, args->line, args->message);
}

static void drop_grpc_log(gpr_log_func_args *args)
{
    (void)args;
}

void kiln_grpc_log_setup(bool debug)
{
    /* grpc_init resets the verbosity from GRPC_VERBOSITY; the function stays. */
    gpr_set_log_function(debug ? on_grpc_log : drop_grpc_log);
    gpr_set_log_verbosity(debug ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
}

/* Waits until the shutdown tag fired or the deadline passed; true if it fired. */
static int wait_shutdown(kiln_grpc_server_t *s, int seconds)
{
    struct timespec dl = kiln_deadline_in((int64_t)seconds * 1000000000LL);
    pthread_mutex_lock(&s->mu);
    while (!s->shut_down && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
        ;
    int done = s->shut_down;
    pthread_mutex_unlock(&s->mu);
    return done;
}

/* Takes the events no worker will (a start that failed to bind): the
 * shutdown tag holds the server until it is taken. */
static void drain(grpc_completion_queue *cq)
{
    gpr_timespec dl =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN));
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, dl, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN || ev.type == GRPC_QUEUE_TIMEOUT)
            return;
    }
}

void kiln_grpc_server_destroy(kiln_grpc_server_t *s)
{
    if (s == NULL)
        return;
    if (s->server != NULL) {
        int started = s->workers[0].thread != 0;
        grpc_server_shutdown_and_notify(s->server, s->workers[0].cq, &s->shutdown_tag);
        if (started && !wait_shutdown(s, 5)) {
            grpc_server_cancel_all_calls(s->server);
            wait_shutdown(s, 5);
        }
        /* Calls on the handlers answer through the completion queues:
         * they end before the queues do. */
        kiln_query_pool_destroy(s->handlers);
        for (int i = 0; i < s->n_workers; i++)
            grpc_completion_queue_shutdown(s->workers[i].cq);
        for (int i = 0; i < s->n_workers; i++) {
            if (started)
                pthread_join(s->workers[i].thread, NULL);
            else
                drain(s->workers[i].cq);
            grpc_completion_queue_destroy(s->workers[i].cq);
        }
        grpc_server_destroy(s->server);
        grpc_shutdown();
    }
    free(s->workers);
    kiln_arena_pool_destroy(s->arenas);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
