/* SPDX-License-Identifier: Apache-2.0
 * time_param: cleaning, the all-digits forms, and the now-offset form. */
#include "time_param.h"

#include <stdbool.h>
#include <string.h>

#define CLEAN_MAX 256
#define NS_PER_S 1000000000LL

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* a * b, saturated to the int64 range. */
static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* Digits to int64, clamped at INT64_MAX (as Go's Atoi value on overflow). */
static int64_t atoi_clamp(const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return INT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* YYYYMMDD when it is a real date after 1900 (as Go's time.Parse checks). */
static bool parse_date(const char *s, int64_t *ns)
{
    int64_t y = atoi_clamp(s, 4), m = atoi_clamp(s + 4, 2), d = atoi_clamp(s + 6, 2);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y <= 1900 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return false;
    *ns = mul_sat(days_from_civil(y, m, d) * 86400, NS_PER_S);
    return true;
}

static int64_t parse_digits(const char *s, size_t n)
{
    int64_t ns;
    if (n == 8 && parse_date(s, &ns))
        return ns;
    int64_t v = atoi_clamp(s, n);
    switch (n) {
    case 13:
        return mul_sat(v, 1000000);
    case 16:
        return mul_sat(v, 1000);
    case 19:
        return v;
    default:
        return mul_sat(v, NS_PER_S);
    }
}

static int64_t unit_seconds(const char *u, size_t n)
{
    if (n == 0)
        return 0;
    if (u[0] == 's')
        return 1;
    if ((n >= 3 && memcmp(u, "mon", 3) == 0) || u[0] == 'M')
        return 3600 * 24 * 30;
    if (u[0] == 'm')
        return 60;
    switch (u[0]) {
    case 'h':
        return 3600;
    case 'd':
        return 3600 * 24;
    case 'w':
        return 3600 * 24 * 7;
    case 'y':
        return 3600 * 24 * 365;
    default:
        return 0;
    }
}

/* "+N<unit>" or "-N<unit>": the number is the leading digits and the unit
 * everything after them (so only one component counts, as upstream). */
static int64_t parse_offset(const char *o, size_t n)
{
    int64_t sign = 1;
    if (n > 0 && (o[0] == '-' || o[0] == '+')) {
        sign = o[0] == '-' ? -1 : 1;
        o++, n--;
    }
    size_t k = 0;
    while (k < n && is_digit(o[k]))
        k++;
    int64_t num = atoi_clamp(o, k);
    return mul_sat(mul_sat(mul_sat(num, sign), unit_seconds(o + k, n - k)), NS_PER_S);
}

int64_t kiln_time_param_parse(const char *s, size_t len, int64_t now_ns)
{
    char c[CLEAN_MAX];
    size_t n = 0;
    while (len > 0 && is_space(*s))
        s++, len--;
    while (len > 0 && is_space(s[len - 1]))
        len--;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_' || s[i] == ',' || s[i] == ' ')
            continue;
        if (n == CLEAN_MAX)
            return now_ns;
        c[n++] = s[i];
    }
    bool digits = n > 0;
    for (size_t i = 0; digits && i < n; i++)
        digits = is_digit(c[i]);
    if (digits)
        return parse_digits(c, n);
    const char *op = memchr(c, '+', n);
    if (op == NULL)
        op = memchr(c, '-', n);
    if (op == NULL)
        return now_ns;
    return add_sat(now_ns, parse_offset(op, (size_t)(c + n - op)));
}
