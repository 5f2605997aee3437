/* SPDX-License-Identifier: Apache-2.0
 * `kiln ci compare`: the runs of each selection from querier.v1 (Connect, proto),
 * one merged profile per run, the statistics, then the report and the verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ci_cmd.h"
#include "ci_report.h"
#include "ci_stats.h"
#include "querier/v1/querier.pb-c.h"
#include "types/v1/types.pb-c.h"
#include "xmalloc.h"

#define MAX_RUNS 200

typedef struct selection {
    const char *service, *ptype, *selector;
    long long start_ms, end_ms;
} selection;

/* {service_name="S",<the selector's matchers>[,ci_run="R"]} */
static void build_selector(const selection *s, const char *run, char *dst, size_t cap)
{
    const char *o = strchr(s->selector, '{'), *c = strrchr(s->selector, '}');
    int inner = o && c && c > o + 1 ? (int)(c - o - 1) : 0;
    snprintf(dst, cap, "{service_name=\"%s\"%s%.*s%s%s%s}", s->service, inner ? "," : "", inner,
             inner ? o + 1 : "", run ? ",ci_run=\"" : "", run ? run : "", run ? "\"" : "");
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The selection's ci_run values, sorted, the last `keep` of them. */
static kiln_status list_runs(const kiln_ci_conn *c, const selection *s, size_t keep, char ***runs,
                             size_t *n_runs, kiln_err *err)
{
    char sel[2048];
    build_selector(s, NULL, sel, sizeof(sel));
    Types__V1__LabelValuesRequest req = TYPES__V1__LABEL_VALUES_REQUEST__INIT;
    char *matchers[1] = {sel};
    req.name = "ci_run";
    req.matchers = matchers;
    req.n_matchers = 1;
    req.start = s->start_ms;
    req.end = s->end_ms;
    uint8_t *buf = kiln_xmalloc(types__v1__label_values_request__get_packed_size(&req) + 1);
    size_t len = types__v1__label_values_request__pack(&req, buf);
    kiln_ci_body reply = {0};
    kiln_status st = kiln_ci_post(c, "/querier.v1.QuerierService/LabelValues", "application/proto",
                                  buf, len, &reply, err);
    free(buf);
    if (st != KILN_OK)
        return st;
    Types__V1__LabelValuesResponse *r =
        types__v1__label_values_response__unpack(NULL, reply.len, reply.ptr);
    free(reply.ptr);
    if (!r)
        return kiln_err_set(err, KILN_INTERNAL, "LabelValues: the reply does not decode");
    size_t n = r->n_names, skip = n > keep ? n - keep : 0;
    char **names = kiln_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        names[i] = kiln_xstrdup(r->names[i]);
    types__v1__label_values_response__free_unpacked(r, NULL);
    if (n > 1)
        qsort(names, n, sizeof(char *), by_str);
    for (size_t i = 0; i < skip; i++)
        free(names[i]);
    memmove(names, names + skip, (n - skip) * sizeof(char *));
    *runs = names;
    *n_runs = n - skip;
    return KILN_OK;
}

static kiln_status fetch_run(const kiln_ci_conn *c, const selection *s, const char *run,
                             kiln_ci_run *out, kiln_err *err)
{
    char sel[2048];
    build_selector(s, run, sel, sizeof(sel));
    Querier__V1__SelectMergeProfileRequest req = QUERIER__V1__SELECT_MERGE_PROFILE_REQUEST__INIT;
    req.profile_typeid = (char *)s->ptype;
    req.label_selector = sel;
    req.start = s->start_ms;
    req.end = s->end_ms;
    uint8_t *buf =
        kiln_xmalloc(querier__v1__select_merge_profile_request__get_packed_size(&req) + 1);
    size_t len = querier__v1__select_merge_profile_request__pack(&req, buf);
    kiln_ci_body reply = {0};
    kiln_status st = kiln_ci_post(c, "/querier.v1.QuerierService/SelectMergeProfile",
                                  "application/proto", buf, len, &reply, err);
    free(buf);
    if (st == KILN_OK)
        st = kiln_ci_run_from_pprof(reply.ptr, reply.len, out, err);
    free(reply.ptr);
    return st;
}

/* Lists the selection's runs and reads each; *runs is owned by the caller. */
static kiln_status fetch_side(const kiln_ci_conn *c, const selection *s, size_t keep,
                              kiln_ci_run **runs, size_t *n, kiln_err *err)
{
    char **names = NULL;
    size_t n_names = 0;
    kiln_status st = list_runs(c, s, keep, &names, &n_names, err);
    if (st != KILN_OK)
        return st;
    kiln_ci_run *out = kiln_xcalloc(n_names + 1, sizeof(*out));
    size_t k = 0;
    for (size_t i = 0; i < n_names; i++) {
        if (st == KILN_OK && fetch_run(c, s, names[i], &out[k], err) == KILN_OK)
            k++;
        else
            st = err->code;
        free(names[i]);
    }
    free(names);
    *runs = out;
    *n = k;
    return st;
}

static void free_runs(kiln_ci_run *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kiln_ci_run_free(&r[i]);
    free(r);
}

/* "90s", "30m", "23h", "7d" or plain seconds, to seconds; 0 when malformed. */
static long long parse_duration(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (v <= 0 || !end)
        return 0;
    switch (*end) {
    case 0:
    case 's':
        return v;
    case 'm':
        return v * 60;
    case 'h':
        return v * 3600;
    case 'd':
        return v * 86400;
    default:
        return 0;
    }
}

/* Percent flags take "10" or "10%"; returns a fraction, or -1 when malformed. */
static double parse_pct(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || (*end && strcmp(end, "%") != 0) || v < 0)
        return -1;
    return v / 100.0;
}

typedef struct gate {
    kiln_ci_opts opts;
    const char *fn_names[KILN_CI_MAX_ARGS];
    double fn_thresholds[KILN_CI_MAX_ARGS];
    selection base, cur;
    size_t base_runs, cur_runs, top;
} gate;

static int fn_thresholds(const kiln_ci_args *a, gate *g)
{
    size_t n = 0;
    g->opts.fn_names = g->fn_names;
    g->opts.fn_thresholds = g->fn_thresholds;
    for (size_t i = 0; i < a->n_flags; i++) {
        if (a->flags[i].name_len != 18 || strncmp(a->flags[i].name, "function-threshold", 18) != 0)
            continue;
        const char *v = a->flags[i].value, *eq = strrchr(v, '=');
        double t = eq ? parse_pct(eq + 1) : -1;
        if (t < 0) {
            fprintf(stderr, "kiln ci compare: --function-threshold wants NAME=PCT, not %s\n", v);
            return -1;
        }
        g->fn_names[n] = kiln_xstrndup(v, (size_t)(eq - v));
        g->fn_thresholds[n++] = t;
        g->opts.n_fn_thresholds = n; /* the caller frees what is counted */
    }
    return 0;
}

static int gate_from_args(const kiln_ci_args *a, gate *g)
{
    g->opts.threshold = parse_pct(kiln_ci_flag(a, "threshold", "10", ""));
    g->opts.alpha = strtod(kiln_ci_flag(a, "alpha", "0.05", ""), NULL);
    g->opts.min_share = parse_pct(kiln_ci_flag(a, "min-share", "1", ""));
    g->opts.min_delta = parse_pct(kiln_ci_flag(a, "min-delta", "1", ""));
    const char *pt = kiln_ci_flag(a, "profile-threshold", "", "");
    g->opts.profile_threshold = *pt ? parse_pct(pt) : 0;
    long long since = parse_duration(kiln_ci_flag(a, "since", "23h", ""));
    long long now_ms = (long long)time(NULL) * 1000;
    selection s = {
        .service = kiln_ci_flag(a, "service", "ci", "KILN_CI_SERVICE"),
        .ptype = kiln_ci_flag(a, "profile-type", "process_cpu:cpu:nanoseconds:cpu:nanoseconds", ""),
        .start_ms = now_ms - since * 1000,
        .end_ms = now_ms + 60000};
    g->base = g->cur = s;
    g->base.selector = kiln_ci_flag(a, "baseline", "{ci_branch=\"main\"}", "");
    g->cur.selector = kiln_ci_flag(a, "current", "", "");
    g->base_runs = strtoul(kiln_ci_flag(a, "baseline-runs", "10", ""), NULL, 10);
    g->cur_runs = strtoul(kiln_ci_flag(a, "current-runs", "10", ""), NULL, 10);
    g->top = strtoul(kiln_ci_flag(a, "top", "10", ""), NULL, 10);
    if (g->opts.threshold < 0 || g->opts.min_share < 0 || g->opts.min_delta < 0 ||
        g->opts.profile_threshold < 0 || g->opts.alpha <= 0 || g->opts.alpha >= 1 || since <= 0 ||
        !*g->cur.selector || g->base_runs == 0 || g->cur_runs == 0 || g->base_runs > MAX_RUNS ||
        g->cur_runs > MAX_RUNS) {
        fputs("kiln ci compare: --current is required; --threshold, --min-share, --alpha, "
              "--since and the run counts must be valid (kiln ci help)\n",
              stderr);
        return -1;
    }
    return fn_thresholds(a, g);
}

/* Kiln's UI diff view (docs/ui.md: view=diff, query/from/until and query2/from2/until2). */
static char *diff_url(const char *ui, const gate *g)
{
    char qb[2048], qc[2048], url[8192];
    build_selector(&g->base, NULL, qb, sizeof(qb));
    build_selector(&g->cur, NULL, qc, sizeof(qc));
    char *eb = kiln_ci_escape(qb), *ec = kiln_ci_escape(qc), *et = kiln_ci_escape(g->base.ptype);
    snprintf(url, sizeof(url),
             "%s/?view=diff&type=%s&query=%s&from=%lld&until=%lld&query2=%s&from2=%lld&until2=%lld",
             ui, et, eb, g->base.start_ms, g->base.end_ms, ec, g->cur.start_ms, g->cur.end_ms);
    free(eb);
    free(ec);
    free(et);
    return kiln_xstrdup(url);
}

static int write_outputs(const kiln_ci_args *a, const gate *g, const kiln_ci_row *rows, size_t n,
                         size_t nb, size_t nc)
{
    kiln_ci_conn c = kiln_ci_conn_from(a);
    char *link = diff_url(kiln_ci_flag(a, "ui-url", c.url, ""), g);
    kiln_ci_report_info info = {g->base.selector, g->cur.selector, nb, nc, link, g->top};
    const char *rep = kiln_ci_flag(a, "report", "", ""), *junit = kiln_ci_flag(a, "junit", "", "");
    FILE *f = *rep ? fopen(rep, "w") : stdout;
    int rc = 0;
    if (f) {
        kiln_ci_report_markdown(f, rows, n, &info);
        if (f != stdout)
            fclose(f);
    } else
        rc = -1;
    if (*junit && (f = fopen(junit, "w")) != NULL) {
        kiln_ci_report_junit(f, rows, n, &info);
        fclose(f);
    } else if (*junit)
        rc = -1;
    if (rc)
        fputs("kiln ci compare: cannot write the report or the JUnit file\n", stderr);
    free(link);
    return rc;
}

int kiln_ci_compare_cmd(const kiln_ci_args *a)
{
    gate *g = kiln_xcalloc(1, sizeof(*g));
    kiln_ci_run *base = NULL, *cur = NULL;
    size_t nb = 0, nc = 0, n_rows = 0;
    kiln_ci_row *rows = NULL;
    kiln_err err = {KILN_OK, ""};
    int rc = 2;
    if (gate_from_args(a, g) != 0)
        goto out;
    kiln_ci_conn c = kiln_ci_conn_from(a);
    if (fetch_side(&c, &g->base, g->base_runs, &base, &nb, &err) != KILN_OK ||
        fetch_side(&c, &g->cur, g->cur_runs, &cur, &nc, &err) != KILN_OK) {
        fprintf(stderr, "kiln ci compare: %s\n", err.msg);
        goto out;
    }
    if (nb < 2 || nc < 2)
        fprintf(stderr,
                "kiln ci compare: %zu baseline and %zu current runs: a test over runs "
                "needs at least 2 on each side (4 to be significant at 0.05)\n",
                nb, nc);
    kiln_ci_compare(base, nb, cur, nc, &g->opts, &rows, &n_rows);
    if (write_outputs(a, g, rows, n_rows, nb, nc) != 0)
        goto out;
    rc = kiln_ci_regressions(rows, n_rows) ? 1 : 0;
out:
    free(rows);
    free_runs(base, nb);
    free_runs(cur, nc);
    for (size_t i = 0; i < g->opts.n_fn_thresholds; i++)
        free((char *)g->fn_names[i]);
    free(g);
    return rc;
}
