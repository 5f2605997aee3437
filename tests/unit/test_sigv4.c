/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the SigV4 signer against AWS's published vectors. The
 * "service" cases are from the aws-sig-v4-test-suite
 * (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html:
 * credentials AKIDEXAMPLE, region us-east-1, service "service", time
 * 20150830T123600Z); the S3 case is the "GET Object" example of the S3
 * API reference's "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk" (bucket examplebucket). The
 * expected values are copied as data. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sigv4.h"

#define SUITE_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const kiln_sigv4_key suite = {"AKIDEXAMPLE", SUITE_KEY, "us-east-1", "service",
                                     "20150830T123600Z"};

typedef struct vec {
    const char *name, *method, *path, *query;
    const char *content_type; /* NULL: not signed */
    const char *body;
    const char *canon_sha; /* SHA-256 of the canonical request (NULL: not published here) */
    const char *signature;
} vec;

static const vec vectors[] = {
    {"get-vanilla", "GET", "/", "", NULL, "", NULL,
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", NULL, "",
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", NULL, "", NULL,
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     "", NULL, "", NULL, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"post-x-www-form-urlencoded", "POST", "/", "", "application/x-www-form-urlencoded",
     "Param1=value1", NULL, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
};

static void sign_vector(const vec *v)
{
    char payload[65];
    kiln_sigv4_sha256_hex(v->body, strlen(v->body), payload);
    kiln_sigv4_header h[3] = {{"x-amz-date", "20150830T123600Z"},
                              {"host", "example.amazonaws.com"},
                              {"content-type", v->content_type}};
    kiln_sigv4_request r = {v->method, v->path, v->query, h, v->content_type ? 3 : 2, payload};
    kiln_buf canon, auth;
    kiln_buf_init(&canon, 0);
    kiln_buf_init(&auth, 0);
    kiln_sigv4_canonical_request(&r, &canon);
    if (v->canon_sha != NULL) {
        char got[65];
        kiln_sigv4_sha256_hex(canon.ptr, canon.len, got);
        CHECK_STR(got, v->canon_sha);
    }
    kiln_sigv4_authorization(&suite, &r, &auth);
    const char *sig = strstr(auth.ptr, "Signature=");
    CHECK(sig != NULL);
    if (sig != NULL)
        CHECK_STR(sig + 10, v->signature);
    CHECK(strncmp(auth.ptr,
                  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                  "aws4_request, SignedHeaders=",
                  94) == 0);
    printf("  %s: %s\n", v->name, sig ? sig + 10 : "(none)");
    kiln_buf_free(&canon);
    kiln_buf_free(&auth);
}

TEST(aws_test_suite_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        sign_vector(&vectors[i]);
}

/* The query is sorted by name: the canonical request of the suite's
 * out-of-order case lists Param1 first. */
TEST(canonical_query_is_sorted)
{
    kiln_sigv4_header h[2] = {{"host", "example.amazonaws.com"},
                              {"x-amz-date", "20150830T123600Z"}};
    kiln_sigv4_request r = {"GET", "/", "Param2=value2&Param1=value1", h, 2, EMPTY_SHA};
    kiln_buf canon;
    kiln_buf_init(&canon, 0);
    kiln_sigv4_canonical_request(&r, &canon);
    CHECK_STR(canon.ptr, "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
                         "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA);
    kiln_buf_free(&canon);
}

/* S3's GET Object example: a Range header and x-amz-content-sha256 signed. */
TEST(s3_get_object_example)
{
    kiln_sigv4_key k = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                        "us-east-1", "s3", "20130524T000000Z"};
    kiln_sigv4_header h[4] = {{"host", "examplebucket.s3.amazonaws.com"},
                              {"range", "bytes=0-9"},
                              {"x-amz-content-sha256", EMPTY_SHA},
                              {"x-amz-date", "20130524T000000Z"}};
    kiln_sigv4_request r = {"GET", "/test.txt", "", h, 4, EMPTY_SHA};
    kiln_buf auth;
    kiln_buf_init(&auth, 0);
    kiln_sigv4_authorization(&k, &r, &auth);
    CHECK_STR(auth.ptr, "AWS4-HMAC-SHA256 "
                        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                        "Signature="
                        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    kiln_buf_free(&auth);
}

TEST(uri_encode)
{
    kiln_buf b;
    kiln_buf_init(&b, 0);
    const char *in = "a b/c+d~e=é";
    kiln_sigv4_uri_encode(in, strlen(in), true, &b);
    CHECK_STR(b.ptr, "a%20b/c%2Bd~e%3D%C3%A9");
    b.len = 0;
    kiln_sigv4_uri_encode("x/y", 3, false, &b);
    CHECK_STR(b.ptr, "x%2Fy");
    kiln_buf_free(&b);
}

int main(void)
{
    RUN(aws_test_suite_vectors);
    RUN(canonical_query_is_sorted);
    RUN(s3_get_object_example);
    RUN(uri_encode);
    return check_done();
}
