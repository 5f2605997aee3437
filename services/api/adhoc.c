/* SPDX-License-Identifier: Apache-2.0
 * adhoc: ad-hoc profile files in the object store, shown as flame graphs. */
#include "adhoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "block.h"
#include "clock.h"
#include "flamebearer.h"
#include "flamegraph.h"
#include "profile_file.h"
#include "tree.h"
#include "xmalloc.h"

#define MAX_NAME 200 /* bytes of a file name kept in an id */
#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576

struct kiln_adhoc {
    kiln_adhoc_config cfg;
};

/* One profile type of a decoded file: sample type ti of profile p. */
typedef struct ptype {
    const kiln_pprof_t *p;
    size_t ti;
    const char *id; /* name:sample_type:unit:period_type:period_unit */
} ptype;

typedef struct decoded {
    ptype *t;
    size_t n;
} decoded;

kiln_adhoc_t *kiln_adhoc_create(const kiln_adhoc_config *cfg)
{
    kiln_adhoc_t *ad = kiln_xcalloc(1, sizeof(*ad));
    ad->cfg = *cfg;
    return ad;
}

void kiln_adhoc_destroy(kiln_adhoc_t *ad)
{
    free(ad);
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* The file name as ids keep it: other characters become '_' (upstream's
 * rule), at most MAX_NAME bytes, never empty nor "." or "..". */
static char *clean_name(kiln_arena_t *a, const char *name)
{
    size_t n = strlen(name);
    if (n > MAX_NAME)
        n = MAX_NAME;
    char *s = kiln_arena_strndup(a, n ? name : "profile", n ? n : 7);
    for (char *c = s; s != NULL && *c != '\0'; c++) {
        if (!id_char(*c))
            *c = '_';
    }
    return s;
}

/* The upload time (ms) of an id "<ULID>-<name>", or -1 when it is not one. */
static int64_t id_time(const char *id)
{
    static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (strlen(id) < KILN_ULID_LEN + 2 || id[KILN_ULID_LEN] != '-')
        return -1;
    for (const char *c = id; *c != '\0'; c++) {
        if (!id_char(*c))
            return -1;
    }
    uint64_t ms = 0;
    for (int i = 0; i < 10; i++) {
        const char *d = strchr(crockford, id[i]);
        if (d == NULL || *d == '\0')
            return -1;
        ms = ms << 5 | (uint64_t)(d - crockford);
    }
    return ms >> 48 ? -1 : (int64_t)ms;
}

static kiln_status check_id(const char *id, kiln_err *err)
{
    if (id_time(id) < 0 || strlen(id) > KILN_ULID_LEN + 1 + MAX_NAME)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "id '%.80s' is invalid: expected <ULID>-<name> of [a-zA-Z0-9_-.]", id);
    return KILN_OK;
}

static void object_name(const char *tenant, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/adhoc/%s", tenant, id);
}

static kiln_status max_nodes_of(int64_t v, int64_t *out, kiln_err *err)
{
    if (v < 0 || v > MAX_NODES_LIMIT)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "max_nodes %lld: must be 0 to %d",
                            (long long)v, MAX_NODES_LIMIT);
    *out = v ? v : MAX_NODES_DEFAULT;
    return KILN_OK;
}

static const char *str(const kiln_pprof_t *p, int64_t i, kiln_arena_t *a)
{
    kiln_str_t s = kiln_pprof_str(p, i);
    return kiln_arena_strndup(a, s.ptr, s.len);
}

/* Decodes a file into its profile types. */
static kiln_status decode(kiln_adhoc_t *ad, const char *name, const uint8_t *file, size_t len,
                          kiln_arena_t *a, decoded *out, kiln_err *err)
{
    kiln_profile_file_limits lim = {ad->cfg.max_bytes, ad->cfg.inflight, ad->cfg.max_stack_depth};
    kiln_pprof_t *p;
    size_t n, k = 0, total = 0;
    kiln_status st = kiln_profile_file_decode(&lim, name, file, len, a, &p, &n, err);
    if (st == KILN_OUT_OF_RANGE) /* too large: no retry changes it */
        st = err->code = KILN_INVALID_ARGUMENT;
    if (st != KILN_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        total += p[i].n_sample_types;
    out->t = kiln_arena_calloc(a, total ? total : 1, sizeof(*out->t));
    for (size_t i = 0; out->t != NULL && i < n; i++) {
        for (size_t j = 0; j < p[i].n_sample_types; j++) {
            const kiln_pprof_value_type *vt = &p[i].sample_types[j];
            const char *id = kiln_arena_printf(
                a, "%s:%s:%s:%s:%s", name, str(&p[i], vt->type, a), str(&p[i], vt->unit, a),
                str(&p[i], p[i].period_type.type, a), str(&p[i], p[i].period_type.unit, a));
            out->t[k++] = (ptype){&p[i], j, id};
        }
    }
    if (out->t == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "profile too large");
    if (k == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "no profile types found in the file");
    out->n = k;
    return KILN_OK;
}

/* The index of the type named want (sample type or type id), else 0. */
static size_t pick(const decoded *d, const char *want, kiln_arena_t *a)
{
    for (size_t i = 0; want != NULL && *want != '\0' && i < d->n; i++) {
        const kiln_pprof_t *p = d->t[i].p;
        if (strcmp(d->t[i].id, want) == 0 ||
            strcmp(str(p, p->sample_types[d->t[i].ti].type, a), want) == 0)
            return i;
    }
    return 0;
}

/* The frame name of line l of a location (its address in hex when it has no
 * function, as upstream names unsymbolised frames). */
static kiln_str_t frame(const kiln_pprof_t *p, const kiln_pprof_location *loc, uint32_t l,
                        char hex[20])
{
    if (loc->n_lines > 0) {
        uint64_t f = p->lines[loc->line_off + l].function;
        if (f != KILN_PPROF_NONE && f < p->n_functions)
            return kiln_pprof_str(p, p->functions[f].name);
        kiln_str_t none = {"", 0};
        return none;
    }
    kiln_str_t s = {hex, (size_t)snprintf(hex, 20, "%llx", (unsigned long long)loc->address)};
    return s;
}

/* The call tree of one profile type: every stack from the root (the last
 * location, each location's lines outermost first). */
static kiln_tree_t *build_tree(const ptype *t)
{
    const kiln_pprof_t *p = t->p;
    kiln_tree_t *tree = kiln_tree_create();
    char hex[20];
    for (size_t s = 0; s < p->n_samples; s++) {
        const kiln_pprof_sample *sm = &p->samples[s];
        uint32_t node = KILN_TREE_ROOT;
        for (uint32_t j = sm->n_locs; j-- > 0;) {
            const kiln_pprof_location *loc = &p->locations[p->locs[sm->loc_off + j]];
            for (uint32_t l = loc->n_lines ? loc->n_lines : 1; l-- > 0;) {
                kiln_str_t name = frame(p, loc, l, hex);
                node = kiln_tree_child(tree, node, name.ptr, name.len);
            }
        }
        kiln_tree_add_self(tree, node, p->values[sm->value_off + t->ti]);
    }
    return tree;
}

static const char *sample_type(const ptype *t, kiln_arena_t *a)
{
    return str(t->p, t->p->sample_types[t->ti].type, a);
}

static const char *sample_unit(const ptype *t, kiln_arena_t *a)
{
    return str(t->p, t->p->sample_types[t->ti].unit, a);
}

/* The flamebearer JSON of one profile type (NUL-terminated, in a). */
static kiln_status flamebearer(const ptype *t, int64_t max_nodes, kiln_arena_t *a, char **out,
                               kiln_err *err)
{
    kiln_tree_t *tree = build_tree(t);
    Querier__V1__FlameGraph *fg = kiln_tree_flamegraph(tree, max_nodes, a);
    kiln_tree_destroy(tree);
    if (fg == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "flame graph too large");
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "{\"version\":1,");
    kiln_flamebearer_levels(&b, fg->names, fg->n_names, fg->levels, fg->n_levels, fg->total,
                            fg->max_self);
    kiln_buf_putc(&b, ',');
    kiln_flamebearer_metadata(&b, sample_type(t, a), sample_unit(t, a), "single");
    kiln_buf_puts(&b, ",\"timeline\":null,\"groups\":null,\"heatmap\":null}");
    *out = kiln_arena_strndup(a, b.ptr, b.len);
    kiln_buf_free(&b);
    return *out ? KILN_OK : kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "flame graph too large");
}

/* The answer of Upload and Get for a decoded file. */
static kiln_status answer(const decoded *d, const char *id, const char *name, int64_t at,
                          const char *want, int64_t max_nodes, kiln_arena_t *a,
                          Adhocprofiles__V1__AdHocProfilesGetResponse **out, kiln_err *err)
{
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = kiln_arena_alloc(a, sizeof(*r));
    char **types = kiln_arena_calloc(a, d->n, sizeof(*types));
    if (r == NULL || types == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    adhocprofiles__v1__ad_hoc_profiles_get_response__init(r);
    const ptype *t = &d->t[pick(d, want, a)];
    kiln_status st = flamebearer(t, max_nodes, a, &r->flamebearer_profile, err);
    if (st != KILN_OK)
        return st;
    for (size_t i = 0; i < d->n; i++)
        types[i] = (char *)d->t[i].id;
    r->id = (char *)id;
    r->name = (char *)name;
    r->uploaded_at = at;
    r->profile_type = (char *)sample_type(t, a);
    r->profile_types = types;
    r->n_profile_types = d->n;
    *out = r;
    return KILN_OK;
}

kiln_status kiln_adhoc_upload(kiln_adhoc_t *ad, const char *tenant, const char *name,
                              const uint8_t *file, size_t len, int64_t now_ms, int64_t max_nodes,
                              kiln_arena_t *a, Adhocprofiles__V1__AdHocProfilesGetResponse **out,
                              kiln_err *err)
{
    char *clean = clean_name(a, name ? name : "");
    decoded d;
    kiln_status st = max_nodes_of(max_nodes, &max_nodes, err);
    if (st == KILN_OK && clean == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st == KILN_OK && len > ad->cfg.max_bytes)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "profile payload size exceeds limit of %zu",
                          ad->cfg.max_bytes);
    if (st == KILN_OK)
        st = decode(ad, clean, file, len, a, &d, err);
    if (st != KILN_OK)
        return st;
    char ulid[KILN_ULID_LEN + 1];
    kiln_ulid(now_ms, ulid);
    char *id = kiln_arena_printf(a, "%s-%s", ulid, clean);
    char obj[KILN_TENANT_MAX + KILN_ULID_LEN + MAX_NAME + 16];
    object_name(tenant, id ? id : "", obj, sizeof(obj));
    st = id ? kiln_objstore_put(ad->cfg.store, obj, file, len, err)
            : kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st != KILN_OK)
        return st;
    return answer(&d, id, clean, now_ms, NULL, max_nodes, a, out, err);
}

/* Reads the file id of tenant into *data (arena) and decodes it. */
static kiln_status load(kiln_adhoc_t *ad, const char *tenant, const char *id, kiln_arena_t *a,
                        decoded *d, kiln_err *err)
{
    kiln_status st = check_id(id, err);
    if (st != KILN_OK)
        return st;
    char obj[KILN_TENANT_MAX + KILN_ULID_LEN + MAX_NAME + 16];
    object_name(tenant, id, obj, sizeof(obj));
    kiln_buf data;
    kiln_buf_init(&data, ad->cfg.max_bytes);
    st = kiln_objstore_get(ad->cfg.store, obj, &data, err);
    if (st == KILN_NOT_FOUND)
        st = kiln_err_set(err, KILN_NOT_FOUND, "profile %.240s not found", id);
    uint8_t *copy = st == KILN_OK ? kiln_arena_alloc(a, data.len ? data.len : 1) : NULL;
    if (st == KILN_OK && copy == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    size_t len = data.len;
    if (st == KILN_OK && len > 0)
        memcpy(copy, data.ptr, len);
    kiln_buf_free(&data);
    if (st == KILN_OK)
        st = decode(ad, id + KILN_ULID_LEN + 1, copy, len, a, d, err);
    return st;
}

kiln_status kiln_adhoc_get(kiln_adhoc_t *ad, const char *tenant, const char *id,
                           const char *profile_type, int64_t max_nodes, kiln_arena_t *a,
                           Adhocprofiles__V1__AdHocProfilesGetResponse **out, kiln_err *err)
{
    decoded d;
    kiln_status st = max_nodes_of(max_nodes, &max_nodes, err);
    if (st == KILN_OK)
        st = load(ad, tenant, id, a, &d, err);
    if (st != KILN_OK)
        return st;
    return answer(&d, id, id + KILN_ULID_LEN + 1, id_time(id), profile_type, max_nodes, a, out,
                  err);
}

kiln_status kiln_adhoc_render(kiln_adhoc_t *ad, const char *name, const uint8_t *file, size_t len,
                              const char *profile_type, int64_t max_nodes, kiln_arena_t *a,
                              Adhocprofiles__V1__AdHocProfilesGetResponse **out, kiln_err *err)
{
    decoded d;
    kiln_status st = max_nodes_of(max_nodes, &max_nodes, err);
    if (st == KILN_OK)
        st = decode(ad, name, file, len, a, &d, err);
    if (st != KILN_OK)
        return st;
    return answer(&d, "", name, 0, profile_type, max_nodes, a, out, err);
}

/* ---- List ---- */

typedef struct listing {
    kiln_arena_t *a;
    size_t prefix_len;
    Adhocprofiles__V1__AdHocProfilesProfileMetadata **m;
    size_t n, cap;
    bool oom;
} listing;

static void on_object(void *ctx, const char *name)
{
    listing *l = ctx;
    const char *id = name + l->prefix_len;
    int64_t at = id_time(id);
    if (at < 0 || strchr(id, '/') != NULL || l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void *m = kiln_arena_grow(l->a, l->m, l->cap * sizeof(*l->m), cap * sizeof(*l->m));
        if (m == NULL) {
            l->oom = true;
            return;
        }
        l->m = m;
        l->cap = cap;
    }
    Adhocprofiles__V1__AdHocProfilesProfileMetadata *e = kiln_arena_alloc(l->a, sizeof(*e));
    char *copy = kiln_arena_strndup(l->a, id, strlen(id));
    if (e == NULL || copy == NULL) {
        l->oom = true;
        return;
    }
    adhocprofiles__v1__ad_hoc_profiles_profile_metadata__init(e);
    e->id = copy;
    e->name = copy + KILN_ULID_LEN + 1;
    e->uploaded_at = at;
    l->m[l->n++] = e;
}

static int newest_first(const void *x, const void *y)
{
    const Adhocprofiles__V1__AdHocProfilesProfileMetadata *a = *(void *const *)x,
                                                          *b = *(void *const *)y;
    if (a->uploaded_at != b->uploaded_at)
        return a->uploaded_at < b->uploaded_at ? 1 : -1;
    return strcmp(a->id, b->id);
}

kiln_status kiln_adhoc_list(kiln_adhoc_t *ad, const char *tenant, kiln_arena_t *a,
                            Adhocprofiles__V1__AdHocProfilesListResponse **out, kiln_err *err)
{
    char prefix[KILN_TENANT_MAX + 16];
    snprintf(prefix, sizeof(prefix), "%s/adhoc/", tenant);
    listing l = {a, strlen(prefix), NULL, 0, 0, false};
    kiln_status st = kiln_objstore_list(ad->cfg.store, prefix, on_object, &l, err);
    if (st != KILN_OK)
        return st;
    Adhocprofiles__V1__AdHocProfilesListResponse *r = kiln_arena_alloc(a, sizeof(*r));
    if (r == NULL || l.oom)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    adhocprofiles__v1__ad_hoc_profiles_list_response__init(r);
    if (l.n > 0)
        qsort(l.m, l.n, sizeof(*l.m), newest_first);
    r->profiles = l.m;
    r->n_profiles = l.n;
    *out = r;
    return KILN_OK;
}

/* ---- Diff ---- */

static kiln_status diff_json(const ptype *lt, const ptype *rt, int64_t max_nodes, kiln_arena_t *a,
                             char **out, kiln_err *err)
{
    kiln_tree_t *left = build_tree(lt), *right = build_tree(rt);
    Querier__V1__FlameGraphDiff *d = NULL;
    if (kiln_tree_has_negative(left) || kiln_tree_has_negative(right))
        kiln_err_set(err, KILN_INVALID_ARGUMENT, "a profile has negative values");
    else
        d = kiln_tree_flamegraph_diff(left, right, max_nodes, a);
    kiln_tree_destroy(left);
    kiln_tree_destroy(right);
    if (d == NULL)
        return err->code != KILN_OK ? err->code
                                    : kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "diff too large");
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "{\"version\":1,");
    kiln_flamebearer_levels(&b, d->names, d->n_names, d->levels, d->n_levels, d->total,
                            d->max_self);
    kiln_buf_putc(&b, ',');
    kiln_flamebearer_metadata(&b, sample_type(lt, a), sample_unit(lt, a), "double");
    kiln_buf_puts(&b, ",\"timeline\":null,\"groups\":null,\"heatmap\":null");
    if (d->leftticks != 0) /* Go's omitempty */
        kiln_buf_printf(&b, ",\"leftTicks\":%lld", (long long)d->leftticks);
    if (d->rightticks != 0)
        kiln_buf_printf(&b, ",\"rightTicks\":%lld", (long long)d->rightticks);
    kiln_buf_putc(&b, '}');
    *out = kiln_arena_strndup(a, b.ptr, b.len);
    kiln_buf_free(&b);
    return *out ? KILN_OK : kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "diff too large");
}

/* The sample types (not type ids: the names differ per file) both share. */
static kiln_status common_types(const decoded *l, const decoded *r, kiln_arena_t *a,
                                Adhocprofiles__V1__AdHocProfilesDiffResponse *out, kiln_err *err)
{
    out->profile_types = kiln_arena_calloc(a, l->n, sizeof(char *));
    if (out->profile_types == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        const char *t = sample_type(&l->t[i], a);
        for (size_t j = 0; t != NULL && j < r->n; j++) {
            if (strcmp(t, sample_type(&r->t[j], a)) == 0) {
                out->profile_types[out->n_profile_types++] = (char *)t;
                break;
            }
        }
    }
    if (out->n_profile_types == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "no common profile types between left and right");
    return KILN_OK;
}

static kiln_status adhoc_diff(kiln_adhoc_t *ad, const char *tenant,
                              const Adhocprofiles__V1__AdHocProfilesDiffRequest *in,
                              kiln_arena_t *a, Adhocprofiles__V1__AdHocProfilesDiffResponse **out,
                              kiln_err *err)
{
    int64_t max_nodes = 0;
    decoded l, r;
    kiln_status st = max_nodes_of(in->max_nodes, &max_nodes, err);
    if (st == KILN_OK)
        st = load(ad, tenant, in->left_id, a, &l, err);
    if (st == KILN_OK)
        st = load(ad, tenant, in->right_id, a, &r, err);
    Adhocprofiles__V1__AdHocProfilesDiffResponse *resp = kiln_arena_alloc(a, sizeof(*resp));
    if (st == KILN_OK && resp == NULL)
        st = kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (st != KILN_OK)
        return st;
    adhocprofiles__v1__ad_hoc_profiles_diff_response__init(resp);
    st = common_types(&l, &r, a, resp, err);
    if (st != KILN_OK)
        return st;
    const char *want = *in->profile_type ? in->profile_type : resp->profile_types[0];
    const ptype *lt = &l.t[pick(&l, want, a)], *rt = &r.t[pick(&r, want, a)];
    if (strcmp(sample_type(lt, a), sample_type(rt, a)) != 0)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT,
                          "profile type mismatch: left uses '%.60s', right '%.60s'",
                          sample_type(lt, a), sample_type(rt, a));
    if (st == KILN_OK)
        st = diff_json(lt, rt, max_nodes, a, &resp->flamebearer_profile, err);
    if (st == KILN_OK)
        *out = resp;
    return st;
}

/* ---- RPC ---- */

/* Standard base64 (padding optional), as Go's StdEncoding reads it. */
static kiln_status base64_decode(const char *s, kiln_arena_t *a, uint8_t **out, size_t *len,
                                 kiln_err *err)
{
    size_t n = strlen(s), bad;
    uint8_t *o = kiln_arena_alloc(a, kiln_base64_max_decoded(n));
    if (o == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "out of memory");
    if (!kiln_base64_decode(s, n, o, len, &bad))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "failed to upload profile: illegal base64 data at input byte %zu", bad);
    *out = o;
    return KILN_OK;
}

static kiln_status on_upload(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage **resp)
{
    kiln_adhoc_t *ad = svc;
    const Adhocprofiles__V1__AdHocProfilesUploadRequest *in = (const void *)req;
    if (strlen(in->profile) > ad->cfg.max_bytes)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "profile payload size exceeds limit of %zu bytes", ad->cfg.max_bytes);
    uint8_t *file = NULL;
    size_t len = 0;
    kiln_status st = base64_decode(in->profile, ctx->arena, &file, &len, ctx->err);
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
    if (st == KILN_OK)
        st = kiln_adhoc_upload(ad, ctx->tenant, in->name, file, len, kiln_wall_ms(), in->max_nodes,
                               ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_get(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                          ProtobufCMessage **resp)
{
    const Adhocprofiles__V1__AdHocProfilesGetRequest *in = (const void *)req;
    Adhocprofiles__V1__AdHocProfilesGetResponse *r;
    kiln_status st = kiln_adhoc_get(svc, ctx->tenant, in->id, in->profile_type, in->max_nodes,
                                    ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_list(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp)
{
    (void)req;
    Adhocprofiles__V1__AdHocProfilesListResponse *r;
    kiln_status st = kiln_adhoc_list(svc, ctx->tenant, ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

static kiln_status on_diff(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp)
{
    Adhocprofiles__V1__AdHocProfilesDiffResponse *r;
    kiln_status st = adhoc_diff(svc, ctx->tenant, (const void *)req, ctx->arena, &r, ctx->err);
    if (st == KILN_OK)
        *resp = &r->base;
    return st;
}

void kiln_adhoc_register(kiln_adhoc_t *ad, kiln_rpc_registry_t *rpc)
{
#define ADHOC(m) "/adhocprofiles.v1.AdHocProfileService/" m
    const kiln_rpc_method m[] = {
        {ADHOC("Upload"), &adhocprofiles__v1__ad_hoc_profiles_upload_request__descriptor,
         &adhocprofiles__v1__ad_hoc_profiles_get_response__descriptor, on_upload, ad,
         KILN_RPC_PUBLIC, NULL},
        {ADHOC("Get"), &adhocprofiles__v1__ad_hoc_profiles_get_request__descriptor,
         &adhocprofiles__v1__ad_hoc_profiles_get_response__descriptor, on_get, ad, KILN_RPC_PUBLIC,
         NULL},
        {ADHOC("List"), &adhocprofiles__v1__ad_hoc_profiles_list_request__descriptor,
         &adhocprofiles__v1__ad_hoc_profiles_list_response__descriptor, on_list, ad,
         KILN_RPC_PUBLIC, NULL},
        {ADHOC("Diff"), &adhocprofiles__v1__ad_hoc_profiles_diff_request__descriptor,
         &adhocprofiles__v1__ad_hoc_profiles_diff_response__descriptor, on_diff, ad,
         KILN_RPC_PUBLIC, NULL},
    };
#undef ADHOC
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        kiln_rpc_register(rpc, &m[i]);
}
