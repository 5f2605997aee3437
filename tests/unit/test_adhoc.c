/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for adhocprofiles.v1 storage: files of every format the
 * distributor ingests are stored per tenant, listed newest first and served
 * as flamebearer JSON whose total is the file's. */
#include <stdlib.h>
#include <string.h>

#include "adhoc.h"
#include "check.h"
#include "objstore.h"
#include "tmpdir.h"

static char g_dir[] = "/tmp/kiln-adhoc-XXXXXX";
static kiln_objstore_t *g_store;

static kiln_adhoc_t *make(size_t max_bytes)
{
    kiln_adhoc_config c = {g_store, max_bytes, 0, NULL};
    return kiln_adhoc_create(&c);
}

static bool has(const char *json, const char *sub)
{
    return json != NULL && strstr(json, sub) != NULL;
}

TEST(folded_upload_get_list)
{
    kiln_adhoc_t *ad = make(1 << 20);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    const char *folded = "main;foo;bar 10\nmain;foo 5\nmain;baz 3\n";
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
    CHECK_OK(kiln_adhoc_upload(ad, "t1", "my prof.txt", (const uint8_t *)folded, strlen(folded),
                               1700000000000, 0, a, &r, &err));
    CHECK_STR(r->name, "my_prof.txt"); /* the space is not an id character */
    CHECK(strlen(r->id) == 26 + 1 + strlen("my_prof.txt"));
    CHECK_EQ(r->uploaded_at, 1700000000000);
    CHECK_EQ(r->n_profile_types, 1);
    CHECK_STR(r->profile_types[0], "my_prof.txt:samples:count::");
    CHECK(has(r->flamebearer_profile, "\"numTicks\":18"));
    CHECK(has(r->flamebearer_profile, "\"names\":[\"total\",\"main\",\"baz\",\"foo\",\"bar\"]"));
    CHECK(has(r->flamebearer_profile, "\"format\":\"single\""));
    char *id = kiln_arena_strndup(a, r->id, strlen(r->id));
    /* A later upload lists first; the other tenant sees nothing. */
    CHECK_OK(kiln_adhoc_upload(ad, "t1", "second.txt", (const uint8_t *)folded, strlen(folded),
                               1700000005000, 0, a, &r, &err));
    Adhocprofiles__V1__AdHocProfilesListResponse *l = NULL;
    CHECK_OK(kiln_adhoc_list(ad, "t1", a, &l, &err));
    CHECK_EQ(l->n_profiles, 2);
    if (l->n_profiles == 2) {
        CHECK_STR(l->profiles[0]->name, "second.txt");
        CHECK_EQ(l->profiles[1]->uploaded_at, 1700000000000);
    }
    CHECK_OK(kiln_adhoc_list(ad, "t2", a, &l, &err));
    CHECK_EQ(l->n_profiles, 0);
    /* Get from another service on the same store (another querier). */
    kiln_adhoc_t *other = make(1 << 20);
    CHECK_OK(kiln_adhoc_get(other, "t1", id, NULL, 2, a, &r, &err));
    CHECK(has(r->flamebearer_profile, "\"numTicks\":18"));
    CHECK(has(r->flamebearer_profile, "other")); /* max_nodes 2 truncates */
    CHECK_EQ(kiln_adhoc_get(other, "t2", id, NULL, 0, a, &r, &err), KILN_NOT_FOUND);
    CHECK_EQ(kiln_adhoc_get(other, "t1", "../etc", NULL, 0, a, &r, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(kiln_adhoc_get(other, "t1", id, NULL, -1, a, &r, &err), KILN_INVALID_ARGUMENT);
    kiln_adhoc_destroy(other);
    kiln_arena_destroy(a);
    kiln_adhoc_destroy(ad);
}

/* A real pprof (gzip) from the shared test data: every sample type is a
 * profile type, and the chosen one can be asked for by name. */
TEST(pprof_types)
{
    size_t len = 0;
    unsigned char *raw = check_read_testdata("grafana-pyroscope/req_5.pprof", &len);
    CHECK(raw != NULL);
    if (raw == NULL)
        return;
    kiln_adhoc_t *ad = make(16 << 20);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
    CHECK_OK(kiln_adhoc_upload(ad, "t3", "req_5.pprof", raw, len, 1700000000000, 0, a, &r, &err));
    CHECK_EQ(r->n_profile_types, 4);
    CHECK_STR(r->profile_type, "alloc_objects");
    CHECK(has(r->flamebearer_profile, "\"units\":\"objects\""));
    char *id = kiln_arena_strndup(a, r->id, strlen(r->id));
    CHECK_OK(kiln_adhoc_get(ad, "t3", id, "inuse_space", 0, a, &r, &err));
    CHECK_STR(r->profile_type, "inuse_space");
    CHECK(has(r->flamebearer_profile, "\"units\":\"bytes\""));
    free(raw);
    kiln_arena_destroy(a);
    kiln_adhoc_destroy(ad);
}

TEST(other_formats)
{
    static const char *files[] = {"speedscope/simple-sampled.speedscope.json",
                                  "grafana-pyroscope/otel-ebpf-profile.pb.bin",
                                  "grafana-pyroscope/otel-ebpf-profile.pb.json"};
    kiln_adhoc_t *ad = make(16 << 20);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len = 0;
        unsigned char *raw = check_read_testdata(files[i], &len);
        if (raw == NULL) {
            printf("# %s: not in the test data, skipped\n", files[i]);
            continue;
        }
        kiln_arena_t *a = kiln_arena_create(0);
        kiln_err err = {0};
        Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
        kiln_status st =
            kiln_adhoc_upload(ad, "t4", "file", raw, len, 1700000000000, 0, a, &r, &err);
        if (st != KILN_OK)
            printf("# %s: %s\n", files[i], err.msg);
        CHECK_OK(st);
        if (st == KILN_OK) {
            CHECK(r->n_profile_types >= 1);
            CHECK(!has(r->flamebearer_profile, "\"numTicks\":0,"));
        }
        free(raw);
        kiln_arena_destroy(a);
    }
    kiln_adhoc_destroy(ad);
}

TEST(refusals)
{
    kiln_adhoc_t *ad = make(64);
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_err err = {0};
    Adhocprofiles__V1__AdHocProfilesGetResponse *r = NULL;
    char big[100];
    memset(big, 'a', sizeof(big));
    CHECK_EQ(kiln_adhoc_upload(ad, "t5", "x", (const uint8_t *)big, sizeof(big), 1, 0, a, &r, &err),
             KILN_INVALID_ARGUMENT); /* past the size limit */
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    CHECK_EQ(kiln_adhoc_upload(ad, "t5", "x", junk, sizeof(junk), 1, 0, a, &r, &err),
             KILN_INVALID_ARGUMENT);
    CHECK_EQ(kiln_adhoc_upload(ad, "t5", "x", (const uint8_t *)"", 0, 1, 0, a, &r, &err),
             KILN_INVALID_ARGUMENT);
    Adhocprofiles__V1__AdHocProfilesListResponse *l = NULL;
    CHECK_OK(kiln_adhoc_list(ad, "t5", a, &l, &err)); /* nothing refused was stored */
    CHECK_EQ(l->n_profiles, 0);
    kiln_arena_destroy(a);
    kiln_adhoc_destroy(ad);
}

int main(void)
{
    setenv("KILN_OBJSTORE_NO_URING", "1", 1);
    kiln_err err = {0};
    if (mkdtemp(g_dir) == NULL || kiln_objstore_open_fs(g_dir, &g_store, &err) != KILN_OK)
        return 1;
    RUN(folded_upload_get_list);
    RUN(pprof_types);
    RUN(other_formats);
    RUN(refusals);
    kiln_objstore_close(g_store);
    tmpdir_remove(g_dir);
    return check_done();
}
