/*
 * bench/loadgen.c - closed-loop TCP load generator and idle-connection
 * meter, in its own process, for any echo server (Troupe's and the
 * peers'). Plain epoll; knows nothing of Troupe.
 *
 * Echo mode (default):
 *   loadgen --port=P [--conns=100] [--size=64] [--duration=5] [--warmup=1]
 *           [--threads=1]
 *   Each connection sends a message of `size` bytes, waits until the same
 *   bytes came back (checked), records the round trip and sends the next:
 *   one request in flight per connection. After `warmup` seconds it counts
 *   for `duration` seconds:
 *     RESULT echo.rps <requests per second> req/s
 *     RESULT echo.p50_us / echo.p99_us <latency percentiles> us
 *
 * Idle mode:
 *   loadgen --port=P --idle=15000 --pid=SERVER_PID [--settle=2000]
 *   Reads the server's resident set (VmRSS) and the kernel's slab memory,
 *   opens `idle` connections that never send, waits `settle` ms, reads them
 *   again, then checks that 100 of the connections are really served (one
 *   echo each, after the measurement):
 *     RESULT idle_conns.bytes_per_conn <server RSS growth / connections> B
 *     RESULT idle_conns.kernel_bytes_per_conn <slab + socket buffers
 *            growth / connections, both ends, whole system> B
 *
 * Exit status 1 when a check fails (a wrong echo, a connection that could
 * not be opened, fewer than 100 served in idle mode).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE (1u << 20)

struct opts {
    int port, conns, size, duration, warmup, threads, idle, pid, settle;
};

static struct opts O = {0, 100, 64, 5, 1, 1, 0, 0, 2000};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long
opt(int argc, char **argv, const char *name, long def)
{
    size_t n = strlen(name);

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0 &&
            strncmp(argv[i] + 2, name, n) == 0 && argv[i][2 + n] == '=')
            return strtol(argv[i] + 3 + n, NULL, 10);
    }
    return def;
}

static void
result(const char *name, double v, const char *unit)
{
    printf("RESULT %s %.6g %s\n", name, v, unit);
    fflush(stdout);
}

static int
connect_nb(int port)
{
    struct sockaddr_in in;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens n connections, at most 512 connecting at once. Returns how many
 * are established (their fds in fds[]). */
static int
open_many(int *fds, int n)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), started = 0, done = 0, busy = 0;
    struct epoll_event evs[256];

    while (done < n) {
        while (started < n && busy < 512) {
            struct epoll_event ev = {.events = EPOLLOUT};
            int fd = connect_nb(O.port);
            if (fd < 0)
                return done;
            ev.data.u32 = (uint32_t)started;
            fds[started++] = fd;
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            busy++;
        }
        int k = epoll_wait(ep, evs, 256, 5000);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            int fd = fds[evs[i].data.u32], err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            busy--;
            if (err != 0) {
                fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
                close(ep);
                return done;
            }
            done++;
        }
    }
    close(ep);
    return done;
}

/* ---------------------------------------------------------------------- */
/* Echo mode                                                              */

struct conn {
    int fd;
    uint32_t sent, got; /* bytes of the current request */
    uint64_t t0;        /* when it was sent */
    uint32_t seq;
};

struct worker {
    pthread_t th;
    int first, n; /* its connections */
    int *fds;
    uint64_t start_ns, end_ns; /* measurement window */
    uint64_t done;             /* requests completed in the window */
    uint32_t *lat;             /* round trips in the window, ns / 16 */
    size_t nlat, cap;
    bool bad;
};

static void
fill(uint8_t *p, uint32_t seq)
{
    for (int i = 0; i < O.size; i++)
        p[i] = (uint8_t)(seq * 31u + (unsigned)i);
}

static bool
send_req(struct conn *c, uint8_t *buf)
{
    ssize_t w;

    fill(buf, c->seq);
    c->t0 = now_ns();
    c->got = 0;
    w = send(c->fd, buf, (size_t)O.size, MSG_NOSIGNAL);
    if (w != O.size) /* 64 bytes into an empty socket: never partial */
        return false;
    c->sent = (uint32_t)w;
    return true;
}

static void
record(struct worker *w, uint64_t t, uint64_t ns)
{
    if (t < w->start_ns || t >= w->end_ns)
        return;
    w->done++;
    if (w->nlat == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1 << 16;
        w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
    }
    w->lat[w->nlat++] = (uint32_t)(ns / 16 > UINT32_MAX ? UINT32_MAX : ns / 16);
}

/* Reads what arrived on c; when the whole echo is back, checks it, records
 * it and sends the next request. */
static bool
on_readable(struct worker *w, struct conn *c, uint8_t *in, uint8_t *out)
{
    ssize_t r = recv(c->fd, in + c->got, (size_t)O.size - c->got, 0);
    uint64_t t;

    if (r <= 0)
        return r < 0 && (errno == EAGAIN || errno == EINTR);
    c->got += (uint32_t)r;
    if (c->got < (uint32_t)O.size)
        return true;
    t = now_ns();
    fill(out, c->seq);
    if (memcmp(in, out, (size_t)O.size) != 0)
        return false;
    record(w, t, t - c->t0);
    c->seq++;
    return send_req(c, out);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct conn *cs = calloc((size_t)w->n, sizeof(*cs));
    uint8_t *in = malloc(MAX_SIZE), *out = malloc(MAX_SIZE);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[512];

    for (int i = 0; i < w->n && !w->bad; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        cs[i].fd = w->fds[w->first + i];
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        w->bad = !send_req(&cs[i], out);
    }
    while (!w->bad && now_ns() < w->end_ns) {
        int k = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < k && !w->bad; i++)
            w->bad = !on_readable(w, &cs[evs[i].data.u32], in, out);
    }
    if (w->bad)
        fprintf(stderr, "loadgen: a connection failed or echoed wrong bytes\n");
    close(ep);
    free(cs);
    free(in);
    free(out);
    return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static int
echo_mode(void)
{
    int *fds = calloc((size_t)O.conns, sizeof(int)), per, bad = 0;
    struct worker *ws = calloc((size_t)O.threads, sizeof(*ws));
    uint64_t t0, done = 0;
    uint32_t *all;
    size_t n = 0;

    if (open_many(fds, O.conns) != O.conns) {
        fprintf(stderr, "loadgen: could not open %d connections\n", O.conns);
        return 1;
    }
    t0 = now_ns();
    per = (O.conns + O.threads - 1) / O.threads;
    for (int i = 0; i < O.threads; i++) {
        ws[i].fds = fds;
        ws[i].first = i * per;
        ws[i].n = i * per + per > O.conns ? O.conns - i * per : per;
        ws[i].start_ns = t0 + (uint64_t)O.warmup * 1000000000ull;
        ws[i].end_ns = ws[i].start_ns + (uint64_t)O.duration * 1000000000ull;
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    for (int i = 0; i < O.threads; i++) {
        pthread_join(ws[i].th, NULL);
        done += ws[i].done;
        n += ws[i].nlat;
        bad |= ws[i].bad;
    }
    all = malloc((n ? n : 1) * sizeof(*all));
    n = 0;
    for (int i = 0; i < O.threads; i++) {
        memcpy(all + n, ws[i].lat, ws[i].nlat * sizeof(*all));
        n += ws[i].nlat;
        free(ws[i].lat);
    }
    qsort(all, n, sizeof(*all), cmp_u32);
    result("echo.rps", (double)done / O.duration, "req/s");
    if (n > 0) {
        result("echo.p50_us", all[n / 2] * 16 / 1000.0, "us");
        result("echo.p99_us", all[n * 99 / 100] * 16 / 1000.0, "us");
    }
    result("echo.conns", O.conns, "conns");
    for (int i = 0; i < O.conns; i++)
        close(fds[i]);
    return bad || n == 0;
}

/* ---------------------------------------------------------------------- */
/* Idle mode                                                              */

static long
status_kb(const char *path, const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, n) == 0) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long
server_rss_kb(void)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/status", O.pid);
    return status_kb(path, "VmRSS:");
}

/* Kernel memory that sockets use: slab (socket structs, buffers' heads)
 * plus TCP buffer pages, in KiB. */
static long
kernel_kb(void)
{
    long slab = status_kb("/proc/meminfo", "Slab:");
    long pages = 0;
    char line[256];
    FILE *f = fopen("/proc/net/sockstat", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *m = strstr(line, " mem ");
        if (strncmp(line, "TCP:", 4) == 0 && m != NULL)
            pages = strtol(m + 5, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return slab + pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One echo on each of the first k connections. Returns how many came
 * back within a second each. */
static int
check_served(int *fds, int k)
{
    int ok = 0;

    for (int i = 0; i < k; i++) {
        char c = 'x', r = 0;
        uint64_t end = now_ns() + 1000000000ull;
        if (send(fds[i], &c, 1, MSG_NOSIGNAL) != 1)
            continue;
        while (now_ns() < end) {
            if (recv(fds[i], &r, 1, MSG_DONTWAIT) == 1) {
                ok += r == 'x';
                break;
            }
            usleep(200);
        }
    }
    return ok;
}

static int
idle_mode(void)
{
    int *fds = calloc((size_t)O.idle, sizeof(int)), opened, served;
    long rss0, rss1, k0, k1;

    if (O.pid <= 0 || (rss0 = server_rss_kb()) < 0) {
        fprintf(stderr, "loadgen: --idle needs --pid of a running server\n");
        return 1;
    }
    k0 = kernel_kb();
    opened = open_many(fds, O.idle);
    usleep((useconds_t)O.settle * 1000u);
    rss1 = server_rss_kb();
    k1 = kernel_kb();
    served = check_served(fds, opened < 100 ? opened : 100);
    result("idle_conns.conns", opened, "conns");
    result("idle_conns.bytes_per_conn",
           (double)(rss1 - rss0) * 1024.0 / (opened ? opened : 1), "B");
    result("idle_conns.kernel_bytes_per_conn",
           (double)(k1 - k0) * 1024.0 / (opened ? opened : 1), "B");
    result("idle_conns.server_rss_mb", rss1 / 1024.0, "MB");
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    if (opened != O.idle || served < (opened < 100 ? opened : 100)) {
        fprintf(stderr, "loadgen: %d/%d opened, %d/100 served\n", opened,
                O.idle, served);
        return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct rlimit rl;

    O.port = (int)opt(argc, argv, "port", 0);
    O.conns = (int)opt(argc, argv, "conns", O.conns);
    O.size = (int)opt(argc, argv, "size", O.size);
    O.duration = (int)opt(argc, argv, "duration", O.duration);
    O.warmup = (int)opt(argc, argv, "warmup", O.warmup);
    O.threads = (int)opt(argc, argv, "threads", O.threads);
    O.idle = (int)opt(argc, argv, "idle", 0);
    O.pid = (int)opt(argc, argv, "pid", 0);
    O.settle = (int)opt(argc, argv, "settle", O.settle);
    if (O.port <= 0 || O.conns <= 0 || O.size <= 0 || O.size > (int)MAX_SIZE ||
        O.duration <= 0 || O.threads <= 0 || O.threads > O.conns) {
        fprintf(stderr, "usage: loadgen --port=P [--conns=N] [--size=B] "
                        "[--duration=S] [--warmup=S] [--threads=T]\n"
                        "       loadgen --port=P --idle=N --pid=PID\n");
        return 2;
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    return O.idle > 0 ? idle_mode() : echo_mode();
}
