/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: a member's entry in the membership bucket (member_json.h):
 * what one process writes another reads back, fields it does not know are
 * skipped, and what does not fit is refused with a message, not cast. */
#include <string.h>

#include "check.h"
#include "member_json.h"

static bool decode(const char *json, char *role, kiln_ring_member *m, kiln_err *err)
{
    return kiln_member_json_decode(json, strlen(json), role, m, err);
}

TEST(roundtrip)
{
    kiln_ring_member m = {.id = "ingester-1",
                          .addr = "10.0.0.1:9095",
                          .zone = "a\"b",
                          .state = KILN_RING_ACTIVE,
                          .heartbeat_ms = 1700000000123,
                          .n_tokens = 2,
                          .tokens = {7, 4294967295u}};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_member_json_encode(&out, "ingester", &m);
    char role[KILN_MEMBER_ROLE_MAX];
    kiln_ring_member back;
    kiln_err err;
    CHECK(kiln_member_json_decode(out.ptr, out.len, role, &back, &err));
    CHECK_STR(role, "ingester");
    CHECK_STR(back.id, "ingester-1");
    CHECK_STR(back.zone, "a\"b");
    CHECK_EQ(back.state, KILN_RING_ACTIVE);
    CHECK_EQ(back.heartbeat_ms, 1700000000123);
    CHECK_EQ(back.n_tokens, 2);
    CHECK_EQ(back.tokens[1], 4294967295u);
    kiln_buf_free(&out);
}

TEST(unknown_fields_skipped)
{
    char role[KILN_MEMBER_ROLE_MAX];
    kiln_ring_member m;
    kiln_err err;
    CHECK(
        decode("{\"role\":\"querier\",\"id\":\"q\",\"newer\":{\"x\":[1,2]},\"state\":\"JOINING\"}",
               role, &m, &err));
    CHECK_STR(m.id, "q");
    CHECK_EQ(m.state, KILN_RING_JOINING);
}

/* A heartbeat beyond int64 was cast from double (undefined behaviour,
 * found by fuzz_member_json); now it is refused like any bad field. */
TEST(refused)
{
    static const char *const bad[] = {
        "{\"role\":\"ingester\",\"id\":\"i\",\"heartbeat_ms\":1.7e19}",
        "{\"role\":\"ingester\",\"id\":\"i\",\"heartbeat_ms\":-1}",
        "{\"role\":\"ingester\"}",
        "{\"role\":\"ingester\",\"id\":\"i\",\"state\":\"SLEEPING\"}",
        "{\"role\":\"ingester\",\"id\":\"i\",\"tokens\":[-1]}",
        "{\"role\":\"ingester\",\"id\":\"i\"",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char role[KILN_MEMBER_ROLE_MAX];
        kiln_ring_member m;
        kiln_err err = {KILN_OK, ""};
        CHECK(!decode(bad[i], role, &m, &err));
        CHECK(err.msg[0] != '\0');
    }
}

int main(void)
{
    RUN(roundtrip);
    RUN(unknown_fields_skipped);
    RUN(refused);
    return check_done();
}
