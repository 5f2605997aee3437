/* SPDX-License-Identifier: Apache-2.0
 * log: one logfmt line per event on stderr
 * (`ts=... level=warn mod=ingester msg="..."`). The level is set once in main
 * before threads start; calls below the level cost one comparison. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

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
