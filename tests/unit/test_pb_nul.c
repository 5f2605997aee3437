/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/net/pb_nul: the check against a reference here
 * that reads every message type, on the OTLP captures of shared testdata
 * and on copies of them with a NUL put in a string field, at every depth;
 * the NUL that pbdec notes while decoding those (the rpc layer's check of
 * OTLP requests) against both; hand-built push requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "otlp.h"
#include "pb_nul.h"
#include "push/v1/push.pb-c.h"

#define MAX_DEPTH 24

/* Where the string fields' bytes are, as the reference found them. */
typedef struct spans {
    size_t off[8192], len[8192];
    size_t n;
} spans;

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
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

/* The reference: reads every message field (no type is skipped), notes
 * each string's span in sp (when not NULL); false on a NUL in a string. */
static bool ref_nul_free(const ProtobufCMessageDescriptor *md, const uint8_t *base,
                         const uint8_t *data, size_t len, int depth, spans *sp)
{
    const uint8_t *p = data, *end = data + len;
    uint64_t key, n;
    bool ok = true;
    while (p < end && varint(&p, end, &key)) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(md, (unsigned)(key >> 3));
        switch (key & 7) {
        case 0:
            if (!varint(&p, end, &n))
                return ok;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
                return ok;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING) {
                if (sp != NULL && sp->n < 8192 && n > 0) {
                    sp->off[sp->n] = (size_t)(p - base);
                    sp->len[sp->n++] = n;
                }
                ok &= memchr(p, 0, n) == NULL;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < MAX_DEPTH)
                ok &= ref_nul_free(f->descriptor, base, p, n, depth + 1, sp);
            p += n;
            break;
        default:
            return ok;
        }
    }
    return ok;
}

/* Whether pbdec notes a NUL in a string of b (which must decode). */
static bool fused_nul(kiln_arena_t *a, const uint8_t *b, size_t len)
{
    bool nul = false;
    kiln_arena_reset(a);
    CHECK(kiln_otlp_unpack_message(a, b, len, &nul) != NULL);
    return nul;
}

/* A capture as is, then with one string's byte (first, middle or last) set
 * to NUL, string by string: the check, pbdec's note and the reference
 * agree each time. */
static void check_capture(const char *rel)
{
    size_t len = 0;
    uint8_t *b = check_read_testdata(rel, &len);
    CHECK(b != NULL);
    if (b == NULL)
        return;
    const ProtobufCMessageDescriptor *md = kiln_otlp_request_descriptor();
    static spans sp;
    sp.n = 0;
    CHECK(ref_nul_free(md, b, b, len, 0, &sp));
    CHECK(kiln_pb_nul_free(md, b, len));
    kiln_arena_t *a = kiln_arena_create(0);
    CHECK(!fused_nul(a, b, len));
    CHECK(sp.n > 10);
    size_t disagree = 0, refused = 0, fused = 0;
    for (size_t i = 0; i < sp.n; i++) {
        size_t at = sp.off[i] + (i % 3 == 0 ? 0 : i % 3 == 1 ? sp.len[i] / 2 : sp.len[i] - 1);
        uint8_t keep = b[at];
        b[at] = 0;
        bool ref = ref_nul_free(md, b, b, len, 0, NULL), got = kiln_pb_nul_free(md, b, len);
        bool noted = fused_nul(a, b, len);
        disagree += ref != got || noted == ref;
        refused += !got;
        fused += noted;
        b[at] = keep;
    }
    printf("  %s: %zu strings, %zu with a NUL refused, %zu noted by pbdec\n", rel, sp.n, refused,
           fused);
    CHECK_EQ(disagree, 0);
    CHECK_EQ(refused, sp.n);
    CHECK_EQ(fused, sp.n);
    kiln_arena_destroy(a);
    free(b);
}

TEST(otlp_captures)
{
    check_capture("grafana-pyroscope/otel-ebpf-profile.pb.bin");
    check_capture("hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin");
}

/* Bytes that only look like strings (sample values, ids) may hold NULs. */
TEST(push_request_labels)
{
    Types__V1__LabelPair lp = TYPES__V1__LABEL_PAIR__INIT;
    Types__V1__LabelPair *lps[1] = {&lp};
    Push__V1__RawSample rs = PUSH__V1__RAW_SAMPLE__INIT;
    Push__V1__RawSample *rss[1] = {&rs};
    Push__V1__RawProfileSeries series = PUSH__V1__RAW_PROFILE_SERIES__INIT;
    Push__V1__RawProfileSeries *ser[1] = {&series};
    Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
    static const uint8_t raw[4] = {1, 0, 0, 2};
    rs.raw_profile.data = (uint8_t *)raw;
    rs.raw_profile.len = sizeof(raw);
    series.labels = lps;
    series.n_labels = 1;
    series.samples = rss;
    series.n_samples = 1;
    req.series = ser;
    req.n_series = 1;
    lp.name = "service_name";
    lp.value = "app-x";
    uint8_t buf[256];
    size_t n = push__v1__push_request__pack(&req, buf);
    CHECK(kiln_pb_nul_free(&push__v1__push_request__descriptor, buf, n));
    uint8_t *x = NULL;
    for (size_t i = 0; i + 5 <= n && x == NULL; i++)
        x = memcmp(buf + i, "app-x", 5) == 0 ? buf + i : NULL;
    CHECK(x != NULL);
    if (x != NULL) {
        x[3] = 0;
        CHECK(!kiln_pb_nul_free(&push__v1__push_request__descriptor, buf, n));
        CHECK(!ref_nul_free(&push__v1__push_request__descriptor, buf, buf, n, 0, NULL));
    }
}

int main(void)
{
    RUN(otlp_captures);
    RUN(push_request_labels);
    return check_done();
}
