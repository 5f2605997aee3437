/* SPDX-License-Identifier: Apache-2.0
 * json_reader: a cursor, a container stack of KILN_JSON_MAX_DEPTH bytes, and
 * a strict scanner for each token kind. */
#include "json_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_json_init(kiln_json *j, const void *buf, size_t len, const char *what, kiln_err *err)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf ? buf : "";
    j->len = buf ? len : 0;
    j->err = err;
    j->what = what ? what : "json";
}

bool kiln_json_fail(kiln_json *j, const char *fmt, ...)
{
    if (j->failed)
        return false;
    j->failed = true;
    if (j->err != NULL) {
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kiln_err_set(j->err, KILN_INVALID_ARGUMENT, "%s: %s at offset %zu", j->what, msg, j->pos);
    }
    return false;
}

static void skip_ws(kiln_json *j)
{
    while (j->pos < j->len) {
        char c = j->buf[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->pos++;
    }
}

/* The next non-space byte, or -1 at the end. */
static int cur(kiln_json *j)
{
    skip_ws(j);
    return j->pos < j->len ? (unsigned char)j->buf[j->pos] : -1;
}

kiln_json_type kiln_json_peek(kiln_json *j)
{
    if (j->failed)
        return KILN_JSON_NONE;
    int c = cur(j);
    switch (c) {
    case '{':
        return KILN_JSON_OBJECT;
    case '[':
        return KILN_JSON_ARRAY;
    case '"':
        return KILN_JSON_STRING;
    case 't':
        return KILN_JSON_TRUE;
    case 'f':
        return KILN_JSON_FALSE;
    case 'n':
        return KILN_JSON_NULL;
    default:
        return c == '-' || (c >= '0' && c <= '9') ? KILN_JSON_NUMBER : KILN_JSON_NONE;
    }
}

static bool open_container(kiln_json *j, char open, char kind)
{
    if (j->failed)
        return false;
    if (cur(j) != open)
        return kiln_json_fail(j, "expected '%c'", open);
    if (j->depth >= KILN_JSON_MAX_DEPTH)
        return kiln_json_fail(j, "nesting deeper than %d levels", KILN_JSON_MAX_DEPTH);
    j->pos++;
    j->stack[j->depth++] = kind;
    return true;
}

bool kiln_json_obj_begin(kiln_json *j)
{
    return open_container(j, '{', 'o');
}

bool kiln_json_arr_begin(kiln_json *j)
{
    return open_container(j, '[', 'a');
}

/* Common part of obj_next/arr_next: closes the container on its closing
 * byte, otherwise consumes the ',' that must follow an earlier element.
 * Returns 1 for "an element follows", 0 for "closed", -1 on error. */
static int next_element(kiln_json *j, char kind, char close)
{
    if (j->failed)
        return -1;
    if (j->depth == 0 || (j->stack[j->depth - 1] | 0x20) != kind)
        return kiln_json_fail(j, "internal: not in an %s", kind == 'o' ? "object" : "array"), -1;
    int c = cur(j);
    if (c == close) {
        j->pos++;
        j->depth--;
        return 0;
    }
    if (j->stack[j->depth - 1] != kind) { /* upper case: an element came before */
        if (c != ',')
            return kiln_json_fail(j, "expected ',' or '%c'", close), -1;
        j->pos++;
    }
    j->stack[j->depth - 1] = (char)(kind & ~0x20);
    return 1;
}

/* Scans the string at the cursor; *raw gets its contents (between the
 * quotes) and *escaped whether it has backslashes. */
static bool scan_string(kiln_json *j, kiln_str_t *raw, bool *escaped)
{
    if (cur(j) != '"')
        return kiln_json_fail(j, "expected a string");
    size_t start = ++j->pos;
    bool esc = false;
    while (j->pos < j->len) {
        unsigned char c = (unsigned char)j->buf[j->pos];
        if (c == '"') {
            *raw = (kiln_str_t){j->buf + start, j->pos - start};
            j->pos++;
            if (escaped != NULL)
                *escaped = esc;
            return true;
        }
        if (c < 0x20)
            return kiln_json_fail(j, "control character in a string");
        if (c == '\\') {
            esc = true;
            if (++j->pos >= j->len)
                break;
            c = (unsigned char)j->buf[j->pos];
            if (c == 'u') {
                for (size_t i = 1; i <= 4; i++) {
                    char h = j->pos + i < j->len ? j->buf[j->pos + i] : '\0';
                    if (h == '\0' || strchr("0123456789abcdefABCDEF", h) == NULL)
                        return kiln_json_fail(j, "bad \\u escape");
                }
                j->pos += 4;
            } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
                return kiln_json_fail(j, "bad escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
            }
        }
        j->pos++;
    }
    return kiln_json_fail(j, "unterminated string");
}

bool kiln_json_obj_next(kiln_json *j, kiln_str_t *key)
{
    int r = next_element(j, 'o', '}');
    if (r <= 0)
        return false;
    kiln_str_t k;
    if (!scan_string(j, &k, NULL))
        return false;
    if (cur(j) != ':')
        return kiln_json_fail(j, "expected ':'");
    j->pos++;
    if (key != NULL)
        *key = k;
    return true;
}

bool kiln_json_arr_next(kiln_json *j)
{
    int r = next_element(j, 'a', ']');
    if (r <= 0)
        return false;
    if (kiln_json_peek(j) == KILN_JSON_NONE)
        return kiln_json_fail(j, "expected a value");
    return true;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The code point of the \u escape at s[i] (s[i] == 'u'), combining a
 * surrogate pair; advances *i past what it used. */
static unsigned unicode_escape(kiln_str_t s, size_t *i)
{
    unsigned cp = hex4(s.ptr + *i + 1);
    *i += 5;
    if (cp >= 0xd800 && cp <= 0xdbff && *i + 5 < s.len && s.ptr[*i] == '\\' &&
        s.ptr[*i + 1] == 'u') {
        unsigned lo = hex4(s.ptr + *i + 2);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            *i += 6;
            return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
    }
    return cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
}

/* Decodes a scanned (valid) escaped string into arena memory. */
static bool unescape(kiln_json *j, kiln_arena_t *a, kiln_str_t raw, kiln_str_t *out)
{
    char *o = kiln_arena_alloc(a, raw.len + 1);
    if (o == NULL)
        return kiln_json_fail(j, "out of memory decoding a string");
    size_t n = 0;
    for (size_t i = 0; i < raw.len;) {
        if (raw.ptr[i] != '\\') {
            o[n++] = raw.ptr[i++];
            continue;
        }
        char c = raw.ptr[++i];
        if (c == 'u') {
            n += put_utf8(o + n, unicode_escape(raw, &i));
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        o[n++] = to[strchr(from, c) - from];
        i++;
    }
    *out = (kiln_str_t){o, n};
    return true;
}

bool kiln_json_str(kiln_json *j, kiln_arena_t *a, kiln_str_t *out)
{
    kiln_str_t raw;
    bool esc;
    if (j->failed || !scan_string(j, &raw, &esc))
        return false;
    if (!esc) {
        *out = raw;
        return true;
    }
    return unescape(j, a, raw, out);
}

static size_t digits(const kiln_json *j, size_t p)
{
    while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
        p++;
    return p;
}

/* Scans a number by the JSON grammar; returns its end or 0 when malformed. */
static size_t scan_number(const kiln_json *j, size_t p)
{
    if (p < j->len && j->buf[p] == '-')
        p++;
    if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
        return 0;
    p = j->buf[p] == '0' ? p + 1 : digits(j, p);
    if (p < j->len && j->buf[p] == '.') {
        size_t q = digits(j, p + 1);
        if (q == p + 1)
            return 0;
        p = q;
    }
    if (p < j->len && (j->buf[p] == 'e' || j->buf[p] == 'E')) {
        p++;
        if (p < j->len && (j->buf[p] == '+' || j->buf[p] == '-'))
            p++;
        size_t q = digits(j, p);
        if (q == p)
            return 0;
        p = q;
    }
    return p;
}

bool kiln_json_num(kiln_json *j, double *out)
{
    if (j->failed)
        return false;
    if (kiln_json_peek(j) != KILN_JSON_NUMBER)
        return kiln_json_fail(j, "expected a number");
    size_t end = scan_number(j, j->pos);
    if (end == 0)
        return kiln_json_fail(j, "malformed number");
    char tmp[128];
    size_t n = end - j->pos;
    if (n >= sizeof(tmp))
        return kiln_json_fail(j, "number longer than %zu characters", sizeof(tmp) - 1);
    memcpy(tmp, j->buf + j->pos, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    j->pos = end;
    return true;
}

static bool literal(kiln_json *j, const char *word)
{
    size_t n = strlen(word);
    if (cur(j) < 0 || j->len - j->pos < n || memcmp(j->buf + j->pos, word, n) != 0)
        return kiln_json_fail(j, "expected %s", word);
    j->pos += n;
    return true;
}

bool kiln_json_bool(kiln_json *j, bool *out)
{
    kiln_json_type t = kiln_json_peek(j);
    if (t != KILN_JSON_TRUE && t != KILN_JSON_FALSE)
        return kiln_json_fail(j, "expected true or false");
    *out = t == KILN_JSON_TRUE;
    return literal(j, *out ? "true" : "false");
}

bool kiln_json_null(kiln_json *j)
{
    return kiln_json_peek(j) == KILN_JSON_NULL && literal(j, "null");
}

/* Consumes one scalar, or opens a container. */
static bool skip_token(kiln_json *j)
{
    kiln_str_t s;
    double d;
    switch (kiln_json_peek(j)) {
    case KILN_JSON_OBJECT:
        return kiln_json_obj_begin(j);
    case KILN_JSON_ARRAY:
        return kiln_json_arr_begin(j);
    case KILN_JSON_STRING:
        return scan_string(j, &s, NULL);
    case KILN_JSON_NUMBER:
        return kiln_json_num(j, &d);
    case KILN_JSON_TRUE:
        return literal(j, "true");
    case KILN_JSON_FALSE:
        return literal(j, "false");
    case KILN_JSON_NULL:
        return literal(j, "null");
    default:
        return kiln_json_fail(j, j->pos < j->len ? "expected a value" : "unexpected end of input");
    }
}

bool kiln_json_skip(kiln_json *j)
{
    unsigned base = j->depth;
    for (;;) {
        if (!skip_token(j))
            return false;
        for (;;) {
            if (j->depth == base)
                return true;
            bool more = (j->stack[j->depth - 1] | 0x20) == 'o' ? kiln_json_obj_next(j, NULL)
                                                               : kiln_json_arr_next(j);
            if (j->failed)
                return false;
            if (more)
                break;
        }
    }
}

bool kiln_json_span(kiln_json *j, kiln_str_t *out)
{
    if (cur(j) < 0)
        return kiln_json_fail(j, "unexpected end of input");
    size_t start = j->pos;
    if (!kiln_json_skip(j))
        return false;
    *out = (kiln_str_t){j->buf + start, j->pos - start};
    return true;
}

bool kiln_json_end(kiln_json *j)
{
    if (j->failed)
        return false;
    if (cur(j) >= 0)
        return kiln_json_fail(j, "unexpected data after the end");
    return true;
}

bool kiln_json_key_is(kiln_str_t key, const char *s)
{
    size_t n = strlen(s);
    if (key.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = key.ptr[i], b = s[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a | 0x20);
        if (b >= 'A' && b <= 'Z')
            b = (char)(b | 0x20);
        if (a != b)
            return false;
    }
    return true;
}
