/* SPDX-License-Identifier: Apache-2.0
 * remote_int: the remote store's representation, shared by remote.c
 * (life cycle, stats), remote_write.c (append) and remote_read.c (read). */
#ifndef KILN_REMOTE_INT_H
#define KILN_REMOTE_INT_H

#include <pthread.h>

#include "blockset.h"
#include "remote.h"

struct kiln_remote {
    kiln_remote_config cfg;
    kiln_blockset_t *blocks; /* the shared store's blocks (NULL without a store) */
    /* Reads hold it shared while they read blocks; the sync at the start
     * of each read takes it exclusively, so no block closes mid-read. */
    pthread_rwlock_t sync;
};

/** store.h's append (remote_write.c). */
kiln_status kiln_remote__append(void *self, const char *tenant, const kiln_head_part *parts,
                                size_t n, kiln_err *err);
/** store.h's read (remote_read.c). */
kiln_status kiln_remote__read(void *self, const char *tenants, const kiln_read_filter *f,
                              const kiln_read_visitor *v, kiln_err *err);
/** store.h's stats (remote_read.c). */
kiln_status kiln_remote__stats(void *self, const char *tenants, kiln_head_stats_t *out,
                               kiln_err *err);

#endif
