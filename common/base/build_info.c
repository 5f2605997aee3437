/* SPDX-License-Identifier: Apache-2.0
 * build_info: the values the build writes (cmake/build_info.cmake). */
#include "build_info.h"

#if defined(__has_include)
#if __has_include("build_info_values.h")
#include "build_info_values.h"
#endif
#endif

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
