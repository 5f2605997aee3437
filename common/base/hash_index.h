/* SPDX-License-Identifier: Apache-2.0
 * hash_index: an open-addressing hash index from a 64-bit hash to a dense uint32
 * id. It stores no keys: lookups confirm candidates with the caller's eq
 * callback against the caller's own arrays. Or, for keys wide enough to be
 * trusted alone (96 bits of a 128-bit hash: the head's symbol tables), the
 * slot holds 32 more bits of the key and a lookup reads nothing else. An
 * index is used one way or the other, never both. One writer; readers need
 * the owner's lock. */
#ifndef KILN_HASH_INDEX_H
#define KILN_HASH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_HASH_INDEX_NONE UINT32_MAX

/* A slot keeps the hash next to its id, so a probe reads one cache line. */
typedef struct kiln_hash_index_slot {
    uint64_t hash;
    uint32_t id;  /* KILN_HASH_INDEX_NONE marks an empty slot */
    uint32_t tag; /* the key's other 32 bits (kiln_hash_index_find_key); else 0 */
} kiln_hash_index_slot;

typedef struct kiln_hash_index {
    kiln_hash_index_slot *slots;
    size_t cap; /* power of two */
    size_t len;
} kiln_hash_index;

typedef bool (*kiln_hash_index_eq)(const void *ctx, uint32_t id);

/** Initialises an empty index. */
void kiln_hash_index_init(kiln_hash_index *x);
/** Frees the index's memory. */
void kiln_hash_index_fini(kiln_hash_index *x);
/** The id whose hash is h and for which eq(ctx, id) holds; KILN_HASH_INDEX_NONE if none. */
uint32_t kiln_hash_index_find(const kiln_hash_index *x, uint64_t h, kiln_hash_index_eq eq,
                              const void *ctx);
/** Inserts id under hash h (the caller checked it is absent). */
void kiln_hash_index_insert(kiln_hash_index *x, uint64_t h, uint32_t id);
/** Inserts id under the 96-bit key (h, tag) (the caller checked it is absent). */
void kiln_hash_index_insert_key(kiln_hash_index *x, uint64_t h, uint32_t tag, uint32_t id);

/** The id inserted under the key (h, tag), KILN_HASH_INDEX_NONE if none.
 * Inline: interning a large profile's symbols is tens of thousands of
 * these, and the probe is a few instructions. */
static inline uint32_t kiln_hash_index_find_key(const kiln_hash_index *x, uint64_t h, uint32_t tag)
{
    if (x->cap == 0)
        return KILN_HASH_INDEX_NONE;
    size_t mask = x->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const kiln_hash_index_slot *s = &x->slots[i];
        if (s->id == KILN_HASH_INDEX_NONE || (s->hash == h && s->tag == tag))
            return s->id;
    }
}

/** Starts loading the slot a lookup of h begins at, so that a batch of
 * lookups issued a few ahead overlaps their cache misses. */
static inline void kiln_hash_index_prefetch(const kiln_hash_index *x, uint64_t h)
{
    if (x->cap != 0)
        __builtin_prefetch(&x->slots[(size_t)h & (x->cap - 1)]);
}

#endif
