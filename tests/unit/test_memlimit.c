/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the memory a process may use, from the text of a cgroup v2
 * memory.max and of /proc/meminfo, and the default head byte budget
 * (-ingester.max-head-bytes=auto) taken from it. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "db.h"
#include "memlimit.h"

#define MIB (1024ull * 1024)

static const char meminfo[] = "MemTotal:       16337992 kB\n"
                              "MemFree:         1203880 kB\n"
                              "MemAvailable:    9876544 kB\n";

TEST(cgroup_text)
{
    uint64_t v = 0;
    CHECK(kiln_memlimit_parse_cgroup("2147483648\n", &v));
    CHECK_EQ(v, 2048 * MIB);
    CHECK(kiln_memlimit_parse_cgroup("536870912", &v));
    CHECK_EQ(v, 512 * MIB);
    CHECK(!kiln_memlimit_parse_cgroup("max\n", &v)); /* no limit */
    CHECK(!kiln_memlimit_parse_cgroup("", &v));
    CHECK(!kiln_memlimit_parse_cgroup("-1\n", &v));
    CHECK(!kiln_memlimit_parse_cgroup("12abc\n", &v));
}

TEST(cgroup_v1_path)
{
    char out[256];
    CHECK(
        kiln_memlimit_v1_path("12:pids:/a\n5:memory:/kubepods/pod1/c2\n0::/\n", out, sizeof(out)));
    CHECK_STR(out, "/kubepods/pod1/c2");
    CHECK(kiln_memlimit_v1_path("3:cpu,memory,blkio:/x", out, sizeof(out)));
    CHECK_STR(out, "/x");
    CHECK(kiln_memlimit_v1_path("7:memory:/\n", out, sizeof(out)));
    CHECK_STR(out, "/");
    CHECK(!kiln_memlimit_v1_path("0::/user.slice\n", out, sizeof(out))); /* v2 only */
    CHECK(!kiln_memlimit_v1_path("4:memoryx:/a\n2:name=memory:/b\n", out, sizeof(out)));
    CHECK(!kiln_memlimit_v1_path("5:memory:/long\n", out, 4)); /* does not fit */
    CHECK(!kiln_memlimit_v1_path("", out, sizeof(out)));
}

TEST(meminfo_text)
{
    uint64_t v = 0;
    CHECK(kiln_memlimit_parse_meminfo(meminfo, &v));
    CHECK_EQ(v, 16337992ull * 1024);
    /* Not the first line, and a longer name that starts alike. */
    CHECK(kiln_memlimit_parse_meminfo("MemTotalX: 1 kB\nMemTotal: 2048 kB\n", &v));
    CHECK_EQ(v, 2048ull * 1024);
    CHECK(kiln_memlimit_parse_meminfo("MemFree: 1 kB\nMemTotal:  4096 kB\n", &v));
    CHECK_EQ(v, 4096ull * 1024);
    CHECK(!kiln_memlimit_parse_meminfo("MemFree: 1 kB\n", &v));
    CHECK(!kiln_memlimit_parse_meminfo("MemTotal: lots\n", &v));
    CHECK(!kiln_memlimit_parse_meminfo("", &v));
}

/* The cgroup's limit wins when it is below the machine's memory; "max", a
 * limit above MemTotal, or no cgroup file leave MemTotal; nothing readable
 * leaves 0, and with it no budget. The default budget is a quarter. */
TEST(default_head_bytes_from_text)
{
    const char *src = NULL;
    uint64_t m = kiln_memlimit_from_text("2147483648\n", meminfo, &src);
    CHECK_EQ(m, 2048 * MIB);
    CHECK_STR(src, "cgroup memory.max");
    CHECK_EQ(kiln_db_default_head_bytes(m), (size_t)(512 * MIB));

    m = kiln_memlimit_from_text("max\n", meminfo, &src);
    CHECK_EQ(m, 16337992ull * 1024);
    CHECK_STR(src, "MemTotal");
    CHECK_EQ(kiln_db_default_head_bytes(m), (size_t)(16337992ull * 1024 / 4));

    m = kiln_memlimit_from_text("68719476736\n", meminfo, &src); /* 64 GiB on a 16 GB machine */
    CHECK_STR(src, "MemTotal");
    CHECK_EQ(m, 16337992ull * 1024);

    m = kiln_memlimit_from_text(NULL, meminfo, &src);
    CHECK_STR(src, "MemTotal");
    m = kiln_memlimit_from_text("1073741824\n", NULL, &src); /* no /proc */
    CHECK_EQ(m, 1024 * MIB);
    CHECK_STR(src, "cgroup memory.max");

    m = kiln_memlimit_from_text(NULL, NULL, &src);
    CHECK_EQ(m, 0);
    CHECK_STR(src, "unknown");
    CHECK_EQ(kiln_db_default_head_bytes(m), 0); /* unknown: no budget */
}

/* This machine: some memory, from one of the two. */
TEST(read_here)
{
    const char *src = NULL;
    uint64_t m = kiln_memlimit_read(&src);
    printf("  %.0f MiB from %s\n", (double)m / MIB, src);
    CHECK(m > 0);
    CHECK(strcmp(src, "MemTotal") == 0 || strcmp(src, "cgroup memory.max") == 0);
}

int main(void)
{
    RUN(cgroup_text);
    RUN(cgroup_v1_path);
    RUN(meminfo_text);
    RUN(default_head_bytes_from_text);
    RUN(read_here);
    return check_done();
}
