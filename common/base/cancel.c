/* SPDX-License-Identifier: Apache-2.0
 * cancel: query deadlines and cancellation tokens. The binding is
 * thread-local so the head's and blocks' scan loops can stop a query
 * without every storage function taking a context (their signatures are
 * shared by ingest, compaction and tests that never cancel). */
#include "cancel.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define PROBE_EVERY_NS (20 * 1000000LL)

static atomic_int shutting_down;
static _Thread_local kiln_cancel_t *bound;

int64_t kiln_cancel_now(void)
{
    return kiln_mono_ns();
}

void kiln_cancel_init(kiln_cancel_t *c, int64_t deadline_ns)
{
    atomic_init(&c->why, KILN_OK);
    c->deadline_ns = deadline_ns;
    c->gone = NULL;
    c->gone_arg = NULL;
    c->next_probe_ns = 0;
    c->tick = 0;
}

void kiln_cancel_set(kiln_cancel_t *c, kiln_status why)
{
    int expected = KILN_OK;
    atomic_compare_exchange_strong(&c->why, &expected, (int)why);
}

kiln_status kiln_cancel_check(kiln_cancel_t *c)
{
    if (c == NULL)
        return KILN_OK;
    int why = atomic_load_explicit(&c->why, memory_order_relaxed);
    if (why != KILN_OK)
        return (kiln_status)why;
    if (atomic_load_explicit(&shutting_down, memory_order_relaxed)) {
        kiln_cancel_set(c, KILN_CANCELLED);
        return (kiln_status)atomic_load(&c->why);
    }
    int64_t now = kiln_cancel_now();
    if (c->deadline_ns != 0 && now >= c->deadline_ns)
        kiln_cancel_set(c, KILN_DEADLINE_EXCEEDED);
    else if (c->gone != NULL && now >= c->next_probe_ns) {
        c->next_probe_ns = now + PROBE_EVERY_NS;
        if (c->gone(c->gone_arg))
            kiln_cancel_set(c, KILN_CANCELLED);
    }
    return (kiln_status)atomic_load(&c->why);
}

void kiln_cancel_bind(kiln_cancel_t *c)
{
    bound = c;
}

kiln_cancel_t *kiln_cancel_current(void)
{
    return bound;
}

bool kiln_cancel_poll(void)
{
    kiln_cancel_t *c = bound;
    if (c == NULL)
        return false;
    if (++c->tick % KILN_CANCEL_EVERY != 0)
        return atomic_load_explicit(&c->why, memory_order_relaxed) != KILN_OK;
    return kiln_cancel_check(c) != KILN_OK;
}

void kiln_cancel_fail(const char *mod, kiln_status why, const char *fmt, ...)
{
    char msg[sizeof(((kiln_cancel_t *)0)->fail_msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kiln_cancel_t *c = bound;
    if (c == NULL) {
        KILN_LOG_ERROR(mod, "%s", msg);
        return;
    }
    int expected = KILN_OK;
    if (atomic_compare_exchange_strong(&c->why, &expected, (int)why))
        memcpy(c->fail_msg, msg, sizeof(msg));
}

int64_t kiln_cancel_timeout_ms(int64_t cap_ms)
{
    const kiln_cancel_t *c = bound;
    if (c == NULL || c->deadline_ns == 0)
        return cap_ms;
    int64_t left = (c->deadline_ns - kiln_cancel_now()) / 1000000;
    if (left < 1)
        left = 1;
    return cap_ms > 0 && cap_ms < left ? cap_ms : left;
}

void kiln_cancel_shutdown(void)
{
    atomic_store(&shutting_down, 1);
}

void kiln_cancel_reset_shutdown(void)
{
    atomic_store(&shutting_down, 0);
}
