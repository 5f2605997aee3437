/* SPDX-License-Identifier: Apache-2.0
 * check: the unit-test harness. TEST(name) defines a test, RUN(name) runs it,
 * CHECK* record failures and go on. check_done() prints "N passed, N failed"
 * as the last line and returns the exit code. */
#ifndef KILN_CHECK_H
#define KILN_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed, check_cur_failed;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        check_cur_failed = 0;                                                                      \
        test_##name();                                                                             \
        if (check_cur_failed) {                                                                    \
            check_failed++;                                                                        \
            printf("FAIL %s\n", #name);                                                            \
        } else {                                                                                   \
            check_passed++;                                                                        \
            printf("ok   %s\n", #name);                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);                         \
            check_cur_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,         \
                   check_a_, check_b_);                                                            \
            check_cur_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) {             \
            printf("  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b,     \
                   check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                \
            check_cur_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_OK(st) CHECK_EQ((st), 0)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* Reads a whole file from $KILN_TESTDATA/<rel>; NULL if absent. Caller frees. */
static inline unsigned char *check_read_testdata(const char *rel, size_t *len)
{
    const char *dir = getenv("KILN_TESTDATA");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/testdata", rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    *len = got;
    return p;
}

#endif
