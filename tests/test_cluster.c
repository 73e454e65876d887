/*
 * tests/test_cluster.c - Troupe nodes over a real nats-server: pids with a
 * node, discovery, unique names, remote send order, request/reply, links,
 * monitors and node events across nodes, node death by SIGKILL (a child
 * process running its own node), and a NATS server restart.
 *
 * Each test starts its own nats-server on a free loopback port and kills
 * it at the end; without nats-server the NATS tests are skipped. Several
 * runtimes in this one process each run a node (their own NATS
 * connection); the SIGKILL test re-executes this binary as the child node.
 */
#include "cluster/cluster_int.h"
#include "test_console_client.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char self_exe[4096];

/* ---------------------------------------------------------------------- */
/* nats-server                                                            */

struct nats {
    pid_t pid;
    int port;
    char url[64];
    char store[64];        /* JetStream directory, "" = no JetStream */
    const char *extra[10]; /* more server arguments, NULL-terminated */
};

static const char *
nats_bin(void)
{
    static const char *const bins[] = {"/usr/sbin/nats-server",
                                       "/usr/bin/nats-server",
                                       "/usr/local/bin/nats-server"};

    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++)
        if (access(bins[i], X_OK) == 0)
            return bins[i];
    return NULL;
}

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0)
        return -1;
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
nats_spawn(struct nats *n)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", n->port);
    n->pid = fork();
    assert_true(n->pid >= 0);
    if (n->pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        const char *argv[24] = {"nats-server", "-a", "127.0.0.1", "-p", port};
        int k = 5;
        if (n->store[0] != '\0') {
            argv[k++] = "-js";
            argv[k++] = "-sd";
            argv[k++] = n->store;
        }
        for (int i = 0; i < 10 && n->extra[i] != NULL; i++)
            argv[k++] = n->extra[i];
        argv[k] = NULL;
        execv(nats_bin(), (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000 && !port_open(n->port); i++)
        tpt_sleep_ms(10);
    assert_true(port_open(n->port));
}

/* Starts a server, or returns false (test skipped) without the binary. */
static bool nats_start(struct nats *n);

static bool
nats_start_args(struct nats *n, const char *const *extra)
{
    for (int i = 0; i < 9 && extra != NULL && extra[i] != NULL; i++)
        n->extra[i] = extra[i];
    return nats_start(n);
}

static bool
nats_start(struct nats *n)
{
    if (nats_bin() == NULL) {
        print_message("nats-server not installed: skipping\n");
        return false;
    }
    n->port = free_port();
    assert_true(n->port > 0);
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
    nats_spawn(n);
    return true;
}

/* A server with JetStream in a fresh temporary directory. */
static bool
nats_start_js(struct nats *n)
{
    if (nats_bin() == NULL) {
        print_message("nats-server not installed: skipping\n");
        return false;
    }
    snprintf(n->store, sizeof(n->store), "/tmp/tp-cluster-js-XXXXXX");
    assert_non_null(mkdtemp(n->store));
    n->port = free_port();
    assert_true(n->port > 0);
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
    nats_spawn(n);
    return true;
}

static void
nats_kill(struct nats *n)
{
    char cmd[128];

    if (n->pid <= 0)
        return;
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
    if (n->store[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", n->store);
        if (system(cmd) != 0)
            print_message("could not remove %s\n", n->store);
        n->store[0] = '\0';
    }
}

/* ---------------------------------------------------------------------- */
/* Nodes                                                                  */

static void
node_opts(tp_cluster_options *o, const struct nats *n, const char *name)
{
    tp_cluster_options_init(o);
    o->node_name = name;
    o->cluster = "tptest";
    o->urls = n->url;
    o->heartbeat_ms = 200;
    o->down_after_ms = 1500;
    o->join_ms = 400;
}

static tp_runtime *
node_new(const struct nats *n, const char *name)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_cluster_options o;

    node_opts(&o, n, name);
    assert_int_equal(tp_cluster_start(rt, &o), 0);
    return rt;
}

static void
node_free(tp_runtime *rt)
{
    tp_cluster_stop(rt);
    tpt_finish(rt);
}

/* Waits until rt sees the node called name up; returns its id. */
static uint32_t
wait_node(tp_runtime *rt, const char *name)
{
    uint32_t id = 0;

    for (int i = 0; i < 2000 && (id = tp_cluster_node_lookup(rt, name)) == 0;
         i++)
        tpt_sleep_ms(10);
    assert_int_not_equal(id, 0);
    return id;
}

static void
wait_node_gone(tp_runtime *rt, const char *name)
{
    for (int i = 0; i < 2000 && tp_cluster_node_lookup(rt, name) != 0; i++)
        tpt_sleep_ms(10);
    assert_int_equal(tp_cluster_node_lookup(rt, name), 0);
}

/* An actor that answers requests with their payload, ignores type 99,
 * exits with a user reason on type 77. */
static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (m->type == 77) {
        tp_exit_with(ctx, &(tp_exit_reason){TP_EXIT_USER, 42, "asked to"});
        return;
    }
    if (m->type != 99 && tp_msg_is_request(m))
        tp_reply(ctx, m, m->data, m->len);
}

static const tp_behaviour echo_b = {.name = "echo", .handle = echo_handle};

static tp_pid
spawn_echo(tp_runtime *rt)
{
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn(rt, &echo_b, NULL, NULL, &pid), 0);
    return tp_cluster_pid(rt, pid);
}

/* ---------------------------------------------------------------------- */
/* Pure                                                                   */

static void
test_cluster_pid_format_parse_node(void **state)
{
    char buf[32];
    tp_pid p = ((tp_pid)7 << 32) | 12345, r, back;

    (void)state;
    assert_string_equal(tp_pid_format(p, buf, sizeof(buf)), "<12345.7>");
    r = tp_pid_with_node(p, 3);
    assert_true(tp_pid_is_remote(r));
    assert_int_equal(tp_pid_node(r), 3);
    assert_int_equal(tp_pid_index(r), 12345);
    assert_int_equal(tp_pid_gen(r), 7);
    assert_string_equal(tp_pid_format(r, buf, sizeof(buf)), "<3.12345.7>");
    assert_int_equal(tp_pid_parse(buf, &back), 0);
    assert_true(back == r);
    assert_int_equal(tp_pid_parse("3.12345.7", &back), 0);
    assert_true(back == r);
    assert_int_equal(tp_pid_parse("<12345.7>", &back), 0);
    assert_true(back == p);
    assert_int_equal(tp_pid_parse("<1024.1.1>", &back), -EINVAL);
    assert_int_equal(tp_pid_parse("<0.1.1>", &back), -EINVAL);
    assert_int_equal(tp_pid_parse("<1.2097152>", &back), -EINVAL);
    assert_int_equal(tp_pid_parse("<1.2.3.4>", &back), -EINVAL);
    assert_string_equal(
        tp_pid_format(
            tp_pid_with_node(((tp_pid)TP_PID_GEN_MAX << 32) | 0xffffffffu,
                             TP_PID_NODE_MAX),
            buf, sizeof(buf)),
        "<1023.4294967295.2097151>");
}

static void
test_cluster_wire_rejects_garbage(void **state)
{
    unsigned char buf[TP__WIRE_HDR + 16] = {0};
    struct tp__wire_hdr h = {.kind = TP__W_MSG, .node = 5, .len = 16}, o;
    const unsigned char *pl;
    struct tp__wire_node w;

    (void)state;
    tp__wire_put_hdr(buf, &h);
    assert_int_equal(tp__wire_get_hdr(buf, sizeof(buf), &o, &pl), 0);
    assert_int_equal(o.node, 5);
    assert_int_equal(o.len, 16);
    assert_int_equal(tp__wire_get_hdr(buf, sizeof(buf) - 1, &o, &pl),
                     -EBADMSG); /* length does not match */
    assert_int_equal(tp__wire_get_hdr(buf, 10, &o, &pl), -EBADMSG);
    buf[1] = 9; /* version */
    assert_int_equal(tp__wire_get_hdr(buf, sizeof(buf), &o, &pl), -EBADMSG);
    buf[1] = TP__WIRE_VERSION;
    buf[2] = 200; /* kind */
    assert_int_equal(tp__wire_get_hdr(buf, sizeof(buf), &o, &pl), -EBADMSG);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(tp__wire_get_node(buf, sizeof(buf), &w), -EBADMSG);
    assert_false(tp__wire_name_ok("a.b"));
    assert_false(tp__wire_name_ok(""));
    assert_true(tp__wire_name_ok("node-1@host"));
}

/* ---------------------------------------------------------------------- */
/* Membership                                                             */

static void
test_cluster_join_discovery(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_cluster_peer_stats ps[4];
    tp_cluster_summary sum;
    char name[64];

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "alpha");
    b = node_new(&n, "beta");
    assert_int_equal(wait_node(a, "beta"), tp_cluster_node_id(b));
    assert_int_equal(wait_node(b, "alpha"), tp_cluster_node_id(a));
    assert_int_not_equal(tp_cluster_node_id(a), tp_cluster_node_id(b));
    assert_int_equal(
        tp_cluster_node_name(a, tp_cluster_node_id(b), name, sizeof(name)), 0);
    assert_string_equal(name, "beta");
    assert_int_equal(tp_cluster_stats(a, &sum, ps, 4), 1);
    assert_true(sum.connected);
    assert_int_equal(sum.peers_up, 1);
    assert_string_equal(ps[0].name, "beta");
    assert_true(ps[0].up);
    /* A heartbeat round trip is measured within a few periods. */
    for (int i = 0; i < 500 && ps[0].rtt_ns == 0; i++) {
        tpt_sleep_ms(10);
        tp_cluster_stats(a, NULL, ps, 4);
    }
    assert_true(ps[0].rtt_ns > 0);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

static void
test_cluster_duplicate_name_refused(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_cluster_options o;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "unique");
    b = tpt_runtime(1);
    node_opts(&o, &n, "unique");
    assert_int_equal(tp_cluster_start(b, &o), -EADDRINUSE);
    assert_int_equal(tp_cluster_node_id(b), 0);
    /* The original keeps working, and the name is free once it left. */
    assert_int_equal(tp_cluster_start(a, &o), -EALREADY);
    tp_cluster_stop(a);
    assert_int_equal(tp_cluster_start(b, &o), 0);
    tpt_finish(b);
    tpt_finish(a);
    nats_kill(&n);
}

struct joiner {
    tp_runtime *rt;
    const struct nats *n;
    int err;
    const char *name;
    uint32_t id;
};

static void *
join_thread(void *arg)
{
    struct joiner *j = arg;
    tp_cluster_options o;

    node_opts(&o, j->n, j->name != NULL ? j->name : "twin");
    o.node_id = j->id;
    j->err = tp_cluster_start(j->rt, &o);
    return NULL;
}

static void
test_cluster_same_id_at_once_one_wins(void **state)
{
    struct nats n = {0};
    struct joiner j[2];
    pthread_t t[2];
    const char *names[2] = {"left-twin", "right-twin"};

    (void)state;
    if (!nats_start(&n))
        skip();
    for (int i = 0; i < 2; i++) {
        j[i] = (struct joiner){tpt_runtime(1), &n, 1, names[i], 77};
        assert_int_equal(pthread_create(&t[i], NULL, join_thread, &j[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_true((j[0].err == 0 && j[1].err == -EADDRINUSE) ||
                (j[1].err == 0 && j[0].err == -EADDRINUSE));
    for (int i = 0; i < 2; i++)
        node_free(j[i].rt);
    nats_kill(&n);
}

static void
test_cluster_same_name_at_once_one_wins(void **state)
{
    struct nats n = {0};
    struct joiner j[2];
    pthread_t t[2];

    (void)state;
    if (!nats_start(&n))
        skip();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2; i++) {
            j[i] = (struct joiner){tpt_runtime(1), &n, 1, NULL, 0};
            assert_int_equal(pthread_create(&t[i], NULL, join_thread, &j[i]),
                             0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        assert_true((j[0].err == 0 && j[1].err == -EADDRINUSE) ||
                    (j[1].err == 0 && j[0].err == -EADDRINUSE));
        for (int i = 0; i < 2; i++)
            node_free(j[i].rt);
    }
    nats_kill(&n);
}

/* Server certificate for 127.0.0.1 signed by a fresh CA, in dir. */
static bool
make_certs(const char *dir)
{
    char cmd[1024];

    snprintf(
        cmd, sizeof(cmd),
        "cd %s && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=tp-test-ca "
        "&& openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out srv.pem -days 1 -extfile ext",
        dir);
    return system(cmd) == 0;
}

static void
test_cluster_tls_and_credentials(void **state)
{
    char dir[64] = "/tmp/tp-cluster-tls-XXXXXX", ca[128], cert[128], key[128],
         cmd[160];
    const char *args[10] = {"--tls",  "--tlscert", cert,     "--tlskey", key,
                            "--user", "tp",        "--pass", "s3cret",   NULL};
    struct nats n = {0};
    tp_runtime *a, *b, *c;
    tp_cluster_options o;

    (void)state;
    if (system("openssl version > /dev/null 2>&1") != 0) {
        print_message("openssl not installed: skipping\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    assert_true(make_certs(dir));
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
    snprintf(key, sizeof(key), "%s/srv.key", dir);
    if (!nats_start_args(&n, args))
        skip();
    a = tpt_runtime(1);
    node_opts(&o, &n, "tls-a");
    o.tls_ca_file = ca;
    o.user = "tp";
    o.password = "s3cret";
    assert_int_equal(tp_cluster_start(a, &o), 0);
    b = tpt_runtime(1);
    node_opts(&o, &n, "tls-b");
    o.tls_ca_file = ca;
    o.user = "tp";
    o.password = "s3cret";
    assert_int_equal(tp_cluster_start(b, &o), 0);
    wait_node(a, "tls-b");
    wait_node(b, "tls-a");
    assert_int_equal(
        tp_runtime_call(a, spawn_echo(b), 1, "x", 1, NULL, 0, NULL, 10000), 0);
    { /* NATS over TLS: no plaintext direct link beside it. */
        tp_cluster_peer_stats ps[4];
        tp_cluster_summary sum;

        assert_int_equal(tp_cluster_stats(a, &sum, ps, 4), 1);
        assert_int_equal(ps[0].link, TP_CLUSTER_LINK_NATS);
        assert_int_equal(sum.link_port, 0);
    }
    /* Wrong password, and no TLS: refused. */
    c = tpt_runtime(1);
    node_opts(&o, &n, "tls-c");
    o.tls_ca_file = ca;
    o.user = "tp";
    o.password = "wrong";
    assert_int_equal(tp_cluster_start(c, &o), -ECONNREFUSED);
    node_opts(&o, &n, "tls-c");
    o.user = "tp";
    o.password = "s3cret";
    assert_int_equal(tp_cluster_start(c, &o), -ECONNREFUSED);
    tpt_finish(c);
    node_free(b);
    node_free(a);
    nats_kill(&n);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------------- */
/* Messages                                                               */

struct named {
    int ok, unknown_node, no_name;
};

static void
send_named(tp_ctx *ctx, void *arg)
{
    struct named *nm = arg;

    nm->ok = tp_send_named(ctx, "inbox@receiver", 4, "hi", 2);
    nm->no_name = tp_send_named(ctx, "nobody@receiver", 4, "lost", 4);
    nm->unknown_node = tp_send_named(ctx, "inbox@nowhere", 4, "x", 1);
}

struct burst {
    tp_pid to;
    int n;
    int failed;
};

static void
send_burst(tp_ctx *ctx, void *arg)
{
    struct burst *b = arg;

    for (int i = 0; i < b->n; i++) {
        uint32_t seq = (uint32_t)i;
        if (tp_send(ctx, b->to, 5, &seq, sizeof(seq)) != 0)
            b->failed++;
    }
}

static void
test_cluster_send_order_10000(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *src, *dst;
    struct burst bu = {.n = 10000};
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "sender");
    b = node_new(&n, "receiver");
    wait_node(a, "receiver");
    wait_node(b, "sender");
    src = tpt_probe_new(a, false);
    dst = tpt_probe_new(b, false);
    bu.to = tp_cluster_pid(b, tpt_probe_pid(dst));
    tpt_probe_do(src, send_burst, &bu);
    assert_int_equal(bu.failed, 0);
    for (int i = 0; i < bu.n; i++) {
        uint32_t seq;
        assert_int_equal(tpt_probe_wait(dst, 5, 30000, &rec), 0);
        memcpy(&seq, rec.data, sizeof(seq));
        assert_int_equal(seq, (uint32_t)i);
        assert_true(rec.from == tp_cluster_pid(a, tpt_probe_pid(src)));
    }
    /* tp_send_named("name@node"): a name registered on that node. */
    {
        struct named nm;
        assert_int_equal(tp_register(b, "inbox", tpt_probe_pid(dst)), 0);
        tpt_probe_do(src, send_named, &nm);
        assert_int_equal(nm.ok, 0);
        assert_int_equal(nm.no_name, 0); /* a dead letter over there */
        assert_int_equal(nm.unknown_node, -ENOTCONN);
        assert_int_equal(tpt_probe_wait(dst, 4, 10000, &rec), 0);
        assert_memory_equal(rec.data, "hi", 2);
        assert_true(rec.from == tp_cluster_pid(a, tpt_probe_pid(src)));
    }
    tpt_probe_free(src);
    tpt_probe_free(dst);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

struct req {
    tp_pid to;
    uint32_t type, timeout;
    int err;
    uint64_t ref;
};

static void
do_request(tp_ctx *ctx, void *arg)
{
    struct req *r = arg;

    r->err = tp_request(ctx, r->to, r->type, "ping", 4, r->timeout, &r->ref);
}

static void
test_cluster_request_reply_timeout_noproc(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *p;
    tp_pid echo, dead;
    struct req r = {.type = 1, .timeout = 10000};
    char reply[16];
    size_t rlen = 0;
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "client");
    b = node_new(&n, "server");
    wait_node(a, "server");
    wait_node(b, "client");
    echo = spawn_echo(b);
    p = tpt_probe_new(a, false);
    /* A reply. */
    r.to = echo;
    tpt_probe_do(p, do_request, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 10000, &rec), 0);
    assert_true(rec.ref == r.ref);
    assert_memory_equal(rec.data, "ping", 4);
    /* A timeout: the server ignores type 99. */
    r.type = 99;
    r.timeout = 300;
    tpt_probe_do(p, do_request, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_TIMEOUT, 10000, &rec), 0);
    assert_true(rec.ref == r.ref);
    /* noproc: a dead remote actor. */
    dead = spawn_echo(b);
    assert_int_equal(
        tp_runtime_exit_pid(b, tp_pid_with_node(dead, 0),
                            &(tp_exit_reason){TP_EXIT_KILL, 0, NULL}),
        0);
    tpt_idle(b);
    r.to = dead;
    r.type = 1;
    r.timeout = 10000;
    tpt_probe_do(p, do_request, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 10000, &rec), 0);
    assert_true(rec.ref == r.ref);
    /* A synchronous call from outside the runtime, across nodes. */
    assert_int_equal(tp_runtime_call(a, echo, 1, "abc", 3, reply, sizeof(reply),
                                     &rlen, 10000),
                     0);
    assert_int_equal(rlen, 3);
    assert_memory_equal(reply, "abc", 3);
    assert_int_equal(tp_runtime_call(a, echo, 99, "abc", 3, NULL, 0, NULL, 300),
                     -ETIMEDOUT);
    tpt_probe_free(p);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

struct kinds {
    tp_pid to;
    int blob, packed, big, again, sent;
    size_t big_len;
};

static void
send_kinds(tp_ctx *ctx, void *arg)
{
    struct kinds *k = arg;
    tp_blob *b = tp_blob_new("blob!", 5);
    void *big = calloc(1, k->big_len);
    tp_pack p;

    k->blob = tp_send_blob(ctx, k->to, 6, b);
    tp_blob_unref(b);
    tp_pack_init(&p);
    tp_pack_array(&p, 2);
    tp_pack_cstr(&p, "hi");
    tp_pack_int(&p, 7);
    k->packed = tp_send_packed(ctx, k->to, 7, &p);
    tp_pack_fini(&p);
    k->big = tp_send(ctx, k->to, 8, big, k->big_len);
    free(big);
    /* A burst far past the peer's queue bound: some are refused. */
    for (int i = 0; i < 20000; i++) {
        int r = tp_send(ctx, k->to, 9, &i, sizeof(i));
        if (r == -EAGAIN)
            k->again++;
        else if (r == 0)
            k->sent++;
    }
}

static void
test_cluster_blob_packed_bounds(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_cluster_options o;
    tp_cluster_peer_stats ps;
    tp_cluster_summary sum;
    tpt_probe *src, *dst;
    struct kinds k = {0};
    tpt_rec rec;
    int last = -1;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = tpt_runtime(2);
    node_opts(&o, &n, "small-queue");
    o.max_queue = 8;
    assert_int_equal(tp_cluster_start(a, &o), 0);
    b = node_new(&n, "sink");
    wait_node(a, "sink");
    wait_node(b, "small-queue");
    tp_cluster_stats(a, &sum, NULL, 0);
    assert_true(sum.max_payload >= 1024);
    src = tpt_probe_new(a, false);
    dst = tpt_probe_new(b, false);
    k.to = tp_cluster_pid(b, tpt_probe_pid(dst));
    k.big_len = (size_t)sum.max_payload; /* + header: too big */
    tpt_probe_do(src, send_kinds, &k);
    assert_int_equal(k.blob, 0);
    assert_int_equal(k.packed, 0);
    assert_int_equal(k.big, -EMSGSIZE);
    assert_true(k.again > 0);
    assert_int_equal(k.again + k.sent, 20000);
    assert_int_equal(tpt_probe_wait(dst, 6, 10000, &rec), 0);
    assert_int_equal(rec.len, 5);
    assert_memory_equal(rec.data, "blob!", 5);
    assert_int_equal(tpt_probe_wait(dst, 7, 10000, &rec), 0);
    assert_int_equal(rec.len, 5); /* [ "hi", 7 ] */
    /* What was accepted arrives, in order, nothing twice. */
    for (int i = 0; i < k.sent; i++) {
        int v;
        assert_int_equal(tpt_probe_wait(dst, 9, 10000, &rec), 0);
        memcpy(&v, rec.data, sizeof(v));
        assert_true(v > last);
        last = v;
    }
    assert_int_equal(tp_cluster_stats(a, &sum, &ps, 1), 1);
    assert_true(ps.drops_out >= (uint64_t)k.again);
    assert_true(ps.msgs_out >= (uint64_t)k.sent);
    tpt_probe_free(src);
    tpt_probe_free(dst);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

/* ---------------------------------------------------------------------- */
/* Links, monitors, node events                                           */

struct watch {
    tp_pid target;
    uint64_t ref;
    bool link, monitor, nodes;
};

static void
do_watch(tp_ctx *ctx, void *arg)
{
    struct watch *w = arg;

    if (w->monitor)
        TPT_CHECK_INT_EQ(tp_monitor(ctx, w->target, &w->ref), 0);
    if (w->link)
        TPT_CHECK_INT_EQ(tp_link(ctx, w->target), 0);
    if (w->nodes)
        TPT_CHECK_INT_EQ(tp_monitor_node(ctx, true), 0);
}

static void
test_cluster_monitor_link_remote(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *p;
    struct watch w = {.monitor = true};
    tp_pid echo;
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "watcher");
    b = node_new(&n, "watched");
    wait_node(a, "watched");
    wait_node(b, "watcher");
    p = tpt_probe_new(a, true);
    /* DOWN noproc for a remote pid that is already dead. */
    echo = spawn_echo(b);
    tp_runtime_exit_pid(b, tp_pid_with_node(echo, 0),
                        &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tpt_idle(b);
    w.target = echo;
    tpt_probe_do(p, do_watch, &w);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_true(rec.pid == echo);
    assert_int_equal(rec.kind, TP_EXIT_NOPROC);
    assert_true(rec.ref == w.ref);
    /* A link to a dead remote pid: EXIT noproc (trapped). */
    w.monitor = false;
    w.link = true;
    tpt_probe_do(p, do_watch, &w);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    assert_true(rec.pid == echo);
    assert_int_equal(rec.kind, TP_EXIT_NOPROC);
    /* Link + monitor a live one; it exits with a user reason. */
    echo = spawn_echo(b);
    w.target = echo;
    w.monitor = true;
    tpt_probe_do(p, do_watch, &w);
    tpt_sleep_ms(200); /* let both signals land (no ack to wait for) */
    assert_int_equal(tp_runtime_send(b, tp_pid_with_node(echo, 0), 77, NULL, 0),
                     0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_USER);
    assert_int_equal(rec.code, 42);
    assert_string_equal(rec.text, "asked to");
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    assert_true(rec.pid == echo);
    assert_int_equal(rec.kind, TP_EXIT_USER);
    /* tp_exit_pid across nodes ends a remote actor: its monitor fires. */
    echo = spawn_echo(b);
    w.target = echo;
    w.link = false;
    tpt_probe_do(p, do_watch, &w);
    tpt_sleep_ms(200);
    assert_int_equal(
        tp_runtime_exit_pid(a, echo, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL}),
        0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_KILLED);
    tpt_probe_free(p);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

static void
test_cluster_node_left_noconnection(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *p;
    struct watch w = {.monitor = true, .link = true, .nodes = true};
    tp_node_event ev;
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "stays");
    b = node_new(&n, "leaves");
    wait_node(a, "leaves");
    wait_node(b, "stays");
    p = tpt_probe_new(a, true);
    w.target = spawn_echo(b);
    tpt_probe_do(p, do_watch, &w);
    tpt_sleep_ms(200);
    node_free(b); /* graceful: BYE, then its runtime stops */
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_DOWN, 10000, &rec), 0);
    memcpy(&ev, rec.data, sizeof(ev));
    assert_string_equal(ev.name, "leaves");
    assert_int_equal(ev.reason, 2);
    /* Its actor's exit (shutdown, sent before BYE) or noconnection. */
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_true(rec.kind == TP_EXIT_NOCONNECTION ||
                rec.kind == TP_EXIT_SHUTDOWN || rec.kind == TP_EXIT_KILLED);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    wait_node_gone(a, "leaves");
    /* A link to a node that is gone: noconnection at once. */
    w.monitor = false;
    w.nodes = false;
    tpt_probe_do(p, do_watch, &w);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    tpt_probe_free(p);
    node_free(a);
    nats_kill(&n);
}

/* The child node: joins, spawns an echo, writes its cluster pid to fd,
 * then waits to be killed. */
static int
child_main(const char *url, int fd, const char *name)
{
    struct nats n = {0};
    tp_runtime *rt = NULL;
    tp_runtime_options ro;
    tp_cluster_options o;
    tp_pid pid;

    snprintf(n.url, sizeof(n.url), "%s", url);
    tp_runtime_options_init(&ro);
    ro.schedulers = 1;
    ro.pin = false;
    if (tp_runtime_create(&rt, &ro) != 0 || tp_runtime_start(rt) != 0)
        return 2;
    node_opts(&o, &n, name);
    if (tp_cluster_start(rt, &o) != 0)
        return 3;
    if (tp_runtime_spawn(rt, &echo_b, NULL, NULL, &pid) != 0)
        return 4;
    pid = tp_cluster_pid(rt, pid);
    if (write(fd, &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
        return 5;
    for (;;)
        pause();
}

static void
test_cluster_sigkill_node_down(void **state)
{
    struct nats n = {0};
    tp_runtime *a;
    tpt_probe *p;
    struct watch w = {.monitor = true, .link = true, .nodes = true};
    int fds[2];
    pid_t child;
    tp_node_event ev;
    tpt_rec rec;
    uint64_t t0, took;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "survivor");
    p = tpt_probe_new(a, true);
    w.target = TP_PID_NONE;
    tpt_probe_do(p, do_watch, &(struct watch){.nodes = true});
    assert_int_equal(pipe(fds), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", fds[1]);
        execl(self_exe, self_exe, "--child-node", n.url, fd, "doomed",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &w.target, sizeof(w.target)),
                     (ssize_t)sizeof(w.target));
    close(fds[0]);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_UP, 20000, &rec), 0);
    memcpy(&ev, rec.data, sizeof(ev));
    assert_string_equal(ev.name, "doomed");
    assert_int_equal(ev.node, tp_pid_node(w.target));
    tpt_probe_do(p, do_watch, &w);
    tpt_sleep_ms(300);
    t0 = tp_now_ns();
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_DOWN, 20000, &rec), 0);
    took = tp_now_ns() - t0;
    memcpy(&ev, rec.data, sizeof(ev));
    assert_int_equal(ev.reason, 1);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    assert_true(rec.pid == w.target);
    assert_true(rec.ref == w.ref);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    assert_true(rec.pid == w.target);
    print_message("node down detected %.2f s after SIGKILL\n", took / 1e9);
    {
        tp_cluster_peer_stats ps;
        assert_int_equal(tp_cluster_stats(a, NULL, &ps, 1), 1);
        assert_string_equal(ps.name, "doomed");
        assert_false(ps.up);
        assert_int_equal(ps.downs, 1);
        /* Silence, or at once the end of its direct link. */
        assert_true(ps.hb_misses >= 2 || ps.link_breaks == 1);
        assert_true(ps.msgs_in > 0 && ps.msgs_out > 0);
    }
    tpt_probe_free(p);
    node_free(a);
    nats_kill(&n);
}

/* Starts a child node called name; returns its pid, *echo its actor. */
static pid_t
child_start(const struct nats *n, const char *name, tp_pid *echo)
{
    int fds[2];
    pid_t child;

    assert_int_equal(pipe(fds), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", fds[1]);
        execl(self_exe, self_exe, "--child-node", n->url, fd, name,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], echo, sizeof(*echo)), (ssize_t)sizeof(*echo));
    close(fds[0]);
    return child;
}

static void
test_cluster_node_restarted_same_name(void **state)
{
    struct nats n = {0};
    tp_runtime *a;
    tpt_probe *p;
    struct watch w = {.monitor = true};
    tp_pid again;
    pid_t child;
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "observer");
    p = tpt_probe_new(a, true);
    tpt_probe_do(p, do_watch, &(struct watch){.nodes = true});
    child = child_start(&n, "phoenix", &w.target);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_UP, 20000, &rec), 0);
    tpt_probe_do(p, do_watch, &w);
    tpt_sleep_ms(300);
    /* Killed and back under its name before its silence is noticed: the
     * new incarnation takes the old one down with it. */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = child_start(&n, "phoenix", &again);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 20000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    assert_true(rec.pid == w.target);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_DOWN, 20000, &rec), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_UP, 20000, &rec), 0);
    assert_int_equal(wait_node(a, "phoenix"), tp_pid_node(again));
    /* It came back under another id: pids of its previous life stay
     * dead instead of naming actors of the new one. */
    assert_int_not_equal(tp_pid_node(again), tp_pid_node(w.target));
    assert_int_equal(tp_runtime_send(a, w.target, 1, "x", 1), -ENOTCONN);
    assert_int_equal(tp_runtime_call(a, again, 1, "x", 1, NULL, 0, NULL, 10000),
                     0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    tpt_probe_free(p);
    node_free(a);
    nats_kill(&n);
}

/* ---------------------------------------------------------------------- */
/* NATS restart                                                           */

static void
test_cluster_nats_restart_reconnects(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *dst;
    tp_pid to;
    tp_cluster_summary sa, sb;
    int r = 0;
    tpt_rec rec;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "left");
    b = node_new(&n, "right");
    wait_node(a, "right");
    wait_node(b, "left");
    dst = tpt_probe_new(b, false);
    to = tp_cluster_pid(b, tpt_probe_pid(dst));
    assert_int_equal(tp_runtime_send(a, to, 1, "x", 1), 0);
    assert_int_equal(tpt_probe_wait(dst, 1, 10000, &rec), 0);
    nats_kill(&n);
    /* Sends fail clearly (or are counted as dropped) while it is away:
     * never queued without bound. */
    for (int i = 0; i < 1000 && r != -ENOTCONN; i++) {
        r = tp_runtime_send(a, to, 2, "y", 1);
        tpt_sleep_ms(10);
    }
    assert_int_equal(r, -ENOTCONN);
    tp_cluster_stats(a, &sa, NULL, 0);
    assert_false(sa.connected);
    assert_true(sa.drops > 0);
    nats_spawn(&n); /* same port */
    /* Both nodes reconnect by themselves and see each other again. */
    for (int i = 0; i < 2000; i++) {
        tp_cluster_stats(a, &sa, NULL, 0);
        tp_cluster_stats(b, &sb, NULL, 0);
        if (sa.connected && sa.reconnects > 0 && sb.connected &&
            sb.reconnects > 0)
            break;
        tpt_sleep_ms(10);
    }
    assert_true(sa.connected && sb.connected);
    assert_true(sa.reconnects > 0 && sb.reconnects > 0);
    wait_node(a, "right");
    wait_node(b, "left");
    while (tpt_probe_wait(dst, 2, 0, &rec) == 0)
        ; /* whatever got through before the server died */
    /* At most once: a message published while the other end was still
     * resubscribing may be lost; one of these gets through. */
    r = -1;
    for (int i = 0; i < 50 && r != 0; i++) {
        assert_int_equal(tp_runtime_send(a, to, 3, "z", 1), 0);
        r = tpt_probe_wait(dst, 3, 200, &rec);
    }
    assert_int_equal(r, 0);
    tpt_probe_free(dst);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

/* ---------------------------------------------------------------------- */
/* Global names                                                           */

static tp_pid
wait_whereis(tp_runtime *rt, const char *name, tp_pid want)
{
    tp_pid got = TP_PID_NONE;

    for (int i = 0; i < 500; i++) {
        if ((got = tp_whereis_global(rt, name)) == want)
            break;
        tpt_sleep_ms(20);
    }
    return got;
}

struct racer {
    tp_runtime *rt;
    tp_pid pid;
    int won;
};

static void *
race(void *arg)
{
    struct racer *r = arg;
    char name[32];

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "race-%d", i);
        if (tp_register_global(r->rt, name, r->pid) == 0)
            r->won++;
    }
    return NULL;
}

static void
test_cluster_global_names_unique_released(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_pid x, y;
    pthread_t t1, t2;
    struct racer ra, rb;

    (void)state;
    if (!nats_start_js(&n))
        skip();
    a = node_new(&n, "gn-a");
    b = node_new(&n, "gn-b");
    wait_node(a, "gn-b");
    wait_node(b, "gn-a");
    x = spawn_echo(a);
    y = spawn_echo(b);
    assert_int_equal(tp_register_global(a, "svc", x), 0);
    assert_int_equal(tp_register_global(a, "svc", x), 0); /* idempotent */
    assert_int_equal(tp_register_global(b, "svc", y), -EEXIST);
    assert_int_equal(tp_register_global(b, "bad name", y), -EINVAL);
    assert_int_equal(tp_register_global(b, "svc2", x), -EINVAL); /* remote */
    assert_true(tp_whereis_global(b, "svc") == x);
    assert_true(tp_whereis_global(a, "svc") == x);
    /* Each node's copy follows (no round trip per lookup). */
    for (int i = 0; i < 500 && tp_whereis_global_cached(b, "svc") != x; i++)
        tpt_sleep_ms(10);
    assert_true(tp_whereis_global_cached(b, "svc") == x);
    assert_true(tp_whereis_global_cached(a, "svc") == x);
    assert_true(tp_whereis_global(a, "nobody") == TP_PID_NONE);
    /* Released when the owner dies. */
    tp_runtime_exit_pid(a, x, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    assert_true(wait_whereis(b, "svc", TP_PID_NONE) == TP_PID_NONE);
    for (int i = 0; i < 500 && tp_whereis_global_cached(b, "svc") != 0; i++)
        tpt_sleep_ms(10);
    assert_true(tp_whereis_global_cached(b, "svc") == TP_PID_NONE);
    assert_int_equal(tp_register_global(b, "svc", y), 0);
    assert_true(tp_whereis_global(a, "svc") == y);
    /* Unregister: only by the owner. */
    assert_int_equal(tp_unregister_global(a, "svc", spawn_echo(a)), -ENOENT);
    assert_int_equal(tp_unregister_global(b, "svc", y), 0);
    assert_true(tp_whereis_global(a, "svc") == TP_PID_NONE);
    /* Two nodes race for 20 names: each has exactly one owner. */
    ra = (struct racer){a, spawn_echo(a), 0};
    rb = (struct racer){b, spawn_echo(b), 0};
    assert_int_equal(pthread_create(&t1, NULL, race, &ra), 0);
    assert_int_equal(pthread_create(&t2, NULL, race, &rb), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(ra.won + rb.won, 20);
    /* Released when its node leaves. */
    assert_int_equal(tp_register_global(b, "svc", y), 0);
    node_free(b);
    x = spawn_echo(a);
    assert_int_equal(tp_register_global(a, "svc", x), 0);
    assert_true(tp_whereis_global(a, "svc") == x);
    node_free(a);
    nats_kill(&n);
}

/* A gen_server on another node: tp_gs_call and tp_gs_cast reach it; the
 * cast's handler answers the pid carried in its payload. Then the
 * console of the calling node lists the peer (`nodes`) and exports it in
 * /metrics. */
static int
gs_call(tp_ctx *ctx, void *state, const tp_msg *msg, tp_gs_from *from)
{
    (void)state;
    tp_gs_reply(ctx, from, msg->data, msg->len);
    return TP_GS_REPLY;
}

static int
gs_cast(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    tp_pid to;

    (void)state;
    if (msg->len == sizeof(to)) {
        memcpy(&to, msg->data, sizeof(to));
        tp_send(ctx, to, 42, "cast!", 5);
    }
    return TP_GS_NOREPLY;
}

static const tp_gen_server gs_echo = {
    TP_GEN_SERVER_BEHAVIOUR("gs.echo", 0),
    .handle_call = gs_call,
    .handle_cast = gs_cast,
};

struct gs_arg {
    tp_pid server, back;
    int call, cast;
    uint64_t ref;
};

static void
do_gs(tp_ctx *ctx, void *arg)
{
    struct gs_arg *g = arg;

    g->call = tp_gs_call(ctx, g->server, 5, "hello", 5, 10000, &g->ref);
    g->cast = tp_gs_cast(ctx, g->server, 6, &g->back, sizeof(g->back));
}

/* An actor that keeps what TP_MSG_NAME_CONFLICT told it (arg: a slot). */
struct conflict_slot {
    _Atomic int n;
    tp_name_conflict last; /* written before n is bumped (seq_cst) */
};

static int
loser_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(struct conflict_slot **)state = arg;
    return 0;
}

static void
loser_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct conflict_slot *slot = *(struct conflict_slot **)state;

    (void)ctx;
    if (m->type == TP_MSG_NAME_CONFLICT && m->len == sizeof(slot->last)) {
        memcpy(&slot->last, m->data, sizeof(slot->last));
        atomic_fetch_add(&slot->n, 1);
    }
}

static const tp_behaviour loser_b = {.name = "loser",
                                     .state_size = sizeof(void *),
                                     .init = loser_init,
                                     .handle = loser_handle};

static tp_pid
spawn_loser(tp_runtime *rt, struct conflict_slot *slot)
{
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn(rt, &loser_b, slot, NULL, &pid), 0);
    return tp_cluster_pid(rt, pid);
}

static uint64_t
name_conflicts(tp_runtime *rt)
{
    tp_cluster_summary sum;

    assert_true(tp_cluster_stats(rt, &sum, NULL, 0) >= 0);
    return sum.name_conflicts;
}

/* A partition simulated in one process (tp__cluster_isolate: node b stops
 * beating and reading frames, so each side sees the other down) over one
 * JetStream bucket: "svc", held by an actor of b, is registered again on
 * a while b is cut off; "keep", also b's, counts as free on a meanwhile
 * but nobody takes it. After the heal: svc has one owner everywhere (a's,
 * the bucket's), b's actor is told and the conflict counted once (on b);
 * keep is b's, no conflict. (tests/test_cluster_partition.c does it with
 * a real cut.) */
static void
test_cluster_global_name_conflict_after_partition(void **state)
{
    struct conflict_slot sa = {0}, sb = {0};
    tp_name_conflict recent[4];
    tp_global_name held[8];
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_pid ya, yb, kb;
    tp_console_opts co;
    tp_console *con;
    char out[16384], text[32];
    tcc *t;
    int k;

    (void)state;
    if (!nats_start_js(&n))
        skip();
    a = node_new(&n, "nc-a");
    b = node_new(&n, "nc-b");
    wait_node(a, "nc-b");
    wait_node(b, "nc-a");
    ya = spawn_loser(a, &sa);
    yb = spawn_loser(b, &sb);
    kb = spawn_echo(b);
    assert_int_equal(tp_register_global(b, "svc", yb), 0);
    assert_int_equal(tp_register_global(b, "keep", kb), 0);
    assert_int_equal(tp_register_global(a, "svc", ya), -EEXIST);
    assert_int_equal(tp_cluster_names(b, held, 8), 2);

    /* The cut: each side sees the other down. */
    assert_int_equal(tp__cluster_isolate(b, true), 0);
    wait_node_gone(a, "nc-b");
    wait_node_gone(b, "nc-a");
    /* a: b's names count as free; svc is taken. b (which still reaches
     * the bucket here) sees a's owner as gone too. */
    assert_true(tp_whereis_global(a, "keep") == TP_PID_NONE);
    assert_int_equal(tp_register_global(a, "svc", ya), 0);
    assert_true(tp_whereis_global(a, "svc") == ya);
    assert_true(tp_whereis_global(b, "svc") == TP_PID_NONE);
    assert_true(tp_whereis_global(b, "keep") == kb);
    assert_int_equal(atomic_load(&sb.n), 0);

    /* The heal. */
    assert_int_equal(tp__cluster_isolate(b, false), 0);
    wait_node(a, "nc-b");
    wait_node(b, "nc-a");
    for (k = 0; k < 500 * (int)tpt_slow() && atomic_load(&sb.n) == 0; k++)
        tpt_sleep_ms(20);
    /* The loser was told, once, with the winner. */
    assert_int_equal(atomic_load(&sb.n), 1);
    assert_string_equal(sb.last.name, "svc");
    assert_true(sb.last.winner == ya);
    assert_true(sb.last.loser == yb);
    assert_int_equal(atomic_load(&sa.n), 0);
    /* One owner everywhere, authoritative and cached. */
    assert_true(tp_whereis_global(a, "svc") == ya);
    assert_true(tp_whereis_global(b, "svc") == ya);
    for (k = 0; k < 500 && tp_whereis_global_cached(b, "svc") != ya; k++)
        tpt_sleep_ms(10);
    assert_true(tp_whereis_global_cached(b, "svc") == ya);
    assert_true(tp_whereis_global_cached(a, "svc") == ya);
    /* Reported: counted once in the cluster (on the loser's node). */
    assert_int_equal(name_conflicts(b), 1);
    assert_int_equal(name_conflicts(a), 0);
    assert_int_equal(tp_cluster_name_conflicts(b, recent, 4), 1);
    assert_string_equal(recent[0].name, "svc");
    assert_true(recent[0].winner == ya);
    assert_int_equal(tp_cluster_name_conflicts(a, recent, 4), 0);
    /* keep, untaken, is b's again everywhere: no conflict. */
    assert_true(wait_whereis(a, "keep", kb) == kb);
    assert_int_equal(tp_cluster_names(b, held, 8), 1);
    assert_string_equal(held[0].name, "keep");
    assert_true(held[0].pid == kb);
    assert_int_equal(tp_cluster_names(a, held, 8), 1);
    assert_string_equal(held[0].name, "svc");
    /* The loser cannot take it back while the winner lives; once the
     * winner is gone it can. */
    assert_int_equal(tp_register_global(b, "svc", yb), -EEXIST);
    tp_runtime_exit_pid(a, ya, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    assert_true(wait_whereis(b, "svc", TP_PID_NONE) == TP_PID_NONE);
    for (k = 0; k < 250 && tp_register_global(b, "svc", yb) != 0; k++)
        tpt_sleep_ms(20);
    assert_true(tp_whereis_global(a, "svc") == yb);
    assert_int_equal(name_conflicts(b), 1);
    /* Reported by b's console: `names` and /metrics. */
    tp_console_opts_init(&co);
    assert_int_equal(tp__console_create(b, &co, &con), 0);
    t = tcc_open(con, false);
    assert_true(tcc_cmd(t, "json names", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "\"held\":2"));
    assert_non_null(strstr(out, "\"conflicts\":1"));
    assert_non_null(strstr(out, "\"lost\":[{\"name\":\"svc\""));
    assert_non_null(strstr(out, tp_pid_format(ya, text, sizeof(text))));
    assert_true(tcc_cmd(t, "metrics", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "troupe_cluster_name_conflicts_total 1"));
    assert_non_null(strstr(out, "troupe_cluster_global_names 2"));
    tcc_close(t);
    tp__console_destroy(con);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

/* A write of the bucket that names a live actor of node b which b never
 * registered (what a registration that timed out on a cut-off node turns
 * into when its request reaches the server after the heal): b's watcher
 * sees it and releases it. Written here with libnats directly. */
static void
test_cluster_global_name_orphan_released(void **state)
{
    struct nats n = {0};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    unsigned char v[8];
    tp_runtime *a, *b;
    uint64_t rev;
    tp_pid kb, mine;
    int k;

    (void)state;
    if (!nats_start_js(&n))
        skip();
    a = node_new(&n, "or-a");
    b = node_new(&n, "or-b");
    wait_node(a, "or-b");
    wait_node(b, "or-a");
    kb = spawn_echo(b);
    mine = spawn_echo(a);
    assert_int_equal(tp_register_global(a, "real", mine), 0); /* the bucket */
    assert_int_equal(natsConnection_ConnectTo(&nc, n.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, "tp_tptest"), NATS_OK);
    for (int i = 0; i < 8; i++)
        v[i] = (unsigned char)(kb >> (8 * i));
    assert_int_equal(kvStore_Create(&rev, kv, "orphan", v, 8), NATS_OK);
    for (k = 0; k < 500 && tp_whereis_global(a, "orphan") != TP_PID_NONE; k++)
        tpt_sleep_ms(10);
    assert_true(tp_whereis_global(a, "orphan") == TP_PID_NONE);
    /* A real registration of a's is left alone; kb can register it. */
    assert_true(tp_whereis_global(b, "real") == mine);
    assert_int_equal(tp_register_global(b, "orphan", kb), 0);
    tpt_sleep_ms(300); /* the watcher sees b's own write: still b's */
    assert_true(tp_whereis_global(a, "orphan") == kb);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

static void
tree_worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
}

static const tp_behaviour tree_worker = {.name = "tree-worker",
                                         .handle = tree_worker_handle};

/* On rt: supervisor "app" (db: worker, pool: a dynamic supervisor with two
 * temporary children). */
static void
back_tree(tp_runtime *rt, tp_pid *app)
{
    static tp_child_spec kids[2];
    static tp_sup_spec top, pool;
    tp_child_info ci[2];
    size_t total = 0;

    tp_sup_spec_init(&pool, TP_DYNAMIC);
    tp_child_spec_init(&pool.child_template, "conn", &tree_worker, NULL);
    pool.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&kids[0], "db", &tree_worker, NULL);
    tp_child_spec_init(&kids[1], "pool", &tp_supervisor_behaviour, &pool);
    kids[1].type = TP_SUPERVISOR;
    tp_sup_spec_init(&top, TP_ONE_FOR_ONE);
    top.children = kids;
    top.nchildren = 2;
    assert_int_equal(tp_runtime_supervisor_start(rt, "app", &top, app), 0);
    assert_int_equal(tp_supervisor_which_children(rt, *app, ci, 2, &total, 0),
                     0);
    assert_int_equal(total, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            tp_supervisor_start_child(rt, ci[1].pid, NULL, NULL, NULL, 0), 0);
}

/* ---- a hostile answer to tree @NODE -------------------------------------*/

static _Atomic int fake_case;

static void
fake_entry(tp_pack *p, uint64_t first, uint64_t n)
{
    tp_pack_array(p, 12);
    tp_pack_cstr(p, "e");
    tp_pack_uint(p, 1);
    tp_pack_cstr(p, "fake");
    tp_pack_uint(p, 1);
    tp_pack_uint(p, 0);
    tp_pack_uint(p, 0);
    tp_pack_bool(p, true);
    tp_pack_bool(p, false);
    tp_pack_bool(p, true);
    tp_pack_uint(p, first);
    tp_pack_uint(p, n);
    tp_pack_uint(p, n);
}

/* Answers TP_CLUSTER_TREE with the payload of case fake_case. */
static void
fake_service_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    int c = atomic_load(&fake_case);
    tp_pack p;

    (void)state;
    if (!tp_msg_is_request(m) || m->type != TP_CLUSTER_TREE)
        return;
    if (c == 0) {
        tp_reply(ctx, m, "\xc1", 1); /* not MessagePack */
        return;
    }
    tp_pack_init(&p);
    tp_pack_map(&p, c == 1 ? 1 : 2);
    if (c == 1) {
        tp_pack_cstr(&p, "error");
        tp_pack_cstr(&p, "boom");
    } else {
        tp_pack_cstr(&p, "node");
        tp_pack_cstr(&p, "back");
        tp_pack_cstr(&p, "nodes");
    }
    switch (c) {
    case 2: /* empty */
        tp_pack_array(&p, 0);
        break;
    case 3: /* the root is its own child */
        tp_pack_array(&p, 1);
        fake_entry(&p, 0, 1);
        break;
    case 4: /* entry 2 claimed by two supervisors */
        tp_pack_array(&p, 3);
        fake_entry(&p, 1, 2);
        fake_entry(&p, 2, 1);
        fake_entry(&p, 0, 0);
        break;
    case 5: /* a chain 40 levels deep */
        tp_pack_array(&p, 40);
        for (int i = 0; i < 40; i++)
            fake_entry(&p, i < 39 ? (uint64_t)i + 1 : 0, i < 39 ? 1 : 0);
        break;
    case 6: /* a block past the end */
        tp_pack_array(&p, 2);
        fake_entry(&p, 1, 5);
        fake_entry(&p, 0, 0);
        break;
    case 7: /* a pid that is a string */
        tp_pack_array(&p, 1);
        tp_pack_array(&p, 12);
        tp_pack_cstr(&p, "e");
        tp_pack_cstr(&p, "<1.2>");
        for (int i = 0; i < 10; i++)
            tp_pack_uint(&p, 0);
        break;
    case 8: /* fine: a root with one child */
        tp_pack_array(&p, 2);
        fake_entry(&p, 1, 1);
        fake_entry(&p, 0, 0);
        break;
    }
    tp_reply(ctx, m, tp_pack_data(&p), tp_pack_len(&p));
    tp_pack_fini(&p);
}

static const tp_behaviour fake_service = {.name = "fake-service",
                                          .handle = fake_service_handle};

/* Node "back" answers tree requests with garbage: front's console refuses
 * each answer with an error and stays usable. */
static void
test_cluster_tree_hostile_answer(void **state)
{
    static const char *const want[] = {
        "error: node back: malformed tree", "error: node back: boom",
        "error: node back: malformed tree", "error: node back: malformed tree",
        "error: node back: malformed tree", "error: node back: malformed tree",
        "error: node back: malformed tree", "error: node back: malformed tree"};
    struct tp__cluster *cl;
    struct nats n = {0};
    tp_runtime *a, *b;
    tp_console_opts co;
    tp_console *con;
    char out[16384];
    tp_pid fake;
    tcc *t;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "front");
    b = node_new(&n, "back");
    wait_node(a, "back");
    wait_node(b, "front");
    /* back's service actor is replaced by the fake one. */
    assert_int_equal(tp_runtime_spawn(b, &fake_service, NULL, NULL, &fake), 0);
    assert_non_null(cl = tp__cluster_get(b));
    tp__service_stop(cl);
    atomic_store(&cl->service, fake);
    tp__cluster_put(cl);
    tp_console_opts_init(&co);
    assert_int_equal(tp__console_create(a, &co, &con), 0);
    t = tcc_open(con, false);
    for (int c = 0; c < 8; c++) {
        atomic_store(&fake_case, c);
        assert_true(tcc_cmd(t, "tree @back", out, sizeof(out), 15000) > 0);
        if (strncmp(out, want[c], strlen(want[c])) != 0)
            fail_msg("case %d: %s", c, out);
    }
    atomic_store(&fake_case, 8);
    assert_true(tcc_cmd(t, "tree @back", out, sizeof(out), 15000) > 0);
    assert_non_null(strstr(out, "node back\n"));
    assert_non_null(strstr(out, "└─ e  "));
    assert_true(tcc_cmd(t, "stats", out, sizeof(out), 5000) > 0);
    tcc_close(t);
    tp__console_destroy(con);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

static void
test_cluster_gen_server_and_console(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *p;
    struct gs_arg g = {0};
    tpt_rec rec;
    tp_console_opts co;
    tp_console *con;
    tcc *t;
    char out[16384], want[64];
    tp_pid srv, app;
    int dyn = 0;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "front");
    b = node_new(&n, "back");
    wait_node(a, "back");
    wait_node(b, "front");
    assert_int_equal(tp_gen_server_start(b, &gs_echo, NULL, NULL, &srv), 0);
    back_tree(b, &app);
    p = tpt_probe_new(a, false);
    g.server = tp_cluster_pid(b, srv);
    g.back = tp_cluster_pid(a, tpt_probe_pid(p));
    tpt_probe_do(p, do_gs, &g);
    assert_int_equal(g.call, 0);
    assert_int_equal(g.cast, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 10000, &rec), 0);
    assert_true(rec.ref == g.ref);
    assert_memory_equal(rec.data, "hello", 5);
    assert_int_equal(tpt_probe_wait(p, 42, 10000, &rec), 0);
    assert_memory_equal(rec.data, "cast!", 5);
    /* The console of node "front". */
    tp_console_opts_init(&co);
    assert_int_equal(tp__console_create(a, &co, &con), 0);
    t = tcc_open(con, false);
    assert_true(tcc_cmd(t, "nodes", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "front"));
    assert_non_null(strstr(out, "back"));
    assert_non_null(strstr(out, "up"));
    assert_non_null(strstr(out, "LINK")); /* tcp, connecting or nats */
    assert_true(tcc_cmd(t, "metrics", out, sizeof(out), 10000) > 0);
    assert_non_null(strstr(out, "troupe_cluster_connected 1"));
    assert_non_null(strstr(out, "troupe_cluster_peer_up{peer=\"back\"} 1"));
    assert_non_null(strstr(out, "troupe_cluster_peer_link_tcp{peer=\"back\"}"));
    /* The tree of node "back", asked from front's console: its supervisor
     * "app" with a worker and a child supervisor with two dynamic
     * children, pids in their cluster form. */
    assert_true(tcc_cmd(t, "tree @back", out, sizeof(out), 15000) > 0);
    assert_non_null(strstr(out, "node back\n"));
    assert_non_null(strstr(out, "root"));
    assert_non_null(strstr(out, "└─ app  "));
    assert_non_null(strstr(out, "db  "));
    assert_non_null(strstr(out, "permanent"));
    assert_non_null(strstr(out, "pool  "));
    snprintf(want, sizeof(want), "<%u.", tp_cluster_node_id(b));
    assert_non_null(strstr(out, want)); /* back's pids, cluster form */
    assert_null(strstr(out, "did not answer"));
    tp_pid_format(tp_cluster_pid(b, app), want, sizeof(want));
    assert_non_null(strstr(out, want));
    for (const char *c = out; (c = strstr(c, "temporary")) != NULL; c++)
        dyn++;
    assert_int_equal(dyn, 2); /* pool's two children */
    assert_true(tcc_cmd(t, "json tree @back", out, sizeof(out), 15000) > 0);
    assert_non_null(strstr(out, "\"id\":\"app\""));
    assert_non_null(strstr(out, "\"behaviour\":\"tree-worker\""));
    /* This node's own name is the local tree; errors are clear. */
    assert_true(tcc_cmd(t, "tree @front", out, sizeof(out), 15000) > 0);
    assert_null(strstr(out, "node front"));
    assert_null(strstr(out, "app"));
    assert_true(tcc_cmd(t, "tree @nobody", out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "error: no node nobody up"));
    assert_true(tcc_cmd(t, "tree back", out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "error: usage: tree [@NODE]"));
    tcc_close(t);
    /* The dashboard's endpoint for it (the nodes panel's tree button). */
    t = tcc_open(con, true);
    assert_int_equal(tcc_http(t,
                              "GET /api/tree/%40back HTTP/1.1\r\nHost: "
                              "127.0.0.1\r\n\r\n",
                              out, sizeof(out), 15000),
                     200);
    assert_non_null(strstr(out, "\"ok\":true"));
    assert_non_null(strstr(out, "\"id\":\"pool\""));
    tcc_close(t);
    tp__console_destroy(con);
    tpt_probe_free(p);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

/* ---------------------------------------------------------------------- */
/* Direct links                                                           */

/* rt's stats of the peer called name (false: not known). */
static bool
peer_of(tp_runtime *rt, const char *name, tp_cluster_peer_stats *out)
{
    tp_cluster_peer_stats ps[8];
    int n = tp_cluster_stats(rt, NULL, ps, 8);

    for (int i = 0; i < n && i < 8; i++)
        if (strcmp(ps[i].name, name) == 0) {
            *out = ps[i];
            return true;
        }
    return false;
}

/* Waits until rt's frames to the peer called name take path link. */
static void
wait_link(tp_runtime *rt, const char *name, uint32_t link)
{
    tp_cluster_peer_stats ps = {0};

    for (int i = 0; i < 2000; i++) {
        if (peer_of(rt, name, &ps) && ps.up && ps.link == link)
            return;
        tpt_sleep_ms(10);
    }
    print_message("peer %s: up %d link %u\n", name, ps.up, ps.link);
    fail();
}

/* Receives n numbered messages in order, then checks nothing follows. */
static void
expect_burst(tpt_probe *dst, int n, tp_pid from)
{
    tpt_rec rec;

    for (int i = 0; i < n; i++) {
        uint32_t seq;
        assert_int_equal(tpt_probe_wait(dst, 5, 30000, &rec), 0);
        memcpy(&seq, rec.data, sizeof(seq));
        assert_int_equal(seq, (uint32_t)i);
        assert_true(rec.from == from);
    }
    assert_int_not_equal(tpt_probe_wait(dst, 5, 200, &rec), 0); /* once */
}

static void
test_cluster_links_tcp_order_token(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *src, *dst;
    struct burst bu = {.n = 10000};
    tp_cluster_peer_stats pa = {0}, pb = {0};
    tp_cluster_summary sum;
    char reply[8];
    size_t rlen = 0;
    tp_pid echo;
    tp_cluster_options o;

    (void)state;
    if (!nats_start(&n))
        skip();
    /* Connects are held (test hook) until the burst is queued: every
     * frame of it waits while the link comes up, then goes over TCP. */
    atomic_store(&tp__link_test_hold, true);
    a = tpt_runtime(2);
    b = tpt_runtime(2);
    node_opts(&o, &n, "l-recv");
    o.link_connect_ms = 600000; /* never falls back here */
    assert_int_equal(tp_cluster_start(b, &o), 0);
    o.node_name = "l-send";
    assert_int_equal(tp_cluster_start(a, &o), 0);
    src = tpt_probe_new(a, false);
    dst = tpt_probe_new(b, false);
    bu.to = tp_cluster_pid(b, tpt_probe_pid(dst));
    wait_node(a, "l-recv");
    wait_node(b, "l-send");
    wait_link(a, "l-recv", TP_CLUSTER_LINK_CONNECTING);
    tpt_probe_do(src, send_burst, &bu);
    assert_int_equal(bu.failed, 0);
    assert_true(peer_of(a, "l-recv", &pa));
    assert_int_equal(pa.link, TP_CLUSTER_LINK_CONNECTING);
    assert_int_equal(pa.msgs_out, 0);   /* all held */
    assert_int_equal(pa.queued, 10000); /* still within max_queue */
    atomic_store(&tp__link_test_hold, false);
    expect_burst(dst, bu.n, tp_cluster_pid(a, tpt_probe_pid(src)));
    wait_link(a, "l-recv", TP_CLUSTER_LINK_TCP);
    wait_link(b, "l-send", TP_CLUSTER_LINK_TCP);
    assert_true(peer_of(a, "l-recv", &pa));
    assert_true(peer_of(b, "l-send", &pb));
    assert_true(pa.link_bytes_out >= 10000u * (TP__WIRE_HDR + 4));
    assert_true(pb.link_bytes_in >= 10000u * (TP__WIRE_HDR + 4));
    assert_int_equal(pa.link_fallbacks, 0);
    assert_int_equal(pa.drops_out, 0);
    /* A round trip over both links. */
    echo = spawn_echo(b);
    assert_int_equal(tp_runtime_call(a, echo, 1, "abc", 3, reply, sizeof(reply),
                                     &rlen, 10000),
                     0);
    assert_int_equal(rlen, 3);
    assert_true(peer_of(b, "l-send", &pb));
    assert_true(pb.link_bytes_out > 0);
    /* A stranger without the token is closed unread. */
    assert_true(tp_cluster_stats(b, &sum, NULL, 0) >= 1);
    assert_int_not_equal(sum.link_port, 0);
    {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)sum.link_port)};
        unsigned char pre[32] = {'T', 'P', 'L', 'K', 1, 0};
        struct timeval tv = {10, 0};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char c;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        pre[6] = (unsigned char)tp_cluster_node_id(a);
        pre[7] = (unsigned char)(tp_cluster_node_id(a) >> 8);
        memset(pre + 8, 0x5a, 8); /* not b's token */
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(write(fd, pre, sizeof(pre)), (ssize_t)sizeof(pre));
        assert_int_equal(read(fd, &c, 1), 0); /* closed */
        close(fd);
    }
    assert_true(tp_cluster_stats(b, &sum, NULL, 0) >= 1);
    assert_int_equal(sum.link_refused, 1);
    assert_true(peer_of(b, "l-send", &pb));
    assert_true(pb.up); /* the stranger changed nothing */
    tpt_probe_free(src);
    tpt_probe_free(dst);
    node_free(a);
    node_free(b);
    nats_kill(&n);
}

static void
test_cluster_links_refused_falls_back(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *src, *dst;
    struct burst bu = {.n = 10000};
    tp_cluster_peer_stats pa = {0};

    (void)state;
    if (!nats_start(&n))
        skip();
    /* Both advertise a port nobody listens on: connects are refused. */
    atomic_store(&tp__link_test_port, (uint16_t)free_port());
    b = node_new(&n, "f-recv");
    a = node_new(&n, "f-send");
    src = tpt_probe_new(a, false);
    dst = tpt_probe_new(b, false);
    bu.to = tp_cluster_pid(b, tpt_probe_pid(dst));
    wait_node(a, "f-recv");
    tpt_probe_do(src, send_burst, &bu);
    assert_int_equal(bu.failed, 0);
    expect_burst(dst, bu.n, tp_cluster_pid(a, tpt_probe_pid(src)));
    wait_link(a, "f-recv", TP_CLUSTER_LINK_NATS);
    assert_true(peer_of(a, "f-recv", &pa));
    assert_int_equal(pa.link_fallbacks, 1);
    assert_int_equal(pa.link_bytes_out, 0);
    assert_true(pa.msgs_out >= 10000);
    assert_int_equal(pa.drops_out, 0);
    tpt_probe_free(src);
    tpt_probe_free(dst);
    node_free(a);
    node_free(b);
    atomic_store(&tp__link_test_port, 0);
    nats_kill(&n);
}

static int
kill_link(tp_runtime *rt, uint32_t peer)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    int err;

    assert_non_null(cl);
    err = tp__link_test_kill(cl, peer);
    tp__cluster_put(cl);
    return err;
}

static void
test_cluster_links_broken_down_then_up(void **state)
{
    struct nats n = {0};
    tp_runtime *a, *b;
    tpt_probe *p;
    struct watch w = {.monitor = true, .link = true, .nodes = true};
    tp_cluster_peer_stats pa = {0};
    tp_node_event ev;
    tpt_rec rec;
    char reply[8];
    size_t rlen = 0;

    (void)state;
    if (!nats_start(&n))
        skip();
    a = node_new(&n, "k-a");
    b = node_new(&n, "k-b");
    wait_link(a, "k-b", TP_CLUSTER_LINK_TCP);
    wait_link(b, "k-a", TP_CLUSTER_LINK_TCP);
    w.target = spawn_echo(b);
    p = tpt_probe_new(a, true);
    tpt_probe_do(p, do_watch, &w);
    tpt_idle(a);
    tpt_idle(b);
    assert_int_equal(kill_link(a, tp_cluster_node_id(b)), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_DOWN, 20000, &rec), 0);
    memcpy(&ev, rec.data, sizeof(ev));
    assert_string_equal(ev.name, "k-b");
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    assert_true(rec.ref == w.ref);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 10000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NOCONNECTION);
    /* Back through the next HELLO, with new links both ways. */
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NODE_UP, 20000, &rec), 0);
    wait_link(a, "k-b", TP_CLUSTER_LINK_TCP);
    wait_link(b, "k-a", TP_CLUSTER_LINK_TCP);
    assert_true(peer_of(a, "k-b", &pa));
    assert_true(pa.link_breaks >= 1);
    assert_true(pa.downs >= 1);
    /* The echo died of its link's noconnection: a new one. */
    w.target = spawn_echo(b);
    for (int i = 0; i < 20; i++) { /* b may see a back a beat later */
        rlen = 0;
        if (tp_runtime_call(a, w.target, 1, "abc", 3, reply, sizeof(reply),
                            &rlen, 500) == 0)
            break;
        tpt_sleep_ms(100);
    }
    assert_int_equal(rlen, 3);
    assert_memory_equal(reply, "abc", 3);
    tpt_probe_free(p);
    node_free(b);
    node_free(a);
    nats_kill(&n);
}

static void
test_cluster_wire_node_link_fields(void **state)
{
    struct tp__wire_node w = {.incarnation = 77,
                              .id = 9,
                              .has_link = true,
                              .link_ip = 0x7f000001u,
                              .link_port = 4321,
                              .link_token = 0x1122334455667788ull},
                         o;
    unsigned char buf[13 + TP_NODE_NAME_MAX + 14];
    size_t n;

    (void)state;
    snprintf(w.name, sizeof(w.name), "%s", "linked");
    n = tp__wire_node_size(&w);
    assert_int_equal(n, 13 + 6 + 14);
    tp__wire_put_node(buf, &w);
    assert_int_equal(tp__wire_get_node(buf, n, &o), 0);
    assert_true(o.has_link);
    assert_int_equal(o.link_ip, 0x7f000001u);
    assert_int_equal(o.link_port, 4321);
    assert_true(o.link_token == 0x1122334455667788ull);
    assert_string_equal(o.name, "linked");
    /* Without the link fields: a node without links. */
    assert_int_equal(tp__wire_get_node(buf, n - 14, &o), 0);
    assert_false(o.has_link);
    assert_int_equal(o.link_port, 0);
    /* Anything else in between, or port 0, is malformed. */
    assert_int_equal(tp__wire_get_node(buf, n - 1, &o), -EBADMSG);
    assert_int_equal(tp__wire_get_node(buf, n - 13, &o), -EBADMSG);
    buf[13 + 6 + 4] = buf[13 + 6 + 5] = 0;
    assert_int_equal(tp__wire_get_node(buf, n, &o), -EBADMSG);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_pid_format_parse_node),
        cmocka_unit_test(test_cluster_wire_rejects_garbage),
        cmocka_unit_test(test_cluster_join_discovery),
        cmocka_unit_test(test_cluster_duplicate_name_refused),
        cmocka_unit_test(test_cluster_same_name_at_once_one_wins),
        cmocka_unit_test(test_cluster_same_id_at_once_one_wins),
        cmocka_unit_test(test_cluster_tls_and_credentials),
        cmocka_unit_test(test_cluster_send_order_10000),
        cmocka_unit_test(test_cluster_request_reply_timeout_noproc),
        cmocka_unit_test(test_cluster_blob_packed_bounds),
        cmocka_unit_test(test_cluster_monitor_link_remote),
        cmocka_unit_test(test_cluster_node_left_noconnection),
        cmocka_unit_test(test_cluster_sigkill_node_down),
        cmocka_unit_test(test_cluster_node_restarted_same_name),
        cmocka_unit_test(test_cluster_nats_restart_reconnects),
        cmocka_unit_test(test_cluster_global_names_unique_released),
        cmocka_unit_test(test_cluster_global_name_conflict_after_partition),
        cmocka_unit_test(test_cluster_global_name_orphan_released),
        cmocka_unit_test(test_cluster_gen_server_and_console),
        cmocka_unit_test(test_cluster_wire_node_link_fields),
        cmocka_unit_test(test_cluster_links_tcp_order_token),
        cmocka_unit_test(test_cluster_links_refused_falls_back),
        cmocka_unit_test(test_cluster_links_broken_down_then_up),
        cmocka_unit_test(test_cluster_tree_hostile_answer),
    };
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);

    if (n > 0)
        self_exe[n] = '\0';
    if (argc == 5 && strcmp(argv[1], "--child-node") == 0)
        return child_main(argv[2], atoi(argv[3]), argv[4]);
    signal(SIGPIPE, SIG_IGN);
    tp_log_set_level(TP_LOG_WARN);
    if (getenv("TPT_FILTER") != NULL) /* one test by name, while debugging */
        cmocka_set_test_filter(getenv("TPT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
