/*
 * tests/test_console_net.c - the console over real sockets (the net
 * layer's listeners): the Unix socket's 0600 mode, the TCP token rules,
 * HTTP on a loopback port, troupectl's output and exit codes, and hostile
 * clients (binary garbage, 1 MiB lines, 1,000 idle connections, a client
 * that never reads its trace) after which the server must still answer
 * `stats` on another session within 100 ms.
 */
#include "test_console_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <troupe/net.h>
#include <unistd.h>

#define TOKEN "correct-horse-battery"

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    char path[108];
    int tcp, http;
};

static char buf[1 << 20];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static int
setup_opts(void **st, uint32_t idle_ms)
{
    static struct fixture f;
    tp_console_opts o;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(2);
    snprintf(f.path, sizeof(f.path), "/tmp/tp-console-test-%d.sock",
             (int)getpid());
    tp_console_opts_init(&o);
    o.unix_path = f.path;
    o.tcp_port = 0;
    o.http_port = 0;
    o.token = TOKEN;
    if (idle_ms != 0)
        o.idle_timeout_ms = idle_ms;
    assert_int_equal(tp_console_start(f.rt, &o, &f.con), 0);
    f.tcp = tp_console_tcp_port(f.con);
    f.http = tp_console_http_port(f.con);
    assert_true(f.tcp > 0 && f.http > 0);
    *st = &f;
    return 0;
}

static int
setup(void **st)
{
    return setup_opts(st, 0);
}

static int
setup_idle(void **st)
{
    return setup_opts(st, 300);
}

static int
teardown(void **st)
{
    struct fixture *f = *st;
    struct stat sb;

    tp_console_stop(f->con);
    assert_int_not_equal(stat(f->path, &sb), 0); /* socket file removed */
    tpt_finish(f->rt);
    return 0;
}

/* ---- a blocking client with deadlines ---------------------------------- */

/* Sends a command, reads its reply (to "ok\n" or an error line). */
static int
cmd(int fd, const char *line, char *out, size_t cap)
{
    size_t n = 0;
    int r;

    tcn_put(fd, line, strlen(line));
    tcn_put(fd, "\n", 1);
    for (;;) {
        r = tcn_read_until(fd, "\n", out + n, cap - n, 5000);
        if (r < 0)
            return r;
        n += (size_t)r;
        if (strstr(out, "\nok\n") || strncmp(out, "ok\n", 3) == 0 ||
            strstr(out, "error:") != NULL || strncmp(out, "{\"ok\":", 6) == 0)
            return (int)n;
    }
}

static int
session(struct fixture *f)
{
    int fd = tcn_dial_unix(f->path);

    assert_true(fd >= 0);
    assert_true(tcn_read_until(fd, "\n", buf, sizeof(buf), 5000) > 0);
    assert_non_null(strstr(buf, "troupe console"));
    return fd;
}

/* Reads and drops whatever a session still owes (replies to junk lines):
 * asks for a marker error and reads up to it. */
static void
sync_session(int fd)
{
    tcn_put(fd, "\nhelp zz_marker\n", 16);
    assert_true(tcn_read_until(fd, "'zz_marker'", buf, sizeof(buf), 5000) > 0);
}

/* The health check every hostile test ends with. */
static void
assert_healthy(int fd)
{
    uint64_t t0 = tp_now_ns();

    assert_true(cmd(fd, "stats", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "uptime "));
    if (tp_now_ns() - t0 > 100000000ull * tpt_slow())
        fail_msg("stats took %.1f ms", (double)(tp_now_ns() - t0) / 1e6);
}

struct countb {
    const char *name;
    int n;
};

static bool
count_one(void *user, const tp_actor_info *a)
{
    struct countb *c = user;

    c->n += strcmp(a->behaviour, c->name) == 0;
    return true;
}

static int
count_behaviour(tp_runtime *rt, const char *name)
{
    struct countb c = {name, 0};

    tp_actor_foreach(rt, count_one, &c);
    return c.n;
}

/* ---- access ---------------------------------------------------------------*/

static void
test_console_net_unix_socket_is_private(void **st)
{
    struct fixture *f = *st;
    struct stat sb;
    int fd;

    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    fd = session(f);
    assert_true(cmd(fd, "sched", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "RUNQ"));
    close(fd);
}

static void
test_console_net_tcp_needs_token(void **st)
{
    struct fixture *f = *st;
    int fd = tcn_dial_tcp(f->tcp);

    assert_true(fd >= 0);
    assert_true(tcn_read_until(fd, "\n", buf, sizeof(buf), 5000) > 0);
    assert_non_null(strstr(buf, "auth TOKEN"));
    /* No token: nothing works. */
    assert_true(cmd(fd, "stats", buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "error: authentication required: send 'auth "
                             "TOKEN' first\n");
    assert_true(cmd(fd, "kill <1.1>", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "authentication required"));
    /* Wrong tokens: refused, and the third closes the connection. */
    assert_true(cmd(fd, "auth wrong", buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "error: authentication failed\n");
    assert_true(cmd(fd, "auth " TOKEN "x", buf, sizeof(buf)) > 0);
    assert_true(cmd(fd, "auth", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "closing"));
    assert_true(tcn_eof_within(fd, 2000));
    close(fd);
    /* The right token. */
    fd = tcn_dial_tcp(f->tcp);
    assert_true(tcn_read_until(fd, "\n", buf, sizeof(buf), 5000) > 0);
    assert_true(cmd(fd, "auth " TOKEN, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "ok\n");
    assert_healthy(fd);
    close(fd);
}

static void
test_console_net_http_metrics_and_auth(void **st)
{
    struct fixture *f = *st;
    int fd = tcn_dial_tcp(f->http);

    tcn_put(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25);
    assert_true(tcn_read_until(fd, "troupe_console_sessions", buf, sizeof(buf),
                               5000) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    close(fd);
    fd = tcn_dial_tcp(f->http);
    tcn_put(fd, "POST /api/drain HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 47);
    assert_true(tcn_read_until(fd, "\r\n\r\n", buf, sizeof(buf), 5000) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 401"));
    close(fd);
}

static void
test_console_net_listeners_and_conns(void **st)
{
    struct fixture *f = *st;
    int fd = session(f);

    assert_true(cmd(fd, "listeners", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "console-unix"));
    assert_non_null(strstr(buf, "console-tcp"));
    assert_non_null(strstr(buf, "console-http"));
    assert_true(cmd(fd, "conns", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "console-unix"));
    assert_true(cmd(fd, "json conns -n 1", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"shown\":1"));
    assert_true(cmd(fd, "stats", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "listeners         3"));
    close(fd);
}

/* ---- hostile clients
 * -------------------------------------------------------*/

static void
test_console_net_binary_garbage(void **st)
{
    struct fixture *f = *st;
    int healthy = session(f), fd = tcn_dial_tcp(f->tcp);
    unsigned char junk[8192];

    srand(7);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    tcn_put(fd, junk, sizeof(junk));
    assert_true(tcn_read_until(fd, "error:", buf, sizeof(buf), 5000) > 0);
    close(fd);
    fd = session(f);
    tcn_put(fd, junk, sizeof(junk));
    tcn_put(fd, "\n", 1);
    assert_true(tcn_read_until(fd, "error:", buf, sizeof(buf), 5000) > 0);
    sync_session(fd);
    assert_healthy(fd); /* that session too is still usable */
    assert_healthy(healthy);
    close(fd);
    close(healthy);
}

static void
test_console_net_megabyte_line(void **st)
{
    struct fixture *f = *st;
    int healthy = session(f), fd = session(f);
    char *big = malloc(1 << 20);

    memset(big, 'x', 1 << 20);
    tcn_put(fd, big, 1 << 20);
    tcn_put(fd, "\n", 1);
    assert_true(tcn_read_until(fd, "line too long", buf, sizeof(buf), 5000) >
                0);
    assert_healthy(fd);
    assert_healthy(healthy);
    free(big);
    close(fd);
    close(healthy);
}

static void
test_console_net_thousand_idle_sessions(void **st)
{
    struct fixture *f = *st;
    int healthy = session(f), fds[1000], refused = 0, open = 0;

    for (int i = 0; i < 1000; i++) {
        fds[i] = i % 2 ? tcn_dial_unix(f->path) : tcn_dial_tcp(f->tcp);
        assert_true(fds[i] >= 0 || errno == ECONNREFUSED || errno == EAGAIN);
    }
    assert_healthy(healthy);
    for (int i = 0; i < 1000; i++) {
        int r;
        if (fds[i] < 0)
            continue;
        r = tcn_read_until(fds[i], "\n", buf, sizeof(buf), 50);
        if (r > 0 && strstr(buf, "troupe console") != NULL)
            open++;
        else
            refused++;
    }
    print_message("1000 idle: %d got a session, %d refused\n", open, refused);
    /* Sessions (the owner's reserve included) and the pre-auth pool. */
    assert_true(open <= 16 + TP_CONSOLE_OWNER_RESERVE + 8);
    assert_true(tp_console_sessions(f->con) <=
                16 + TP_CONSOLE_OWNER_RESERVE + 8);
    assert_healthy(healthy);
    for (int i = 0; i < 1000; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Slots come back. */
    for (int i = 0; i < 100 && tp_console_sessions(f->con) > 1; i++)
        tpt_sleep_ms(20);
    close(healthy);
    healthy = session(f);
    assert_healthy(healthy);
    close(healthy);
}

struct worst {
    const char *name;
    uint64_t mailbox, queued;
};

static bool
worst_mailbox(void *user, const tp_actor_info *a)
{
    struct worst *w = user;

    if (strcmp(a->behaviour, w->name) == 0 && a->mailbox > w->mailbox)
        w->mailbox = a->mailbox;
    return true;
}

static bool
worst_queue(void *user, const tp_conn_info *ci)
{
    struct worst *w = user;

    if (ci->write_queued > w->queued)
        w->queued = ci->write_queued;
    return true;
}

/* A client that asks for a trace and never reads: what the server holds
 * for it stays bounded (tracer mailbox, connection write queue), the
 * traced actor keeps up, and other sessions stay fast. */
static void
test_console_net_trace_never_read(void **st)
{
    struct fixture *f = *st;
    int healthy = session(f), fd = session(f);
    struct worst w = {"console_tracer", 0, 0}, traced = {"worker", 0, 0};
    tp_runtime_stats before, after;
    char line[64], pid[32];
    tp_pid wp;

    assert_int_equal(tp_runtime_spawn(f->rt, &worker, NULL, NULL, &wp), 0);
    tp_pid_format(wp, pid, sizeof(pid));
    snprintf(line, sizeof(line), "trace %s\n", pid);
    tcn_put(fd, line, strlen(line));
    tpt_sleep_ms(100);
    tp_runtime_get_stats(f->rt, &before);
    /* 3 s of traffic with 900-byte payloads; the client never reads. */
    for (int i = 0; i < 300; i++) {
        for (int k = 0; k < 200; k++)
            tp_runtime_send(f->rt, wp, 7, buf, 900);
        tpt_sleep_ms(10);
        tp_actor_foreach(f->rt, worst_mailbox, &w);
        tp_actor_foreach(f->rt, worst_mailbox, &traced);
        tp_net_conn_foreach(f->rt, worst_queue, &w);
    }
    tp_runtime_get_stats(f->rt, &after);
    print_message("never-read trace: tracer mailbox <= %lu, write queue <= "
                  "%lu B, traced mailbox <= %lu, rss %.1f -> %.1f MiB\n",
                  (unsigned long)w.mailbox, (unsigned long)w.queued,
                  (unsigned long)traced.mailbox,
                  (double)before.rss_bytes / 1048576.0,
                  (double)after.rss_bytes / 1048576.0);
    assert_true(w.mailbox <= 256);
    assert_true(w.queued <= 2 * (1u << 20) + 64 * 1024);
    assert_healthy(healthy);
    assert_int_equal(count_behaviour(f->rt, "console_tracer"), 1);
    close(fd); /* the client leaves: the trace stops by itself */
    for (int i = 0; i < 200 && count_behaviour(f->rt, "console_tracer") != 0;
         i++)
        tpt_sleep_ms(10);
    assert_int_equal(count_behaviour(f->rt, "console_tracer"), 0);
    assert_healthy(healthy);
    close(healthy);
}

/* drain: the network (the console's own listeners included) drains; the
 * reply comes first. */
static void
test_console_net_drain(void **st)
{
    struct fixture *f = *st;
    int fd = session(f);

    assert_true(cmd(fd, "drain 500", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "drain             started"));
    assert_true(tcn_eof_within(fd, 3000));
    close(fd);
    for (int i = 0; i < 300 && tp_console_sessions(f->con) != 0; i++)
        tpt_sleep_ms(10);
    assert_int_equal(tp_console_sessions(f->con), 0);
}

static void
test_console_net_idle_timeout(void **st)
{
    struct fixture *f = *st;
    int fd = session(f);

    assert_true(tcn_read_until(fd, "idle timeout", buf, sizeof(buf), 5000) > 0);
    assert_true(tcn_eof_within(fd, 3000));
    close(fd);
}

static void
test_console_net_auth_window(void **st)
{
    struct fixture *f = *st;
    int fd = tcn_dial_tcp(f->tcp);

    assert_true(tcn_read_until(fd, "\n", buf, sizeof(buf), 5000) > 0);
    /* A stranger that never authenticates is closed after 5 s. */
    assert_true(tcn_read_until(fd, "authentication timeout", buf, sizeof(buf),
                               15000) > 0);
    assert_true(tcn_eof_within(fd, 3000));
    close(fd);
}

/* ---- troupectl
 * ----------------------------------------------------------------*/

/* Runs troupectl with args, token (NULL = none) in its environment. */
static int
ctl_tok(const char *token, const char *args, char *out, size_t cap)
{
    char cmdline[1024];
    FILE *p;
    size_t n;
    int st;

    snprintf(cmdline, sizeof(cmdline), "env -u TROUPE_TOKEN %s%s %s %s 2>&1",
             token != NULL ? "TROUPE_CONSOLE_TOKEN="
                           : "-u TROUPE_CONSOLE_TOKEN",
             token != NULL ? token : "", TROUPECTL, args);
    p = popen(cmdline, "r");
    assert_non_null(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
ctl(const char *args, char *out, size_t cap)
{
    return ctl_tok(NULL, args, out, cap);
}

static void
test_console_net_troupectl_exit_codes(void **st)
{
    struct fixture *f = *st;
    char a[512];

    snprintf(a, sizeof(a), "-s %s stats", f->path);
    assert_int_equal(ctl(a, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "uptime "));
    assert_null(strstr(buf, "\nok\n")); /* the terminator is not printed */
    snprintf(a, sizeof(a), "-s %s --json ps -n 2", f->path);
    assert_int_equal(ctl(a, buf, sizeof(buf)), 0);
    assert_true(strncmp(buf, "{\"ok\":true,\"data\":{", 19) == 0);
    snprintf(a, sizeof(a), "-s %s frobnicate", f->path);
    assert_int_equal(ctl(a, buf, sizeof(buf)), 1);
    assert_non_null(strstr(buf, "error: unknown command"));
    snprintf(a, sizeof(a), "-s %s info '<99999.9>'", f->path);
    assert_int_equal(ctl(a, buf, sizeof(buf)), 1);
    assert_int_equal(ctl("", buf, sizeof(buf)), 2);
    assert_int_equal(ctl("-s /nonexistent/sock stats", buf, sizeof(buf)), 3);
    snprintf(a, sizeof(a), "-H 127.0.0.1:%d stats", f->tcp);
    assert_int_equal(ctl_tok("nope", a, buf, sizeof(buf)), 4);
    assert_int_equal(ctl_tok(TOKEN, a, buf, sizeof(buf)), 0);
    snprintf(a, sizeof(a), "-H 127.0.0.1:%d kill \"<99999.9>\" x y", f->tcp);
    assert_int_equal(ctl_tok(TOKEN, a, buf, sizeof(buf)), 1);
    assert_non_null(strstr(buf, "no such actor"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_net_unix_socket_is_private,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_tcp_needs_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_net_http_metrics_and_auth,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_listeners_and_conns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_binary_garbage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_net_megabyte_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_net_thousand_idle_sessions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_trace_never_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_idle_timeout,
                                        setup_idle, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_troupectl_exit_codes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_net_auth_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_net_drain, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
