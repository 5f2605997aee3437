/* SPDX-License-Identifier: Apache-2.0
 * local_store: store.h over the in-process ingester's functions. */
#include "local_store.h"

static kiln_status local_append(void *self, const char *tenant, const kiln_head_part *parts,
                                size_t n, kiln_err *err)
{
    return kiln_ingester_append(self, tenant, parts, n, err);
}

typedef struct profile_adapter {
    const kiln_read_visitor *v;
} profile_adapter;

static void visit_profile(void *ctx, const kiln_label_t *l, size_t n, int64_t time_ms,
                          int64_t total, uint64_t id)
{
    const profile_adapter *a = ctx;
    kiln_read_profile p = {
        .labels = l, .n_labels = n, .time_ms = time_ms, .total = total, .id = id};
    a->v->profile(a->v->ctx, &p);
}

static kiln_status local_read(void *self, const char *tenants, const kiln_read_filter *f,
                              const kiln_read_visitor *v, kiln_err *err)
{
    (void)err;
    if (v->series != NULL) {
        kiln_ingester_series(self, tenants, f->sel, f->start_ms, f->end_ms, v->series, v->ctx);
    } else if (v->profile != NULL) {
        profile_adapter a = {v};
        kiln_ingester_profiles_id(self, tenants, f->sel, f->start_ms, f->end_ms, visit_profile, &a);
    } else if (v->tree != NULL) {
        kiln_head_filter hf = {f->keys, f->n_keys, f->spans, f->n_spans, f->ids, f->n_ids};
        bool any = f->keys || f->spans || f->ids;
        kiln_ingester_merge_filtered(self, tenants, f->sel, f->start_ms, f->end_ms,
                                     any ? &hf : NULL, v->tree);
    }
    return KILN_OK;
}

static kiln_status local_stats(void *self, const char *tenants, kiln_head_stats_t *out,
                               kiln_err *err)
{
    (void)err;
    kiln_ingester_stats(self, tenants, out);
    return KILN_OK;
}

static const kiln_store_ops local_ops = {
    .append = local_append,
    .read = local_read,
    .stats = local_stats,
};

kiln_store_t kiln_ingester_store(kiln_ingester_t *ing)
{
    return (kiln_store_t){&local_ops, ing};
}
