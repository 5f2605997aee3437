/* SPDX-License-Identifier: Apache-2.0
 * buf: capped growable buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

void kiln_buf_init(kiln_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void kiln_buf_free(kiln_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

bool kiln_buf_reserve(kiln_buf *b, size_t n)
{
    if (b->max != 0 && (n > b->max || b->len > b->max - n))
        return false;
    size_t need = b->len + n + 1; /* room for a NUL, so text stays printable */
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < need)
            ncap *= 2;
        b->ptr = kiln_xrealloc(b->ptr, ncap);
        b->cap = ncap;
    }
    return true;
}

bool kiln_buf_append(kiln_buf *b, const void *p, size_t n)
{
    if (!kiln_buf_reserve(b, n))
        return false;
    if (n != 0)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return true;
}

bool kiln_buf_puts(kiln_buf *b, const char *s)
{
    return kiln_buf_append(b, s, strlen(s));
}

bool kiln_buf_putc(kiln_buf *b, char c)
{
    return kiln_buf_append(b, &c, 1);
}

bool kiln_buf_put_uvarint(kiln_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return kiln_buf_append(b, tmp, n);
}

bool kiln_buf_printf(kiln_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !kiln_buf_reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *kiln_buf_detach(kiln_buf *b, size_t *len)
{
    char *p = b->ptr;
    if (len != NULL)
        *len = b->len;
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
