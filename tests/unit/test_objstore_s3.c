/* SPDX-License-Identifier: Apache-2.0
 * Unit tests: the S3 backend against a real S3 server (versitygw, started
 * here): the object store contract (objstore.h) holds on S3 as it does on
 * the filesystem, including S3's traps: a range running past the end (206
 * with a short body), a range starting at the size (416), listings longer
 * than a page of 1,000 keys, multipart uploads, a server that goes away
 * and comes back, and wrong credentials or a missing bucket at open. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "objstore.h"
#include "s3server.h"

static s3server srv;

static kiln_objstore_config config(const char *prefix)
{
    kiln_objstore_config c = {.backend = "s3", .prefix = prefix};
    c.s3 = (kiln_objstore_s3_config){.endpoint = srv.endpoint,
                                     .bucket = srv.bucket,
                                     .access_key_id = S3SERVER_KEY,
                                     .secret_access_key = S3SERVER_SECRET,
                                     .force_path_style = true,
                                     .timeout_ms = 10000,
                                     .max_retries = 2};
    return c;
}

static kiln_objstore_t *open_store(const char *prefix)
{
    kiln_objstore_config c = config(prefix);
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    kiln_status st = kiln_objstore_open(&c, &s, &err);
    if (st != KILN_OK)
        printf("  open: %s\n", err.msg);
    CHECK_OK(st);
    return s;
}

TEST(put_get_size_delete)
{
    kiln_objstore_t *s = open_store("pfx/sub");
    CHECK_STR(kiln_objstore_backend(s), "s3");
    CHECK_OK(kiln_objstore_put(s, "t1/blocks/A/meta.json", "{\"a\":1}", 7, NULL));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get(s, "t1/blocks/A/meta.json", &b, NULL));
    CHECK_EQ(b.len, 7);
    CHECK(memcmp(b.ptr, "{\"a\":1}", 7) == 0);
    uint64_t size = 0;
    CHECK_OK(kiln_objstore_size(s, "t1/blocks/A/meta.json", &size, NULL));
    CHECK_EQ(size, 7);
    /* The prefix is where the object lives in the bucket. */
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/pfx/sub/t1/blocks/A/meta.json", srv.root, srv.bucket);
    CHECK(access(path, F_OK) == 0);
    kiln_err err;
    b.len = 0;
    CHECK_EQ(kiln_objstore_get(s, "t1/nothing", &b, &err), KILN_NOT_FOUND);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(kiln_objstore_size(s, "t1/nothing", &size, &err), KILN_NOT_FOUND);
    CHECK_OK(kiln_objstore_delete(s, "t1/blocks/A/meta.json", NULL));
    CHECK_OK(kiln_objstore_delete(s, "t1/blocks/A/meta.json", NULL)); /* absent is fine */
    CHECK_EQ(kiln_objstore_get(s, "t1/blocks/A/meta.json", &b, &err), KILN_NOT_FOUND);
    CHECK_EQ(kiln_objstore_put(s, "../x", "x", 1, &err), KILN_INVALID_ARGUMENT);
    kiln_buf_free(&b);
    kiln_objstore_close(s);
}

TEST(ranges_at_and_past_the_end)
{
    kiln_objstore_t *s = open_store("");
    char data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (char)('a' + i % 26);
    CHECK_OK(kiln_objstore_put(s, "r/obj", data, sizeof(data), NULL));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 10, 20, &b, NULL));
    CHECK_EQ(b.len, 20);
    CHECK(memcmp(b.ptr, data + 10, 20) == 0);
    kiln_err err;
    b.len = 0;
    /* S3 answers 206 with the 10 bytes there are: still out of range. */
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", 90, 20, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_EQ(b.len, 0);
    /* A range starting at the size: 416. */
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", 100, 1, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 100, 0, &b, NULL));
    CHECK_EQ(kiln_objstore_get_range(s, "r/obj", 101, 0, &b, &err), KILN_OUT_OF_RANGE);
    CHECK_OK(kiln_objstore_get_range(s, "r/obj", 99, 1, &b, NULL));
    CHECK_EQ(b.len, 1);
    CHECK_EQ(kiln_objstore_get_range(s, "r/none", 0, 1, &b, &err), KILN_NOT_FOUND);
    kiln_buf_free(&b);
    kiln_objstore_close(s);
}

typedef struct names {
    size_t n;
    char last[256];
    int unsorted;
    int bad_prefix;
} names;

static void on_name(void *ctx, const char *name)
{
    names *n = ctx;
    n->unsorted += n->n > 0 && strcmp(n->last, name) >= 0;
    n->bad_prefix += strncmp(name, "many/", 5) != 0;
    snprintf(n->last, sizeof(n->last), "%s", name);
    n->n++;
}

/* 1,050 keys: ListObjectsV2 pages at 1,000, so the listing must follow
 * NextContinuationToken to see them all. */
TEST(list_follows_continuation)
{
    kiln_objstore_t *s = open_store("lp");
    char name[64];
    for (int i = 0; i < 1050; i++) {
        snprintf(name, sizeof(name), "many/%04d", i);
        CHECK_OK(kiln_objstore_put(s, name, "x", 1, NULL));
    }
    CHECK_OK(kiln_objstore_put(s, "other/x", "x", 1, NULL));
    names n = {0};
    CHECK_OK(kiln_objstore_list(s, "many/", on_name, &n, NULL));
    CHECK_EQ(n.n, 1050);
    CHECK_EQ(n.unsorted, 0);
    CHECK_EQ(n.bad_prefix, 0);
    CHECK_STR(n.last, "many/1049");
    names all = {0};
    CHECK_OK(kiln_objstore_list(s, "", on_name, &all, NULL));
    CHECK_EQ(all.n, 1051);
    names none = {0}; /* an empty listing (a new bucket) is fine too */
    CHECK_OK(kiln_objstore_list(s, "nothing/", on_name, &none, NULL));
    CHECK_EQ(none.n, 0);
    kiln_objstore_close(s);
}

/* Above the part size (5 MiB at least) a put is a multipart upload. */
TEST(multipart_put)
{
    kiln_objstore_config c = config("");
    c.s3.part_size = 5u << 20;
    kiln_objstore_t *s = NULL;
    CHECK_OK(kiln_objstore_open(&c, &s, NULL));
    size_t len = (12u << 20) + 123;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 2654435761u >> 13);
    CHECK_OK(kiln_objstore_put(s, "mp/big", data, len, NULL));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get(s, "mp/big", &b, NULL));
    CHECK_EQ(b.len, len);
    CHECK(b.len == len && memcmp(b.ptr, data, len) == 0);
    b.len = 0;
    CHECK_OK(kiln_objstore_get_range(s, "mp/big", (5u << 20) - 10, 20, &b, NULL));
    CHECK(memcmp(b.ptr, data + (5u << 20) - 10, 20) == 0);
    /* A bounded buffer refuses an object larger than its maximum. */
    kiln_buf small;
    kiln_buf_init(&small, 1 << 20);
    kiln_err err;
    CHECK_EQ(kiln_objstore_get(s, "mp/big", &small, &err), KILN_RESOURCE_EXHAUSTED);
    CHECK_EQ(small.len, 0);
    kiln_buf_free(&small);
    kiln_buf_free(&b);
    free(data);
    kiln_objstore_close(s);
}

TEST(wrong_credentials_and_missing_bucket_fail_at_open)
{
    kiln_objstore_config c = config("");
    c.s3.secret_access_key = "not-the-secret";
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    kiln_status st = kiln_objstore_open(&c, &s, &err);
    printf("  wrong secret: %s: %s\n", kiln_status_str(st), err.msg);
    CHECK_EQ(st, KILN_UNAUTHENTICATED);
    CHECK(strstr(err.msg, "-storage.s3.secret-access-key") != NULL);
    c = config("");
    c.s3.access_key_id = "nobody";
    st = kiln_objstore_open(&c, &s, &err);
    printf("  wrong key: %s: %s\n", kiln_status_str(st), err.msg);
    CHECK(st == KILN_UNAUTHENTICATED || st == KILN_PERMISSION_DENIED);
    c = config("");
    c.s3.bucket = "no-such-bucket";
    st = kiln_objstore_open(&c, &s, &err);
    printf("  missing bucket: %s: %s\n", kiln_status_str(st), err.msg);
    CHECK_EQ(st, KILN_NOT_FOUND);
    CHECK(strstr(err.msg, "-storage.s3.bucket-name") != NULL);
    c = config("");
    c.backend = "gcs";
    CHECK_EQ(kiln_objstore_open(&c, &s, &err), KILN_INVALID_ARGUMENT);
}

typedef struct putter {
    kiln_objstore_t *s;
    kiln_status st;
} putter;

static void *put_thread(void *arg)
{
    putter *p = arg;
    p->st = kiln_objstore_put(p->s, "retry/obj", "later", 5, NULL);
    return NULL;
}

/* A put made while the server is down is retried with backoff and lands
 * once the server is back; with the server down for good it fails as
 * KILN_UNAVAILABLE after its bounded retries. */
TEST(retries_across_a_restart)
{
    kiln_objstore_config c = config("");
    c.s3.max_retries = 8; /* backoff 0.1, 0.2, ... 5 s: well over the restart */
    kiln_objstore_t *s = NULL;
    CHECK_OK(kiln_objstore_open(&c, &s, NULL));
    s3server_kill(&srv);
    putter p = {s, KILN_UNKNOWN};
    pthread_t t;
    pthread_create(&t, NULL, put_thread, &p);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    CHECK_EQ(s3server_launch(&srv), 0);
    pthread_join(t, NULL);
    CHECK_OK(p.st);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    CHECK_OK(kiln_objstore_get(s, "retry/obj", &b, NULL));
    CHECK_EQ(b.len, 5);
    kiln_buf_free(&b);
    kiln_objstore_close(s);

    c.s3.max_retries = 1;
    CHECK_OK(kiln_objstore_open(&c, &s, NULL));
    s3server_kill(&srv);
    kiln_err err;
    CHECK_EQ(kiln_objstore_put(s, "retry/obj2", "x", 1, &err), KILN_UNAVAILABLE);
    printf("  server gone: %s\n", err.msg);
    CHECK_EQ(s3server_launch(&srv), 0);
    kiln_objstore_close(s);
}

TEST(metrics_by_operation_and_backend)
{
    kiln_objstore_t *s = open_store("");
    CHECK_OK(kiln_objstore_put(s, "m/x", "abc", 3, NULL));
    kiln_buf b, m;
    kiln_buf_init(&b, 0);
    kiln_buf_init(&m, 0);
    CHECK_OK(kiln_objstore_get(s, "m/x", &b, NULL));
    kiln_objstore_metrics(s, &m);
    CHECK(strstr(m.ptr, "kiln_objstore_requests_total{backend=\"s3\",operation=\"put\","
                        "result=\"ok\"} 1\n") != NULL);
    CHECK(strstr(m.ptr, "kiln_objstore_bytes_total{backend=\"s3\",operation=\"get\"} 3\n") != NULL);
    CHECK(strstr(m.ptr, "kiln_objstore_request_duration_seconds_count{backend=\"s3\","
                        "operation=\"get\"} 1\n") != NULL);
    kiln_buf_free(&b);
    kiln_buf_free(&m);
    kiln_objstore_close(s);
}

/* The value of one metrics line of s (0 when absent). */
static unsigned long long metric(kiln_objstore_t *s, const char *series)
{
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_objstore_metrics(s, &m);
    char key[256];
    snprintf(key, sizeof(key), "\n%s ", series);
    const char *p = strstr(m.ptr, key);
    unsigned long long v = p ? strtoull(p + strlen(key), NULL, 10) : 0;
    kiln_buf_free(&m);
    return v;
}

#define S3_GETS "kiln_objstore_requests_total{backend=\"s3\",operation=\"get\",result=\"ok\"}"
#define S3_RANGES                                                                                  \
    "kiln_objstore_requests_total{backend=\"s3\",operation=\"get_range\",result=\"ok\"}"

/* A block's index and its sample chunks are read from S3 once, then from
 * the local cache, also after a reopen (a restart); meta.json never is;
 * the least recently used entries go past the maximum; a deleted object's
 * entries go with it. */
TEST(cache_in_front_of_s3)
{
    char dir[64] = "/tmp/kiln-cache-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    kiln_objstore_config c = config("");
    c.cache_dir = dir;
    c.cache_max_bytes = 64 * 1024;
    kiln_objstore_t *s = NULL;
    CHECK_OK(kiln_objstore_open(&c, &s, NULL));
    char idx[4000];
    memset(idx, 'i', sizeof(idx));
    CHECK_OK(kiln_objstore_put(s, "t/blocks/B1/index", idx, sizeof(idx), NULL));
    CHECK_OK(kiln_objstore_put(s, "t/blocks/B1/samples", idx, sizeof(idx), NULL));
    CHECK_OK(kiln_objstore_put(s, "t/blocks/B1/meta.json", "{}", 2, NULL));
    kiln_buf b;
    kiln_buf_init(&b, 0);
    for (int i = 0; i < 3; i++) {
        b.len = 0;
        CHECK_OK(kiln_objstore_get(s, "t/blocks/B1/index", &b, NULL));
        CHECK_EQ(b.len, sizeof(idx));
        b.len = 0;
        CHECK_OK(kiln_objstore_get_range(s, "t/blocks/B1/samples", 100, 50, &b, NULL));
        CHECK_EQ(b.len, 50);
        CHECK_OK(kiln_objstore_get(s, "t/blocks/B1/meta.json", &b, NULL));
    }
    CHECK_EQ(metric(s, S3_GETS), 1 + 3); /* the index once, meta.json every time */
    CHECK_EQ(metric(s, S3_RANGES), 1);
    CHECK_EQ(metric(s, "kiln_objstore_cache_hits_total"), 4);
    kiln_objstore_close(s);

    CHECK_OK(kiln_objstore_open(&c, &s, NULL)); /* warm after a restart */
    b.len = 0;
    CHECK_OK(kiln_objstore_get(s, "t/blocks/B1/index", &b, NULL));
    CHECK(b.len == sizeof(idx) && memcmp(b.ptr, idx, sizeof(idx)) == 0);
    CHECK_EQ(metric(s, S3_GETS), 0);
    /* 40 chunks of 4 KB pass 64 KB: the oldest go, the total stays bounded. */
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof(name), "t/blocks/C%d/samples", i);
        CHECK_OK(kiln_objstore_put(s, name, idx, sizeof(idx), NULL));
        b.len = 0;
        CHECK_OK(kiln_objstore_get_range(s, name, 0, sizeof(idx), &b, NULL));
    }
    unsigned long long bytes = metric(s, "kiln_objstore_cache_bytes");
    printf("  cache: %llu bytes, %llu evictions\n", bytes,
           metric(s, "kiln_objstore_cache_evictions_total"));
    CHECK(bytes <= 64 * 1024);
    CHECK(metric(s, "kiln_objstore_cache_evictions_total") > 0);
    CHECK_OK(kiln_objstore_delete(s, "t/blocks/C39/samples", NULL));
    kiln_err err;
    b.len = 0;
    CHECK_EQ(kiln_objstore_get_range(s, "t/blocks/C39/samples", 0, 10, &b, &err), KILN_NOT_FOUND);
    kiln_buf_free(&b);
    kiln_objstore_close(s);
    tmpdir_remove(dir);
}

int main(void)
{
    if (s3server_start(&srv) != 0) {
        printf("cannot start the S3 server\n");
        s3server_stop(&srv);
        return 1;
    }
    RUN(put_get_size_delete);
    RUN(ranges_at_and_past_the_end);
    RUN(list_follows_continuation);
    RUN(multipart_put);
    RUN(wrong_credentials_and_missing_bucket_fail_at_open);
    RUN(retries_across_a_restart);
    RUN(metrics_by_operation_and_backend);
    RUN(cache_in_front_of_s3);
    s3server_stop(&srv);
    return check_done();
}
