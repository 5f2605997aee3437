/* SPDX-License-Identifier: Apache-2.0
 * xorshift: a seeded xorshift64 generator for tests that draw random but
 * repeatable inputs (the same seed gives the same run everywhere).
 * Header-only, no dependency. */
#ifndef KILN_TEST_XORSHIFT_H
#define KILN_TEST_XORSHIFT_H

#include <stdint.h>

/** The next value of the generator whose state (nonzero) is *s. */
static inline uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
#endif
