/* SPDX-License-Identifier: Apache-2.0
 * ticker: a timed wait on a condition variable, so stop need not wait out
 * the period. */
#include "ticker.h"

#include <time.h>

#include "clock.h"

static void *ticker_main(void *arg)
{
    kiln_ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        struct timespec dl = kiln_deadline_in(t->period_ns);
        if (!t->kicked)
            pthread_cond_timedwait(&t->cv, &t->mu, &dl);
        if (t->stopping)
            break;
        t->kicked = false;
        pthread_mutex_unlock(&t->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

void kiln_ticker_start(kiln_ticker *t, int64_t period_ns, void (*fn)(void *arg), void *arg)
{
    t->fn = fn;
    t->arg = arg;
    t->period_ns = period_ns > 0 ? period_ns : 1000000000;
    t->stopping = false;
    t->kicked = false;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->running = pthread_create(&t->thread, NULL, ticker_main, t) == 0;
}

void kiln_ticker_kick(kiln_ticker *t)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->mu);
    t->kicked = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void kiln_ticker_stop(kiln_ticker *t)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    t->running = false;
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}
