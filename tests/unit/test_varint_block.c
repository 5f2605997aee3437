/* SPDX-License-Identifier: Apache-2.0
 * Tests for common/format/varint_block: runs of varints of every length
 * (canonical and overlong), cut at every end, decoded by the block decoder
 * with a byte-at-a-time reader finishing where it stops, give exactly the
 * values written; it never reads past the input's end (ASan, on an input
 * allocated to its last byte) and, on a CPU with SSSE3, reads a run of
 * short varints whole. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "varint_block.h"
#include "xmalloc.h"
#include "xorshift.h"

#define MAX_VALUES 400

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

/* v as a varint at w, in one byte more than it needs when overlong. */
static size_t put_varint(uint8_t *w, uint64_t v, bool overlong)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        w[n++] = (uint8_t)(v | 0x80);
    if (overlong && n < 9) {
        w[n++] = (uint8_t)(v | 0x80);
        v = 0;
    }
    w[n++] = (uint8_t)v;
    return n;
}

/* A value of up to 21 bits (three varint bytes), or in long_share percent
 * of draws up to 64. */
static uint64_t random_value(unsigned long_share)
{
    unsigned bits = (unsigned)(rnd() % 100) < long_share ? 1 + (unsigned)(rnd() % 64)
                                                         : 1 + (unsigned)(rnd() % 21);
    uint64_t v = rnd();
    return bits == 64 ? v : v & ((1ull << bits) - 1);
}

/* Reads one varint the plain way; false at a truncated or overlong one. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= shift < 64 ? (uint64_t)(b & 0x7f) << shift : 0;
        if (b < 0x80)
            return true;
    }
    return false;
}

/* Decodes data[0..len) with the block decoder, and the plain reader for
 * each varint where it stops, into out (with its slack); returns the
 * values read. */
static size_t decode_all(const uint8_t *data, size_t len, uint64_t *out)
{
    const uint8_t *p = data, *end = data + len;
    size_t n = 0;
    while (p < end) {
        p += kiln_varint_block_decode(p, end, end, out, &n);
        uint64_t v;
        if (p == end || !read_varint(&p, end, &v))
            break;
        out[n++] = v;
    }
    return n;
}

TEST(runs_of_every_length_decode_as_written)
{
    uint8_t buf[MAX_VALUES * 10];
    uint64_t want[MAX_VALUES],
        *got = kiln_xmalloc((MAX_VALUES * 10 + KILN_VARINT_BLOCK_SLACK) * sizeof(*got));
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + (size_t)(rnd() % 60), len = 0;
        unsigned long_share = round % 3 == 0 ? 0 : round % 3 == 1 ? 5 : 40;
        for (size_t i = 0; i < n; i++) {
            want[i] = random_value(long_share);
            len += put_varint(buf + len, want[i], rnd() % 50 == 0);
        }
        /* The input ends at its last byte, so ASan sees any read past it. */
        uint8_t *data = kiln_xmalloc(len);
        memcpy(data, buf, len);
        size_t got_n = decode_all(data, len, got);
        CHECK_EQ(got_n, n);
        CHECK(memcmp(got, want, n * sizeof(*want)) == 0);
        free(data);
        if (check_cur_failed) {
            printf("  round %d: %zu values in %zu bytes\n", round, n, len);
            break;
        }
    }
    free(got);
}

TEST(stops_before_a_varint_cut_by_the_end)
{
    /* Twelve one- and two-byte varints, then a two-byte one whose last byte
     * lies past end: only the twelve are read, whatever bytes follow. */
    uint8_t data[40];
    memset(data, 0xff, sizeof(data));
    size_t len = 0;
    for (int i = 0; i < 12; i++)
        len += put_varint(data + len, i % 2 ? 300 : 5, false);
    data[len] = 0x81; /* end falls after this byte */
    uint64_t out[32 + KILN_VARINT_BLOCK_SLACK];
    size_t n = 0;
    size_t used = kiln_varint_block_decode(data, data + len + 1, data + sizeof(data), out, &n);
    CHECK(used <= len);
    CHECK(n <= 12);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(out[i], (uint64_t)(i % 2 ? 300 : 5));
}

TEST(reads_short_varints_whole_with_ssse3)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("ssse3"))
        return;
    uint8_t data[128];
    size_t len = 0;
    uint64_t want[40];
    for (size_t i = 0; i < 30; i++)
        len += put_varint(data + len, want[i] = (i * 7919) % 2000000, false);
    memset(data + len, 0, sizeof(data) - len);
    uint64_t out[64 + KILN_VARINT_BLOCK_SLACK];
    size_t n = 0;
    size_t used = kiln_varint_block_decode(data, data + len, data + sizeof(data), out, &n);
    CHECK_EQ(used, len);
    CHECK_EQ(n, (size_t)30);
    CHECK(memcmp(out, want, 30 * sizeof(*want)) == 0);
#endif
}

int main(void)
{
    RUN(runs_of_every_length_decode_as_written);
    RUN(stops_before_a_varint_cut_by_the_end);
    RUN(reads_short_varints_whole_with_ssse3);
    return check_done();
}
