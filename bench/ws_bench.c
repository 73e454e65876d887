/*
 * bench/ws_bench.c - WebSocket connections of Troupe: echo messages per
 * second at 100 connections, and the memory of an idle WebSocket
 * connection next to a plain TCP one measured the same way.
 *
 *   ws_bench [--secs=3] [--conns=100] [--idle=2000] [--threads=4]
 *            [--size=64] [--schedulers=0] [--peer-port=P --peer-pid=PID]
 *
 * The server is a Troupe echo listener (ws) in this process; the clients
 * are blocking raw-socket clients in a forked child (one thread per share
 * of the connections, each keeping all its connections' messages in
 * flight at once). Idle memory: growth of this process's heap (mallinfo2,
 * every arena) while the child holds `idle` upgraded connections that
 * each echoed one message, divided by their number. The WebSocket round
 * runs after the plain one and reuses its freed blocks, so its figure is
 * the extra cost over TCP; ws.state_bytes is sizeof the state it adds.
 * ws.idle_rss_bytes_per_conn is the resident set's growth for the
 * WebSocket round (page-granular, comparable with the peers).
 * ws.server_cpu_ns_per_msg is the server process's CPU time (user +
 * system, /proc/PID/stat) over the echo round divided by its echoes.
 *
 * With --peer-port the same clients measure another WebSocket echo server
 * on 127.0.0.1:P (bench/peers/node/ws_echo.js, go/wsecho,
 * python/ws_echo.py; bench/run_ws.sh runs them all) and the idle figure
 * is PID's resident set growth (no plain round).
 */
#include "benchutil.h"
#include "net/ws_int.h"

#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <troupe.h>
#include <unistd.h>

static uint16_t ws_port, tcp_port;
static long secs, size;
static bool plain_round = true;
static pid_t rss_pid;

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_WS_TEXT)
        tp_ws_send_text(ctx, tp_msg_conn(msg), msg->data, msg->len);
    else if (msg->type == TP_MSG_WS_BINARY)
        tp_ws_send_binary(ctx, tp_msg_conn(msg), msg->data, msg->len);
    else if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_behaviour = {.name = "ws_echo",
                                            .handle = echo_handle};

/* ---------------------------------------------------------------------- */
/* The client (child process)                                             */

static int
tcp_connect(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void
read_n(int fd, char *p, size_t n)
{
    for (size_t k = 0; k < n;) {
        ssize_t r = read(fd, p + k, n - k);
        if (r <= 0)
            exit(1);
        k += (size_t)r;
    }
}

static int
ws_connect(void)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    char head[512];
    size_t n = 0;
    int fd = tcp_connect(ws_port);

    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        exit(1);
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        read_n(fd, head + n, 1);
        if (++n >= sizeof(head))
            exit(1);
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        exit(1);
    return fd;
}

/* A masked text frame of `size` bytes (mask 0: the payload as is). */
static size_t
frame(char *out)
{
    size_t h = 2;

    out[0] = (char)0x81;
    if (size < 126) {
        out[1] = (char)(0x80 | size);
    } else {
        out[1] = (char)(0x80 | 126);
        out[2] = (char)(size >> 8);
        out[3] = (char)size;
        h = 4;
    }
    memset(out + h, 0, 4);
    memset(out + h + 4, 'm', (size_t)size);
    return h + 4 + (size_t)size;
}

static void
echo_one(int fd, const char *f, size_t fn)
{
    char r[70000];
    size_t h = size < 126 ? 2 : 4;

    if (write(fd, f, fn) != (ssize_t)fn)
        exit(1);
    read_n(fd, r, h + (size_t)size);
}

struct worker {
    pthread_t th;
    long conns, count;
};

static void *
echoes(void *arg)
{
    struct worker *w = arg;
    int *fds = calloc((size_t)w->conns, sizeof(int));
    char f[70000], r[70000];
    size_t fn = frame(f), h = size < 126 ? 2 : 4;
    uint64_t end;

    for (long i = 0; i < w->conns; i++)
        fds[i] = ws_connect();
    end = tpb_now_ns() + (uint64_t)secs * 1000000000ull;
    while (tpb_now_ns() < end) {
        for (long i = 0; i < w->conns; i++)
            if (write(fds[i], f, fn) != (ssize_t)fn)
                exit(1);
        for (long i = 0; i < w->conns; i++)
            read_n(fds[i], r, h + (size_t)size);
        w->count += w->conns;
    }
    for (long i = 0; i < w->conns; i++)
        close(fds[i]);
    free(fds);
    return NULL;
}

static long
run_workers(long threads, long conns)
{
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    long total = 0;

    for (long i = 0; i < threads; i++) {
        ws[i].conns = conns / threads + (i < conns % threads ? 1 : 0);
        pthread_create(&ws[i].th, NULL, echoes, &ws[i]);
    }
    for (long i = 0; i < threads; i++) {
        pthread_join(ws[i].th, NULL);
        total += ws[i].count;
    }
    free(ws);
    return total;
}

static void
idle(int to, int from, long n, bool ws)
{
    int *fds = calloc((size_t)n, sizeof(int));
    char f[70000], c = 0;
    size_t fn = frame(f);

    for (long i = 0; i < n; i++) {
        fds[i] = ws ? ws_connect() : tcp_connect(tcp_port);
        if (ws) {
            echo_one(fds[i], f, fn);
        } else {
            if (write(fds[i], "x", 1) != 1)
                exit(1);
            read_n(fds[i], f, 1);
        }
    }
    if (write(to, &c, 1) != 1 || read(from, &c, 1) != 1)
        exit(1);
    for (long i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
}

static void
child(int to, int from, long conns, long idle_n, long threads)
{
    long v = run_workers(threads, conns);
    char c;

    if (write(to, &v, sizeof(v)) != sizeof(v) || read(from, &c, 1) != 1)
        exit(1);
    if (plain_round)
        idle(to, from, idle_n, false);
    idle(to, from, idle_n, true);
    exit(0);
}

/* ---------------------------------------------------------------------- */
/* The server                                                             */

static int64_t
heap(void)
{
    struct mallinfo2 mi = mallinfo2();

    return (int64_t)(mi.uordblks + mi.hblkhd);
}

static int64_t
rss_of(pid_t pid)
{
    char path[64], line[256];
    long kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return (int64_t)kb * 1024;
}

/* CPU time (user + system) process pid has used, in ns. */
static double
cpu_ns_of(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends the name. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

static void
measure_idle(int to, int from, long n, const char *name, bool rss)
{
    int64_t before = heap(), rb = rss_of(rss_pid);
    char c = 1;

    if (read(from, &c, 1) != 1)
        exit(1);
    usleep(200000);
    if (name != NULL)
        tpb_result(name, (double)(heap() - before) / (double)n, "bytes");
    if (rss)
        tpb_result("ws.idle_rss_bytes_per_conn",
                   (double)(rss_of(rss_pid) - rb) / (double)n, "bytes");
    if (write(to, &c, 1) != 1)
        exit(1);
    usleep(300000);
}

static int
drive(long conns, long idle_n, long threads, bool troupe)
{
    int up[2], down[2], st;
    pid_t pid;
    char c = 0;
    long v;
    double cpu0;

    if (pipe(up) != 0 || pipe(down) != 0)
        return 1;
    fflush(stdout);
    cpu0 = cpu_ns_of(rss_pid);
    if ((pid = fork()) == 0)
        child(up[1], down[0], conns, idle_n, threads);
    if (read(up[0], &v, sizeof(v)) != sizeof(v))
        return 1;
    tpb_result("ws.echo_msgs_per_s", (double)v / (double)secs, "1/s");
    /* The server's CPU time per echo (its 100 connects included): what a
     * message costs it, whatever share of the CPUs the clients took. */
    tpb_result("ws.server_cpu_ns_per_msg",
               (cpu_ns_of(rss_pid) - cpu0) / (double)(v > 0 ? v : 1), "ns");
    if (write(down[1], &c, 1) != 1)
        return 1;
    if (plain_round)
        measure_idle(down[1], up[0], idle_n, "tcp.idle_bytes_per_conn", false);
    /* Measured after the TCP round, whose freed connection and actor
     * blocks it reuses: what a WebSocket connection costs on top. */
    measure_idle(down[1], up[0], idle_n,
                 !troupe       ? NULL
                 : plain_round ? "ws.idle_extra_bytes_per_conn"
                               : "ws.idle_bytes_per_conn",
                 true);
    if (troupe)
        tpb_result("ws.state_bytes", (double)tp__ws_state_size(), "bytes");
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int
troupe_server(long conns, long idle_n, long threads, unsigned nsched)
{
    tp_runtime_options ro;
    tp_listen_opts lo, po;
    tp_ws_opts wo;
    tp_runtime *rt;
    tp_listener *l, *pl;
    int err;

    tp_runtime_options_init(&ro);
    ro.schedulers = nsched;
    if ((err = tp_runtime_create(&rt, &ro)) != 0 ||
        (err = tp_runtime_start(rt)) != 0)
        return fprintf(stderr, "ws_bench: %s\n", tp_strerror(err)), 1;
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &echo_behaviour;
    po = lo;
    tp_ws_opts_init(&wo);
    lo.ws = &wo;
    if ((err = tp_tcp_listen(rt, &lo, &l)) != 0 ||
        (err = tp_tcp_listen(rt, &po, &pl)) != 0)
        return fprintf(stderr, "ws_bench: %s\n", tp_strerror(err)), 1;
    ws_port = tp_listener_port(l);
    tcp_port = tp_listener_port(pl);
    rss_pid = getpid();
    err = drive(conns, idle_n, threads, true);
    tp_runtime_destroy(rt);
    return err;
}

int
main(int argc, char **argv)
{
    long conns = tpb_opt(argc, argv, "conns", 100);
    long idle_n = tpb_opt(argc, argv, "idle", 2000);
    long threads = tpb_opt(argc, argv, "threads", 4);
    long peer = tpb_opt(argc, argv, "peer-port", 0);
    struct rlimit rl;

    secs = tpb_opt(argc, argv, "secs", 3);
    size = tpb_opt(argc, argv, "size", 64);
    plain_round = tpb_opt(argc, argv, "plain", 1) != 0 && peer == 0;
    if (size < 1 || size > 65535)
        return fprintf(stderr, "ws_bench: --size 1..65535\n"), 1;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (peer == 0)
        return troupe_server(conns, idle_n, threads,
                             (unsigned)tpb_opt(argc, argv, "schedulers", 0));
    ws_port = (uint16_t)peer;
    rss_pid = (pid_t)tpb_opt(argc, argv, "peer-pid", 0);
    return drive(conns, idle_n, threads, false);
}
