/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the STS AssumeRoleWithWebIdentity answer parser (fields
 * scoped to <Credentials>, XML escapes, the expiration time), which reads
 * what a remote server sends. It must never crash, read out of bounds,
 * leak, or return keys longer than their buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3_creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = malloc(size + 1);
    if (xml == NULL)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';
    kiln_s3_keys *k = malloc(sizeof(*k));
    kiln_err err;
    if (k != NULL && kiln_s3_creds_parse_sts(xml, k, &err) == KILN_OK &&
        (strlen(k->access_key_id) > KILN_S3_KEY_MAX || k->access_key_id[0] == '\0' ||
         strlen(k->session_token) > KILN_S3_TOKEN_MAX || k->expires_ns <= 0))
        abort();
    free(k);
    free(xml);
    return 0;
}
