/* SPDX-License-Identifier: Apache-2.0
 * corrupt_chunk: damages the first series chunk of a block's samples file
 * so that the block still opens (its checksum is made to match again) but
 * the chunk does not decompress when read: the failing chunk storage reads
 * must report as KILN_DATA_LOSS. Header-only, for tests. */
#ifndef KILN_TEST_CORRUPT_CHUNK_H
#define KILN_TEST_CORRUPT_CHUNK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

/* A section is [u32 raw length][u32 compressed length][u32 checksum][zstd
 * bytes] (block.c); the first chunk starts the file. Flips the zstd magic
 * and rewrites the checksum. False when the file cannot be rewritten. */
static inline bool check_corrupt_first_chunk(const char *samples_path)
{
    FILE *f = fopen(samples_path, "r+b");
    if (f == NULL)
        return false;
    uint8_t hdr[12];
    bool ok = fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr);
    uint32_t cl = ok ? (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 | (uint32_t)hdr[6] << 16 |
                           (uint32_t)hdr[7] << 24
                     : 0;
    uint8_t *z = ok && cl > 0 && cl < (64u << 20) ? malloc(cl) : NULL;
    ok = z != NULL && fread(z, 1, cl, f) == cl;
    if (ok) {
        z[0] ^= 0xff; /* no longer a zstd frame */
        uint32_t sum = (uint32_t)XXH3_64bits(z, cl);
        for (int i = 0; i < 4; i++)
            hdr[8 + i] = (uint8_t)(sum >> (8 * i));
        ok = fseek(f, 0, SEEK_SET) == 0 && fwrite(hdr, 1, sizeof(hdr), f) == sizeof(hdr) &&
             fwrite(z, 1, cl, f) == cl;
    }
    free(z);
    return fclose(f) == 0 && ok;
}
#endif
