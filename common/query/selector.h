/* SPDX-License-Identifier: Apache-2.0
 * selector: FlameQL, the query language users type, parsed into a profile
 * type and label matchers, and matching against sorted label sets.
 *
 * Grammar (docs/flameql.md):
 *   query    := [ type ] '{' [ matcher { ',' matcher } [ ',' ] ] '}'  |  type
 *   type     := profile type id `name:type:unit:ptype:punit` (optionally
 *               `:delta`) | legacy `app.name.suffix` (Pyroscope <= 0.37)
 *   matcher  := name op string
 *   name     := [A-Za-z_][A-Za-z0-9_.]* | "quoted UTF-8"
 *   op       := '=' | '!=' | '=~' | '!~'
 *   string   := "double quoted" | 'single quoted' | `backquoted` with Go escapes
 * Regexes are RE2-style, fully anchored (PCRE2 in UTF mode with
 * PCRE2_ANCHORED|PCRE2_ENDANCHORED, the unescapable form of ^(?:...)$, and
 * DOTALL as Prometheus' ^(?s:...)$). `l=""` matches series without l; `{}`
 * selects everything. A legacy `app.name.cpu{...}` query becomes
 * service_name="app.name", __name__ and __type__ matchers for the suffix
 * (cpu -> process_cpu/cpu, ...), placed before the braces' matchers; a type
 * with no '.' and no ':' or an unknown suffix is an error.
 * A selector is immutable after parse and may be shared between threads
 * (kiln_selector_add is the exception: call it before sharing). */
#ifndef KILN_SELECTOR_H
#define KILN_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "labels.h"
#include "status.h"

typedef enum kiln_match_op {
    KILN_MATCH_EQ,
    KILN_MATCH_NEQ,
    KILN_MATCH_RE,
    KILN_MATCH_NRE,
} kiln_match_op;

typedef struct kiln_matcher kiln_matcher_t;
typedef struct kiln_selector kiln_selector_t;

/** Parses a FlameQL query of len bytes (no NUL needed). On error returns
 * KILN_INVALID_ARGUMENT with err in the form `1:17: unexpected "}"`
 * (line:column, 1-based, of the offending character; columns count UTF-8
 * characters) or `1:5: invalid regexp "...": <reason>`. Writes *out only on
 * OK; the caller destroys it. */
kiln_status kiln_selector_parse(const char *query, size_t len, kiln_selector_t **out,
                                kiln_err *err);

/** Frees a selector; NULL is a no-op. */
void kiln_selector_destroy(kiln_selector_t *s);

/** The profile type id written before the braces ("" when none), without a
 * trailing ":delta"; parse also adds the matcher __profile_type__="<id>" for
 * it, after the braces' matchers. For the legacy form this is "" too and the
 * type is expressed as matchers. */
const char *kiln_selector_profile_type(const kiln_selector_t *s);

/** Adds a matcher (used to add __profile_type__="<id>" from a request
 * field). Returns KILN_INVALID_ARGUMENT when a regex does not compile. */
kiln_status kiln_selector_add(kiln_selector_t *s, const char *name, kiln_match_op op,
                              const char *value, kiln_err *err);

/** True when the sorted label set satisfies every matcher. A missing label
 * has the value "". Thread-safe on a shared selector. */
bool kiln_selector_match(const kiln_selector_t *s, const kiln_label_t *l, size_t n);

/** Number of matchers, and the i-th matcher's parts (for planning and
 * tests; strings borrowed from s; i must be < count). */
size_t kiln_selector_count(const kiln_selector_t *s);
void kiln_selector_get(const kiln_selector_t *s, size_t i, const char **name, kiln_match_op *op,
                       const char **value);

/** Appends s in the braces form that kiln_selector_parse reads back to an
 * equivalent selector: `{"name"="value",...}` with every matcher (the
 * type's __profile_type__ matcher too), names and values double-quoted
 * with Go escapes. Used to send a parsed query to another process. */
void kiln_selector_format(const kiln_selector_t *s, kiln_buf *out);

#endif
