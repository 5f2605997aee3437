/* SPDX-License-Identifier: Apache-2.0
 * log: one logfmt line per event on stderr
 * (`ts=... level=warn mod=ingester msg="..."`). The level is set once in main
 * before threads start; calls below the level cost one comparison. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum kiln_log_level {
    KILN_LOG_LEVEL_DEBUG = 0,
    KILN_LOG_LEVEL_INFO = 1,
    KILN_LOG_LEVEL_WARN = 2,
    KILN_LOG_LEVEL_ERROR = 3,
} kiln_log_level;

extern kiln_log_level kiln_log_min;

/** Parses "debug|info|warn|error"; returns -1 when unknown. */
int kiln_log_parse_level(const char *s);

/** Writes one line; use the KILN_LOG_* macros instead. */
void kiln_log_write(kiln_log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log sampling: repeated rejections (one tenant, one reason) are logged for
 * the first KILN_LOG_SAMPLE_BURST events per KILN_LOG_SAMPLE_INTERVAL_NS and
 * only counted after that, so one misbehaving client cannot flood the log. */
#define KILN_LOG_SAMPLE_BURST 5
#define KILN_LOG_SAMPLE_INTERVAL_NS (10LL * 1000000000LL)

typedef struct kiln_log_sampler kiln_log_sampler_t;

/** Creates a sampler letting burst events per key through per interval_ns. */
kiln_log_sampler_t *kiln_log_sampler_create(unsigned burst, int64_t interval_ns);
/** Frees it; NULL is a no-op. */
void kiln_log_sampler_destroy(kiln_log_sampler_t *s);
/** Whether an event for (tenant, reason) at now_ns (monotonic) may be logged;
 * false counts it as suppressed. Keys share slots of a fixed table, so two
 * keys may share one budget (never more lines than burst x slots).
 * Thread-safe. */
bool kiln_log_sampler_allow(kiln_log_sampler_t *s, const char *tenant, const char *reason,
                            int64_t now_ns);
/** Events suppressed so far. */
uint64_t kiln_log_sampler_suppressed(const kiln_log_sampler_t *s);

/** kiln_log_sampler_allow on the process's sampler (the log sink's), now. */
bool kiln_log_sample(const char *tenant, const char *reason);
/** Events the process's sampler suppressed (kiln_log_suppressed_total). */
uint64_t kiln_log_suppressed_total(void);

/** A warning for a rejection, sampled per tenant and reason. */
#define KILN_LOG_WARN_SAMPLED(tenant, reason, mod, ...)                                            \
    do {                                                                                           \
        if (KILN_LOG_LEVEL_WARN >= kiln_log_min && kiln_log_sample((tenant), (reason)))            \
            kiln_log_write(KILN_LOG_LEVEL_WARN, (mod), __VA_ARGS__);                               \
    } while (0)

#define KILN_LOG(lvl, mod, ...)                                                                    \
    do {                                                                                           \
        if ((lvl) >= kiln_log_min)                                                                 \
            kiln_log_write((lvl), (mod), __VA_ARGS__);                                             \
    } while (0)
#define KILN_LOG_DEBUG(mod, ...) KILN_LOG(KILN_LOG_LEVEL_DEBUG, mod, __VA_ARGS__)
#define KILN_LOG_INFO(mod, ...) KILN_LOG(KILN_LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define KILN_LOG_WARN(mod, ...) KILN_LOG(KILN_LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define KILN_LOG_ERROR(mod, ...) KILN_LOG(KILN_LOG_LEVEL_ERROR, mod, __VA_ARGS__)

#endif
