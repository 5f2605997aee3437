/* SPDX-License-Identifier: Apache-2.0
 * ticker: a background thread that calls fn(arg) every period until
 * stopped; stop wakes it at once and waits for a call in progress, a kick
 * has it call fn at once. Used by the ingester's flusher and the compactor.
 * Start and stop from one thread; kick from any while it runs. */
#ifndef KILN_TICKER_H
#define KILN_TICKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct kiln_ticker {
    void (*fn)(void *arg);
    void *arg;
    int64_t period_ns;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, stopping;
    bool kicked; /* kiln_ticker_kick: call fn without waiting out the period */
} kiln_ticker;

/** Starts calling fn(arg) every period_ns (the first call after one period). */
void kiln_ticker_start(kiln_ticker *t, int64_t period_ns, void (*fn)(void *arg), void *arg);
/** Has the thread call fn now (or, when a call is in progress, once more
 * right after it) rather than at the end of the period; the period starts
 * again after that call. A no-op when the ticker is not running. Any
 * thread; does not block on fn. */
void kiln_ticker_kick(kiln_ticker *t);
/** Stops the thread and joins it; a no-op when it was never started. */
void kiln_ticker_stop(kiln_ticker *t);

#endif
