/* SPDX-License-Identifier: Apache-2.0
 * jfr_int: what jfr.c (events, profiles), jfr_meta.c (reader, metadata)
 * and jfr_pool.c (constant pools, values) share. Not a public header. */
#ifndef KILN_JFR_INT_H
#define KILN_JFR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "pprof_build.h"
#include "status.h"

#define JFR_MAX_CLASSES 65536 /* JDK 21 declares ~200 */
#define JFR_MAX_FIELDS 1024   /* per class */
#define JFR_MAX_NEST 16       /* inline structs within structs; elements of metadata */

/* A bounded reader over [p, end). Errors are sticky: once bad is set every
 * read returns 0 and the caller checks bad where it matters. */
typedef struct jfr_reader {
    const uint8_t *p, *end;
    bool compressed; /* integers are LEB128 (feature bit 0), else big-endian */
    bool bad;
    uint64_t *budget; /* values left to read in this body (bounds the work) */
} jfr_reader;

/* A string as a value holds it: inline bytes or a java.lang.String pool key. */
typedef struct jfr_str {
    kiln_str_t s;
    uint64_t ref;
    bool is_ref;
} jfr_str;

/* Primitive kinds; JFR_STRUCT is any class with fields. */
enum {
    JFR_STRUCT,
    JFR_BOOL,
    JFR_BYTE,
    JFR_CHAR,
    JFR_SHORT,
    JFR_INT,
    JFR_LONG,
    JFR_FLOAT,
    JFR_DOUBLE,
    JFR_STRING
};

/* Field names the reader looks up; jfr_class.ix holds their indices. */
enum {
    F_STACK,
    F_STATE,
    F_CONTEXT,
    F_SAMPLES,
    F_TLAB,
    F_ALLOC_SIZE,
    F_WEIGHT,
    F_DURATION,
    F_SIZE,
    F_NAME,
    F_VALUE,
    F_TYPE,
    F_LINE,
    F_METHOD,
    F_FRAMES,
    F_TRUNCATED,
    F_STRING,
    F_SPAN_ID,
    F_SPAN_NAME,
    F_COUNT
};

/* What a class is to the reader: a constant pool it keeps, an event it
 * converts, or neither (read past). */
enum {
    R_NONE,
    R_SYMBOL,
    R_STRING,
    R_CLASS,
    R_METHOD,
    R_STACK,
    R_STATE,
    R_STACK_FRAME,
    R_CHUNK_HEADER,
    E_EXEC,
    E_WALL,
    E_TLAB_IN,
    E_TLAB_OUT,
    E_ALLOC_SAMPLE,
    E_LIVE,
    E_MONITOR,
    E_PARK,
    E_SETTING,
    E_MALLOC
};

typedef struct jfr_field {
    const char *name;
    uint64_t type;
    bool cpool, array;
} jfr_field;

typedef struct jfr_class {
    uint64_t id;
    const char *name;
    jfr_field *fields;
    uint32_t n_fields;
    uint8_t prim, role;
    int16_t ix[F_COUNT]; /* field index of each F_ name, -1 when absent */
} jfr_class;

/* An open-addressing map from a 64-bit key to a 32-bit index, in an arena. */
typedef struct jfr_map {
    uint64_t *keys;
    uint32_t *vals; /* index + 1; 0 marks an empty slot */
    size_t cap, len;
} jfr_map;

/* A value of a field as the reader keeps it: integers (and pool keys,
 * booleans, counts) in i, strings in s. */
typedef struct jfr_val {
    int64_t i;
    jfr_str s;
} jfr_val;

typedef struct jfr_frame {
    uint64_t method;
    int64_t line;
} jfr_frame;

typedef struct jfr_stack {
    uint32_t off, n; /* into jfr_pools.frames */
} jfr_stack;

typedef struct jfr_method {
    uint64_t cls, name;
    kiln_str_t resolved; /* "class.method", .ptr NULL until resolved */
} jfr_method;

/* A growable array in an arena. */
typedef struct jfr_vec {
    void *v;
    size_t len, cap;
} jfr_vec;

/* The constant pools of one chunk that the conversion uses. */
typedef struct jfr_pools {
    jfr_map symbol, string, cls, method, stack, state;
    jfr_vec symbols, strings, classes, methods, stacks, states, frames;
    size_t n_entries; /* entries kept, all pools */
} jfr_pools;

/* One chunk's metadata. */
typedef struct jfr_meta {
    jfr_class *classes;
    size_t n;
    jfr_map by_id;
} jfr_meta;

/* reader (jfr_meta.c) */
uint64_t kiln_jfr__long(jfr_reader *r);
uint8_t kiln_jfr__byte(jfr_reader *r);
int64_t kiln_jfr__int_of(jfr_reader *r, uint8_t prim);
jfr_str kiln_jfr__string(jfr_reader *r, kiln_arena_t *a);
bool kiln_jfr__spend(jfr_reader *r, uint64_t n);

/* map and vec (jfr_meta.c); false past the arena's cap */
bool kiln_jfr__map_put(kiln_arena_t *a, jfr_map *m, uint64_t key, uint32_t val);
bool kiln_jfr__map_get(const jfr_map *m, uint64_t key, uint32_t *val);
void *kiln_jfr__vec_push(kiln_arena_t *a, jfr_vec *v, size_t elem);

/* metadata (jfr_meta.c) */
kiln_status kiln_jfr__read_meta(kiln_arena_t *a, jfr_reader *r, jfr_meta *m, kiln_err *err);
const jfr_class *kiln_jfr__class(const jfr_meta *m, uint64_t id);

/* values and pools (jfr_pool.c) */
void kiln_jfr__read_struct(jfr_reader *r, kiln_arena_t *a, const jfr_meta *m, const jfr_class *c,
                           int depth, jfr_val *vals);
kiln_status kiln_jfr__read_pools(kiln_arena_t *a, jfr_reader *chunk, size_t cp_off,
                                 const jfr_meta *m, jfr_pools *pools, kiln_err *err);
kiln_str_t kiln_jfr__resolve(const jfr_pools *pools, jfr_str s);
kiln_str_t kiln_jfr__frame_name(kiln_arena_t *a, jfr_pools *pools, uint64_t method);

/* A LabelsSnapshot (jfr_labels.c): context id -> label pairs of string ids. */
typedef struct kiln_jfr_context {
    uint32_t off, n; /* pairs [off, off + n) */
} kiln_jfr_context;

typedef struct kiln_jfr_labels {
    jfr_map string_ids, context_ids;
    jfr_vec strings;  /* kiln_str_t */
    jfr_vec contexts; /* kiln_jfr_context */
    jfr_vec pairs;    /* int64_t key id, value id */
} kiln_jfr_labels;

kiln_status kiln_jfr__labels_parse(kiln_arena_t *a, const uint8_t *data, size_t len,
                                   kiln_jfr_labels *out, kiln_err *err);
/* String id of the snapshot's string table; "" when absent. */
kiln_str_t kiln_jfr__labels_string(const kiln_jfr_labels *l, int64_t id);
/* The labels of context ctx (none for 0 or an unknown id), in arena memory
 * with room for 2 more. */
size_t kiln_jfr__labels_of(kiln_arena_t *a, const kiln_jfr_labels *l, uint64_t ctx,
                           kiln_pprof_build_label **out);

#endif
