/* SPDX-License-Identifier: Apache-2.0
 * config: table-driven settings in the ecosystem's style. Sources, lowest
 * priority first: the default, the YAML file named by -config.file (nested
 * keys joined with '.', '_' read as '-': `server: {http_listen_port: 4040}`
 * sets -server.http-listen-port), the environment (KILN_SERVER_HTTP_LISTEN_PORT),
 * then the command line (-name=value, -name value, --name=value). Parsed once
 * in main before threads start; read-only after. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "status.h"

typedef enum kiln_cfg_type {
    KILN_CFG_STRING,   /* char * */
    KILN_CFG_INT,      /* int */
    KILN_CFG_SIZE,     /* size_t, with B/KB/KiB/MB/MiB/GB/GiB suffixes, or "auto"
                          (KILN_CFG_SIZE_AUTO) */
    KILN_CFG_BOOL,     /* bool */
    KILN_CFG_DOUBLE,   /* double */
    KILN_CFG_DURATION, /* int64_t ns, from "0", "90s", "10m", "1h30m", "7d" */
} kiln_cfg_type;

/* A size of "auto": its owner derives it when it starts (from the machine,
 * say), and says what it took. Written back as "auto". */
#define KILN_CFG_SIZE_AUTO SIZE_MAX

typedef struct kiln_cfg_opt {
    const char *name; /* "server.http-listen-port" */
    kiln_cfg_type type;
    void *ptr;       /* see kiln_cfg_type */
    const char *def; /* default, as text */
    const char *help;
} kiln_cfg_opt;

/** Applies defaults, the config file, the environment and argv to the
 * table. Returns KILN_CANCELLED after printing usage for -help/-h, and
 * KILN_INVALID_ARGUMENT with err for an unknown flag, a bad value or an
 * unreadable file. Strings are heap copies freed by kiln_cfg_free. */
kiln_status kiln_cfg_parse(const kiln_cfg_opt *opts, size_t n, int argc, char **argv,
                           kiln_err *err);

/** Prints the -help text: the flags grouped by module (the name before its
 * first '.'), groups in the order they first appear, each flag's help and
 * default (unless empty). */
void kiln_cfg_usage(const kiln_cfg_opt *opts, size_t n, FILE *out);

/** Frees the strings the table holds. */
void kiln_cfg_free(const kiln_cfg_opt *opts, size_t n);

/** Appends the table as the YAML a -config.file reads back (names split at
 * '.' into nested maps, '-' written as '_', sorted by name): the values it
 * holds now, or with defaults set, the defaults. Secrets are masked as
 * "********": options whose name holds password, secret, token or key, and
 * the user information of URLs (nats://user:pass@host). Returns false when
 * out's max is reached. */
bool kiln_cfg_write_yaml(const kiln_cfg_opt *opts, size_t n, bool defaults, kiln_buf *out);

#endif
