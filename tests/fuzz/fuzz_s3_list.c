/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the S3 backend's ListObjectsV2 page parser (keys, XML
 * escapes, IsTruncated and NextContinuationToken), which reads what a
 * remote server sends. It must never crash, read out of bounds or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objstore_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = malloc(size + 1);
    if (xml == NULL)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';
    char token[2048];
    bool more = false;
    size_t n = kiln_objstore__s3_parse_list(xml, token, sizeof(token), &more);
    if (more && strlen(token) >= sizeof(token))
        abort();
    (void)n;
    free(xml);
    return 0;
}
