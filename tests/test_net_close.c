/*
 * tests/test_net_close.c - how connections end: peer reset, half-close in
 * both directions, idle timeout, a crashing or killed actor, local close
 * with exit_on_close on and off, a client that never reads (write limit),
 * write-blocked / drained, drain with a deadline, runtime stop.
 */
#include "test_net_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
test_net_peer_reset(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    tpt_rec r;
    int fd;

    (void)state;
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, NULL);
    tnet_reset(fd);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_RESET);
    assert_int_equal(tnet_closed_of(&r)->error, -ECONNRESET);
    tnet_expect(p, EV_TERMINATE, 5000, &r);
    assert_int_equal(tnet_int_of(&r), TP_EXIT_NORMAL);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* Without half_open, the peer's shutdown closes the connection, after the
 * replies already queued are sent. */
static void
test_net_peer_shutdown_closes_after_flush(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    char buf[16];
    tpt_rec r;
    int fd;

    (void)state;
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, "request", 7);
    shutdown(fd, SHUT_WR);
    assert_int_equal(tnet_read_n(fd, buf, 7, 5000), 7);
    assert_memory_equal(buf, "request", 7);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_half_close_by_peer(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .report_data = true};
    tp_listen_opts o;
    tp_listener *l;
    tp_pid actor;
    char buf[16];
    tpt_rec r;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.half_open = true;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    actor = r.from;
    tnet_write_all(fd, "req", 3);
    shutdown(fd, SHUT_WR);
    tnet_expect(p, EV_DATA, 5000, &r);
    assert_memory_equal(((struct ev_data *)r.data)->head, "req", 3);
    tnet_expect(p, EV_PEER_SHUT, 5000, NULL);
    /* Still open for writing: the answer goes out, then we close. */
    assert_int_equal(tp_runtime_send(rt, actor, CMD_SEND, "resp", 4), 0);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), 0);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_CLOSE, NULL, 0), 0);
    assert_int_equal(tnet_read_n(fd, buf, 4, 5000), 4);
    assert_memory_equal(buf, "resp", 4);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_half_close_by_server(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .report_data = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    tp_pid actor;
    char buf[16];
    tpt_rec r;
    int fd;

    (void)state;
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    actor = r.from;
    assert_int_equal(tp_runtime_send(rt, actor, CMD_SEND, "bye", 3), 0);
    tnet_expect(p, EV_OTHER, 5000, NULL);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_SHUTDOWN, NULL, 0), 0);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), 0);
    /* The client reads what was sent, then the end of the stream ... */
    assert_int_equal(tnet_read_n(fd, buf, 3, 5000), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    /* ... and can still talk: the server goes on reading. */
    tnet_write_all(fd, "more", 4);
    tnet_expect(p, EV_DATA, 5000, &r);
    assert_memory_equal(((struct ev_data *)r.data)->head, "more", 4);
    /* Sending after the shutdown fails. */
    assert_int_equal(tp_runtime_send(rt, actor, CMD_SEND, "x", 1), 0);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), -EPIPE);
    close(fd);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_idle_timeout(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    unsigned idle = 500 * tpt_slow();
    tp_listen_opts o;
    tp_listener *l;
    uint64_t last;
    tpt_rec r;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.idle_timeout_ms = idle;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, NULL);
    /* Activity keeps it open well past the timeout (a byte every fifth
     * of it: four fifths of slack for a loaded machine) ... */
    for (int i = 0; i < 6; i++) {
        tpt_sleep_ms(idle / 5);
        tnet_write_all(fd, "x", 1);
    }
    last = tnet_ms();
    assert_int_equal(tpt_probe_count(p, EV_CLOSED), 0);
    /* ... and silence closes it about one timeout later. */
    tnet_expect(p, EV_CLOSED, 5000, &r);
    print_message("closed %llu ms after the last byte (timeout %u)\n",
                  (unsigned long long)(tnet_ms() - last), idle);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_TIMEOUT);
    assert_true(tnet_ms() - last >= idle);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_actor_crash_closes_socket(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .crash_on_data = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};
    tp_net_stats ns;
    tpt_rec r;
    int fd;

    (void)state;
    /* tp_fail() inside the handler. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, NULL);
    tnet_write_all(fd, "crash", 5);
    tnet_expect(p, EV_TERMINATE, 5000, &r);
    assert_int_equal(tnet_int_of(&r), TP_EXIT_CRASH);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    /* Killed from outside. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    assert_int_equal(tp_runtime_exit_pid(rt, r.from, &kill), 0);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    /* Neither actor was told (they were gone): counted as owner exits
     * (by the loop, maybe just after the peer saw the end). */
    for (int i = 0; i < 5000 * (int)tpt_slow(); i++) {
        tp_net_get_stats(rt, &ns);
        if (ns.closed[TP_NET_CLOSE_OWNER_EXIT] >= 2)
            break;
        tpt_sleep_ms(1);
    }
    assert_int_equal(ns.closed[TP_NET_CLOSE_OWNER_EXIT], 2);
    assert_int_equal(tpt_probe_count(p, EV_CLOSED), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
exit_on_close_case(bool exit_on_close)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    char *big = calloc(1, 100000), *in = malloc(100000);
    tp_listen_opts o;
    tp_listener *l;
    tp_actor_info info;
    tp_pid actor;
    tpt_rec r;
    int fd;

    tnet_opts(&o, &cfg);
    o.exit_on_close = exit_on_close;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    actor = r.from;
    memset(big, 'b', 100000);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_SEND, big, 100000), 0);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), 0);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_CLOSE, NULL, 0), 0);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), 0);
    /* Queued bytes are flushed before the close. */
    assert_int_equal(tnet_read_n(fd, in, 100000, 5000), 100000);
    assert_memory_equal(in, big, 100000);
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
    if (exit_on_close) {
        tnet_expect(p, EV_TERMINATE, 5000, &r);
        assert_int_equal(tnet_int_of(&r), TP_EXIT_NORMAL);
    } else {
        assert_int_equal(tpt_probe_wait(p, EV_TERMINATE, 200, NULL),
                         -ETIMEDOUT);
        assert_int_equal(tp_actor_peek(rt, actor, &info), 0);
        /* Its handle is dead. */
        assert_int_equal(tp_runtime_send(rt, actor, CMD_SEND, "x", 1), 0);
        tnet_expect(p, EV_OTHER, 5000, &r);
        assert_int_equal(tnet_int_of(&r), -ENOTCONN);
    }
    close(fd);
    free(big);
    free(in);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_close_local_exit_on_close(void **state)
{
    (void)state;
    exit_on_close_case(true);
}

static void
test_net_close_local_keep_actor(void **state)
{
    (void)state;
    exit_on_close_case(false);
}

/* ---------------------------------------------------------------------- */
/* Write limits                                                           */

static void
test_net_client_never_reads(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    uint32_t chunks = 256; /* 16 MiB offered */
    uint64_t rss0, rss1;
    tp_listen_opts o;
    tp_listener *l;
    tpt_rec r;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.write_high = 256 * 1024;
    o.conn.write_limit = 1024 * 1024;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect_rcvbuf(tp_listener_port(l), 4096);
    tnet_expect(p, EV_OPENED, 5000, &r);
    rss0 = tnet_rss();
    assert_int_equal(tp_runtime_send(rt, r.from, CMD_FLOOD, &chunks, 4), 0);
    tnet_expect(p, EV_BLOCKED, 5000, &r);
    assert_true(((tp_tcp_write_state *)r.data)->queued > 256 * 1024);
    /* The sends stopped at the limit ... */
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), -ENOBUFS);
    /* ... and the connection was closed with that reason. */
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_WRITE_LIMIT);
    rss1 = tnet_rss();
    print_message("rss growth %lld KiB, %llu bytes written\n",
                  (long long)(rss1 - rss0) / 1024,
                  (unsigned long long)tnet_closed_of(&r)->bytes_out);
    assert_true(tnet_closed_of(&r)->bytes_out < 12u << 20);
    assert_true(rss1 < rss0 + (16u << 20));
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_write_blocked_then_drained(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    uint32_t chunks = 128; /* 8 MiB: more than the kernel buffers */
    char *in = malloc(8u << 20);
    tp_listen_opts o;
    tp_listener *l;
    tpt_rec r;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.write_high = 128 * 1024;
    o.conn.write_low = 32 * 1024;
    o.conn.write_limit = 64u << 20;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect_rcvbuf(tp_listener_port(l), 4096);
    tnet_expect(p, EV_OPENED, 5000, &r);
    assert_int_equal(tp_runtime_send(rt, r.from, CMD_FLOOD, &chunks, 4), 0);
    tnet_expect(p, EV_BLOCKED, 5000, NULL);
    tnet_expect(p, EV_OTHER, 5000, &r);
    assert_int_equal(tnet_int_of(&r), 1); /* queued, over the high mark */
    assert_int_equal(tnet_read_n(fd, in, 8u << 20, 20000), 8u << 20);
    tnet_expect(p, EV_DRAINED, 5000, &r);
    assert_true(((tp_tcp_write_state *)r.data)->queued <= 32 * 1024);
    assert_int_equal(tpt_probe_count(p, EV_CLOSED), 0);
    close(fd);
    free(in);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Drain and stop                                                         */

static void
test_net_drain_with_deadline(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tpt_probe *owner = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    tp_listener_info info;
    struct tnet_conn_req cr;
    int fds[3], lfd, afd;
    uint64_t t0;
    uint16_t port;
    tpt_rec r;

    (void)state;
    for (int i = 0; i < 3; i++) {
        fds[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_expect(p, EV_OPENED, 5000, NULL);
    }
    /* An outbound connection whose owner ignores TP_MSG_TCP_DRAIN and
     * whose peer never closes: only the deadline ends it. */
    lfd = tnet_raw_listener(&port, 8);
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = port;
    tpt_probe_do(owner, tnet_connect_fn, &cr);
    tnet_expect(owner, TP_MSG_TCP_CONNECTED, 5000, NULL);
    afd = accept(lfd, NULL, NULL);
    t0 = tnet_ms();
    assert_int_equal(tp_net_drain(rt, 300 * tpt_slow()), 0);
    print_message("drain took %llu ms\n", (unsigned long long)(tnet_ms() - t0));
    assert_true(tnet_ms() - t0 >= 300 * tpt_slow());
    for (int i = 0; i < 3; i++) {
        tnet_expect(p, EV_DRAIN, 5000, NULL);
        tnet_expect(p, EV_CLOSED, 5000, &r);
        assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
        assert_int_equal(tnet_wait_eof(fds[i], 5000), 0);
        close(fds[i]);
    }
    tnet_expect(owner, TP_MSG_TCP_DRAIN, 5000, NULL);
    tnet_expect(owner, TP_MSG_TCP_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_DRAIN);
    /* No longer accepting. */
    tp_listener_get_info(l, &info);
    assert_string_equal(info.state, "closed");
    assert_int_equal(info.conns, 0);
    close(afd);
    close(lfd);
    tpt_probe_free(owner);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_runtime_stop_closes_connections(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    int fd[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        fd[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_write_all(fd[i], "x", 1);
        assert_int_equal(tnet_read_n(fd[i], (char[1]){0}, 1, 5000), 1);
    }
    assert_int_equal(tp_runtime_stop(rt), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tnet_wait_eof(fd[i], 5000), 0);
        close(fd[i]);
    }
    assert_int_equal(atomic_load(&cfg.live), 0);
    tp_runtime_destroy(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_peer_reset),
        cmocka_unit_test(test_net_peer_shutdown_closes_after_flush),
        cmocka_unit_test(test_net_half_close_by_peer),
        cmocka_unit_test(test_net_half_close_by_server),
        cmocka_unit_test(test_net_idle_timeout),
        cmocka_unit_test(test_net_actor_crash_closes_socket),
        cmocka_unit_test(test_net_close_local_exit_on_close),
        cmocka_unit_test(test_net_close_local_keep_actor),
        cmocka_unit_test(test_net_client_never_reads),
        cmocka_unit_test(test_net_write_blocked_then_drained),
        cmocka_unit_test(test_net_drain_with_deadline),
        cmocka_unit_test(test_net_runtime_stop_closes_connections),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
