/* SPDX-License-Identifier: Apache-2.0
 * status: the one error vocabulary of Kiln. Values equal grpc_status_code, so
 * the mapping to gRPC is the identity; kiln_status_connect() gives Connect's
 * code name and HTTP status. Edge functions (decoders, validators, handlers)
 * also fill a kiln_err with a message for the client. Thread-safe, no state. */
#ifndef KILN_STATUS_H
#define KILN_STATUS_H

#include <stddef.h>

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_CANCELLED = 1,
    KILN_UNKNOWN = 2,
    KILN_INVALID_ARGUMENT = 3,
    KILN_DEADLINE_EXCEEDED = 4,
    KILN_NOT_FOUND = 5,
    KILN_ALREADY_EXISTS = 6,
    KILN_PERMISSION_DENIED = 7,
    KILN_RESOURCE_EXHAUSTED = 8,
    KILN_FAILED_PRECONDITION = 9,
    KILN_ABORTED = 10,
    KILN_OUT_OF_RANGE = 11,
    KILN_UNIMPLEMENTED = 12,
    KILN_INTERNAL = 13,
    KILN_UNAVAILABLE = 14,
    KILN_DATA_LOSS = 15,
    KILN_UNAUTHENTICATED = 16,
} kiln_status;

#define KILN_ERR_MSG_MAX 256

/** An error for the client: the code plus a human message (NUL-terminated). */
typedef struct kiln_err {
    kiln_status code;
    char msg[KILN_ERR_MSG_MAX];
} kiln_err;

/** Sets err (if not NULL) to code and a printf-formatted message; returns code. */
kiln_status kiln_err_set(kiln_err *err, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Connect's lowercase code name ("invalid_argument"); "unknown" if out of range. */
const char *kiln_status_str(kiln_status st);

/** HTTP status for a Connect error of this code (invalid_argument -> 400, ...). */
int kiln_status_http(kiln_status st);

/** Parses a Connect code name; returns KILN_UNKNOWN when unrecognised. */
kiln_status kiln_status_from_str(const char *name, size_t len);

#endif
