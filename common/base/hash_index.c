/* SPDX-License-Identifier: Apache-2.0
 * hash_index: linear probing, load factor <= 1/2. */
#include "hash_index.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

void kiln_hash_index_init(kiln_hash_index *x)
{
    memset(x, 0, sizeof(*x));
}

void kiln_hash_index_fini(kiln_hash_index *x)
{
    free(x->slots);
    memset(x, 0, sizeof(*x));
}

uint32_t kiln_hash_index_find(const kiln_hash_index *x, uint64_t h, kiln_hash_index_eq eq,
                              const void *ctx)
{
    if (x->cap == 0)
        return KILN_HASH_INDEX_NONE;
    size_t mask = x->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const kiln_hash_index_slot *s = &x->slots[i];
        if (s->id == KILN_HASH_INDEX_NONE)
            return KILN_HASH_INDEX_NONE;
        if (s->hash == h && eq(ctx, s->id))
            return s->id;
    }
}

static void put(kiln_hash_index *x, uint64_t h, uint32_t id, uint32_t tag)
{
    size_t mask = x->cap - 1;
    size_t i = (size_t)h & mask;
    while (x->slots[i].id != KILN_HASH_INDEX_NONE)
        i = (i + 1) & mask;
    x->slots[i] = (kiln_hash_index_slot){h, id, tag};
}

static void rehash(kiln_hash_index *x, size_t ncap)
{
    kiln_hash_index old = *x;
    x->cap = ncap;
    x->slots = kiln_xmalloc(ncap * sizeof(*x->slots));
    for (size_t i = 0; i < ncap; i++)
        x->slots[i] = (kiln_hash_index_slot){0, KILN_HASH_INDEX_NONE, 0};
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].id != KILN_HASH_INDEX_NONE)
            put(x, old.slots[i].hash, old.slots[i].id, old.slots[i].tag);
    }
    free(old.slots);
}

void kiln_hash_index_insert_key(kiln_hash_index *x, uint64_t h, uint32_t tag, uint32_t id)
{
    if ((x->len + 1) * 2 > x->cap)
        rehash(x, x->cap ? x->cap * 2 : 64);
    put(x, h, id, tag);
    x->len++;
}

void kiln_hash_index_insert(kiln_hash_index *x, uint64_t h, uint32_t id)
{
    kiln_hash_index_insert_key(x, h, 0, id);
}
