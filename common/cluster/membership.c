/* SPDX-License-Identifier: Apache-2.0
 * membership: the member table of the cluster, kept in a JetStream KV
 * bucket and mirrored here by one worker thread (heartbeats, the bucket
 * watcher, reconciliation, ring rebuilds). nats.c callbacks only flip flags. */
#include "membership.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "log.h"
#include "member_json.h"
#include "nats_security.h"
#include "xmalloc.h"

#define MOD "membership"
#define ROLE_MAX KILN_MEMBER_ROLE_MAX
#define KEY_MAX (ROLE_MAX + 64 + 1)
#define OVERRIDES_KEY "overrides"
#define MAX_URLS 16
/* Longest the worker sleeps between looks at its flags: bounds how late a
 * set_state, a join or a stop is acted on. */
#define POLL_MS 50
#define CLOSE_WAIT_NS 5000000000LL

/* One member as last read from the bucket. */
typedef struct entry {
    char key[KEY_MAX];
    char role[ROLE_MAX];
    kiln_ring_member m;
    int64_t seen_ns; /* monotonic: when the bucket last gave us this key */
    bool live;       /* at the last rebuild */
    bool held;       /* live when NATS came back: kept through the grace period */
} entry;

struct kiln_membership {
    char *urls[MAX_URLS];
    int n_urls;
    char urls_log[512]; /* the URLs with their passwords masked, for messages */
    bool tls;           /* TLS asked of every connection */
    char bucket[64];
    int64_t hb_ns, timeout_ns;
    const kiln_clock *clock;     /* borrowed: kiln_system_clock unless injected */
    kiln_ring_t *ring;           /* borrowed; may be NULL */
    kiln_overrides_t *overrides; /* borrowed; may be NULL */

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;            /* worker only */
    kvWatcher *w;         /* worker only */
    int64_t rewatch_ns;   /* worker only: replace w at this time (0 = no need) */
    int64_t connected_ns; /* worker only: when the last setup succeeded */
    kvStore *kv;          /* replaced by the worker under kv_mu; callers use it under kv_mu */
    pthread_mutex_t kv_mu;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool stopping, closed;
    bool need_setup;  /* (re)connected: bind the bucket, watch, put self */
    bool ever_set_up; /* a later setup is a reconnection */
    bool joined, self_dirty;
    char self_role[ROLE_MAX], self_key[KEY_MAX];
    kiln_ring_member self;
    entry *e;
    size_t n, cap;
    char *overrides_text; /* the last overrides seen (applied or refused) */
    size_t overrides_len;
    bool overrides_seen;
    int64_t grace_until_ns; /* monotonic; see begin_grace */
    int64_t last_put_ns;    /* monotonic: our last heartbeat that NATS took */
    atomic_bool connected;

    pthread_t thread;
};

/* Membership time (heartbeats, ages, grace) reads the injected clock, so
 * tests drive it; poll and close waits stay on the system clock. */
static int64_t mono_ns(const kiln_membership_t *m)
{
    return m->clock->mono_ns(m->clock->ctx);
}

static int64_t wall_ms(const kiln_membership_t *m)
{
    return m->clock->wall_ns(m->clock->ctx) / 1000000;
}

static const char *nats_text(natsStatus s)
{
    return kiln_nats_reason(s);
}

/* ---- keys and values ---------------------------------------------------- */

/* KV keys allow [A-Za-z0-9_-/=], with '.' only between tokens: anything
 * else in a role or id (dots included, so "<role>.<id>" has exactly two
 * tokens) becomes '_'. Distinct ids that differ only there would collide;
 * ids are host names or pod names, which do not. */
static void sanitize_into(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '/' || c == '=';
        out[i] = ok ? c : '_';
    }
    if (i == 0 && cap > 1)
        out[i++] = '_';
    out[i] = '\0';
}

static void member_key(char *out, const char *role, const char *id)
{
    char r[ROLE_MAX], i[64];
    sanitize_into(r, sizeof(r), role);
    sanitize_into(i, sizeof(i), id);
    snprintf(out, KEY_MAX, "%s.%s", r, i);
}

/* Parses an entry value; false (logged) when it is not one of ours. */
static bool decode_member(const char *key, const void *val, size_t len, char *role,
                          kiln_ring_member *m)
{
    kiln_err err;
    if (kiln_member_json_decode(val, len, role, m, &err))
        return true;
    KILN_LOG_WARN(MOD, "ignoring key=%s: %s", key, err.msg);
    return false;
}

/* ---- the local table ---------------------------------------------------- */

static entry *find_entry(kiln_membership_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
    }
    return NULL;
}

static void remove_entry(kiln_membership_t *m, entry *e)
{
    *e = m->e[--m->n];
}

static void upsert_entry(kiln_membership_t *m, const char *key, const char *role,
                         const kiln_ring_member *mem)
{
    entry *e = find_entry(m, key);
    if (e == NULL) {
        KILN_GROW(m->e, m->cap, m->n + 1);
        e = &m->e[m->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->key, sizeof(e->key), "%s", key);
    }
    snprintf(e->role, sizeof(e->role), "%s", role);
    e->m = *mem;
    e->seen_ns = mono_ns(m);
}

/* Right after NATS comes back every heartbeat in the bucket is as old as
 * the outage, and a bucket that did not survive a server restart is empty
 * until each member has put itself again (each does so as soon as its own
 * connection is back, after its own reconnect wait and jitter). Evicting
 * then would drop most of the ring everywhere at once and reshuffle every
 * series, only to add the members back a moment later. So for one timeout
 * after a reconnection the members that were live before it are kept even
 * when their entries look stale or missing; anyone who did not heartbeat
 * again by then is evicted as usual. Nobody is resurrected: only members
 * live at the moment of the outage are held. */
static void begin_grace(kiln_membership_t *m)
{
    m->grace_until_ns = mono_ns(m) + m->timeout_ns;
    for (size_t i = 0; i < m->n; i++)
        m->e[i].held = m->e[i].live;
}

/* Rebuilds the ring and the per-role liveness from the table; mu held. */
static void rebuild_locked(kiln_membership_t *m)
{
    /* Disconnected, or reconnected but not yet set up (the grace period
     * starts then, and every heartbeat looks as old as the outage): the
     * cluster serves on its last known ring meanwhile. */
    if (!atomic_load(&m->connected) || m->need_setup)
        return;
    int64_t now = wall_ms(m), timeout_ms = m->timeout_ns / 1000000;
    bool grace = mono_ns(m) < m->grace_until_ns;
    kiln_ring_member *ring = kiln_xmalloc((m->n + 1) * sizeof(*ring));
    size_t n_ring = 0, n_dist = 0;
    for (size_t i = 0; i < m->n; i++) {
        entry *e = &m->e[i];
        /* Ages use the writers' wall clocks: hosts must agree to well
         * within the timeout (NTP does). */
        e->live = now - e->m.heartbeat_ms <= timeout_ms || (grace && e->held);
        if (!e->live)
            continue;
        if (strcmp(e->role, "ingester") == 0)
            ring[n_ring++] = e->m;
        n_dist += strcmp(e->role, "distributor") == 0;
    }
    if (m->ring != NULL)
        kiln_ring_set(m->ring, ring, n_ring);
    if (m->overrides != NULL)
        kiln_overrides_set_shards(m->overrides, n_dist);
    free(ring);
}

static void rebuild(kiln_membership_t *m)
{
    pthread_mutex_lock(&m->mu);
    rebuild_locked(m);
    pthread_mutex_unlock(&m->mu);
}

/* ---- applying what the bucket says -------------------------------------- */

/* Applies the overrides when their text changed. Text, not revision:
 * revisions start again from 1 in a bucket re-created after a server lost
 * its store, and the watcher and reconcile may both bring one revision. */
static void apply_overrides(kiln_membership_t *m, kvEntry *e)
{
    uint64_t rev = kvEntry_Revision(e);
    const char *text = kvEntry_Value(e);
    size_t len = (size_t)kvEntry_ValueLen(e);
    if (kvEntry_Operation(e) != kvOp_Put)
        return; /* a deleted "overrides" key leaves the last ones in force */
    pthread_mutex_lock(&m->mu);
    bool fresh = !m->overrides_seen || len != m->overrides_len ||
                 (len > 0 && memcmp(text, m->overrides_text, len) != 0);
    if (fresh) {
        free(m->overrides_text);
        m->overrides_text = kiln_xstrndup(text != NULL ? text : "", len);
        m->overrides_len = len;
    }
    m->overrides_seen = true;
    pthread_mutex_unlock(&m->mu);
    if (!fresh || m->overrides == NULL)
        return;
    kiln_err err;
    kiln_status st = kiln_overrides_load_text(m->overrides, text, len, &err);
    if (st != KILN_OK)
        KILN_LOG_WARN(MOD, "overrides revision %llu refused: %s", (unsigned long long)rev, err.msg);
    else
        KILN_LOG_INFO(MOD, "overrides revision %llu applied", (unsigned long long)rev);
}

/* Applies one entry from the watcher or a Get. */
static void apply_entry(kiln_membership_t *m, kvEntry *e)
{
    const char *key = kvEntry_Key(e);
    if (strcmp(key, OVERRIDES_KEY) == 0) {
        apply_overrides(m, e);
        return;
    }
    char role[ROLE_MAX];
    kiln_ring_member mem;
    bool put = kvEntry_Operation(e) == kvOp_Put;
    if (put && !decode_member(key, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), role, &mem))
        return;
    pthread_mutex_lock(&m->mu);
    if (put) {
        upsert_entry(m, key, role, &mem);
    } else {
        entry *old = find_entry(m, key);
        if (old != NULL)
            remove_entry(m, old); /* a member that left says so: no grace */
    }
    rebuild_locked(m);
    pthread_mutex_unlock(&m->mu);
}

/* ---- talking to NATS (worker thread) ------------------------------------ */

static void put_self(kiln_membership_t *m)
{
    pthread_mutex_lock(&m->mu);
    if (!m->joined) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->self_dirty = false;
    m->self.heartbeat_ms = wall_ms(m);
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%s", m->self_key);
    kiln_buf v;
    kiln_buf_init(&v, 0);
    kiln_member_json_encode(&v, m->self_role, &m->self);
    pthread_mutex_unlock(&m->mu);
    natsStatus s = kvStore_Put(NULL, m->kv, key, v.ptr, (int)v.len);
    if (s != NATS_OK)
        KILN_LOG_WARN(MOD, "heartbeat key=%s: %s", key, nats_text(s));
    pthread_mutex_lock(&m->mu);
    if (s != NATS_OK) {
        m->self_dirty = true; /* try again on the next loop */
    } else {
        /* Our own heartbeats were cut off: everyone else's look as old as
         * that gap, whether or not nats.c has reported a reconnection yet. */
        int64_t now = mono_ns(m);
        if (m->last_put_ns != 0 && now - m->last_put_ns > 2 * m->hb_ns)
            begin_grace(m);
        m->last_put_ns = now;
    }
    pthread_mutex_unlock(&m->mu);
    kiln_buf_free(&v);
}

/* Binds the bucket, creating it when it is gone. */
static natsStatus bind_bucket(kiln_membership_t *m, kvStore **kv)
{
    natsStatus s = js_KeyValue(kv, m->js, m->bucket);
    if (s != NATS_NOT_FOUND)
        return s;
    /* Gone (first start, or a server restarted without its store): create
     * it. Eviction goes by the heartbeat in each value, not by TTL, because
     * nats-server 2.9 expires keys without telling watchers. File storage,
     * so the overrides survive a server restart when it has a store dir. */
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = m->bucket;
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    KILN_LOG_INFO(MOD, "creating bucket %s", m->bucket);
    return js_CreateKeyValue(kv, m->js, &kc);
}

static void drop_watcher(kiln_membership_t *m)
{
    if (m->w != NULL) {
        kvWatcher_Stop(m->w);
        kvWatcher_Destroy(m->w);
        m->w = NULL;
    }
}

/* (Re)starts the watcher; on failure the next rewatch is scheduled. */
static void start_watcher(kiln_membership_t *m)
{
    drop_watcher(m);
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    natsStatus s = kvStore_WatchAll(&m->w, m->kv, &wo);
    m->rewatch_ns = 0;
    if (s == NATS_OK)
        KILN_LOG_DEBUG(MOD, "watching bucket %s", m->bucket);
    if (s != NATS_OK) {
        KILN_LOG_WARN(MOD, "watch %s: %s", m->bucket, nats_text(s));
        m->w = NULL;
        m->rewatch_ns = mono_ns(m) + m->hb_ns;
    }
}

/* A watcher is an ordered consumer, which nats.c itself re-creates on every
 * reconnection, in a thread of its own, starting after the last sequence it
 * delivered. That is right when the bucket survived, and wrong when it was
 * re-created (sequences restart, so it would stay silent for a long while);
 * we cannot tell which from here, since whoever reconnects first re-creates
 * it. So every reconnection replaces the watcher, but one timeout later, not
 * at once: stopping a watcher while nats.c resets it is a use-after-free
 * inside nats.c 3.4.1 (seen under ASan: the unsubscribe reads the consumer
 * name that the reset frees). Meanwhile reconcile reads directly the keys
 * the watcher is silent about. */
static void schedule_rewatch(kiln_membership_t *m)
{
    int64_t settled = m->connected_ns + m->timeout_ns, now = mono_ns(m);
    m->rewatch_ns = settled > now ? settled : now;
}

/* Binds (or re-creates) the bucket after a (re)connection. */
static bool setup_bucket(kiln_membership_t *m)
{
    natsStatus s = NATS_OK;
    kvStore *kv = NULL;
    if (m->js == NULL) {
        jsOptions jo;
        jsOptions_Init(&jo);
        /* A request outlives a dead server at most this long. */
        int64_t wait_ms = m->hb_ns / 1000000;
        jo.Wait = wait_ms < 500 ? 500 : wait_ms > 5000 ? 5000 : wait_ms;
        s = natsConnection_JetStream(&m->js, m->nc, &jo);
    }
    if (s == NATS_OK)
        s = bind_bucket(m, &kv);
    if (s != NATS_OK) {
        KILN_LOG_WARN(MOD, "bucket %s: %s", m->bucket, nats_text(s));
        return false;
    }
    m->connected_ns = mono_ns(m);
    pthread_mutex_lock(&m->kv_mu);
    kvStore_Destroy(m->kv);
    m->kv = kv;
    pthread_mutex_unlock(&m->kv_mu);
    if (m->w == NULL)
        start_watcher(m);
    else
        schedule_rewatch(m);
    return true;
}

/* The keys of the bucket, from its stream's subjects: one request, no
 * consumer. kvStore_Keys would create an ordered consumer, and destroying
 * one while nats.c resets it on a reconnection is a use-after-free inside
 * nats.c 3.4.1 (seen under ASan), like the watcher's. Deleted keys are
 * listed too (their delete marker is a message); reconcile only reads keys
 * it lacks when the watcher cannot vouch, so their Gets stay rare. */
typedef struct key_list {
    char (*keys)[KEY_MAX];
    int count;
} key_list;

static natsStatus list_keys(kiln_membership_t *m, key_list *out)
{
    char stream[96], filter[96];
    snprintf(stream, sizeof(stream), "KV_%s", m->bucket);
    int prefix = snprintf(filter, sizeof(filter), "$KV.%s.", m->bucket);
    snprintf(filter + prefix, sizeof(filter) - (size_t)prefix, ">");
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, m->js, stream, &o, NULL);
    if (s != NATS_OK)
        return s;
    const jsStreamStateSubjects *subj = si->State.Subjects;
    int n = subj != NULL ? subj->Count : 0;
    out->keys = kiln_xcalloc((size_t)n + 1, KEY_MAX);
    out->count = 0;
    for (int i = 0; i < n; i++) {
        const char *subject = subj->List[i].Subject;
        if (strncmp(subject, filter, (size_t)prefix) == 0 && strlen(subject + prefix) < KEY_MAX)
            snprintf(out->keys[out->count++], KEY_MAX, "%s", subject + prefix);
    }
    jsStreamInfo_Destroy(si);
    return NATS_OK;
}

static bool in_list(const key_list *l, const char *key)
{
    for (int i = 0; i < l->count; i++) {
        if (strcmp(l->keys[i], key) == 0)
            return true;
    }
    return false;
}

static void get_and_apply(kiln_membership_t *m, const char *key)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, m->kv, key);
    if (s == NATS_OK) {
        apply_entry(m, e);
        kvEntry_Destroy(e);
    } else if (s != NATS_NOT_FOUND) {
        KILN_LOG_DEBUG(MOD, "get key=%s: %s", key, nats_text(s));
    }
}

/* True when the watcher cannot be trusted to have brought key: the watcher
 * is down or due for replacement, or a member's heartbeats (which change
 * its key every heartbeat) stopped arriving. The overrides
 * key changes rarely, so its silence says nothing. */
static bool needs_get(kiln_membership_t *m, const char *key, int64_t now)
{
    bool watching = m->w != NULL && m->rewatch_ns == 0;
    pthread_mutex_lock(&m->mu);
    bool need;
    if (strcmp(key, OVERRIDES_KEY) == 0) {
        need = !m->overrides_seen || !watching;
    } else {
        /* A healthy watcher delivered every live key: one it never gave
         * is deleted (its marker still lists it), not worth a Get. */
        entry *e = find_entry(m, key);
        need = !watching || (e != NULL && now - e->seen_ns > 2 * m->hb_ns);
    }
    pthread_mutex_unlock(&m->mu);
    return need;
}

/* A member silent for this many timeouts is deleted from the bucket, so the
 * keys of crashed processes do not pile up (any process may do it; a member
 * that was only cut off puts itself back on its next heartbeat). */
#define FORGET_TIMEOUTS 10

/* Drops the entries gone from the bucket and lists those to forget; mu held.
 * An entry is dropped only once its heartbeat is stale as well: a listing
 * can miss a live member for a moment (a server that lost its store, read
 * before that member put itself again, which nats.c may let us do before
 * it reports the reconnection), and a member that left deleted its key,
 * which the watcher brings at once. */
static size_t prune_locked(kiln_membership_t *m, const key_list *keys, char (*forget)[KEY_MAX],
                           size_t max)
{
    size_t n = 0;
    if (mono_ns(m) < m->grace_until_ns)
        return 0;
    int64_t now = wall_ms(m), timeout_ms = m->timeout_ns / 1000000;
    int64_t horizon = now - FORGET_TIMEOUTS * timeout_ms;
    for (size_t i = m->n; i-- > 0;) {
        if (!in_list(keys, m->e[i].key) && now - m->e[i].m.heartbeat_ms > timeout_ms) {
            remove_entry(m, &m->e[i]);
        } else if (m->e[i].m.heartbeat_ms < horizon && n < max) {
            memcpy(forget[n++], m->e[i].key, KEY_MAX);
            remove_entry(m, &m->e[i]);
        }
    }
    return n;
}

/* Catches what the watcher missed: keys gone from the bucket are dropped
 * (after the grace period), keys the watcher has been silent about are
 * read directly. With a healthy watcher this costs one key listing. */
static void reconcile(kiln_membership_t *m)
{
    key_list keys = {NULL, 0};
    natsStatus s = list_keys(m, &keys);
    if (s != NATS_OK) {
        KILN_LOG_DEBUG(MOD, "keys %s: %s", m->bucket, nats_text(s));
        return;
    }
    int64_t now = mono_ns(m);
    char forget[8][KEY_MAX];
    pthread_mutex_lock(&m->mu);
    size_t n_forget = prune_locked(m, &keys, forget, 8);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_forget; i++) {
        KILN_LOG_INFO(MOD, "forgetting key=%s: silent for %d timeouts", forget[i], FORGET_TIMEOUTS);
        kvStore_Delete(m->kv, forget[i]);
    }
    for (int i = 0; i < keys.count; i++) {
        if (needs_get(m, keys.keys[i], now))
            get_and_apply(m, keys.keys[i]);
    }
    free(keys.keys);
    rebuild(m);
}

/* Waits up to ms for a bucket change (applied at once) or a flag. */
static void wait_for_change(kiln_membership_t *m, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    if (m->w != NULL) {
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, m->w, ms);
        if (s == NATS_OK && e != NULL) {
            apply_entry(m, e);
            kvEntry_Destroy(e);
        } else if (s != NATS_OK && s != NATS_TIMEOUT && m->rewatch_ns == 0) {
            KILN_LOG_WARN(MOD, "watch %s: %s", m->bucket, nats_text(s));
            schedule_rewatch(m);
        }
        if (s == NATS_OK || s == NATS_TIMEOUT)
            return;
    }
    struct timespec dl = kiln_deadline_in(ms * 1000000);
    pthread_mutex_lock(&m->mu);
    if (!m->stopping && !m->self_dirty && !m->need_setup)
        pthread_cond_timedwait(&m->cv, &m->mu, &dl);
    pthread_mutex_unlock(&m->mu);
}

static void on_setup_done(kiln_membership_t *m)
{
    pthread_mutex_lock(&m->mu);
    m->need_setup = false;
    if (m->ever_set_up)
        begin_grace(m);
    m->ever_set_up = true;
    pthread_mutex_unlock(&m->mu);
    put_self(m);
    reconcile(m);
}

/* One loop turn: set up after a (re)connection, heartbeat when due, then
 * wait for changes. Returns the next heartbeat time. */
static int64_t worker_turn(kiln_membership_t *m, int64_t next_hb, int64_t *next_setup)
{
    int64_t now = mono_ns(m);
    bool connected = atomic_load(&m->connected);
    pthread_mutex_lock(&m->mu);
    bool setup = m->need_setup, dirty = m->self_dirty;
    pthread_mutex_unlock(&m->mu);
    if (connected && setup && now >= *next_setup) {
        if (setup_bucket(m)) {
            on_setup_done(m);
            next_hb = now + m->hb_ns;
        } else {
            *next_setup = now + (m->hb_ns < 250000000 ? m->hb_ns : 250000000);
        }
    } else if (connected && !setup && now >= next_hb) {
        put_self(m);
        reconcile(m);
        next_hb = now + m->hb_ns;
    } else if (connected && !setup && dirty) {
        put_self(m);
    } else if (connected && !setup && m->rewatch_ns != 0 && now >= m->rewatch_ns) {
        start_watcher(m);
    }
    int64_t wait = (next_hb - mono_ns(m)) / 1000000;
    wait_for_change(m, wait < POLL_MS ? wait : POLL_MS);
    return next_hb;
}

static void *worker(void *arg)
{
    kiln_membership_t *m = arg;
    int64_t next_hb = mono_ns(m), next_setup = 0;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        bool stop = m->stopping;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            return NULL;
        next_hb = worker_turn(m, next_hb, &next_setup);
    }
}

/* ---- nats.c callbacks: flags only --------------------------------------- */

static void set_connected(kiln_membership_t *m, bool up)
{
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->connected, up);
    if (up)
        m->need_setup = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void on_connected(natsConnection *nc, void *arg)
{
    (void)nc;
    KILN_LOG_INFO(MOD, "connected to NATS");
    set_connected(arg, true);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    (void)nc;
    kiln_membership_t *m = arg;
    pthread_mutex_lock(&m->mu);
    bool stopping = m->stopping;
    pthread_mutex_unlock(&m->mu);
    if (!stopping)
        KILN_LOG_WARN(MOD, "disconnected from NATS: serving on the last known ring");
    set_connected(m, false);
}

/* nats.c closes the connection for good after the same authentication
 * error twice in a row from a server (credentials revoked, or wrong from
 * the start when the server only appeared after we did): say so, since no
 * reconnection will follow. */
static void on_closed(natsConnection *nc, void *arg)
{
    kiln_membership_t *m = arg;
    pthread_mutex_lock(&m->mu);
    bool stopping = m->stopping;
    pthread_mutex_unlock(&m->mu);
    const char *why = NULL;
    natsStatus s = stopping ? NATS_OK : natsConnection_GetLastError(nc, &why);
    if (!stopping)
        KILN_LOG_ERROR(MOD, "NATS %s closed the connection for good (%s): restart to retry",
                       m->urls_log, s != NATS_OK && why != NULL ? why : "no reason given");
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->connected, false);
    m->closed = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* ---- public ------------------------------------------------------------- */

static kiln_status parse_urls(kiln_membership_t *m, const char *urls, kiln_err *err)
{
    const char *p = urls != NULL ? urls : "";
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len > 0 && m->n_urls == MAX_URLS)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "membership: more than %d NATS URLs",
                                MAX_URLS);
        if (len > 0)
            m->urls[m->n_urls++] = kiln_xstrndup(s, len);
        p += strcspn(p, ",");
        p += *p == ',';
    }
    if (m->n_urls == 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "membership: no NATS URL given");
    return KILN_OK;
}

static kiln_status parse_config(kiln_membership_t *m, const kiln_membership_config *cfg,
                                kiln_err *err)
{
    const char *b = cfg->bucket != NULL && cfg->bucket[0] != '\0' ? cfg->bucket : "kiln-ring";
    if (strlen(b) >= sizeof(m->bucket) ||
        strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_-") != strlen(b))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "membership: bad bucket name %s", b);
    snprintf(m->bucket, sizeof(m->bucket), "%s", b);
    m->hb_ns = cfg->heartbeat_ns > 0 ? cfg->heartbeat_ns : 5000000000LL;
    m->timeout_ns = cfg->heartbeat_timeout_ns > 0 ? cfg->heartbeat_timeout_ns : 4 * m->hb_ns;
    m->clock = cfg->clock != NULL ? cfg->clock : &kiln_system_clock;
    kiln_nats_redact_urls(cfg->nats_urls, m->urls_log, sizeof(m->urls_log));
    kiln_status st = parse_urls(m, cfg->nats_urls, err);
    if (st == KILN_OK)
        st = kiln_nats_security_check(&cfg->security, err);
    m->tls = kiln_nats_security_wants_tls(&cfg->security, m->urls, m->n_urls);
    return st;
}

static natsStatus make_options(kiln_membership_t *m)
{
    /* Reconnect about twice a heartbeat (within 0.1-2 s), with jitter so
     * a restarted server is not hit by every process at once. */
    int64_t wait_ms = m->hb_ns / 2000000;
    wait_ms = wait_ms < 100 ? 100 : wait_ms > 2000 ? 2000 : wait_ms;
    natsStatus s = natsOptions_Create(&m->opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(m->opts, (const char **)m->urls, m->n_urls);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(m->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(m->opts, wait_ms);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(m->opts, wait_ms / 2, wait_ms);
    if (s == NATS_OK) /* a silent peer is noticed within a few heartbeats */
        s = natsOptions_SetPingInterval(m->opts, m->hb_ns / 1000000 > 0 ? m->hb_ns / 1000000 : 1);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(m->opts, 3);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(m->opts, on_disconnected, m);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(m->opts, on_connected, m);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(m->opts, on_closed, m);
    return s;
}

static void free_urls(kiln_membership_t *m)
{
    for (int i = 0; i < m->n_urls; i++)
        free(m->urls[i]);
}

/* Options for every connection: the servers, reconnection, callbacks,
 * credentials and TLS (nats.c reuses them on every reconnection). */
static kiln_status set_options(kiln_membership_t *m, const kiln_membership_config *cfg,
                               kiln_err *err)
{
    natsStatus s = make_options(m);
    if (s != NATS_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "membership: NATS %s: %s", m->urls_log,
                            nats_text(s));
    return kiln_nats_security_apply(&cfg->security, m->tls, m->opts, err);
}

/* The first connection tries every server once, so that a server which
 * refuses us (credentials, certificates) stops the start with the reason;
 * when none answers, nats.c keeps trying in the background. */
static kiln_status first_connect(kiln_membership_t *m, const kiln_membership_config *cfg,
                                 kiln_err *err)
{
    natsStatus s = natsConnection_Connect(&m->nc, m->opts);
    if (s == NATS_OK) {
        set_connected(m, true); /* no connected callback for a first try that works */
        return KILN_OK;
    }
    char why[256];
    snprintf(why, sizeof(why), "%s", nats_text(s));
    kiln_status st = kiln_nats_security_judge(&cfg->security, m->tls, s, why, m->urls_log, err);
    if (st != KILN_OK)
        return st;
    KILN_LOG_WARN(MOD, "NATS %s not reachable yet (%s): retrying in the background", m->urls_log,
                  why);
    s = natsOptions_SetRetryOnFailedConnect(m->opts, true, on_connected, m);
    if (s == NATS_OK)
        s = natsConnection_Connect(&m->nc, m->opts);
    if (s == NATS_OK)
        set_connected(m, true);
    else if (s != NATS_NOT_YET_CONNECTED)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "membership: NATS %s: %s", m->urls_log,
                            nats_text(s));
    return KILN_OK;
}

kiln_status kiln_membership_create(const kiln_membership_config *cfg, kiln_ring_t *ring,
                                   kiln_overrides_t *overrides, kiln_membership_t **out,
                                   kiln_err *err)
{
    kiln_membership_t *m = kiln_xcalloc(1, sizeof(*m));
    m->ring = ring;
    m->overrides = overrides;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->kv_mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    atomic_init(&m->connected, false);
    kiln_status st = parse_config(m, cfg, err);
    if (st == KILN_OK)
        st = set_options(m, cfg, err);
    if (st == KILN_OK)
        st = first_connect(m, cfg, err);
    if (st != KILN_OK) {
        natsConnection_Destroy(m->nc);
        natsOptions_Destroy(m->opts);
        free_urls(m);
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->kv_mu);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return st;
    }
    pthread_create(&m->thread, NULL, worker, m);
    *out = m;
    return KILN_OK;
}

static void delete_self(kiln_membership_t *m)
{
    if (!m->joined || m->kv == NULL || !atomic_load(&m->connected))
        return; /* if it cannot be deleted, the others evict it after the timeout */
    natsStatus s = kvStore_Delete(m->kv, m->self_key);
    if (s != NATS_OK)
        KILN_LOG_WARN(MOD, "leaving key=%s: %s", m->self_key, nats_text(s));
}

/* Closes the connection and waits for its closed callback: after that
 * nats.c calls none of ours, so m may be freed. */
static void close_connection(kiln_membership_t *m)
{
    natsConnection_Close(m->nc);
    int64_t deadline = kiln_mono_ns() + CLOSE_WAIT_NS;
    pthread_mutex_lock(&m->mu);
    while (!m->closed && kiln_mono_ns() < deadline) {
        struct timespec dl = kiln_deadline_in(20000000);
        pthread_cond_timedwait(&m->cv, &m->mu, &dl);
    }
    bool closed = m->closed;
    pthread_mutex_unlock(&m->mu);
    if (!closed)
        KILN_LOG_WARN(MOD, "NATS connection did not report closing in time");
    natsConnection_Destroy(m->nc);
}

void kiln_membership_destroy(kiln_membership_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    delete_self(m);
    drop_watcher(m);
    kvStore_Destroy(m->kv);
    jsCtx_Destroy(m->js);
    /* Not nats_Close: the library is process-wide and other connections
     * may live on; main closes it at exit. */
    close_connection(m);
    natsOptions_Destroy(m->opts);
    free_urls(m);
    free(m->e);
    free(m->overrides_text);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->kv_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void kiln_membership_join(kiln_membership_t *m, const char *role, const kiln_ring_member *self)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->self_role, sizeof(m->self_role), "%s", role);
    member_key(m->self_key, role, self->id);
    m->self = *self;
    m->joined = true;
    m->self_dirty = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

void kiln_membership_set_state(kiln_membership_t *m, kiln_ring_state st)
{
    pthread_mutex_lock(&m->mu);
    m->self.state = st;
    m->self_dirty = true;
    /* This process's own ring need not wait for the bucket's echo. */
    entry *e = find_entry(m, m->self_key);
    if (e != NULL) {
        e->m.state = st;
        rebuild_locked(m);
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

kiln_status kiln_membership_publish_overrides(kiln_membership_t *m, const char *yaml, kiln_err *err)
{
    /* Refuse here what every process would refuse on receipt. */
    kiln_limits none;
    memset(&none, 0, sizeof(none));
    kiln_overrides_t *check = kiln_overrides_create(&none);
    kiln_status st = kiln_overrides_load_text(check, yaml, strlen(yaml), err);
    kiln_overrides_destroy(check);
    if (st != KILN_OK)
        return st;
    if (!atomic_load(&m->connected))
        return kiln_err_set(err, KILN_UNAVAILABLE, "membership: not connected to NATS");
    pthread_mutex_lock(&m->kv_mu);
    natsStatus s = m->kv == NULL ? NATS_NOT_YET_CONNECTED
                                 : kvStore_PutString(NULL, m->kv, OVERRIDES_KEY, yaml);
    pthread_mutex_unlock(&m->kv_mu);
    if (s != NATS_OK)
        return kiln_err_set(err, KILN_UNAVAILABLE, "membership: publishing overrides: %s",
                            nats_text(s));
    return KILN_OK;
}

size_t kiln_membership_count(kiln_membership_t *m, const char *role)
{
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        n += m->e[i].live && strcmp(m->e[i].role, role) == 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

bool kiln_membership_connected(kiln_membership_t *m)
{
    return atomic_load(&m->connected);
}
