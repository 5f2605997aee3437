/* SPDX-License-Identifier: Apache-2.0
 * flamebearer: flamebearer JSON parts. */
#include "flamebearer.h"

#include <string.h>

#include "json_writer.h"

void kiln_flamebearer_levels(kiln_buf *b, char **names, size_t n_names, Querier__V1__Level **levels,
                             size_t n_levels, int64_t total, int64_t max_self)
{
    kiln_buf_puts(b, "\"flamebearer\":{\"names\":[");
    for (size_t i = 0; i < n_names; i++) {
        if (i > 0)
            kiln_buf_putc(b, ',');
        kiln_json_string(b, names[i], strlen(names[i]));
    }
    kiln_buf_puts(b, "],\"levels\":[");
    for (size_t i = 0; i < n_levels; i++) {
        kiln_buf_puts(b, i > 0 ? ",[" : "[");
        for (size_t j = 0; j < levels[i]->n_values; j++)
            kiln_buf_printf(b, j > 0 ? ",%lld" : "%lld", (long long)levels[i]->values[j]);
        kiln_buf_putc(b, ']');
    }
    kiln_buf_printf(b, "],\"numTicks\":%lld,\"maxSelf\":%lld}", (long long)total,
                    (long long)max_self);
}

void kiln_flamebearer_metadata(kiln_buf *b, const char *t, const char *u, const char *format)
{
    unsigned rate = 100;
    const char *units = u;
    if (strcmp(t, "inuse_objects") == 0 || strcmp(t, "alloc_objects") == 0 ||
        strcmp(t, "goroutine") == 0 || strcmp(t, "samples") == 0)
        units = "objects";
    else if (strcmp(t, "cpu") == 0)
        units = "samples", rate = 1000000000u;
    kiln_buf_printf(b,
                    "\"metadata\":{\"format\":\"%s\",\"spyName\":\"\",\"sampleRate\":%u,"
                    "\"units\":",
                    format, rate);
    kiln_json_string(b, units, strlen(units));
    kiln_buf_puts(b, ",\"name\":");
    kiln_json_string(b, t, strlen(t));
    kiln_buf_putc(b, '}');
}
