/* SPDX-License-Identifier: Apache-2.0
 * json_writer: JSON text written into a kiln_buf, for the answers Kiln
 * writes by hand (Connect errors, legacy render output, /ring, membership
 * entries). protojson output is pbjson's. Pure functions; any thread. */
#ifndef KILN_JSON_WRITER_H
#define KILN_JSON_WRITER_H

#include <stddef.h>

#include "buf.h"

/** Appends s[0..len) as a JSON string, quoted, with '"', '\\' and
 * control characters escaped (bytes >= 0x80 are copied as they are). */
void kiln_json_string(kiln_buf *out, const char *s, size_t len);

#endif
