/* SPDX-License-Identifier: Apache-2.0
 * pprof: a hand-written protobuf wire decoder for perftools.profiles.Profile
 * (a counting pass sizes the arena arrays, a filling pass decodes) and an
 * encoder; validation and normalisation are pprof_norm.c. The counting pass first
 * only bounds the nested arrays from their bytes; when a bound proves short
 * (only non-canonical tags do that) it is redone field by field. */
#include "pprof_int.h"

#include <stdlib.h>
#include <string.h>

#include "varint_block.h"
#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

/* ---- wire reading ---------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };
enum { VR_OK = 0, VR_TRUNC, VR_LONG };

/* Unknown groups nest; past this depth the input is rejected, not recursed. */
#define MAX_GROUP_DEPTH 64

typedef struct counts {
    size_t sample_types, samples, locs, values, labels, mappings, locations, lines, functions,
        strings, comments;
} counts;

/* Decoder state. In the exact mode both passes read the same bytes with the
 * same next_field, so every element the filling pass stores was counted by
 * the first pass and the capacity checks there are a second line of defence.
 * In the bounded mode the counts are upper bounds taken from bytes; a check
 * that fails then sets short_cap and the decode is redone exactly. */
typedef struct dec {
    const uint8_t *base;  /* start of the input, for error offsets */
    const uint8_t *limit; /* end of the input */
    kiln_err *err;
    kiln_pprof_t *p;
    counts cap;
    unsigned depth; /* of unknown groups being skipped */
    bool bounded;   /* cap holds byte bounds, not exact counts */
    bool short_cap; /* a bound proved too small: redo exactly */
} dec;

/* One field: its tag position, number and wire type, and its value (a
 * varint's value or a length-delimited field's length and payload). */
typedef struct field {
    const uint8_t *at;
    const uint8_t *data;
    uint64_t v;
    uint32_t num;
    uint32_t wt;
} field;

/* Any varint, checking bounds byte by byte (for the last bytes of the
 * input). A 10th byte above 1 would set bits past 64, and one with the
 * continuation bit makes 11+ bytes: both are VR_LONG, as in the reference
 * protobuf decoders. */
static int varint_slow(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (p == end)
            return VR_TRUNC;
        uint64_t b = *p++;
        if (shift == 63) {
            if (b > 1)
                return VR_LONG;
            v |= b << 63;
            break;
        }
        v |= (b & 0x7f) << shift;
        if (b < 0x80)
            break;
    }
    *out = v;
    *pp = p;
    return VR_OK;
}

/* A varint with at least 10 readable bytes at *pp: no bounds checks. The
 * short forms (ids, counts, string indices) are unrolled. */
static inline int varint_fast(const uint8_t **pp, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t b = p[0], v = b;
    if (LIKELY(b < 0x80)) {
        *out = v;
        *pp = p + 1;
        return VR_OK;
    }
    b = p[1], v += (b - 1) << 7; /* the -1 cancels the previous byte's 0x80 */
    if (b < 0x80) {
        *out = v;
        *pp = p + 2;
        return VR_OK;
    }
    b = p[2], v += (b - 1) << 14;
    if (b < 0x80) {
        *out = v;
        *pp = p + 3;
        return VR_OK;
    }
    for (unsigned i = 3; i < 10; i++) {
        b = p[i];
        v += (b - 1) << (7 * i);
        if (b < 0x80) {
            if (i == 9 && b > 1)
                break;
            *out = v;
            *pp = p + i + 1;
            return VR_OK;
        }
    }
    return VR_LONG;
}

static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (LIKELY(end - p >= 10))
        return varint_fast(pp, out);
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return VR_OK;
    }
    return varint_slow(pp, end, out);
}

static kiln_status wire_err(const dec *d, const char *what, uint32_t num, const char *msg,
                            const uint8_t *at)
{
    return kiln_err_set(d->err, KILN_INVALID_ARGUMENT, "pprof: %s field %u of %s at offset %zu",
                        what, num, msg, (size_t)(at - d->base));
}

static kiln_status tag_err(const dec *d, const char *what, const char *msg, const uint8_t *at)
{
    return kiln_err_set(d->err, KILN_INVALID_ARGUMENT, "pprof: %s tag in %s at offset %zu", what,
                        msg, (size_t)(at - d->base));
}

static kiln_status skip_group(dec *d, const uint8_t **pp, const uint8_t *end, uint32_t num,
                              const char *msg, const uint8_t *at);
static kiln_status next_field_slow(dec *d, const uint8_t **pp, const uint8_t *end, field *f,
                                   const char *msg);

/* Reads the field at *pp (bounded by end) into f and moves *pp past it.
 * Length-delimited payloads are checked to lie inside [*pp, end); unknown
 * groups are skipped whole. Inlined fast path: a one-byte tag of a varint or
 * length-delimited field with room for any varint after it; the rest, and
 * every error, goes to next_field_slow. */
static inline __attribute__((always_inline)) kiln_status
next_field(dec *d, const uint8_t **pp, const uint8_t *end, field *f, const char *msg)
{
    const uint8_t *p = *pp;
    /* Callers ensure p < end. Reading may run past end (the end of this
     * submessage) but never past d->limit (the end of the input); q <= end
     * is checked after. (t & 0x85) == 0: one tag byte, wire type 0 or 2. */
    if (LIKELY(d->limit - p >= 11 && (p[0] & 0x85) == 0 && p[0] >= 8)) {
        const uint8_t *q = p + 1;
        uint32_t wt = p[0] & 7;
        if (varint_fast(&q, &f->v) == VR_OK && q <= end &&
            (wt == WT_VARINT || f->v <= (uint64_t)(end - q))) {
            f->at = p;
            f->num = p[0] >> 3;
            f->wt = wt;
            f->data = q;
            *pp = wt == WT_VARINT ? q : q + f->v;
            return KILN_OK;
        }
    }
    return next_field_slow(d, pp, end, f, msg);
}

/* next_field for every case, errors included. */
static kiln_status next_field_slow(dec *d, const uint8_t **pp, const uint8_t *end, field *f,
                                   const char *msg)
{
    const uint8_t *p = *pp;
    uint64_t tag = 0;
    f->at = p;
    int r = get_varint(&p, end, &tag);
    if (UNLIKELY(r != VR_OK || tag > UINT32_MAX || tag < 8))
        return tag_err(d, r == VR_TRUNC ? "truncated" : "bad", msg, f->at);
    f->num = (uint32_t)tag >> 3;
    f->wt = (uint32_t)tag & 7;
    if (LIKELY(f->wt == WT_VARINT)) {
        r = get_varint(&p, end, &f->v);
    } else if (LIKELY(f->wt == WT_LEN)) {
        r = get_varint(&p, end, &f->v);
        if (r == VR_OK && f->v > (uint64_t)(end - p))
            return wire_err(d, "length past end in", f->num, msg, f->at);
        f->data = p;
        if (r == VR_OK)
            p += f->v;
    } else if (f->wt == WT_I64 || f->wt == WT_I32) {
        size_t n = f->wt == WT_I64 ? 8 : 4;
        if ((size_t)(end - p) < n)
            r = VR_TRUNC;
        else
            p += n;
    } else if (f->wt == WT_SGROUP) {
        kiln_status st = skip_group(d, &p, end, f->num, msg, f->at);
        if (st != KILN_OK)
            return st;
    } else {
        return wire_err(d, f->wt == WT_EGROUP ? "unmatched end group in" : "bad wire type in",
                        f->num, msg, f->at);
    }
    if (UNLIKELY(r != VR_OK))
        return wire_err(d, r == VR_TRUNC ? "truncated" : "varint longer than 10 bytes in", f->num,
                        msg, f->at);
    *pp = p;
    return KILN_OK;
}

/* Skips the body of unknown group num up to and including its end tag. */
static kiln_status skip_group(dec *d, const uint8_t **pp, const uint8_t *end, uint32_t num,
                              const char *msg, const uint8_t *at)
{
    if (d->depth >= MAX_GROUP_DEPTH)
        return wire_err(d, "groups nested too deep in", num, msg, at);
    d->depth++;
    const uint8_t *p = *pp;
    kiln_status st = KILN_OK;
    for (;;) {
        const uint8_t *q = p;
        uint64_t tag;
        if (p >= end) {
            st = wire_err(d, "truncated group", num, msg, at);
            break;
        }
        if (get_varint(&q, end, &tag) == VR_OK && (tag & 7) == WT_EGROUP) {
            if (tag >> 3 != num)
                st = wire_err(d, "mismatched end of group", num, msg, p);
            p = q;
            break;
        }
        field f;
        if ((st = next_field(d, &p, end, &f, msg)) != KILN_OK)
            break;
    }
    d->depth--;
    if (st == KILN_OK)
        *pp = p;
    return st;
}

static kiln_status want(const dec *d, const field *f, uint32_t wt, const char *msg)
{
    if (LIKELY(f->wt == wt))
        return KILN_OK;
    return kiln_err_set(d->err, KILN_INVALID_ARGUMENT,
                        "pprof: field %u of %s has wire type %u, want %u, at offset %zu", f->num,
                        msg, f->wt, wt, (size_t)(f->at - d->base));
}

/* ---- message tables ---------------------------------------------------------- */

/* Messages made only of varint scalars are decoded and encoded from a table
 * indexed by field number: where in the struct each field lives. */
enum { K_SKIP = 0, K_U64, K_BOOL };

typedef struct fdesc {
    uint8_t kind;
    uint16_t off;
} fdesc;

typedef struct msgdesc {
    const char *name;
    const fdesc *f;
    uint32_t n;
} msgdesc;

#define F8(T, m)                                                                                   \
    {                                                                                              \
        K_U64, (uint16_t)offsetof(T, m)                                                            \
    }
#define FB(T, m)                                                                                   \
    {                                                                                              \
        K_BOOL, (uint16_t)offsetof(T, m)                                                           \
    }
#define MSG(name, tab)                                                                             \
    {                                                                                              \
        name, tab, (uint32_t)(sizeof(tab) / sizeof(tab[0]))                                        \
    }

static const fdesc vt_fields[] = {
    {0, 0}, F8(kiln_pprof_value_type, type), F8(kiln_pprof_value_type, unit)};
static const fdesc label_fields[] = {{0, 0},
                                     F8(kiln_pprof_label, key),
                                     F8(kiln_pprof_label, str),
                                     F8(kiln_pprof_label, num),
                                     F8(kiln_pprof_label, num_unit)};
static const fdesc mapping_fields[] = {{0, 0},
                                       F8(kiln_pprof_mapping, id),
                                       F8(kiln_pprof_mapping, memory_start),
                                       F8(kiln_pprof_mapping, memory_limit),
                                       F8(kiln_pprof_mapping, file_offset),
                                       F8(kiln_pprof_mapping, filename),
                                       F8(kiln_pprof_mapping, build_id),
                                       FB(kiln_pprof_mapping, has_functions),
                                       FB(kiln_pprof_mapping, has_filenames),
                                       FB(kiln_pprof_mapping, has_line_numbers),
                                       FB(kiln_pprof_mapping, has_inline_frames)};
/* Field 4 (line) is a submessage, handled by dec_location. */
static const fdesc location_fields[] = {{0, 0},
                                        F8(kiln_pprof_location, id),
                                        F8(kiln_pprof_location, mapping),
                                        F8(kiln_pprof_location, address),
                                        {0, 0},
                                        FB(kiln_pprof_location, is_folded)};
static const fdesc line_fields[] = {
    {0, 0}, F8(kiln_pprof_line, function), F8(kiln_pprof_line, line), F8(kiln_pprof_line, column)};
static const fdesc function_fields[] = {{0, 0},
                                        F8(kiln_pprof_function, id),
                                        F8(kiln_pprof_function, name),
                                        F8(kiln_pprof_function, system_name),
                                        F8(kiln_pprof_function, filename),
                                        F8(kiln_pprof_function, start_line)};
/* The Profile's own scalars; its other fields are handled by fill_field. */
static const fdesc profile_fields[] = {
    [7] = F8(kiln_pprof_t, drop_frames), [8] = F8(kiln_pprof_t, keep_frames),
    [9] = F8(kiln_pprof_t, time_nanos),  [10] = F8(kiln_pprof_t, duration_nanos),
    [12] = F8(kiln_pprof_t, period),     [14] = F8(kiln_pprof_t, default_sample_type),
    [15] = F8(kiln_pprof_t, doc_url)};

static const msgdesc vt_msg = MSG("ValueType", vt_fields);
static const msgdesc label_msg = MSG("Label", label_fields);
static const msgdesc mapping_msg = MSG("Mapping", mapping_fields);
static const msgdesc location_msg = MSG("Location", location_fields);
static const msgdesc line_msg = MSG("Line", line_fields);
static const msgdesc function_msg = MSG("Function", function_fields);
static const msgdesc profile_msg = MSG("Profile", profile_fields);

/* Stores varint field f into obj as table m says; unknown fields are skipped
 * (next_field has already stepped over them). */
static inline kiln_status put_scalar(const dec *d, const field *f, const msgdesc *m, void *obj)
{
    if (f->num >= m->n || m->f[f->num].kind == K_SKIP)
        return KILN_OK;
    kiln_status st = want(d, f, WT_VARINT, m->name);
    if (st != KILN_OK)
        return st;
    char *dst = (char *)obj + m->f[f->num].off;
    if (m->f[f->num].kind == K_BOOL) {
        bool b = f->v != 0;
        memcpy(dst, &b, sizeof(b));
    } else {
        memcpy(dst, &f->v, sizeof(f->v)); /* int64 fields: two's complement, same bits */
    }
    return KILN_OK;
}

/* Decodes the scalar-only submessage in pf into obj (already zeroed, or
 * holding an earlier occurrence to merge into, as protobuf does). */
static kiln_status dec_scalars(dec *d, const field *pf, const msgdesc *m, void *obj)
{
    const uint8_t *p = pf->data, *end = p + pf->v;
    field f;
    while (p < end) {
        /* Fast path: a one-byte varint tag of a known int64 field, the whole
         * of a Line or Function in practice. */
        uint32_t t = p[0], num = t >> 3;
        if (LIKELY((t & 0x87) == 0 && num < m->n && m->f[num].kind == K_U64 &&
                   d->limit - p >= 11)) {
            const uint8_t *q = p + 1;
            uint64_t v;
            if (varint_fast(&q, &v) == VR_OK && q <= end) {
                memcpy((char *)obj + m->f[num].off, &v, sizeof(v));
                p = q;
                continue;
            }
        }
        kiln_status st = next_field(d, &p, end, &f, m->name);
        if (st == KILN_OK)
            st = put_scalar(d, &f, m, obj);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

/* ---- pass 1: counting ---------------------------------------------------------- */

/* Elements in a repeated scalar field: one when unpacked, one per final
 * varint byte when packed (an upper bound if the payload is malformed, which
 * the filling pass then rejects). */
static size_t count_packed(const field *f)
{
    if (f->wt != WT_LEN)
        return 1;
    size_t c = 0, i = 0, n = (size_t)f->v;
    for (; i + 8 <= n; i += 8) { /* eight bytes at a time: add up their clear top bits */
        uint64_t w;
        memcpy(&w, f->data + i, 8);
        c += (((~w >> 7) & 0x0101010101010101ULL) * 0x0101010101010101ULL) >> 56;
    }
    for (; i < n; i++)
        c += f->data[i] < 0x80;
    return c;
}

/* The tag byte of an unpacked Sample.location_id (field 1, varint). Java's
 * pprof writers send stacks so, one field per frame: both passes read
 * these without the general field decode. */
#define TAG_LOC_ID 0x08

/* Counts a run of unpacked location ids at p; returns where it ends. A
 * malformed varint is the filling pass's to reject. */
static const uint8_t *count_loc_ids(const uint8_t *p, const uint8_t *end, size_t *n)
{
    while (p < end && p[0] == TAG_LOC_ID) {
        for (p++; p < end && *p >= 0x80; p++) {
        }
        p += p < end;
        (*n)++;
    }
    return p;
}

/* Of eight bytes w: those with the top bit clear, and those equal to tag. */
static inline void count_word(uint64_t w, uint8_t tag, size_t *e, size_t *t)
{
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t x = w ^ (tag * ones); /* zero bytes where w has tag */
    x = ((x & low7) + low7) | x;   /* top bit set where x is non-zero */
    *e += (((~w >> 7) & ones) * ones) >> 56;
    *t += (((~x >> 7) & ones) * ones) >> 56;
}

/* Bytes with the top bit clear and bytes equal to a tag, counted over the
 * spans of one kind. With SSE2 part of the counts is still in per-lane
 * counters (see count_bytes_sse2), summed when a lane could wrap and once
 * at the end (bytes_total): Go interleaves Samples, Locations and Functions,
 * one span per element, and a sum per span cost more than its bytes. */
typedef struct byte_counts {
    size_t ends, tags;
#if defined(__SSE2__) && defined(__x86_64__)
    __m128i lane_ends, lane_tags;
    unsigned rounds; /* since the lanes were last summed */
#endif
} byte_counts;

#if defined(__SSE2__) && defined(__x86_64__)
/* The sum of the sixteen byte lanes of c. */
static inline size_t lanes_sum(__m128i c)
{
    __m128i s = _mm_sad_epu8(c, _mm_setzero_si128()); /* two 64-bit partial sums */
    return (size_t)_mm_cvtsi128_si64(s) + (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(s, s));
}

/* count_bytes sixteen bytes at a time: a compare gives -1 in each matching
 * lane, subtracted into per-lane counters that are summed every 255 rounds,
 * before one can wrap. The last partial block is read whole when the input
 * goes on, its bytes past n given the top bit so that they count as
 * neither. Returns how many bytes it counted. */
static size_t count_bytes_sse2(const uint8_t *p, size_t n, const uint8_t *limit, uint8_t tag,
                               byte_counts *bc)
{
    /* Loaded from past + 16 - r: r zero bytes (kept), then 0x80s. */
    static const uint8_t past[32] = {0,    0,    0,    0,    0,    0,    0,    0,
                                     0,    0,    0,    0,    0,    0,    0,    0,
                                     0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    const __m128i minus1 = _mm_set1_epi8(-1), tg = _mm_set1_epi8((char)tag);
    __m128i ce = bc->lane_ends, ct = bc->lane_tags;
    size_t i = 0, rounds = bc->rounds;
    for (;;) {
        size_t k = (n - i) / 16 < 255 - rounds ? (n - i) / 16 : 255 - rounds;
        for (size_t r = 0; r < k; r++, i += 16) {
            __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            ce = _mm_sub_epi8(ce, _mm_cmpgt_epi8(w, minus1)); /* top bit clear: w > -1 */
            ct = _mm_sub_epi8(ct, _mm_cmpeq_epi8(w, tg));
        }
        rounds += k;
        if (i < n && n - i < 16 && limit - (p + i) >= 16 && rounds < 255) {
            __m128i w =
                _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + i)),
                             _mm_loadu_si128((const __m128i *)(const void *)(past + 16 - (n - i))));
            ce = _mm_sub_epi8(ce, _mm_cmpgt_epi8(w, minus1));
            ct = _mm_sub_epi8(ct, _mm_cmpeq_epi8(w, tg));
            rounds++;
            i = n;
        }
        if (rounds < 255)
            break;
        bc->ends += lanes_sum(ce); /* a lane could wrap in the next round */
        bc->tags += lanes_sum(ct);
        ce = ct = _mm_setzero_si128();
        rounds = 0;
    }
    bc->lane_ends = ce;
    bc->lane_tags = ct;
    bc->rounds = (unsigned)rounds;
    return i;
}
#endif

/* Adds to bc the bytes of p[0..n) with the top bit clear (each ends one
 * varint), and the bytes equal to tag (below 0x80), sixteen (with SSE2) or
 * eight at a time. limit is the end of the input: a last partial word is
 * read whole when the input goes on, its bytes past n given the top bit so
 * that they count as neither. */
static void count_bytes(const uint8_t *p, size_t n, const uint8_t *limit, uint8_t tag,
                        byte_counts *bc)
{
    size_t e = 0, t = 0, i = 0;
#if defined(__SSE2__) && defined(__x86_64__)
    i = count_bytes_sse2(p, n, limit, tag, bc);
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        count_word(w, tag, &e, &t);
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (i < n && limit - (p + i) >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w |= 0x8080808080808080ULL & (~0ULL << (8 * (n - i))); /* the first n-i bytes stay */
        count_word(w, tag, &e, &t);
        i = n;
    }
#else
    (void)limit;
#endif
    for (; i < n; i++) {
        e += p[i] < 0x80;
        t += p[i] == tag;
    }
    bc->ends += e;
    bc->tags += t;
}

/* bc's counts, the lanes' included. */
static void bytes_total(const byte_counts *bc, size_t *ends, size_t *tags)
{
    *ends = bc->ends;
    *tags = bc->tags;
#if defined(__SSE2__) && defined(__x86_64__)
    *ends += lanes_sum(bc->lane_ends);
    *tags += lanes_sum(bc->lane_tags);
#endif
}

/* The tags of a Sample's labels and of a Location's lines (field 3 and 4,
 * length-delimited) in their one-byte form. */
#define TAG_LABEL 0x1a
#define TAG_LINE 0x22

/* Bounds the stack, value and label elements of Samples, or the lines of
 * Locations, from their bytes alone: every element ends in its own varint
 * byte below 0x80, and every label or line starts with its tag byte unless
 * the tag is written in a non-canonical longer form (the filling pass then
 * finds the bound short and the count is redone). The bytes are a span of
 * consecutive Sample (Location) fields, tags and lengths included: those
 * only loosen the bound, and one span per run of fields costs far less than
 * one call per field. */
typedef struct span {
    const uint8_t *from, *to;
    byte_counts bytes; /* of the spans before this one */
} span;

static void bound_span(const dec *d, span *s, bool sample)
{
    if (s->from != s->to)
        count_bytes(s->from, (size_t)(s->to - s->from), d->limit, sample ? TAG_LABEL : TAG_LINE,
                    &s->bytes);
}

/* Adds the field at [at, next) to span s, bounding s first when the field
 * does not follow it. */
static inline void span_add(const dec *d, span *s, const uint8_t *at, const uint8_t *next,
                            bool sample)
{
    if (at != s->to) {
        bound_span(d, s, sample);
        s->from = at;
    }
    s->to = next;
}

/* Bounds the last span of s's kind and adds the bounds of them all to c. */
static void span_finish(const dec *d, span *s, bool sample, counts *c)
{
    size_t ends, tags;
    bound_span(d, s, sample);
    bytes_total(&s->bytes, &ends, &tags);
    if (sample) {
        c->locs += ends;
        c->values += ends;
        c->labels += tags;
    } else {
        c->lines += tags;
    }
}

/* Counts the stack, value and label elements of a Sample, or the lines of a
 * Location, exactly. Wire types are checked by the filling pass. */
static kiln_status count_sub(dec *d, const field *pf, bool sample, counts *c)
{
    if (pf->wt != WT_LEN)
        return KILN_OK;
    const char *msg = sample ? "Sample" : "Location";
    const uint8_t *p = pf->data, *end = p + pf->v;
    field f;
    while (p < end) {
        if (sample && p[0] == TAG_LOC_ID) {
            p = count_loc_ids(p, end, &c->locs);
            continue;
        }
        kiln_status st = next_field(d, &p, end, &f, msg);
        if (st != KILN_OK)
            return st;
        if (!sample)
            c->lines += f.num == 4;
        else if (f.num == 1)
            c->locs += count_packed(&f);
        else if (f.num == 2)
            c->values += count_packed(&f);
        else
            c->labels += f.num == 3;
    }
    return KILN_OK;
}

/* The one-byte tags of the Profile's repeated messages (all length-delimited). */
#define TAG_SAMPLE 0x12
#define TAG_LOCATION 0x22
#define TAG_FUNCTION 0x2a
#define TAG_STRING 0x32

/* count_profile's loop in the bounded mode for the fields nearly every
 * profile is made of: Samples, Locations, Functions and strings under their
 * one-byte tags, with a length that needs no bounds check to read. Counts as
 * next_field and the switch below would, for a tenth of the instructions;
 * returns at the first other field, for count_profile to read. A Function
 * right after the Locations' span joins the span: Go's runtime writes each
 * Location's Functions after it, and one span per Location cost more than
 * the loosening (a Function's bytes equal to TAG_LINE) of the lines bound. */
static const uint8_t *count_common(const dec *d, const uint8_t *p, const uint8_t *end, counts *c,
                                   span *samples, span *locations)
{
    while (p < end && d->limit - p >= 11) {
        uint32_t t = p[0];
        const uint8_t *q = p + 1;
        uint64_t len;
        if ((t != TAG_SAMPLE && t != TAG_LOCATION && t != TAG_FUNCTION && t != TAG_STRING) ||
            varint_fast(&q, &len) != VR_OK || q > end || len > (uint64_t)(end - q))
            break;
        const uint8_t *next = q + len;
        if (t == TAG_SAMPLE) {
            c->samples++;
            span_add(d, samples, p, next, true);
        } else if (t == TAG_LOCATION) {
            c->locations++;
            span_add(d, locations, p, next, false);
        } else if (t == TAG_FUNCTION) {
            c->functions++;
            if (locations->to == p)
                locations->to = next;
        } else {
            c->strings++;
        }
        p = next;
    }
    return p;
}

static kiln_status count_profile(dec *d, const uint8_t *p, const uint8_t *end, counts *c)
{
    field f;
    kiln_status st = KILN_OK;
    span samples, locations; /* bounded mode only */
    memset(&samples, 0, sizeof(samples));
    memset(&locations, 0, sizeof(locations));
    samples.from = samples.to = locations.from = locations.to = p;
    while (p < end && st == KILN_OK) {
        if (d->bounded && (p = count_common(d, p, end, c, &samples, &locations)) == end)
            break;
        const uint8_t *at = p;
        if ((st = next_field(d, &p, end, &f, "Profile")) != KILN_OK)
            break;
        switch (f.num) {
        case 1:
            c->sample_types++;
            break;
        case 2:
            c->samples++;
            if (d->bounded)
                span_add(d, &samples, at, p, true);
            else
                st = count_sub(d, &f, true, c);
            break;
        case 3:
            c->mappings++;
            break;
        case 4:
            c->locations++;
            if (d->bounded)
                span_add(d, &locations, at, p, false);
            else
                st = count_sub(d, &f, false, c);
            break;
        case 5:
            c->functions++;
            break;
        case 6:
            c->strings++;
            break;
        case 13:
            c->comments += count_packed(&f);
            break;
        default:
            break;
        }
    }
    if (d->bounded) {
        span_finish(d, &samples, true, c);
        span_finish(d, &locations, false, c);
    }
    return st;
}

/* Offsets are uint32 and NONE is reserved, so no array may reach UINT32_MAX. */
static kiln_status check_counts(const counts *c, kiln_err *err)
{
    const size_t v[] = {c->sample_types, c->samples,  c->locs,      c->values,
                        c->labels,       c->mappings, c->locations, c->lines,
                        c->functions,    c->strings,  c->comments};
    static const char *const names[] = {"sample types", "samples",  "location ids", "values",
                                        "labels",       "mappings", "locations",    "lines",
                                        "functions",    "strings",  "comments"};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (v[i] >= UINT32_MAX)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "pprof: too many %s (%zu)", names[i],
                                v[i]);
    }
    return KILN_OK;
}

static kiln_status alloc_arrays(kiln_arena_t *a, const counts *c, kiln_pprof_t *o, kiln_err *err)
{
    bool ok = true;
    o->sample_types = arr(a, c->sample_types, sizeof(*o->sample_types), &ok);
    o->samples = arr(a, c->samples, sizeof(*o->samples), &ok);
    o->locs = arr(a, c->locs + KILN_VARINT_BLOCK_SLACK, sizeof(*o->locs), &ok); /* see dec_packed */
    o->values = arr(a, c->values, sizeof(*o->values), &ok);
    o->labels = arr(a, c->labels, sizeof(*o->labels), &ok);
    o->mappings = arr(a, c->mappings, sizeof(*o->mappings), &ok);
    o->locations = arr(a, c->locations, sizeof(*o->locations), &ok);
    o->lines = arr(a, c->lines, sizeof(*o->lines), &ok);
    o->functions = arr(a, c->functions, sizeof(*o->functions), &ok);
    o->strings = arr(a, c->strings, sizeof(*o->strings), &ok);
    o->comments = arr(a, c->comments, sizeof(*o->comments), &ok);
    if (!ok)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                            "pprof: memory limit reached decoding the profile");
    return KILN_OK;
}

/* ---- pass 2: filling ------------------------------------------------------------- */

/* An array is full. Bounded counts may be short (non-canonical tags): the
 * decode is then redone with exact counts. Exact ones never are. */
static kiln_status overflow_err(dec *d, const field *f)
{
    if (d->bounded)
        d->short_cap = true;
    return kiln_err_set(d->err, KILN_INTERNAL, "pprof: element count changed at offset %zu",
                        (size_t)(f->at - d->base));
}

/* Appends repeated scalar field f (packed or not) to arr[*n..cap). Inlined:
 * a Sample's stack and values come through here once each, thousands of
 * times per profile, and the call cost more than the few varints read.
 * stack: arr is the stack array, which has KILN_VARINT_BLOCK_SLACK elements
 * past cap, so its short ids can be read a block at a time. */
static inline __attribute__((always_inline)) kiln_status dec_packed(dec *d, const field *f,
                                                                    const char *msg, uint64_t *arr,
                                                                    size_t *n, size_t cap,
                                                                    bool stack)
{
    size_t k = *n;
    if (f->wt == WT_VARINT) {
        if (k >= cap)
            return overflow_err(d, f);
        arr[k] = f->v;
        *n = k + 1;
        return KILN_OK;
    }
    kiln_status st = want(d, f, WT_LEN, msg);
    if (st != KILN_OK)
        return st;
    const uint8_t *q = f->data, *e = q + f->v;
    uint64_t v;
    int r = VR_OK;
    /* Fast loop: every varint is at least a byte, so room for f->v more
     * elements is room for all; 10 bytes of input past e let each varint
     * be read unchecked (one that overruns e is caught after the loop). */
    if (LIKELY(cap - k >= f->v && d->limit - e >= 10)) {
        if (stack)
            q += kiln_varint_block_decode(q, e, d->limit, arr, &k);
        while (q < e && (r = varint_fast(&q, &v)) == VR_OK)
            arr[k++] = v;
        if (r == VR_OK && q > e)
            r = VR_TRUNC;
        q = e; /* done either way */
    }
    while (q < e && r == VR_OK) {
        r = d->limit - q >= 10 ? varint_fast(&q, &v) : get_varint(&q, e, &v);
        if (r == VR_OK && q > e) /* varint_fast read past the payload */
            r = VR_TRUNC;
        if (r == VR_OK && k >= cap) /* each varint decoded ends in a byte pass 1 counted */
            return overflow_err(d, f);
        if (r == VR_OK)
            arr[k++] = v;
    }
    if (r != VR_OK)
        return wire_err(d, r == VR_TRUNC ? "truncated packed" : "overlong varint in packed", f->num,
                        msg, f->at);
    *n = k;
    return KILN_OK;
}

/* Appends one scalar-only element (ValueType, Mapping, Function, Label or
 * Line) of size bytes to array base[*n..cap). */
static kiln_status dec_elem(dec *d, const field *f, const msgdesc *m, void *base, size_t size,
                            size_t *n, size_t cap, const char *parent)
{
    kiln_status st = want(d, f, WT_LEN, parent);
    if (st != KILN_OK)
        return st;
    if (*n >= cap)
        return overflow_err(d, f);
    void *obj = (char *)base + *n * size;
    memset(obj, 0, size);
    (*n)++;
    return dec_scalars(d, f, m, obj);
}

/* The canonical one-byte tags of a Sample's location_id and value, unpacked
 * (varint) and packed (length-delimited). */
#define TAG_VALUE 0x10
#define TAG_LOC_IDS 0x0a
#define TAG_VALUES 0x12

/* Reads a run of unpacked location ids (a Sample field each, under
 * TAG_LOC_ID) at p, up to end; returns where it stops: at the first other
 * field, a full array, the input's last 10 bytes or a malformed varint, all
 * left to dec_sample's general path. Its own loop keeps the count and the
 * array in registers: through o, each store to locs (uint64_t, as
 * n_locs' size_t) would make the next frame load them again. */
static inline __attribute__((always_inline)) const uint8_t *dec_loc_run(dec *d, const uint8_t *p,
                                                                        const uint8_t *end)
{
    kiln_pprof_t *o = d->p;
    uint64_t *locs = o->locs;
    size_t k = o->n_locs, cap = d->cap.locs;
    const uint8_t *limit = d->limit;
    while (p < end && p[0] == TAG_LOC_ID && k < cap && limit - p >= 11) {
        const uint8_t *q = p + 1;
        uint64_t v;
        if (varint_fast(&q, &v) != VR_OK || q > end)
            break;
        locs[k++] = v;
        p = q;
    }
    o->n_locs = k;
    return p;
}

static kiln_status dec_sample(dec *d, const field *pf)
{
    kiln_pprof_t *o = d->p;
    kiln_status st = want(d, pf, WT_LEN, "Profile");
    if (st != KILN_OK)
        return st;
    if (o->n_samples >= d->cap.samples)
        return overflow_err(d, pf);
    kiln_pprof_sample *s = &o->samples[o->n_samples++];
    size_t loc0 = o->n_locs, val0 = o->n_values, lab0 = o->n_labels;
    const uint8_t *p = pf->data, *end = p + pf->v;
    field f;
    while (p < end && st == KILN_OK) {
        /* Fast path: a field under its canonical tag byte, read here
         * without next_field's generality; anything else (and every
         * error) takes the general path below. */
        uint32_t t = p[0];
        if (t == TAG_LOC_ID) {
            const uint8_t *q = dec_loc_run(d, p, end);
            if (q != p) {
                p = q;
                continue;
            }
        }
        const uint8_t *q = p + 1;
        uint64_t v;
        if (LIKELY(d->limit - p >= 11 && varint_fast(&q, &v) == VR_OK && q <= end)) {
            if (t == TAG_VALUE && o->n_values < d->cap.values) {
                o->values[o->n_values++] = (int64_t)v;
                p = q;
                continue;
            }
            if ((t == TAG_LOC_IDS || t == TAG_VALUES) && v <= (uint64_t)(end - q)) {
                f = (field){p, q, v, t >> 3, WT_LEN};
                p = q + v;
                if (t == TAG_LOC_IDS)
                    st = dec_packed(d, &f, "Sample", o->locs, &o->n_locs, d->cap.locs, true);
                else
                    st = dec_packed(d, &f, "Sample", (uint64_t *)o->values, &o->n_values,
                                    d->cap.values, false);
                continue;
            }
        }
        st = next_field(d, &p, end, &f, "Sample");
        if (st != KILN_OK)
            break;
        if (f.num == 1)
            st = dec_packed(d, &f, "Sample", o->locs, &o->n_locs, d->cap.locs, true);
        else if (f.num == 2)
            st = dec_packed(d, &f, "Sample", (uint64_t *)o->values, &o->n_values, d->cap.values,
                            false);
        else if (f.num == 3)
            st = dec_elem(d, &f, &label_msg, o->labels, sizeof(*o->labels), &o->n_labels,
                          d->cap.labels, "Sample");
    }
    s->loc_off = (uint32_t)loc0;
    s->n_locs = (uint32_t)(o->n_locs - loc0);
    s->value_off = (uint32_t)val0;
    s->n_values = (uint32_t)(o->n_values - val0);
    s->label_off = (uint32_t)lab0;
    s->n_labels = (uint32_t)(o->n_labels - lab0);
    return st;
}

/* A Line (already zeroed) from f: function, line and column under their
 * canonical tags are read inline, the bulk of a profile with many frames;
 * from the first field that is not, dec_scalars reads the rest. */
static inline __attribute__((always_inline)) kiln_status dec_line_body(dec *d, const field *f,
                                                                       kiln_pprof_line *ln)
{
    const uint8_t *p = f->data, *end = p + f->v;
    while (p < end && d->limit - p >= 11) {
        uint32_t t = p[0];
        const uint8_t *q = p + 1;
        uint64_t v;
        if (varint_fast(&q, &v) != VR_OK || q > end)
            break;
        if (t == 0x08)
            ln->function = v;
        else if (t == 0x10)
            ln->line = (int64_t)v;
        else if (t == 0x18)
            ln->column = (int64_t)v;
        else
            break;
        p = q;
    }
    if (p == end)
        return KILN_OK;
    field rest = {f->at, p, (uint64_t)(end - p), f->num, f->wt};
    return dec_scalars(d, &rest, &line_msg, ln);
}

/* dec_elem for a Line, without its memset call. */
static inline __attribute__((always_inline)) kiln_status dec_line(dec *d, const field *f)
{
    kiln_pprof_t *o = d->p;
    kiln_status st = want(d, f, WT_LEN, "Location");
    if (st != KILN_OK)
        return st;
    if (o->n_lines >= d->cap.lines)
        return overflow_err(d, f);
    kiln_pprof_line *ln = &o->lines[o->n_lines++];
    *ln = (kiln_pprof_line){0, 0, 0};
    return dec_line_body(d, f, ln);
}

static kiln_status dec_location(dec *d, const field *pf)
{
    kiln_pprof_t *o = d->p;
    kiln_status st = want(d, pf, WT_LEN, "Profile");
    if (st != KILN_OK)
        return st;
    if (o->n_locations >= d->cap.locations)
        return overflow_err(d, pf);
    kiln_pprof_location *l = &o->locations[o->n_locations++];
    memset(l, 0, sizeof(*l));
    l->line_off = (uint32_t)o->n_lines;
    const uint8_t *p = pf->data, *end = p + pf->v;
    field f;
    while (p < end && st == KILN_OK) {
        /* Fast path, as in dec_sample: id, mapping_id, address and line
         * under their canonical tag bytes. */
        uint32_t t = p[0];
        const uint8_t *q = p + 1;
        uint64_t v;
        if (LIKELY(d->limit - p >= 11 && varint_fast(&q, &v) == VR_OK && q <= end)) {
            if (t == 0x08 || t == 0x10 || t == 0x18) {
                if (t == 0x08)
                    l->id = v;
                else if (t == 0x10)
                    l->mapping = v;
                else
                    l->address = v;
                p = q;
                continue;
            }
            if (t == TAG_LINE && v <= (uint64_t)(end - q)) {
                f = (field){p, q, v, 4, WT_LEN};
                p = q + v;
                st = dec_line(d, &f);
                continue;
            }
        }
        st = next_field(d, &p, end, &f, "Location");
        if (st != KILN_OK)
            break;
        if (f.num == 4)
            st = dec_line(d, &f);
        else
            st = put_scalar(d, &f, &location_msg, l);
    }
    l->n_lines = (uint32_t)(o->n_lines - l->line_off);
    return st;
}

/* dec_elem for a Function, its fields under their canonical tags read
 * inline as dec_line_body does: profiles with many frames have as many
 * functions. */
static inline __attribute__((always_inline)) kiln_status dec_function(dec *d, const field *f)
{
    kiln_pprof_t *o = d->p;
    kiln_status st = want(d, f, WT_LEN, "Profile");
    if (st != KILN_OK)
        return st;
    if (o->n_functions >= d->cap.functions)
        return overflow_err(d, f);
    kiln_pprof_function *fn = &o->functions[o->n_functions++];
    *fn = (kiln_pprof_function){0, 0, 0, 0, 0};
    const uint8_t *p = f->data, *end = p + f->v;
    while (p < end && d->limit - p >= 11) {
        uint32_t t = p[0];
        const uint8_t *q = p + 1;
        uint64_t v;
        if (t < 0x08 || t > 0x28 || (t & 7) != 0 || varint_fast(&q, &v) != VR_OK || q > end)
            break;
        switch (t) {
        case 0x08:
            fn->id = v;
            break;
        case 0x10:
            fn->name = (int64_t)v;
            break;
        case 0x18:
            fn->system_name = (int64_t)v;
            break;
        case 0x20:
            fn->filename = (int64_t)v;
            break;
        default:
            fn->start_line = (int64_t)v;
            break; /* 0x28 */
        }
        p = q;
    }
    if (p == end)
        return KILN_OK;
    field rest = {f->at, p, (uint64_t)(end - p), f->num, f->wt};
    return dec_scalars(d, &rest, &function_msg, fn);
}

static kiln_status dec_string(dec *d, const field *f)
{
    kiln_pprof_t *o = d->p;
    kiln_status st = want(d, f, WT_LEN, "Profile");
    if (st != KILN_OK)
        return st;
    if (o->n_strings >= d->cap.strings)
        return overflow_err(d, f);
    o->strings[o->n_strings].ptr = (const char *)f->data;
    o->strings[o->n_strings++].len = (size_t)f->v;
    return KILN_OK;
}

static kiln_status fill_field(dec *d, const field *f)
{
    kiln_pprof_t *o = d->p;
    switch (f->num) {
    case 1:
        return dec_elem(d, f, &vt_msg, o->sample_types, sizeof(*o->sample_types),
                        &o->n_sample_types, d->cap.sample_types, "Profile");
    case 2:
        return dec_sample(d, f);
    case 3:
        return dec_elem(d, f, &mapping_msg, o->mappings, sizeof(*o->mappings), &o->n_mappings,
                        d->cap.mappings, "Profile");
    case 4:
        return dec_location(d, f);
    case 5:
        return dec_function(d, f);
    case 6:
        return dec_string(d, f);
    case 11: {
        kiln_status st = want(d, f, WT_LEN, "Profile");
        return st != KILN_OK ? st : dec_scalars(d, f, &vt_msg, &o->period_type);
    }
    case 13:
        return dec_packed(d, f, "Profile", (uint64_t *)o->comments, &o->n_comments, d->cap.comments,
                          false);
    default:
        return put_scalar(d, f, &profile_msg, o);
    }
}

/* Reads the Sample, Location, Function or string at p (under its one-byte
 * tag) into f as next_field would, when its length needs no bounds check to
 * read; false for every other field, which next_field reads. */
static inline bool common_field(const dec *d, const uint8_t *p, const uint8_t *end, field *f)
{
    uint32_t t = p[0];
    const uint8_t *q = p + 1;
    uint64_t len;
    if ((t != TAG_SAMPLE && t != TAG_LOCATION && t != TAG_FUNCTION && t != TAG_STRING) ||
        d->limit - p < 11 || varint_fast(&q, &len) != VR_OK || q > end || len > (uint64_t)(end - q))
        return false;
    *f = (field){p, q, len, t >> 3, WT_LEN};
    return true;
}

static kiln_status fill_profile(dec *d, const uint8_t *p, const uint8_t *end)
{
    field f;
    while (p < end) {
        kiln_status st = KILN_OK;
        if (LIKELY(common_field(d, p, end, &f)))
            p = f.data + f.v; /* the bulk of a profile, read without next_field's generality */
        else
            st = next_field(d, &p, end, &f, "Profile");
        if (st == KILN_OK)
            st = fill_field(d, &f);
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

/* Both passes, counting exactly or bounding; *retry is set when a bounded
 * decode must be redone exactly (a short bound, or bounds too large to
 * allocate where the exact counts may not be). */
static kiln_status decode_pass(kiln_arena_t *a, const uint8_t *data, size_t len, bool bounded,
                               kiln_pprof_t *out, kiln_err *err, bool *retry)
{
    kiln_pprof_t p;
    counts c;
    memset(&p, 0, sizeof(p));
    memset(&c, 0, sizeof(c));
    dec d = {data, data + len, err, &p, {0}, 0, bounded, false};
    kiln_status st = count_profile(&d, data, data + len, &c);
    if (st != KILN_OK)
        return st; /* the top level is read alike in both modes */
    if ((st = check_counts(&c, err)) == KILN_OK)
        st = alloc_arrays(a, &c, &p, err);
    if (st != KILN_OK) {
        *retry = bounded;
        return st;
    }
    d.cap = c;
    st = fill_profile(&d, data, data + len);
    *retry = d.short_cap;
    if (st == KILN_OK)
        *out = p;
    return st;
}

kiln_status kiln_pprof_decode(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_pprof_t *out,
                              kiln_err *err)
{
    static const uint8_t empty[1];
    if (len == 0)
        data = empty; /* never form NULL + 0 */
    bool retry = false;
    kiln_status st = decode_pass(a, data, len, true, out, err, &retry);
    if (retry) {
        /* The bounded pass's error, if any, was why it retries: an exact
         * pass that succeeds must not leave it behind for the caller. */
        if (err != NULL)
            *err = (kiln_err){KILN_OK, ""};
        st = decode_pass(a, data, len, false, out, err, &retry);
    }
    return st;
}

/* ---- encoding ---------------------------------------------------------------------- */

static inline size_t vsz(uint64_t v)
{
    return (size_t)(64 - __builtin_clzll(v | 1) + 6) / 7;
}

static inline uint8_t *put_v(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

/* Size of a length-delimited field (tag < 128) with a body of n bytes. */
static inline size_t lensz(size_t n)
{
    return 1 + vsz(n) + n;
}

static inline uint8_t *put_len(uint8_t *w, uint32_t num, size_t n)
{
    *w++ = (uint8_t)(num << 3 | WT_LEN);
    return put_v(w, n);
}

static bool scalar_get(const msgdesc *m, uint32_t i, const void *obj, uint64_t *v)
{
    const char *src = (const char *)obj + m->f[i].off;
    if (m->f[i].kind == K_SKIP)
        return false;
    if (m->f[i].kind == K_BOOL) {
        bool b;
        memcpy(&b, src, sizeof(b));
        *v = b;
    } else {
        memcpy(v, src, sizeof(*v));
    }
    return *v != 0; /* proto3: zero scalars are not written */
}

static size_t scalars_size(const msgdesc *m, const void *obj)
{
    size_t n = 0;
    uint64_t v;
    for (uint32_t i = 1; i < m->n; i++) {
        if (scalar_get(m, i, obj, &v))
            n += 1 + vsz(v);
    }
    return n;
}

static uint8_t *put_scalars(uint8_t *w, const msgdesc *m, const void *obj)
{
    uint64_t v;
    for (uint32_t i = 1; i < m->n; i++) {
        if (scalar_get(m, i, obj, &v)) {
            *w++ = (uint8_t)(i << 3 | WT_VARINT);
            w = put_v(w, v);
        }
    }
    return w;
}

typedef struct enc {
    const kiln_pprof_t *p;
    kiln_buf *b;
    bool norm;
} enc;

/* Room for n more bytes at the end of the buffer; NULL past its max. */
static uint8_t *room(enc *e, size_t n)
{
    return kiln_buf_reserve(e->b, n) ? (uint8_t *)e->b->ptr + e->b->len : NULL;
}

static void commit(enc *e, uint8_t *w)
{
    e->b->len = (size_t)((char *)w - e->b->ptr);
}

/* A reference written back as an id: normalised index i -> i+1, NONE or
 * out of range -> 0. */
static inline uint64_t ref_id(const enc *e, uint64_t v, size_t n)
{
    if (!e->norm)
        return v;
    return v < n ? v + 1 : 0;
}

/* Writes one scalar-only message (a copy with ids already set) as field num. */
static bool enc_scalar_msg(enc *e, uint32_t num, const msgdesc *m, const void *obj)
{
    size_t n = scalars_size(m, obj);
    uint8_t *w = room(e, lensz(n));
    if (w == NULL)
        return false;
    commit(e, put_scalars(put_len(w, num, n), m, obj));
    return true;
}

static size_t sample_locs_size(const enc *e, const kiln_pprof_sample *s)
{
    size_t n = 0;
    for (uint32_t j = 0; j < s->n_locs; j++)
        n += vsz(ref_id(e, e->p->locs[s->loc_off + j], e->p->n_locations));
    return n;
}

static bool enc_sample(enc *e, const kiln_pprof_sample *s)
{
    const kiln_pprof_t *p = e->p;
    size_t nl = sample_locs_size(e, s), nv = 0, body = 0;
    for (uint32_t j = 0; j < s->n_values; j++)
        nv += vsz((uint64_t)p->values[s->value_off + j]);
    for (uint32_t j = 0; j < s->n_labels; j++)
        body += lensz(scalars_size(&label_msg, &p->labels[s->label_off + j]));
    body += (nl ? lensz(nl) : 0) + (nv ? lensz(nv) : 0);
    uint8_t *w = room(e, lensz(body));
    if (w == NULL)
        return false;
    w = put_len(w, 2, body);
    if (nl != 0) {
        w = put_len(w, 1, nl);
        for (uint32_t j = 0; j < s->n_locs; j++)
            w = put_v(w, ref_id(e, p->locs[s->loc_off + j], p->n_locations));
    }
    if (nv != 0) {
        w = put_len(w, 2, nv);
        for (uint32_t j = 0; j < s->n_values; j++)
            w = put_v(w, (uint64_t)p->values[s->value_off + j]);
    }
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        w = put_scalars(put_len(w, 3, scalars_size(&label_msg, l)), &label_msg, l);
    }
    commit(e, w);
    return true;
}

static kiln_pprof_line line_out(const enc *e, const kiln_pprof_line *l)
{
    kiln_pprof_line o = *l;
    o.function = ref_id(e, l->function, e->p->n_functions);
    return o;
}

static bool enc_location(enc *e, size_t i)
{
    const kiln_pprof_t *p = e->p;
    kiln_pprof_location l = p->locations[i];
    if (e->norm) {
        l.id = i + 1;
        l.mapping = ref_id(e, l.mapping, p->n_mappings);
    }
    size_t body = scalars_size(&location_msg, &l);
    for (uint32_t j = 0; j < l.n_lines; j++) {
        kiln_pprof_line ln = line_out(e, &p->lines[l.line_off + j]);
        body += lensz(scalars_size(&line_msg, &ln));
    }
    uint8_t *w = room(e, lensz(body));
    if (w == NULL)
        return false;
    w = put_scalars(put_len(w, 4, body), &location_msg, &l);
    for (uint32_t j = 0; j < l.n_lines; j++) {
        kiln_pprof_line ln = line_out(e, &p->lines[l.line_off + j]);
        w = put_scalars(put_len(w, 4, scalars_size(&line_msg, &ln)), &line_msg, &ln);
    }
    commit(e, w);
    return true;
}

static bool enc_symbols(enc *e)
{
    const kiln_pprof_t *p = e->p;
    for (size_t i = 0; i < p->n_mappings; i++) {
        kiln_pprof_mapping m = p->mappings[i];
        m.id = e->norm ? i + 1 : m.id;
        if (!enc_scalar_msg(e, 3, &mapping_msg, &m))
            return false;
    }
    for (size_t i = 0; i < p->n_locations; i++) {
        if (!enc_location(e, i))
            return false;
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        kiln_pprof_function f = p->functions[i];
        f.id = e->norm ? i + 1 : f.id;
        if (!enc_scalar_msg(e, 5, &function_msg, &f))
            return false;
    }
    return true;
}

static bool enc_strings(enc *e)
{
    for (size_t i = 0; i < e->p->n_strings; i++) {
        kiln_str_t s = e->p->strings[i];
        uint8_t *w = room(e, lensz(s.len));
        if (w == NULL)
            return false;
        w = put_len(w, 6, s.len);
        if (s.len != 0)
            memcpy(w, s.ptr, s.len);
        commit(e, w + s.len);
    }
    return true;
}

/* The Profile's scalars, period_type and comments. */
static bool enc_tail(enc *e)
{
    const kiln_pprof_t *p = e->p;
    size_t nc = 0;
    for (size_t i = 0; i < p->n_comments; i++)
        nc += vsz((uint64_t)p->comments[i]);
    uint8_t *w = room(e, scalars_size(&profile_msg, p) + (nc ? lensz(nc) : 0));
    if (w == NULL)
        return false;
    w = put_scalars(w, &profile_msg, p);
    if (nc != 0) {
        w = put_len(w, 13, nc);
        for (size_t i = 0; i < p->n_comments; i++)
            w = put_v(w, (uint64_t)p->comments[i]);
    }
    commit(e, w);
    if (p->period_type.type != 0 || p->period_type.unit != 0)
        return enc_scalar_msg(e, 11, &vt_msg, &p->period_type);
    return true;
}

static bool enc_profile(enc *e)
{
    const kiln_pprof_t *p = e->p;
    for (size_t i = 0; i < p->n_sample_types; i++) {
        if (!enc_scalar_msg(e, 1, &vt_msg, &p->sample_types[i]))
            return false;
    }
    for (size_t i = 0; i < p->n_samples; i++) {
        if (!enc_sample(e, &p->samples[i]))
            return false;
    }
    return enc_symbols(e) && enc_strings(e) && enc_tail(e);
}

bool kiln_pprof_encode(const kiln_pprof_t *p, bool normalized, kiln_buf *out)
{
    enc e = {p, out, normalized};
    size_t len0 = out->len;
    bool ok = enc_profile(&e);
    if (!ok)
        out->len = len0;
    if (out->ptr != NULL)
        out->ptr[out->len] = '\0'; /* kiln_buf keeps text NUL-terminated */
    return ok;
}
