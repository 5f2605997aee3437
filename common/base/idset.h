/* SPDX-License-Identifier: Apache-2.0
 * idset: a bounded set of recently seen 64-bit keys (hashes of tenant and
 * client profile id), so a retried push is not counted twice. When full the
 * oldest key is forgotten. Thread-safe. */
#ifndef KILN_IDSET_H
#define KILN_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln_idset kiln_idset_t;

/** Creates a set remembering at most capacity keys (rounded up to a power of two). */
kiln_idset_t *kiln_idset_create(size_t capacity);
/** Frees it; NULL is a no-op. */
void kiln_idset_destroy(kiln_idset_t *s);
/** Adds key; false when it was already there (nothing changes then). */
bool kiln_idset_add(kiln_idset_t *s, uint64_t key);
/** Forgets key (after a failed append, so a retry is accepted). */
void kiln_idset_remove(kiln_idset_t *s, uint64_t key);
/** The key of a tenant and client profile id. */
uint64_t kiln_idset_key(const char *tenant, const char *id);

#endif
