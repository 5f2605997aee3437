/* SPDX-License-Identifier: Apache-2.0
 * reader_int: the reader's representation, shared by reader.c (dispatch,
 * local reads) and cluster_reader.c (fan-out over the ring). */
#ifndef KILN_READER_INT_H
#define KILN_READER_INT_H

#include <pthread.h>

#include "blockset.h"
#include "reader.h"

struct kiln_reader {
    kiln_ingester_t *ing; /* local reader; NULL for a cluster reader */
    kiln_reader_cluster_config cc;
    kiln_blockset_t *blocks; /* cluster: the shared store's blocks */
    /* Queries hold it shared while they read blocks; the sync at the start
     * of each query takes it exclusively, so no block closes mid-query. */
    pthread_rwlock_t sync;
};

kiln_status kiln_reader__cluster_series(kiln_reader_t *r, const char *tenants,
                                        const kiln_selector_t *sel, int64_t start_ms,
                                        int64_t end_ms, kiln_head_series_fn fn, void *ctx,
                                        kiln_err *err);
kiln_status kiln_reader__cluster_profiles(kiln_reader_t *r, const char *tenants,
                                          const kiln_selector_t *sel, int64_t start_ms,
                                          int64_t end_ms, kiln_head_profile_fn fn, void *ctx,
                                          kiln_err *err);
kiln_status kiln_reader__cluster_merge(kiln_reader_t *r, const char *tenants,
                                       const kiln_selector_t *sel, int64_t start_ms, int64_t end_ms,
                                       const kiln_head_filter *f, kiln_tree_t *t, kiln_err *err);
kiln_status kiln_reader__cluster_stats(kiln_reader_t *r, const char *tenants,
                                       kiln_head_stats_t *out, kiln_err *err);

#endif
