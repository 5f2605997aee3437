/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for pbjson: protojson encoding and decoding of querier, push,
 * types and OTLP messages, a hand-built map message, and error handling. */
#include <math.h>
#include <stddef.h>

#include "check.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "pbjson.h"
#include "push/v1/push.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "types/v1/types.pb-c.h"

#define OTLP_REQ                                                                                   \
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
#define OTLP_DESC                                                                                  \
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor
#define SMS_DESC querier__v1__select_merge_stacktraces_request__descriptor
#define ANY_VALUE Opentelemetry__Proto__Common__V1__AnyValue
#define ANY_DESC opentelemetry__proto__common__v1__any_value__descriptor

/* Decodes s into a message of type desc in a, or returns NULL and fills err. */
static ProtobufCMessage *dec(const ProtobufCMessageDescriptor *desc, const char *s, kiln_arena_t *a,
                             kiln_err *err)
{
    ProtobufCMessage *m = NULL;
    kiln_err e0 = {KILN_OK, ""};
    kiln_err *e = err ? err : &e0;
    e->code = KILN_OK;
    e->msg[0] = '\0';
    kiln_status st = kiln_pbjson_decode(desc, s, strlen(s), a, &m, e);
    if (st != KILN_OK)
        return NULL;
    return m;
}

/* Encodes m; the caller frees the returned string. */
static char *enc(const ProtobufCMessage *m)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    if (!kiln_pbjson_encode(m, &b)) {
        kiln_buf_free(&b);
        return NULL;
    }
    if (b.ptr == NULL)
        return NULL;
    return kiln_buf_detach(&b, NULL);
}

/* Checks that s encodes back to itself after decoding as desc. */
static int roundtrips(const ProtobufCMessageDescriptor *desc, const char *s)
{
    kiln_arena_t *a = kiln_arena_create(0);
    ProtobufCMessage *m = dec(desc, s, a, NULL);
    char *out = m ? enc(m) : NULL;
    int ok = out != NULL && strcmp(out, s) == 0;
    if (!ok)
        printf("  roundtrip: %s\n  got:       %s\n", s, out ? out : "(null)");
    free(out);
    kiln_arena_destroy(a);
    return ok;
}

/* Returns the error message for decoding s as desc ("" if it decoded). */
static const char *dec_err(const ProtobufCMessageDescriptor *desc, const char *s, size_t len)
{
    static kiln_err err;
    kiln_arena_t *a = kiln_arena_create(0);
    ProtobufCMessage *m = NULL;
    err.msg[0] = '\0';
    kiln_status st = kiln_pbjson_decode(desc, s, len, a, &m, &err);
    kiln_arena_destroy(a);
    if (st == KILN_OK)
        return "";
    return err.msg;
}

static int fails(const ProtobufCMessageDescriptor *desc, const char *s)
{
    const char *msg = dec_err(desc, s, strlen(s));
    if (msg[0] == '\0')
        printf("  decoded but should fail: %s\n", s);
    return msg[0] != '\0';
}

TEST(select_merge_camel_names)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in = "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                     "\"labelSelector\":\"{service_name=\\\"api\\\"}\",\"start\":\"1700000000000\","
                     "\"end\":1700000360000,\"maxNodes\":\"16384\","
                     "\"format\":\"PROFILE_FORMAT_TREE\"}";
    Querier__V1__SelectMergeStacktracesRequest *r = (void *)dec(&SMS_DESC, in, a, NULL);
    CHECK(r != NULL);
    if (r == NULL)
        goto out;
    CHECK_STR(r->profile_typeid, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    CHECK_STR(r->label_selector, "{service_name=\"api\"}");
    CHECK_EQ(r->start, 1700000000000LL);
    CHECK_EQ(r->end, 1700000360000LL);
    CHECK_EQ(r->max_nodes, 16384);
    CHECK_EQ(r->format, QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE);
    CHECK(r->stack_trace_selector == NULL);
    CHECK_EQ(r->n_profile_id_selector, 0);
    char *out = enc(&r->base);
    CHECK_STR(out, "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                   "\"labelSelector\":\"{service_name=\\\"api\\\"}\",\"start\":\"1700000000000\","
                   "\"end\":\"1700000360000\",\"maxNodes\":\"16384\","
                   "\"format\":\"PROFILE_FORMAT_TREE\"}");
    free(out);
out:
    kiln_arena_destroy(a);
}

TEST(select_merge_proto_names)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in = "{ \"profile_typeID\" : \"memory:alloc_space:bytes:space:bytes\",\n"
                     "  \"label_selector\": \"{}\", \"max_nodes\": 1024, \"format\": 1,\n"
                     "  \"stack_trace_selector\": {\"call_site\": [{\"name\": \"main\"}],"
                     " \"goPgo\": {\"keepLocations\": 5, \"aggregate_callees\": true}},"
                     "  \"profileIdSelector\": [\"a\", \"b\"], \"async\": false }";
    Querier__V1__SelectMergeStacktracesRequest *r = (void *)dec(&SMS_DESC, in, a, NULL);
    CHECK(r != NULL);
    if (r == NULL)
        goto out;
    CHECK_STR(r->profile_typeid, "memory:alloc_space:bytes:space:bytes");
    CHECK_EQ(r->max_nodes, 1024);
    CHECK_EQ(r->format, QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH);
    CHECK(r->stack_trace_selector != NULL && r->stack_trace_selector->n_call_site == 1);
    CHECK_STR(r->stack_trace_selector->call_site[0]->name, "main");
    CHECK_EQ(r->stack_trace_selector->go_pgo->keep_locations, 5);
    CHECK_EQ(r->stack_trace_selector->go_pgo->aggregate_callees, 1);
    CHECK_EQ(r->n_profile_id_selector, 2);
    CHECK_STR(r->profile_id_selector[1], "b");
    char *out = enc(&r->base);
    CHECK_STR(out, "{\"profileTypeID\":\"memory:alloc_space:bytes:space:bytes\",\"labelSelector\":"
                   "\"{}\",\"maxNodes\":\"1024\",\"format\":\"PROFILE_FORMAT_FLAMEGRAPH\","
                   "\"stackTraceSelector\":{\"callSite\":[{\"name\":\"main\"}],\"goPgo\":{"
                   "\"keepLocations\":5,\"aggregateCallees\":true}},"
                   "\"profileIdSelector\":[\"a\",\"b\"]}");
    free(out);
    /* The decoded message is a valid protobuf-c message: it packs and unpacks. */
    uint8_t buf[512];
    size_t n = protobuf_c_message_get_packed_size(&r->base);
    CHECK(n < sizeof(buf));
    protobuf_c_message_pack(&r->base, buf);
    Querier__V1__SelectMergeStacktracesRequest *u =
        querier__v1__select_merge_stacktraces_request__unpack(NULL, n, buf);
    CHECK(u != NULL && u->max_nodes == 1024 && strcmp(u->label_selector, "{}") == 0);
    querier__v1__select_merge_stacktraces_request__free_unpacked(u, NULL);
out:
    kiln_arena_destroy(a);
}

TEST(defaults_omitted_and_null)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in = "{\"profileTypeID\":null,\"start\":\"0\",\"maxNodes\":0,\"format\":null,"
                     "\"stackTraceSelector\":null,\"profileIdSelector\":null,\"async\":false,"
                     "\"labelSelector\":\"\",\"spanSelector\":[]}";
    ProtobufCMessage *m = dec(&SMS_DESC, in, a, NULL);
    CHECK(m != NULL);
    char *out = m ? enc(m) : NULL;
    CHECK_STR(out, "{}");
    free(out);
    Querier__V1__SelectMergeStacktracesRequest *r = (void *)m;
    CHECK(r != NULL && r->profile_typeid != NULL && r->profile_typeid[0] == '\0');
    CHECK(r != NULL && protobuf_c_message_get_packed_size(m) == 0);
    kiln_arena_destroy(a);
}

TEST(push_raw_profile_base64)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in = "{\"series\":[{\"labels\":[{\"name\":\"__name__\",\"value\":\"cpu\"},"
                     "{\"name\":\"service_name\",\"value\":\"app\"}],\"samples\":[{\"rawProfile\":"
                     "\"H4sIAAAA/w==\",\"ID\":\"abc\"},{\"raw_profile\":\"H4sIAAAA_w\"},"
                     "{\"rawProfile\":\"AQ\"},{\"rawProfile\":\"AQI=\"}]}]}";
    Push__V1__PushRequest *r = (void *)dec(&push__v1__push_request__descriptor, in, a, NULL);
    CHECK(r != NULL);
    if (r == NULL)
        goto out;
    CHECK_EQ(r->n_series, 1);
    Push__V1__RawProfileSeries *s = r->series[0];
    CHECK_EQ(s->n_labels, 2);
    CHECK_STR(s->labels[1]->value, "app");
    CHECK_EQ(s->n_samples, 4);
    static const uint8_t want[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0xff};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(s->samples[i]->raw_profile.len, sizeof(want));
        CHECK(memcmp(s->samples[i]->raw_profile.data, want, sizeof(want)) == 0);
    }
    CHECK_STR(s->samples[0]->id, "abc");
    CHECK_EQ(s->samples[2]->raw_profile.len, 1);
    CHECK_EQ(s->samples[3]->raw_profile.len, 2);
    CHECK_EQ(s->samples[3]->raw_profile.data[1], 2);
    char *out = enc(&r->base);
    CHECK_STR(out, "{\"series\":[{\"labels\":[{\"name\":\"__name__\",\"value\":\"cpu\"},"
                   "{\"name\":\"service_name\",\"value\":\"app\"}],\"samples\":[{\"rawProfile\":"
                   "\"H4sIAAAA/w==\",\"ID\":\"abc\"},{\"rawProfile\":\"H4sIAAAA/w==\"},"
                   "{\"rawProfile\":\"AQ==\"},{\"rawProfile\":\"AQI=\"}]}]}");
    free(out);
out:
    kiln_arena_destroy(a);
}

TEST(base64_errors)
{
    const ProtobufCMessageDescriptor *d = &push__v1__raw_sample__descriptor;
    CHECK(fails(d, "{\"rawProfile\":\"A\"}"));
    CHECK(fails(d, "{\"rawProfile\":\"AQ=\"}"));
    CHECK(fails(d, "{\"rawProfile\":\"A===\"}"));
    CHECK(fails(d, "{\"rawProfile\":\"A+_B\"}"));
    CHECK(fails(d, "{\"rawProfile\":\"AQ==AQ==\"}"));
    CHECK(fails(d, "{\"rawProfile\":\"A Q\"}"));
    CHECK(fails(d, "{\"rawProfile\":12}"));
    CHECK(roundtrips(d, "{\"rawProfile\":\"+/+/\"}"));
    CHECK(roundtrips(d, "{}"));
}

TEST(flamegraph_int64_strings)
{
    const char *in = "{\"names\":[\"total\",\"main\",\"work\"],\"levels\":[{\"values\":[\"0\","
                     "\"100\",\"0\",\"0\"]},{\"values\":[\"0\",\"100\",\"50\",\"1\"]},{}],"
                     "\"total\":\"100\",\"maxSelf\":\"50\"}";
    CHECK(roundtrips(&querier__v1__flame_graph__descriptor, in));
    kiln_arena_t *a = kiln_arena_create(0);
    const char *nums = "{\"levels\":[{\"values\":[1,\"-2\",3e2,\"9223372036854775807\","
                       "-9223372036854775808]}],\"max_self\":7}";
    Querier__V1__FlameGraph *fg = (void *)dec(&querier__v1__flame_graph__descriptor, nums, a, NULL);
    CHECK(fg != NULL && fg->n_levels == 1 && fg->levels[0]->n_values == 5);
    if (fg != NULL && fg->n_levels == 1 && fg->levels[0]->n_values == 5) {
        CHECK_EQ(fg->levels[0]->values[1], -2);
        CHECK_EQ(fg->levels[0]->values[2], 300);
        CHECK(fg->levels[0]->values[3] == INT64_MAX);
        CHECK(fg->levels[0]->values[4] == INT64_MIN);
        CHECK_EQ(fg->max_self, 7);
    }
    kiln_arena_destroy(a);
    CHECK(roundtrips(&querier__v1__flame_graph_diff__descriptor,
                     "{\"total\":\"3\",\"leftTicks\":\"1\",\"rightTicks\":\"2\"}"));
}

TEST(series_response_labels_set)
{
    const char *in = "{\"labelsSet\":[{\"labels\":[{\"name\":\"service_name\",\"value\":\"a\"}]},"
                     "{\"labels\":[{\"name\":\"service_name\",\"value\":\"b\"},{\"name\":\"pod\","
                     "\"value\":\"x\"}]},{}]}";
    CHECK(roundtrips(&querier__v1__series_response__descriptor, in));
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SeriesResponse *r =
        (void *)dec(&querier__v1__series_response__descriptor,
                    "{\"labels_set\":[{\"labels\":[{\"name\":\"n\",\"value\":\"v\"}]}]}", a, NULL);
    CHECK(r != NULL && r->n_labels_set == 1 && r->labels_set[0]->n_labels == 1);
    CHECK(r != NULL && strcmp(r->labels_set[0]->labels[0]->name, "n") == 0);
    kiln_arena_destroy(a);
}

TEST(enums_by_name_and_number)
{
    const ProtobufCMessageDescriptor *d = &SMS_DESC;
    kiln_arena_t *a = kiln_arena_create(0);
    Querier__V1__SelectMergeStacktracesRequest *r;
    r = (void *)dec(d, "{\"format\":\"PROFILE_FORMAT_PPROF\"}", a, NULL);
    CHECK(r != NULL && r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF);
    r = (void *)dec(d, "{\"format\":3}", a, NULL);
    CHECK(r != NULL && r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT);
    /* Unknown names are dropped (DiscardUnknown); unknown numbers are kept. */
    r = (void *)dec(d, "{\"format\":\"PROFILE_FORMAT_NOPE\"}", a, NULL);
    CHECK(r != NULL && r->format == 0);
    r = (void *)dec(d, "{\"format\":42}", a, NULL);
    CHECK(r != NULL && (int)r->format == 42);
    char *out = r ? enc(&r->base) : NULL;
    CHECK_STR(out, "{\"format\":42}");
    free(out);
    CHECK(roundtrips(d, "{\"format\":\"PROFILE_FORMAT_DOT\"}"));
    CHECK(fails(d, "{\"format\":true}"));
    CHECK(fails(d, "{\"format\":1.5}"));
    CHECK(fails(d, "{\"format\":4294967296}"));
    kiln_arena_destroy(a);
}

TEST(unknown_fields_ignored)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in = "{\"extra\":{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\"},\"start\":\"5\","
                     "\"[ext.field]\":true,\"x\":-1.5e3,\"y\":[],\"z\":{},\"w\":false,\"v\":null}";
    Querier__V1__SelectMergeStacktracesRequest *r = (void *)dec(&SMS_DESC, in, a, NULL);
    CHECK(r != NULL && r->start == 5);
    /* Skipped values are still checked for JSON syntax. */
    CHECK(fails(&SMS_DESC, "{\"x\":[1,]}"));
    CHECK(fails(&SMS_DESC, "{\"x\":\"\\q\"}"));
    CHECK(fails(&SMS_DESC, "{\"x\":01}"));
    kiln_arena_destroy(a);
}

TEST(int_conversions)
{
    const ProtobufCMessageDescriptor *d = &SMS_DESC;
    const ProtobufCMessageDescriptor *g = &types__v1__go_pgo__descriptor;
    kiln_arena_t *a = kiln_arena_create(0);
    Types__V1__GoPGO *p = (void *)dec(g, "{\"keepLocations\":4294967295}", a, NULL);
    CHECK(p != NULL && p->keep_locations == UINT32_MAX);
    p = (void *)dec(g, "{\"keepLocations\":\"1.0e1\"}", a, NULL);
    CHECK(p != NULL && p->keep_locations == 10);
    p = (void *)dec(g, "{\"keepLocations\":-0}", a, NULL);
    CHECK(p != NULL && p->keep_locations == 0);
    CHECK_STR(dec_err(g, "{\"keepLocations\":-1}", 20),
              "json: field \"keepLocations\": integer out of range at offset 17");
    CHECK(fails(g, "{\"keepLocations\":4294967296}"));
    CHECK_STR(dec_err(d, "{\"maxNodes\":1.5}", 16),
              "json: field \"maxNodes\": expected an integer at offset 12");
    CHECK(fails(d, "{\"maxNodes\":\"9223372036854775808\"}"));
    CHECK(fails(d, "{\"maxNodes\":1e19}"));
    CHECK(fails(d, "{\"maxNodes\":\" 1\"}"));
    CHECK(fails(d, "{\"maxNodes\":\"\"}"));
    CHECK(fails(d, "{\"maxNodes\":\"0x10\"}"));
    CHECK(fails(d, "{\"maxNodes\":1e999999999999}"));
    CHECK(fails(d, "{\"async\":\"true\"}"));
    CHECK(fails(d, "{\"async\":1}"));
    Querier__V1__SelectMergeStacktracesRequest *r = (void *)dec(
        d, "{\"maxNodes\":1e-0,\"start\":\"-9223372036854775808\",\"end\":0.0}", a, NULL);
    CHECK(r != NULL && r->max_nodes == 1 && r->start == INT64_MIN && r->end == 0);
    kiln_arena_destroy(a);
}

TEST(uint64_and_fixed64)
{
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__profiles__v1development__profile__descriptor;
    CHECK(roundtrips(d, "{\"timeUnixNano\":\"18446744073709551615\",\"durationNano\":\"1\"}"));
    CHECK(fails(d, "{\"timeUnixNano\":\"18446744073709551616\"}"));
    CHECK(fails(d, "{\"durationNano\":-1}"));
    CHECK(roundtrips(&opentelemetry__proto__profiles__v1development__sample__descriptor,
                     "{\"stackIndex\":-3,\"timestampsUnixNano\":[\"1\",\"2\"]}"));
}

TEST(doubles)
{
    const ProtobufCMessageDescriptor *d = &types__v1__heatmap_slot__descriptor;
    CHECK(roundtrips(d, "{\"yMin\":[0.1,1.5,-2,100,1e+21,1.2345e+300,1e-7,0.000001,"
                        "123456789012345680000,5e-324,1.7976931348623157e+308,-0]}"));
    CHECK(roundtrips(d, "{\"yMin\":[\"NaN\",\"Infinity\",\"-Infinity\"]}"));
    kiln_arena_t *a = kiln_arena_create(0);
    Types__V1__HeatmapSlot *s = (void *)dec(d, "{\"yMin\":[\"2.5\",1E2,\"NaN\",-0.0e0]}", a, NULL);
    CHECK(s != NULL && s->n_y_min == 4);
    if (s != NULL && s->n_y_min == 4) {
        CHECK(s->y_min[0] == 2.5 && s->y_min[1] == 100 && isnan(s->y_min[2]));
        CHECK(s->y_min[3] == 0 && signbit(s->y_min[3]));
    }
    Types__V1__Point *p = (void *)dec(&types__v1__point__descriptor, "{\"value\":0.3}", a, NULL);
    CHECK(p != NULL && p->value == 0.3);
    kiln_arena_destroy(a);
    CHECK(fails(d, "{\"yMin\":[1e400]}"));
    CHECK(fails(d, "{\"yMin\":[\"nan\"]}"));
    CHECK(fails(d, "{\"yMin\":[\"1 \"]}"));
    CHECK(fails(d, "{\"yMin\":[null]}"));
    CHECK(fails(d, "{\"yMin\":[.5]}"));
    CHECK(fails(d, "{\"yMin\":[1.]}"));
    CHECK(fails(d, "{\"yMin\":[+1]}"));
    CHECK(fails(d, "{\"yMin\":1}"));
}

TEST(oneof)
{
    CHECK(roundtrips(&ANY_DESC, "{\"intValue\":\"0\"}"));
    CHECK(roundtrips(&ANY_DESC, "{\"stringValue\":\"\"}"));
    CHECK(roundtrips(&ANY_DESC, "{\"boolValue\":false}"));
    CHECK(roundtrips(&ANY_DESC, "{\"doubleValue\":0}"));
    CHECK(roundtrips(&ANY_DESC, "{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},{}]}}"));
    CHECK(roundtrips(&ANY_DESC, "{\"bytesValue\":\"AAE=\"}"));
    kiln_arena_t *a = kiln_arena_create(0);
    ANY_VALUE *v = (void *)dec(&ANY_DESC, "{\"stringValue\":null,\"int_value\":\"7\"}", a, NULL);
    CHECK(v != NULL &&
          v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    CHECK(v != NULL && v->int_value == 7);
    v = (void *)dec(&ANY_DESC, "{}", a, NULL);
    CHECK(v != NULL && v->value_case == 0);
    kiln_arena_destroy(a);
    CHECK_STR(dec_err(&ANY_DESC, "{\"intValue\":\"1\",\"stringValue\":\"x\"}", 34),
              "json: field \"stringValue\": another member of the oneof is already set "
              "at offset 30");
}

TEST(strings_and_escapes)
{
    const ProtobufCMessageDescriptor *d = &types__v1__label_pair__descriptor;
    kiln_arena_t *a = kiln_arena_create(0);
    Types__V1__LabelPair *p =
        (void *)dec(d,
                    "{\"name\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u00e9\\u20AC\\ud83d\\ude00\","
                    "\"value\":\"h\xc3\xa9\"}",
                    a, NULL);
    CHECK(p != NULL);
    if (p != NULL) {
        CHECK_STR(p->name, "a\"\\/\b\f\n\r\t\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        CHECK_STR(p->value, "h\xc3\xa9");
        char *out = enc(&p->base);
        CHECK_STR(out, "{\"name\":\"a\\\"\\\\/\\b\\f\\n\\r\\t\\u0001"
                       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                       "\"value\":\"h\xc3\xa9\"}");
        free(out);
    }
    /* Invalid UTF-8 cannot reach the encoder through the decoder, but a
     * message built in C can hold it: it is replaced, keeping the JSON valid. */
    Types__V1__LabelPair lp = TYPES__V1__LABEL_PAIR__INIT;
    lp.name = "x\xff\x7fy\xc3";
    char *out = enc(&lp.base);
    CHECK_STR(out, "{\"name\":\"x\\ufffd\\u007fy\\ufffd\"}");
    free(out);
    /* Keys are unescaped before the field lookup. */
    p = (void *)dec(d, "{\"\\u006eame\":\"x\"}", a, NULL);
    CHECK(p != NULL && strcmp(p->name, "x") == 0);
    kiln_arena_destroy(a);
    CHECK(fails(d, "{\"name\":\"\xff\"}"));
    CHECK(fails(d, "{\"name\":\"\xc0\xaf\"}"));         /* overlong */
    CHECK(fails(d, "{\"name\":\"\xed\xa0\x80\"}"));     /* encoded surrogate */
    CHECK(fails(d, "{\"name\":\"\xf4\x90\x80\x80\"}")); /* past U+10FFFF */
    CHECK(fails(d, "{\"name\":\"\xe2\x82\"}"));         /* truncated */
    CHECK(fails(d, "{\"name\":\"\\ud83d\"}"));          /* lone high surrogate */
    CHECK(fails(d, "{\"name\":\"\\ude00\"}"));          /* lone low surrogate */
    CHECK(fails(d, "{\"name\":\"\\ud83d\\u0041\"}"));
    CHECK(fails(d, "{\"name\":\"\\u00g0\"}"));
    CHECK(fails(d, "{\"name\":\"a\tb\"}"));      /* raw control character */
    CHECK(fails(d, "{\"name\":\"a\\u0000b\"}")); /* NUL would truncate the C string */
    CHECK(fails(d, "{\"n\xff\":1}"));            /* keys are checked too */
}

TEST(syntax_errors)
{
    const ProtobufCMessageDescriptor *d = &SMS_DESC;
    static const char *bad[] = {
        "",
        " ",
        "[]",
        "null",
        "\"x\"",
        "{",
        "}",
        "{\"start\"}",
        "{\"start\":}",
        "{\"start\":1,}",
        "{,}",
        "{\"start\":1 \"end\":2}",
        "{start:1}",
        "{'start':1}",
        "{\"start\":1}}",
        "{\"start\":1} x",
        "{\"labelSelector\":\"abc}",
        "{\"async\":tru}",
        "{\"async\":True}",
        "{\"start\":1}{}",
        "{\"profileIdSelector\":[\"a\" \"b\"]}",
        "{\"profileIdSelector\":[\"a\",]}",
        "{\"profileIdSelector\":[null]}",
        "{\"profileIdSelector\":\"a\"}",
        "{\"profileIdSelector\":{}}",
        "{\"start\":1,\"start\":2}",
        "{\"start\":1,\"start\":null}",
        "{\"maxNodes\":5,\"max_nodes\":6}",
        "\xef\xbb\xbf{}",
        "{\"stackTraceSelector\":[]}",
        "{\"stackTraceSelector\":\"x\"}",
        "{\"labelSelector\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(fails(d, bad[i]));
    CHECK_STR(dec_err(d, "{\"maxNodes\":true}", 17),
              "json: field \"maxNodes\": expected number at offset 12");
    CHECK_STR(dec_err(d, "{\"start\":1,}", 12), "json: expected string key at offset 11");
    CHECK_STR(dec_err(d, "{\"start\":1", 10), "json: unexpected end of input at offset 10");
    CHECK_STR(dec_err(d, "{\"start\":1,\"start\":2}", 21),
              "json: field \"start\": duplicate field at offset 11");
    /* An embedded NUL is just a bad character: the length bounds the input. */
    CHECK(dec_err(d, "{\"start\":1}\0", 12)[0] != '\0');
    CHECK(dec_err(d, "{\"start\":1}", 11)[0] == '\0');
    kiln_err err;
    ProtobufCMessage *m = NULL;
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK_EQ(kiln_pbjson_decode(d, "{", 1, a, &m, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(err.code, KILN_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_EQ(kiln_pbjson_decode(d, NULL, 0, a, &m, NULL), KILN_INVALID_ARGUMENT);
    kiln_arena_destroy(a);
}

/* Builds prefix, n copies of open, mid, n copies of close, suffix. Caller frees. */
static char *nest(const char *prefix, const char *open, const char *mid, const char *close,
                  const char *suffix, int n)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, prefix);
    for (int i = 0; i < n; i++)
        kiln_buf_puts(&b, open);
    kiln_buf_puts(&b, mid);
    for (int i = 0; i < n; i++)
        kiln_buf_puts(&b, close);
    kiln_buf_puts(&b, suffix);
    return kiln_buf_detach(&b, NULL);
}

TEST(depth_limit)
{
    const ProtobufCMessageDescriptor *d = &SMS_DESC;
    /* Unknown values: the top object is level 1, so 63 arrays fit and 64 do not. */
    char *ok = nest("{\"x\":", "[", "1", "]", "}", 63);
    char *bomb = nest("{\"x\":", "[", "1", "]", "}", 64);
    char *huge = nest("{\"x\":", "[", "", "]", "}", 100000);
    CHECK_STR(dec_err(d, ok, strlen(ok)), "");
    CHECK(strstr(dec_err(d, bomb, strlen(bomb)), "nesting") != NULL);
    CHECK(strstr(dec_err(d, huge, strlen(huge)), "nesting") != NULL);
    free(ok);
    free(bomb);
    free(huge);
    /* Known recursive messages: AnyValue.arrayValue.values[]. */
    char *any_ok = nest("", "{\"arrayValue\":{\"values\":[", "{}", "]}}", "", 21);
    char *any_bomb = nest("", "{\"arrayValue\":{\"values\":[", "{}", "]}}", "", 22);
    CHECK_STR(dec_err(&ANY_DESC, any_ok, strlen(any_ok)), "");
    CHECK(strstr(dec_err(&ANY_DESC, any_bomb, strlen(any_bomb)), "nesting deeper than 64") != NULL);
    free(any_ok);
    free(any_bomb);
}

TEST(truncated_inputs)
{
    /* Every strict prefix of a valid document must fail cleanly. */
    const char *in = "{\"series\":[{\"labels\":[{\"name\":\"a\\u00e9\","
                     "\"value\":\"\\ud83d\\ude00\"}],\"samples\":[{\"rawProfile\":\"AAEC\","
                     "\"ID\":\"x\"}]}],\"zz\":[1.5e3,true,null]}";
    size_t n = strlen(in);
    CHECK_STR(dec_err(&push__v1__push_request__descriptor, in, n), "");
    for (size_t i = 0; i < n; i++) {
        char *cut = malloc(i + 1);
        memcpy(cut, in, i);
        if (dec_err(&push__v1__push_request__descriptor, cut, i)[0] == '\0') {
            printf("  prefix %zu decoded\n", i);
            CHECK(0);
        }
        free(cut);
    }
}

TEST(arena_cap)
{
    kiln_arena_t *a = kiln_arena_create(4096);
    kiln_err err;
    ProtobufCMessage *m = NULL;
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "{\"names\":[");
    for (int i = 0; i < 5000; i++)
        kiln_buf_printf(&b, "%s\"name%d\"", i ? "," : "", i);
    kiln_buf_puts(&b, "]}");
    char *s = kiln_buf_detach(&b, NULL);
    CHECK_EQ(kiln_pbjson_decode(&querier__v1__flame_graph__descriptor, s, strlen(s), a, &m, &err),
             KILN_RESOURCE_EXHAUSTED);
    CHECK_EQ(err.code, KILN_RESOURCE_EXHAUSTED);
    CHECK(m == NULL);
    kiln_arena_destroy(a);
    a = kiln_arena_create(0);
    CHECK_OK(kiln_pbjson_decode(&querier__v1__flame_graph__descriptor, s, strlen(s), a, &m, &err));
    CHECK(m != NULL && ((Querier__V1__FlameGraph *)m)->n_names == 5000);
    CHECK_STR(((Querier__V1__FlameGraph *)m)->names[4999], "name4999");
    kiln_arena_destroy(a);
    free(s);
}

TEST(encode_buffer_max)
{
    Types__V1__LabelPair lp = TYPES__V1__LABEL_PAIR__INIT;
    lp.name = "service_name";
    lp.value = "some-long-service-value";
    kiln_buf b;
    kiln_buf_init(&b, 20);
    CHECK(kiln_buf_puts(&b, "pre"));
    CHECK(!kiln_pbjson_encode(&lp.base, &b));
    CHECK_EQ(b.len, 3); /* partial output dropped */
    CHECK_STR(b.ptr, "pre");
    kiln_buf_free(&b);
    kiln_buf_init(&b, 0);
    CHECK(kiln_pbjson_encode(&lp.base, &b));
    CHECK_STR(b.ptr, "{\"name\":\"service_name\",\"value\":\"some-long-service-value\"}");
    kiln_buf_free(&b);
}

/* ---- a hand-built map message, since our protos have none:
 * package test; message MapMsg { map<string, int64> counts = 1;
 *   map<int32, string> names = 2; float ratio = 3; map<bool, Labels> sets = 4; } */

typedef struct {
    ProtobufCMessage base;
    char *key;
    int64_t value;
} CountsEntry;

typedef struct {
    ProtobufCMessage base;
    int32_t key;
    char *value;
} NamesEntry;

typedef struct {
    ProtobufCMessage base;
    protobuf_c_boolean key;
    Types__V1__Labels *value;
} SetsEntry;

typedef struct {
    ProtobufCMessage base;
    size_t n_counts;
    CountsEntry **counts;
    size_t n_names;
    NamesEntry **names;
    float ratio;
    size_t n_sets;
    SetsEntry **sets;
} MapMsg;

static const ProtobufCMessageDescriptor counts_desc, names_desc, sets_desc, map_msg_desc;

static void counts_init(ProtobufCMessage *m)
{
    CountsEntry init = {PROTOBUF_C_MESSAGE_INIT(&counts_desc), (char *)protobuf_c_empty_string, 0};
    *(CountsEntry *)m = init;
}

static void names_init(ProtobufCMessage *m)
{
    NamesEntry init = {PROTOBUF_C_MESSAGE_INIT(&names_desc), 0, (char *)protobuf_c_empty_string};
    *(NamesEntry *)m = init;
}

static void sets_init(ProtobufCMessage *m)
{
    SetsEntry init = {PROTOBUF_C_MESSAGE_INIT(&sets_desc), 0, NULL};
    *(SetsEntry *)m = init;
}

static void map_msg_init(ProtobufCMessage *m)
{
    MapMsg init = {PROTOBUF_C_MESSAGE_INIT(&map_msg_desc), 0, NULL, 0, NULL, 0, 0, NULL};
    *(MapMsg *)m = init;
}

/* Proto3 strings default to protobuf_c_empty_string, which free_unpacked must not free. */
#define FIELD(name, id, label, type, q, off, desc)                                                 \
    {                                                                                              \
        name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, q, off, desc,                  \
            PROTOBUF_C_TYPE_##type == PROTOBUF_C_TYPE_STRING ? &protobuf_c_empty_string : NULL, 0, \
            0, NULL, NULL                                                                          \
    }

static const ProtobufCFieldDescriptor counts_fields[] = {
    FIELD("key", 1, NONE, STRING, 0, offsetof(CountsEntry, key), NULL),
    FIELD("value", 2, NONE, INT64, 0, offsetof(CountsEntry, value), NULL),
};
static const ProtobufCFieldDescriptor names_fields[] = {
    FIELD("key", 1, NONE, INT32, 0, offsetof(NamesEntry, key), NULL),
    FIELD("value", 2, NONE, STRING, 0, offsetof(NamesEntry, value), NULL),
};
static const ProtobufCFieldDescriptor sets_fields[] = {
    FIELD("key", 1, NONE, BOOL, 0, offsetof(SetsEntry, key), NULL),
    FIELD("value", 2, NONE, MESSAGE, 0, offsetof(SetsEntry, value), &types__v1__labels__descriptor),
};
static const ProtobufCFieldDescriptor map_msg_fields[] = {
    FIELD("counts", 1, REPEATED, MESSAGE, offsetof(MapMsg, n_counts), offsetof(MapMsg, counts),
          &counts_desc),
    FIELD("names", 2, REPEATED, MESSAGE, offsetof(MapMsg, n_names), offsetof(MapMsg, names),
          &names_desc),
    FIELD("ratio", 3, NONE, FLOAT, 0, offsetof(MapMsg, ratio), NULL),
    FIELD("sets", 4, REPEATED, MESSAGE, offsetof(MapMsg, n_sets), offsetof(MapMsg, sets),
          &sets_desc),
};
static const unsigned by_name_2[] = {0, 1}, by_name_4[] = {0, 1, 2, 3};
static const ProtobufCIntRange ranges_2[] = {{1, 0}, {0, 2}}, ranges_4[] = {{1, 0}, {0, 4}};

#define DESC(full, short_, type, fields, n, by_name, ranges, init)                                 \
    {                                                                                              \
        PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, full, short_, short_, "test", sizeof(type), n,       \
            fields, by_name, 1, ranges, init, NULL, NULL, NULL                                     \
    }

static const ProtobufCMessageDescriptor counts_desc =
    DESC("test.MapMsg.CountsEntry", "CountsEntry", CountsEntry, counts_fields, 2, by_name_2,
         ranges_2, counts_init);
static const ProtobufCMessageDescriptor names_desc =
    DESC("test.MapMsg.NamesEntry", "NamesEntry", NamesEntry, names_fields, 2, by_name_2, ranges_2,
         names_init);
static const ProtobufCMessageDescriptor sets_desc =
    DESC("test.MapMsg.SetsEntry", "SetsEntry", SetsEntry, sets_fields, 2, by_name_2, ranges_2,
         sets_init);
static const ProtobufCMessageDescriptor map_msg_desc =
    DESC("test.MapMsg", "MapMsg", MapMsg, map_msg_fields, 4, by_name_4, ranges_4, map_msg_init);

TEST(maps)
{
    const char *in = "{\"counts\":{\"a\":\"1\",\"b\xc3\xa9\":\"-2\"},"
                     "\"names\":{\"-5\":\"x\",\"7\":\"\"},\"ratio\":0.1,"
                     "\"sets\":{\"true\":{\"labels\":[{\"name\":\"n\",\"value\":\"v\"}]},"
                     "\"false\":{}}}";
    CHECK(roundtrips(&map_msg_desc, in));
    kiln_arena_t *a = kiln_arena_create(0);
    const char *in2 = "{\"counts\":{\"k\":3},\"names\":{\"1e1\":\"ten\"},"
                      "\"ratio\":\"3.4028235e38\"}";
    MapMsg *m = (void *)dec(&map_msg_desc, in2, a, NULL);
    CHECK(m != NULL && m->n_counts == 1 && m->n_names == 1);
    if (m != NULL && m->n_counts == 1 && m->n_names == 1) {
        CHECK_STR(m->counts[0]->key, "k");
        CHECK_EQ(m->counts[0]->value, 3);
        CHECK_EQ(m->names[0]->key, 10);
        CHECK(m->ratio == 3.4028235e38f);
        /* The entries pack as protoc's map wire format (repeated key/value messages). */
        uint8_t buf[128];
        size_t n = protobuf_c_message_pack(&m->base, buf);
        MapMsg *u = (MapMsg *)protobuf_c_message_unpack(&map_msg_desc, NULL, n, buf);
        CHECK(u != NULL && u->n_names == 1 && strcmp(u->names[0]->value, "ten") == 0);
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    kiln_arena_destroy(a);
    CHECK(fails(&map_msg_desc, "{\"names\":{\"x\":\"a\"}}"));
    CHECK(fails(&map_msg_desc, "{\"names\":{\"1\":null}}"));
    CHECK(fails(&map_msg_desc, "{\"names\":[]}"));
    CHECK(fails(&map_msg_desc, "{\"sets\":{\"yes\":{}}}"));
    CHECK(fails(&map_msg_desc, "{\"ratio\":3.5e38}"));
    CHECK(roundtrips(&map_msg_desc, "{\"ratio\":1e-7}"));
    CHECK(roundtrips(&map_msg_desc, "{\"ratio\":16777216}"));
    CHECK(roundtrips(&map_msg_desc, "{\"ratio\":3.4028235e+38}"));
}

/* ---- the real OTLP document, against its binary twin */

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*n ? *n : 1);
    protobuf_c_message_pack(m, p);
    return p;
}

TEST(otlp_json_matches_binary)
{
    size_t jlen = 0, blen = 0;
    char *json = (char *)check_read_testdata("grafana-pyroscope/otel-ebpf-profile.pb.json", &jlen);
    uint8_t *bin = check_read_testdata("grafana-pyroscope/otel-ebpf-profile.pb.bin", &blen);
    CHECK(json != NULL && bin != NULL);
    if (json == NULL || bin == NULL)
        goto out;
    kiln_arena_t *a = kiln_arena_create(64u << 20);
    kiln_err err = {0};
    ProtobufCMessage *m = NULL;
    CHECK_OK(kiln_pbjson_decode(&OTLP_DESC, json, jlen, a, &m, &err));
    if (m == NULL) {
        printf("  %s\n", err.msg);
        kiln_arena_destroy(a);
        goto out;
    }
    OTLP_REQ *r = (OTLP_REQ *)m;
    CHECK_EQ(r->n_resource_profiles, 77);
    CHECK(r->dictionary != NULL && r->dictionary->n_string_table == 334);
    OTLP_REQ *want = (OTLP_REQ *)protobuf_c_message_unpack(&OTLP_DESC, NULL, blen, bin);
    CHECK(want != NULL);
    size_t n1, n2;
    uint8_t *p1 = pack(m, &n1), *p2 = pack(&want->base, &n2);
    /* protobuf-c packs deterministically, in field-number order like Go. */
    CHECK_EQ(n1, n2);
    CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
    CHECK(n1 == blen && memcmp(p1, bin, blen) == 0);
    /* Encoding gives protojson's compact output: the file itself. */
    char *out = enc(m);
    CHECK(out != NULL && strlen(out) == jlen && memcmp(out, json, jlen) == 0);
    char *out2 = enc(&want->base);
    CHECK(out != NULL && out2 != NULL && strcmp(out, out2) == 0);
    free(out);
    free(out2);
    free(p1);
    free(p2);
    protobuf_c_message_free_unpacked(&want->base, NULL);
    kiln_arena_destroy(a);
out:
    free(json);
    free(bin);
}

int main(void)
{
    RUN(select_merge_camel_names);
    RUN(select_merge_proto_names);
    RUN(defaults_omitted_and_null);
    RUN(push_raw_profile_base64);
    RUN(base64_errors);
    RUN(flamegraph_int64_strings);
    RUN(series_response_labels_set);
    RUN(enums_by_name_and_number);
    RUN(unknown_fields_ignored);
    RUN(int_conversions);
    RUN(uint64_and_fixed64);
    RUN(doubles);
    RUN(oneof);
    RUN(strings_and_escapes);
    RUN(syntax_errors);
    RUN(depth_limit);
    RUN(truncated_inputs);
    RUN(arena_cap);
    RUN(encode_buffer_max);
    RUN(maps);
    RUN(otlp_json_matches_binary);
    return check_done();
}
