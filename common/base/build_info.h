/* SPDX-License-Identifier: Apache-2.0
 * build_info: what this binary is: its version, the commit it was built
 * from ("-dirty" with uncommitted changes) and when (written at every
 * build by cmake/build_info.cmake; "unknown" when the source is not a git
 * checkout). Shown by `kiln -version`,
 * status.v1 build info and the kiln_build_info metric. */
#ifndef KILN_BUILD_INFO_H
#define KILN_BUILD_INFO_H

/** The release version, e.g. "0.2.0". */
const char *kiln_build_version(void);
/** The git commit (short hash) the binary was built from. */
const char *kiln_build_commit(void);
/** The build date, RFC 3339 in UTC. */
const char *kiln_build_date(void);
#endif
