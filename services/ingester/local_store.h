/* SPDX-License-Identifier: Apache-2.0
 * local_store: the ingester interface (store.h) over this process's own
 * ingester, for -target=all without a cluster: direct calls, no copies.
 * A stand-in until the storage engine's kiln_db_store takes its place. */
#ifndef KILN_LOCAL_STORE_H
#define KILN_LOCAL_STORE_H

#include "ingester.h"
#include "store.h"

/** The store.h interface of ing (borrowed: it must outlive every use). */
kiln_store_t kiln_ingester_store(kiln_ingester_t *ing);

#endif
