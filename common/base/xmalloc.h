/* SPDX-License-Identifier: Apache-2.0
 * xmalloc: allocation that aborts when memory runs out (redis style), so
 * callers never check for NULL. The only place raw malloc is used besides
 * arena.c. Thread-safe. */
#ifndef KILN_XMALLOC_H
#define KILN_XMALLOC_H

#include <stddef.h>

/** malloc that aborts on failure; never returns NULL (size 0 gives a unique pointer). */
void *kiln_xmalloc(size_t n);
/** calloc that aborts on failure. */
void *kiln_xcalloc(size_t count, size_t size);
/** realloc that aborts on failure. */
void *kiln_xrealloc(void *p, size_t n);
/** Copies len bytes into a new NUL-terminated string the caller frees. */
char *kiln_xstrndup(const char *s, size_t len);
/** strdup that aborts on failure. */
char *kiln_xstrdup(const char *s);

/** Grows *arr (element size elem) so that it holds at least need elements. */
void kiln_grow(void **arr, size_t *cap, size_t need, size_t elem);

#define KILN_GROW(arr, cap, need) kiln_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

#endif
