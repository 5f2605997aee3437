/* SPDX-License-Identifier: Apache-2.0
 * selector: a hand-written recursive-descent parser for FlameQL and the
 * matcher evaluation over sorted label sets (regexes via PCRE2). */
#include "selector.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

struct kiln_matcher {
    char *name;
    char *value;
    kiln_match_op op;
    pcre2_code *re; /* NULL for = and != */
};

struct kiln_selector {
    char *type; /* "" when none */
    kiln_matcher_t *m;
    size_t n, cap;
    /* One spare match data, handed between threads with atomic exchange so
     * that concurrent matches never share one (see re_match). */
    _Atomic(pcre2_match_data *) spare;
};

typedef struct parser {
    const char *s;
    size_t len;
    size_t pos;
    kiln_selector_t *sel;
    kiln_err *err;
} parser;

/* Legacy (Pyroscope <= 0.37) app-name suffixes and the series they select. */
static const struct {
    const char *suffix;
    const char *name; /* __name__ */
    const char *type; /* __type__ */
} legacy_types[] = {
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

#define NLEGACY (sizeof(legacy_types) / sizeof(legacy_types[0]))
#define EXPECT_OP "one of \"=\", \"!=\", \"=~\", \"!~\""

/* ---- character classes ---- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_type_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '.' || c == ':' || c == '-';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- errors ---- */

/* Length of the UTF-8 sequence a lead byte announces; 0 for a stray byte. */
static size_t utf8_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 0;
}

/* Quotes the character at `at` for a message: "}" or end of input. */
static void describe(const parser *p, size_t at, char *buf, size_t cap)
{
    if (at >= p->len) {
        snprintf(buf, cap, "end of input");
        return;
    }
    unsigned char c = (unsigned char)p->s[at];
    size_t n = utf8_len(c);
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, cap, (c == '"' || c == '\\') ? "\"\\%c\"" : "\"%c\"", c);
    else if (n > 1 && at + n <= p->len && kiln_utf8_valid(p->s + at, n))
        snprintf(buf, cap, "\"%.*s\"", (int)n, p->s + at);
    else
        snprintf(buf, cap, "\"\\x%02x\"", c);
}

static kiln_status fail(const parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with "line:col: message". Columns count characters (UTF-8 code
 * points), so they point at the offending character as an editor shows it. */
static kiln_status fail(const parser *p, size_t at, const char *fmt, ...)
{
    char msg[KILN_ERR_MSG_MAX];
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)p->s[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kiln_err_set(p->err, KILN_INVALID_ARGUMENT, "%zu:%zu: %s", line, col, msg);
}

/* Fails with `unexpected "x"` (plus what was expected, when given). */
static kiln_status unexpected(const parser *p, size_t at, const char *expected)
{
    char what[16];
    describe(p, at, what, sizeof(what));
    if (expected == NULL)
        return fail(p, at, "unexpected %s", what);
    return fail(p, at, "unexpected %s; expected %s", what, expected);
}

/* ---- matchers ---- */

static kiln_status compile_re(const char *value, pcre2_code **out, char *why, size_t why_cap)
{
    int code;
    PCRE2_SIZE off;
    /* PCRE2_ANCHORED|PCRE2_ENDANCHORED anchor the whole pattern like
     * "^(?:re)$" does, but cannot be escaped by a pattern such as "a)|(b"
     * and, like RE2's $, do not accept a trailing newline. DOTALL follows
     * Prometheus, which compiles matchers as ^(?s:re)$. */
    uint32_t opts = PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, strlen(value), opts, &code, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(code, (PCRE2_UCHAR *)why, why_cap);
        return KILN_INVALID_ARGUMENT;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    *out = re;
    return KILN_OK;
}

/* Appends a matcher, taking ownership of name and value (freed on error). */
static kiln_status push_matcher(kiln_selector_t *s, char *name, kiln_match_op op, char *value,
                                char *why, size_t why_cap)
{
    pcre2_code *re = NULL;
    if (op == KILN_MATCH_RE || op == KILN_MATCH_NRE) {
        if (compile_re(value, &re, why, why_cap) != KILN_OK) {
            free(name);
            free(value);
            return KILN_INVALID_ARGUMENT;
        }
    }
    KILN_GROW(s->m, s->cap, s->n + 1);
    s->m[s->n++] = (kiln_matcher_t){.name = name, .value = value, .op = op, .re = re};
    return KILN_OK;
}

static kiln_status push_eq(kiln_selector_t *s, const char *name, const char *value)
{
    char why[8];
    return push_matcher(s, kiln_xstrdup(name), KILN_MATCH_EQ, kiln_xstrdup(value), why,
                        sizeof(why));
}

/* ---- the parser ---- */

static void skip_ws(parser *p)
{
    while (p->pos < p->len && is_ws(p->s[p->pos]))
        p->pos++;
}

static bool at_char(const parser *p, char c)
{
    return p->pos < p->len && p->s[p->pos] == c;
}

/* Decodes \x, \u, \U and octal escapes: n digits in base (8 or 16).
 * Returns the value, or -1 when a digit is missing. */
static long escape_digits(const parser *p, size_t at, int n, int base)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        int d = at + (size_t)i < p->len ? hex_val(p->s[at + (size_t)i]) : -1;
        if (d < 0 || d >= base)
            return -1;
        v = v * base + d;
    }
    return v;
}

static void put_utf8(kiln_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    kiln_buf_append(b, u, n);
}

/* Numeric escapes: \xHH, \ooo (bytes) and \uHHHH, \UHHHHHHHH (code points).
 * p->pos is at the letter (or first octal digit) after the backslash. */
static kiln_status numeric_escape(parser *p, size_t bs, kiln_buf *b)
{
    char c = p->s[p->pos];
    int n = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 3;
    int base = (c >= '0' && c <= '7') ? 8 : 16;
    size_t first = base == 8 ? p->pos : p->pos + 1;
    long v = escape_digits(p, first, n, base);
    if (base == 8 && (v < 0 || v > 255))
        return fail(p, bs, "invalid octal escape: expected 3 octal digits up to \\377");
    if (v < 0)
        return fail(p, bs, "invalid \\%c escape: expected %d hex digits", c, n);
    if (c == 'u' || c == 'U') {
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return fail(p, bs, "invalid \\%c escape: U+%lX is not a Unicode scalar value", c,
                        (unsigned long)v);
        put_utf8(b, (unsigned long)v);
    } else {
        kiln_buf_putc(b, (char)v);
    }
    p->pos = first + (size_t)n;
    return KILN_OK;
}

/* One Go escape in a string quoted with q; p->pos is at the backslash. */
static kiln_status parse_escape(parser *p, char q, kiln_buf *b)
{
    static const char from[] = "abfnrtv\\", to[] = "\a\b\f\n\r\t\v\\";
    size_t bs = p->pos++;
    if (p->pos >= p->len)
        return KILN_UNKNOWN; /* the caller reports the unterminated string */
    char c = p->s[p->pos];
    const char *hit = c != '\0' ? strchr(from, c) : NULL;
    if (hit != NULL) {
        kiln_buf_putc(b, to[hit - from]);
        p->pos++;
        return KILN_OK;
    }
    if (c == q && q != '`') {
        kiln_buf_putc(b, c);
        p->pos++;
        return KILN_OK;
    }
    if (c == 'x' || c == 'u' || c == 'U' || (c >= '0' && c <= '7'))
        return numeric_escape(p, bs, b);
    size_t n = utf8_len((unsigned char)c);
    if (n > 1 && p->pos + n <= p->len && kiln_utf8_valid(p->s + p->pos, n))
        return fail(p, bs, "unknown escape sequence \"\\%.*s\"", (int)n, p->s + p->pos);
    if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
        return fail(p, bs, "unknown escape sequence \"\\\\x%02x\"", (unsigned char)c);
    return fail(p, bs, "unknown escape sequence \"\\%c\"", c);
}

/* A quoted string ("...", '...' with Go escapes, or `raw`), returned as a
 * NUL-terminated copy the caller frees. Errors point at the opening quote,
 * except escapes, which point at their backslash. */
static kiln_status parse_string(parser *p, const char *expected, char **out)
{
    char q = p->pos < p->len ? p->s[p->pos] : '\0';
    if (q != '"' && q != '\'' && q != '`')
        return unexpected(p, p->pos, expected);
    size_t open = p->pos++;
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_status st = KILN_OK;
    for (;;) {
        char c = p->pos < p->len ? p->s[p->pos] : '\0';
        if (p->pos >= p->len || (c == '\n' && q != '`')) {
            st = fail(p, open, "unterminated string");
            break;
        }
        if (c == q) {
            p->pos++;
            break;
        }
        if (c == '\\' && q != '`') {
            st = parse_escape(p, q, &b);
            if (st == KILN_UNKNOWN)
                st = fail(p, open, "unterminated string");
            if (st != KILN_OK)
                break;
            continue;
        }
        kiln_buf_putc(&b, c);
        p->pos++;
    }
    if (st == KILN_OK && b.len > 0 && memchr(b.ptr, '\0', b.len) != NULL)
        st = fail(p, open, "string contains a NUL byte");
    if (st == KILN_OK && !kiln_utf8_valid(b.ptr, b.len))
        st = fail(p, open, "string is not valid UTF-8");
    if (st != KILN_OK) {
        kiln_buf_free(&b);
        return st;
    }
    kiln_buf_putc(&b, '\0');
    *out = kiln_buf_detach(&b, NULL);
    return KILN_OK;
}

/* A label name: [A-Za-z_][A-Za-z0-9_.]* or a quoted non-empty UTF-8 string. */
static kiln_status parse_name(parser *p, char **out)
{
    size_t start = p->pos;
    if (p->pos < p->len && is_alpha(p->s[p->pos])) {
        while (p->pos < p->len &&
               (is_alpha(p->s[p->pos]) || is_digit(p->s[p->pos]) || p->s[p->pos] == '.'))
            p->pos++;
        *out = kiln_xstrndup(p->s + start, p->pos - start);
        return KILN_OK;
    }
    kiln_status st = parse_string(p, "label name", out);
    if (st != KILN_OK)
        return st;
    if (**out == '\0') {
        free(*out);
        return fail(p, start, "empty label name");
    }
    return KILN_OK;
}

static kiln_status parse_op(parser *p, kiln_match_op *op)
{
    char c = p->pos < p->len ? p->s[p->pos] : '\0';
    char next = p->pos + 1 < p->len ? p->s[p->pos + 1] : '\0';
    if (c == '=') {
        *op = next == '~' ? KILN_MATCH_RE : KILN_MATCH_EQ;
    } else if (c == '!' && (next == '=' || next == '~')) {
        *op = next == '=' ? KILN_MATCH_NEQ : KILN_MATCH_NRE;
    } else if (c == '!') {
        return fail(p, p->pos, "bad operator \"!\"; expected \"!=\" or \"!~\"");
    } else {
        return unexpected(p, p->pos, EXPECT_OP);
    }
    p->pos += (*op == KILN_MATCH_EQ) ? 1 : 2;
    return KILN_OK;
}

/* name op string */
static kiln_status parse_matcher(parser *p)
{
    char *name = NULL, *value = NULL;
    kiln_match_op op = KILN_MATCH_EQ;
    kiln_status st = parse_name(p, &name);
    if (st != KILN_OK)
        return st;
    skip_ws(p);
    if ((st = parse_op(p, &op)) != KILN_OK) {
        free(name);
        return st;
    }
    skip_ws(p);
    size_t vat = p->pos;
    if ((st = parse_string(p, "a quoted string", &value)) != KILN_OK) {
        free(name);
        return st;
    }
    char why[160];
    if (push_matcher(p->sel, name, op, value, why, sizeof(why)) != KILN_OK) {
        /* push_matcher freed value; quote the pattern from the query text. */
        return fail(p, vat, "invalid regexp %.*s: %s", (int)(p->pos - vat > 64 ? 64 : p->pos - vat),
                    p->s + vat, why);
    }
    return KILN_OK;
}

/* Everything after '{': matchers separated by ',', an optional trailing
 * ',', then '}'. */
static kiln_status parse_matchers(parser *p)
{
    for (;;) {
        skip_ws(p);
        if (at_char(p, '}')) {
            p->pos++;
            return KILN_OK;
        }
        kiln_status st = parse_matcher(p);
        if (st != KILN_OK)
            return st;
        skip_ws(p);
        if (at_char(p, ',')) {
            p->pos++;
            continue;
        }
        if (at_char(p, '}')) {
            p->pos++;
            return KILN_OK;
        }
        return unexpected(p, p->pos, "\",\" or \"}\"");
    }
}

/* A profile type id: 5 colon-separated parts, or 6 ending in "delta" (the
 * ":delta" is dropped: stored series carry the 5-part id). */
static kiln_status set_type_id(parser *p, size_t start, const char *t, size_t n)
{
    size_t parts = 1, last = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == ':')
            parts++, last = i + 1;
    }
    if (parts == 6 && n - last == 5 && memcmp(t + last, "delta", 5) == 0) {
        n = last - 1;
        parts = 5;
    }
    if (parts != 5)
        return fail(p, start,
                    "invalid profile type \"%.*s\": expected "
                    "name:type:unit:period_type:period_unit",
                    (int)(n > 80 ? 80 : n), t);
    free(p->sel->type);
    p->sel->type = kiln_xstrndup(t, n);
    return KILN_OK;
}

/* The legacy `app.name.suffix` form becomes service_name, __name__ and
 * __type__ matchers. */
static kiln_status set_legacy(parser *p, size_t start, const char *t, size_t n)
{
    size_t dot = n;
    while (dot > 0 && t[dot - 1] != '.')
        dot--;
    if (dot == 0)
        return fail(p, start,
                    "invalid profile type \"%.*s\": expected "
                    "name:type:unit:period_type:period_unit or app.suffix",
                    (int)(n > 80 ? 80 : n), t);
    if (dot == 1)
        return fail(p, start, "empty application name in \"%.*s\"", (int)(n > 80 ? 80 : n), t);
    const char *suffix = t + dot;
    size_t slen = n - dot;
    for (size_t i = 0; i < NLEGACY; i++) {
        if (strlen(legacy_types[i].suffix) == slen &&
            memcmp(legacy_types[i].suffix, suffix, slen) == 0) {
            char *app = kiln_xstrndup(t, dot - 1);
            push_eq(p->sel, KILN_LABEL_SERVICE_NAME, app);
            push_eq(p->sel, KILN_LABEL_NAME, legacy_types[i].name);
            push_eq(p->sel, KILN_LABEL_TYPE, legacy_types[i].type);
            free(app);
            return KILN_OK;
        }
    }
    return fail(p, start + dot, "unknown profile type suffix \"%.*s\"",
                (int)(slen > 40 ? 40 : slen), suffix);
}

static kiln_status parse_type(parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && is_type_char(p->s[p->pos]))
        p->pos++;
    const char *t = p->s + start;
    size_t n = p->pos - start;
    if (memchr(t, ':', n) != NULL)
        return set_type_id(p, start, t, n);
    return set_legacy(p, start, t, n);
}

/* query := [type] '{' matchers '}' | type, with whitespace around tokens. */
static kiln_status parse_query(parser *p)
{
    skip_ws(p);
    bool typed = p->pos < p->len && is_type_char(p->s[p->pos]);
    if (typed) {
        kiln_status st = parse_type(p);
        if (st != KILN_OK)
            return st;
        skip_ws(p);
        if (p->pos == p->len)
            return KILN_OK;
    }
    if (!at_char(p, '{'))
        return unexpected(p, p->pos, typed ? "\"{\"" : "a profile type or \"{\"");
    p->pos++;
    kiln_status st = parse_matchers(p);
    if (st != KILN_OK)
        return st;
    skip_ws(p);
    if (p->pos < p->len) {
        char what[16];
        describe(p, p->pos, what, sizeof(what));
        return fail(p, p->pos, "unexpected %s after \"}\"", what);
    }
    return KILN_OK;
}

static kiln_selector_t *selector_new(void)
{
    kiln_selector_t *s = kiln_xcalloc(1, sizeof(*s));
    s->type = kiln_xstrdup("");
    atomic_init(&s->spare, NULL);
    return s;
}

kiln_status kiln_selector_parse(const char *query, size_t len, kiln_selector_t **out, kiln_err *err)
{
    parser p = {.s = query, .len = len, .pos = 0, .sel = selector_new(), .err = err};
    kiln_status st = parse_query(&p);
    /* A profile type before the braces selects that type, as Pyroscope adds
     * __profile_type__="<id>" to the matchers. */
    if (st == KILN_OK && *p.sel->type != '\0')
        st = kiln_selector_add(p.sel, "__profile_type__", KILN_MATCH_EQ, p.sel->type, err);
    if (st != KILN_OK) {
        kiln_selector_destroy(p.sel);
        return st;
    }
    *out = p.sel;
    return KILN_OK;
}

void kiln_selector_destroy(kiln_selector_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        pcre2_code_free(s->m[i].re);
    }
    pcre2_match_data_free(atomic_load(&s->spare));
    free(s->m);
    free(s->type);
    free(s);
}

const char *kiln_selector_profile_type(const kiln_selector_t *s)
{
    return s->type;
}

kiln_status kiln_selector_add(kiln_selector_t *s, const char *name, kiln_match_op op,
                              const char *value, kiln_err *err)
{
    char why[160];
    if (op < KILN_MATCH_EQ || op > KILN_MATCH_NRE)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "bad match operator %d", (int)op);
    if (push_matcher(s, kiln_xstrdup(name), op, kiln_xstrdup(value), why, sizeof(why)) != KILN_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid regexp \"%.64s\": %s", value, why);
    return KILN_OK;
}

/* Runs a regex over a whole value. A match data is scratch space that must
 * not be shared by concurrent matches: take the selector's spare one (or
 * make one) and put it back afterwards, freeing it if another thread has
 * already refilled the slot. The slot is the only mutable part of a
 * selector, so the const cast is sound. */
static bool re_match(const kiln_selector_t *cs, const pcre2_code *re, const char *v)
{
    kiln_selector_t *s = (kiln_selector_t *)cs;
    pcre2_match_data *md = atomic_exchange(&s->spare, NULL);
    if (md == NULL)
        md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        abort(); /* out of memory, as kiln_xmalloc does */
    int rc = pcre2_match(re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
    pcre2_match_data *none = NULL;
    if (!atomic_compare_exchange_strong(&s->spare, &none, md))
        pcre2_match_data_free(md);
    /* Errors (invalid UTF-8 subject, match limits) count as no match. */
    return rc >= 0;
}

bool kiln_selector_match(const kiln_selector_t *s, const kiln_label_t *l, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        const kiln_matcher_t *m = &s->m[i];
        const char *v = kiln_labels_get(l, n, m->name);
        if (v == NULL)
            v = "";
        bool ok;
        switch (m->op) {
        case KILN_MATCH_EQ:
            ok = strcmp(v, m->value) == 0;
            break;
        case KILN_MATCH_NEQ:
            ok = strcmp(v, m->value) != 0;
            break;
        case KILN_MATCH_RE:
            ok = re_match(s, m->re, v);
            break;
        default:
            ok = !re_match(s, m->re, v);
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

size_t kiln_selector_count(const kiln_selector_t *s)
{
    return s->n;
}

void kiln_selector_get(const kiln_selector_t *s, size_t i, const char **name, kiln_match_op *op,
                       const char **value)
{
    if (i >= s->n)
        abort(); /* a programmer error, not a runtime condition */
    *name = s->m[i].name;
    *op = s->m[i].op;
    *value = s->m[i].value;
}

/* A double-quoted FlameQL string: quote, backslash and control bytes
 * escaped, everything else (UTF-8 included) as is. */
static void format_quoted(kiln_buf *out, const char *v)
{
    kiln_buf_putc(out, '"');
    for (const unsigned char *c = (const unsigned char *)v; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            kiln_buf_printf(out, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            kiln_buf_printf(out, "\\x%02x", *c);
        else
            kiln_buf_putc(out, (char)*c);
    }
    kiln_buf_putc(out, '"');
}

void kiln_selector_format(const kiln_selector_t *s, kiln_buf *out)
{
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    kiln_buf_putc(out, '{');
    for (size_t i = 0; i < s->n; i++) {
        if (i > 0)
            kiln_buf_putc(out, ',');
        format_quoted(out, s->m[i].name);
        kiln_buf_puts(out, ops[s->m[i].op]);
        format_quoted(out, s->m[i].value);
    }
    kiln_buf_putc(out, '}');
}
