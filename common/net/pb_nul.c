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
typedef struct stringy {
    const char **names;
    size_t n;
    bool all; /* too many types: read them all */
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

static bool nul_free(const ProtobufCMessageDescriptor *md, const uint8_t *data, size_t len,
                     const stringy *s, int depth)
{
    const uint8_t *p = data, *end = data + len;
    uint64_t key, n;
    while (p < end && wire_varint(&p, end, &key)) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(md, (unsigned)(key >> 3));
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
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, n) != NULL)
                return false;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < NUL_CHECK_DEPTH &&
                holds_strings(s, f->descriptor) && !nul_free(f->descriptor, p, n, s, depth + 1))
                return false;
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
