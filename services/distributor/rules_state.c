/* SPDX-License-Identifier: Apache-2.0
 * rules_state: the recording rules' counters kept across restarts, kill -9
 * included. A snapshot of every counter (the state file) plus a journal of
 * the additions counted since (a kiln_maplog: a record is a copy into the
 * page cache, no system call; torn tails cut at replay). Each push's
 * additions are one journal record, copied before the push is acknowledged
 * and synced before a send or scrape shows them; a restart loads the
 * snapshot and adds the records of its epoch and later. A snapshot starts a
 * new epoch and a new journal segment, and drops the segments before it
 * once it is itself on disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash_index.h"
#include "log.h"
#include "rules_eval_int.h"
#include "tenants.h"
#include "xmalloc.h"

typedef kiln_rules_eval__counter counter;
typedef kiln_rules_eval__tenant tenant;

/* A snapshot once the journal grew by this much since the last one: the
 * replay at start stays short. */
#define JOURNAL_BOUND ((uint64_t)8 << 20)
/* A journal segment, reserved on disk and mapped whole: twice the bound, so
 * the journal between two snapshots mostly fits one. */
#define JOURNAL_SEGMENT ((size_t)16 << 20)

/* Journal records: the epoch (u64), then entries, each a tag byte:
 * 'D' id (u64), tenant and series (u32 length + bytes each): the counter
 *     that id names in this and later records of the epoch;
 * 'A' id (u64), value (f64), timestamp in ms (i64): an addition.
 * Host byte order: the journal is read back where it was written. */
enum { ENTRY_DEFINE = 'D', ENTRY_ADD = 'A' };

/* ---- state file: `#writer TAB id`, `#epoch TAB n`, then one line per
 * series, tenant TAB series TAB value TAB timestamp_ms (series keys hold no
 * tab or newline: values are escaped). */

#define WRITER_LINE "#writer\t"
#define EPOCH_LINE "#epoch\t"

/* Every counter as state file lines; under ev->mu. */
static void state_text(const kiln_rules_eval_t *ev, kiln_buf *out)
{
    kiln_buf_printf(out, WRITER_LINE "%s\n" EPOCH_LINE "%llu\n", ev->writer_id,
                    (unsigned long long)ev->epoch);
    for (const tenant *t = ev->tenants; t != NULL; t = t->next) {
        for (size_t i = 0; i < t->n_buckets; i++) {
            for (const counter *c = t->buckets[i]; c != NULL; c = c->next)
                kiln_buf_printf(out, "%s\t%s\t%.17g\t%lld\n", t->id, c->series, c->value,
                                (long long)c->ts_ms);
        }
    }
}

/* fsync of the directory holding path: its rename is durable. */
static int fsync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Replaces path with text durably: a temporary file, fsync, rename, fsync
 * of the directory. */
static kiln_status write_state(const char *path, const kiln_buf *text, kiln_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", tmp, strerror(errno));
    bool ok = fwrite(text->ptr, 1, text->len, f) == text->len;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0 || fsync_parent(path) != 0)
        return kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", path, strerror(errno));
    return KILN_OK;
}

static kiln_status load_line(kiln_rules_eval_t *ev, char *line, kiln_err *err)
{
    if (strncmp(line, WRITER_LINE, strlen(WRITER_LINE)) == 0) {
        snprintf(ev->writer_id, sizeof(ev->writer_id), "%s", line + strlen(WRITER_LINE));
        return KILN_OK;
    }
    if (strncmp(line, EPOCH_LINE, strlen(EPOCH_LINE)) == 0) {
        ev->epoch = strtoull(line + strlen(EPOCH_LINE), NULL, 10);
        return KILN_OK;
    }
    char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    char *tab3 = tab2 ? strchr(tab2 + 1, '\t') : NULL;
    if (tab3 == NULL)
        return kiln_err_set(err, KILN_DATA_LOSS, "%s: bad line %.80s", ev->state_path, line);
    *tab1 = *tab2 = *tab3 = '\0';
    tenant *t = kiln_rules_eval__tenant_get(ev, line, false);
    counter *c = kiln_rules_eval__counter_get(t, tab1 + 1, strlen(tab1 + 1));
    kiln_rules_eval__count(c, strtod(tab2 + 1, NULL), strtoll(tab3 + 1, NULL, 10));
    c->dirty = false; /* sent before the restart */
    return KILN_OK;
}

static kiln_status load_state(kiln_rules_eval_t *ev, kiln_err *err)
{
    FILE *f = fopen(ev->state_path, "r");
    if (f == NULL)
        return errno == ENOENT
                   ? KILN_OK
                   : kiln_err_set(err, KILN_UNAVAILABLE, "%s: %s", ev->state_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    kiln_status st = KILN_OK;
    while (st == KILN_OK && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        st = load_line(ev, line, err);
    }
    free(line);
    fclose(f);
    return st;
}

/* ---- journal ---- */

static void put(kiln_buf *b, const void *p, size_t n)
{
    kiln_buf_append(b, p, n);
}

static void put_str(kiln_buf *b, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    put(b, &n, sizeof(n));
    put(b, s, n);
}

void kiln_rules_eval__journal_add(kiln_rules_eval_t *ev, const tenant *t, counter *c, double v,
                                  int64_t ts_ms, kiln_buf *rec)
{
    if (rec->len == 0)
        put(rec, &ev->epoch, sizeof(ev->epoch));
    if (c->jid == 0)
        c->jid = ev->next_jid++;
    if (c->def_epoch != ev->epoch) {
        kiln_buf_putc(rec, ENTRY_DEFINE);
        put(rec, &c->jid, sizeof(c->jid));
        put_str(rec, t->id);
        put_str(rec, c->series);
        c->def_epoch = ev->epoch;
    }
    /* The hot entry, one per counter per push: written in place. */
    enum { ADD_LEN = 1 + sizeof(c->jid) + sizeof(v) + sizeof(ts_ms) };
    kiln_buf_reserve(rec, ADD_LEN);
    char *w = rec->ptr + rec->len;
    w[0] = ENTRY_ADD;
    memcpy(w + 1, &c->jid, sizeof(c->jid));
    memcpy(w + 1 + sizeof(c->jid), &v, sizeof(v));
    memcpy(w + 1 + sizeof(c->jid) + sizeof(v), &ts_ms, sizeof(ts_ms));
    rec->len += ADD_LEN;
}

void kiln_rules_eval__journal_write(kiln_rules_eval_t *ev, const void *rec, size_t len)
{
    kiln_err err = {0};
    if (kiln_maplog_append(ev->journal, rec, len, &err) != KILN_OK)
        KILN_LOG_WARN_SAMPLED("", "rules_journal", "rules",
                              "counters not journaled (lost at a crash): %s", err.msg);
}

kiln_status kiln_rules_eval__journal_sync(kiln_rules_eval_t *ev, kiln_err *err)
{
    return ev->journal != NULL ? kiln_maplog_sync(ev->journal, err) : KILN_OK;
}

/* Journal ids to counters, built from the definitions of every record. */
typedef struct id_map {
    kiln_hash_index idx;
    uint64_t *ids;
    counter **c;
    size_t n, cap;
} id_map;

static bool id_eq(const void *ctx, uint32_t i)
{
    const struct {
        const id_map *m;
        uint64_t id;
    } *k = ctx;
    return k->m->ids[i] == k->id;
}

static counter *id_find(const id_map *m, uint64_t id)
{
    const struct {
        const id_map *m;
        uint64_t id;
    } k = {m, id};
    uint32_t i = kiln_hash_index_find(&m->idx, id * 0x9e3779b97f4a7c15ULL, id_eq, &k);
    return i == KILN_HASH_INDEX_NONE ? NULL : m->c[i];
}

static void id_put(id_map *m, uint64_t id, counter *c)
{
    KILN_GROW(m->ids, m->cap, m->n + 1);
    m->c = kiln_xrealloc(m->c, m->cap * sizeof(*m->c));
    m->ids[m->n] = id;
    m->c[m->n] = c;
    kiln_hash_index_insert(&m->idx, id * 0x9e3779b97f4a7c15ULL, (uint32_t)m->n++);
}

typedef struct replay {
    kiln_rules_eval_t *ev;
    id_map ids;
    bool adds; /* the second pass: additions; the first reads definitions */
    size_t records, bad;
} replay;

/* A length-prefixed string at *p (within end), or NULL. */
static const uint8_t *get_str(const uint8_t *p, const uint8_t *end, char *out, size_t cap)
{
    uint32_t n;
    if ((size_t)(end - p) < sizeof(n))
        return NULL;
    memcpy(&n, p, sizeof(n));
    p += sizeof(n);
    if ((size_t)(end - p) < n || n >= cap)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

/* One entry at p: a definition (first pass) or an addition (second pass,
 * when its epoch is not in the snapshot); the entry's end, NULL when it
 * does not parse. */
static const uint8_t *replay_entry(replay *r, const uint8_t *p, const uint8_t *end, bool counted)
{
    uint64_t id;
    if ((size_t)(end - p) < 1 + sizeof(id))
        return NULL;
    uint8_t tag = *p++;
    memcpy(&id, p, sizeof(id));
    p += sizeof(id);
    if (tag == ENTRY_DEFINE) {
        char tn[KILN_TENANT_MAX + 1], series[65536];
        if ((p = get_str(p, end, tn, sizeof(tn))) == NULL ||
            (p = get_str(p, end, series, sizeof(series))) == NULL)
            return NULL;
        if (!r->adds && id_find(&r->ids, id) == NULL) {
            tenant *t = kiln_rules_eval__tenant_get(r->ev, tn, false);
            id_put(&r->ids, id, kiln_rules_eval__counter_get(t, series, strlen(series)));
        }
        return p;
    }
    double v;
    int64_t ts;
    if (tag != ENTRY_ADD || (size_t)(end - p) < sizeof(v) + sizeof(ts))
        return NULL;
    memcpy(&v, p, sizeof(v));
    memcpy(&ts, p + sizeof(v), sizeof(ts));
    counter *c = r->adds && !counted ? id_find(&r->ids, id) : NULL;
    if (c != NULL)
        kiln_rules_eval__count(c, v, ts); /* changed: maybe never sent */
    return p + sizeof(v) + sizeof(ts);
}

static void on_record(void *ctx, uint64_t segment, const uint8_t *rec, size_t len)
{
    (void)segment;
    replay *r = ctx;
    uint64_t epoch;
    if (len < sizeof(epoch)) {
        r->bad += !r->adds;
        return;
    }
    memcpy(&epoch, rec, sizeof(epoch));
    bool counted = epoch < r->ev->epoch; /* in the snapshot already */
    const uint8_t *p = rec + sizeof(epoch), *end = rec + len;
    while (p != NULL && p < end)
        p = replay_entry(r, p, end, counted);
    r->records += r->adds;
    r->bad += p == NULL && !r->adds;
}

static kiln_status replay_journal(kiln_rules_eval_t *ev, kiln_err *err)
{
    replay r = {.ev = ev};
    kiln_hash_index_init(&r.ids.idx);
    kiln_status st = kiln_maplog_replay(ev->journal, on_record, &r, err);
    r.adds = true;
    if (st == KILN_OK)
        st = kiln_maplog_replay(ev->journal, on_record, &r, err);
    if (r.bad > 0)
        KILN_LOG_WARN("rules", "%s: %zu journal records do not parse: their counts are lost",
                      ev->state_path, r.bad);
    if (r.records > 0)
        KILN_LOG_INFO("rules", "%zu journal records added to the counters", r.records);
    kiln_hash_index_fini(&r.ids.idx);
    free(r.ids.ids);
    free(r.ids.c);
    return st;
}

kiln_status kiln_rules_eval__snapshot(kiln_rules_eval_t *ev, kiln_err *err)
{
    kiln_buf text;
    kiln_buf_init(&text, 0);
    pthread_mutex_lock(&ev->mu);
    ev->epoch++; /* additions from now on are not in this snapshot */
    uint64_t segment = kiln_maplog_rotate(ev->journal); /* the old one synced */
    state_text(ev, &text);
    pthread_mutex_unlock(&ev->mu);
    kiln_status st = write_state(ev->state_path, &text, err);
    kiln_buf_free(&text);
    if (st != KILN_OK)
        return st; /* the file on disk and every segment still add up */
    ev->snapshot_size = kiln_maplog_bytes(ev->journal);
    kiln_maplog_remove_before(ev->journal, segment);
    return KILN_OK;
}

void kiln_rules_eval__snapshot_if_large(kiln_rules_eval_t *ev)
{
    if (ev->journal == NULL)
        return;
    kiln_err err = {0};
    if (kiln_maplog_bytes(ev->journal) - ev->snapshot_size > JOURNAL_BOUND &&
        kiln_rules_eval__snapshot(ev, &err) != KILN_OK)
        KILN_LOG_WARN("rules", "counters not saved: %s", err.msg);
}

void kiln_rules_eval__state_close(kiln_rules_eval_t *ev)
{
    if (ev->journal != NULL) {
        kiln_err err = {0};
        if (kiln_rules_eval__snapshot(ev, &err) != KILN_OK)
            KILN_LOG_WARN("rules", "counters not saved: %s", err.msg);
        kiln_maplog_close(ev->journal);
    }
    free(ev->state_path);
}

kiln_status kiln_rules_eval_state_file(kiln_rules_eval_t *ev, const char *path, bool fsync,
                                       kiln_err *err)
{
    ev->state_path = kiln_xstrdup(path);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s.journal", path);
    pthread_mutex_lock(&ev->mu); /* nothing runs yet; held for the helpers' contract */
    kiln_status st = load_state(ev, err);
    pthread_mutex_unlock(&ev->mu);
    if (st != KILN_OK ||
        (st = kiln_maplog_open(dir, JOURNAL_SEGMENT, fsync, &ev->journal, err)) != KILN_OK)
        return st;
    pthread_mutex_lock(&ev->mu);
    st = replay_journal(ev, err);
    pthread_mutex_unlock(&ev->mu);
    /* A new epoch whose ids no earlier record uses. */
    if (st == KILN_OK && (st = kiln_rules_eval__snapshot(ev, err)) == KILN_OK) {
        ev->next_jid = (ev->epoch << 32) + 1;
        return KILN_OK;
    }
    kiln_maplog_close(ev->journal); /* not a snapshot of half the counters at destroy */
    ev->journal = NULL;
    return st;
}
