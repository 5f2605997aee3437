/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for selector: parses arbitrary bytes as FlameQL; a
 * parsed selector is matched against a fixed label set, and an error must
 * carry a "line:col: " message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const kiln_label_t labels[] = {
    {"__name__", "process_cpu"},
    {"__profile_type__", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"},
    {"__type__", "cpu"},
    {"env", ""},
    {"region", "eu-west\n2"},
    {"service.name", "ride-sharing"},
    {"service_name", "api"},
    {"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_selector_t *s = NULL;
    kiln_err err = {0};
    kiln_status st = kiln_selector_parse((const char *)data, size, &s, &err);
    if (st != KILN_OK) {
        if (st != KILN_INVALID_ARGUMENT || s != NULL || strchr(err.msg, ':') == NULL)
            abort();
        return 0;
    }
    (void)kiln_selector_match(s, labels, sizeof(labels) / sizeof(labels[0]));
    (void)kiln_selector_match(s, NULL, 0);
    (void)strlen(kiln_selector_profile_type(s));
    for (size_t i = 0; i < kiln_selector_count(s); i++) {
        const char *name, *value;
        kiln_match_op op;
        kiln_selector_get(s, i, &name, &op, &value);
        if (strlen(name) == 0 || op < KILN_MATCH_EQ || op > KILN_MATCH_NRE)
            abort();
        (void)strlen(value);
    }
    kiln_selector_destroy(s);
    return 0;
}
