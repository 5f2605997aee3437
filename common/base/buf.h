/* SPDX-License-Identifier: Apache-2.0
 * buf: a growable byte buffer with a maximum size (curl dynbuf style), and
 * kiln_str_t, a borrowed view of bytes with no NUL terminator. The owner of
 * a buf frees it with kiln_buf_free. One thread at a time. */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A borrowed byte range; no NUL terminator. */
typedef struct kiln_str {
    const char *ptr;
    size_t len;
} kiln_str_t;

#define KILN_STR(s) ((kiln_str_t){(s), sizeof(s) - 1})

/** True when the view equals the NUL-terminated string s. Inline: most
 * callers pass a literal, whose length the compiler then knows, so a
 * mismatch costs a compare of lengths instead of a strlen. */
static inline bool kiln_str_eq(kiln_str_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

typedef struct kiln_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* 0 = no limit */
} kiln_buf;

/** Initialises an empty buffer that refuses to grow past max bytes (0 = unlimited). */
void kiln_buf_init(kiln_buf *b, size_t max);
/** Frees the buffer's memory and leaves it empty. */
void kiln_buf_free(kiln_buf *b);
/** Makes room for n more bytes; false when that passes max. */
bool kiln_buf_reserve(kiln_buf *b, size_t n);
/** Appends bytes; false (and nothing appended) when that passes max. */
bool kiln_buf_append(kiln_buf *b, const void *p, size_t n);
/** Appends a NUL-terminated string. */
bool kiln_buf_puts(kiln_buf *b, const char *s);
/** Appends printf-formatted text. */
bool kiln_buf_printf(kiln_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends one byte. */
bool kiln_buf_putc(kiln_buf *b, char c);
/** Appends v as a LEB128 varint (protobuf's, 1 to 10 bytes). */
bool kiln_buf_put_uvarint(kiln_buf *b, uint64_t v);
/** Hands the bytes to the caller (who frees them) and leaves b empty. */
char *kiln_buf_detach(kiln_buf *b, size_t *len);

#endif
