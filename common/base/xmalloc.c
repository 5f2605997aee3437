/* SPDX-License-Identifier: Apache-2.0
 * xmalloc: abort-on-OOM allocation. */
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "level=fatal mod=xmalloc msg=\"out of memory allocating %zu bytes\"\n", n);
    abort();
}

void *kiln_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *kiln_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *kiln_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *kiln_xstrndup(const char *s, size_t len)
{
    char *d = kiln_xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *kiln_xstrdup(const char *s)
{
    return kiln_xstrndup(s, strlen(s));
}

void kiln_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    *arr = kiln_xrealloc(*arr, ncap * elem);
    *cap = ncap;
}
