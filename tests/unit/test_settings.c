/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for settings.v1 storage: per tenant, through the object store,
 * the same from a second store on the same directory (another querier). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "objstore.h"
#include "settings.h"
#include "tmpdir.h"

static char g_dir[] = "/tmp/kiln-settings-XXXXXX";

static Settings__V1__Setting setting(const char *name, const char *value, int64_t at)
{
    Settings__V1__Setting s = SETTINGS__V1__SETTING__INIT;
    s.name = (char *)name;
    s.value = (char *)value;
    s.modifiedat = at;
    return s;
}

/* Two stores on one directory stand for two queriers of a cluster. */
TEST(set_then_get_everywhere)
{
    kiln_objstore_t *s1 = NULL, *s2 = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s1, &err));
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s2, &err));
    kiln_settings_t *a = kiln_settings_create(s1), *b = kiln_settings_create(s2);
    kiln_arena_t *ar = kiln_arena_create(0);
    Settings__V1__GetSettingsResponse *r = NULL;
    CHECK_OK(kiln_settings_get(b, "t1", ar, &r, &err));
    CHECK_EQ(r->n_settings, 0);
    Settings__V1__Setting in = setting("pluginSettings", "{\"maxNodes\":16384}", 0), *out = NULL;
    CHECK_OK(kiln_settings_set(a, "t1", &in, 1000, ar, &out, &err));
    CHECK_EQ(out->modifiedat, 1000); /* 0 means now */
    in = setting("aaa", "first", 5);
    CHECK_OK(kiln_settings_set(a, "t1", &in, 1000, ar, &out, &err));
    CHECK_OK(kiln_settings_get(b, "t1", ar, &r, &err)); /* read through: no cache to miss */
    CHECK_EQ(r->n_settings, 2);
    CHECK_STR(r->settings[0]->name, "aaa"); /* sorted by name */
    CHECK_STR(r->settings[1]->value, "{\"maxNodes\":16384}");
    CHECK_OK(kiln_settings_get(b, "t2", ar, &r, &err)); /* tenants are apart */
    CHECK_EQ(r->n_settings, 0);
    kiln_arena_destroy(ar);
    kiln_settings_destroy(a);
    kiln_settings_destroy(b);
    kiln_objstore_close(s1);
    kiln_objstore_close(s2);
}

TEST(older_set_and_bad_input_refused)
{
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s, &err));
    kiln_settings_t *st = kiln_settings_create(s);
    kiln_arena_t *ar = kiln_arena_create(0);
    Settings__V1__Setting in = setting("x", "new", 200), *out = NULL;
    CHECK_OK(kiln_settings_set(st, "t3", &in, 1, ar, &out, &err));
    in = setting("x", "old", 100);
    CHECK_EQ(kiln_settings_set(st, "t3", &in, 1, ar, &out, &err), KILN_ALREADY_EXISTS);
    in = setting("", "v", 1);
    CHECK_EQ(kiln_settings_set(st, "t3", &in, 1, ar, &out, &err), KILN_INVALID_ARGUMENT);
    CHECK_EQ(kiln_settings_set(st, "t3", NULL, 1, ar, &out, &err), KILN_INVALID_ARGUMENT);
    char *big = malloc(KILN_SETTINGS_MAX_VALUE + 2);
    memset(big, 'v', KILN_SETTINGS_MAX_VALUE + 1);
    big[KILN_SETTINGS_MAX_VALUE + 1] = '\0';
    in = setting("big", big, 1);
    CHECK_EQ(kiln_settings_set(st, "t3", &in, 1, ar, &out, &err), KILN_INVALID_ARGUMENT);
    free(big);
    /* Delete: refused when the setting is newer than the delete. */
    CHECK_EQ(kiln_settings_delete(st, "t3", "x", 150, &err), KILN_ALREADY_EXISTS);
    CHECK_OK(kiln_settings_delete(st, "t3", "x", 300, &err));
    CHECK_OK(kiln_settings_delete(st, "t3", "absent", 300, &err));
    Settings__V1__GetSettingsResponse *r = NULL;
    CHECK_OK(kiln_settings_get(st, "t3", ar, &r, &err));
    CHECK_EQ(r->n_settings, 0);
    kiln_arena_destroy(ar);
    kiln_settings_destroy(st);
    kiln_objstore_close(s);
}

/* A corrupt object is data loss, not an empty list nor a crash. */
TEST(corrupt_object)
{
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    CHECK_OK(kiln_objstore_open_fs(g_dir, &s, &err));
    CHECK_OK(kiln_objstore_put(s, "t4/settings/settings.pb", "\xff\xff\xff", 3, &err));
    kiln_settings_t *st = kiln_settings_create(s);
    kiln_arena_t *ar = kiln_arena_create(0);
    Settings__V1__GetSettingsResponse *r = NULL;
    CHECK_EQ(kiln_settings_get(st, "t4", ar, &r, &err), KILN_DATA_LOSS);
    kiln_arena_destroy(ar);
    kiln_settings_destroy(st);
    kiln_objstore_close(s);
}

int main(void)
{
    setenv("KILN_OBJSTORE_NO_URING", "1", 1);
    if (mkdtemp(g_dir) == NULL)
        return 1;
    RUN(set_then_get_everywhere);
    RUN(older_set_and_bad_input_refused);
    RUN(corrupt_object);
    tmpdir_remove(g_dir);
    return check_done();
}
