/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: element text by tag, unescaped (xml_text.h). */
#include <string.h>

#include "check.h"
#include "xml_text.h"

TEST(text_by_tag)
{
    const char *x = "<R><Code>NoSuchKey</Code><Key>a&amp;b&lt;c</Key><Empty></Empty></R>";
    char out[32];
    CHECK(kiln_xml_text(x, NULL, "Code", out, sizeof(out)));
    CHECK_STR(out, "NoSuchKey");
    CHECK(kiln_xml_text(x, NULL, "Key", out, sizeof(out)));
    CHECK_STR(out, "a&b<c");
    CHECK(kiln_xml_text(x, NULL, "Empty", out, sizeof(out)));
    CHECK_STR(out, "");
    CHECK(!kiln_xml_text(x, NULL, "Missing", out, sizeof(out)));
    CHECK(!kiln_xml_has(x, NULL, "Missing"));
    CHECK(kiln_xml_has(x, NULL, "Empty"));
}

TEST(bounds_and_overflow)
{
    const char *x = "<A><T>inside</T></A><T>outside</T>";
    const char *end = strstr(x, "</A>");
    char out[8];
    CHECK(kiln_xml_text(x, end, "T", out, sizeof(out)));
    CHECK_STR(out, "inside");
    /* past the range: not seen */
    const char *after = end + 4;
    CHECK(!kiln_xml_text(x, x + 3, "T", out, sizeof(out)));
    CHECK(kiln_xml_text(after, NULL, "T", out, sizeof(out)));
    CHECK_STR(out, "outside");
    /* too long for out: refused, out left empty */
    char small[4];
    CHECK(!kiln_xml_text(x, NULL, "T", small, sizeof(small)));
    CHECK_STR(small, "");
    /* unclosed */
    CHECK(!kiln_xml_text("<T>open", NULL, "T", out, sizeof(out)));
    CHECK(!kiln_xml_text(NULL, NULL, "T", out, sizeof(out)));
}

TEST(unescape)
{
    char s[] = "&quot;x&apos; &gt; &amp;amp; &bogus;";
    kiln_xml_unescape(s);
    CHECK_STR(s, "\"x' > &amp; &bogus;");
}

int main(void)
{
    RUN(text_by_tag);
    RUN(bounds_and_overflow);
    RUN(unescape);
    return check_done();
}
