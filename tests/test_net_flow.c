/*
 * tests/test_net_flow.c - flow control: a client that floods an actor that
 * handles slowly cannot grow the server's memory (reading pauses at the
 * high-water marks and resumes below the low ones, and every byte still
 * arrives), the mailbox mark bounds the mailbox, and an echo peer that
 * never reads stops the server reading instead of growing its write queue.
 */
#include "test_net_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Writes as much as the socket takes for ms milliseconds; returns bytes. */
static uint64_t
flood_for(int fd, unsigned ms)
{
    static char chunk[65536];
    uint64_t end = tnet_ms() + ms, total = 0;

    memset(chunk, 'f', sizeof(chunk));
    while (tnet_ms() < end) {
        struct pollfd p = {fd, POLLOUT, 0};
        ssize_t w;
        if (poll(&p, 1, 10) <= 0)
            continue;
        w = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (w > 0)
            total += (uint64_t)w;
    }
    return total;
}

static void
wait_received(struct tnet_cfg *cfg, uint64_t n, unsigned ms)
{
    uint64_t end = tnet_ms() + (uint64_t)ms * tpt_slow();

    while (atomic_load(&cfg->received) < n && tnet_ms() < end)
        tpt_sleep_ms(10);
    assert_int_equal(atomic_load(&cfg->received), n);
}

static void
test_net_flow_flood_slow_actor_bounded(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.delay_us = 2000};
    tp_listen_opts o;
    tp_listener *l;
    uint64_t rss0, rss1, sent;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    /* Accepted on loop 0, handled (slowly) on scheduler 1: the loop is
     * free to read as fast as the client writes. */
    o.loops = 1;
    o.scheduler = 1;
    o.conn.read_chunk = 16 * 1024;
    o.conn.read_high = 256 * 1024;
    o.conn.read_low = 64 * 1024;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tpt_sleep_ms(50);
    rss0 = tnet_rss();
    /* The actor takes ~8 MB/s; loopback offers GB/s. */
    sent = flood_for(fd, 2000);
    rss1 = tnet_rss();
    print_message("flooded %llu MiB in 2 s; server rss growth %lld KiB; "
                  "longest mailbox %llu\n",
                  (unsigned long long)(sent >> 20),
                  (long long)(rss1 - rss0) / 1024,
                  (unsigned long long)atomic_load(&cfg.max_mailbox));
    /* Bounded by the read marks plus kernel buffers, not by the flood. */
    assert_true(rss1 < rss0 + (24u << 20));
    assert_true(sent < (200ull << 20));
    assert_true(atomic_load(&cfg.max_mailbox) <= 32);
    /* Reading resumed each time the actor caught up: nothing is lost. */
    wait_received(&cfg, sent, 30000);
    close(fd);
    tpt_finish(rt);
}

static void
test_net_flow_mailbox_mark(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.delay_us = 1000};
    tp_listen_opts o;
    tp_listener *l;
    uint64_t sent;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.loops = 1;
    o.scheduler = 1;
    o.conn.read_chunk = 1024;
    o.conn.mailbox_high = 4;
    o.conn.mailbox_low = 1;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    sent = flood_for(fd, 500);
    print_message("longest mailbox %llu (high mark 4)\n",
                  (unsigned long long)atomic_load(&cfg.max_mailbox));
    /* The mailbox held at most the mark (the message being handled is
     * no longer in it). */
    assert_true(atomic_load(&cfg.max_mailbox) <= 4);
    wait_received(&cfg, sent, 60000);
    close(fd);
    tpt_finish(rt);
}

/* An echo peer that sends but never reads: the server stops reading once
 * its write queue is over write_high, so the client ends up blocked by TCP
 * itself and the server holds a bounded amount. */
static void
test_net_flow_echo_peer_never_reads(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_listen_opts o;
    tp_listener *l;
    uint64_t rss0, rss1, sent, back = 0, end;
    char *buf = malloc(65536);
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.conn.write_high = 256 * 1024;
    o.conn.write_limit = 64u << 20;
    o.loops = 1;
    o.scheduler = 1;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, NULL);
    rss0 = tnet_rss();
    sent = flood_for(fd, 1500);
    rss1 = tnet_rss();
    print_message("sent %llu MiB before TCP blocked the client; server rss "
                  "growth %lld KiB\n",
                  (unsigned long long)(sent >> 20),
                  (long long)(rss1 - rss0) / 1024);
    assert_true(sent < (64ull << 20));
    assert_true(rss1 < rss0 + (24u << 20));
    assert_int_equal(tpt_probe_count(p, EV_CLOSED), 0);
    /* Once the client reads, everything comes back. */
    end = tnet_ms() + 30000u * tpt_slow();
    while (back < sent && tnet_ms() < end) {
        ssize_t r;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        r = recv(fd, buf, 65536, 0);
        assert_true(r > 0);
        back += (uint64_t)r;
    }
    assert_int_equal(back, sent);
    close(fd);
    free(buf);
    tpt_probe_free(p);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_flow_flood_slow_actor_bounded),
        cmocka_unit_test(test_net_flow_mailbox_mark),
        cmocka_unit_test(test_net_flow_echo_peer_never_reads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
