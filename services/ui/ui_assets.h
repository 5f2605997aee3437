/* SPDX-License-Identifier: Apache-2.0
 * ui_assets: the web UI's files, embedded at build time. web/build.mjs
 * bundles web/src and writes the table (gzip-compressed bytes, one row per
 * file); the build compiles it into kiln. Read-only; any thread. */
#ifndef KILN_UI_ASSETS_H
#define KILN_UI_ASSETS_H

#include <stddef.h>

typedef struct kiln_ui_asset {
    const char *path; /* "/" for index.html, "/ui/<hashed name>" for the rest */
    const char *content_type;
    const unsigned char *gzip; /* the file, gzip-compressed */
    size_t gzip_len;
    size_t raw_len;   /* its size uncompressed */
    const char *etag; /* quoted, from the file's SHA-256 */
} kiln_ui_asset;

/** Every embedded file; empty when built with -DKILN_UI=OFF. */
extern const kiln_ui_asset kiln_ui_assets[];
/** How many rows kiln_ui_assets has. */
extern const size_t kiln_ui_n_assets;

#endif
