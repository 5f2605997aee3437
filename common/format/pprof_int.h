/* SPDX-License-Identifier: Apache-2.0
 * pprof_int: what the decoder (pprof.c) and the checks and normalisation
 * (pprof_norm.c) share; not part of the pprof.h contract. */
#ifndef KILN_PPROF_INT_H
#define KILN_PPROF_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "pprof.h"

#define NONE KILN_PPROF_NONE
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* An arena array of n elements (NULL for none); clears *ok when n * size
 * overflows or the arena is out of room, so a caller checks once. */
static inline void *arr(kiln_arena_t *a, size_t n, size_t size, bool *ok)
{
    if (n == 0)
        return NULL;
    void *p = n <= SIZE_MAX / size ? kiln_arena_alloc(a, n * size) : NULL;
    if (p == NULL)
        *ok = false;
    return p;
}

#endif
