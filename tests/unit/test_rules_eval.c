/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for recording rules evaluated at ingest: rules stored through
 * settings.v1 (recording_rules.h), pushes through the distributor's
 * pipeline (over a fake store), counters read as the scrape endpoint
 * renders them: whole-profile and function totals, group_by, matchers
 * that do not match, and a rule change seen after the refresh period. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "distributor.h"
#include "fake_store.h"
#include "objstore.h"
#include "pprof_build.h"
#include "recording_rules.h"
#include "rules_eval.h"
#include "tmpdir.h"

static char g_dir[] = "/tmp/kiln-rules-eval-XXXXXX";

#define T0_NS 1700000000000000000LL
#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

static kiln_str_t S(const char *s)
{
    return (kiln_str_t){s, strlen(s)};
}

/* One CPU profile of service svc: main;work 10, main;idle 5 and
 * main;work;helper 7 (22 in all, 17 through main.work), at t_ns. */
static kiln_status push(kiln_distributor_t *d, const char *svc, int64_t t_ns)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    kiln_pprof_build_sample_type(b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    kiln_pprof_build_time(b, t_ns, 10000000000LL);
    uint64_t m = kiln_pprof_build_frame(b, S("main")),
             w = kiln_pprof_build_frame(b, S("main.work"));
    uint64_t i = kiln_pprof_build_frame(b, S("idle")), h = kiln_pprof_build_frame(b, S("helper"));
    const uint64_t s1[] = {w, m}, s2[] = {i, m}, s3[] = {h, w, m};
    const int64_t v1 = 10, v2 = 5, v3 = 7;
    kiln_pprof_build_sample(b, s1, 2, &v1, NULL, 0);
    kiln_pprof_build_sample(b, s2, 2, &v2, NULL, 0);
    kiln_pprof_build_sample(b, s3, 3, &v3, NULL, 0);
    kiln_ingest_profile in = {0};
    kiln_err err = {0};
    CHECK_OK(kiln_pprof_build_finish(b, &in.profile, &err));
    kiln_label_t *l = kiln_arena_alloc(a, 3 * sizeof(*l));
    l[0] = (kiln_label_t){"__name__", "process_cpu"};
    l[1] = (kiln_label_t){"region", "eu"};
    l[2] = (kiln_label_t){"service_name", svc};
    in.labels = l;
    in.n_labels = 3;
    kiln_status st = kiln_distributor_ingest(d, "t1", &in, 1, a, &err);
    kiln_arena_destroy(a);
    return st;
}

static Settings__V1__RecordingRule *upsert(kiln_rules_t *r, kiln_arena_t *a, const char *metric,
                                           const char *fn)
{
    static char *matchers[] = {"{__profile_type__=\"" CPU "\", service_name=\"api\"}"};
    static char *group_by[] = {"region", "service_name"};
    Settings__V1__UpsertRecordingRuleRequest in = SETTINGS__V1__UPSERT_RECORDING_RULE_REQUEST__INIT;
    in.metric_name = (char *)metric;
    in.matchers = matchers;
    in.n_matchers = 1;
    in.group_by = group_by;
    in.n_group_by = 2;
    Settings__V1__StacktraceFilterFunctionName f =
        SETTINGS__V1__STACKTRACE_FILTER_FUNCTION_NAME__INIT;
    Settings__V1__StacktraceFilter filter = SETTINGS__V1__STACKTRACE_FILTER__INIT;
    f.function_name = (char *)fn;
    filter.function_name = &f;
    in.stacktrace_filter = fn ? &filter : NULL;
    Settings__V1__RecordingRule *out = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_rules_upsert(r, "t1", &in, a, &out, &err));
    return out;
}

static void check_metrics(kiln_rules_eval_t *ev, const char *want)
{
    kiln_buf b;
    kiln_buf_init(&b, 1 << 20);
    kiln_rules_eval_metrics(ev, "t1", &b);
    kiln_buf_putc(&b, '\0');
    CHECK_STR(b.ptr, want);
    kiln_buf_free(&b);
}

/* A distributor over a fake store, counting with ev. */
typedef struct env {
    fake_store fake;
    kiln_overrides_t *o;
    kiln_metrics_t *m;
    kiln_distributor_t *d;
} env;

static void env_open(env *e, kiln_rules_eval_t *ev)
{
    fake_store_init(&e->fake);
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_profile_bytes = 4u << 20;
    lim.max_label_names = 30, lim.max_label_name_len = 1024, lim.max_label_value_len = 2048;
    e->o = kiln_overrides_create(&lim);
    e->m = kiln_metrics_create();
    kiln_distributor_config dc = {.limits = e->o,
                                  .max_profile_bytes = lim.max_profile_bytes,
                                  .store = fake_store_iface(&e->fake)};
    e->d = kiln_distributor_create(&dc, e->m);
    kiln_distributor_set_rules(e->d, ev);
}

static void env_close(env *e)
{
    kiln_distributor_destroy(e->d);
    kiln_metrics_destroy(e->m);
    kiln_overrides_destroy(e->o);
    fake_store_fini(&e->fake);
}

TEST(counts_at_ingest)
{
    kiln_objstore_t *store = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &store, &err));
    kiln_rules_t *rules = kiln_rules_create(store);
    kiln_arena_t *a = kiln_arena_create(0);
    upsert(rules, a, "api_cpu_ns", NULL);
    Settings__V1__RecordingRule *work = upsert(rules, a, "work_cpu_ns", "main.work");
    /* A 1 ns refresh period: every push re-reads the rules. */
    kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 1);
    env e;
    env_open(&e, ev);
    kiln_distributor_t *d = e.d;
    CHECK_OK(push(d, "api", T0_NS));
    CHECK_OK(push(d, "db", T0_NS)); /* service_name="api" does not match */
    check_metrics(ev, "api_cpu_ns{region=\"eu\",service_name=\"api\"} 22 1700000000000\n"
                      "work_cpu_ns{region=\"eu\",service_name=\"api\"} 17 1700000000000\n");
    CHECK_OK(push(d, "api", T0_NS + 15000000000LL));
    check_metrics(ev, "api_cpu_ns{region=\"eu\",service_name=\"api\"} 44 1700000015000\n"
                      "work_cpu_ns{region=\"eu\",service_name=\"api\"} 34 1700000015000\n");
    /* A refused push counts nothing. */
    fake_store_fail_next(&e.fake, KILN_UNAVAILABLE, "down");
    CHECK(push(d, "api", T0_NS + 20000000000LL) != KILN_OK);
    /* A deleted rule stops counting (its counter stays, as Prometheus
     * expects of a counter until the process restarts). */
    CHECK_OK(kiln_rules_delete(rules, "t1", work->id, &err));
    CHECK_OK(push(d, "api", T0_NS + 30000000000LL));
    check_metrics(ev, "api_cpu_ns{region=\"eu\",service_name=\"api\"} 66 1700000030000\n"
                      "work_cpu_ns{region=\"eu\",service_name=\"api\"} 34 1700000015000\n");
    env_close(&e);
    kiln_rules_eval_destroy(ev);
    kiln_arena_destroy(a);
    kiln_rules_destroy(rules);
    kiln_objstore_close(store);
}

/* A state file carries the counters over a restart of the evaluator: a
 * counter continues from its saved value, never from 0. */
TEST(counters_survive_restart)
{
    kiln_objstore_t *store = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &store, &err));
    kiln_rules_t *rules = kiln_rules_create(store);
    kiln_arena_t *a = kiln_arena_create(0);
    Settings__V1__RecordingRule *r = upsert(rules, a, "kept_cpu_ns", NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/state", g_dir);
    for (int run = 1; run <= 2; run++) {
        kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 1);
        CHECK_OK(kiln_rules_eval_state_file(ev, path, true, &err));
        env e;
        env_open(&e, ev);
        CHECK_OK(push(e.d, "api", T0_NS + run * 15000000000LL));
        CHECK_OK(kiln_rules_eval_flush(ev, &err)); /* what a remote write round saves */
        char want[256];                            /* api_cpu_ns: the rule counts_at_ingest left */
        long long ms = (T0_NS + run * 15000000000LL) / 1000000;
        snprintf(want, sizeof(want),
                 "api_cpu_ns{region=\"eu\",service_name=\"api\"} %d %lld\n"
                 "kept_cpu_ns{region=\"eu\",service_name=\"api\"} %d %lld\n",
                 22 * run, ms, 22 * run, ms);
        check_metrics(ev, want);
        env_close(&e);
        kiln_rules_eval_destroy(ev);
    }
    FILE *f = fopen(path, "w"); /* a corrupt file is refused, not read as 0 */
    fputs("garbage\n", f);
    fclose(f);
    kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 1);
    CHECK_EQ(kiln_rules_eval_state_file(ev, path, true, &err), KILN_DATA_LOSS);
    kiln_rules_eval_destroy(ev);
    (void)r;
    kiln_arena_destroy(a);
    kiln_rules_destroy(rules);
    kiln_objstore_close(store);
}

/* Pushes n profiles of "api" from t_ns on with counters kept in path,
 * then ends like kill -9: no destroy, no last save. */
static void push_and_crash(kiln_objstore_t *store, const char *path, int n, int64_t t_ns)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        kiln_err err = {0};
        kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 1);
        if (kiln_rules_eval_state_file(ev, path, true, &err) != KILN_OK)
            _exit(2);
        env e;
        env_open(&e, ev);
        for (int i = 0; i < n; i++) {
            if (push(e.d, "api", t_ns + i * 1000000000LL) != KILN_OK)
                _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int is_segment(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".wal") == 0;
}

/* Writes a torn record (a length past the end) after the last record of
 * dir's newest segment, where a copy cut short by the crash would be: the
 * crashed process left the segment at its reserved size, zeros after its
 * records. */
static void tear_newest_segment(const char *dir)
{
    struct dirent **v;
    int n = scandir(dir, &v, is_segment, alphasort);
    CHECK(n > 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, v[n - 1]->d_name);
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    off_t off = 0;
    uint32_t len = 1;
    while (pread(fd, &len, sizeof(len), off) == (ssize_t)sizeof(len) && len != 0)
        off += 8 + (off_t)len; /* little-endian host: the frame's length */
    CHECK(pwrite(fd, "\x40\x00\x00\x00torn", 8, off) == 8);
    close(fd);
}

/* The counters of the evaluator that starts on path. */
static void check_restart(kiln_objstore_t *store, const char *path, const char *want)
{
    kiln_err err = {0};
    kiln_rules_eval_t *ev = kiln_rules_eval_create(store, 1);
    CHECK_OK(kiln_rules_eval_state_file(ev, path, true, &err));
    check_metrics(ev, want);
    kiln_rules_eval_destroy(ev);
}

/* Every acknowledged push counts after a crash: its additions were in the
 * journal before the push returned; a torn record at the journal's end (a
 * crash mid-write) is dropped, and nothing is counted twice over several
 * crashes and clean restarts. */
TEST(journal_keeps_every_acknowledged_push)
{
    kiln_objstore_t *store = NULL;
    kiln_err err = {0};
    char dir[128]; /* a store of its own: only this test's rules */
    snprintf(dir, sizeof(dir), "%s/journal", g_dir);
    CHECK_OK(kiln_objstore_open_fs(dir, &store, &err));
    kiln_rules_t *rules = kiln_rules_create(store);
    kiln_arena_t *a = kiln_arena_create(0);
    upsert(rules, a, "j_cpu_ns", NULL);
    upsert(rules, a, "j_work_ns", "main.work");
    char path[128];
    snprintf(path, sizeof(path), "%s/journaled", g_dir);
    push_and_crash(store, path, 3, T0_NS);
    check_restart(store, path,
                  "j_cpu_ns{region=\"eu\",service_name=\"api\"} 66 1700000002000\n"
                  "j_work_ns{region=\"eu\",service_name=\"api\"} 51 1700000002000\n");
    push_and_crash(store, path, 2, T0_NS + 10000000000LL);
    /* A torn record after the last one: the tail of a write cut short. */
    char seg[256];
    snprintf(seg, sizeof(seg), "%s.journal", path);
    tear_newest_segment(seg);
    check_restart(store, path,
                  "j_cpu_ns{region=\"eu\",service_name=\"api\"} 110 1700000011000\n"
                  "j_work_ns{region=\"eu\",service_name=\"api\"} 85 1700000011000\n");
    check_restart(store, path,
                  "j_cpu_ns{region=\"eu\",service_name=\"api\"} 110 1700000011000\n"
                  "j_work_ns{region=\"eu\",service_name=\"api\"} 85 1700000011000\n");
    kiln_arena_destroy(a);
    kiln_rules_destroy(rules);
    kiln_objstore_close(store);
}

int main(void)
{
    setenv("KILN_OBJSTORE_NO_URING", "1", 1);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    RUN(counts_at_ingest);
    RUN(counters_survive_restart);
    RUN(journal_keeps_every_acknowledged_push);
    tmpdir_remove(g_dir);
    return check_done();
}
