/* SPDX-License-Identifier: Apache-2.0
 * remote: life cycle of the remote store and its store.h table. */
#include "remote_int.h"

#include <stdlib.h>

#include "xmalloc.h"

#define MAX_RF 16

static const kiln_store_ops remote_ops = {
    .append = kiln_remote__append,
    .read = kiln_remote__read,
    .stats = kiln_remote__stats,
};

kiln_remote_t *kiln_remote_create(const kiln_remote_config *cfg)
{
    kiln_remote_t *r = kiln_xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    if (r->cfg.rf < 1)
        r->cfg.rf = 1;
    if (r->cfg.rf > MAX_RF)
        r->cfg.rf = MAX_RF;
    if (cfg->blocks != NULL)
        r->blocks = kiln_blockset_create(cfg->blocks);
    pthread_rwlock_init(&r->sync, NULL);
    return r;
}

void kiln_remote_destroy(kiln_remote_t *r)
{
    if (r == NULL)
        return;
    kiln_blockset_destroy(r->blocks);
    pthread_rwlock_destroy(&r->sync);
    free(r);
}

kiln_store_t kiln_remote_store(kiln_remote_t *r)
{
    return (kiln_store_t){&remote_ops, r};
}

size_t kiln_remote_blocks_quarantined(kiln_remote_t *r)
{
    size_t n = 0, q = 0;
    if (r->blocks != NULL)
        kiln_blockset_counts(r->blocks, &n, &q);
    return q;
}
