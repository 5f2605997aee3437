/* SPDX-License-Identifier: Apache-2.0
 * pprof_out: SelectMergeProfile, the merged profile as pprof (what
 * `go tool pprof` and the Drilldown app read). Built from the merged call
 * tree: one function and one location per distinct frame name, one sample
 * per tree node with a self value, its stack the node's path, leaf first. */
#include <stdint.h>
#include <string.h>

#include "google/v1/profile.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "tree.h"

/* The n-th ':'-separated part of a profile type id, in the arena. */
static char *type_part(kiln_arena_t *a, const char *id, int n)
{
    const char *p = id;
    for (int i = 0; i < n && p != NULL; i++) {
        p = strchr(p, ':');
        p = p ? p + 1 : NULL;
    }
    if (p == NULL)
        return kiln_arena_strndup(a, "", 0);
    const char *end = strchr(p, ':');
    return kiln_arena_strndup(a, p, end ? (size_t)(end - p) : strlen(p));
}

/* ms to ns, saturated: any int64 request time gives a defined answer. */
static int64_t ms_to_ns(int64_t ms)
{
    if (ms > INT64_MAX / 1000000)
        return INT64_MAX;
    if (ms < INT64_MIN / 1000000)
        return INT64_MIN;
    return ms * 1000000;
}

static Google__V1__ValueType *value_type(kiln_arena_t *a, int64_t type, int64_t unit)
{
    Google__V1__ValueType *v = kiln_arena_alloc(a, sizeof(*v));
    google__v1__value_type__init(v);
    v->type = type;
    v->unit = unit;
    return v;
}

/* Strings: "", the 4 type parts, then the tree's names (name i -> 5 + i). */
static void strings(Google__V1__Profile *p, const Ingester__V1__TreeResponse *t, const char *id,
                    kiln_arena_t *a)
{
    p->n_string_table = 5 + t->n_names;
    p->string_table = kiln_arena_alloc(a, p->n_string_table * sizeof(char *));
    p->string_table[0] = "";
    for (int i = 1; i <= 4; i++)
        p->string_table[i] = type_part(a, id, i);
    for (size_t i = 0; i < t->n_names; i++)
        p->string_table[5 + i] = t->names[i];
}

/* One function and one location per name (ids = name index + 1). */
static void symbols(Google__V1__Profile *p, const Ingester__V1__TreeResponse *t, kiln_arena_t *a)
{
    p->n_function = p->n_location = t->n_names;
    p->function = kiln_arena_alloc(a, (t->n_names + 1) * sizeof(*p->function));
    p->location = kiln_arena_alloc(a, (t->n_names + 1) * sizeof(*p->location));
    for (size_t i = 0; i < t->n_names; i++) {
        Google__V1__Function *f = kiln_arena_alloc(a, sizeof(*f));
        google__v1__function__init(f);
        f->id = i + 1;
        f->name = f->system_name = (int64_t)(5 + i);
        p->function[i] = f;
        Google__V1__Line *ln = kiln_arena_alloc(a, sizeof(*ln));
        google__v1__line__init(ln);
        ln->function_id = i + 1;
        Google__V1__Location *l = kiln_arena_alloc(a, sizeof(*l));
        google__v1__location__init(l);
        l->id = i + 1;
        l->n_line = 1;
        l->line = kiln_arena_alloc(a, sizeof(*l->line));
        l->line[0] = ln;
        p->location[i] = l;
    }
}

static void samples(Google__V1__Profile *p, const Ingester__V1__TreeResponse *t, kiln_arena_t *a)
{
    p->sample = kiln_arena_alloc(a, (t->n_self + 1) * sizeof(*p->sample));
    for (size_t i = 1; i < t->n_self; i++) {
        if (t->self[i] == 0)
            continue;
        size_t depth = 0;
        for (int32_t j = (int32_t)i; j > 0; j = t->parent[j])
            depth++;
        Google__V1__Sample *s = kiln_arena_alloc(a, sizeof(*s));
        google__v1__sample__init(s);
        s->n_location_id = depth;
        s->location_id = kiln_arena_alloc(a, (depth + 1) * sizeof(uint64_t));
        size_t k = 0;
        for (int32_t j = (int32_t)i; j > 0; j = t->parent[j])
            s->location_id[k++] = (uint64_t)t->name[j] + 1; /* leaf first */
        s->n_value = 1;
        s->value = kiln_arena_alloc(a, sizeof(int64_t));
        s->value[0] = t->self[i];
        p->sample[p->n_sample++] = s;
    }
}

Google__V1__Profile *kiln_querier__pprof(const kiln_tree_t *tree, const char *type_id,
                                         int64_t start, int64_t end, kiln_arena_t *a)
{
    Ingester__V1__TreeResponse *t = kiln_tree_to_response(tree, a);
    if (t == NULL)
        return NULL;
    Google__V1__Profile *p = kiln_arena_alloc(a, sizeof(*p));
    google__v1__profile__init(p);
    strings(p, t, type_id, a);
    p->n_sample_type = 1;
    p->sample_type = kiln_arena_alloc(a, sizeof(*p->sample_type));
    p->sample_type[0] = value_type(a, 1, 2);
    p->period_type = value_type(a, 3, 4);
    p->period = 1;
    p->time_nanos = ms_to_ns(start);
    uint64_t len_ms = (uint64_t)end - (uint64_t)start; /* start <= end */
    p->duration_nanos = len_ms > INT64_MAX / 1000000 ? INT64_MAX : (int64_t)len_ms * 1000000;
    symbols(p, t, a);
    samples(p, t, a);
    return p;
}

/* GoPGO's keep_locations (upstream's default-PGO profile, what `go build
 * -pgo` reads): every stack cut to its keep leaf-most frames, the stacks
 * that become equal merged. A new tree; NULL past the arena cap.
 * aggregate_callees asks to ignore the leaf's line number: the merged
 * profile has one location per function and no lines, so it already is. */
static kiln_tree_t *pgo_trim(const kiln_tree_t *t, uint32_t keep, kiln_arena_t *a)
{
    Ingester__V1__TreeResponse *w = kiln_tree_to_response(t, a);
    if (w == NULL)
        return NULL;
    kiln_tree_t *out = kiln_tree_create();
    uint32_t *path = kiln_arena_alloc(a, ((size_t)keep + 1) * sizeof(*path));
    if (path == NULL) {
        kiln_tree_destroy(out);
        return NULL;
    }
    for (size_t i = 1; i < w->n_self; i++) {
        if (w->self[i] == 0)
            continue;
        uint32_t n = 0;
        for (int32_t j = (int32_t)i; j > 0 && n < keep; j = w->parent[j])
            path[n++] = (uint32_t)j; /* leaf first */
        uint32_t node = KILN_TREE_ROOT;
        while (n-- > 0) {
            const char *name = w->names[w->name[path[n]]];
            node = kiln_tree_child(out, node, name, strlen(name));
        }
        kiln_tree_add_self(out, node, w->self[i]);
    }
    return out;
}

kiln_status kiln_querier__select_merge_profile(void *svc, kiln_rpc_ctx *ctx,
                                               const ProtobufCMessage *msg, ProtobufCMessage **resp)
{
    kiln_querier_t *q = svc;
    const Querier__V1__SelectMergeProfileRequest *req =
        (const Querier__V1__SelectMergeProfileRequest *)msg;
    int64_t start = req->start;
    kiln_trace_id *traces = NULL;
    kiln_status st = kiln_querier__limit_range(q, ctx, &start, req->end);
    if (st == KILN_OK)
        st =
            kiln_querier__trace_ids(req->trace_id_selector, req->n_trace_id_selector, ctx, &traces);
    kiln_selector_t *sel;
    if (st == KILN_OK)
        st = kiln_querier__selector(req->profile_typeid, req->label_selector, ctx, &sel);
    if (st != KILN_OK)
        return st;
    uint64_t *ids = NULL;
    size_t n_ids = 0;
    if (req->n_profile_id_selector != 0) {
        st = kiln_querier__profile_ids(req->profile_id_selector, req->n_profile_id_selector, ctx,
                                       &ids, &n_ids);
        if (st != KILN_OK)
            return st;
    }
    kiln_read_filter by_id = {.sel = sel,
                              .start_ms = start,
                              .end_ms = req->end,
                              .ids = ids,
                              .n_ids = n_ids,
                              .traces = traces,
                              .n_traces = traces != NULL ? req->n_trace_id_selector : 0};
    kiln_tree_t *tree;
    st = kiln_querier__read_merge(q, ctx, &by_id, &tree);
    if (st != KILN_OK)
        return st;
    const Types__V1__StackTraceSelector *sts = req->stack_trace_selector;
    if (sts != NULL && sts->n_call_site != 0) {
        kiln_tree_t *f = kiln_querier__focus(tree, sts, ctx->arena);
        kiln_tree_destroy(tree);
        if (f == NULL)
            return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "profile too large");
        tree = f;
    }
    if (sts != NULL && sts->go_pgo != NULL && sts->go_pgo->keep_locations != 0) {
        kiln_tree_t *f = pgo_trim(tree, sts->go_pgo->keep_locations, ctx->arena);
        kiln_tree_destroy(tree);
        if (f == NULL)
            return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "profile too large");
        tree = f;
    }
    Google__V1__Profile *p =
        kiln_querier__pprof(tree, req->profile_typeid, start, req->end, ctx->arena);
    kiln_tree_destroy(tree);
    if (p == NULL)
        return kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "profile too large");
    *resp = &p->base;
    return KILN_OK;
}
