/* SPDX-License-Identifier: Apache-2.0
 * json_reader: a small pull reader for JSON (RFC 8259) over a byte range,
 * for the ingest formats that come as JSON (speedscope, sample_type_config).
 * No tree is built: the caller walks objects and arrays with begin/next and
 * reads scalars as it meets them; kiln_json_skip passes over any value
 * without recursion. Nesting is limited to KILN_JSON_MAX_DEPTH. The first
 * error sticks: every later call returns false and *err keeps its message
 * (KILN_INVALID_ARGUMENT naming the byte offset). Strings are views into the
 * input unless they contain escapes (then decoded into the arena). One thread
 * at a time; no allocation except for decoded strings. */
#ifndef KILN_JSON_READER_H
#define KILN_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "status.h"

#define KILN_JSON_MAX_DEPTH 64

typedef enum kiln_json_type {
    KILN_JSON_NONE = 0, /* end of input or an error */
    KILN_JSON_OBJECT,
    KILN_JSON_ARRAY,
    KILN_JSON_STRING,
    KILN_JSON_NUMBER,
    KILN_JSON_TRUE,
    KILN_JSON_FALSE,
    KILN_JSON_NULL,
} kiln_json_type;

typedef struct kiln_json {
    const char *buf;
    size_t len, pos;
    unsigned depth;
    /* Per open container: 'o' or 'a', upper case once it has an element. */
    char stack[KILN_JSON_MAX_DEPTH];
    bool failed;
    kiln_err *err;    /* may be NULL */
    const char *what; /* prefix for error messages, e.g. "speedscope" */
} kiln_json;

/** Starts reading the JSON text buf[0..len) (borrowed). what prefixes error
 * messages; err may be NULL. */
void kiln_json_init(kiln_json *j, const void *buf, size_t len, const char *what, kiln_err *err);

/** The type of the next value (skipping whitespace), NONE at the end or after
 * an error. Does not consume anything. */
kiln_json_type kiln_json_peek(kiln_json *j);

/** Consumes '{'. False (an error) when the next value is not an object. */
bool kiln_json_obj_begin(kiln_json *j);
/** Moves to the next member of the innermost object: true with *key set
 * (a raw view: escapes are not decoded) and the reader at the member's
 * value, which the caller must consume; false when the object ended (its
 * '}' is consumed) or on an error (see kiln_json_failed). */
bool kiln_json_obj_next(kiln_json *j, kiln_str_t *key);

/** Consumes '['. False (an error) when the next value is not an array. */
bool kiln_json_arr_begin(kiln_json *j);
/** True when the innermost array has another element (the reader is at
 * it); false when it ended (']' consumed) or on an error. */
bool kiln_json_arr_next(kiln_json *j);

/** Reads a string into *out: a view into the input, or arena memory when it
 * had escapes (\uXXXX becomes UTF-8; lone surrogates become U+FFFD). The
 * result is not NUL-terminated. */
bool kiln_json_str(kiln_json *j, kiln_arena_t *a, kiln_str_t *out);
/** Reads a number. */
bool kiln_json_num(kiln_json *j, double *out);
/** Reads true or false. */
bool kiln_json_bool(kiln_json *j, bool *out);
/** Consumes null; false (without an error) when the next value is not null. */
bool kiln_json_null(kiln_json *j);
/** Skips one value of any type (iteratively, however deep within the limit). */
bool kiln_json_skip(kiln_json *j);
/** Skips one value and returns its bytes, for a second reader to walk later. */
bool kiln_json_span(kiln_json *j, kiln_str_t *out);
/** True when only whitespace is left (an error otherwise). */
bool kiln_json_end(kiln_json *j);

/** True once an error was recorded. */
static inline bool kiln_json_failed(const kiln_json *j)
{
    return j->failed;
}

/** Records an error (the first one sticks) and returns false. */
bool kiln_json_fail(kiln_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** True when the raw key equals s, ignoring ASCII case (as Go's
 * encoding/json matches struct fields). */
bool kiln_json_key_is(kiln_str_t key, const char *s);

#endif
