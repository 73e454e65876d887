/*
 * tests/test_net_proxy.c - the PROXY protocol on listeners that ask for it
 * (tp_listen_opts.proxy_protocol):
 *  - the parser (net/proxy.c) on v1 and v2 headers whole, cut short, and
 *    malformed;
 *  - a listener with the option: the actor's TP_MSG_TCP_OPENED and the
 *    console's view (tp_net_conn_foreach) carry the client's address from
 *    a v1 or a v2 header, and the bytes after the header are the
 *    connection's (echoed); a LOCAL header keeps the socket's address;
 *  - a malformed header and one that never comes are closed without an
 *    actor and counted in the listener's errors;
 *  - a listener without the option never parses one (echoed as data).
 * (HAProxy itself sends them in the fleet test: scripts/fleet.sh
 * --haproxy --proxy.)
 */
#include "net/net_int.h"
#include "test_net_util.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A v2 header: PROXY TCP4 203.0.113.9:5151 -> 10.1.2.3:443, plus a TLV. */
static size_t
v2_tcp4(unsigned char *out, bool local)
{
    static const unsigned char body[] = {203, 0, 113, 9, 10, 1, 2, 3, 0x14,
                                         0x1f, 1, 0xbb,
                                         /* a TLV: type 4 (NOOP), 2 bytes */
                                         4, 0, 2, 0, 0};
    memcpy(out, sig, 12);
    out[12] = local ? 0x20 : 0x21;
    out[13] = 0x11;
    out[14] = 0;
    out[15] = sizeof(body);
    memcpy(out + 16, body, sizeof(body));
    return 16 + sizeof(body);
}

static void
test_proxy_parse(void **state)
{
    struct tp__proxy_hdr h;
    unsigned char v2[64];
    const char *v1 = "PROXY TCP4 198.51.100.22 10.0.0.1 35646 80\r\nGET /";
    const char *v16 = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    char buf[200];
    size_t n;

    (void)state;
    assert_int_equal(tp__proxy_parse(v1, strlen(v1), &h), 1);
    assert_int_equal(h.len, strlen(v1) - 5);
    assert_false(h.local);
    assert_int_equal(h.src.family, TP_NET_INET);
    assert_int_equal(h.src.port, 35646);
    assert_int_equal(h.dst.port, 80);
    assert_memory_equal(h.src.addr, "\xc6\x33\x64\x16", 4);
    for (size_t k = 0; k < strlen(v1) - 5; k++) /* any prefix: more */
        assert_int_equal(tp__proxy_parse(v1, k, &h), 0);
    assert_int_equal(tp__proxy_parse(v16, strlen(v16), &h), 1);
    assert_int_equal(h.src.family, TP_NET_INET6);
    assert_int_equal(h.dst.port, 65535);
    assert_int_equal(tp__proxy_parse("PROXY UNKNOWN\r\n", 15, &h), 1);
    assert_true(h.local);
    /* Malformed v1: other verbs, bad addresses and ports, no CRLF. */
    assert_int_equal(tp__proxy_parse("GET / HTTP/1.1\r\n", 16, &h), -EPROTO);
    assert_int_equal(
        tp__proxy_parse("PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n", 30, &h), -EPROTO);
    assert_int_equal(
        tp__proxy_parse("PROXY TCP4 1.2.3.4 4.5.6.7 65536 2\r\n", 36, &h),
        -EPROTO);
    assert_int_equal(
        tp__proxy_parse("PROXY TCP4 1.2.3.4 4.5.6.7 01 2\r\n", 33, &h),
        -EPROTO);
    assert_int_equal(
        tp__proxy_parse("PROXY TCP4 1.2.3.4 4.5.6.7 1 2 3\r\n", 34, &h),
        -EPROTO);
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "PROXY TCP4 ", 11);
    assert_int_equal(tp__proxy_parse(buf, sizeof(buf), &h), -EPROTO);
    /* v2: whole, every prefix, LOCAL, bad version, over the limit. */
    n = v2_tcp4(v2, false);
    assert_int_equal(tp__proxy_parse(v2, n, &h), 1);
    assert_int_equal(h.len, n);
    assert_int_equal(h.src.port, 5151);
    assert_int_equal(h.dst.port, 443);
    assert_memory_equal(h.dst.addr, "\x0a\x01\x02\x03", 4);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(tp__proxy_parse(v2, k, &h), 0);
    n = v2_tcp4(v2, true);
    assert_int_equal(tp__proxy_parse(v2, n, &h), 1);
    assert_true(h.local);
    v2[12] = 0x31; /* version 3 */
    assert_int_equal(tp__proxy_parse(v2, n, &h), -EPROTO);
    v2[12] = 0x21;
    v2[14] = 0x10; /* 4,096 + bytes of addresses */
    assert_int_equal(tp__proxy_parse(v2, n, &h), -EPROTO);
}

/* The server closed fd (EOF, or a reset: it had unread bytes). */
static void
closed_soon(int fd, int ms)
{
    int r = tnet_wait_eof(fd, ms);

    assert_true(r == 0 || r == -ECONNRESET);
}

static struct tpt_probe *probe;
/* One configuration per listener: its connection actors read it until
 * they end. */
static struct tnet_cfg cfg_proxy, cfg_plain;

static tp_listener *
listen_proxy(tp_runtime *rt, bool proxy)
{
    struct tnet_cfg *cfg = proxy ? &cfg_proxy : &cfg_plain;
    tp_listen_opts o;

    memset(cfg, 0, sizeof(*cfg));
    cfg->probe = tpt_probe_pid(probe);
    cfg->echo = true;
    tnet_opts(&o, cfg);
    o.proxy_protocol = proxy;
    o.name = proxy ? "proxied" : "plain";
    return tnet_listen(rt, cfg, &o);
}

struct find {
    uint16_t local_port;
    tp_net_addr peer;
    bool found;
};

static bool
find_peer(void *user, const tp_conn_info *ci)
{
    struct find *f = user;

    if (ci->local.port != f->local_port || f->found)
        return true;
    f->peer = ci->peer;
    f->found = true;
    return true;
}

static void
test_proxy_listener(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_listener *l, *plain;
    unsigned char v2[64], back[16];
    const char *v1 = "PROXY TCP4 198.51.100.22 10.0.0.1 35646 80\r\nhello";
    struct find f = {0};
    tp_listener_info li;
    tpt_rec r;
    int fd;

    (void)state;
    probe = tpt_probe_new(rt, false);
    l = listen_proxy(rt, true);
    /* v1: the actor sees the client, the bytes after the header echo. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, v1, strlen(v1));
    tnet_expect(probe, EV_OPENED, 5000, &r);
    assert_int_equal(((struct ev_opened *)r.data)->o.peer.port, 35646);
    assert_memory_equal(((struct ev_opened *)r.data)->o.peer.addr,
                        "\xc6\x33\x64\x16", 4);
    assert_int_equal(((struct ev_opened *)r.data)->o.local.port, 80);
    assert_int_equal(tnet_read_n(fd, back, 5, 5000), 5);
    assert_memory_equal(back, "hello", 5);
    /* ... and so does the console's view of the connection. */
    f.local_port = 80;
    tp_net_conn_foreach(rt, find_peer, &f);
    assert_true(f.found);
    assert_int_equal(f.peer.port, 35646);
    close(fd);
    /* v2, with its bytes in two writes. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    {
        size_t n = v2_tcp4(v2, false);

        tnet_write_all(fd, v2, 7);
        tpt_sleep_ms(20);
        tnet_write_all(fd, v2 + 7, n - 7);
    }
    tnet_write_all(fd, "v2!", 3);
    tnet_expect(probe, EV_OPENED, 5000, &r);
    assert_int_equal(((struct ev_opened *)r.data)->o.peer.port, 5151);
    assert_int_equal(tnet_read_n(fd, back, 3, 5000), 3);
    assert_memory_equal(back, "v2!", 3);
    close(fd);
    /* A LOCAL header (a health check): the socket's own addresses. */
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, v2, v2_tcp4(v2, true));
    tnet_expect(probe, EV_OPENED, 5000, &r);
    assert_int_equal(((struct ev_opened *)r.data)->o.peer.port,
                     tnet_local_port(fd));
    close(fd);
    /* Malformed: closed, no actor, counted. */
    tp_listener_get_info(l, &li);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, "GET / HTTP/1.1\r\n\r\n", 18);
    closed_soon(fd, 5000);
    close(fd);
    {
        tp_listener_info li2;

        tp_listener_get_info(l, &li2);
        assert_int_equal(li2.errors, li.errors + 1);
        assert_int_equal(li2.accepted, li.accepted);
    }
    /* A listener without the option: "PROXY ..." is just data. */
    plain = listen_proxy(rt, false);
    fd = tnet_connect("127.0.0.1", tp_listener_port(plain));
    tnet_write_all(fd, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32);
    tnet_expect(probe, EV_OPENED, 5000, &r);
    assert_int_equal(tnet_read_n(fd, back, 6, 5000), 6);
    assert_memory_equal(back, "PROXY ", 6);
    close(fd);
    tp_listener_close(plain);
    tp_listener_close(l);
    tpt_probe_free(probe);
    tpt_finish(rt);
}

/* A client that never sends its header is closed after the 5 s deadline;
 * one still waiting when the listener closes is closed then. */
static void
test_proxy_header_deadline(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_listener *l;
    uint64_t t0;
    int fd, fd2;

    (void)state;
    probe = tpt_probe_new(rt, false);
    l = listen_proxy(rt, true);
    t0 = tnet_ms();
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, "PROXY TCP4 ", 11); /* and nothing more */
    closed_soon(fd, 20000);
    assert_true(tnet_ms() - t0 >= TP__PROXY_TIMEOUT_MS - 100);
    close(fd);
    fd2 = tnet_connect("127.0.0.1", tp_listener_port(l));
    tpt_sleep_ms(50);
    tp_listener_close(l);
    closed_soon(fd2, 5000);
    close(fd2);
    tpt_probe_free(probe);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_parse),
        cmocka_unit_test(test_proxy_listener),
        cmocka_unit_test(test_proxy_header_deadline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
