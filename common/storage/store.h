/* SPDX-License-Identifier: Apache-2.0
 * store: the ingester interface, the one way the distributor writes
 * profiles and the querier reads them, whatever stands behind it. Two
 * implementations: the local one calls straight into this process's
 * kiln_db (-target=all, and an ingester's own view); the remote one
 * (services/ingester/remote.h) hashes each series onto the ring, writes to
 * its replicas and waits for a quorum, fans reads out over the ingesters
 * and the object store's blocks, and counts each replica once. Tests use a
 * fake. Every call may block; implementations are thread-safe.
 *
 * Calls:
 * - append: one push of one tenant (normalised parts), all or nothing,
 *   durable before KILN_OK. KILN_RESOURCE_EXHAUSTED when the store pushes
 *   back (retry later), KILN_FAILED_PRECONDITION when the push can never
 *   succeed as it is (the series limit; the message names it),
 *   KILN_UNAVAILABLE when it could not be made durable.
 * - read: one read (read.h) over the tenants in `tenants` ("a" or "a|b"):
 *   every profile is visited once, replicas included; a series may be
 *   visited more than once.
 * - stats: counts over the tenants (profiles include replicas in a cluster). */
#ifndef KILN_STORE_H
#define KILN_STORE_H
#include <stddef.h>
#include "head.h"
#include "read.h"
#include "status.h"

typedef struct kiln_store_ops {
    kiln_status (*append)(void *self, const char *tenant, const kiln_head_part *parts, size_t n,
                          kiln_err *err);
    kiln_status (*read)(void *self, const char *tenants, const kiln_read_filter *f,
                        const kiln_read_visitor *v, kiln_err *err);
    kiln_status (*stats)(void *self, const char *tenants, kiln_head_stats_t *out, kiln_err *err);
} kiln_store_ops;

/** An implementation: its operations and its state, passed by value;
 * whoever created the state frees it (kiln_db_close, kiln_remote_destroy). */
typedef struct kiln_store {
    const kiln_store_ops *ops;
    void *self;
} kiln_store_t;

static inline kiln_status kiln_store_append(kiln_store_t *s, const char *tenant,
                                            const kiln_head_part *parts, size_t n, kiln_err *err)
{
    return s->ops->append(s->self, tenant, parts, n, err);
}

static inline kiln_status kiln_store_read(kiln_store_t *s, const char *tenants,
                                          const kiln_read_filter *f, const kiln_read_visitor *v,
                                          kiln_err *err)
{
    return s->ops->read(s->self, tenants, f, v, err);
}

static inline kiln_status kiln_store_stats(kiln_store_t *s, const char *tenants,
                                           kiln_head_stats_t *out, kiln_err *err)
{
    return s->ops->stats(s->self, tenants, out, err);
}

#endif
