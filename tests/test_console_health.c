/*
 * tests/test_console_health.c - GET /health and the two-phase drain a load
 * balancer can follow (console/health.c): 200 while serving; after a drain
 * with a delay, 503 at once while the listeners still accept, and only
 * after the delay (never before) the listeners close and open connections
 * are closed; a second drain is refused; the drain command's arguments; a
 * drain without a delay is the old immediate one.
 */
#include "test_console_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe/net.h>
#include <unistd.h>

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    tp_listener *l;
    tcc *t;
};

static char body[64 * 1024];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static int
setup(void **st)
{
    static struct fixture f;
    tp_console_opts o;
    tp_listen_opts lo;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(2);
    tp_console_opts_init(&o);
    o.token = "sesame";
    assert_int_equal(tp__console_create(f.rt, &o, &f.con), 0);
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &worker;
    assert_int_equal(tp_tcp_listen(f.rt, &lo, &f.l), 0);
    f.t = tcc_open(f.con, true);
    *st = &f;
    return 0;
}

static int
teardown(void **st)
{
    struct fixture *f = *st;

    tcc_close(f->t);
    tp__console_destroy(f->con);
    tpt_finish(f->rt);
    return 0;
}

static int
get_health(tcc *t)
{
    return tcc_http(t, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", body,
                    sizeof(body), 10000 * (int)tpt_slow());
}

/* A blocking client of the listener; -1 when it cannot connect. */
static int
dial(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* True once a connect to port is refused (within a few seconds). */
static bool
refused_soon(uint16_t port)
{
    for (int i = 0; i < 300 * (int)tpt_slow(); i++) {
        int fd = dial(port);
        if (fd < 0)
            return true;
        close(fd);
        tpt_sleep_ms(10);
    }
    return false;
}

static bool
eof_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    return poll(&p, 1, ms) == 1 && read(fd, &c, 1) <= 0;
}

static uint64_t
accepted(tp_runtime *rt)
{
    tp_net_stats s;

    tp_net_get_stats(rt, &s);
    return s.accepted;
}

static uint64_t
listeners(tp_runtime *rt)
{
    tp_net_stats s;

    tp_net_get_stats(rt, &s);
    return s.listeners;
}

static void
wait_accepted(tp_runtime *rt, uint64_t n)
{
    for (int i = 0; i < 500 * (int)tpt_slow() && accepted(rt) < n; i++)
        tpt_sleep_ms(10);
    assert_true(accepted(rt) >= n);
}

static void
test_health_ok_while_serving(void **st)
{
    static const char head[] =
        "HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct fixture *f = *st;

    assert_int_equal(get_health(f->t), 200);
    assert_string_equal(body, "ok\n");
    assert_false(tp_console_draining(f->con));
    /* HEAD: same status (and no body: tcc_http would wait for one). */
    tcc_send(f->t, head, sizeof(head) - 1);
    assert_int_equal(tcc_wait_for(f->t, "HTTP/1.1 200 OK", 10000), 0);
}

/* The order a balancer needs: 503 first, listeners still accepting; the
 * close comes after the delay, and not before. */
static void
test_health_drain_delay_orders_503_before_close(void **st)
{
    struct fixture *f = *st;
    uint32_t delay = 400 * tpt_slow();
    uint16_t port = tp_listener_port(f->l);
    uint64_t t0 = tp_now_ns(), gone_ms;
    int old, fresh;

    old = dial(port);
    assert_true(old >= 0);
    wait_accepted(f->rt, 1);
    assert_int_equal(tp_console_drain(f->con, delay, 2000), 0);
    assert_true(tp_console_draining(f->con));
    assert_int_equal(get_health(f->t), 503);
    assert_non_null(strstr(body, "draining"));
    /* Still accepting while the balancer notices. tp_now_ns() bounds
     * the elapsed time, so the check holds however slow the machine. */
    fresh = dial(port);
    assert_true(fresh >= 0);
    if ((tp_now_ns() - t0) / 1000000u < delay)
        wait_accepted(f->rt, 2);
    /* Then everything closes, and not before the delay. */
    assert_true(eof_within(old, 10000 * (int)tpt_slow()));
    gone_ms = (tp_now_ns() - t0) / 1000000u;
    assert_true(gone_ms >= delay);
    assert_true(eof_within(fresh, 5000 * (int)tpt_slow()));
    for (int i = 0; i < 300 * (int)tpt_slow() && listeners(f->rt) != 0; i++)
        tpt_sleep_ms(10);
    assert_int_equal(listeners(f->rt), 0);
    /* Each loop closes its own SO_REUSEPORT socket: soon all refuse. */
    assert_true(refused_soon(port));
    /* Still draining (there is no way back), and said once only. */
    assert_int_equal(get_health(f->t), 503);
    assert_int_equal(tp_console_drain(f->con, 0, 100), -EALREADY);
    close(old);
    close(fresh);
}

static void
test_health_drain_command(void **st)
{
    struct fixture *f = *st;
    tcc *s = tcc_open(f->con, false);
    char out[4096];

    assert_true(tcc_cmd(s, "drain 0", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "error:"));
    assert_true(tcc_cmd(s, "drain 100 x", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "usage: drain"));
    assert_true(tcc_cmd(s, "drain 100 700000", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "usage: drain"));
    assert_false(tp_console_draining(f->con));
    /* Local sessions are not net connections: this one survives. */
    assert_true(tcc_cmd(s, "drain 1000 60000", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "announced"));
    assert_non_null(strstr(out, "60000"));
    assert_int_equal(get_health(f->t), 503);
    assert_int_equal(listeners(f->rt), 1); /* the delay has not run out */
    assert_true(tcc_cmd(s, "drain", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "already under way"));
    tcc_close(s);
}

/* Without a delay (the default): the old drain, at once. */
static void
test_health_drain_without_delay(void **st)
{
    struct fixture *f = *st;
    tcc *s = tcc_open(f->con, false);
    char out[4096];

    assert_true(tcc_cmd(s, "drain 500", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "started"));
    for (int i = 0; i < 300 * (int)tpt_slow() && listeners(f->rt) != 0; i++)
        tpt_sleep_ms(10);
    assert_int_equal(listeners(f->rt), 0);
    assert_int_equal(get_health(f->t), 503);
    tcc_close(s);
}

static void
test_health_api_bad_args(void **st)
{
    struct fixture *f = *st;

    assert_int_equal(tp_console_drain(NULL, 0, 100), -EINVAL);
    assert_int_equal(tp_console_drain(f->con, 0, 0), -EINVAL);
    assert_int_equal(tp_console_drain(f->con, 600001, 100), -EINVAL);
    assert_false(tp_console_draining(f->con));
    assert_false(tp_console_draining(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_ok_while_serving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_health_drain_delay_orders_503_before_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_drain_command, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_health_drain_without_delay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_health_api_bad_args, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
