/* SPDX-License-Identifier: Apache-2.0
 * rules_eval: recording rules evaluated at ingest. The distributor calls
 * observe once per acknowledged push (it sees each push exactly once,
 * before the ingesters' replication, so nothing is counted RF times);
 * every rule of the tenant whose matchers the profile's series (its labels
 * plus the per-type ones, __profile_type__ included) satisfy adds the
 * profile's value of that type (the whole profile, or only the samples
 * whose stack holds the rule's function) to its counter series, stamped
 * with the profile's time. A tenant's rules are re-read from the object
 * store (<tenant>/settings/recording_rules.pb, written by settings.v1) when
 * they are older than refresh_ns, so a change reaches every distributor
 * within that bound. Counters live in memory, kept on disk when a state
 * file is set (kiln_rules_eval_state_file). Thread-safe. */
#ifndef KILN_RULES_EVAL_H
#define KILN_RULES_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "head.h"
#include "objstore.h"
#include "remote_write.h"

typedef struct kiln_rules_eval kiln_rules_eval_t;

/** Creates an evaluator reading rules from store (borrowed; must outlive
 * it), re-read per tenant every refresh_ns (0 = 10 s). */
kiln_rules_eval_t *kiln_rules_eval_create(kiln_objstore_t *store, int64_t refresh_ns);
/** Frees it; NULL is a no-op. */
void kiln_rules_eval_destroy(kiln_rules_eval_t *ev);

/** Adds one stored push of tenant (normalised parts, borrowed) to the
 * counters of every matching rule, before it is acknowledged; with a state
 * file it returns once the additions are journaled (copied into the page
 * cache: no system call, no wait). Never fails: a rules object that cannot
 * be read keeps the rules read before, a journal that cannot be written is
 * logged. */
void kiln_rules_eval_observe(kiln_rules_eval_t *ev, const char *tenant, const kiln_head_part *parts,
                             size_t n);

/** Appends the tenant's counters in Prometheus' text format, one line per
 * series, `name{labels} value timestamp_ms`, sorted; with a state file,
 * once the journal that holds them is on disk. */
void kiln_rules_eval_metrics(kiln_rules_eval_t *ev, const char *tenant, kiln_buf *out);

/** Keeps the counters in path (a file of this process's own, e.g. under
 * -storage.path) and a journal beside it (<path>.journal/, maplog.h):
 * loads the counters they hold, then every push's additions are journaled
 * before observe returns, so before the push is acknowledged, and the
 * journal is synced (one fdatasync) before a send or a scrape shows what
 * it holds. So a counter loses no acknowledged push across kill -9, and
 * never goes back below a value it showed across a restart, a power loss
 * included (which takes back only the additions not yet shown). The file
 * is rewritten (temporary file, fsync, rename) when the journal has grown
 * by 8 MiB, at start and at destroy. fsync false leaves the journal
 * unsynced (benchmarks). Once, before
 * kiln_rules_eval_remote_write and any observe. KILN_DATA_LOSS when the file exists but does not
 * parse, KILN_UNAVAILABLE when they cannot be read or written. */
kiln_status kiln_rules_eval_state_file(kiln_rules_eval_t *ev, const char *path, bool fsync,
                                       kiln_err *err);

/** Sends the counters that changed to rw (borrowed; must outlive ev; NULL
 * = nowhere) every interval_ns (0 = 5 s) from a thread of ev's, one
 * WriteRequest per tenant with each series' latest value at its latest
 * profile time; a send that fails keeps them changed, so the next round
 * sends the latest values again. The same thread rewrites the state file
 * when the journal has grown. Once, before any observe. */
void kiln_rules_eval_remote_write(kiln_rules_eval_t *ev, kiln_rw_t *rw, int64_t interval_ns);

/** The label naming the distributor that counted a series, when several
 * count the same series (a cluster): each sends its own monotonic counter
 * and a query sums them, `sum without (kiln_distributor) (...)`. */
#define KILN_RULES_WRITER_LABEL "kiln_distributor"

/** Every series gets KILN_RULES_WRITER_LABEL with this evaluator's id.
 * Once, before any observe (the app calls it in a cluster). */
void kiln_rules_eval_label_writer(kiln_rules_eval_t *ev);
/** This evaluator's id: made at create, replaced by the one in the state
 * file, so it stays the same across restarts as long as its counters do
 * (a distributor that lost its state starts new series from zero, never
 * a counter that goes back). */
const char *kiln_rules_eval_writer(const kiln_rules_eval_t *ev);

/** Sends the changed counters now (tests, and at destroy); the first
 * failing tenant's status. */
kiln_status kiln_rules_eval_flush(kiln_rules_eval_t *ev, kiln_err *err);

#endif
