/* SPDX-License-Identifier: Apache-2.0
 * TEST-ONLY stand-in for the ring functions membership.c calls, linked into
 * test_membership alone and only while common/ring.c does not exist yet
 * (see tests/CMakeLists.txt). It keeps the member table and hands out
 * copies; no hashing, no replicas. Delete this file once ring.c lands. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "xmalloc.h"

struct kiln_ring {
    pthread_mutex_t mu;
    kiln_ring_member *m;
    size_t n;
};

struct kiln_ring_snapshot {
    kiln_ring_member *m;
    size_t n;
};

kiln_ring_t *kiln_ring_create(void)
{
    kiln_ring_t *r = kiln_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void kiln_ring_destroy(kiln_ring_t *r)
{
    if (r == NULL)
        return;
    free(r->m);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const kiln_ring_member *)a)->id, ((const kiln_ring_member *)b)->id);
}

void kiln_ring_set(kiln_ring_t *r, const kiln_ring_member *m, size_t n)
{
    kiln_ring_member *copy = kiln_xmalloc((n + 1) * sizeof(*copy));
    if (n > 0)
        memcpy(copy, m, n * sizeof(*copy));
    qsort(copy, n, sizeof(*copy), by_id);
    pthread_mutex_lock(&r->mu);
    free(r->m);
    r->m = copy;
    r->n = n;
    pthread_mutex_unlock(&r->mu);
}

kiln_ring_snapshot_t *kiln_ring_acquire(kiln_ring_t *r)
{
    kiln_ring_snapshot_t *s = kiln_xcalloc(1, sizeof(*s));
    pthread_mutex_lock(&r->mu);
    s->m = kiln_xmalloc((r->n + 1) * sizeof(*s->m));
    if (r->n > 0)
        memcpy(s->m, r->m, r->n * sizeof(*s->m));
    s->n = r->n;
    pthread_mutex_unlock(&r->mu);
    return s;
}

void kiln_ring_release(kiln_ring_snapshot_t *s)
{
    if (s == NULL)
        return;
    free(s->m);
    free(s);
}

size_t kiln_ring_members(const kiln_ring_snapshot_t *s, const kiln_ring_member **out)
{
    *out = s->m;
    return s->n;
}

static const char *const state_names[] = {"JOINING", "ACTIVE", "LEAVING"};

const char *kiln_ring_state_str(kiln_ring_state st)
{
    return (unsigned)st < 3 ? state_names[st] : "UNKNOWN";
}

int kiln_ring_state_parse(const char *s)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, state_names[i]) == 0)
            return i;
    }
    return -1;
}
