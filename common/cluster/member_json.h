/* SPDX-License-Identifier: Apache-2.0
 * member_json: a cluster member's entry in the membership bucket, as JSON
 * (role, id, addresses, zone, state, heartbeat, tokens). Values written by
 * other processes, possibly other versions, so decoding is strict about
 * what it knows and skips fields it does not. Pure functions; any thread. */
#ifndef KILN_MEMBER_JSON_H
#define KILN_MEMBER_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "ring.h"
#include "status.h"

#define KILN_MEMBER_ROLE_MAX 32

/** Appends the entry of a member with role to out. */
void kiln_member_json_encode(kiln_buf *out, const char *role, const kiln_ring_member *m);

/** Decodes an entry into role (KILN_MEMBER_ROLE_MAX bytes) and *m. False
 * with err (KILN_INVALID_ARGUMENT) naming what is wrong when it is not valid
 * JSON, a field has the wrong type or does not fit, the state is unknown,
 * or the role or id is missing. */
bool kiln_member_json_decode(const void *val, size_t len, char *role, kiln_ring_member *m,
                             kiln_err *err);

#endif
