/*
 * tests/test_net_sockfaults.c - socket faults the kernel hands the network
 * layer, beyond those test_net_close/echo/overload already cover (a reset
 * on an idle connection, one refused connect, EMFILE on accept with CPU
 * measured by getrusage, a peer that never reads):
 *  - the peer resets the connection while the server is writing a large
 *    buffer (SO_LINGER 0): the connection closes with RESET/ERROR, the
 *    actor ends normally, no SIGPIPE (this test does not ignore it), no fd
 *    left, the listener serves the next client;
 *  - short writes: a tiny SO_SNDBUF on the server's socket and a tiny
 *    SO_RCVBUF on a slow reader force partial writes; every byte arrives,
 *    in order;
 *  - connect refused, over and over (a closed port): each attempt reports
 *    -ECONNREFUSED, nothing leaks, a later connect works.
 */
#include "test_net_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server's end of the client socket cfd: same process, so it is one of
 * our descriptors, the one whose peer is cfd's local address. */
static int
server_end_of(int cfd)
{
    uint16_t want = tnet_local_port(cfd);

    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        if (fd != cfd && getpeername(fd, (struct sockaddr *)&a, &len) == 0 &&
            a.sin_family == AF_INET && ntohs(a.sin_port) == want)
            return fd;
    }
    return -1;
}

static void
drop_others(tpt_probe *p, uint32_t until, int ms, tpt_rec *out)
{
    /* Records of other types may come first (EV_BLOCKED, EV_OTHER...). */
    assert_int_equal(tpt_probe_wait(p, until, ms, out), 0);
}

/* Open sockets of this process. Only sockets: the sanitizers open pipes
 * of their own (TSan's symbolizer) at any time. */
static int
open_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], target[64];
        ssize_t k;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        k = readlink(path, target, sizeof(target) - 1);
        if (k > 0) {
            target[k] = '\0';
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* Sockets open once a first runtime has come and gone. */
static int
warm_fds(void)
{
    tpt_finish(tpt_runtime(1));
    return open_sockets();
}

/* ---------------------------------------------------------------------- */

static void
test_sockfault_peer_reset_mid_write(void **state)
{
    int fds0 = warm_fds();
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    uint32_t chunks = 256; /* 16 MiB */
    int fd, rc;
    tp_listen_opts o;
    tp_listener *l;
    tp_pid conn;
    tpt_rec r;
    char buf[65536];

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.write_high = 32u << 20;
    o.conn.write_limit = 64u << 20;
    l = tnet_listen(rt, &cfg, &o);
    for (int round = 0; round < 5; round++) {
        fd = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_expect(p, EV_OPENED, 5000, &r);
        conn = r.from;
        assert_int_equal(tp_runtime_send(rt, conn, CMD_FLOOD, &chunks, 4), 0);
        /* Read a little of it, then reset while the server still writes. */
        assert_int_equal(tnet_read_n(fd, buf, sizeof(buf), 5000), sizeof(buf));
        tnet_reset(fd);
        drop_others(p, EV_CLOSED, 5000, &r);
        rc = tnet_closed_of(&r)->reason;
        print_message("round %d: closed reason %d error %d after %llu bytes\n",
                      round, rc, tnet_closed_of(&r)->error,
                      (unsigned long long)tnet_closed_of(&r)->bytes_out);
        assert_true(rc == TP_NET_CLOSE_RESET || rc == TP_NET_CLOSE_ERROR);
        assert_true(tnet_closed_of(&r)->error == -ECONNRESET ||
                    tnet_closed_of(&r)->error == -EPIPE);
        assert_true(tnet_closed_of(&r)->bytes_out < (uint64_t)chunks * 65536);
        drop_others(p, EV_TERMINATE, 5000, &r);
        assert_int_equal(tnet_int_of(&r), TP_EXIT_NORMAL);
    }
    /* The listener still serves. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    assert_int_equal(tp_runtime_send(rt, r.from, CMD_SEND, "fine", 4), 0);
    assert_int_equal(tnet_read_n(fd, buf, 4, 5000), 4);
    assert_memory_equal(buf, "fine", 4);
    close(fd);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    tpt_probe_free(p);
    tpt_finish(rt);
    assert_int_equal(open_sockets(), fds0);
}

/* ---------------------------------------------------------------------- */

#define PIECE  32768
#define PIECES 128 /* 4 MiB */

static uint8_t
pattern(uint64_t i)
{
    return (uint8_t)((i * 131u + (i >> 11)) % 251u);
}

/* Reads everything slowly (small reads, a pause every few), checking the
 * pattern. Returns the bytes that matched in order. */
static uint64_t
slow_read_check(int fd, uint64_t total)
{
    uint64_t got = 0;
    uint8_t buf[1024];
    int reads = 0;

    while (got < total) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t k;
        if (poll(&pf, 1, 5000 * (int)tpt_slow()) <= 0)
            break;
        k = read(fd, buf, sizeof(buf));
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++) {
            if (buf[i] != pattern(got + (uint64_t)i))
                return got + (uint64_t)i;
        }
        got += (uint64_t)k;
        if (++reads % 16 == 0)
            usleep(1000);
    }
    return got;
}

static void
test_sockfault_short_writes_in_order(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    static uint8_t piece[PIECE];
    uint64_t total = (uint64_t)PIECE * PIECES, got;
    int fd, sfd, sz = 4096, blocked = 0, over_high = 0;
    tp_listen_opts o;
    tp_listener *l;
    tp_pid conn;
    tpt_rec r;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.write_high = 256 * 1024;
    o.conn.write_low = 64 * 1024;
    o.conn.write_limit = 16u << 20;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect_rcvbuf(tp_listener_port(l), 2048);
    tnet_expect(p, EV_OPENED, 5000, &r);
    conn = r.from;
    sfd = server_end_of(fd);
    assert_true(sfd >= 0);
    assert_int_equal(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)),
                     0);
    for (uint64_t k = 0; k < PIECES; k++) {
        for (uint64_t i = 0; i < PIECE; i++)
            piece[i] = pattern(k * PIECE + i);
        assert_int_equal(tp_runtime_send(rt, conn, CMD_SEND, piece, PIECE), 0);
    }
    got = slow_read_check(fd, total);
    print_message("%llu of %llu bytes arrived in order\n",
                  (unsigned long long)got, (unsigned long long)total);
    assert_int_equal(got, total);
    /* Every send was accepted (0, or 1: queued over write_high, as the
     * kernel took the bytes a little at a time) and the queue drained. */
    for (int n = 0; n < PIECES; n++) {
        drop_others(p, EV_OTHER, 5000, &r);
        assert_true(tnet_int_of(&r) == 0 || tnet_int_of(&r) == 1);
        over_high += tnet_int_of(&r);
    }
    while (tpt_probe_wait(p, 0, 200, &r) == 0)
        blocked += r.type == EV_BLOCKED || r.type == EV_DRAINED;
    print_message("sends over write_high: %d; blocked/drained notices: %d\n",
                  over_high, blocked);
    assert_true(over_high > 0 && blocked >= 2);
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */

static void
test_sockfault_connect_refused_repeatedly(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *client = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.echo = true};
    int fds0 = -1;
    struct tnet_conn_req cr;
    tp_listener *l;
    tpt_rec r;

    (void)state;
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = tnet_closed_port();
    for (int i = 0; i < 50; i++) {
        tpt_probe_do(client, tnet_connect_fn, &cr);
        assert_int_equal(cr.result, 0);
        tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
        assert_int_equal(((tp_tcp_connected *)r.data)->error, -ECONNREFUSED);
        if (i == 0) { /* the first connect may set up lasting state */
            tpt_sleep_ms(50);
            fds0 = open_sockets();
        }
    }
    /* The loop closes the handles after the answers: nothing stays open
     * (<=: the baseline may still have held the first socket). */
    for (int i = 0; i < 5000 * (int)tpt_slow() && open_sockets() > fds0; i++)
        tpt_sleep_ms(1);
    assert_true(open_sockets() <= fds0);
    l = tnet_listen(rt, &cfg, NULL);
    cr.o.port = tp_listener_port(l);
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, 0);
    tpt_probe_free(client);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sockfault_peer_reset_mid_write),
        cmocka_unit_test(test_sockfault_short_writes_in_order),
        cmocka_unit_test(test_sockfault_connect_refused_repeatedly),
    };

    /* SIGPIPE is deliberately not ignored: a write to a reset socket must
     * not raise it (the runtime blocks it on its threads). */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
