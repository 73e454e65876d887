/*
 * tests/test_console_attack.c - the console under the attacks an outside
 * tester ran (issue 14): another uid racing the Unix socket's start, a
 * symlink swapped in at its path, a second instance on the same path,
 * unauthenticated TCP clients filling the session slots, slowloris on
 * the HTTP port, token guessing over HTTP and over the TCP line protocol,
 * killing the root supervisor or the console's sampler, and the idle
 * times `conns` reports. Each test asserts on behaviour; deadlines scale
 * with tpt_slow().
 */
#include "test_console_client.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <troupe/net.h>
#include <unistd.h>

#define TOKEN  "attack-test-token-0123456789abcdef"
#define NOBODY 65534

struct fixture {
    tp_runtime *rt;
    char dir[64], path[108];
};

static char buf[1 << 20];

static int
setup(void **st)
{
    static struct fixture f;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(2);
    snprintf(f.dir, sizeof(f.dir), "/tmp/tpca-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    /* Others may reach the socket: its own checks must keep them out. */
    assert_int_equal(chmod(f.dir, 0755), 0);
    snprintf(f.path, sizeof(f.path), "%s/console.sock", f.dir);
    *st = &f;
    return 0;
}

static int
teardown(void **st)
{
    struct fixture *f = *st;
    char cmd[160];

    tpt_finish(f->rt);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void
opts_unix(struct fixture *f, tp_console_opts *o)
{
    tp_console_opts_init(o);
    o->unix_path = f->path;
    o->token = TOKEN;
}

/* A Unix session's banner within ms; false if refused or closed. */
static bool
unix_banner(const char *path, int *fd_out)
{
    int fd = tcn_dial_unix(path);

    if (fd < 0)
        return false;
    if (tcn_read_until(fd, "\n", buf, sizeof(buf), 5000) <= 0 ||
        strstr(buf, "type 'help'") == NULL) {
        close(fd);
        return false;
    }
    *fd_out = fd;
    return true;
}

/* Sends a line and reads to its reply's end ("ok" or an error line). */
static int
line_cmd(int fd, const char *line)
{
    tcn_put(fd, line, strlen(line));
    tcn_put(fd, "\n", 1);
    return tcn_read_until(fd, "\nok\n", buf, sizeof(buf), 5000);
}

/* ---- a child process under another uid ----------------------------------*/

/* Becomes uid/gid 65534 (nobody) for good. Async-signal-safe calls only
 * (we forked a threaded process). */
static void
become_nobody(void)
{
    if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
        setresuid(NOBODY, NOBODY, NOBODY) != 0)
        _exit(3);
}

/* Child: connects to path over and over for `ms`; writes 'X' to `out` if
 * a connection ever got an answer to a command (an admin session). */
static void
nobody_knocks(const char *path, int out, unsigned ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timespec t0, t;
    char rd[512];

    become_nobody();
    memcpy(sa.sun_path, path, strlen(path) + 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
            (long)ms)
            _exit(0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            struct timeval tv = {0, 300000};
            ssize_t n;
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            if (write(fd, "stats\n", 6) == 6 &&
                (n = read(fd, rd, sizeof(rd) - 1)) > 0) {
                rd[n] = '\0';
                /* Banner and reply may come in one read or two. */
                if (strstr(rd, "uptime") == NULL &&
                    (n = read(fd, rd, sizeof(rd) - 1)) > 0)
                    rd[n] = '\0';
                if (strstr(rd, "uptime") != NULL && write(out, "X", 1) != 1)
                    _exit(4);
            }
        }
        if (fd >= 0)
            close(fd);
    }
}

static pid_t
spawn_knocker(const char *path, int out, unsigned ms)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        nobody_knocks(path, out, ms);
    return pid;
}

/* Reads the knockers' pipe: true if one got a session. */
static bool
knocker_got_in(int rd)
{
    char c;

    fcntl(rd, F_SETFL, O_NONBLOCK);
    return read(rd, &c, 1) == 1;
}

/* ---- 1. the Unix socket ---------------------------------------------------*/

/* Another uid spins connect() on the path while the console starts and
 * stops, under umask 000 (the socket file is born 0777): it must never
 * get a session. Before: sessions accepted after the chmod but queued
 * before it got through. */
static void
test_console_attack_unix_start_race(void **st)
{
    struct fixture *f = *st;
    int pfd[2], starts = 0, status;
    mode_t old;
    pid_t kid;
    unsigned ms = 2000;

    assert_int_equal(pipe(pfd), 0);
    kid = spawn_knocker(f->path, pfd[1], ms);
    old = umask(0);
    for (uint64_t end = tp_now_ns() + (uint64_t)(ms - 500) * 1000000u;
         tp_now_ns() < end;) {
        tp_console_opts o;
        tp_console *c;
        opts_unix(f, &o);
        if (tp_console_start(f->rt, &o, &c) == 0) {
            starts++;
            tpt_sleep_ms(2);
            tp_console_stop(c);
        }
    }
    umask(old);
    assert_int_equal(waitpid(kid, &status, 0), kid);
    print_message("start race: %d starts\n", starts);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_false(knocker_got_in(pfd[0]));
    assert_true(starts > 10);
    close(pfd[0]);
    close(pfd[1]);
}

/* Child: whenever a socket appears at path, swaps a symlink to target in
 * its place (rename over it). */
static void
symlink_swapper(const char *path, const char *target, unsigned ms)
{
    char tmp[128];
    struct timespec t0, t;
    struct stat sb;

    snprintf(tmp, sizeof(tmp), "%s.lnk", path);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
            (long)ms)
            _exit(0);
        if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
            unlink(tmp);
            if (symlink(target, tmp) == 0)
                rename(tmp, path);
        }
    }
}

/* A symlink swapped in at the path during start must never make the
 * console chmod (or unlink) the file it points to. */
static void
test_console_attack_unix_symlink_swap(void **st)
{
    struct fixture *f = *st;
    char target[128];
    struct stat sb;
    int status, fd, starts = 0;
    pid_t kid;
    unsigned ms = 1500;

    snprintf(target, sizeof(target), "%s/victim", f->dir);
    fd = open(target, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    close(fd);
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0)
        symlink_swapper(f->path, target, ms);
    for (uint64_t end = tp_now_ns() + (uint64_t)(ms - 300) * 1000000u;
         tp_now_ns() < end;) {
        tp_console_opts o;
        tp_console *c;
        unlink(f->path); /* the swapped-in link, if any */
        opts_unix(f, &o);
        if (tp_console_start(f->rt, &o, &c) == 0) {
            starts++;
            tp_console_stop(c);
        }
    }
    assert_int_equal(waitpid(kid, &status, 0), kid);
    assert_int_equal(stat(target, &sb), 0);
    print_message("symlink swap: %d starts, victim mode %o\n", starts,
                  (unsigned)(sb.st_mode & 0777));
    assert_int_equal(sb.st_mode & 0777, 0644);
}

/* A second console on the path of a live one is refused (and the live
 * one keeps working); a stale socket file is replaced. */
static void
test_console_attack_unix_live_instance(void **st)
{
    struct fixture *f = *st;
    tp_runtime *rt2 = tpt_runtime(1);
    tp_console_opts o;
    tp_console *a, *b = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1, s;

    opts_unix(f, &o);
    assert_int_equal(tp_console_start(f->rt, &o, &a), 0);
    assert_int_equal(tp_console_start(rt2, &o, &b), -EADDRINUSE);
    assert_true(unix_banner(f->path, &fd));
    assert_true(line_cmd(fd, "stats") > 0);
    close(fd);
    tp_console_stop(a);
    /* A stale socket file (its server died without removing it). */
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    assert_int_equal(tp_console_start(rt2, &o, &b), 0);
    assert_true(unix_banner(f->path, &fd));
    close(fd);
    tp_console_stop(b);
    tpt_finish(rt2);
}

/* Child: one connection as nobody; writes 'S' (a session answered
 * stats), 'R' (refused with a line) or 'N' (no connection) to out. */
static void
nobody_once(const char *path, int out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {5, 0};
    char rd[1024];
    size_t n = 0;
    ssize_t r;
    int fd;

    become_nobody();
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        _exit(write(out, "N", 1) == 1 ? 0 : 4);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, "stats\n", 6) != 6)
        _exit(4);
    while (n + 1 < sizeof(rd) && (r = read(fd, rd + n, sizeof(rd) - 1 - n)) > 0)
        n += (size_t)r;
    rd[n] = '\0';
    _exit(write(out,
                strstr(rd, "uptime") != NULL      ? "S"
                : strstr(rd, "not yours") != NULL ? "R"
                                                  : "?",
                1) == 1
              ? 0
              : 4);
}

static char
nobody_result(const char *path)
{
    int pfd[2], status;
    char c = 0;
    pid_t kid;

    assert_int_equal(pipe(pfd), 0);
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0)
        nobody_once(path, pfd[1]);
    assert_int_equal(waitpid(kid, &status, 0), kid);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    close(pfd[1]);
    return c;
}

/* Even a socket others can reach (mode 0666) gives them no session, unless
 * their uid is listed. */
static void
test_console_attack_unix_peer_uid(void **st)
{
    struct fixture *f = *st;
    static const uint32_t nobody[] = {NOBODY};
    tp_console_opts o;
    tp_console *c;
    struct stat sb;

    opts_unix(f, &o);
    o.unix_mode = 0666;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0666);
    assert_int_equal(nobody_result(f->path), 'R');
    assert_true(atomic_load(&c->peers_refused) >= 1);
    tp_console_stop(c);
    o.unix_uids = nobody;
    o.unix_nuids = 1;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    assert_int_equal(nobody_result(f->path), 'S');
    tp_console_stop(c);
    /* The default mode keeps them from even connecting. */
    opts_unix(f, &o);
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(nobody_result(f->path), 'N');
    tp_console_stop(c);
}

/* ---- 2. session slots ----------------------------------------------------*/

/* Strangers on the TCP port that never authenticate must not lock the
 * owner out of the Unix socket. */
static void
test_console_attack_preauth_cannot_lock_out_owner(void **st)
{
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    int fds[40], fd = -1, banners = 0;

    opts_unix(f, &o);
    o.tcp_port = 0;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    for (int i = 0; i < 40; i++) {
        fds[i] = tcn_dial_tcp(tp_console_tcp_port(c));
        assert_true(fds[i] >= 0);
        if (tcn_read_until(fds[i], "\n", buf, sizeof(buf), 2000) > 0 &&
            strstr(buf, "auth TOKEN") != NULL)
            banners++;
    }
    print_message("40 strangers: %d got a banner\n", banners);
    assert_true(unix_banner(f->path, &fd));
    assert_true(line_cmd(fd, "stats") > 0);
    assert_non_null(strstr(buf, "uptime"));
    close(fd);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    tp_console_stop(c);
}

/* A stranger gets auth_timeout_ms to authenticate. */
static void
test_console_attack_preauth_deadline(void **st)
{
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    int fd;

    opts_unix(f, &o);
    o.tcp_port = 0;
    o.auth_timeout_ms = 300;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    fd = tcn_dial_tcp(tp_console_tcp_port(c));
    assert_true(tcn_read_until(fd, "authentication timeout", buf, sizeof(buf),
                               2000) > 0);
    assert_true(tcn_eof_within(fd, 2000));
    close(fd);
    tp_console_stop(c);
}

/* ---- 3. slowloris ---------------------------------------------------------*/

struct loris {
    int port, n;
    _Atomic bool stop;
    _Atomic int opened, reopened;
    pthread_t th;
};

static int
loris_open(struct loris *l)
{
    static const char head[] = "GET /metrics HTTP/1.1\r\nX-Slow: ";
    int fd = tcn_dial_tcp(l->port);

    if (fd >= 0) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
    }
    return fd;
}

/* n connections, each sending one header byte every 200 ms and never
 * finishing; a closed one is reopened at once. Never reads answers
 * except to notice a close. */
static void *
loris_run(void *arg)
{
    struct loris *l = arg;
    int fd[64];
    char tmp[4096];

    for (int i = 0; i < l->n; i++)
        fd[i] = loris_open(l);
    atomic_store(&l->opened, l->n);
    while (!atomic_load(&l->stop)) {
        for (int i = 0; i < l->n; i++) {
            ssize_t r = fd[i] < 0 ? 0 : recv(fd[i], tmp, sizeof(tmp), 0);
            if (fd[i] < 0 || r == 0 || (r < 0 && errno != EAGAIN)) {
                if (fd[i] >= 0)
                    close(fd[i]);
                fd[i] = loris_open(l);
                atomic_fetch_add(&l->reopened, 1);
            } else if (send(fd[i], "a", 1, MSG_NOSIGNAL) < 0 &&
                       errno != EAGAIN) {
                close(fd[i]);
                fd[i] = -1;
            }
        }
        tpt_sleep_ms(200);
    }
    for (int i = 0; i < l->n; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    return NULL;
}

/* One GET /metrics on a fresh connection: the status, or -1. */
static int
scrape(int port, int ms)
{
    /* The scraper has an address of its own (as a monitoring host does);
     * the slow connections all come from 127.0.0.1. */
    int fd = tcn_dial_tcp_from("127.0.0.9", port), status = -1;
    static const char req[] =
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    if (fd < 0)
        return -1;
    tcn_put(fd, req, sizeof(req) - 1);
    if (tcn_read_until(fd, "\r\n\r\n", buf, sizeof(buf), ms) > 0)
        sscanf(buf, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

/* 40 slow connections on the HTTP port: /metrics keeps answering. */
static void
test_console_attack_http_slowloris(void **st)
{
    struct fixture *f = *st;
    struct loris l = {.n = 40};
    tp_console_opts o;
    tp_console *c;
    int ok = 0, tries = 0;

    tp_console_opts_init(&o);
    o.http_port = 0;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    l.port = tp_console_http_port(c);
    assert_int_equal(pthread_create(&l.th, NULL, loris_run, &l), 0);
    while (atomic_load(&l.opened) == 0)
        tpt_sleep_ms(10);
    tpt_sleep_ms(1500); /* the slow ones are settled in */
    for (; tries < 5; tries++) {
        int s = scrape(l.port, 2000);
        ok += s == 200;
        if (s != 200)
            print_message("scrape %d: status %d\n", tries, s);
        tpt_sleep_ms(300);
    }
    atomic_store(&l.stop, true);
    pthread_join(l.th, NULL);
    print_message("slowloris: %d/%d scrapes answered, %d slow reopened\n", ok,
                  tries, atomic_load(&l.reopened));
    assert_int_equal(ok, tries);
    tp_console_stop(c);
}

/* The request deadline covers the whole request: a byte every 100 ms
 * does not extend it. A connection that sends nothing is closed too. */
static void
test_console_attack_http_request_deadline(void **st)
{
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    uint64_t t0;
    int fd, idle;
    bool got = false;

    (void)f;
    tp_console_opts_init(&o);
    o.http_port = 0;
    o.http_request_timeout_ms = 1000;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    idle = tcn_dial_tcp(tp_console_http_port(c));
    fd = tcn_dial_tcp(tp_console_http_port(c));
    tcn_put(fd, "GET /metrics HTTP/1.1\r\nX-Slow: ", 31);
    t0 = tp_now_ns();
    for (int i = 0; i < 100 && !got; i++) {
        tcn_put(fd, "a", 1);
        got = tcn_read_until(fd, "\r\n\r\n", buf, sizeof(buf), 100) > 0;
    }
    print_message("trickle closed after %.0f ms: %.40s\n",
                  (double)(tp_now_ns() - t0) / 1e6, buf);
    assert_true(got);
    assert_non_null(strstr(buf, "HTTP/1.1 408"));
    assert_true(tcn_eof_within(idle, 3000));
    close(fd);
    close(idle);
    tp_console_stop(c);
}

/* ---- 8. guessing the token -----------------------------------------------*/

/* Counts occurrences of s in text. */
static int
count_of(const char *text, const char *s)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, s)) != NULL; p += strlen(s))
        n++;
    return n;
}

/* Wrong Bearer tokens pipelined on one connection, then one per new
 * connection: only a handful are ever checked. */
static void
test_console_attack_http_guessing(void **st)
{
    static const char bad_req[] =
        "POST /api/drain HTTP/1.1\r\nAuthorization: Bearer nope\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n";
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    char req[256];
    int fd, n401, conns401 = 0, limited = 0;
    uint64_t t0 = tp_now_ns(), checked;
    double secs;

    tp_console_opts_init(&o);
    o.http_port = 0;
    o.token = TOKEN;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    fd = tcn_dial_tcp(tp_console_http_port(c));
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(req, sizeof(req),
                         "POST /api/drain HTTP/1.1\r\nAuthorization: Bearer "
                         "guess%d\r\nContent-Length: 0\r\n\r\n",
                         i);
        tcn_put(fd, req, (size_t)n);
    }
    tcn_read_until(fd, "\x01never", buf, sizeof(buf), 3000);
    n401 = count_of(buf, "HTTP/1.1 401");
    close(fd);
    for (int i = 0; i < 50; i++) {
        fd = tcn_dial_tcp(tp_console_http_port(c));
        tcn_put(fd, bad_req, sizeof(bad_req) - 1);
        if (tcn_read_until(fd, "\r\n\r\n", buf, sizeof(buf), 2000) > 0) {
            conns401 += strstr(buf, " 401 ") != NULL;
            limited += strstr(buf, " 429 ") != NULL;
        }
        close(fd);
    }
    secs = (double)(tp_now_ns() - t0) / 1e9;
    checked = atomic_load(&c->auth_failures);
    print_message("guessing: one connection %d x 401; 50 connections: %d x "
                  "401, %d x 429; %llu tokens checked in %.1f s\n",
                  n401, conns401, limited, (unsigned long long)checked, secs);
    assert_true(n401 <= 5);
    assert_true(limited > 0);
    /* Burst plus the refill rate over the test's duration. */
    assert_true(checked <= 30 + (uint64_t)(secs * 2));
    tp_console_stop(c);
}

/* The same over the TCP line protocol, one wrong token per connection. */
static void
test_console_attack_line_guessing(void **st)
{
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    int failed = 0, limited = 0;
    uint64_t t0 = tp_now_ns(), checked;
    double secs;

    opts_unix(f, &o);
    o.tcp_port = 0;
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    for (int i = 0; i < 60; i++) {
        int fd = tcn_dial_tcp(tp_console_tcp_port(c));
        if (tcn_read_until(fd, "\n", buf, sizeof(buf), 2000) > 0) {
            static const char tries[] = "auth wrong\nauth wrong2\nauth w3\n";
            tcn_put(fd, tries, sizeof(tries) - 1);
            tcn_read_until(fd, "\x01never", buf, sizeof(buf), 2000);
            failed += count_of(buf, "authentication failed");
            limited += count_of(buf, "too many");
        }
        close(fd);
    }
    secs = (double)(tp_now_ns() - t0) / 1e9;
    checked = atomic_load(&c->auth_failures);
    print_message("line guessing: %d failed, %d refused; %llu checked in "
                  "%.1f s\n",
                  failed, limited, (unsigned long long)checked, secs);
    assert_true(limited > 0);
    assert_true(checked <= 30 + (uint64_t)(secs * 2));
    tp_console_stop(c);
}

/* ---- 7. the root supervisor, the sampler, idle times ---------------------*/

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

/* `kill` of the root supervisor is refused without --force. */
static void
test_console_attack_kill_root_needs_force(void **st)
{
    struct fixture *f = *st;
    tp_console_opts o;
    tp_console *c;
    tp_child_spec cs;
    char line[96], pid[32];
    tp_pid root, child;
    tcc *t;

    opts_unix(f, &o);
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    root = tp_runtime_root_supervisor(f->rt);
    tp_child_spec_init(&cs, "w", &worker, NULL);
    assert_int_equal(tp_supervisor_start_child(f->rt, root, &cs, NULL, &child,
                                               5000 * tpt_slow()),
                     0);
    t = tcc_open(c, false);
    tp_pid_format(root, pid, sizeof(pid));
    snprintf(line, sizeof(line), "kill %s", pid);
    assert_true(tcc_cmd(t, line, buf, sizeof(buf), 5000) > 0);
    assert_non_null(strstr(buf, "error:"));
    assert_non_null(strstr(buf, "--force"));
    assert_int_equal(tp_runtime_root_supervisor(f->rt), root);
    snprintf(line, sizeof(line), "kill %s --force", pid);
    assert_true(tcc_cmd(t, line, buf, sizeof(buf), 5000) > 0);
    assert_null(strstr(buf, "error:"));
    tcc_close(t);
    tp_console_stop(c);
}

/* Killing the sampler does not break `history` for good. */
static void
test_console_attack_sampler_comes_back(void **st)
{
    struct fixture *f = *st;
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_console_opts o;
    tp_console *c;
    tp_actor_info info;
    tp_pid old;
    tcc *t;
    bool ok = false;

    opts_unix(f, &o);
    assert_int_equal(tp_console_start(f->rt, &o, &c), 0);
    t = tcc_open(c, false);
    assert_true(tcc_cmd(t, "history", buf, sizeof(buf), 5000) > 0);
    assert_null(strstr(buf, "error:"));
    /* Every session may ask it: its mailbox is bounded. */
    assert_int_equal(tp_actor_peek(f->rt, c->sampler, &info), 0);
    assert_int_equal(info.max_msgs, TP__SAMPLER_MAILBOX);
    old = c->sampler;
    assert_int_equal(tp_runtime_exit_pid(f->rt, old, &kill), 0);
    for (int i = 0; i < 20 && !ok; i++) {
        tpt_sleep_ms(100);
        assert_true(tcc_cmd(t, "history", buf, sizeof(buf), 5000) > 0);
        ok = strstr(buf, "error:") == NULL;
    }
    assert_true(ok);
    assert_true(c->sampler != old);
    assert_int_equal(tp_actor_peek(f->rt, c->sampler, &info), 0);
    assert_int_equal(info.max_msgs, TP__SAMPLER_MAILBOX);
    tcc_close(t);
    tp_console_stop(c);
}

/* A connection actor that echoes. */
static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(m), m->data, m->len);
}

static const tp_behaviour echo_conn = {.name = "echo_conn",
                                       .handle = echo_handle};

struct pump {
    int fds[16];
    _Atomic bool stop;
    pthread_t th;
};

/* Keeps bytes flowing on every connection (a busy server). */
static void *
pump_run(void *arg)
{
    struct pump *p = arg;
    char tmp[256];

    while (!atomic_load(&p->stop)) {
        for (int i = 0; i < 16; i++) {
            send(p->fds[i], "x", 1, MSG_NOSIGNAL);
            recv(p->fds[i], tmp, sizeof(tmp), MSG_DONTWAIT);
        }
        usleep(200);
    }
    return NULL;
}

/* Samples `json conns` n times on a fresh 4-scheduler runtime with busy
 * connections on every loop; returns the idle times out of range. */
static int
idle_samples(int n, int *seen)
{
    tp_runtime *rt = tpt_runtime(4);
    struct pump p = {.stop = false};
    tp_listen_opts lo;
    tp_listener *l;
    tp_console_opts o;
    tp_console *c;
    int bad = 0;
    tcc *t;

    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &echo_conn;
    assert_int_equal(tp_tcp_listen(rt, &lo, &l), 0);
    for (int i = 0; i < 16; i++)
        assert_true((p.fds[i] = tcn_dial_tcp(tp_listener_port(l))) >= 0);
    tp_console_opts_init(&o);
    o.http_port = 0;
    assert_int_equal(tp_console_start(rt, &o, &c), 0);
    assert_int_equal(pthread_create(&p.th, NULL, pump_run, &p), 0);
    t = tcc_open(c, false);
    for (int s = 0; s < n; s++) {
        tpt_sleep_ms(20);
        assert_true(tcc_cmd(t, "json conns", buf, sizeof(buf), 5000) > 0);
        for (const char *q = buf; (q = strstr(q, "\"idle_ms\":")) != NULL;) {
            unsigned long long v = strtoull(q + 10, NULL, 10);
            q += 10;
            (*seen)++;
            bad += v > 600000ull;
        }
    }
    atomic_store(&p.stop, true);
    pthread_join(p.th, NULL);
    tcc_close(t);
    tp_console_stop(c);
    for (int i = 0; i < 16; i++)
        close(p.fds[i]);
    tp_listener_close(l);
    tpt_finish(rt);
    return bad;
}

/* `conns` never shows an idle time that underflowed: a loop's cached
 * clock may read a millisecond ahead of the sampling thread's (three
 * runtimes, so some loop is likely to; 30 samples in all). */
static void
test_console_attack_conns_idle_ms(void **st)
{
    int bad = 0, seen = 0;

    (void)st;
    for (int r = 0; r < 3; r++)
        bad += idle_samples(10, &seen);
    print_message("conns: %d of %d idle times out of range\n", bad, seen);
    assert_int_equal(bad, 0);
    assert_true(seen >= 30 * 16);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_attack_unix_start_race,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_unix_symlink_swap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_unix_live_instance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_unix_peer_uid,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_console_attack_preauth_cannot_lock_out_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_preauth_deadline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_http_slowloris,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_console_attack_http_request_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_http_guessing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_line_guessing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_console_attack_kill_root_needs_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_sampler_comes_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_attack_conns_idle_ms,
                                        setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
