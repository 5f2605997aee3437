/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for what a querier reads from ingesters: arbitrary bytes
 * unpacked as an ingester.v1 TreeResponse and merged into a call tree that
 * already holds nodes (kiln_tree_merge_response), which either succeeds or
 * refuses an inconsistent tree with KILN_INVALID_ARGUMENT. A merged tree is
 * then rendered every way a query renders one (flame graph, Pyroscope's
 * tree bytes, the wire form, which merges back to the same total). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ingester/v1/ingester.pb-c.h"
#include "flamegraph.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kiln_tree_t *seeded_tree(void)
{
    kiln_tree_t *t = kiln_tree_create();
    uint32_t main_ = kiln_tree_child(t, 0, "main", 4);
    kiln_tree_add_self(t, kiln_tree_child(t, main_, "work", 4), 5);
    kiln_tree_add_self(t, main_, 1);
    return t;
}

static void render(const kiln_tree_t *t)
{
    kiln_arena_t *a = kiln_arena_create(64u << 20);
    (void)kiln_tree_flamegraph(t, 16, a);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_tree_marshal(t, 16, &b);
    kiln_buf_free(&b);
    Ingester__V1__TreeResponse *wire = kiln_tree_to_response(t, a);
    if (wire != NULL) {
        kiln_tree_t *back = kiln_tree_create();
        if (kiln_tree_merge_response(back, wire, NULL) != KILN_OK ||
            kiln_tree_total(back) != kiln_tree_total(t))
            abort();
        kiln_tree_destroy(back);
    }
    kiln_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Ingester__V1__TreeResponse *r = ingester__v1__tree_response__unpack(NULL, size, data);
    if (r == NULL)
        return 0;
    kiln_tree_t *t = seeded_tree();
    kiln_err err;
    kiln_status st = kiln_tree_merge_response(t, r, &err);
    if (st == KILN_OK)
        render(t);
    else if (st != KILN_INVALID_ARGUMENT)
        abort();
    kiln_tree_destroy(t);
    ingester__v1__tree_response__free_unpacked(r, NULL);
    return 0;
}
