/* SPDX-License-Identifier: Apache-2.0
 * unimplemented: every method of Pyroscope's public API (grafana/pyroscope
 * api/, read at commit 3fe6a457a320) that Kiln does not serve answers
 * `unimplemented` (Connect HTTP 501, gRPC 12), never 404, because clients
 * such as Grafana's Profiles Drilldown degrade gracefully on 501 and abort
 * on 404. Paths that are not API methods stay 404. */
#ifndef KILN_UNIMPLEMENTED_H
#define KILN_UNIMPLEMENTED_H

#include "rpc.h"

/** Registers every API method path missing from rpc as unimplemented.
 * Call after every module registered its methods, before the servers
 * start. Returns the number of paths added. */
size_t kiln_unimplemented_register(kiln_rpc_registry_t *rpc);

/** The API's method paths ("/<package>.<Service>/<Method>"), NULL-ended. */
extern const char *const kiln_api_methods[];

#endif
