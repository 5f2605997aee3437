/* SPDX-License-Identifier: Apache-2.0
 * log: logfmt lines to stderr, one write(2) each so threads do not interleave. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "xmalloc.h"

/* Sampler slots: a key hashes to one; a fixed table bounds memory whatever
 * the number of tenants. */
#define SAMPLER_SLOTS 1024

typedef struct sample_slot {
    uint64_t key; /* the last key seen, for debugging */
    int64_t window_start;
    unsigned count;
} sample_slot;

struct kiln_log_sampler {
    pthread_mutex_t mu;
    unsigned burst;
    int64_t interval_ns;
    uint64_t suppressed;
    sample_slot slot[SAMPLER_SLOTS];
};

kiln_log_level kiln_log_min = KILN_LOG_LEVEL_INFO;

static const char *names[] = {"debug", "info", "warn", "error"};

int kiln_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

void kiln_log_write(kiln_log_level lvl, const char *mod, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl], mod);
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Escape quotes and control bytes so one event stays one parseable line. */
    for (const char *p = msg; *p != '\0' && n < (int)sizeof(line) - 3; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            line[n++] = ' ';
        } else {
            line[n++] = (char)c;
        }
    }
    line[n++] = '"';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

static void sampler_init(kiln_log_sampler_t *s, unsigned burst, int64_t interval_ns)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->burst = burst;
    s->interval_ns = interval_ns;
}

kiln_log_sampler_t *kiln_log_sampler_create(unsigned burst, int64_t interval_ns)
{
    kiln_log_sampler_t *s = kiln_xmalloc(sizeof(*s));
    sampler_init(s, burst, interval_ns);
    return s;
}

void kiln_log_sampler_destroy(kiln_log_sampler_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

bool kiln_log_sampler_allow(kiln_log_sampler_t *s, const char *tenant, const char *reason,
                            int64_t now_ns)
{
    uint64_t key = fnv1a(fnv1a(0xcbf29ce484222325ULL, tenant), reason);
    pthread_mutex_lock(&s->mu);
    sample_slot *sl = &s->slot[key % SAMPLER_SLOTS];
    /* Keys that share a slot share its budget (resetting on a key change
     * would let two alternating keys log without bound). */
    if (now_ns < sl->window_start || now_ns - sl->window_start >= s->interval_ns)
        *sl = (sample_slot){key, now_ns, 0};
    bool ok = sl->count < s->burst;
    if (ok)
        sl->count++;
    else
        s->suppressed++;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

uint64_t kiln_log_sampler_suppressed(const kiln_log_sampler_t *s)
{
    kiln_log_sampler_t *m = (kiln_log_sampler_t *)s;
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->suppressed;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static kiln_log_sampler_t proc_sampler;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void proc_init(void)
{
    sampler_init(&proc_sampler, KILN_LOG_SAMPLE_BURST, KILN_LOG_SAMPLE_INTERVAL_NS);
}

bool kiln_log_sample(const char *tenant, const char *reason)
{
    pthread_once(&proc_once, proc_init);
    return kiln_log_sampler_allow(&proc_sampler, tenant, reason, kiln_mono_ns());
}

uint64_t kiln_log_suppressed_total(void)
{
    pthread_once(&proc_once, proc_init);
    return kiln_log_sampler_suppressed(&proc_sampler);
}
