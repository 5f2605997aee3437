/* SPDX-License-Identifier: Apache-2.0
 * base64: decoding (base64.h). */
#include "base64.h"

#include <string.h>

static int b64_val(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

bool kiln_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = len, o = 0, at = len;
    bool url = memchr(s, '-', n) != NULL || memchr(s, '_', n) != NULL;
    uint32_t acc = 0;
    if (n % 4 == 0)
        for (int k = 0; k < 2 && n > 0 && s[n - 1] == '='; k++)
            n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i], url);
        if (v < 0) {
            at = i;
            break;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
        }
    }
    if (at != len || n % 4 == 1) {
        if (bad != NULL)
            *bad = at;
        return false;
    }
    if (n % 4 == 2)
        out[o++] = (uint8_t)(acc >> 4);
    if (n % 4 == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *out_len = o;
    return true;
}
