/* SPDX-License-Identifier: Apache-2.0
 * varint_block: eight bytes at a time (varint_block.h). The continuation
 * bits of the eight bytes index a table that says how many whole varints
 * of at most three bytes they start with, how many bytes those take, and
 * the byte shuffle that spreads each into a 32-bit lane; the lanes' 7-bit
 * groups are then joined and widened to 64 bits in registers. */
#include "varint_block.h"

#include <stdbool.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define HAVE_BLOCK 1
#endif

#ifdef HAVE_BLOCK
#define LANES 8     /* varints a step can decode: one per input byte */
#define MAX_BYTES 3 /* the longest varint a 32-bit lane takes here */

/* Per continuation-bit mask of eight bytes (bit i: byte i has its top bit
 * set, or lies past the run's end): the varints it holds whole, the bytes
 * they take, and for each varint j the shuffle placing its bytes in lane j
 * (0x80: a zero byte). */
static struct {
    _Alignas(16) uint8_t shuffle[256][4 * LANES];
    uint8_t count[256];
    uint8_t bytes[256];
} table;

static bool have_ssse3;

static void fill_entry(unsigned mask)
{
    unsigned pos = 0, n = 0;
    for (unsigned i = 0; i < 4 * LANES; i++)
        table.shuffle[mask][i] = 0x80;
    while (pos < LANES) {
        unsigned last = pos;
        while (last < LANES && (mask >> last & 1u))
            last++;
        if (last == LANES || last - pos + 1 > MAX_BYTES)
            break; /* not whole within the eight bytes, or too long for a lane */
        for (unsigned b = pos; b <= last; b++)
            table.shuffle[mask][4 * n + (b - pos)] = (uint8_t)b;
        n++;
        pos = last + 1;
    }
    table.count[mask] = (uint8_t)n;
    table.bytes[mask] = (uint8_t)pos;
}

__attribute__((constructor)) static void build_table(void)
{
    __builtin_cpu_init(); /* needed before __builtin_cpu_supports in a constructor */
    have_ssse3 = __builtin_cpu_supports("ssse3");
    for (unsigned mask = 0; mask < 256; mask++)
        fill_entry(mask);
}

/* Each 32-bit lane's three 7-bit groups (top bits already cleared), low
 * group first, joined into one value. */
__attribute__((target("ssse3"))) static inline __m128i join_groups(__m128i y)
{
    __m128i g0 = _mm_and_si128(y, _mm_set1_epi32(0x7f));
    __m128i g1 = _mm_and_si128(_mm_srli_epi32(y, 1), _mm_set1_epi32(0x3f80));
    __m128i g2 = _mm_and_si128(_mm_srli_epi32(y, 2), _mm_set1_epi32(0x1fc000));
    return _mm_or_si128(g0, _mm_or_si128(g1, g2));
}

__attribute__((target("ssse3"))) static size_t
decode_ssse3(const uint8_t *p, const uint8_t *end, const uint8_t *limit, uint64_t *out, size_t *n)
{
    const uint8_t *start = p;
    uint64_t *w = out + *n;
    const __m128i low7 = _mm_set1_epi8(0x7f), zero = _mm_setzero_si128();
    while (p < end && limit - p >= LANES) {
        size_t in_run = (size_t)(end - p) < LANES ? (size_t)(end - p) : LANES;
        __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)p);
        unsigned mask = ((unsigned)_mm_movemask_epi8(x) | 0xffu << in_run) & 0xffu;
        if (table.bytes[mask] == 0)
            break; /* a long or unfinished varint first: the caller's loop reads it */
        const __m128i *s = (const __m128i *)(const void *)table.shuffle[mask];
        __m128i lo = join_groups(_mm_and_si128(_mm_shuffle_epi8(x, _mm_load_si128(s)), low7));
        __m128i hi = join_groups(_mm_and_si128(_mm_shuffle_epi8(x, _mm_load_si128(s + 1)), low7));
        _mm_storeu_si128((__m128i *)(void *)w, _mm_unpacklo_epi32(lo, zero));
        _mm_storeu_si128((__m128i *)(void *)(w + 2), _mm_unpackhi_epi32(lo, zero));
        _mm_storeu_si128((__m128i *)(void *)(w + 4), _mm_unpacklo_epi32(hi, zero));
        _mm_storeu_si128((__m128i *)(void *)(w + 6), _mm_unpackhi_epi32(hi, zero));
        w += table.count[mask];
        p += table.bytes[mask];
    }
    *n = (size_t)(w - out);
    return (size_t)(p - start);
}
#endif

size_t kiln_varint_block_decode(const uint8_t *p, const uint8_t *end, const uint8_t *limit,
                                uint64_t *out, size_t *n)
{
#ifdef HAVE_BLOCK
    if (have_ssse3)
        return decode_ssse3(p, end, limit, out, n);
#else
    (void)p, (void)end, (void)limit, (void)out, (void)n;
#endif
    return 0;
}
