/* SPDX-License-Identifier: Apache-2.0
 * Unit tests of the CI gate's statistics and reports (services/ci). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ci_report.h"
#include "ci_stats.h"
#include "google/v1/profile.pb-c.h"

TEST(mann_whitney_separated)
{
    double x[] = {1, 2, 3, 4, 5}, y[] = {6, 7, 8, 9};
    double p = kiln_ci_mann_whitney(x, 5, y, 4);
    printf("  p(separated 5 vs 4) = %.5f\n", p);
    CHECK(p > 0.019 && p < 0.021);                             /* U = 20, z = 9.5 / sqrt(50/3) */
    CHECK(fabs(kiln_ci_mann_whitney(y, 4, x, 5) - p) < 1e-12); /* two-sided: symmetric */
    /* docs/ci.md: 3 against 3 cannot reach 0.05 however clean; 5 against 3 can. */
    CHECK(kiln_ci_mann_whitney(x, 3, y, 3) > 0.05);
    CHECK(kiln_ci_mann_whitney(x, 5, y, 3) < 0.05);
}

TEST(mann_whitney_overlap_ties_empty)
{
    double x[] = {1, 3, 5}, y[] = {2, 4, 6}, same[] = {1, 1, 1};
    double p = kiln_ci_mann_whitney(x, 3, y, 3);
    CHECK(p > 0.6 && p < 0.7); /* U = 6 of 9 */
    CHECK(kiln_ci_mann_whitney(same, 3, same, 3) == 1.0);
    CHECK(kiln_ci_mann_whitney(x, 0, y, 3) == 1.0);
    CHECK(kiln_ci_mann_whitney(x, 3, y, 0) == 1.0);
}

static const kiln_ci_fn *fn(const kiln_ci_run *r, const char *name)
{
    for (size_t i = 0; i < r->n_fns; i++)
        if (strcmp(r->fns[i].name, name) == 0)
            return &r->fns[i];
    return NULL;
}

TEST(shares_self_total_recursion)
{
    kiln_ci_run r = {0};
    const char *s1[] = {"a", "main"}, *s2[] = {"b", "main"}, *s3[] = {"a", "a", "main"};
    kiln_ci_run_add_stack(&r, s1, 2, 2);
    kiln_ci_run_add_stack(&r, s2, 2, 1);
    kiln_ci_run_add_stack(&r, s3, 3, 1);
    kiln_ci_run_normalise(&r);
    CHECK_EQ(r.n_fns, 3);
    CHECK(r.value == 4);
    CHECK(fabs(fn(&r, "a")->self - 0.75) < 1e-9);
    CHECK(fabs(fn(&r, "a")->total - 0.75) < 1e-9); /* recursion counts once */
    CHECK(fabs(fn(&r, "main")->total - 1.0) < 1e-9);
    CHECK(fn(&r, "main")->self == 0);
    kiln_ci_run_free(&r);
}

/* A run whose stacks give alpha, beta and gamma the weights given, all under main. */
static kiln_ci_run weighted(double alpha, double beta, double gamma)
{
    kiln_ci_run r = {0};
    const char *a[] = {"alpha", "main"}, *b[] = {"beta", "main"}, *g[] = {"gamma", "main"};
    kiln_ci_run_add_stack(&r, a, 2, alpha);
    kiln_ci_run_add_stack(&r, b, 2, beta);
    kiln_ci_run_add_stack(&r, g, 2, gamma);
    kiln_ci_run_normalise(&r);
    return r;
}

static const kiln_ci_row *row(const kiln_ci_row *rows, size_t n, const char *name, kiln_ci_metric m)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0 && rows[i].metric == m)
            return &rows[i];
    return NULL;
}

static const kiln_ci_opts defaults = {
    .threshold = 0.10, .alpha = 0.05, .min_share = 0.01, .min_delta = 0.01};

/* Five baseline runs and four current ones; `slow` doubles beta in the current runs. */
static void runs(kiln_ci_run *base, kiln_ci_run *cur, double slow)
{
    static const double jitter[] = {0.00, 0.02, -0.01, 0.015, -0.02};
    for (int i = 0; i < 5; i++)
        base[i] = weighted(1 + jitter[i], 1 - jitter[i], 1);
    for (int i = 0; i < 4; i++)
        cur[i] = weighted(1 - jitter[i], slow * (1 + jitter[i + 1]), 1);
}

static void free_all(kiln_ci_run *base, kiln_ci_run *cur)
{
    for (int i = 0; i < 5; i++)
        kiln_ci_run_free(&base[i]);
    for (int i = 0; i < 4; i++)
        kiln_ci_run_free(&cur[i]);
}

TEST(compare_flags_the_slowed_function)
{
    kiln_ci_run base[5], cur[4];
    runs(base, cur, 2.0);
    kiln_ci_row *rows = NULL;
    size_t n = 0;
    kiln_ci_compare(base, 5, cur, 4, &defaults, &rows, &n);
    const kiln_ci_row *b = row(rows, n, "beta", KILN_CI_SELF);
    CHECK(b && b->regression && b->change > 0.4 && b->p < 0.05);
    CHECK(row(rows, n, "alpha", KILN_CI_TOTAL)->improvement);
    CHECK(!row(rows, n, "main", KILN_CI_TOTAL)->regression);
    CHECK_EQ(kiln_ci_regressions(rows, n), 2); /* beta self and total */
    CHECK_STR(rows[0].name, "beta");           /* largest increase first */
    free(rows);
    free_all(base, cur);
}

TEST(compare_noise_only_passes)
{
    kiln_ci_run base[5], cur[4];
    runs(base, cur, 1.0);
    kiln_ci_row *rows = NULL;
    size_t n = 0;
    kiln_ci_compare(base, 5, cur, 4, &defaults, &rows, &n);
    CHECK_EQ(kiln_ci_regressions(rows, n), 0);
    free(rows);
    free_all(base, cur);
}

TEST(compare_thresholds)
{
    kiln_ci_run base[5], cur[4];
    runs(base, cur, 2.0);
    const char *names[] = {"beta"};
    double th[] = {1.0}; /* beta may double */
    kiln_ci_opts o = defaults;
    o.fn_names = names;
    o.fn_thresholds = th;
    o.n_fn_thresholds = 1;
    o.profile_threshold = 0.2;
    kiln_ci_row *rows = NULL;
    size_t n = 0;
    kiln_ci_compare(base, 5, cur, 4, &o, &rows, &n);
    CHECK(!row(rows, n, "beta", KILN_CI_SELF)->regression);
    CHECK(row(rows, n, "beta", KILN_CI_SELF)->threshold == 1.0);
    const kiln_ci_row *whole = row(rows, n, "(whole profile)", KILN_CI_PROFILE);
    CHECK(whole && whole->regression); /* 3 -> ~4 units per run: +33% */
    free(rows);
    o.min_share = 0.5; /* only main (100%) is left */
    kiln_ci_compare(base, 5, cur, 4, &o, &rows, &n);
    CHECK(row(rows, n, "alpha", KILN_CI_SELF) == NULL);
    CHECK(row(rows, n, "main", KILN_CI_TOTAL) != NULL);
    free(rows);
    free_all(base, cur);
}

/* pprof with main -> work (leaf, inlined helper on the same location) and main alone. */
TEST(run_from_pprof)
{
    char *strs[] = {"", "samples", "count", "cpu", "nanoseconds", "main", "work", "helper"};
    Google__V1__Function f[3];
    Google__V1__Function *fp[3];
    for (int i = 0; i < 3; i++) {
        google__v1__function__init(&f[i]);
        f[i].id = (uint64_t)i + 1;
        f[i].name = 5 + i;
        fp[i] = &f[i];
    }
    Google__V1__Line l1 = GOOGLE__V1__LINE__INIT, l2 = GOOGLE__V1__LINE__INIT,
                     l3 = GOOGLE__V1__LINE__INIT;
    l1.function_id = 1; /* main */
    l2.function_id = 3; /* helper, inlined into work */
    l3.function_id = 2;
    Google__V1__Line *main_lines[] = {&l1}, *work_lines[] = {&l2, &l3};
    Google__V1__Location loc[2], *lp[] = {&loc[0], &loc[1]};
    google__v1__location__init(&loc[0]);
    google__v1__location__init(&loc[1]);
    loc[0].id = 1, loc[0].line = main_lines, loc[0].n_line = 1;
    loc[1].id = 2, loc[1].line = work_lines, loc[1].n_line = 2;
    uint64_t st1[] = {2, 1}, st2[] = {1};
    int64_t v1[] = {3, 30}, v2[] = {1, 10};
    Google__V1__Sample s[2], *sp[] = {&s[0], &s[1]};
    google__v1__sample__init(&s[0]);
    google__v1__sample__init(&s[1]);
    s[0].location_id = st1, s[0].n_location_id = 2, s[0].value = v1, s[0].n_value = 2;
    s[1].location_id = st2, s[1].n_location_id = 1, s[1].value = v2, s[1].n_value = 2;
    Google__V1__Profile p = GOOGLE__V1__PROFILE__INIT;
    p.string_table = strs, p.n_string_table = 8;
    p.function = fp, p.n_function = 3;
    p.location = lp, p.n_location = 2;
    p.sample = sp, p.n_sample = 2;
    uint8_t buf[1024];
    size_t len = google__v1__profile__pack(&p, buf);
    kiln_ci_run r = {0};
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_ci_run_from_pprof(buf, len, &r, &err));
    CHECK(r.value == 40); /* the last sample type */
    CHECK(fabs(fn(&r, "helper")->self - 0.75) < 1e-9);
    CHECK(fn(&r, "work")->self == 0);
    CHECK(fabs(fn(&r, "work")->total - 0.75) < 1e-9);
    CHECK(fabs(fn(&r, "main")->self - 0.25) < 1e-9);
    CHECK(fabs(fn(&r, "main")->total - 1.0) < 1e-9);
    kiln_ci_run_free(&r);
    CHECK_EQ(kiln_ci_run_from_pprof((const uint8_t *)"\xff\xff\xff", 3, &r, &err),
             KILN_INVALID_ARGUMENT);
}

TEST(reports)
{
    kiln_ci_row rows[] = {
        {.name = "pkg.(*T).slow<int>",
         .metric = KILN_CI_SELF,
         .base = 0.2,
         .cur = 0.4,
         .change = 1.0,
         .p = 0.02,
         .threshold = 0.1,
         .regression = 1},
        {.name = "a|b",
         .metric = KILN_CI_TOTAL,
         .base = 0.3,
         .cur = 0.2,
         .change = -0.33,
         .p = 0.03,
         .threshold = 0.1,
         .improvement = 1},
    };
    kiln_ci_report_info info = {
        "{ci_branch=\"main\"}", "{ci_branch=\"pr\"}", 5, 4, "http://k/?view=diff", 10};
    char *md = NULL, *xml = NULL;
    size_t md_len = 0, xml_len = 0;
    FILE *f = open_memstream(&md, &md_len);
    kiln_ci_report_markdown(f, rows, 2, &info);
    fclose(f);
    f = open_memstream(&xml, &xml_len);
    kiln_ci_report_junit(f, rows, 2, &info);
    fclose(f);
    CHECK(strstr(md, "FAILED") != NULL);
    CHECK(strstr(md, "| `pkg.(*T).slow<int>` | self | 20.00% | 40.00% | +100.0% | 98.0% "
                     "(p=0.02) | **regression** |") != NULL);
    CHECK(strstr(md, "a\\|b") != NULL); /* a pipe would split the cell */
    CHECK(strstr(md, "[Open the diff in Kiln](http://k/?view=diff)") != NULL);
    CHECK(strstr(xml, "failures=\"1\"") != NULL);
    CHECK(strstr(xml, "name=\"pkg.(*T).slow&lt;int&gt;\"><failure") != NULL);
    CHECK(strstr(xml, "name=\"a|b\"></testcase>") != NULL);
    free(md);
    free(xml);
}

int main(void)
{
    RUN(mann_whitney_separated);
    RUN(mann_whitney_overlap_ties_empty);
    RUN(shares_self_total_recursion);
    RUN(compare_flags_the_slowed_function);
    RUN(compare_noise_only_passes);
    RUN(compare_thresholds);
    RUN(run_from_pprof);
    RUN(reports);
    return check_done();
}
