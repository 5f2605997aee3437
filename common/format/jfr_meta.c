/* SPDX-License-Identifier: Apache-2.0
 * jfr_meta: the bounded reader of JFR's encodings (LEB128 integers whose
 * ninth byte carries 8 bits, strings in their five encodings), the arena
 * map and vector the pools use, and the metadata event: the element tree
 * whose "class" elements give each type id its name and fields. */
#include <stdlib.h>
#include <string.h>

#include "jfr_int.h"

/* ---- reader ---- */

bool kiln_jfr__spend(jfr_reader *r, uint64_t n)
{
    if (r->bad || *r->budget < n) {
        r->bad = true;
        return false;
    }
    *r->budget -= n;
    return true;
}

uint8_t kiln_jfr__byte(jfr_reader *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

uint64_t kiln_jfr__long(jfr_reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = kiln_jfr__byte(r);
        if (shift == 56)
            return v | (uint64_t)b << 56;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return v;
    }
    return v;
}

/* n raw big-endian bytes (floats and doubles are never compressed). */
static uint64_t raw_be(jfr_reader *r, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | kiln_jfr__byte(r);
    return v;
}

int64_t kiln_jfr__int_of(jfr_reader *r, uint8_t prim)
{
    switch (prim) {
    case JFR_BOOL:
    case JFR_BYTE:
        return (int8_t)kiln_jfr__byte(r);
    case JFR_FLOAT:
        return (int64_t)raw_be(r, 4);
    case JFR_DOUBLE:
        return (int64_t)raw_be(r, 8);
    case JFR_CHAR:
        return (uint16_t)kiln_jfr__long(r);
    case JFR_SHORT:
        return (int16_t)kiln_jfr__long(r);
    case JFR_INT:
        return (int32_t)kiln_jfr__long(r);
    default:
        return (int64_t)kiln_jfr__long(r);
    }
}

/* A length that must fit in the bytes left (each unit takes >= 1 byte). */
static size_t length(jfr_reader *r)
{
    uint64_t n = kiln_jfr__long(r);
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

static size_t put_utf8(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xc0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12);
        o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | c >> 18);
    o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Encoding 4: n UTF-16 code units, each a compressed char. A surrogate
 * pair becomes one code point; a lone surrogate becomes U+FFFD. */
static kiln_str_t utf16_string(jfr_reader *r, kiln_arena_t *a, size_t n)
{
    if (a == NULL) { /* only reading past it */
        for (size_t i = 0; i < n && !r->bad; i++)
            kiln_jfr__long(r);
        return (kiln_str_t){"", 0};
    }
    char *o = kiln_arena_alloc(a, n * 3 + 1);
    size_t k = 0;
    if (o == NULL) {
        r->bad = true;
        return (kiln_str_t){"", 0};
    }
    for (size_t i = 0; i < n && !r->bad; i++) {
        uint32_t c = (uint16_t)kiln_jfr__long(r);
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
            const uint8_t *save = r->p;
            uint32_t lo = (uint16_t)kiln_jfr__long(r);
            if (lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i++;
            } else {
                r->p = save;
            }
        }
        if (c >= 0xd800 && c < 0xe000)
            c = 0xfffd;
        k += put_utf8(o + k, c);
    }
    return (kiln_str_t){o, k};
}

/* Encoding 5: Latin-1 bytes. */
static kiln_str_t latin1_string(jfr_reader *r, kiln_arena_t *a, size_t n)
{
    char *o = a != NULL ? kiln_arena_alloc(a, n * 2 + 1) : NULL;
    size_t k = 0;
    if (o == NULL) {
        r->p += n;
        r->bad |= a != NULL;
        return (kiln_str_t){"", 0};
    }
    for (size_t i = 0; i < n; i++)
        k += put_utf8(o + k, r->p[i]);
    r->p += n;
    return (kiln_str_t){o, k};
}

jfr_str kiln_jfr__string(jfr_reader *r, kiln_arena_t *a)
{
    jfr_str s = {{"", 0}, 0, false};
    uint8_t enc = kiln_jfr__byte(r);
    size_t n;
    switch (enc) {
    case 0: /* null */
    case 1: /* empty */
        break;
    case 2:
        s.ref = kiln_jfr__long(r);
        s.is_ref = true;
        break;
    case 3:
        n = length(r);
        s.s = (kiln_str_t){(const char *)r->p, n};
        r->p += n;
        break;
    case 4:
        n = length(r);
        s.s = utf16_string(r, a, n);
        break;
    case 5:
        n = length(r);
        s.s = latin1_string(r, a, n);
        break;
    default:
        r->bad = true;
    }
    if (r->bad)
        s = (jfr_str){{"", 0}, 0, false};
    return s;
}

/* ---- map and vector ---- */

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static bool map_grow(kiln_arena_t *a, jfr_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *keys = kiln_arena_alloc(a, cap * sizeof(*keys));
    uint32_t *vals = kiln_arena_calloc(a, cap, sizeof(*vals));
    if (keys == NULL || vals == NULL)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] == 0)
            continue;
        size_t s = slot_of(m->keys[i], cap);
        while (vals[s] != 0)
            s = (s + 1) & (cap - 1);
        keys[s] = m->keys[i];
        vals[s] = m->vals[i];
    }
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

/* A later value for a key replaces the earlier one (a pool may repeat keys). */
bool kiln_jfr__map_put(kiln_arena_t *a, jfr_map *m, uint64_t key, uint32_t val)
{
    if ((m->len + 1) * 2 > m->cap && !map_grow(a, m))
        return false;
    size_t s = slot_of(key, m->cap);
    while (m->vals[s] != 0 && m->keys[s] != key)
        s = (s + 1) & (m->cap - 1);
    m->len += m->vals[s] == 0;
    m->keys[s] = key;
    m->vals[s] = val + 1;
    return true;
}

bool kiln_jfr__map_get(const jfr_map *m, uint64_t key, uint32_t *val)
{
    if (m->cap == 0)
        return false;
    for (size_t s = slot_of(key, m->cap);; s = (s + 1) & (m->cap - 1)) {
        if (m->vals[s] == 0)
            return false;
        if (m->keys[s] == key) {
            *val = m->vals[s] - 1;
            return true;
        }
    }
}

void *kiln_jfr__vec_push(kiln_arena_t *a, jfr_vec *v, size_t elem)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        if (cap > UINT32_MAX)
            return NULL;
        void *n = kiln_arena_grow(a, v->v, v->cap * elem, cap * elem);
        if (n == NULL)
            return NULL;
        v->v = n;
        v->cap = cap;
    }
    return (char *)v->v + elem * v->len++;
}

/* ---- metadata ---- */

/* The metadata event's string table and what the element walk builds. */
typedef struct meta_ctx {
    kiln_arena_t *a;
    jfr_reader *r;
    const char **strings;
    size_t n_strings;
    jfr_vec classes; /* jfr_class */
} meta_ctx;

/* One element's header: its name and attributes (string indices). */
typedef struct element {
    const char *name;
    uint32_t n_attr;
    const char **keys, **vals;
    uint64_t n_children;
} element;

static const char *string_at(meta_ctx *c, uint64_t i)
{
    if (i >= c->n_strings) {
        c->r->bad = true;
        return "";
    }
    return c->strings[i];
}

static bool read_element(meta_ctx *c, element *e)
{
    jfr_reader *r = c->r;
    e->name = string_at(c, kiln_jfr__long(r));
    size_t n = length(r);
    e->n_attr = (uint32_t)n;
    e->keys = kiln_arena_alloc(c->a, (n + 1) * sizeof(*e->keys));
    e->vals = kiln_arena_alloc(c->a, (n + 1) * sizeof(*e->vals));
    if (e->keys == NULL || e->vals == NULL)
        return false;
    for (size_t i = 0; i < n && !r->bad; i++) {
        e->keys[i] = string_at(c, kiln_jfr__long(r));
        e->vals[i] = string_at(c, kiln_jfr__long(r));
    }
    e->n_children = length(r);
    return !r->bad && kiln_jfr__spend(r, 1 + n);
}

static const char *attr(const element *e, const char *key)
{
    for (uint32_t i = 0; i < e->n_attr; i++) {
        if (strcmp(e->keys[i], key) == 0)
            return e->vals[i];
    }
    return NULL;
}

static uint64_t attr_u64(const element *e, const char *key)
{
    const char *v = attr(e, key);
    return v != NULL ? strtoull(v, NULL, 10) : 0;
}

/* Reads past an element's children (annotations, settings, regions). */
static bool skip_children(meta_ctx *c, const element *e, int depth)
{
    if (depth > JFR_MAX_NEST) {
        c->r->bad = true;
        return false;
    }
    for (uint64_t i = 0; i < e->n_children && !c->r->bad; i++) {
        element ch;
        if (!read_element(c, &ch) || !skip_children(c, &ch, depth + 1))
            return false;
    }
    return !c->r->bad;
}

static bool read_class(meta_ctx *c, const element *e)
{
    jfr_class *k = kiln_jfr__vec_push(c->a, &c->classes, sizeof(*k));
    if (k == NULL || c->classes.len > JFR_MAX_CLASSES || e->n_children > JFR_MAX_FIELDS)
        return false;
    memset(k, 0, sizeof(*k));
    k->id = attr_u64(e, "id");
    k->name = attr(e, "name") ? attr(e, "name") : "";
    k->fields = kiln_arena_alloc(c->a, (e->n_children + 1) * sizeof(*k->fields));
    if (k->fields == NULL)
        return false;
    for (uint64_t i = 0; i < e->n_children && !c->r->bad; i++) {
        element f;
        if (!read_element(c, &f) || !skip_children(c, &f, 2))
            return false;
        if (strcmp(f.name, "field") != 0)
            continue;
        jfr_field *fd = &k->fields[k->n_fields++];
        const char *cp = attr(&f, "constantPool"), *dim = attr(&f, "dimension");
        fd->name = attr(&f, "name") ? attr(&f, "name") : "";
        fd->type = attr_u64(&f, "class");
        fd->cpool = cp != NULL && strcmp(cp, "true") == 0;
        fd->array = dim != NULL && strcmp(dim, "1") == 0;
    }
    return !c->r->bad;
}

static bool read_tree(meta_ctx *c)
{
    element root;
    if (!read_element(c, &root) || strcmp(root.name, "root") != 0)
        return false;
    for (uint64_t i = 0; i < root.n_children && !c->r->bad; i++) {
        element m;
        if (!read_element(c, &m))
            return false;
        if (strcmp(m.name, "metadata") != 0) {
            if (!skip_children(c, &m, 2))
                return false;
            continue;
        }
        for (uint64_t j = 0; j < m.n_children && !c->r->bad; j++) {
            element k;
            if (!read_element(c, &k))
                return false;
            if (strcmp(k.name, "class") == 0 ? !read_class(c, &k) : !skip_children(c, &k, 3))
                return false;
        }
    }
    return !c->r->bad;
}

static const char *const PRIMS[] = {"",    "boolean", "byte",  "char",   "short",
                                    "int", "long",    "float", "double", "java.lang.String"};

static const char *const ROLES[] = {
    "",
    "jdk.types.Symbol",
    "java.lang.String",
    "java.lang.Class",
    "jdk.types.Method",
    "jdk.types.StackTrace",
    "jdk.types.ThreadState",
    "jdk.types.StackFrame",
    "jdk.types.ChunkHeader",
    "jdk.ExecutionSample",
    "profiler.WallClockSample",
    "jdk.ObjectAllocationInNewTLAB",
    "jdk.ObjectAllocationOutsideTLAB",
    "jdk.ObjectAllocationSample",
    "profiler.LiveObject",
    "jdk.JavaMonitorEnter",
    "jdk.ThreadPark",
    "jdk.ActiveSetting",
    "profiler.Malloc",
};

static const char *const FIELDS[F_COUNT] = {
    "stackTrace", "state",     "contextId", "samples", "tlabSize", "allocationSize", "weight",
    "duration",   "size",      "name",      "value",   "type",     "lineNumber",     "method",
    "frames",     "truncated", "string",    "spanId",  "spanName"};

/* Gives each class its primitive kind, role and field indices. */
static void classify(jfr_class *k)
{
    for (uint8_t i = 1; i < sizeof(PRIMS) / sizeof(PRIMS[0]); i++) {
        if (strcmp(k->name, PRIMS[i]) == 0)
            k->prim = i;
    }
    for (uint8_t i = 1; i < sizeof(ROLES) / sizeof(ROLES[0]); i++) {
        if (strcmp(k->name, ROLES[i]) == 0)
            k->role = i;
    }
    for (int f = 0; f < F_COUNT; f++) {
        k->ix[f] = -1;
        for (uint32_t i = 0; i < k->n_fields && k->ix[f] < 0; i++) {
            if (strcmp(k->fields[i].name, FIELDS[f]) == 0)
                k->ix[f] = (int16_t)i;
        }
    }
}

static kiln_status meta_strings(meta_ctx *c)
{
    size_t n = length(c->r);
    c->strings = kiln_arena_alloc(c->a, (n + 1) * sizeof(*c->strings));
    if (c->strings == NULL)
        return KILN_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < n && !c->r->bad; i++) {
        jfr_str s = kiln_jfr__string(c->r, c->a);
        c->strings[i] = kiln_arena_strndup(c->a, s.s.ptr, s.s.len);
        if (c->strings[i] == NULL)
            return KILN_RESOURCE_EXHAUSTED;
    }
    c->n_strings = n;
    return KILN_OK;
}

kiln_status kiln_jfr__read_meta(kiln_arena_t *a, jfr_reader *r, jfr_meta *m, kiln_err *err)
{
    meta_ctx c = {a, r, NULL, 0, {NULL, 0, 0}};
    kiln_jfr__long(r); /* size */
    uint64_t type = kiln_jfr__long(r);
    for (int i = 0; i < 3; i++)
        kiln_jfr__long(r); /* start, duration, metadata id */
    if (r->bad || type != 0)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: bad metadata event header");
    kiln_status st = meta_strings(&c);
    if (st == KILN_OK && !read_tree(&c) && !r->bad)
        st = KILN_RESOURCE_EXHAUSTED;
    if (st == KILN_RESOURCE_EXHAUSTED || (st == KILN_OK && c.classes.len > JFR_MAX_CLASSES))
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: metadata too large");
    if (r->bad)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: malformed metadata");
    memset(m, 0, sizeof(*m));
    m->classes = c.classes.v;
    m->n = c.classes.len;
    for (size_t i = 0; i < m->n; i++) {
        classify(&m->classes[i]);
        if (!kiln_jfr__map_put(a, &m->by_id, m->classes[i].id, (uint32_t)i))
            return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: metadata too large");
    }
    return KILN_OK;
}

const jfr_class *kiln_jfr__class(const jfr_meta *m, uint64_t id)
{
    uint32_t i;
    return kiln_jfr__map_get(&m->by_id, id, &i) ? &m->classes[i] : NULL;
}
