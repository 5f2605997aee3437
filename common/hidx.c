/* SPDX-License-Identifier: Apache-2.0
 * hidx: linear probing, load factor <= 1/2. */
#include "hidx.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

void kiln_hidx_init(kiln_hidx *x)
{
    memset(x, 0, sizeof(*x));
}

void kiln_hidx_fini(kiln_hidx *x)
{
    free(x->hashes);
    free(x->ids);
    memset(x, 0, sizeof(*x));
}

uint32_t kiln_hidx_find(const kiln_hidx *x, uint64_t h, kiln_hidx_eq eq, const void *ctx)
{
    if (x->cap == 0)
        return KILN_HIDX_NONE;
    size_t mask = x->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t id = x->ids[i];
        if (id == KILN_HIDX_NONE)
            return KILN_HIDX_NONE;
        if (x->hashes[i] == h && eq(ctx, id))
            return id;
    }
}

static void put(kiln_hidx *x, uint64_t h, uint32_t id)
{
    size_t mask = x->cap - 1;
    size_t i = (size_t)h & mask;
    while (x->ids[i] != KILN_HIDX_NONE)
        i = (i + 1) & mask;
    x->hashes[i] = h;
    x->ids[i] = id;
}

static void rehash(kiln_hidx *x, size_t ncap)
{
    kiln_hidx old = *x;
    x->cap = ncap;
    x->hashes = kiln_xmalloc(ncap * sizeof(uint64_t));
    x->ids = kiln_xmalloc(ncap * sizeof(uint32_t));
    memset(x->ids, 0xff, ncap * sizeof(uint32_t));
    for (size_t i = 0; i < old.cap; i++) {
        if (old.ids[i] != KILN_HIDX_NONE)
            put(x, old.hashes[i], old.ids[i]);
    }
    free(old.hashes);
    free(old.ids);
}

void kiln_hidx_insert(kiln_hidx *x, uint64_t h, uint32_t id)
{
    if ((x->len + 1) * 2 > x->cap)
        rehash(x, x->cap ? x->cap * 2 : 64);
    put(x, h, id);
    x->len++;
}
