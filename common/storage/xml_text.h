/* SPDX-License-Identifier: Apache-2.0
 * xml_text: the little XML that S3 and STS answers need, the text of a
 * flat element, unescaped. Not a parser: the answers are small, flat and
 * read by tag. Pure functions; any thread. */
#ifndef KILN_XML_TEXT_H
#define KILN_XML_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/** Undoes the five predefined XML escapes in place. */
void kiln_xml_unescape(char *s);

/** True when <tag> opens within [from, to) (to NULL = the end of from). */
bool kiln_xml_has(const char *from, const char *to, const char *tag);

/** The unescaped text of the first <tag>...</tag> within [from, to) (to
 * NULL = the end of from) into out (cap bytes, NUL-terminated): true when
 * it is there and fits (empty included), false when absent, unclosed or
 * longer than cap - 1 (out is then ""). */
bool kiln_xml_text(const char *from, const char *to, const char *tag, char *out, size_t cap);

#endif
