/*
 * tests/test_faults_console.c - out-of-memory injection over the admin
 * console: start (Unix socket + HTTP port), a line session running
 * commands, HTTP requests (JSON API and /metrics), stop.
 *
 * Scenario (1 scheduler, a few worker actors to list): with the runtime
 * started, the Nth allocation fails (one shot, or the Nth and every later
 * one); the console is started, a Unix-socket session runs stats, ps,
 * tree, info and metrics, and two HTTP GETs are made. Run for N = 1, 2, ...
 * until a run completes without reaching N.
 *
 * For each N:
 *  - tp_console_start() fails only with a negative errno, only after an
 *    injected failure, and leaves nothing open (no fd, no block, no socket
 *    file);
 *  - every command gets a complete reply ("ok" or "error: ...") or its
 *    session is closed; with a single failure nothing hangs;
 *  - once allocation works again the console answers a fresh session (or
 *    starts afresh if it could not start), stops cleanly, and every block
 *    and file descriptor of the run is gone.
 */
#define _GNU_SOURCE /* strcasestr */
#include "faultalloc.h"
#include "soak/soakutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <troupe/console.h>
#include <unistd.h>

#define TOKEN "fault-token"

static char sock_path[108];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
}

static const tp_behaviour worker = {.name = "fcon-worker",
                                    .handle = worker_handle};

/* ---------------------------------------------------------------------- */
/* Blocking clients with deadlines                                        */

enum result { R_REPLY, R_CLOSED, R_HANG, R_NOCONN };

static const char *const result_name[] = {"answered", "closed", "no answer",
                                          "could not connect"};
static unsigned totals[4];

static int
timeout_ms(void)
{
    /* While every allocation fails nothing can answer: a short wait. */
    return (tpf_failing() ? 300 : 5000) * (int)tpt_slow();
}

/* Reads into buf (NUL-terminated) until done(buf) or the peer closes or the
 * deadline passes. Once every allocation fails (persistent mode) nothing
 * can answer any more: the wait is cut to 300 ms from then. */
static enum result
read_until(int fd, char *buf, size_t cap, size_t *have,
           bool (*done)(const char *buf, size_t n), int ms)
{
    uint64_t now = tp_now_ns(), deadline = now + (uint64_t)ms * 1000000u;
    uint64_t cut = 300000000ull * tpt_slow();

    while (!done(buf, *have)) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;
        now = tp_now_ns();
        if (tpf_failing() && deadline > now + cut)
            deadline = now + cut;
        if (now >= deadline)
            return R_HANG;
        if (poll(&p, 1, 20) <= 0)
            continue;
        k = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (k <= 0)
            return R_CLOSED;
        *have += (size_t)k;
        buf[*have] = '\0';
        if (*have == cap - 1)
            return R_CLOSED; /* more than any reply here */
    }
    return R_REPLY;
}

/* A console reply is complete at a line "ok" or a line "error: ...". */
static bool
line_reply_done(const char *buf, size_t n)
{
    if (n == 0 || buf[n - 1] != '\n')
        return false;
    return (n >= 3 && strcmp(buf + n - 3, "ok\n") == 0 &&
            (n == 3 || buf[n - 4] == '\n')) ||
           strncmp(buf, "error:", 6) == 0 || strstr(buf, "\nerror:") != NULL;
}

static int
unix_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static char reply[1 << 18];

/* Sends one command on fd and waits for its reply. */
static enum result
command(int fd, const char *line, int ms)
{
    size_t have = 0, len = strlen(line);

    reply[0] = '\0';
    if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
        return R_CLOSED;
    return read_until(fd, reply, sizeof(reply), &have, line_reply_done, ms);
}

/* An HTTP response is complete with its headers and Content-Length body. */
static bool
http_done(const char *buf, size_t n)
{
    const char *end = strstr(buf, "\r\n\r\n"), *cl;

    (void)n;
    if (end == NULL)
        return false;
    cl = strcasestr(buf, "content-length:");
    if (cl == NULL || cl > end)
        return true;
    return strlen(end + 4) >= strtoul(cl + 15, NULL, 10);
}

static enum result
http_get(int port, const char *path, int ms, int *status)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[256];
    size_t have = 0;
    int len, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    enum result r;

    assert_true(fd >= 0);
    *status = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return R_NOCONN;
    }
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
    reply[0] = '\0';
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len)
        r = R_CLOSED;
    else
        r = read_until(fd, reply, sizeof(reply), &have, http_done, ms);
    if (r == R_REPLY)
        *status = atoi(reply + 9);
    close(fd);
    return r;
}

/* ---------------------------------------------------------------------- */
/* The scenario                                                           */

/* Judges one result; returns true to stop the scenario. */
static bool
judge(const char *what, enum result r)
{
    totals[r]++;
    if (r == R_REPLY)
        return false;
    if (tpf_failed() == 0 || (r == R_HANG && !tpf_failing())) {
        tpf_violation("%s: %s%s", what, result_name[r],
                      tpf_failed() == 0 ? " with no failure injected" : "");
        tpf_print_fail_site();
    }
    return true;
}

static const char *const commands[] = {"stats\n", "ps\n", "tree\n",
                                       "listeners\n", "metrics\n"};

static void
session(void)
{
    int fd = unix_connect();

    if (fd < 0) {
        judge("unix connect", R_NOCONN);
        return;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (judge(commands[i], command(fd, commands[i], timeout_ms())))
            break;
        if (strncmp(reply, "error:", 6) == 0 && tpf_failed() == 0)
            tpf_violation("%s answered '%s' with no failure", commands[i],
                          reply);
    }
    close(fd);
}

static void
http_requests(tp_console *con)
{
    int status;

    if (judge("GET /api/stats", http_get(tp_console_http_port(con),
                                         "/api/stats", timeout_ms(), &status)))
        return;
    if (status != 200 && tpf_failed() == 0)
        tpf_violation("GET /api/stats: status %d with no failure", status);
    if (judge("GET /metrics", http_get(tp_console_http_port(con), "/metrics",
                                       timeout_ms(), &status)))
        return;
    if (status != 200 && tpf_failed() == 0)
        tpf_violation("GET /metrics: status %d with no failure", status);
}

static int
console_start(tp_runtime *rt, tp_console **con)
{
    tp_console_opts o;

    tp_console_opts_init(&o);
    o.unix_path = sock_path;
    o.http_port = 0;
    o.token = TOKEN;
    return tp_console_start(rt, &o, con);
}

/* With allocation restored the console answers (or starts afresh). */
static void
check_usable(tp_runtime *rt, tp_console **con)
{
    int fd, status;

    if (*con == NULL)
        assert_int_equal(console_start(rt, con), 0);
    fd = unix_connect();
    assert_true(fd >= 0);
    assert_int_equal(command(fd, "stats\n", 5000 * (int)tpt_slow()), R_REPLY);
    assert_null(strstr(reply, "error:"));
    close(fd);
    assert_int_equal(http_get(tp_console_http_port(*con), "/api/stats",
                              5000 * (int)tpt_slow(), &status),
                     R_REPLY);
    assert_int_equal(status, 200);
}

static tp_runtime_options
opts(void)
{
    return tpf_runtime_opts(1, 5000 * tpt_slow());
}

static tp_runtime *
runtime_with_workers(void)
{
    tp_runtime_options o = opts();
    tp_runtime *rt = NULL;
    tp_pid pid;

    assert_int_equal(tp_runtime_create(&rt, &o), 0);
    assert_int_equal(tp_runtime_start(rt), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tp_runtime_spawn(rt, &worker, NULL, NULL, &pid), 0);
    return rt;
}

static void
check_clean(int64_t live0, long fds0, uint64_t mark)
{
    struct stat st;

    tpf_check_live(live0, mark);
    tpf_check_fds(fds0, soak_fd_count(getpid()));
    if (stat(sock_path, &st) == 0)
        tpf_violation("socket file %s left behind", sock_path);
}

static bool
run_once(void *unused, uint64_t nth, bool persistent)
{
    int64_t live0 = tpf_live();
    long fds0 = soak_fd_count(getpid());
    uint64_t mark = tpf_track_mark();
    tp_runtime *rt = runtime_with_workers();
    tp_console *con = NULL;
    bool hit;
    int rc;

    (void)unused;
    tpf_arm(nth, persistent);
    rc = console_start(rt, &con);
    if (tpf_verbose())
        fprintf(stderr, "N=%llu console_start %d con %p\n",
                (unsigned long long)nth, rc, (void *)con);
    if (tpf_call_failed("console_start", rc))
        con = NULL;
    else {
        session();
        http_requests(con);
    }
    hit = tpf_failed() != 0;
    tpf_disarm();
    check_usable(rt, &con);
    tp_console_stop(con);
    assert_int_equal(tp_runtime_stop(rt), 0);
    tp_runtime_destroy(rt);
    check_clean(live0, fds0, mark);
    return hit;
}

/* Under the sanitizers every 7th N is tried (bounded CI time). */
static void
sweep(bool persistent)
{
    const struct tpf_scenario sc = {run_once, NULL};
    struct tpf_sweep_stats st;

    memset(totals, 0, sizeof(totals));
    assert_true(tpf_sweep(&sc, persistent, tpt_slow() > 1 ? 7 : 1, &st));
    printf("console fault sweep (%s, every %u): %llu allocations in the "
           "scenario, %llu runs, %llu failures injected; requests: %u "
           "answered, %u closed, %u unanswered while allocations failed, "
           "%u refused\n",
           persistent ? "Nth and later fail" : "Nth fails", st.stride,
           (unsigned long long)st.total, (unsigned long long)st.runs,
           (unsigned long long)st.failures, totals[R_REPLY], totals[R_CLOSED],
           totals[R_HANG], totals[R_NOCONN]);
    assert_int_equal(tpf_violations(), 0);
    assert_true(st.runs * st.stride > 50);
}

static void
test_faults_console_nth_fails(void **unused)
{
    (void)unused;
    sweep(false);
}

static void
test_faults_console_nth_and_later_fail(void **unused)
{
    (void)unused;
    sweep(true);
}

static int
setup(void **unused)
{
    tp_runtime_options o = opts();

    (void)unused;
    snprintf(sock_path, sizeof(sock_path), "/tmp/tp-fcon-%d.sock",
             (int)getpid());
    return tpf_group_setup(tpf_quiet_sink, &o, &worker, 1);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_console_nth_fails),
        cmocka_unit_test(test_faults_console_nth_and_later_fail),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, NULL);
}
