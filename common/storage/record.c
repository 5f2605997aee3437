/* SPDX-License-Identifier: Apache-2.0
 * record: encoding and decoding of the push record (record.h). */
#include "record.h"

#include <stdlib.h>
#include <string.h>

#include "ingester/v1/ingester.pb-c.h"

#define REC_MAGIC 0x4b /* 'K': no format-1 (protobuf) record starts with it */
#define REC_VERSION 2
#define VMAX 10 /* bytes of the longest varint */
#define NO_INDEX KILN_PPROF_NONE

/* ---- writing ------------------------------------------------------------------ */

/* A write cursor into a kiln_buf: need() makes room for a bound, the puts
 * then write without checks. */
typedef struct wr {
    kiln_buf *b;
    uint8_t *w;
} wr;

static inline void need(wr *o, size_t n)
{
    if (o->b->cap - (size_t)(o->w - (uint8_t *)o->b->ptr) > n)
        return; /* kiln_buf_reserve keeps a byte spare, hence > */
    o->b->len = (size_t)(o->w - (uint8_t *)o->b->ptr);
    kiln_buf_reserve(o->b, n);
    o->w = (uint8_t *)o->b->ptr + o->b->len;
}

static inline void put_uv(wr *o, uint64_t v)
{
    if (v < 0x80) { /* most indices, counts and flags */
        *o->w++ = (uint8_t)v;
        return;
    }
    while (v >= 0x80) {
        *o->w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o->w++ = (uint8_t)v;
}

static inline void put_sv(wr *o, int64_t v)
{
    put_uv(o, ((uint64_t)v << 1) ^ -((uint64_t)v >> 63)); /* zigzag */
}

static void put_bytes(wr *o, const char *p, size_t n)
{
    need(o, VMAX + n);
    put_uv(o, n);
    memcpy(o->w, p, n);
    o->w += n;
}

/* An index written +1, with 0 for "none" (or anything out of range). */
static inline uint64_t ref1(uint64_t i, size_t n)
{
    return i < n ? i + 1 : 0;
}

static void put_symbols(wr *o, const kiln_pprof_t *p)
{
    need(o, VMAX);
    put_uv(o, p->n_strings);
    for (size_t i = 0; i < p->n_strings; i++)
        put_bytes(o, p->strings[i].ptr, p->strings[i].len);
    need(o, VMAX * (1 + 5 * p->n_mappings + 4 * p->n_functions + 1));
    put_uv(o, p->n_mappings);
    for (size_t i = 0; i < p->n_mappings; i++) {
        const kiln_pprof_mapping *m = &p->mappings[i];
        put_uv(o, m->memory_start), put_uv(o, m->memory_limit), put_uv(o, m->file_offset);
        put_uv(o, (uint64_t)m->filename), put_uv(o, (uint64_t)m->build_id);
    }
    put_uv(o, p->n_functions);
    for (size_t i = 0; i < p->n_functions; i++) {
        const kiln_pprof_function *f = &p->functions[i];
        put_uv(o, (uint64_t)f->name), put_uv(o, (uint64_t)f->system_name);
        put_uv(o, (uint64_t)f->filename), put_sv(o, f->start_line);
    }
    put_uv(o, p->n_locations);
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        need(o, VMAX * (3 + 2 * (size_t)l->n_lines));
        put_uv(o, ref1(l->mapping, p->n_mappings)), put_uv(o, l->address), put_uv(o, l->n_lines);
        for (uint32_t j = 0; j < l->n_lines; j++) {
            const kiln_pprof_line *ln = &p->lines[l->line_off + j];
            put_uv(o, ref1(ln->function, p->n_functions)), put_sv(o, ln->line);
        }
    }
}

/* Bytes per location index in a stack: the fewest that hold every index
 * of the profile. Fixed width, because varints of indices on either side
 * of 128 cost a mispredicted branch per frame. */
static unsigned loc_width(size_t n_locations)
{
    return n_locations <= 0x100 ? 1 : n_locations <= 0x10000 ? 2 : 4;
}

static void put_stack(wr *o, const uint64_t *locs, uint32_t n, unsigned width)
{
    uint8_t *w = o->w;
    uint32_t j0 = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight 1-byte or four 2-byte indices per 8-byte store: stacks are
     * most of a record. The loops below finish the rest. */
    for (; width == 1 && j0 + 8 <= n; j0 += 8) {
        uint64_t x = 0;
        for (unsigned k = 0; k < 8; k++)
            x |= (locs[j0 + k] & 0xff) << (8 * k);
        memcpy(w + j0, &x, sizeof(x));
    }
    for (; width == 2 && j0 + 4 <= n; j0 += 4) {
        uint64_t x = (locs[j0] & 0xffff) | (locs[j0 + 1] & 0xffff) << 16 |
                     (locs[j0 + 2] & 0xffff) << 32 | locs[j0 + 3] << 48;
        memcpy(w + 2 * j0, &x, sizeof(x));
    }
#endif
    if (width == 1) {
        for (uint32_t j = j0; j < n; j++)
            w[j] = (uint8_t)locs[j];
    } else if (width == 2) {
        for (uint32_t j = j0; j < n; j++)
            w[2 * j] = (uint8_t)locs[j], w[2 * j + 1] = (uint8_t)(locs[j] >> 8);
    } else {
        for (uint32_t j = 0; j < n; j++) {
            w[4 * j] = (uint8_t)locs[j], w[4 * j + 1] = (uint8_t)(locs[j] >> 8);
            w[4 * j + 2] = (uint8_t)(locs[j] >> 16), w[4 * j + 3] = (uint8_t)(locs[j] >> 24);
        }
    }
    o->w += (size_t)n * width;
}

static void put_samples(wr *o, const kiln_pprof_t *p)
{
    unsigned width = loc_width(p->n_locations);
    size_t locs = 0, labels = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        locs += p->samples[i].n_locs;
        labels += p->samples[i].n_labels;
    }
    need(o, 3 * VMAX);
    put_uv(o, p->n_samples), put_uv(o, locs), put_uv(o, labels);
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        need(o, VMAX * (2 + s->n_locs + p->n_sample_types + 2 * (size_t)s->n_labels));
        put_uv(o, s->n_locs);
        if (s->n_locs != 0) /* and p->locs may be NULL */
            put_stack(o, p->locs + s->loc_off, s->n_locs, width);
        for (size_t t = 0; t < p->n_sample_types; t++)
            put_sv(o, p->values[s->value_off + t]);
        put_uv(o, s->n_labels);
        for (uint32_t j = 0; j < s->n_labels; j++) {
            const kiln_pprof_label *l = &p->labels[s->label_off + j];
            put_uv(o, (uint64_t)l->key), put_uv(o, (uint64_t)l->str);
        }
    }
}

static void put_part(wr *o, const kiln_head_part *part)
{
    const kiln_pprof_t *p = part->profile;
    need(o, VMAX);
    put_uv(o, part->n_labels);
    for (size_t i = 0; i < part->n_labels; i++) {
        put_bytes(o, part->labels[i].name, strlen(part->labels[i].name));
        put_bytes(o, part->labels[i].value, strlen(part->labels[i].value));
    }
    need(o, 8 + VMAX * (6 + 2 * p->n_sample_types));
    for (int k = 0; k < 8; k++)
        *o->w++ = (uint8_t)(part->id >> (8 * k));
    put_sv(o, p->time_nanos), put_sv(o, p->duration_nanos);
    put_uv(o, p->n_sample_types);
    for (size_t t = 0; t < p->n_sample_types; t++)
        put_uv(o, (uint64_t)p->sample_types[t].type), put_uv(o, (uint64_t)p->sample_types[t].unit);
    put_uv(o, (uint64_t)p->period_type.type), put_uv(o, (uint64_t)p->period_type.unit);
    put_sv(o, p->period);
    put_samples(o, p);
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
    wr o = {out, (uint8_t *)out->ptr + out->len};
    need(&o, 2 + VMAX);
    *o.w++ = REC_MAGIC;
    *o.w++ = REC_VERSION;
    put_bytes(&o, tenant, strlen(tenant));
    need(&o, VMAX);
    put_uv(&o, groups);
    for (size_t i = 0; i < n;) {
        size_t k = group_len(parts, n, i);
        put_symbols(&o, parts[i].profile);
        need(&o, VMAX);
        put_uv(&o, k);
        for (size_t j = 0; j < k; j++)
            put_part(&o, &parts[i + j]);
        i += k;
    }
    out->len = (size_t)(o.w - (uint8_t *)out->ptr);
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
