/* SPDX-License-Identifier: Apache-2.0
 * hidx: an open-addressing hash index from a 64-bit hash to a dense uint32
 * id. It stores no keys: lookups confirm candidates with the caller's eq
 * callback against the caller's own arrays (interning tables use it). One
 * writer; readers need the owner's lock. */
#ifndef KILN_HIDX_H
#define KILN_HIDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_HIDX_NONE UINT32_MAX

/* A slot keeps the hash next to its id, so a probe reads one cache line. */
typedef struct kiln_hidx_slot {
    uint64_t hash;
    uint32_t id; /* KILN_HIDX_NONE marks an empty slot */
    uint32_t pad;
} kiln_hidx_slot;

typedef struct kiln_hidx {
    kiln_hidx_slot *slots;
    size_t cap; /* power of two */
    size_t len;
} kiln_hidx;

typedef bool (*kiln_hidx_eq)(const void *ctx, uint32_t id);

/** Initialises an empty index. */
void kiln_hidx_init(kiln_hidx *x);
/** Frees the index's memory. */
void kiln_hidx_fini(kiln_hidx *x);
/** The id whose hash is h and for which eq(ctx, id) holds; KILN_HIDX_NONE if none. */
uint32_t kiln_hidx_find(const kiln_hidx *x, uint64_t h, kiln_hidx_eq eq, const void *ctx);
/** Inserts id under hash h (the caller checked it is absent). */
void kiln_hidx_insert(kiln_hidx *x, uint64_t h, uint32_t id);

#endif
