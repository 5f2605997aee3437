/* SPDX-License-Identifier: Apache-2.0
 * build_info: the values CMake passes in (build_info.h). */
#include "build_info.h"

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_COMMIT
#define KILN_COMMIT "unknown"
#endif
#ifndef KILN_BUILD_DATE
#define KILN_BUILD_DATE "unknown"
#endif

const char *kiln_build_version(void)
{
    return KILN_VERSION;
}

const char *kiln_build_commit(void)
{
    return KILN_COMMIT;
}

const char *kiln_build_date(void)
{
    return KILN_BUILD_DATE;
}
