/* SPDX-License-Identifier: Apache-2.0
 * profiles: unit-test helpers over the shared test data: load a real pprof
 * file normalised into an arena, and the merged total of a head for a
 * FlameQL query. Header-only, for tests. */
#ifndef KILN_TEST_PROFILES_H
#define KILN_TEST_PROFILES_H

#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "head_read.h"
#include "gzip.h"
#include "head.h"
#include "pprof.h"
#include "selector.h"

/* Reads $KILN_TESTDATA/<rel>, gunzips, decodes, validates and normalises it
 * into p; the bytes p points into live in a. False when missing or bad. */
static inline bool check_load_profile(kiln_arena_t *a, const char *rel, kiln_pprof_t *p)
{
    size_t len;
    unsigned char *raw = check_read_testdata(rel, &len);
    if (raw == NULL)
        return false;
    const uint8_t *data;
    size_t dlen;
    bool ok = kiln_gunzip_maybe(a, raw, len, 64 << 20, &data, &dlen, NULL) == KILN_OK;
    uint8_t *copy = ok ? kiln_arena_alloc(a, dlen + 1) : NULL;
    if (copy != NULL)
        memcpy(copy, data, dlen);
    free(raw);
    return copy != NULL && kiln_pprof_decode(a, copy, dlen, p, NULL) == KILN_OK &&
           kiln_pprof_validate(p, NULL) == KILN_OK &&
           kiln_pprof_normalize(a, p, 0, NULL) == KILN_OK;
}

/* The merged total of h for a FlameQL query over all time; -1 if it does not parse. */
static inline int64_t check_head_total(kiln_head_t *h, const char *q)
{
    kiln_selector_t *sel;
    if (kiln_selector_parse(q, strlen(q), &sel, NULL) != KILN_OK)
        return -1;
    kiln_tree_t *t = kiln_tree_create();
    check_head_merge(h, sel, 0, 0, t);
    int64_t v = kiln_tree_total(t);
    kiln_tree_destroy(t);
    kiln_selector_destroy(sel);
    return v;
}

#endif
