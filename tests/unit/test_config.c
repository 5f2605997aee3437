/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the -help text (config usage): grouped by module, each
 * default printed once. */
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

int main(void)
{
    RUN(default_once);
    RUN(grouped_by_module);
    return check_done();
}
