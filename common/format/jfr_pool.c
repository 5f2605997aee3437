/* SPDX-License-Identifier: Apache-2.0
 * jfr_pool: values as the metadata lays them out (primitives, strings,
 * constant-pool keys, arrays, inline structs) and the constant-pool events
 * of a chunk, of which the symbols, strings, classes, methods, stack
 * traces and thread states are kept; every other pool is read past. */
#include <string.h>

#include "jfr.h"
#include "labels.h"
#include "jfr_int.h"

#define CHUNK_HEADER_BYTES 68
#define MAX_POOL_EVENTS 65536 /* a chunk's chain of constant-pool events */

static void read_value(jfr_reader *r, kiln_arena_t *a, const jfr_meta *m, const jfr_field *f,
                       int depth, jfr_val *out)
{
    if (!kiln_jfr__spend(r, 1))
        return;
    if (f->cpool) {
        out->i = (int64_t)kiln_jfr__long(r);
        return;
    }
    const jfr_class *c = kiln_jfr__class(m, f->type);
    if (c == NULL || depth >= JFR_MAX_NEST) {
        r->bad = true;
        return;
    }
    if (c->prim == JFR_STRING)
        out->s = kiln_jfr__string(r, a);
    else if (c->prim != JFR_STRUCT)
        out->i = kiln_jfr__int_of(r, c->prim);
    else if (c->role == R_CHUNK_HEADER)
        r->p = (size_t)(r->end - r->p) >= CHUNK_HEADER_BYTES ? r->p + CHUNK_HEADER_BYTES
                                                             : (r->bad = true, r->p);
    else
        kiln_jfr__read_struct(r, NULL, m, c, depth + 1, NULL);
}

/* An array's count, which must fit in the bytes left; its elements are
 * read past. */
static int64_t skip_array(jfr_reader *r, const jfr_meta *m, const jfr_field *f, int depth)
{
    uint64_t n = kiln_jfr__long(r);
    if (n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return 0;
    }
    jfr_val dummy = {0, {{"", 0}, 0, false}};
    for (uint64_t i = 0; i < n && !r->bad; i++)
        read_value(r, NULL, m, f, depth, &dummy);
    return (int64_t)n;
}

/* Reads a struct of class c; vals (c->n_fields entries, or NULL to read
 * past) gets each scalar field; an array field gets its length. Strings
 * are kept only when a is not NULL. */
void kiln_jfr__read_struct(jfr_reader *r, kiln_arena_t *a, const jfr_meta *m, const jfr_class *c,
                           int depth, jfr_val *vals)
{
    jfr_val dummy = {0, {{"", 0}, 0, false}};
    for (uint32_t i = 0; i < c->n_fields && !r->bad; i++) {
        jfr_val *v = vals != NULL ? &vals[i] : &dummy;
        *v = (jfr_val){0, {{"", 0}, 0, false}};
        if (c->fields[i].array)
            v->i = skip_array(r, m, &c->fields[i], depth);
        else
            read_value(r, vals != NULL ? a : NULL, m, &c->fields[i], depth, v);
    }
}

/* ---- pools ---- */

/* Scratch values for one struct and for one stack frame. */
typedef struct pool_ctx {
    kiln_arena_t *a;
    jfr_reader *r;
    const jfr_meta *m;
    jfr_pools *p;
    jfr_val *vals, *frame_vals;
} pool_ctx;

static int64_t field_i(const jfr_class *c, const jfr_val *vals, int f)
{
    return c->ix[f] >= 0 ? vals[c->ix[f]].i : 0;
}

static jfr_str field_s(const jfr_class *c, const jfr_val *vals, int f)
{
    return c->ix[f] >= 0 ? vals[c->ix[f]].s : (jfr_str){{"", 0}, 0, false};
}

/* Reads one frame of a stack trace's frames array into the frame pool,
 * unless the stack is already KILN_JFR_MAX_DEPTH deep. */
static bool read_frame(pool_ctx *c, const jfr_field *f, jfr_stack *st)
{
    const jfr_class *fc = kiln_jfr__class(c->m, f->type);
    if (f->cpool || fc == NULL) {
        jfr_val dummy = {0, {{"", 0}, 0, false}};
        read_value(c->r, NULL, c->m, f, 1, &dummy);
        return true;
    }
    kiln_jfr__read_struct(c->r, c->a, c->m, fc, 1, c->frame_vals);
    if (c->r->bad || st->n >= KILN_JFR_MAX_DEPTH)
        return !c->r->bad;
    if (c->p->frames.len >= KILN_JFR_MAX_FRAMES)
        return false;
    jfr_frame *fr = kiln_jfr__vec_push(c->a, &c->p->frames, sizeof(*fr));
    if (fr == NULL)
        return false;
    fr->method = (uint64_t)field_i(fc, c->frame_vals, F_METHOD);
    fr->line = field_i(fc, c->frame_vals, F_LINE);
    st->n++;
    return true;
}

static bool read_stack(pool_ctx *c, const jfr_class *k, jfr_stack *st)
{
    st->off = (uint32_t)c->p->frames.len;
    st->n = 0;
    for (uint32_t i = 0; i < k->n_fields && !c->r->bad; i++) {
        const jfr_field *f = &k->fields[i];
        jfr_val dummy = {0, {{"", 0}, 0, false}};
        if ((int)i != k->ix[F_FRAMES] || !f->array) {
            if (f->array)
                skip_array(c->r, c->m, f, 1);
            else
                read_value(c->r, NULL, c->m, f, 1, &dummy);
            continue;
        }
        uint64_t n = kiln_jfr__long(c->r);
        if (n > (uint64_t)(c->r->end - c->r->p))
            c->r->bad = true;
        for (uint64_t j = 0; j < n && !c->r->bad; j++) {
            if (!read_frame(c, f, st))
                return false;
        }
    }
    return true;
}

/* Appends an entry of elem bytes to v and maps key to it; NULL past the cap. */
static void *keep(pool_ctx *c, jfr_map *map, jfr_vec *v, size_t elem, uint64_t key)
{
    if (++c->p->n_entries > KILN_JFR_MAX_POOL_ENTRIES)
        return NULL;
    void *e = kiln_jfr__vec_push(c->a, v, elem);
    if (e == NULL || !kiln_jfr__map_put(c->a, map, key, (uint32_t)(v->len - 1)))
        return NULL;
    return e;
}

/* Reads one pool entry of class k under key; false past the arena's cap. */
static bool read_entry(pool_ctx *c, const jfr_class *k, uint64_t key)
{
    jfr_pools *p = c->p;
    if (k->role == R_STRING) {
        jfr_str *s = keep(c, &p->string, &p->strings, sizeof(*s), key);
        return s != NULL && (*s = kiln_jfr__string(c->r, c->a), true);
    }
    if (k->role == R_STACK) {
        jfr_stack *st = keep(c, &p->stack, &p->stacks, sizeof(*st), key);
        return st != NULL && read_stack(c, k, st);
    }
    jfr_field self = {"", k->id, false, false};
    bool kept =
        k->role == R_SYMBOL || k->role == R_CLASS || k->role == R_METHOD || k->role == R_STATE;
    if (!kept || k->prim != JFR_STRUCT) {
        jfr_val dummy = {0, {{"", 0}, 0, false}};
        read_value(c->r, NULL, c->m, &self, 0, &dummy);
        return true;
    }
    kiln_jfr__read_struct(c->r, c->a, c->m, k, 0, c->vals);
    if (k->role == R_SYMBOL || k->role == R_STATE) {
        jfr_str *s = k->role == R_SYMBOL ? keep(c, &p->symbol, &p->symbols, sizeof(*s), key)
                                         : keep(c, &p->state, &p->states, sizeof(*s), key);
        return s != NULL &&
               (*s = field_s(k, c->vals, k->role == R_SYMBOL ? F_STRING : F_NAME), true);
    }
    if (k->role == R_CLASS) {
        uint64_t *name = keep(c, &p->cls, &p->classes, sizeof(*name), key);
        return name != NULL && (*name = (uint64_t)field_i(k, c->vals, F_NAME), true);
    }
    jfr_method *me = keep(c, &p->method, &p->methods, sizeof(*me), key);
    if (me == NULL)
        return false;
    *me = (jfr_method){
        (uint64_t)field_i(k, c->vals, F_TYPE), (uint64_t)field_i(k, c->vals, F_NAME), {NULL, 0}};
    return true;
}

/* One constant-pool event at r->p; *delta gets the offset of the previous. */
static kiln_status read_pool_event(pool_ctx *c, int64_t *delta, kiln_err *err)
{
    jfr_reader *r = c->r;
    kiln_jfr__long(r); /* size */
    uint64_t type = kiln_jfr__long(r);
    kiln_jfr__long(r); /* start */
    kiln_jfr__long(r); /* duration */
    *delta = (int64_t)kiln_jfr__long(r);
    kiln_jfr__long(r); /* flush flag / checkpoint type */
    uint64_t n_pools = kiln_jfr__long(r);
    if (r->bad || type != 1)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: bad constant pool event");
    for (uint64_t i = 0; i < n_pools && !r->bad; i++) {
        const jfr_class *k = kiln_jfr__class(c->m, kiln_jfr__long(r));
        uint64_t n = kiln_jfr__long(r);
        if (k == NULL || n > (uint64_t)(r->end - r->p))
            r->bad = true;
        for (uint64_t j = 0; j < n && !r->bad; j++) {
            uint64_t key = kiln_jfr__long(r);
            if (!read_entry(c, k, key) && !r->bad)
                return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED,
                                    "jfr: constant pools too large (limits: %u entries, %u "
                                    "frames per chunk)",
                                    KILN_JFR_MAX_POOL_ENTRIES, KILN_JFR_MAX_FRAMES);
        }
    }
    if (r->bad)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: malformed constant pool");
    return KILN_OK;
}

kiln_status kiln_jfr__read_pools(kiln_arena_t *a, jfr_reader *chunk, size_t cp_off,
                                 const jfr_meta *m, jfr_pools *pools, kiln_err *err)
{
    jfr_reader r = *chunk;
    pool_ctx c = {a,
                  &r,
                  m,
                  pools,
                  kiln_arena_alloc(a, JFR_MAX_FIELDS * sizeof(jfr_val)),
                  kiln_arena_alloc(a, JFR_MAX_FIELDS * sizeof(jfr_val))};
    if (c.vals == NULL || c.frame_vals == NULL)
        return kiln_err_set(err, KILN_RESOURCE_EXHAUSTED, "jfr: out of memory");
    memset(pools, 0, sizeof(*pools));
    size_t size = (size_t)(chunk->end - chunk->p), off = cp_off;
    for (int i = 0; i < MAX_POOL_EVENTS; i++) {
        if (off < CHUNK_HEADER_BYTES || off >= size)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "jfr: constant pool offset %zu outside the chunk", off);
        r.p = chunk->p + off;
        int64_t delta;
        kiln_status st = read_pool_event(&c, &delta, err);
        if (st != KILN_OK || delta == 0)
            return st;
        off += (size_t)delta; /* wraps for a negative delta, as intended */
    }
    return kiln_err_set(err, KILN_INVALID_ARGUMENT, "jfr: constant pool chain too long");
}

kiln_str_t kiln_jfr__resolve(const jfr_pools *pools, jfr_str s)
{
    uint32_t i;
    if (!s.is_ref)
        return s.s;
    if (!kiln_jfr__map_get(&pools->string, s.ref, &i))
        return (kiln_str_t){"", 0};
    const jfr_str *t = &((const jfr_str *)pools->strings.v)[i];
    return t->is_ref ? (kiln_str_t){"", 0} : t->s;
}

/* ---- frame names ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return n > 0;
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* The tail after "$$Lambda" of a generated class: `\d+`, or
 * `\$?\d*[./](0x)?[0-9a-f]+` (Foo$$Lambda$669.0x0000000800fd7318). */
static bool lambda_tail(const char *s, size_t n)
{
    if (all_digits(s, n))
        return true;
    size_t i = 0;
    if (i < n && s[i] == '$')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i >= n || (s[i] != '.' && s[i] != '/'))
        return false;
    i++;
    if (i + 1 < n && s[i] == '0' && s[i + 1] == 'x')
        i += 2;
    if (i >= n)
        return false;
    for (; i < n; i++) {
        if (!is_hex(s[i]))
            return false;
    }
    return true;
}

/* The length of the part of s kept before "_" when s names a class the JVM
 * generates with a varying suffix (reflection accessors, lambdas, Spring
 * CGLIB proxies), so that every run's copies merge into one frame, as
 * Pyroscope's conversion merges them; 0 when s is not one. */
static size_t generated_prefix(kiln_str_t s)
{
    static const char acc[] = "jdk/internal/reflect/GeneratedMethodAccessor";
    static const char lam[] = "$$Lambda", cglib[] = "$$EnhancerBySpringCGLIB$$";
    if (s.len > sizeof(acc) - 1 && memcmp(s.ptr, acc, sizeof(acc) - 1) == 0 &&
        all_digits(s.ptr + sizeof(acc) - 1, s.len - (sizeof(acc) - 1)))
        return sizeof(acc) - 1;
    for (size_t i = s.len; i-- > 1;) {
        if (i + sizeof(cglib) - 1 <= s.len && memcmp(s.ptr + i, cglib, sizeof(cglib) - 1) == 0)
            return i + sizeof(cglib) - 1;
    }
    for (size_t i = s.len; i-- > 1;) {
        size_t e = i + sizeof(lam) - 1;
        if (e <= s.len && memcmp(s.ptr + i, lam, sizeof(lam) - 1) == 0 &&
            lambda_tail(s.ptr + e, s.len - e))
            return e;
    }
    return 0;
}

/* The length of the UTF-8 sequence a lead byte starts, 0 for a byte that
 * cannot start one. */
static size_t utf8_len(uint8_t b)
{
    return b < 0x80                 ? 1
           : b >= 0xc2 && b <= 0xdf ? 2
           : b >= 0xe0 && b <= 0xef ? 3
           : b >= 0xf0 && b <= 0xf4 ? 4
                                    : 0;
}

/* s with every byte that starts no valid UTF-8 sequence replaced by U+FFFD
 * (native symbols are raw bytes; one of them must not void a recording). */
static kiln_str_t utf8_repair(kiln_arena_t *a, kiln_str_t s)
{
    char *o = kiln_arena_alloc(a, s.len * 3 + 1);
    size_t k = 0;
    if (o == NULL)
        return (kiln_str_t){NULL, 0};
    for (size_t i = 0; i < s.len;) {
        size_t n = utf8_len((uint8_t)s.ptr[i]);
        if (n != 0 && i + n <= s.len && kiln_utf8_valid(s.ptr + i, n)) {
            memcpy(o + k, s.ptr + i, n);
            k += n;
            i += n;
        } else {
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    return (kiln_str_t){o, k};
}

static kiln_str_t symbol(const jfr_pools *pools, uint64_t key)
{
    uint32_t i;
    if (!kiln_jfr__map_get(&pools->symbol, key, &i))
        return (kiln_str_t){"", 0};
    return kiln_jfr__resolve(pools, ((const jfr_str *)pools->symbols.v)[i]);
}

/* "class.method" of a method key (resolved once per chunk); .ptr NULL when
 * the method or its class is not in the pools: the frame is left out. */
kiln_str_t kiln_jfr__frame_name(kiln_arena_t *a, jfr_pools *pools, uint64_t method)
{
    uint32_t mi, ci;
    if (!kiln_jfr__map_get(&pools->method, method, &mi))
        return (kiln_str_t){NULL, 0};
    jfr_method *m = &((jfr_method *)pools->methods.v)[mi];
    if (m->resolved.ptr != NULL || !kiln_jfr__map_get(&pools->cls, m->cls, &ci))
        return m->resolved;
    kiln_str_t cls = symbol(pools, ((const uint64_t *)pools->classes.v)[ci]);
    kiln_str_t name = symbol(pools, m->name);
    size_t gc = generated_prefix(cls), gn = generated_prefix(name);
    char *s = kiln_arena_printf(a, "%.*s%s.%.*s%s", (int)(gc ? gc : cls.len), cls.ptr,
                                gc ? "_" : "", (int)(gn ? gn : name.len), name.ptr, gn ? "_" : "");
    kiln_str_t r = {s, s != NULL ? strlen(s) : 0};
    if (s != NULL && !kiln_utf8_valid(r.ptr, r.len))
        r = utf8_repair(a, r);
    m->resolved = r;
    return m->resolved;
}
