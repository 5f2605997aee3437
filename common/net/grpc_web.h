/* SPDX-License-Identifier: Apache-2.0
 * grpc_web: the gRPC-Web framing of a unary call on the HTTP port
 * (application/grpc-web[+proto|+json], and -text, its base64 form): the
 * request's one 5-byte-framed message, and the answer as a message frame
 * then a trailers frame (flag 0x80) holding grpc-status and grpc-message,
 * always HTTP 200 as gRPC-Web clients expect. Pure functions over the
 * request arena and the response buffer; any thread. */
#ifndef KILN_GRPC_WEB_H
#define KILN_GRPC_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "http_server.h"
#include "status.h"

/** Whether the Content-Type ct is gRPC-Web; *text says base64 (-text),
 * *json says the +json codec. */
bool kiln_grpcweb_match(const char *ct, bool *text, bool *json);

/** The request's one message: body base64-decoded into the arena when text,
 * its frame checked (one data frame, the length exact). *compressed is the
 * frame's compression flag. KILN_INVALID_ARGUMENT with err otherwise. */
kiln_status kiln_grpcweb_message(kiln_arena_t *a, const uint8_t *body, size_t len, bool text,
                                 const uint8_t **msg, size_t *msg_len, bool *compressed,
                                 kiln_err *err);

/** Frames the answer in place: on KILN_OK resp->body (the encoded response
 * message) becomes a message frame, then the trailers frame with st and msg
 * (percent-encoded) follows; base64 when text. Status 200, and the
 * gRPC-Web content type of the request's kind. */
void kiln_grpcweb_reply(kiln_http_resp *resp, bool text, bool json, kiln_status st,
                        const char *msg);

#endif
