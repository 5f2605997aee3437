/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/otlp: the OTLP captures of shared testdata (protobuf
 * and JSON) against totals computed here by walking the protobuf-c structs,
 * the corrupted capture, hand-built requests for each rule and each index
 * check, and decoding of deeply nested AnyValues. */
#include "arena.h"
#include "check.h"
#include "otlp.h"
#include "otlp_int.h" /* white-box: the module's short type names */
#include "pprof.h"
#include "rpc.h"
#include "xmalloc.h"

typedef Opentelemetry__Proto__Common__V1__InstrumentationScope o_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource o_res;

#define ARENA_CAP (256u << 20)
#define PB(x) opentelemetry__proto__##x

/* Sums per __name__, at most 8 names. */
typedef struct totals {
    const char *name[8];
    int64_t sum[8];
    size_t n;
} totals;

static void tot_add(totals *t, const char *name, int64_t v)
{
    size_t i = 0;
    while (i < t->n && strcmp(t->name[i], name) != 0)
        i++;
    if (i == t->n && t->n < 8) {
        t->name[t->n] = name;
        t->sum[t->n++] = 0;
    }
    if (i < 8)
        t->sum[i] += v;
}

static int64_t tot_get(const totals *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0)
            return t->sum[i];
    }
    return -1;
}

/* The expected totals, straight from the structs: one value per sample
 * (values summed, else the timestamp count), times the period for
 * samples/count over cpu/nanoseconds. */
static void expected_totals(const kiln_otlp_request *req, totals *t)
{
    char **s = req->dictionary->string_table;
    for (size_t i = 0; i < req->n_resource_profiles; i++) {
        for (size_t j = 0; j < req->resource_profiles[i]->n_scope_profiles; j++) {
            const o_sprof *sp = req->resource_profiles[i]->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles; k++) {
                const o_profile *p = sp->profiles[k];
                const char *type = s[p->sample_type->type_strindex];
                const char *ptype =
                    p->period_type && p->period ? s[p->period_type->type_strindex] : "";
                bool cpu = strcmp(type, "samples") == 0 && strcmp(ptype, "cpu") == 0;
                const char *name = cpu                            ? "process_cpu"
                                   : strcmp(type, "off_cpu") == 0 ? "off_cpu"
                                   : *ptype                       ? ptype
                                                                  : "process_cpu";
                for (size_t n = 0; n < p->n_samples; n++) {
                    const o_sample *smp = p->samples[n];
                    int64_t v = smp->n_values ? 0 : (int64_t)smp->n_timestamps_unix_nano;
                    for (size_t x = 0; x < smp->n_values; x++)
                        v += smp->values[x];
                    tot_add(t, name, cpu ? v * p->period : v);
                }
            }
        }
    }
}

static const char *label(const kiln_otlp_series *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    }
    return NULL;
}

/* Validates and normalises every series (the symbol tables they share
 * once) and sums its values per __name__. */
static void actual_totals(kiln_arena_t *a, const kiln_otlp_result *r, totals *t)
{
    kiln_pprof_symbols *sym = NULL;
    kiln_err serr = {KILN_OK, ""};
    if (r->n_series != 0) {
        CHECK_OK(kiln_pprof_validate(&r->series[0].profile, &serr));
        CHECK_OK(kiln_pprof_symbols_prepare(a, &r->series[0].profile, &sym, &serr));
    }
    for (size_t i = 0; sym != NULL && i < r->n_series; i++) {
        kiln_otlp_series *s = &r->series[i];
        kiln_err err = {KILN_OK, ""};
        kiln_status st = kiln_pprof_samples_prepare(a, &s->profile, sym, 0, &err);
        if (st != KILN_OK)
            printf("  series %zu: %s\n", i, err.msg);
        CHECK_OK(st);
        CHECK_EQ(s->profile.n_sample_types, 1);
        CHECK_STR(label(s, "__delta__"), "false");
        CHECK_STR(label(s, "__otel__"), "true");
        CHECK(label(s, "service_name") != NULL);
        const char *name = label(s, "__name__");
        CHECK(name != NULL);
        for (size_t k = 0; name != NULL && k < s->profile.n_samples; k++)
            tot_add(t, name, s->profile.values[s->profile.samples[k].value_off]);
        /* samples/count over a cpu period always became cpu/nanoseconds. */
        const kiln_pprof_t *p = &s->profile;
        if (kiln_str_eq(kiln_pprof_str(p, p->period_type.type), "cpu") && p->period != 0) {
            CHECK_STR(name, "process_cpu");
            CHECK(kiln_str_eq(kiln_pprof_str(p, p->sample_types[0].type), "cpu"));
            CHECK(kiln_str_eq(kiln_pprof_str(p, p->sample_types[0].unit), "nanoseconds"));
        }
    }
}

static kiln_otlp_request *load(kiln_arena_t *a, const char *rel, bool json)
{
    size_t len = 0;
    unsigned char *data = check_read_testdata(rel, &len);
    kiln_otlp_request *req = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK(data != NULL);
    if (data == NULL)
        return NULL;
    kiln_status st = json ? kiln_otlp_decode_json(a, (const char *)data, len, &req, &err)
                          : kiln_otlp_unpack(a, data, len, &req, &err);
    if (st != KILN_OK)
        printf("  %s: %s\n", rel, err.msg);
    CHECK_OK(st);
    free(data);
    return st == KILN_OK ? req : NULL;
}

/* Converts a capture and checks its totals; returns the result's series count. */
static size_t check_capture(const char *rel, bool json, size_t want_profiles, totals *got)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = load(a, rel, json);
    kiln_otlp_result r = {0};
    kiln_err err = {KILN_OK, ""};
    totals want = {0};
    if (req != NULL) {
        CHECK_OK(kiln_otlp_convert(a, req, &r, &err));
        expected_totals(req, &want);
        actual_totals(a, &r, got);
    }
    CHECK_EQ(r.n_profiles, want_profiles);
    CHECK_EQ(r.n_rejected, 0);
    CHECK(want.n > 0);
    CHECK_EQ(got->n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        if (tot_get(got, want.name[i]) != want.sum[i])
            printf("  %s %s: got %lld, want %lld\n", rel, want.name[i],
                   (long long)tot_get(got, want.name[i]), (long long)want.sum[i]);
        CHECK_EQ(tot_get(got, want.name[i]), want.sum[i]);
    }
    kiln_arena_destroy(a);
    return r.n_series;
}

TEST(ebpf_capture)
{
    totals bin = {0}, json = {0};
    size_t n = check_capture("grafana-pyroscope/otel-ebpf-profile.pb.bin", false, 82, &bin);
    CHECK(n >= 82);
    check_capture("grafana-pyroscope/otel-ebpf-profile.pb.json", true, 82, &json);
    CHECK(tot_get(&bin, "process_cpu") > 0);
    CHECK(tot_get(&bin, "off_cpu") > 0);
    CHECK_EQ(tot_get(&json, "process_cpu"), tot_get(&bin, "process_cpu"));
    CHECK_EQ(tot_get(&json, "off_cpu"), tot_get(&bin, "off_cpu"));
}

TEST(ebpf_capture_2025)
{
    totals bin = {0}, json = {0};
    check_capture("hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin", false, 5, &bin);
    check_capture("hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.json", true, 5, &json);
    CHECK(tot_get(&bin, "process_cpu") > 0);
    CHECK_EQ(tot_get(&json, "process_cpu"), tot_get(&bin, "process_cpu"));
}

static void check_corrupted(const char *rel, bool json)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = load(a, rel, json);
    kiln_otlp_result r = {0};
    kiln_err err = {KILN_OK, ""};
    if (req != NULL)
        CHECK_OK(kiln_otlp_convert(a, req, &r, &err));
    CHECK_EQ(r.n_profiles, 1);
    CHECK_EQ(r.n_rejected, 1);
    CHECK_EQ(r.n_series, 0);
    CHECK(strstr(r.first_rejection.msg, "samples[0].stack_index 1000000000 out of range") != NULL);
    printf("  %s\n", r.first_rejection.msg);
    kiln_arena_destroy(a);
}

TEST(corrupted_capture)
{
    check_corrupted("hard/grafana-pyroscope/otel-ebpf-profile-corrupted.pb.bin", false);
    check_corrupted("hard/grafana-pyroscope/otel-ebpf-profile-corrupted.pb.json", true);
}

/* A hand-built request: one profile of samples/count over cpu/nanoseconds
 * (period 10 ms) with three samples: timestamps only with service.name
 * svc-a, values and timestamps with svc-b, and one value with a link and
 * no service.name (the resource's fallback applies). */
enum {
    S_EMPTY,
    S_SAMPLES,
    S_COUNT,
    S_CPU,
    S_NS,
    S_MAIN,
    S_FILE,
    S_SVC_KEY,
    S_A,
    S_B,
    S_THREAD,
    S_WORKER,
    N_STR
};

typedef struct mini {
    kiln_otlp_request req;
    o_dict dict;
    char *str[N_STR];
    o_rprof rp, *prp[1];
    o_sprof sp, *psp[1];
    o_profile prof, *pprof[1];
    o_vtype st, pt;
    o_sample smp[3], *psmp[3];
    int32_t attrs0[2], attrs1[1];
    int64_t vals1[2], vals2[1];
    uint64_t ts0[3], ts1[2];
    o_loc loc[2], *ploc[2];
    o_line line, *pline[1];
    o_fn fn[2], *pfn[2];
    o_map map[2], *pmap[2];
    o_stack stk[2], *pstk[2];
    int32_t stk_locs[1];
    o_kvu attr[4], *pattr[4];
    o_any attr_any[4];
    o_link link[2], *plink[2];
    uint8_t trace[16], span[8];
    o_res res;
    o_kv rkv[3], *prkv[3];
    o_any rany[3];
    o_scope scope;
    o_kv skv[2], *pskv[2];
    o_any sany[2];
} mini;

static void kv_str(o_kv *kv, o_any *v, const char *key, const char *val)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = (char *)key;
    kv->value = v;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)val;
}

static void mini_dict_tables(mini *m)
{
    static const char *const strs[N_STR] = {
        "",        "samples",      "count", "cpu",   "nanoseconds", "main",
        "main.go", "service.name", "svc-a", "svc-b", "thread.name", "worker"};
    for (int i = 0; i < N_STR; i++)
        m->str[i] = (char *)strs[i];
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__profiles__v1development__function__init(&m->fn[i]);
        opentelemetry__proto__profiles__v1development__mapping__init(&m->map[i]);
        opentelemetry__proto__profiles__v1development__location__init(&m->loc[i]);
        opentelemetry__proto__profiles__v1development__stack__init(&m->stk[i]);
        opentelemetry__proto__profiles__v1development__link__init(&m->link[i]);
        m->pfn[i] = &m->fn[i], m->pmap[i] = &m->map[i], m->ploc[i] = &m->loc[i];
        m->pstk[i] = &m->stk[i], m->plink[i] = &m->link[i];
    }
    m->fn[1].name_strindex = S_MAIN;
    m->fn[1].filename_strindex = S_FILE;
    m->map[1].filename_strindex = S_FILE;
    opentelemetry__proto__profiles__v1development__line__init(&m->line);
    m->line = (o_line){m->line.base, 1, 7, 0};
    m->pline[0] = &m->line;
    m->loc[1].mapping_index = 1;
    m->loc[1].address = 0x1000;
    m->loc[1].n_lines = 1;
    m->loc[1].lines = m->pline;
    m->stk_locs[0] = 1;
    m->stk[1].n_location_indices = 1;
    m->stk[1].location_indices = m->stk_locs;
    for (int i = 0; i < 16; i++)
        m->trace[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        m->span[i] = (uint8_t)(0xa0 + i);
    m->link[1].trace_id = (ProtobufCBinaryData){16, m->trace};
    m->link[1].span_id = (ProtobufCBinaryData){8, m->span};
}

static void mini_dict(mini *m)
{
    static const int32_t keys[4] = {S_EMPTY, S_SVC_KEY, S_SVC_KEY, S_THREAD};
    static const int32_t vals[4] = {0, S_A, S_B, S_WORKER};
    o_dict *d = &m->dict;
    opentelemetry__proto__profiles__v1development__profiles_dictionary__init(d);
    mini_dict_tables(m);
    for (int i = 0; i < 4; i++) {
        opentelemetry__proto__profiles__v1development__key_value_and_unit__init(&m->attr[i]);
        opentelemetry__proto__common__v1__any_value__init(&m->attr_any[i]);
        m->attr[i].key_strindex = keys[i];
        m->attr[i].value = &m->attr_any[i];
        if (i != 0) {
            m->attr_any[i].value_case =
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX;
            m->attr_any[i].string_value_strindex = vals[i];
        }
        m->pattr[i] = &m->attr[i];
    }
    d->n_string_table = N_STR, d->string_table = m->str;
    d->n_function_table = 2, d->function_table = m->pfn;
    d->n_mapping_table = 2, d->mapping_table = m->pmap;
    d->n_location_table = 2, d->location_table = m->ploc;
    d->n_stack_table = 2, d->stack_table = m->pstk;
    d->n_link_table = 2, d->link_table = m->plink;
    d->n_attribute_table = 4, d->attribute_table = m->pattr;
}

static void mini_samples(mini *m)
{
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__profiles__v1development__sample__init(&m->smp[i]);
        m->smp[i].stack_index = 1;
        m->psmp[i] = &m->smp[i];
    }
    m->attrs0[0] = 1, m->attrs0[1] = 3;
    m->smp[0].n_attribute_indices = 2, m->smp[0].attribute_indices = m->attrs0;
    m->smp[0].n_timestamps_unix_nano = 3, m->smp[0].timestamps_unix_nano = m->ts0;
    m->attrs1[0] = 2;
    m->vals1[0] = 5, m->vals1[1] = 6;
    m->smp[1].n_attribute_indices = 1, m->smp[1].attribute_indices = m->attrs1;
    m->smp[1].n_values = 2, m->smp[1].values = m->vals1;
    m->smp[1].n_timestamps_unix_nano = 2, m->smp[1].timestamps_unix_nano = m->ts1;
    m->vals2[0] = 2;
    m->smp[2].n_values = 1, m->smp[2].values = m->vals2;
    m->smp[2].link_index = 1;
}

static void mini_resource(mini *m)
{
    opentelemetry__proto__resource__v1__resource__init(&m->res);
    kv_str(&m->rkv[0], &m->rany[0], "process.executable.name", "app");
    kv_str(&m->rkv[1], &m->rany[1], "k8s.pod.name", "pod-1");
    kv_str(&m->rkv[2], &m->rany[2], "process.pid", NULL);
    m->rany[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    m->rany[2].int_value = INT64_MIN; /* the one no negation holds */
    for (int i = 0; i < 3; i++)
        m->prkv[i] = &m->rkv[i];
    m->res.n_attributes = 3, m->res.attributes = m->prkv;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&m->scope);
    kv_str(&m->skv[0], &m->sany[0], "k8s.pod.name", "other");
    kv_str(&m->skv[1], &m->sany[1], "scope.attr", "x");
    m->pskv[0] = &m->skv[0], m->pskv[1] = &m->skv[1];
    m->scope.n_attributes = 2, m->scope.attributes = m->pskv;
}

static void mini_init(mini *m)
{
    memset(m, 0, sizeof(*m));
    mini_dict(m);
    mini_samples(m);
    mini_resource(m);
    opentelemetry__proto__profiles__v1development__value_type__init(&m->st);
    opentelemetry__proto__profiles__v1development__value_type__init(&m->pt);
    m->st.type_strindex = S_SAMPLES, m->st.unit_strindex = S_COUNT;
    m->pt.type_strindex = S_CPU, m->pt.unit_strindex = S_NS;
    opentelemetry__proto__profiles__v1development__profile__init(&m->prof);
    m->prof.sample_type = &m->st, m->prof.period_type = &m->pt;
    m->prof.period = 10000000;
    m->prof.time_unix_nano = 1700000000000000000ull;
    m->prof.n_samples = 3, m->prof.samples = m->psmp;
    m->pprof[0] = &m->prof;
    opentelemetry__proto__profiles__v1development__scope_profiles__init(&m->sp);
    m->sp.scope = &m->scope, m->sp.n_profiles = 1, m->sp.profiles = m->pprof;
    m->psp[0] = &m->sp;
    opentelemetry__proto__profiles__v1development__resource_profiles__init(&m->rp);
    m->rp.resource = &m->res, m->rp.n_scope_profiles = 1, m->rp.scope_profiles = m->psp;
    m->prp[0] = &m->rp;
    PB(collector__profiles__v1development__export_profiles_service_request__init)(&m->req);
    m->req.n_resource_profiles = 1, m->req.resource_profiles = m->prp;
    m->req.dictionary = &m->dict;
}

static bool has_pprof_label(const kiln_pprof_t *p, size_t i, const char *k, const char *v)
{
    const kiln_pprof_sample *s = &p->samples[i];
    for (uint32_t j = 0; j < s->n_labels; j++) {
        const kiln_pprof_label *l = &p->labels[s->label_off + j];
        if (kiln_str_eq(kiln_pprof_str(p, l->key), k) && kiln_str_eq(kiln_pprof_str(p, l->str), v))
            return true;
    }
    return false;
}

static void check_mini_result(const kiln_otlp_result *r)
{
    CHECK_EQ(r->n_profiles, 1);
    CHECK_EQ(r->n_rejected, 0);
    CHECK_EQ(r->n_series, 3);
    if (r->n_series != 3)
        return;
    const kiln_otlp_series *fallback = &r->series[0], *a = &r->series[1], *b = &r->series[2];
    CHECK_STR(label(fallback, "service_name"), "unknown_service:app");
    CHECK_STR(label(a, "service_name"), "svc-a");
    CHECK_STR(label(b, "service_name"), "svc-b");
    CHECK_STR(label(a, "__name__"), "process_cpu");
    CHECK_STR(label(a, "k8s.pod.name"), "pod-1"); /* resource first */
    CHECK_STR(label(a, "scope.attr"), "x");
    CHECK_STR(label(a, "process.pid"), "-9223372036854775808");
    CHECK_EQ(a->n_labels, 8);
    CHECK_EQ(a->profile.values[0], 3 * 10000000LL);  /* three timestamps */
    CHECK_EQ(b->profile.values[0], 11 * 10000000LL); /* 5 + 6 */
    CHECK_EQ(fallback->profile.values[0], 2 * 10000000LL);
    CHECK(has_pprof_label(&a->profile, 0, "thread.name", "worker"));
    CHECK_EQ(b->profile.samples[0].n_labels, 0);
    CHECK(has_pprof_label(&fallback->profile, 0, "trace_id", "0102030405060708090a0b0c0d0e0f10"));
    CHECK(has_pprof_label(&fallback->profile, 0, "span_id", "a0a1a2a3a4a5a6a7"));
    const kiln_pprof_t *p = &a->profile;
    CHECK_EQ(p->time_nanos, 1700000000000000000LL);
    CHECK_EQ(p->n_locations, 1);
    CHECK_EQ(p->n_functions, 1);
    CHECK_EQ(p->n_mappings, 1);
    CHECK_EQ(p->locations[0].mapping, 1);
    CHECK_EQ(p->lines[0].function, 1);
    CHECK(kiln_str_eq(kiln_pprof_str(p, p->functions[0].name), "main"));
    CHECK(kiln_str_eq(kiln_pprof_str(p, p->period_type.type), "cpu"));
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_pprof_validate(p, &err));
}

TEST(rules_on_built_request)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    mini_init(m);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_result r = {0};
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_otlp_convert(a, &m->req, &r, &err));
    check_mini_result(&r);
    /* The same request through the wire and the bounded descriptor. */
    size_t n = protobuf_c_message_get_packed_size(&m->req.base);
    uint8_t *buf = kiln_xmalloc(n);
    protobuf_c_message_pack(&m->req.base, buf);
    kiln_otlp_request *req = NULL;
    CHECK_OK(kiln_otlp_unpack(a, buf, n, &req, &err));
    memset(&r, 0, sizeof(r));
    if (req != NULL)
        CHECK_OK(kiln_otlp_convert(a, req, &r, &err));
    check_mini_result(&r);
    free(buf);
    kiln_arena_destroy(a);
    free(m);
}

/* Converts m and returns the status; *r and err hold what came back. */
static kiln_status convert_mini(mini *m, kiln_otlp_result *r, kiln_err *err)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    memset(r, 0, sizeof(*r));
    kiln_status st = kiln_otlp_convert(a, &m->req, r, err);
    r->series = NULL; /* arena memory: gone below */
    kiln_arena_destroy(a);
    return st;
}

/* Samples on the dictionary's empty stack (index 0): a series whose first
 * stack has no frame, its stack array still unallocated. */
TEST(empty_stacks_convert)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    mini_init(m);
    for (int i = 0; i < 3; i++)
        m->smp[i].stack_index = 0;
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_result r = {0};
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_otlp_convert(a, &m->req, &r, &err));
    CHECK_EQ(r.n_series, 3);
    for (size_t i = 0; i < r.n_series; i++) {
        const kiln_pprof_t *p = &r.series[i].profile;
        CHECK_EQ(p->n_samples, 1);
        CHECK_EQ(p->samples[0].n_locs, 0);
        CHECK_EQ(p->n_locations, 0);
        CHECK_OK(kiln_pprof_validate(p, &err));
    }
    CHECK_EQ(r.series[2].profile.values[0], 11 * 10000000LL); /* 5 + 6, as with frames */
    kiln_arena_destroy(a);
    free(m);
}

TEST(broken_dictionary_fails_request)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    kiln_otlp_result r;
    kiln_err err = {KILN_OK, ""};
    mini_init(m);
    m->req.dictionary = NULL;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "missing profile metadata dictionary") != NULL);
    mini_init(m);
    m->str[0] = "x";
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "string_table[0]") != NULL);
    mini_init(m);
    m->loc[1].mapping_index = 5;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_STR(err.msg, "otlp: dictionary.location_table[1].mapping_index 5 out of range "
                       "(mapping_table has 2 entries)");
    mini_init(m);
    m->line.function_index = -1;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "lines[0].function_index -1 out of range") != NULL);
    mini_init(m);
    m->stk_locs[0] = 2;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "stack_table[1].location_indices[0] 2 out of range") != NULL);
    mini_init(m);
    m->fn[1].filename_strindex = N_STR;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "function_table[1].filename_strindex") != NULL);
    mini_init(m);
    m->attr_any[2].string_value_strindex = 99;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "attribute_table[2].value string index 99") != NULL);
    mini_init(m);
    m->map[1].n_attribute_indices = 1, m->map[1].attribute_indices = m->attrs1;
    m->attrs1[0] = 7;
    CHECK_EQ(convert_mini(m, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK(strstr(err.msg, "mapping_table[1].attribute_indices[0] 7") != NULL);
    free(m);
}

/* One bad profile is rejected with a reason; the request still converts. */
static void check_rejected(mini *m, const char *want)
{
    kiln_otlp_result r;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(convert_mini(m, &r, &err));
    CHECK_EQ(r.n_rejected, 1);
    CHECK_EQ(r.n_series, 0);
    if (strstr(r.first_rejection.msg, want) == NULL)
        printf("  got \"%s\", want \"%s\"\n", r.first_rejection.msg, want);
    CHECK(strstr(r.first_rejection.msg, want) != NULL);
}

TEST(bad_profile_is_rejected)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    mini_init(m);
    m->smp[1].stack_index = 2;
    check_rejected(m, "profiles[0].samples[1].stack_index 2 out of range (stack_table has 2");
    mini_init(m);
    m->smp[2].link_index = 2;
    check_rejected(m, "samples[2].link_index 2 out of range");
    mini_init(m);
    m->attrs0[1] = 4;
    check_rejected(m, "samples[0].attribute_indices[1] 4 out of range");
    mini_init(m);
    m->prof.sample_type = NULL;
    check_rejected(m, "sample_type is missing");
    mini_init(m);
    m->pt.unit_strindex = 100;
    check_rejected(m, "period_type.unit_strindex 100");
    mini_init(m);
    m->smp[1].n_timestamps_unix_nano = 1;
    check_rejected(m, "samples[1] has 2 values but 1 timestamps");
    mini_init(m);
    m->smp[0].n_timestamps_unix_nano = 0;
    check_rejected(m, "samples[0] has neither values nor timestamps");
    mini_init(m);
    m->rkv[1].key = "";
    m->rkv[1].key_strindex = 77;
    check_rejected(m, "resource.attributes[1].key_strindex 77");
    free(m);
}

TEST(names_and_service_fallbacks)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    kiln_otlp_result r;
    kiln_err err = {KILN_OK, ""};
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    mini_init(m);
    m->smp[0].n_attribute_indices = 0;
    m->smp[1].n_attribute_indices = 0;
    m->rkv[0].key = "service.name"; /* resource service.name wins */
    m->prof.period = 0;             /* no period: not converted, named process_cpu */
    CHECK_OK(kiln_otlp_convert(a, &m->req, &r, &err));
    CHECK_EQ(r.n_series, 1);
    if (r.n_series == 1) {
        CHECK_STR(label(&r.series[0], "service_name"), "app");
        CHECK_STR(label(&r.series[0], "__name__"), "process_cpu");
        CHECK_EQ(r.series[0].profile.values[0], 3);
        CHECK(kiln_str_eq(
            kiln_pprof_str(&r.series[0].profile, r.series[0].profile.sample_types[0].type),
            "samples"));
    }
    m->rkv[0].key = "other";
    m->rkv[1].key = "also.other";
    m->st.type_strindex = S_MAIN; /* main:count with a cpu period: named cpu */
    m->prof.period = 5;
    CHECK_OK(kiln_otlp_convert(a, &m->req, &r, &err));
    if (r.n_series == 1) {
        CHECK_STR(label(&r.series[0], "service_name"), "unknown_service");
        CHECK_STR(label(&r.series[0], "__name__"), "cpu");
        CHECK_EQ(r.series[0].profile.values[0], 3);
    }
    kiln_arena_destroy(a);
    free(m);
}

/* Writes a length-prefixed field (tag, length varint) in front of buf[*pos..]. */
static void prepend_field(uint8_t *buf, size_t *pos, uint8_t tag, size_t len)
{
    uint8_t v[10];
    size_t n = 0;
    do {
        v[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        len >>= 7;
    } while (len != 0);
    while (n > 0)
        buf[--*pos] = v[--n];
    buf[--*pos] = tag;
}

/* A request whose one resource attribute nests `levels` arrays. */
static uint8_t *deep_request(size_t levels, size_t *len)
{
    size_t cap = levels * 16 + 64, pos = cap;
    uint8_t *buf = kiln_xmalloc(cap);
    for (size_t i = 0; i < levels; i++) {
        prepend_field(buf, &pos, 0x0a, cap - pos); /* ArrayValue.values = AnyValue */
        prepend_field(buf, &pos, 0x2a, cap - pos); /* AnyValue.array_value */
    }
    prepend_field(buf, &pos, 0x12, cap - pos); /* KeyValue.value */
    buf[--pos] = 'k';
    buf[--pos] = 1;
    buf[--pos] = 0x0a;                         /* KeyValue.key = "k" */
    prepend_field(buf, &pos, 0x0a, cap - pos); /* Resource.attributes */
    prepend_field(buf, &pos, 0x0a, cap - pos); /* ResourceProfiles.resource */
    prepend_field(buf, &pos, 0x0a, cap - pos); /* request.resource_profiles */
    *len = cap - pos;
    memmove(buf, buf + pos, *len);
    return buf;
}

TEST(deep_anyvalue_is_bounded)
{
    size_t len = 0;
    uint8_t *buf = deep_request(200000, &len);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_otlp_unpack(a, buf, len, &req, &err));
    if (req != NULL) {
        CHECK_EQ(req->n_resource_profiles, 1);
        kiln_otlp_result r;
        CHECK_EQ(kiln_otlp_convert(a, req, &r, &err), KILN_INVALID_ARGUMENT); /* no dictionary */
    }
    free(buf);
    kiln_arena_destroy(a);
    CHECK(kiln_otlp_request_descriptor() == kiln_otlp_request_descriptor());
    const ProtobufCMessageDescriptor *generated =
        &PB(collector__profiles__v1development__export_profiles_service_request__descriptor);
    CHECK_STR(kiln_otlp_request_descriptor()->name, generated->name);
}

static kiln_status echo(void *svc, kiln_rpc_ctx *ctx, const ProtobufCMessage *req,
                        ProtobufCMessage **resp)
{
    (void)svc, (void)ctx;
    *resp = (ProtobufCMessage *)req;
    return KILN_OK;
}

/* Each Profile's size as protobuf-c packs it, for the limit on a
 * profile's bytes: the hand-summed samples match protobuf-c's walk. */
static size_t size_mismatches(const kiln_otlp_request *req, size_t *profiles)
{
    size_t bad = 0;
    for (size_t i = 0; i < req->n_resource_profiles; i++) {
        const o_rprof *rp = req->resource_profiles[i];
        for (size_t j = 0; j < rp->n_scope_profiles; j++) {
            const o_sprof *sp = rp->scope_profiles[j];
            for (size_t k = 0; k < sp->n_profiles; k++, (*profiles)++)
                bad += kiln_otlp__profile_size(sp->profiles[k]) !=
                       protobuf_c_message_get_packed_size(&sp->profiles[k]->base);
        }
    }
    return bad;
}

TEST(profile_size_is_protobuf_c_s)
{
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    static const char *const files[] = {
        "grafana-pyroscope/otel-ebpf-profile.pb.bin",
        "hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin"};
    for (size_t f = 0; f < 2; f++) {
        kiln_otlp_request *req = load(a, files[f], false);
        size_t profiles = 0;
        if (req != NULL)
            CHECK_EQ(size_mismatches(req, &profiles), 0);
        CHECK(profiles > 0);
    }
    /* Every field's edge: zero, negative (10-byte) and large values, empty
     * and full arrays, and a sample with an unknown field. */
    int32_t attrs[3] = {0, -1, 300};
    int64_t values[4] = {0, -5, INT64_MAX, 1 << 20};
    uint64_t ts[2] = {1, UINT64_MAX};
    uint8_t unk_data[2] = {0x01, 0x02};
    ProtobufCMessageUnknownField unk = {99, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, 2, unk_data};
    o_sample s[4];
    o_sample *sp[4];
    for (size_t i = 0; i < 4; i++) {
        opentelemetry__proto__profiles__v1development__sample__init(&s[i]);
        sp[i] = &s[i];
    }
    s[1] = (o_sample){s[1].base, -7, 3, attrs, -2, 4, values, 2, ts};
    s[2] = (o_sample){s[2].base, 1 << 30, 1, attrs + 2, 70000, 1, values + 2, 0, NULL};
    s[3] = s[1];
    s[3].base.n_unknown_fields = 1;
    s[3].base.unknown_fields = &unk;
    o_profile p;
    opentelemetry__proto__profiles__v1development__profile__init(&p);
    p.samples = sp;
    p.n_samples = 4;
    p.period = -3;
    CHECK_EQ(kiln_otlp__profile_size(&p), protobuf_c_message_get_packed_size(&p.base));
    kiln_arena_destroy(a);
}

/* A NUL in each of the request's strings (dictionary string table,
 * resource and scope attributes) is refused, by the rpc layer (gRPC and
 * Connect) and by kiln_otlp_unpack (OTLP over HTTP, ad hoc uploads). */
TEST(nul_in_any_string_is_refused)
{
    mini *m = kiln_xcalloc(1, sizeof(*m));
    mini_init(m);
    size_t n = protobuf_c_message_get_packed_size(&m->req.base);
    uint8_t *clean = kiln_xmalloc(n), *buf = kiln_xmalloc(n);
    protobuf_c_message_pack(&m->req.base, clean);
    kiln_rpc_registry_t *reg = kiln_rpc_registry_create();
    kiln_rpc_method method = {"/otlp.Test/Export",
                              kiln_otlp_request_descriptor(),
                              kiln_otlp_request_descriptor(),
                              echo,
                              NULL,
                              KILN_RPC_PUBLIC,
                              kiln_otlp_unpack_message};
    kiln_rpc_register(reg, &method);
    const kiln_rpc_method *em = kiln_rpc_find(reg, KILN_RPC_PUBLIC, method.path, 17);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_err err = {KILN_OK, ""};
    kiln_rpc_ctx ctx = {.tenant = "t", .arena = a, .err = &err};
    kiln_buf out;
    kiln_buf_init(&out, 0);
    CHECK_OK(kiln_rpc_invoke(em, &ctx, clean, n, KILN_CODEC_PROTO, &out));
    static const char *const strings[] = {
        "nanoseconds", "worker", "k8s.pod.name",           "pod-1",
        "scope.attr",  "other",  "process.executable.name"};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        memcpy(buf, clean, n);
        uint8_t *at = memmem(buf, n, strings[i], strlen(strings[i]));
        CHECK(at != NULL);
        if (at == NULL)
            continue;
        *at = 0;
        err = (kiln_err){KILN_OK, ""};
        CHECK_EQ(kiln_rpc_invoke(em, &ctx, buf, n, KILN_CODEC_PROTO, &out), KILN_INVALID_ARGUMENT);
        CHECK(strstr(err.msg, "NUL") != NULL);
        /* OTLP over HTTP and ad hoc uploads unpack without the rpc layer. */
        kiln_otlp_request *req = NULL;
        err = (kiln_err){KILN_OK, ""};
        CHECK_EQ(kiln_otlp_unpack(a, buf, n, &req, &err), KILN_INVALID_ARGUMENT);
        CHECK(strstr(err.msg, "NUL") != NULL);
    }
    kiln_otlp_request *req = NULL;
    CHECK_OK(kiln_otlp_unpack(a, clean, n, &req, &err));
    kiln_buf_free(&out);
    kiln_arena_destroy(a);
    kiln_rpc_registry_destroy(reg);
    free(buf);
    free(clean);
    free(m);
}

int main(void)
{
    RUN(ebpf_capture);
    RUN(ebpf_capture_2025);
    RUN(profile_size_is_protobuf_c_s);
    RUN(corrupted_capture);
    RUN(rules_on_built_request);
    RUN(empty_stacks_convert);
    RUN(broken_dictionary_fails_request);
    RUN(bad_profile_is_rejected);
    RUN(names_and_service_fallbacks);
    RUN(deep_anyvalue_is_bounded);
    RUN(nul_in_any_string_is_refused);
    return check_done();
}
