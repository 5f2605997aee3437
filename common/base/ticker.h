/* SPDX-License-Identifier: Apache-2.0
 * ticker: a background thread that calls fn(arg) every period until
 * stopped; stop wakes it at once and waits for a call in progress. Used by
 * the ingester's flusher and the compactor. Start and stop from one thread. */
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
} kiln_ticker;

/** Starts calling fn(arg) every period_ns (the first call after one period). */
void kiln_ticker_start(kiln_ticker *t, int64_t period_ns, void (*fn)(void *arg), void *arg);
/** Stops the thread and joins it; a no-op when it was never started. */
void kiln_ticker_stop(kiln_ticker *t);

#endif
