/* SPDX-License-Identifier: Apache-2.0
 * `kiln ci`: the CI regression gate. `upload` sends a CI run's profiles to Kiln
 * over /ingest with repository, branch, commit, job, test and run labels;
 * `compare` reads baseline and current runs over querier.v1 (Connect, proto)
 * and fails on a significant regression. Talks to Kiln only over public HTTP
 * APIs, so it works against one process or a cluster; single-threaded. */
#ifndef KILN_CI_H
#define KILN_CI_H

/** Runs `kiln ci <upload|compare> [flags]` (argv[0] is "ci"). Returns the process exit
 * code: 0 passed, 1 a regression (compare) or a failed upload, 2 bad usage. */
int kiln_ci_main(int argc, char **argv);

#endif
