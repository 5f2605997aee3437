/* SPDX-License-Identifier: Apache-2.0
 * status: code names and HTTP statuses as the Connect protocol defines them. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int http;
} codes[] = {
    [KILN_OK] = {"ok", 200},
    [KILN_CANCELLED] = {"canceled", 499},
    [KILN_UNKNOWN] = {"unknown", 500},
    [KILN_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [KILN_DEADLINE_EXCEEDED] = {"deadline_exceeded", 504},
    [KILN_NOT_FOUND] = {"not_found", 404},
    [KILN_ALREADY_EXISTS] = {"already_exists", 409},
    [KILN_PERMISSION_DENIED] = {"permission_denied", 403},
    [KILN_RESOURCE_EXHAUSTED] = {"resource_exhausted", 429},
    [KILN_FAILED_PRECONDITION] = {"failed_precondition", 400},
    [KILN_ABORTED] = {"aborted", 409},
    [KILN_OUT_OF_RANGE] = {"out_of_range", 400},
    [KILN_UNIMPLEMENTED] = {"unimplemented", 501},
    [KILN_INTERNAL] = {"internal", 500},
    [KILN_UNAVAILABLE] = {"unavailable", 503},
    [KILN_DATA_LOSS] = {"data_loss", 500},
    [KILN_UNAUTHENTICATED] = {"unauthenticated", 401},
};

#define NCODES (sizeof(codes) / sizeof(codes[0]))

kiln_status kiln_err_set(kiln_err *err, kiln_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *kiln_status_str(kiln_status st)
{
    return (unsigned)st < NCODES ? codes[st].name : "unknown";
}

int kiln_status_http(kiln_status st)
{
    return (unsigned)st < NCODES ? codes[st].http : 500;
}

kiln_status kiln_status_from_str(const char *name, size_t len)
{
    for (size_t i = 0; i < NCODES; i++) {
        if (strlen(codes[i].name) == len && memcmp(codes[i].name, name, len) == 0)
            return (kiln_status)i;
    }
    return KILN_UNKNOWN;
}
