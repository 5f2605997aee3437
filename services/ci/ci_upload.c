/* SPDX-License-Identifier: Apache-2.0
 * `kiln ci upload`: each file to /ingest, labelled with where in CI it was made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ci_cmd.h"
#include "xmalloc.h"

const char *kiln_ci_flag(const kiln_ci_args *a, const char *name, const char *def, const char *envs)
{
    for (size_t i = a->n_flags; i-- > 0;)
        if (a->flags[i].name_len == strlen(name) &&
            strncmp(a->flags[i].name, name, a->flags[i].name_len) == 0)
            return a->flags[i].value;
    char env[128];
    while (*envs) {
        size_t n = strcspn(envs, " ");
        snprintf(env, sizeof(env), "%.*s", (int)n, envs);
        const char *v = n ? getenv(env) : NULL;
        if (v && *v)
            return v;
        envs += n + (envs[n] == ' ');
    }
    return def;
}

kiln_ci_conn kiln_ci_conn_from(const kiln_ci_args *a)
{
    kiln_ci_conn c = {
        .url = kiln_ci_flag(a, "url", "http://localhost:4040", "KILN_URL"),
        .token = kiln_ci_flag(a, "token", "", "KILN_TOKEN"),
        .basic = kiln_ci_flag(a, "basic-auth", "", "KILN_BASIC_AUTH"),
        .tenant = kiln_ci_flag(a, "tenant", "", "KILN_TENANT"),
    };
    return c;
}

/* The file's format from its first bytes: gzip or a protobuf field 1 is pprof, "FLR\0" JFR,
 * anything else folded text. */
static const char *sniff(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return "pprof";
    if (n >= 4 && memcmp(p, "FLR", 4) == 0)
        return "jfr";
    if (n >= 1 && p[0] == 0x0a)
        return "pprof";
    return "folded";
}

static int read_file(const char *path, kiln_ci_body *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    kiln_ci_body b = {0};
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        KILN_GROW(b.ptr, b.cap, b.len + n);
        memcpy(b.ptr + b.len, chunk, n);
        b.len += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.ptr);
        return -1;
    }
    *out = b;
    return 0;
}

/* Label values go inside name={k=v,...}: the separators become '_'. */
static void put_label(char *dst, size_t cap, const char *k, const char *v)
{
    if (!v || !*v)
        return;
    size_t len = strlen(dst);
    snprintf(dst + len, cap - len, "%s%s=", dst[len - 1] == '{' ? "" : ",", k);
    len = strlen(dst);
    for (; *v && len + 2 < cap; v++)
        dst[len++] = strchr(",{}=\"", *v) ? '_' : *v;
    dst[len] = 0;
}

/* The run id sorts by time, so the last N runs of a branch are the last N values. */
static void default_run(char *dst, size_t cap)
{
    const char *id = getenv("GITHUB_RUN_ID");
    const char *att = getenv("GITHUB_RUN_ATTEMPT");
    if (!id || !*id)
        id = getenv("CI_PIPELINE_ID");
    if (id && *id)
        snprintf(dst, cap, "%010lld-%s%s%s", (long long)time(NULL), id, att ? "." : "",
                 att ? att : "");
    else
        snprintf(dst, cap, "%010lld-%ld", (long long)time(NULL), (long)getpid());
}

static void series_name(const kiln_ci_args *a, const char *run, char *name, size_t cap)
{
    snprintf(name, cap, "%s{", kiln_ci_flag(a, "service", "ci", "KILN_CI_SERVICE"));
    put_label(name, cap, "ci_repo",
              kiln_ci_flag(a, "repo", "", "GITHUB_REPOSITORY CI_PROJECT_PATH"));
    put_label(name, cap, "ci_branch",
              kiln_ci_flag(a, "branch", "", "GITHUB_HEAD_REF GITHUB_REF_NAME CI_COMMIT_REF_NAME"));
    put_label(name, cap, "ci_commit", kiln_ci_flag(a, "commit", "", "GITHUB_SHA CI_COMMIT_SHA"));
    put_label(name, cap, "ci_job", kiln_ci_flag(a, "job", "", "GITHUB_JOB CI_JOB_NAME"));
    put_label(name, cap, "ci_test", kiln_ci_flag(a, "test", "", ""));
    put_label(name, cap, "ci_run", run);
    size_t len = strlen(name);
    snprintf(name + len, cap - len, "}");
}

static int upload_one(const kiln_ci_conn *c, const kiln_ci_args *a, const char *run,
                      const char *path)
{
    kiln_ci_body file = {0}, reply = {0};
    if (read_file(path, &file) != 0) {
        fprintf(stderr, "kiln ci upload: cannot read %s\n", path);
        return 1;
    }
    const char *fmt = kiln_ci_flag(a, "format", "auto", "");
    if (strcmp(fmt, "auto") == 0)
        fmt = sniff(file.ptr, file.len);
    char name[2048], query[4096];
    series_name(a, run, name, sizeof(name));
    char *ename = kiln_ci_escape(name);
    long long now = (long long)time(NULL);
    snprintf(query, sizeof(query), "/ingest?name=%s&format=%s&from=%lld&until=%lld", ename, fmt,
             now - 10, now);
    free(ename);
    kiln_err err = {KILN_OK, ""};
    kiln_status st =
        kiln_ci_post(c, query, "application/octet-stream", file.ptr, file.len, &reply, &err);
    free(file.ptr);
    free(reply.ptr);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln ci upload: %s: %s\n", path, err.msg);
        return 1;
    }
    fprintf(stderr, "kiln ci upload: %s as %s (%s)\n", path, name, fmt);
    return 0;
}

int kiln_ci_upload(const kiln_ci_args *a)
{
    if (a->n_files == 0) {
        fputs("kiln ci upload: no profile files given\n", stderr);
        return 2;
    }
    char run[256];
    default_run(run, sizeof(run));
    const char *r = kiln_ci_flag(a, "run", run, "");
    kiln_ci_conn c = kiln_ci_conn_from(a);
    int rc = 0;
    for (size_t i = 0; i < a->n_files; i++)
        rc |= upload_one(&c, a, r, a->files[i]);
    return rc;
}
