/* SPDX-License-Identifier: Apache-2.0
 * diff: querier.v1.QuerierService/Diff, two selections merged separately and
 * rendered side by side as Pyroscope's FlameGraphDiff. Each side is checked
 * as SelectMergeStacktraces checks its request; max_nodes is the larger of
 * the two sides' (0 = 8192) and truncates the union of both trees.
 * format PROFILE_FORMAT_FUNCTIONS answers the two sides' function tables
 * joined by name instead (functions.h), the outer max_nodes its row limit
 * (0 = all), as Drilldown's diff function table asks. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "querier/v1/querier.pb-c.h"
#include "querier_int.h"
#include "flamegraph.h"
#include "functions.h"
#include "tree.h"

#define MAX_NODES_DEFAULT 8192
#define MAX_NODES_LIMIT 1048576

/* Prefixes ctx->err's message with the side it is about. */
static kiln_status side_error(kiln_rpc_ctx *ctx, const char *side, kiln_status st)
{
    char msg[sizeof(ctx->err->msg)];
    snprintf(msg, sizeof(msg), "%s", ctx->err->msg);
    return kiln_err_set(ctx->err, st, "%s: %s", side, msg);
}

/* Checks and merges one side like SelectMergeStacktraces (span, profile id
 * and stack trace selectors included) into a new tree *t. */
static kiln_status merge_side(kiln_querier_t *q, kiln_rpc_ctx *ctx, const char *side,
                              const Querier__V1__SelectMergeStacktracesRequest *req,
                              kiln_tree_t **t)
{
    kiln_status st = kiln_querier__merge(q, ctx, req, t);
    if (st != KILN_OK)
        return side_error(ctx, side, st);
    /* Pyroscope refuses negative values too: the layout assumes a node's
     * total covers its children. */
    if (kiln_tree_has_negative(*t))
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT, "%s tree require only positive values",
                            side);
    return KILN_OK;
}

static kiln_status max_nodes_of(const Querier__V1__DiffRequest *req, kiln_err *err, int64_t *out)
{
    int64_t n =
        req->left->max_nodes > req->right->max_nodes ? req->left->max_nodes : req->right->max_nodes;
    if (req->left->max_nodes < 0 || req->right->max_nodes < 0 || n > MAX_NODES_LIMIT)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "max_nodes out of range: must be 0..%d",
                            MAX_NODES_LIMIT);
    *out = n != 0 ? n : MAX_NODES_DEFAULT;
    return KILN_OK;
}

kiln_status kiln_querier__diff(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *msg,
                               ProtobufCMessage **resp)
{
    static const Querier__V1__SelectMergeStacktracesRequest empty =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    Querier__V1__DiffRequest req = *(const Querier__V1__DiffRequest *)msg;
    /* An absent side is an empty request, which fails its checks. */
    if (req.left == NULL)
        req.left = (Querier__V1__SelectMergeStacktracesRequest *)&empty;
    if (req.right == NULL)
        req.right = (Querier__V1__SelectMergeStacktracesRequest *)&empty;
    bool functions = req.format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FUNCTIONS;
    if (!functions && req.format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED &&
        req.format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "diff format %d: use FLAMEGRAPH or FUNCTIONS", (int)req.format);
    if (req.max_nodes < 0 || req.max_nodes > MAX_NODES_LIMIT)
        return kiln_err_set(ctx->err, KILN_INVALID_ARGUMENT,
                            "max_nodes out of range: must be 0..%d", MAX_NODES_LIMIT);
    int64_t max_nodes = 0;
    kiln_status st = max_nodes_of(&req, ctx->err, &max_nodes);
    if (st != KILN_OK)
        return st;
    kiln_tree_t *left = NULL, *right = NULL;
    st = merge_side(svc, ctx, "left", req.left, &left);
    if (st == KILN_OK)
        st = merge_side(svc, ctx, "right", req.right, &right);
    if (st != KILN_OK)
        goto out;
    Querier__V1__DiffResponse *r = kiln_arena_alloc(ctx->arena, sizeof(*r));
    bool ok = r != NULL;
    if (ok) {
        querier__v1__diff_response__init(r);
        if (functions) {
            r->functions = kiln_tree_functions_diff(left, right, req.max_nodes, ctx->arena);
            ok = r->functions != NULL;
        } else {
            r->flamegraph = kiln_tree_flamegraph_diff(left, right, max_nodes, ctx->arena);
            ok = r->flamegraph != NULL;
        }
    }
    if (!ok) {
        st = kiln_err_set(ctx->err, KILN_RESOURCE_EXHAUSTED, "result too large");
        goto out;
    }
    *resp = &r->base;
out:
    kiln_tree_destroy(right);
    kiln_tree_destroy(left);
    return st;
}
