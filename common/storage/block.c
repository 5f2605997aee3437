/* SPDX-License-Identifier: Apache-2.0
 * block: head <-> block files. A section is [u32 raw_len][u32 comp_len]
 * [u32 checksum of the compressed bytes][zstd bytes]; integers inside are
 * varints (zigzag for signed). Series chunks in `samples` are sections too,
 * located by the index. */
#include "block.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "head_int.h"
#include "log.h"
#include "pbjson.h"
#include "xmalloc.h"

#define SEC_HDR 12
#define ZSTD_LEVEL 3
/* Block versions: 1 wrote a chunk's span column with no marker (present
 * iff bytes follow the values); 2 writes a flags byte after the values
 * naming the columns that follow (spans, traces). Both are read. */
#define BLOCK_VERSION 2
#define CHUNK_SPANS 1u
#define CHUNK_TRACES 2u
/* Chunks are encoded on up to this many threads (one per core) when the
 * head holds at least CHUNK_PARALLEL_SAMPLES samples. */
#define CHUNK_THREADS 8
#define CHUNK_PARALLEL_SAMPLES (1u << 14)

struct kiln_block {
    kiln_objstore_t *store;
    char *prefix; /* <tenant>/blocks/<ulid>/ */
    kiln_head_t *head;
    uint64_t *chunk_off; /* per series, in `samples` */
    uint32_t *chunk_len; /* whole section, header included */
    kiln_arena_t *mem;
    Block__V1__BlockMeta *meta;
    /* A chunk read found the block damaged: the first finder claims the
     * reason, writes it, then publishes damaged (release), so a reader that
     * sees damaged set (acquire) reads a whole reason. */
    atomic_bool damage_claimed, damaged;
    char damage[KILN_ERR_MSG_MAX];
    uint32_t version; /* meta.json's, 1 for blocks that predate versions */
};

/* ---- ULIDs ------------------------------------------------------------------ */

void kiln_ulid(int64_t ms, char out[KILN_ULID_LEN + 1])
{
    static const char enc[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    if (getrandom(b + 6, 10, 0) != 10) {
        uint64_t x = XXH3_64bits(&ms, sizeof(ms)) ^ (uint64_t)clock();
        memcpy(b + 6, &x, 8);
        memcpy(b + 14, &x, 2);
    }
    /* 128 bits as 26 base32 digits, most significant first (2 leading pad bits). */
    for (int i = 0; i < KILN_ULID_LEN; i++) {
        int bit = i * 5 - 2, v = 0;
        for (int k = 0; k < 5; k++, bit++)
            v = v << 1 | (bit >= 0 ? (b[bit / 8] >> (7 - bit % 8)) & 1 : 0);
        out[i] = enc[v];
    }
    out[KILN_ULID_LEN] = '\0';
}

/* ---- encoding helpers ---------------------------------------------------------- */

/* kiln_buf_put_uvarint's bytes, written in place: a flush writes one to
 * three varints per sample (tens of millions), and the call and copy per
 * varint were a third of encoding a block. */
static inline void put_uv(kiln_buf *b, uint64_t v)
{
    if (b->cap - b->len < 10 && !kiln_buf_reserve(b, 10)) {
        kiln_buf_put_uvarint(b, v); /* at the buffer's max: its own refusal */
        return;
    }
    uint8_t *p = (uint8_t *)b->ptr + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)(p - (uint8_t *)b->ptr);
}

static inline void put_sv(kiln_buf *b, int64_t v)
{
    put_uv(b, ((uint64_t)v << 1) ^ -((uint64_t)v >> 63)); /* zigzag */
}

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Appends raw as one compressed, checksummed section to out. */
static void put_section(kiln_buf *out, const kiln_buf *raw)
{
    size_t bound = ZSTD_compressBound(raw->len);
    kiln_buf_reserve(out, SEC_HDR + bound);
    uint8_t *hdr = (uint8_t *)out->ptr + out->len;
    size_t n = ZSTD_compress(hdr + SEC_HDR, bound, raw->ptr ? raw->ptr : "", raw->len, ZSTD_LEVEL);
    if (ZSTD_isError(n))
        abort(); /* only on a programming error: the bound was reserved */
    put32le(hdr, (uint32_t)raw->len);
    put32le(hdr + 4, (uint32_t)n);
    put32le(hdr + 8, (uint32_t)XXH3_64bits(hdr + SEC_HDR, n));
    out->len += SEC_HDR + n;
}

/* A reader over a decompressed section. */
typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd;

static uint64_t get_uv_slow(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return v;
    }
    r->bad = 1;
    return 0;
}

/* The hot path of chunk decoding: with 10 bytes left no varint can run
 * past the end, so the bytes are not bounds-checked one by one. */
static inline uint64_t get_uv(rd *r)
{
    if (r->end - r->p < 10)
        return get_uv_slow(r);
    const uint8_t *p = r->p;
    uint64_t v = p[0];
    if (v < 0x80) {
        r->p = p + 1;
        return v;
    }
    v &= 0x7f;
    for (unsigned i = 1; i < 10; i++) {
        uint64_t b = p[i];
        v |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            r->p = p + i + 1;
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static inline int64_t get_sv(rd *r)
{
    uint64_t v = get_uv(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A count that cannot exceed the bytes left (each element takes >= 1 byte). */
static size_t get_count(rd *r)
{
    uint64_t n = get_uv(r);
    if (n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return 0;
    }
    return (size_t)n;
}

/* Decompresses the section at data[*off], checking it; advances *off. */
static kiln_status get_section(const uint8_t *data, size_t len, size_t *off, uint8_t **raw,
                               size_t *raw_len, const char *what, kiln_err *err)
{
    if (len - *off < SEC_HDR)
        return kiln_err_set(err, KILN_DATA_LOSS, "block %s: truncated at offset %zu", what, *off);
    const uint8_t *h = data + *off;
    uint32_t rl = get32le(h), cl = get32le(h + 4), sum = get32le(h + 8);
    if (cl > len - *off - SEC_HDR || (uint32_t)XXH3_64bits(h + SEC_HDR, cl) != sum)
        return kiln_err_set(err, KILN_DATA_LOSS,
                            "block %s: section at offset %zu is truncated or "
                            "fails its checksum",
                            what, *off);
    *raw = kiln_xmalloc((size_t)rl + 1);
    size_t n = ZSTD_decompress(*raw, rl, h + SEC_HDR, cl);
    if (ZSTD_isError(n) || n != rl) {
        free(*raw);
        return kiln_err_set(err, KILN_DATA_LOSS,
                            "block %s: section at offset %zu does not "
                            "decompress",
                            what, *off);
    }
    *raw_len = rl;
    *off += SEC_HDR + cl;
    return KILN_OK;
}

/* ---- writing ------------------------------------------------------------------- */

static void write_strings(const kiln_head_t *h, kiln_buf *out)
{
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    put_uv(&raw, h->n_strs);
    for (size_t i = 0; i < h->n_strs; i++) {
        put_uv(&raw, h->strs[i].len);
        kiln_buf_append(&raw, h->strs[i].ptr, h->strs[i].len);
    }
    put_section(out, &raw);
    kiln_buf_free(&raw);
}

static void write_functions_mappings(const kiln_head_t *h, kiln_buf *out)
{
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    put_uv(&raw, h->n_funcs);
    for (size_t i = 0; i < h->n_funcs; i++) {
        const hfunc *f = &h->funcs[i];
        put_uv(&raw, f->name), put_uv(&raw, f->system_name), put_uv(&raw, f->filename);
        put_sv(&raw, f->start_line);
    }
    put_uv(&raw, h->n_maps);
    for (size_t i = 0; i < h->n_maps; i++) {
        const hmap *m = &h->maps[i];
        put_uv(&raw, m->start), put_uv(&raw, m->limit), put_uv(&raw, m->offset);
        put_uv(&raw, m->filename), put_uv(&raw, m->build_id);
    }
    put_section(out, &raw);
    kiln_buf_free(&raw);
}

/* Locations with their lines, then the stack tree (parents as distances,
 * which are small: a child is created right after its parent). */
static void write_locations_stacks(const kiln_head_t *h, kiln_buf *out)
{
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    put_uv(&raw, h->n_locs);
    for (size_t i = 0; i < h->n_locs; i++) {
        const hloc *l = &h->locs[i];
        put_uv(&raw, l->mapping == KILN_HEAD_NONE ? 0 : (uint64_t)l->mapping + 1);
        put_uv(&raw, l->address);
        put_uv(&raw, l->n_lines);
        for (uint32_t j = 0; j < l->n_lines; j++) {
            const hline *ln = &h->lines[l->line_off + j];
            put_uv(&raw, ln->func == KILN_HEAD_NONE ? 0 : (uint64_t)ln->func + 1);
            put_sv(&raw, ln->line);
        }
    }
    put_uv(&raw, h->n_nodes);
    for (size_t i = 1; i < h->n_nodes; i++) {
        put_uv(&raw, i - h->node_parent[i]);
        put_uv(&raw, h->node_loc[i]);
    }
    put_section(out, &raw);
    kiln_buf_free(&raw);
}

typedef struct sample {
    uint32_t node;
    uint32_t trace; /* the head's (0 = none) */
    int64_t value;
    uint64_t span;
} sample;

/* Sorts a[0..n) by node, stably (equal nodes keep their order, as the
 * qsort this replaces did, so chunks are the same bytes): LSD radix sort,
 * 8 bits a pass over the bits that differ, through tmp (n entries). At
 * shutdown a large head's flush spent half its time in qsort's callbacks. */
static void sort_samples(sample *a, sample *tmp, uint32_t n)
{
    uint32_t diff = 0;
    bool sorted = true;
    for (uint32_t k = 1; k < n; k++) {
        diff |= a[k].node ^ a[0].node;
        sorted &= a[k - 1].node <= a[k].node;
    }
    if (sorted)
        return;
    sample *src = a, *dst = tmp;
    for (unsigned shift = 0; shift < 32 && (diff >> shift) != 0; shift += 8) {
        if (((diff >> shift) & 0xff) == 0)
            continue; /* every node has the same byte here */
        uint32_t count[257] = {0};
        for (uint32_t k = 0; k < n; k++)
            count[((src[k].node >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (uint32_t k = 0; k < n; k++)
            dst[count[(src[k].node >> shift) & 0xff]++] = src[k];
        sample *t = src;
        src = dst, dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Chunk-local trace numbering for one block write: local[t - 1] is the
 * chunk's number for the head's trace t (0 = not yet in this chunk);
 * used lists the head's traces numbered so far, to reset between chunks. */
typedef struct trace_map {
    uint32_t *local;
    uint32_t *used;
    size_t n_used, cap_used;
} trace_map;

static uint32_t local_trace(trace_map *m, uint32_t t)
{
    if (t == 0)
        return 0;
    if (m->local[t - 1] == 0) {
        KILN_GROW(m->used, m->cap_used, m->n_used + 1);
        m->used[m->n_used++] = t;
        m->local[t - 1] = (uint32_t)m->n_used;
    }
    return m->local[t - 1];
}

/* The trace column: the chunk's trace table (count, then each id as 16
 * bytes, big endian), then each sample's local trace; resets m. */
static void put_traces(const kiln_head_t *h, trace_map *m, const kiln_buf *col, kiln_buf *out)
{
    put_uv(out, m->n_used);
    for (size_t i = 0; i < m->n_used; i++) {
        uint8_t b[16];
        kiln_trace_id_put(&h->traces[m->used[i] - 1], b);
        kiln_buf_append(out, (const char *)b, 16);
        m->local[m->used[i] - 1] = 0;
    }
    m->n_used = 0;
    kiln_buf_append(out, col->ptr ? col->ptr : "", col->len);
}

/* One series' sample chunk: first every profile's stack nodes (sorted,
 * delta-coded: repeated profiles repeat byte for byte), then every
 * profile's values divided by their common divisor (CPU values are
 * multiples of the sampling period), so zstd has little left to store;
 * then a flags byte and the span and trace columns it names. */
static void write_chunk(const kiln_head_t *h, const hseries *s, trace_map *tm, uint32_t version,
                        kiln_buf *out)
{
    kiln_buf nodes, values, spans, traces;
    kiln_buf_init(&nodes, 0);
    kiln_buf_init(&values, 0);
    kiln_buf_init(&spans, 0);
    kiln_buf_init(&traces, 0);
    sample *tmp = NULL, *tmp2 = NULL;
    size_t cap = 0, cap2 = 0;
    for (size_t j = 0; j < s->n_profiles; j++) {
        const hprofile *p = &h->profiles[s->profiles[j]];
        KILN_GROW(tmp, cap, (size_t)p->n + 1);
        KILN_GROW(tmp2, cap2, (size_t)p->n + 1);
        uint64_t g = 0;
        for (uint32_t k = 0; k < p->n; k++) {
            uint64_t span = h->s_span != NULL ? h->s_span[p->off + k] : 0;
            uint32_t trace = h->s_trace != NULL ? h->s_trace[p->off + k] : 0;
            tmp[k] = (sample){h->s_node[p->off + k], trace, h->s_value[p->off + k], span};
            /* |value| as unsigned: -(uint64_t) also holds |INT64_MIN| */
            uint64_t v = tmp[k].value < 0 ? -(uint64_t)tmp[k].value : (uint64_t)tmp[k].value;
            if (g == 0 || v % g != 0) /* most values are multiples of the period */
                g = gcd(g, v);
        }
        g = g ? g : 1;
        sort_samples(tmp, tmp2, p->n);
        put_uv(&values, g);
        uint32_t prev = 0;
        for (uint32_t k = 0; k < p->n; k++) {
            put_uv(&nodes, tmp[k].node - prev);
            put_sv(&values, g == 1 ? tmp[k].value : tmp[k].value / (int64_t)g);
            if (h->s_span != NULL)
                put_uv(&spans, tmp[k].span);
            if (h->s_trace != NULL)
                put_uv(&traces, local_trace(tm, tmp[k].trace));
            prev = tmp[k].node;
        }
    }
    free(tmp);
    free(tmp2);
    kiln_buf_append(&nodes, values.ptr ? values.ptr : "", values.len);
    if (version >= 2)
        kiln_buf_putc(&nodes, (char)((h->s_span != NULL ? CHUNK_SPANS : 0) |
                                     (h->s_trace != NULL ? CHUNK_TRACES : 0)));
    kiln_buf_append(&nodes, spans.ptr ? spans.ptr : "", spans.len);
    if (version >= 2 && h->s_trace != NULL) /* version 1 has no trace column */
        put_traces(h, tm, &traces, &nodes);
    put_section(out, &nodes);
    kiln_buf_free(&nodes);
    kiln_buf_free(&values);
    kiln_buf_free(&spans);
    kiln_buf_free(&traces);
}

/* The chunks of every series, encoded by the calling thread and helpers
 * that take series in turn: a chunk depends only on its series (each
 * thread has its own trace map, which every chunk leaves empty), so the
 * bytes are the same as one thread's. The caller holds h->lock (shared)
 * for them all. */
typedef struct chunk_job {
    const kiln_head_t *h;
    uint32_t version;
    kiln_buf *out; /* per series */
    size_t next;   /* the next series to take (atomic) */
} chunk_job;

static void *chunk_worker(void *arg)
{
    chunk_job *j = arg;
    trace_map tm = {kiln_xcalloc(j->h->n_traces + 1, sizeof(uint32_t)), NULL, 0, 0};
    for (size_t i; (i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->h->n_series;)
        write_chunk(j->h, &j->h->series[i], &tm, j->version, &j->out[i]);
    free(tm.local);
    free(tm.used);
    return NULL;
}

/* Returns the n_series chunks (caller frees each and the array). */
static kiln_buf *write_chunks(const kiln_head_t *h, uint32_t version)
{
    kiln_buf *out = kiln_xcalloc(h->n_series + 1, sizeof(*out));
    for (size_t i = 0; i < h->n_series; i++)
        kiln_buf_init(&out[i], 0);
    chunk_job j = {h, version, out, 0};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t helpers = h->n_samples < CHUNK_PARALLEL_SAMPLES || cores < 2 ? 0
                     : cores > CHUNK_THREADS                            ? CHUNK_THREADS - 1
                                                                        : (size_t)cores - 1;
    pthread_t t[CHUNK_THREADS];
    size_t started = 0;
    for (size_t k = 0; k < helpers; k++)
        started += pthread_create(&t[started], NULL, chunk_worker, &j) == 0;
    chunk_worker(&j); /* also alone when no helper could start */
    for (size_t k = 0; k < started; k++)
        pthread_join(t[k], NULL);
    return out;
}

/* The string id of an interned C string of h. */
static uint32_t str_id(kiln_head_t *h, const char *s)
{
    return kiln_head__intern_str(h, s, strlen(s));
}

/* The index: series labels, their profiles (time, sample count) and where
 * their chunk is in `samples`. Writes the chunks (encoded in parallel) to
 * samples in series order. */
static void write_index(kiln_head_t *h, uint32_t version, kiln_buf *index, kiln_buf *samples)
{
    kiln_buf *chunks = write_chunks(h, version);
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    put_uv(&raw, h->n_series);
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        put_uv(&raw, s->n_labels);
        for (uint32_t j = 0; j < s->n_labels; j++) {
            put_uv(&raw, str_id(h, s->labels[j].name));
            put_uv(&raw, str_id(h, s->labels[j].value));
        }
        put_uv(&raw, s->n_profiles);
        int64_t prev = 0;
        for (size_t j = 0; j < s->n_profiles; j++) {
            const hprofile *p = &h->profiles[s->profiles[j]];
            put_sv(&raw, p->time_ms - prev);
            put_uv(&raw, p->n);
            put_sv(&raw, p->total);
            put_uv(&raw, p->id);
            prev = p->time_ms;
        }
        put_uv(&raw, samples->len);
        put_uv(&raw, chunks[i].len);
        kiln_buf_append(samples, chunks[i].ptr ? chunks[i].ptr : "", chunks[i].len);
        kiln_buf_free(&chunks[i]);
    }
    free(chunks);
    put_section(index, &raw);
    kiln_buf_free(&raw);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The index's second section: per series (index order), its samples summed
 * per stack node over all its profiles, nodes ascending (`count`, then
 * `node` delta-coded and `sum` signed; sums of 0 left out). A query covering
 * a series' whole time range adds these instead of reading its chunk. One
 * dense sum array serves every series: `stamp` tells a node's first sample
 * in the current series, so the cost is the samples, not series x nodes. */
static void write_aggregates(const kiln_head_t *h, kiln_buf *index)
{
    int64_t *sum = kiln_xmalloc((h->n_nodes + 1) * sizeof(*sum));
    uint32_t *stamp = kiln_xcalloc(h->n_nodes + 1, sizeof(*stamp));
    uint32_t *touched = NULL;
    size_t cap = 0;
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        size_t n = 0;
        for (size_t j = 0; j < s->n_profiles; j++) {
            const hprofile *p = &h->profiles[s->profiles[j]];
            for (size_t k = p->off; k < p->off + p->n; k++) {
                uint32_t node = h->s_node[k];
                if (stamp[node] != (uint32_t)i + 1) {
                    stamp[node] = (uint32_t)i + 1;
                    sum[node] = 0;
                    KILN_GROW(touched, cap, n + 1);
                    touched[n++] = node;
                }
                sum[node] = kiln_add_wrap(sum[node], h->s_value[k]);
            }
        }
        if (n > 1)
            qsort(touched, n, sizeof(*touched), cmp_u32);
        size_t nonzero = 0;
        for (size_t k = 0; k < n; k++)
            nonzero += sum[touched[k]] != 0;
        put_uv(&raw, nonzero);
        uint32_t prev = 0;
        for (size_t k = 0; k < n; k++) {
            if (sum[touched[k]] == 0)
                continue;
            put_uv(&raw, touched[k] - prev);
            put_sv(&raw, sum[touched[k]]);
            prev = touched[k];
        }
    }
    put_section(index, &raw);
    kiln_buf_free(&raw);
    free(touched);
    free(stamp);
    free(sum);
}

static void fill_meta(const kiln_head_t *h, uint32_t version, Block__V1__BlockMeta *m,
                      Block__V1__BlockStats *st)
{
    m->min_time = m->max_time = 0;
    for (size_t i = 0; i < h->n_series; i++) {
        const hseries *s = &h->series[i];
        if (s->n_profiles == 0)
            continue;
        if (m->min_time == 0 || s->min_ms < m->min_time)
            m->min_time = s->min_ms;
        if (s->max_ms > m->max_time)
            m->max_time = s->max_ms;
    }
    st->num_series = h->n_series;
    st->num_profiles = h->n_profiles;
    st->num_samples = h->n_samples;
    m->stats = st;
    m->version = (int32_t)version;
}

static kiln_status put_object(kiln_objstore_t *s, const char *prefix, const char *name,
                              const kiln_buf *data, kiln_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", prefix, name);
    return kiln_objstore_put(s, path, data->ptr ? data->ptr : "", data->len, err);
}

kiln_status kiln_block_write_version(kiln_objstore_t *s, const char *tenant, kiln_head_t *h,
                                     const Block__V1__BlockMeta *meta, uint32_t version,
                                     char ulid_out[KILN_ULID_LEN + 1], kiln_err *err)
{
    kiln_buf files[3]; /* symbols, index, samples */
    for (int i = 0; i < 3; i++)
        kiln_buf_init(&files[i], 0);
    pthread_rwlock_rdlock(&h->lock);
    write_strings(h, &files[0]);
    write_functions_mappings(h, &files[0]);
    write_locations_stacks(h, &files[0]);
    write_index(h, version, &files[1], &files[2]);
    write_aggregates(h, &files[1]);
    Block__V1__BlockMeta m = *meta;
    Block__V1__BlockStats st = BLOCK__V1__BLOCK_STATS__INIT;
    fill_meta(h, version, &m, &st);
    pthread_rwlock_unlock(&h->lock);

    char ulid[KILN_ULID_LEN + 1], prefix[512];
    kiln_ulid(m.max_time, ulid);
    snprintf(prefix, sizeof(prefix), "%s/blocks/%s/", tenant, ulid);
    static const char *names[] = {"symbols", "index", "samples"};
    Block__V1__BlockFile f[3], *fp[3];
    for (int i = 0; i < 3; i++) {
        block__v1__block_file__init(&f[i]);
        f[i].rel_path = (char *)names[i];
        f[i].size_bytes = files[i].len;
        fp[i] = &f[i];
        st.num_bytes += files[i].len;
    }
    m.ulid = ulid;
    m.files = fp;
    m.n_files = 3;
    kiln_status rc = KILN_OK;
    for (int i = 2; i >= 0 && rc == KILN_OK; i--)
        rc = put_object(s, prefix, names[i], &files[i], err);
    kiln_buf json;
    kiln_buf_init(&json, 0);
    kiln_pbjson_encode(&m.base, &json);
    if (rc == KILN_OK)
        rc = put_object(s, prefix, "meta.json", &json, err); /* last: the block now exists */
    kiln_buf_free(&json);
    for (int i = 0; i < 3; i++)
        kiln_buf_free(&files[i]);
    if (rc == KILN_OK)
        memcpy(ulid_out, ulid, sizeof(ulid));
    return rc;
}

/* ---- reading --------------------------------------------------------------------- */

static bool read_strings(kiln_head_t *h, rd *r)
{
    size_t n = get_count(r);
    KILN_GROW(h->strs, h->cap_strs, n + 1);
    for (size_t i = 0; i < n && !r->bad; i++) {
        size_t len = get_count(r);
        h->strs[i].ptr = kiln_arena_strndup(h->mem, (const char *)r->p, len);
        h->strs[i].len = (uint32_t)len;
        r->p += len;
    }
    h->n_strs = n;
    return !r->bad;
}

static bool read_functions_mappings(kiln_head_t *h, rd *r)
{
    size_t n = get_count(r);
    KILN_GROW(h->funcs, h->cap_funcs, n + 1);
    for (size_t i = 0; i < n && !r->bad; i++) {
        hfunc *f = &h->funcs[i];
        f->name = (uint32_t)get_uv(r), f->system_name = (uint32_t)get_uv(r);
        f->filename = (uint32_t)get_uv(r), f->pad = 0, f->start_line = get_sv(r);
        r->bad |= f->name >= h->n_strs || f->system_name >= h->n_strs || f->filename >= h->n_strs;
    }
    h->n_funcs = n;
    n = get_count(r);
    KILN_GROW(h->maps, h->cap_maps, n + 1);
    for (size_t i = 0; i < n && !r->bad; i++) {
        hmap *m = &h->maps[i];
        m->start = get_uv(r), m->limit = get_uv(r), m->offset = get_uv(r);
        m->filename = (uint32_t)get_uv(r), m->build_id = (uint32_t)get_uv(r);
        r->bad |= m->filename >= h->n_strs || m->build_id >= h->n_strs;
    }
    h->n_maps = n;
    return !r->bad;
}

/* A 1-based reference (0 = none) checked against n. */
static uint32_t get_ref(rd *r, size_t n)
{
    uint64_t v = get_uv(r);
    if (v > n)
        r->bad = 1;
    return v == 0 ? KILN_HEAD_NONE : (uint32_t)(v - 1);
}

static bool read_locations_stacks(kiln_head_t *h, rd *r)
{
    size_t n = get_count(r);
    KILN_GROW(h->locs, h->cap_locs, n + 1);
    for (size_t i = 0; i < n && !r->bad; i++) {
        hloc *l = &h->locs[i];
        l->mapping = get_ref(r, h->n_maps);
        l->address = get_uv(r);
        l->n_lines = (uint32_t)get_count(r);
        l->line_off = (uint32_t)h->n_lines;
        KILN_GROW(h->lines, h->cap_lines, h->n_lines + l->n_lines + 1);
        for (uint32_t j = 0; j < l->n_lines && !r->bad; j++) {
            hline *ln = &h->lines[h->n_lines++];
            ln->func = get_ref(r, h->n_funcs);
            ln->pad = 0;
            ln->line = get_sv(r);
        }
    }
    h->n_locs = n;
    n = get_count(r); /* the root included */
    KILN_GROW(h->node_parent, h->cap_nodes, n + 1);
    KILN_GROW(h->node_loc, h->cap_nodes2, n + 1);
    for (size_t i = 1; i < n && !r->bad; i++) {
        uint64_t dist = get_uv(r), loc = get_uv(r);
        r->bad |= dist == 0 || dist > i || loc >= h->n_locs;
        h->node_parent[i] = (uint32_t)(i - dist);
        h->node_loc[i] = (uint32_t)loc;
    }
    h->n_nodes = n > 1 ? n : 1;
    return !r->bad;
}

/* Series, their profiles and chunk locations; samples stay in the file. */
static bool read_index(kiln_block_t *b, rd *r)
{
    kiln_head_t *h = b->head;
    size_t n = get_count(r);
    KILN_GROW(h->series, h->cap_series, n + 1);
    b->chunk_off = kiln_xcalloc(n + 1, sizeof(uint64_t));
    b->chunk_len = kiln_xcalloc(n + 1, sizeof(uint32_t));
    for (size_t i = 0; i < n && !r->bad; i++) {
        hseries *s = &h->series[i];
        memset(s, 0, sizeof(*s));
        h->n_series = i + 1;
        s->n_labels = (uint32_t)get_count(r);
        s->labels = kiln_arena_alloc(h->mem, (s->n_labels + 1) * sizeof(kiln_label_t));
        for (uint32_t j = 0; j < s->n_labels && !r->bad; j++) {
            uint64_t k = get_uv(r), v = get_uv(r);
            r->bad |= k >= h->n_strs || v >= h->n_strs;
            s->labels[j] =
                (kiln_label_t){r->bad ? "" : h->strs[k].ptr, r->bad ? "" : h->strs[v].ptr};
        }
        size_t np = get_count(r), off = 0;
        int64_t t = 0;
        for (size_t j = 0; j < np && !r->bad; j++) {
            t += get_sv(r);
            uint32_t cnt = (uint32_t)get_uv(r);
            int64_t total = get_sv(r);
            uint64_t id = get_uv(r);
            KILN_GROW(h->profiles, h->cap_profiles, h->n_profiles + 1);
            h->profiles[h->n_profiles] = (hprofile){(uint32_t)i, cnt, t, off, total, id};
            kiln_head__grow_small(h, (void **)&s->profiles, &s->cap_profiles, s->n_profiles + 1,
                                  sizeof(*s->profiles));
            s->profiles[s->n_profiles++] = (uint32_t)h->n_profiles++;
            s->min_ms = j == 0 || t < s->min_ms ? t : s->min_ms;
            s->max_ms = j == 0 || t > s->max_ms ? t : s->max_ms;
            off += cnt;
        }
        h->n_samples += off;
        b->chunk_off[i] = get_uv(r);
        b->chunk_len[i] = (uint32_t)get_uv(r);
        if (!r->bad)
            kiln_head__post_series(h, (uint32_t)i);
    }
    return !r->bad;
}

/* Skips n varints: only their last bytes are below 0x80. */
static void skip_uvs(rd *r, size_t n)
{
    const uint8_t *p = r->p;
    while (n > 0 && p < r->end)
        n -= *p++ < 0x80;
    r->p = p;
    r->bad |= n > 0;
}

static void free_aggregates(kiln_head_t *h)
{
    for (size_t i = 0; i < h->n_series; i++)
        kiln_head__hagg_free(h->agg[i]);
    free(h->agg);
    h->agg = NULL;
}

/* One series' sums: n (node delta, value) pairs. */
static hagg *read_sums(rd *r, size_t n, uint32_t n_nodes)
{
    hagg *g = kiln_xcalloc(1, sizeof(*g));
    g->node = kiln_xmalloc((n + 1) * sizeof(*g->node));
    g->value = kiln_xmalloc((n + 1) * sizeof(*g->value));
    uint32_t prev = 0;
    for (size_t k = 0; k < n && !r->bad; k++) {
        prev += (uint32_t)get_uv(r);
        r->bad |= prev >= n_nodes;
        g->node[k] = prev;
        g->value[k] = get_sv(r);
    }
    g->n = (uint32_t)n;
    return g;
}

/* The index's optional second section (blocks written before it have
 * none): every series' per-node sums, installed as the head's aggregate
 * cache so that no query of the whole series decodes its chunk. Taken
 * from the process's budget series by series, so that a block past it
 * holds no more than one series' sums before it lets them all go (the
 * chunks answer then) and skips the rest. */
static bool read_aggregates(kiln_block_t *b, rd *r)
{
    kiln_head_t *h = b->head;
    size_t bytes = kiln_head__agg_array_bytes(h);
    bool keep = kiln_head__sums_reserve(bytes);
    if (keep)
        h->agg = kiln_xcalloc(h->n_series + 1, sizeof(*h->agg));
    for (size_t i = 0; i < h->n_series && !r->bad; i++) {
        size_t n = get_count(r);
        if (!keep) {
            skip_uvs(r, 2 * n);
            continue;
        }
        hagg *g = read_sums(r, n, h->n_nodes);
        h->agg[i] = g;
        size_t more = kiln_head__hagg_bytes(g);
        if ((keep = kiln_head__sums_reserve(more)))
            bytes += more;
    }
    if (keep && !r->bad) {
        h->agg_reserved = bytes;
        return true;
    }
    if (h->agg != NULL) { /* past the budget, or a bad section that fails open */
        free_aggregates(h);
        kiln_head__sums_release(bytes);
    }
    return !r->bad;
}

/* Decodes the node column of one profile's cnt samples into n. */
static void get_nodes(rd *r, uint32_t cnt, uint32_t n_nodes, uint32_t *n)
{
    uint32_t prev = 0;
    for (uint32_t q = 0; q < cnt && !r->bad; q++) {
        prev += (uint32_t)get_uv(r);
        n[q] = prev;
        r->bad |= prev >= n_nodes;
    }
}

/* The trace column after the flags byte: the chunk's trace table, then
 * each of the total samples' traces (0 = none, else 1 + a table index). */
static void read_traces(rd *r, size_t total, hcols *c)
{
    size_t n = get_count(r);
    r->bad |= n > (size_t)(r->end - r->p) / 16;
    if (r->bad)
        return;
    c->traces = kiln_xmalloc((n + 1) * sizeof(*c->traces));
    for (size_t i = 0; i < n; i++, r->p += 16)
        c->traces[i] = kiln_trace_id_get(r->p);
    c->n_traces = n;
    c->trace = kiln_xmalloc((total + 1) * sizeof(*c->trace));
    for (size_t k = 0; k < total && !r->bad; k++) {
        uint64_t t = get_uv(r);
        r->bad |= t > n;
        c->trace[k] = (uint32_t)t;
    }
}

/* The columns after the values: in a version 1 block a span column when
 * bytes are left; from version 2 a flags byte naming the span and trace
 * columns that follow. Every byte must be used. */
static void read_id_columns(rd *r, uint32_t version, size_t total, hcols *c)
{
    unsigned flags = 0;
    if (version < 2)
        flags = r->p < r->end ? CHUNK_SPANS : 0;
    else if (!r->bad && r->p < r->end)
        flags = *r->p++;
    else
        r->bad = 1;
    r->bad |= (flags & ~(CHUNK_SPANS | CHUNK_TRACES)) != 0;
    if (!r->bad && (flags & CHUNK_SPANS)) {
        c->span = kiln_xmalloc((total + 1) * sizeof(*c->span));
        for (size_t k = 0; k < total && !r->bad; k++)
            c->span[k] = get_uv(r);
    }
    if (!r->bad && (flags & CHUNK_TRACES))
        read_traces(r, total, c);
    r->bad |= r->p != r->end;
}

/* Decompresses one series' chunk into its columns; profiles outside
 * [start_ms, end_ms] are skipped, not decoded. */
static kiln_status decode_chunk(kiln_block_t *b, uint32_t sid, int64_t start_ms, int64_t end_ms,
                                hcols *out, kiln_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%ssamples", b->prefix);
    kiln_buf data;
    kiln_buf_init(&data, 0);
    kiln_status st =
        kiln_objstore_get_range(b->store, path, b->chunk_off[sid], b->chunk_len[sid], &data, err);
    if (st == KILN_NOT_FOUND || st == KILN_OUT_OF_RANGE) /* shorter than its index says */
        st = kiln_err_set(err, KILN_DATA_LOSS, "block %s: series %u chunk is missing", path, sid);
    uint8_t *raw = NULL;
    size_t raw_len = 0, off = 0;
    if (st == KILN_OK)
        st = get_section((const uint8_t *)data.ptr, data.len, &off, &raw, &raw_len, path, err);
    kiln_buf_free(&data);
    if (st != KILN_OK)
        return st;
    const kiln_head_t *h = b->head;
    const hseries *s = &h->series[sid];
    size_t total = 0;
    for (size_t j = 0; j < s->n_profiles; j++)
        total += h->profiles[s->profiles[j]].n;
    uint32_t *n = kiln_xmalloc((total + 1) * sizeof(*n));
    int64_t *v = kiln_xmalloc((total + 1) * sizeof(*v));
    rd r = {raw, raw + raw_len, 0};
    size_t k = 0;
    for (size_t j = 0; j < s->n_profiles && !r.bad; j++) { /* the node column */
        const hprofile *p = &h->profiles[s->profiles[j]];
        if (kiln_head__in_range(p->time_ms, start_ms, end_ms))
            get_nodes(&r, p->n, (uint32_t)h->n_nodes, n + k);
        else
            skip_uvs(&r, p->n);
        k += p->n;
    }
    k = 0;
    for (size_t j = 0; j < s->n_profiles && !r.bad; j++) { /* the value column */
        const hprofile *p = &h->profiles[s->profiles[j]];
        int64_t g = (int64_t)get_uv(&r);
        if (kiln_head__in_range(p->time_ms, start_ms, end_ms))
            for (uint32_t q = 0; q < p->n && !r.bad; q++)
                v[k + q] = get_sv(&r) * g;
        else
            skip_uvs(&r, p->n);
        k += p->n;
    }
    hcols c = {n, v, NULL, NULL, NULL, 0};
    read_id_columns(&r, b->version, total, &c);
    free(raw);
    if (r.bad) {
        kiln_head__cols_free(&c);
        return kiln_err_set(err, KILN_DATA_LOSS, "block %s: series %u chunk is malformed", path,
                            sid);
    }
    *out = c;
    return KILN_OK;
}

/* The head loader: a chunk that is missing, short, fails its checksum or
 * does not decode marks the block damaged (DATA_LOSS); a store that did
 * not answer (UNAVAILABLE and the like) does not: the next read may work. */
static kiln_status load_chunk(void *ctx, uint32_t sid, int64_t start_ms, int64_t end_ms, hcols *out,
                              kiln_err *err)
{
    kiln_block_t *b = ctx;
    kiln_err why = {KILN_OK, ""};
    kiln_status st = decode_chunk(b, sid, start_ms, end_ms, out, &why);
    if (st == KILN_DATA_LOSS && !atomic_exchange(&b->damage_claimed, true)) {
        snprintf(b->damage, sizeof(b->damage), "%s", why.msg);
        atomic_store_explicit(&b->damaged, true, memory_order_release);
    }
    return st == KILN_OK ? st : kiln_err_set(err, st, "%s", why.msg);
}

bool kiln_block_damaged(const kiln_block_t *b, kiln_err *why)
{
    if (!atomic_load_explicit(&b->damaged, memory_order_acquire))
        return false;
    kiln_err_set(why, KILN_DATA_LOSS, "%s", b->damage);
    return true;
}

static kiln_status get_object(kiln_block_t *b, const char *name, kiln_buf *out, kiln_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", b->prefix, name);
    return kiln_objstore_get(b->store, path, out, err);
}

/* Parses the file's sections in order with the given readers; the ones
 * past the first n_required only when the file has more bytes (sections
 * added later, absent from older blocks). */
static kiln_status parse_file(kiln_block_t *b, const char *name, kiln_buf *data,
                              bool (*const *fn)(kiln_block_t *, rd *), size_t n_fn,
                              size_t n_required, kiln_err *err)
{
    size_t off = 0;
    for (size_t i = 0; i < n_fn && (i < n_required || off < data->len); i++) {
        uint8_t *raw;
        size_t raw_len;
        kiln_status st =
            get_section((const uint8_t *)data->ptr, data->len, &off, &raw, &raw_len, name, err);
        if (st != KILN_OK)
            return st;
        rd r = {raw, raw + raw_len, 0};
        bool ok = fn[i](b, &r);
        free(raw);
        if (!ok)
            return kiln_err_set(err, KILN_DATA_LOSS, "block %s%s: section %zu is malformed",
                                b->prefix, name, i);
    }
    return KILN_OK;
}

static bool rd_strings(kiln_block_t *b, rd *r)
{
    return read_strings(b->head, r);
}
static bool rd_funcs(kiln_block_t *b, rd *r)
{
    return read_functions_mappings(b->head, r);
}
static bool rd_locs(kiln_block_t *b, rd *r)
{
    return read_locations_stacks(b->head, r);
}

/* Checks that every series chunk the index locates lies within the
 * samples object, without reading it: on an object store a reader fetches
 * only the chunks a query needs, and load_chunk verifies each checksum
 * then. */
static kiln_status check_samples(kiln_block_t *b, kiln_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%ssamples", b->prefix);
    uint64_t size = 0;
    kiln_status st = kiln_objstore_size(b->store, path, &size, err);
    if (st == KILN_NOT_FOUND)
        return kiln_err_set(err, KILN_DATA_LOSS, "block %s: samples is missing", b->prefix);
    for (size_t i = 0; st == KILN_OK && i < b->head->n_series; i++) {
        uint64_t off = b->chunk_off[i];
        uint32_t len = b->chunk_len[i];
        if (off > size || len > size - off || len < SEC_HDR)
            return kiln_err_set(err, KILN_DATA_LOSS, "block %ssamples: truncated (series %zu)",
                                b->prefix, i);
    }
    return st;
}

static kiln_status open_files(kiln_block_t *b, kiln_err *err)
{
    static bool (*const sym[])(kiln_block_t *, rd *) = {rd_strings, rd_funcs, rd_locs};
    static bool (*const idx[])(kiln_block_t *, rd *) = {read_index, read_aggregates};
    kiln_buf data;
    kiln_buf_init(&data, 0);
    kiln_status st = get_object(b, "meta.json", &data, err);
    if (st == KILN_OK) {
        ProtobufCMessage *m;
        st = kiln_pbjson_decode(&block__v1__block_meta__descriptor, data.ptr, data.len, b->mem, &m,
                                err);
        b->meta = (Block__V1__BlockMeta *)m;
        if (st != KILN_OK)
            st = KILN_DATA_LOSS;
    }
    if (st == KILN_OK) {
        b->version = b->meta->version < 1 ? 1 : (uint32_t)b->meta->version;
        if (b->meta->version > BLOCK_VERSION) /* a newer build wrote it: never guess */
            st = kiln_err_set(err, KILN_FAILED_PRECONDITION,
                              "block %s: version %u is newer than this build reads (%d)", b->prefix,
                              (unsigned)b->meta->version, BLOCK_VERSION);
    }
    const char *files[] = {"symbols", "index"};
    for (int i = 0; i < 2 && st == KILN_OK; i++) {
        data.len = 0;
        st = get_object(b, files[i], &data, err);
        if (st == KILN_NOT_FOUND)
            st = kiln_err_set(err, KILN_DATA_LOSS, "block %s: %s is missing", b->prefix, files[i]);
        if (st == KILN_OK && i == 0)
            st = parse_file(b, "symbols", &data, sym, 3, 3, err);
        else if (st == KILN_OK && i == 1)
            st = parse_file(b, "index", &data, idx, 2, 1, err);
    }
    kiln_buf_free(&data);
    return st == KILN_OK ? check_samples(b, err) : st;
}

kiln_status kiln_block_open(kiln_objstore_t *s, const char *tenant, const char *ulid,
                            kiln_block_t **out, kiln_err *err)
{
    kiln_block_t *b = kiln_xcalloc(1, sizeof(*b));
    b->store = s;
    b->mem = kiln_arena_create(0);
    b->prefix = kiln_arena_printf(b->mem, "%s/blocks/%s/", tenant, ulid);
    b->head = kiln_head_create();
    kiln_status st = open_files(b, err);
    if (st != KILN_OK) {
        kiln_block_close(b);
        return st;
    }
    b->head->loader = load_chunk;
    b->head->loader_ctx = b;
    *out = b;
    return KILN_OK;
}

void kiln_block_close(kiln_block_t *b)
{
    if (b == NULL)
        return;
    kiln_head_destroy(b->head);
    free(b->chunk_off);
    free(b->chunk_len);
    kiln_arena_destroy(b->mem);
    free(b);
}

kiln_head_t *kiln_block_head(kiln_block_t *b)
{
    return b->head;
}

const Block__V1__BlockMeta *kiln_block_meta(const kiln_block_t *b)
{
    return b->meta;
}

bool kiln_block_meta_name(const char *name, size_t *tenant_len, char ulid[KILN_ULID_LEN + 1])
{
    const char *b = strstr(name, "/blocks/");
    size_t len = strlen(name);
    if (b == NULL || len < 10 || strcmp(name + len - 10, "/meta.json") != 0 ||
        (size_t)(name + len - 10 - (b + 8)) != KILN_ULID_LEN)
        return false;
    *tenant_len = (size_t)(b - name);
    memcpy(ulid, b + 8, KILN_ULID_LEN);
    ulid[KILN_ULID_LEN] = '\0';
    return true;
}

kiln_status kiln_block_delete(kiln_objstore_t *s, const char *tenant, const char *ulid,
                              kiln_err *err)
{
    static const char *names[] = {"meta.json", "index", "symbols", "samples"};
    kiln_status st = KILN_OK;
    for (size_t i = 0; i < 4 && st == KILN_OK; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/blocks/%s/%s", tenant, ulid, names[i]);
        st = kiln_objstore_delete(s, path, err);
    }
    return st;
}

kiln_status kiln_block_write(kiln_objstore_t *s, const char *tenant, kiln_head_t *h,
                             const Block__V1__BlockMeta *meta, char ulid_out[KILN_ULID_LEN + 1],
                             kiln_err *err)
{
    return kiln_block_write_version(s, tenant, h, meta, BLOCK_VERSION, ulid_out, err);
}
