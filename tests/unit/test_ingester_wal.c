/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the ingester's WAL records (docs/wal-format.md). A restart
 * replays exactly what was appended (labels split into parts, span ids,
 * profile ids); records of format 1 still replay; a record of an unknown
 * format stops the start-up; an undecodable one is skipped. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "db.h"
#include "check.h"
#include "head_read.h"
#include "distributor.h"
#include "ingester.h"
#include "db_fixture.h"
#include "ingester/v1/ingester.pb-c.h"
#include "metrics.h"
#include "overrides.h"
#include "profiles.h"
#include "wal.h"
#include "tmpdir.h"

#define TENANT "t1"
#define T0 1700000000000000000LL

static char dir[64];
static kiln_objstore_t *store;

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kiln-ingwal-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    store = check_store_open(dir);
}

static void rm_dir(void)
{
    kiln_objstore_close(store);
    store = NULL;
    tmpdir_remove(dir);
}

static kiln_status open_ingester(kiln_ingester_t **out, kiln_err *err)
{
    kiln_ingester_config c = {.storage_path = dir, .store = store, .wal_segment_bytes = 1u << 30};
    return kiln_ingester_create(&c, out, err);
}

/* What a head holds, summed so that equal contents give equal figures. */
typedef struct snapshot {
    kiln_head_stats_t stats;
    size_t profiles;
    uint64_t profile_sum; /* order-independent: labels, time, total and id of each */
    int64_t total;        /* merged over everything */
    int64_t span_total;   /* merged over the samples of a few span ids */
    size_t tree_nodes;
} snapshot;

static void on_profile(void *ctx, const kiln_read_profile *p)
{
    snapshot *s = ctx;
    uint64_t k[2] = {kiln_profile_key(p->labels, p->n_labels, p->time_ms, p->id),
                     (uint64_t)p->total};
    s->profile_sum += XXH3_64bits(k, sizeof(k));
    s->profiles++;
}

/* Span ids (ascending) of the span profiles pushed below: span_id 239 and
 * some profile_id labels. */
static const uint64_t spans[] = {0x239, 0x00a5d475c4338711ULL, 0x01b9c5d45bea41f5ULL,
                                 0x02e16edf43da516cULL, 0xc717c11b87121639ULL};

static void take_snapshot(kiln_ingester_t *ing, snapshot *s)
{
    memset(s, 0, sizeof(*s));
    kiln_db_t *db = kiln_ingester_db(ing);
    kiln_db_stats(db, TENANT, &s->stats);
    check_db_profiles(db, TENANT, on_profile, s);
    s->total = check_db_total(db, TENANT, NULL, 0, &s->tree_nodes);
    s->span_total = check_db_total(db, TENANT, spans, sizeof(spans) / sizeof(spans[0]), NULL);
}

static void check_same(const snapshot *a, const snapshot *b)
{
    CHECK_EQ(a->stats.series, b->stats.series);
    CHECK_EQ(a->stats.profiles, b->stats.profiles);
    CHECK_EQ(a->stats.samples, b->stats.samples);
    CHECK_EQ(a->stats.stack_nodes, b->stats.stack_nodes);
    CHECK_EQ(a->stats.locations, b->stats.locations);
    CHECK_EQ(a->stats.strings, b->stats.strings);
    CHECK_EQ(a->profiles, b->profiles);
    CHECK(a->profile_sum == b->profile_sum);
    CHECK_EQ(a->total, b->total);
    CHECK_EQ(a->span_total, b->span_total);
    CHECK_EQ(a->tree_nodes, b->tree_nodes);
}

/* Pushes rel through the distributor (decode, normalise, label split). */
static void push(kiln_distributor_t *d, const char *rel, const char *id, int64_t t)
{
    size_t len;
    unsigned char *raw = check_read_testdata(rel, &len);
    CHECK(raw != NULL);
    if (raw == NULL)
        return;
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "wal-test"}};
    kiln_ingest_profile in = {l, 2, {0}, id, len};
    CHECK_OK(kiln_distributor_decode_pprof(d, raw, len, a, &in.profile, &err));
    in.profile.time_nanos = t;
    CHECK_OK(kiln_distributor_ingest(d, TENANT, &in, 1, a, &err));
    kiln_arena_destroy(a);
    free(raw);
}

TEST(replay_is_exact)
{
    fresh_dir();
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_profile_bytes = 64u << 20;
    lim.max_label_names = 30, lim.max_label_name_len = 1024, lim.max_label_value_len = 2048;
    kiln_overrides_t *o = kiln_overrides_create(&lim);
    kiln_metrics_t *m = kiln_metrics_create();
    kiln_ingester_t *ing;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(open_ingester(&ing, &err));
    kiln_distributor_config dc = {o, lim.max_profile_bytes, kiln_db_store(kiln_ingester_db(ing))};
    kiln_distributor_t *d = kiln_distributor_create(&dc, m);
    const char *files[] = {"gdu/default.pgo", "grafana-pyroscope/go.cpu.labels.pprof",
                           "grafana-pyroscope/single_group_with_optional_span_id.pb.gz",
                           "grafana-pyroscope/profile_java",
                           "grafana-pyroscope/dotnet.labels.pprof"};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            push(d, files[i], round == 0 ? files[i] : NULL, T0 + round * 15000000000LL);
    }
    snapshot before, after;
    take_snapshot(ing, &before);
    CHECK(before.stats.series > 10); /* the label split made parts */
    CHECK(before.span_total > 0);
    kiln_distributor_destroy(d);
    kiln_ingester_destroy(ing);
    CHECK_OK(open_ingester(&ing, &err));
    take_snapshot(ing, &after);
    check_same(&before, &after);
    kiln_ingester_destroy(ing);
    kiln_metrics_destroy(m);
    kiln_overrides_destroy(o);
    rm_dir();
}

/* Every field format 2 carries comes back as it was written. */
static void check_same_profile(const kiln_pprof_t *a, const kiln_pprof_t *b)
{
    CHECK_EQ(a->n_strings, b->n_strings);
    for (size_t i = 0; i < a->n_strings && i < b->n_strings; i++)
        CHECK(a->strings[i].len == b->strings[i].len &&
              memcmp(a->strings[i].ptr, b->strings[i].ptr, a->strings[i].len) == 0);
    CHECK_EQ(a->n_mappings, b->n_mappings);
    for (size_t i = 0; i < a->n_mappings && i < b->n_mappings; i++) {
        const kiln_pprof_mapping *x = &a->mappings[i], *y = &b->mappings[i];
        CHECK(x->memory_start == y->memory_start && x->memory_limit == y->memory_limit &&
              x->file_offset == y->file_offset && x->filename == y->filename &&
              x->build_id == y->build_id);
    }
    CHECK_EQ(a->n_functions, b->n_functions);
    for (size_t i = 0; i < a->n_functions && i < b->n_functions; i++) {
        const kiln_pprof_function *x = &a->functions[i], *y = &b->functions[i];
        CHECK(x->name == y->name && x->system_name == y->system_name &&
              x->filename == y->filename && x->start_line == y->start_line);
    }
    CHECK_EQ(a->n_locations, b->n_locations);
    for (size_t i = 0; i < a->n_locations && i < b->n_locations; i++) {
        const kiln_pprof_location *x = &a->locations[i], *y = &b->locations[i];
        CHECK(x->mapping == y->mapping && x->address == y->address && x->n_lines == y->n_lines);
        for (uint32_t j = 0; j < x->n_lines && x->n_lines == y->n_lines; j++) {
            const kiln_pprof_line *u = &a->lines[x->line_off + j], *v = &b->lines[y->line_off + j];
            CHECK(u->function == v->function && u->line == v->line);
        }
    }
    CHECK_EQ(a->n_sample_types, b->n_sample_types);
    for (size_t t = 0; t < a->n_sample_types && t < b->n_sample_types; t++)
        CHECK(a->sample_types[t].type == b->sample_types[t].type &&
              a->sample_types[t].unit == b->sample_types[t].unit);
    CHECK(a->period_type.type == b->period_type.type && a->period_type.unit == b->period_type.unit);
    CHECK(a->period == b->period && a->time_nanos == b->time_nanos &&
          a->duration_nanos == b->duration_nanos);
    CHECK_EQ(a->n_samples, b->n_samples);
    for (size_t i = 0; i < a->n_samples && i < b->n_samples; i++) {
        const kiln_pprof_sample *x = &a->samples[i], *y = &b->samples[i];
        CHECK(x->n_locs == y->n_locs && x->n_labels == y->n_labels);
        for (uint32_t j = 0; j < x->n_locs && x->n_locs == y->n_locs; j++)
            CHECK(a->locs[x->loc_off + j] == b->locs[y->loc_off + j]);
        for (size_t t = 0; t < a->n_sample_types && a->n_sample_types == b->n_sample_types; t++)
            CHECK(a->values[x->value_off + t] == b->values[y->value_off + t]);
        for (uint32_t j = 0; j < x->n_labels && x->n_labels == y->n_labels; j++)
            CHECK(a->labels[x->label_off + j].key == b->labels[y->label_off + j].key &&
                  a->labels[x->label_off + j].str == b->labels[y->label_off + j].str);
    }
}

/* Two parts sharing symbols (a label split) and one of another profile:
 * decode gives back every part, the first two still sharing symbols. */
TEST(record_roundtrip)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p, q;
    CHECK(check_load_profile(a, "grafana-pyroscope/go.cpu.labels.pprof", &p));
    CHECK(check_load_profile(a, "grafana-pyroscope/dotnet.labels.pprof", &q));
    p.time_nanos = T0, p.duration_nanos = 10000000000LL;
    kiln_pprof_t half[2] = {p, p};
    half[0].n_samples = p.n_samples / 3;
    half[1].samples = p.samples + half[0].n_samples;
    half[1].n_samples = p.n_samples - half[0].n_samples;
    kiln_label_t l0[] = {{"__name__", "process_cpu"}, {"x", ""}};
    kiln_label_t l1[] = {{"__name__", "process_cpu"}, {"x", "\xc3\xa9t\xc3\xa9"}};
    kiln_head_part parts[3] = {{l0, 2, &half[0], 1}, {l1, 2, &half[1], UINT64_MAX}, {l1, 1, &q, 0}};
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_record_encode("tenant-a", parts, 3, &b);
    kiln_record rec;
    CHECK_OK(kiln_record_decode(a, (const uint8_t *)b.ptr, b.len, &rec, NULL));
    CHECK_STR(rec.tenant, "tenant-a");
    CHECK_EQ(rec.n, 3);
    for (size_t i = 0; i < rec.n && i < 3; i++) {
        CHECK_EQ(rec.parts[i].n_labels, parts[i].n_labels);
        for (size_t j = 0; j < parts[i].n_labels && j < rec.parts[i].n_labels; j++) {
            CHECK_STR(rec.parts[i].labels[j].name, parts[i].labels[j].name);
            CHECK_STR(rec.parts[i].labels[j].value, parts[i].labels[j].value);
        }
        CHECK(rec.parts[i].id == parts[i].id);
        check_same_profile(parts[i].profile, rec.parts[i].profile);
    }
    CHECK(rec.n == 3 && rec.parts[0].profile->strings == rec.parts[1].profile->strings);
    for (size_t cut = 0; cut < b.len; cut += 1 + cut / 8) /* every truncation is refused */
        CHECK_EQ(kiln_record_decode(a, (const uint8_t *)b.ptr, cut, &rec, NULL), KILN_DATA_LOSS);
    kiln_buf_free(&b);
    kiln_arena_destroy(a);
}

/* A normalised profile with n locations (addresses only) and samples
 * whose stacks reach the last ones: stack indices of 1, 2 and 4 bytes. */
static void wide_profile(kiln_arena_t *a, size_t n, kiln_pprof_t *p)
{
    static kiln_str_t strings[] = {{"", 0}, {"cpu", 3}, {"nanoseconds", 11}};
    static kiln_pprof_value_type types[] = {{1, 2}};
    memset(p, 0, sizeof(*p));
    p->strings = strings, p->n_strings = 3;
    p->sample_types = types, p->n_sample_types = 1;
    p->locations = kiln_arena_calloc(a, n, sizeof(*p->locations));
    for (size_t i = 0; i < n; i++)
        p->locations[i] = (kiln_pprof_location){i + 1, KILN_PPROF_NONE, 0x1000 + i, 0, 0, false};
    p->n_locations = n;
    /* Stacks of 3, 8, 11 and 19 frames: the writer stores 8 (4) indices at
     * once, the last store overlapping the one before, and writes shorter
     * stacks frame by frame. */
    static const uint32_t depths[] = {3, 8, 11, 19};
    p->n_samples = 4;
    p->samples = kiln_arena_calloc(a, 4, sizeof(*p->samples));
    p->locs = kiln_arena_calloc(a, 3 + 8 + 11 + 19, sizeof(*p->locs));
    p->values = kiln_arena_calloc(a, 4, sizeof(*p->values));
    uint32_t off = 0;
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t depth = depths[i];
        p->samples[i] = (kiln_pprof_sample){off, depth, i, 1, 0, 0};
        p->values[i] = -5 + 1000000007LL * i;
        for (uint32_t j = 0; j < depth; j++)
            p->locs[off + j] = (n - 1 - 7 * i - 13 * j) % n;
        off += depth;
    }
}

/* Stacks of profiles with 200, 60000 and 70000 locations (1, 2 and 4 bytes
 * per frame) round-trip. */
TEST(record_stack_widths)
{
    kiln_arena_t *a = kiln_arena_create(0);
    const size_t sizes[] = {200, 60000, 70000};
    for (size_t k = 0; k < 3; k++) {
        kiln_pprof_t p;
        wide_profile(a, sizes[k], &p);
        kiln_label_t l[] = {{"__name__", "process_cpu"}};
        kiln_head_part part = {l, 1, &p, 3};
        kiln_buf b;
        kiln_buf_init(&b, 0);
        kiln_record_encode("t", &part, 1, &b);
        kiln_record rec;
        CHECK_OK(kiln_record_decode(a, (const uint8_t *)b.ptr, b.len, &rec, NULL));
        CHECK_EQ(rec.n, 1);
        if (rec.n == 1)
            check_same_profile(&p, rec.parts[0].profile);
        kiln_buf_free(&b);
    }
    kiln_arena_destroy(a);
}

/* Appends raw records to <dir>/wal, as an older or newer build would have. */
static void write_records(const uint8_t *const *rec, const size_t *len, size_t n)
{
    char wdir[128];
    snprintf(wdir, sizeof(wdir), "%s/wal", dir);
    kiln_wal_config wc = {0, 1u << 20, 0};
    kiln_wal_t *w;
    CHECK_OK(kiln_wal_open(wdir, &wc, &w, NULL));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(kiln_wal_append(w, rec[i], len[i], NULL, NULL));
    kiln_wal_close(w);
}

/* A format-1 record: protobuf WalRecord holding normalised pprof. */
static size_t v1_record(const kiln_pprof_t *p, uint8_t **out)
{
    kiln_buf pb;
    kiln_buf_init(&pb, 0);
    kiln_pprof_encode(p, true, &pb);
    Types__V1__LabelPair l0 = TYPES__V1__LABEL_PAIR__INIT, l1 = TYPES__V1__LABEL_PAIR__INIT;
    l0.name = "__name__", l0.value = "process_cpu";
    l1.name = "service_name", l1.value = "old";
    Types__V1__LabelPair *labels[] = {&l0, &l1};
    Ingester__V1__ProfileSeries s = INGESTER__V1__PROFILE_SERIES__INIT;
    s.n_labels = 2, s.labels = labels;
    s.profile.data = (uint8_t *)pb.ptr, s.profile.len = pb.len;
    s.id = "42";
    Ingester__V1__ProfileSeries *series[] = {&s};
    Ingester__V1__WalRecord rec = INGESTER__V1__WAL_RECORD__INIT;
    rec.tenant = TENANT, rec.n_series = 1, rec.series = series;
    size_t n = ingester__v1__wal_record__get_packed_size(&rec);
    *out = malloc(n);
    ingester__v1__wal_record__pack(&rec, *out);
    kiln_buf_free(&pb);
    return n;
}

/* Segments written before format 2 replay; an undecodable record between
 * them is skipped, not fatal. */
TEST(format1_replays)
{
    fresh_dir();
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(check_load_profile(a, "gdu/default.pgo", &p));
    p.time_nanos = T0;
    uint8_t *v1;
    size_t n1 = v1_record(&p, &v1);
    static const uint8_t broken[] = {'K', 2, 0xff};
    const uint8_t *recs[] = {v1, broken};
    size_t lens[] = {n1, sizeof(broken)};
    write_records(recs, lens, 2);
    kiln_ingester_t *ing;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(open_ingester(&ing, &err));
    snapshot s;
    take_snapshot(ing, &s);
    CHECK_EQ(s.profiles, p.n_sample_types);
    kiln_head_t *h = kiln_head_create();
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "old"}};
    check_head_append(h, l, 2, &p, T0, 0);
    kiln_head_stats_t hs;
    kiln_head_stats(h, &hs);
    CHECK_EQ(s.stats.samples, hs.samples);
    CHECK_EQ(s.stats.stack_nodes, hs.stack_nodes);
    CHECK_EQ(s.total, check_head_total(h, "{}"));
    kiln_head_destroy(h);
    kiln_ingester_destroy(ing);
    free(v1);
    kiln_arena_destroy(a);
    rm_dir();
}

/* A format-1 record is checked as strictly as a push: its pprof must
 * validate (a sample naming a location no Location has) and its tenant must
 * not be empty, or the record is undecodable (found by fuzz_wal_record). */
TEST(format1_checked)
{
    static const uint8_t bad_pprof[] = {
        0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,             /* sample_type {1, 2} */
        0x12, 0x06, 0x0a, 0x01, 0x63, 0x12, 0x01, 0x05, /* sample {loc 99, value 5} */
        0x32, 0x00, 0x32, 0x03, 'c',  'p',  'u',  0x32, 0x02, 'n', 's'}; /* "", cpu, ns */
    Ingester__V1__ProfileSeries s = INGESTER__V1__PROFILE_SERIES__INIT;
    s.profile.data = (uint8_t *)bad_pprof, s.profile.len = sizeof(bad_pprof);
    Ingester__V1__ProfileSeries *series[] = {&s};
    const char *tenants[] = {TENANT, ""};
    for (size_t t = 0; t < 2; t++) {
        Ingester__V1__WalRecord rec = INGESTER__V1__WAL_RECORD__INIT;
        rec.tenant = (char *)tenants[t], rec.n_series = 1 - t, rec.series = series;
        uint8_t buf[256];
        size_t n = ingester__v1__wal_record__pack(&rec, buf);
        kiln_arena_t *a = kiln_arena_create(0);
        kiln_record out;
        CHECK_EQ(kiln_record_decode(a, buf, n, &out, NULL), KILN_DATA_LOSS);
        kiln_arena_destroy(a);
    }
}

/* A record of a format this build does not know (a newer build wrote it)
 * stops the start-up with a message that says so. */
TEST(unknown_format_refused)
{
    fresh_dir();
    static const uint8_t newer[] = {'K', 9, 0, 0};
    const uint8_t *recs[] = {newer};
    size_t lens[] = {sizeof(newer)};
    write_records(recs, lens, 1);
    kiln_ingester_t *ing = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_EQ(open_ingester(&ing, &err), KILN_FAILED_PRECONDITION);
    CHECK(strstr(err.msg, "format 9") != NULL);
    rm_dir();
}

/* A part stored again with the same push id, series and time (a retry
 * reaching a replica that kept the first attempt) is acknowledged and not
 * stored twice, before and after a restart; other ids and times are. */
TEST(replica_keeps_one_copy)
{
    fresh_dir();
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    CHECK(check_load_profile(a, "grafana-pyroscope/go.cpu.labels.pprof", &p));
    p.time_nanos = T0;
    kiln_pprof_t later = p;
    later.time_nanos = T0 + 10000000000LL;
    kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", "replica"}};
    kiln_head_part first = {l, 2, &p, 42}, again[2] = {{l, 2, &p, 42}, {l, 2, &later, 42}},
                   other = {l, 2, &p, 43}, no_id = {l, 2, &p, 0};
    kiln_ingester_t *ing;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(open_ingester(&ing, &err));
    snapshot one, s;
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, &first, 1, &err));
    take_snapshot(ing, &one);
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, &first, 1, &err));
    take_snapshot(ing, &s);
    check_same(&one, &s);
    /* only the later one is new */
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, again, 2, &err));
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, &other, 1, &err));
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, &no_id, 1, &err));
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, &no_id, 1, &err));
    take_snapshot(ing, &s);
    CHECK_EQ(s.profiles, 5 * one.profiles);
    CHECK_EQ(s.total, 5 * one.total);
    kiln_ingester_destroy(ing);
    CHECK_OK(open_ingester(&ing, &err)); /* replayed: the keys are known again */
    CHECK_OK(kiln_db_append(kiln_ingester_db(ing), TENANT, again, 2, &err));
    take_snapshot(ing, &s);
    CHECK_EQ(s.profiles, 5 * one.profiles);
    CHECK_EQ(s.total, 5 * one.total);
    kiln_ingester_destroy(ing);
    kiln_arena_destroy(a);
    rm_dir();
}

int main(void)
{
    RUN(record_roundtrip);
    RUN(record_stack_widths);
    RUN(replay_is_exact);
    RUN(format1_replays);
    RUN(format1_checked);
    RUN(unknown_format_refused);
    RUN(replica_keeps_one_copy);
    return check_done();
}
