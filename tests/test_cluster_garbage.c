/*
 * tests/test_cluster_garbage.c - a buggy or hostile publisher on the
 * cluster's subjects: random bytes, mutated frames, wrong versions, huge
 * lengths, truncated batches and node announcements, on the heartbeat
 * subject, the nodes' inboxes and a join inbox, while two nodes keep
 * answering requests. Every such frame is dropped and counted; the nodes
 * stay up and keep working. (Well-formed forged frames are out of scope:
 * NATS permissions are the boundary, see docs/CLUSTER.md.)
 */
#include "cluster/cluster_int.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (tp_msg_is_request(m))
        tp_reply(ctx, m, m->data, m->len);
}

static const tp_behaviour echo_b = {.name = "echo", .handle = echo_handle};

static tp_runtime *
node(const char *url, const char *name)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_cluster_options o;

    tp_cluster_options_init(&o);
    o.node_name = name;
    o.cluster = "junk";
    o.urls = url;
    o.heartbeat_ms = 200;
    o.down_after_ms = 3000;
    o.join_ms = 400;
    assert_int_equal(tp_cluster_start(rt, &o), 0);
    return rt;
}

/* A buffer that the decoder must reject as a first frame. */
static size_t
garbage(unsigned char *buf, size_t cap, unsigned seed)
{
    struct tp__wire_hdr h = {.kind = (uint8_t)(1 + seed % 11),
                             .node = (uint16_t)(1 + seed % 1023),
                             .from = seed,
                             .to = (uint64_t)seed << 20,
                             .len = 16};
    const unsigned char *pl;
    size_t n, used;

    for (;;) {
        switch (seed % 6) {
        case 0: /* random bytes */
            n = 1 + (size_t)rand() % cap;
            for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)rand();
            break;
        case 1: /* a length past the end */
            h.len = 0x7fffffffu;
            tp__wire_put_hdr(buf, &h);
            n = TP__WIRE_HDR + 8;
            break;
        case 2: /* wrong version */
            tp__wire_put_hdr(buf, &h);
            buf[1] = (unsigned char)(2 + rand() % 200);
            n = TP__WIRE_HDR + 16;
            break;
        case 3: /* unknown kind, or node 0 */
            tp__wire_put_hdr(buf, &h);
            if (rand() & 1)
                buf[2] = (unsigned char)(TP__W_KIND_MAX + rand() % 100);
            else
                buf[4] = buf[5] = 0;
            n = TP__WIRE_HDR + 16;
            break;
        case 4: /* truncated header */
            tp__wire_put_hdr(buf, &h);
            n = (size_t)rand() % TP__WIRE_HDR;
            break;
        default: /* one byte flipped in a valid frame */
            tp__wire_put_hdr(buf, &h);
            memset(buf + TP__WIRE_HDR, 0, 16);
            buf[rand() % 12] ^= (unsigned char)(1 + rand() % 255);
            n = TP__WIRE_HDR + 16;
            break;
        }
        if (n == 0 || tp__wire_next(buf, n, &h, &pl, &used) != 0)
            return n == 0 ? 1 : n;
        seed++; /* decodable by chance: try another */
    }
}

/* A HELLO whose node block is malformed (bad name / id / length). */
static size_t
bad_hello(unsigned char *buf, unsigned seed)
{
    struct tp__wire_hdr h = {.kind = TP__W_HELLO, .node = 7, .len = 20};

    tp__wire_put_hdr(buf, &h);
    memset(buf + TP__WIRE_HDR, 0, 20);
    buf[TP__WIRE_HDR + 12] = (unsigned char)(seed % 3 == 0 ? 200 : 7);
    memcpy(buf + TP__WIRE_HDR + 13, seed % 3 == 1 ? "a.b c*>" : "ok\0\0\0\0\0",
           7);
    return TP__WIRE_HDR + 20;
}

static void
test_cluster_garbage_dropped_nodes_keep_working(void **state)
{
    char url[64], port_s[16], inbox_a[128], inbox_b[128];
    unsigned char buf[512];
    natsConnection *nc = NULL;
    tp_cluster_summary sa, sb;
    tp_runtime *a, *b;
    pid_t srv;
    tp_pid echo;
    int port = free_port();
    unsigned sent = 0;

    (void)state;
    if (access("/usr/sbin/nats-server", X_OK) != 0) {
        print_message("nats-server not installed: skipping\n");
        skip();
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    srv = fork();
    assert_true(srv >= 0);
    if (srv == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl("/usr/sbin/nats-server", "nats-server", "-a", "127.0.0.1", "-p",
              port_s, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !port_open(port); i++)
        tpt_sleep_ms(10);
    a = node(url, "a");
    b = node(url, "b");
    for (int i = 0; i < 2000 && (tp_cluster_node_lookup(a, "b") == 0 ||
                                 tp_cluster_node_lookup(b, "a") == 0);
         i++)
        tpt_sleep_ms(10);
    assert_int_not_equal(tp_cluster_node_lookup(a, "b"), 0);
    assert_int_equal(tp_runtime_spawn(b, &echo_b, NULL, NULL, &echo), 0);
    echo = tp_cluster_pid(b, echo);
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    snprintf(inbox_a, sizeof(inbox_a), "junk.tp.n.a");
    snprintf(inbox_b, sizeof(inbox_b), "junk.tp.n.b");
    srand(1234);
    for (unsigned round = 0; round < 20; round++) {
        char reply[8];
        size_t rlen = 0;
        for (unsigned i = 0; i < 100; i++, sent++) {
            unsigned seed = round * 100 + i;
            size_t n = garbage(buf, sizeof(buf), seed);
            const char *subj = seed % 3 == 0   ? inbox_a
                               : seed % 3 == 1 ? inbox_b
                                               : "junk.tp.hb";
            natsConnection_Publish(nc, subj, buf, (int)n);
            n = bad_hello(buf, seed);
            natsConnection_Publish(nc, seed & 1 ? "junk.tp.hb" : inbox_b, buf,
                                   (int)n);
        }
        natsConnection_Flush(nc);
        /* The nodes keep answering across the garbage. */
        assert_int_equal(tp_runtime_call(a, echo, 1, "ok", 2, reply,
                                         sizeof(reply), &rlen, 10000),
                         0);
        assert_int_equal(rlen, 2);
    }
    natsConnection_Destroy(nc);
    tp_cluster_stats(a, &sa, NULL, 0);
    tp_cluster_stats(b, &sb, NULL, 0);
    assert_true(sa.bad_frames > 0);
    assert_true(sb.bad_frames > 0);
    assert_int_equal(sa.peers_up, 1);
    assert_int_equal(sb.peers_up, 1);
    print_message("sent %u bad frames; a dropped %llu, b %llu\n", sent * 2,
                  (unsigned long long)sa.bad_frames,
                  (unsigned long long)sb.bad_frames);
    tp_cluster_stop(b);
    tp_cluster_stop(a);
    tpt_finish(b);
    tpt_finish(a);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_garbage_dropped_nodes_keep_working),
    };

    signal(SIGPIPE, SIG_IGN);
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
