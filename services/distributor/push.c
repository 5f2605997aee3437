/* SPDX-License-Identifier: Apache-2.0
 * push: push.v1.PusherService/Push, the API of Grafana Alloy and the
 * Pyroscope SDKs. Each RawSample is one pprof profile (gzipped or not). */
#include <string.h>

#include "distributor.h"
#include "push/v1/push.pb-c.h"

/* Decodes every RawSample and runs the pipeline; *bytes counts them as sent. */
static kiln_status push(kiln_distributor_t *d, kiln_rpc_ctx *ctx, const Push__V1__PushRequest *req,
                        size_t *bytes)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < req->n_series; i++) {
        total += req->series[i]->n_samples;
        for (size_t j = 0; j < req->series[i]->n_samples; j++)
            *bytes += req->series[i]->samples[j]->raw_profile.len;
    }
    kiln_ingest_profile *in = kiln_arena_calloc(ctx->arena, total + 1, sizeof(*in));
    for (size_t i = 0; i < req->n_series; i++) {
        const Push__V1__RawProfileSeries *s = req->series[i];
        kiln_label_t *l = kiln_arena_alloc(ctx->arena, (s->n_labels + 1) * sizeof(*l));
        for (size_t j = 0; j < s->n_labels; j++)
            l[j] = (kiln_label_t){s->labels[j]->name, s->labels[j]->value};
        for (size_t j = 0; j < s->n_samples; j++, k++) {
            const Push__V1__RawSample *rs = s->samples[j];
            in[k] = (kiln_ingest_profile){l, s->n_labels, {0}, rs->id, rs->raw_profile.len};
            kiln_status st = kiln_distributor_decode_pprof(
                d, rs->raw_profile.data, rs->raw_profile.len, ctx->arena, &in[k].profile, ctx->err);
            if (st != KILN_OK)
                return st;
        }
    }
    return kiln_distributor_ingest(d, ctx->tenant, in, k, ctx->arena, ctx->err);
}

/* Refusals are counted and logged (sampled); "too large" reaches the client
 * as INVALID_ARGUMENT, so only rate and concurrency limits are retryable. */
static kiln_status h_push(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                          ProtobufCMessage **resp)
{
    kiln_distributor_t *d = svc;
    size_t bytes = 0;
    kiln_status st = push(d, ctx, (const Push__V1__PushRequest *)msg, &bytes);
    if (st != KILN_OK) {
        kiln_distributor_rejected(d, ctx->tenant, "push", st, ctx->err, bytes);
        return kiln_distributor_public_code(st, ctx->err);
    }
    Push__V1__PushResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    push__v1__push_response__init(r);
    *resp = &r->base;
    return KILN_OK;
}

void kiln_distributor_register(kiln_distributor_t *d, kiln_rpc_registry_t *rpc)
{
    kiln_rpc_method m = {"/push.v1.PusherService/Push",
                         &push__v1__push_request__descriptor,
                         &push__v1__push_response__descriptor,
                         h_push,
                         d,
                         KILN_RPC_PUBLIC,
                         NULL};
    kiln_rpc_register(rpc, &m);
}
