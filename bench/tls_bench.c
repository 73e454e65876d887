/*
 * bench/tls_bench.c - TLS connections of Troupe: full handshakes per
 * second, echo round trips per second at 100 connections, and the memory
 * of an idle TLS connection (and of a plain one, measured the same way).
 *
 *   tls_bench [--secs=3] [--conns=100] [--idle=2000] [--threads=4]
 *             [--schedulers=0] [--release=1] [--plain=1]
 *             [--peer-port=P --peer-pid=PID] [--resume=0] [--groups=LIST]
 *             [--tls12=0]
 *
 * The server is a Troupe echo listener in this process (a throwaway CA and
 * certificate are made with scripts/gen-test-ca.sh in a temporary
 * directory); the clients are blocking OpenSSL clients in a forked child
 * process, one thread per share of the connections. Idle memory is the
 * growth of this process's heap (mallinfo2: every arena) between before
 * the child opened its idle connections and after every one of them
 * finished its handshake and one echo, divided by their number. The TLS
 * round runs after the plain one and reuses its freed connection and
 * actor blocks, so its figure is the extra cost of TLS; OpenSSL's own
 * share is counted through its allocator hooks.
 * --release=0 turns SSL_MODE_RELEASE_BUFFERS off (the trade-off);
 * --plain=0 skips the plain round. The resident set's growth is given
 * too (tls.idle_rss_bytes_per_conn: page-granular, comparable with the
 * peers).
 *
 * tls.server_cpu_us_per_handshake / _per_echo: the server's CPU time
 * (user + system) over each phase divided by its count; on a shared
 * machine a steadier comparison than the rates.
 *
 * --resume=1: each client thread resumes the session of its first
 * handshake (a ticket) in all later ones (tls.resumed_fraction says how
 * many were); --groups=P-256 (or X25519, the default first choice) sets
 * the clients' key exchange; --tls12=1 makes them offer TLS 1.2 only
 * (a TLS 1.2 server connection keeps its SSL object).
 *
 * With --peer-port the same clients measure another TLS echo server on
 * 127.0.0.1:P (bench/peers/: Go crypto/tls, Node tls, Erlang ssl) and the
 * idle figure is PID's resident set growth.
 */
#include "benchutil.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <troupe.h>
#include <unistd.h>

static char dir[64];
static uint16_t port, plain_port;
static SSL_CTX *cctx; /* the child's */
static long secs;
static bool plain_round = true;
static bool resume;          /* --resume=1: resumed handshakes */
static bool tls12;           /* --tls12=1: the clients offer TLS 1.2 only */
static char groups[64] = ""; /* --groups=P-256: the client's key exchange */
static _Atomic long resumed;

/* OpenSSL's own live bytes (its allocator hooks, set before any use),
 * counted only while `ossl_counting` is on: around each idle round. The
 * growth over a window is what was allocated minus what was freed inside
 * it, whenever those blocks were made, so nothing outside a window needs
 * counting; outside one the hooks cost a relaxed load (counting on every
 * call, malloc_usable_size() and a shared atomic, was about 4% of the
 * server's CPU per handshake: bench/TLS.md). */
static _Atomic int64_t ossl_live;
static _Atomic bool ossl_counting;

static bool
counting(void)
{
    return atomic_load_explicit(&ossl_counting, memory_order_relaxed);
}

static void *
ossl_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);

    (void)file;
    (void)line;
    if (p != NULL && counting())
        atomic_fetch_add(&ossl_live, (int64_t)malloc_usable_size(p));
    return p;
}

static void
ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p != NULL && counting())
        atomic_fetch_sub(&ossl_live, (int64_t)malloc_usable_size(p));
    free(p);
}

static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
    bool on = counting();
    size_t old = on && p != NULL ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);

    (void)file;
    (void)line;
    if (on && (q != NULL || n == 0))
        atomic_fetch_add(&ossl_live,
                         (int64_t)(q != NULL ? malloc_usable_size(q) : 0) -
                             (int64_t)old);
    return q;
}

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_behaviour = {.name = "tls_echo",
                                            .handle = echo_handle};

/* ---------------------------------------------------------------------- */
/* The client (child process)                                             */

static int
tcp_connect_to(uint16_t p)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int
tcp_connect(void)
{
    return tcp_connect_to(port);
}

static SSL *
tls_connect(int fd)
{
    SSL *s = SSL_new(cctx);

    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, "localhost");
    if (SSL_connect(s) != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return s;
}

static void
echo_one(SSL *s, int fd, bool tls)
{
    char b[64] = "x", r[64];
    int n = 0, k;

    if ((tls ? SSL_write(s, b, 64) : (int)write(fd, b, 64)) != 64)
        exit(1);
    while (n < 64) {
        k = tls ? SSL_read(s, r + n, 64 - n) : (int)read(fd, r + n, 64 - n);
        if (k <= 0)
            exit(1);
        n += k;
    }
}

struct worker {
    pthread_t th;
    long conns, count;
    int mode; /* 0 handshakes, 1 echo */
};

static void *
handshakes(void *arg)
{
    struct worker *w = arg;
    uint64_t end = tpb_now_ns() + (uint64_t)secs * 1000000000ull;

    SSL_SESSION *sess = NULL;

    while (tpb_now_ns() < end) {
        int fd = tcp_connect();
        SSL *s = SSL_new(cctx);

        SSL_set_fd(s, fd);
        SSL_set_tlsext_host_name(s, "localhost");
        if (sess != NULL)
            SSL_set_session(s, sess);
        if (SSL_connect(s) != 1) {
            ERR_print_errors_fp(stderr);
            exit(1);
        }
        if (SSL_session_reused(s))
            atomic_fetch_add(&resumed, 1);
        if (resume && sess == NULL) { /* an echo brings the ticket */
            echo_one(s, fd, true);
            sess = SSL_get1_session(s);
        }
        SSL_shutdown(s);
        SSL_free(s);
        close(fd);
        w->count++;
    }
    SSL_SESSION_free(sess);
    return NULL;
}

static void *
echoes(void *arg)
{
    struct worker *w = arg;
    int *fds = calloc((size_t)w->conns, sizeof(int));
    SSL **ss = calloc((size_t)w->conns, sizeof(SSL *));
    char b[64] = "y", r[64];
    uint64_t end;

    for (long i = 0; i < w->conns; i++)
        ss[i] = tls_connect(fds[i] = tcp_connect());
    end = tpb_now_ns() + (uint64_t)secs * 1000000000ull;
    while (tpb_now_ns() < end) {
        for (long i = 0; i < w->conns; i++) /* all in flight at once */
            SSL_write(ss[i], b, 64);
        for (long i = 0; i < w->conns; i++) {
            for (int n = 0, k; n < 64; n += k)
                if ((k = SSL_read(ss[i], r + n, 64 - n)) <= 0)
                    exit(1);
        }
        w->count += w->conns;
    }
    for (long i = 0; i < w->conns; i++) {
        SSL_free(ss[i]);
        close(fds[i]);
    }
    free(fds);
    free(ss);
    return NULL;
}

static long
run_workers(int mode, long threads, long conns)
{
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    long total = 0;

    for (long i = 0; i < threads; i++) {
        ws[i].mode = mode;
        ws[i].conns = conns / threads + (i < conns % threads ? 1 : 0);
        pthread_create(&ws[i].th, NULL, mode == 0 ? handshakes : echoes,
                       &ws[i]);
    }
    for (long i = 0; i < threads; i++) {
        pthread_join(ws[i].th, NULL);
        total += ws[i].count;
    }
    free(ws);
    return total;
}

/* Waits for the parent's go (its meter is set), opens n idle
 * connections, reports, waits for the parent's byte, closes them. */
static void
idle(int to, int from, long n, bool tls)
{
    int *fds = calloc((size_t)n, sizeof(int));
    SSL **ss = calloc((size_t)n, sizeof(SSL *));
    char c = 0;

    if (read(from, &c, 1) != 1)
        exit(1);
    for (long i = 0; i < n; i++) {
        fds[i] = tcp_connect_to(tls ? port : plain_port);
        ss[i] = tls ? tls_connect(fds[i]) : NULL;
        echo_one(ss[i], fds[i], tls);
    }
    if (write(to, &c, 1) != 1 || read(from, &c, 1) != 1)
        exit(1);
    for (long i = 0; i < n; i++) {
        if (ss[i] != NULL)
            SSL_free(ss[i]);
        close(fds[i]);
    }
    free(fds);
    free(ss);
}

static void
child(int to, int from, long conns, long idle_n, long threads)
{
    long v;

    cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    if (groups[0] != '\0' && SSL_CTX_set1_groups_list(cctx, groups) != 1)
        exit(1);
    if (tls12 && SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION) != 1)
        exit(1);
    /* step 1: handshakes/s */
    v = run_workers(0, threads, 0);
    if (write(to, &v, sizeof(v)) != sizeof(v))
        exit(1);
    v = atomic_load(&resumed);
    if (write(to, &v, sizeof(v)) != sizeof(v))
        exit(1);
    v = run_workers(1, threads, conns);
    if (write(to, &v, sizeof(v)) != sizeof(v))
        exit(1);
    if (plain_round)
        idle(to, from, idle_n, false);
    idle(to, from, idle_n, true);
    exit(0);
}

/* ---------------------------------------------------------------------- */
/* The server                                                             */

static uint64_t
heap(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static tp_tls_ctx *
server_ctx(bool release)
{
    char cmd[256], cert[128], key[128];
    tp_tls_opts o;
    tp_tls_ctx *ctx = NULL;

    snprintf(dir, sizeof(dir), "/tmp/tp_tlsb_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return NULL;
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    if (system(cmd) != 0)
        return NULL;
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    tp_tls_opts_init(&o);
    o.server = true;
    o.verify_peer = false;
    o.cert_file = cert;
    o.key_file = key;
    o.release_buffers = release;
    tp_tls_ctx_new(&o, &ctx);
    return ctx;
}

/* VmRSS of a process in bytes (0 when unknown). */
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

static pid_t rss_pid;

/* CPU time (user + system, microseconds) used so far by the server:
 * this process (getrusage: its own threads only, not the clients' child)
 * or a peer (/proc: clock ticks). Steadier than rates on a shared
 * machine: time other jobs take from the server is not counted. */
static double
cpu_us(void)
{
    struct rusage ru;
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    if (rss_pid == getpid()) {
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
               (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)rss_pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static void
measure_idle(int to, int from, long n, const char *name, const char *oname)
{
    int64_t before, ob, rss;
    char c = 1;

    /* seq_cst: counting is on before the go byte lets the child open the
     * round's first connection. */
    atomic_store(&ossl_counting, true);
    before = (int64_t)heap();
    ob = atomic_load(&ossl_live);
    rss = rss_of(rss_pid);
    if (write(to, &c, 1) != 1) /* go: the meter is set */
        exit(1);
    if (read(from, &c, 1) != 1) /* all connections open and echoed */
        exit(1);
    usleep(200000); /* the last echo's writes settle */
    if (name != NULL)
        tpb_result(name, (double)((int64_t)heap() - before) / (double)n,
                   "bytes");
    if (oname != NULL)
        tpb_result("tls.idle_rss_bytes_per_conn",
                   (double)(rss_of(rss_pid) - rss) / (double)n, "bytes");
    if (oname != NULL && rss_pid == getpid())
        tpb_result(oname, (double)(atomic_load(&ossl_live) - ob) / (double)n,
                   "bytes");
    atomic_store(&ossl_counting, false);
    if (write(to, &c, 1) != 1)
        exit(1);
    usleep(300000); /* closed before the next round */
}

/* Forks the clients, prints what they measured. */
static int
drive(long conns, long idle_n, long threads, bool troupe)
{
    int up[2], down[2], st;
    pid_t pid;
    long v;
    double cpu0, cpu1;

    if (pipe(up) != 0 || pipe(down) != 0)
        return 1;
    fflush(stdout);
    cpu0 = cpu_us();
    if ((pid = fork()) == 0) {
        close(up[0]);   /* each side keeps only its ends: a side that dies */
        close(down[1]); /* ends the other's read (EOF) */
        child(up[1], down[0], conns, idle_n, threads);
    }
    if (pid < 0)
        return 1;
    close(up[1]);
    close(down[0]);
    if (read(up[0], &v, sizeof(v)) != sizeof(v))
        return 1;
    cpu1 = cpu_us();
    tpb_result("tls.handshakes_per_s", (double)v / (double)secs, "1/s");
    tpb_result("tls.server_cpu_us_per_handshake",
               v > 0 ? (cpu1 - cpu0) / (double)v : 0, "us");
    {
        long all = v;
        if (read(up[0], &v, sizeof(v)) != sizeof(v))
            return 1;
        tpb_result("tls.resumed_fraction", all > 0 ? (double)v / all : 0,
                   "ratio");
    }
    if (read(up[0], &v, sizeof(v)) != sizeof(v))
        return 1;
    tpb_result("tls.echo_rt_per_s", (double)v / (double)secs, "1/s");
    tpb_result("tls.server_cpu_us_per_echo",
               v > 0 ? (cpu_us() - cpu1) / (double)v : 0, "us");
    /* The idle meter: plain TCP first (same listener code, no TLS). */
    if (plain_round)
        measure_idle(down[1], up[0], idle_n, "tcp.idle_bytes_per_conn", NULL);
    /* After the TCP round, reusing its freed blocks: the extra cost. */
    measure_idle(down[1], up[0], idle_n,
                 !troupe       ? NULL
                 : plain_round ? "tls.idle_extra_bytes_per_conn"
                               : "tls.idle_bytes_per_conn",
                 "tls.idle_openssl_bytes_per_conn");
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int
troupe_server(long conns, long idle_n, long threads, bool release,
              unsigned nsched)
{
    tp_runtime_options ro;
    tp_listen_opts lo, po;
    tp_runtime *rt;
    tp_listener *l, *pl;
    tp_tls_ctx *ctx;
    char cmd[128];
    int err;

    if ((ctx = server_ctx(release)) == NULL)
        return fprintf(stderr, "tls_bench: no certificate\n"), 1;
    tp_runtime_options_init(&ro);
    ro.schedulers = nsched;
    if ((err = tp_runtime_create(&rt, &ro)) != 0 ||
        (err = tp_runtime_start(rt)) != 0)
        return fprintf(stderr, "tls_bench: %s\n", tp_strerror(err)), 1;
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &echo_behaviour;
    lo.tls = ctx;
    po = lo;
    po.tls = NULL;
    if ((err = tp_tcp_listen(rt, &lo, &l)) != 0 ||
        (err = tp_tcp_listen(rt, &po, &pl)) != 0)
        return fprintf(stderr, "tls_bench: %s\n", tp_strerror(err)), 1;
    tp_tls_ctx_free(ctx);
    port = tp_listener_port(l);
    plain_port = tp_listener_port(pl);
    rss_pid = getpid();
    err = drive(conns, idle_n, threads, true);
    tp_runtime_destroy(rt);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? err : 1;
}

int
main(int argc, char **argv)
{
    long conns = tpb_opt(argc, argv, "conns", 100);
    long idle_n = tpb_opt(argc, argv, "idle", 2000);
    long threads = tpb_opt(argc, argv, "threads", 4);
    long peer = tpb_opt(argc, argv, "peer-port", 0);
    struct rlimit rl;

    CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
    secs = tpb_opt(argc, argv, "secs", 3);
    plain_round = tpb_opt(argc, argv, "plain", 1) != 0 && peer == 0;
    resume = tpb_opt(argc, argv, "resume", 0) != 0;
    tls12 = tpb_opt(argc, argv, "tls12", 0) != 0;
    for (int i = 1; i < argc; i++) /* a text option: tpb_opt is numeric */
        if (strncmp(argv[i], "--groups=", 9) == 0)
            snprintf(groups, sizeof(groups), "%s", argv[i] + 9);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (peer == 0)
        return troupe_server(conns, idle_n, threads,
                             tpb_opt(argc, argv, "release", 1) != 0,
                             (unsigned)tpb_opt(argc, argv, "schedulers", 0));
    port = (uint16_t)peer;
    rss_pid = (pid_t)tpb_opt(argc, argv, "peer-pid", 0);
    return drive(conns, idle_n, threads, false);
}
