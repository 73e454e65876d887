/*
 * tests/soak/soak.c - the soak test: troupe-demo (echo, chat, HTTP and the
 * admin console in one server process) under mixed load for a long time,
 * sampled once a second.
 *
 * Load (threads of this process, the server is a child process):
 *  - echo clients: numbered lines ("e<client> <seq>"), each echo checked
 *    byte for byte and in order; a connection is dropped and reopened
 *    every few hundred lines (churn);
 *  - chat clients in one room: numbered messages; every receiver checks,
 *    per sender, that numbers only go up by one (no loss, no duplicate, no
 *    reordering); a client leaves and comes back now and then;
 *  - an HTTP keep-alive client (GET /json), reconnecting every 100;
 *  - the console over its Unix socket: stats, ps, tree, conns, metrics,
 *    listeners in a loop, every reply complete ("ok");
 *  - a chaos thread that, through the console, kills random echo and HTTP
 *    connection actors and, every few rounds, the chat room: the room is
 *    supervised (transient) and must come back under the same name with a
 *    new pid each time; every 25 rounds, the echo connections' supervisor
 *    itself (an untrappable kill): the root restarts it and the echo
 *    listener, which finds it by name, keeps serving.
 *
 * Checks at the end: no echo out of order or altered and at most one line
 * lost per killed connection; no chat message lost outside the moments a
 * room restart explains, none duplicated or reordered; every room kill
 * restarted; every console command answered; the server's RSS shows no
 * growth over the second half of the run and its descriptor count goes
 * back to where it was before the load; the server stops cleanly (exit 0)
 * on SIGINT.
 *
 * Environment: TP_SOAK_SECONDS (default 120), TP_SOAK_CSV (samples, one
 * row a second: default soak.csv), TP_SOAK_DEMO (the server binary,
 * default the troupe-demo this was built with).
 */
#define _GNU_SOURCE
#include "soakutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SOAK_DEMO
#define SOAK_DEMO "troupe-demo"
#endif

#define ECHO_CLIENTS 4
#define CHAT_CLIENTS 3
#define LAT_BUCKETS  2000 /* echo latency histogram, 50 us buckets */

static atomic_bool stop;
static pid_t server;
static uint16_t echo_port, chat_port, http_port;
static char con_path[108];

/* Counters (all threads). */
static atomic_ulong echo_sent, echo_ok, echo_bad, echo_lost, echo_cut;
static atomic_ulong echo_churn;
static atomic_ulong chat_sent, chat_recv, chat_gap_ok, chat_lost, chat_dup;
static atomic_ulong chat_churn;
static atomic_ulong http_ok, http_bad;
static atomic_ulong con_ok, con_bad, con_max_us;
static atomic_ulong kills_conn, kills_room, room_restarts, room_missing;
/* Kills of the echo connections' supervisor (all echo connections go with
 * it; the root restarts it and the listener finds it again by name). */
static atomic_ulong kills_sup, sup_restarts, sup_missing, echo_cut_sup;
static atomic_ulong last_sup_kill_ms;
static atomic_ulong last_room_kill_ms;
static atomic_ulong server_conns;
static atomic_ulong lat[LAT_BUCKETS];

static void
fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "soak: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (server > 0)
        kill(server, SIGKILL);
    exit(1);
}

/* TP_TEST_SLOW, as the cmocka tests read it (1 when unset). */
static unsigned
slow(void)
{
    const char *s = getenv("TP_TEST_SLOW");

    return s != NULL && atoi(s) > 0 ? (unsigned)atoi(s) : 1;
}

/* How long after a kill a gap or a cut is put down to it: the client sees
 * the loss only when its next line comes, later on a loaded machine. */
static unsigned long
grace_ms(void)
{
    return 3000ul * slow();
}

/* How long a killed, supervised actor may take to be back. */
static unsigned long
restart_ms(void)
{
    return 10000ul * slow();
}

static void
msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------- */
/* Sockets                                                                */

static int
tcp_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
unix_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* A line reader over a socket. */
struct lines {
    int fd;
    char buf[65536];
    size_t have;
};

/* Next line into out (without "\n"). 1 = line, 0 = closed/reset,
 * -1 = nothing within ms. */
static int
next_line(struct lines *l, char *out, size_t cap, int ms)
{
    for (;;) {
        char *nl = memchr(l->buf, '\n', l->have);
        if (nl != NULL) {
            size_t n = (size_t)(nl - l->buf);
            size_t c = n < cap - 1 ? n : cap - 1;
            memcpy(out, l->buf, c);
            out[c] = '\0';
            memmove(l->buf, nl + 1, l->have - n - 1);
            l->have -= n + 1;
            return 1;
        }
        if (l->have == sizeof(l->buf))
            l->have = 0; /* a line longer than anything expected: drop */
        struct pollfd p = {l->fd, POLLIN, 0};
        if (poll(&p, 1, ms) <= 0)
            return -1;
        ssize_t k = recv(l->fd, l->buf + l->have, sizeof(l->buf) - l->have, 0);
        if (k <= 0)
            return 0;
        l->have += (size_t)k;
    }
}

/* ---------------------------------------------------------------------- */
/* Echo clients                                                           */

static void
lat_add(uint64_t us)
{
    size_t b = us / 50;

    atomic_fetch_add(&lat[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1], 1);
}

static double
lat_pct(double pct)
{
    unsigned long total = 0, acc = 0;

    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += atomic_load(&lat[i]);
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        acc += atomic_load(&lat[i]);
        if (total > 0 && (double)acc >= pct * (double)total)
            return (double)(i + 1) * 0.05;
    }
    return 0;
}

/* One echo connection's life: lines until churn, a kill or the end. */
static void
echo_conn(int id, uint64_t *seq, unsigned *rnd)
{
    static __thread struct lines l;
    unsigned budget = 100 + rand_r(rnd) % 400;
    char line[64], got[64];
    int fd = tcp_connect(echo_port), r;

    if (fd < 0) {
        atomic_fetch_add(&echo_bad, 1);
        fprintf(stderr, "soak: echo connect failed: %s\n", strerror(errno));
        msleep(100);
        return;
    }
    l.fd = fd;
    l.have = 0;
    while (budget-- > 0 && !atomic_load(&stop)) {
        int n = snprintf(line, sizeof(line), "e%d %llu\n", id,
                         (unsigned long long)*seq);
        uint64_t t1;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        atomic_fetch_add(&echo_sent, 1);
        if (!send_all(fd, line, (size_t)n) ||
            (r = next_line(&l, got, sizeof(got), 10000)) == 0) {
            /* Cut: the chaos thread killed this connection's actor, or
             * its supervisor (then every echo connection goes, and one
             * made before the restart is closed at once). The line in
             * flight may be lost with it. */
            atomic_fetch_add(&echo_cut, 1);
            if (soak_now_ms() - atomic_load(&last_sup_kill_ms) < grace_ms())
                atomic_fetch_add(&echo_cut_sup, 1);
            else
                atomic_fetch_add(&echo_lost, 1);
            (*seq)++;
            close(fd);
            return;
        }
        if (r < 0)
            fail("echo client %d: no echo of seq %llu in 10 s", id,
                 (unsigned long long)*seq);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t1 = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000u +
             (uint64_t)((b.tv_nsec - a.tv_nsec) / 1000);
        lat_add(t1);
        line[n - 1] = '\0';
        if (strcmp(line, got) != 0) {
            atomic_fetch_add(&echo_bad, 1);
            fprintf(stderr, "soak: echo client %d: sent '%s' got '%s'\n", id,
                    line, got);
        } else
            atomic_fetch_add(&echo_ok, 1);
        (*seq)++;
        msleep(1); /* about 1,000 lines/s a client: load, not a benchmark */
    }
    atomic_fetch_add(&echo_churn, 1);
    close(fd);
}

static void *
echo_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned rnd = (unsigned)id * 7919u + 1;
    uint64_t seq = 0;

    while (!atomic_load(&stop))
        echo_conn(id, &seq, &rnd);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Chat clients                                                           */

struct chat_client {
    int id;
    uint64_t seq;               /* next number to send */
    int64_t last[CHAT_CLIENTS]; /* last number seen from each sender */
    struct lines l;
};

/* "<sK> m K N": checks N against the last one seen from K. */
static void
chat_check(struct chat_client *c, const char *line)
{
    int k;
    unsigned long long n;

    if (sscanf(line, "<s%*d> m %d %llu", &k, &n) != 2 || k < 0 ||
        k >= CHAT_CLIENTS)
        return;
    atomic_fetch_add(&chat_recv, 1);
    if (c->last[k] >= 0 && (int64_t)n <= c->last[k]) {
        atomic_fetch_add(&chat_dup, 1);
        fprintf(stderr, "soak: chat %d: from %d got %llu after %lld\n", c->id,
                k, n, (long long)c->last[k]);
    } else if (c->last[k] >= 0 && (int64_t)n > c->last[k] + 1) {
        /* Messages to a room that is restarting are lost with it. */
        if (soak_now_ms() - atomic_load(&last_room_kill_ms) < grace_ms())
            atomic_fetch_add(&chat_gap_ok,
                             (unsigned long)((int64_t)n - c->last[k] - 1));
        else {
            atomic_fetch_add(&chat_lost,
                             (unsigned long)((int64_t)n - c->last[k] - 1));
            fprintf(stderr, "soak: chat %d: from %d got %llu after %lld\n",
                    c->id, k, n, (long long)c->last[k]);
        }
    }
    c->last[k] = (int64_t)n;
}

/* Reads what came, up to ms; returns false when the connection closed. */
static bool
chat_drain(struct chat_client *c, int ms, const char *want)
{
    char line[600];
    uint64_t end = soak_now_ms() + (uint64_t)ms;
    int r;

    for (;;) {
        int64_t left = (int64_t)(end - soak_now_ms());
        if (left < 0)
            left = 0;
        r = next_line(&c->l, line, sizeof(line), (int)left);
        if (r == 0)
            return false;
        if (r < 0)
            return want == NULL;
        chat_check(c, line);
        if (want != NULL && strstr(line, want) != NULL)
            return true;
    }
}

static bool
chat_join(struct chat_client *c)
{
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "/nick s%d\n/join soak\n", c->id);

    if ((c->l.fd = tcp_connect(chat_port)) < 0)
        return false;
    c->l.have = 0;
    for (int k = 0; k < CHAT_CLIENTS; k++)
        c->last[k] = -1; /* a new member: baseline on the first seen */
    if (!send_all(c->l.fd, hello, (size_t)n) ||
        !chat_drain(c, 5000, "you joined #soak")) {
        close(c->l.fd);
        return false;
    }
    return true;
}

static void *
chat_main(void *arg)
{
    struct chat_client *c = arg;
    unsigned rnd = (unsigned)c->id * 104729u + 3;

    while (!atomic_load(&stop)) {
        unsigned budget = 200 + rand_r(&rnd) % 800;
        if (!chat_join(c)) {
            atomic_fetch_add(&chat_churn, 1);
            msleep(100);
            continue;
        }
        while (budget-- > 0 && !atomic_load(&stop)) {
            char line[64];
            int n = snprintf(line, sizeof(line), "m %d %llu\n", c->id,
                             (unsigned long long)c->seq);
            if (!send_all(c->l.fd, line, (size_t)n))
                break;
            c->seq++;
            atomic_fetch_add(&chat_sent, 1);
            if (!chat_drain(c, 20, NULL))
                break;
        }
        /* Leave politely (churn); read what is still on the way. */
        send_all(c->l.fd, "/quit\n", 6);
        chat_drain(c, 200, NULL);
        close(c->l.fd);
        atomic_fetch_add(&chat_churn, 1);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* HTTP client                                                            */

static bool
http_one(struct lines *l)
{
    static const char req[] = "GET /json HTTP/1.1\r\nHost: soak\r\n\r\n";
    char line[512];
    long clen = -1;
    int status = 0, r;

    if (!send_all(l->fd, req, sizeof(req) - 1))
        return false;
    while ((r = next_line(l, line, sizeof(line), 10000)) == 1) {
        if (status == 0)
            sscanf(line, "HTTP/1.1 %d", &status);
        else if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        else if (line[0] == '\r' || line[0] == '\0')
            break;
    }
    if (r != 1 || status != 200 || clen < 0)
        return false;
    /* The body: skip clen bytes. */
    while ((size_t)clen > l->have) {
        struct pollfd p = {l->fd, POLLIN, 0};
        ssize_t k;
        if (poll(&p, 1, 10000) <= 0)
            return false;
        k = recv(l->fd, l->buf + l->have, sizeof(l->buf) - l->have, 0);
        if (k <= 0)
            return false;
        l->have += (size_t)k;
    }
    memmove(l->buf, l->buf + clen, l->have - (size_t)clen);
    l->have -= (size_t)clen;
    return true;
}

static void *
http_main(void *arg)
{
    static struct lines l;

    (void)arg;
    while (!atomic_load(&stop)) {
        if ((l.fd = tcp_connect(http_port)) < 0) {
            atomic_fetch_add(&http_bad, 1);
            msleep(100);
            continue;
        }
        l.have = 0;
        for (int i = 0; i < 100 && !atomic_load(&stop); i++) {
            if (!http_one(&l))
                break; /* killed by chaos: reconnect */
            atomic_fetch_add(&http_ok, 1);
            msleep(5);
        }
        close(l.fd);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Console                                                                */

struct console {
    struct lines l;
    char reply[262144];
};

static bool
console_open(struct console *c)
{
    char line[256];

    if ((c->l.fd = unix_connect(con_path)) < 0)
        return false;
    c->l.have = 0;
    /* The banner. */
    return next_line(&c->l, line, sizeof(line), 5000) == 1;
}

/* Runs a command; the reply (without its final "ok") into c->reply.
 * Returns its latency in us, or -1. */
static long
console_cmd(struct console *c, const char *cmd)
{
    char line[1024];
    size_t len = 0;
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    if (!send_all(c->l.fd, cmd, strlen(cmd)) || !send_all(c->l.fd, "\n", 1))
        return -1;
    c->reply[0] = '\0';
    while (next_line(&c->l, line, sizeof(line), 10000) == 1) {
        if (strcmp(line, "ok") == 0) {
            clock_gettime(CLOCK_MONOTONIC, &b);
            return (long)((b.tv_sec - a.tv_sec) * 1000000L +
                          (b.tv_nsec - a.tv_nsec) / 1000);
        }
        if (strncmp(line, "error:", 6) == 0) {
            fprintf(stderr, "soak: console '%s': %s\n", cmd, line);
            return -1;
        }
        len += (size_t)snprintf(c->reply + len, sizeof(c->reply) - len, "%s\n",
                                line);
        if (len >= sizeof(c->reply) - 1)
            len = sizeof(c->reply) - 1;
    }
    return -1;
}

static void
note_stats(const char *reply)
{
    const char *p = strstr(reply, "\nconnections");
    unsigned long n;

    if (p != NULL && sscanf(p + 12, " %lu", &n) == 1)
        atomic_store(&server_conns, n);
}

static void *
console_main(void *arg)
{
    static struct console c;
    static const char *const cmds[] = {"stats",      "ps -n 20", "tree",
                                       "conns -n 5", "metrics",  "listeners"};
    unsigned i = 0;

    (void)arg;
    if (!console_open(&c))
        fail("console: cannot open %s", con_path);
    while (!atomic_load(&stop)) {
        const char *cmd = cmds[i++ % (sizeof(cmds) / sizeof(cmds[0]))];
        long us = console_cmd(&c, cmd);
        if (us < 0) {
            atomic_fetch_add(&con_bad, 1);
            close(c.l.fd);
            if (!console_open(&c))
                fail("console: cannot reopen %s", con_path);
            continue;
        }
        atomic_fetch_add(&con_ok, 1);
        if ((unsigned long)us > atomic_load(&con_max_us))
            atomic_store(&con_max_us, (unsigned long)us);
        if (strcmp(cmd, "stats") == 0)
            note_stats(c.reply);
        msleep(50);
    }
    close(c.l.fd);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Chaos                                                                  */

/* Collects pids of actors with behaviour beh (and name, if not NULL) from
 * a ps listing. Returns how many (at most max). */
static int
find_actors(const char *ps, const char *beh, const char *name, char pids[][24],
            int max)
{
    int n = 0;

    for (const char *p = ps; p != NULL && *p != '\0' && n < max;) {
        char pid[24], nm[64], b[64];
        const char *nl = strchr(p, '\n');
        if (sscanf(p, "%23s %63s %63s", pid, nm, b) == 3 && pid[0] == '<' &&
            strcmp(b, beh) == 0 && (name == NULL || strcmp(nm, name) == 0))
            snprintf(pids[n++], 24, "%s", pid);
        p = nl != NULL ? nl + 1 : NULL;
    }
    return n;
}

static void
chaos_kill_conn(struct console *c, unsigned *rnd)
{
    static char pids[1024][24];
    static const char *const behs[] = {"echo.conn", "echo.conn", "http.conn"};
    const char *beh = behs[rand_r(rnd) % 3];
    char cmd[64];
    int n;

    if (console_cmd(c, "ps -n 1000") < 0)
        fail("chaos: ps failed");
    if ((n = find_actors(c->reply, beh, NULL, pids, 1024)) == 0)
        return;
    snprintf(cmd, sizeof(cmd), "kill %s chaos",
             pids[rand_r(rnd) % (unsigned)n]);
    if (console_cmd(c, cmd) >= 0)
        atomic_fetch_add(&kills_conn, 1);
}

/* A named actor the chaos thread kills and whose supervisor must start it
 * again (same name, new pid) within restart_ms(). */
struct victim {
    const char *behaviour, *name, *reason;
    atomic_ulong *last_kill_ms; /* loss accounting: "just killed" */
    atomic_ulong *kills, *restarts, *missing;
};

static void
chaos_kill_restarted(struct console *c, const struct victim *v)
{
    char old[1][24], now[1][24], cmd[64];
    uint64_t end;

    if (console_cmd(c, "ps -n 1000") < 0)
        fail("chaos: ps failed");
    if (find_actors(c->reply, v->behaviour, v->name, old, 1) != 1)
        return;
    atomic_store(v->last_kill_ms, soak_now_ms());
    snprintf(cmd, sizeof(cmd), "kill %s %s", old[0], v->reason);
    if (console_cmd(c, cmd) < 0)
        fail("chaos: kill %s failed", v->name);
    atomic_fetch_add(v->kills, 1);
    end = soak_now_ms() + restart_ms();
    while (soak_now_ms() < end) {
        msleep(20);
        if (console_cmd(c, "ps -n 1000") < 0)
            fail("chaos: ps failed");
        if (find_actors(c->reply, v->behaviour, v->name, now, 1) == 1 &&
            strcmp(now[0], old[0]) != 0) {
            atomic_fetch_add(v->restarts, 1);
            atomic_store(v->last_kill_ms, soak_now_ms());
            return;
        }
    }
    atomic_fetch_add(v->missing, 1);
    fprintf(stderr, "soak: %s %s not restarted within %lu ms\n", v->name,
            old[0], restart_ms());
}

/* The chat room (a transient child of chat.rooms), and the echo
 * connections' supervisor (an untrappable kill; the root restarts it). */
static const struct victim room_victim = {
    "chat.room", "room:soak",    "chaos",      &last_room_kill_ms,
    &kills_room, &room_restarts, &room_missing};
static const struct victim sup_victim = {
    "supervisor", "echo.conns",  "kill",      &last_sup_kill_ms,
    &kills_sup,   &sup_restarts, &sup_missing};

static void *
chaos_main(void *arg)
{
    static struct console c;
    unsigned rnd = 12345, round = 0;

    (void)arg;
    if (!console_open(&c))
        fail("chaos: cannot open the console");
    msleep(2000); /* let the clients settle */
    while (!atomic_load(&stop)) {
        if (++round % 25 == 0)
            chaos_kill_restarted(&c, &sup_victim);
        else if (round % 10 == 0)
            chaos_kill_restarted(&c, &room_victim);
        else
            chaos_kill_conn(&c, &rnd);
        msleep(300 + rand_r(&rnd) % 400);
    }
    close(c.l.fd);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The server                                                             */

static void
start_server(const char *bin)
{
    int out[2];
    char line[256];
    FILE *f;
    int ready = 0;

    snprintf(con_path, sizeof(con_path), "/tmp/tp-soak-%d.sock", (int)getpid());
    if (pipe(out) != 0)
        fail("pipe: %s", strerror(errno));
    if ((server = fork()) == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(bin, bin, "--port", "0", "--schedulers", "2", "--console",
              con_path, "--http-port", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    f = fdopen(out[0], "r");
    while (ready < 4 && fgets(line, sizeof(line), f) != NULL) {
        unsigned port;
        char *colon = strrchr(line, ':');
        if (strncmp(line, "READY console ", 14) == 0)
            ready++;
        else if (colon == NULL || sscanf(colon + 1, "%u", &port) != 1)
            continue;
        else if (strncmp(line, "READY echo ", 11) == 0)
            echo_port = (uint16_t)port, ready++;
        else if (strncmp(line, "READY chat ", 11) == 0)
            chat_port = (uint16_t)port, ready++;
        else if (strncmp(line, "READY http ", 11) == 0)
            http_port = (uint16_t)port, ready++;
    }
    if (ready < 4)
        fail("%s did not become ready", bin);
    /* Keep reading (and dropping) its output so it never blocks. */
    if (fork() == 0) {
        while (fgets(line, sizeof(line), f) != NULL)
            ;
        _exit(0);
    }
    fclose(f);
}

/* One of each client before the idle descriptor count is taken: each
 * scheduler's loop opens a reserve descriptor (/dev/null, libuv's answer to
 * EMFILE) at its first accept, and keeps it. */
static void
warm_up(void)
{
    static struct lines l;
    static struct chat_client c;
    char line[64];

    for (int i = 0; i < 8; i++) {
        if ((l.fd = tcp_connect(echo_port)) < 0)
            fail("warm-up: echo connect");
        l.have = 0;
        if (!send_all(l.fd, "w\n", 2) || next_line(&l, line, 64, 5000) != 1)
            fail("warm-up: no echo");
        close(l.fd);
        if ((l.fd = tcp_connect(http_port)) < 0)
            fail("warm-up: http connect");
        l.have = 0;
        if (!http_one(&l))
            fail("warm-up: http");
        close(l.fd);
        c.id = 0;
        if (!chat_join(&c))
            fail("warm-up: chat");
        close(c.l.fd);
    }
    msleep(500);
}

/* What the server holds (to explain a descriptor count). */
static void
show_server_state(void)
{
    static struct console c;
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)server);
    if (system(cmd) != 0)
        fprintf(stderr, "soak: cannot list the server's descriptors\n");
    if (console_open(&c) && console_cmd(&c, "conns -n 100") >= 0)
        fprintf(stderr, "soak: server connections:\n%s", c.reply);
    if (console_cmd(&c, "ps -n 100") >= 0)
        fprintf(stderr, "soak: server actors:\n%s", c.reply);
    close(c.l.fd);
}

static int
stop_server(void)
{
    int st = 0;
    uint64_t end = soak_now_ms() + 20000;

    kill(server, SIGINT);
    while (waitpid(server, &st, WNOHANG) == 0) {
        if (soak_now_ms() > end) {
            kill(server, SIGKILL);
            waitpid(server, &st, 0);
            return -1;
        }
        msleep(20);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---------------------------------------------------------------------- */
/* Sampling and verdict                                                   */

struct series {
    double *t, *rss, *fds;
    size_t n, cap;
};

static void
series_add(struct series *s, double t, double rss, double fds)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->t = realloc(s->t, s->cap * sizeof(double));
        s->rss = realloc(s->rss, s->cap * sizeof(double));
        s->fds = realloc(s->fds, s->cap * sizeof(double));
        if (s->t == NULL || s->rss == NULL || s->fds == NULL)
            fail("out of memory");
    }
    s->t[s->n] = t;
    s->rss[s->n] = rss;
    s->fds[s->n++] = fds;
}

static unsigned long
total_requests(void)
{
    return atomic_load(&echo_ok) + atomic_load(&chat_sent) +
           atomic_load(&http_ok) + atomic_load(&con_ok);
}

static void
sample_loop(unsigned seconds, FILE *csv, struct series *s)
{
    uint64_t t0 = soak_now_ms();
    unsigned long prev = total_requests();

    fprintf(csv, "t_s,rss_kb,fds,conns,req_per_s,crashes,restarts\n");
    for (unsigned i = 1; i <= seconds; i++) {
        uint64_t due = t0 + (uint64_t)i * 1000, now = soak_now_ms();
        long rss, fds;
        unsigned long req;
        if (due > now)
            msleep((unsigned)(due - now));
        rss = soak_rss_kb(server);
        fds = soak_fd_count(server);
        if (rss < 0 || fds < 0)
            fail("the server is gone");
        req = total_requests();
        series_add(s, i, (double)rss, (double)fds);
        fprintf(csv, "%u,%ld,%ld,%lu,%lu,%lu,%lu\n", i, rss, fds,
                atomic_load(&server_conns), req - prev,
                atomic_load(&kills_conn) + atomic_load(&kills_room),
                atomic_load(&room_restarts));
        fflush(csv);
        prev = req;
        if (i % 60 == 0)
            printf("soak: %u s: rss %ld KiB, fds %ld, %lu echoes, %lu chat, "
                   "%lu kills\n",
                   i, rss, fds, atomic_load(&echo_ok), atomic_load(&chat_recv),
                   atomic_load(&kills_conn) + atomic_load(&kills_room));
    }
}

static unsigned checks_failed;

static void
check(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
    if (!ok)
        checks_failed++;
}

static void
report(const struct series *s, long fds_idle0, long fds_idle1, int exit_code)
{
    struct soak_trend rss, fds;
    char what[256];

    soak_trend(s->t, s->rss, s->n, &rss);
    soak_trend(s->t, s->fds, s->n, &fds);
    printf("soak: %zu s; RSS median %.0f KiB, slope %.2f KiB/s (%.0f KiB/h) "
           "over the second half; fds median %.0f, slope %.4f/s\n",
           s->n, rss.median, rss.slope, rss.per_hour, fds.median, fds.slope);
    printf("soak: echo %lu ok (%lu cut by kills, %lu churn reconnects), p50 "
           "%.2f ms p99 %.2f ms p99.9 %.2f ms; chat %lu sent, %lu received, "
           "%lu lost in room restarts; http %lu; console %lu commands, max "
           "%.1f ms; kills: %lu connections, %lu rooms (%lu restarted), "
           "%lu echo supervisors (%lu restarted, %lu echo connections cut)\n",
           atomic_load(&echo_ok), atomic_load(&echo_cut),
           atomic_load(&echo_churn), lat_pct(0.5), lat_pct(0.99),
           lat_pct(0.999), atomic_load(&chat_sent), atomic_load(&chat_recv),
           atomic_load(&chat_gap_ok), atomic_load(&http_ok),
           atomic_load(&con_ok), (double)atomic_load(&con_max_us) / 1000.0,
           atomic_load(&kills_conn), atomic_load(&kills_room),
           atomic_load(&room_restarts), atomic_load(&kills_sup),
           atomic_load(&sup_restarts), atomic_load(&echo_cut_sup));
    check(atomic_load(&echo_bad) == 0, "every echo intact and in order");
    check(atomic_load(&echo_lost) <= atomic_load(&kills_conn),
          "echo lines lost only with a killed connection (<= 1 per kill)");
    check(atomic_load(&chat_lost) == 0 && atomic_load(&chat_dup) == 0,
          "no chat message lost (outside room restarts), duplicated or "
          "reordered");
    check(atomic_load(&chat_recv) > 0 && atomic_load(&echo_ok) > 0 &&
              atomic_load(&http_ok) > 0,
          "every kind of client was served");
    check(atomic_load(&con_bad) == 0, "every console command answered");
    check(atomic_load(&room_missing) == 0 &&
              atomic_load(&room_restarts) == atomic_load(&kills_room),
          "every room kill restarted by its supervisor");
    check(atomic_load(&sup_missing) == 0 &&
              atomic_load(&sup_restarts) == atomic_load(&kills_sup),
          "every kill of the echo connections' supervisor restarted");
    check(atomic_load(&http_bad) == 0, "HTTP connects never refused");
    /* Growth over the second half: fitted end minus fitted start. */
    snprintf(what, sizeof(what),
             "RSS: no growth trend (second half %+.0f KiB, limit 1024 KiB + "
             "3%%)",
             rss.last - rss.first);
    check(rss.last - rss.first < 1024 + 0.03 * rss.median, what);
    snprintf(what, sizeof(what), "fds: no growth trend (%+.1f)",
             fds.last - fds.first);
    check(fds.last - fds.first < 3, what);
    snprintf(what, sizeof(what), "fds back to %ld when idle (now %ld)",
             fds_idle0, fds_idle1);
    check(fds_idle1 == fds_idle0, what);
    check(exit_code == 0, "the server stopped cleanly on SIGINT");
}

int
main(void)
{
    const char *bin =
        getenv("TP_SOAK_DEMO") ? getenv("TP_SOAK_DEMO") : SOAK_DEMO;
    const char *csvp =
        getenv("TP_SOAK_CSV") ? getenv("TP_SOAK_CSV") : "soak.csv";
    unsigned seconds = getenv("TP_SOAK_SECONDS")
                           ? (unsigned)atoi(getenv("TP_SOAK_SECONDS"))
                           : 120;
    pthread_t th[ECHO_CLIENTS + CHAT_CLIENTS + 3];
    static struct chat_client chat[CHAT_CLIENTS];
    struct series s = {0};
    long fds_idle0, fds_idle1;
    FILE *csv;
    int nth = 0, code;

    signal(SIGPIPE, SIG_IGN);
    if ((csv = fopen(csvp, "we")) == NULL)
        fail("%s: %s", csvp, strerror(errno));
    start_server(bin);
    warm_up();
    fds_idle0 = soak_fd_count(server);
    printf("soak: %u s against %s (pid %d): echo %u, chat %u, http %u\n",
           seconds, bin, (int)server, echo_port, chat_port, http_port);
    for (int i = 0; i < ECHO_CLIENTS; i++)
        pthread_create(&th[nth++], NULL, echo_main, (void *)(intptr_t)i);
    for (int i = 0; i < CHAT_CLIENTS; i++) {
        chat[i].id = i;
        pthread_create(&th[nth++], NULL, chat_main, &chat[i]);
    }
    pthread_create(&th[nth++], NULL, http_main, NULL);
    pthread_create(&th[nth++], NULL, console_main, NULL);
    pthread_create(&th[nth++], NULL, chaos_main, NULL);
    sample_loop(seconds, csv, &s);
    atomic_store(&stop, true);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    fclose(csv);
    /* Idle again: the connections' descriptors must all be gone. */
    for (int i = 0; i < 50; i++) {
        if ((fds_idle1 = soak_fd_count(server)) == fds_idle0)
            break;
        msleep(100);
    }
    if (fds_idle1 != fds_idle0)
        show_server_state();
    code = stop_server();
    report(&s, fds_idle0, fds_idle1, code);
    printf("soak: samples in %s; %s\n", csvp,
           checks_failed ? "FAILED" : "passed");
    return checks_failed ? 1 : 0;
}
