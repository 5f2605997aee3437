/* SPDX-License-Identifier: Apache-2.0
 * The two `kiln ci` commands over parsed arguments (ci.c parses, ci_upload.c
 * and ci_compare.c run). Internal to services/ci. */
#ifndef KILN_CI_CMD_H
#define KILN_CI_CMD_H

#include <stddef.h>

#include "ci_http.h"

#define KILN_CI_MAX_ARGS 256

/** Parsed command line: flags in order (borrowed from argv) and positional files. */
typedef struct kiln_ci_args {
    struct {
        const char *name; /* not NUL-terminated at name_len when given as name=value */
        size_t name_len;
        const char *value;
    } flags[KILN_CI_MAX_ARGS];
    size_t n_flags;
    const char *files[KILN_CI_MAX_ARGS];
    size_t n_files;
} kiln_ci_args;

/** The last value of flag `name`, else the first set, non-empty environment variable named
 * in `envs` (space-separated, "" for none), else `def`. */
const char *kiln_ci_flag(const kiln_ci_args *a, const char *name, const char *def,
                         const char *envs);
/** The connection from --url, --token, --basic-auth, --tenant and their KILN_* variables. */
kiln_ci_conn kiln_ci_conn_from(const kiln_ci_args *a);
/** `kiln ci upload`: exit code. */
int kiln_ci_upload(const kiln_ci_args *a);
/** `kiln ci compare`: exit code. */
int kiln_ci_compare_cmd(const kiln_ci_args *a);

#endif
