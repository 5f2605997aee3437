/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for selector: FlameQL parsing (accepted forms, every error with
 * its position) and matching semantics. */
#include <pthread.h>
#include <stdbool.h>

#include "check.h"
#include "selector.h"

static const char *op_str(kiln_match_op op)
{
    switch (op) {
    case KILN_MATCH_EQ:
        return "=";
    case KILN_MATCH_NEQ:
        return "!=";
    case KILN_MATCH_RE:
        return "=~";
    default:
        return "!~";
    }
}

/* Renders the matchers as `name<op>"value";...` (values unescaped). */
static void render(const kiln_selector_t *s, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < kiln_selector_count(s); i++) {
        const char *name, *value;
        kiln_match_op op;
        kiln_selector_get(s, i, &name, &op, &value);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s%s\"%s\"", i ? ";" : "", name,
                                op_str(op), value);
        if (len >= cap)
            return;
    }
}

typedef struct ok_case {
    const char *q;
    const char *type;
    const char *matchers;
} ok_case;

static const ok_case ok_cases[] = {
    {"{}", "", ""},
    {"  {  }  ", "", ""},
    {"{\n}\n", "", ""},
    {"{a=\"b\"}", "", "a=\"b\""},
    {"{a!=\"b\"}", "", "a!=\"b\""},
    {"{a=~\"b.*\"}", "", "a=~\"b.*\""},
    {"{a!~\"b|c\"}", "", "a!~\"b|c\""},
    {"{a='b'}", "", "a=\"b\""},
    {"{a=`b\\n`}", "", "a=\"b\\n\""},
    {"{a=`multi\nline`}", "", "a=\"multi\nline\""},
    {"{a=\"\"}", "", "a=\"\""},
    {"{a=~\"\"}", "", "a=~\"\""},
    {"{a=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"}", "", "a=\"\a\b\f\n\r\t\v\\\"\""},
    {"{a=\"\\x41\\101\\u00e9\\U0001F600\"}", "", "a=\"AA\xc3\xa9\xf0\x9f\x98\x80\""},
    {"{a='it\\'s'}", "", "a=\"it's\""},
    {"{a=\"it's\"}", "", "a=\"it's\""},
    {"{a='say \"hi\"'}", "", "a=\"say \"hi\"\""},
    {"{a=\"h\xc3\xa9llo\"}", "", "a=\"h\xc3\xa9llo\""},
    {"{\"service.name\"=\"x\"}", "", "service.name=\"x\""},
    {"{'quoted name'=\"x\"}", "", "quoted name=\"x\""},
    {"{`raw`=\"x\"}", "", "raw=\"x\""},
    {"{\"w\xc3\xb6rter\"!=\"x\"}", "", "w\xc3\xb6rter!=\"x\""},
    {"{service.name=\"x\"}", "", "service.name=\"x\""},
    {"{_a1=\"x\"}", "", "_a1=\"x\""},
    {"{a=\"1\",}", "", "a=\"1\""},
    {"{ a = \"1\" , b != \"2\" , }", "", "a=\"1\";b!=\"2\""},
    {"{\n\ta=\"1\",\r\n\tb=~\"2\"\n}", "", "a=\"1\";b=~\"2\""},
    {"{a=\"1\",a=\"2\"}", "", "a=\"1\";a=\"2\""},
    {"process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"x\"}",
     "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "service_name=\"x\""},
    {"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
     ""},
    {"  wall:wall:nanoseconds:wall:nanoseconds  ", "wall:wall:nanoseconds:wall:nanoseconds", ""},
    {"memory:alloc_space:bytes:space:bytes:delta{}", "memory:alloc_space:bytes:space:bytes", ""},
    {"memory:alloc_in_new_tlab_bytes:bytes::{}", "memory:alloc_in_new_tlab_bytes:bytes::", ""},
    {"a-b.c:d:e:f:g {x=\"1\"}", "a-b.c:d:e:f:g", "x=\"1\""},
    {"myapp.cpu{env=\"prod\"}", "",
     "service_name=\"myapp\";__name__=\"process_cpu\";__type__=\"cpu\";env=\"prod\""},
    {"my.app-1.name.alloc_space", "",
     "service_name=\"my.app-1.name\";__name__=\"memory\";__type__=\"alloc_space\""},
    {" app.wall {} ", "", "service_name=\"app\";__name__=\"wall\";__type__=\"wall\""},
};

TEST(parse_ok)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const ok_case *c = &ok_cases[i];
        kiln_selector_t *s = NULL;
        kiln_err err = {0};
        kiln_status st = kiln_selector_parse(c->q, strlen(c->q), &s, &err);
        if (st != KILN_OK) {
            printf("  case %zu %s: %s\n", i, c->q, err.msg);
            CHECK_OK(st);
            continue;
        }
        char got[512];
        render(s, got, sizeof(got));
        CHECK_STR(kiln_selector_profile_type(s), c->type);
        /* a type before the braces also selects it */
        char want[512];
        snprintf(want, sizeof(want), "%s%s%s%s%s", c->matchers, *c->type && *c->matchers ? ";" : "",
                 *c->type ? "__profile_type__=\"" : "", c->type, *c->type ? "\"" : "");
        CHECK_STR(got, want);
        kiln_selector_destroy(s);
    }
}

typedef struct legacy_case {
    const char *suffix, *name, *type;
} legacy_case;

TEST(legacy_suffixes)
{
    static const legacy_case cases[] = {
        {"cpu", "process_cpu", "cpu"},
        {"itimer", "process_cpu", "cpu"},
        {"wall", "wall", "wall"},
        {"inuse_objects", "memory", "inuse_objects"},
        {"inuse_space", "memory", "inuse_space"},
        {"alloc_objects", "memory", "alloc_objects"},
        {"alloc_space", "memory", "alloc_space"},
        {"goroutines", "goroutine", "goroutine"},
        {"mutex_count", "mutex", "contentions"},
        {"mutex_duration", "mutex", "delay"},
        {"block_count", "block", "contentions"},
        {"block_duration", "block", "delay"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char q[128], want[256], got[256];
        snprintf(q, sizeof(q), "ride.sharing.%s{x!=\"y\"}", cases[i].suffix);
        snprintf(want, sizeof(want),
                 "service_name=\"ride.sharing\";__name__=\"%s\";__type__=\"%s\";x!=\"y\"",
                 cases[i].name, cases[i].type);
        kiln_selector_t *s = NULL;
        CHECK_OK(kiln_selector_parse(q, strlen(q), &s, NULL));
        if (s == NULL)
            continue;
        render(s, got, sizeof(got));
        CHECK_STR(got, want);
        CHECK_STR(kiln_selector_profile_type(s), "");
        kiln_selector_destroy(s);
    }
}

typedef struct err_case {
    const char *q;
    const char *msg;
} err_case;

#define EXP_OP "expected one of \"=\", \"!=\", \"=~\", \"!~\""

static const err_case err_cases[] = {
    /* structure */
    {"", "1:1: unexpected end of input; expected a profile type or \"{\""},
    {"   ", "1:4: unexpected end of input; expected a profile type or \"{\""},
    {"}", "1:1: unexpected \"}\"; expected a profile type or \"{\""},
    {"{", "1:2: unexpected end of input; expected label name"},
    {"{a=\"b\"", "1:7: unexpected end of input; expected \",\" or \"}\""},
    {"{a=\"b\",", "1:8: unexpected end of input; expected label name"},
    {"{a=\"b\" b=\"c\"}", "1:8: unexpected \"b\"; expected \",\" or \"}\""},
    {"{a=\"b\";b=\"c\"}", "1:7: unexpected \";\"; expected \",\" or \"}\""},
    {"{a=\"b\",,}", "1:8: unexpected \",\"; expected label name"},
    {"{,}", "1:2: unexpected \",\"; expected label name"},
    {"{1a=\"x\"}", "1:2: unexpected \"1\"; expected label name"},
    {"{\xc3\xa9=\"x\"}", "1:2: unexpected \"\xc3\xa9\"; expected label name"},
    {"{\x01}", "1:2: unexpected \"\\x01\"; expected label name"},
    {"{\xff}", "1:2: unexpected \"\\xff\"; expected label name"},
    {"{a}", "1:3: unexpected \"}\"; " EXP_OP},
    {"{a~\"b\"}", "1:3: unexpected \"~\"; " EXP_OP},
    {"{service-name=\"x\"}", "1:9: unexpected \"-\"; " EXP_OP},
    {"{a", "1:3: unexpected end of input; " EXP_OP},
    {"{a!\"b\"}", "1:3: bad operator \"!\"; expected \"!=\" or \"!~\""},
    {"{a=}", "1:4: unexpected \"}\"; expected a quoted string"},
    {"{a==\"b\"}", "1:4: unexpected \"=\"; expected a quoted string"},
    {"{a=\"b\", c=d}", "1:11: unexpected \"d\"; expected a quoted string"},
    {"{a=", "1:4: unexpected end of input; expected a quoted string"},
    {"{a=\"b\"}}", "1:8: unexpected \"}\" after \"}\""},
    {"{a=\"b\"} x", "1:9: unexpected \"x\" after \"}\""},
    {"{} {}", "1:4: unexpected \"{\" after \"}\""},
    {"{\"\"=\"x\"}", "1:2: empty label name"},
    {"{``=\"x\"}", "1:2: empty label name"},
    /* positions: lines and UTF-8 columns */
    {"{\n  a=\"b\",\n  c}", "3:4: unexpected \"}\"; " EXP_OP},
    {"{\"\xc3\xa9\"=\"x\" }}", "1:11: unexpected \"}\" after \"}\""},
    {"{a=\"\xe2\x82\xac\xe2\x82\xac\"\"}", "1:8: unexpected \"\\\"\"; expected \",\" or \"}\""},
    /* strings */
    {"{a=\"b}", "1:4: unterminated string"},
    {"{a=\"b\n\"}", "1:4: unterminated string"},
    {"{a='b}", "1:4: unterminated string"},
    {"{a=`b}", "1:4: unterminated string"},
    {"{\"a=\"b\"}", "1:6: unexpected \"b\"; " EXP_OP},
    {"{a=\"\\", "1:4: unterminated string"},
    {"{a=\"\\q\"}", "1:5: unknown escape sequence \"\\q\""},
    {"{a=\"\\'\"}", "1:5: unknown escape sequence \"\\'\""},
    {"{a='\\\"'}", "1:5: unknown escape sequence \"\\\"\""},
    {"{a=\"\\\xc3\xa9\"}", "1:5: unknown escape sequence \"\\\xc3\xa9\""},
    {"{a=\"\\x4\"}", "1:5: invalid \\x escape: expected 2 hex digits"},
    {"{a=\"\\xg0\"}", "1:5: invalid \\x escape: expected 2 hex digits"},
    {"{a=\"\\u12\"}", "1:5: invalid \\u escape: expected 4 hex digits"},
    {"{a=\"\\U0001F60\"}", "1:5: invalid \\U escape: expected 8 hex digits"},
    {"{a=\"\\UFFFFFFFF\"}", "1:5: invalid \\U escape: U+FFFFFFFF is not a Unicode scalar value"},
    {"{a=\"\\ud800\"}", "1:5: invalid \\u escape: U+D800 is not a Unicode scalar value"},
    {"{a=\"\\400\"}", "1:5: invalid octal escape: expected 3 octal digits up to \\377"},
    {"{a=\"\\18\"}", "1:5: invalid octal escape: expected 3 octal digits up to \\377"},
    {"{a=\"\\x00\"}", "1:4: string contains a NUL byte"},
    {"{a=\"\\xff\"}", "1:4: string is not valid UTF-8"},
    {"{a=\"\xff\"}", "1:4: string is not valid UTF-8"},
    {"{\"\xc3\"=\"x\"}", "1:2: string is not valid UTF-8"},
    /* regexes */
    {"{a=~\"(\"}", "1:5: invalid regexp \"(\": missing closing parenthesis"},
    {"{x=\"1\", a!~'[a'}", "1:12: invalid regexp '[a': missing terminating ] for character class"},
    {"{a=~\"a)|(b\"}", "1:5: invalid regexp \"a)|(b\": unmatched closing parenthesis"},
    {"{a=~`*`}", "1:5: invalid regexp `*`: quantifier does not follow a repeatable item"},
    /* profile types */
    {"a:b:c{}",
     "1:1: invalid profile type \"a:b:c\": expected name:type:unit:period_type:period_unit"},
    {"  a:b:c:d:e:f{}",
     "1:3: invalid profile type \"a:b:c:d:e:f\": expected name:type:unit:period_type:period_unit"},
    {"a:b:c:d:e:delta:x", "1:1: invalid profile type \"a:b:c:d:e:delta:x\": expected "
                          "name:type:unit:period_type:period_unit"},
    {"foo{}", "1:1: invalid profile type \"foo\": expected "
              "name:type:unit:period_type:period_unit or app.suffix"},
    {".cpu{}", "1:1: empty application name in \".cpu\""},
    {"app.foo{}", "1:5: unknown profile type suffix \"foo\""},
    {"my.app.{}", "1:8: unknown profile type suffix \"\""},
    {"  app.cpu x", "1:11: unexpected \"x\"; expected \"{\""},
    {"app.cpu/x{}", "1:8: unexpected \"/\"; expected \"{\""},
    {"\"app\"{}", "1:1: unexpected \"\\\"\"; expected a profile type or \"{\""},
};

TEST(parse_errors)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const err_case *c = &err_cases[i];
        kiln_selector_t *s = NULL;
        kiln_err err = {0};
        kiln_status st = kiln_selector_parse(c->q, strlen(c->q), &s, &err);
        CHECK_EQ(st, KILN_INVALID_ARGUMENT);
        CHECK_EQ(err.code, KILN_INVALID_ARGUMENT);
        CHECK(s == NULL);
        if (strcmp(err.msg, c->msg) != 0)
            printf("  case %zu\n", i);
        CHECK_STR(err.msg, c->msg);
        kiln_selector_destroy(s);
    }
}

TEST(parse_uses_len_not_nul)
{
    /* An embedded NUL is a character like any other, and bytes past len are ignored. */
    kiln_selector_t *s = NULL;
    kiln_err err = {0};
    CHECK_EQ(kiln_selector_parse("{\0}", 3, &s, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "1:2: unexpected \"\\x00\"; expected label name");
    CHECK_OK(kiln_selector_parse("{a=\"b\"}garbage", 7, &s, NULL));
    CHECK_EQ(kiln_selector_count(s), 1);
    kiln_selector_destroy(s);
    CHECK_EQ(kiln_selector_parse("{a=\"b\"}", 6, &s, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "1:7: unexpected end of input; expected \",\" or \"}\"");
}

/* Labels sorted by name, as stored series carry them. */
static const kiln_label_t series[] = {
    {"__name__", "process_cpu"},
    {"__profile_type__", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"},
    {"__type__", "cpu"},
    {"multi", "a\nb"},
    {"region", "eu-west"},
    {"service_name", "api"},
};
#define NSERIES (sizeof(series) / sizeof(series[0]))

typedef struct match_case {
    const char *q;
    bool want;
} match_case;

static const match_case match_cases[] = {
    {"{}", true},
    {"{service_name=\"api\"}", true},
    {"{service_name=\"ap\"}", false},
    {"{service_name!=\"api\"}", false},
    {"{service_name!=\"web\"}", true},
    /* regexes are anchored at both ends */
    {"{service_name=~\"ap\"}", false},
    {"{service_name=~\"pi\"}", false},
    {"{service_name=~\"p\"}", false},
    {"{service_name=~\"ap.*\"}", true},
    {"{service_name=~\".*pi\"}", true},
    {"{service_name=~\"a|b\"}", false},
    {"{service_name=~\"web|api\"}", true},
    {"{service_name!~\"ap\"}", true},
    {"{service_name!~\"api|web\"}", false},
    {"{region=~\"eu-.*\"}", true},
    {"{region!~\"us-.*\"}", true},
    {"{region!~\"eu-.*\"}", false},
    {"{region=~\"(?i)EU-WEST\"}", true},
    /* a missing label has the value "" */
    {"{missing=\"\"}", true},
    {"{missing!=\"\"}", false},
    {"{missing=\"x\"}", false},
    {"{missing!=\"x\"}", true},
    {"{missing=~\".*\"}", true},
    {"{missing=~\".+\"}", false},
    {"{missing!~\".+\"}", true},
    {"{missing=~\"\"}", true},
    {"{service_name=\"\"}", false},
    {"{service_name!=\"\"}", true},
    {"{service_name=~\".*\"}", true},
    {"{service_name=~\"\"}", false},
    /* . matches a newline (as Prometheus' ^(?s:re)$); $ does not skip one */
    {"{multi=~\"a.b\"}", true},
    {"{multi=~\"a\"}", false},
    {"{multi=~\"a\\n.*\"}", true},
    /* every matcher must hold */
    {"{service_name=\"api\", region=\"eu-west\"}", true},
    {"{service_name=\"api\", region=\"us-east\"}", false},
    {"process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"api\"}", true},
    {"api.cpu{region=\"eu-west\"}", true},
    {"api.cpu", true},
    {"api.wall", false},
    {"web.cpu", false},
    {"api.alloc_space{}", false},
};

TEST(match)
{
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const match_case *c = &match_cases[i];
        kiln_selector_t *s = NULL;
        kiln_err err = {0};
        kiln_status st = kiln_selector_parse(c->q, strlen(c->q), &s, &err);
        CHECK_OK(st);
        if (st != KILN_OK) {
            printf("  case %zu %s: %s\n", i, c->q, err.msg);
            continue;
        }
        bool got = kiln_selector_match(s, series, NSERIES);
        if (got != c->want)
            printf("  case %zu %s: got %d\n", i, c->q, got);
        CHECK_EQ(got, c->want);
        kiln_selector_destroy(s);
    }
}

TEST(match_empty_set)
{
    kiln_selector_t *s = NULL;
    CHECK_OK(kiln_selector_parse("{a=\"\", b!~\"x\"}", 14, &s, NULL));
    CHECK(kiln_selector_match(s, NULL, 0));
    kiln_selector_destroy(s);
    CHECK_OK(kiln_selector_parse("{a!=\"\"}", 7, &s, NULL));
    CHECK(!kiln_selector_match(s, NULL, 0));
    kiln_selector_destroy(s);
}

TEST(add)
{
    kiln_selector_t *s = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_selector_parse("{service_name=\"api\"}", 20, &s, NULL));
    CHECK_OK(kiln_selector_add(s, KILN_LABEL_PROFILE_TYPE, KILN_MATCH_EQ,
                               "process_cpu:cpu:nanoseconds:cpu:nanoseconds", &err));
    CHECK_EQ(kiln_selector_count(s), 2);
    const char *name, *value;
    kiln_match_op op;
    kiln_selector_get(s, 1, &name, &op, &value);
    CHECK_STR(name, "__profile_type__");
    CHECK_EQ(op, KILN_MATCH_EQ);
    CHECK_STR(value, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");

    kiln_label_t l[] = {{"__profile_type__", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"},
                        {"service_name", "api"}};
    CHECK(kiln_selector_match(s, l, 2));
    l[0].value = "memory:alloc_space:bytes:space:bytes";
    CHECK(!kiln_selector_match(s, l, 2));

    CHECK_EQ(kiln_selector_add(s, "x", KILN_MATCH_NRE, "(", &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "invalid regexp \"(\": missing closing parenthesis");
    CHECK_EQ(kiln_selector_count(s), 2);
    CHECK_OK(kiln_selector_add(s, "service_name", KILN_MATCH_RE, "a.i", &err));
    l[0].value = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    CHECK(kiln_selector_match(s, l, 2));
    kiln_selector_destroy(s);
    kiln_selector_destroy(NULL);
}

typedef struct race {
    const kiln_selector_t *s;
    int matched;
} race;

static void *race_main(void *arg)
{
    race *r = arg;
    kiln_label_t l[] = {{"a", "x1"}, {"b", "yy"}};
    kiln_label_t m[] = {{"a", "x1"}, {"b", "zz"}};
    for (int i = 0; i < 20000; i++) {
        r->matched += kiln_selector_match(r->s, l, 2);
        r->matched -= kiln_selector_match(r->s, m, 2);
    }
    return NULL;
}

TEST(concurrent_match)
{
    /* One selector shared by several threads (run under TSan in CI). */
    kiln_selector_t *s = NULL;
    CHECK_OK(kiln_selector_parse("{a=~\"x[0-9]\", b!~\"z+\"}", 22, &s, NULL));
    pthread_t th[4];
    race r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (race){s, 0};
        pthread_create(&th[i], NULL, race_main, &r[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(r[i].matched, 20000);
    }
    kiln_selector_destroy(s);
}

/* A formatted selector parses back to one that formats the same and
 * matches the same label sets. */
TEST(format_round_trip)
{
    static const char *const q[] = {
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"api\",env=~\"prod.*\"}",
        "{\"service.name\"!=\"a\\\"b\\\\c\", x!~\"\\x01|y\", z=\"\"}",
        "app.name.cpu{k=\"v\"}",
        "{}",
    };
    kiln_label_t l[] = {{"env", "prod-1"}, {"service_name", "api"}};
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        kiln_selector_t *a, *b;
        kiln_err err;
        CHECK_EQ(kiln_selector_parse(q[i], strlen(q[i]), &a, &err), KILN_OK);
        kiln_buf fa, fb;
        kiln_buf_init(&fa, 0);
        kiln_buf_init(&fb, 0);
        kiln_selector_format(a, &fa);
        kiln_buf_putc(&fa, '\0');
        CHECK_EQ(kiln_selector_parse(fa.ptr, fa.len - 1, &b, &err), KILN_OK);
        kiln_selector_format(b, &fb);
        kiln_buf_putc(&fb, '\0');
        CHECK(strcmp(fa.ptr, fb.ptr) == 0);
        CHECK_EQ(kiln_selector_count(a), kiln_selector_count(b));
        CHECK_EQ(kiln_selector_match(a, l, 2), kiln_selector_match(b, l, 2));
        kiln_buf_free(&fa);
        kiln_buf_free(&fb);
        kiln_selector_destroy(a);
        kiln_selector_destroy(b);
    }
}

int main(void)
{
    RUN(format_round_trip);
    RUN(parse_ok);
    RUN(legacy_suffixes);
    RUN(parse_errors);
    RUN(parse_uses_len_not_nul);
    RUN(match);
    RUN(match_empty_set);
    RUN(add);
    RUN(concurrent_match);
    return check_done();
}
