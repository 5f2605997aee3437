/* SPDX-License-Identifier: Apache-2.0
 * Tests for common/pbdec: OTLP requests decoded by pbdec and by protobuf-c
 * (both through the bounded descriptor) must be accepted or refused alike,
 * and when accepted pack to the same bytes: the shared captures, every
 * truncation and many mutations of a small request built by hand, and the
 * wire quirks (wrong wire types, unknown fields, merges, oneofs). A NUL
 * byte in a string is noted as pb_nul finds it, and refused by the rpc
 * layer as when protobuf-c decodes, in every kind of string the
 * hand-written decoders read; in a bytes field it is accepted. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "otlp.h"
#include "pb_compare.h"
#include "pb_nul.h"
#include "pbdec.h"
#include "pbjson.h"
#include "rpc.h"
#include "xmalloc.h"

/* Bytes being built. */
typedef struct wb {
    uint8_t b[4096];
    size_t n;
} wb;

static void put_varint(wb *w, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        w->b[w->n++] = (uint8_t)(v | 0x80);
    w->b[w->n++] = (uint8_t)v;
}

static void put_key(wb *w, unsigned tag, unsigned wt)
{
    put_varint(w, (uint64_t)tag << 3 | wt);
}

static void put_uint(wb *w, unsigned tag, uint64_t v)
{
    put_key(w, tag, 0);
    put_varint(w, v);
}

static void put_bytes(wb *w, unsigned tag, const void *p, size_t n)
{
    put_key(w, tag, 2);
    put_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_msg(wb *w, unsigned tag, const wb *inner)
{
    put_bytes(w, tag, inner->b, inner->n);
}

static void put_str(wb *w, unsigned tag, const char *s)
{
    put_bytes(w, tag, s, strlen(s));
}

/* Decodes data[0..len) both ways; false (and a failed CHECK) when the
 * outcomes, the packed results or their known fields differ, or when
 * pbdec's NUL note is not pb_nul's. *accepted: protobuf-c's outcome. */
static bool same(const uint8_t *data, size_t len, bool *accepted)
{
    const ProtobufCMessageDescriptor *md = kiln_otlp_request_descriptor();
    kiln_arena_t *a = kiln_arena_create(0), *b = kiln_arena_create(0);
    ProtobufCAllocator al = kiln_arena_pb_allocator(b);
    bool nul = false;
    ProtobufCMessage *x = kiln_otlp_unpack_message(a, data, len, &nul);
    ProtobufCMessage *y = protobuf_c_message_unpack(md, &al, len, data);
    bool ok = (x == NULL) == (y == NULL);
    if (ok && x != NULL) {
        size_t nx, ny;
        uint8_t *px = packed(x, &nx), *py = packed(y, &ny);
        ok = nx == ny && memcmp(px, py, nx) == 0 && same_json(x, y) &&
             nul == !kiln_pb_nul_free(md, data, len);
        free(px);
        free(py);
    }
    if (!ok)
        printf("  differs on %zu bytes: pbdec %s, protobuf-c %s\n", len, x ? "accepts" : "refuses",
               y ? "accepts" : "refuses");
    CHECK(ok);
    if (accepted != NULL)
        *accepted = y != NULL;
    kiln_arena_destroy(a);
    kiln_arena_destroy(b);
    return ok;
}

static void check_same(const wb *w, bool want_accepted)
{
    bool acc = false;
    same(w->b, w->n, &acc);
    CHECK_EQ(acc, want_accepted);
}

/* A dictionary with an entry of each table, lines merged from two
 * occurrences, an unknown field and a stack packed then unpacked. */
static void small_dict(wb *dict)
{
    wb t = {0}, u = {0};
    put_uint(&t, 1, 7);
    put_uint(&t, 2, 0x7fff0000);
    put_uint(&t, 3, 4096);
    put_uint(&t, 4, 1);
    put_msg(dict, 1, &t); /* mapping */
    memset(&t, 0, sizeof(t));
    put_uint(&u, 1, 2);
    put_uint(&u, 2, 42);
    put_uint(&t, 1, 0);
    put_uint(&t, 2, 0x401000);
    put_msg(&t, 3, &u); /* line */
    put_msg(&t, 3, &u);
    put_uint(&t, 99, 5);  /* unknown */
    put_msg(dict, 2, &t); /* location */
    memset(&t, 0, sizeof(t));
    put_uint(&t, 1, 1);
    put_uint(&t, 3, 1);
    put_uint(&t, 4, 10);
    put_msg(dict, 3, &t); /* function */
    memset(&t, 0, sizeof(t));
    put_str(&t, 1, "0123456789abcdef");
    put_str(&t, 2, "01234567");
    put_msg(dict, 4, &t); /* link */
    put_str(dict, 5, "");
    put_str(dict, 5, "main");
    put_str(dict, 5, "app");
    memset(&t, 0, sizeof(t));
    memset(&u, 0, sizeof(u));
    put_str(&u, 1, "v");
    put_uint(&t, 1, 2);
    put_msg(&t, 2, &u);   /* AnyValue */
    put_msg(dict, 6, &t); /* attribute */
    memset(&t, 0, sizeof(t));
    uint8_t locs[] = {0, 0, 0};
    put_bytes(&t, 1, locs, 3);
    put_uint(&t, 1, 0);   /* unpacked after packed */
    put_msg(dict, 7, &t); /* stack */
}

/* A small request touching every hot message type, unknown fields, a
 * resource attribute and nested AnyValues. */
static void small_request(wb *req)
{
    wb dict = {0}, t = {0}, u = {0}, s = {0}, p = {0}, sp = {0}, rp = {0}, res = {0};
    uint8_t vals[] = {1, 0x96, 0x01}, ts[16] = {1, 2, 3};
    small_dict(&dict);
    put_uint(&s, 1, 0);
    put_bytes(&s, 4, vals, 3);
    put_bytes(&s, 5, ts, 16);
    put_uint(&s, 3, 0);
    memset(&t, 0, sizeof(t));
    put_uint(&t, 1, 1);
    put_uint(&t, 2, 2);
    put_msg(&p, 1, &t); /* sample_type */
    put_msg(&p, 2, &s);
    put_msg(&p, 2, &s);
    put_bytes(&p, 7, "0123456789abcdef", 16);
    put_msg(&sp, 2, &p);
    memset(&t, 0, sizeof(t));
    memset(&u, 0, sizeof(u));
    put_str(&u, 1, "svc");
    put_str(&t, 1, "service.name");
    put_msg(&t, 2, &u);
    put_msg(&res, 1, &t);
    put_msg(&rp, 1, &res);
    put_msg(&rp, 2, &sp);
    put_msg(req, 1, &rp);
    put_msg(req, 2, &dict);
}

TEST(captures_decode_alike)
{
    static const char *const files[] = {
        "grafana-pyroscope/otel-ebpf-profile.pb.bin",
        "hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin",
        "hard/grafana-pyroscope/otel-ebpf-profile-corrupted.pb.bin",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len = 0;
        unsigned char *data = check_read_testdata(files[i], &len);
        CHECK(data != NULL);
        if (data == NULL)
            continue;
        same(data, len, NULL);
        free(data);
    }
}

TEST(every_truncation_decodes_alike)
{
    wb req = {0};
    small_request(&req);
    check_same(&req, true);
    for (size_t n = 0; n < req.n; n++) {
        if (!same(req.b, n, NULL))
            break;
    }
}

TEST(mutations_decode_alike)
{
    wb req = {0};
    small_request(&req);
    uint64_t x = 88172645463325252ull; /* xorshift64: the same run every time */
    size_t accepted = 0, nuls = 0;
    for (int i = 0; i < 20000; i++) {
        wb m = req;
        for (int k = 0; k < 1 + i % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            m.b[x % m.n] = (uint8_t)(x >> 32);
        }
        bool acc = false;
        if (!same(m.b, m.n, &acc))
            break;
        accepted += acc;
        nuls += acc && !kiln_pb_nul_free(kiln_otlp_request_descriptor(), m.b, m.n);
    }
    printf("  %zu accepted, %zu of them with a NUL in a string\n", accepted, nuls);
    CHECK(accepted > 100); /* both paths were exercised */
    CHECK(nuls > 5);       /* and both NUL notes */
}

TEST(wire_quirks_decode_alike)
{
    wb w = {0}, d = {0}, t = {0};
    check_same(&w, true); /* empty request */
    put_uint(&w, 1, 5);   /* resource_profiles as a varint */
    check_same(&w, false);
    w.n = 0;
    put_key(&w, 3, 3); /* a group */
    check_same(&w, false);
    w.n = 0;
    w.b[w.n++] = 0x80; /* tag 0 in two bytes: an unknown field */
    w.b[w.n++] = 0x00;
    put_varint(&w, 1);
    check_same(&w, true);
    w.n = 0;
    put_key(&w, 9, 0); /* an 11-byte varint */
    for (int i = 0; i < 10; i++)
        w.b[w.n++] = 0xff;
    w.b[w.n++] = 0x01;
    check_same(&w, false);
    w.n = 0;
    put_key(&w, 9, 1); /* unknown fixed64, fixed32 */
    memset(w.b + w.n, 1, 8);
    w.n += 8;
    put_key(&w, 10, 5);
    w.n += 4;
    check_same(&w, true);
    /* The dictionary twice: merged, its tables concatenated. */
    w.n = 0;
    put_str(&d, 5, "");
    put_uint(&t, 1, 3);
    put_msg(&d, 3, &t);
    put_msg(&w, 2, &d);
    put_msg(&w, 2, &d);
    check_same(&w, true);
    /* A stack's index as fixed64: the wrong wire type. */
    w.n = d.n = 0;
    put_key(&d, 7, 2);
    put_varint(&d, 9);
    put_key(&d, 1, 1);
    memset(d.b + d.n, 0, 8);
    d.n += 8;
    put_msg(&w, 2, &d);
    check_same(&w, false);
    /* Packed fixed64 timestamps of 7 bytes. */
    wb s = {0}, p = {0}, sp = {0}, rp = {0};
    w.n = 0;
    put_bytes(&s, 5, "1234567", 7);
    put_msg(&p, 2, &s);
    put_msg(&sp, 2, &p);
    put_msg(&rp, 2, &sp);
    put_msg(&w, 1, &rp);
    check_same(&w, false);
}

/* KeyValueAndUnit.value seen twice, with AnyValue cases a and b (0: none). */
static void two_values(unsigned a, unsigned b, bool want)
{
    wb w = {0}, d = {0}, kv = {0}, va = {0}, vb = {0};
    if (a != 0)
        put_uint(&va, a, 1);
    if (b != 0)
        put_uint(&vb, b, 2);
    put_msg(&kv, 2, &va);
    put_msg(&kv, 2, &vb);
    put_msg(&d, 6, &kv);
    put_msg(&w, 2, &d);
    check_same(&w, want);
}

TEST(oneof_merges_decode_alike)
{
    two_values(3, 3, true);
    two_values(3, 0, true);
    two_values(0, 2, true);
    two_values(0, 0, false); /* protobuf-c: a merge without any case fails */
    two_values(2, 8, true);
    wb w = {0}, d = {0}, kv = {0}, v = {0};
    put_str(&v, 1, "s");
    put_uint(&v, 3, 7);              /* the case changes within one AnyValue */
    put_bytes(&v, 2, "\x00\x01", 2); /* a bool read from a length-delimited field */
    put_msg(&kv, 2, &v);
    put_msg(&d, 6, &kv);
    put_msg(&w, 2, &d);
    check_same(&w, true);
}

/* A dictionary attribute (KeyValueAndUnit, with a unit) whose AnyValue is
 * v, and a profile whose sample_type is vt: the messages otlp_fast.c
 * decodes by hand when they hold one scalar. */
static void check_attr(const wb *v, const wb *vt, bool want)
{
    wb w = {0}, d = {0}, kv = {0}, p = {0}, sp = {0}, rp = {0};
    put_uint(&kv, 1, 1);
    put_msg(&kv, 2, v);
    put_uint(&kv, 3, 2);
    put_msg(&d, 6, &kv);
    put_msg(&w, 2, &d);
    put_msg(&p, 1, vt);
    put_msg(&sp, 2, &p);
    put_msg(&rp, 2, &sp);
    put_msg(&w, 1, &rp);
    check_same(&w, want);
}

TEST(scalar_attributes_decode_alike)
{
    static const uint8_t bools[][3] = {{0x00}, {0x01}, {0x80, 0x00}, {0x80, 0x01}, {0xff, 0x7f}};
    static const uint8_t dbl[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    wb vt = {0}, v = {0};
    put_uint(&vt, 1, 3);
    put_uint(&vt, 2, 4);
    put_uint(&vt, 1, 5); /* the last wins */
    put_str(&v, 1, "");
    check_attr(&v, &vt, true);
    v.n = 0;
    put_str(&v, 1, "a value");
    check_attr(&v, &vt, true);
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        v.n = 0;
        put_key(&v, 2, 0);
        for (size_t k = 0; k == 0 || bools[i][k - 1] & 0x80; k++)
            v.b[v.n++] = bools[i][k];
        check_attr(&v, &vt, true);
    }
    v.n = 0;
    put_uint(&v, 3, (uint64_t)-42); /* ten bytes */
    check_attr(&v, &vt, true);
    v.n = 0;
    put_key(&v, 4, 1);
    memcpy(v.b + v.n, dbl, 8);
    v.n += 8;
    check_attr(&v, &vt, true);
    v.n = 0;
    put_key(&v, 4, 1); /* a double cut short */
    memcpy(v.b + v.n, dbl, 5);
    v.n += 5;
    check_attr(&v, &vt, false);
    v.n = 0;
    put_uint(&v, 8, 0xffffffffu); /* a string index's low 32 bits */
    check_attr(&v, &vt, true);
    v.n = 0;
    put_bytes(&v, 7, "\x01\x02", 2); /* bytes: left to the generic decoder */
    check_attr(&v, &vt, true);
    v.n = 0;
    check_attr(&v, &vt, true); /* an empty AnyValue */
}

/* Scalar attributes at every depth around the bound, where the copy of a
 * KeyValue may have all its fields while its value's type has none: the
 * hand-written decoder must then leave it to the generic one. */
TEST(deep_kvlist_decodes_alike)
{
    for (int arrays = 0; arrays < 3; arrays++) {
        for (int lists = 4; lists < 12; lists++) {
            wb v = {0};
            put_uint(&v, 3, 7);
            for (int i = 0; i < lists + arrays; i++) {
                wb mid = {0}, kv = {0}, outer = {0};
                if (i < lists) {
                    put_str(&kv, 1, "k");
                    put_msg(&kv, 2, &v);
                    put_msg(&mid, 1, &kv);
                    put_msg(&outer, 6, &mid); /* kvlist_value */
                } else {
                    put_msg(&mid, 1, &v);
                    put_msg(&outer, 5, &mid); /* array_value */
                }
                v = outer;
            }
            wb w = {0}, rp = {0}, res = {0}, kv = {0};
            put_str(&kv, 1, "attr");
            put_msg(&kv, 2, &v);
            put_msg(&res, 1, &kv);
            put_msg(&rp, 1, &res);
            put_msg(&w, 1, &rp);
            check_same(&w, true);
        }
    }
}

TEST(deep_anyvalue_decodes_alike)
{
    wb v = {0};
    put_uint(&v, 3, 1);
    for (int depth = 0; depth < 40; depth++) {
        wb arr = {0}, outer = {0};
        put_msg(&arr, 1, &v);
        put_msg(&outer, 5, &arr);
        v = outer;
    }
    wb w = {0}, d = {0}, kv = {0};
    put_msg(&kv, 2, &v);
    put_msg(&d, 6, &kv);
    put_msg(&w, 2, &d);
    check_same(&w, true);
}

TEST(arena_cap_refuses)
{
    size_t len = 0;
    unsigned char *data = check_read_testdata("grafana-pyroscope/otel-ebpf-profile.pb.bin", &len);
    CHECK(data != NULL);
    if (data == NULL)
        return;
    kiln_arena_t *a = kiln_arena_create(64u << 10);
    bool nul;
    CHECK(kiln_otlp_unpack_message(a, data, len, &nul) == NULL);
    kiln_arena_destroy(a);
    free(data);
}

/* ---- NUL bytes in strings ---- */

/* The string field of a request that holds "a\0b" (the others hold "aXb"):
 * string table entries and the scope's name are decoded by the generic
 * decoder, attribute keys and values by the hand-written ones. */
typedef enum nul_at {
    NUL_NOWHERE, /* only in bytes fields, which hold NULs in every request */
    NUL_STRING_TABLE,
    NUL_RESOURCE_KEY,
    NUL_RESOURCE_VALUE,
    NUL_SCOPE_NAME,
    NUL_SCOPE_VALUE,
    NUL_SAMPLE_VALUE, /* a dictionary attribute, a sample's by index */
    NUL_PAYLOAD_FORMAT,
    NUL_KINDS
} nul_at;

static void put_text(wb *w, unsigned tag, bool nul)
{
    put_bytes(w, tag, nul ? "a\0b" : "aXb", 3);
}

/* An AnyValue holding "a\0b" as a string, or as bytes (tag 7): the same
 * bytes but for one key. */
static void put_any(wb *w, bool nul, bool as_bytes)
{
    wb v = {0};
    put_bytes(&v, nul && as_bytes ? 7 : 1, nul ? "a\0b" : "aXb", 3);
    put_msg(w, 2, &v);
}

static void nul_request(wb *req, nul_at at, bool as_bytes)
{
    static const uint8_t id[16] = {0, 0, 1, 0}; /* ids are bytes */
    wb dict = {0}, t = {0}, s = {0}, p = {0}, scope = {0}, sp = {0}, res = {0}, rp = {0};
    put_str(&dict, 5, "");
    put_text(&dict, 5, at == NUL_STRING_TABLE);
    put_uint(&t, 1, 1);
    put_any(&t, at == NUL_SAMPLE_VALUE, as_bytes);
    put_msg(&dict, 6, &t); /* attribute_table[0] */
    memset(&t, 0, sizeof(t));
    put_bytes(&t, 1, id, 16);
    put_msg(&dict, 4, &t);   /* a link's trace_id */
    put_bytes(&s, 2, "", 1); /* attribute_indices: {0} */
    put_msg(&p, 2, &s);
    put_bytes(&p, 7, id, 16); /* profile_id */
    put_text(&p, 9, at == NUL_PAYLOAD_FORMAT);
    memset(&t, 0, sizeof(t));
    put_str(&t, 1, "k");
    put_any(&t, at == NUL_SCOPE_VALUE, as_bytes);
    put_text(&scope, 1, at == NUL_SCOPE_NAME);
    put_msg(&scope, 3, &t);
    put_msg(&sp, 1, &scope);
    put_msg(&sp, 2, &p);
    memset(&t, 0, sizeof(t));
    put_text(&t, 1, at == NUL_RESOURCE_KEY);
    put_any(&t, at == NUL_RESOURCE_VALUE, as_bytes);
    put_msg(&res, 1, &t);
    put_msg(&rp, 1, &res);
    put_msg(&rp, 2, &sp);
    put_msg(req, 1, &rp);
    put_msg(req, 2, &dict);
}

static kiln_status echo(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                        ProtobufCMessage **resp)
{
    (void)svc, (void)ctx;
    *resp = (ProtobufCMessage *)req;
    return KILN_OK;
}

/* req through the rpc layer, decoded by unpack (NULL: protobuf-c); its
 * status, and the message in msg. */
static kiln_status invoke(const wb *req, kiln_rpc_unpack_fn unpack, char *msg)
{
    const ProtobufCMessageDescriptor *md = kiln_otlp_request_descriptor();
    kiln_rpc_method m = {"/otlp.Test/Export", md, md, echo, NULL, KILN_RPC_PUBLIC, unpack};
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    kiln_rpc_ctx ctx = {.tenant = "t", .arena = a, .err = &err};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_status st = kiln_rpc_invoke(&m, &ctx, req->b, req->n, KILN_CODEC_PROTO, &out);
    snprintf(msg, sizeof(err.msg), "%s", err.msg);
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    return st;
}

/* One request: pbdec's note, pb_nul and the rpc layer, whichever decoder
 * it uses, all say whether a string holds the NUL, with the same error. */
static void check_nul(nul_at at, bool as_bytes)
{
    static const char refusal[] =
        "failed to decode opentelemetry.proto.collector.profiles.v1development."
        "ExportProfilesServiceRequest: a string field holds a NUL byte";
    bool want = at != NUL_NOWHERE && !as_bytes, nul = !want;
    wb req = {0};
    nul_request(&req, at, as_bytes);
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK(kiln_otlp_unpack_message(a, req.b, req.n, &nul) != NULL);
    kiln_arena_destroy(a);
    CHECK_EQ(nul, want);
    CHECK_EQ(!kiln_pb_nul_free(kiln_otlp_request_descriptor(), req.b, req.n), want);
    char fused[256], walked[256];
    kiln_status st = invoke(&req, kiln_otlp_unpack_message, fused);
    CHECK_EQ(st, want ? KILN_INVALID_ARGUMENT : KILN_OK);
    CHECK_EQ(invoke(&req, NULL, walked), st);
    if (want) {
        CHECK(strcmp(fused, refusal) == 0);
        CHECK(strcmp(walked, refusal) == 0);
    }
    if (nul != want || st != (want ? KILN_INVALID_ARGUMENT : KILN_OK))
        printf("  NUL at %d (as bytes: %d): noted %d, status %d\n", at, as_bytes, nul, st);
}

TEST(nul_in_strings_refused_in_bytes_accepted)
{
    for (nul_at at = NUL_NOWHERE; at < NUL_KINDS; at++)
        check_nul(at, false);
    check_nul(NUL_RESOURCE_VALUE, true);
    check_nul(NUL_SCOPE_VALUE, true);
    check_nul(NUL_SAMPLE_VALUE, true);
}

int main(void)
{
    RUN(captures_decode_alike);
    RUN(every_truncation_decodes_alike);
    RUN(mutations_decode_alike);
    RUN(wire_quirks_decode_alike);
    RUN(oneof_merges_decode_alike);
    RUN(scalar_attributes_decode_alike);
    RUN(deep_kvlist_decodes_alike);
    RUN(deep_anyvalue_decodes_alike);
    RUN(arena_cap_refuses);
    RUN(nul_in_strings_refused_in_bytes_accepted);
    return check_done();
}
