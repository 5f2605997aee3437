/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/json_reader: walking objects and arrays, scalars,
 * escapes and surrogates, skip over deep values, the nesting limit, and
 * the errors (with offsets) of malformed JSON. */
#include <string.h>

#include "arena.h"
#include "check.h"
#include "json_reader.h"

static void init(kiln_json *j, const char *s, kiln_err *err)
{
    kiln_json_init(j, s, strlen(s), "test", err);
}

TEST(walk_document)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_json j;
    init(&j,
         " {\"a\": [1, -2.5e2, 0], \"B\" : {\"x\": null, \"y\": [true, false, {}]}, \"s\": "
         "\"h\\u00e9\\n\\ud83d\\ude00\\/\"} ",
         NULL);
    kiln_str_t key, s;
    double d;
    bool b;
    CHECK(kiln_json_obj_begin(&j));
    CHECK(kiln_json_obj_next(&j, &key));
    CHECK(kiln_json_key_is(key, "A"));
    CHECK(kiln_json_arr_begin(&j));
    double sum = 0;
    while (kiln_json_arr_next(&j)) {
        CHECK(kiln_json_num(&j, &d));
        sum += d;
    }
    CHECK(sum == -249.0);
    CHECK(kiln_json_obj_next(&j, &key));
    CHECK(kiln_json_key_is(key, "b"));
    CHECK(kiln_json_skip(&j));
    CHECK(kiln_json_obj_next(&j, &key));
    CHECK_EQ(kiln_json_peek(&j), KILN_JSON_STRING);
    CHECK(kiln_json_str(&j, a, &s));
    CHECK(s.len == 9 && memcmp(s.ptr, "h\xc3\xa9\n\xf0\x9f\x98\x80/", 9) == 0);
    CHECK(!kiln_json_obj_next(&j, &key));
    CHECK(!kiln_json_failed(&j));
    CHECK(kiln_json_end(&j));
    init(&j, "[true,false,null]", NULL);
    CHECK(kiln_json_arr_begin(&j) && kiln_json_arr_next(&j) && kiln_json_bool(&j, &b) && b);
    CHECK(kiln_json_arr_next(&j) && kiln_json_bool(&j, &b) && !b);
    CHECK(kiln_json_arr_next(&j) && kiln_json_null(&j));
    CHECK(!kiln_json_arr_next(&j) && kiln_json_end(&j));
    kiln_arena_destroy(a);
}

TEST(strings_without_escapes_are_views)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_json j;
    const char *doc = "\"plain\"";
    kiln_json_init(&j, doc, strlen(doc), "t", NULL);
    kiln_str_t s;
    CHECK(kiln_json_str(&j, a, &s));
    CHECK(s.ptr == doc + 1 && s.len == 5);
    init(&j, "\"\\ud800x\"", NULL); /* lone surrogate */
    CHECK(kiln_json_str(&j, a, &s));
    CHECK(s.len == 4 && memcmp(s.ptr, "\xef\xbf\xbdx", 4) == 0);
    kiln_arena_destroy(a);
}

TEST(span_and_deep_skip)
{
    kiln_json j;
    char deep[2 * KILN_JSON_MAX_DEPTH + 32];
    size_t n = 0;
    deep[n++] = '[';
    for (int i = 0; i < KILN_JSON_MAX_DEPTH - 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < KILN_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    init(&j, deep, NULL);
    kiln_str_t span;
    CHECK(kiln_json_span(&j, &span));
    CHECK_EQ(span.len, n);
    CHECK(kiln_json_end(&j));
    /* One level more fails cleanly. */
    memmove(deep + 1, deep, n + 1);
    deep[0] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    kiln_err err;
    init(&j, deep, &err);
    CHECK(!kiln_json_skip(&j));
    CHECK(strstr(err.msg, "nesting") != NULL);
}

TEST(malformed_json)
{
    static const char *const bad[] = {
        "",         "{",          "{\"a\"}",
        "{\"a\":}", "{\"a\":1,}", "[1,]",
        "[,1]",     "[1 2]",      "{\"a\":1 \"b\":2}",
        "\"abc",    "\"a\\x\"",   "\"\\u12g4\"",
        "\"a\tb\"", "01",         "-",
        "1.",       "1e",         "tru",
        "nul",      "[1]]",       "{} {}",
        "{1:2}",    "[\"a\":1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kiln_json j;
        kiln_err err = {KILN_OK, ""};
        init(&j, bad[i], &err);
        kiln_json_skip(&j);
        kiln_json_end(&j);
        CHECK(kiln_json_failed(&j));
        CHECK_EQ(err.code, KILN_INVALID_ARGUMENT);
        CHECK(strstr(err.msg, "offset") != NULL);
        if (!kiln_json_failed(&j))
            printf("  accepted: %s\n", bad[i]);
    }
}

TEST(errors_stick)
{
    kiln_json j;
    kiln_err err;
    init(&j, "[1, x, 3]", &err);
    double d;
    CHECK(kiln_json_arr_begin(&j));
    CHECK(kiln_json_arr_next(&j) && kiln_json_num(&j, &d));
    CHECK(!kiln_json_arr_next(&j));
    CHECK(kiln_json_failed(&j));
    char first[KILN_ERR_MSG_MAX];
    memcpy(first, err.msg, sizeof(first));
    CHECK(!kiln_json_arr_next(&j));
    CHECK(!kiln_json_num(&j, &d));
    CHECK_STR(err.msg, first);
    CHECK_EQ(kiln_json_peek(&j), KILN_JSON_NONE);
}

int main(void)
{
    RUN(walk_document);
    RUN(strings_without_escapes_are_views);
    RUN(span_and_deep_skip);
    RUN(malformed_json);
    RUN(errors_stick);
    return check_done();
}
