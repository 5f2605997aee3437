/* SPDX-License-Identifier: Apache-2.0
 * rules_eval_int: what rules_eval.c (matching, counting, export) and
 * rules_state.c (the state file and the journal that keep the counters)
 * share. Everything here is guarded by kiln_rules_eval's mu unless said. */
#ifndef KILN_RULES_EVAL_INT_H
#define KILN_RULES_EVAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "recording_rule.h"
#include "rules_eval.h"
#include "maplog.h"

typedef struct kiln_rules_eval__counter {
    char *series; /* name{labels}, the key */
    double value;
    int64_t ts_ms;
    bool dirty;         /* changed since last sent */
    uint64_t jid;       /* its id in journal records (0 = none yet) */
    uint64_t def_epoch; /* the epoch whose records define jid */
    struct kiln_rules_eval__counter *next;
} kiln_rules_eval__counter;

typedef struct kiln_rules_eval__routes kiln_rules_eval__routes;

typedef struct kiln_rules_eval__tenant {
    char *id;
    kiln_rule_t **rules;
    size_t n_rules;
    int64_t loaded_ns; /* monotonic; 0 = never */
    kiln_rules_eval__counter **buckets;
    size_t n_buckets, n_counters;
    kiln_rules_eval__routes **routes; /* valid for these rules */
    size_t n_route_buckets, n_routes;
    struct kiln_rules_eval__tenant *next;
} kiln_rules_eval__tenant;

struct kiln_rules_eval {
    kiln_objstore_t *store;
    int64_t refresh_ns;
    pthread_mutex_t mu; /* guards everything below */
    kiln_rules_eval__tenant *tenants;
    kiln_rw_t *rw; /* NULL = no remote write */
    int64_t rw_interval_ns;
    pthread_t sender;
    pthread_cond_t wake;
    bool stop;
    bool started;            /* the sender thread runs */
    pthread_mutex_t send_mu; /* one send round (and snapshot) at a time */
    /* Who counts: an id kept in the state file, and whether every series
     * carries it (KILN_RULES_WRITER_LABEL) because other distributors
     * count the same series too. */
    char writer_id[KILN_ULID_LEN + 1];
    bool label_writer;
    /* An observe's scratch, reused: memory for its values, the series key
     * it looks routes up by, the journal record it builds. */
    kiln_arena_t *scratch;
    kiln_buf key, rec;
    /* Keeping the counters (rules_state.c); journal NULL = not kept. */
    char *state_path;
    kiln_maplog_t *journal;
    uint64_t epoch;         /* of the last snapshot: records count on top of it */
    uint64_t next_jid;      /* (start epoch << 32) + n: unique across restarts */
    uint64_t snapshot_size; /* journal bytes at the last snapshot */
};

/** The tenant's state (made when new), its rules re-read when stale and
 * refresh is set. */
kiln_rules_eval__tenant *kiln_rules_eval__tenant_get(kiln_rules_eval_t *ev, const char *id,
                                                     bool refresh);
/** The counter of series (len bytes) in t, made at zero when new. */
kiln_rules_eval__counter *kiln_rules_eval__counter_get(kiln_rules_eval__tenant *t,
                                                       const char *series, size_t len);
/** Adds v at ts_ms to c and marks it changed. */
void kiln_rules_eval__count(kiln_rules_eval__counter *c, double v, int64_t ts_ms);

/** Appends to rec the journal entries of adding v at ts_ms to t's counter c
 * (its definition first, once per epoch); rec starts with the epoch when
 * empty. */
void kiln_rules_eval__journal_add(kiln_rules_eval_t *ev, const kiln_rules_eval__tenant *t,
                                  kiln_rules_eval__counter *c, double v, int64_t ts_ms,
                                  kiln_buf *rec);
/** Copies rec (len bytes) into the journal (a failure is logged, sampled):
 * from then on a kill -9 does not lose it. */
void kiln_rules_eval__journal_write(kiln_rules_eval_t *ev, const void *rec, size_t len);
/** Puts every journal record written so far on disk, before the values
 * they add leave the process (a power loss must not take them back). */
kiln_status kiln_rules_eval__journal_sync(kiln_rules_eval_t *ev, kiln_err *err);
/** Writes the state file from the counters now and drops the journal
 * before them; under send_mu, without mu. */
kiln_status kiln_rules_eval__snapshot(kiln_rules_eval_t *ev, kiln_err *err);
/** A snapshot when the journal grew past its bound since the last one. */
void kiln_rules_eval__snapshot_if_large(kiln_rules_eval_t *ev);
/** The last snapshot, and closes the journal (destroy). */
void kiln_rules_eval__state_close(kiln_rules_eval_t *ev);

#endif
