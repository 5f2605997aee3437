/* SPDX-License-Identifier: Apache-2.0
 * pprof: a hand-written decoder of pprof `Profile` bytes (perftools.profiles
 * numbering) into flat arrays in a request arena, a strict validator, a
 * tolerant normaliser, and an encoder. Faster than protobuf-c: no per-message
 * allocation (one pass over the bytes counts the elements, a second fills
 * arena arrays of exactly that size), strings are views into the input (which
 * must outlive the profile). One thread per profile; no global state.
 *
 * Pipeline: kiln_pprof_decode -> kiln_pprof_validate -> kiln_pprof_normalize
 * (or kiln_pprof_validate_normalize for the last two at once).
 * After normalize every reference is a 0-based index into its array (see the
 * field comments), so consumers never look ids up. */
#ifndef KILN_PPROF_H
#define KILN_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "status.h"

#define KILN_PPROF_NONE UINT32_MAX

typedef struct kiln_pprof_value_type {
    int64_t type; /* string index */
    int64_t unit; /* string index */
} kiln_pprof_value_type;

typedef struct kiln_pprof_label {
    int64_t key; /* string index */
    int64_t str; /* string index; 0 for a numeric label */
    int64_t num;
    int64_t num_unit; /* string index */
} kiln_pprof_label;

typedef struct kiln_pprof_sample {
    /* Stack, leaf first: locs[loc_off .. loc_off+n_locs). Before normalize
     * these are location ids; after, indices into locations[]. */
    uint32_t loc_off;
    uint32_t n_locs;
    /* values[value_off .. value_off+n_values); after validate
     * n_values == n_sample_types. */
    uint32_t value_off;
    uint32_t n_values;
    /* labels[label_off .. label_off+n_labels) */
    uint32_t label_off;
    uint32_t n_labels;
} kiln_pprof_sample;

typedef struct kiln_pprof_mapping {
    uint64_t id;
    uint64_t memory_start;
    uint64_t memory_limit;
    uint64_t file_offset;
    int64_t filename; /* string index */
    int64_t build_id; /* string index */
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} kiln_pprof_mapping;

typedef struct kiln_pprof_line {
    /* Before normalize a function id (0 = none); after, an index into
     * functions[] or KILN_PPROF_NONE. */
    uint64_t function;
    int64_t line;
    int64_t column;
} kiln_pprof_line;

typedef struct kiln_pprof_location {
    uint64_t id;
    /* Before normalize a mapping id (0 = unknown); after, an index into
     * mappings[] (a stub mapping is appended for mapping_id 0 when needed). */
    uint64_t mapping;
    uint64_t address;
    /* lines[line_off .. line_off+n_lines); the last is the outermost caller. */
    uint32_t line_off;
    uint32_t n_lines;
    bool is_folded;
} kiln_pprof_location;

typedef struct kiln_pprof_function {
    uint64_t id;
    int64_t name;        /* string index */
    int64_t system_name; /* string index */
    int64_t filename;    /* string index */
    int64_t start_line;
} kiln_pprof_function;

/** A decoded profile. All arrays live in the arena given to decode. */
typedef struct kiln_pprof {
    kiln_pprof_value_type *sample_types;
    size_t n_sample_types;
    kiln_pprof_sample *samples;
    size_t n_samples;
    uint64_t *locs; /* all samples' stacks, concatenated */
    size_t n_locs;
    int64_t *values; /* all samples' values, concatenated */
    size_t n_values;
    kiln_pprof_label *labels; /* all samples' labels, concatenated */
    size_t n_labels;
    kiln_pprof_mapping *mappings;
    size_t n_mappings;
    kiln_pprof_location *locations;
    size_t n_locations;
    kiln_pprof_line *lines; /* all locations' lines, concatenated */
    size_t n_lines;
    kiln_pprof_function *functions;
    size_t n_functions;
    kiln_str_t *strings; /* views into the decoded input bytes */
    size_t n_strings;
    int64_t *comments; /* string indices */
    size_t n_comments;
    int64_t drop_frames, keep_frames; /* string indices */
    int64_t time_nanos, duration_nanos;
    kiln_pprof_value_type period_type;
    int64_t period;
    int64_t default_sample_type; /* string index */
    int64_t doc_url;             /* string index */
} kiln_pprof_t;

/** Decodes raw (not gzipped) pprof bytes into *out, allocating from a.
 * data must outlive *out (strings point into it). Fields may come in any
 * order; repeated scalars may be packed or not; unknown fields of every wire
 * type (groups included) are skipped; a known field with the wrong wire type
 * is an error. Empty input decodes to an empty profile (validate rejects it).
 * Returns KILN_OK, or KILN_INVALID_ARGUMENT with err naming the malformed
 * field and offset ("pprof: truncated field 2 of Sample at offset 1234"), or
 * KILN_RESOURCE_EXHAUSTED when the arena cap is hit. Writes *out only on OK. */
kiln_status kiln_pprof_decode(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_pprof_t *out,
                              kiln_err *err);

/** Strict checks, each failing with KILN_INVALID_ARGUMENT and a message that
 * says what is wrong: no sample types; string_table empty or [0] != "";
 * any string index out of range; a string that is not valid UTF-8; a sample
 * whose value count != sample type count; a sample that references a
 * location id no Location has; a line that references a nonzero function id
 * no Function has. Tolerated here and fixed by normalize: ids out of order
 * or not dense, mapping_id 0 or unknown, duplicate empty strings. When every
 * function (location, mapping) has id 0 the producer left ids out, and entry
 * i has id i+1; otherwise id 0 is an ordinary id. Of duplicate ids the first
 * entry wins. Uses (and frees) temporary memory of its own; does not block. */
kiln_status kiln_pprof_validate(const kiln_pprof_t *p, kiln_err *err);

/** Tolerant normalisation of a validated profile, in place (allocating
 * from a): ids (any order, not dense) become 0-based indices, and the id
 * fields themselves become index+1; locations with mapping_id 0 or an
 * unknown mapping_id point at one stub mapping (appended, all zero);
 * locations with no lines and address 0 are removed, from stacks and from
 * locations[]; stacks deeper than max_depth keep the root-most max_depth
 * frames (0 = no limit); string indices of empty strings become 0; labels
 * without a string value (numeric ones, and str "") are dropped, as
 * upstream does, and each sample's other labels are sorted; samples with the
 * same stack and the same labels (in any order) are summed into the first
 * (sums wrap on int64 overflow); then samples with no positive value are
 * dropped (all zero, or the negative-only samples of delta heap profiles);
 * negative values of the samples kept stay. Sample order is otherwise kept.
 * Not for a profile that is already normalised. Returns KILN_OK, or
 * KILN_RESOURCE_EXHAUSTED past the arena cap, in which case p is left
 * unchanged. */
kiln_status kiln_pprof_normalize(kiln_arena_t *a, kiln_pprof_t *p, size_t max_depth, kiln_err *err);

/** kiln_pprof_validate then kiln_pprof_normalize, in one pass where they
 * overlap (the id maps are built once, each stack frame and string index
 * looked at once): same results and errors, except that on an error p is
 * left half rewritten and must not be used further. */
kiln_status kiln_pprof_validate_normalize(kiln_arena_t *a, kiln_pprof_t *p, size_t max_depth,
                                          kiln_err *err);

/** The symbol tables (strings, mappings, functions, locations, lines) of
 * profiles that share them, as an OTLP export's series share its
 * dictionary: validated and normalised once, by kiln_pprof_symbols_prepare,
 * then taken by each profile's kiln_pprof_samples_prepare. Opaque; lives in
 * the arena given to kiln_pprof_symbols_prepare. */
typedef struct kiln_pprof_symbols kiln_pprof_symbols;

/** The symbol half of kiln_pprof_validate_normalize, in place on p's
 * tables: the string table, the string indices of mappings and functions
 * and the function ids of lines are checked (same errors), then functions,
 * locations and mappings are normalised. *out (in a) is what
 * kiln_pprof_samples_prepare needs. p's samples are not looked at; p must
 * not be normalised further, and the other profiles sharing the tables
 * must not be validated or normalised but through
 * kiln_pprof_samples_prepare. On an error the tables are left half
 * rewritten. Writes *out only on KILN_OK. */
kiln_status kiln_pprof_symbols_prepare(kiln_arena_t *a, kiln_pprof_t *p, kiln_pprof_symbols **out,
                                       kiln_err *err);

/** The sample half of kiln_pprof_validate_normalize for a profile whose
 * symbol tables sym (borrowed) prepared: p takes sym's normalised tables,
 * then its sample types, string indices outside the tables, values and
 * stacks are checked (same errors) and its samples normalised. A profile
 * gets what kiln_pprof_validate_normalize would give it with these tables.
 * On an error p's samples are left half rewritten. */
kiln_status kiln_pprof_samples_prepare(kiln_arena_t *a, kiln_pprof_t *p,
                                       const kiln_pprof_symbols *sym, size_t max_depth,
                                       kiln_err *err);

/** Encodes p as pprof bytes (not gzipped) appended to out. Works on decoded
 * (normalized false: ids written as they are) or normalised profiles
 * (normalized true: index i is written as id i+1, KILN_PPROF_NONE as 0).
 * Repeated scalars are packed and zero scalars left out, as proto3 does.
 * Returns false only when out's max is reached, leaving out's length as it
 * was. */
bool kiln_pprof_encode(const kiln_pprof_t *p, bool normalized, kiln_buf *out);

/** The string at index i, or an empty view when i is out of range. */
static inline kiln_str_t kiln_pprof_str(const kiln_pprof_t *p, int64_t i)
{
    if (i < 0 || (uint64_t)i >= p->n_strings) {
        kiln_str_t e = {"", 0};
        return e;
    }
    return p->strings[i];
}

#endif
