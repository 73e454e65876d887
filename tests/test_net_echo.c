/*
 * tests/test_net_echo.c - listeners and connection actors over loopback:
 * echo round trips of 1 B to 8 MiB (IPv4, IPv6, Unix), many concurrent
 * connections spread over the loops, sends from an actor on another
 * scheduler (the command-queue path) and blob broadcast, outbound
 * connects (success, refused, timeout, owner death), read modes.
 */
#include "test_net_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void
fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static void
echo_sizes(int fd)
{
    static const size_t sizes[] = {
        1, 2, 100, 1500, 4096, 65535, 65536, 65537, 200000, 1u << 20, 8u << 20};
    uint8_t *out = malloc(8u << 20), *in = malloc(8u << 20);

    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        fill_pattern(out, n, (unsigned)i);
        memset(in, 0, n);
        assert_int_equal(tnet_echo_roundtrip(fd, out, in, n, 20000), n);
        assert_memory_equal(in, out, n);
    }
    free(out);
    free(in);
}

static void
test_net_echo_sizes_1b_to_8mib(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    struct ev_opened *op;
    const tp_tcp_closed *cl;
    tpt_rec r;
    int fd;

    (void)state;
    assert_true(tp_listener_port(l) != 0);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    op = (struct ev_opened *)r.data;
    assert_true(op->self_ok);
    assert_int_equal(op->o.peer.family, TP_NET_INET);
    getsockname(fd, (struct sockaddr *)&me, &len);
    assert_int_equal(op->o.peer.port, ntohs(me.sin_port));
    assert_int_equal(op->o.local.port, tp_listener_port(l));
    echo_sizes(fd);
    close(fd);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    cl = tnet_closed_of(&r);
    assert_int_equal(cl->reason, TP_NET_CLOSE_PEER);
    assert_true(cl->bytes_in == cl->bytes_out && cl->bytes_in > (9u << 20));
    /* exit_on_close: the actor ends normally once told. */
    tnet_expect(p, EV_TERMINATE, 5000, &r);
    assert_int_equal(tnet_int_of(&r), TP_EXIT_NORMAL);
    assert_int_equal(tp_listener_close(l), 0);
    assert_int_equal(tp_listener_close(l), -EINVAL);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
echo_small(int fd)
{
    uint8_t out[1000], in[1000];

    fill_pattern(out, sizeof(out), 7);
    assert_int_equal(tnet_echo_roundtrip(fd, out, in, sizeof(out), 5000),
                     sizeof(out));
    assert_memory_equal(in, out, sizeof(out));
}

static void
test_net_echo_ipv6(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    tp_listen_opts o;
    tp_listener *l;
    tp_listener_info info;
    int fd;

    (void)state;
    tnet_opts(&o, &cfg);
    o.address = "::1";
    l = tnet_listen(rt, &cfg, &o);
    tp_listener_get_info(l, &info);
    assert_int_equal(info.addr.family, TP_NET_INET6);
    assert_string_equal(info.state, "listening");
    fd = tnet_connect("::1", tp_listener_port(l));
    echo_small(fd);
    close(fd);
    tpt_finish(rt);
}

static void
test_net_echo_unix(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    char dir[] = "/tmp/tp-net-XXXXXX", path[128];
    tp_listen_opts o;
    tp_listener *l = NULL, *l2 = NULL;
    struct stat st;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/echo.sock", dir);
    tnet_opts(&o, &cfg);
    o.path = path;
    assert_int_equal(tp_unix_listen(rt, &o, &l), 0);
    assert_int_equal(tp_listener_port(l), 0);
    /* The path is taken: a second listener is refused. */
    assert_int_equal(tp_unix_listen(rt, &o, &l2), -EADDRINUSE);
    for (int i = 0; i < 4; i++) {
        fd = tnet_connect_unix(path);
        echo_small(fd);
        close(fd);
    }
    assert_int_equal(tp_listener_close(l), 0);
    assert_int_equal(stat(path, &st), -1); /* removed */
    rmdir(dir);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */

static int
connect_async(uint16_t port)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    tnet_loopback(&in, port);
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0)
        assert_int_equal(errno, EINPROGRESS);
    return fd;
}

struct sched_seen {
    int seen[8];
    int n;
};

static bool
count_sched(void *user, const tp_conn_info *ci)
{
    struct sched_seen *s = user;

    if (ci->scheduler >= 0 && ci->scheduler < 8)
        s->seen[ci->scheduler]++;
    s->n++;
    assert_true(ci->pid != TP_PID_NONE);
    assert_int_equal(ci->peer.family, TP_NET_INET);
    assert_int_equal(ci->local.family, TP_NET_INET);
    return true;
}

/* Every client sends 64 bytes and expects them back, all at once. */
static void
many_roundtrips(int *fds, int n)
{
    struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
    int *got = calloc((size_t)n, sizeof(int)), done = 0;
    uint8_t msg[64];
    uint64_t deadline = tnet_ms() + 20000u * tpt_slow();

    memset(msg, 'x', sizeof(msg));
    for (int i = 0; i < n; i++) {
        struct pollfd w = {fds[i], POLLOUT, 0};
        assert_int_equal(poll(&w, 1, 10000 * (int)tpt_slow()), 1); /* up */
        assert_int_equal(send(fds[i], msg, sizeof(msg), 0), 64);
        pf[i].fd = fds[i];
        pf[i].events = POLLIN;
    }
    while (done < n && tnet_ms() < deadline) {
        if (poll(pf, (nfds_t)n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            uint8_t buf[64];
            ssize_t r;
            if (!(pf[i].revents & POLLIN))
                continue;
            r = recv(fds[i], buf, sizeof(buf), 0);
            assert_true(r > 0);
            got[i] += (int)r;
            if (got[i] == 64) {
                done++;
                pf[i].fd = -1;
            }
        }
    }
    assert_int_equal(done, n);
    free(pf);
    free(got);
}

static void
test_net_many_concurrent_connections(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    int n = (int)(500 * tpt_scale());
    int *fds = calloc((size_t)n, sizeof(int));
    struct sched_seen seen = {{0}, 0};
    tp_listener_info info;
    uint64_t deadline;

    (void)state;
    for (int i = 0; i < n; i++)
        fds[i] = connect_async(tp_listener_port(l));
    many_roundtrips(fds, n);
    tp_listener_get_info(l, &info);
    assert_int_equal(info.accepted, (uint64_t)n);
    assert_int_equal(info.conns, (uint64_t)n);
    assert_int_equal(atomic_load(&cfg.live), n);
    tp_net_conn_foreach(rt, count_sched, &seen);
    assert_int_equal(seen.n, n);
    /* SO_REUSEPORT spread the accepts over both loops. */
    print_message("accepted per loop: %d %d\n", seen.seen[0], seen.seen[1]);
    assert_true(seen.seen[0] > 0 && seen.seen[1] > 0);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    deadline = tnet_ms() + 10000u * tpt_slow();
    while (atomic_load(&cfg.live) > 0 && tnet_ms() < deadline)
        tpt_sleep_ms(5);
    assert_int_equal(atomic_load(&cfg.live), 0);
    tp_listener_get_info(l, &info);
    assert_int_equal(info.conns, 0);
    free(fds);
    tpt_finish(rt);
}

static bool
find_listener(void *user, const tp_listener_info *li)
{
    uint16_t *port = user;

    if (li->addr.port == *port && strcmp(li->state, "listening") == 0)
        *port = 0;
    return true;
}

static void
test_net_listener_port_and_addrinuse(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL), *l2 = NULL;
    tp_listen_opts o;
    tp_net_stats ns;
    uint16_t port = tp_listener_port(l);
    tp_net_addr a;
    char text[TP_NET_ADDR_TEXT];

    (void)state;
    tnet_opts(&o, &cfg);
    o.port = port;
    assert_int_equal(tp_tcp_listen(rt, &o, &l2), -EADDRINUSE);
    o.behaviour = NULL;
    assert_int_equal(tp_tcp_listen(rt, &o, &l2), -EINVAL);
    tnet_opts(&o, &cfg);
    o.address = "not-an-address";
    assert_int_equal(tp_tcp_listen(rt, &o, &l2), -EINVAL);
    tp_listener_address(l, &a);
    tp_net_addr_format(&a, text, sizeof(text));
    assert_true(strncmp(text, "127.0.0.1:", 10) == 0);
    tp_net_listener_foreach(rt, find_listener, &port);
    assert_int_equal(port, 0);
    tp_net_get_stats(rt, &ns);
    assert_int_equal(ns.listeners, 1);
    tp_listener_close(l);
    tp_net_get_stats(rt, &ns);
    assert_int_equal(ns.listeners, 0);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Another scheduler's actor writes (command path), blobs                  */

struct remote_send {
    tp_conn conn;
    int n;
    int result;
};

static void
remote_send_fn(tp_ctx *ctx, void *arg)
{
    struct remote_send *rs = arg;
    char line[32];

    rs->result = tp_ctx_scheduler(ctx);
    for (int i = 0; i < rs->n; i++) {
        int len = snprintf(line, sizeof(line), "%08d\n", i);
        if (tp_tcp_send(ctx, rs->conn, line, (size_t)len) < 0)
            rs->result = -1;
    }
}

struct blob_send {
    tp_conn conns[8];
    int n;
    tp_blob *blob;
    int errors;
};

static void
blob_send_fn(tp_ctx *ctx, void *arg)
{
    struct blob_send *bs = arg;

    for (int i = 0; i < bs->n; i++)
        bs->errors += tp_tcp_send_blob(ctx, bs->conns[i], bs->blob) != 0;
}

static void
test_net_send_from_other_scheduler_and_blob(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tpt_probe *far = tpt_probe_new_pinned(rt, false, 1);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p)};
    struct remote_send rs = {0, 2000, 0};
    struct blob_send bs = {{0}, 4, NULL, 0};
    char *buf = malloc(2000 * 9), expect[16];
    int fds[4];
    tp_listen_opts o;
    tp_listener *l;
    tpt_rec r;

    (void)state;
    tnet_opts(&o, &cfg);
    o.loops = 1;  /* accepted by scheduler 0 ... */
    o.pin = true; /* ... and the actors stay there */
    l = tnet_listen(rt, &cfg, &o);
    for (int i = 0; i < 4; i++) {
        fds[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_expect(p, EV_OPENED, 5000, &r);
        bs.conns[i] = ((struct ev_opened *)r.data)->o.conn;
    }
    /* 2,000 small writes from scheduler 1 arrive complete and in order. */
    rs.conn = bs.conns[0];
    tpt_probe_do(far, remote_send_fn, &rs);
    assert_int_equal(rs.result, 1);
    assert_int_equal(tnet_read_n(fds[0], buf, 2000 * 9, 10000), 2000 * 9);
    for (int i = 0; i < 2000; i++) {
        snprintf(expect, sizeof(expect), "%08d\n", i);
        assert_memory_equal(buf + i * 9, expect, 9);
    }
    /* One blob to every connection, no copy per connection. */
    bs.blob = tp_blob_new(NULL, 100000);
    fill_pattern(tp_blob_mutable_data(bs.blob), 100000, 3);
    tpt_probe_do(far, blob_send_fn, &bs);
    assert_int_equal(bs.errors, 0);
    for (int i = 0; i < 4; i++) {
        uint8_t *in = malloc(100000);
        assert_int_equal(tnet_read_n(fds[i], in, 100000, 10000), 100000);
        assert_memory_equal(in, tp_blob_data(bs.blob), 100000);
        free(in);
        close(fds[i]);
    }
    tp_blob_unref(bs.blob);
    free(buf);
    tpt_probe_free(far);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Outbound connections                                                   */

static void
send_fn(tp_ctx *ctx, void *arg)
{
    struct tnet_conn_req *cr = arg;

    cr->result = tp_tcp_send(ctx, cr->conn, "hello", 5);
}

static void
close_fn(tp_ctx *ctx, void *arg)
{
    struct tnet_conn_req *cr = arg;

    cr->result = tp_tcp_close(ctx, cr->conn);
}

static void
test_net_connect_echo_and_close(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *server = tpt_probe_new(rt, false);
    tpt_probe *client = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(server), .echo = true};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    struct tnet_conn_req cr;
    tp_tcp_connected *cd;
    tpt_rec r;

    (void)state;
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = tp_listener_port(l);
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, 0);
    /* Sends made before the connection is up are queued. */
    tpt_probe_do(client, send_fn, &cr);
    assert_int_equal(cr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    cd = (tp_tcp_connected *)r.data;
    assert_int_equal(cd->error, 0);
    assert_true(cd->conn == cr.conn && r.ref == cr.conn);
    assert_int_equal(cd->peer.port, tp_listener_port(l));
    tnet_expect(client, TP_MSG_TCP_DATA, 5000, &r);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hello", 5);
    tnet_expect(server, EV_OPENED, 5000, NULL);
    tpt_probe_do(client, close_fn, &cr);
    assert_int_equal(cr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
    tnet_expect(server, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
    /* The handle is dead now. */
    tpt_probe_do(client, send_fn, &cr);
    assert_int_equal(cr.result, -ENOTCONN);
    tpt_probe_free(client);
    tpt_probe_free(server);
    tpt_finish(rt);
}

/* A listening socket whose backlog is full: further SYNs are dropped, so
 * a connect neither succeeds nor fails until its timeout. */
static int
full_backlog(uint16_t *port, int *extra, int nextra)
{
    struct sockaddr_in in;
    int fd = tnet_raw_listener(port, 0);

    tnet_loopback(&in, *port);
    struct pollfd pf[8];

    assert_true(nextra <= 8);
    for (int i = 0; i < nextra; i++) {
        extra[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(extra[i], (struct sockaddr *)&in, sizeof(in));
        pf[i] = (struct pollfd){extra[i], POLLOUT, 0};
    }
    /* Full once one of them is established (backlog 0: one in the accept
     * queue); the others' SYNs are dropped. */
    assert_true(poll(pf, (nfds_t)nextra, 5000 * (int)tpt_slow()) > 0);
    return fd;
}

static void
test_net_connect_unix(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *client = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.echo = true};
    char dir[] = "/tmp/tp-net-XXXXXX", path[128];
    struct tnet_conn_req cr;
    tp_listen_opts o;
    tp_listener *l = NULL;
    tpt_rec r;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.sock", dir);
    tnet_opts(&o, &cfg);
    o.path = path;
    assert_int_equal(tp_unix_listen(rt, &o, &l), 0);
    tp_connect_opts_init(&cr.o);
    cr.o.path = path;
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, 0);
    tpt_probe_do(client, send_fn, &cr);
    tnet_expect(client, TP_MSG_TCP_DATA, 5000, &r);
    assert_memory_equal(r.data, "hello", 5);
    /* A path nobody listens on fails at once. */
    snprintf(path, sizeof(path), "%s/none.sock", dir);
    tpt_probe_do(client, tnet_connect_fn, &cr);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, -ENOENT);
    tp_listener_close(l);
    rmdir(dir);
    tpt_probe_free(client);
    tpt_finish(rt);
}

static void
test_net_connect_refused_and_timeout(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *client = tpt_probe_new(rt, false);
    struct tnet_conn_req cr;
    int extra[4], lfd;
    uint16_t port;
    uint64_t t0;
    tpt_rec r;

    (void)state;
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = tnet_closed_port();
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, -ECONNREFUSED);
    /* Bad addresses fail at once. */
    cr.o.address = "localhost";
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, -EINVAL);
    /* A connect that hangs ends at its timeout. */
    lfd = full_backlog(&port, extra, 4);
    cr.o.address = "127.0.0.1";
    cr.o.port = port;
    cr.o.timeout_ms = 300;
    t0 = tnet_ms();
    tpt_probe_do(client, tnet_connect_fn, &cr);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    print_message("connect result %d after %llu ms\n",
                  ((tp_tcp_connected *)r.data)->error,
                  (unsigned long long)(tnet_ms() - t0));
    assert_int_equal(((tp_tcp_connected *)r.data)->error, -ETIMEDOUT);
    assert_true(tnet_ms() - t0 >= 300);
    for (int i = 0; i < 4; i++)
        close(extra[i]);
    close(lfd);
    tpt_probe_free(client);
    tpt_finish(rt);
}

static void
test_net_connect_owner_death_closes(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *server = tpt_probe_new(rt, false);
    tpt_probe *client = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(server)};
    tp_listener *l = tnet_listen(rt, &cfg, NULL);
    struct tnet_conn_req cr;
    tpt_rec r;

    (void)state;
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = tp_listener_port(l);
    tpt_probe_do(client, tnet_connect_fn, &cr);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    tnet_expect(server, EV_OPENED, 5000, NULL);
    tpt_probe_free(client); /* kills the owner */
    tnet_expect(server, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
    tpt_probe_free(server);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Read modes                                                             */

static void
read_mode_case(tp_read_mode mode)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .report_data = true};
    tp_listen_opts o;
    tp_listener *l;
    tp_pid actor;
    tpt_rec r;
    int fd;

    tnet_opts(&o, &cfg);
    o.conn.read_mode = mode;
    l = tnet_listen(rt, &cfg, &o);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_expect(p, EV_OPENED, 5000, &r);
    actor = r.from;
    tnet_write_all(fd, "one", 3);
    if (mode == TP_READ_ONCE) {
        tnet_expect(p, EV_DATA, 5000, &r);
        assert_int_equal(((struct ev_data *)r.data)->len, 3);
    }
    tpt_sleep_ms(50);
    tnet_write_all(fd, "two", 3);
    /* Nothing more arrives until the actor asks for it. */
    assert_int_equal(tpt_probe_wait(p, EV_DATA, 300, NULL), -ETIMEDOUT);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_ACTIVATE, NULL, 0), 0);
    tnet_expect(p, EV_DATA, 5000, &r);
    assert_true(((struct ev_data *)r.data)->len >= 3);
    close(fd);
    /* Like a passive socket, the end of the stream is seen by the next
     * read the actor asks for. */
    assert_int_equal(tpt_probe_wait(p, EV_CLOSED, 200, NULL), -ETIMEDOUT);
    assert_int_equal(tp_runtime_send(rt, actor, CMD_ACTIVATE, NULL, 0), 0);
    tnet_expect(p, EV_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_net_read_once(void **state)
{
    (void)state;
    read_mode_case(TP_READ_ONCE);
}

static void
test_net_read_passive(void **state)
{
    (void)state;
    read_mode_case(TP_READ_PASSIVE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_echo_sizes_1b_to_8mib),
        cmocka_unit_test(test_net_echo_ipv6),
        cmocka_unit_test(test_net_echo_unix),
        cmocka_unit_test(test_net_many_concurrent_connections),
        cmocka_unit_test(test_net_listener_port_and_addrinuse),
        cmocka_unit_test(test_net_send_from_other_scheduler_and_blob),
        cmocka_unit_test(test_net_connect_echo_and_close),
        cmocka_unit_test(test_net_connect_unix),
        cmocka_unit_test(test_net_connect_refused_and_timeout),
        cmocka_unit_test(test_net_connect_owner_death_closes),
        cmocka_unit_test(test_net_read_once),
        cmocka_unit_test(test_net_read_passive),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
