/*
 * tests/test_direct_net.c - direct-style connection actors: a listener
 * whose behaviour is a tp_direct runs one per connection under a dynamic
 * supervisor found by name (both stack modes); tp_tcp_recv() and
 * tp_tcp_recv_msg() in the active and passive read modes (partial reads,
 * timeout, end of stream, other messages staying queued); a stalled
 * reader whose queue paused reading gets every byte once it reads again;
 * a crash closes the connection; half_open (the peer's shutdown ends the
 * reads, the actor still writes); an outbound connection of a direct
 * actor read in passive mode; the calls outside a direct actor.
 */
#define _GNU_SOURCE 1 /* memmem */
#include "test_net_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe/direct.h>
#include <troupe/supervisor.h>
#include <unistd.h>

enum {
    R_SCHED = 0x7c000001, /* int64: scheduler at start */
    R_SCHED_END,          /* int64: scheduler after the last read */
    R_VAL,                /* int64: a result */
    R_TYPE,               /* int64: a message type */
    R_TERM,               /* int64: terminate ran (exit kind) */
    M_HELLO = 7
};

struct dcfg {
    tp_pid probe;
    int scenario;
    _Atomic uint64_t got; /* bytes a scenario read */
};

static tp_stack_mode mode;

static void
report(tp_ctx *ctx, tp_pid probe, uint32_t type, int64_t v)
{
    TPT_CHECK_INT_EQ(tp_send(ctx, probe, type, &v, sizeof(v)), 0);
}

static int64_t
val_of(const tpt_rec *r)
{
    int64_t v;

    memcpy(&v, r->data, sizeof(v));
    return v;
}

static int64_t
expect_val(tpt_probe *p, uint32_t type)
{
    tpt_rec r;

    tnet_expect(p, type, 10000, &r);
    return val_of(&r);
}

/* Echo, zero copy; "crash" in the data fails the actor. */
static void
echo_main(tp_ctx *ctx, struct dcfg *cfg)
{
    const tp_msg *m;
    tp_conn conn;
    int n;

    /* OPENED is always first. */
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, -1), 0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_TCP_OPENED);
    conn = ((const tp_tcp_opened *)m->data)->conn;
    TPT_CHECK(conn == tp_tcp_self(ctx));
    report(ctx, cfg->probe, R_SCHED, tp_ctx_scheduler(ctx));
    while ((n = tp_tcp_recv_msg(ctx, conn, &m, -1)) > 0) {
        if (memmem(m->data, m->len, "crash", 5) != NULL)
            tp_fail(ctx, "asked to crash");
        TPT_CHECK(tp_tcp_send(ctx, conn, m->data, m->len) >= 0);
    }
    TPT_CHECK_INT_EQ(n, 0);
    report(ctx, cfg->probe, R_SCHED_END, tp_ctx_scheduler(ctx));
}

/* Passive mode, 3 bytes at a time: a timeout first, then echo until the
 * end, which stays the end; a message sent meanwhile stays queued. */
static void
small_main(tp_ctx *ctx, struct dcfg *cfg)
{
    tp_conn conn = tp_tcp_self(ctx);
    const tp_msg *m;
    char buf[3];
    int n;

    TPT_CHECK(conn != TP_CONN_NONE);
    report(ctx, cfg->probe, R_VAL, tp_tcp_recv(ctx, conn, buf, 3, 100));
    while ((n = tp_tcp_recv(ctx, conn, buf, sizeof(buf), 10000)) > 0) {
        TPT_CHECK(n <= 3);
        atomic_fetch_add(&cfg->got, (uint64_t)n);
        TPT_CHECK(tp_tcp_send(ctx, conn, buf, (size_t)n) >= 0);
    }
    report(ctx, cfg->probe, R_VAL, n);
    report(ctx, cfg->probe, R_VAL, tp_tcp_recv(ctx, conn, buf, 3, 0));
    TPT_CHECK_INT_EQ(tp_tcp_recv_msg(ctx, conn, &m, 0), 0);
    TPT_CHECK(m != NULL && m->type == TP_MSG_TCP_CLOSED);
    /* Queued in order: OPENED, the test's message, CLOSED. */
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 0), 0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_TCP_OPENED);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 0), 0);
    report(ctx, cfg->probe, R_TYPE, m->type);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 0), 0);
    report(ctx, cfg->probe, R_TYPE, m->type);
}

/* Active mode: sleeps while the client floods (the queue fills, reading
 * pauses), then reads everything. */
static void
stall_main(tp_ctx *ctx, struct dcfg *cfg)
{
    tp_conn conn = tp_tcp_self(ctx);
    const tp_msg *m;
    int n;

    report(ctx, cfg->probe, R_SCHED, tp_ctx_scheduler(ctx));
    TPT_CHECK_INT_EQ(tp_sleep(ctx, 500), 0);
    while ((n = tp_tcp_recv_msg(ctx, conn, &m, 10000)) > 0) {
        if (atomic_fetch_add(&cfg->got, (uint64_t)n) + (uint64_t)n ==
            (8u << 20))
            TPT_CHECK(tp_tcp_send(ctx, conn, "ok", 2) >= 0);
    }
    report(ctx, cfg->probe, R_VAL, n);
}

/* half_open: reads until the peer shuts its side, then still writes. */
static void
half_main(tp_ctx *ctx, struct dcfg *cfg)
{
    tp_conn conn = tp_tcp_self(ctx);
    const tp_msg *m;
    char buf[16];
    int n;

    while ((n = tp_tcp_recv(ctx, conn, buf, sizeof(buf), 10000)) > 0)
        atomic_fetch_add(&cfg->got, (uint64_t)n);
    TPT_CHECK_INT_EQ(n, 0);
    TPT_CHECK_INT_EQ(tp_tcp_recv_msg(ctx, conn, &m, 0), 0);
    TPT_CHECK(m != NULL && m->type == TP_MSG_TCP_PEER_SHUTDOWN);
    TPT_CHECK_INT_EQ(tp_tcp_send(ctx, conn, "bye", 3), 0);
    TPT_CHECK_INT_EQ(tp_tcp_close(ctx, conn), 0);
    report(ctx, cfg->probe, R_VAL, (int64_t)atomic_load(&cfg->got));
}

static void
conn_main(tp_ctx *ctx, void *state, void *arg)
{
    struct dcfg *cfg = arg;

    (void)state;
    switch (cfg->scenario) {
    case 0:
        echo_main(ctx, cfg);
        break;
    case 1:
        small_main(ctx, cfg);
        break;
    case 3:
        half_main(ctx, cfg);
        break;
    default:
        stall_main(ctx, cfg);
        break;
    }
}

static struct dcfg *term_cfg;

static void
conn_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    (void)state;
    if (term_cfg != NULL)
        report(ctx, term_cfg->probe, R_TERM, reason->kind);
}

static tp_direct conn_direct = {
    TP_DIRECT_BEHAVIOUR("dconn", 0),
    .main = conn_main,
    .terminate = conn_terminate,
};

static const tp_direct conn_direct_copied = {
    TP_DIRECT_BEHAVIOUR("dconn", 0),
    .main = conn_main,
    .stack = TP_STACK_COPIED,
    .terminate = conn_terminate,
};

static const tp_behaviour *
beh(void)
{
    return tp_direct_behaviour(mode == TP_STACK_COPIED ? &conn_direct_copied
                                                       : &conn_direct);
}

static tp_pid
named_supervisor(tp_runtime *rt, const char *name)
{
    tp_pid root = tp_runtime_root_supervisor(rt), sup = TP_PID_NONE;
    tp_sup_spec spec;
    tp_child_spec cs;

    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, NULL, beh(), NULL);
    spec.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&cs, "dconns", &tp_supervisor_behaviour, &spec);
    cs.opts.name = name;
    assert_int_equal(tp_supervisor_start_child(rt, root, &cs, NULL, &sup, 0),
                     0);
    return sup;
}

static uint32_t
active_children(tp_runtime *rt, tp_pid sup)
{
    tp_sup_info si;

    assert_int_equal(tp_supervisor_info(rt, sup, &si, 0), 0);
    return si.active;
}

static void
wait_active(tp_runtime *rt, tp_pid sup, uint32_t n)
{
    uint64_t end = tnet_ms() + 10000u * tpt_slow();

    while (active_children(rt, sup) != n && tnet_ms() < end)
        tpt_sleep_ms(5);
    assert_int_equal(active_children(rt, sup), n);
}

static tp_listener *
listen_direct(tp_runtime *rt, struct dcfg *cfg, const char *sup_name,
              tp_read_mode rm, bool exit_on_close)
{
    tp_listen_opts o;
    tp_listener *l = NULL;

    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = beh();
    o.arg = cfg;
    o.supervisor_name = sup_name;
    o.conn.read_mode = rm;
    o.exit_on_close = exit_on_close;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    return l;
}

/* Echo: many round trips, 1 MiB through flow control, several clients,
 * each a supervised direct actor that stays on its scheduler. */
static void
run_echo(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct dcfg cfg = {.probe = tpt_probe_pid(p), .scenario = 0};
    tp_pid sup = named_supervisor(rt, "dconns.sup");
    tp_listener *l =
        listen_direct(rt, &cfg, "dconns.sup", TP_READ_ACTIVE, true);
    size_t big = 1u << 20;
    uint8_t *out = malloc(big), *in = malloc(big);
    int fd[4];

    assert_non_null(out);
    assert_non_null(in);
    term_cfg = &cfg;
    for (int i = 0; i < 4; i++) {
        fd[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        assert_true(fd[i] >= 0);
    }
    int64_t sched[4];
    for (int i = 0; i < 4; i++)
        sched[i] = expect_val(p, R_SCHED);
    wait_active(rt, sup, 4);
    for (int k = 0; k < 50; k++)
        for (int i = 0; i < 4; i++) {
            char line[32], back[32];
            int n = snprintf(line, sizeof(line), "line %d %d\n", i, k);

            tnet_write_all(fd[i], line, (size_t)n);
            assert_int_equal(tnet_read_n(fd[i], back, (size_t)n, 5000), n);
            assert_memory_equal(back, line, (size_t)n);
        }
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(i * 13 + (i >> 11));
    assert_int_equal(tnet_echo_roundtrip(fd[0], out, in, big, 20000), big);
    assert_memory_equal(in, out, big);
    for (int i = 0; i < 4; i++)
        close(fd[i]);
    for (int i = 0; i < 4; i++) {
        int64_t end = expect_val(p, R_SCHED_END);
        bool known = false;
        for (int j = 0; j < 4; j++)
            known |= end == sched[j];
        assert_true(known); /* it ended where it started */
        assert_int_equal(expect_val(p, R_TERM), TP_EXIT_NORMAL);
    }
    wait_active(rt, sup, 0);
    /* A crash in main closes that connection only. */
    fd[0] = tnet_connect("127.0.0.1", tp_listener_port(l));
    fd[1] = tnet_connect("127.0.0.1", tp_listener_port(l));
    expect_val(p, R_SCHED);
    expect_val(p, R_SCHED);
    tnet_write_all(fd[0], "please crash", 12);
    assert_true(tnet_wait_eof(fd[0], 5000) <= 0);
    assert_int_equal(expect_val(p, R_TERM), TP_EXIT_CRASH);
    char c;
    tnet_write_all(fd[1], "x", 1);
    assert_int_equal(tnet_read_n(fd[1], &c, 1, 5000), 1);
    close(fd[0]);
    close(fd[1]);
    expect_val(p, R_TERM);
    wait_active(rt, sup, 0);
    term_cfg = NULL;
    free(out);
    free(in);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_direct_net_echo_fixed(void **state)
{
    (void)state;
    mode = TP_STACK_FIXED;
    run_echo();
}

static void
test_direct_net_echo_copied(void **state)
{
    (void)state;
    mode = TP_STACK_COPIED;
    run_echo();
}

/* Passive mode, tiny reads: timeout, partial reads, end of stream that
 * stays, other messages kept in order. */
static void
run_small(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct dcfg cfg = {.probe = tpt_probe_pid(p), .scenario = 1};
    tp_listener *l = listen_direct(rt, &cfg, NULL, TP_READ_PASSIVE, false);
    const char text[] = "hello, direct-style world: 0123456789abcdef";
    char back[sizeof(text)];
    int fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tpt_rec r;
    tp_pid who;

    assert_true(fd >= 0);
    /* The first read times out: the client sent nothing yet. */
    tnet_expect(p, R_VAL, 10000, &r);
    assert_int_equal(val_of(&r), -ETIMEDOUT);
    who = r.from;
    assert_int_equal(tp_runtime_send(rt, who, M_HELLO, "hi", 2), 0);
    tnet_write_all(fd, text, sizeof(text) - 1);
    assert_int_equal(tnet_read_n(fd, back, sizeof(text) - 1, 5000),
                     sizeof(text) - 1);
    assert_memory_equal(back, text, sizeof(text) - 1);
    /* More, in pieces, each read passes on. */
    for (int i = 0; i < 20; i++) {
        tnet_write_all(fd, "abcdefg", 7);
        assert_int_equal(tnet_read_n(fd, back, 7, 5000), 7);
        assert_memory_equal(back, "abcdefg", 7);
    }
    close(fd);
    assert_int_equal(expect_val(p, R_VAL), 0); /* end of stream */
    assert_int_equal(expect_val(p, R_VAL), 0); /* and again */
    assert_int_equal(expect_val(p, R_TYPE), M_HELLO);
    assert_int_equal(expect_val(p, R_TYPE), TP_MSG_TCP_CLOSED);
    assert_int_equal(atomic_load(&cfg.got), sizeof(text) - 1 + 20 * 7);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_direct_net_small_reads_fixed(void **state)
{
    (void)state;
    mode = TP_STACK_FIXED;
    run_small();
}

static void
test_direct_net_small_reads_copied(void **state)
{
    (void)state;
    mode = TP_STACK_COPIED;
    run_small();
}

struct flood {
    int fd;
    size_t len;
    bool ok;
};

static void *
flood_thread(void *arg)
{
    struct flood *f = arg;
    uint8_t *b = calloc(1, f->len);

    f->ok = b != NULL && tnet_send_all(f->fd, b, f->len);
    free(b);
    return NULL;
}

/* A direct connection actor that does not read while its bytes come in:
 * they wait in its queue (counted in its mailbox), reading pauses at the
 * mailbox's high mark, and resumes as it reads them out of its queue. */
static void
test_direct_net_stalled_reader_resumes(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct dcfg cfg = {.probe = tpt_probe_pid(p), .scenario = 2};
    tp_listener *l;
    struct flood f = {.len = 8u << 20};
    pthread_t th;
    char ok[2];

    (void)state;
    mode = TP_STACK_COPIED;
    l = listen_direct(rt, &cfg, NULL, TP_READ_ACTIVE, true);
    f.fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    assert_true(f.fd >= 0);
    expect_val(p, R_SCHED);
    assert_int_equal(pthread_create(&th, NULL, flood_thread, &f), 0);
    assert_int_equal(tnet_read_n(f.fd, ok, 2, 30000), 2);
    assert_memory_equal(ok, "ok", 2);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(f.ok);
    assert_int_equal(atomic_load(&cfg.got), f.len);
    close(f.fd);
    assert_int_equal(expect_val(p, R_VAL), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* half_open: the peer's shutdown is the end of the reads, and the actor
 * can still answer. */
static void
test_direct_net_half_open(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct dcfg cfg = {.probe = tpt_probe_pid(p), .scenario = 3};
    tp_listen_opts o;
    tp_listener *l = NULL;
    char back[3];
    int fd;

    (void)state;
    mode = TP_STACK_COPIED;
    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = beh();
    o.arg = &cfg;
    o.conn.half_open = true;
    o.conn.read_mode = TP_READ_ONCE;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    assert_true(fd >= 0);
    tnet_write_all(fd, "0123456789012345678901234567890123456789", 40);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_int_equal(tnet_read_n(fd, back, 3, 10000), 3);
    assert_memory_equal(back, "bye", 3);
    assert_int_equal(expect_val(p, R_VAL), 40);
    assert_true(tnet_wait_eof(fd, 5000) <= 0);
    close(fd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* An outbound connection made by a direct actor (not a listener's):
 * connect, then passive reads of the answer until the peer closes. */
struct out_args {
    tp_pid probe;
    uint16_t port;
};

static void
out_main(tp_ctx *ctx, void *state, void *arg)
{
    struct out_args *a = arg;
    tp_connect_opts co;
    const tp_msg *m;
    tp_conn conn;
    char buf[8];
    int64_t total = 0;
    int n;

    (void)state;
    tp_connect_opts_init(&co);
    co.address = "127.0.0.1";
    co.port = a->port;
    co.conn.read_mode = TP_READ_PASSIVE;
    TPT_CHECK_INT_EQ(tp_tcp_connect(ctx, &co, &conn), 0);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 10000), 0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_TCP_CONNECTED);
    TPT_CHECK_INT_EQ(((const tp_tcp_connected *)m->data)->error, 0);
    TPT_CHECK_INT_EQ(tp_tcp_send(ctx, conn, "ping", 4), 0);
    while ((n = tp_tcp_recv(ctx, conn, buf, sizeof(buf), 10000)) > 0)
        total += n;
    TPT_CHECK_INT_EQ(n, 0);
    report(ctx, a->probe, R_VAL, total);
}

static const tp_direct out_direct = {
    TP_DIRECT_BEHAVIOUR("dout", 0),
    .main = out_main,
    .stack = TP_STACK_COPIED,
};

static void
test_direct_net_outbound(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct out_args a = {.probe = tpt_probe_pid(p)};
    char pong[100], ping[4];
    int lfd = tnet_raw_listener(&a.port, 4), fd;
    tp_pid pid;

    (void)state;
    memset(pong, 'p', sizeof(pong));
    assert_int_equal(
        tp_runtime_spawn_direct(rt, &out_direct, &a, NULL, NULL, &pid), 0);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    assert_int_equal(tnet_read_n(fd, ping, 4, 10000), 4);
    assert_memory_equal(ping, "ping", 4);
    tnet_write_all(fd, pong, sizeof(pong));
    close(fd);
    assert_int_equal(expect_val(p, R_VAL), sizeof(pong));
    close(lfd);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
outside_fn(tp_ctx *ctx, void *arg)
{
    const tp_msg *m;
    char b[4];

    (void)arg;
    TPT_CHECK_INT_EQ(tp_tcp_recv(ctx, 1, b, sizeof(b), 0), -EINVAL);
    TPT_CHECK_INT_EQ(tp_tcp_recv_msg(ctx, 1, &m, 0), -EINVAL);
}

/* Outside a direct actor's main, the reads are refused. */
static void
test_direct_net_outside_main(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);

    (void)state;
    tpt_probe_do(p, outside_fn, NULL);
    tpt_probe_free(p);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_net_echo_fixed),
        cmocka_unit_test(test_direct_net_echo_copied),
        cmocka_unit_test(test_direct_net_small_reads_fixed),
        cmocka_unit_test(test_direct_net_small_reads_copied),
        cmocka_unit_test(test_direct_net_stalled_reader_resumes),
        cmocka_unit_test(test_direct_net_half_open),
        cmocka_unit_test(test_direct_net_outbound),
        cmocka_unit_test(test_direct_net_outside_main),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
