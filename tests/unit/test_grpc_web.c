/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: gRPC-Web framing, its base64 text form, and bad input. */
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "grpc_web.h"

TEST(content_types)
{
    bool text = true, json = true;
    CHECK(kiln_grpcweb_match("application/grpc-web", &text, &json) && !text && !json);
    CHECK(kiln_grpcweb_match("application/grpc-web+proto", &text, &json) && !text && !json);
    CHECK(kiln_grpcweb_match("application/grpc-web-text", &text, &json) && text && !json);
    CHECK(kiln_grpcweb_match("Application/GRPC-Web-Text+json; charset=utf-8", &text, &json) &&
          text && json);
    CHECK(!kiln_grpcweb_match("application/grpc", &text, &json));
    CHECK(!kiln_grpcweb_match("application/grpc-webx", &text, &json));
    CHECK(!kiln_grpcweb_match("application/proto", &text, &json));
    CHECK(!kiln_grpcweb_match(NULL, &text, &json));
}

TEST(binary_message)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const uint8_t body[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    const uint8_t *msg;
    size_t len;
    bool z;
    kiln_err err;
    CHECK_OK(kiln_grpcweb_message(a, body, sizeof(body), false, &msg, &len, &z, &err));
    CHECK_EQ(len, 2);
    CHECK(!z && msg[0] == 0x08 && msg[1] == 0x01);
    const uint8_t zipped[] = {1, 0, 0, 0, 0};
    CHECK_OK(kiln_grpcweb_message(a, zipped, sizeof(zipped), false, &msg, &len, &z, &err));
    CHECK(z && len == 0);
    /* Short, a length that lies, a trailers frame, two messages. */
    CHECK_EQ(kiln_grpcweb_message(a, body, 4, false, &msg, &len, &z, &err), KILN_INVALID_ARGUMENT);
    const uint8_t lie[] = {0, 0xff, 0xff, 0xff, 0xff, 1};
    CHECK_EQ(kiln_grpcweb_message(a, lie, sizeof(lie), false, &msg, &len, &z, &err),
             KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "says") != NULL);
    const uint8_t trailer[] = {0x80, 0, 0, 0, 0};
    CHECK_EQ(kiln_grpcweb_message(a, trailer, sizeof(trailer), false, &msg, &len, &z, &err),
             KILN_INVALID_ARGUMENT);
    const uint8_t two[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(kiln_grpcweb_message(a, two, sizeof(two), false, &msg, &len, &z, &err),
             KILN_INVALID_ARGUMENT);
    kiln_arena_destroy(a);
}

TEST(text_message)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const uint8_t *msg;
    size_t len;
    bool z;
    kiln_err err;
    /* {0,0,0,0,2,0x08,0x01} as base64, whole and in two padded pieces. */
    const char *whole = "AAAAAAIIAQ==";
    CHECK_OK(
        kiln_grpcweb_message(a, (const uint8_t *)whole, strlen(whole), true, &msg, &len, &z, &err));
    CHECK(len == 2 && msg[0] == 0x08 && msg[1] == 0x01);
    const char *pieces = "AAAAAAI=CAE="; /* {0,0,0,0,2} then {0x08,0x01} */
    CHECK_OK(kiln_grpcweb_message(a, (const uint8_t *)pieces, strlen(pieces), true, &msg, &len, &z,
                                  &err));
    CHECK(len == 2 && msg[0] == 0x08 && msg[1] == 0x01);
    const char *bad[] = {"AAAAAAIIAQ=", "AAAA!AIIAQ==", "AAAAAA=IAQ==", "A==="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(kiln_grpcweb_message(a, (const uint8_t *)bad[i], strlen(bad[i]), true, &msg, &len,
                                      &z, &err),
                 KILN_INVALID_ARGUMENT);
    kiln_arena_destroy(a);
}

TEST(reply_frames)
{
    kiln_http_resp resp = {.status = 0};
    kiln_buf_init(&resp.body, 0);
    kiln_buf_append(&resp.body, "\x08\x01", 2);
    kiln_grpcweb_reply(&resp, false, false, KILN_OK, NULL);
    const char want[] = "\x00\x00\x00\x00\x02\x08\x01"
                        "\x80\x00\x00\x00\x10grpc-status: 0\r\n";
    CHECK_EQ(resp.status, 200);
    CHECK_STR(resp.content_type, "application/grpc-web+proto");
    CHECK_EQ(resp.body.len, sizeof(want) - 1);
    CHECK(memcmp(resp.body.ptr, want, sizeof(want) - 1) == 0);
    kiln_buf_free(&resp.body);

    /* An error: no message frame, the status and a percent-encoded message,
     * base64 for -text. */
    kiln_buf_init(&resp.body, 0);
    kiln_grpcweb_reply(&resp, true, false, KILN_INVALID_ARGUMENT, "bad: 100%\n");
    CHECK_STR(resp.content_type, "application/grpc-web-text+proto");
    kiln_arena_t *a = kiln_arena_create(0);
    const uint8_t *msg;
    size_t len;
    bool z;
    kiln_err err;
    /* Decoding it as a request must fail (it is a trailers frame), which
     * shows it base64-decodes to a 0x80 frame. */
    CHECK_EQ(kiln_grpcweb_message(a, (const uint8_t *)resp.body.ptr, resp.body.len, true, &msg,
                                  &len, &z, &err),
             KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "0x80") != NULL);
    kiln_buf_free(&resp.body);
    kiln_buf_init(&resp.body, 0);
    kiln_grpcweb_reply(&resp, false, true, KILN_INVALID_ARGUMENT, "bad: 100%\n");
    CHECK_STR(resp.content_type, "application/grpc-web+json");
    const char *t = "grpc-status: 3\r\ngrpc-message: bad: 100%25%0A\r\n";
    CHECK_EQ(resp.body.len, 5 + strlen(t));
    CHECK(resp.body.len > 5 && (uint8_t)resp.body.ptr[0] == 0x80 &&
          memcmp(resp.body.ptr + 5, t, strlen(t)) == 0);
    kiln_buf_free(&resp.body);
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(content_types);
    RUN(binary_message);
    RUN(text_message);
    RUN(reply_frames);
    return check_done();
}
