/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/cluster/member_json: the membership bucket's
 * entries, which every process reads from its peers (possibly of other
 * versions, possibly corrupt). Any bytes either decode or are refused with
 * a message; a decoded member re-encodes to JSON that decodes to a member
 * that encodes the same (fields compared as written, so bytes a shorter
 * duplicate key left behind a string's end do not count). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "member_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char role[KILN_MEMBER_ROLE_MAX], role2[KILN_MEMBER_ROLE_MAX];
    static kiln_ring_member m, m2;
    kiln_err err;
    if (!kiln_member_json_decode(data, size, role, &m, &err)) {
        if (err.code != KILN_INVALID_ARGUMENT || err.msg[0] == '\0')
            abort();
        return 0;
    }
    kiln_buf out, again;
    kiln_buf_init(&out, 0);
    kiln_buf_init(&again, 0);
    kiln_member_json_encode(&out, role, &m);
    if (!kiln_member_json_decode(out.ptr, out.len, role2, &m2, &err))
        abort();
    kiln_member_json_encode(&again, role2, &m2);
    if (out.len != again.len || memcmp(out.ptr, again.ptr, out.len) != 0)
        abort();
    kiln_buf_free(&out);
    kiln_buf_free(&again);
    return 0;
}
