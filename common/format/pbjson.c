/* SPDX-License-Identifier: Apache-2.0
 * pbjson: proto3 canonical JSON for protobuf-c messages, driven by the message
 * descriptors. The encoder writes straight into a kiln_buf; the decoder is a
 * recursive-descent parser over the raw text that builds the message in an arena. */
#include "pbjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define MAX_DEPTH 64
#define SEEN_SMALL 256 /* messages with up to this many fields track duplicates on the stack */

/* ---------------------------------------------------------------- shared */

static const void *cmember(const void *msg, unsigned off)
{
    return (const char *)msg + off;
}

static void *member(void *msg, unsigned off)
{
    return (char *)msg + off;
}

/* Size of one value of type t as protobuf-c lays it out (repeated arrays hold these). */
static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4; /* 32-bit integers and enums */
    }
}

static bool is_64(ProtobufCType t)
{
    return type_size(t) == 8 && t != PROTOBUF_C_TYPE_DOUBLE;
}

static bool is_unsigned(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 ||
           t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
}

static bool is_int(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return true;
    default:
        return false;
    }
}

/* Writes the JSON name protoc derives from a proto field name (drop each '_'
 * and upper-case the letter after it; cap_first also upper-cases the first,
 * which is how protoc names map entries). out needs strlen(name) bytes; no NUL. */
static size_t camel_write(const char *name, char *out, bool cap_first)
{
    bool up = cap_first;
    size_t n = 0;
    for (; *name != '\0'; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        out[n++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        up = false;
    }
    return n;
}

/* True when the JSON name of proto field `name` equals s[0..len). */
static bool camel_eq(const char *name, const char *s, size_t len, bool cap_first)
{
    bool up = cap_first;
    size_t i = 0;
    for (; *name != '\0'; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        char c = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        if (i >= len || s[i] != c)
            return false;
        i++;
        up = false;
    }
    return i == len;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k || strcmp(s + n - k, suffix) != 0)
        return false;
    *stem = n - k;
    return true;
}

/* protobuf-c 1.4 drops the map_entry option, so a map<K, V> field is told
 * apart by the shape protoc gives its synthetic entry: a repeated message
 * <Parent>.<FieldCamel>Entry whose only fields are key = 1 and value = 2,
 * with a key type a map may have. Returns the entry descriptor or NULL. */
static const ProtobufCMessageDescriptor *map_entry(const ProtobufCMessageDescriptor *parent,
                                                   const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (e == NULL || e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return NULL;
    ProtobufCType kt = e->fields[0].type;
    if (!is_int(kt) && kt != PROTOBUF_C_TYPE_BOOL && kt != PROTOBUF_C_TYPE_STRING)
        return NULL;
    size_t stem, plen = strlen(parent->name);
    if (!ends_with(e->short_name, "Entry", &stem) || !camel_eq(f->name, e->short_name, stem, true))
        return NULL;
    if (strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.' ||
        strcmp(e->name + plen + 1, e->short_name) != 0)
        return NULL;
    return e;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid:
 * truncated, overlong, a surrogate, or past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* ---------------------------------------------------------------- encoder */

typedef struct enc {
    kiln_buf *b;
    bool ok; /* false once the buffer's max is reached; later writes are skipped */
} enc;

static void put(enc *e, const void *p, size_t n)
{
    if (e->ok)
        e->ok = kiln_buf_append(e->b, p, n);
}

static void put_c(enc *e, char c)
{
    put(e, &c, 1);
}

static void put_s(enc *e, const char *s)
{
    put(e, s, strlen(s));
}

/* Writes "<jsonName>": for a proto field name. */
static void put_key(enc *e, const char *name)
{
    size_t n = strlen(name);
    if (!e->ok || !kiln_buf_reserve(e->b, n + 3)) {
        e->ok = false;
        return;
    }
    char *p = e->b->ptr + e->b->len;
    p[0] = '"';
    size_t k = camel_write(name, p + 1, false);
    p[k + 1] = '"';
    p[k + 2] = ':';
    e->b->len += k + 3;
    e->b->ptr[e->b->len] = '\0';
}

/* Escapes one byte the way protojson does; invalid UTF-8 (k == 0) becomes U+FFFD. */
static void put_escape(enc *e, unsigned c, size_t k)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0', hex[(c >> 4) & 0xF], hex[c & 0xF]};
    if (k == 0) {
        put_s(e, "\\ufffd");
        return;
    }
    switch (c) {
    case '"':
    case '\\':
        esc[1] = (char)c;
        break;
    case '\b':
        esc[1] = 'b';
        break;
    case '\f':
        esc[1] = 'f';
        break;
    case '\n':
        esc[1] = 'n';
        break;
    case '\r':
        esc[1] = 'r';
        break;
    case '\t':
        esc[1] = 't';
        break;
    default:
        put(e, esc, 6);
        return;
    }
    put(e, esc, 2);
}

/* Writes s as a JSON string (RFC 8259): quotes, backslashes, control
 * characters and DEL escaped; valid UTF-8 passes through. */
static void put_str(enc *e, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    put_c(e, '"');
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : utf8_seq(p + i, n - i);
        if (k > 1 || (k == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7F)) {
            i += k;
            continue;
        }
        put(e, p + run, i - run);
        put_escape(e, c, k);
        run = ++i;
    }
    put(e, p + run, n - run);
    put_c(e, '"');
}

/* Writes standard base64 with padding, straight into the buffer. */
static void put_b64(enc *e, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out = (n + 2) / 3 * 4;
    if (!e->ok || !kiln_buf_reserve(e->b, out + 2)) {
        e->ok = false;
        return;
    }
    char *o = e->b->ptr + e->b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? p[i + 2] : 0;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '"';
    e->b->len += out + 2;
    e->b->ptr[e->b->len] = '\0';
}

/* Finds the fewest significant digits (1..17, or 1..9 for float) whose
 * decimal reads back as x, by binary search: if p digits round-trip, so do
 * more. Fills digits (no dot, no sign) and the decimal exponent of the first. */
static size_t shortest_digits(double x, bool is32, char *digits, int *exp10)
{
    char tmp[40];
    int lo = 1, hi = is32 ? 9 : 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(tmp, sizeof(tmp), "%.*e", mid - 1, x);
        bool same = is32 ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x;
        if (same)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", lo - 1, fabs(x));
    size_t n = 0;
    const char *p = tmp;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    *exp10 = (int)strtol(p + 1, NULL, 10);
    while (n > 1 && digits[n - 1] == '0')
        n--;
    return n;
}

/* Writes a finite number like protojson (Go strconv 'f' or 'e' with the
 * shortest round-trip digits): fixed notation for 1e-6 <= |x| < 1e21,
 * otherwise d.ddde+XX / d.ddde-X. */
static void put_finite(enc *e, double x, bool is32)
{
    char digits[24], out[64];
    int ex;
    size_t nd = shortest_digits(x, is32, digits, &ex), o = 0;
    double ax = fabs(x);
    bool sci =
        ax != 0 && (is32 ? ((float)ax < 1e-6f || (float)ax >= 1e21f) : (ax < 1e-6 || ax >= 1e21));
    if (signbit(x))
        out[o++] = '-';
    if (sci) {
        out[o++] = digits[0];
        if (nd > 1)
            out[o++] = '.';
        memcpy(out + o, digits + 1, nd - 1);
        o += nd - 1;
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%s%d", ex < 0 ? "-" : "+", abs(ex));
    } else if (ex < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > ex; i--)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        for (int i = 0; i <= ex || (size_t)i < nd; i++) {
            if (i == ex + 1)
                out[o++] = '.';
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        }
    }
    put(e, out, o);
}

static void put_double(enc *e, double x, bool is32)
{
    if (isnan(x))
        put_s(e, "\"NaN\"");
    else if (isinf(x))
        put_s(e, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        put_finite(e, x, is32);
}

/* Formats an integer field value as decimal text (no quotes). */
static size_t int_text(ProtobufCType t, const void *v, char *out, size_t cap)
{
    int n;
    if (is_64(t) && is_unsigned(t))
        n = snprintf(out, cap, "%" PRIu64, *(const uint64_t *)v);
    else if (is_64(t))
        n = snprintf(out, cap, "%" PRId64, *(const int64_t *)v);
    else if (is_unsigned(t))
        n = snprintf(out, cap, "%" PRIu32, *(const uint32_t *)v);
    else
        n = snprintf(out, cap, "%" PRId32, *(const int32_t *)v);
    return (size_t)n;
}

static void encode_message(enc *e, const ProtobufCMessage *m);

static void put_enum(enc *e, const ProtobufCFieldDescriptor *f, int32_t v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    char num[16];
    if (ev != NULL) {
        put_str(e, ev->name, strlen(ev->name));
    } else {
        snprintf(num, sizeof(num), "%" PRId32, v);
        put_s(e, num);
    }
}

/* Writes one value of field f (an element, for repeated fields) stored at v. */
static void encode_value(enc *e, const ProtobufCFieldDescriptor *f, const void *v)
{
    char num[24];
    const ProtobufCBinaryData *bd = v;
    const char *s;
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        put_double(e, *(const float *)v, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_double(e, *(const double *)v, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        put_s(e, *(const protobuf_c_boolean *)v ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM:
        put_enum(e, f, *(const int32_t *)v);
        break;
    case PROTOBUF_C_TYPE_STRING:
        s = *(char *const *)v;
        put_str(e, s ? s : "", s ? strlen(s) : 0);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        put_b64(e, bd->data, bd->len);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        encode_message(e, *(ProtobufCMessage *const *)v);
        break;
    default: { /* integers; 64-bit ones quoted so JavaScript keeps every digit */
        size_t n = int_text(f->type, v, num, sizeof(num));
        if (is_64(f->type))
            put_c(e, '"');
        put(e, num, n);
        if (is_64(f->type))
            put_c(e, '"');
    }
    }
}

/* Writes a map key: always a JSON string, whatever the key type. */
static void put_map_key(enc *e, const ProtobufCFieldDescriptor *kf, const void *v)
{
    char num[24];
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        encode_value(e, kf, v);
    } else if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        put_s(e, *(const protobuf_c_boolean *)v ? "\"true\"" : "\"false\"");
    } else {
        put_c(e, '"');
        put(e, num, int_text(kf->type, v, num, sizeof(num)));
        put_c(e, '"');
    }
    put_c(e, ':');
}

static void encode_map(enc *e, const ProtobufCMessageDescriptor *ed, ProtobufCMessage *const *ents,
                       size_t n)
{
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    put_c(e, '{');
    for (size_t i = 0; i < n && e->ok; i++) {
        if (i > 0)
            put_c(e, ',');
        put_map_key(e, kf, cmember(ents[i], kf->offset));
        encode_value(e, vf, cmember(ents[i], vf->offset));
    }
    put_c(e, '}');
}

static void encode_repeated(enc *e, const ProtobufCMessageDescriptor *md, const ProtobufCMessage *m,
                            const ProtobufCFieldDescriptor *f)
{
    size_t n = *(const size_t *)cmember(m, f->quantifier_offset);
    const char *arr = *(char *const *)cmember(m, f->offset);
    const ProtobufCMessageDescriptor *ed = map_entry(md, f);
    if (ed != NULL) {
        encode_map(e, ed, (ProtobufCMessage *const *)arr, n);
        return;
    }
    size_t sz = type_size(f->type);
    put_c(e, '[');
    for (size_t i = 0; i < n && e->ok; i++) {
        if (i > 0)
            put_c(e, ',');
        encode_value(e, f, arr + i * sz);
    }
    put_c(e, ']');
}

static bool all_zero(const void *v, size_t n)
{
    const unsigned char *p = v;
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Whether protojson prints field f: set oneof members and explicit-presence
 * fields always, proto3 scalars only when not at their default. -0.0 counts
 * as set (its bits are not zero), as in protojson. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *v = cmember(m, f->offset);
    const void *q = cmember(m, f->quantifier_offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)q > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)q == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)v != NULL;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)v;
        return s != NULL && (f->label != PROTOBUF_C_LABEL_NONE || s[0] != '\0');
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)q;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->type == PROTOBUF_C_TYPE_BYTES)
        return ((const ProtobufCBinaryData *)v)->len > 0;
    return !all_zero(v, type_size(f->type));
}

static void encode_message(enc *e, const ProtobufCMessage *m)
{
    if (m == NULL) {
        put_s(e, "{}");
        return;
    }
    const ProtobufCMessageDescriptor *md = m->descriptor;
    bool first = true;
    put_c(e, '{');
    for (unsigned i = 0; i < md->n_fields && e->ok; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if (!field_present(m, f))
            continue;
        if (!first)
            put_c(e, ',');
        first = false;
        put_key(e, f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            encode_repeated(e, md, m, f);
        else
            encode_value(e, f, cmember(m, f->offset));
    }
    put_c(e, '}');
}

bool kiln_pbjson_encode(const ProtobufCMessage *msg, kiln_buf *out)
{
    enc e = {out, true};
    size_t start = out->len;
    encode_message(&e, msg);
    if (!e.ok && out->ptr != NULL) {
        out->len = start; /* drop the partial output */
        out->ptr[start] = '\0';
    }
    return e.ok;
}

/* ---------------------------------------------------------------- decoder */

typedef struct dec {
    const unsigned char *s;
    size_t len, pos;
    kiln_arena_t *a;
    kiln_err *err;
    const ProtobufCFieldDescriptor *field; /* the field being parsed, named in errors */
    int depth;
    bool discard; /* set when an unknown enum name was dropped (DiscardUnknown) */
} dec;

static kiln_status fail_at(dec *d, size_t at, const char *what)
{
    char name[128];
    if (d->field == NULL)
        return kiln_err_set(d->err, KILN_INVALID_ARGUMENT, "json: %s at offset %zu", what, at);
    const char *fn = d->field->name;
    if (strlen(fn) < sizeof(name)) {
        name[camel_write(fn, name, false)] = '\0';
        fn = name;
    }
    return kiln_err_set(d->err, KILN_INVALID_ARGUMENT, "json: field \"%s\": %s at offset %zu", fn,
                        what, at);
}

/* Fails at the current token: the end of input gets its own message. */
static kiln_status fail_tok(dec *d, const char *what)
{
    return fail_at(d, d->pos, d->pos >= d->len ? "unexpected end of input" : what);
}

static kiln_status oom(dec *d)
{
    return kiln_err_set(d->err, KILN_RESOURCE_EXHAUSTED,
                        "json: message too large for the memory limit at offset %zu", d->pos);
}

/* Skips whitespace and returns the next byte, or -1 at the end. */
static int peek(dec *d)
{
    while (d->pos < d->len) {
        unsigned char c = d->s[d->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return c;
        d->pos++;
    }
    return -1;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Length of the JSON number (RFC 8259 grammar) at the start of s, or 0. */
static size_t scan_number(const unsigned char *s, size_t n)
{
    size_t p = 0;
    if (p < n && s[p] == '-')
        p++;
    if (p >= n || !is_digit(s[p]))
        return 0;
    if (s[p++] != '0')
        while (p < n && is_digit(s[p]))
            p++;
    if (p < n && s[p] == '.') {
        if (++p >= n || !is_digit(s[p]))
            return 0;
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        if (++p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !is_digit(s[p]))
            return 0;
        while (p < n && is_digit(s[p]))
            p++;
    }
    return p;
}

static bool hex4(const unsigned char *s, size_t n, size_t p, uint32_t *out)
{
    uint32_t v = 0;
    if (p + 4 > n)
        return false;
    for (size_t i = p; i < p + 4; i++) {
        unsigned c = s[i];
        int h = is_digit((int)c)                         ? (int)c - '0'
                : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (int)(c | 0x20) - 'a' + 10
                                                         : -1;
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* Decodes the escape starting at s[p] (a backslash): returns its length and
 * sets *cp, or returns 0 when it is invalid, lone surrogates included. */
static size_t escape_at(const unsigned char *s, size_t n, size_t p, uint32_t *cp)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    uint32_t hi, lo;
    if (p + 1 >= n)
        return 0;
    const char *k = s[p + 1] != '\0' ? strchr(from, s[p + 1]) : NULL;
    if (k != NULL) {
        *cp = (unsigned char)to[k - from];
        return 2;
    }
    if (s[p + 1] != 'u' || !hex4(s, n, p + 2, &hi) || (hi >= 0xDC00 && hi <= 0xDFFF))
        return 0;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 6;
    }
    if (p + 7 >= n || s[p + 6] != '\\' || s[p + 7] != 'u' || !hex4(s, n, p + 8, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Copies s[start..end) into a NUL-terminated arena string, decoding escapes
 * (already validated by lex_string). Decoded text is never longer. */
static kiln_status unescape(dec *d, size_t start, size_t end, kiln_str_t *out)
{
    char *buf = kiln_arena_alloc(d->a, end - start + 1);
    size_t o = 0;
    uint32_t cp;
    if (buf == NULL)
        return oom(d);
    for (size_t p = start; p < end;) {
        if (d->s[p] != '\\') {
            buf[o++] = (char)d->s[p++];
            continue;
        }
        p += escape_at(d->s, end, p, &cp);
        o += utf8_put(cp, buf + o);
    }
    buf[o] = '\0';
    *out = (kiln_str_t){buf, o};
    return KILN_OK;
}

/* Scans the string token at d->pos (a '"'), checking escapes, control
 * characters and UTF-8. Without escapes and with copy false, *out points
 * into the input; otherwise at a NUL-terminated, unescaped arena copy. */
static kiln_status lex_string(dec *d, kiln_str_t *out, bool copy)
{
    size_t start = ++d->pos;
    bool esc = false;
    uint32_t cp;
    for (;;) {
        if (d->pos >= d->len)
            return fail_at(d, d->pos, "unexpected end of input");
        unsigned c = d->s[d->pos];
        size_t k = 1;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = true;
            k = escape_at(d->s, d->len, d->pos, &cp);
        } else if (c >= 0x80) {
            k = utf8_seq(d->s + d->pos, d->len - d->pos);
        } else if (c < 0x20) {
            return fail_at(d, d->pos, "control character in string");
        }
        if (k == 0)
            return fail_at(d, d->pos, c == '\\' ? "invalid escape" : "invalid UTF-8 in string");
        d->pos += k;
    }
    size_t end = d->pos++;
    if (esc)
        return unescape(d, start, end, out);
    if (!copy) {
        *out = (kiln_str_t){(const char *)d->s + start, end - start};
        return KILN_OK;
    }
    char *p = kiln_arena_strndup(d->a, (const char *)d->s + start, end - start);
    if (p == NULL)
        return oom(d);
    *out = (kiln_str_t){p, end - start};
    return KILN_OK;
}

static kiln_status lex_literal(dec *d, const char *lit)
{
    size_t n = strlen(lit);
    if (d->len - d->pos < n || memcmp(d->s + d->pos, lit, n) != 0)
        return fail_tok(d, "invalid literal");
    d->pos += n;
    return KILN_OK;
}

static kiln_status lex_number(dec *d, kiln_str_t *out)
{
    size_t n = scan_number(d->s + d->pos, d->len - d->pos);
    if (n == 0)
        return fail_tok(d, "invalid number");
    *out = (kiln_str_t){(const char *)d->s + d->pos, n};
    d->pos += n;
    return KILN_OK;
}

static kiln_status enter(dec *d)
{
    if (++d->depth > MAX_DEPTH)
        return fail_at(d, d->pos, "nesting deeper than 64 levels");
    d->pos++; /* the '{' or '[' */
    return KILN_OK;
}

typedef kiln_status (*member_fn)(dec *d, kiln_str_t key, size_t key_at, void *arg);
typedef kiln_status (*elem_fn)(dec *d, void *arg);

/* Walks an object (d->pos at '{'), calling fn with d->pos at each value. */
static kiln_status parse_object(dec *d, member_fn fn, void *arg)
{
    kiln_status st = enter(d);
    if (st != KILN_OK)
        return st;
    if (peek(d) == '}') {
        d->pos++;
        d->depth--;
        return KILN_OK;
    }
    for (;;) {
        kiln_str_t key;
        if (peek(d) != '"')
            return fail_tok(d, "expected string key");
        size_t at = d->pos;
        if ((st = lex_string(d, &key, false)) != KILN_OK)
            return st;
        if (peek(d) != ':')
            return fail_tok(d, "expected ':'");
        d->pos++;
        if ((st = fn(d, key, at, arg)) != KILN_OK)
            return st;
        int c = peek(d);
        if (c != ',' && c != '}')
            return fail_tok(d, "expected ',' or '}'");
        d->pos++;
        if (c == '}')
            break;
    }
    d->depth--;
    return KILN_OK;
}

/* Walks an array (d->pos at '['), calling fn with d->pos at each element. */
static kiln_status parse_array(dec *d, elem_fn fn, void *arg)
{
    kiln_status st = enter(d);
    if (st != KILN_OK)
        return st;
    if (peek(d) == ']') {
        d->pos++;
        d->depth--;
        return KILN_OK;
    }
    for (;;) {
        if ((st = fn(d, arg)) != KILN_OK)
            return st;
        int c = peek(d);
        if (c != ',' && c != ']')
            return fail_tok(d, "expected ',' or ']'");
        d->pos++;
        if (c == ']')
            break;
    }
    d->depth--;
    return KILN_OK;
}

static kiln_status skip_value(dec *d);

static kiln_status skip_member(dec *d, kiln_str_t key, size_t key_at, void *arg)
{
    (void)key, (void)key_at, (void)arg;
    return skip_value(d);
}

static kiln_status skip_elem(dec *d, void *arg)
{
    (void)arg;
    return skip_value(d);
}

/* Checks and skips any JSON value (an unknown field's). */
static kiln_status skip_value(dec *d)
{
    kiln_str_t s;
    switch (peek(d)) {
    case '"':
        return lex_string(d, &s, false);
    case '{':
        return parse_object(d, skip_member, NULL);
    case '[':
        return parse_array(d, skip_elem, NULL);
    case 't':
        return lex_literal(d, "true");
    case 'f':
        return lex_literal(d, "false");
    case 'n':
        return lex_literal(d, "null");
    default:
        return lex_number(d, &s);
    }
}

/* Reads a number token, or a string (protojson allows both for numbers).
 * *quoted tells which; a quoted value is returned unchecked. */
static kiln_status num_or_string(dec *d, kiln_str_t *out, bool *quoted)
{
    int c = peek(d);
    *quoted = c == '"';
    if (c == '"')
        return lex_string(d, out, false);
    if (c == '-' || is_digit(c))
        return lex_number(d, out);
    return fail_tok(d, "expected number");
}

/* Reads the exponent of a JSON number, saturating far beyond any int64. */
static long exp_value(const char *p, const char *end)
{
    bool neg = false;
    long v = 0;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    for (; p < end; p++)
        if (v < 1000000)
            v = v * 10 + (*p - '0');
    return neg ? -v : v;
}

enum { INT_OK, INT_FRACTION, INT_RANGE };

/* Converts valid JSON number text to a sign and magnitude. Exponents are
 * allowed (1e3) as in protojson, but the value must be a whole number
 * (INT_FRACTION otherwise) below 2^64 (INT_RANGE otherwise). */
static int number_to_int(kiln_str_t t, bool *neg, uint64_t *mag)
{
    const char *p = t.ptr, *end = t.ptr + t.len, *ip, *fp = NULL;
    size_t ni = 0, nf = 0;
    *neg = *p == '-';
    ip = p + *neg;
    while (ip + ni < end && is_digit(ip[ni]))
        ni++;
    p = ip + ni;
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && is_digit(*p))
            p++, nf++;
    }
    long ex = p < end ? exp_value(p + 1, end) : 0;
    size_t total = ni + nf;
#define DIGIT(k) ((k) < ni ? ip[k] : fp[(k)-ni])
    while (total > 0 && DIGIT(total - 1) == '0')
        total--, ex++;
    ex -= (long)nf;
    *mag = 0;
    if (total == 0)
        return INT_OK;
    if (ex < 0)
        return INT_FRACTION;
    if (ex > 19)
        return INT_RANGE;
    for (size_t k = 0; k < total + (size_t)ex; k++) {
        unsigned dg = k < total ? (unsigned)(DIGIT(k) - '0') : 0;
        if (*mag > (UINT64_MAX - dg) / 10)
            return INT_RANGE;
        *mag = *mag * 10 + dg;
    }
#undef DIGIT
    return INT_OK;
}

/* Range-checks sign and magnitude for type t and stores the value at dst. */
static bool store_int(ProtobufCType t, bool neg, uint64_t mag, void *dst)
{
    if (is_unsigned(t)) {
        if ((neg && mag != 0) || (!is_64(t) && mag > UINT32_MAX))
            return false;
        if (is_64(t))
            *(uint64_t *)dst = mag;
        else
            *(uint32_t *)dst = (uint32_t)mag;
        return true;
    }
    uint64_t lim = (is_64(t) ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX) + neg;
    if (mag > lim)
        return false;
    int64_t v = !neg ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    if (is_64(t))
        *(int64_t *)dst = v;
    else
        *(int32_t *)dst = (int32_t)v;
    return true;
}

/* Parses integer text (a bare or quoted number) for type t into dst. */
static kiln_status int_from_text(dec *d, ProtobufCType t, kiln_str_t num, size_t at, void *dst)
{
    bool neg;
    uint64_t mag;
    if (num.len == 0 || scan_number((const unsigned char *)num.ptr, num.len) != num.len)
        return fail_at(d, at, "invalid number");
    int r = number_to_int(num, &neg, &mag);
    if (r == INT_FRACTION)
        return fail_at(d, at, "expected an integer");
    if (r != INT_OK || !store_int(t, neg, mag, dst))
        return fail_at(d, at, "integer out of range");
    return KILN_OK;
}

static kiln_status parse_int(dec *d, ProtobufCType t, void *dst)
{
    kiln_str_t num;
    bool quoted;
    size_t at = peek(d) >= 0 ? d->pos : d->len;
    kiln_status st = num_or_string(d, &num, &quoted);
    return st != KILN_OK ? st : int_from_text(d, t, num, at, dst);
}

/* Parses a float or double: a number, a quoted number, or "NaN",
 * "Infinity", "-Infinity". Values past the type's range are errors. */
static kiln_status parse_float(dec *d, ProtobufCType t, void *dst)
{
    kiln_str_t s;
    bool quoted;
    size_t at = peek(d) >= 0 ? d->pos : d->len;
    kiln_status st = num_or_string(d, &s, &quoted);
    double v;
    char tmp[64], *text = tmp;
    if (st != KILN_OK)
        return st;
    if (quoted &&
        (kiln_str_eq(s, "NaN") || kiln_str_eq(s, "Infinity") || kiln_str_eq(s, "-Infinity"))) {
        v = s.ptr[0] == 'N' ? NAN : s.ptr[0] == '-' ? -INFINITY : INFINITY;
    } else {
        if (quoted && (s.len == 0 || scan_number((const unsigned char *)s.ptr, s.len) != s.len))
            return fail_at(d, at, "invalid number");
        if (s.len >= sizeof(tmp) && (text = kiln_arena_strndup(d->a, s.ptr, s.len)) == NULL)
            return oom(d);
        if (text == tmp) {
            memcpy(tmp, s.ptr, s.len);
            tmp[s.len] = '\0';
        }
        v = t == PROTOBUF_C_TYPE_FLOAT ? strtof(text, NULL) : strtod(text, NULL);
        if (isinf(v))
            return fail_at(d, at, "number out of range");
    }
    if (t == PROTOBUF_C_TYPE_FLOAT)
        *(float *)dst = (float)v;
    else
        *(double *)dst = v;
    return KILN_OK;
}

/* Enums: a value name, or a number (open enums keep unknown numbers).
 * Unknown names are dropped, as protojson does with DiscardUnknown. */
static kiln_status parse_enum(dec *d, const ProtobufCEnumDescriptor *ed, int32_t *dst)
{
    kiln_str_t s;
    kiln_status st;
    if (peek(d) != '"')
        return peek(d) == '-' || is_digit(peek(d)) ? parse_int(d, PROTOBUF_C_TYPE_INT32, dst)
                                                   : fail_tok(d, "expected enum name or number");
    if ((st = lex_string(d, &s, false)) != KILN_OK)
        return st;
    for (unsigned i = 0; i < ed->n_values; i++) {
        if (kiln_str_eq(s, ed->values[i].name)) {
            *dst = ed->values[i].value;
            return KILN_OK;
        }
    }
    d->discard = true;
    return KILN_OK;
}

static kiln_status parse_bytes(dec *d, ProtobufCBinaryData *dst)
{
    kiln_str_t s;
    kiln_status st;
    if (peek(d) != '"')
        return fail_tok(d, "expected base64 string");
    size_t at = d->pos;
    if ((st = lex_string(d, &s, false)) != KILN_OK)
        return st;
    uint8_t *buf = kiln_arena_alloc(d->a, kiln_base64_max_decoded(s.len));
    if (buf == NULL)
        return oom(d);
    if (!kiln_base64_decode(s.ptr, s.len, buf, &dst->len, NULL))
        return fail_at(d, at, "invalid base64");
    dst->data = dst->len > 0 ? buf : NULL;
    return KILN_OK;
}

/* Strings become NUL-terminated arena copies; an embedded NUL (\u0000)
 * is refused because protobuf-c would silently cut the string there. */
static kiln_status parse_string(dec *d, char **dst)
{
    kiln_str_t s;
    kiln_status st;
    if (peek(d) != '"')
        return fail_tok(d, "expected string");
    size_t at = d->pos;
    if ((st = lex_string(d, &s, true)) != KILN_OK)
        return st;
    if (memchr(s.ptr, '\0', s.len) != NULL)
        return fail_at(d, at, "NUL character in string");
    *dst = (char *)s.ptr;
    return KILN_OK;
}

static kiln_status parse_message(dec *d, const ProtobufCMessageDescriptor *md,
                                 ProtobufCMessage **out);

/* Parses one value of field f (an element, for repeated fields) into dst. */
static kiln_status parse_single(dec *d, const ProtobufCFieldDescriptor *f, void *dst)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return parse_float(d, f->type, dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (peek(d) == 't' || peek(d) == 'f') {
            *(protobuf_c_boolean *)dst = peek(d) == 't';
            return lex_literal(d, peek(d) == 't' ? "true" : "false");
        }
        return fail_tok(d, "expected boolean");
    case PROTOBUF_C_TYPE_ENUM:
        return parse_enum(d, f->descriptor, dst);
    case PROTOBUF_C_TYPE_STRING:
        return parse_string(d, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return parse_bytes(d, dst);
    case PROTOBUF_C_TYPE_MESSAGE:
        return parse_message(d, f->descriptor, dst);
    default:
        return parse_int(d, f->type, dst);
    }
}

/* A repeated field's elements, grown by doubling in the arena (the old
 * copies stay in the arena: at most as much again as the final array). */
typedef struct arr_ctx {
    const ProtobufCFieldDescriptor *f;
    const ProtobufCMessageDescriptor *entry; /* map entry type, or NULL */
    char *items;
    size_t n, cap, esz;
} arr_ctx;

static bool arr_grow(dec *d, arr_ctx *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 8;
    if (ncap > SIZE_MAX / c->esz)
        return false;
    char *p = kiln_arena_alloc(d->a, ncap * c->esz);
    if (p == NULL)
        return false;
    if (c->n > 0)
        memcpy(p, c->items, c->n * c->esz);
    c->items = p;
    c->cap = ncap;
    return true;
}

static kiln_status on_elem(dec *d, void *arg)
{
    arr_ctx *c = arg;
    if (peek(d) == 'n')
        return fail_tok(d, "null in repeated field");
    if (c->n == c->cap && !arr_grow(d, c))
        return oom(d);
    d->discard = false;
    kiln_status st = parse_single(d, c->f, c->items + c->n * c->esz);
    if (st == KILN_OK && !d->discard)
        c->n++;
    return st;
}

static ProtobufCMessage *new_message(dec *d, const ProtobufCMessageDescriptor *md)
{
    ProtobufCMessage *m = kiln_arena_alloc(d->a, md->sizeof_message);
    if (m != NULL)
        md->message_init(m);
    return m;
}

/* Map keys are always JSON strings; they are converted to the key type. */
static kiln_status parse_map_key(dec *d, const ProtobufCFieldDescriptor *kf, kiln_str_t key,
                                 size_t at, void *dst)
{
    char *s;
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        if ((s = kiln_arena_strndup(d->a, key.ptr, key.len)) == NULL)
            return oom(d);
        if (strlen(s) != key.len)
            return fail_at(d, at, "NUL character in string");
        *(char **)dst = s;
        return KILN_OK;
    }
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (!kiln_str_eq(key, "true") && !kiln_str_eq(key, "false"))
            return fail_at(d, at, "invalid map key");
        *(protobuf_c_boolean *)dst = key.ptr[0] == 't';
        return KILN_OK;
    }
    return int_from_text(d, kf->type, key, at, dst);
}

static kiln_status on_map_member(dec *d, kiln_str_t key, size_t key_at, void *arg)
{
    arr_ctx *c = arg;
    const ProtobufCFieldDescriptor *kf = &c->entry->fields[0], *vf = &c->entry->fields[1];
    ProtobufCMessage *ent = new_message(d, c->entry);
    kiln_status st;
    if (ent == NULL || (c->n == c->cap && !arr_grow(d, c)))
        return oom(d);
    if ((st = parse_map_key(d, kf, key, key_at, member(ent, kf->offset))) != KILN_OK)
        return st;
    if (peek(d) == 'n')
        return fail_tok(d, "null map value");
    if ((st = parse_single(d, vf, member(ent, vf->offset))) != KILN_OK)
        return st;
    ((ProtobufCMessage **)(void *)c->items)[c->n++] = ent;
    return KILN_OK;
}

static kiln_status parse_repeated(dec *d, const ProtobufCMessageDescriptor *md, ProtobufCMessage *m,
                                  const ProtobufCFieldDescriptor *f)
{
    arr_ctx c = {f, map_entry(md, f), NULL, 0, 0, type_size(f->type)};
    kiln_status st;
    if (c.entry != NULL)
        st = peek(d) == '{' ? parse_object(d, on_map_member, &c) : fail_tok(d, "expected object");
    else
        st = peek(d) == '[' ? parse_array(d, on_elem, &c) : fail_tok(d, "expected array");
    if (st == KILN_OK && c.n > 0) {
        *(size_t *)member(m, f->quantifier_offset) = c.n;
        *(void **)member(m, f->offset) = c.items;
    }
    return st;
}

/* Parses the value of field f of m; `null` leaves the default. A oneof
 * takes at most one non-null member, as in protojson. */
static kiln_status parse_field(dec *d, const ProtobufCMessageDescriptor *md, ProtobufCMessage *m,
                               const ProtobufCFieldDescriptor *f)
{
    uint32_t *q = member(m, f->quantifier_offset);
    kiln_status st;
    if (peek(d) == 'n')
        return lex_literal(d, "null");
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return parse_repeated(d, md, m, f);
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *q != 0)
        return fail_tok(d, "another member of the oneof is already set");
    d->discard = false;
    if ((st = parse_single(d, f, member(m, f->offset))) != KILN_OK || d->discard)
        return st;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *q = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)q = 1;
    return KILN_OK;
}

/* Looks a key up by JSON name first, then by proto field name; -1 if unknown. */
static int find_field(const ProtobufCMessageDescriptor *md, kiln_str_t key)
{
    for (unsigned i = 0; i < md->n_fields; i++)
        if (camel_eq(md->fields[i].name, key.ptr, key.len, false))
            return (int)i;
    for (unsigned i = 0; i < md->n_fields; i++)
        if (kiln_str_eq(key, md->fields[i].name))
            return (int)i;
    return -1;
}

typedef struct msg_ctx {
    const ProtobufCMessageDescriptor *md;
    ProtobufCMessage *m;
    uint8_t *seen; /* one bit per field index, to refuse duplicates */
} msg_ctx;

static kiln_status on_field(dec *d, kiln_str_t key, size_t key_at, void *arg)
{
    msg_ctx *c = arg;
    int i = find_field(c->md, key);
    if (i < 0)
        return skip_value(d); /* unknown fields are ignored (DiscardUnknown) */
    const ProtobufCFieldDescriptor *outer = d->field;
    d->field = &c->md->fields[i];
    kiln_status st;
    if (c->seen[i >> 3] & (1u << (i & 7))) {
        st = fail_at(d, key_at, "duplicate field");
    } else {
        c->seen[i >> 3] |= (uint8_t)(1u << (i & 7));
        st = parse_field(d, c->md, c->m, d->field);
    }
    d->field = outer;
    return st;
}

static kiln_status parse_message(dec *d, const ProtobufCMessageDescriptor *md,
                                 ProtobufCMessage **out)
{
    uint8_t small[SEEN_SMALL / 8];
    msg_ctx c = {md, NULL, small};
    if (peek(d) != '{')
        return fail_tok(d, "expected object");
    if ((c.m = new_message(d, md)) == NULL)
        return oom(d);
    if (md->n_fields > SEEN_SMALL)
        c.seen = kiln_arena_calloc(d->a, (md->n_fields + 7) / 8, 1);
    else
        memset(small, 0, (md->n_fields + 7) / 8);
    if (c.seen == NULL)
        return oom(d);
    kiln_status st = parse_object(d, on_field, &c);
    if (st == KILN_OK)
        *out = c.m;
    return st;
}

kiln_status kiln_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                               kiln_arena_t *a, ProtobufCMessage **out, kiln_err *err)
{
    dec d = {.s = (const unsigned char *)json, .len = json != NULL ? len : 0, .a = a, .err = err};
    ProtobufCMessage *m = NULL;
    kiln_status st = parse_message(&d, desc, &m);
    if (st != KILN_OK)
        return st;
    if (peek(&d) >= 0)
        return fail_at(&d, d.pos, "unexpected data after the top-level object");
    *out = m;
    return KILN_OK;
}
