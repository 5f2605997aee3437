/* SPDX-License-Identifier: Apache-2.0
 * recording_rule: compile, match, and name the series of one rule. */
#include "recording_rule.h"

#include <stdlib.h>
#include <string.h>

#include "selector.h"
#include "xmalloc.h"

struct kiln_rule {
    char *metric;
    char *function; /* NULL: the whole profile */
    bool self;      /* only samples whose leaf frame is the function */
    const char *profile_type;
    kiln_selector_t *sel[KILN_RULE_MAX_LABELS];
    size_t n_sel;
    char *group_by[KILN_RULE_MAX_LABELS];
    size_t n_group_by;
    kiln_label_t external[KILN_RULE_MAX_LABELS]; /* sorted, owned strings */
    size_t n_external;
};

void kiln_rule_destroy(kiln_rule_t *rule)
{
    if (rule == NULL)
        return;
    for (size_t i = 0; i < rule->n_sel; i++)
        kiln_selector_destroy(rule->sel[i]);
    for (size_t i = 0; i < rule->n_group_by; i++)
        free(rule->group_by[i]);
    for (size_t i = 0; i < rule->n_external; i++) {
        free((char *)rule->external[i].name);
        free((char *)rule->external[i].value);
    }
    free(rule->function);
    free(rule->metric);
    free(rule);
}

/* A matcher is a selector; upstream's clients send `{a="b"}` but a bare
 * `a="b"` list is accepted too. */
static kiln_status add_matcher(kiln_rule_t *rule, const char *m, kiln_err *err)
{
    kiln_buf q;
    kiln_buf_init(&q, 64 << 10);
    bool braced = m[strspn(m, " \t")] == '{';
    bool ok = braced ? kiln_buf_puts(&q, m) : kiln_buf_printf(&q, "{%s}", m);
    kiln_status st = KILN_OK;
    if (!ok)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT, "matcher longer than 64 KiB");
    if (st == KILN_OK)
        st = kiln_selector_parse(q.ptr, q.len, &rule->sel[rule->n_sel], err);
    kiln_buf_free(&q);
    if (st != KILN_OK)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "matcher %.128s: %s", m, err->msg);
    kiln_selector_t *s = rule->sel[rule->n_sel++];
    for (size_t i = 0; i < kiln_selector_count(s); i++) {
        const char *name, *value;
        kiln_match_op op;
        kiln_selector_get(s, i, &name, &op, &value);
        if (op == KILN_MATCH_EQ && strcmp(name, "__profile_type__") == 0)
            rule->profile_type = value;
    }
    return KILN_OK;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const kiln_label_t *)a)->name, ((const kiln_label_t *)b)->name);
}

static kiln_status add_labels(kiln_rule_t *rule, const Settings__V1__RecordingRule *r,
                              kiln_err *err)
{
    for (size_t i = 0; i < r->n_group_by; i++) {
        if (!kiln_label_name_is_legacy(r->group_by[i]))
            return kiln_err_set(err, KILN_INVALID_ARGUMENT, "group_by: bad label name %.128s",
                                r->group_by[i]);
        rule->group_by[rule->n_group_by++] = kiln_xstrdup(r->group_by[i]);
    }
    for (size_t i = 0; i < r->n_external_labels; i++) {
        const Types__V1__LabelPair *p = r->external_labels[i];
        if (!kiln_label_name_is_legacy(p->name) || strcmp(p->name, "__name__") == 0)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "external_labels: bad label name %.128s", p->name);
        rule->external[rule->n_external].name = kiln_xstrdup(p->name);
        rule->external[rule->n_external++].value = kiln_xstrdup(p->value);
    }
    qsort(rule->external, rule->n_external, sizeof(kiln_label_t), cmp_label);
    return KILN_OK;
}

static const char *function_of(const Settings__V1__RecordingRule *r)
{
    if (r->stacktrace_filter == NULL || r->stacktrace_filter->function_name == NULL)
        return NULL;
    const char *f = r->stacktrace_filter->function_name->function_name;
    return f != NULL && *f != '\0' ? f : NULL;
}

static bool self_of(const Settings__V1__RecordingRule *r)
{
    return function_of(r) != NULL &&
           r->stacktrace_filter->function_name->metric_type == SETTINGS__V1__METRIC_TYPE__SELF;
}

static kiln_status check_counts(const Settings__V1__RecordingRule *r, kiln_err *err)
{
    if (function_of(r) != NULL) {
        Settings__V1__MetricType t = r->stacktrace_filter->function_name->metric_type;
        if (t != SETTINGS__V1__METRIC_TYPE__TOTAL && t != SETTINGS__V1__METRIC_TYPE__SELF)
            return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                                "stacktrace_filter: metric_type %d is not TOTAL or SELF", (int)t);
    }
    if (r->metric_name == NULL || !kiln_label_name_is_legacy(r->metric_name))
        return kiln_err_set(err, KILN_INVALID_ARGUMENT, "metric_name %.128s is not valid",
                            r->metric_name ? r->metric_name : "");
    if (r->n_matchers > KILN_RULE_MAX_LABELS || r->n_group_by > KILN_RULE_MAX_LABELS ||
        r->n_external_labels > KILN_RULE_MAX_LABELS)
        return kiln_err_set(err, KILN_INVALID_ARGUMENT,
                            "a rule names at most %d matchers, group_by and external labels each",
                            KILN_RULE_MAX_LABELS);
    return KILN_OK;
}

kiln_status kiln_rule_compile(const Settings__V1__RecordingRule *r, kiln_rule_t **out,
                              kiln_err *err)
{
    kiln_status st = check_counts(r, err);
    if (st != KILN_OK)
        return st;
    kiln_rule_t *rule = kiln_xcalloc(1, sizeof(*rule));
    rule->metric = kiln_xstrdup(r->metric_name);
    const char *f = function_of(r);
    rule->function = f != NULL ? kiln_xstrdup(f) : NULL;
    rule->self = self_of(r);
    for (size_t i = 0; st == KILN_OK && i < r->n_matchers; i++)
        st = add_matcher(rule, r->matchers[i], err);
    if (st == KILN_OK)
        st = add_labels(rule, r, err);
    if (st == KILN_OK && rule->profile_type == NULL)
        st = kiln_err_set(err, KILN_INVALID_ARGUMENT,
                          "no __profile_type__ matcher: a rule reads one profile type");
    if (st != KILN_OK) {
        kiln_rule_destroy(rule);
        return st;
    }
    *out = rule;
    return KILN_OK;
}

const char *kiln_rule_profile_type(const kiln_rule_t *rule)
{
    return rule->profile_type;
}

const char *kiln_rule_function(const kiln_rule_t *rule)
{
    return rule->function;
}

bool kiln_rule_self(const kiln_rule_t *rule)
{
    return rule->self;
}

bool kiln_rule_match(const kiln_rule_t *rule, const kiln_label_t *l, size_t n)
{
    for (size_t i = 0; i < rule->n_sel; i++) {
        if (!kiln_selector_match(rule->sel[i], l, n))
            return false;
    }
    return true;
}

/* The exposition format escapes backslash, double quote and newline. */
static void put_value(kiln_buf *out, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            kiln_buf_putc(out, '\\');
        if (*v == '\n')
            kiln_buf_puts(out, "\\n");
        else
            kiln_buf_putc(out, *v);
    }
}

/* True when name is the writer label's. */
static bool is_writer(const kiln_label_t *writer, const char *name)
{
    return writer != NULL && strcmp(writer->name, name) == 0;
}

void kiln_rule_series(const kiln_rule_t *rule, const kiln_label_t *l, size_t n,
                      const kiln_label_t *writer, kiln_buf *out)
{
    kiln_label_t s[2 * KILN_RULE_MAX_LABELS + 1];
    size_t k = 0;
    for (size_t i = 0; i < rule->n_group_by; i++) {
        const char *v = kiln_labels_get(l, n, rule->group_by[i]);
        /* An external label of the same name wins over the profile's. */
        if (v != NULL && *v != '\0' && !is_writer(writer, rule->group_by[i]) &&
            kiln_labels_get(rule->external, rule->n_external, rule->group_by[i]) == NULL)
            s[k++] = (kiln_label_t){rule->group_by[i], v};
    }
    for (size_t i = 0; i < rule->n_external; i++) {
        if (!is_writer(writer, rule->external[i].name))
            s[k++] = rule->external[i];
    }
    if (writer != NULL)
        s[k++] = *writer;
    qsort(s, k, sizeof(*s), cmp_label);
    kiln_buf_puts(out, rule->metric);
    if (k == 0)
        return;
    kiln_buf_putc(out, '{');
    for (size_t i = 0; i < k; i++) {
        kiln_buf_printf(out, "%s%s=\"", i > 0 ? "," : "", s[i].name);
        put_value(out, s[i].value);
        kiln_buf_putc(out, '"');
    }
    kiln_buf_putc(out, '}');
}

void kiln_rule_from_store(const Settings__V1__RecordingRuleStore *in,
                          Settings__V1__RecordingRule *r)
{
    settings__v1__recording_rule__init(r);
    r->id = in->id;
    r->metric_name = in->metric_name;
    r->n_matchers = in->n_matchers;
    r->matchers = in->matchers;
    r->n_group_by = in->n_group_by;
    r->group_by = in->group_by;
    r->n_external_labels = in->n_external_labels;
    r->external_labels = in->external_labels;
    r->generation = in->generation;
    r->stacktrace_filter = in->stacktrace_filter;
}
