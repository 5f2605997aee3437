/* SPDX-License-Identifier: Apache-2.0
 * seen_keys: linear probing (load <= 1/2) with backward-shift deletion, and a
 * FIFO ring of insertions for eviction. Key 0 marks an empty slot, so a
 * key of 0 is stored as 1 (a collision of no consequence). */
#include "seen_keys.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "xmalloc.h"

struct kiln_seen_keys {
    pthread_mutex_t mu;
    uint64_t *slots; /* 2 * cap */
    size_t mask;
    uint64_t *ring; /* cap, insertion order */
    size_t cap, head, len;
};

kiln_seen_keys_t *kiln_seen_keys_create(size_t capacity)
{
    kiln_seen_keys_t *s = kiln_xcalloc(1, sizeof(*s));
    size_t cap = 64;
    while (cap < capacity)
        cap *= 2;
    s->cap = cap;
    s->mask = 2 * cap - 1;
    s->slots = kiln_xcalloc(2 * cap, sizeof(uint64_t));
    s->ring = kiln_xcalloc(cap, sizeof(uint64_t));
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void kiln_seen_keys_destroy(kiln_seen_keys_t *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s->ring);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

uint64_t kiln_profile_id_key(const char *tenant, const char *id)
{
    uint64_t h = XXH3_64bits_withSeed(id, strlen(id), XXH3_64bits(tenant, strlen(tenant)));
    return h ? h : 1;
}

static size_t find(const kiln_seen_keys_t *s, uint64_t key)
{
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL) & s->mask;
    while (s->slots[i] != 0 && s->slots[i] != key)
        i = (i + 1) & s->mask;
    return i;
}

static void erase(kiln_seen_keys_t *s, uint64_t key)
{
    size_t i = find(s, key);
    if (s->slots[i] == 0)
        return;
    /* Backward shift: pull later entries of the probe run into the hole. */
    for (size_t j = (i + 1) & s->mask; s->slots[j] != 0; j = (j + 1) & s->mask) {
        size_t home = (size_t)(s->slots[j] * 0x9e3779b97f4a7c15ULL) & s->mask;
        if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i] = 0;
}

/* Keys whose slot is prefetched ahead of the one being added. */
#define AHEAD 8

static size_t home_of(const kiln_seen_keys_t *s, uint64_t key)
{
    return (size_t)((key ? key : 1) * 0x9e3779b97f4a7c15ULL) & s->mask;
}

/* kiln_seen_keys_add with the lock held. */
static bool add_locked(kiln_seen_keys_t *s, uint64_t key)
{
    size_t i = find(s, key);
    bool added = s->slots[i] == 0;
    if (added) {
        if (s->len == s->cap) { /* forget the oldest */
            erase(s, s->ring[s->head]);
            s->head = (s->head + 1) % s->cap;
            s->len--;
            i = find(s, key);
        }
        s->slots[i] = key;
        s->ring[(s->head + s->len) % s->cap] = key;
        s->len++;
    }
    return added;
}

bool kiln_seen_keys_add(kiln_seen_keys_t *s, uint64_t key)
{
    pthread_mutex_lock(&s->mu);
    bool added = add_locked(s, key ? key : 1);
    pthread_mutex_unlock(&s->mu);
    return added;
}

void kiln_seen_keys_add_all(kiln_seen_keys_t *s, const uint64_t *keys, size_t n, bool *added)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && i < AHEAD; i++)
        __builtin_prefetch(&s->slots[home_of(s, keys[i])]);
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            __builtin_prefetch(&s->slots[home_of(s, keys[i + AHEAD])]);
        added[i] = add_locked(s, keys[i] ? keys[i] : 1);
    }
    pthread_mutex_unlock(&s->mu);
}

void kiln_seen_keys_remove(kiln_seen_keys_t *s, uint64_t key)
{
    pthread_mutex_lock(&s->mu);
    erase(s, key ? key : 1); /* its ring entry stays; erasing an absent key is a no-op */
    pthread_mutex_unlock(&s->mu);
}
