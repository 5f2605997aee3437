/* SPDX-License-Identifier: Apache-2.0
 * clock: the one home of time. Free functions read the system clocks;
 * a kiln_clock is a clock passed in, so code that waits on time (heartbeats,
 * leases, cuts) can be driven by a test's manual clock instead of sleeping.
 * Thread-safe. */
#ifndef KILN_CLOCK_H
#define KILN_CLOCK_H
#include <stdint.h>
#include <time.h>

/** Wall-clock time (CLOCK_REALTIME) in nanoseconds since the epoch. */
int64_t kiln_wall_ns(void);
/** Wall-clock time in milliseconds since the epoch. */
int64_t kiln_wall_ms(void);
/** Monotonic time (CLOCK_MONOTONIC) in nanoseconds: for durations. */
int64_t kiln_mono_ns(void);
/** The CLOCK_REALTIME instant ns from now, as pthread_cond_timedwait takes it. */
struct timespec kiln_deadline_in(int64_t ns);
/** The same on CLOCK_MONOTONIC, for a condition variable made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC) (immune to wall-clock steps). */
struct timespec kiln_mono_deadline_in(int64_t ns);

/** A clock that can be injected: wall and monotonic time in nanoseconds. */
typedef struct kiln_clock {
    int64_t (*wall_ns)(void *ctx);
    int64_t (*mono_ns)(void *ctx);
    void *ctx;
} kiln_clock;

/** The system's clocks. */
extern const kiln_clock kiln_system_clock;

/** A test's clock: time moves only when kiln_manual_clock_advance says so. */
typedef struct kiln_manual_clock {
    kiln_clock clock; /* pass &m->clock where a clock is taken */
    int64_t wall_ns;  /* atomically read and advanced */
    int64_t mono_ns;
} kiln_manual_clock;

/** Starts a manual clock at the given wall time (monotonic time at 1 s). */
void kiln_manual_clock_init(kiln_manual_clock *m, int64_t wall_ns);
/** Moves a manual clock forward by ns (both clocks). */
void kiln_manual_clock_advance(kiln_manual_clock *m, int64_t ns);
#endif
