/* SPDX-License-Identifier: Apache-2.0
 * time_param: the `from` and `until` query parameters of Pyroscope's /ingest
 * (Pyroscope's pkg/og/util/attime, after graphite's attime). After trimming
 * and removing '_', ',' and ' ':
 *   - all digits: 8 digits that form a valid date YYYYMMDD after 1900 are
 *     that day at 00:00 UTC; otherwise 13 digits are Unix milliseconds, 16
 *     microseconds, 19 nanoseconds, and any other length Unix seconds;
 *   - anything else is "now" plus offsets after the first '+' or '-':
 *     `now-1h`, `now-1h30m`, `-90s`. Units by prefix: s(econds), min/m,
 *     h, d, w, mon/M (30 days), y (365 days); an unknown unit counts 0.
 * Like Pyroscope it never fails: text it cannot read is "now". Results
 * saturate at the int64 range. No state; thread-safe. */
#ifndef KILN_TIME_PARAM_H
#define KILN_TIME_PARAM_H

#include <stddef.h>
#include <stdint.h>

/** Parses s[0..len) as Unix nanoseconds, now_ns being "now". */
int64_t kiln_time_param_parse(const char *s, size_t len, int64_t now_ns);

#endif
