/* SPDX-License-Identifier: Apache-2.0
 * record: encoding and decoding of the push record (record.h). */
#include "record.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ingester/v1/ingester.pb-c.h"

#define REC_MAGIC 0x4b /* 'K': no format-1 (protobuf) record starts with it */
#define REC_VERSION 2
#define VMAX 10 /* bytes of the longest varint */
#define NO_INDEX KILN_PPROF_NONE

/* ---- writing ------------------------------------------------------------------ */

/* The writer passes its cursor by value and gets it back: a cursor held in
 * memory (a struct behind a pointer) is reloaded after every byte stored,
 * since a byte store may alias it, and encoding took a tenth longer.
 * need() makes room in b for a bound; the puts then write without checks. */
static uint8_t *need(kiln_buf *b, uint8_t *w, size_t n)
{
    size_t len = (size_t)(w - (uint8_t *)b->ptr);
    if (b->cap - len > n)
        return w; /* kiln_buf_reserve keeps a byte spare, hence > */
    b->len = len;
    kiln_buf_reserve(b, n);
    return (uint8_t *)b->ptr + len;
}

static inline uint8_t *put_uv(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

static inline uint8_t *put_sv(uint8_t *w, int64_t v)
{
    return put_uv(w, ((uint64_t)v << 1) ^ -((uint64_t)v >> 63)); /* zigzag */
}

static uint8_t *put_bytes(kiln_buf *b, uint8_t *w, const char *p, size_t n)
{
    w = put_uv(need(b, w, VMAX + n), n);
    memcpy(w, p, n);
    return w + n;
}

/* An index written +1, with 0 for "none" (or anything out of range). */
static inline uint64_t ref1(uint64_t i, size_t n)
{
    return i < n ? i + 1 : 0;
}

static uint8_t *put_symbols(kiln_buf *b, uint8_t *w, const kiln_pprof_t *p)
{
    w = put_uv(need(b, w, VMAX), p->n_strings);
    for (size_t i = 0; i < p->n_strings; i++)
        w = put_bytes(b, w, p->strings[i].ptr, p->strings[i].len);
    w = need(b, w, VMAX * (1 + 5 * p->n_mappings + 4 * p->n_functions + 1));
    w = put_uv(w, p->n_mappings);
    for (size_t i = 0; i < p->n_mappings; i++) {
        const kiln_pprof_mapping *m = &p->mappings[i];
        w = put_uv(w, m->memory_start), w = put_uv(w, m->memory_limit);
        w = put_uv(w, m->file_offset);
        w = put_uv(w, (uint64_t)m->filename), w = put_uv(w, (uint64_t)m->build_id);
    }
    w = put_uv(w, p->n_functions);
    for (size_t i = 0; i < p->n_functions; i++) {
        const kiln_pprof_function *f = &p->functions[i];
        w = put_uv(w, (uint64_t)f->name), w = put_uv(w, (uint64_t)f->system_name);
        w = put_uv(w, (uint64_t)f->filename), w = put_sv(w, f->start_line);
    }
    w = put_uv(w, p->n_locations);
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        w = need(b, w, VMAX * (3 + 2 * (size_t)l->n_lines));
        w = put_uv(w, ref1(l->mapping, p->n_mappings)), w = put_uv(w, l->address);
        w = put_uv(w, l->n_lines);
        for (uint32_t j = 0; j < l->n_lines; j++) {
            const kiln_pprof_line *ln = &p->lines[l->line_off + j];
            w = put_uv(w, ref1(ln->function, p->n_functions)), w = put_sv(w, ln->line);
        }
    }
    return w;
}

/* Bytes per location index in a stack: the fewest that hold every index
 * of the profile. Fixed width, because varints of indices on either side
 * of 128 cost a mispredicted branch per frame. */
static unsigned loc_width(size_t n_locations)
{
    return n_locations <= 0x100 ? 1 : n_locations <= 0x10000 ? 2 : 4;
}

/* A chunk of eight 1-byte or four 2-byte indices, stored at once. The
 * indices are below 2^(8 * width): SSE2 narrows them in registers. */
static inline void put_chunk(uint8_t *w, const uint64_t *locs, unsigned width)
{
#ifdef __SSE2__
    /* the low 32 bits of two pairs of indices, as four 32-bit lanes */
    __m128i a = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)locs), 0x08);
    __m128i b = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(locs + 2)), 0x08);
    __m128i lo = _mm_unpacklo_epi64(a, b);
    if (width == 2) { /* sign-extend the low 16 bits, so the signed pack keeps them */
        lo = _mm_srai_epi32(_mm_slli_epi32(lo, 16), 16);
        _mm_storel_epi64((__m128i *)w, _mm_packs_epi32(lo, lo));
        return;
    }
    __m128i c = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(locs + 4)), 0x08);
    __m128i d = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(locs + 6)), 0x08);
    __m128i words = _mm_packs_epi32(lo, _mm_unpacklo_epi64(c, d)); /* below 256: exact */
    _mm_storel_epi64((__m128i *)w, _mm_packus_epi16(words, words));
#else
    uint64_t x = 0;
    for (unsigned k = 0; k < 8 / width; k++)
        x |= (locs[k] & (width == 1 ? 0xff : 0xffff)) << (8 * width * k);
    memcpy(w, &x, sizeof(x));
#endif
}

static uint8_t *put_stack(uint8_t *w, const uint64_t *locs, uint32_t n, unsigned width)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Whole chunks, the last one overlapping the one before it (the same
     * bytes written twice) rather than finished a frame at a time: stacks
     * are most of a record, and most are a few chunks long. */
    uint32_t per = 8 / width;
    if (width <= 2 && n >= per) {
        for (uint32_t j = 0; j + per <= n; j += per)
            put_chunk(w + j * width, locs + j, width);
        put_chunk(w + (n - per) * width, locs + n - per, width);
        return w + (size_t)n * width;
    }
#endif
    for (uint32_t j = 0; j < n; j++)
        for (unsigned k = 0; k < width; k++)
            w[width * j + k] = (uint8_t)(locs[j] >> (8 * k));
    return w + (size_t)n * width;
}

static uint8_t *put_samples(kiln_buf *b, uint8_t *w, const kiln_pprof_t *p)
{
    unsigned width = loc_width(p->n_locations);
    size_t locs = 0, labels = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        locs += p->samples[i].n_locs;
        labels += p->samples[i].n_labels;
    }
    w = need(b, w, 3 * VMAX);
    w = put_uv(w, p->n_samples), w = put_uv(w, locs), w = put_uv(w, labels);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        w = need(b, w, VMAX * (2 + s->n_locs + p->n_sample_types + 2 * (size_t)s->n_labels));
        w = put_uv(w, s->n_locs);
        if (s->n_locs != 0) /* and p->locs may be NULL */
            w = put_stack(w, p->locs + s->loc_off, s->n_locs, width);
        for (size_t t = 0; t < p->n_sample_types; t++)
            w = put_sv(w, p->values[s->value_off + t]);
        w = put_uv(w, s->n_labels);
        for (uint32_t j = 0; j < s->n_labels; j++) {
            const kiln_pprof_label *l = &p->labels[s->label_off + j];
            w = put_uv(w, (uint64_t)l->key), w = put_uv(w, (uint64_t)l->str);
        }
    }
    return w;
}

static uint8_t *put_part(kiln_buf *b, uint8_t *w, const kiln_head_part *part)
{
    const kiln_pprof_t *p = part->profile;
    w = put_uv(need(b, w, VMAX), part->n_labels);
    for (size_t i = 0; i < part->n_labels; i++) {
        w = put_bytes(b, w, part->labels[i].name, strlen(part->labels[i].name));
        w = put_bytes(b, w, part->labels[i].value, strlen(part->labels[i].value));
    }
    w = need(b, w, 8 + VMAX * (6 + 2 * p->n_sample_types));
    for (int k = 0; k < 8; k++)
        *w++ = (uint8_t)(part->id >> (8 * k));
    w = put_sv(w, p->time_nanos), w = put_sv(w, p->duration_nanos);
    w = put_uv(w, p->n_sample_types);
    for (size_t t = 0; t < p->n_sample_types; t++) {
        w = put_uv(w, (uint64_t)p->sample_types[t].type);
        w = put_uv(w, (uint64_t)p->sample_types[t].unit);
    }
    w = put_uv(w, (uint64_t)p->period_type.type), w = put_uv(w, (uint64_t)p->period_type.unit);
    w = put_sv(w, p->period);
    return put_samples(b, w, p);
}

static bool shares_symbols(const kiln_pprof_t *a, const kiln_pprof_t *b)
{
    return a->strings == b->strings && a->n_strings == b->n_strings && a->mappings == b->mappings &&
           a->n_mappings == b->n_mappings && a->functions == b->functions &&
           a->n_functions == b->n_functions && a->locations == b->locations &&
           a->n_locations == b->n_locations && a->lines == b->lines && a->n_lines == b->n_lines;
}

/* The number of parts from i on that share parts[i]'s symbols. */
static size_t group_len(const kiln_head_part *parts, size_t n, size_t i)
{
    size_t k = 1;
    while (i + k < n && shares_symbols(parts[i].profile, parts[i + k].profile))
        k++;
    return k;
}

/* About the bytes a group's symbols and a part's samples take, from their
 * counts (a few bytes per varint, strings guessed at 24 bytes): reserved
 * once, the buffer rarely grows (and copies) on the way. */
static size_t symbols_estimate(const kiln_pprof_t *p)
{
    return p->n_strings * 24 + p->n_locations * 8 + p->n_lines * 4 + p->n_functions * 8 +
           p->n_mappings * 16;
}

static size_t samples_estimate(const kiln_pprof_t *p)
{
    return p->n_samples * 4 + p->n_locs * 2 + p->n_values * 4 + p->n_labels * 4;
}

void kiln_record_encode(const char *tenant, const kiln_head_part *parts, size_t n, kiln_buf *out)
{
    size_t groups = 0, estimate = 4096; /* never a cursor from NULL */
    for (size_t i = 0; i < n; i += group_len(parts, n, i)) {
        groups++;
        estimate += symbols_estimate(parts[i].profile);
    }
    for (size_t i = 0; i < n; i++)
        estimate += samples_estimate(parts[i].profile);
    kiln_buf_reserve(out, estimate);
    uint8_t *w = need(out, (uint8_t *)out->ptr + out->len, 2 + VMAX);
    *w++ = REC_MAGIC;
    *w++ = REC_VERSION;
    w = put_bytes(out, w, tenant, strlen(tenant));
    w = put_uv(need(out, w, VMAX), groups);
    for (size_t i = 0; i < n;) {
        size_t k = group_len(parts, n, i);
        w = put_symbols(out, w, parts[i].profile);
        w = put_uv(need(out, w, VMAX), k);
        for (size_t j = 0; j < k; j++)
            w = put_part(out, w, &parts[i + j]);
        i += k;
    }
    out->len = (size_t)(w - (uint8_t *)out->ptr);
}

/* ---- reading (format 2) ------------------------------------------------------------ */

/* A read cursor; any overrun or bad value sets bad, and reads then give 0. */
typedef struct rd {
    const uint8_t *p, *end;
    kiln_arena_t *a;
    bool bad;
} rd;

static uint64_t get_uv(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return v;
    }
    r->bad = true;
    r->p = r->end;
    return 0;
}

static int64_t get_sv(rd *r)
{
    uint64_t v = get_uv(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A count of elements that take at least one byte each: never more than
 * the bytes left, so a corrupt count cannot ask for a huge allocation. */
static size_t get_count(rd *r)
{
    uint64_t n = get_uv(r);
    if (n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

/* A value that must be below n (an index into an array of n). */
static uint64_t get_index(rd *r, size_t n)
{
    uint64_t v = get_uv(r);
    if (v >= n) {
        r->bad = true;
        return 0;
    }
    return v;
}

/* An index written +1 (0 = none): NO_INDEX or below n. */
static uint64_t get_ref1(rd *r, size_t n)
{
    uint64_t v = get_uv(r);
    if (v > n)
        r->bad = true;
    return v == 0 || v > n ? NO_INDEX : v - 1;
}

static kiln_str_t get_bytes(rd *r)
{
    size_t n = get_count(r);
    kiln_str_t s = {(const char *)r->p, n};
    r->p += n;
    return s;
}

static void *get_array(rd *r, size_t n, size_t size)
{
    return kiln_arena_calloc(r->a, n + 1, size);
}

static void get_locations(rd *r, kiln_pprof_t *p)
{
    p->n_locations = get_count(r);
    p->locations = get_array(r, p->n_locations, sizeof(*p->locations));
    size_t cap = p->n_locations;
    p->lines = get_array(r, cap, sizeof(*p->lines));
    for (size_t i = 0; i < p->n_locations && !r->bad; i++) {
        kiln_pprof_location *l = &p->locations[i];
        l->id = i + 1;
        l->mapping = get_ref1(r, p->n_mappings);
        l->address = get_uv(r);
        l->n_lines = (uint32_t)get_count(r);
        l->line_off = (uint32_t)p->n_lines;
        if (p->n_lines + l->n_lines > cap) {
            size_t ncap = 2 * cap + l->n_lines;
            p->lines = kiln_arena_grow(r->a, p->lines, (cap + 1) * sizeof(*p->lines),
                                       (ncap + 1) * sizeof(*p->lines));
            cap = ncap;
        }
        for (uint32_t j = 0; j < l->n_lines; j++) {
            kiln_pprof_line *ln = &p->lines[p->n_lines++];
            ln->function = get_ref1(r, p->n_functions);
            ln->line = get_sv(r);
            ln->column = 0;
        }
    }
}

static void get_symbols(rd *r, kiln_pprof_t *p)
{
    p->n_strings = get_count(r);
    p->strings = get_array(r, p->n_strings, sizeof(*p->strings));
    for (size_t i = 0; i < p->n_strings && !r->bad; i++)
        p->strings[i] = get_bytes(r);
    size_t ns = p->n_strings;
    p->n_mappings = get_count(r);
    p->mappings = get_array(r, p->n_mappings, sizeof(*p->mappings));
    for (size_t i = 0; i < p->n_mappings && !r->bad; i++) {
        kiln_pprof_mapping *m = &p->mappings[i];
        m->id = i + 1;
        m->memory_start = get_uv(r), m->memory_limit = get_uv(r), m->file_offset = get_uv(r);
        m->filename = (int64_t)get_index(r, ns), m->build_id = (int64_t)get_index(r, ns);
    }
    p->n_functions = get_count(r);
    p->functions = get_array(r, p->n_functions, sizeof(*p->functions));
    for (size_t i = 0; i < p->n_functions && !r->bad; i++) {
        kiln_pprof_function *f = &p->functions[i];
        f->id = i + 1;
        f->name = (int64_t)get_index(r, ns), f->system_name = (int64_t)get_index(r, ns);
        f->filename = (int64_t)get_index(r, ns), f->start_line = get_sv(r);
    }
    get_locations(r, p);
}

/* n location indices of loc_width(n_locations) bytes each into out. */
static void get_stack(rd *r, uint64_t *out, uint32_t n, size_t n_locations)
{
    unsigned width = loc_width(n_locations);
    if ((size_t)(r->end - r->p) / width < n) {
        r->bad = true;
        return;
    }
    const uint8_t *q = r->p;
    for (uint32_t j = 0; j < n; j++, q += width) {
        uint64_t v = q[0];
        if (width > 1)
            v |= (uint64_t)q[1] << 8;
        if (width > 2)
            v |= (uint64_t)q[2] << 16 | (uint64_t)q[3] << 24;
        r->bad |= v >= n_locations;
        out[j] = v;
    }
    r->p = q;
}

static void get_sample(rd *r, kiln_pprof_t *p, kiln_pprof_sample *s, size_t locs_cap,
                       size_t labels_cap)
{
    size_t ns = p->n_strings;
    s->n_locs = (uint32_t)get_count(r);
    s->loc_off = (uint32_t)p->n_locs;
    if (p->n_locs + s->n_locs > locs_cap) {
        r->bad = true;
        return;
    }
    get_stack(r, p->locs + p->n_locs, s->n_locs, p->n_locations);
    p->n_locs += s->n_locs;
    s->value_off = (uint32_t)p->n_values;
    s->n_values = (uint32_t)p->n_sample_types;
    for (size_t t = 0; t < p->n_sample_types; t++)
        p->values[p->n_values++] = get_sv(r);
    s->n_labels = (uint32_t)get_count(r);
    s->label_off = (uint32_t)p->n_labels;
    if (p->n_labels + s->n_labels > labels_cap) {
        r->bad = true;
        return;
    }
    for (uint32_t j = 0; j < s->n_labels; j++) {
        kiln_pprof_label *l = &p->labels[p->n_labels++];
        l->key = (int64_t)get_index(r, ns);
        l->str = (int64_t)get_index(r, ns);
    }
}

static void get_samples(rd *r, kiln_pprof_t *p)
{
    p->n_samples = get_count(r);
    size_t locs = get_count(r), labels = get_count(r);
    if (p->n_sample_types != 0 && p->n_samples > (size_t)(r->end - r->p) / p->n_sample_types)
        r->bad = true;
    if (r->bad)
        return;
    p->samples = get_array(r, p->n_samples, sizeof(*p->samples));
    p->locs = get_array(r, locs, sizeof(*p->locs));
    p->values = get_array(r, p->n_samples * p->n_sample_types, sizeof(*p->values));
    p->labels = get_array(r, labels, sizeof(*p->labels));
    for (size_t i = 0; i < p->n_samples && !r->bad; i++)
        get_sample(r, p, &p->samples[i], locs, labels);
    if (p->n_locs != locs || p->n_labels != labels)
        r->bad = true;
}

/* One part; sym holds the symbols of its group. */
static void get_part(rd *r, const kiln_pprof_t *sym, kiln_head_part *part)
{
    size_t nl = get_count(r);
    kiln_label_t *l = get_array(r, nl, sizeof(*l));
    for (size_t i = 0; i < nl && !r->bad; i++) {
        kiln_str_t k = get_bytes(r), v = get_bytes(r);
        l[i] = (kiln_label_t){kiln_arena_strndup(r->a, k.ptr, k.len),
                              kiln_arena_strndup(r->a, v.ptr, v.len)};
    }
    kiln_pprof_t *p = get_array(r, 1, sizeof(*p));
    *p = *sym;
    uint64_t id = 0;
    for (int k = 0; k < 8 && r->p < r->end; k++)
        id |= (uint64_t)*r->p++ << (8 * k);
    p->time_nanos = get_sv(r), p->duration_nanos = get_sv(r);
    p->n_sample_types = get_count(r);
    p->sample_types = get_array(r, p->n_sample_types, sizeof(*p->sample_types));
    for (size_t t = 0; t < p->n_sample_types; t++) {
        p->sample_types[t].type = (int64_t)get_index(r, p->n_strings);
        p->sample_types[t].unit = (int64_t)get_index(r, p->n_strings);
    }
    p->period_type.type = (int64_t)get_index(r, p->n_strings);
    p->period_type.unit = (int64_t)get_index(r, p->n_strings);
    p->period = get_sv(r);
    get_samples(r, p);
    *part = (kiln_head_part){l, nl, p, id};
}

static kiln_status decode_v2(rd *r, kiln_record *out)
{
    kiln_str_t t = get_bytes(r);
    out->tenant = kiln_arena_strndup(r->a, t.ptr, t.len);
    size_t groups = get_count(r), cap = groups;
    out->parts = get_array(r, cap, sizeof(*out->parts));
    out->n = 0;
    for (size_t g = 0; g < groups && !r->bad; g++) {
        kiln_pprof_t sym;
        memset(&sym, 0, sizeof(sym));
        get_symbols(r, &sym);
        size_t k = get_count(r);
        if (r->bad)
            break;
        if (out->n + k > cap) {
            size_t ncap = 2 * cap + k;
            out->parts = kiln_arena_grow(r->a, out->parts, (cap + 1) * sizeof(*out->parts),
                                         (ncap + 1) * sizeof(*out->parts));
            cap = ncap;
        }
        for (size_t j = 0; j < k && !r->bad; j++)
            get_part(r, &sym, &out->parts[out->n++]);
    }
    return r->bad || r->p != r->end || *out->tenant == '\0' ? KILN_DATA_LOSS : KILN_OK;
}

/* ---- reading (format 1) ------------------------------------------------------------ */

/* A protobuf WalRecord: every series' pprof is decoded and normalised
 * again, as format 1 replay always did. */
static kiln_status decode_v1(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_record *out)
{
    ProtobufCAllocator al = kiln_arena_pb_allocator(a);
    Ingester__V1__WalRecord *rec = ingester__v1__wal_record__unpack(&al, len, data);
    if (rec == NULL || *rec->tenant == '\0')
        return KILN_DATA_LOSS;
    out->tenant = rec->tenant;
    out->parts = kiln_arena_calloc(a, rec->n_series + 1, sizeof(*out->parts));
    out->n = rec->n_series;
    for (size_t i = 0; i < rec->n_series; i++) {
        const Ingester__V1__ProfileSeries *s = rec->series[i];
        kiln_label_t *l = kiln_arena_alloc(a, (s->n_labels + 1) * sizeof(*l));
        for (size_t j = 0; j < s->n_labels; j++)
            l[j] = (kiln_label_t){s->labels[j]->name, s->labels[j]->value};
        kiln_pprof_t *p = kiln_arena_alloc(a, sizeof(*p));
        kiln_status st = kiln_pprof_decode(a, s->profile.data, s->profile.len, p, NULL);
        if (st == KILN_OK) /* normalize trusts only validated indices */
            st = kiln_pprof_validate_normalize(a, p, 0, NULL);
        if (st != KILN_OK)
            return KILN_DATA_LOSS;
        out->parts[i] = (kiln_head_part){l, s->n_labels, p, strtoull(s->id, NULL, 10)};
    }
    return KILN_OK;
}

kiln_status kiln_record_decode(kiln_arena_t *a, const uint8_t *data, size_t len, kiln_record *out,
                               kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len < 2)
        return kiln_err_set(err, KILN_DATA_LOSS, "undecodable WAL record of %zu bytes", len);
    if (data[0] != REC_MAGIC) {
        if (decode_v1(a, data, len, out) == KILN_OK)
            return KILN_OK;
        return kiln_err_set(err, KILN_DATA_LOSS, "undecodable WAL record of %zu bytes", len);
    }
    if (data[1] != REC_VERSION)
        return kiln_err_set(err, KILN_FAILED_PRECONDITION,
                            "WAL record format %u is not one this build reads (1 and %d)",
                            (unsigned)data[1], REC_VERSION);
    rd r = {data + 2, data + len, a, false};
    if (decode_v2(&r, out) != KILN_OK)
        return kiln_err_set(err, KILN_DATA_LOSS, "undecodable WAL record of %zu bytes (format %d)",
                            len, REC_VERSION);
    return KILN_OK;
}
