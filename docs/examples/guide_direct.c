/*
 * docs/examples/guide_direct.c - docs/GUIDE.md, "Direct style": the same
 * echo handler as a callback and as straight-line code, and a protocol
 * with steps (a login within 5 s, then lines). main() serves each on a
 * free port and talks to it like a client would.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <troupe.h>
#include <unistd.h>

/* ---- callback --------------------------------------------------------- */

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_conn = {
    .name = "echo.conn",
    .handle = echo_handle,
};

/* ---- direct ----------------------------------------------------------- */

static void
echo_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    tp_conn conn;

    (void)state;
    (void)arg;
    tp_receive(ctx, &m, -1); /* TP_MSG_TCP_OPENED always comes first */
    conn = tp_msg_conn(m);
    /* > 0: a DATA message (valid until the next read); 0: closed. */
    while (tp_tcp_recv_msg(ctx, conn, &m, -1) > 0)
        tp_tcp_send(ctx, conn, m->data, m->len);
}

static const tp_direct echo_direct = {
    TP_DIRECT_BEHAVIOUR("echo.conn", 0),
    .main = echo_main,
    .stack = TP_STACK_COPIED,
};

/* ---- a protocol with steps -------------------------------------------- */

static bool
check_login(const char *buf, int n)
{
    return n >= 6 && memcmp(buf, "LOGIN ", 6) == 0;
}

static void
serve(tp_ctx *ctx, tp_conn conn, const char *buf, int n)
{
    tp_tcp_send(ctx, conn, "> ", 2);
    tp_tcp_send(ctx, conn, buf, (size_t)n);
}

static void
login_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    tp_conn conn;

    (void)state;
    (void)arg;
    tp_receive(ctx, &m, -1);
    conn = tp_msg_conn(m);
    char buf[256];
    int n = tp_tcp_recv(ctx, conn, buf, sizeof(buf), 5000);

    if (n <= 0 || !check_login(buf, n))
        return; /* the connection closes with it */
    while ((n = tp_tcp_recv(ctx, conn, buf, sizeof(buf), 60000)) > 0)
        serve(ctx, conn, buf, n);
}

static const tp_direct login = {
    TP_DIRECT_BEHAVIOUR("login", 0),
    .main = login_main,
    .stack = TP_STACK_COPIED,
};

/* ---- main: serve, then be a client ------------------------------------ */

static int
dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    return fd;
}

/* Sends line, reads n bytes back into out (NUL-terminated). */
static void
ask(int fd, const char *line, char *out, size_t n)
{
    size_t got = 0;
    ssize_t r;

    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
        return;
    while (got < n && (r = read(fd, out + got, n - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
}

static int
listen_with(tp_runtime *rt, const tp_behaviour *b, tp_listener **l)
{
    tp_listen_opts lo;

    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = b;
    return tp_tcp_listen(rt, &lo, l);
}

int
main(void)
{
    tp_runtime *rt;
    tp_listener *cb, *direct, *steps;
    char got[64];
    int fd;

    if (tp_runtime_create(&rt, NULL) != 0 || tp_runtime_start(rt) != 0 ||
        listen_with(rt, &echo_conn, &cb) != 0 ||
        listen_with(rt, tp_direct_behaviour(&echo_direct), &direct) != 0 ||
        listen_with(rt, tp_direct_behaviour(&login), &steps) != 0)
        return 1;
    fd = dial(tp_listener_port(cb));
    ask(fd, "ping\n", got, 5);
    printf("callback echo: %s", got);
    close(fd);
    fd = dial(tp_listener_port(direct));
    ask(fd, "ping\n", got, 5);
    printf("direct echo: %s", got);
    close(fd);
    fd = dial(tp_listener_port(steps));
    if (write(fd, "LOGIN bob\n", 10) != 10)
        return 1;
    usleep(100000); /* the login is read on its own */
    ask(fd, "hello\n", got, 8);
    printf("after login: %s", got);
    close(fd);
    tp_runtime_destroy(rt);
    return 0;
}
