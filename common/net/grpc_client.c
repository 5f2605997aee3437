/* SPDX-License-Identifier: Apache-2.0
 * grpc_client: a table of peers (channel and health) by address under a
 * mutex, and one completion queue for every call, drained by a poller
 * thread: every call is one six-op batch (send metadata, message and close;
 * receive metadata, message and status), so each call yields exactly one
 * event, which the poller hands to the call's batch (its caller waits on a
 * condition variable) or, once the caller went on, releases. */
#include "grpc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "clock.h"
#include "grpc_tsan.h"
#include "log.h"
#include "xmalloc.h"

#define DEFAULT_MAX_RECV ((size_t)256 << 20)
/* A refused connection fails non-wait-for-ready calls at once; the channel
 * then retries in the background, from INITIAL up to MAX apart, and MAX
 * caps how long a peer that came back stays marked as failing (gRPC's
 * default cap is 120 s). The minimum is gRPC's connect timeout instead (an
 * attempt gets the larger of it and the current backoff): a peer whose
 * kernel accepts connections but that never sends its HTTP/2 SETTINGS (a
 * stopped process) fails calls within it instead of holding them to their
 * deadline. It is not the initial backoff, because a TLS handshake on a
 * loaded machine (or under TSan) can take longer than 100 ms: with that
 * as the timeout the first attempts to a healthy peer failed. */
#define INITIAL_RECONNECT_BACKOFF_MS 100
#define MAX_RECONNECT_BACKOFF_MS 2000
#define MIN_CONNECT_TIMEOUT_MS 2000
/* How long past the deadline to wait for the core before cancelling; the
 * core ends calls at their deadline, so this only guards against a bug. */
#define DRAIN_GRACE_MS 5000
/* How often a query waiting on its calls looks at its token. */
#define QUERY_CHECK_MS 50

/* A gRPC channel of a peer and the calls started on it. Over TLS a peer
 * gets a new one when the files rotate, made before the old one is given
 * up: calls go on the old one until the new one has connected (its first
 * handshake with the new files done), so a rotation fails no call. The old
 * one is destroyed once its last call ended (destroying a channel would
 * fail its calls). */
typedef struct gchan {
    grpc_channel *ch;
    unsigned gen; /* the TLS files' generation it was made with */
    int calls;
    bool retired;
} gchan;

/* A peer: its channel and what its calls said of its health. Heap
 * allocated, so pending calls may point at it while the table grows. */
typedef struct channel {
    char *addr;
    gchan *cur;
    gchan *next;  /* made with newer TLS files, connecting; NULL = none */
    int inflight; /* calls started and not ended */
    bool suspect; /* a call timed out and none was answered since */
} channel;

struct kiln_grpc_client {
    pthread_mutex_t mu;      /* the table and health; taken after a batch's mu */
    pthread_mutex_t list_mu; /* the abandoned list; taken before a batch's mu */
    channel **chans;
    size_t n_chans, cap_chans;
    int max_recv;              /* channel arg: -1 = no limit */
    grpc_completion_queue *cq; /* every call's one event */
    pthread_t poller;
    kiln_grpc_batch_t *abandoned; /* batches left to finish (to cancel on destroy) */
    kiln_grpc_tls_t *tls;         /* borrowed; NULL = plain text */
    char *server_name;            /* TLS name to check; NULL = the dialled host */
};

/* One call of a batch in flight; its address is the completion tag. */
typedef struct pending {
    kiln_grpc_batch_t *batch;
    size_t index;
    channel *chan;
    gchan *g; /* the gRPC channel it runs on */
    grpc_call *gc;
    bool started;  /* its batch was accepted: one event will come */
    bool done;     /* its event came (under the batch's mutex) */
    bool reported; /* returned by kiln_grpc_batch_next */
    bool released;
    bool has_tenant;
    grpc_metadata tenant_md;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *send, *recv;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
} pending;

/* A batch is freed by whoever sees it both abandoned (by its caller) and
 * without outstanding calls: the caller in kiln_grpc_batch_end, or the
 * poller at the last event. */
struct kiln_grpc_batch {
    kiln_grpc_client_t *c;
    kiln_grpc_call *calls; /* the caller's; not touched once abandoned */
    pending *p;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t *ended; /* indices of ended calls not yet returned, a queue */
    size_t head, tail;
    size_t outstanding; /* started calls whose event has not come */
    size_t unreported;  /* calls not yet returned by next */
    bool abandoned;
    struct timespec give_up;        /* CLOCK_MONOTONIC: deadline + DRAIN_GRACE_MS */
    kiln_grpc_batch_t *prev, *next; /* in c->abandoned */
};

static void *poll_loop(void *arg);

kiln_grpc_client_t *kiln_grpc_client_create(size_t max_recv_bytes)
{
    kiln_grpc_client_t *c = kiln_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->list_mu, NULL);
    size_t max = max_recv_bytes ? max_recv_bytes : DEFAULT_MAX_RECV;
    c->max_recv = max > INT_MAX ? -1 : (int)max;
    grpc_init();
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&c->poller, NULL, poll_loop, c) != 0) {
        /* Like running out of memory: nothing works without it. */
        KILN_LOG_ERROR("grpc_client", "cannot start the poller thread");
        abort();
    }
    return c;
}

void kiln_grpc_client_destroy(kiln_grpc_client_t *c)
{
    if (c == NULL)
        return;
    /* Calls left to finish in the background are cancelled: a peer that
     * does not answer must not hold the shutdown until their deadline. */
    pthread_mutex_lock(&c->list_mu);
    for (kiln_grpc_batch_t *b = c->abandoned; b != NULL; b = b->next) {
        pthread_mutex_lock(&b->mu);
        for (size_t i = 0; i < b->n; i++) {
            if (b->p[i].started && !b->p[i].done)
                grpc_call_cancel(b->p[i].gc, NULL);
        }
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_unlock(&c->list_mu);
    /* The shutdown event comes after every call's. */
    grpc_completion_queue_shutdown(c->cq);
    pthread_join(c->poller, NULL);
    grpc_completion_queue_destroy(c->cq);
    for (size_t i = 0; i < c->n_chans; i++) {
        grpc_channel_destroy(c->chans[i]->cur->ch); /* retired ones went with their calls */
        free(c->chans[i]->cur);
        if (c->chans[i]->next != NULL)
            grpc_channel_destroy(c->chans[i]->next->ch);
        free(c->chans[i]->next);
        free(c->chans[i]->addr);
        free(c->chans[i]);
    }
    free(c->chans);
    free(c->server_name);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->list_mu);
    free(c);
    grpc_shutdown();
}

void kiln_grpc_client_set_tls(kiln_grpc_client_t *c, kiln_grpc_tls_t *tls, const char *server_name)
{
    c->tls = tls;
    free(c->server_name);
    c->server_name = server_name != NULL && *server_name != '\0' ? kiln_xstrdup(server_name) : NULL;
}

static gchan *channel_create(const kiln_grpc_client_t *c, const char *addr)
{
    grpc_arg args[5];
    memset(args, 0, sizeof(args));
    const char *keys[] = {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_ARG_ENABLE_RETRIES,
                          GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                          GRPC_ARG_MAX_RECONNECT_BACKOFF_MS};
    /* Retries are off: the callers replicate and fan out themselves. */
    int values[] = {c->max_recv, 0, INITIAL_RECONNECT_BACKOFF_MS, MIN_CONNECT_TIMEOUT_MS,
                    MAX_RECONNECT_BACKOFF_MS};
    for (size_t i = 0; i < 5; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)keys[i];
        args[i].value.integer = values[i];
    }
    grpc_channel_args ch_args = {5, args};
    gchan *g = kiln_xcalloc(1, sizeof(*g));
    if (c->tls != NULL) {
        g->ch = kiln_grpc_tls_channel_create(c->tls, addr, &ch_args, c->server_name, &g->gen);
        return g;
    }
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(addr, creds, &ch_args);
    grpc_channel_credentials_release(creds);
    return g;
}

/* A channel made with the TLS files as they are now, already connecting. */
static gchan *channel_connecting(kiln_grpc_client_t *c, const char *addr)
{
    gchan *g = channel_create(c, addr);
    grpc_channel_check_connectivity_state(g->ch, 1);
    return g;
}

/* When the TLS files rotated since the peer's channel was made, starts a
 * channel with the new ones, and moves the peer's calls to it once it has
 * connected; calls with c->mu held. */
static void renew_locked(kiln_grpc_client_t *c, channel *ch)
{
    if (c->tls == NULL)
        return;
    unsigned gen = kiln_grpc_tls_generation(c->tls);
    if (ch->next != NULL && ch->next->gen != gen) { /* rotated again meanwhile */
        grpc_channel_destroy(ch->next->ch);
        free(ch->next);
        ch->next = NULL;
    }
    if (ch->next == NULL && ch->cur->gen != gen)
        ch->next = channel_connecting(c, ch->addr);
    if (ch->next == NULL)
        return;
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch->next->ch, 1);
    if (st != GRPC_CHANNEL_READY)
        return; /* the old channel serves meanwhile */
    gchan *old = ch->cur;
    ch->cur = ch->next;
    ch->next = NULL;
    if (old->calls > 0) {
        old->retired = true; /* destroyed by its last call's end */
        return;
    }
    grpc_channel_destroy(old->ch);
    free(old);
}

/* The peer at addr, created on first use and kept; call with c->mu held.
 * Creating a channel does not connect, so holding the mutex is cheap. */
static channel *channel_locked(kiln_grpc_client_t *c, const char *addr)
{
    for (size_t i = 0; i < c->n_chans; i++) {
        if (strcmp(c->chans[i]->addr, addr) == 0)
            return c->chans[i];
    }
    channel *ch = kiln_xcalloc(1, sizeof(*ch));
    ch->addr = kiln_xstrdup(addr);
    ch->cur = channel_create(c, addr);
    KILN_GROW(c->chans, c->cap_chans, c->n_chans + 1);
    c->chans[c->n_chans++] = ch;
    return ch;
}

/* The peer at addr and the gRPC channel a call to it starts on (into
 * p), counting one more call to both. */
static void channel_for(kiln_grpc_client_t *c, const char *addr, pending *p)
{
    pthread_mutex_lock(&c->mu);
    channel *ch = channel_locked(c, addr);
    renew_locked(c, ch);
    ch->inflight++;
    ch->cur->calls++;
    p->chan = ch;
    p->g = ch->cur;
    pthread_mutex_unlock(&c->mu);
}

/* Counts a call to p's peer and channel as ended; call with c->mu held.
 * Returns a retired channel whose last call this was (to destroy). */
static gchan *call_ended_locked(const pending *p)
{
    p->chan->inflight--;
    gchan *g = p->g;
    return --g->calls == 0 && g->retired ? g : NULL;
}

static void gchan_free(gchan *g)
{
    if (g == NULL)
        return;
    grpc_channel_destroy(g->ch);
    free(g);
}

kiln_grpc_peer kiln_grpc_client_peer(kiln_grpc_client_t *c, const char *addr)
{
    pthread_mutex_lock(&c->mu);
    kiln_grpc_peer h = KILN_GRPC_PEER_OK;
    for (size_t i = 0; i < c->n_chans; i++) {
        const channel *ch = c->chans[i];
        if (ch->suspect && strcmp(ch->addr, addr) == 0)
            h = ch->inflight >= KILN_GRPC_SUSPECT_MAX_CALLS ? KILN_GRPC_PEER_SATURATED
                                                            : KILN_GRPC_PEER_SUSPECT;
    }
    pthread_mutex_unlock(&c->mu);
    return h;
}

/* What an ended call says of its peer (from the poller, at its event). A
 * timeout makes it suspect; an answer of its own clears that. Refused
 * connections and our own cancellations say nothing new. */
static void note_health(kiln_grpc_client_t *c, const pending *p)
{
    grpc_status_code st = p->status;
    pthread_mutex_lock(&c->mu);
    channel *ch = p->chan;
    gchan *gone = call_ended_locked(p);
    bool was = ch->suspect;
    if (st == GRPC_STATUS_DEADLINE_EXCEEDED)
        ch->suspect = true;
    else if (st != GRPC_STATUS_UNAVAILABLE && st != GRPC_STATUS_CANCELLED)
        ch->suspect = false;
    bool now = ch->suspect;
    pthread_mutex_unlock(&c->mu);
    gchan_free(gone);
    /* Transitions only: one line per peer going quiet or coming back. */
    if (now && !was)
        KILN_LOG_WARN("grpc_client", "peer %s timed out: suspect, not waited on until it answers",
                      ch->addr);
    else if (was && !now)
        KILN_LOG_INFO("grpc_client", "peer %s answers again", ch->addr);
}

static kiln_grpc_call *call_of(const pending *p)
{
    return &p->batch->calls[p->index];
}

static void fill_ops(pending *p, grpc_op *ops)
{
    const kiln_grpc_call *call = call_of(p);
    memset(ops, 0, 6 * sizeof(*ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (call->tenant != NULL) {
        /* The tenant is copied: the call may outlive the caller's batch. */
        p->tenant_md.key = grpc_slice_from_static_string("x-scope-orgid");
        p->tenant_md.value = grpc_slice_from_copied_string(call->tenant);
        p->has_tenant = true;
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &p->tenant_md;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = p->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &p->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &p->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &p->trailing_md;
    ops[5].data.recv_status_on_client.status = &p->status;
    ops[5].data.recv_status_on_client.status_details = &p->details;
    ops[5].data.recv_status_on_client.error_string = &p->error_string;
}

/* Frees what the core gave a call; once. */
static void release_pending(pending *p)
{
    if (p->released)
        return;
    p->released = true;
    if (p->gc != NULL)
        grpc_call_unref(p->gc);
    grpc_byte_buffer_destroy(p->send);
    grpc_byte_buffer_destroy(p->recv);
    grpc_slice_unref(p->details);
    if (p->has_tenant)
        grpc_slice_unref(p->tenant_md.value);
    gpr_free((void *)p->error_string);
    grpc_metadata_array_destroy(&p->initial_md);
    grpc_metadata_array_destroy(&p->trailing_md);
}

/* Starts one call, with the batch's mutex held (its event may come at
 * once); false (with the call's err set) when nothing was started, so no
 * event will come for it. */
static bool start_call(kiln_grpc_client_t *c, pending *p, gpr_timespec deadline)
{
    kiln_grpc_call *call = call_of(p);
    grpc_metadata_array_init(&p->initial_md);
    grpc_metadata_array_init(&p->trailing_md);
    p->details = grpc_empty_slice();
    channel_for(c, call->addr, p);
    /* method is a literal: the core may keep the static slice. */
    p->gc =
        grpc_channel_create_call(p->g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                 grpc_slice_from_static_string(call->method), NULL, deadline, NULL);
    if (p->gc != NULL) {
        grpc_slice body = grpc_slice_from_copied_buffer((const char *)call->req, call->req_len);
        p->send = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        grpc_op ops[6];
        fill_ops(p, ops);
        p->started = true;
        grpc_call *gc = p->gc; /* the poller may own p once the batch starts */
        KILN_GRPC_HANDOFF_RELEASE(p);
        grpc_call_error e = grpc_call_start_batch(gc, ops, 6, p, NULL);
        if (e == GRPC_CALL_OK)
            return true;
        p->started = false;
        KILN_LOG_WARN("grpc_client", "start_batch %s%s: grpc_call_error=%d", call->addr,
                      call->method, (int)e);
        kiln_err_set(&call->err, KILN_INTERNAL, "%s: cannot start the call", call->addr);
    } else {
        kiln_err_set(&call->err, KILN_INTERNAL, "%s: cannot create a call", call->addr);
    }
    pthread_mutex_lock(&c->mu);
    gchan *gone = call_ended_locked(p);
    pthread_mutex_unlock(&c->mu);
    gchan_free(gone);
    return false;
}

/* Copies the message out slice by slice (the reader also inflates a
 * message that arrived compressed but was not decompressed by the core). */
static void copy_response(kiln_grpc_call *call, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        kiln_err_set(&call->err, KILN_INTERNAL, "%s: cannot read the response", call->addr);
        return;
    }
    size_t cap = grpc_byte_buffer_length(bb), len = 0;
    uint8_t *out = kiln_xmalloc(cap ? cap : 1);
    grpc_slice s;
    while (grpc_byte_buffer_reader_next(&r, &s)) {
        size_t k = GRPC_SLICE_LENGTH(s);
        if (len + k > cap) {
            cap = (len + k) * 2;
            out = kiln_xrealloc(out, cap);
        }
        memcpy(out + len, GRPC_SLICE_START_PTR(s), k);
        len += k;
        grpc_slice_unref(s);
    }
    grpc_byte_buffer_reader_destroy(&r);
    call->resp = out;
    call->resp_len = len;
}

static void set_status(kiln_grpc_call *call, const pending *p)
{
    int raw = (int)p->status; /* the codes are the same numbers */
    kiln_status code =
        raw >= 0 && raw <= (int)KILN_UNAUTHENTICATED ? (kiln_status)raw : KILN_UNKNOWN;
    int dlen = (int)GRPC_SLICE_LENGTH(p->details);
    const char *d = (const char *)GRPC_SLICE_START_PTR(p->details);
    if (dlen == 0) {
        d = kiln_status_str(code);
        dlen = (int)strlen(d);
    }
    if (code == KILN_UNAVAILABLE || code == KILN_DEADLINE_EXCEEDED || code == KILN_CANCELLED)
        kiln_err_set(&call->err, code, "%s: %.*s", call->addr, dlen, d);
    else
        kiln_err_set(&call->err, code, "%.*s", dlen, d);
    KILN_LOG_DEBUG("grpc_client", "%s%s: code=%s %s", call->addr, call->method,
                   kiln_status_str(code), p->error_string ? p->error_string : "");
}

/* Turns an ended call into call->err and call->resp, and frees its state. */
static void finish_call(pending *p)
{
    kiln_grpc_call *call = call_of(p);
    if (p->started) {
        if (p->status != GRPC_STATUS_OK)
            set_status(call, p);
        else if (p->recv == NULL)
            kiln_err_set(&call->err, KILN_INTERNAL, "%s: no response message", call->addr);
        else
            copy_response(call, p->recv);
    }
    release_pending(p);
}

static void batch_free(kiln_grpc_batch_t *b)
{
    kiln_grpc_client_t *c = b->c;
    pthread_mutex_lock(&c->list_mu);
    if (b->prev != NULL)
        b->prev->next = b->next;
    else if (c->abandoned == b)
        c->abandoned = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&c->list_mu);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b->ended);
    free(b->p);
    free(b);
}

/* The poller's work for one event: the peer's health, then the call is
 * handed to its caller, or released when the caller went on without it. */
static void on_complete(kiln_grpc_client_t *c, pending *p)
{
    kiln_grpc_batch_t *b = p->batch;
    pthread_mutex_lock(&b->mu);
    note_health(c, p);
    p->done = true;
    b->outstanding--;
    bool last = false;
    if (b->abandoned) {
        release_pending(p);
        last = b->outstanding == 0;
    } else {
        b->ended[b->tail++] = p->index;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (last)
        batch_free(b);
}

static void *poll_loop(void *arg)
{
    kiln_grpc_client_t *c = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type == GRPC_OP_COMPLETE) {
            KILN_GRPC_HANDOFF_ACQUIRE(ev.tag);
            on_complete(c, ev.tag);
        }
    }
}

static struct timespec mono_after(int64_t ms)
{
    return kiln_mono_deadline_in(ms * 1000000);
}

kiln_grpc_batch_t *kiln_grpc_batch_start(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                                         int64_t timeout_ms)
{
    kiln_grpc_batch_t *b = kiln_xcalloc(1, sizeof(*b));
    b->c = c;
    b->calls = calls;
    b->n = n;
    b->p = kiln_xcalloc(n + 1, sizeof(*b->p));
    b->ended = kiln_xcalloc(n + 1, sizeof(*b->ended));
    b->unreported = n;
    b->give_up = mono_after(timeout_ms + DRAIN_GRACE_MS);
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < n; i++) {
        calls[i].err.code = KILN_OK;
        calls[i].err.msg[0] = '\0';
        calls[i].resp = NULL;
        calls[i].resp_len = 0;
        b->p[i].batch = b;
        b->p[i].index = i;
        if (start_call(c, &b->p[i], deadline))
            b->outstanding++;
        else
            b->ended[b->tail++] = i; /* ended at once, err set */
    }
    pthread_mutex_unlock(&b->mu);
    return b;
}

/* Cancels every call not yet ended; their events still follow. */
static void cancel_all(kiln_grpc_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->p[i].started && !b->p[i].done)
            grpc_call_cancel(b->p[i].gc, NULL);
    }
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* How long the next wait may last: until the batch gives up, or one slice
 * when a query's token is bound to this thread (cancel.h), so that a query
 * ending (client gone, deadline, shutdown) cancels its calls at once rather
 * than waiting for them. */
static struct timespec wait_until(const kiln_grpc_batch_t *b, const kiln_cancel_t *query)
{
    struct timespec slice = mono_after(QUERY_CHECK_MS);
    return query != NULL && ts_before(&slice, &b->give_up) ? slice : b->give_up;
}

size_t kiln_grpc_batch_next(kiln_grpc_batch_t *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->unreported == 0) {
        pthread_mutex_unlock(&b->mu);
        return KILN_GRPC_BATCH_DONE;
    }
    bool cancelled = false;
    kiln_cancel_t *query = kiln_cancel_current();
    while (b->head == b->tail) {
        struct timespec until = wait_until(b, query);
        int rc = cancelled ? pthread_cond_wait(&b->cv, &b->mu)
                           : pthread_cond_timedwait(&b->cv, &b->mu, &until);
        if (!cancelled && query != NULL && kiln_cancel_check(query) != KILN_OK) {
            cancel_all(b); /* the calls end at once, cancelled */
            cancelled = true;
            continue;
        }
        struct timespec now = mono_after(0);
        if (rc == ETIMEDOUT && !ts_before(&now, &b->give_up)) {
            /* The core ends calls at their deadline: this guards a bug. */
            KILN_LOG_ERROR("grpc_client", "%zu calls outlived their deadline; cancelling",
                           b->outstanding);
            cancel_all(b);
            cancelled = true;
        }
    }
    size_t i = b->ended[b->head++];
    b->unreported--;
    b->p[i].reported = true;
    pthread_mutex_unlock(&b->mu);
    finish_call(&b->p[i]);
    return i;
}

void kiln_grpc_batch_end(kiln_grpc_batch_t *b)
{
    kiln_grpc_client_t *c = b->c;
    /* On the list before it can be freed from the poller, which unlinks. */
    pthread_mutex_lock(&c->list_mu);
    b->prev = NULL;
    b->next = c->abandoned;
    if (c->abandoned != NULL)
        c->abandoned->prev = b;
    c->abandoned = b;
    pthread_mutex_unlock(&c->list_mu);
    pthread_mutex_lock(&b->mu);
    b->abandoned = true;
    for (size_t i = 0; i < b->n; i++) {
        pending *p = &b->p[i];
        if (p->reported)
            continue;
        kiln_grpc_call *call = call_of(p);
        if (call->err.code == KILN_OK)
            kiln_err_set(&call->err, KILN_CANCELLED, "%s: not waited for", call->addr);
        if (!p->started || p->done)
            release_pending(p); /* ended but not taken: nothing else will */
    }
    b->calls = NULL;
    bool last = b->outstanding == 0;
    pthread_mutex_unlock(&b->mu);
    if (last)
        batch_free(b);
}

void kiln_grpc_client_run(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                          int64_t timeout_ms)
{
    if (n == 0)
        return;
    kiln_grpc_batch_t *b = kiln_grpc_batch_start(c, calls, n, timeout_ms);
    while (kiln_grpc_batch_next(b) != KILN_GRPC_BATCH_DONE)
        ;
    kiln_grpc_batch_end(b);
}
