/* SPDX-License-Identifier: Apache-2.0
 * pb_nul: the NUL check of protobuf string fields, reading only the
 * message types that can hold a string. */
#include "pb_nul.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* Deepest message nesting the check follows; deeper parts are not checked. */
#define NUL_CHECK_DEPTH 24
/* Descriptors a request type may reach (OTLP's depth-bounded copies are a
 * few hundred); past it every type is read. */
#define REACH_MAX 4096
#define MEMO_SLOTS 256

/* The names of the message types that can hold a string. A type is known
 * by its name's pointer, which depth-bounded copies of a descriptor
 * (otlp_decode.c) share with the generated one; a name counts when any
 * of its copies can hold a string, which errs on the side of reading. */
/* What the check does with the fields numbered below 64 of one message
 * type (a copy of a descriptor has its own): bit k of str set for a string
 * field k, of msg for a message field k whose type can hold a string. Two
 * bit tests per field instead of a field lookup and a name search, which
 * were most of the check's cost: an OTLP export has thousands of fields in
 * types that can hold a string (a Profile's samples, say) that it skips. */
typedef struct plan {
    const ProtobufCMessageDescriptor *md; /* NULL: a free slot */
    uint64_t str, msg;
} plan;

typedef struct stringy {
    const char **names;
    size_t n;
    bool all;    /* too many types: read them all */
    plan *plans; /* open addressing by descriptor, plan_mask + 1 slots */
    size_t plan_mask;
} stringy;

typedef struct names {
    const char **p;
    bool *str; /* the type has a string field */
    size_t n, cap;
} names;

static size_t name_index(names *nm, const char *name)
{
    for (size_t i = 0; i < nm->n; i++) {
        if (nm->p[i] == name)
            return i;
    }
    size_t cap = nm->cap;
    KILN_GROW(nm->p, cap, nm->n + 1);
    KILN_GROW(nm->str, nm->cap, nm->n + 1);
    nm->p[nm->n] = name;
    nm->str[nm->n] = false;
    return nm->n++;
}

static bool has_ptr(const ProtobufCMessageDescriptor *const *v, size_t n,
                    const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == d)
            return true;
    }
    return false;
}

/* Every descriptor reachable from md into seen[0..*n), false past REACH_MAX. */
static bool reach(const ProtobufCMessageDescriptor *md, const ProtobufCMessageDescriptor **seen,
                  size_t *n)
{
    if (has_ptr(seen, *n, md))
        return true;
    if (*n == REACH_MAX)
        return false;
    seen[(*n)++] = md;
    for (unsigned i = 0; i < md->n_fields; i++) {
        if (md->fields[i].type == PROTOBUF_C_TYPE_MESSAGE &&
            !reach(md->fields[i].descriptor, seen, n))
            return false;
    }
    return true;
}

/* Marks the names that hold a string, directly or through a message
 * field: a fixpoint over the edges (from, to), marks only growing. */
static void mark(names *nm, const size_t (*edge)[2], size_t n_edges)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t e = 0; e < n_edges; e++) {
            if (nm->str[edge[e][1]] && !nm->str[edge[e][0]])
                changed = nm->str[edge[e][0]] = true;
        }
    }
}

static bool holds_strings(const stringy *s, const ProtobufCMessageDescriptor *d);

static size_t plan_slot(const stringy *s, const ProtobufCMessageDescriptor *md)
{
    return ((uintptr_t)md >> 4) * 0x9e3779b97f4a7c15ull >> 40 & s->plan_mask;
}

/* The plan of md, or NULL for a type not reached from the request type. */
static const plan *plan_of(const stringy *s, const ProtobufCMessageDescriptor *md)
{
    for (size_t i = plan_slot(s, md);; i = (i + 1) & s->plan_mask) {
        if (s->plans[i].md == md)
            return &s->plans[i];
        if (s->plans[i].md == NULL)
            return NULL;
    }
}

/* A plan per reached descriptor, once s's names are known. */
static void make_plans(stringy *s, const ProtobufCMessageDescriptor *const *seen, size_t n)
{
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    s->plans = kiln_xcalloc(slots, sizeof(*s->plans));
    s->plan_mask = slots - 1;
    for (size_t i = 0; i < n; i++) {
        plan pl = {seen[i], 0, 0};
        for (unsigned k = 0; k < seen[i]->n_fields; k++) {
            const ProtobufCFieldDescriptor *f = &seen[i]->fields[k];
            if (f->id >= 64)
                continue; /* looked up field by field (nul_free) */
            if (f->type == PROTOBUF_C_TYPE_STRING)
                pl.str |= 1ull << f->id;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && holds_strings(s, f->descriptor))
                pl.msg |= 1ull << f->id;
        }
        size_t at = plan_slot(s, seen[i]);
        while (s->plans[at].md != NULL)
            at = (at + 1) & s->plan_mask;
        s->plans[at] = pl;
    }
}

static stringy *stringy_of(const ProtobufCMessageDescriptor *md)
{
    stringy *s = kiln_xcalloc(1, sizeof(*s));
    const ProtobufCMessageDescriptor **seen = kiln_xmalloc(REACH_MAX * sizeof(*seen));
    size_t n_seen = 0, n_edges = 0, cap_edges = 0;
    size_t(*edge)[2] = NULL;
    names nm = {0};
    s->all = !reach(md, seen, &n_seen);
    for (size_t i = 0; i < n_seen && !s->all; i++) {
        size_t from = name_index(&nm, seen[i]->name);
        for (unsigned k = 0; k < seen[i]->n_fields; k++) {
            const ProtobufCFieldDescriptor *f = &seen[i]->fields[k];
            if (f->type == PROTOBUF_C_TYPE_STRING)
                nm.str[from] = true;
            if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                continue;
            const ProtobufCMessageDescriptor *to = f->descriptor;
            KILN_GROW(edge, cap_edges, n_edges + 1);
            edge[n_edges][0] = from;
            edge[n_edges++][1] = name_index(&nm, to->name);
        }
    }
    mark(&nm, (const size_t(*)[2])edge, n_edges);
    s->names = kiln_xcalloc(nm.n + 1, sizeof(*s->names));
    for (size_t i = 0; i < nm.n; i++) {
        if (nm.str[i])
            s->names[s->n++] = nm.p[i];
    }
    if (!s->all)
        make_plans(s, seen, n_seen);
    free(nm.p);
    free(nm.str);
    free(edge);
    free(seen);
    return s;
}

/* Each request type's stringy, built at its first request: lock-free
 * slots, a type claiming its slot by compare-and-swap, and the first
 * stringy stored winning (a racing thread frees its own). Never freed. */
static struct {
    _Atomic(const ProtobufCMessageDescriptor *) md;
    _Atomic(stringy *) s;
} memo[MEMO_SLOTS];

static void stringy_free(stringy *s)
{
    free(s->plans);
    free(s->names);
    free(s);
}

/* md's stringy, or NULL when every type must be read. */
static const stringy *stringy_get(const ProtobufCMessageDescriptor *md)
{
    size_t h = ((uintptr_t)md >> 4) % MEMO_SLOTS;
    for (size_t probe = 0; probe < MEMO_SLOTS; probe++, h = (h + 1) % MEMO_SLOTS) {
        const ProtobufCMessageDescriptor *k = NULL;
        if (!atomic_compare_exchange_strong(&memo[h].md, &k, md) && k != md)
            continue; /* another type's slot */
        stringy *s = atomic_load(&memo[h].s), *none = NULL;
        if (s == NULL) {
            s = stringy_of(md);
            if (!atomic_compare_exchange_strong(&memo[h].s, &none, s)) {
                stringy_free(s);
                s = none;
            }
        }
        return s->all ? NULL : s;
    }
    return NULL;
}

static bool holds_strings(const stringy *s, const ProtobufCMessageDescriptor *d)
{
    if (s == NULL)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        if (s->names[i] == d->name)
            return true;
    }
    return false;
}

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/* What to do with field id of a message of type md: 1 check a string, 2
 * read a message that can hold one (its type in *sub), 0 skip. */
static int field_action(const ProtobufCMessageDescriptor *md, const plan *pl, const stringy *s,
                        uint64_t id, const ProtobufCMessageDescriptor **sub)
{
    if (pl != NULL && id < 64) {
        uint64_t bit = 1ull << id;
        if (pl->str & bit)
            return 1;
        if (!(pl->msg & bit))
            return 0;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(md, (unsigned)id);
    if (f == NULL)
        return 0;
    if (f->type == PROTOBUF_C_TYPE_STRING)
        return 1;
    *sub = f->descriptor;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && holds_strings(s, f->descriptor) ? 2 : 0;
}

static bool nul_free(const ProtobufCMessageDescriptor *md, const uint8_t *data, size_t len,
                     const stringy *s, int depth)
{
    const uint8_t *p = data, *end = data + len;
    const plan *pl = s != NULL ? plan_of(s, md) : NULL;
    uint64_t key, n;
    while (p < end && wire_varint(&p, end, &key)) {
        const ProtobufCMessageDescriptor *sub = NULL;
        switch (key & 7) {
        case 0:
            if (!wire_varint(&p, end, &n))
                return true;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            if (!wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return true;
            switch (field_action(md, pl, s, key >> 3, &sub)) {
            case 1:
                if (memchr(p, 0, n) != NULL)
                    return false;
                break;
            case 2:
                if (depth < NUL_CHECK_DEPTH && !nul_free(sub, p, n, s, depth + 1))
                    return false;
                break;
            }
            p += n;
            break;
        default:
            return true;
        }
    }
    return true;
}

bool kiln_pb_nul_free(const ProtobufCMessageDescriptor *md, const uint8_t *data, size_t len)
{
    return nul_free(md, data, len, stringy_get(md), 0);
}
