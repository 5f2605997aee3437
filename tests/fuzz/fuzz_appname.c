/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/format/appname and common/format/time_param: the name, from
 * and until parameters of /ingest. The first byte splits the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appname.h"
#include "arena.h"
#include "time_param.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_arena_t *a = kiln_arena_create(1u << 20);
    kiln_appname_t n;
    kiln_err err;
    const char *s = (const char *)data;
    kiln_status st = kiln_appname_parse(a, s, size, &n, &err);
    if (st == KILN_OK) {
        if (n.name == NULL || n.name[0] == '\0')
            abort();
        for (size_t i = 0; i < n.n_tags; i++) {
            if (n.tags[i].name[0] == '\0' || n.tags[i].value[0] == '\0')
                abort();
            if (kiln_appname_tag(&n, n.tags[i].name) == NULL)
                abort();
        }
        const char *app;
        const char *suffix = kiln_appname_split(a, n.name, &app);
        if (suffix != NULL && strlen(app) + strlen(suffix) + 1 != strlen(n.name))
            abort();
    } else if (st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED) {
        abort();
    }
    (void)kiln_time_param_parse(s, size, 1764000000000000000LL);
    (void)kiln_time_param_parse(s, size, INT64_MAX);
    (void)kiln_time_param_parse(s, size, INT64_MIN);
    kiln_arena_destroy(a);
    return 0;
}
