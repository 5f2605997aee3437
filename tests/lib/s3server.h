/* SPDX-License-Identifier: Apache-2.0
 * s3server: a real S3 server for C tests: versitygw (posix backend) on a
 * free loopback port with a temporary root, holding one empty bucket.
 * The binary is $KILN_VERSITYGW, else versitygw on PATH, else
 * $HOME/go/bin/versitygw (where .ci/install-deps puts it). Header-only. */
#ifndef KILN_TEST_S3SERVER_H
#define KILN_TEST_S3SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define S3SERVER_KEY "kilntestkey"
#define S3SERVER_SECRET "kilntestsecret"

typedef struct s3server {
    pid_t pid;
    int port;
    char root[64];
    char endpoint[64]; /* "http://127.0.0.1:<port>" */
    char bucket[32];
} s3server;

static inline int s3server__free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline int s3server__accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static inline const char *s3server__binary(char *buf, size_t cap)
{
    const char *env = getenv("KILN_VERSITYGW");
    if (env != NULL && env[0] != '\0')
        return env;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        const char *c = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, cap, "%.*s/versitygw", (int)n, p);
        if (access(buf, X_OK) == 0)
            return buf;
        p += n + (c != NULL);
    }
    snprintf(buf, cap, "%s/go/bin/versitygw", getenv("HOME") ? getenv("HOME") : "/root");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/** Starts versitygw on s->port over s->root (again, after s3server_kill);
 * 0 once it listens (at most 20 s), -1 with a message printed otherwise. */
static inline int s3server_launch(s3server *s)
{
    char bin[4096], listen[64];
    const char *exe = s3server__binary(bin, sizeof(bin));
    if (exe == NULL) {
        printf("versitygw not found (run .ci/install-deps, or set KILN_VERSITYGW)\n");
        return -1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
    fflush(stdout); /* or the child's freopen writes the buffered lines again */
    s->pid = fork();
    if (s->pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        execl(exe, exe, "--access", S3SERVER_KEY, "--secret", S3SERVER_SECRET, "--port", listen,
              "--keep-alive", "-q", "posix", s->root, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        if (s3server__accepts(s->port))
            return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    printf("versitygw did not listen on %s\n", listen);
    return -1;
}

/** Stops the server process, keeping its root (and so the bucket). */
static inline void s3server_kill(s3server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/** Makes a temporary root with the empty bucket "kiln-test", picks a free
 * port and launches the server: 0 on success, -1 otherwise. */
static inline int s3server_start(s3server *s)
{
    snprintf(s->root, sizeof(s->root), "/tmp/kiln-s3-XXXXXX");
    if (mkdtemp(s->root) == NULL)
        return -1;
    snprintf(s->bucket, sizeof(s->bucket), "kiln-test");
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", s->root, s->bucket);
    mkdir(dir, 0755);
    s->port = s3server__free_port();
    snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%d", s->port);
    return s3server_launch(s);
}

/** Stops the server and removes its root. */
static inline void s3server_stop(s3server *s)
{
    s3server_kill(s);
    if (s->root[0] != '\0')
        tmpdir_remove(s->root);
}

#endif
