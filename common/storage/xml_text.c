/* SPDX-License-Identifier: Apache-2.0
 * xml_text: element text by tag, unescaped. */
#include "xml_text.h"

#include <stdio.h>
#include <string.h>

void kiln_xml_unescape(char *s)
{
    static const struct {
        const char *from;
        char to;
    } esc[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *w = s;
    for (const char *p = s; *p;) {
        size_t k = 0;
        while (k < 5 && strncmp(p, esc[k].from, strlen(esc[k].from)) != 0)
            k++;
        if (k < 5) {
            *w++ = esc[k].to;
            p += strlen(esc[k].from);
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

/* Where "<tag>" starts within [from, to), or NULL. */
static const char *find_open(const char *from, const char *to, const char *tag, size_t *open_len)
{
    char open[128];
    int n = snprintf(open, sizeof(open), "<%s>", tag);
    if (from == NULL || n < 0 || (size_t)n >= sizeof(open))
        return NULL;
    const char *a = strstr(from, open);
    *open_len = (size_t)n;
    return a != NULL && (to == NULL || a + n <= to) ? a : NULL;
}

bool kiln_xml_has(const char *from, const char *to, const char *tag)
{
    size_t n;
    return find_open(from, to, tag, &n) != NULL;
}

bool kiln_xml_text(const char *from, const char *to, const char *tag, char *out, size_t cap)
{
    size_t n;
    char close[128];
    out[0] = '\0';
    const char *a = find_open(from, to, tag, &n);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *b = a != NULL ? strstr(a + n, close) : NULL;
    if (b == NULL || (to != NULL && b > to))
        return false;
    a += n;
    if ((size_t)(b - a) >= cap)
        return false;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    kiln_xml_unescape(out);
    return true;
}
