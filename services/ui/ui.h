/* SPDX-License-Identifier: Apache-2.0
 * ui: serves the embedded web UI (ui_assets.h) over HTTP: GET / is the
 * page, GET /ui/<file> its scripts and styles. Gzip to clients that accept
 * it, identity otherwise; ETag and If-None-Match; the hashed /ui/ files are
 * cached for good, / is revalidated. The page calls only the public APIs
 * (querier.v1, settings.v1, adhocprofiles.v1). Register before start. */
#ifndef KILN_UI_H
#define KILN_UI_H

#include "http_server.h"

/** Routes / and every /ui/ file to the embedded assets. */
void kiln_ui_register(kiln_http_server_t *http);

#endif
