/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/multipart: the form pyroscope-go builds (CRLF,
 * binary parts), LF-only bodies, preamble/epilogue/padding, quoted and
 * odd boundaries, boundary look-alikes inside binary data, empty parts, and
 * every way a form can be broken; plus every prefix of a good form. */
#include <string.h>

#include "arena.h"
#include "check.h"
#include "multipart.h"

static kiln_str_t S(const char *s)
{
    return (kiln_str_t){s, strlen(s)};
}

static kiln_status parse(kiln_arena_t *a, const void *body, size_t len, const char *boundary,
                         kiln_multipart_part **parts, size_t *n, kiln_err *err)
{
    return kiln_multipart_parse(a, body, len, S(boundary), parts, n, err);
}

/* Go's mime/multipart writer output with a random boundary, as
 * pyroscope-go's remote.go sends it (profile bytes include NUL, CR, LF and
 * "--" sequences). */
static const char go_form[] =
    "--0a1b2c3d4e5f\r\n"
    "Content-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\x1f\x8b\x00\r\n--0a1b2c3d4e5\r\n--0a1b2c3d4e5fX\x00\xff"
    "\r\n--0a1b2c3d4e5f\r\n"
    "Content-Disposition: form-data; name=\"sample_type_config\"; "
    "filename=\"sample_type_config.json\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "{\"alloc_space\":{\"units\":\"bytes\"}}"
    "\r\n--0a1b2c3d4e5f--\r\n";

TEST(go_writer_form)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_str_t b;
    CHECK_OK(kiln_multipart_boundary(a, "multipart/form-data; boundary=0a1b2c3d4e5f", &b, NULL));
    CHECK(kiln_str_eq(b, "0a1b2c3d4e5f"));
    kiln_multipart_part *p;
    size_t n;
    CHECK_OK(parse(a, go_form, sizeof(go_form) - 1, "0a1b2c3d4e5f", &p, &n, NULL));
    CHECK_EQ(n, 2);
    CHECK(kiln_str_eq(p[0].name, "profile"));
    CHECK(kiln_str_eq(p[0].filename, "profile.pprof"));
    CHECK(kiln_str_eq(p[0].content_type, "application/octet-stream"));
    static const char body0[] = "\x1f\x8b\x00\r\n--0a1b2c3d4e5\r\n--0a1b2c3d4e5fX\x00\xff";
    CHECK_EQ(p[0].len, sizeof(body0) - 1);
    CHECK(memcmp(p[0].data, body0, p[0].len) == 0);
    const kiln_multipart_part *c = kiln_multipart_find(p, n, "sample_type_config");
    CHECK(c != NULL);
    CHECK_EQ(c->len, strlen("{\"alloc_space\":{\"units\":\"bytes\"}}"));
    CHECK(kiln_multipart_find(p, n, "prev_profile") == NULL);
    kiln_arena_destroy(a);
}

TEST(lf_preamble_epilogue_padding)
{
    kiln_arena_t *a = kiln_arena_create(0);
    static const char body[] = "This is a preamble.\n"
                               "--xyz \t\n"
                               "content-disposition: form-data; name=profile\n"
                               "\n"
                               "abc\n"
                               "--xyz\n"
                               "CONTENT-DISPOSITION: form-data; filename=\"f\"; name=\"empty\"\n"
                               "\n"
                               "\n"
                               "--xyz--  \n"
                               "epilogue --xyz\n";
    kiln_multipart_part *p;
    size_t n;
    CHECK_OK(parse(a, body, sizeof(body) - 1, "xyz", &p, &n, NULL));
    CHECK_EQ(n, 2);
    CHECK(kiln_str_eq(p[0].name, "profile"));
    CHECK_EQ(p[0].len, 3);
    CHECK(memcmp(p[0].data, "abc", 3) == 0);
    CHECK(kiln_str_eq(p[1].name, "empty"));
    CHECK(kiln_str_eq(p[1].filename, "f"));
    CHECK_EQ(p[1].len, 0);
    CHECK(kiln_multipart_find(p, n, "empty") == NULL); /* empty counts as absent */
    /* No parts at all: only the closing boundary. */
    CHECK_OK(parse(a, "--xyz--\r\n", 9, "xyz", &p, &n, NULL));
    CHECK_EQ(n, 0);
    kiln_arena_destroy(a);
}

TEST(boundary_parameter)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_str_t b;
    kiln_err err;
    CHECK_OK(kiln_multipart_boundary(
        a, "multipart/form-data; charset=utf-8; BOUNDARY=\"a;b \\\"c\"", &b, NULL));
    CHECK(kiln_str_eq(b, "a;b \"c"));
    CHECK_OK(kiln_multipart_boundary(
        a, "multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxk", &b, NULL));
    CHECK(kiln_str_eq(b, "----WebKitFormBoundary7MA4YWxk"));
    CHECK_EQ(kiln_multipart_boundary(a, "multipart/form-data", &b, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "boundary") != NULL);
    CHECK_EQ(kiln_multipart_boundary(a, "multipart/form-data; boundary=", &b, &err),
             KILN_INVALID_ARGUMENT);
    CHECK_EQ(kiln_multipart_boundary(a, NULL, &b, &err), KILN_INVALID_ARGUMENT);
    char longb[300] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 250);
    longb[sizeof(longb) - 1] = '\0';
    CHECK_EQ(kiln_multipart_boundary(a, longb, &b, &err), KILN_INVALID_ARGUMENT);
    kiln_str_t v;
    kiln_str_t cd = S("form-data; name=\"profile\"; filename=\"x.pprof\"");
    CHECK(kiln_mime_param(a, cd, "filename", &v));
    CHECK(kiln_str_eq(v, "x.pprof"));
    CHECK(!kiln_mime_param(a, S("form-data; filename=\"x\""), "name", &v));
    CHECK(!kiln_mime_param(a, S("form-data; name"), "name", &v));
    kiln_arena_destroy(a);
}

TEST(malformed_forms)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_multipart_part *p = NULL;
    size_t n = 99;
    kiln_err err;
    static const char *const bad[] = {
        "",
        "no boundary here\r\n",
        "--xyzz\r\n\r\ndata\r\n--xyzz--\r\n",                  /* another boundary */
        "--xyz\r\nContent-Disposition: form-data; name=a\r\n", /* headers never end */
        "--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\nbody without end",
        "--xyz\r\n\r\nbody\r\n--xyzNOT\r\n", /* look-alike only */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kiln_status st = parse(a, bad[i], strlen(bad[i]), "xyz", &p, &n, &err);
        CHECK_EQ(st, KILN_INVALID_ARGUMENT);
        CHECK(strncmp(err.msg, "multipart: ", 11) == 0);
    }
    CHECK_EQ(n, 99); /* outputs untouched on failure */
    /* Too many header lines. */
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "--xyz\r\n");
    for (int i = 0; i < 200; i++)
        kiln_buf_puts(&b, "X-H: v\r\n");
    kiln_buf_puts(&b, "\r\nbody\r\n--xyz--\r\n");
    CHECK_EQ(parse(a, b.ptr, b.len, "xyz", &p, &n, &err), KILN_INVALID_ARGUMENT);
    /* Too many parts. */
    b.len = 0;
    for (int i = 0; i <= KILN_MULTIPART_MAX_PARTS; i++)
        kiln_buf_puts(&b, "--xyz\r\n\r\nv\r\n");
    kiln_buf_puts(&b, "--xyz--\r\n");
    CHECK_EQ(parse(a, b.ptr, b.len, "xyz", &p, &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "parts") != NULL);
    kiln_buf_free(&b);
    kiln_arena_destroy(a);
}

TEST(every_prefix_is_safe)
{
    size_t len = sizeof(go_form) - 1;
    for (size_t i = 0; i <= len; i++) {
        kiln_arena_t *a = kiln_arena_create(1 << 20);
        kiln_multipart_part *p;
        size_t n;
        kiln_status st = parse(a, go_form, i, "0a1b2c3d4e5f", &p, &n, NULL);
        /* Complete once the closing delimiter is there ("--" of it included). */
        CHECK_EQ(st, i >= len - 2 ? KILN_OK : KILN_INVALID_ARGUMENT);
        kiln_arena_destroy(a);
    }
}

int main(void)
{
    RUN(go_writer_form);
    RUN(lf_preamble_epilogue_padding);
    RUN(boundary_parameter);
    RUN(malformed_forms);
    RUN(every_prefix_is_safe);
    return check_done();
}
