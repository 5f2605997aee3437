/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for recording rules: the settings.v1 store (per tenant,
 * through the object store, the same from a second store: another querier),
 * generations, and rule compile/match/series naming. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "objstore.h"
#include "recording_rule.h"
#include "recording_rules.h"
#include "tmpdir.h"

static char g_dir[] = "/tmp/kiln-rules-XXXXXX";

#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

static char *g_matchers[] = {"{__profile_type__=\"" CPU "\", service_name=\"api\"}"};
static char *g_group_by[] = {"region"};

static Settings__V1__UpsertRecordingRuleRequest request(const char *metric)
{
    Settings__V1__UpsertRecordingRuleRequest in = SETTINGS__V1__UPSERT_RECORDING_RULE_REQUEST__INIT;
    in.metric_name = (char *)metric;
    in.matchers = g_matchers;
    in.n_matchers = 1;
    in.group_by = g_group_by;
    in.n_group_by = 1;
    return in;
}

TEST(upsert_list_get_delete_everywhere)
{
    kiln_objstore_t *s1 = NULL, *s2 = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s1, &err));
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s2, &err));
    kiln_rules_t *a = kiln_rules_create(s1), *b = kiln_rules_create(s2);
    kiln_arena_t *ar = kiln_arena_create(0);
    Settings__V1__ListRecordingRulesResponse *list = NULL;
    CHECK_OK(kiln_rules_list(b, "t1", ar, &list, &err));
    CHECK_EQ(list->n_rules, 0);
    Settings__V1__UpsertRecordingRuleRequest in = request("api_cpu_nanoseconds");
    Settings__V1__RecordingRule *out = NULL;
    CHECK_OK(kiln_rules_upsert(a, "t1", &in, ar, &out, &err));
    CHECK_EQ(strlen(out->id), 16);
    CHECK_EQ(out->generation, 1);
    CHECK_STR(out->profile_type, CPU);
    char *id = out->id;
    CHECK_OK(kiln_rules_list(b, "t1", ar, &list, &err)); /* read through: another querier */
    CHECK_EQ(list->n_rules, 1);
    CHECK_STR(list->rules[0]->metric_name, "api_cpu_nanoseconds");
    CHECK_STR(list->rules[0]->group_by[0], "region");
    CHECK_OK(kiln_rules_list(b, "t2", ar, &list, &err)); /* tenants are apart */
    CHECK_EQ(list->n_rules, 0);
    /* Replace: the stored generation must be quoted. */
    in = request("api_cpu_v2");
    in.id = id;
    in.generation = 7;
    CHECK_EQ(kiln_rules_upsert(a, "t1", &in, ar, &out, &err), KILN_FAILED_PRECONDITION);
    in.generation = 1;
    CHECK_OK(kiln_rules_upsert(b, "t1", &in, ar, &out, &err));
    CHECK_EQ(out->generation, 2);
    Settings__V1__RecordingRule *got = NULL;
    CHECK_OK(kiln_rules_get(a, "t1", id, ar, &got, &err));
    CHECK_STR(got->metric_name, "api_cpu_v2");
    CHECK_EQ(kiln_rules_get(a, "t1", "nope", ar, &got, &err), KILN_NOT_FOUND);
    in.id = "nope";
    CHECK_EQ(kiln_rules_upsert(a, "t1", &in, ar, &out, &err), KILN_NOT_FOUND);
    CHECK_OK(kiln_rules_delete(a, "t1", id, &err));
    CHECK_OK(kiln_rules_delete(a, "t1", id, &err)); /* gone already: OK, as upstream */
    CHECK_EQ(kiln_rules_get(b, "t1", id, ar, &got, &err), KILN_NOT_FOUND);
    kiln_arena_destroy(ar);
    kiln_rules_destroy(a);
    kiln_rules_destroy(b);
    kiln_objstore_close(s1);
    kiln_objstore_close(s2);
}

TEST(bad_rules_refused)
{
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s, &err));
    kiln_rules_t *r = kiln_rules_create(s);
    kiln_arena_t *ar = kiln_arena_create(0);
    Settings__V1__RecordingRule *out = NULL;
    Settings__V1__UpsertRecordingRuleRequest in = request("bad metric");
    CHECK_EQ(kiln_rules_upsert(r, "t3", &in, ar, &out, &err), KILN_INVALID_ARGUMENT);
    char *no_type[] = {"{service_name=\"api\"}"};
    in = request("ok_metric");
    in.matchers = no_type;
    CHECK_EQ(kiln_rules_upsert(r, "t3", &in, ar, &out, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "__profile_type__") != NULL);
    char *broken[] = {"{service_name=\"api\""};
    in.matchers = broken;
    CHECK_EQ(kiln_rules_upsert(r, "t3", &in, ar, &out, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(kiln_rules_delete(r, "t3", "", &err), KILN_INVALID_ARGUMENT);
    CHECK_OK(kiln_objstore_put(s, "t4/settings/recording_rules.pb", "\xff\xff\xff", 3, &err));
    Settings__V1__ListRecordingRulesResponse *list = NULL;
    CHECK_EQ(kiln_rules_list(r, "t4", ar, &list, &err), KILN_DATA_LOSS);
    kiln_arena_destroy(ar);
    kiln_rules_destroy(r);
    kiln_objstore_close(s);
}

/* Matching needs every matcher; the series keeps group_by labels the
 * profile has, adds external labels (which win), and escapes values. */
TEST(match_and_series)
{
    Settings__V1__RecordingRule r = SETTINGS__V1__RECORDING_RULE__INIT;
    char *m[] = {"{__profile_type__=\"" CPU "\"}", "service_name=~\"api|web\""};
    char *g[] = {"region", "pod", "env"};
    Types__V1__LabelPair env = TYPES__V1__LABEL_PAIR__INIT;
    env.name = "env";
    env.value = "prod";
    Types__V1__LabelPair *ext[] = {&env};
    Settings__V1__StacktraceFilterFunctionName fn =
        SETTINGS__V1__STACKTRACE_FILTER_FUNCTION_NAME__INIT;
    fn.function_name = "main.work";
    Settings__V1__StacktraceFilter filter = SETTINGS__V1__STACKTRACE_FILTER__INIT;
    filter.function_name = &fn;
    r.metric_name = "work_cpu";
    r.matchers = m;
    r.n_matchers = 2;
    r.group_by = g;
    r.n_group_by = 3;
    r.external_labels = ext;
    r.n_external_labels = 1;
    r.stacktrace_filter = &filter;
    kiln_rule_t *rule = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_rule_compile(&r, &rule, &err));
    CHECK_STR(kiln_rule_profile_type(rule), CPU);
    CHECK_STR(kiln_rule_function(rule), "main.work");
    kiln_label_t l[] = {
        {"__profile_type__", CPU}, {"env", "dev"}, {"region", "eu\"1"}, {"service_name", "web"}};
    CHECK(kiln_rule_match(rule, l, 4));
    l[3].value = "db";
    CHECK(!kiln_rule_match(rule, l, 4));
    l[0].value = "memory:alloc_space:bytes:space:bytes";
    l[3].value = "api";
    CHECK(!kiln_rule_match(rule, l, 4));
    kiln_buf b;
    kiln_buf_init(&b, 4096);
    kiln_rule_series(rule, l, 4, NULL, &b);
    kiln_buf_putc(&b, '\0');
    CHECK_STR(b.ptr, "work_cpu{env=\"prod\",region=\"eu\\\"1\"}");
    /* a writer label takes its sorted place and wins over an external one */
    kiln_label_t writer = {"kiln_instance", "01J"};
    b.len = 0;
    kiln_rule_series(rule, l, 4, &writer, &b);
    kiln_buf_putc(&b, '\0');
    CHECK_STR(b.ptr, "work_cpu{env=\"prod\",kiln_instance=\"01J\",region=\"eu\\\"1\"}");
    writer.name = "env";
    b.len = 0;
    kiln_rule_series(rule, l, 4, &writer, &b);
    kiln_buf_putc(&b, '\0');
    CHECK_STR(b.ptr, "work_cpu{env=\"01J\",region=\"eu\\\"1\"}");
    kiln_buf_free(&b);
    kiln_rule_destroy(rule);
}

int main(void)
{
    setenv("KILN_OBJSTORE_NO_URING", "1", 1);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    RUN(upsert_list_get_delete_everywhere);
    RUN(bad_rules_refused);
    RUN(match_and_series);
    tmpdir_remove(g_dir);
    return check_done();
}
