/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/pprof_build: the built profile has the decoded form
 * (ids 1..N, "" at string 0), interns frames, merges equal samples, and
 * passes kiln_pprof_validate, kiln_pprof_normalize and an encode/decode
 * roundtrip; the arena cap fails cleanly. */
#include <string.h>

#include "arena.h"
#include "check.h"
#include "pprof.h"
#include "pprof_build.h"

static kiln_str_t S(const char *s)
{
    return (kiln_str_t){s, strlen(s)};
}

/* Adds the root-first frames "a;b;c"-style list with value v. */
static void add(kiln_pprof_build_t *b, const char *const *names, size_t n, int64_t v)
{
    uint64_t ids[16];
    for (size_t i = 0; i < n; i++)
        ids[n - 1 - i] = kiln_pprof_build_frame(b, S(names[i]));
    CHECK_OK(kiln_pprof_build_sample(b, ids, n, &v, NULL, 0));
}

static int64_t total(const kiln_pprof_t *p, size_t type)
{
    int64_t t = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        t += p->values[p->samples[i].value_off + type];
    return t;
}

static bool str_is(const kiln_pprof_t *p, int64_t i, const char *s)
{
    return kiln_str_eq(kiln_pprof_str(p, i), s);
}

TEST(decoded_form_and_interning)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    CHECK(b != NULL);
    const char *s1[] = {"main", "work", "leaf"}, *s2[] = {"main", "work"};
    const char *s3[] = {"main", "other"};
    add(b, s1, 3, 5);
    add(b, s2, 2, 7);
    add(b, s1, 3, 10); /* same stack: merged */
    add(b, s3, 2, 1);
    CHECK_EQ(kiln_pprof_build_n_samples(b), 3);
    kiln_pprof_build_sample_type(b, 0, "cpu", "nanoseconds");
    kiln_pprof_build_period(b, "cpu", "nanoseconds", 10000000);
    kiln_pprof_build_time(b, 1700000000000000000LL, 15000000000LL);
    kiln_pprof_t p;
    CHECK_OK(kiln_pprof_build_finish(b, &p, NULL));
    CHECK(str_is(&p, 0, ""));
    CHECK_EQ(p.n_functions, 4);
    CHECK_EQ(p.n_locations, 4);
    CHECK_EQ(p.n_mappings, 1);
    for (size_t i = 0; i < p.n_locations; i++) {
        CHECK_EQ(p.locations[i].id, i + 1);
        CHECK_EQ(p.functions[i].id, i + 1);
        CHECK_EQ(p.lines[p.locations[i].line_off].function, i + 1);
    }
    CHECK(str_is(&p, p.functions[0].name, "main"));
    /* Leaf first: the first sample is leaf, work, main. */
    CHECK_EQ(p.samples[0].n_locs, 3);
    CHECK(str_is(&p, p.functions[p.locs[0] - 1].name, "leaf"));
    CHECK(str_is(&p, p.functions[p.locs[2] - 1].name, "main"));
    CHECK_EQ(p.values[0], 15);
    CHECK_EQ(total(&p, 0), 23);
    CHECK(str_is(&p, p.sample_types[0].type, "cpu"));
    CHECK(str_is(&p, p.period_type.unit, "nanoseconds"));
    CHECK_EQ(p.period, 10000000);
    CHECK_EQ(p.time_nanos, 1700000000000000000LL);
    CHECK_EQ(p.duration_nanos, 15000000000LL);
    kiln_err err;
    CHECK_OK(kiln_pprof_validate(&p, &err));
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
    CHECK_EQ(p.n_samples, 3);
    CHECK_EQ(total(&p, 0), 23);
    kiln_arena_destroy(a);
}

TEST(labels_split_samples_and_roundtrip)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 2);
    kiln_pprof_build_sample_type(b, 0, "contentions", "count");
    kiln_pprof_build_sample_type(b, 1, "delay", "nanoseconds");
    uint64_t id = kiln_pprof_build_frame(b, S("lock"));
    CHECK_EQ(kiln_pprof_build_frame(b, S("lock")), id);
    kiln_pprof_build_label l1 = {S("thread"), S("1")}, l2 = {S("thread"), S("2")};
    int64_t v[2] = {1, 100};
    CHECK_OK(kiln_pprof_build_sample(b, &id, 1, v, &l1, 1));
    CHECK_OK(kiln_pprof_build_sample(b, &id, 1, v, &l2, 1));
    CHECK_OK(kiln_pprof_build_sample(b, &id, 1, v, &l1, 1));
    CHECK_OK(kiln_pprof_build_sample(b, &id, 1, v, NULL, 0));  /* no labels: another sample */
    CHECK_OK(kiln_pprof_build_sample(b, NULL, 0, v, NULL, 0)); /* an empty stack is allowed */
    CHECK_EQ(kiln_pprof_build_n_samples(b), 4);
    kiln_pprof_build_scale(b, 1, 3);
    kiln_pprof_t p;
    CHECK_OK(kiln_pprof_build_finish(b, &p, NULL));
    CHECK_EQ(p.values[0], 2);
    CHECK_EQ(p.values[1], 600);
    CHECK_EQ(p.n_labels, 2);
    CHECK(str_is(&p, p.labels[0].key, "thread"));
    CHECK(str_is(&p, p.labels[0].str, "1"));
    kiln_err err;
    CHECK_OK(kiln_pprof_validate(&p, &err));
    kiln_buf enc;
    kiln_buf_init(&enc, 0);
    CHECK(kiln_pprof_encode(&p, false, &enc));
    kiln_pprof_t q;
    CHECK_OK(kiln_pprof_decode(a, (const uint8_t *)enc.ptr, enc.len, &q, &err));
    CHECK_OK(kiln_pprof_validate(&q, &err));
    CHECK_EQ(q.n_samples, 4);
    CHECK_EQ(total(&q, 1), total(&p, 1));
    CHECK_OK(kiln_pprof_normalize(a, &q, 0, &err));
    kiln_buf_free(&enc);
    kiln_arena_destroy(a);
}

TEST(empty_profile_is_well_formed)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    kiln_pprof_t p;
    CHECK_OK(kiln_pprof_build_finish(b, &p, NULL));
    CHECK_EQ(p.n_samples, 0);
    CHECK(p.samples != NULL && p.locations != NULL && p.strings != NULL);
    kiln_err err;
    CHECK_OK(kiln_pprof_validate(&p, &err));
    CHECK_OK(kiln_pprof_normalize(a, &p, 0, &err));
    CHECK(kiln_pprof_build_create(a, 0) == NULL);
    kiln_arena_destroy(a);
}

TEST(many_frames_and_samples)
{
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
    char names[2000][8];
    uint64_t ids[4];
    for (int i = 0; i < 2000; i++)
        snprintf(names[i], sizeof(names[i]), "f%d", i);
    for (int i = 0; i < 20000; i++) {
        for (int k = 0; k < 4; k++)
            ids[k] = kiln_pprof_build_frame(b, S(names[(i * 7 + k * 13) % 2000]));
        int64_t v = 1;
        CHECK_OK(kiln_pprof_build_sample(b, ids, 4, &v, NULL, 0));
    }
    kiln_pprof_t p;
    CHECK_OK(kiln_pprof_build_finish(b, &p, NULL));
    CHECK_EQ(p.n_functions, 2000);
    CHECK_EQ(total(&p, 0), 20000);
    CHECK(p.n_samples <= 2000);
    kiln_err err;
    CHECK_OK(kiln_pprof_validate(&p, &err));
    kiln_arena_destroy(a);
}

TEST(arena_cap_fails_cleanly)
{
    static char names[5000][8]; /* the builder borrows frame names */
    for (int i = 0; i < 5000; i++)
        snprintf(names[i], sizeof(names[i]), "fn%d", i);
    for (size_t cap = 256; cap < (64u << 10); cap *= 2) {
        kiln_arena_t *a = kiln_arena_create(cap);
        kiln_pprof_build_t *b = kiln_pprof_build_create(a, 1);
        kiln_status st = KILN_OK;
        for (int i = 0; b != NULL && i < 5000 && st == KILN_OK; i++) {
            uint64_t id = kiln_pprof_build_frame(b, S(names[i]));
            int64_t v = 1;
            st = kiln_pprof_build_sample(b, &id, id ? 1 : 0, &v, NULL, 0);
        }
        kiln_pprof_t p;
        kiln_err err;
        if (b != NULL) {
            CHECK_EQ(st, KILN_RESOURCE_EXHAUSTED);
            CHECK_EQ(kiln_pprof_build_finish(b, &p, &err), KILN_RESOURCE_EXHAUSTED);
        }
        kiln_arena_destroy(a);
    }
}

int main(void)
{
    RUN(decoded_form_and_interning);
    RUN(labels_split_samples_and_roundtrip);
    RUN(empty_profile_is_well_formed);
    RUN(many_frames_and_samples);
    RUN(arena_cap_fails_cleanly);
    return check_done();
}
