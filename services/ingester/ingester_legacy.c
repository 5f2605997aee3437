/* SPDX-License-Identifier: Apache-2.0
 * ingester_legacy: the old calls over kiln_db and kiln_head_read, until the
 * store interface lands (ingester_legacy.h). */
#include "ingester_legacy.h"

#include "cancel.h"
#include "db.h"
#include "ingester.h"

/* The old calls return nothing: a failure ends the bound query. */
static void fail_query(kiln_status st, const kiln_err *err)
{
    if (st != KILN_OK)
        kiln_cancel_fail("ingester", st, "%s", err->msg);
}

/* Adapts the read visitor's profile to the old callbacks. */
typedef struct old_fns {
    kiln_head_profile_fn pfn;
    kiln_head_profile_id_fn pidfn;
    void *ctx;
} old_fns;

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    const old_fns *o = ctx;
    if (o->pfn != NULL)
        o->pfn(o->ctx, p->labels, p->n_labels, p->time_ms, p->total);
    else
        o->pidfn(o->ctx, p->labels, p->n_labels, p->time_ms, p->total, p->id);
}

/* The read filter of the old arguments. */
static kiln_read_filter filter_of(const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                  const kiln_head_filter *f)
{
    kiln_read_filter rf = {.sel = sel, .start_ms = start_ms, .end_ms = end_ms};
    if (f != NULL) {
        rf.keys = f->keys, rf.n_keys = f->n_keys;
        rf.spans = f->spans, rf.n_spans = f->n_spans;
        rf.ids = f->ids, rf.n_ids = f->n_ids;
    }
    return rf;
}

void kiln_head_series(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                      kiln_head_series_fn fn, void *ctx)
{
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, NULL);
    kiln_read_visitor v = {.series = fn, .ctx = ctx};
    kiln_err err = {KILN_OK, ""};
    fail_query(kiln_head_read(h, &f, &v, &err), &err);
}

void kiln_head_profiles_id(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                           int64_t end_ms, kiln_head_profile_id_fn fn, void *ctx)
{
    old_fns o = {NULL, fn, ctx};
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, NULL);
    kiln_read_visitor v = {.profile = on_profile, .ctx = &o};
    kiln_err err = {KILN_OK, ""};
    fail_query(kiln_head_read(h, &f, &v, &err), &err);
}

void kiln_head_merge_filtered(kiln_head_t *h, const kiln_selector_t *sel, int64_t start_ms,
                              int64_t end_ms, const kiln_head_filter *hf, kiln_tree_t *t)
{
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, hf);
    kiln_read_visitor v = {.tree = t};
    kiln_err err = {KILN_OK, ""};
    fail_query(kiln_head_read(h, &f, &v, &err), &err);
}

kiln_status kiln_ingester_append(kiln_ingester_t *ing, const char *tenant,
                                 const kiln_ingester_part *parts, size_t n, kiln_err *err)
{
    return kiln_db_append(kiln_ingester_db(ing), tenant, parts, n, err);
}

/* One read of the ingester's database, its failure ending the query. */
static void db_read(kiln_ingester_t *ing, const char *tenants, const kiln_read_filter *f,
                    const kiln_read_visitor *v)
{
    kiln_err err = {KILN_OK, ""};
    fail_query(kiln_db_read(kiln_ingester_db(ing), tenants, f, v, &err), &err);
}

void kiln_ingester_series(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                          int64_t start_ms, int64_t end_ms, kiln_head_series_fn fn, void *ctx)
{
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, NULL);
    kiln_read_visitor v = {.series = fn, .ctx = ctx};
    db_read(ing, tenants, &f, &v);
}

void kiln_ingester_profiles(kiln_ingester_t *ing, const char *tenants, const kiln_selector_t *sel,
                            int64_t start_ms, int64_t end_ms, kiln_head_profile_fn fn, void *ctx)
{
    old_fns o = {fn, NULL, ctx};
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, NULL);
    kiln_read_visitor v = {.profile = on_profile, .ctx = &o};
    db_read(ing, tenants, &f, &v);
}

void kiln_ingester_merge_filtered(kiln_ingester_t *ing, const char *tenants,
                                  const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                  const kiln_head_filter *hf, kiln_tree_t *t)
{
    kiln_read_filter f = filter_of(sel, start_ms, end_ms, hf);
    kiln_read_visitor v = {.tree = t};
    db_read(ing, tenants, &f, &v);
}

void kiln_ingester_stats(kiln_ingester_t *ing, const char *tenants, kiln_head_stats_t *out)
{
    kiln_db_stats(kiln_ingester_db(ing), tenants, out);
}
