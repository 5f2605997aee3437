/* SPDX-License-Identifier: Apache-2.0
 * head_read: kiln_head_read over the head's scans (head.h). */
#include "head.h"

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

kiln_status kiln_head_read(kiln_head_t *h, const kiln_read_filter *f, const kiln_read_visitor *v,
                           kiln_err *err)
{
    (void)err;
    if (v->series != NULL) {
        kiln_head_series(h, f->sel, f->start_ms, f->end_ms, v->series, v->ctx);
    } else if (v->profile != NULL) {
        profile_adapter a = {v};
        kiln_head_profiles_id(h, f->sel, f->start_ms, f->end_ms, visit_profile, &a);
    } else if (v->tree != NULL) {
        kiln_head_filter hf = {f->keys, f->n_keys, f->spans, f->n_spans, f->ids, f->n_ids};
        kiln_head_merge_filtered(h, f->sel, f->start_ms, f->end_ms, &hf, v->tree);
    }
    return KILN_OK;
}
