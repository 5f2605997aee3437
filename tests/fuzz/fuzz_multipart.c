/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/multipart and the sample_type_config parser:
 * the first line of the input is the Content-Type, the rest the body.
 * Every part must lie inside the body; a sample_type_config part is parsed
 * and the pprof form's __name__ rule run over an empty profile. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ingest_formats.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parts(kiln_arena_t *a, const uint8_t *body, size_t len,
                        const kiln_multipart_part *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].len != 0 && (p[i].data < body || p[i].data + p[i].len > body + len))
            abort();
    }
    const kiln_multipart_part *c = kiln_multipart_find(p, n, "sample_type_config");
    if (c == NULL)
        return;
    kiln_stconfig cfg;
    kiln_err err;
    kiln_status st = kiln_stconfig_parse(a, c->data, c->len, &cfg, &err);
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - data) : size;
    kiln_arena_t *a = kiln_arena_create(16u << 20);
    char *ct = kiln_arena_strndup(a, (const char *)data, ct_len);
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t len = size - (size_t)(body - data);
    kiln_str_t boundary;
    kiln_err err;
    kiln_status st = kiln_multipart_boundary(a, ct, &boundary, &err);
    if (st != KILN_OK)
        boundary = (kiln_str_t){"xyz", 3};
    kiln_multipart_part *parts;
    size_t n;
    st = kiln_multipart_parse(a, body, len, boundary, &parts, &n, &err);
    if (st == KILN_OK)
        check_parts(a, body, len, parts, n);
    else if (st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
    /* The whole input as a sample_type_config too. */
    kiln_stconfig cfg;
    st = kiln_stconfig_parse(a, data, size, &cfg, &err);
    if (st != KILN_OK && st != KILN_INVALID_ARGUMENT && st != KILN_RESOURCE_EXHAUSTED)
        abort();
    kiln_arena_destroy(a);
    return 0;
}
