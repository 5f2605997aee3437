/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the consistent-hash ring (tokens, replicas against a brute
 * force walk, states, zones, snapshots, /ring output, ownership). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "check.h"
#include "json_reader.h"
#include "ring.h"

static kiln_ring_member member(const char *id, const char *zone, kiln_ring_state st)
{
    kiln_ring_member m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    snprintf(m.addr, sizeof(m.addr), "127.0.0.1:%d", 9000 + (int)strlen(id));
    snprintf(m.zone, sizeof(m.zone), "%s", zone);
    m.state = st;
    m.heartbeat_ms = 1000;
    return m;
}

/* A member with the given tokens (n <= 4). */
static kiln_ring_member member_at(const char *id, const char *zone, const uint32_t *tok, size_t n)
{
    kiln_ring_member m = member(id, zone, KILN_RING_ACTIVE);
    m.n_tokens = n;
    memcpy(m.tokens, tok, n * sizeof(*tok));
    return m;
}

static uint32_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 32);
}

TEST(tokens_deterministic_and_distinct)
{
    uint32_t a[KILN_RING_TOKENS], b[KILN_RING_TOKENS], c[KILN_RING_TOKENS];
    kiln_ring_tokens("ingester-0", a, KILN_RING_TOKENS);
    kiln_ring_tokens("ingester-0", b, KILN_RING_TOKENS);
    kiln_ring_tokens("ingester-1", c, KILN_RING_TOKENS);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK(memcmp(a, c, sizeof(a)) != 0);
    size_t dup = 0;
    for (size_t i = 0; i < KILN_RING_TOKENS; i++)
        for (size_t j = i + 1; j < KILN_RING_TOKENS; j++)
            dup += a[i] == a[j];
    CHECK_EQ(dup, 0);
}

/* The clockwise distance from key to the member's nearest token at or after it. */
static uint32_t distance(const uint32_t *tok, uint32_t key)
{
    uint32_t best = UINT32_MAX;
    for (size_t i = 0; i < KILN_RING_TOKENS; i++) {
        uint32_t d = tok[i] - key;
        best = d < best ? d : best;
    }
    return best;
}

/* Replicas without zones, by brute force: ACTIVE members by distance
 * (tok holds each member's derived tokens). */
static size_t brute_replicas(const kiln_ring_member *m, size_t n,
                             const uint32_t (*tok)[KILN_RING_TOKENS], uint32_t key, size_t rf,
                             size_t *idx)
{
    size_t k = 0;
    bool used[16] = {false};
    while (k < rf) {
        size_t best = n;
        uint32_t best_d = 0;
        for (size_t i = 0; i < n; i++) {
            if (used[i] || m[i].state != KILN_RING_ACTIVE)
                continue;
            uint32_t d = distance(tok[i], key);
            if (best == n || d < best_d)
                best = i, best_d = d;
        }
        if (best == n)
            break;
        used[best] = true;
        idx[k++] = best;
    }
    return k;
}

TEST(replicas_match_brute_force_and_are_distinct)
{
    kiln_ring_member in[5];
    const char *ids[] = {"ingester-3", "ingester-1", "ingester-4", "ingester-0", "ingester-2"};
    for (size_t i = 0; i < 5; i++)
        in[i] = member(ids[i], "", KILN_RING_ACTIVE);
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_set(r, in, 5);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    const kiln_ring_member *m;
    CHECK_EQ(kiln_ring_members(s, &m), 5);
    for (size_t i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "ingester-%zu", i);
        CHECK_STR(m[i].id, want);
    }
    uint32_t tok[5][KILN_RING_TOKENS];
    for (size_t i = 0; i < 5; i++) {
        kiln_ring_tokens(m[i].id, tok[i], KILN_RING_TOKENS);
        /* The snapshot lists the tokens it derived for a member without any. */
        CHECK_EQ(m[i].n_tokens, KILN_RING_TOKENS);
        CHECK(memcmp(m[i].tokens, tok[i], sizeof(tok[i])) == 0);
    }
    uint64_t seed = 42;
    size_t mismatches = 0, not_distinct = 0, unstable = 0;
    for (int k = 0; k < 2000; k++) {
        uint32_t key = next_rand(&seed);
        size_t got[3], again[3], want[3];
        size_t n = kiln_ring_replicas(s, key, 3, got);
        CHECK_EQ(n, 3);
        CHECK_EQ(kiln_ring_replicas(s, key, 3, again), 3);
        CHECK_EQ(brute_replicas(m, 5, (const uint32_t(*)[KILN_RING_TOKENS])tok, key, 3, want), 3);
        unstable += memcmp(got, again, sizeof(got)) != 0;
        mismatches += memcmp(got, want, sizeof(got)) != 0;
        not_distinct += got[0] == got[1] || got[0] == got[2] || got[1] == got[2];
    }
    CHECK_EQ(mismatches, 0);
    CHECK_EQ(not_distinct, 0);
    CHECK_EQ(unstable, 0);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(replicas_skip_members_not_active)
{
    kiln_ring_member in[5];
    for (size_t i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "ingester-%zu", i);
        in[i] = member(id, "", KILN_RING_ACTIVE);
    }
    in[1].state = KILN_RING_JOINING;
    in[3].state = KILN_RING_LEAVING;
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_set(r, in, 5);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    uint64_t seed = 7;
    size_t bad = 0;
    for (int k = 0; k < 1000; k++) {
        size_t idx[3];
        size_t n = kiln_ring_replicas(s, next_rand(&seed), 3, idx);
        CHECK_EQ(n, 3);
        for (size_t j = 0; j < n; j++)
            bad += idx[j] == 1 || idx[j] == 3;
    }
    CHECK_EQ(bad, 0);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(replicas_wrap_around)
{
    const uint32_t ta[] = {100}, tb[] = {200}, tc[] = {300};
    kiln_ring_member in[] = {member_at("c", "", tc, 1), member_at("a", "", ta, 1),
                             member_at("b", "", tb, 1)};
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_set(r, in, 3);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    size_t idx[3]; /* members sorted: a=0 b=1 c=2 */
    CHECK_EQ(kiln_ring_replicas(s, 301, 3, idx), 3);
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
    CHECK_EQ(kiln_ring_replicas(s, UINT32_MAX, 2, idx), 2);
    CHECK(idx[0] == 0 && idx[1] == 1);
    CHECK_EQ(kiln_ring_replicas(s, 0, 1, idx), 1);
    CHECK_EQ(idx[0], 0);
    CHECK_EQ(kiln_ring_replicas(s, 100, 1, idx), 1); /* a token owns its own value */
    CHECK_EQ(idx[0], 0);
    CHECK_EQ(kiln_ring_replicas(s, 101, 3, idx), 3);
    CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 0);
    CHECK_EQ(kiln_ring_replicas(s, 250, 3, idx), 3);
    CHECK(idx[0] == 2 && idx[1] == 0 && idx[2] == 1);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(replicas_spread_over_zones)
{
    /* Clockwise from 5: a1(zone a), a2(a), b1(b). Zones first: a1, b1, then a2. */
    const uint32_t t1[] = {10}, t2[] = {20}, t3[] = {30};
    kiln_ring_member in[] = {member_at("a1", "a", t1, 1), member_at("a2", "a", t2, 1),
                             member_at("b1", "b", t3, 1)};
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_set(r, in, 3);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    size_t idx[3];
    CHECK_EQ(kiln_ring_replicas(s, 5, 2, idx), 2);
    CHECK(idx[0] == 0 && idx[1] == 2);
    CHECK_EQ(kiln_ring_replicas(s, 5, 3, idx), 3); /* two zones for three: a zone repeats */
    CHECK(idx[0] == 0 && idx[1] == 2 && idx[2] == 1);
    kiln_ring_release(s);

    /* Nine members in three zones, derived tokens: every key gets all three zones. */
    kiln_ring_member many[9];
    const char *zones[] = {"zone-a", "zone-b", "zone-c"};
    for (size_t i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof(id), "ingester-%zu", i);
        many[i] = member(id, zones[i % 3], KILN_RING_ACTIVE);
    }
    kiln_ring_set(r, many, 9);
    s = kiln_ring_acquire(r);
    const kiln_ring_member *m;
    kiln_ring_members(s, &m);
    uint64_t seed = 99;
    size_t same_zone = 0;
    for (int k = 0; k < 1000; k++) {
        CHECK_EQ(kiln_ring_replicas(s, next_rand(&seed), 3, idx), 3);
        same_zone += strcmp(m[idx[0]].zone, m[idx[1]].zone) == 0 ||
                     strcmp(m[idx[0]].zone, m[idx[2]].zone) == 0 ||
                     strcmp(m[idx[1]].zone, m[idx[2]].zone) == 0;
    }
    CHECK_EQ(same_zone, 0);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(fewer_members_than_rf)
{
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    size_t idx[3];
    CHECK_EQ(kiln_ring_replicas(s, 12345, 3, idx), 0); /* empty ring */
    kiln_ring_release(s);
    kiln_ring_member in[] = {member("ingester-0", "", KILN_RING_ACTIVE),
                             member("ingester-1", "", KILN_RING_ACTIVE),
                             member("ingester-2", "", KILN_RING_JOINING)};
    kiln_ring_set(r, in, 3);
    s = kiln_ring_acquire(r);
    CHECK_EQ(kiln_ring_replicas(s, 12345, 3, idx), 2);
    CHECK(idx[0] != idx[1] && idx[0] < 2 && idx[1] < 2);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(snapshot_survives_later_set_and_destroy)
{
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_member one = member("old-0", "", KILN_RING_ACTIVE);
    kiln_ring_set(r, &one, 1);
    kiln_ring_snapshot_t *old = kiln_ring_acquire(r);
    kiln_ring_member two[] = {member("new-0", "", KILN_RING_ACTIVE),
                              member("new-1", "", KILN_RING_ACTIVE)};
    kiln_ring_set(r, two, 2);
    kiln_ring_snapshot_t *cur = kiln_ring_acquire(r);
    kiln_ring_destroy(r);
    const kiln_ring_member *m;
    CHECK_EQ(kiln_ring_members(old, &m), 1);
    CHECK_STR(m[0].id, "old-0");
    size_t idx[3];
    CHECK_EQ(kiln_ring_replicas(old, 1, 3, idx), 1);
    kiln_ring_release(old);
    CHECK_EQ(kiln_ring_members(cur, &m), 2);
    CHECK_STR(m[1].id, "new-1");
    CHECK_EQ(kiln_ring_replicas(cur, 1, 3, idx), 2);
    kiln_ring_release(cur);
}

typedef struct race {
    kiln_ring_t *r;
    size_t lookups;
} race;

static void *reader(void *arg)
{
    race *x = arg;
    for (int i = 0; i < 20000; i++) {
        kiln_ring_snapshot_t *s = kiln_ring_acquire(x->r);
        size_t idx[3];
        x->lookups += kiln_ring_replicas(s, (uint32_t)i * 2654435761u, 3, idx);
        kiln_ring_release(s);
    }
    return NULL;
}

TEST(concurrent_acquire_and_set)
{
    race x = {kiln_ring_create(), 0};
    kiln_ring_member in[3] = {member("ingester-0", "", KILN_RING_ACTIVE),
                              member("ingester-1", "", KILN_RING_ACTIVE),
                              member("ingester-2", "", KILN_RING_ACTIVE)};
    kiln_ring_set(x.r, in, 3);
    pthread_t t;
    pthread_create(&t, NULL, reader, &x);
    for (int i = 0; i < 300; i++)
        kiln_ring_set(x.r, in, (size_t)(i % 2 ? 3 : 2));
    pthread_join(t, NULL);
    CHECK(x.lookups >= 2 * 20000);
    kiln_ring_destroy(x.r);
}

TEST(key_hashes_tenant_and_labels_unambiguously)
{
    kiln_label_t a[] = {{"service_name", "api"}, {"zone", "x"}};
    kiln_label_t b[] = {{"service_name", "api"}, {"zone", "y"}};
    kiln_label_t ab1[] = {{"ab", "c"}}, ab2[] = {{"a", "bc"}};
    CHECK_EQ(kiln_ring_key("t1", a, 2), kiln_ring_key("t1", a, 2));
    CHECK(kiln_ring_key("t1", a, 2) != kiln_ring_key("t2", a, 2));
    CHECK(kiln_ring_key("t1", a, 2) != kiln_ring_key("t1", b, 2));
    CHECK(kiln_ring_key("t", ab1, 1) != kiln_ring_key("t", ab2, 1));
    CHECK(kiln_ring_key("ta", ab2, 1) != kiln_ring_key("t", ab1, 1));
    kiln_label_t empty_value[] = {{"a", ""}, {"b", "c"}}, shifted[] = {{"a", "b"}, {"c", ""}};
    CHECK(kiln_ring_key("t", empty_value, 2) != kiln_ring_key("t", shifted, 2));
}

TEST(ownership_sums_to_one)
{
    kiln_ring_t *r = kiln_ring_create();
    const uint32_t ta[] = {100}, tb[] = {200}, tc[] = {300};
    kiln_ring_member in[] = {member_at("a", "", ta, 1), member_at("b", "", tb, 1),
                             member_at("c", "", tc, 1)};
    kiln_ring_set(r, in, 3);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    double own[3];
    kiln_ring_ownership(s, own);
    CHECK(fabs(own[1] - 100 / 4294967296.0) < 1e-12);
    CHECK(fabs(own[2] - 100 / 4294967296.0) < 1e-12);
    CHECK(fabs(own[0] + own[1] + own[2] - 1) < 1e-9);
    kiln_ring_release(s);

    kiln_ring_member many[7];
    for (size_t i = 0; i < 7; i++) {
        char id[16];
        snprintf(id, sizeof(id), "ingester-%zu", i);
        many[i] = member(id, "", i == 3 ? KILN_RING_LEAVING : KILN_RING_ACTIVE);
    }
    kiln_ring_set(r, many, 7);
    s = kiln_ring_acquire(r);
    double o7[7], sum = 0;
    kiln_ring_ownership(s, o7);
    for (size_t i = 0; i < 7; i++) {
        sum += o7[i];
        CHECK(o7[i] > 0.5 / 7 && o7[i] < 1.5 / 7); /* 128 tokens each: near 1/7 */
    }
    CHECK(fabs(sum - 1) < 1e-9);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

/* Reads one member object of the /ring JSON; false on a structural error. */
static bool read_member(kiln_json *j, kiln_arena_t *a, kiln_str_t *id, kiln_str_t *state,
                        double *own, size_t *fields)
{
    if (!kiln_json_obj_begin(j))
        return false;
    kiln_str_t key;
    while (kiln_json_obj_next(j, &key)) {
        (*fields)++;
        if (kiln_json_key_is(key, "id"))
            kiln_json_str(j, a, id);
        else if (kiln_json_key_is(key, "state"))
            kiln_json_str(j, a, state);
        else if (kiln_json_key_is(key, "ownership"))
            kiln_json_num(j, own);
        else
            kiln_json_skip(j);
    }
    return !kiln_json_failed(j);
}

TEST(json_parses_and_html_escapes)
{
    kiln_ring_t *r = kiln_ring_create();
    kiln_ring_member in[] = {member("ingester-\"0\"\\\n<b>", "zone-a", KILN_RING_ACTIVE),
                             member("ingester-1", "", KILN_RING_LEAVING)};
    kiln_ring_set(r, in, 2);
    kiln_ring_snapshot_t *s = kiln_ring_acquire(r);
    kiln_buf out;
    kiln_buf_init(&out, 0);
    kiln_ring_json(s, 6000, &out);
    CHECK(strstr(out.ptr, "\"heartbeat_age_ms\":5000") != NULL);

    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {KILN_OK, ""};
    kiln_json j;
    kiln_json_init(&j, out.ptr, out.len, "ring", &err);
    kiln_str_t key, id[2] = {{NULL, 0}, {NULL, 0}}, state[2] = {{NULL, 0}, {NULL, 0}};
    double own[2] = {0, 0};
    size_t n = 0, fields = 0;
    CHECK(kiln_json_obj_begin(&j));
    CHECK(kiln_json_obj_next(&j, &key) && kiln_json_key_is(key, "members"));
    CHECK(kiln_json_arr_begin(&j));
    while (n < 2 && kiln_json_arr_next(&j)) {
        CHECK(read_member(&j, a, &id[n], &state[n], &own[n], &fields));
        n++;
    }
    CHECK(!kiln_json_arr_next(&j));
    CHECK(!kiln_json_obj_next(&j, &key));
    CHECK(kiln_json_end(&j));
    CHECK_EQ(n, 2);
    CHECK_EQ(fields, 16);
    CHECK(id[0].len == strlen(in[0].id) && memcmp(id[0].ptr, in[0].id, id[0].len) == 0);
    CHECK(kiln_str_eq(state[0], "ACTIVE") && kiln_str_eq(state[1], "LEAVING"));
    CHECK(fabs(own[0] + own[1] - 1) < 1e-5);
    if (err.code != KILN_OK)
        printf("  json: %s\n%s\n", err.msg, out.ptr);

    out.len = 0;
    kiln_ring_html(s, 6000, &out);
    kiln_buf_putc(&out, '\0');
    CHECK(strstr(out.ptr, "&lt;b&gt;") != NULL);
    CHECK(strstr(out.ptr, "<b>") == NULL);
    CHECK(strstr(out.ptr, "<td>LEAVING</td>") != NULL);
    CHECK(strstr(out.ptr, "<td>5.0 s</td>") != NULL);
    kiln_arena_destroy(a);
    kiln_buf_free(&out);
    kiln_ring_release(s);
    kiln_ring_destroy(r);
}

TEST(state_names)
{
    CHECK_STR(kiln_ring_state_str(KILN_RING_JOINING), "JOINING");
    CHECK_STR(kiln_ring_state_str(KILN_RING_LEAVING), "LEAVING");
    CHECK_EQ(kiln_ring_state_parse("ACTIVE"), KILN_RING_ACTIVE);
    CHECK_EQ(kiln_ring_state_parse("LEAVING"), KILN_RING_LEAVING);
    CHECK_EQ(kiln_ring_state_parse("active"), -1);
    CHECK_EQ(kiln_ring_state_parse(NULL), -1);
}

int main(void)
{
    RUN(tokens_deterministic_and_distinct);
    RUN(replicas_match_brute_force_and_are_distinct);
    RUN(replicas_skip_members_not_active);
    RUN(replicas_wrap_around);
    RUN(replicas_spread_over_zones);
    RUN(fewer_members_than_rf);
    RUN(snapshot_survives_later_set_and_destroy);
    RUN(concurrent_acquire_and_set);
    RUN(key_hashes_tenant_and_labels_unambiguously);
    RUN(ownership_sums_to_one);
    RUN(json_parses_and_html_escapes);
    RUN(state_names);
    return check_done();
}
