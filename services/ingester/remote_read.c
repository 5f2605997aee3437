/* SPDX-License-Identifier: Apache-2.0
 * remote_read: the remote store's reads (remote.h) over the ring (heads of
 * every ingester, over ingester.v1) and over the shared store's blocks,
 * counting each profile once by its key. */
#include "remote_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "head.h"
#include "ingester/v1/ingester.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "tenants.h"
#include "xmalloc.h"

#define M_SERIES "/ingester.v1.IngesterService/Series"
#define M_PROFILES "/ingester.v1.IngesterService/Profiles"
#define M_MERGE "/ingester.v1.IngesterService/MergeTree"
#define M_STATS "/ingester.v1.IngesterService/Stats"

/* ---- fan-out ------------------------------------------------------------------ */

/* One request sent to every ingester of the ring; calls[i] went to
 * member i. Failed calls have resp NULL. */
typedef struct fanout {
    kiln_ring_snapshot_t *snap;
    const kiln_ring_member *m;
    kiln_grpc_call *calls;
    size_t n;
    uint8_t *req;
} fanout;

static void fanout_free(fanout *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->calls[i].resp);
    free(f->calls);
    free(f->req);
    if (f->snap != NULL)
        kiln_ring_release(f->snap);
    memset(f, 0, sizeof(*f));
}

/* Fails when more ingesters failed than rf/2: an acknowledged write is on
 * a quorum (rf/2 + 1) of its replicas, so with at most rf/2 of them down
 * every acknowledged profile still has a replica that answered. A ring of
 * fewer than rf ingesters counts the ones it lacks as down: those evicted
 * after dying may have held the only replicas that answered a write. */
static kiln_status check_failures(const kiln_remote_t *r, const fanout *f, kiln_err *err)
{
    size_t failed = 0, missing = f->n < r->cfg.rf ? r->cfg.rf - f->n : 0;
    for (size_t i = 0; i < f->n; i++)
        failed += f->calls[i].err.code != KILN_OK;
    if (failed + missing <= r->cfg.rf / 2)
        return KILN_OK;
    char msg[KILN_ERR_MSG_MAX] = "";
    size_t len = 0;
    if (missing > 0)
        len += (size_t)snprintf(msg, sizeof(msg),
                                "; the ring has %zu ingesters, %zu short of the "
                                "replication factor",
                                f->n, missing);
    for (size_t i = 0; i < f->n && len < sizeof(msg); i++) {
        if (f->calls[i].err.code != KILN_OK)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s: %s", f->m[i].id,
                                    f->calls[i].err.msg);
    }
    return kiln_err_set(err, KILN_UNAVAILABLE,
                        "%zu of %zu ingesters did not answer (replication factor %zu tolerates "
                        "%zu)%s",
                        failed + missing, f->n + missing, r->cfg.rf, r->cfg.rf / 2, msg);
}

/* How many members may fail (not answered, or not asked) before a read is
 * short of a replica of some acknowledged write. */
static size_t fanout_tolerance(const kiln_remote_t *r, const fanout *f)
{
    size_t missing = f->n < r->cfg.rf ? r->cfg.rf - f->n : 0;
    return r->cfg.rf / 2 > missing ? r->cfg.rf / 2 - missing : 0;
}

/* Which members are asked and which waited on. A suspect ingester (it
 * timed out and has not answered since) is asked without being waited on
 * (its answer is used if it comes before the others', and tells the client
 * it is back); a saturated one (too many calls to it running) is not
 * asked. Both count as not answering, so when there are more of them than
 * the read tolerates every one is asked and waited on. */
static void plan_fanout(const kiln_remote_t *r, const fanout *f, bool *ask, bool *wait)
{
    size_t unsure = 0;
    for (size_t i = 0; i < f->n; i++) {
        kiln_grpc_peer h = kiln_grpc_client_peer(r->cfg.grpc, f->m[i].addr);
        ask[i] = h != KILN_GRPC_PEER_SATURATED;
        wait[i] = h == KILN_GRPC_PEER_OK;
        unsure += !wait[i];
    }
    if (unsure > fanout_tolerance(r, f)) {
        for (size_t i = 0; i < f->n; i++)
            ask[i] = wait[i] = true;
    }
}

/* Whether the fan-out can stop: every member waited on has ended, and
 * those that failed or are not waited on are few enough; or nothing is
 * running any more. */
static bool fanout_done(const kiln_remote_t *r, const fanout *f, const bool *wait,
                        const bool *running)
{
    size_t failed = 0, still = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (running[i] && wait[i])
            return false;
        still += running[i];
        failed += running[i] || f->calls[i].err.code != KILN_OK;
    }
    return still == 0 || failed <= fanout_tolerance(r, f);
}

/* Runs the fan-out's calls as planned; calls not asked or not waited for
 * end with an error. */
static void run_fanout(kiln_remote_t *r, fanout *f)
{
    bool *ask = kiln_xcalloc(f->n + 1, sizeof(bool)), *wait = kiln_xcalloc(f->n + 1, sizeof(bool));
    bool *running = kiln_xcalloc(f->n + 1, sizeof(bool));
    kiln_grpc_call *live = kiln_xcalloc(f->n + 1, sizeof(*live));
    size_t *live_of = kiln_xcalloc(f->n + 1, sizeof(size_t)), nl = 0;
    plan_fanout(r, f, ask, wait);
    for (size_t i = 0; i < f->n; i++) {
        if (!ask[i]) {
            kiln_err_set(&f->calls[i].err, KILN_UNAVAILABLE,
                         "%s: timed out before and not answered since", f->m[i].addr);
            continue;
        }
        running[i] = true;
        live_of[nl] = i;
        live[nl++] = f->calls[i];
    }
    kiln_grpc_batch_t *b =
        kiln_grpc_batch_start(r->cfg.grpc, live, nl, kiln_cancel_timeout_ms(r->cfg.timeout_ms));
    while (!fanout_done(r, f, wait, running)) {
        size_t k = kiln_grpc_batch_next(b);
        if (k == KILN_GRPC_BATCH_DONE)
            break;
        running[live_of[k]] = false;
        f->calls[live_of[k]] = live[k];
    }
    kiln_grpc_batch_end(b);
    for (size_t k = 0; k < nl; k++) {
        if (running[live_of[k]])
            f->calls[live_of[k]] = live[k]; /* "not waited for", no response */
    }
    free(live_of);
    free(live);
    free(running);
    free(wait);
    free(ask);
}

/* Calls method with the packed req on every ingester of the ring (see
 * run_fanout for those that do not answer in time). */
static kiln_status fan_out(kiln_remote_t *r, const char *tenants, const char *method,
                           const ProtobufCMessage *req, fanout *f, kiln_err *err)
{
    memset(f, 0, sizeof(*f));
    f->snap = kiln_ring_acquire(r->cfg.ring);
    f->n = kiln_ring_members(f->snap, &f->m);
    size_t len = protobuf_c_message_get_packed_size(req);
    f->req = kiln_xmalloc(len + 1);
    protobuf_c_message_pack(req, f->req);
    f->calls = kiln_xcalloc(f->n + 1, sizeof(*f->calls));
    for (size_t i = 0; i < f->n; i++)
        f->calls[i] = (kiln_grpc_call){.addr = f->m[i].addr,
                                       .method = method,
                                       .tenant = tenants,
                                       .req = f->req,
                                       .req_len = len};
    run_fanout(r, f);
    kiln_status st = check_failures(r, f, err);
    if (st != KILN_OK)
        fanout_free(f);
    return st;
}

/* ---- blocks ------------------------------------------------------------------- */

/* Brings the block set up to date (after the ingesters answered: a head
 * they dropped since is in a block by then) and holds it for the query. */
static kiln_status hold_blocks(kiln_remote_t *r, kiln_err *err)
{
    pthread_rwlock_wrlock(&r->sync);
    kiln_status st = r->blocks != NULL ? kiln_blockset_sync(r->blocks, err) : KILN_OK;
    pthread_rwlock_unlock(&r->sync);
    if (st == KILN_OK)
        pthread_rwlock_rdlock(&r->sync);
    return st;
}

static void release_blocks(kiln_remote_t *r)
{
    pthread_rwlock_unlock(&r->sync);
}

typedef struct heads {
    kiln_head_t **h;
    size_t n, cap;
} heads;

static void add_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    heads *hs = ctx;
    if (hs->n == hs->cap) {
        hs->cap = hs->cap ? hs->cap * 2 : 16;
        hs->h = kiln_xrealloc(hs->h, hs->cap * sizeof(*hs->h));
    }
    hs->h[hs->n++] = kiln_block_head(b);
}

/* The heads of the blocks of every tenant in "a|b" meeting the range;
 * valid while the blocks are held. */
static heads block_heads(kiln_remote_t *r, const char *tenants, int64_t start_ms, int64_t end_ms)
{
    heads hs = {NULL, 0, 0};
    char name[KILN_TENANT_MAX + 1];
    for (const char *p = tenants; r->blocks != NULL && kiln_tenants_next(&p, name);)
        kiln_blockset_each(r->blocks, name, start_ms, end_ms, add_block, &hs);
    return hs;
}

/* ---- keys ----------------------------------------------------------------------- */

/* Profile key -> the source it is read from (open addressing; value 0 =
 * empty slot, else source + 1). */
typedef struct keymap {
    uint64_t *key;
    uint32_t *src;
    size_t cap, n;
} keymap;

static void keymap_free(keymap *km)
{
    free(km->key);
    free(km->src);
}

/* Gives key to src unless a source has it already; returns true when
 * src got it. */
static bool keymap_claim(keymap *km, uint64_t key, uint32_t src)
{
    if (2 * (km->n + 1) > km->cap) {
        keymap old = *km;
        km->cap = old.cap ? old.cap * 2 : 1024;
        km->key = kiln_xcalloc(km->cap, sizeof(uint64_t));
        km->src = kiln_xcalloc(km->cap, sizeof(uint32_t));
        km->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.src[i] != 0)
                keymap_claim(km, old.key[i], old.src[i] - 1);
        }
        keymap_free(&old);
    }
    size_t mask = km->cap - 1;
    for (size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL) & mask;; i = (i + 1) & mask) {
        if (km->src[i] == 0) {
            km->key[i] = key;
            km->src[i] = src + 1;
            km->n++;
            return true;
        }
        if (km->key[i] == key)
            return false;
    }
}

/* A source's profile keys, in the order it listed them. */
typedef struct keylist {
    uint64_t *k;
    size_t n, cap;
} keylist;

static void keylist_add(keylist *l, uint64_t k)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->k = kiln_xrealloc(l->k, l->cap * sizeof(uint64_t));
    }
    l->k[l->n++] = k;
}

/* ---- series ------------------------------------------------------------------- */

/* Labels of a wire label set, borrowing its strings; NULL-safe for n = 0. */
static kiln_label_t *wire_labels(const Types__V1__Labels *set)
{
    kiln_label_t *l = kiln_xmalloc((set->n_labels + 1) * sizeof(*l));
    for (size_t i = 0; i < set->n_labels; i++)
        l[i] = (kiln_label_t){set->labels[i]->name, set->labels[i]->value};
    return l;
}

static char *format_selector(const kiln_selector_t *sel)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    if (sel != NULL)
        kiln_selector_format(sel, &b);
    else
        kiln_buf_puts(&b, "{}");
    kiln_buf_putc(&b, '\0');
    return kiln_buf_detach(&b, NULL);
}

/* Reads every block of the tenants meeting f's range with f into v, while
 * the blocks are held; the first failing block's status. */
static kiln_status read_blocks(kiln_remote_t *r, const char *tenants, const kiln_read_filter *f,
                               const kiln_read_visitor *v, kiln_err *err)
{
    kiln_status st = hold_blocks(r, err);
    if (st != KILN_OK)
        return st;
    heads hs = block_heads(r, tenants, f->start_ms, f->end_ms);
    for (size_t i = 0; i < hs.n && st == KILN_OK; i++)
        st = kiln_head_read(hs.h[i], f, v, err);
    release_blocks(r);
    free(hs.h);
    return st;
}

static kiln_status read_series(kiln_remote_t *r, const char *tenants, const kiln_read_filter *f,
                               const kiln_read_visitor *v, kiln_err *err)
{
    char *text = format_selector(f->sel);
    Querier__V1__SeriesRequest req = QUERIER__V1__SERIES_REQUEST__INIT;
    req.matchers = &text;
    req.n_matchers = 1;
    req.start = f->start_ms;
    req.end = f->end_ms;
    fanout fo;
    kiln_status st = fan_out(r, tenants, M_SERIES, &req.base, &fo, err);
    free(text);
    if (st != KILN_OK)
        return st;
    for (size_t i = 0; i < fo.n; i++) {
        Querier__V1__SeriesResponse *resp = fo.calls[i].resp == NULL
                                                ? NULL
                                                : querier__v1__series_response__unpack(
                                                      NULL, fo.calls[i].resp_len, fo.calls[i].resp);
        for (size_t j = 0; resp != NULL && j < resp->n_labels_set; j++) {
            kiln_label_t *l = wire_labels(resp->labels_set[j]);
            v->series(v->ctx, l, resp->labels_set[j]->n_labels);
            free(l);
        }
        if (resp != NULL)
            querier__v1__series_response__free_unpacked(resp, NULL);
    }
    fanout_free(&fo);
    return read_blocks(r, tenants, f, v, err);
}

/* ---- profiles ------------------------------------------------------------------- */

typedef void (*profile_fn)(void *ctx, const kiln_read_profile *p);

/* A Select request for f's selector and range (selector text malloc'd in
 * req->label_selector). */
static void select_request(Ingester__V1__SelectRequest *req, const kiln_read_filter *f)
{
    ingester__v1__select_request__init(req);
    req->label_selector = format_selector(f->sel);
    req->start = f->start_ms;
    req->end = f->end_ms;
}

/* Calls fn for each profile of a ProfilesResponse (labels, time, total, id). */
static void each_wire_profile(const Ingester__V1__ProfilesResponse *p, profile_fn fn, void *ctx)
{
    kiln_label_t **l = kiln_xcalloc(p->n_series + 1, sizeof(*l));
    for (size_t i = 0; i < p->n_series; i++)
        l[i] = wire_labels(p->series[i]);
    size_t n = p->n_time_ms;
    if (p->n_series_index != n || p->n_total != n || p->n_id != n)
        n = 0; /* inconsistent answer: nothing of it is used */
    for (size_t i = 0; i < n; i++) {
        uint32_t s = p->series_index[i];
        if (s >= p->n_series)
            continue;
        kiln_read_profile rp = {.labels = l[s],
                                .n_labels = p->series[s]->n_labels,
                                .time_ms = p->time_ms[i],
                                .total = p->total[i],
                                .id = p->id[i]};
        fn(ctx, &rp);
    }
    for (size_t i = 0; i < p->n_series; i++)
        free(l[i]);
    free(l);
}

/* Calls fn for each profile of every answered Profiles call of fo. */
static void each_answer(const fanout *fo, profile_fn fn, void *ctx)
{
    for (size_t i = 0; i < fo->n; i++) {
        Ingester__V1__ProfilesResponse *p =
            fo->calls[i].resp == NULL ? NULL
                                      : ingester__v1__profiles_response__unpack(
                                            NULL, fo->calls[i].resp_len, fo->calls[i].resp);
        if (p != NULL) {
            each_wire_profile(p, fn, ctx);
            ingester__v1__profiles_response__free_unpacked(p, NULL);
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether the read's own key set (NULL = any) takes key. */
static bool key_wanted(const kiln_read_filter *f, uint64_t key)
{
    return f->keys == NULL || bsearch(&key, f->keys, f->n_keys, sizeof(uint64_t), cmp_u64) != NULL;
}

/* Profiles visiting: each wanted key passed on once. */
typedef struct once {
    keymap seen;
    const kiln_read_filter *f;
    const kiln_read_visitor *v;
} once;

static void profile_once(void *arg, const kiln_read_profile *p)
{
    once *o = arg;
    uint64_t key = kiln_profile_key(p->labels, p->n_labels, p->time_ms, p->id);
    if (key_wanted(o->f, key) && keymap_claim(&o->seen, key, 0))
        o->v->profile(o->v->ctx, p);
}

/* Every profile the ingesters and the blocks hold, each once: the
 * ingesters' answers first, then the blocks. */
static kiln_status read_profiles(kiln_remote_t *r, const char *tenants, const kiln_read_filter *f,
                                 const kiln_read_visitor *v, kiln_err *err)
{
    Ingester__V1__SelectRequest req;
    select_request(&req, f);
    fanout fo;
    kiln_status st = fan_out(r, tenants, M_PROFILES, &req.base, &fo, err);
    free(req.label_selector);
    if (st != KILN_OK)
        return st;
    once o = {{NULL, NULL, 0, 0}, f, v};
    each_answer(&fo, profile_once, &o);
    fanout_free(&fo);
    kiln_read_visitor bv = {.profile = profile_once, .ctx = &o};
    st = read_blocks(r, tenants, f, &bv, err);
    keymap_free(&o.seen);
    return st;
}

/* ---- merges ------------------------------------------------------------------- */

/* A source of a merge: a block (head set) or an ingester (call set). */
typedef struct source {
    kiln_head_t *head; /* a block; NULL for an ingester */
    size_t member;     /* an ingester: its index in the fan-out */
    keylist keys;      /* every key it holds in the range */
    keylist mine;      /* the keys it is to merge */
} source;

static void add_key(void *arg, const kiln_read_profile *p)
{
    keylist_add(arg, kiln_profile_key(p->labels, p->n_labels, p->time_ms, p->id));
}

/* Gives every wanted key to the first source that holds it (blocks come
 * first); each source's share ends sorted in `mine`. */
static void assign(source *src, size_t n, const kiln_read_filter *f)
{
    keymap km = {NULL, NULL, 0, 0};
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < src[s].keys.n; i++) {
            uint64_t k = src[s].keys.k[i];
            if (key_wanted(f, k) && keymap_claim(&km, k, (uint32_t)s))
                keylist_add(&src[s].mine, k);
        }
        if (src[s].mine.n > 1)
            qsort(src[s].mine.k, src[s].mine.n, sizeof(uint64_t), cmp_u64);
    }
    keymap_free(&km);
}

/* The filter of a source's share: the query's, with its keys unless it is
 * a block that merges everything it holds. An ingester is always given its
 * keys: its head takes pushes between the listing and the merge, and a
 * profile that arrived meanwhile may be another source's share (another
 * replica listed it), so "everything" would count it twice. */
static kiln_read_filter share_filter(const source *s, const kiln_read_filter *query)
{
    kiln_read_filter f = *query;
    f.keys = s->mine.k, f.n_keys = s->mine.n;
    if (s->head != NULL && s->mine.n == s->keys.n)
        f.keys = NULL, f.n_keys = 0;
    return f;
}

/* An ingester's merge call for its share (body malloc'd in *body). */
static kiln_grpc_call merge_call(const fanout *fo, const source *s,
                                 const Ingester__V1__SelectRequest *base, const char *tenants,
                                 uint8_t **body)
{
    Ingester__V1__SelectRequest req = *base;
    req.filter_keys = true;
    req.keys = s->mine.k;
    req.n_keys = s->mine.n;
    size_t len = ingester__v1__select_request__get_packed_size(&req);
    *body = kiln_xmalloc(len + 1);
    ingester__v1__select_request__pack(&req, *body);
    return (kiln_grpc_call){.addr = fo->m[s->member].addr,
                            .method = M_MERGE,
                            .tenant = tenants,
                            .req = *body,
                            .req_len = len};
}

/* Adds to moved the keys of s's share its ingester says it did not find
 * (its head was written as a block and dropped since the listing); a key
 * it was not given is ignored, as it may be another source's share. */
static void add_moved(const source *s, const Ingester__V1__TreeResponse *tr, keylist *moved)
{
    for (size_t i = 0; i < tr->n_missing; i++) {
        if (bsearch(&tr->missing[i], s->mine.k, s->mine.n, sizeof(uint64_t), cmp_u64) != NULL)
            keylist_add(moved, tr->missing[i]);
    }
}

/* The tree an ingester answered for its share s, added to t; the keys it
 * did not find, added to moved. */
static kiln_status add_answer(const kiln_grpc_call *c, const source *s, const char *id,
                              kiln_tree_t *t, keylist *moved, kiln_err *err)
{
    if (c->err.code != KILN_OK)
        return kiln_err_set(err, KILN_UNAVAILABLE, "ingester %s failed during the merge: %s", id,
                            c->err.msg);
    Ingester__V1__TreeResponse *tr =
        ingester__v1__tree_response__unpack(NULL, c->resp_len, c->resp);
    if (tr == NULL)
        return kiln_err_set(err, KILN_INTERNAL, "ingester %s sent an unreadable tree", id);
    kiln_status st = kiln_tree_merge_response(t, tr, err);
    add_moved(s, tr, moved);
    ingester__v1__tree_response__free_unpacked(tr, NULL);
    return st;
}

/* Phase 2 for the ingesters: each merges its share, the trees are added to
 * t, and the keys they did not find to moved. */
static kiln_status merge_remote(kiln_remote_t *r, const char *tenants, const fanout *fo,
                                source *src, size_t n, const Ingester__V1__SelectRequest *base,
                                kiln_tree_t *t, keylist *moved, kiln_err *err)
{
    kiln_grpc_call *calls = kiln_xcalloc(n + 1, sizeof(*calls));
    uint8_t **bodies = kiln_xcalloc(n + 1, sizeof(*bodies));
    for (size_t i = 0; i < n; i++)
        calls[i] = merge_call(fo, &src[i], base, tenants, &bodies[i]);
    kiln_grpc_client_run(r->cfg.grpc, calls, n, kiln_cancel_timeout_ms(r->cfg.timeout_ms));
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < n; i++) {
        if (st == KILN_OK)
            st = add_answer(&calls[i], &src[i], fo->m[src[i].member].id, t, moved, err);
        free(calls[i].resp);
        free(bodies[i]);
    }
    free(calls);
    free(bodies);
    return st;
}

static void free_sources(source *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(src[i].keys.k);
        free(src[i].mine.k);
    }
    free(src);
}

/* The sources of a merge: the held blocks first (their keys listed), then
 * every ingester that answered the listing. *n_blocks gets how many are
 * blocks; the first failing block's status. */
static kiln_status list_sources(const heads *hs, const fanout *fo, const kiln_read_filter *f,
                                source *src, size_t *n_sources, kiln_err *err)
{
    size_t n = 0;
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < hs->n && st == KILN_OK; i++, n++) {
        src[n].head = hs->h[i];
        kiln_read_filter all = {.sel = f->sel, .start_ms = f->start_ms, .end_ms = f->end_ms};
        kiln_read_visitor v = {.profile = add_key, .ctx = &src[n].keys};
        st = kiln_head_read(hs->h[i], &all, &v, err);
    }
    for (size_t i = 0; i < fo->n && st == KILN_OK; i++) {
        Ingester__V1__ProfilesResponse *p =
            fo->calls[i].resp == NULL ? NULL
                                      : ingester__v1__profiles_response__unpack(
                                            NULL, fo->calls[i].resp_len, fo->calls[i].resp);
        if (p == NULL)
            continue;
        src[n].member = i;
        each_wire_profile(p, add_key, &src[n++].keys);
        ingester__v1__profiles_response__free_unpacked(p, NULL);
    }
    *n_sources = n;
    return st;
}

/* Merges each block's share into t (blocks held). */
static kiln_status merge_blocks(source *src, size_t nb, const kiln_read_filter *f, kiln_tree_t *t,
                                kiln_err *err)
{
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < nb && st == KILN_OK; i++) {
        kiln_read_filter share = share_filter(&src[i], f);
        kiln_read_visitor v = {.tree = t};
        if (src[i].mine.n != 0)
            st = kiln_head_read(src[i].head, &share, &v, err);
    }
    return st;
}

/* Drops the ingesters with nothing to merge (they are not asked again);
 * returns how many are left, moved to the front of src. */
static size_t busy_ingesters(source *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i].mine.n != 0)
            src[k++] = src[i];
        else
            free(src[i].keys.k), free(src[i].mine.k);
    }
    return k;
}

/* Sorts l and drops its repeats. */
static void keylist_unique(keylist *l)
{
    if (l->n > 1)
        qsort(l->k, l->n, sizeof(uint64_t), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (k == 0 || l->k[k - 1] != l->k[i])
            l->k[k++] = l->k[i];
    }
    l->n = k;
}

/* Merges into t the profiles whose ingester no longer had them for the
 * merge (moved: written as a block and dropped after the listing). The
 * blocks are re-listed, so the block written meanwhile is among them, and
 * each key is merged once, from the first block that holds it: no source
 * merged it before (phase 1 gave it to that ingester alone). UNAVAILABLE,
 * merging nothing, when some key is in no block (yet): never a short
 * answer called whole. */
static kiln_status merge_moved(kiln_remote_t *r, const char *tenants, const kiln_read_filter *f,
                               keylist *moved, kiln_tree_t *t, kiln_err *err)
{
    keylist_unique(moved);
    kiln_status st = hold_blocks(r, err);
    if (st != KILN_OK)
        return st;
    heads hs = block_heads(r, tenants, f->start_ms, f->end_ms);
    source *src = kiln_xcalloc(hs.n + 1, sizeof(*src));
    fanout none = {0};
    size_t n = 0, found = 0;
    st = list_sources(&hs, &none, f, src, &n, err);
    kiln_read_filter want = *f;
    want.keys = moved->k, want.n_keys = moved->n;
    if (st == KILN_OK)
        assign(src, n, &want);
    for (size_t i = 0; i < n; i++)
        found += src[i].mine.n;
    if (st == KILN_OK && found < moved->n)
        st = kiln_err_set(err, KILN_UNAVAILABLE,
                          "%zu of the profiles this query listed moved from an ingester's head "
                          "to a block during the query and are in no block yet; a retry will "
                          "see them",
                          moved->n - found);
    if (st == KILN_OK)
        st = merge_blocks(src, n, f, t, err);
    release_blocks(r);
    free_sources(src, n);
    free(hs.h);
    return st;
}

/* A merge in two phases: the ingesters list their profiles' keys and the
 * blocks are re-listed, each key is given to one source, and each source
 * merges its share; then the keys an ingester no longer held are merged
 * from the blocks (merge_moved). */
static kiln_status read_merge(kiln_remote_t *r, const char *tenants, const kiln_read_filter *f,
                              kiln_tree_t *t, kiln_err *err)
{
    Ingester__V1__SelectRequest req;
    select_request(&req, f);
    req.spans = (uint64_t *)f->spans;
    req.n_spans = f->spans ? f->n_spans : 0;
    req.ids = (uint64_t *)f->ids;
    req.n_ids = f->ids ? f->n_ids : 0;
    size_t nt = f->traces != NULL ? f->n_traces : 0;
    uint8_t *tb = kiln_xmalloc(nt * 16 + 1);
    req.traces = kiln_xcalloc(nt + 1, sizeof(*req.traces));
    req.n_traces = nt;
    for (size_t i = 0; i < nt; i++) {
        kiln_trace_id_put(&f->traces[i], tb + 16 * i);
        req.traces[i] = (ProtobufCBinaryData){16, tb + 16 * i};
    }
    fanout fo;
    kiln_status st = fan_out(r, tenants, M_PROFILES, &req.base, &fo, err);
    if (st == KILN_OK)
        st = hold_blocks(r, err);
    if (st != KILN_OK) {
        if (fo.calls != NULL)
            fanout_free(&fo);
        free(req.label_selector);
        free(req.traces);
        free(tb);
        return st;
    }
    heads hs = block_heads(r, tenants, f->start_ms, f->end_ms);
    source *src = kiln_xcalloc(hs.n + fo.n + 1, sizeof(*src));
    size_t n = 0, nb = hs.n, nr = 0;
    keylist moved = {NULL, 0, 0};
    st = list_sources(&hs, &fo, f, src, &n, err);
    if (st == KILN_OK) {
        assign(src, n, f);
        st = merge_blocks(src, nb, f, t, err);
    }
    release_blocks(r);
    if (st == KILN_OK) {
        nr = busy_ingesters(src + nb, n - nb);
        st = merge_remote(r, tenants, &fo, src + nb, nr, &req, t, &moved, err);
        if (st == KILN_OK && moved.n != 0)
            st = merge_moved(r, tenants, f, &moved, t, err);
    } else {
        nr = n > nb ? n - nb : 0;
    }
    free_sources(src, nb + nr);
    free(moved.k);
    free(hs.h);
    fanout_free(&fo);
    free(req.label_selector);
    free(req.traces);
    free(tb);
    return st;
}

kiln_status kiln_remote__read(void *self, const char *tenants, const kiln_read_filter *f,
                              const kiln_read_visitor *v, kiln_err *err)
{
    kiln_remote_t *r = self;
    if (v->series != NULL)
        return read_series(r, tenants, f, v, err);
    if (v->profile != NULL)
        return read_profiles(r, tenants, f, v, err);
    if (v->tree != NULL)
        return read_merge(r, tenants, f, v->tree, err);
    if (v->span != NULL) /* ProfilesResponse carries no spans yet */
        return kiln_err_set(err, KILN_UNIMPLEMENTED,
                            "span exemplars and span heatmaps are not served in a cluster yet");
    return KILN_OK;
}

/* ---- stats ---------------------------------------------------------------------- */

static void add_stats(kiln_head_stats_t *o, int64_t profiles, int64_t min_ms, int64_t max_ms)
{
    if (profiles == 0)
        return;
    o->profiles += (size_t)profiles;
    if (o->min_time_ms == 0 || min_ms < o->min_time_ms)
        o->min_time_ms = min_ms;
    if (max_ms > o->max_time_ms)
        o->max_time_ms = max_ms;
}

kiln_status kiln_remote__stats(void *self, const char *tenants, kiln_head_stats_t *out,
                               kiln_err *err)
{
    kiln_remote_t *r = self;
    memset(out, 0, sizeof(*out));
    Ingester__V1__StatsRequest req = INGESTER__V1__STATS_REQUEST__INIT;
    fanout fo;
    kiln_status st = fan_out(r, tenants, M_STATS, &req.base, &fo, err);
    if (st != KILN_OK)
        return st;
    for (size_t i = 0; i < fo.n; i++) {
        Ingester__V1__StatsResponse *s = fo.calls[i].resp == NULL
                                             ? NULL
                                             : ingester__v1__stats_response__unpack(
                                                   NULL, fo.calls[i].resp_len, fo.calls[i].resp);
        if (s != NULL) {
            add_stats(out, s->profiles, s->min_time_ms, s->max_time_ms);
            ingester__v1__stats_response__free_unpacked(s, NULL);
        }
    }
    fanout_free(&fo);
    st = hold_blocks(r, err);
    if (st != KILN_OK)
        return st;
    heads hs = block_heads(r, tenants, 0, 0);
    for (size_t i = 0; i < hs.n; i++) {
        kiln_head_stats_t s;
        kiln_head_stats(hs.h[i], &s);
        add_stats(out, (int64_t)s.profiles, s.min_time_ms, s.max_time_ms);
    }
    release_blocks(r);
    free(hs.h);
    return KILN_OK;
}
