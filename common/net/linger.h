/* SPDX-License-Identifier: Apache-2.0
 * linger: a lingering close, as web servers do it. A socket closed with
 * bytes still unread makes the kernel send a reset, and the client, still
 * sending a request that was refused before it was read whole (a 414 for a
 * URL past the limit), loses the answer it was sent. A socket handed here
 * is shut for writing (its answer ends with a FIN) and drained by one
 * thread, its bytes discarded, until the peer closes it, 2 s pass or 16 MiB
 * is read; then closed. At most 256 at once: past that a socket is closed
 * at once. Thread-safe. */
#ifndef KILN_LINGER_H
#define KILN_LINGER_H

typedef struct kiln_linger kiln_linger_t;

/** Starts the draining thread; NULL when it cannot (sockets handed to
 * kiln_linger_close then close at once). */
kiln_linger_t *kiln_linger_create(void);
/** Closes every socket still draining and stops the thread; NULL is a
 * no-op. */
void kiln_linger_destroy(kiln_linger_t *l);

/** Takes fd (a connected socket) and closes it after draining it. l may
 * be NULL: fd is closed at once. */
void kiln_linger_close(kiln_linger_t *l, int fd);

#endif
