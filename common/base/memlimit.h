/* SPDX-License-Identifier: Apache-2.0
 * memlimit: the memory this process may use, for defaults sized by it:
 * its cgroup's limit (cgroup v2 memory.max, else cgroup v1
 * memory.limit_in_bytes) when it has one below the machine's, else the
 * machine's (MemTotal in /proc/meminfo). The parsers take the files'
 * text, so tests give them any. Any thread; reading blocks on a few small
 * files only. */
#ifndef KILN_MEMLIMIT_H
#define KILN_MEMLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The limit in the text of a cgroup v2 memory.max, in bytes; false for
 * "max" (no limit) and for text that is not a number. */
bool kiln_memlimit_parse_cgroup(const char *text, uint64_t *out);

/** The cgroup v1 memory controller's path in the text of /proc/self/cgroup
 * (the line "N:memory:/path", the controller maybe among others, as in
 * "N:cpu,memory:/path") into out; false when there is none. */
bool kiln_memlimit_v1_path(const char *text, char *out, size_t cap);

/** MemTotal in the text of /proc/meminfo, in bytes; false when the line
 * is absent or malformed. */
bool kiln_memlimit_parse_meminfo(const char *text, uint64_t *out);

/** The memory limit given the text of memory.max and of /proc/meminfo
 * (either NULL when it could not be read): the cgroup's limit when it has
 * one and it is below MemTotal, else MemTotal; 0 when neither says.
 * *source (NULL = not wanted) gets a static name of where it came from:
 * "cgroup memory.max", "MemTotal" or "unknown". */
uint64_t kiln_memlimit_from_text(const char *cgroup, const char *meminfo, const char **source);

/** kiln_memlimit_from_text of this process's cgroup's limit and of
 * /proc/meminfo: cgroup v2's memory.max of the cgroup named in
 * /proc/self/cgroup (the lowest of it and its ancestors), else
 * /sys/fs/cgroup/memory.max (the container's own under a cgroup
 * namespace); on cgroup v1, memory.limit_in_bytes likewise under
 * /sys/fs/cgroup/memory (*source then "cgroup memory.limit_in_bytes"). */
uint64_t kiln_memlimit_read(const char **source);

#endif
