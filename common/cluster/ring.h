/* SPDX-License-Identifier: Apache-2.0
 * ring: the consistent-hash ring of ingesters. Each member owns tokens
 * (points on a 32-bit circle, derived from its id so a restarted ingester
 * keeps its place); a series key belongs to the first member clockwise from
 * it and is replicated on the next distinct members, distinct zones first
 * when members name zones. The membership module keeps the member table up
 * to date (only live members are in it); readers take an immutable,
 * reference-counted snapshot, so lookups never block on an update.
 * Thread-safe. */
#ifndef KILN_RING_H
#define KILN_RING_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "labels.h"

#define KILN_RING_TOKENS 128

typedef enum kiln_ring_state {
    KILN_RING_JOINING = 0, /* registered, not yet taking writes */
    KILN_RING_ACTIVE = 1,  /* takes writes and serves reads */
    KILN_RING_LEAVING = 2, /* flushing before it goes: reads only */
} kiln_ring_state;

typedef struct kiln_ring_member {
    char id[64];         /* instance id, unique in the ring */
    char addr[256];      /* gRPC host:port peers dial: an ingester's cluster plane */
    char http_addr[256]; /* HTTP host:port (for /ring) */
    char zone[64];       /* "" = none */
    kiln_ring_state state;
    int64_t heartbeat_ms; /* wall clock of its last heartbeat */
    size_t n_tokens;
    uint32_t tokens[KILN_RING_TOKENS];
} kiln_ring_member;

typedef struct kiln_ring kiln_ring_t;
typedef struct kiln_ring_snapshot kiln_ring_snapshot_t;

/** Creates an empty ring. */
kiln_ring_t *kiln_ring_create(void);
/** Frees it (snapshots still held stay valid until released); NULL is a no-op. */
void kiln_ring_destroy(kiln_ring_t *r);

/** Replaces the whole membership with m[0..n) (copied). A member with
 * n_tokens == 0 gets KILN_RING_TOKENS tokens from kiln_ring_tokens(id)
 * (listed in the snapshot's copy).
 * Snapshots already acquired keep the old membership. */
void kiln_ring_set(kiln_ring_t *r, const kiln_ring_member *m, size_t n);

/** The current membership; release it with kiln_ring_release. */
kiln_ring_snapshot_t *kiln_ring_acquire(kiln_ring_t *r);
void kiln_ring_release(kiln_ring_snapshot_t *s);

/** The members of a snapshot, sorted by id; *out stays valid until release. */
size_t kiln_ring_members(const kiln_ring_snapshot_t *s, const kiln_ring_member **out);

/** The write replicas of key: up to rf distinct ACTIVE members walking
 * clockwise from key (the first token >= key, wrapping past 2^32-1), as
 * indices into kiln_ring_members, primary first; idx holds rf entries.
 * Members in zones not yet used come first; repeated zones (in ring order)
 * only when there are fewer zones than rf. Members with zone "" never
 * count as sharing a zone. Returns how many (fewer than rf when the ring
 * holds fewer ACTIVE members). Never blocks. */
size_t kiln_ring_replicas(const kiln_ring_snapshot_t *s, uint32_t key, size_t rf, size_t *idx);

/** The ring key of a series: a hash of the tenant and its sorted labels
 * (xxhash64 over length-prefixed strings, folded to 32 bits). */
uint32_t kiln_ring_key(const char *tenant, const kiln_label_t *l, size_t n);

/** A member's tokens, derived from its id (same id, same tokens). */
void kiln_ring_tokens(const char *id, uint32_t *out, size_t n);

/** The snapshot as JSON ({"members":[{"id",..,"state":"ACTIVE","tokens":n,
 * "ownership":0.33,"heartbeat_age_ms":..}]}) or as an HTML table, for /ring;
 * now_ms is the caller's clock for heartbeat ages. */
void kiln_ring_json(const kiln_ring_snapshot_t *s, int64_t now_ms, kiln_buf *out);
void kiln_ring_html(const kiln_ring_snapshot_t *s, int64_t now_ms, kiln_buf *out);

/** The share of the key space each member owns as a primary by its tokens,
 * whatever its state (as dskit's ring page shows it): ownership[i] for
 * member i of kiln_ring_members; sums to 1 when non-empty. */
void kiln_ring_ownership(const kiln_ring_snapshot_t *s, double *ownership);

/** A state's name ("JOINING", "ACTIVE", "LEAVING"), and back; -1 when unknown. */
const char *kiln_ring_state_str(kiln_ring_state st);
int kiln_ring_state_parse(const char *s);

#endif
