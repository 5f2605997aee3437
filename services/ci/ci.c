/* SPDX-License-Identifier: Apache-2.0
 * `kiln ci` (ci.h): flags and the CI environment, then upload or compare. */
#include "ci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci_cmd.h"
#include "xmalloc.h"

/* Flags are --name value or --name=value (one dash works too); repeatable ones
 * (--function-threshold) are kept in order. Positional arguments are files. */
static int parse_args(int argc, char **argv, kiln_ci_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] == 0) {
            if (a->n_files < KILN_CI_MAX_ARGS)
                a->files[a->n_files++] = s;
            continue;
        }
        s += s[1] == '-' ? 2 : 1;
        const char *eq = strchr(s, '=');
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        size_t nlen = eq ? (size_t)(eq - s) : strlen(s);
        if (!val || a->n_flags >= KILN_CI_MAX_ARGS) {
            fprintf(stderr, "kiln ci: flag -%.*s needs a value\n", (int)nlen, s);
            return -1;
        }
        a->flags[a->n_flags].name = s;
        a->flags[a->n_flags].name_len = nlen;
        a->flags[a->n_flags++].value = val;
    }
    return 0;
}

static const char usage[] =
    "usage: kiln ci upload [flags] PROFILE...\n"
    "       kiln ci compare --current SELECTOR [flags]\n"
    "common: --url (KILN_URL, http://localhost:4040) --token (KILN_TOKEN) --basic-auth user:pw\n"
    "        (KILN_BASIC_AUTH) --tenant (KILN_TENANT) --service NAME (KILN_CI_SERVICE, ci)\n"
    "upload: --repo --branch --commit --job --test --run (default from GITHUB_*/CI_* env)\n"
    "        --format auto|pprof|folded|jfr\n"
    "compare: --baseline SELECTOR ({ci_branch=\"main\"}) --baseline-runs N (10) --current-runs N\n"
    "        (10) --profile-type ID --since DURATION (23h) --threshold PCT (10)\n"
    "        --function-threshold NAME=PCT (repeatable) --profile-threshold PCT (off)\n"
    "        --alpha P (0.05) --min-share PCT (1) --min-delta PCT (1) --top N (10) --report FILE "
    "(stdout)\n"
    "        --junit FILE --ui-url URL (the --url)\n"
    "docs/ci.md has the details.\n";

int kiln_ci_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    kiln_ci_args *a = kiln_xcalloc(1, sizeof(*a));
    int rc = 2;
    if (parse_args(argc - 2, argv + 2, a) != 0)
        goto out;
    if (strcmp(argv[1], "upload") == 0)
        rc = kiln_ci_upload(a);
    else if (strcmp(argv[1], "compare") == 0)
        rc = kiln_ci_compare_cmd(a);
    else
        fprintf(stderr, "kiln ci: unknown command \"%s\"\n%s", argv[1], usage);
out:
    free(a);
    return rc;
}
