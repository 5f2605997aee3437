/* SPDX-License-Identifier: Apache-2.0
 * querier_fixture: a fake store (fake_store.h: real heads in memory),
 * filled by the test, read by a querier whose methods are in an rpc
 * registry, as the servers dispatch them. Header-only, for the querier's
 * unit tests. */
#ifndef KILN_TEST_QUERIER_FIXTURE_H
#define KILN_TEST_QUERIER_FIXTURE_H

#include "check.h"
#include "fake_store.h"
#include "querier.h"
#include "rpc.h"

typedef struct querier_fixture {
    fake_store fake;
    kiln_store_t store;
    kiln_querier_t *q;
    kiln_rpc_registry_t *rpc;
} querier_fixture;

/* Opens the fixture (name is for messages only) and calls fill on its
 * store; always true (kept for the tests' early return). */
static inline bool querier_fixture_open(querier_fixture *f, const char *name,
                                        void (*fill)(kiln_store_t *store))
{
    (void)name;
    fake_store_init(&f->fake);
    f->store = fake_store_iface(&f->fake);
    fill(&f->store);
    kiln_querier_config qc = {.store = f->store};
    f->q = kiln_querier_create(&qc);
    f->rpc = kiln_rpc_registry_create();
    kiln_querier_register(f->q, f->rpc);
    return true;
}

static inline void querier_fixture_close(querier_fixture *f)
{
    kiln_rpc_registry_destroy(f->rpc);
    kiln_querier_destroy(f->q);
    fake_store_fini(&f->fake);
}

#endif
