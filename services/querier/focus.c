/* SPDX-License-Identifier: Apache-2.0
 * focus: the stack_trace_selector of SelectMergeStacktraces and
 * SelectMergeProfile. Keeps the stacks that pass through the call site
 * (frame names, root first): the path to it and everything below it. */
#include <string.h>

#include "querier_int.h"
#include "xmalloc.h"

kiln_tree_t *kiln_querier__focus(const kiln_tree_t *t, const Types__V1__StackTraceSelector *sel,
                                 kiln_arena_t *a)
{
    Ingester__V1__TreeResponse *w = kiln_tree_to_response(t, a);
    if (w == NULL)
        return NULL;
    size_t n = w->n_parent, depth_max = sel->n_call_site;
    int32_t *depth = kiln_arena_calloc(a, n + 1, sizeof(int32_t));
    uint32_t *out = kiln_arena_calloc(a, n + 1, sizeof(uint32_t));
    bool *keep = kiln_arena_calloc(a, n + 1, sizeof(bool));
    kiln_tree_t *f = kiln_tree_create();
    keep[0] = true;
    out[0] = KILN_TREE_ROOT;
    for (size_t i = 1; i < n; i++) { /* parents precede children */
        int32_t p = w->parent[i];
        if (p < 0 || !keep[p])
            continue;
        depth[i] = depth[p] + 1;
        const char *name = w->names[w->name[i]];
        if ((size_t)depth[i] <= depth_max && strcmp(name, sel->call_site[depth[i] - 1]->name) != 0)
            continue; /* off the path to the call site */
        keep[i] = true;
        out[i] = kiln_tree_child(f, out[p], name, strlen(name));
        if ((size_t)depth[i] >= depth_max)
            kiln_tree_add_self(f, out[i], w->self[i]); /* at or below the call site */
    }
    return f;
}
