/* SPDX-License-Identifier: Apache-2.0
 * tmpdir: a test's own directory under /tmp, removed whole afterwards, for
 * tests and benches that run an ingester or a store on disk. Header-only. */
#ifndef KILN_TEST_TMPDIR_H
#define KILN_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static inline int tmpdir__remove_one(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/** Removes dir and everything below it (a missing dir is fine). */
static inline void tmpdir_remove(const char *dir)
{
    nftw(dir, tmpdir__remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
