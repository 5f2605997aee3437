/* SPDX-License-Identifier: Apache-2.0
 * config: defaults < YAML file < environment < flags. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "overrides.h"
#include "xmalloc.h"

static const kiln_cfg_opt *find(const kiln_cfg_opt *o, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(o[i].name) == len && strncmp(o[i].name, name, len) == 0)
            return &o[i];
    }
    return NULL;
}

/* Sizes accept a unit suffix: 4MiB, 256MB, 1GiB, 512KiB, or plain bytes;
 * or "auto", for the owner to derive. */
static bool parse_size(const char *v, size_t *out)
{
    if (strcmp(v, "auto") == 0) {
        *out = KILN_CFG_SIZE_AUTO;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v)
        return false;
    static const struct {
        const char *sfx;
        unsigned long long mul;
    } units[] = {{"", 1},         {"B", 1},         {"KB", 1000},          {"KiB", 1024},
                 {"MB", 1000000}, {"MiB", 1 << 20}, {"GB", 1000000000ull}, {"GiB", 1ull << 30}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].sfx) == 0) {
            *out = (size_t)(x * units[i].mul);
            return true;
        }
    }
    return false;
}

static kiln_status set(const kiln_cfg_opt *o, const char *v, kiln_err *err)
{
    char *end;
    switch (o->type) {
    case KILN_CFG_STRING:
        free(*(char **)o->ptr);
        *(char **)o->ptr = kiln_xstrdup(v);
        return KILN_OK;
    case KILN_CFG_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || x < -2147483647L || x > 2147483647L)
            break;
        *(int *)o->ptr = (int)x;
        return KILN_OK;
    }
    case KILN_CFG_SIZE:
        if (!parse_size(v, (size_t *)o->ptr))
            break;
        return KILN_OK;
    case KILN_CFG_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end != '\0')
            break;
        *(double *)o->ptr = x;
        return KILN_OK;
    }
    case KILN_CFG_DURATION:
        if (!kiln_parse_duration(v, (int64_t *)o->ptr))
            break;
        return KILN_OK;
    case KILN_CFG_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)o->ptr = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)o->ptr = false;
        else
            break;
        return KILN_OK;
    }
    return kiln_err_set(err, KILN_INVALID_ARGUMENT, "invalid value \"%s\" for -%s", v, o->name);
}

/* The module a flag belongs to: its name up to the first '.', or
 * "general" for the flags without one. */
static size_t group_of(const char *name, const char **group)
{
    const char *dot = strchr(name, '.');
    *group = dot != NULL ? name : "general";
    return dot != NULL ? (size_t)(dot - name) : strlen("general");
}

static bool same_group(const char *a, const char *b)
{
    const char *ga, *gb;
    size_t la = group_of(a, &ga), lb = group_of(b, &gb);
    return la == lb && strncmp(ga, gb, la) == 0;
}

/* A flag's default is shown unless it is empty (as Go's flag package
 * leaves out zero values): a help text that explains an empty default
 * then says it once. */
static void usage_flag(const kiln_cfg_opt *o, FILE *out)
{
    fprintf(out, "  -%s\n\t%s", o->name, o->help);
    if (*o->def != '\0')
        fprintf(out, " (default \"%s\")", o->def);
    fputc('\n', out);
}

void kiln_cfg_usage(const kiln_cfg_opt *o, size_t n, FILE *out)
{
    fprintf(out, "Usage: kiln [flags]\n  -version\n\tprint the version, commit and build date\n"
                 "\nFlags by module (also settable in the YAML -config.file and as "
                 "KILN_<NAME> environment variables):\n");
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = same_group(o[k].name, o[i].name);
        if (seen)
            continue;
        const char *g;
        size_t len = group_of(o[i].name, &g);
        fprintf(out, "\n%.*s:\n", (int)len, g);
        for (size_t k = i; k < n; k++) {
            if (same_group(o[k].name, o[i].name))
                usage_flag(&o[k], out);
        }
    }
}

static void env_name(const char *name, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *p = "KILN_"; *p && j + 1 < cap; p++)
        out[j++] = *p;
    for (const char *p = name; *p && j + 1 < cap; p++)
        out[j++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    out[j] = '\0';
}

/* Walks a YAML mapping, joining nested keys with '.' and mapping '_' to '-'. */
static kiln_status yaml_map(yaml_document_t *doc, yaml_node_t *node, const char *prefix,
                            const kiln_cfg_opt *o, size_t n, kiln_err *err)
{
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
            continue;
        char key[256];
        snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "",
                 (char *)k->data.scalar.value);
        for (char *c = key; *c; c++)
            *c = *c == '_' ? '-' : *c;
        kiln_status st = KILN_OK;
        if (v->type == YAML_MAPPING_NODE) {
            st = yaml_map(doc, v, key, o, n, err);
        } else if (v->type == YAML_SCALAR_NODE) {
            const kiln_cfg_opt *opt = find(o, n, key, strlen(key));
            st = opt ? set(opt, (char *)v->data.scalar.value, err)
                     : kiln_err_set(err, KILN_INVALID_ARGUMENT, "config file: unknown key %s", key);
        }
        if (st != KILN_OK)
            return st;
    }
    return KILN_OK;
}

static kiln_status load_yaml(const char *path, const kiln_cfg_opt *o, size_t n, kiln_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "cannot open config file %s: %s", path,
                            strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    kiln_status st = KILN_OK;
    if (!yaml_parser_load(&parser, &doc)) {
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "config file %s: %s at line %zu", path,
                          parser.problem ? parser.problem : "parse error",
                          parser.problem_mark.line + 1);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root != NULL && root->type == YAML_MAPPING_NODE)
            st = yaml_map(&doc, root, "", o, n, err);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return st;
}

/* Splits "-name=value" / "--name value"; returns the index of the next argument. */
static int flag_at(char **argv, int argc, int i, const char **name, size_t *nlen, const char **val)
{
    const char *a = argv[i] + 1;
    if (*a == '-')
        a++;
    const char *eq = strchr(a, '=');
    *name = a;
    *nlen = eq ? (size_t)(eq - a) : strlen(a);
    *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    return eq ? i + 1 : i + 2;
}

static kiln_status apply_flags(const kiln_cfg_opt *o, size_t n, int argc, char **argv,
                               bool file_pass, kiln_err *err)
{
    for (int i = 1; i < argc;) {
        if (argv[i][0] != '-')
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "unexpected argument \"%s\"", argv[i]);
        const char *name, *val;
        size_t nlen;
        if (strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "-h") == 0 ||
            strcmp(argv[i], "--help") == 0) {
            kiln_cfg_usage(o, n, stdout);
            return KILN_CANCELLED;
        }
        int next = flag_at(argv, argc, i, &name, &nlen, &val);
        const kiln_cfg_opt *opt = find(o, n, name, nlen);
        if (opt == NULL)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "flag provided but not defined: -%.*s",
                                (int)nlen, name);
        if (opt->type == KILN_CFG_BOOL && strchr(argv[i], '=') == NULL) {
            val = "true";
            next = i + 1;
        }
        if (val == NULL)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "flag needs an argument: -%s",
                                opt->name);
        bool is_file = strcmp(opt->name, "config.file") == 0;
        if (is_file == file_pass) {
            kiln_status st = set(opt, val, err);
            if (st != KILN_OK)
                return st;
        }
        i = next;
    }
    return KILN_OK;
}

kiln_status kiln_cfg_parse(const kiln_cfg_opt *o, size_t n, int argc, char **argv, kiln_err *err)
{
    for (size_t i = 0; i < n; i++) {
        kiln_status st = set(&o[i], o[i].def, err);
        if (st != KILN_OK)
            return st;
    }
    /* The file is named on the command line but ranks below it: read it first. */
    kiln_status st = apply_flags(o, n, argc, argv, true, err);
    const kiln_cfg_opt *file = find(o, n, "config.file", 11);
    if (st == KILN_OK && file != NULL && **(char **)file->ptr != '\0')
        st = load_yaml(*(char **)file->ptr, o, n, err);
    for (size_t i = 0; st == KILN_OK && i < n; i++) {
        char env[256];
        env_name(o[i].name, env, sizeof(env));
        const char *v = getenv(env);
        if (v != NULL)
            st = set(&o[i], v, err);
    }
    return st == KILN_OK ? apply_flags(o, n, argc, argv, false, err) : st;
}

void kiln_cfg_free(const kiln_cfg_opt *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o[i].type == KILN_CFG_STRING) {
            free(*(char **)o[i].ptr);
            *(char **)o[i].ptr = NULL;
        }
    }
}

/* ---- YAML output (status.v1 config) ---- */

#define MASK "********"

/* Whether an option holds a secret by its name (a component word). */
static bool secret_name(const char *name)
{
    static const char *const words[] = {"password", "secret", "token", "key"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strstr(name, words[i]) != NULL)
            return true;
    }
    return false;
}

/* Appends s[0..n) escaped for a double-quoted YAML scalar (control bytes
 * dropped). */
static void write_escaped(kiln_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            kiln_buf_putc(out, '\\');
        if ((unsigned char)s[i] >= 0x20)
            kiln_buf_putc(out, s[i]);
    }
}

/* Writes s as a double-quoted YAML scalar, the user information of each
 * comma-separated URL in it ("scheme://user:pass@host") masked. */
static void write_masked_string(kiln_buf *out, const char *s)
{
    kiln_buf_putc(out, '"');
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        const char *scheme = memmem(p, len, "://", 3);
        const char *at = scheme ? memchr(scheme, '@', (size_t)(end - scheme)) : NULL;
        if (at != NULL) {
            write_escaped(out, p, (size_t)(scheme + 3 - p));
            kiln_buf_puts(out, MASK);
            write_escaped(out, at, (size_t)(end - at));
        } else {
            write_escaped(out, p, len);
        }
        if (*end == '\0')
            break;
        kiln_buf_putc(out, ',');
        p = end + 1;
    }
    kiln_buf_putc(out, '"');
}

/* A duration as Go prints the largest unit that divides it (90s -> 90s,
 * 2m, 1h, 7d as 168h), so it reads back through kiln_parse_duration. */
static void write_duration(kiln_buf *out, int64_t ns)
{
    static const struct {
        const char *sfx;
        int64_t ns;
    } u[] = {{"h", 3600000000000}, {"m", 60000000000}, {"s", 1000000000}, {"ms", 1000000}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        if (ns != 0 && ns % u[i].ns == 0) {
            kiln_buf_printf(out, "%lld%s", (long long)(ns / u[i].ns), u[i].sfx);
            return;
        }
    }
    kiln_buf_printf(out, ns == 0 ? "0s" : "%lldns", (long long)ns);
}

static void write_value(kiln_buf *out, const kiln_cfg_opt *o, bool defaults)
{
    if (defaults) {
        bool quote = o->type == KILN_CFG_STRING;
        if (quote)
            write_masked_string(out, o->def);
        else
            kiln_buf_puts(out, o->def);
        return;
    }
    switch (o->type) {
    case KILN_CFG_STRING: {
        const char *s = *(char *const *)o->ptr;
        write_masked_string(out, s ? s : "");
        break;
    }
    case KILN_CFG_INT:
        kiln_buf_printf(out, "%d", *(const int *)o->ptr);
        break;
    case KILN_CFG_SIZE:
        if (*(const size_t *)o->ptr == KILN_CFG_SIZE_AUTO)
            kiln_buf_puts(out, "auto");
        else
            kiln_buf_printf(out, "%zu", *(const size_t *)o->ptr);
        break;
    case KILN_CFG_BOOL:
        kiln_buf_puts(out, *(const bool *)o->ptr ? "true" : "false");
        break;
    case KILN_CFG_DOUBLE:
        kiln_buf_printf(out, "%g", *(const double *)o->ptr);
        break;
    case KILN_CFG_DURATION:
        write_duration(out, *(const int64_t *)o->ptr);
        break;
    }
}

static int cmp_opt(const void *a, const void *b)
{
    return strcmp((*(const kiln_cfg_opt *const *)a)->name, (*(const kiln_cfg_opt *const *)b)->name);
}

/* Length of the component of name starting at p (up to '.' or the end). */
static size_t component(const char *p)
{
    return strcspn(p, ".");
}

/* Writes o's key path below the components it shares with prev. */
static void write_keys(kiln_buf *out, const char *prev, const char *name)
{
    int depth = 0;
    const char *p = name, *q = prev;
    while (q != NULL && component(p) == component(q) && strncmp(p, q, component(p)) == 0 &&
           p[component(p)] == '.' && q[component(q)] == '.') {
        p += component(p) + 1;
        q += component(q) + 1;
        depth++;
    }
    for (;;) {
        size_t n = component(p);
        kiln_buf_printf(out, "%*s", depth * 2, "");
        for (size_t i = 0; i < n; i++)
            kiln_buf_putc(out, p[i] == '-' ? '_' : p[i]);
        kiln_buf_putc(out, ':');
        if (p[n] == '\0')
            break;
        kiln_buf_putc(out, '\n');
        p += n + 1;
        depth++;
    }
    kiln_buf_putc(out, ' ');
}

bool kiln_cfg_write_yaml(const kiln_cfg_opt *opts, size_t n, bool defaults, kiln_buf *out)
{
    const kiln_cfg_opt **sorted = kiln_xcalloc(n ? n : 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = &opts[i];
    qsort(sorted, n, sizeof(*sorted), cmp_opt);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const kiln_cfg_opt *o = sorted[i];
        write_keys(out, i > 0 ? sorted[i - 1]->name : NULL, o->name);
        const char *v = o->type == KILN_CFG_STRING ? *(char *const *)o->ptr : NULL;
        if (secret_name(o->name) && v != NULL && *v != '\0')
            kiln_buf_puts(out, "\"" MASK "\"");
        else
            write_value(out, o, defaults);
        ok = kiln_buf_putc(out, '\n');
    }
    free(sorted);
    return ok;
}
