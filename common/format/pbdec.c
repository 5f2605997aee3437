/* SPDX-License-Identifier: Apache-2.0
 * pbdec: protobuf-c's unpack rules (protobuf-c 1.4 protobuf-c.c) without
 * its per-message costs: no scanned-member slabs, field lookup by a table
 * indexed by tag, no first pass for types without repeated fields, and the
 * arena called directly instead of through an allocator. Every rule that
 * decides acceptance or a value is protobuf-c's, quirks included; each one
 * is marked "as protobuf-c" where it is not what the protobuf spec says. */
#include "pbdec.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define BY_TAG 32 /* tags below this are found by a table */

/* What the decoder knows of one message type. */
typedef struct minfo minfo;
struct minfo {
    const ProtobufCMessageDescriptor *d;
    bool has_repeated;
    uint8_t by_tag[BY_TAG];  /* tag -> field index + 1; 0: no such field */
    const minfo **sub;       /* per field: the type of a message field */
    kiln_pbdec_fast_fn fast; /* tried first; NULL: none */
};

struct kiln_pbdec {
    minfo **all; /* every type, each once */
    size_t n, cap;
    const minfo *root;
};

static minfo *info_of(kiln_pbdec_t *p, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->all[i]->d == d)
            return p->all[i];
    }
    minfo *mi = kiln_xcalloc(1, sizeof(*mi));
    mi->d = d;
    mi->sub = kiln_xcalloc(d->n_fields + 1, sizeof(*mi->sub));
    KILN_GROW(p->all, p->cap, p->n + 1);
    p->all[p->n++] = mi; /* before the fields: types may nest themselves */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
            abort(); /* unsupported (pbdec.h): missing ones are not checked */
        mi->has_repeated |= f->label == PROTOBUF_C_LABEL_REPEATED;
        if (f->id < BY_TAG)
            mi->by_tag[f->id] = (uint8_t)(i + 1);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            mi->sub[i] = info_of(p, f->descriptor);
    }
    return mi;
}

kiln_pbdec_t *kiln_pbdec_create(const ProtobufCMessageDescriptor *root)
{
    kiln_pbdec_t *p = kiln_xcalloc(1, sizeof(*p));
    p->root = info_of(p, root);
    return p;
}

/* The most fields any copy of the type named name has: its own number,
 * which only copies at the depth bound lack. */
static unsigned full_fields(const kiln_pbdec_t *p, const char *name)
{
    unsigned n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->all[i]->d->name == name && p->all[i]->d->n_fields > n)
            n = p->all[i]->d->n_fields;
    }
    return n;
}

/* Whether the copy mi has all of d's fields, and so do the types of its
 * message fields (what a fast decoder may decode by hand). */
static bool full_copy(const kiln_pbdec_t *p, const minfo *mi, const ProtobufCMessageDescriptor *d)
{
    if (mi->d->name != d->name || mi->d->n_fields != d->n_fields)
        return false;
    for (unsigned i = 0; i < mi->d->n_fields; i++) {
        const minfo *sub = mi->sub[i];
        if (sub != NULL && sub->d->n_fields != full_fields(p, sub->d->name))
            return false;
    }
    return true;
}

void kiln_pbdec_set_fast(kiln_pbdec_t *p, const ProtobufCMessageDescriptor *d,
                         kiln_pbdec_fast_fn fn)
{
    for (size_t i = 0; i < p->n; i++) {
        if (full_copy(p, p->all[i], d))
            p->all[i]->fast = fn;
    }
}

void kiln_pbdec_destroy(kiln_pbdec_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->all[i]->sub);
        free(p->all[i]);
    }
    free(p->all);
    free(p);
}

/* ---- wire scanning, as protobuf-c scans ---- */

/* A tag of at most 5 bytes whose first byte has tag bits (as protobuf-c:
 * 0x80 0x00, tag 0, passes as an unknown field). Bytes used, 0 if bad. */
static inline size_t read_tag(const uint8_t *p, size_t rem, uint32_t *tag, unsigned *wt)
{
    if ((p[0] & 0xf8) == 0)
        return 0;
    *wt = p[0] & 7;
    if ((p[0] & 0x80) == 0) {
        *tag = p[0] >> 3;
        return 1;
    }
    uint32_t t = (p[0] & 0x7f) >> 3;
    size_t max = rem > 5 ? 5 : rem;
    for (size_t i = 1, shift = 4; i < max; i++, shift += 7) {
        t |= (uint32_t)(p[i] & 0x7f) << shift;
        if ((p[i] & 0x80) == 0) {
            *tag = t;
            return i + 1;
        }
    }
    return 0;
}

/* The bytes a field takes after its tag (*flen, of which *pref are a
 * length prefix); false when they pass the end or the wire type is a
 * group or unknown. A length prefix has at most 5 bytes and is at most
 * INT_MAX, as protobuf-c requires. */
static inline bool scan_field(const uint8_t *p, size_t rem, unsigned wt, size_t *flen, size_t *pref)
{
    *pref = 0;
    switch (wt) {
    case PROTOBUF_C_WIRE_TYPE_VARINT: {
        size_t max = rem < 10 ? rem : 10;
        for (size_t i = 0; i < max; i++) {
            if ((p[i] & 0x80) == 0) {
                *flen = i + 1;
                return true;
            }
        }
        return false;
    }
    case PROTOBUF_C_WIRE_TYPE_64BIT:
        *flen = 8;
        return rem >= 8;
    case PROTOBUF_C_WIRE_TYPE_32BIT:
        *flen = 4;
        return rem >= 4;
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: {
        size_t max = rem < 5 ? rem : 5, val = 0;
        for (size_t i = 0; i < max; i++) {
            val |= (size_t)(p[i] & 0x7f) << (7 * i);
            if ((p[i] & 0x80) == 0) {
                *pref = i + 1;
                *flen = i + 1 + val;
                return val <= INT_MAX && val <= rem - (i + 1);
            }
        }
        return false;
    }
    default:
        return false;
    }
}

/* The low 64 bits of an n-byte varint (n <= 10, terminated). */
static inline uint64_t varint(const uint8_t *p, size_t n)
{
    if (n == 1)
        return p[0];
    uint64_t v = p[0] & 0x7f;
    for (size_t i = 1; i < n; i++)
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    return v;
}

/* A varint's length when it ends within min(rem, 10) bytes, else 0. */
static inline size_t varint_len(const uint8_t *p, size_t rem)
{
    size_t max = rem < 10 ? rem : 10;
    for (size_t i = 0; i < max; i++) {
        if ((p[i] & 0x80) == 0)
            return i + 1;
    }
    return 0;
}

static bool packable(ProtobufCType t)
{
    return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES &&
           t != PROTOBUF_C_TYPE_MESSAGE;
}

static size_t elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

/* How many values packed bytes hold, as protobuf-c counts them before it
 * reads them: varints by their last bytes, bools one per byte (an upper
 * bound), fixed sizes exactly (a remainder is refused). */
static bool count_packed(ProtobufCType t, const uint8_t *p, size_t n, size_t *count)
{
    size_t sz = elt_size(t);
    if (t == PROTOBUF_C_TYPE_FIXED32 || t == PROTOBUF_C_TYPE_SFIXED32 ||
        t == PROTOBUF_C_TYPE_FLOAT || t == PROTOBUF_C_TYPE_FIXED64 ||
        t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_DOUBLE) {
        *count = n / sz;
        return n % sz == 0;
    }
    if (t == PROTOBUF_C_TYPE_BOOL) {
        *count = n;
        return true;
    }
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0x80) == 0;
    *count = c;
    return true;
}

/* ---- values ---- */

static inline int32_t unzigzag32(uint32_t v)
{
    return (int32_t)((v >> 1) ^ -(v & 1));
}

static inline int64_t unzigzag64(uint64_t v)
{
    return (int64_t)((v >> 1) ^ -(v & 1));
}

/* A bool as protobuf-c reads one, whatever the wire type: true when a byte
 * of the field (a length prefix included) has one of its low 7 bits set. */
static protobuf_c_boolean boolean(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] & 0x7f)
            return 1;
    }
    return 0;
}

/* The wire type a number type is read from; BOOL_ANY: any (protobuf-c
 * does not check a bool's). */
#define BOOL_ANY 8u
static inline unsigned wire_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return PROTOBUF_C_WIRE_TYPE_32BIT;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return PROTOBUF_C_WIRE_TYPE_64BIT;
    case PROTOBUF_C_TYPE_BOOL:
        return BOOL_ANY;
    default:
        return PROTOBUF_C_WIRE_TYPE_VARINT;
    }
}

/* A number field's value (flen bytes at p) into member; false when the
 * wire type is not the type's. */
static inline bool scalar(ProtobufCType t, unsigned wt, const uint8_t *p, size_t flen, void *member)
{
    unsigned want = wire_of(t);
    if (want != wt && want != BOOL_ANY)
        return false;
    switch (t) {
    case PROTOBUF_C_TYPE_SINT32:
        *(int32_t *)member = unzigzag32((uint32_t)varint(p, flen));
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        *(uint64_t *)member = varint(p, flen);
        return true;
    case PROTOBUF_C_TYPE_SINT64:
        *(int64_t *)member = unzigzag64(varint(p, flen));
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)member = boolean(p, flen);
        return true;
    default:
        break;
    }
    if (want == PROTOBUF_C_WIRE_TYPE_VARINT) /* int32, uint32, enum: the low 32 bits */
        *(uint32_t *)member = (uint32_t)varint(p, flen);
    else
        memcpy(member, p, want == PROTOBUF_C_WIRE_TYPE_32BIT ? 4 : 8);
    return true;
}

static inline size_t *quantity(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (size_t *)((char *)m + f->quantifier_offset);
}

static inline void **array_of(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (void **)((char *)m + f->offset);
}

/* Packed values appended to f's array, which the first pass sized from the
 * same bytes (count_packed), so they always fit. */
static bool packed(const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, const uint8_t *p,
                   size_t n)
{
    size_t *pn = quantity(m, f), sz = elt_size(f->type), count = 0;
    if (n == 0)
        return true; /* nothing, and maybe no array: all fields had none */
    if (*array_of(m, f) == NULL)
        return false; /* varints without a last byte: counted none */
    char *arr = (char *)*array_of(m, f) + sz * *pn;
    if (f->type == PROTOBUF_C_TYPE_FIXED32 || f->type == PROTOBUF_C_TYPE_SFIXED32 ||
        f->type == PROTOBUF_C_TYPE_FLOAT || f->type == PROTOBUF_C_TYPE_FIXED64 ||
        f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_DOUBLE) {
        if (n % sz != 0)
            return false;
        memcpy(arr, p, n);
        *pn += n / sz;
        return true;
    }
    bool plain = f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_UINT32 ||
                 f->type == PROTOBUF_C_TYPE_ENUM || f->type == PROTOBUF_C_TYPE_INT64 ||
                 f->type == PROTOBUF_C_TYPE_UINT64;
    while (n > 0) {
        size_t s = p[0] < 0x80 ? 1 : varint_len(p, n);
        if (s == 0)
            return false;
        if (!plain)
            scalar(f->type, PROTOBUF_C_WIRE_TYPE_VARINT, p, s, arr + sz * count);
        else if (sz == 8)
            ((uint64_t *)(void *)arr)[count] = varint(p, s);
        else
            ((uint32_t *)(void *)arr)[count] = (uint32_t)varint(p, s);
        count++;
        p += s;
        n -= s;
    }
    *pn += count;
    return true;
}

/* ---- messages ---- */

/* One call of kiln_pbdec_unpack: where it allocates, and whether a string
 * field decoded so far held a NUL byte (noted, not refused: the caller
 * decides, after the framing of the whole message has been checked). */
typedef struct dec {
    kiln_arena_t *a;
    bool nul;
} dec;

static ProtobufCMessage *unpack(dec *dc, const minfo *mi, const uint8_t *data, size_t len);
static bool merge(kiln_arena_t *a, ProtobufCMessage *e, ProtobufCMessage *l);

/* One field occurrence: the field's index fi in mi, its wire type, and its
 * flen bytes at p (pref of them a length prefix). */
typedef struct occ {
    unsigned fi, wt;
    uint32_t tag;
    const uint8_t *p;
    size_t flen, pref;
} occ;

/* A field's value into member; maybe_clear: a message already there is
 * merged into the new one (protobuf-c's rule for singular fields). */
static inline bool value(dec *dc, const minfo *mi, const occ *o, void *member, bool maybe_clear)
{
    const ProtobufCFieldDescriptor *f = &mi->d->fields[o->fi];
    size_t n = o->flen - o->pref;
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
        return scalar(f->type, o->wt, o->p, o->flen, member);
    if (o->wt != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
        return false;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *s = kiln_arena_alloc(dc->a, n + 1);
        if (s == NULL)
            return false;
        memcpy(s, o->p + o->pref, n);
        s[n] = '\0';
        dc->nul |= strlen(s) != n; /* the copy is in cache: no second walk of the wire */
        *(char **)member = s;
        return true;
    }
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData *bd = member;
        bd->data = n > 0 ? kiln_arena_alloc(dc->a, n) : NULL; /* as protobuf-c: empty is NULL */
        bd->len = n;
        if (n > 0 && bd->data != NULL)
            memcpy(bd->data, o->p + o->pref, n);
        return n == 0 || bd->data != NULL;
    }
    ProtobufCMessage **pm = member, *sub = unpack(dc, mi->sub[o->fi], o->p + o->pref, n);
    bool ok = true;
    if (maybe_clear && *pm != NULL && *pm != f->default_value && sub != NULL)
        ok = merge(dc->a, *pm, sub);
    *pm = sub;
    return sub != NULL && ok;
}

/* A oneof member: as protobuf-c, the member a previous case left is zeroed
 * for that case's type first, then the new value is read, then the case. */
static bool oneof(dec *dc, const minfo *mi, const occ *o, ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = &mi->d->fields[o->fi];
    uint32_t *cs = (uint32_t *)((char *)m + f->quantifier_offset);
    void *member = (char *)m + f->offset;
    if (*cs != 0) {
        const ProtobufCFieldDescriptor *old = protobuf_c_message_descriptor_get_field(mi->d, *cs);
        if (old == NULL)
            return false;
        memset(member, 0, elt_size(old->type));
    }
    if (!value(dc, mi, o, member, true))
        return false;
    *cs = o->tag;
    return true;
}

static inline bool set_field(dec *dc, const minfo *mi, const occ *o, ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = &mi->d->fields[o->fi];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (o->wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && packable(f->type))
            return packed(f, m, o->p + o->pref, o->flen - o->pref);
        size_t *pn = quantity(m, f);
        char *slot = (char *)*array_of(m, f) + elt_size(f->type) * *pn;
        if (!value(dc, mi, o, slot, false))
            return false;
        (*pn)++;
        return true;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return oneof(dc, mi, o, m);
    if (!value(dc, mi, o, (char *)m + f->offset, true))
        return false;
    if (f->quantifier_offset != 0) /* an optional's has_ flag */
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    return true;
}

static bool keep_unknown(kiln_arena_t *a, const occ *o, ProtobufCMessage *m)
{
    ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields++];
    u->tag = o->tag;
    u->wire_type = (ProtobufCWireType)o->wt;
    u->len = o->flen; /* a length prefix included, as protobuf-c keeps it */
    u->data = kiln_arena_alloc(a, o->flen);
    if (u->data == NULL)
        return false;
    memcpy(u->data, o->p, o->flen);
    return true;
}

static inline int field_index(const minfo *mi, uint32_t tag)
{
    if (tag < BY_TAG)
        return (int)mi->by_tag[tag] - 1;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(mi->d, tag);
    return f != NULL ? (int)(f - mi->d->fields) : -1;
}

/* The next field occurrence at *pp; false when its framing is bad. fi is
 * -1 (as unsigned) for an unknown field. */
static inline __attribute__((always_inline)) bool next(const minfo *mi, const uint8_t **pp,
                                                       const uint8_t *end, occ *o)
{
    const uint8_t *p = *pp;
    size_t rem = (size_t)(end - p), used = 1;
    if (p[0] >= 8 && p[0] < 0x80) { /* the usual one-byte tag */
        o->tag = p[0] >> 3;
        o->wt = p[0] & 7;
    } else if ((used = read_tag(p, rem, &o->tag, &o->wt)) == 0) {
        return false;
    }
    if (o->wt == PROTOBUF_C_WIRE_TYPE_VARINT && rem > used && p[used] < 0x80) {
        o->flen = 1; /* the usual one-byte value */
        o->pref = 0;
    } else if (o->wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && rem > used && p[used] < 0x80) {
        o->pref = 1; /* the usual one-byte length */
        o->flen = 1 + (size_t)p[used];
        if (o->flen > rem - used)
            return false;
    } else if (!scan_field(p + used, rem - used, o->wt, &o->flen, &o->pref)) {
        return false;
    }
    o->p = p + used;
    o->fi = (unsigned)field_index(mi, o->tag);
    *pp = o->p + o->flen;
    return true;
}

/* The first pass, protobuf-c's: checks the framing, and counts the values
 * of each repeated field (into its n_ member) and the unknown fields. */
static bool count_pass(const minfo *mi, ProtobufCMessage *m, const uint8_t *p, size_t len,
                       size_t *n_unknown)
{
    const uint8_t *end = p + len;
    occ o;
    while (p < end) {
        if (!next(mi, &p, end, &o))
            return false;
        if ((int)o.fi < 0) {
            (*n_unknown)++;
            continue;
        }
        const ProtobufCFieldDescriptor *f = &mi->d->fields[o.fi];
        if (f->label != PROTOBUF_C_LABEL_REPEATED)
            continue;
        size_t c = 1;
        if (o.wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && packable(f->type) &&
            !count_packed(f->type, o.p + o.pref, o.flen - o.pref, &c))
            return false;
        *quantity(m, f) += c;
    }
    return true;
}

/* Arrays for the counts the first pass left in the n_ members (reset to 0
 * for the second pass to count again), and for the unknown fields. */
static bool alloc_arrays(kiln_arena_t *a, const minfo *mi, ProtobufCMessage *m, size_t n_unknown)
{
    for (unsigned i = 0; i < mi->d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &mi->d->fields[i];
        size_t *pn = quantity(m, f);
        if (f->label != PROTOBUF_C_LABEL_REPEATED || *pn == 0)
            continue;
        *array_of(m, f) = kiln_arena_alloc(a, elt_size(f->type) * *pn);
        if (*array_of(m, f) == NULL)
            return false;
        *pn = 0;
    }
    if (n_unknown != 0) {
        m->unknown_fields = kiln_arena_alloc(a, n_unknown * sizeof(*m->unknown_fields));
        if (m->unknown_fields == NULL)
            return false;
    }
    return true;
}

/* Room for the unknown fields from start to end, found by counting them
 * there: a type without repeated fields has no first pass, so its first
 * unknown field is where the rest is counted (once, not decoded again). */
static bool alloc_unknown(kiln_arena_t *a, const minfo *mi, ProtobufCMessage *m,
                          const uint8_t *start, const uint8_t *end)
{
    size_t n = 0;
    return count_pass(mi, m, start, (size_t)(end - start), &n) && alloc_arrays(a, mi, m, n);
}

/* The second pass: every field's value. counted: the first pass made room
 * for the unknown fields. */
static bool fill_pass(dec *dc, const minfo *mi, ProtobufCMessage *m, const uint8_t *p, size_t len,
                      bool counted)
{
    const uint8_t *end = p + len;
    occ o;
    while (p < end) {
        const uint8_t *start = p;
        if (!next(mi, &p, end, &o))
            return false;
        if ((int)o.fi >= 0) {
            if (!set_field(dc, mi, &o, m))
                return false;
            continue;
        }
        if (!counted && !alloc_unknown(dc->a, mi, m, start, end))
            return false;
        counted = true;
        if (!keep_unknown(dc->a, &o, m))
            return false;
    }
    return true;
}

/* A fast decoder returns NULL for a string with a NUL (pbdec.h), so the
 * generic decoder, which notes it, reads those bytes again. */
static ProtobufCMessage *unpack(dec *dc, const minfo *mi, const uint8_t *data, size_t len)
{
    ProtobufCMessage *m = mi->fast != NULL ? mi->fast(dc->a, data, len) : NULL;
    size_t n_unknown = 0;
    if (m != NULL)
        return m;
    m = kiln_arena_alloc(dc->a, mi->d->sizeof_message);
    if (m == NULL)
        return NULL;
    protobuf_c_message_init(mi->d, m);
    if (mi->has_repeated &&
        (!count_pass(mi, m, data, len, &n_unknown) || !alloc_arrays(dc->a, mi, m, n_unknown)))
        return NULL;
    return fill_pass(dc, mi, m, data, len, mi->has_repeated) ? m : NULL;
}

ProtobufCMessage *kiln_pbdec_unpack(const kiln_pbdec_t *p, kiln_arena_t *a, const uint8_t *data,
                                    size_t len, bool *nul)
{
    dec dc = {a, false};
    ProtobufCMessage *m = unpack(&dc, p->root, data, len);
    *nul = dc.nul;
    return m;
}

/* ---- merging a singular message field seen twice ---- */

/* Repeated values: the earlier's first, then the latter's. */
static bool merge_repeated(kiln_arena_t *a, const ProtobufCFieldDescriptor *f, ProtobufCMessage *e,
                           ProtobufCMessage *l)
{
    size_t *ne = quantity(e, f), *nl = quantity(l, f), sz = elt_size(f->type);
    void **pe = array_of(e, f), **pl = array_of(l, f);
    if (*ne == 0)
        return true;
    if (*nl > 0) {
        char *both = kiln_arena_alloc(a, (*ne + *nl) * sz);
        if (both == NULL)
            return false;
        memcpy(both, *pe, *ne * sz);
        memcpy(both + *ne * sz, *pl, *nl * sz);
        *pl = both;
        *nl += *ne;
    } else {
        *nl = *ne;
        *pl = *pe;
    }
    *ne = 0;
    *pe = NULL;
    return true;
}

/* Whether the earlier value of a singular field replaces the latter's:
 * when the latter has none. Numbers count as absent only by a has_ flag or
 * oneof case; a proto3 number has neither, so the latter's stays (protobuf-c
 * then compares the first bytes of both messages, the same descriptor). */
static bool take_earlier(kiln_arena_t *a, const ProtobufCFieldDescriptor *f, const void *ee,
                         const void *le, uint32_t ec, uint32_t lc, bool *ok)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *em = *(ProtobufCMessage *const *)ee, *lm = *(ProtobufCMessage *const *)le;
        if (em != NULL && lm != NULL)
            *ok = merge(a, em, lm);
        return em != NULL && lm == NULL;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *d = f->default_value;
        const uint8_t *ed = ((const ProtobufCBinaryData *)ee)->data;
        const uint8_t *ld = ((const ProtobufCBinaryData *)le)->data;
        return (ed != NULL && (d == NULL || ed != d->data)) &&
               (ld == NULL || (d != NULL && ld == d->data));
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *es = *(char *const *)ee, *ls = *(char *const *)le;
        return es != f->default_value && ls == f->default_value;
    }
    default:
        return f->quantifier_offset != 0 && ec != 0 && lc == 0;
    }
}

static bool merge_single(kiln_arena_t *a, const ProtobufCFieldDescriptor *f0, ProtobufCMessage *e,
                         ProtobufCMessage *l)
{
    const ProtobufCFieldDescriptor *f = f0;
    uint32_t *ec = (uint32_t *)((char *)e + f0->quantifier_offset);
    uint32_t *lc = (uint32_t *)((char *)l + f0->quantifier_offset);
    if (f0->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*lc != 0)
            return true;
        /* As protobuf-c: neither message having a case fails the merge. */
        f = protobuf_c_message_descriptor_get_field(l->descriptor, *ec);
        if (f == NULL)
            return false;
    }
    void *ee = (char *)e + f->offset, *le = (char *)l + f->offset;
    bool ok = true;
    bool take = take_earlier(a, f, ee, le, f0->quantifier_offset ? *ec : 0,
                             f0->quantifier_offset ? *lc : 0, &ok);
    if (!ok)
        return false;
    if (take) {
        memcpy(le, ee, elt_size(f->type));
        memset(ee, 0, elt_size(f->type));
        if (f->quantifier_offset != 0) {
            *lc = *ec;
            *ec = 0;
        }
    }
    return true;
}

/* protobuf-c's merge_messages: e, an earlier value of a singular message
 * field, merged into l, the one read after it. Fields are walked by l's
 * (generated) descriptor, as protobuf-c walks them. */
static bool merge(kiln_arena_t *a, ProtobufCMessage *e, ProtobufCMessage *l)
{
    const ProtobufCMessageDescriptor *d = l->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        bool ok = f->label == PROTOBUF_C_LABEL_REPEATED ? merge_repeated(a, f, e, l)
                                                        : merge_single(a, f, e, l);
        if (!ok)
            return false;
    }
    return true;
}
