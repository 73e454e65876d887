/*
 * tests/test_sample_demo.c - troupe-demo as the README runs it, on free
 * ports: its READY lines, echo, chat and HTTP answering, `troupectl stats`
 * and `troupectl tree` over its console socket, the dashboard's /metrics,
 * then SIGTERM: exit status 0 within a deadline.
 */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T 5000

static struct sp_proc proc;
static char sock[64];

static int
start(void **state)
{
    static const char *args[] = {"--port",      "0",         "--schedulers",
                                 "2",           "--console", NULL,
                                 "--http-port", "0",         NULL};
    static const char *const want[] = {"echo",    "chat",      "http",
                                       "console", "dashboard", NULL};

    (void)state;
    snprintf(sock, sizeof(sock), "/tmp/tp-demo-test-%d.sock", (int)getpid());
    args[5] = sock;
    return sp_start(&proc, TROUPE_DEMO, args, want, 10000);
}

static int
stop(void **state)
{
    (void)state;
    sp_kill(&proc);
    unlink(sock);
    return 0;
}

/* GET path on port; returns the whole response in c (closed by the
 * server after it: "Connection: close"). */
static void
http_get(struct sp_conn *c, int port, const char *path)
{
    char req[256];

    c->len = 0;
    c->fd = sp_connect(port);
    assert_true(c->fd >= 0);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    assert_int_equal(sp_sends(c->fd, req), 0);
}

static void
troupectl(const char *cmd, char *out, size_t cap)
{
    char *argv[] = {TROUPECTL, "-s", sock, (char *)cmd, NULL};
    int status = sp_run(argv, out, cap, 10000);

    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
demo(void **state)
{
    static struct sp_conn c;
    static char out[64 * 1024];
    char back[6];
    int status;
    long long t0;

    (void)state;
    assert_non_null(sp_wait_output(&proc, 0, "Ctrl-C drains", T));
    assert_string_equal(sp_addr(&proc, "console"), sock);

    /* The three services answer. */
    c.fd = sp_connect(sp_port(&proc, "echo"));
    assert_true(c.fd >= 0);
    assert_int_equal(sp_sends(c.fd, "ping\n"), 0);
    assert_int_equal(sp_read_n(c.fd, back, 5, T), 0);
    assert_memory_equal(back, "ping\n", 5);
    close(c.fd);
    c.len = 0;
    c.fd = sp_connect(sp_port(&proc, "chat"));
    assert_true(c.fd >= 0);
    assert_true(sp_expect(&c, "* you joined #lobby", T));
    close(c.fd);
    http_get(&c, sp_port(&proc, "http"), "/json");
    assert_true(sp_expect(&c, "HTTP/1.1 200 OK\r\n", T));
    assert_true(sp_expect(&c, "{\"message\":\"Hello, World!\"}", T));
    close(c.fd);

    /* The console: troupectl over the Unix socket. */
    troupectl("stats", out, sizeof(out));
    assert_non_null(strstr(out, "actors"));
    assert_non_null(strstr(out, "schedulers"));
    troupectl("tree", out, sizeof(out));
    assert_non_null(strstr(out, "echo"));
    assert_non_null(strstr(out, "chat"));
    assert_non_null(strstr(out, "http"));

    /* The dashboard's port: metrics and the page. */
    http_get(&c, sp_port(&proc, "dashboard"), "/metrics");
    assert_true(sp_expect(&c, "HTTP/1.1 200", T));
    assert_true(sp_expect(&c, "\ntroupe_actors ", T));
    assert_true(sp_expect(&c, "\ntroupe_listeners ", T));
    assert_true(atoi(c.buf) >= 3); /* echo, chat, http (+ the console's) */
    close(c.fd);
    http_get(&c, sp_port(&proc, "dashboard"), "/");
    assert_true(sp_expect(&c, "HTTP/1.1 200", T));
    assert_true(sp_expect(&c, "<html", T));
    close(c.fd);

    /* SIGTERM: drained and gone, status 0, within 10 s. */
    t0 = sp_now_ms();
    status = sp_stop(&proc, SIGTERM, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(sp_now_ms() - t0 < 10000 * sp_slow());
    assert_int_equal(access(sock, F_OK), -1); /* the socket is removed */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(demo, start, stop),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
