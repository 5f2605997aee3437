/* SPDX-License-Identifier: Apache-2.0
 * json_writer: JSON text into a kiln_buf (json_writer.h). */
#include "json_writer.h"

void kiln_json_string(kiln_buf *out, const char *s, size_t len)
{
    kiln_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            kiln_buf_putc(out, '\\');
            kiln_buf_putc(out, (char)c);
        } else if (c < 0x20) {
            kiln_buf_printf(out, "\\u%04x", c);
        } else {
            kiln_buf_putc(out, (char)c);
        }
    }
    kiln_buf_putc(out, '"');
}
