/* SPDX-License-Identifier: Apache-2.0
 * seen_keys: a bounded set of recently seen 64-bit keys (hashes of tenant and
 * client profile id), so a retried push is not counted twice. When full the
 * oldest key is forgotten. Thread-safe. */
#ifndef KILN_SEEN_KEYS_H
#define KILN_SEEN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln_seen_keys kiln_seen_keys_t;

/** Creates a set remembering at most capacity keys (rounded up to a power of two). */
kiln_seen_keys_t *kiln_seen_keys_create(size_t capacity);
/** Frees it; NULL is a no-op. */
void kiln_seen_keys_destroy(kiln_seen_keys_t *s);
/** Adds key; false when it was already there (nothing changes then). */
bool kiln_seen_keys_add(kiln_seen_keys_t *s, uint64_t key);
/** Adds keys[0..n) in order, as n calls of kiln_seen_keys_add would (a
 * key twice in keys is added once), setting added[i] to what the call for
 * keys[i] would return; one lock, and the table's slots of the keys ahead
 * prefetched: a push adds a key per series, each a cache miss in a table
 * of megabytes. */
void kiln_seen_keys_add_all(kiln_seen_keys_t *s, const uint64_t *keys, size_t n, bool *added);
/** Forgets key (after a failed append, so a retry is accepted). */
void kiln_seen_keys_remove(kiln_seen_keys_t *s, uint64_t key);
/** The push id of a client's profile id in a tenant (never 0): what a
 * stored profile carries as its id. A profile's identity across replicas
 * and blocks is kiln_profile_key (storage), which includes this id. */
uint64_t kiln_profile_id_key(const char *tenant, const char *id);

#endif
