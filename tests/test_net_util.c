/*
 * tests/test_net_util.c - see test_net_util.h.
 */
#define _GNU_SOURCE /* memmem */
#include "test_net_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* The connection behaviour                                               */

static void
report(tp_ctx *ctx, struct tnet_state *st, uint32_t type, const void *p,
       size_t n)
{
    if (st->cfg->probe != TP_PID_NONE)
        tp_send(ctx, st->cfg->probe, type, p, n);
}

static int
tnet_init(tp_ctx *ctx, void *state, void *arg)
{
    struct tnet_state *st = state;

    (void)ctx;
    st->cfg = arg;
    atomic_fetch_add(&st->cfg->live, 1);
    return 0;
}

static void
on_data(tp_ctx *ctx, struct tnet_state *st, const tp_msg *m)
{
    struct tnet_cfg *cfg = st->cfg;
    tp_actor_info info;

    if (tp_actor_peek(tp_ctx_runtime(ctx), tp_self(ctx), &info) == 0 &&
        info.mailbox > atomic_load(&cfg->max_mailbox))
        atomic_store(&cfg->max_mailbox, info.mailbox);
    if (cfg->delay_us != 0)
        usleep(cfg->delay_us);
    st->total += m->len;
    atomic_fetch_add(&cfg->received, m->len);
    if (cfg->crash_on_data && m->len >= 5 &&
        memmem(m->data, m->len, "crash", 5))
        tp_fail(ctx, "asked to crash");
    if (cfg->echo)
        tp_tcp_send(ctx, tp_msg_conn(m), m->data, m->len);
    if (cfg->report_data) {
        struct ev_data d = {st->total, m->len, {0}};
        memcpy(d.head, m->data, m->len < 64 ? m->len : 64);
        report(ctx, st, EV_DATA, &d, sizeof(d));
    }
}

static void
flood(tp_ctx *ctx, struct tnet_state *st, uint32_t chunks)
{
    static char chunk[65536];
    int32_t last = 0;

    for (uint32_t i = 0; i < chunks && last >= 0; i++)
        last = tp_tcp_send(ctx, st->conn, chunk, sizeof(chunk));
    report(ctx, st, EV_OTHER, &last, sizeof(last));
}

static void
on_cmd(tp_ctx *ctx, struct tnet_state *st, const tp_msg *m)
{
    int32_t r = 0;

    switch (m->type) {
    case CMD_SEND:
        r = tp_tcp_send(ctx, st->conn, m->data, m->len);
        break;
    case CMD_CLOSE:
        r = tp_tcp_close(ctx, st->conn);
        break;
    case CMD_SHUTDOWN:
        r = tp_tcp_shutdown(ctx, st->conn);
        break;
    case CMD_ACTIVATE:
        r = tp_tcp_activate(ctx, st->conn);
        break;
    case CMD_FLOOD:
        flood(ctx, st, *(const uint32_t *)m->data);
        return;
    case CMD_CRASH:
        tp_fail(ctx, "asked to crash");
    default:
        return;
    }
    report(ctx, st, EV_OTHER, &r, sizeof(r));
}

static void
tnet_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct tnet_state *st = state;
    uint32_t t = m->type;

    switch (t) {
    case TP_MSG_TCP_OPENED: {
        struct ev_opened o;
        st->conn = tp_msg_conn(m);
        memcpy(&o.o, m->data, sizeof(o.o));
        o.self_ok = st->conn == tp_tcp_self(ctx) && st->conn == o.o.conn;
        report(ctx, st, EV_OPENED, &o, sizeof(o));
        break;
    }
    case TP_MSG_TCP_DATA:
        on_data(ctx, st, m);
        break;
    case TP_MSG_TCP_CLOSED:
        report(ctx, st, EV_CLOSED, m->data, m->len);
        break;
    case TP_MSG_TCP_WRITE_BLOCKED:
        report(ctx, st, EV_BLOCKED, m->data, m->len);
        break;
    case TP_MSG_TCP_DRAINED:
        report(ctx, st, EV_DRAINED, m->data, m->len);
        break;
    case TP_MSG_TCP_PEER_SHUTDOWN:
        report(ctx, st, EV_PEER_SHUT, &st->conn, sizeof(st->conn));
        break;
    case TP_MSG_TCP_DRAIN:
        report(ctx, st, EV_DRAIN, &st->conn, sizeof(st->conn));
        break;
    default:
        if (t >= CMD_SEND && t <= CMD_CRASH)
            on_cmd(ctx, st, m);
        else
            report(ctx, st, EV_OTHER, &t, sizeof(t));
        break;
    }
}

static void
tnet_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    struct tnet_state *st = state;
    int kind = (int)why->kind;

    atomic_fetch_sub(&st->cfg->live, 1);
    report(ctx, st, EV_TERMINATE, &kind, sizeof(kind));
}

const tp_behaviour tnet_behaviour = {
    .name = "tnet",
    .state_size = sizeof(struct tnet_state),
    .init = tnet_init,
    .handle = tnet_handle,
    .terminate = tnet_terminate,
};

void
tnet_opts(tp_listen_opts *o, struct tnet_cfg *cfg)
{
    tp_listen_opts_init(o);
    o->address = "127.0.0.1";
    o->port = 0;
    o->behaviour = &tnet_behaviour;
    o->arg = cfg;
}

tp_listener *
tnet_listen(tp_runtime *rt, struct tnet_cfg *cfg, tp_listen_opts *o)
{
    tp_listen_opts def;
    tp_listener *l = NULL;

    if (o == NULL) {
        tnet_opts(&def, cfg);
        o = &def;
    }
    assert_int_equal(tp_tcp_listen(rt, o, &l), 0);
    assert_non_null(l);
    return l;
}

/* ---------------------------------------------------------------------- */
/* Client sockets                                                         */

int
tnet_connect(const char *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd;

    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        len = sizeof(*in);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

int
tnet_connect_unix(const char *path)
{
    struct sockaddr_un su;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    snprintf(su.sun_path, sizeof(su.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&su, sizeof(su)), 0);
    return fd;
}

int
tnet_connect_rcvbuf(uint16_t port, int rcvbuf)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    tnet_loopback(&in, port);
    assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    return fd;
}

void
tnet_reset(int fd)
{
    struct linger lg = {1, 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

void
tnet_loopback(struct sockaddr_in *in, uint16_t port)
{
    memset(in, 0, sizeof(*in));
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

uint16_t
tnet_local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* A socket bound to 127.0.0.1, port 0. */
static int
bound_socket(void)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    tnet_loopback(&in, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    return fd;
}

uint16_t
tnet_closed_port(void)
{
    int fd = bound_socket();
    uint16_t port = tnet_local_port(fd);

    close(fd); /* nobody listens there now */
    return port;
}

int
tnet_raw_listener(uint16_t *port, int backlog)
{
    int fd = bound_socket();

    assert_int_equal(listen(fd, backlog), 0);
    *port = tnet_local_port(fd);
    return fd;
}

void
tnet_connect_fn(tp_ctx *ctx, void *arg)
{
    struct tnet_conn_req *cr = arg;

    cr->result = tp_tcp_connect(ctx, &cr->o, &cr->conn);
}

int
tnet_int_of(const tpt_rec *r)
{
    int32_t v;

    memcpy(&v, r->data, sizeof(v));
    return v;
}

const tp_tcp_closed *
tnet_closed_of(const tpt_rec *r)
{
    return (const tp_tcp_closed *)r->data;
}

bool
tnet_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

void
tnet_write_all(int fd, const void *p, size_t n)
{
    assert_true(tnet_send_all(fd, p, n));
}

uint64_t
tnet_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {fd, events, 0};
    uint64_t now = tnet_ms();

    if (now >= deadline)
        return 0;
    return poll(&p, 1, (int)(deadline - now));
}

size_t
tnet_read_n(int fd, void *p, size_t n, int timeout_ms)
{
    uint64_t deadline = tnet_ms() + (uint64_t)timeout_ms * tpt_slow();
    char *c = p;
    size_t got = 0;

    while (got < n) {
        ssize_t r;
        if (wait_fd(fd, POLLIN, deadline) <= 0)
            break;
        r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int
tnet_wait_eof(int fd, int timeout_ms)
{
    uint64_t deadline = tnet_ms() + (uint64_t)timeout_ms * tpt_slow();
    char buf[256];

    for (;;) {
        ssize_t r;
        if (wait_fd(fd, POLLIN, deadline) <= 0)
            return -ETIMEDOUT;
        r = read(fd, buf, sizeof(buf));
        if (r == 0)
            return 0;
        if (r < 0)
            return errno == EINTR ? 1 : -errno;
        return 1;
    }
}

size_t
tnet_echo_roundtrip(int fd, const uint8_t *out, uint8_t *in, size_t n,
                    int timeout_ms)
{
    uint64_t deadline = tnet_ms() + (uint64_t)timeout_ms * tpt_slow();
    size_t sent = 0, got = 0;

    while (got < n && tnet_ms() < deadline) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < n ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < n) {
            ssize_t w = send(fd, out + sent, n - sent, MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in + got, n - got, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (r > 0)
                got += (size_t)r;
        }
    }
    return got;
}

void
tnet_expect(tpt_probe *p, uint32_t type, int timeout_ms, tpt_rec *out)
{
    tpt_rec r;

    assert_int_equal(
        tpt_probe_wait(p, type, timeout_ms * (int)tpt_slow(), out ? out : &r),
        0);
}

uint64_t
tnet_rss(void)
{
    unsigned long long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

int
tnet_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}
