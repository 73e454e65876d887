/*
 * tests/test_sample_fleet.c - troupe-fleet-node as a program: its line
 * protocol (greeting, names, SEND by name, bad input, the line limit), its
 * connections supervised under "fleet.conns", a name released when its
 * connection ends, two nodes sharing one SO_REUSEPORT port, the health
 * endpoint and the order of a drain (503 first, still accepting, BYE and
 * close only after --drain-delay), SIGTERM's same drain and exit 0, two
 * nodes clustered over a nats-server (a SEND on one reaches a name held
 * on the other; a node SIGKILLed is a noconnection on the other), and the
 * options it refuses (bad names; --cluster without a
 * NATS server fails to start).
 */
#include "test_sample_util.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DELAY_MS 600

static struct sp_proc node, node2;
static char sock[108], sock2[108];

static const char *nats_url = ""; /* --cluster for start_node, "" = none */

static int
start_node(struct sp_proc *p, char *path, const char *name, const char *port)
{
    static char delay[16];
    const char *args[] = {"--node",
                          name,
                          "--port",
                          port,
                          "--schedulers",
                          "2",
                          "--http-port",
                          "0",
                          "--console",
                          path,
                          "--drain-delay",
                          delay,
                          "--stat-ms",
                          "50",
                          NULL,
                          NULL,
                          NULL,
                          NULL};
    static const char *const want[] = {"fleet", "console", "health", NULL};

    snprintf(delay, sizeof(delay), "%d", DELAY_MS * sp_slow());
    if (nats_url[0] != '\0') {
        args[14] = "--cluster";
        args[15] = nats_url;
    }
    snprintf(path, 108, "/tmp/tp-fleet-test-%d-%s.sock", (int)getpid(), name);
    return sp_start(p, TROUPE_FLEET_NODE, args, want, 10000);
}

static int
setup(void **state)
{
    (void)state;
    return start_node(&node, sock, "n1", "0");
}

static int
teardown(void **state)
{
    (void)state;
    sp_kill(&node);
    sp_kill(&node2);
    unlink(sock);
    unlink(sock2);
    return 0;
}

/* A connection greeted by its node. */
static struct sp_conn *
dial(int port, const char *want_node)
{
    char greeting[64];

    snprintf(greeting, sizeof(greeting), "NODE %s\n",
             want_node != NULL ? want_node : "");
    return sp_dial(port, want_node != NULL ? greeting : "NODE ");
}

static void
line(struct sp_conn *c, const char *send, const char *expect)
{
    assert_int_equal(sp_sends(c->fd, send), 0);
    if (!sp_expect(c, expect, 5000))
        fail_msg("sent '%s', no '%s' (have '%.*s')", send, expect, (int)c->len,
                 c->buf);
}

/* GET /health: the status code, or -1. */
static int
health(const struct sp_proc *p)
{
    char buf[256];
    int fd = sp_connect(sp_port(p, "health")), code = -1;
    ssize_t n;

    if (fd < 0)
        return -1;
    sp_sends(fd, "GET /health HTTP/1.0\r\n\r\n");
    n = read(fd, buf, sizeof(buf) - 1);
    if (n > 12) {
        buf[n] = '\0';
        sscanf(buf, "HTTP/1.%*d %d", &code);
    }
    close(fd);
    return code;
}

static int
ctl(const char *path, const char *cmd, char *out, size_t cap)
{
    char *argv[] = {TROUPECTL, "-s", (char *)path, (char *)cmd, NULL};

    return sp_run(argv, out, cap, 10000);
}

static void
test_fleet_protocol(void **state)
{
    int port = sp_port(&node, "fleet");
    struct sp_conn *a = dial(port, "n1"), *b = dial(port, "n1");
    char big[400];

    (void)state;
    line(a, "HELLO alice\n", "OK alice\n");
    line(b, "HELLO alice\n", "ERR taken alice\n");
    line(b, "HELLO bob\r\n", "OK bob\n");
    line(b, "HELLO carol\n", "ERR already named\n");
    line(b, "SEND alice 7 123\n", "ACK 7 ok\n");
    assert_true(sp_expect(a, "MSG 7 123\n", 5000));
    line(a, "SEND bob 8\n", "ACK 8 ok\n");
    assert_true(sp_expect(b, "MSG 8 0\n", 5000));
    line(a, "SEND nobody 9\n", "ACK 9 noname\n");
    line(a, "SEND alice\n", "ERR usage: SEND NAME ID [T_NS]\n");
    line(a, "HELLO bad/name\n", "ERR bad name");
    line(a, "\x01\xff garbage\n", "ERR unknown command");
    line(a, "PING\n", "PONG\n");
    /* A line split over writes is one line. */
    assert_int_equal(sp_sends(a->fd, "PI"), 0);
    usleep(50000);
    line(a, "NG\n", "PONG\n");
    /* Over the limit: told, then closed. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    line(a, big, "ERR line too long");
    assert_true(sp_wait_closed(a->fd, 5000));
    line(b, "QUIT\n", "");
    assert_true(sp_wait_closed(b->fd, 5000));
    sp_hang_up(a);
    sp_hang_up(b);
}

/* Names are released with their connection: the name can be taken again
 * (the actor ends a moment after the close: retry for a while). */
static void
test_fleet_name_released(void **state)
{
    int port = sp_port(&node, "fleet");
    struct sp_conn *a = dial(port, "n1"), *b = dial(port, "n1");
    bool ok = false;

    (void)state;
    line(a, "HELLO dave\n", "OK dave\n");
    sp_hang_up(a);
    for (int i = 0; i < 100 * sp_slow() && !ok; i++) {
        assert_int_equal(sp_sends(b->fd, "SEND dave 1\n"), 0);
        assert_true(sp_expect(b, "ACK 1 ", 5000));
        ok = sp_expect(b, "noname\n", 5000);
        if (!ok)
            usleep(20000);
    }
    assert_true(ok);
    line(b, "HELLO dave\n", "OK dave\n");
    sp_hang_up(b);
}

/* Every connection is a child of the node's connection supervisor. */
static void
test_fleet_supervised(void **state)
{
    int port = sp_port(&node, "fleet");
    struct sp_conn *c[5];
    char out[16384];
    int n = 0;

    (void)state;
    for (int i = 0; i < 5; i++)
        c[i] = dial(port, "n1");
    assert_int_equal(ctl(sock, "tree", out, sizeof(out)), 0);
    for (const char *p = out; (p = strstr(p, "fleet.conn  temporary")); p++)
        n++;
    assert_int_equal(n, 5);
    assert_non_null(strstr(out, "fleet  <"));
    for (int i = 0; i < 5; i++)
        sp_hang_up(c[i]);
}

/* Two node processes on one port: the kernel spreads connections over
 * both (SO_REUSEPORT), each greets with its own name. */
static void
test_fleet_two_nodes_one_port(void **state)
{
    int port = sp_port(&node, "fleet"), seen[3] = {0, 0, 0};
    char portstr[16], greeting[32];

    (void)state;
    snprintf(portstr, sizeof(portstr), "%d", port);
    assert_int_equal(start_node(&node2, sock2, "n2", portstr), 0);
    assert_int_equal(sp_port(&node2, "fleet"), port);
    for (int i = 0; i < 400 && !(seen[1] && seen[2]); i++) {
        int fd = sp_connect(port);
        size_t n = 0;

        assert_true(fd >= 0);
        while (n < sizeof(greeting) - 1 &&
               sp_read_n(fd, greeting + n, 1, 5000) == 0 && greeting[n] != '\n')
            n++;
        greeting[n] = '\0';
        close(fd);
        if (strcmp(greeting, "NODE n1") == 0)
            seen[1]++;
        else if (strcmp(greeting, "NODE n2") == 0)
            seen[2]++;
        else
            fail_msg("greeting '%s'", greeting);
    }
    assert_true(seen[1] > 0 && seen[2] > 0);
}

/* The drain a load balancer follows: /health 503 at once while the node
 * still accepts; BYE and the close only after the delay. */
static void
test_fleet_drain_order(void **state)
{
    int port = sp_port(&node, "fleet");
    struct sp_conn *old = dial(port, "n1"), *fresh;
    char out[4096];
    long long t0;
    int fd = 0;

    (void)state;
    assert_int_equal(health(&node), 200);
    t0 = sp_now_ms();
    assert_int_equal(ctl(sock, "drain", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "announced"));
    assert_int_equal(health(&node), 503);
    if (sp_now_ms() - t0 < DELAY_MS * sp_slow() / 2) {
        fresh = dial(port, "n1"); /* still accepting */
        sp_hang_up(fresh);
    }
    assert_true(sp_expect(old, "BYE drain\n", 10000));
    assert_true(sp_now_ms() - t0 >= DELAY_MS * sp_slow());
    assert_true(sp_wait_closed(old->fd, 5000));
    sp_hang_up(old);
    /* The listeners close (each loop its own SO_REUSEPORT socket, so
     * one may still take a connection for a moment): soon all refuse. */
    for (int i = 0; i < 300 * sp_slow() && (fd = sp_connect(port)) >= 0; i++) {
        close(fd);
        usleep(10000);
    }
    assert_true(fd < 0);
}

/* SIGTERM: the same drain, then exit 0. */
static void
test_fleet_sigterm(void **state)
{
    int port = sp_port(&node, "fleet");
    struct sp_conn *c = dial(port, "n1");
    long long t0 = sp_now_ms();
    int status;

    (void)state;
    kill(node.pid, SIGTERM);
    for (int i = 0; i < 100 && health(&node) != 503; i++)
        usleep(10000);
    if (sp_now_ms() - t0 < DELAY_MS * sp_slow())
        assert_int_equal(health(&node), 503);
    assert_true(sp_expect(c, "BYE drain\n", 10000));
    assert_true(sp_now_ms() - t0 >= DELAY_MS * sp_slow());
    status = sp_stop(&node, SIGTERM, 15000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    sp_hang_up(c);
}

static int
exit_code(const char *a, const char *b)
{
    char *argv[] = {TROUPE_FLEET_NODE, (char *)a, (char *)b, NULL};
    char out[4096];
    int status = sp_run(argv, out, sizeof(out), 10000);

    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- two nodes in a cluster ---------------------------------------- */

static struct sp_nats nats;

/* The node's last STAT line has field=want (within the deadline). */
static bool
stat_has(struct sp_proc *p, const char *field_value, int ms)
{
    long long end = sp_now_ms() + (long long)ms * sp_slow();

    while (sp_now_ms() < end) {
        const char *s = sp_wait_output(p, 0, field_value, 100);

        if (s != NULL)
            return true;
    }
    return false;
}

static void
test_fleet_cluster(void **state)
{
    struct sp_conn *alice, *bob;

    (void)state;
    if (!sp_nats_start(&nats, false)) {
        print_message("fleet cluster: skipped: nats-server missing\n");
        skip();
    }
    nats_url = nats.url;
    assert_int_equal(start_node(&node, sock, "n1", "0"), 0);
    assert_int_equal(start_node(&node2, sock2, "n2", "0"), 0);
    assert_true(stat_has(&node, " peers=1 ", 10000));
    assert_true(stat_has(&node2, " peers=1 ", 10000));
    /* alice on n1, bob on n2: a SEND on n2 reaches alice on n1. */
    alice = dial(sp_port(&node, "fleet"), "n1");
    bob = dial(sp_port(&node2, "fleet"), "n2");
    assert_int_equal(sp_sends(alice->fd, "HELLO alice\n"), 0);
    assert_true(sp_expect(alice, "OK alice\n", 5000));
    assert_int_equal(sp_sends(bob->fd, "SEND alice 41\nSEND nobody 42\n"), 0);
    assert_true(sp_expect(bob, "ACK 41 ok\n", 5000));
    assert_true(sp_expect(alice, "MSG 41 ", 5000));
    /* n2 SIGKILLed: n1's directory sees its monitor fire noconnection. */
    kill(node2.pid, SIGKILL);
    assert_true(stat_has(&node, " peers=0 noconn=1 ", 15000));
    sp_hang_up(bob);
    sp_hang_up(alice);
    sp_kill(&node);
    sp_kill(&node2);
    sp_nats_stop(&nats);
    nats_url = "";
}

static void
test_fleet_refused_options(void **state)
{
    (void)state;
    /* No NATS server there: the node says why and does not start. */
    assert_int_equal(exit_code("--cluster", "nats://127.0.0.1:1"), 1);
    assert_int_equal(exit_code("--node", "bad/name"), 2);
    assert_int_equal(exit_code("--max-conns", "0"), 2);
    assert_int_equal(exit_code("--bogus", "1"), 2);
    assert_int_equal(exit_code("--help", NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fleet_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_name_released, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fleet_supervised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fleet_two_nodes_one_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fleet_drain_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fleet_sigterm, setup, teardown),
        cmocka_unit_test(test_fleet_cluster),
        cmocka_unit_test(test_fleet_refused_options),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
