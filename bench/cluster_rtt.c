/*
 * bench/cluster_rtt.c - two Troupe nodes (two runtimes in this process,
 * each with its own NATS connection) through a nats-server it starts on a
 * free loopback port:
 *   - cross-node request round trip (tp_request -> tp_reply), p50 / p99,
 *     one request in flight;
 *   - one-way throughput of 64-byte messages from an outside thread
 *     (tp_runtime_send, retrying on -EAGAIN) to a counting actor.
 * And the same two figures for raw libnats (request/reply with
 * natsConnection_Request, publish to a counting subscription), the floor
 * under Troupe's numbers.
 * --detect=N (default 0): failure detection, N times: a child process
 * (this program again) joins as node "victim", is SIGKILLed, and the time
 * until this node has it down is measured (median and max; default
 * heartbeat 500 ms, down-after 2000 ms).
 * Options: --rtts=N (default 20000), --msgs=N (default 500000), --raw=0,
 * --links=0 (every frame through NATS: no direct links).
 */
#include "benchutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static bool
port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void
sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------- */

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (tp_msg_is_request(m))
        tp_reply(ctx, m, m->data, m->len);
}

static const tp_behaviour echo_b = {.name = "echo", .handle = echo_handle};

static _Atomic uint64_t sunk;

static void
sink_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)ctx;
    (void)state;
    if (m->type == 2)
        atomic_fetch_add_explicit(&sunk, 1, memory_order_relaxed);
}

static const tp_behaviour sink_b = {.name = "sink", .handle = sink_handle};

struct pinger {
    tp_pid echo;
    long n, done;
    uint64_t t0;
    uint64_t *samples;
    _Atomic int finished;
};

static void
ping_once(tp_ctx *ctx, struct pinger *p)
{
    char data[64] = {0};

    p->t0 = tp_now_ns();
    if (tp_request(ctx, p->echo, 1, data, sizeof(data), 5000, NULL) != 0)
        atomic_store(&p->finished, -1);
}

static void
ping_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct pinger *p = *(struct pinger **)state;

    if (m->type == 5) { /* start */
        ping_once(ctx, p);
        return;
    }
    if (m->type != TP_MSG_REPLY) {
        atomic_store(&p->finished, -1);
        return;
    }
    p->samples[p->done++] = tp_now_ns() - p->t0;
    if (p->done == p->n)
        atomic_store(&p->finished, 1);
    else
        ping_once(ctx, p);
}

static int
ping_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(struct pinger **)state = arg;
    return 0;
}

static const tp_behaviour ping_b = {.name = "pinger",
                                    .state_size = sizeof(void *),
                                    .init = ping_init,
                                    .handle = ping_handle};

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static bool links = true; /* --links=0: every frame through NATS */

static tp_runtime *
node(const char *url, const char *name)
{
    tp_runtime_options ro;
    tp_cluster_options o;
    tp_runtime *rt;

    tp_runtime_options_init(&ro);
    ro.schedulers = 1;
    ro.pin = false;
    if (tp_runtime_create(&rt, &ro) != 0 || tp_runtime_start(rt) != 0)
        exit(1);
    tp_cluster_options_init(&o);
    o.node_name = name;
    o.cluster = "bench";
    o.urls = url;
    o.links = links;
    if (tp_cluster_start(rt, &o) != 0)
        exit(1);
    return rt;
}

/* ---------------------------------------------------------------------- */
/* Raw libnats                                                            */

static _Atomic uint64_t raw_sunk;

static void
raw_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
    (void)sub;
    (void)c;
    if (natsMsg_GetReply(m) != NULL)
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
    else
        atomic_fetch_add_explicit(&raw_sunk, 1, memory_order_relaxed);
    natsMsg_Destroy(m);
}

static natsConnection *
raw_connect(const char *url)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;

    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetSendAsap(o, true);
    if (natsConnection_Connect(&nc, o) != NATS_OK)
        exit(1);
    natsOptions_Destroy(o);
    return nc;
}

static void
raw_nats(const char *url, long rtts, long msgs)
{
    natsConnection *srv = raw_connect(url), *cli = raw_connect(url);
    natsSubscription *sub = NULL;
    uint64_t *s = calloc((size_t)rtts, sizeof(uint64_t)), t0;
    char data[64] = {0};

    natsConnection_Subscribe(&sub, srv, "raw.echo", raw_echo, NULL);
    natsSubscription_SetPendingLimits(sub, 1 << 22, 1 << 30);
    natsConnection_Flush(srv);
    t0 = tpb_now_ns();
    for (long i = 0; i < rtts; i++) {
        natsMsg *r = NULL;
        uint64_t t = tpb_now_ns();
        if (natsConnection_Request(&r, cli, "raw.echo", data, 64, 5000) !=
            NATS_OK)
            exit(1);
        s[i] = tpb_now_ns() - t;
        natsMsg_Destroy(r);
    }
    tpb_result("nats_raw_rtt_rps", rtts / ((tpb_now_ns() - t0) / 1e9), "req/s");
    qsort(s, (size_t)rtts, sizeof(uint64_t), cmp_u64);
    tpb_result("nats_raw_rtt_p50", s[rtts / 2] / 1e3, "us");
    tpb_result("nats_raw_rtt_p99", s[rtts * 99 / 100] / 1e3, "us");
    natsConnection_Close(cli);
    natsConnection_Destroy(cli);
    /* One-way: buffered publishes (the batching case). */
    {
        natsOptions *o = NULL;
        natsOptions_Create(&o);
        natsOptions_SetURL(o, url);
        natsConnection_Connect(&cli, o);
        natsOptions_Destroy(o);
    }
    t0 = tpb_now_ns();
    for (long i = 0; i < msgs; i++)
        natsConnection_Publish(cli, "raw.echo", data, 64);
    natsConnection_Flush(cli);
    for (int i = 0; i < 30000 && atomic_load(&raw_sunk) < (uint64_t)msgs; i++)
        sleep_us(1000);
    tpb_result("nats_raw_oneway_msgs",
               atomic_load(&raw_sunk) / ((tpb_now_ns() - t0) / 1e9), "msg/s");
    natsConnection_Destroy(cli);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(srv);
    free(s);
}

/* The victim: joins and waits to be killed. */
static int
victim_main(const char *url)
{
    tp_runtime *rt = node(url, "victim");

    (void)rt;
    while (pause() == -1)
        ;
    return 0;
}

static void
detect(const char *url, tp_runtime *a, long rounds)
{
    uint64_t *t = calloc((size_t)rounds, sizeof(uint64_t));
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0 || t == NULL)
        exit(1);
    self[n] = '\0';
    for (long r = 0; r < rounds; r++) {
        pid_t child = fork();
        uint64_t t0;
        if (child == 0) {
            execl(self, self, "--victim", url, (char *)NULL);
            _exit(127);
        }
        while (tp_cluster_node_lookup(a, "victim") == 0)
            sleep_us(1000);
        sleep_us(300000);
        t0 = tpb_now_ns();
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        while (tp_cluster_node_lookup(a, "victim") != 0)
            sleep_us(1000);
        t[r] = tpb_now_ns() - t0;
    }
    qsort(t, (size_t)rounds, sizeof(uint64_t), cmp_u64);
    tpb_result("cluster_detect_median", t[rounds / 2] / 1e6, "ms");
    tpb_result("cluster_detect_max", t[rounds - 1] / 1e6, "ms");
    free(t);
}

int
main(int argc, char **argv)
{
    long rtts = tpb_opt(argc, argv, "rtts", 20000);
    long msgs = tpb_opt(argc, argv, "msgs", 500000);
    links = tpb_opt(argc, argv, "links", 1) != 0;
    struct pinger p = {.n = rtts};
    char url[64], port_s[16];
    tp_runtime *a, *b;
    tp_pid echo, sink, pinger;
    uint64_t t0, again = 0;
    int port = free_port();
    pid_t srv;
    char data[64] = {0};

    if (argc == 3 && strcmp(argv[1], "--victim") == 0)
        return victim_main(argv[2]);
    if (access("/usr/sbin/nats-server", X_OK) != 0) {
        fprintf(stderr, "cluster_rtt: nats-server not installed\n");
        return 0;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    if ((srv = fork()) == 0) {
        execl("/usr/sbin/nats-server", "nats-server", "-a", "127.0.0.1", "-p",
              port_s, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !port_open(port); i++)
        sleep_us(10000);
    tp_log_set_level(TP_LOG_WARN);
    a = node(url, "bench-a");
    b = node(url, "bench-b");
    while (tp_cluster_node_lookup(a, "bench-b") == 0 ||
           tp_cluster_node_lookup(b, "bench-a") == 0)
        sleep_us(10000);
    /* Both paths decided (direct links connected, or NATS). */
    for (int i = 0; i < 500; i++) {
        tp_cluster_peer_stats pa, pb;
        if (tp_cluster_stats(a, NULL, &pa, 1) == 1 &&
            tp_cluster_stats(b, NULL, &pb, 1) == 1 &&
            pa.link != TP_CLUSTER_LINK_CONNECTING &&
            pb.link != TP_CLUSTER_LINK_CONNECTING) {
            tpb_result("cluster_link_tcp",
                       pa.link == TP_CLUSTER_LINK_TCP &&
                           pb.link == TP_CLUSTER_LINK_TCP,
                       "bool");
            break;
        }
        sleep_us(10000);
    }

    /* Round trips. */
    p.samples = calloc((size_t)rtts, sizeof(uint64_t));
    tp_runtime_spawn(b, &echo_b, NULL, NULL, &echo);
    p.echo = tp_cluster_pid(b, echo);
    tp_runtime_spawn(a, &ping_b, &p, NULL, &pinger);
    t0 = tpb_now_ns();
    tp_runtime_send(a, pinger, 5, NULL, 0);
    while (atomic_load(&p.finished) == 0)
        sleep_us(1000);
    if (atomic_load(&p.finished) < 0) {
        fprintf(stderr, "cluster_rtt: a request failed\n");
        return 1;
    }
    tpb_result("cluster_rtt_rps", rtts / ((tpb_now_ns() - t0) / 1e9), "req/s");
    qsort(p.samples, (size_t)rtts, sizeof(uint64_t), cmp_u64);
    tpb_result("cluster_rtt_p50", p.samples[rtts / 2] / 1e3, "us");
    tpb_result("cluster_rtt_p99", p.samples[rtts * 99 / 100] / 1e3, "us");

    /* One-way throughput, 64-byte payloads. */
    tp_runtime_spawn(b, &sink_b, NULL, NULL, &sink);
    sink = tp_cluster_pid(b, sink);
    t0 = tpb_now_ns();
    for (long i = 0; i < msgs;) {
        int r = tp_runtime_send(a, sink, 2, data, sizeof(data));
        if (r == 0) {
            i++;
        } else if (r == -EAGAIN) {
            again++;
            sleep_us(50);
        } else {
            fprintf(stderr, "cluster_rtt: send: %s\n", tp_strerror(r));
            return 1;
        }
    }
    for (int i = 0; i < 30000 && atomic_load(&sunk) < (uint64_t)msgs; i++)
        sleep_us(1000);
    tpb_result("cluster_oneway_msgs",
               atomic_load(&sunk) / ((tpb_now_ns() - t0) / 1e9), "msg/s");
    tpb_result("cluster_oneway_lost", (double)(msgs - (long)atomic_load(&sunk)),
               "msgs");
    tpb_result("cluster_oneway_eagain", (double)again, "retries");

    if (tpb_opt(argc, argv, "detect", 0) > 0)
        detect(url, a, tpb_opt(argc, argv, "detect", 0));
    tp_cluster_stop(b);
    tp_cluster_stop(a);
    if (tpb_opt(argc, argv, "raw", 1))
        raw_nats(url, rtts, msgs);
    tp_runtime_destroy(b);
    tp_runtime_destroy(a);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    free(p.samples);
    return 0;
}
