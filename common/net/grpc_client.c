/* SPDX-License-Identifier: Apache-2.0
 * grpc_client: a table of channels by address under a mutex, and batches
 * run on a completion queue of their own: every call is one six-op batch
 * (send metadata, message and close; receive metadata, message and status),
 * so each call yields exactly one event and the batch is over when all
 * have arrived. */
#include "grpc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define DEFAULT_MAX_RECV ((size_t)256 << 20)
/* A refused connection fails non-wait-for-ready calls at once; the channel
 * then retries in the background, and this caps how long a peer that came
 * back stays marked as failing (gRPC's default cap is 120 s). */
#define MAX_RECONNECT_BACKOFF_MS 2000
#define MIN_RECONNECT_BACKOFF_MS 100
/* How long past the deadline to wait for the core before cancelling; the
 * core ends calls at their deadline, so this only guards against a bug. */
#define DRAIN_GRACE_MS 5000

typedef struct channel {
    char *addr;
    grpc_channel *ch;
} channel;

struct kiln_grpc_client {
    pthread_mutex_t mu;
    channel *chans;
    size_t n_chans, cap_chans;
    int max_recv; /* channel arg: -1 = no limit */
};

/* One call of a batch in flight; its address is the completion tag. */
typedef struct pending {
    kiln_grpc_call *call;
    grpc_call *gc;
    bool started; /* its batch was accepted: one event will come */
    bool done;
    grpc_metadata tenant_md;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *send, *recv;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
} pending;

kiln_grpc_client_t *kiln_grpc_client_create(size_t max_recv_bytes)
{
    kiln_grpc_client_t *c = kiln_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    size_t max = max_recv_bytes ? max_recv_bytes : DEFAULT_MAX_RECV;
    c->max_recv = max > INT_MAX ? -1 : (int)max;
    grpc_init();
    return c;
}

void kiln_grpc_client_destroy(kiln_grpc_client_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_chans; i++) {
        grpc_channel_destroy(c->chans[i].ch);
        free(c->chans[i].addr);
    }
    free(c->chans);
    pthread_mutex_destroy(&c->mu);
    free(c);
    grpc_shutdown();
}

static grpc_channel *channel_create(const kiln_grpc_client_t *c, const char *addr)
{
    grpc_arg args[5];
    memset(args, 0, sizeof(args));
    const char *keys[] = {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_ARG_ENABLE_RETRIES,
                          GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                          GRPC_ARG_MAX_RECONNECT_BACKOFF_MS};
    /* Retries are off: the callers replicate and fan out themselves. */
    int values[] = {c->max_recv, 0, MIN_RECONNECT_BACKOFF_MS, MIN_RECONNECT_BACKOFF_MS,
                    MAX_RECONNECT_BACKOFF_MS};
    for (size_t i = 0; i < 5; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)keys[i];
        args[i].value.integer = values[i];
    }
    grpc_channel_args ch_args = {5, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, creds, &ch_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* The channel to addr, created on first use and kept. Creating one does not
 * connect, so holding the mutex across it is cheap. */
static grpc_channel *channel_for(kiln_grpc_client_t *c, const char *addr)
{
    pthread_mutex_lock(&c->mu);
    grpc_channel *ch = NULL;
    for (size_t i = 0; i < c->n_chans && ch == NULL; i++) {
        if (strcmp(c->chans[i].addr, addr) == 0)
            ch = c->chans[i].ch;
    }
    if (ch == NULL) {
        ch = channel_create(c, addr);
        KILN_GROW(c->chans, c->cap_chans, c->n_chans + 1);
        c->chans[c->n_chans++] = (channel){kiln_xstrdup(addr), ch};
    }
    pthread_mutex_unlock(&c->mu);
    return ch;
}

static void fill_ops(pending *p, grpc_op *ops)
{
    const kiln_grpc_call *call = p->call;
    memset(ops, 0, 6 * sizeof(*ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (call->tenant != NULL) {
        /* Static slices borrow the key and the caller's tenant, which both
         * outlive the batch. */
        p->tenant_md.key = grpc_slice_from_static_string("x-scope-orgid");
        p->tenant_md.value = grpc_slice_from_static_string(call->tenant);
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

/* Starts one call; false (with call->err set) when nothing was started, so
 * no event will come for it. */
static bool start_call(kiln_grpc_client_t *c, grpc_completion_queue *cq, pending *p,
                       gpr_timespec deadline)
{
    kiln_grpc_call *call = p->call;
    grpc_metadata_array_init(&p->initial_md);
    grpc_metadata_array_init(&p->trailing_md);
    p->details = grpc_empty_slice();
    p->done = true;
    /* method only needs to live through create_call. */
    p->gc = grpc_channel_create_call(channel_for(c, call->addr), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                     grpc_slice_from_static_string(call->method), NULL, deadline,
                                     NULL);
    if (p->gc == NULL) {
        kiln_err_set(&call->err, KILN_INTERNAL, "%s: cannot create a call", call->addr);
        return false;
    }
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)call->req, call->req_len);
    p->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_op ops[6];
    fill_ops(p, ops);
    grpc_call_error e = grpc_call_start_batch(p->gc, ops, 6, p, NULL);
    if (e != GRPC_CALL_OK) {
        KILN_LOG_WARN("grpc_client", "start_batch %s%s: grpc_call_error=%d", call->addr,
                      call->method, (int)e);
        kiln_err_set(&call->err, KILN_INTERNAL, "%s: cannot start the call", call->addr);
        return false;
    }
    p->started = true;
    p->done = false;
    return true;
}

/* Cancels every call not yet ended; their events still follow. */
static void cancel_all(pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!p[i].done)
            grpc_call_cancel(p[i].gc, NULL);
    }
}

/* Waits for the one event of each started call. */
static void drain_calls(grpc_completion_queue *cq, pending *p, size_t n, size_t outstanding,
                        gpr_timespec deadline)
{
    gpr_timespec give_up = gpr_time_add(deadline, gpr_time_from_millis(DRAIN_GRACE_MS,
                                                                        GPR_TIMESPAN));
    while (outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(cq, give_up, NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            ((pending *)ev.tag)->done = true;
            outstanding--;
        } else if (ev.type == GRPC_QUEUE_TIMEOUT) {
            KILN_LOG_ERROR("grpc_client", "%zu calls outlived their deadline; cancelling",
                           outstanding);
            cancel_all(p, n);
            give_up = gpr_inf_future(GPR_CLOCK_MONOTONIC);
        }
    }
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
    kiln_status code = raw >= 0 && raw <= (int)KILN_UNAUTHENTICATED ? (kiln_status)raw : KILN_UNKNOWN;
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
    kiln_grpc_call *call = p->call;
    if (p->started) {
        if (p->status != GRPC_STATUS_OK)
            set_status(call, p);
        else if (p->recv == NULL)
            kiln_err_set(&call->err, KILN_INTERNAL, "%s: no response message", call->addr);
        else
            copy_response(call, p->recv);
    }
    if (p->gc != NULL)
        grpc_call_unref(p->gc);
    grpc_byte_buffer_destroy(p->send);
    grpc_byte_buffer_destroy(p->recv);
    grpc_slice_unref(p->details);
    gpr_free((void *)p->error_string);
    grpc_metadata_array_destroy(&p->initial_md);
    grpc_metadata_array_destroy(&p->trailing_md);
}

static void destroy_cq(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

void kiln_grpc_client_run(kiln_grpc_client_t *c, kiln_grpc_call *calls, size_t n,
                          int64_t timeout_ms)
{
    if (n == 0)
        return;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    pending *p = kiln_xcalloc(n, sizeof(*p));
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    size_t outstanding = 0;
    for (size_t i = 0; i < n; i++) {
        calls[i].err.code = KILN_OK;
        calls[i].err.msg[0] = '\0';
        calls[i].resp = NULL;
        calls[i].resp_len = 0;
        p[i].call = &calls[i];
        outstanding += start_call(c, cq, &p[i], deadline);
    }
    drain_calls(cq, p, n, outstanding, deadline);
    for (size_t i = 0; i < n; i++)
        finish_call(&p[i]);
    destroy_cq(cq);
    free(p);
}
