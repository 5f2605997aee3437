/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: label sets, fingerprints, validation, UTF-8; arena and buf. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "arena.h"
#include "buf.h"
#include "check.h"
#include "labels.h"

TEST(sort_and_fingerprint)
{
    kiln_label_t a[] = {{"service_name", "x"}, {"__name__", "process_cpu"}, {"env", "p"}};
    kiln_label_t b[] = {{"env", "p"}, {"service_name", "x"}, {"__name__", "process_cpu"}};
    kiln_labels_sort(a, 3);
    kiln_labels_sort(b, 3);
    CHECK_STR(a[0].name, "__name__");
    CHECK_STR(a[2].name, "service_name");
    CHECK(kiln_labels_fingerprint(a, 3) == kiln_labels_fingerprint(b, 3));
    b[1].value = "q";
    CHECK(kiln_labels_fingerprint(a, 3) != kiln_labels_fingerprint(b, 3));
    /* name/value boundaries are part of the hash: {ab=c} != {a=bc} */
    kiln_label_t c[] = {{"ab", "c"}}, d[] = {{"a", "bc"}};
    CHECK(kiln_labels_fingerprint(c, 1) != kiln_labels_fingerprint(d, 1));
    /* bytewise, as strcmp: a prefix first, bytes above 0x7f after ASCII */
    kiln_label_t e[] = {{"\xc3\xa9t\xc3\xa9", "1"}, {"ab", "2"}, {"z", "3"}, {"a", "4"}, {"", "5"}};
    kiln_labels_sort(e, 5);
    CHECK_STR(e[0].name, "");
    CHECK_STR(e[1].name, "a");
    CHECK_STR(e[2].name, "ab");
    CHECK_STR(e[3].name, "z");
    CHECK_STR(e[4].name, "\xc3\xa9t\xc3\xa9");
    CHECK_STR(kiln_labels_get(e, 5, "ab"), "2");
    CHECK_STR(kiln_labels_get(e, 5, ""), "5");
    CHECK(kiln_labels_get(e, 5, "abc") == NULL);
}

/* The value is Pyroscope's and is kept in blocks and replicas' keys: the
 * same for a set hashed in one pass and one too long for the buffer. */
TEST(fingerprint_value)
{
    kiln_label_t a[] = {{"__name__", "process_cpu"}, {"service_name", "x"}};
    static const char flat[] = "__name__\xffprocess_cpu\xffservice_name\xffx\xff";
    CHECK(kiln_labels_fingerprint(a, 2) == XXH64(flat, sizeof(flat) - 1, 0));
    CHECK(kiln_labels_fingerprint(NULL, 0) == XXH64("", 0, 0));
    static char big[3000], want[3100];
    memset(big, 'v', sizeof(big) - 1);
    kiln_label_t l[] = {{"a", "1"}, {"b", big}};
    size_t n = (size_t)snprintf(want, sizeof(want),
                                "a\xff"
                                "1\xff"
                                "b\xff%s\xff",
                                big);
    CHECK(kiln_labels_fingerprint(l, 2) == XXH64(want, n, 0));
    /* the tag: XXH3 of the same bytes, in one pass or streamed */
    uint32_t tag = 0;
    CHECK(kiln_labels_fingerprint_tag(a, 2, &tag) == kiln_labels_fingerprint(a, 2));
    CHECK_EQ(tag, (uint32_t)XXH3_64bits(flat, sizeof(flat) - 1));
    CHECK(kiln_labels_fingerprint_tag(l, 2, &tag) == XXH64(want, n, 0));
    CHECK_EQ(tag, (uint32_t)XXH3_64bits(want, n));
}

TEST(validate)
{
    kiln_err err;
    kiln_label_t ok[] = {{"__name__", "process_cpu"}, {"service_name", "x"}};
    CHECK_OK(kiln_labels_validate(ok, 2, 30, 1024, 2048, NULL));
    CHECK_EQ(kiln_labels_validate(ok, 0, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t noname[] = {{"service_name", "x"}};
    CHECK_EQ(kiln_labels_validate(noname, 1, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "__name__") != NULL);
    kiln_label_t badname[] = {{"__name__", "a-b"}};
    CHECK_EQ(kiln_labels_validate(badname, 1, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t dup[] = {{"__name__", "x"}, {"a", "1"}, {"a", "2"}};
    CHECK_EQ(kiln_labels_validate(dup, 3, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "duplicate") != NULL);
    CHECK_EQ(kiln_labels_validate(ok, 2, 1, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t longv[] = {{"__name__", "x"}, {"k", "0123456789"}};
    CHECK_EQ(kiln_labels_validate(longv, 2, 30, 1024, 5, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t empty_svc[] = {{"__name__", "x"}, {"service_name", ""}};
    CHECK_EQ(kiln_labels_validate(empty_svc, 2, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    /* Control characters in names or values are refused (issue #10, item 7);
     * dotted and UTF-8 names stay valid. */
    kiln_label_t nl_name[] = {{"__name__", "x"}, {"a\nb", "1"}};
    CHECK_EQ(kiln_labels_validate(nl_name, 2, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "control") != NULL);
    kiln_label_t tab_value[] = {{"__name__", "x"}, {"k", "v\tw"}};
    CHECK_EQ(kiln_labels_validate(tab_value, 2, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t del_value[] = {{"__name__", "x"}, {"k", "v\x7f"}};
    CHECK_EQ(kiln_labels_validate(del_value, 2, 30, 1024, 2048, &err), KILN_INVALID_ARGUMENT);
    kiln_label_t dotted[] = {{"__name__", "x"}, {"service.name", "caf\xc3\xa9"}};
    CHECK_OK(kiln_labels_validate(dotted, 2, 30, 1024, 2048, &err));
}

TEST(utf8)
{
    CHECK(kiln_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x94\xa5", 15));
    CHECK(!kiln_utf8_valid("\xc3", 1));             /* truncated */
    CHECK(!kiln_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!kiln_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!kiln_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!kiln_utf8_valid("\xff", 1));
}

TEST(arena_and_buf)
{
    kiln_arena_t *a = kiln_arena_create(1000);
    CHECK(kiln_arena_alloc(a, 512) != NULL);
    CHECK(kiln_arena_alloc(a, 600) == NULL); /* past the cap */
    char *s = kiln_arena_printf(a, "%d-%s", 7, "x");
    CHECK_STR(s, "7-x");
    kiln_arena_reset(a);
    CHECK_EQ(kiln_arena_used(a), 0);
    CHECK(kiln_arena_alloc(a, 900) != NULL);
    kiln_arena_destroy(a);

    kiln_buf b;
    kiln_buf_init(&b, 8);
    CHECK(kiln_buf_puts(&b, "abcd"));
    CHECK(!kiln_buf_puts(&b, "efghi")); /* would pass max: nothing appended */
    CHECK_EQ(b.len, 4);
    CHECK(kiln_buf_printf(&b, "%d", 123));
    CHECK_STR(b.ptr, "abcd123");
    kiln_buf_free(&b);
}

int main(void)
{
    RUN(sort_and_fingerprint);
    RUN(fingerprint_value);
    RUN(validate);
    RUN(utf8);
    RUN(arena_and_buf);
    return check_done();
}
