/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/appname (the /ingest name parameter): every
 * accepted form, the upstream quirks kept on purpose, and errors with
 * clear messages. */
#include <string.h>

#include "appname.h"
#include "arena.h"
#include "check.h"

static kiln_status parse(kiln_arena_t *a, const char *s, kiln_appname_t *n, kiln_err *err)
{
    return kiln_appname_parse(a, s, strlen(s), n, err);
}

TEST(appname_plain_and_tags)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_appname_t n;
    CHECK_OK(parse(a, "myapp.cpu", &n, NULL));
    CHECK_STR(n.name, "myapp.cpu");
    CHECK_EQ(n.n_tags, 0);
    CHECK_OK(
        parse(a, " my-app/x_1.v2.alloc_space { env = test , region=eu-west-1,k.v=a b }", &n, NULL));
    CHECK_STR(n.name, "my-app/x_1.v2.alloc_space");
    CHECK_EQ(n.n_tags, 3);
    CHECK_STR(kiln_appname_tag(&n, "env"), "test");
    CHECK_STR(kiln_appname_tag(&n, "region"), "eu-west-1");
    CHECK_STR(kiln_appname_tag(&n, "k.v"), "a b");
    CHECK(kiln_appname_tag(&n, "missing") == NULL);
    /* pyroscope-go's form: values hold '/', ':' and '=' freely. */
    CHECK_OK(parse(a,
                   "app{__session_id__=8e1c0a5d9f3b2e47,otel.scope.name=com.grafana.pyroscope/go,"
                   "process.runtime.version=go1.26.0,x=a=b}",
                   &n, NULL));
    CHECK_STR(n.name, "app");
    CHECK_STR(kiln_appname_tag(&n, "__session_id__"), "8e1c0a5d9f3b2e47");
    CHECK_STR(kiln_appname_tag(&n, "otel.scope.name"), "com.grafana.pyroscope/go");
    CHECK_STR(kiln_appname_tag(&n, "x"), "a=b");
    CHECK_EQ(n.n_tags, 4);
    kiln_arena_destroy(a);
}

TEST(appname_upstream_rules)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_appname_t n;
    /* Later duplicates replace; reserved "__" keys dropped but
     * __session_id__; empty values dropped; __name__ replaces the name. */
    CHECK_OK(parse(a, "a{k=1,k=2,__private=x,e=,__name__=b.wall}", &n, NULL));
    CHECK_STR(n.name, "b.wall");
    CHECK_EQ(n.n_tags, 1);
    CHECK_STR(kiln_appname_tag(&n, "k"), "2");
    /* '}' ends the list: the rest is ignored; a key without '=' is ignored;
     * an unterminated value is dropped. */
    CHECK_OK(parse(a, "a{x=1}garbage{y=2}", &n, NULL));
    CHECK_EQ(n.n_tags, 1);
    CHECK_OK(parse(a, "a{lonely}", &n, NULL));
    CHECK_EQ(n.n_tags, 0);
    CHECK_OK(parse(a, "a{x=1,y=2", &n, NULL));
    CHECK_EQ(n.n_tags, 1);
    CHECK_STR(kiln_appname_tag(&n, "x"), "1");
    CHECK_OK(parse(a, "a{}", &n, NULL));
    CHECK_OK(parse(a, "a{", &n, NULL));
    CHECK_EQ(n.n_tags, 0);
    kiln_arena_destroy(a);
}

TEST(appname_errors)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_appname_t n;
    kiln_err err;
    CHECK_EQ(parse(a, "", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "service name is required") != NULL);
    CHECK_EQ(parse(a, "  {a=b}", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(parse(a, "my app", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "' '") != NULL);
    CHECK_EQ(parse(a, "my$app{}", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "'$'") != NULL && strstr(err.msg, "my$app") != NULL);
    CHECK_EQ(parse(a, "app\xc3\xa9", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(parse(a, "app{a-b=1}", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "invalid label name \"a-b\"") != NULL);
    CHECK_EQ(parse(a, "app{=1}", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(parse(a, "app{a=1,,b=2}", &n, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(parse(a, "app{__name__=bad name}", &n, &err), KILN_INVALID_ARGUMENT);
    kiln_appname_t untouched = {"keep", NULL, 7};
    CHECK_EQ(parse(a, "", &untouched, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(untouched.name, "keep");
    CHECK_EQ(untouched.n_tags, 7);
    kiln_arena_destroy(a);
}

TEST(appname_split_suffix)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const char *app;
    CHECK(kiln_appname_split(a, "myapp", &app) == NULL);
    CHECK_STR(app, "myapp");
    CHECK_STR(kiln_appname_split(a, "my.app.cpu", &app), "cpu");
    CHECK_STR(app, "my.app");
    CHECK_STR(kiln_appname_split(a, "app.", &app), "");
    CHECK_STR(app, "app");
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(appname_plain_and_tags);
    RUN(appname_upstream_rules);
    RUN(appname_errors);
    RUN(appname_split_suffix);
    return check_done();
}
