/* SPDX-License-Identifier: Apache-2.0
 * Markdown and JUnit XML from the gate's rows (ci_report.h). */
#include "ci_report.h"

#include <math.h>

static const char *metric_name(kiln_ci_metric m)
{
    return m == KILN_CI_SELF ? "self" : m == KILN_CI_TOTAL ? "total" : "value";
}

/* Shares print as percentages; the whole profile's value as a plain number. */
static void print_value(FILE *f, const kiln_ci_row *r, double v)
{
    if (r->metric == KILN_CI_PROFILE)
        fprintf(f, "%.4g", v);
    else
        fprintf(f, "%.2f%%", v * 100);
}

/* Pipes and backticks would break a Markdown table cell. */
static void md_name(FILE *f, const char *s)
{
    for (; *s; s++)
        fputs(*s == '|' ? "\\|" : *s == '`' ? "'" : (char[2]){*s, 0}, f);
}

static void md_row(FILE *f, const kiln_ci_row *r)
{
    fputs("| `", f);
    md_name(f, r->name);
    fprintf(f, "` | %s | ", metric_name(r->metric));
    print_value(f, r, r->base);
    fputs(" | ", f);
    print_value(f, r, r->cur);
    if (isinf(r->change))
        fputs(" | new", f);
    else
        fprintf(f, " | %+.1f%%", r->change * 100);
    fprintf(f, " | %.1f%% (p=%.3g) | %s |\n", (1 - r->p) * 100, r->p,
            r->regression    ? "**regression**"
            : r->improvement ? "improvement"
                             : "noise");
}

static void md_table(FILE *f, const char *title, const kiln_ci_row *rows, size_t n, size_t top,
                     int want_up)
{
    fprintf(f, "\n### %s\n\n", title);
    fputs("| function | metric | baseline | current | change | confidence | verdict |\n"
          "|---|---|---|---|---|---|---|\n",
          f);
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < top; i++) {
        const kiln_ci_row *r = want_up ? &rows[i] : &rows[n - 1 - i];
        if (want_up ? r->change <= 0 : r->change >= 0)
            break;
        md_row(f, r);
        shown++;
    }
    if (shown == 0)
        fputs("| (none) | | | | | | |\n", f);
}

size_t kiln_ci_regressions(const kiln_ci_row *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += rows[i].regression != 0;
    return k;
}

void kiln_ci_report_markdown(FILE *f, const kiln_ci_row *rows, size_t n,
                             const kiln_ci_report_info *info)
{
    size_t bad = kiln_ci_regressions(rows, n);
    fprintf(f, "## Kiln profile gate: %s\n\n", bad ? "FAILED" : "passed");
    fprintf(f,
            "%zu regression%s past the threshold. Baseline `%s` (%zu runs) vs current `%s` "
            "(%zu runs); values are each function's share of the profile, averaged over "
            "runs; confidence is 1 - p of a Mann-Whitney U test over runs.\n",
            bad, bad == 1 ? "" : "s", info->baseline, info->n_base, info->current, info->n_cur);
    md_table(f, "Top regressions", rows, n, info->top, 1);
    md_table(f, "Top improvements", rows, n, info->top, 0);
    if (info->diff_url)
        fprintf(f, "\n[Open the diff in Kiln](%s)\n", info->diff_url);
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

void kiln_ci_report_junit(FILE *f, const kiln_ci_row *rows, size_t n,
                          const kiln_ci_report_info *info)
{
    (void)info;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuite name=\"kiln-ci-gate\" tests=\"%zu\" failures=\"%zu\">\n",
            n, kiln_ci_regressions(rows, n));
    for (size_t i = 0; i < n; i++) {
        const kiln_ci_row *r = &rows[i];
        fprintf(f, "  <testcase classname=\"kiln.%s\" name=\"", metric_name(r->metric));
        xml_text(f, r->name);
        fputs("\">", f);
        if (r->regression)
            fprintf(f,
                    "<failure message=\"%s grew %+.1f%% (%.4g -&gt; %.4g), p=%.3g, "
                    "threshold %.1f%%\"/>",
                    metric_name(r->metric), r->change * 100, r->base, r->cur, r->p,
                    r->threshold * 100);
        fputs("</testcase>\n", f);
    }
    fputs("</testsuite>\n", f);
}
