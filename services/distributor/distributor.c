/* SPDX-License-Identifier: Apache-2.0
 * distributor: push validation and normalisation. Two passes per request:
 * decode and check everything first, append only when all of it is good. */
#include "distributor.h"

#include <stdlib.h>
#include <string.h>

#include "gzip.h"
#include "labels.h"
#include "log.h"
#include "pprof.h"
#include "push/v1/push.pb-c.h"
#include "xmalloc.h"

struct kiln_distributor {
    kiln_distributor_config cfg;
    kiln_ingester_t *ing;
    kiln_metrics_t *metrics;
};

kiln_distributor_t *kiln_distributor_create(const kiln_distributor_config *cfg,
                                            kiln_ingester_t *ing, kiln_metrics_t *metrics)
{
    kiln_distributor_t *d = kiln_xcalloc(1, sizeof(*d));
    d->cfg = *cfg;
    d->ing = ing;
    d->metrics = metrics;
    return d;
}

void kiln_distributor_destroy(kiln_distributor_t *d)
{
    free(d);
}

/* Ingest markers the head does not store (Pyroscope strips them too). */
static bool is_marker(const char *name)
{
    return strcmp(name, KILN_LABEL_DELTA) == 0 || strcmp(name, "__otel__") == 0 ||
           strcmp(name, "__order__") == 0;
}

/* The series labels of a RawProfileSeries: markers dropped, service_name
 * defaulted, sorted and validated. */
static kiln_status series_labels(const kiln_distributor_t *d, const Push__V1__RawProfileSeries *s,
                                 kiln_arena_t *a, kiln_label_t **out, size_t *n_out, kiln_err *err)
{
    kiln_label_t *l = kiln_arena_alloc(a, (s->n_labels + 1) * sizeof(*l));
    size_t n = 0;
    bool has_service = false;
    for (size_t i = 0; i < s->n_labels; i++) {
        const Types__V1__LabelPair *lp = s->labels[i];
        if (is_marker(lp->name))
            continue;
        has_service |= strcmp(lp->name, KILN_LABEL_SERVICE_NAME) == 0;
        l[n++] = (kiln_label_t){lp->name, lp->value};
    }
    if (!has_service)
        l[n++] = (kiln_label_t){KILN_LABEL_SERVICE_NAME, "unknown_service"};
    kiln_labels_sort(l, n);
    kiln_status st = kiln_labels_validate(l, n, d->cfg.max_label_names, err);
    if (st == KILN_OK) {
        *out = l;
        *n_out = n;
    }
    return st;
}

/* gunzip (if needed), decode, validate, normalise one raw profile. */
static kiln_status prepare_profile(const kiln_distributor_t *d, const Push__V1__RawSample *rs,
                                   kiln_arena_t *a, kiln_pprof_t *p, kiln_err *err)
{
    const uint8_t *raw;
    size_t len;
    kiln_status st = kiln_gunzip_maybe(a, rs->raw_profile.data, rs->raw_profile.len,
                                       d->cfg.max_profile_bytes, &raw, &len, err);
    if (st == KILN_OK)
        st = kiln_pprof_decode(a, raw, len, p, err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(p, err);
    if (st == KILN_OK)
        st = kiln_pprof_normalize(a, p, d->cfg.max_stack_depth, err);
    return st;
}

typedef struct prepared {
    kiln_label_t *labels;
    size_t n_labels;
    kiln_pprof_t profile;
} prepared;

static kiln_status h_push(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                          ProtobufCMessage **resp)
{
    kiln_distributor_t *d = svc;
    const Push__V1__PushRequest *req = (const Push__V1__PushRequest *)msg;
    size_t total = 0, k = 0, bytes = 0;
    for (size_t i = 0; i < req->n_series; i++)
        total += req->series[i]->n_samples;
    prepared *pp = kiln_arena_alloc(ctx->arena, (total + 1) * sizeof(*pp));
    for (size_t i = 0; i < req->n_series; i++) {
        const Push__V1__RawProfileSeries *s = req->series[i];
        kiln_label_t *l;
        size_t n;
        kiln_status st = series_labels(d, s, ctx->arena, &l, &n, ctx->err);
        for (size_t j = 0; st == KILN_OK && j < s->n_samples; j++, k++) {
            pp[k].labels = l;
            pp[k].n_labels = n;
            bytes += s->samples[j]->raw_profile.len;
            st = prepare_profile(d, s->samples[j], ctx->arena, &pp[k].profile, ctx->err);
        }
        if (st != KILN_OK)
            return st;
    }
    for (size_t i = 0; i < k; i++) {
        kiln_status st = kiln_ingester_append(d->ing, ctx->tenant, pp[i].labels, pp[i].n_labels,
                                              &pp[i].profile, ctx->err);
        if (st != KILN_OK)
            return st;
    }
    kiln_metrics_ingested(d->metrics, ctx->tenant, bytes, k);
    Push__V1__PushResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    push__v1__push_response__init(r);
    *resp = &r->base;
    return KILN_OK;
}

void kiln_distributor_register(kiln_distributor_t *d, kiln_rpc_registry_t *rpc)
{
    kiln_rpc_method m = {"/push.v1.PusherService/Push", &push__v1__push_request__descriptor,
                         &push__v1__push_response__descriptor, h_push, d};
    kiln_rpc_register(rpc, &m);
}
