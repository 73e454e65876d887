/*
 * tests/test_net_sup.c - connection actors under a real dynamic supervisor
 * (TP_DYNAMIC): a listener's actors join it in their init, it counts and
 * lists them, its max_children refuses the extra ones (their sockets
 * close), stopping it ends every connection, and tp_runtime_stop() drains
 * before the supervisors go. Also: tp_become() inside a connection actor.
 */
#include "test_net_util.h"

#include <errno.h>
#include <string.h>
#include <troupe/supervisor.h>
#include <unistd.h>

static tp_pid
dyn_supervisor(tp_runtime *rt, const char *id, uint32_t max_children)
{
    tp_sup_spec spec;
    tp_pid sup = TP_PID_NONE;

    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, NULL, &tnet_behaviour, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    spec.max_children = max_children;
    assert_int_equal(tp_runtime_supervisor_start(rt, id, &spec, &sup), 0);
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
    uint64_t end = tnet_ms() + 5000u * tpt_slow();

    while (active_children(rt, sup) != n && tnet_ms() < end)
        tpt_sleep_ms(5);
    assert_int_equal(active_children(rt, sup), n);
}

static void
test_net_sup_connections_join_dynamic_supervisor(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_pid sup = dyn_supervisor(rt, "conns", 3);
    tp_child_info kids[8];
    size_t total = 0;
    tp_listen_opts o;
    tp_listener *l;
    int fd[4];
    char c;

    (void)state;
    tnet_opts(&o, &cfg);
    o.supervisor = sup;
    l = tnet_listen(rt, &cfg, &o);
    for (int i = 0; i < 3; i++) {
        fd[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_write_all(fd[i], "a", 1);
        assert_int_equal(tnet_read_n(fd[i], &c, 1, 5000), 1);
    }
    wait_active(rt, sup, 3);
    assert_int_equal(tp_supervisor_which_children(rt, sup, kids, 8, &total, 0),
                     0);
    assert_int_equal(total, 3);
    /* Over max_children: the supervisor refuses the actor, whose
     * connection closes. */
    fd[3] = tnet_connect("127.0.0.1", tp_listener_port(l));
    assert_true(tnet_wait_eof(fd[3], 5000) <= 0);
    close(fd[3]);
    /* A client leaving ends its actor normally: one child fewer. */
    close(fd[0]);
    wait_active(rt, sup, 2);
    /* Stopping the supervisor ends the remaining connections. */
    assert_int_equal(tp_supervisor_terminate_child(
                         rt, tp_runtime_root_supervisor(rt), "conns", 0),
                     0);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(tnet_wait_eof(fd[i], 5000), 0);
        close(fd[i]);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* supervisor_name: the listener finds its supervisor by name for every
 * connection, so connections keep arriving after that supervisor crashed
 * and was restarted (under a new pid) by its own supervisor. */
static void
test_net_sup_by_name_survives_restart(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_exit_reason crash = {TP_EXIT_CRASH, 0, "test"};
    tp_pid root = tp_runtime_root_supervisor(rt), sup, sup2;
    tp_sup_spec spec;
    tp_child_spec cs;
    tp_listen_opts o;
    tp_listener *l;
    uint64_t end;
    int fd[2];
    char c;

    (void)state;
    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, NULL, &tnet_behaviour, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&cs, "conns", &tp_supervisor_behaviour, &spec);
    cs.opts.name = "conns.sup";
    assert_int_equal(tp_supervisor_start_child(rt, root, &cs, NULL, &sup, 0),
                     0);
    tnet_opts(&o, &cfg);
    o.supervisor_name = "conns.sup";
    l = tnet_listen(rt, &cfg, &o);
    fd[0] = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd[0], "a", 1);
    assert_int_equal(tnet_read_n(fd[0], &c, 1, 5000), 1);
    wait_active(rt, sup, 1);
    /* The supervisor crashes: its connection goes with it, the root
     * restarts it under the same name and a new pid. */
    assert_int_equal(tp_runtime_exit_pid(rt, sup, &crash), 0);
    assert_int_equal(tnet_wait_eof(fd[0], 5000), 0);
    close(fd[0]);
    end = tnet_ms() + 5000u * tpt_slow();
    while (
        ((sup2 = tp_whereis(rt, "conns.sup")) == TP_PID_NONE || sup2 == sup) &&
        tnet_ms() < end)
        tpt_sleep_ms(5);
    assert_true(sup2 != TP_PID_NONE && sup2 != sup);
    /* A new connection joins the new supervisor. */
    fd[1] = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd[1], "b", 1);
    assert_int_equal(tnet_read_n(fd[1], &c, 1, 5000), 1);
    assert_int_equal(c, 'b');
    wait_active(rt, sup2, 1);
    close(fd[1]);
    wait_active(rt, sup2, 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* A name longer than a registered name can be is refused up front. */
static void
test_net_sup_name_checked(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    struct tnet_cfg cfg = {.echo = true};
    char longname[80];
    tp_listen_opts o;
    tp_listener *l = NULL;

    (void)state;
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    tnet_opts(&o, &cfg);
    o.port = 0;
    o.address = "127.0.0.1";
    o.supervisor_name = longname;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), -ENAMETOOLONG);
    o.supervisor_name = "";
    assert_int_equal(tp_tcp_listen(rt, &o, &l), -EINVAL);
    assert_null(l);
    tpt_finish(rt);
}

/* tp_runtime_stop(): the drain phase comes first, so connection actors get
 * TP_MSG_TCP_DRAIN and close their connections themselves before the
 * supervisors shut the tree down. */
static void
test_net_sup_runtime_stop_drains_first(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tnet_cfg cfg = {.probe = tpt_probe_pid(p), .echo = true};
    tp_pid sup = dyn_supervisor(rt, "conns", 0);
    tp_net_stats ns;
    tp_listen_opts o;
    tp_listener *l;
    int fd[3];
    char c;

    (void)state;
    tnet_opts(&o, &cfg);
    o.supervisor = sup;
    l = tnet_listen(rt, &cfg, &o);
    for (int i = 0; i < 3; i++) {
        fd[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_write_all(fd[i], "a", 1);
        assert_int_equal(tnet_read_n(fd[i], &c, 1, 5000), 1);
    }
    wait_active(rt, sup, 3);
    assert_int_equal(tp_runtime_stop(rt), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tnet_wait_eof(fd[i], 5000), 0);
        close(fd[i]);
    }
    assert_int_equal(tpt_probe_count(p, EV_DRAIN), 3);
    tp_net_get_stats(rt, &ns);
    assert_int_equal(ns.closed[TP_NET_CLOSE_LOCAL], 3);
    assert_int_equal(ns.conns, 0);
    tpt_probe_free(p);
    tp_runtime_destroy(rt);
}

/* ---------------------------------------------------------------------- */
/* tp_become() in a connection actor                                      */

enum { BECOME_UPPER = 0x7c000001 };

static void upper_handle(tp_ctx *ctx, void *state, const tp_msg *msg);

struct become_state {
    int greeted;
};

static void
plain_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct become_state *st = state;

    if (msg->type == TP_MSG_TCP_OPENED) {
        st->greeted = 1;
        tp_become(ctx, upper_handle);
    }
}

/* After tp_become(): echoes in upper case; the runtime still sees the
 * DATA (flow control) and the CLOSED (exit on close). */
static void
upper_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct become_state *st = state;
    char buf[64];

    if (msg->type != TP_MSG_TCP_DATA || st->greeted != 1)
        return;
    for (uint32_t i = 0; i < msg->len && i < sizeof(buf); i++) {
        char ch = ((const char *)msg->data)[i];
        buf[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
    }
    tp_tcp_send(ctx, tp_msg_conn(msg), buf,
                msg->len < sizeof(buf) ? msg->len : sizeof(buf));
}

static const tp_behaviour become_behaviour = {
    .name = "become",
    .state_size = sizeof(struct become_state),
    .handle = plain_handle,
};

static void
test_net_become_in_connection_actor(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_listen_opts o;
    tp_listener *l = NULL;
    tp_runtime_stats st0, st1;
    char buf[8];
    int fd;

    (void)state;
    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &become_behaviour;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    tp_runtime_get_stats(rt, &st0);
    fd = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fd, "hello", 5);
    assert_int_equal(tnet_read_n(fd, buf, 5, 5000), 5);
    assert_memory_equal(buf, "HELLO", 5);
    close(fd);
    /* The wrapper still ended the actor when its connection closed. */
    for (int i = 0; i < 500 * (int)tpt_slow(); i++) {
        tp_runtime_get_stats(rt, &st1);
        if (st1.exited > st0.exited)
            break;
        tpt_sleep_ms(10);
    }
    assert_true(st1.exited > st0.exited);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_sup_connections_join_dynamic_supervisor),
        cmocka_unit_test(test_net_sup_runtime_stop_drains_first),
        cmocka_unit_test(test_net_sup_by_name_survives_restart),
        cmocka_unit_test(test_net_sup_name_checked),
        cmocka_unit_test(test_net_become_in_connection_actor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
