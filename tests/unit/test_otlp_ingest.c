/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: OTLP exports through the distributor into a head (fake_store.h).
 * The series an export converts to share one set of symbol tables, which
 * the distributor validates and normalises once (distributor.c,
 * share_symbols). Each capture of shared testdata goes in twice: as
 * converted, and with every series given a private copy of the tables,
 * which the distributor then prepares series by series as before sharing
 * (and as for every other format); the two heads must hold the same series
 * with the same flame graphs (each node's path of function names and its
 * self value). Also: a broken string in the shared tables rejects every
 * profile of the export, and stores nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "distributor.h"
#include "fake_store.h"
#include "head_read.h"
#include "otlp.h"
#include "otlp_int.h" /* white-box: the dictionary's short type names */
#include "overrides.h"
#include "tree.h"

#define ARENA_CAP (256u << 20)
#define TENANT "t"
#define MAX_SERIES 1024

/* A distributor over its own fake store (its own head). */
typedef struct side {
    fake_store fake;
    kiln_overrides_t *limits;
    kiln_metrics_t *metrics;
    kiln_distributor_t *d;
} side;

static void side_open(side *s)
{
    memset(s, 0, sizeof(*s));
    fake_store_init(&s->fake);
    kiln_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_profile_bytes = 4u << 20;
    lim.max_label_names = 64, lim.max_label_name_len = 1024, lim.max_label_value_len = 2048;
    s->limits = kiln_overrides_create(&lim);
    s->metrics = kiln_metrics_create();
    kiln_distributor_config dc = {.limits = s->limits,
                                  .max_profile_bytes = lim.max_profile_bytes,
                                  .store = fake_store_iface(&s->fake)};
    s->d = kiln_distributor_create(&dc, s->metrics);
}

static void side_close(side *s)
{
    kiln_distributor_destroy(s->d);
    kiln_metrics_destroy(s->metrics);
    kiln_overrides_destroy(s->limits);
    fake_store_fini(&s->fake);
}

static void *copy_of(kiln_arena_t *a, const void *p, size_t n, size_t size)
{
    void *c = kiln_arena_alloc(a, n * size + 1);
    CHECK(c != NULL);
    if (c != NULL && n != 0)
        memcpy(c, p, n * size);
    return c;
}

/* Gives p a private copy of its symbol tables: the distributor no longer
 * sees them shared. */
static void own_tables(kiln_arena_t *a, kiln_pprof_t *p)
{
    p->strings = copy_of(a, p->strings, p->n_strings, sizeof(*p->strings));
    p->mappings = copy_of(a, p->mappings, p->n_mappings, sizeof(*p->mappings));
    p->functions = copy_of(a, p->functions, p->n_functions, sizeof(*p->functions));
    p->locations = copy_of(a, p->locations, p->n_locations, sizeof(*p->locations));
    p->lines = copy_of(a, p->lines, p->n_lines, sizeof(*p->lines));
}

/* Converts req and ingests it as services/distributor/otlp.c does, the
 * series' tables shared or (private) copied apart. */
static void ingest(side *s, kiln_arena_t *a, const kiln_otlp_request *req, bool private,
                   kiln_ingest_rejections *rej, kiln_otlp_result *r)
{
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_otlp_convert(a, req, r, &err));
    kiln_ingest_profile *in = kiln_arena_alloc(a, (r->n_series + 1) * sizeof(*in));
    size_t *group = kiln_arena_alloc(a, (r->n_series + 1) * sizeof(*group));
    for (size_t i = 0; i < r->n_series; i++) {
        const kiln_otlp_series *x = &r->series[i];
        in[i] =
            (kiln_ingest_profile){x->labels, x->n_labels, x->profile, x->profile_id, x->raw_bytes};
        group[i] = x->profile_index;
        if (private)
            own_tables(a, &in[i].profile);
    }
    kiln_status st =
        kiln_distributor_ingest_groups(s->d, TENANT, in, group, r->n_series, a, rej, &err);
    if (st != KILN_OK)
        printf("  ingest: %s\n", err.msg);
    CHECK_OK(st);
}

static kiln_otlp_request *load(kiln_arena_t *a, const char *rel)
{
    size_t len = 0;
    unsigned char *file = check_read_testdata(rel, &len);
    CHECK(file != NULL);
    if (file == NULL)
        return NULL;
    /* The request points into its bytes: copied into the arena, which
     * lives as long as the request. */
    uint8_t *data = kiln_arena_alloc(a, len + 1);
    if (data != NULL)
        memcpy(data, file, len);
    free(file);
    kiln_otlp_request *req = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK(data != NULL);
    if (data != NULL)
        CHECK_OK(kiln_otlp_unpack(a, data, len, &req, &err));
    return req;
}

/* The stored series, each as its labels written out, sorted. */
typedef struct series_list {
    char *s[MAX_SERIES];
    size_t n;
} series_list;

static void on_series(void *ctx, const kiln_label_t *l, size_t n)
{
    series_list *sl = ctx;
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++)
        kiln_buf_printf(&b, "%s\x1f%s\x1e", l[i].name, l[i].value);
    kiln_buf_putc(&b, '\0');
    if (sl->n < MAX_SERIES)
        sl->s[sl->n++] = strdup(b.ptr);
    kiln_buf_free(&b);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void list_series(kiln_head_t *h, series_list *sl)
{
    sl->n = 0;
    check_head_series(h, NULL, 0, 0, on_series, sl);
    qsort(sl->s, sl->n, sizeof(sl->s[0]), cmp_str);
}

static void free_series(series_list *sl)
{
    for (size_t i = 0; i < sl->n; i++)
        free(sl->s[i]);
    sl->n = 0;
}

/* A selector of every label of one series (as on_series wrote them). */
static kiln_selector_t *series_selector(const char *labels)
{
    kiln_selector_t *sel = NULL;
    kiln_err err = {KILN_OK, ""};
    CHECK_OK(kiln_selector_parse("{}", 2, &sel, &err));
    char *copy = strdup(labels);
    for (char *at = copy; sel != NULL && *at != '\0';) {
        char *us = strchr(at, '\x1f'), *rs = strchr(us, '\x1e');
        *us = *rs = '\0';
        CHECK_OK(kiln_selector_add(sel, at, KILN_MATCH_EQ, us + 1, &err));
        at = rs + 1;
    }
    free(copy);
    return sel;
}

/* h's flame graph of sel, one line per node with a self value: the path
 * of function names from the root, then the value; sorted. */
static void flame_lines(kiln_head_t *h, const kiln_selector_t *sel, kiln_buf *out)
{
    kiln_tree_t *t = kiln_tree_create();
    kiln_arena_t *a = kiln_arena_create(0);
    check_head_merge(h, sel, 0, 0, t);
    const Ingester__V1__TreeResponse *r = kiln_tree_to_response(t, a);
    char **line = calloc(r->n_self + 1, sizeof(*line));
    size_t n = 0;
    for (size_t i = 0; i < r->n_self; i++) {
        if (r->self[i] == 0)
            continue;
        kiln_buf b;
        kiln_buf_init(&b, 0);
        for (int32_t k = (int32_t)i; k > 0; k = r->parent[k])
            kiln_buf_printf(&b, "%s;", r->names[r->name[k]]);
        kiln_buf_printf(&b, " %lld", (long long)r->self[i]);
        kiln_buf_putc(&b, '\0');
        line[n++] = strdup(b.ptr);
        kiln_buf_free(&b);
    }
    qsort(line, n, sizeof(*line), cmp_str);
    out->len = 0;
    kiln_buf_printf(out, "total %lld\n", (long long)kiln_tree_total(t));
    for (size_t i = 0; i < n; i++) {
        kiln_buf_printf(out, "%s\n", line[i]);
        free(line[i]);
    }
    free(line);
    kiln_arena_destroy(a);
    kiln_tree_destroy(t);
}

/* The capture ingested shared and private: the same series, the same
 * flame graph for each. Returns how many series. */
static size_t same_as_private(const char *rel)
{
    side shared, private;
    side_open(&shared);
    side_open(&private);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = load(a, rel);
    kiln_ingest_rejections rs = {0, {KILN_OK, ""}}, rp = {0, {KILN_OK, ""}};
    kiln_otlp_result r1, r2;
    if (req != NULL) {
        ingest(&shared, a, req, false, &rs, &r1);
        ingest(&private, a, req, true, &rp, &r2);
    }
    CHECK_EQ(rs.rejected, 0);
    CHECK_EQ(rp.rejected, 0);
    kiln_head_t *hs = fake_store__head(&shared.fake, TENANT, false);
    kiln_head_t *hp = fake_store__head(&private.fake, TENANT, false);
    series_list ls = {0}, lp = {0};
    CHECK(hs != NULL && hp != NULL);
    if (hs != NULL && hp != NULL) {
        list_series(hs, &ls);
        list_series(hp, &lp);
    }
    CHECK(ls.n > 0);
    CHECK_EQ(ls.n, lp.n);
    kiln_buf fs, fp;
    kiln_buf_init(&fs, 0);
    kiln_buf_init(&fp, 0);
    for (size_t i = 0; i < ls.n && ls.n == lp.n; i++) {
        CHECK_STR(ls.s[i], lp.s[i]);
        kiln_selector_t *sel = series_selector(ls.s[i]);
        flame_lines(hs, sel, &fs);
        flame_lines(hp, sel, &fp);
        CHECK(fs.len > strlen("total 0\n"));
        CHECK_EQ(fs.len, fp.len);
        CHECK(fs.len == fp.len && memcmp(fs.ptr, fp.ptr, fs.len) == 0);
        kiln_selector_destroy(sel);
    }
    size_t n = ls.n;
    kiln_buf_free(&fs);
    kiln_buf_free(&fp);
    free_series(&ls);
    free_series(&lp);
    kiln_arena_destroy(a);
    side_close(&shared);
    side_close(&private);
    return n;
}

TEST(ebpf_capture_stores_as_unshared)
{
    CHECK(same_as_private("grafana-pyroscope/otel-ebpf-profile.pb.bin") > 10);
}

TEST(ebpf_capture_2025_stores_as_unshared)
{
    CHECK(same_as_private("hard/grafana-pyroscope/otel-ebpf-profile.2025capture.pb.bin") > 0);
}

/* The name string of the first function of the first profile's first
 * sample, which the export's shared tables hold. */
static char **first_function_name(kiln_otlp_request *req)
{
    const o_dict *d = req->dictionary;
    const o_profile *p = req->resource_profiles[0]->scope_profiles[0]->profiles[0];
    const o_stack *st = d->stack_table[p->samples[0]->stack_index];
    for (size_t k = 0; k < st->n_location_indices; k++) {
        const o_loc *l = d->location_table[st->location_indices[k]];
        if (l->n_lines != 0 && l->lines[0]->function_index > 0)
            return &d->string_table[d->function_table[l->lines[0]->function_index]->name_strindex];
    }
    return NULL;
}

/* A string of the shared tables that is not UTF-8 is a broken dictionary:
 * every profile of the export is rejected, though one profile used it. */
TEST(broken_shared_string_rejects_the_export)
{
    side s;
    side_open(&s);
    kiln_arena_t *a = kiln_arena_create(ARENA_CAP);
    kiln_otlp_request *req = load(a, "grafana-pyroscope/otel-ebpf-profile.pb.bin");
    char **name = req != NULL ? first_function_name(req) : NULL;
    CHECK(name != NULL);
    if (name != NULL) {
        *name = "bad\xff";
        kiln_ingest_rejections rej = {0, {KILN_OK, ""}};
        kiln_otlp_result r;
        ingest(&s, a, req, false, &rej, &r);
        CHECK_EQ(rej.rejected, r.n_profiles);
        CHECK(strstr(rej.first.msg, "not valid UTF-8") != NULL);
        CHECK(fake_store__head(&s.fake, TENANT, false) == NULL);
    }
    kiln_arena_destroy(a);
    side_close(&s);
}

int main(void)
{
    RUN(ebpf_capture_stores_as_unshared);
    RUN(ebpf_capture_2025_stores_as_unshared);
    RUN(broken_shared_string_rejects_the_export);
    return check_done();
}
