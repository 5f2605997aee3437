/* SPDX-License-Identifier: Apache-2.0
 * otlp_fast: hand-written decoders of the OTLP messages that make most of an
 * export's bytes (Sample, Location, Line, Stack, Function, Mapping) or most
 * of its messages (scalar AnyValues, attributes, ValueType), tried
 * before pbdec's generic decoder. Each takes only the shape real senders
 * write: one-byte keys of its known fields with their own wire types, each
 * packed field at most once, no unknown fields, no NUL byte in a string.
 * Anything else, malformed or merely unusual, returns NULL and goes to the
 * generic decoder, which alone decides; so these never change what is
 * accepted or what it decodes to, nor miss a NUL that pbdec must report. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "otlp_int.h"

#define PROF(x) opentelemetry__proto__profiles__v1development__##x
#define PROF_INIT(X) OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__##X##__INIT
#define FAST_LINES 64 /* a location with more lines goes to the generic decoder */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

/* A varint at r, which has at least 10 bytes left: its low 64 bits. */
static inline bool varint10(rd *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            *v = x;
            r->p = p + i + 1;
            return true;
        }
    }
    return false; /* longer than protobuf-c allows */
}

/* A varint ending within 10 bytes (protobuf-c's limit). */
static inline bool rd_varint(rd *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    if (r->end - p >= 3) { /* the usual short ones, unrolled */
        if (p[0] < 0x80) {
            *v = p[0];
            r->p = p + 1;
            return true;
        }
        if (p[1] < 0x80) {
            *v = (p[0] & 0x7fu) | (uint64_t)p[1] << 7;
            r->p = p + 2;
            return true;
        }
        if (p[2] < 0x80) {
            *v = (p[0] & 0x7fu) | (uint64_t)(p[1] & 0x7f) << 7 | (uint64_t)p[2] << 14;
            r->p = p + 3;
            return true;
        }
    }
    if (r->end - p >= 10) /* room for the longest: no bound to check per byte */
        return varint10(r, v);
    uint64_t x = 0;
    size_t max = (size_t)(r->end - p);
    for (size_t i = 0; i < max; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *v = x;
            r->p = p + i + 1;
            return true;
        }
    }
    return false;
}

/* A length prefix as protobuf-c reads one (at most 5 bytes, at most
 * INT_MAX) and the bytes it covers. */
static inline bool rd_len(rd *r, const uint8_t **s, size_t *n)
{
    const uint8_t *p = r->p;
    size_t rem = (size_t)(r->end - p), max = rem < 5 ? rem : 5, val = 0;
    for (size_t i = 0; i < max; i++) {
        val |= (size_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            if (val > INT_MAX || val > rem - (i + 1))
                return false;
            *s = p + i + 1;
            *n = val;
            r->p = *s + val;
            return true;
        }
    }
    return false;
}

/* How many of n bytes end a varint (have the top bit clear), 8 at a time. */
static size_t last_bytes(const uint8_t *s, size_t n)
{
    size_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        w = (~w & 0x8080808080808080ull) >> 7; /* 1 in each byte that ends one */
        c += (size_t)((w * 0x0101010101010101ull) >> 56);
    }
    for (; i < n; i++)
        c += (s[i] & 0x80) == 0;
    return c;
}

/* A varint at r as rd_varint reads it, unrolled to five bytes: sample
 * values (off-cpu nanoseconds, counts) take three to five, where
 * rd_varint's byte loop cost most of a Sample's decoding. */
static inline __attribute__((always_inline)) bool wide_varint(rd *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    if (r->end - p < 10)
        return rd_varint(r, v); /* near the end: bounds checked per byte */
    uint64_t x = p[0];
    unsigned n = 1;
    if (x >= 0x80) {
        /* Each byte's bits are added before its stop bit is tested: a
         * byte that ends the varint has no top bit to mask. */
        x = (x & 0x7f) | (uint64_t)p[1] << 7;
        n = 2;
        if (p[1] >= 0x80) {
            x = (x & 0x3fff) | (uint64_t)p[2] << 14;
            n = 3;
        }
        if (n == 3 && p[2] >= 0x80) {
            x = (x & 0x1fffff) | (uint64_t)p[3] << 21;
            n = 4;
        }
        if (n == 4 && p[3] >= 0x80) {
            x = (x & 0xfffffff) | (uint64_t)p[4] << 28;
            n = 5;
        }
        if (n == 5 && p[4] >= 0x80)
            return varint10(r, v);
    }
    *v = x;
    r->p = p + n;
    return true;
}

/* Packed varints, their low 32 bits (wide false) or all 64, into an array
 * of the size protobuf-c gives it; none: the array stays NULL. */
static bool packed_varints(kiln_arena_t *a, const uint8_t *s, size_t n, bool wide, void **arr,
                           size_t *count)
{
    size_t c = last_bytes(s, n);
    if (n == 0)
        return true;
    if (c == 0 || (*arr = kiln_arena_alloc(a, c * (wide ? 8 : 4))) == NULL)
        return false;
    rd r = {s, s + n};
    uint64_t v;
    if (wide) {
        for (uint64_t *out = *arr, *end = out + c; out < end; out++) {
            if (!wide_varint(&r, &v))
                return false;
            *out = v;
        }
    } else {
        for (uint32_t *out = *arr, *end = out + c; out < end; out++) {
            if (!rd_varint(&r, &v))
                return false;
            *out = (uint32_t)v;
        }
    }
    *count = c;
    return r.p == r.end;
}

/* The packed field at r, decoded once: a second occurrence is unusual. */
static bool once_packed(kiln_arena_t *a, rd *r, bool wide, void **arr, size_t *count)
{
    const uint8_t *s;
    size_t n;
    return *arr == NULL && *count == 0 && rd_len(r, &s, &n) &&
           packed_varints(a, s, n, wide, arr, count);
}

static bool rd_i32(rd *r, int32_t *out)
{
    uint64_t v;
    if (!rd_varint(r, &v))
        return false;
    *out = (int32_t)(uint32_t)v; /* protobuf-c keeps the low 32 bits */
    return true;
}

static bool rd_u64(rd *r, uint64_t *out)
{
    return rd_varint(r, out);
}

static bool rd_i64(rd *r, int64_t *out)
{
    uint64_t v;
    if (!rd_varint(r, &v))
        return false;
    *out = (int64_t)v;
    return true;
}

static bool timestamps(kiln_arena_t *a, rd *r, o_sample *m)
{
    const uint8_t *s;
    size_t n;
    if (m->timestamps_unix_nano != NULL || !rd_len(r, &s, &n) || n % 8 != 0)
        return false;
    if (n == 0)
        return m->n_timestamps_unix_nano == 0;
    m->timestamps_unix_nano = kiln_arena_alloc(a, n);
    if (m->timestamps_unix_nano == NULL)
        return false;
    memcpy(m->timestamps_unix_nano, s, n);
    m->n_timestamps_unix_nano = n / 8;
    return true;
}

static bool sample_field(kiln_arena_t *a, rd *r, uint8_t key, o_sample *m)
{
    switch (key) {
    case 0x08:
        return rd_i32(r, &m->stack_index);
    case 0x12:
        return once_packed(a, r, false, (void **)&m->attribute_indices, &m->n_attribute_indices);
    case 0x18:
        return rd_i32(r, &m->link_index);
    case 0x22:
        return once_packed(a, r, true, (void **)&m->values, &m->n_values);
    case 0x2a:
        return timestamps(a, r, m);
    default:
        return false;
    }
}

static ProtobufCMessage *fast_sample(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_sample init = PROF_INIT(SAMPLE);
    o_sample *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        if (!sample_field(a, &r, key, m))
            return NULL;
    }
    return &m->base;
}

static ProtobufCMessage *fast_line(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_line init = PROF_INIT(LINE);
    o_line *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        bool ok = key == 0x08   ? rd_i32(&r, &m->function_index)
                  : key == 0x10 ? rd_i64(&r, &m->line)
                  : key == 0x18 ? rd_i64(&r, &m->column)
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

static ProtobufCMessage *fast_function(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_fn init = PROF_INIT(FUNCTION);
    o_fn *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        bool ok = key == 0x08   ? rd_i32(&r, &m->name_strindex)
                  : key == 0x10 ? rd_i32(&r, &m->system_name_strindex)
                  : key == 0x18 ? rd_i32(&r, &m->filename_strindex)
                  : key == 0x20 ? rd_i64(&r, &m->start_line)
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

static ProtobufCMessage *fast_stack(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_stack init = PROF_INIT(STACK);
    o_stack *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        if (key != 0x0a ||
            !once_packed(a, &r, false, (void **)&m->location_indices, &m->n_location_indices))
            return NULL;
    }
    return &m->base;
}

static ProtobufCMessage *fast_mapping(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_map init = PROF_INIT(MAPPING);
    o_map *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        bool ok = key == 0x08   ? rd_u64(&r, &m->memory_start)
                  : key == 0x10 ? rd_u64(&r, &m->memory_limit)
                  : key == 0x18 ? rd_u64(&r, &m->file_offset)
                  : key == 0x20 ? rd_i32(&r, &m->filename_strindex)
                  : key == 0x2a ? once_packed(a, &r, false, (void **)&m->attribute_indices,
                                              &m->n_attribute_indices)
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

/* One line of a location into lines[*n] (at most FAST_LINES). */
static bool location_line(kiln_arena_t *a, rd *r, o_line **lines, size_t *n)
{
    const uint8_t *s;
    size_t len;
    if (*n == FAST_LINES || !rd_len(r, &s, &len))
        return false;
    lines[*n] = (o_line *)fast_line(a, s, len);
    return lines[(*n)++] != NULL;
}

static ProtobufCMessage *fast_location(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_loc init = PROF_INIT(LOCATION);
    o_loc *m = kiln_arena_alloc(a, sizeof(*m));
    o_line *lines[FAST_LINES];
    size_t n = 0;
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        bool ok = key == 0x08   ? rd_i32(&r, &m->mapping_index)
                  : key == 0x10 ? rd_u64(&r, &m->address)
                  : key == 0x1a ? location_line(a, &r, lines, &n)
                  : key == 0x22 ? once_packed(a, &r, false, (void **)&m->attribute_indices,
                                              &m->n_attribute_indices)
                                : false;
        if (!ok)
            return NULL;
    }
    if (n != 0 && (m->lines = kiln_arena_alloc(a, n * sizeof(*m->lines))) == NULL)
        return NULL;
    if (n != 0)
        memcpy(m->lines, lines, n * sizeof(*m->lines));
    m->n_lines = n;
    return &m->base;
}

/* A string field's bytes as protobuf-c keeps them: a NUL-terminated copy.
 * NULL too when they hold a NUL byte, which the generic decoder must see
 * to note it (pbdec.h): every string these decoders read comes here. */
static char *rd_string(kiln_arena_t *a, rd *r)
{
    const uint8_t *s;
    size_t n;
    if (!rd_len(r, &s, &n))
        return NULL;
    char *out = kiln_arena_alloc(a, n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return strlen(out) == n ? out : NULL;
}

/* protobuf-c's bool: true when a byte of the varint has a low bit set. */
static bool rd_bool(rd *r, protobuf_c_boolean *out)
{
    const uint8_t *start = r->p;
    uint64_t v;
    if (!rd_varint(r, &v))
        return false;
    *out = 0;
    for (const uint8_t *b = start; b < r->p; b++)
        *out |= (*b & 0x7f) != 0;
    return true;
}

/* One scalar member of an AnyValue (key is its one-byte tag); false for
 * the others (array, kvlist, bytes) and anything unknown. */
static bool any_scalar(kiln_arena_t *a, rd *r, uint8_t key, o_any *m)
{
    switch (key) {
    case 0x0a:
        m->value_case = O_ANY(STRING_VALUE);
        return (m->string_value = rd_string(a, r)) != NULL;
    case 0x10:
        m->value_case = O_ANY(BOOL_VALUE);
        return rd_bool(r, &m->bool_value);
    case 0x18:
        m->value_case = O_ANY(INT_VALUE);
        return rd_i64(r, &m->int_value);
    case 0x21:
        if (r->end - r->p < 8)
            return false;
        m->value_case = O_ANY(DOUBLE_VALUE);
        memcpy(&m->double_value, r->p, 8);
        r->p += 8;
        return true;
    case 0x40:
        m->value_case = O_ANY(STRING_VALUE_STRINDEX);
        return rd_i32(r, &m->string_value_strindex);
    default:
        return false;
    }
}

/* An AnyValue holding one scalar (attributes: a string, an int, its string
 * index): as many as there are attributes, in the dictionary and on every
 * resource. Only copies with all their fields get it (pbdec.h), and a
 * scalar decodes alike at any depth. A second member, an empty message and
 * nested values go to the generic decoder and its oneof rules. */
static ProtobufCMessage *fast_any(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_any init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    o_any *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL || len == 0)
        return NULL;
    *m = init;
    rd r = {data + 1, data + len};
    if (!any_scalar(a, &r, data[0], m) || r.p != r.end)
        return NULL;
    return &m->base;
}

static ProtobufCMessage *fast_value_type(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_vtype init = PROF_INIT(VALUE_TYPE);
    o_vtype *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        bool ok = key == 0x08   ? rd_i32(&r, &m->type_strindex)
                  : key == 0x10 ? rd_i32(&r, &m->unit_strindex)
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

/* A dictionary attribute whose value is one scalar (fast_any). Its copies
 * that get it have a value type with all its fields (pbdec.h), as fast_any
 * assumes. */
static ProtobufCMessage *fast_kvu(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_kvu init = PROF_INIT(KEY_VALUE_AND_UNIT);
    o_kvu *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        const uint8_t *s;
        size_t n;
        bool ok = key == 0x08   ? rd_i32(&r, &m->key_strindex)
                  : key == 0x18 ? rd_i32(&r, &m->unit_strindex)
                  : key == 0x12 ? m->value == NULL && rd_len(&r, &s, &n) &&
                                      (m->value = (o_any *)fast_any(a, s, n)) != NULL
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

/* A resource or scope attribute, its key written out or as a string index,
 * whose value is one scalar (fast_any); a field seen twice goes to the
 * generic decoder. */
static ProtobufCMessage *fast_kv(kiln_arena_t *a, const uint8_t *data, size_t len)
{
    static const o_kv init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    o_kv *m = kiln_arena_alloc(a, sizeof(*m));
    if (m == NULL)
        return NULL;
    *m = init;
    for (rd r = {data, data + len}; r.p < r.end;) {
        uint8_t key = *r.p++;
        const uint8_t *s;
        size_t n;
        bool ok = key == 0x0a   ? m->key == init.key && (m->key = rd_string(a, &r)) != NULL
                  : key == 0x18 ? rd_i32(&r, &m->key_strindex)
                  : key == 0x12 ? m->value == NULL && rd_len(&r, &s, &n) &&
                                      (m->value = (o_any *)fast_any(a, s, n)) != NULL
                                : false;
        if (!ok)
            return NULL;
    }
    return &m->base;
}

void kiln_otlp__fast_decoders(kiln_pbdec_t *p)
{
    kiln_pbdec_set_fast(p, &opentelemetry__proto__common__v1__key_value__descriptor, fast_kv);
    kiln_pbdec_set_fast(p, &opentelemetry__proto__common__v1__any_value__descriptor, fast_any);
    kiln_pbdec_set_fast(p, &PROF(value_type__descriptor), fast_value_type);
    kiln_pbdec_set_fast(p, &PROF(key_value_and_unit__descriptor), fast_kvu);
    kiln_pbdec_set_fast(p, &PROF(sample__descriptor), fast_sample);
    kiln_pbdec_set_fast(p, &PROF(location__descriptor), fast_location);
    kiln_pbdec_set_fast(p, &PROF(line__descriptor), fast_line);
    kiln_pbdec_set_fast(p, &PROF(stack__descriptor), fast_stack);
    kiln_pbdec_set_fast(p, &PROF(function__descriptor), fast_function);
    kiln_pbdec_set_fast(p, &PROF(mapping__descriptor), fast_mapping);
}
