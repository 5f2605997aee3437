/* SPDX-License-Identifier: Apache-2.0
 * membership: cluster coordination over NATS. Every process connects to
 * nats-server (several URLs allowed; the first connection and every
 * reconnection are retried forever with jitter) and binds the JetStream KV
 * bucket that holds the members: one key per process,
 * "<role>.<id>" -> JSON of a kiln_ring_member (role "ingester",
 * "distributor", "querier", "compactor"). A process that joins puts its own
 * entry and refreshes it every heartbeat; every process watches the bucket
 * and, on each change and each heartbeat tick, rebuilds the ring from the
 * ingester entries whose heartbeat is younger than the timeout (so expired
 * keys, which nats-server 2.9 deletes silently, and crashed members both
 * drop out) and reconciles with the bucket's key list. While NATS is
 * unreachable the ring is left as it was (the cluster serves on its last
 * known ring) and nobody is evicted; on reconnection the own entry is put
 * again and the view rebuilt.
 *
 * Runtime overrides travel as the KV key "overrides" (the YAML text of the
 * runtime config): publish puts it, and every process applies each new
 * revision to its kiln_overrides_t. The number of healthy distributors is
 * given to the overrides so each applies its share of a tenant's rate.
 *
 * Credentials and TLS (nats_security.h) are set on every connection and
 * reconnection; a server that refuses them at the first contact stops
 * create with the reason, instead of a retry loop that would hide it.
 * Messages show the URLs with their passwords masked. Thread-safe. */
#ifndef KILN_MEMBERSHIP_H
#define KILN_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "nats_security.h"
#include "overrides.h"
#include "ring.h"
#include "status.h"

typedef struct kiln_membership kiln_membership_t;

typedef struct kiln_membership_config {
    const char *nats_urls;        /* "nats://127.0.0.1:4222[,nats://...]" */
    const char *bucket;           /* KV bucket name ("" = "kiln-ring") */
    int64_t heartbeat_ns;         /* 0 = 5 s */
    int64_t heartbeat_timeout_ns; /* evict after this age; 0 = 4 heartbeats */
    const kiln_clock *clock;      /* heartbeats and ages (borrowed; NULL = the system's) */
    kiln_nats_security security;  /* credentials and TLS (zeroed = none) */
} kiln_membership_config;

/** Connects (in the background when NATS is not there yet: never fails for
 * that) and starts watching. ring and overrides are borrowed and kept up
 * to date; either may be NULL. KILN_INVALID_ARGUMENT for bad URLs or a bad
 * security combination or file; KILN_UNAUTHENTICATED or
 * KILN_FAILED_PRECONDITION when a server refused the first connection
 * (kiln_nats_security_judge), err naming the cause. Blocks for the first
 * try at each server. */
kiln_status kiln_membership_create(const kiln_membership_config *cfg, kiln_ring_t *ring,
                                   kiln_overrides_t *overrides, kiln_membership_t **out,
                                   kiln_err *err);
/** Stops heartbeats and watching, deletes the own entry if joined (when
 * connected; otherwise the others evict it after the timeout), closes the
 * connection. Does not call nats_Close (process-wide: main does, at exit).
 * NULL is a no-op. */
void kiln_membership_destroy(kiln_membership_t *m);

/** Registers this process under role with self (copied; tokens as given)
 * and starts its heartbeat. Call once. */
void kiln_membership_join(kiln_membership_t *m, const char *role, const kiln_ring_member *self);

/** Changes the own entry's state (put at once, and on every heartbeat). */
void kiln_membership_set_state(kiln_membership_t *m, kiln_ring_state st);

/** Puts the runtime overrides YAML for every process to apply (this one
 * too, through its watcher). KILN_INVALID_ARGUMENT when the YAML would be
 * refused (nothing is put), KILN_UNAVAILABLE when NATS is not reachable.
 * Blocks for the round trip. */
kiln_status kiln_membership_publish_overrides(kiln_membership_t *m, const char *yaml,
                                              kiln_err *err);

/** Live members of role (heartbeat within the timeout), as last seen. */
size_t kiln_membership_count(kiln_membership_t *m, const char *role);

/** True while connected to NATS. */
bool kiln_membership_connected(kiln_membership_t *m);

#endif
