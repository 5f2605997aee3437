/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for ad-hoc profile files (services/api/adhoc.c and the
 * distributor's profile_file.c): arbitrary bytes under each file name kind
 * (the first byte picks it), decoded, rendered as a flame graph of a small
 * max_nodes. Only invalid_argument may refuse an input; an accepted one
 * must give flamebearer JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adhoc.h"
#include "arena.h"

#define ARENA_CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"f", "f.pprof", "f.json", "f.txt", "f.pb.gz"};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
    kiln_adhoc_config cfg = {NULL, 4u << 20, 1000, NULL};
    kiln_adhoc_t *ad = kiln_adhoc_create(&cfg);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
    kiln_err err;
    kiln_status st = kiln_adhoc_render(ad, name, data + 1, size - 1, NULL, 16, a, &r, &err);
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
    if (st == KILN_OK &&
        (r->n_profile_types == 0 || strncmp(r->flamebearer_profile, "{\"version\":1,", 13) != 0))
        abort();
    kiln_arena_destroy(a);
    kiln_adhoc_destroy(ad);
    return 0;
}
