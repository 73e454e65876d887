/*
 * tests/test_signals.c - exit signals, links, trap_exit, monitors, OTP
 * semantics of normal/abnormal/kill exits.
 */
#include "testutil.h"

#include <errno.h>

enum { M_EXIT = 1, M_CRASH, M_LINK, M_KILLME };

/* A worker that exits the way it is told. */
static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    switch (m->type) {
    case M_EXIT: {
        tp_exit_reason r = {*(const tp_exit_kind *)m->data, 17, "told to"};
        tp_exit_with(ctx, &r);
        break;
    }
    case M_CRASH:
        tp_fail(ctx, "crash %d", 42);
        break;
    case M_LINK:
        tp_link(ctx, *(const tp_pid *)m->data);
        break;
    default:
        break;
    }
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static tp_pid
spawn_worker(tp_runtime *rt)
{
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn(rt, &worker, NULL, NULL, &pid), 0);
    return pid;
}

static void
do_link(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_link(ctx, *(tp_pid *)arg), 0);
}

static void
do_monitor(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_monitor(ctx, *(tp_pid *)arg, NULL), 0);
}

static void
tell_exit(tp_runtime *rt, tp_pid w, tp_exit_kind k)
{
    assert_int_equal(tp_runtime_send(rt, w, M_EXIT, &k, sizeof(k)), 0);
}

static bool
alive(tp_runtime *rt, tp_pid pid)
{
    tp_actor_info info;
    return tp_actor_peek(rt, pid, &info) == 0;
}

static void
test_link_abnormal_exit_kills_untrapped_partner(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *watch = tpt_probe_new(rt, false);
    tp_pid a = spawn_worker(rt), b = spawn_worker(rt);
    tpt_rec r;

    /* a and b linked; watch monitors b. */
    assert_int_equal(tp_runtime_send(rt, a, M_LINK, &b, sizeof(b)), 0);
    tpt_idle(rt);
    tpt_probe_do(watch, do_monitor, &b);
    assert_int_equal(tp_runtime_send(rt, a, M_CRASH, NULL, 0), 0);
    assert_int_equal(tpt_probe_wait(watch, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, b);
    /* b died of a's reason, propagated through the link. */
    assert_int_equal(r.kind, TP_EXIT_CRASH);
    assert_string_equal(r.text, "crash 42");
    assert_false(alive(rt, a));
    assert_false(alive(rt, b));
    tpt_probe_free(watch);
    tpt_finish(rt);
}

static void
test_link_normal_exit_spares_partner(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid a = spawn_worker(rt), b = spawn_worker(rt);

    assert_int_equal(tp_runtime_send(rt, a, M_LINK, &b, sizeof(b)), 0);
    tpt_idle(rt);
    tell_exit(rt, a, TP_EXIT_NORMAL);
    tpt_idle(rt);
    assert_false(alive(rt, a));
    assert_true(alive(rt, b));
    tpt_finish(rt);
}

static void
test_link_trap_exit_turns_signal_into_message(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, true);
    tp_pid a = spawn_worker(rt);
    tpt_rec r;

    tpt_probe_do(p, do_link, &a);
    tell_exit(rt, a, TP_EXIT_USER);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.pid, a);
    assert_int_equal(r.kind, TP_EXIT_USER);
    assert_int_equal(r.code, 17);
    assert_string_equal(r.text, "told to");
    assert_true(alive(rt, tpt_probe_pid(p)));
    /* Normal exits also arrive as messages when trapping. */
    a = spawn_worker(rt);
    tpt_probe_do(p, do_link, &a);
    tell_exit(rt, a, TP_EXIT_NORMAL);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.kind, TP_EXIT_NORMAL);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_link_to_dead_pid_delivers_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, true);
    tp_pid a = spawn_worker(rt);
    tpt_rec r;

    tell_exit(rt, a, TP_EXIT_NORMAL);
    tpt_idle(rt);
    tpt_probe_do(p, do_link, &a);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.pid, a);
    assert_int_equal(r.kind, TP_EXIT_NOPROC);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
do_unlink(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_unlink(ctx, *(tp_pid *)arg), 0);
}

static void
test_unlink_stops_propagation(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_worker(rt);

    tpt_probe_do(p, do_link, &a);
    tpt_probe_do(p, do_unlink, &a);
    tpt_idle(rt);
    assert_int_equal(tp_runtime_send(rt, a, M_CRASH, NULL, 0), 0);
    tpt_idle(rt);
    assert_true(alive(rt, tpt_probe_pid(p)));
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_exit_kill_cannot_be_trapped(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *trapper = tpt_probe_new(rt, true);
    tpt_probe *watch = tpt_probe_new(rt, false);
    tp_pid t = tpt_probe_pid(trapper);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_exit_reason shut = {TP_EXIT_SHUTDOWN, 0, NULL};
    tpt_rec r;

    tpt_probe_do(watch, do_monitor, &t);
    /* shutdown is trapped: it becomes a message. */
    assert_int_equal(tp_runtime_exit_pid(rt, t, &shut), 0);
    assert_int_equal(tpt_probe_wait(trapper, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.kind, TP_EXIT_SHUTDOWN);
    /* kill is not. */
    assert_int_equal(tp_runtime_exit_pid(rt, t, &kill), 0);
    assert_int_equal(tpt_probe_wait(watch, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, t);
    assert_int_equal(r.kind, TP_EXIT_KILLED);
    assert_int_equal(tp_runtime_exit_pid(rt, t, &kill), -ESRCH);
    tpt_probe_free(watch);
    tpt_probe_free(trapper); /* already dead: only frees the probe */
    tpt_finish(rt);
}

static void
test_killed_via_link_is_trappable(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, true);
    tp_pid a = spawn_worker(rt);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tpt_rec r;

    tpt_probe_do(p, do_link, &a);
    assert_int_equal(tp_runtime_exit_pid(rt, a, &kill), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.kind, TP_EXIT_KILLED);
    assert_true(alive(rt, tpt_probe_pid(p)));
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_monitor_down_carries_reason_and_ref(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_worker(rt);
    tpt_rec r;

    tpt_probe_do(p, do_monitor, &a);
    assert_int_equal(tp_runtime_send(rt, a, M_CRASH, NULL, 0), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, a);
    assert_int_equal(r.kind, TP_EXIT_CRASH);
    assert_true(r.ref != 0);
    /* Monitors are one-way: the watcher lives on. */
    assert_true(alive(rt, tpt_probe_pid(p)));
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_monitor_dead_pid_gives_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_worker(rt);
    tpt_rec r;

    tell_exit(rt, a, TP_EXIT_NORMAL);
    tpt_idle(rt);
    tpt_probe_do(p, do_monitor, &a);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.kind, TP_EXIT_NOPROC);
    assert_int_equal(r.pid, a);
    tpt_probe_free(p);
    tpt_finish(rt);
}

struct demon {
    tp_pid target;
    uint64_t ref;
};

static void
monitor_kill_demonitor(tp_ctx *ctx, void *arg)
{
    struct demon *d = arg;
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_spawn_opts o;

    /* The target is pinned to the other scheduler, so it dies while this
     * callback runs: its DOWN is queued before we demonitor, and the flush
     * must drop it. */
    tp_spawn_opts_init(&o);
    o.scheduler = (tp_ctx_scheduler(ctx) + 1) % 2;
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &worker, NULL, &o, &d->target), 0);
    TPT_CHECK_INT_EQ(tp_monitor(ctx, d->target, &d->ref), 0);
    TPT_CHECK_INT_EQ(tp_exit_pid(ctx, d->target, &kill), 0);
    for (int i = 0; i < 200 * (int)tpt_slow(); i++) {
        tp_actor_info info;
        if (tp_actor_peek(tp_ctx_runtime(ctx), d->target, &info) != 0)
            break;
        tpt_sleep_ms(1);
    }
    tpt_sleep_ms(20);
    TPT_CHECK_INT_EQ(tp_demonitor(ctx, d->ref, TP_DEMONITOR_FLUSH), 0);
    TPT_CHECK_INT_EQ(tp_demonitor(ctx, d->ref, 0), -ENOENT);
}

static void
test_demonitor_flushes_queued_down(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct demon d = {TP_PID_NONE, 0};

    tpt_probe_do(p, monitor_kill_demonitor, &d);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, TP_MSG_DOWN), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* Erlang's ordering guarantee: a DOWN arrives after every message the dead
 * actor sent before dying. */
struct sender_arg {
    tp_pid to;
};

static int
sender_init(tp_ctx *ctx, void *state, void *arg)
{
    *(tp_pid *)state = *(tp_pid *)arg;
    return 0;
}

static void
sender_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    for (int i = 0; i < 1000; i++)
        tp_send(ctx, *(tp_pid *)state, 99, &i, sizeof(i));
    tp_fail(ctx, "done sending");
}

static const tp_behaviour sender = {.name = "sender",
                                    .state_size = sizeof(tp_pid),
                                    .init = sender_init,
                                    .handle = sender_handle};

static void
test_down_arrives_after_dead_actors_messages(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid to = tpt_probe_pid(p), s;
    tpt_rec r;

    assert_int_equal(tp_runtime_spawn(rt, &sender, &to, NULL, &s), 0);
    tpt_probe_do(p, do_monitor, &s);
    assert_int_equal(tp_runtime_send(rt, s, 1, NULL, 0), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(tpt_probe_wait(p, 0, 5000, &r), 0);
        assert_int_equal(r.type, 99); /* never the DOWN first */
        assert_int_equal(*(int *)r.data, i);
    }
    assert_int_equal(tpt_probe_wait(p, 0, 5000, &r), 0);
    assert_int_equal(r.type, TP_MSG_DOWN);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_exit_kind_names(void **state)
{
    assert_string_equal(tp_exit_kind_name(TP_EXIT_NORMAL), "normal");
    assert_string_equal(tp_exit_kind_name(TP_EXIT_KILLED), "killed");
    assert_string_equal(tp_exit_kind_name((tp_exit_kind)99), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_abnormal_exit_kills_untrapped_partner),
        cmocka_unit_test(test_link_normal_exit_spares_partner),
        cmocka_unit_test(test_link_trap_exit_turns_signal_into_message),
        cmocka_unit_test(test_link_to_dead_pid_delivers_noproc),
        cmocka_unit_test(test_unlink_stops_propagation),
        cmocka_unit_test(test_exit_kill_cannot_be_trapped),
        cmocka_unit_test(test_killed_via_link_is_trappable),
        cmocka_unit_test(test_monitor_down_carries_reason_and_ref),
        cmocka_unit_test(test_monitor_dead_pid_gives_noproc),
        cmocka_unit_test(test_demonitor_flushes_queued_down),
        cmocka_unit_test(test_down_arrives_after_dead_actors_messages),
        cmocka_unit_test(test_exit_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
