/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the -help text (config usage): grouped by module, each
 * default printed once; sizes with suffixes, and "auto" kept as such. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static char *s_dir, *s_addr, *s_target;
static int s_port;

static const kiln_cfg_opt opts[] = {
    {"target", KILN_CFG_STRING, &s_target, "all", "module set"},
    {"server.http-listen-port", KILN_CFG_INT, &s_port, "4040", "HTTP listen port"},
    {"storage.filesystem.dir", KILN_CFG_STRING, &s_dir, "",
     "object store directory (default <storage.path>/bucket)"},
    {"server.http-listen-address", KILN_CFG_STRING, &s_addr, "", "HTTP listen address"},
    {"cluster.advertise-address", KILN_CFG_STRING, &s_addr, "",
     "address others reach this one at (default: the listen address)"},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* The usage text, in a heap string the caller frees. */
static char *usage_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    kiln_cfg_usage(opts, N_OPTS, f);
    fclose(f);
    return text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

TEST(default_once)
{
    char *text = usage_text();
    /* A flag whose help explains its empty default says "default" once. */
    const char *dir = strstr(text, "-storage.filesystem.dir");
    CHECK(dir != NULL);
    if (dir != NULL) {
        const char *end = strstr(dir + 1, "\n  -");
        char line[512];
        snprintf(line, sizeof(line), "%.*s", end ? (int)(end - dir) : (int)strlen(dir), dir);
        CHECK_EQ(count(line, "default"), 1);
    }
    CHECK_EQ(count(text, "(default \"\")"), 0);
    CHECK(strstr(text, "HTTP listen port (default \"4040\")") != NULL);
    free(text);
}

TEST(grouped_by_module)
{
    char *text = usage_text();
    const char *general = strstr(text, "\ngeneral:\n");
    const char *server = strstr(text, "\nserver:\n");
    const char *storage = strstr(text, "\nstorage:\n");
    const char *cluster = strstr(text, "\ncluster:\n");
    CHECK(general && server && storage && cluster);
    CHECK_EQ(count(text, "\nserver:\n"), 1);
    /* Groups in first-appearance order; both server flags under server:. */
    CHECK(general < server && server < storage && storage < cluster);
    const char *port = strstr(text, "-server.http-listen-port");
    const char *addr = strstr(text, "-server.http-listen-address");
    CHECK(server < port && port < storage && server < addr && addr < storage);
    CHECK(strstr(text, "-version") != NULL);
    free(text);
}

/* A size takes its suffixes, or "auto" (KILN_CFG_SIZE_AUTO, for its owner
 * to derive), which the YAML writes back as "auto". */
TEST(size_auto_and_suffixes)
{
    size_t budget = 0;
    const kiln_cfg_opt o[] = {{"ingester.max-head-bytes", KILN_CFG_SIZE, &budget, "auto", ""}};
    char *none[] = {"kiln"};
    CHECK_OK(kiln_cfg_parse(o, 1, 1, none, NULL));
    CHECK(budget == KILN_CFG_SIZE_AUTO);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK(kiln_cfg_write_yaml(o, 1, false, &b));
    kiln_buf_putc(&b, '\0');
    CHECK(strstr(b.ptr, "max_head_bytes: auto") != NULL);
    kiln_buf_free(&b);
    char *set[] = {"kiln", "-ingester.max-head-bytes=64MiB"};
    CHECK_OK(kiln_cfg_parse(o, 1, 2, set, NULL));
    CHECK_EQ(budget, (size_t)64 << 20);
    char *off[] = {"kiln", "-ingester.max-head-bytes=0"};
    CHECK_OK(kiln_cfg_parse(o, 1, 2, off, NULL));
    CHECK_EQ(budget, 0);
    char *bad[] = {"kiln", "-ingester.max-head-bytes=lots"};
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(kiln_cfg_parse(o, 1, 2, bad, &err), KILN_INVALID_ARGUMENT);
    kiln_cfg_free(o, 1);
}

int main(void)
{
    RUN(default_once);
    RUN(grouped_by_module);
    RUN(size_auto_and_suffixes);
    return check_done();
}
