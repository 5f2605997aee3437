/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/pprof: wire decoding (hand-made bytes, every prefix
 * and byte flip of a real profile), validation, normalisation and encoding,
 * and the whole pipeline on every pprof file in shared testdata. */
#include <dirent.h>
#include <libdeflate.h>
#include <sys/stat.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "check.h"
#include "pprof.h"
#include "xmalloc.h"

/* The pprof files of shared testdata (see the MANIFEST.md files there);
 * some are gzipped whatever their names say, some are not. */
static const char *const pprof_files[] = {
    "datadog-go-profiler-notes/1.net.http.pprof.goroutine.debug0.pb.gz",
    "datadog-go-profiler-notes/2.pprof.lookup.goroutine.debug0.pb.gz",
    "datadog-go-profiler-notes/block.pb.gz",
    "datadog-go-profiler-notes/memory-profiler.pprof",
    "datadog-go-profiler-notes/cpu-profiler-labels.pprof",
    "datadog-go-profiler-notes/cpu-rate.pprof",
    "datadog-go-profiler-notes/benchmark.cpu.pb.gz",
    "gdu/default.pgo",
    "google-pprof/sample.cpu",
    "grafana-pyroscope/cpu.pb.gz",
    "grafana-pyroscope/go.cpu.labels.pprof",
    "grafana-pyroscope/single_group_with_optional_span_id.pb.gz",
    "grafana-pyroscope/heap",
    "grafana-pyroscope/profile_uncompressed",
    "grafana-pyroscope/req_2.pprof",
    "grafana-pyroscope/req_4.pprof",
    "grafana-pyroscope/req_5.pprof",
    "grafana-pyroscope/profile_java",
    "grafana-pyroscope/profile_python",
    "grafana-pyroscope/profile_ruby",
    "grafana-pyroscope/profile_rust",
    "grafana-pyroscope/profile_nodejs",
    "grafana-pyroscope/nodejs-heap.pb.gz",
    "grafana-pyroscope/cpu-js.pb.gz",
    "grafana-pyroscope/heap-js.pprof",
    "grafana-pyroscope/dotnet.labels.pprof",
    "grafana-pyroscope/cpu-unknown.pb.gz",
    "grafana-pyroscope/heap_go_truncated_1.pb.gz",
    "grafana-pyroscope/cpu_go_truncated_1.pb.gz",
    "grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz",
    "grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.alloc_in_new_tlab_bytes.pb.gz",
    "grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.mutex_delay.pb.gz",
    "grafana-pyroscope/jfr-dump2.memory_live.pb.gz",
    "parca/alloc_space_delta.pb.gz",
    "parca/fgprof.pb.gz",
    "parca/profile-with-labels.pb.gz",
    "parca/node-profile.pb.gz",
    "parca/normal-cpu.stripped.pprof",
    "parca/no-python.pb.gz",
    "parca/fib.pb.gz",
    "parca/1644509272337470000.pb.gz",
    "parca/1644509275338070000.pb.gz",
    "parca/1644509278338696000.pb.gz",
    "parca/1644509296350592000.pb.gz",
    "speedscope/simple.prof",
    "hard/datadog-go-profiler-notes/cpu-max-stack-depth.pprof",
    "hard/datadog-go-profiler-notes/block.pb.gz",
    "hard/google-pprof/large.cpu",
    "hard/google-pprof/go.nomappings.crash",
    "hard/google-pprof/cppbench.cpu_no_samples_type",
    "hard/grafana-pyroscope/heap_go_truncated_3.pb.gz",
    "hard/grafana-pyroscope/heap_delta",
    "hard/grafana-pyroscope/no_addr_no_line.pb.gz",
    "hard/grafana-pyroscope/pyspy-1.pb.gz",
    "hard/grafana-pyroscope/dotnet-pprof-73.pb.gz",
    "hard/grafana-pyroscope/req_3.pprof",
    "hard/grafana-pyroscope/jfr-dump2.wall.pb.gz",
    "hard/grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.block_contentions.pb.gz",
    "hard/parca/1644509299337903000.pb.gz",
    "hard/parca/alloc_objects.pb.gz",
    "hard/parca/profile.pb.gz",
    "hard/parca/without-dwarf-cpu.stripped.pprof",
};

/* Malformed pprof, legacy (pre-protobuf) profiles and fuzz leftovers. */
static const char *const rejected_files[] = {
    "hard/grafana-pyroscope/invalid_utf8.pb.gz",
    "google-pprof/cppbench.cpu",
    "google-pprof/gobench.heap",
    "hard/google-pprof/java.cpu",
    "hard/google-pprof/go.godoc.thread",
    "hard/google-pprof/fuzz-crasher-7e3c92482f6f39fc502b822ded792c589849cca8",
    "hard/google-pprof/fuzz-corpus-empty",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------------- */

/* Gunzips data (taking ownership) if it starts with the gzip magic, growing
 * the output until it fits; returns the raw bytes or NULL if corrupt. */
static unsigned char *gunzip_maybe(unsigned char *in, size_t n, size_t *out_len)
{
    if (n < 2 || in[0] != 0x1f || in[1] != 0x8b) {
        *out_len = n;
        return in;
    }
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    unsigned char *out = NULL;
    for (size_t cap = n * 4 + 4096; cap < ((size_t)1 << 31); cap *= 2) {
        out = kiln_xmalloc(cap);
        enum libdeflate_result r = libdeflate_gzip_decompress(d, in, n, out, cap, out_len);
        if (r == LIBDEFLATE_SUCCESS)
            break;
        free(out);
        out = NULL;
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
            break;
    }
    libdeflate_free_decompressor(d);
    free(in);
    return out;
}

/* Reads and gunzips $KILN_TESTDATA/rel; NULL (and a failed CHECK) if absent. */
static unsigned char *load(const char *rel, size_t *len)
{
    size_t n = 0;
    unsigned char *raw = check_read_testdata(rel, &n);
    if (raw == NULL) {
        printf("  cannot read %s\n", rel);
        CHECK(raw != NULL);
        return NULL;
    }
    unsigned char *data = gunzip_maybe(raw, n, len);
    if (data == NULL) {
        printf("  cannot gunzip %s\n", rel);
        CHECK(data != NULL);
    }
    return data;
}

/* Per-type sums of values over samples, wrapping like normalize does. */
static void sums(const kiln_pprof_t *p, uint64_t *out)
{
    for (size_t t = 0; t < p->n_sample_types; t++)
        out[t] = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        for (uint32_t t = 0; t < s->n_values && t < p->n_sample_types; t++)
            out[t] += (uint64_t)p->values[s->value_off + t];
    }
}

/* Runs decode -> validate -> normalize -> encode; returns the first failing
 * status. Used where only robustness matters. */
/* decode, then validate and normalize as two calls (two_calls) or as one
 * kiln_pprof_validate_normalize; the normalised encoding goes to out. */
static kiln_status pipeline_into(const uint8_t *data, size_t len, bool two_calls, kiln_buf *out,
                                 kiln_err *err)
{
    kiln_arena_t *a = kiln_arena_create(64u << 20);
    kiln_pprof_t p;
    kiln_status st = kiln_pprof_decode(a, data, len, &p, err);
    if (st == KILN_OK && two_calls && (st = kiln_pprof_validate(&p, err)) == KILN_OK)
        st = kiln_pprof_normalize(a, &p, 0, err);
    else if (st == KILN_OK && !two_calls)
        st = kiln_pprof_validate_normalize(a, &p, 0, err);
    if (st == KILN_OK)
        CHECK(kiln_pprof_encode(&p, true, out));
    kiln_arena_destroy(a);
    return st;
}

/* The whole pipeline both ways, which must agree on the outcome, the error
 * and the normalised bytes. */
static kiln_status pipeline(const uint8_t *data, size_t len, kiln_err *err)
{
    kiln_buf b1, b2;
    kiln_buf_init(&b1, 0);
    kiln_buf_init(&b2, 0);
    kiln_err err2 = {0};
    kiln_status st = pipeline_into(data, len, true, &b1, err);
    kiln_status st2 = pipeline_into(data, len, false, &b2, &err2);
    CHECK_EQ(st2, st);
    if (st != KILN_OK)
        CHECK_STR(err2.msg, err->msg);
    CHECK(b1.len == b2.len && (b1.len == 0 || memcmp(b1.ptr, b2.ptr, b1.len) == 0));
    kiln_buf_free(&b1);
    kiln_buf_free(&b2);
    return st;
}

/* Every reference of a normalised profile is an index in range. */
static void check_normalized(const kiln_pprof_t *p, const char *name)
{
    int bad = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        bool zero = true;
        bad += s->n_values != p->n_sample_types;
        for (uint32_t j = 0; j < s->n_locs; j++)
            bad += p->locs[s->loc_off + j] >= p->n_locations;
        for (uint32_t t = 0; t < s->n_values; t++)
            zero = zero && p->values[s->value_off + t] == 0;
        bad += zero;
    }
    for (size_t i = 0; i < p->n_locations; i++) {
        const kiln_pprof_location *l = &p->locations[i];
        bad += l->mapping >= p->n_mappings || (l->n_lines == 0 && l->address == 0);
        for (uint32_t j = 0; j < l->n_lines; j++) {
            uint64_t f = p->lines[l->line_off + j].function;
            bad += f != KILN_PPROF_NONE && f >= p->n_functions;
        }
    }
    if (bad)
        printf("  %s: %d bad references after normalize\n", name, bad);
    CHECK_EQ(bad, 0);
}

/* ---- wire-format builder for hand-made inputs ------------------------------------- */

static void pb_varint(kiln_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        kiln_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    kiln_buf_putc(b, (char)v);
}

static void pb_uint(kiln_buf *b, uint32_t field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_bytes(kiln_buf *b, uint32_t field, const void *p, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    kiln_buf_append(b, p, n);
}

static void pb_str(kiln_buf *b, uint32_t field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* Appends sub as submessage field, then frees sub. */
static void pb_sub(kiln_buf *b, uint32_t field, kiln_buf *sub)
{
    pb_bytes(b, field, sub->ptr, sub->len);
    kiln_buf_free(sub);
    kiln_buf_init(sub, 0);
}

/* Unknown fields of every wire type, including nested groups. */
static void pb_unknown(kiln_buf *b)
{
    pb_uint(b, 100, 12345);
    pb_varint(b, 101 << 3 | 1);
    kiln_buf_append(b, "12345678", 8);
    pb_varint(b, 102 << 3 | 5);
    kiln_buf_append(b, "1234", 4);
    pb_str(b, 103, "junk");
    pb_varint(b, 104 << 3 | 3);
    pb_uint(b, 1, 7);
    pb_varint(b, 105 << 3 | 3);
    pb_str(b, 2, "inner");
    pb_varint(b, 105 << 3 | 4);
    pb_varint(b, 104 << 3 | 4);
}

/* A small profile written the way the Go runtime does (string table last,
 * values before location ids, unpacked and packed), with unknown fields. */
static void build_profile(kiln_buf *b)
{
    kiln_buf m;
    kiln_buf_init(&m, 0);
    pb_uint(&m, 1, 1), pb_uint(&m, 2, 2), pb_sub(b, 1, &m); /* samples/count */
    pb_unknown(b);
    pb_uint(&m, 2, 5), pb_unknown(&m);                        /* values: unpacked */
    pb_uint(&m, 1, 20), pb_uint(&m, 1, 10), pb_sub(b, 2, &m); /* stack 20, 10 */
    kiln_buf v;
    kiln_buf_init(&v, 0);
    pb_varint(&v, 3);
    pb_bytes(&m, 2, v.ptr, v.len), kiln_buf_free(&v); /* values: packed */
    kiln_buf_init(&v, 0);
    pb_varint(&v, 20), pb_varint(&v, 10);
    pb_bytes(&m, 1, v.ptr, v.len), kiln_buf_free(&v);
    kiln_buf l;
    kiln_buf_init(&l, 0);
    pb_uint(&l, 1, 3), pb_uint(&l, 2, 4), pb_sub(&m, 3, &l); /* label k=v */
    pb_sub(b, 2, &m);
    pb_uint(&l, 1, 1), pb_uint(&l, 2, 7), pb_sub(&m, 4, &l);
    pb_uint(&m, 1, 10), pb_uint(&m, 3, 0x1000), pb_unknown(&m), pb_sub(b, 4, &m);
    pb_uint(&l, 1, 1), pb_uint(&l, 2, 9), pb_sub(&m, 4, &l);
    pb_uint(&m, 1, 20), pb_uint(&m, 3, 0x2000), pb_sub(b, 4, &m);
    pb_uint(&m, 1, 1), pb_uint(&m, 2, 5), pb_sub(b, 5, &m);
    pb_uint(b, 9, 1234567);
    static const char *const strs[] = {"", "samples", "count", "k", "v", "main"};
    for (size_t i = 0; i < N_OF(strs); i++)
        pb_str(b, 6, strs[i]);
}

/* ---- wire decoding ------------------------------------------------------------------ */

TEST(decode_any_order_and_unknown_fields)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    build_profile(&b);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &p, &err));
    CHECK_EQ(p.n_sample_types, 1);
    CHECK_EQ(p.n_samples, 2);
    CHECK_EQ(p.n_locations, 2);
    CHECK_EQ(p.n_functions, 1);
    CHECK_EQ(p.n_strings, 6);
    CHECK_EQ(p.n_labels, 1);
    CHECK_EQ(p.time_nanos, 1234567);
    CHECK_EQ(p.samples[0].n_locs, 2);
    CHECK_EQ(p.locs[p.samples[0].loc_off], 20);
    CHECK_EQ(p.values[p.samples[0].value_off], 5);
    CHECK_EQ(p.values[p.samples[1].value_off], 3);
    CHECK_EQ(p.locs[p.samples[1].loc_off + 1], 10);
    CHECK_EQ(p.labels[0].key, 3);
    CHECK_EQ(p.locations[1].address, 0x2000);
    CHECK_EQ(p.lines[p.locations[1].line_off].line, 9);
    CHECK(kiln_str_eq(p.strings[5], "main"));
    CHECK_OK(kiln_pprof_validate(&p, &err));
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
    CHECK_EQ(p.n_samples, 2); /* same stack, different labels */
    CHECK_EQ(p.locs[p.samples[0].loc_off], 1);
    kiln_arena_destroy(a);
    kiln_buf_free(&b);
}

/* Decodes bytes that must fail with INVALID_ARGUMENT and an error naming what. */
static void expect_wire_error(const uint8_t *data, size_t len, const char *what)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    kiln_status st = kiln_pprof_decode(a, data, len, &p, &err);
    CHECK_EQ(st, KILN_INVALID_ARGUMENT);
    if (strstr(err.msg, what) == NULL || strstr(err.msg, "offset") == NULL)
        printf("  want \"%s\", got \"%s\"\n", what, err.msg);
    CHECK(strstr(err.msg, what) != NULL);
    kiln_arena_destroy(a);
}

TEST(decode_rejects_malformed_wire)
{
    static const uint8_t trunc_varint[] = {0x48, 0x80};
    static const uint8_t trunc_tag[] = {0x80};
    static const uint8_t past_end[] = {0x0a, 0x05, 0x08};
    static const uint8_t bad_wt[] = {0x0e, 0x00};
    static const uint8_t end_group[] = {0x0c};
    static const uint8_t field0[] = {0x00, 0x01};
    static const uint8_t long_varint[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t overflow[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t mismatch[] = {0x10, 0x01};
    static const uint8_t open_group[] = {0xa3, 0x06, 0x08, 0x01};
    static const uint8_t trunc_fixed[] = {0xa1, 0x06, 1, 2, 3};
    expect_wire_error(trunc_varint, sizeof(trunc_varint), "truncated field 9");
    expect_wire_error(trunc_tag, sizeof(trunc_tag), "truncated tag");
    expect_wire_error(past_end, sizeof(past_end), "length past end");
    expect_wire_error(bad_wt, sizeof(bad_wt), "bad wire type");
    expect_wire_error(end_group, sizeof(end_group), "unmatched end group");
    expect_wire_error(field0, sizeof(field0), "bad tag");
    expect_wire_error(long_varint, sizeof(long_varint), "longer than 10 bytes");
    expect_wire_error(overflow, sizeof(overflow), "longer than 10 bytes");
    expect_wire_error(mismatch, sizeof(mismatch), "wire type 0, want 2");
    expect_wire_error(open_group, sizeof(open_group), "truncated group");
    expect_wire_error(trunc_fixed, sizeof(trunc_fixed), "truncated field 100");
}

/* Appends sub as field 3 or 4 with its tag in a two-byte (non-canonical)
 * varint, then frees sub. */
static void pb_sub_long_tag(kiln_buf *b, uint32_t field, kiln_buf *sub)
{
    uint8_t tag[2] = {(uint8_t)(0x80 | field << 3 | 2), 0x00};
    kiln_buf_append(b, tag, 2);
    pb_varint(b, sub->len);
    kiln_buf_append(b, sub->ptr, sub->len);
    kiln_buf_free(sub);
    kiln_buf_init(sub, 0);
}

/* The first counting pass bounds labels and lines by their one-byte tags;
 * tags written longer make it short, and the decode is redone exactly. */
TEST(decode_non_canonical_tags)
{
    kiln_buf b, m, l;
    kiln_buf_init(&b, 0);
    kiln_buf_init(&m, 0);
    kiln_buf_init(&l, 0);
    pb_uint(&m, 1, 1), pb_uint(&m, 2, 2), pb_sub(&b, 1, &m);
    pb_uint(&m, 1, 1), pb_uint(&m, 2, 5);
    for (int i = 0; i < 3; i++)
        pb_uint(&l, 1, 3), pb_uint(&l, 2, 4), pb_sub_long_tag(&m, 3, &l);
    pb_sub(&b, 2, &m);
    pb_uint(&m, 1, 1);
    for (int i = 0; i < 4; i++)
        pb_uint(&l, 1, 1), pb_uint(&l, 2, 10 + i), pb_sub_long_tag(&m, 4, &l);
    pb_sub(&b, 4, &m);
    pb_uint(&m, 1, 1), pb_uint(&m, 2, 5), pb_sub(&b, 5, &m);
    static const char *const strs[] = {"", "samples", "count", "k", "v", "main"};
    for (size_t i = 0; i < N_OF(strs); i++)
        pb_str(&b, 6, strs[i]);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &p, &err));
    CHECK_STR(err.msg, ""); /* the short pass's error is not left behind */
    CHECK_EQ(p.n_samples, 1);
    CHECK_EQ(p.n_labels, 3);
    CHECK_EQ(p.samples[0].n_labels, 3);
    CHECK_EQ(p.labels[2].str, 4);
    CHECK_EQ(p.n_lines, 4);
    CHECK_EQ(p.locations[0].n_lines, 4);
    CHECK_EQ(p.lines[3].line, 13);
    CHECK_OK(kiln_pprof_validate(&p, &err));
    kiln_arena_destroy(a);
    kiln_buf_free(&b);
}

/* A Java-style stack (a location_id field a frame) as the input's last
 * field: the run loop stops 10 bytes short of the end and the general path
 * reads the rest; a bad varint inside a run is still an error. */
TEST(decode_unpacked_stack_at_input_end)
{
    kiln_buf b, m;
    kiln_buf_init(&b, 0);
    kiln_buf_init(&m, 0);
    pb_uint(&m, 2, 7);
    for (uint64_t id = 1; id <= 12; id++)
        pb_uint(&m, 1, id * 300); /* two-byte varints */
    pb_sub(&b, 2, &m);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &p, &err));
    CHECK_EQ(p.n_samples, 1);
    CHECK_EQ(p.samples[0].n_locs, 12);
    for (uint32_t i = 0; i < 12; i++)
        CHECK_EQ(p.locs[p.samples[0].loc_off + i], (i + 1) * 300);
    CHECK_EQ(p.values[0], 7);
    /* the same with the 6th id's varint made 11 bytes long */
    for (uint64_t id = 1; id <= 5; id++)
        pb_uint(&m, 1, id);
    static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kiln_buf_append(&m, overlong, sizeof(overlong));
    for (uint64_t id = 6; id <= 12; id++)
        pb_uint(&m, 1, id);
    kiln_buf_free(&b);
    kiln_buf_init(&b, 0);
    pb_sub(&b, 2, &m);
    pb_str(&b, 6, "padding past the sample, so that the run loop meets the bad varint");
    CHECK_EQ(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &p, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "longer than 10 bytes") != NULL);
    kiln_arena_destroy(a);
    kiln_buf_free(&b);
}

TEST(decode_error_names_field_and_offset)
{
    /* sample_type {type: 1}, then a Sample whose packed location_id is cut. */
    static const uint8_t data[] = {0x0a, 0x02, 0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 0x80};
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_EQ(kiln_pprof_decode(a, data, sizeof(data), &p, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "pprof: truncated packed field 1 of Sample at offset 6");
    kiln_arena_destroy(a);
}

TEST(decode_ten_byte_varint_and_deep_groups)
{
    static const uint8_t minus1[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x01};
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_decode(a, minus1, sizeof(minus1), &p, &err));
    CHECK_EQ(p.time_nanos, -1);
    /* 1000 nested unknown groups must fail cleanly, not overflow the stack. */
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        pb_varint(&b, 100 << 3 | 3);
    for (int i = 0; i < 1000; i++)
        pb_varint(&b, 100 << 3 | 4);
    CHECK_EQ(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &p, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "nested too deep") != NULL);
    kiln_buf_free(&b);
    kiln_arena_destroy(a);
}

TEST(decode_empty_input)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_decode(a, NULL, 0, &p, &err));
    CHECK_EQ(p.n_samples, 0);
    CHECK_EQ(kiln_pprof_validate(&p, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "pprof: no sample types");
    kiln_arena_destroy(a);
}

TEST(decode_arena_cap)
{
    size_t len;
    unsigned char *data = load("hard/google-pprof/large.cpu", &len);
    if (data == NULL)
        return;
    kiln_arena_t *a = kiln_arena_create(256 * 1024);
    kiln_pprof_t p;
    kiln_err err = {0};
    CHECK_EQ(kiln_pprof_decode(a, data, len, &p, &err), KILN_RESOURCE_EXHAUSTED);
    kiln_arena_destroy(a);
    /* normalize past its cap fails and leaves the profile untouched */
    kiln_arena_t *big = kiln_arena_create(0), *small = kiln_arena_create(4096);
    CHECK_OK(kiln_pprof_decode(big, data, len, &p, &err));
    size_t n = p.n_samples;
    CHECK_EQ(kiln_pprof_normalize(small, &p, 0, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK_EQ(p.n_samples, n);
    CHECK_OK(kiln_pprof_validate(&p, &err));
    kiln_arena_destroy(small);
    kiln_arena_destroy(big);
    free(data);
}

/* ---- validation and normalisation on a hand-made profile ----------------------------- */

typedef struct fixture {
    kiln_pprof_t p;
    kiln_str_t strings[12];
    kiln_pprof_value_type types[2];
    kiln_pprof_sample samples[6];
    uint64_t locs[13];
    int64_t values[12];
    kiln_pprof_label labels[6];
    kiln_pprof_mapping maps[1];
    kiln_pprof_location locations[4];
    kiln_pprof_line lines[4];
    kiln_pprof_function funcs[3];
} fixture;

static void fixture_samples(fixture *f)
{
    /* Stacks (leaf first) and values. S1 repeats S0 once location 70 (no
     * lines, no address) is dropped; S2 is all zero; S4 and S5 differ only in
     * label order. Samples never share stack or label storage. */
    static const uint64_t locs[] = {60, 50, 70, 60, 50, 80, 50, 80, 50, 60, 50, 60, 50};
    static const int64_t vals[] = {1, 10, 2, 20, 0, 0, -5, 7, 1, 1, 1, 1};
    static const kiln_pprof_sample s[] = {{0, 2, 0, 2, 0, 1}, {2, 3, 2, 2, 1, 1},
                                          {5, 2, 4, 2, 2, 0}, {7, 2, 6, 2, 2, 0},
                                          {9, 2, 8, 2, 2, 2}, {11, 2, 10, 2, 4, 2}};
    static const kiln_pprof_label l[] = {{8, 9, 0, 0}, {8, 9, 0, 0}, {11, 9, 0, 0},
                                         {8, 9, 0, 0}, {8, 9, 0, 0}, {11, 9, 0, 0}};
    memcpy(f->locs, locs, sizeof(locs));
    memcpy(f->values, vals, sizeof(vals));
    memcpy(f->samples, s, sizeof(s));
    memcpy(f->labels, l, sizeof(l));
}

static void fixture_init(fixture *f)
{
    static const char *const strs[] = {
        "", "samples", "count", "cpu", "nanoseconds", "main", "foo", "bar", "k", "v", "", "w"};
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < N_OF(strs); i++)
        f->strings[i] = (kiln_str_t){strs[i], strlen(strs[i])};
    f->types[0] = (kiln_pprof_value_type){1, 2};
    f->types[1] = (kiln_pprof_value_type){3, 4};
    f->maps[0] = (kiln_pprof_mapping){.id = 7, .memory_start = 0x1000, .filename = 5};
    f->funcs[0] = (kiln_pprof_function){.id = 1000, .name = 5};
    f->funcs[1] = (kiln_pprof_function){.id = 2000, .name = 6};
    f->funcs[2] = (kiln_pprof_function){.id = 3000, .name = 7};
    f->lines[0] = (kiln_pprof_line){1000, 1, 0};
    f->lines[1] = (kiln_pprof_line){2000, 2, 0};
    f->lines[2] = (kiln_pprof_line){3000, 3, 0};
    f->lines[3] = (kiln_pprof_line){3000, 4, 0};
    f->locations[0] = (kiln_pprof_location){50, 7, 0x10, 0, 1, false};
    f->locations[1] = (kiln_pprof_location){60, 0, 0x20, 1, 2, false}; /* inlined, no mapping */
    f->locations[2] = (kiln_pprof_location){70, 7, 0, 3, 0, false};    /* dropped */
    f->locations[3] = (kiln_pprof_location){80, 7, 0x40, 3, 1, false};
    fixture_samples(f);
    kiln_pprof_t *p = &f->p;
    p->strings = f->strings, p->n_strings = N_OF(strs);
    p->sample_types = f->types, p->n_sample_types = 2;
    p->samples = f->samples, p->n_samples = 6;
    p->locs = f->locs, p->n_locs = 13;
    p->values = f->values, p->n_values = 12;
    p->labels = f->labels, p->n_labels = 6;
    p->mappings = f->maps, p->n_mappings = 1;
    p->locations = f->locations, p->n_locations = 4;
    p->lines = f->lines, p->n_lines = 4;
    p->functions = f->funcs, p->n_functions = 3;
    p->period_type = f->types[1];
    p->period = 10000000;
}

static int64_t value_of(const kiln_pprof_t *p, size_t s, size_t t)
{
    return p->values[p->samples[s].value_off + t];
}

static uint64_t loc_of(const kiln_pprof_t *p, size_t s, size_t j)
{
    return p->locs[p->samples[s].loc_off + j];
}

TEST(normalize_fixture)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_pprof_validate(p, &err));
    CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
    check_normalized(p, "fixture");
    CHECK_EQ(p->n_locations, 3);
    CHECK_EQ(p->n_mappings, 2); /* stub appended for mapping_id 0 */
    CHECK_EQ(p->locations[0].mapping, 0);
    CHECK_EQ(p->locations[1].mapping, 1);
    CHECK_EQ(p->locations[1].id, 2);
    CHECK_EQ(p->lines[p->locations[1].line_off].function, 1);
    CHECK_EQ(p->lines[p->locations[1].line_off + 1].function, 2);
    CHECK_EQ(p->n_samples, 3);
    CHECK_EQ(value_of(p, 0, 0), 3); /* S0 + S1 */
    CHECK_EQ(value_of(p, 0, 1), 30);
    CHECK_EQ(loc_of(p, 0, 0), 1);
    CHECK_EQ(loc_of(p, 0, 1), 0);
    CHECK_EQ(value_of(p, 1, 0), -5); /* negative kept; S2 (all zero) dropped */
    CHECK_EQ(loc_of(p, 1, 0), 2);
    CHECK_EQ(value_of(p, 2, 0), 2); /* S4 + S5: labels in another order */
    CHECK_EQ(p->samples[2].n_labels, 2);
    kiln_arena_destroy(a);
}

TEST(normalize_max_depth_keeps_root)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_pprof_normalize(a, p, 1, &err));
    CHECK_EQ(p->n_samples, 3);
    for (size_t i = 0; i < p->n_samples; i++) {
        CHECK_EQ(p->samples[i].n_locs, 1);
        CHECK_EQ(loc_of(p, i, 0), 0); /* location 50, the root */
    }
    CHECK_EQ(value_of(p, 0, 1), 30);
    CHECK_EQ(value_of(p, 1, 1), 7);
    kiln_arena_destroy(a);
}

/* validate_normalize drops and trims stacks in its check pass: it must cut
 * the same frames as normalize, a dropped location inside the kept depth
 * included. */
TEST(validate_normalize_max_depth_agrees)
{
    for (size_t depth = 1; depth <= 3; depth++) {
        fixture f1, f2;
        fixture_init(&f1);
        fixture_init(&f2);
        kiln_err err = {0};
        kiln_arena_t *a = kiln_arena_create(0);
        CHECK_OK(kiln_pprof_normalize(a, &f1.p, depth, &err));
        CHECK_OK(kiln_pprof_validate_normalize(a, &f2.p, depth, &err));
        kiln_buf b1, b2;
        kiln_buf_init(&b1, 0);
        kiln_buf_init(&b2, 0);
        CHECK(kiln_pprof_encode(&f1.p, true, &b1));
        CHECK(kiln_pprof_encode(&f2.p, true, &b2));
        CHECK(b1.len == b2.len && memcmp(b1.ptr, b2.ptr, b1.len) == 0);
        for (size_t i = 0; i < f2.p.n_samples; i++)
            CHECK(f2.p.samples[i].n_locs <= depth);
        kiln_buf_free(&b1);
        kiln_buf_free(&b2);
        kiln_arena_destroy(a);
    }
}

TEST(normalize_implicit_and_sparse_ids)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    /* All function ids absent: lines refer to functions 1..N by position. */
    for (size_t i = 0; i < 3; i++)
        f.funcs[i].id = 0;
    f.lines[0].function = 1, f.lines[1].function = 2, f.lines[2].function = 3;
    f.lines[3].function = 3;
    /* All location ids absent too. */
    for (size_t i = 0; i < 4; i++)
        f.locations[i].id = 0;
    for (size_t i = 0; i < 13; i++)
        f.locs[i] = f.locs[i] / 10 - 4; /* 50 -> 1, 60 -> 2, 70 -> 3, 80 -> 4 */
    CHECK_OK(kiln_pprof_validate(p, &err));
    CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
    check_normalized(p, "implicit ids");
    CHECK_EQ(p->n_samples, 3);
    CHECK_EQ(p->lines[p->locations[2].line_off].function, 2);
    CHECK_EQ(value_of(p, 0, 1), 30);
    kiln_arena_destroy(a);
}

TEST(normalize_merges_empty_string_duplicates)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    f.labels[0].str = 10; /* S0: k="" via the duplicate "" */
    f.labels[1].str = 0;  /* S1: k="" via index 0 */
    CHECK_OK(kiln_pprof_validate(p, &err));
    CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
    CHECK_EQ(p->n_samples, 3);
    CHECK_EQ(value_of(p, 0, 0), 3);
    CHECK_EQ(p->samples[0].n_labels, 0); /* k="" is no label */
    kiln_arena_destroy(a);
}

TEST(normalize_drops_numeric_labels_and_non_positive_samples)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    f.labels[0] = (kiln_pprof_label){8, 0, 7, 0};   /* S0: k=7 (numeric) */
    f.labels[1] = (kiln_pprof_label){11, 0, 42, 2}; /* S1: w=42 count */
    f.values[6] = -5, f.values[7] = 0;              /* S3: negative only */
    f.values[8] = -1, f.values[9] = 3;              /* S4: mixed, kept */
    CHECK_OK(kiln_pprof_validate(p, &err));
    CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
    CHECK_EQ(p->n_samples, 2);
    CHECK_EQ(p->samples[0].n_labels, 0);
    CHECK_EQ(value_of(p, 0, 0), 3); /* S0 + S1, merged once unlabelled */
    CHECK_EQ(value_of(p, 1, 0), 0); /* S4 + S5: -1 + 1 */
    CHECK_EQ(value_of(p, 1, 1), 4);
    kiln_arena_destroy(a);
}

/* Applies one corruption to a fresh fixture and expects validate to fail. */
static void expect_invalid(void (*corrupt)(fixture *), const char *what)
{
    fixture f;
    fixture_init(&f);
    corrupt(&f);
    kiln_err err = {0};
    CHECK_EQ(kiln_pprof_validate(&f.p, &err), KILN_INVALID_ARGUMENT);
    if (strstr(err.msg, what) == NULL)
        printf("  want \"%s\", got \"%s\"\n", what, err.msg);
    CHECK(strstr(err.msg, what) != NULL);
}

static void no_types(fixture *f)
{
    f->p.n_sample_types = 0;
}
static void no_strings(fixture *f)
{
    f->p.n_strings = 0;
}
static void first_string(fixture *f)
{
    f->strings[0] = KILN_STR("x");
}
static void bad_label_key(fixture *f)
{
    f->labels[2].key = 12;
}
static void bad_func_name(fixture *f)
{
    f->funcs[1].name = -1;
}
static void bad_period(fixture *f)
{
    f->p.period_type.unit = 99;
}
static void few_values(fixture *f)
{
    f->samples[3].n_values = 1;
}
static void unknown_loc(fixture *f)
{
    f->locs[6] = 55;
}
static void unknown_func(fixture *f)
{
    f->lines[3].function = 4242;
}

TEST(validate_rejects)
{
    expect_invalid(no_types, "no sample types");
    expect_invalid(no_strings, "empty string table");
    expect_invalid(first_string, "string_table[0]");
    expect_invalid(bad_label_key, "label.key string index 12 out of range");
    expect_invalid(bad_func_name, "function.name string index -1");
    expect_invalid(bad_period, "period_type.unit");
    expect_invalid(few_values, "sample 3 has 1 values for 2 sample types");
    expect_invalid(unknown_loc, "location id 55");
    expect_invalid(unknown_func, "function id 4242");
}

static bool utf8_ok(const char *s)
{
    fixture f;
    fixture_init(&f);
    f.strings[7] = (kiln_str_t){s, strlen(s)};
    kiln_err err = {0};
    return kiln_pprof_validate(&f.p, &err) == KILN_OK;
}

TEST(validate_utf8)
{
    CHECK(utf8_ok("plain ascii, long enough for the word path"));
    CHECK(utf8_ok("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf"));
    CHECK(utf8_ok("control \x01\x7f bytes are valid UTF-8"));
    CHECK(!utf8_ok("\xc0\x80"));         /* overlong NUL */
    CHECK(!utf8_ok("\xc1\xbf"));         /* overlong 2-byte */
    CHECK(!utf8_ok("\xe0\x80\xaf"));     /* overlong 3-byte */
    CHECK(!utf8_ok("\xf0\x80\x80\xaf")); /* overlong 4-byte */
    CHECK(!utf8_ok("\xed\xa0\x80"));     /* surrogate U+D800 */
    CHECK(!utf8_ok("\xed\xbf\xbf"));     /* surrogate U+DFFF */
    CHECK(!utf8_ok("\xf4\x90\x80\x80")); /* U+110000 */
    CHECK(!utf8_ok("\xf5\x80\x80\x80"));
    CHECK(!utf8_ok("abcdefgh\x80")); /* stray continuation after a word */
    CHECK(!utf8_ok("\xe2\x82"));     /* truncated */
    CHECK(!utf8_ok("\xe2\x28\xa1")); /* bad continuation */
    CHECK(!utf8_ok("\xff"));
}

TEST(encode_fixture_roundtrip)
{
    fixture f;
    fixture_init(&f);
    kiln_pprof_t *p = &f.p, q;
    kiln_err err = {0};
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_OK(kiln_pprof_normalize(a, p, 0, &err));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK(kiln_pprof_encode(p, true, &b));
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &q, &err));
    CHECK_OK(kiln_pprof_validate(&q, &err));
    CHECK_EQ(q.n_samples, 3);
    CHECK_EQ(q.n_mappings, 2);
    CHECK_EQ(q.locations[1].mapping, 2); /* ids are index + 1 */
    CHECK_EQ(q.lines[q.locations[1].line_off].function, 2);
    CHECK_EQ(value_of(&q, 1, 0), -5);
    CHECK_EQ(q.period, 10000000);
    CHECK_EQ(q.period_type.unit, 4);
    /* a buffer with a max too small fails and keeps its contents */
    kiln_buf small;
    kiln_buf_init(&small, 16);
    kiln_buf_append(&small, "abc", 3);
    CHECK(!kiln_pprof_encode(p, true, &small));
    CHECK_EQ(small.len, 3);
    kiln_buf_free(&small);
    kiln_buf_free(&b);
    kiln_arena_destroy(a);
}

/* ---- shared testdata -------------------------------------------------------------------- */

/* Encodes p (as decoded, ids kept), decodes that, and checks the copy has
 * the same shape and encodes to the same bytes. */
static void check_raw_roundtrip(const kiln_pprof_t *p, const char *name)
{
    kiln_buf b1, b2;
    kiln_buf_init(&b1, 0);
    kiln_buf_init(&b2, 0);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t q;
    kiln_err err = {0};
    CHECK(kiln_pprof_encode(p, false, &b1));
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b1.ptr, b1.len, &q, &err));
    CHECK_EQ(q.n_samples, p->n_samples);
    CHECK_EQ(q.n_locs, p->n_locs);
    CHECK_EQ(q.n_values, p->n_values);
    CHECK_EQ(q.n_labels, p->n_labels);
    CHECK_EQ(q.n_locations, p->n_locations);
    CHECK_EQ(q.n_lines, p->n_lines);
    CHECK_EQ(q.n_functions, p->n_functions);
    CHECK_EQ(q.n_mappings, p->n_mappings);
    CHECK_EQ(q.n_strings, p->n_strings);
    CHECK(kiln_pprof_encode(&q, false, &b2));
    CHECK(b1.len == b2.len && memcmp(b1.ptr, b2.ptr, b1.len) == 0);
    if (b1.len != b2.len)
        printf("  %s: re-encoding differs\n", name);
    kiln_arena_destroy(a);
    kiln_buf_free(&b1);
    kiln_buf_free(&b2);
}

/* Encodes the normalised p, decodes it back, and checks samples and totals. */
static void check_norm_roundtrip(const kiln_pprof_t *p, const uint64_t *want)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t q;
    kiln_err err = {0};
    uint64_t got[64];
    CHECK(kiln_pprof_encode(p, true, &b));
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)b.ptr, b.len, &q, &err));
    CHECK_OK(kiln_pprof_validate(&q, &err));
    CHECK_EQ(q.n_samples, p->n_samples);
    sums(&q, got);
    for (size_t t = 0; t < q.n_sample_types; t++)
        CHECK_EQ(got[t], want[t]);
    CHECK_OK(kiln_pprof_normalize(a, &q, 0, &err)); /* idempotent on its own output */
    CHECK_EQ(q.n_samples, p->n_samples);
    check_normalized(&q, "re-decoded");
    kiln_arena_destroy(a);
    kiln_buf_free(&b);
}

static void check_file(const char *rel)
{
    size_t len;
    unsigned char *data = load(rel, &len);
    if (data == NULL)
        return;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    uint64_t before[64], after[64];
    kiln_status st = kiln_pprof_decode(a, data, len, &p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(&p, &err);
    if (st == KILN_OK && p.n_sample_types > N_OF(before))
        st = KILN_OUT_OF_RANGE;
    if (st != KILN_OK) {
        printf("  %s: %s\n", rel, err.msg);
        CHECK_OK(st);
        goto out;
    }
    check_raw_roundtrip(&p, rel);
    size_t n0 = p.n_samples, l0 = p.n_locations;
    sums(&p, before);
    bool negative = false;
    for (size_t i = 0; i < p.n_values; i++)
        negative |= p.values[i] < 0;
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
    sums(&p, after);
    /* Normalising only merges samples and drops those with no positive
     * value: without negative values the sums cannot change; with them
     * (delta heap profiles) dropping can only raise a sum. */
    for (size_t t = 0; t < p.n_sample_types; t++) {
        if (negative)
            CHECK((int64_t)after[t] >= (int64_t)before[t]);
        else
            CHECK_EQ(after[t], before[t]);
    }
    check_normalized(&p, rel);
    check_norm_roundtrip(&p, after);
    printf("  %-72s %8zu B  samples %6zu -> %6zu  locations %6zu -> %6zu\n", rel, len, n0,
           p.n_samples, l0, p.n_locations);
out:
    kiln_arena_destroy(a);
    free(data);
}

TEST(testdata_pprof_files)
{
    for (size_t i = 0; i < N_OF(pprof_files); i++)
        check_file(pprof_files[i]);
}

TEST(testdata_rejected_files)
{
    for (size_t i = 0; i < N_OF(rejected_files); i++) {
        size_t len;
        unsigned char *data = load(rejected_files[i], &len);
        if (data == NULL)
            continue;
        kiln_err err = {0};
        kiln_status st = pipeline(data, len, &err);
        printf("  %-72s %s\n", rejected_files[i], err.msg);
        CHECK_EQ(st, KILN_INVALID_ARGUMENT);
        free(data);
    }
}

/* Returns the number of files under dir (recursively) that pass the whole
 * pipeline; every other file must fail with INVALID_ARGUMENT, not crash. */
static size_t walk(const char *dir, const char *rel)
{
    size_t ok = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[4096], sub[1024];
        struct stat sb;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "MANIFEST.md") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            ok += walk(path, sub);
            continue;
        }
        size_t len = 0;
        unsigned char *raw = check_read_testdata(sub, &len);
        unsigned char *data = raw != NULL ? gunzip_maybe(raw, len, &len) : NULL;
        if (data == NULL)
            continue;
        kiln_err err = {0};
        kiln_status st = pipeline(data, len, &err);
        CHECK(st == KILN_OK || st == KILN_INVALID_ARGUMENT);
        ok += st == KILN_OK;
        free(data);
    }
    closedir(d);
    return ok;
}

TEST(testdata_every_file_is_safe)
{
    const char *dir = getenv("KILN_TESTDATA");
    size_t ok = walk(dir ? dir : "../shared/testdata", "");
    printf("  %zu files pass the pipeline (%zu known pprof)\n", ok, N_OF(pprof_files));
    CHECK_EQ(ok, N_OF(pprof_files));
}

TEST(testdata_specific_files)
{
    size_t len;
    unsigned char *data = load("gdu/default.pgo", &len);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    if (data != NULL && kiln_pprof_decode(a, data, len, &p, &err) == KILN_OK) {
        CHECK_EQ(p.n_samples, 3006);
        CHECK_EQ(p.n_locations, 2510);
        CHECK_EQ(p.n_functions, 654);
        CHECK_EQ(p.n_mappings, 1);
        CHECK_EQ(p.n_strings, 819);
    }
    free(data);
    data = load("hard/grafana-pyroscope/dotnet-pprof-73.pb.gz", &len);
    if (data != NULL && kiln_pprof_decode(a, data, len, &p, &err) == KILN_OK) {
        CHECK_EQ(p.functions[0].id, 0);
        CHECK_OK(kiln_pprof_validate(&p, &err));
        CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
        size_t none = 0;
        for (size_t i = 0; i < p.n_lines; i++)
            none += p.lines[i].function == KILN_PPROF_NONE;
        CHECK_EQ(none, 0);
    }
    free(data);
    kiln_arena_destroy(a);
}

/* ---- robustness ---------------------------------------------------------------------------- */

/* Every prefix and many single-byte corruptions of a real profile decode or
 * fail cleanly. Each input is copied to an exact-size buffer so that ASan
 * sees any read past its end. */
TEST(truncation_and_corruption)
{
    size_t len;
    unsigned char *data = load("google-pprof/sample.cpu", &len);
    if (data == NULL)
        return;
    size_t ok = 0, runs = 0;
    for (size_t n = 0; n <= len; n++) {
        unsigned char *cut = kiln_xmalloc(n ? n : 1);
        memcpy(cut, data, n);
        kiln_err err = {0};
        kiln_status st = pipeline(cut, n, &err);
        CHECK(st == KILN_OK || st == KILN_INVALID_ARGUMENT);
        ok += st == KILN_OK, runs++;
        free(cut);
    }
    static const uint8_t flips[] = {0x00, 0x80, 0xff, 0x07, 0x0a};
    unsigned char *copy = kiln_xmalloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            memcpy(copy, data, len);
            copy[i] ^= flips[k] ? flips[k] : copy[i];
            kiln_err err = {0};
            kiln_status st = pipeline(copy, len, &err);
            CHECK(st == KILN_OK || st == KILN_INVALID_ARGUMENT);
            ok += st == KILN_OK, runs++;
        }
    }
    printf("  %zu bytes: %zu runs, %zu passed the pipeline\n", len, runs, ok);
    free(copy);
    free(data);
}

/* ---- throughput ---------------------------------------------------------------------------- */

/* CPU time of this thread: one core's throughput even on a busy machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(throughput_large_cpu)
{
    size_t len;
    unsigned char *data = load("hard/google-pprof/large.cpu", &len);
    if (data == NULL)
        return;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err = {0};
    double t0 = now_s(), t1 = t0, tn = 0;
    size_t iters = 0;
    for (; iters < 3 || t1 - t0 < 1.0; iters++) {
        kiln_arena_reset(a);
        CHECK_OK(kiln_pprof_decode(a, data, len, &p, &err));
        t1 = now_s();
    }
    for (int i = 0; i < 3; i++) {
        double s = now_s();
        CHECK_OK(kiln_pprof_validate(&p, &err));
        CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
        tn += now_s() - s;
        kiln_arena_reset(a);
        CHECK_OK(kiln_pprof_decode(a, data, len, &p, &err));
    }
    double mb = (double)len / 1e6;
    printf("  large.cpu: %.2f MB raw, decode %.1f MB/s (%zu runs), validate+normalize %.1f "
           "MB/s (CPU time, one core)\n",
           mb, mb * (double)iters / (t1 - t0), iters, mb * 3 / tn);
    kiln_arena_destroy(a);
    free(data);
}

int main(void)
{
    RUN(decode_any_order_and_unknown_fields);
    RUN(decode_rejects_malformed_wire);
    RUN(decode_non_canonical_tags);
    RUN(decode_unpacked_stack_at_input_end);
    RUN(decode_error_names_field_and_offset);
    RUN(decode_ten_byte_varint_and_deep_groups);
    RUN(decode_empty_input);
    RUN(decode_arena_cap);
    RUN(normalize_fixture);
    RUN(normalize_max_depth_keeps_root);
    RUN(validate_normalize_max_depth_agrees);
    RUN(normalize_implicit_and_sparse_ids);
    RUN(normalize_merges_empty_string_duplicates);
    RUN(normalize_drops_numeric_labels_and_non_positive_samples);
    RUN(validate_rejects);
    RUN(validate_utf8);
    RUN(encode_fixture_roundtrip);
    RUN(testdata_pprof_files);
    RUN(testdata_rejected_files);
    RUN(testdata_every_file_is_safe);
    RUN(testdata_specific_files);
    RUN(truncation_and_corruption);
    RUN(throughput_large_cpu);
    return check_done();
}
