/* SPDX-License-Identifier: Apache-2.0
 * labels: series label sets as Pyroscope defines them. A set is an array of
 * name/value pairs sorted by name with unique names; its fingerprint is
 * xxhash64 over "name\xffvalue\xff..." (Pyroscope's). Also the profile type
 * ID `<__name__>:<type>:<unit>:<period_type>:<period_unit>` and the
 * reserved label names. Strings are borrowed; no state. */
#ifndef KILN_LABELS_H
#define KILN_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define KILN_LABEL_NAME "__name__"
#define KILN_LABEL_SERVICE_NAME "service_name"
#define KILN_LABEL_SERVICE_NAME_PRIV "__service_name__"
#define KILN_LABEL_PROFILE_TYPE "__profile_type__"
#define KILN_LABEL_TYPE "__type__"
#define KILN_LABEL_UNIT "__unit__"
#define KILN_LABEL_PERIOD_TYPE "__period_type__"
#define KILN_LABEL_PERIOD_UNIT "__period_unit__"
#define KILN_LABEL_DELTA "__delta__"

/** One label; both strings NUL-terminated and borrowed. */
typedef struct kiln_label {
    const char *name;
    const char *value;
} kiln_label_t;

/** Sorts labels by name (bytewise). */
void kiln_labels_sort(kiln_label_t *l, size_t n);

/** Finds a label's value in a sorted set; NULL when absent. */
const char *kiln_labels_get(const kiln_label_t *l, size_t n, const char *name);

/** Fingerprint of a sorted set (xxhash64 over name\xffvalue\xff...). */
uint64_t kiln_labels_fingerprint(const kiln_label_t *l, size_t n);
/** kiln_labels_fingerprint, and in *tag 32 bits of another hash (XXH3) of
 * the same bytes: with the fingerprint, a 96-bit key that tells sets apart
 * without comparing their strings. */
uint64_t kiln_labels_fingerprint_tag(const kiln_label_t *l, size_t n, uint32_t *tag);

/** Checks a label set as Pyroscope's ValidateLabels does: at least one
 * label, at most max_names names, a valid __name__, a non-empty
 * service_name, names <= max_name_len bytes and values <= max_value_len
 * bytes (0 = no limit), no duplicate names (the set must be sorted), valid
 * UTF-8 without control characters (C0, DEL) in names or values.
 * KILN_INVALID_ARGUMENT with a message naming the label otherwise. */
kiln_status kiln_labels_validate(const kiln_label_t *l, size_t n, size_t max_names,
                                 size_t max_name_len, size_t max_value_len, kiln_err *err);

/** True for a legacy Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*). */
bool kiln_label_name_is_legacy(const char *s);

/** True when s[0..len) is valid UTF-8. */
bool kiln_utf8_valid(const char *s, size_t len);

#endif
