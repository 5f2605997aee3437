/* SPDX-License-Identifier: Apache-2.0
 * clock: system and manual clocks (clock.h). */
#include "clock.h"

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t kiln_wall_ns(void)
{
    return read_clock(CLOCK_REALTIME);
}

int64_t kiln_wall_ms(void)
{
    return read_clock(CLOCK_REALTIME) / 1000000;
}

int64_t kiln_mono_ns(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

static struct timespec instant_in(clockid_t id, int64_t ns)
{
    int64_t at = read_clock(id) + (ns > 0 ? ns : 0);
    return (struct timespec){.tv_sec = (time_t)(at / 1000000000LL),
                             .tv_nsec = (long)(at % 1000000000LL)};
}

struct timespec kiln_deadline_in(int64_t ns)
{
    return instant_in(CLOCK_REALTIME, ns);
}

struct timespec kiln_mono_deadline_in(int64_t ns)
{
    return instant_in(CLOCK_MONOTONIC, ns);
}

static int64_t system_wall(void *ctx)
{
    (void)ctx;
    return kiln_wall_ns();
}

static int64_t system_mono(void *ctx)
{
    (void)ctx;
    return kiln_mono_ns();
}

const kiln_clock kiln_system_clock = {system_wall, system_mono, NULL};

static int64_t manual_wall(void *ctx)
{
    kiln_manual_clock *m = ctx;
    return __atomic_load_n(&m->wall_ns, __ATOMIC_ACQUIRE);
}

static int64_t manual_mono(void *ctx)
{
    kiln_manual_clock *m = ctx;
    return __atomic_load_n(&m->mono_ns, __ATOMIC_ACQUIRE);
}

void kiln_manual_clock_init(kiln_manual_clock *m, int64_t wall_ns)
{
    m->clock = (kiln_clock){manual_wall, manual_mono, m};
    m->wall_ns = wall_ns;
    m->mono_ns = 1000000000LL;
}

void kiln_manual_clock_advance(kiln_manual_clock *m, int64_t ns)
{
    __atomic_add_fetch(&m->wall_ns, ns, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&m->mono_ns, ns, __ATOMIC_ACQ_REL);
}
