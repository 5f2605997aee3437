/* SPDX-License-Identifier: Apache-2.0
 * querier_fixture: an ingester on a test directory (no fsync), filled by
 * the test, read by a querier whose methods are in an rpc registry, as the
 * servers dispatch them. Header-only, for the querier's unit tests. */
#ifndef KILN_TEST_QUERIER_FIXTURE_H
#define KILN_TEST_QUERIER_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ingester.h"
#include "querier.h"
#include "rpc.h"
#include "tmpdir.h"

typedef struct querier_fixture {
    char dir[64];
    kiln_ingester_t *ing;
    kiln_reader_t *rd;
    kiln_querier_t *q;
    kiln_rpc_registry_t *rpc;
} querier_fixture;

/* Opens the fixture under /tmp/kiln-<name>-XXXXXX and calls fill on its
 * ingester; false (with a CHECK failed) when the ingester cannot start. */
static inline bool querier_fixture_open(querier_fixture *f, const char *name,
                                        void (*fill)(kiln_ingester_t *ing))
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-%s-XXXXXX", name);
    CHECK(mkdtemp(f->dir) != NULL);
    kiln_ingester_config c = {
        .storage_path = f->dir, .wal_no_fsync = true, .wal_segment_bytes = 1u << 30};
    kiln_err err;
    kiln_status st = kiln_ingester_create(&c, &f->ing, &err);
    CHECK_OK(st);
    if (st != KILN_OK)
        return false;
    fill(f->ing);
    f->rd = kiln_reader_local(f->ing);
    f->q = kiln_querier_create(f->rd, NULL);
    f->rpc = kiln_rpc_registry_create();
    kiln_querier_register(f->q, f->rpc);
    return true;
}

static inline void querier_fixture_close(querier_fixture *f)
{
    kiln_rpc_registry_destroy(f->rpc);
    kiln_querier_destroy(f->q);
    kiln_reader_destroy(f->rd);
    kiln_ingester_destroy(f->ing);
    tmpdir_remove(f->dir);
}

#endif
