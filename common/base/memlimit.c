/* SPDX-License-Identifier: Apache-2.0
 * memlimit: cgroup v2 memory.max, cgroup v1 memory.limit_in_bytes and
 * /proc/meminfo, parsed from text. */
#include "memlimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kiln_memlimit_parse_cgroup(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *text == '-' || (*end != '\0' && *end != '\n'))
        return false; /* "max\n" is no limit */
    *out = (uint64_t)x;
    return true;
}

bool kiln_memlimit_v1_path(const char *text, char *out, size_t cap)
{
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        const char *ctl = strchr(p, ':'), *end = strchr(p, '\n');
        const char *path = ctl != NULL ? strchr(ctl + 1, ':') : NULL;
        if (path == NULL || (end != NULL && path > end))
            continue;
        bool memory = false; /* "memory" among the comma-separated controllers */
        for (const char *c = ctl + 1; c < path && !memory; c += strcspn(c, ",:") + 1)
            memory = strcspn(c, ",:") == 6 && strncmp(c, "memory", 6) == 0;
        size_t n = end != NULL ? (size_t)(end - path - 1) : strlen(path + 1);
        if (!memory || path[1] != '/' || n + 1 > cap)
            continue;
        memcpy(out, path + 1, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

bool kiln_memlimit_parse_meminfo(const char *text, uint64_t *out)
{
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, "MemTotal:", 9) != 0)
            continue;
        char *end;
        errno = 0;
        unsigned long long kb = strtoull(p + 9, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno != 0 || end == p + 9 || strncmp(end, "kB", 2) != 0 || kb > UINT64_MAX / 1024)
            return false;
        *out = (uint64_t)kb * 1024;
        return true;
    }
    return false;
}

uint64_t kiln_memlimit_from_text(const char *cgroup, const char *meminfo, const char **source)
{
    uint64_t limit = 0, total = 0;
    bool has_limit = cgroup != NULL && kiln_memlimit_parse_cgroup(cgroup, &limit);
    bool has_total = meminfo != NULL && kiln_memlimit_parse_meminfo(meminfo, &total);
    const char *from = "unknown";
    uint64_t v = 0;
    /* A limit above the machine's memory (set "just in case") limits nothing. */
    if (has_limit && limit > 0 && (!has_total || limit < total))
        from = "cgroup memory.max", v = limit;
    else if (has_total && total > 0)
        from = "MemTotal", v = total;
    if (source != NULL)
        *source = from;
    return v;
}

/* The file's first cap - 1 bytes as a string; false when it cannot be read. */
static bool slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* The lowest memory.max of the cgroup /proc/self/cgroup names ("0::/path"
 * under cgroup v2) and its ancestors, as text: a systemd unit's MemoryMax=
 * or a pod's limit on a parent, seen without a cgroup namespace. */
static bool own_cgroup_max(char *buf, size_t cap)
{
    char all[4096], path[4200], text[64];
    if (!slurp("/proc/self/cgroup", all, sizeof(all)))
        return false;
    char *line = strncmp(all, "0::/", 4) == 0 ? all : strstr(all, "\n0::/");
    if (line == NULL)
        return false; /* cgroup v1 only */
    line += *line == '\n';
    line[strcspn(line, "\n")] = '\0';
    uint64_t low = UINT64_MAX, v;
    for (char *dir = line + 3; strlen(dir) > 1; *strrchr(dir, '/') = '\0') {
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", dir);
        if (slurp(path, text, sizeof(text)) && kiln_memlimit_parse_cgroup(text, &v) && v < low)
            low = v;
        if (strrchr(dir, '/') == dir)
            break; /* a child of the root, which has no memory.max */
    }
    if (low == UINT64_MAX)
        return false;
    snprintf(buf, cap, "%llu", (unsigned long long)low);
    return true;
}

/* cgroup v1: memory.limit_in_bytes of the memory cgroup /proc/self/cgroup
 * names, else of /sys/fs/cgroup/memory itself (the container's own under
 * a cgroup namespace). "No limit" is a huge number, which the rule that a
 * limit above MemTotal limits nothing takes care of. */
static bool v1_limit(char *buf, size_t cap)
{
    char all[4096], dir[4096], path[4200];
    if (slurp("/proc/self/cgroup", all, sizeof(all)) &&
        kiln_memlimit_v1_path(all, dir, sizeof(dir))) {
        snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                 strcmp(dir, "/") == 0 ? "" : dir);
        if (slurp(path, buf, cap))
            return true;
    }
    return slurp("/sys/fs/cgroup/memory/memory.limit_in_bytes", buf, cap);
}

uint64_t kiln_memlimit_read(const char **source)
{
    char cg[64], mi[4096];
    bool has_cg =
        own_cgroup_max(cg, sizeof(cg)) || slurp("/sys/fs/cgroup/memory.max", cg, sizeof(cg));
    bool v1 = !has_cg && v1_limit(cg, sizeof(cg));
    bool has_mi = slurp("/proc/meminfo", mi, sizeof(mi));
    uint64_t v = kiln_memlimit_from_text(has_cg || v1 ? cg : NULL, has_mi ? mi : NULL, source);
    if (v1 && source != NULL && strcmp(*source, "cgroup memory.max") == 0)
        *source = "cgroup memory.limit_in_bytes";
    return v;
}
