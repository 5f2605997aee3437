/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for the /ingest body formats: common/folded (folded, the
 * bracketed variant, lines, UTF-16), common/speedscope, and
 * common/ingest_formats (app-name suffixes, sample_type_config, the pprof
 * form's __name__, the .NET and scripting fix-ups). Every folded and
 * speedscope file listed in shared testdata's MANIFEST.md files is parsed
 * and its total compared with one computed here independently. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "folded.h"
#include "gzip.h"
#include "ingest_formats.h"
#include "pprof.h"
#include "pprof_build.h"
#include "speedscope.h"
#include "xmalloc.h"

static int64_t total(const kiln_pprof_t *p, size_t type)
{
    int64_t t = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        t += p->values[p->samples[i].value_off + type];
    return t;
}

/* Finishes b with sample type 0 set, validates and normalises it. */
static kiln_status finish(kiln_arena_t *a, kiln_pprof_build_t *b, kiln_pprof_t *p)
{
    for (size_t i = 0; i < kiln_pprof_build_n_types(b); i++)
        kiln_pprof_build_sample_type(b, i, "samples", "count");
    kiln_err err;
    kiln_status st = kiln_pprof_build_finish(b, p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_validate(p, &err);
    if (st == KILN_OK)
        st = kiln_pprof_normalize(a, p, 0, &err);
    if (st != KILN_OK)
        printf("  finish: %s\n", err.msg);
    return st;
}

/* ---- independent reading of the test files ---- */

typedef struct expect {
    long long total; /* sum of the first value of every line */
    size_t values;   /* values per line */
    size_t bad_line; /* first line whose count is not an integer; 0 = none */
} expect;

/* Sums the last field (or the first bracketed value) of every line with
 * strtoll: deliberately simpler than the parser under test. */
static expect scan_text(const char *t, size_t n)
{
    expect e = {0, 1, 0};
    size_t lineno = 0;
    for (const char *p = t, *end = t + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[1 << 16];
        lineno++;
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl ? nl + 1 : end;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        char *sp = strrchr(line, line[len ? len - 1 : 0] == ']' ? '[' : ' ');
        if (len == 0 || sp == NULL)
            continue;
        char *after;
        long long v = strtoll(sp + 1, &after, 10);
        if (line[len - 1] == ']') {
            size_t k = 1;
            for (char *c = sp + 1; *c != ']'; c++)
                k += *c == ' ';
            e.values = k;
        } else if (*after != '\0' || after == sp + 1) {
            e.bad_line = lineno;
            return e;
        }
        e.total += v;
    }
    return e;
}

/* A file's text: gunzipped when .gz; UTF-16LE (ASCII content) narrowed. */
static char *load_text(kiln_arena_t *a, const char *rel, size_t *len)
{
    unsigned char *raw = check_read_testdata(rel, len);
    if (raw == NULL)
        return NULL;
    const uint8_t *t = raw;
    size_t n = *len;
    if (kiln_gzip_is(raw, n) && kiln_gunzip_maybe(a, raw, n, 64u << 20, &t, &n, NULL) != KILN_OK)
        n = 0;
    char *out = kiln_arena_alloc(a, n + 1);
    size_t k = 0;
    if (n >= 2 && t[0] == 0xff && t[1] == 0xfe) {
        for (size_t i = 2; i + 1 < n; i += 2)
            out[k++] = (char)t[i];
    } else {
        memcpy(out, t, n);
        k = n;
    }
    out[k] = '\0';
    free(raw);
    *len = k;
    return out;
}

/* The files of one MANIFEST.md (dir "" or "hard/") whose format column is
 * one of formats; paths relative to testdata. Returns the count. */
static size_t manifest_files(const char *dir, const char *const *formats, size_t n_formats,
                             char out[][256], size_t max)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "%sMANIFEST.md", dir);
    size_t len, n = 0;
    char *m = (char *)check_read_testdata(rel, &len);
    if (m == NULL)
        return 0;
    m = kiln_xrealloc(m, len + 1);
    m[len] = '\0';
    for (char *line = m, *next; line != NULL && n < max; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *fields[6] = {0};
        size_t nf = 0;
        for (char *c = line; *c && nf < 6; c++) {
            if (*c == '|')
                fields[nf++] = c + 1;
        }
        if (nf < 5)
            continue;
        char fmt[64] = "";
        sscanf(fields[3], " %63[^ |]", fmt);
        char *b = strchr(fields[0], '`'), *e = b ? strchr(b + 1, '`') : NULL;
        for (size_t i = 0; e != NULL && i < n_formats; i++) {
            if (strcmp(fmt, formats[i]) == 0)
                snprintf(out[n++], 256, "%s%.*s", dir, (int)(e - b - 1), b + 1);
        }
    }
    free(m);
    return n;
}

TEST(testdata_folded_files)
{
    static const char *const formats[] = {"folded", "folded-bracketed"};
    static char files[64][256];
    size_t n = manifest_files("", formats, 2, files, 64);
    n += manifest_files("hard/", formats, 2, files + n, 64 - n);
    CHECK(n >= 17);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        kiln_arena_t *a = kiln_arena_create(0);
        size_t len;
        char *text = load_text(a, files[i], &len);
        unsigned char *raw = check_read_testdata(files[i], &len);
        CHECK(text != NULL && raw != NULL);
        if (text == NULL || raw == NULL) {
            printf("  missing %s\n", files[i]);
            kiln_arena_destroy(a);
            free(raw);
            continue;
        }
        size_t tlen = strlen(text);
        expect e = scan_text(text, tlen);
        const uint8_t *body = raw;
        size_t blen = len;
        CHECK_OK(kiln_gunzip_maybe(a, raw, len, 64u << 20, &body, &blen, NULL));
        kiln_pprof_build_t *b = NULL;
        kiln_err err;
        kiln_status st = kiln_folded_parse(a, body, blen, &b, &err);
        if (e.bad_line != 0) {
            char want[32];
            snprintf(want, sizeof(want), "line %zu ", e.bad_line);
            CHECK_EQ(st, KILN_INVALID_ARGUMENT);
            CHECK(strstr(err.msg, want) != NULL);
            printf("  %-75s rejected: %s\n", files[i], err.msg);
            bad++;
        } else {
            kiln_pprof_t p;
            CHECK_OK(st);
            CHECK_EQ(kiln_pprof_build_n_types(b), e.values);
            CHECK_OK(finish(a, b, &p));
            CHECK_EQ(total(&p, 0), e.total);
            printf("  %-75s total=%lld values=%zu stacks=%zu\n", files[i], e.total, e.values,
                   p.n_samples);
        }
        free(raw);
        kiln_arena_destroy(a);
    }
    CHECK_EQ(bad, 1); /* speedscope/simple-with-invalids.txt */
}

TEST(testdata_speedscope_files)
{
    static const char *const formats[] = {"speedscope-json"};
    static char files[16][256];
    size_t n = manifest_files("", formats, 1, files, 16);
    n += manifest_files("hard/", formats, 1, files + n, 16 - n);
    CHECK(n >= 2);
    for (size_t i = 0; i < n; i++) {
        kiln_arena_t *a = kiln_arena_create(0);
        size_t len;
        char *text = load_text(a, files[i], &len);
        CHECK(text != NULL);
        if (text == NULL) {
            kiln_arena_destroy(a);
            continue;
        }
        /* Independently: the sum of every "weights" array, and one profile
         * per "type" member (the files' profiles are all distinct). */
        double weights = 0;
        size_t profiles = 0;
        for (char *w = strstr(text, "\"weights\""); w != NULL; w = strstr(w + 1, "\"weights\"")) {
            for (char *c = strchr(w, '[') + 1; *c != ']';) {
                char *after;
                weights += strtod(c, &after);
                c = after;
                while (*c == ',' || *c == ' ' || *c == '\n')
                    c++;
            }
        }
        for (char *t = strstr(text, "\"type\""); t != NULL; t = strstr(t + 1, "\"type\""))
            profiles++;
        kiln_speedscope_profile *p;
        size_t np;
        kiln_err err;
        CHECK_OK(kiln_speedscope_parse(a, (const uint8_t *)text, len, &p, &np, &err));
        CHECK_EQ(np, profiles);
        int64_t sum = 0;
        for (size_t k = 0; k < np; k++) {
            kiln_pprof_t pp;
            CHECK_STR(p[k].unit, "seconds");
            CHECK_EQ(p[k].default_rate, 100);
            CHECK_OK(finish(a, p[k].b, &pp));
            sum += total(&pp, 0);
        }
        CHECK_EQ(sum, (int64_t)(weights * 100));
        printf("  %-50s profiles=%zu total=%lld\n", files[i], np, (long long)sum);
        kiln_arena_destroy(a);
    }
}

/* Parses folded text and returns the finished, normalised profile. */
static kiln_status folded(kiln_arena_t *a, const char *text, kiln_pprof_t *p, kiln_err *err)
{
    kiln_pprof_build_t *b;
    kiln_status st = kiln_folded_parse(a, (const uint8_t *)text, strlen(text), &b, err);
    return st == KILN_OK ? finish(a, b, p) : st;
}

/* The value of the stack whose frames, root first, are "a;b;c". */
static int64_t stack_value(const kiln_pprof_t *p, const char *stack)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const kiln_pprof_sample *s = &p->samples[i];
        char buf[256] = "";
        for (uint32_t k = s->n_locs; k > 0; k--) {
            const kiln_pprof_location *l = &p->locations[p->locs[s->loc_off + k - 1]];
            kiln_str_t n = kiln_pprof_str(p, p->functions[p->lines[l->line_off].function].name);
            size_t used = strlen(buf);
            snprintf(buf + used, sizeof(buf) - used, "%s%.*s", k == s->n_locs ? "" : ";",
                     (int)n.len, n.ptr);
        }
        if (strcmp(buf, stack) == 0)
            return p->values[s->value_off];
    }
    return -1;
}

TEST(folded_lines_and_frames)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err;
    CHECK_OK(folded(a,
                    "a;b;c 1\r\n\r\na;b;c 2  \nno_space_line\na;b 3\n;x 4\ny; 5\nq;;r +6\n"
                    "java;Foo::bar(int, char*) 7\n\n",
                    &p, &err));
    CHECK_EQ(stack_value(&p, "a;b;c"), 3);
    CHECK_EQ(stack_value(&p, "a;b"), 3);
    CHECK_EQ(stack_value(&p, ";x"), 4); /* leading empty frame */
    CHECK_EQ(stack_value(&p, "y; "), -1);
    CHECK_EQ(stack_value(&p, "y"), 5); /* "y; " trims to "y;": trailing ';' dropped */
    CHECK_EQ(stack_value(&p, "q;;r"), 6);
    CHECK_EQ(stack_value(&p, "java;Foo::bar(int, char*)"), 7);
    CHECK_EQ(total(&p, 0), 28);
    /* Empty input and input of only skipped lines: an empty profile. */
    CHECK_OK(folded(a, "", &p, &err));
    CHECK_EQ(p.n_samples, 0);
    CHECK_OK(folded(a, "\n\r\nnospace\n", &p, &err));
    CHECK_EQ(p.n_samples, 0);
    kiln_arena_destroy(a);
}

TEST(folded_bad_lines)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    kiln_err err;
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"a;b 1\na;b x\n", "line 2 \"a;b x\""},
        {"a 1.5\n", "line 1 "},
        {"a 99999999999999999999\n", "line 1 "},
        {"a -\n", "line 1 "},
        {"a;b 1\n\n\na [1 2]\n", "line 4 "}, /* a different number of values */
        {"a [x]\n", "line 1 "},
        {"a []\n", "line 1 "},
        {"# comment that gives extra info\nx 1\n", "line 1 \"# comment"},
        /* Negative counts are refused, naming the line (issue #10, item 7). */
        {"a 1\nb -5\n", "line 2 \"b -5\": a negative sample count"},
        {"a -9223372036854775808\n", "line 1 "},
        {"a [1 2]\nb [3 -1]\n", "line 2 "},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(folded(a, bad[i].text, &p, &err), KILN_INVALID_ARGUMENT);
        CHECK(strstr(err.msg, bad[i].want) != NULL);
        if (strstr(err.msg, bad[i].want) == NULL)
            printf("  got: %s\n", err.msg);
    }
    /* Zero-count lines add nothing to Pyroscope's tree: skipped. */
    CHECK_OK(folded(a, "a 0\nb 2\nc [0]\n", &p, &err));
    CHECK_EQ(p.n_samples, 1);
    kiln_arena_destroy(a);
}

TEST(folded_bracketed_and_encodings)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b;
    kiln_pprof_t p;
    const char *br = "x;y [1 100]\nx [2 200]\nx;y [3 300]\n";
    CHECK_OK(kiln_folded_parse(a, (const uint8_t *)br, strlen(br), &b, NULL));
    CHECK_EQ(kiln_pprof_build_n_types(b), 2);
    CHECK_OK(finish(a, b, &p));
    CHECK_EQ(total(&p, 0), 6);
    CHECK_EQ(total(&p, 1), 600);
    /* "f [j] 3": the last field is the count, "[j]" part of the frame. */
    CHECK_OK(folded(a, "f_[j] 3\nf [j] 4\n", &p, NULL));
    CHECK_EQ(total(&p, 0), 7);
    /* UTF-16BE with BOM, UTF-8 BOM, and a non-ASCII frame through UTF-16LE. */
    static const uint8_t be[] = {0xfe, 0xff, 0, 'a', 0, ';', 0, 'b', 0, ' ', 0, '7', 0, '\n'};
    CHECK_OK(kiln_folded_parse(a, be, sizeof(be), &b, NULL));
    CHECK_OK(finish(a, b, &p));
    CHECK_EQ(stack_value(&p, "a;b"), 7);
    static const uint8_t bom8[] = {0xef, 0xbb, 0xbf, 'z', ' ', '2'};
    CHECK_OK(kiln_folded_parse(a, bom8, sizeof(bom8), &b, NULL));
    CHECK_OK(finish(a, b, &p));
    CHECK_EQ(stack_value(&p, "z"), 2);
    static const uint8_t le[] = {0xff, 0xfe, 0xe9, 0x00, 0x3d, 0xd8, 0x00, 0xde,
                                 ' ',  0,    '1',  0,    0x00, 0xd8, ' ',  0};
    kiln_str_t u;
    CHECK_OK(kiln_text_to_utf8(a, le, sizeof(le), &u, NULL));
    CHECK(u.len == 12 && memcmp(u.ptr, "\xc3\xa9\xf0\x9f\x98\x80 1\xef\xbf\xbd ", 12) == 0);
    static const uint8_t odd[] = {0xff, 0xfe, 'a', 0, 'b'};
    CHECK_OK(kiln_text_to_utf8(a, odd, sizeof(odd), &u, NULL));
    CHECK(u.len == 4 && memcmp(u.ptr, "a\xef\xbf\xbd", 4) == 0);
    kiln_arena_destroy(a);
}

TEST(lines_format)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b;
    kiln_pprof_t p;
    const char *t = "a;b\r\na;b\nc\n\n\r\nc d;e f\na;b";
    CHECK_OK(kiln_lines_parse(a, (const uint8_t *)t, strlen(t), &b, NULL));
    CHECK_OK(finish(a, b, &p));
    CHECK_EQ(stack_value(&p, "a;b"), 3);
    CHECK_EQ(stack_value(&p, "c"), 1);
    CHECK_EQ(stack_value(&p, "c d;e f"), 1);
    CHECK_EQ(total(&p, 0), 5);
    kiln_arena_destroy(a);
}

/* Test JSON is written with ' for " to stay readable; this swaps them. */
static char *dq(kiln_arena_t *a, const char *s, size_t len)
{
    char *d = kiln_arena_strndup(a, s, len);
    for (size_t i = 0; i < len; i++)
        d[i] = d[i] == '\'' ? '"' : d[i];
    return d;
}

static kiln_status ss(kiln_arena_t *a, const char *json, kiln_speedscope_profile **p, size_t *n,
                      kiln_err *err)
{
    size_t len = strlen(json);
    return kiln_speedscope_parse(a, (const uint8_t *)dq(a, json, len), len, p, n, err);
}

static kiln_status stc(kiln_arena_t *a, const char *json, size_t len, kiln_stconfig *c,
                       kiln_err *err)
{
    return kiln_stconfig_parse(a, (const uint8_t *)dq(a, json, len), len, c, err);
}

#define SCHEMA "'$schema':'https://www.speedscope.app/file-format-schema.json'"
#define FRAMES "'shared':{'frames':[{'name':'a'},{'name':'b','file':'x.c','line':3}]}"

TEST(speedscope_evented_units_merge)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_speedscope_profile *p;
    size_t n;
    kiln_pprof_t pp;
    kiln_err err;
    /* Evented, in milliseconds: a for 1, a;b for 2, a for 3 (x100). */
    CHECK_OK(ss(a,
                "{" SCHEMA "," FRAMES ",'profiles':[{'type':'evented','name':'e',"
                "'unit':'milliseconds','startValue':10,'endValue':16,'events':["
                "{'type':'O','frame':0,'at':10},{'type':'O','frame':1,'at':11},"
                "{'at':13,'type':'C','frame':1},{'type':'C','frame':0,'at':16}]}]}",
                &p, &n, &err));
    CHECK_EQ(n, 1);
    CHECK(kiln_str_eq(p[0].name, "e"));
    CHECK_STR(p[0].unit, "milliseconds");
    CHECK_EQ(p[0].default_rate, 100000);
    CHECK_OK(finish(a, p[0].b, &pp));
    CHECK_EQ(stack_value(&pp, "a"), 400);
    CHECK_EQ(stack_value(&pp, "a;b"), 200);
    /* Nanoseconds keep weights as they are; bytes too. Same-key profiles merge. */
    CHECK_OK(ss(a,
                "{'profiles':[{'type':'sampled','name':'n','unit':'nanoseconds',"
                "'samples':[[0,1],[1]],'weights':[5,7]},"
                "{'type':'sampled','name':'m','unit':'bytes','samples':[[0]],'weights':[9]},"
                "{'type':'sampled','name':'n','unit':'nanoseconds','samples':[[0,1]],"
                "'weights':[1.9]}]," FRAMES "," SCHEMA ",'exporter':'x'}",
                &p, &n, &err));
    CHECK_EQ(n, 2);
    CHECK_STR(p[0].unit, "nanoseconds");
    CHECK_EQ(p[0].default_rate, 1000000000);
    CHECK_OK(finish(a, p[0].b, &pp));
    CHECK_EQ(stack_value(&pp, "a;b"), 6);
    CHECK_EQ(stack_value(&pp, "b"), 7);
    CHECK_STR(p[1].unit, "bytes");
    CHECK_EQ(p[1].default_rate, 0);
    CHECK_OK(finish(a, p[1].b, &pp));
    CHECK_EQ(total(&pp, 0), 9);
    /* No profiles at all. */
    CHECK_OK(ss(a, "{" SCHEMA ",'profiles':[]}", &p, &n, &err));
    CHECK_EQ(n, 0);
    kiln_arena_destroy(a);
}

TEST(speedscope_errors)
{
    static const struct {
        const char *json;
        const char *want;
    } bad[] = {
        {"[]", "expected '{'"},
        {"{'profiles':[]}", "unknown schema"},
        {"{'$schema':'https://example.com'}", "unknown schema"},
        {"{" SCHEMA ",'profiles':[{'type':'sampled','unit':'hours'}]}", "invalid profile unit"},
        {"{" SCHEMA ",'profiles':[{'type':'other','unit':'none'}]}", "not supported"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'sampled','unit':'none',"
         "'samples':[[2]],'weights':[1]}]}",
         "out of range"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'sampled','unit':'none',"
         "'samples':[[0]],'weights':[-1]}]}",
         "negative weight"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'sampled','unit':'none',"
         "'samples':[[0],[1]],'weights':[1]}]}",
         "differ in length"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'sampled','unit':'none',"
         "'samples':[[0]],'weights':[1e300]}]}",
         "too large"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'sampled','unit':'none',"
         "'samples':[['0']],'weights':[1]}]}",
         "expected a number"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'evented','unit':'none','events':["
         "{'type':'O','frame':0,'at':5},{'type':'C','frame':0,'at':4}]}]}",
         "out of order"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'evented','unit':'none','events':["
         "{'type':'O','frame':0,'at':5},{'type':'C','frame':1,'at':6}]}]}",
         "not open"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'evented','unit':'none','events':["
         "{'type':'C','frame':0,'at':5}]}]}",
         "no stack to close"},
        {"{" SCHEMA "," FRAMES ",'profiles':[{'type':'evented','unit':'none','events':["
         "{'type':'X','frame':0,'at':5}]}]}",
         "unknown event type"},
        {"{" SCHEMA ",'profiles':{}}", "expected '['"},
        {"{" SCHEMA ",'profiles':[]", "offset"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kiln_arena_t *a = kiln_arena_create(0);
        kiln_speedscope_profile *p = NULL;
        size_t n = 77;
        kiln_err err = {KILN_OK, ""};
        CHECK_EQ(ss(a, bad[i].json, &p, &n, &err), KILN_INVALID_ARGUMENT);
        CHECK(strstr(err.msg, bad[i].want) != NULL);
        if (strstr(err.msg, bad[i].want) == NULL)
            printf("  case %zu got: %s\n", i, err.msg);
        CHECK_EQ(n, 77);
        kiln_arena_destroy(a);
    }
}

TEST(speedscope_and_config_limits)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_buf_puts(&b, "{" SCHEMA ",'profiles':[");
    for (int i = 0; i <= KILN_SPEEDSCOPE_MAX_PROFILES; i++)
        kiln_buf_printf(&b, "%s{'type':'sampled','unit':'none','name':'p%d'}", i ? "," : "", i);
    kiln_buf_puts(&b, "]}");
    kiln_buf_putc(&b, '\0');
    kiln_speedscope_profile *p;
    size_t n;
    kiln_err err;
    CHECK_EQ(ss(a, b.ptr, &p, &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "distinct profiles") != NULL);
    /* Many objects of one profile merge, up to the object limit. */
    b.len = 0;
    kiln_buf_puts(&b, "{" SCHEMA ",'profiles':[");
    for (int i = 0; i <= KILN_SPEEDSCOPE_MAX_OBJECTS; i++)
        kiln_buf_printf(&b, "%s{'type':'sampled','unit':'none'}", i ? "," : "");
    kiln_buf_puts(&b, "]}");
    kiln_buf_putc(&b, '\0');
    CHECK_EQ(ss(a, b.ptr, &p, &n, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "more than") != NULL);
    b.len = 0;
    kiln_buf_putc(&b, '{');
    for (int i = 0; i <= KILN_STCONFIG_MAX; i++)
        kiln_buf_printf(&b, "%s't%d':null", i ? "," : "", i);
    kiln_buf_putc(&b, '}');
    kiln_stconfig c;
    CHECK_EQ(stc(a, b.ptr, b.len, &c, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "entries") != NULL);
    kiln_buf_free(&b);
    kiln_arena_destroy(a);
}

TEST(suffix_kinds)
{
    kiln_ingest_kind k;
    CHECK(kiln_ingest_kind_of(NULL, &k));
    CHECK_STR(k.metric, "process_cpu");
    CHECK(k.timed);
    CHECK(kiln_ingest_kind_of("wall", &k) && k.timed && strcmp(k.metric, "wall") == 0);
    CHECK(kiln_ingest_kind_of("itimer", &k) && k.timed);
    CHECK(kiln_ingest_kind_of("alloc_space", &k));
    CHECK_STR(k.metric, "memory");
    CHECK_STR(k.type, "alloc_space");
    CHECK_STR(k.unit, "bytes");
    CHECK(!k.timed);
    CHECK(kiln_ingest_kind_of("goroutines", &k) && strcmp(k.metric, "goroutine") == 0);
    CHECK(kiln_ingest_kind_of("mutex_duration", &k));
    CHECK_STR(k.type, "delay");
    CHECK_STR(k.unit, "nanoseconds");
    CHECK(kiln_ingest_kind_of("lock_count", &k) && strcmp(k.metric, "block") == 0);
    CHECK(kiln_ingest_kind_of("seconds", &k) && strcmp(k.metric, "wall") == 0);
    CHECK(kiln_ingest_kind_of("exceptions", &k) && !k.timed);
    CHECK(!kiln_ingest_kind_of("foo", &k));
    CHECK(!kiln_ingest_kind_of("", &k));
    CHECK(!kiln_ingest_kind_of("CPU", &k));
}

static kiln_stconfig config(kiln_arena_t *a, const char *json)
{
    kiln_stconfig c = {false, NULL, 0};
    kiln_err err;
    if (stc(a, json, strlen(json), &c, &err) != KILN_OK)
        printf("  config: %s\n", err.msg);
    return c;
}

TEST(sample_type_config)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_stconfig c = config(a, "{'contentions':{'display-name':'block_count','units':"
                                "'lock_samples','cumulative':false},'delay':{'display-name':"
                                "'block_duration','units':'lock_nanoseconds','sampled':true,"
                                "'extra':[1,{}]},'inuse-space':null}");
    CHECK(c.present);
    CHECK_EQ(c.n, 3);
    CHECK(kiln_str_eq(c.entries[0].type, "contentions"));
    CHECK(kiln_str_eq(c.entries[0].display_name, "block_count"));
    CHECK(kiln_str_eq(c.entries[1].units, "lock_nanoseconds"));
    CHECK(c.entries[1].sampled && !c.entries[1].cumulative);
    CHECK(c.entries[2].is_null);
    c = config(a, "null");
    CHECK(!c.present);
    kiln_err err;
    static const char *const bad[] = {
        "", "[]", "{'a':1}", "{'a':{'units':5}}", "{'a':{'cumulative':'yes'}}", "{'a':{}} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(stc(a, bad[i], strlen(bad[i]), &c, &err), KILN_INVALID_ARGUMENT);
        CHECK(strncmp(err.msg, "sample_type_config", 18) == 0);
    }
    kiln_arena_destroy(a);
}

/* Decodes a testdata pprof file (gzipped or not) into p. */
static bool load_pprof(kiln_arena_t *a, const char *rel, kiln_pprof_t *p)
{
    size_t len;
    unsigned char *raw = check_read_testdata(rel, &len);
    if (raw == NULL)
        return false;
    uint8_t *copy = kiln_arena_alloc(a, len + 1);
    memcpy(copy, raw, len);
    free(raw);
    const uint8_t *d;
    size_t n;
    return kiln_gunzip_maybe(a, copy, len, 64u << 20, &d, &n, NULL) == KILN_OK &&
           kiln_pprof_decode(a, d, n, p, NULL) == KILN_OK;
}

TEST(pprof_form_metric_names)
{
    kiln_arena_t *a = kiln_arena_create(0);
    static const struct {
        const char *file, *cfg, *want;
    } cases[] = {
        {"grafana-pyroscope/cpu.pb.gz", NULL, "process_cpu"},
        {"datadog-go-profiler-notes/memory-profiler.pprof", NULL, "memory"},
        {"datadog-go-profiler-notes/memory-profiler.pprof",
         "{'alloc_objects':{'units':'objects'},'inuse_space':{'aggregation':'average'}}", "memory"},
        {"datadog-go-profiler-notes/2.pprof.lookup.goroutine.debug0.pb.gz", NULL, "goroutines"},
        {"datadog-go-profiler-notes/block.pb.gz", NULL, "mutex"}, /* upstream's default mapping */
        {"datadog-go-profiler-notes/block.pb.gz",
         "{'contentions':{'display-name':'block_count'},'delay':{'display-name':'block_duration'}}",
         "block"},
        {"datadog-go-profiler-notes/block.pb.gz", "{}", "delay"}, /* no match: the last type */
        {"hard/grafana-pyroscope/jfr-dump2.wall.pb.gz", NULL, "wall"},
        {"hard/grafana-pyroscope/pyspy-1.pb.gz", NULL, "process_cpu"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kiln_pprof_t p;
        CHECK(load_pprof(a, cases[i].file, &p));
        kiln_stconfig c = cases[i].cfg ? config(a, cases[i].cfg) : (kiln_stconfig){false, NULL, 0};
        CHECK_STR(kiln_ingest_pprof_metric(a, &p, &c), cases[i].want);
    }
    kiln_arena_destroy(a);
}

TEST(dotnet_and_scripting_fixups)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_stconfig none = {false, NULL, 0}, dn = config(a, "{'inuse-space':{'units':'bytes'}}");
    CHECK(kiln_ingest_is_dotnet("dotnetspy", &none));
    CHECK(kiln_ingest_is_dotnet("unknown", &dn));
    CHECK(!kiln_ingest_is_dotnet("unknown", &none));
    CHECK(!kiln_ingest_is_dotnet("gospy", &dn));
    kiln_pprof_t p;
    CHECK(load_pprof(a, "hard/grafana-pyroscope/dotnet-pprof-73.pb.gz", &p));
    CHECK(kiln_ingest_fix_dotnet(a, &p));
    for (size_t i = 0; i < p.n_sample_types; i++)
        CHECK(memchr(kiln_pprof_str(&p, p.sample_types[i].type).ptr, '-',
                     kiln_pprof_str(&p, p.sample_types[i].type).len) == NULL);
    CHECK_EQ(p.functions[0].id, p.locations[0].id);
    kiln_err err;
    CHECK_OK(kiln_pprof_validate(&p, &err));
    /* py-spy: function names become "<file> <name>" for relative files. */
    CHECK(load_pprof(a, "hard/grafana-pyroscope/pyspy-1.pb.gz", &p));
    size_t before = p.n_functions;
    CHECK(kiln_ingest_fix_scripting(a, &p, "gospy")); /* not a scripting spy: no-op */
    CHECK_EQ(p.n_functions, before);
    CHECK(kiln_ingest_fix_scripting(a, &p, "rbspy"));
    CHECK(p.n_functions > before);
    CHECK_OK(kiln_pprof_validate(&p, &err));
    for (size_t i = 0; i < p.n_lines; i++) {
        const kiln_pprof_function *f = NULL;
        for (size_t k = 0; k < p.n_functions; k++)
            f = p.functions[k].id == p.lines[i].function ? &p.functions[k] : f;
        CHECK(f != NULL && f->id > before);
        if (f == NULL)
            continue;
        kiln_str_t file = kiln_pprof_str(&p, f->filename), name = kiln_pprof_str(&p, f->name);
        CHECK(name.len > file.len && memcmp(name.ptr, file.ptr, file.len) == 0 &&
              name.ptr[file.len] == ' ');
    }
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
    kiln_arena_destroy(a);
}

int main(void)
{
    RUN(testdata_folded_files);
    RUN(testdata_speedscope_files);
    RUN(folded_lines_and_frames);
    RUN(folded_bad_lines);
    RUN(folded_bracketed_and_encodings);
    RUN(lines_format);
    RUN(speedscope_evented_units_merge);
    RUN(speedscope_errors);
    RUN(speedscope_and_config_limits);
    RUN(suffix_kinds);
    RUN(sample_type_config);
    RUN(pprof_form_metric_names);
    RUN(dotnet_and_scripting_fixups);
    return check_done();
}
