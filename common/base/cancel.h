/* SPDX-License-Identifier: Apache-2.0
 * cancel: a query's deadline and cancellation. A token is owned by the
 * server call that runs the query; any thread may cancel it (client gone,
 * shutdown), the query's thread checks it. While a handler runs, its token
 * is bound to the thread, so deep loops (head and block scans, merges)
 * poll it without a parameter through every layer: kiln_cancel_poll costs
 * a thread-local load and a counter, and only every KILN_CANCEL_EVERY
 * calls an atomic load, a clock read and (rate-limited) the client probe.
 * Statuses: KILN_CANCELLED (client gone, shutdown), KILN_DEADLINE_EXCEEDED,
 * or the status a scan failed with (kiln_cancel_fail). */
#ifndef KILN_CANCEL_H
#define KILN_CANCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#define KILN_CANCEL_EVERY 4096

/** Asks whether the client went away; called at most every few ms. */
typedef bool (*kiln_cancel_probe_fn)(void *arg);

typedef struct kiln_cancel {
    atomic_int why;            /* KILN_OK while live, else the status it ended with */
    int64_t deadline_ns;       /* CLOCK_MONOTONIC; 0 = none */
    kiln_cancel_probe_fn gone; /* NULL = no probe */
    void *gone_arg;
    int64_t next_probe_ns; /* the checking thread's rate limit */
    uint32_t tick;         /* kiln_cancel_poll's counter */
    char fail_msg[256];    /* kiln_cancel_fail's message (owning thread) */
} kiln_cancel_t;

/** Monotonic clock in ns. */
int64_t kiln_cancel_now(void);
/** Initialises a live token with a deadline (monotonic ns; 0 = none). */
void kiln_cancel_init(kiln_cancel_t *c, int64_t deadline_ns);
/** Cancels c with why (KILN_CANCELLED or KILN_DEADLINE_EXCEEDED); the first
 * reason wins. Any thread. */
void kiln_cancel_set(kiln_cancel_t *c, kiln_status why);
/** The full check: the flag, process shutdown, the deadline and the probe
 * (at most every 20 ms). KILN_OK while the query may go on. The owning
 * thread only (the probe's rate limit is not shared). c NULL: KILN_OK. */
kiln_status kiln_cancel_check(kiln_cancel_t *c);

/** Binds c to the calling thread for kiln_cancel_poll (NULL unbinds). */
void kiln_cancel_bind(kiln_cancel_t *c);
/** The token bound to the calling thread, or NULL. */
kiln_cancel_t *kiln_cancel_current(void);
/** True once the bound token is cancelled: a loop breaks out and the
 * caller discards its partial result (the server answers with the token's
 * status). Cheap; checks in full every KILN_CANCEL_EVERY calls. */
bool kiln_cancel_poll(void);

/** Ends the bound query with why (a failure found deep in a scan, such as
 * KILN_DATA_LOSS for a block chunk that does not load) and a message for
 * its client, so the query answers that instead of a partial result. With
 * no bound token (ingest, compaction, tests) the failure is logged at error
 * level under mod instead. The owning thread only. */
void kiln_cancel_fail(const char *mod, kiln_status why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** cap_ms, or the time left to the bound token's deadline when shorter
 * (at least 1 ms): the timeout of a call a query makes (the cluster
 * reader's fan-out), so the callee gets the query's deadline too. */
int64_t kiln_cancel_timeout_ms(int64_t cap_ms);

/** Cancels every token, present and future (process shutdown: queries in
 * flight end with KILN_CANCELLED). Any thread, idempotent. */
void kiln_cancel_shutdown(void);
/** Undoes kiln_cancel_shutdown (tests that run several servers in turn). */
void kiln_cancel_reset_shutdown(void);

#endif
