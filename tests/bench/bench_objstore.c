/* SPDX-License-Identifier: Apache-2.0
 * bench_objstore: what the object store is asked for, on a real S3 server
 * (versitygw, started here): PUT requests and bytes per block flush, and
 * GET/LIST/HEAD requests and bytes per 1 h and 24 h query over 24 hourly
 * blocks, cold (a new reader: it lists and opens the blocks), warm (the
 * same reader again) and after a restart with the local cache
 * (-storage.cache.dir) filled. Queries start and end mid-block, so they
 * read sample chunks rather than the per-series sums. Prints figures only.
 *
 * Usage: bench_objstore [file] (a pprof file relative to $KILN_TESTDATA;
 * default gdu/default.pgo). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "block.h"
#include "blockset.h"
#include "gzip.h"
#include "head.h"
#include "head_append.h"
#include "objstore.h"
#include "pprof.h"
#include "s3server.h"
#include "selector.h"
#include "tree.h"

#ifndef KILN_TESTDATA_DEFAULT
#define KILN_TESTDATA_DEFAULT "../shared/testdata"
#endif

#define HOURS 24
#define SERVICES 4
#define PER_HOUR 60 /* one profile a minute per service */
#define T0_MS 1700000000000LL
#define HOUR_MS 3600000LL

static s3server srv;
static char cache_dir[64];

/* The counters that matter, read back from the store's metrics text. */
typedef struct counts {
    unsigned long long get, list, put, head, get_bytes, put_bytes, hits;
} counts;

static unsigned long long metric(const char *text, const char *series)
{
    char key[256];
    snprintf(key, sizeof(key), "\n%s ", series);
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

#define REQ(op) "kiln_objstore_requests_total{backend=\"s3\",operation=\"" op "\",result=\"ok\"}"
#define BYTES(op) "kiln_objstore_bytes_total{backend=\"s3\",operation=\"" op "\"}"

static counts read_counts(kiln_objstore_t *s)
{
    kiln_buf m;
    kiln_buf_init(&m, 0);
    kiln_objstore_metrics(s, &m);
    counts c = {
        .get = metric(m.ptr, REQ("get")) + metric(m.ptr, REQ("get_range")),
        .list = metric(m.ptr, REQ("list")),
        .put = metric(m.ptr, REQ("put")),
        .head = metric(m.ptr, REQ("size")),
        .get_bytes = metric(m.ptr, BYTES("get")) + metric(m.ptr, BYTES("get_range")),
        .put_bytes = metric(m.ptr, BYTES("put")),
        .hits = metric(m.ptr, "kiln_objstore_cache_hits_total"),
    };
    kiln_buf_free(&m);
    return c;
}

static counts minus(counts a, counts b)
{
    return (counts){a.get - b.get,   a.list - b.list,           a.put - b.put,
                    a.head - b.head, a.get_bytes - b.get_bytes, a.put_bytes - b.put_bytes,
                    a.hits - b.hits};
}

static kiln_objstore_t *open_store(bool cache)
{
    kiln_objstore_config c = {.backend = "s3", .prefix = "bench"};
    c.s3 = (kiln_objstore_s3_config){.endpoint = srv.endpoint,
                                     .bucket = srv.bucket,
                                     .access_key_id = S3SERVER_KEY,
                                     .secret_access_key = S3SERVER_SECRET,
                                     .force_path_style = true};
    if (cache) {
        c.cache_dir = cache_dir;
        c.cache_max_bytes = 1ull << 30;
    }
    kiln_objstore_t *s = NULL;
    kiln_err err = {0};
    if (kiln_objstore_open(&c, &s, &err) != KILN_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static bool load_profile(kiln_arena_t *a, const char *rel, kiln_pprof_t *p)
{
    char path[4096];
    const char *dir = getenv("KILN_TESTDATA");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : KILN_TESTDATA_DEFAULT, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    kiln_buf raw;
    kiln_buf_init(&raw, 0);
    char buf[65536];
    for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;)
        kiln_buf_append(&raw, buf, n);
    fclose(f);
    const uint8_t *data;
    size_t len;
    bool ok = kiln_gunzip_maybe(a, (const uint8_t *)raw.ptr, raw.len, 64 << 20, &data, &len,
                                NULL) == KILN_OK;
    uint8_t *copy = ok ? kiln_arena_alloc(a, len + 1) : NULL;
    if (copy != NULL)
        memcpy(copy, data, len);
    kiln_buf_free(&raw);
    return copy != NULL && kiln_pprof_decode(a, copy, len, p, NULL) == KILN_OK &&
           kiln_pprof_validate(p, NULL) == KILN_OK &&
           kiln_pprof_normalize(a, p, 0, NULL) == KILN_OK;
}

/* Writes hour h's block; returns what the flush asked of the store. */
static counts flush_hour(kiln_objstore_t *s, const kiln_pprof_t *p, int h)
{
    kiln_head_t *head = kiln_head_create();
    for (int svc = 0; svc < SERVICES; svc++) {
        char name[32];
        snprintf(name, sizeof(name), "svc-%d", svc);
        kiln_label_t l[] = {{"__name__", "process_cpu"}, {"service_name", name}};
        for (int m = 0; m < PER_HOUR; m++)
            check_head_append(head, l, 2, p, (T0_MS + h * HOUR_MS + m * 60000LL) * 1000000LL, 0);
    }
    Block__V1__BlockMeta meta = BLOCK__V1__BLOCK_META__INIT;
    meta.ingester = "bench";
    char ulid[KILN_ULID_LEN + 1];
    counts before = read_counts(s);
    kiln_err err;
    if (kiln_block_write(s, "bench", head, &meta, ulid, &err) != KILN_OK) {
        fprintf(stderr, "flush: %s\n", err.msg);
        exit(1);
    }
    kiln_head_destroy(head);
    return minus(read_counts(s), before);
}

typedef struct query {
    const kiln_selector_t *sel;
    int64_t start, end;
    kiln_tree_t *tree;
} query;

static void on_block(void *ctx, const char *tenant, kiln_block_t *b)
{
    (void)tenant;
    query *q = ctx;
    kiln_read_filter f = {.sel = q->sel, .start_ms = q->start, .end_ms = q->end};
    kiln_read_visitor v = {.tree = q->tree};
    kiln_err err;
    if (kiln_head_read(kiln_block_head(b), &f, &v, &err) != KILN_OK) {
        fprintf(stderr, "query: %s\n", err.msg);
        exit(1);
    }
}

/* One query of `hours` ending 30 min before the last block's end, through
 * bs (synced first, as a reader does). Returns its total. */
static int64_t run_query(kiln_blockset_t *bs, int hours)
{
    kiln_err err;
    if (kiln_blockset_sync(bs, &err) != KILN_OK) {
        fprintf(stderr, "sync: %s\n", err.msg);
        exit(1);
    }
    kiln_selector_t *sel;
    const char *qs = "{service_name=\"svc-1\"}";
    kiln_selector_parse(qs, strlen(qs), &sel, NULL);
    int64_t end = T0_MS + HOURS * HOUR_MS - HOUR_MS / 2;
    query q = {sel, end - hours * HOUR_MS, end, kiln_tree_create()};
    kiln_blockset_each(bs, "bench", q.start, q.end, on_block, &q);
    int64_t total = kiln_tree_total(q.tree);
    kiln_tree_destroy(q.tree);
    kiln_selector_destroy(sel);
    return total;
}

static void print_row(const char *what, counts c)
{
    printf("%-34s %6llu %6llu %6llu %6llu %12llu %12llu %6llu\n", what, c.get, c.head, c.list,
           c.put, c.get_bytes, c.put_bytes, c.hits);
}

/* Cold, warm, and restarted-with-cache figures of one query size. */
static void query_rows(int hours)
{
    char what[64];
    for (int cached = 0; cached < 2; cached++) {
        if (cached)
            tmpdir_remove(cache_dir);
        kiln_objstore_t *s = open_store(cached);
        kiln_blockset_t *bs = kiln_blockset_create(s);
        counts c0 = read_counts(s);
        int64_t total = run_query(bs, hours);
        counts c1 = read_counts(s);
        snprintf(what, sizeof(what), "%dh query, cold%s", hours, cached ? " (cache on)" : "");
        print_row(what, minus(c1, c0));
        run_query(bs, hours);
        snprintf(what, sizeof(what), "%dh query, warm%s", hours, cached ? " (cache on)" : "");
        print_row(what, minus(read_counts(s), c1));
        kiln_blockset_destroy(bs);
        kiln_objstore_close(s);
        if (cached) { /* a restarted reader over the filled cache */
            s = open_store(true);
            bs = kiln_blockset_create(s);
            c0 = read_counts(s);
            run_query(bs, hours);
            snprintf(what, sizeof(what), "%dh query, restarted, cache warm", hours);
            print_row(what, minus(read_counts(s), c0));
            kiln_blockset_destroy(bs);
            kiln_objstore_close(s);
        }
        if (!cached)
            printf("  (total %lld)\n", (long long)total);
    }
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : "gdu/default.pgo";
    kiln_arena_t *a = kiln_arena_create(0);
    kiln_pprof_t p;
    if (!load_profile(a, file, &p)) {
        fprintf(stderr, "cannot load %s\n", file);
        return 1;
    }
    snprintf(cache_dir, sizeof(cache_dir), "/tmp/kiln-bench-cache-XXXXXX");
    if (mkdtemp(cache_dir) == NULL || s3server_start(&srv) != 0) {
        s3server_stop(&srv);
        return 1;
    }
    printf("%d hourly blocks of %d services x %d profiles of %s, S3 = versitygw on loopback\n",
           HOURS, SERVICES, PER_HOUR, file);
    printf("%-34s %6s %6s %6s %6s %12s %12s %6s\n", "", "GET", "HEAD", "LIST", "PUT", "GET bytes",
           "PUT bytes", "hits");
    kiln_objstore_t *w = open_store(false);
    counts sum = {0};
    for (int h = 0; h < HOURS; h++) {
        counts c = flush_hour(w, &p, h);
        sum.put += c.put;
        sum.put_bytes += c.put_bytes;
        sum.get += c.get;
    }
    sum.put /= HOURS;
    sum.put_bytes /= HOURS;
    sum.get /= HOURS;
    print_row("per flush (one 1h block, mean)", sum);
    kiln_objstore_close(w);
    query_rows(1);
    query_rows(24);
    s3server_stop(&srv);
    tmpdir_remove(cache_dir);
    kiln_arena_destroy(a);
    return 0;
}
