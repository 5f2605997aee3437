/* SPDX-License-Identifier: Apache-2.0
 * appname: the `name` query parameter of Pyroscope's /ingest,
 * `app.name{k=v,k2=v2}` (Pyroscope's labelset.Parse):
 *   - the app name runs to the first '{', spaces around it trimmed; it must
 *     be 1+ characters of [A-Za-z0-9_.\-/];
 *   - a tag key runs to '=' (a '}' first ends the list, and a key without
 *     '=' is ignored), then its value, unquoted, to the next ',' or '}';
 *     keys and values are trimmed; keys must be 1+ characters of
 *     [A-Za-z0-9_.]; anything after the closing '}' is ignored, and a tag
 *     whose value is not terminated is dropped (as upstream does);
 *   - a later tag replaces an earlier one with the same key; a `__name__`
 *     tag replaces the app name (it must be a valid app name);
 *   - keys starting with "__" are dropped, except `__session_id__`; tags with
 *     an empty value are dropped.
 * Results are arena strings; no state. */
#ifndef KILN_APPNAME_H
#define KILN_APPNAME_H

#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "labels.h"
#include "status.h"

typedef struct kiln_appname {
    const char *name;   /* the app name (arena, NUL-terminated), suffix included */
    kiln_label_t *tags; /* arena array, in first-appearance order */
    size_t n_tags;
} kiln_appname_t;

/** Parses s[0..len) into *out. KILN_INVALID_ARGUMENT with a message naming
 * the problem ("service name is required", "invalid character '$' in app
 * name", "invalid label name \"a-b\"") otherwise; KILN_RESOURCE_EXHAUSTED
 * past the arena's cap. Writes *out only on KILN_OK. */
kiln_status kiln_appname_parse(kiln_arena_t *a, const char *s, size_t len, kiln_appname_t *out,
                               kiln_err *err);

/** The value of tag key, or NULL. */
const char *kiln_appname_tag(const kiln_appname_t *n, const char *key);

/** Splits an app name at its last '.': *app gets the part before (arena
 * string) and the return value the suffix after; no dot gives the whole
 * name as app and NULL. */
const char *kiln_appname_split(kiln_arena_t *a, const char *name, const char **app);

#endif
