/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer target for common/net/auth: the credentials and tenant header
 * every client sends, and (first byte odd) the tokens file. A request is
 * either refused with 401/403/400 and a message, or admitted with a
 * tenant that the token grants; a tokens file either loads or is refused
 * with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kiln_auth_t *fixed;
static char file[64];

/* Token "fuzz" grants tenants a and b, read and write. */
static void init(void)
{
    char hex[65], text[256];
    kiln_auth_hash_hex("fuzz", 4, hex);
    snprintf(file, sizeof(file), "/tmp/kiln-fuzz-auth-%d.yaml", (int)getpid());
    snprintf(text, sizeof(text),
             "tokens:\n  - {sha256: %s, tenants: [a, b], scope: [read, write]}\n", hex);
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    kiln_err err;
    kiln_auth_config cfg = {file, true};
    if (kiln_auth_create(&cfg, &fixed, &err) != KILN_OK)
        abort();
    unlink(file); /* loaded; a missing file is never reloaded */
}

static void load_file(const uint8_t *data, size_t size)
{
    char path[80];
    snprintf(path, sizeof(path), "%s.in", file);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, size, f);
    fclose(f);
    kiln_auth_t *a = NULL;
    kiln_err err = {KILN_OK, ""};
    kiln_auth_config cfg = {path, false};
    kiln_status st = kiln_auth_create(&cfg, &a, &err);
    unlink(path);
    if (st != KILN_OK && (a != NULL || err.msg[0] == '\0'))
        abort();
    kiln_auth_destroy(a);
}

static void check(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t alen = nul != NULL ? (size_t)(nul - data) : size;
    const char *org = nul != NULL ? (const char *)nul + 1 : NULL;
    size_t olen = nul != NULL ? size - alen - 1 : 0;
    char tenant[1024];
    kiln_err err = {KILN_OK, ""};
    kiln_auth_scope scope = size % 2 ? KILN_AUTH_WRITE : KILN_AUTH_READ;
    kiln_status st = kiln_auth_check(fixed, (const char *)data, alen, org, olen, scope, "fuzz",
                                     tenant, sizeof(tenant), &err);
    if (st == KILN_OK) {
        /* Admitted: only a, b or a|b, b|a ... (all granted). */
        for (const char *p = tenant; *p != '\0'; p++) {
            if (*p != 'a' && *p != 'b' && *p != '|')
                abort();
        }
    } else if ((st != KILN_UNAUTHENTICATED && st != KILN_PERMISSION_DENIED &&
                st != KILN_INVALID_ARGUMENT) ||
               err.msg[0] == '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fixed == NULL)
        init();
    if (size > 0 && (data[0] & 1))
        load_file(data + 1, size - 1);
    else
        check(data, size);
    return 0;
}
