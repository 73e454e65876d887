/*
 * tests/test_sup_strategy.c - the OTP behaviours: each strategy with
 * several children, each restart type against normal, shutdown, crash and
 * kill exits, and restart intensity.
 */
#include "test_sup_common.h"

#define N 4

struct fx {
    tp_runtime *rt;
    tpt_probe *p;
    struct tw_arg args[N];
    tp_child_spec specs[N];
    char ids[N][16];
    tp_sup_spec spec;
    tp_pid sup;
    tp_pid pid[N]; /* current pid of each child */
};

static void
fx_init(struct fx *f, tp_strategy st, tp_restart restart, int n)
{
    memset(f, 0, sizeof(*f));
    f->rt = tpt_runtime(2);
    f->p = tpt_probe_new(f->rt, false);
    tw_specs(f->p, f->args, f->specs, f->ids, n, restart);
    tp_sup_spec_init(&f->spec, st);
    f->spec.children = f->specs;
    f->spec.nchildren = (size_t)n;
    f->spec.intensity = 100;
}

/* Starts the supervisor and checks its children started in order. */
static void
fx_start(struct fx *f)
{
    assert_int_equal(tp_runtime_spawn(f->rt, &tp_supervisor_behaviour, &f->spec,
                                      NULL, &f->sup),
                     0);
    for (size_t i = 0; i < f->spec.nchildren; i++)
        f->pid[i] = tw_expect(f->p, EV_START, (int)i).pid;
}

static void
fx_finish(struct fx *f)
{
    tpt_probe_free(f->p);
    tpt_finish(f->rt);
}

static void
expect_stop(struct fx *f, int tag, tp_exit_kind kind)
{
    struct tw_ev ev = tw_expect(f->p, EV_STOP, tag);

    assert_int_equal(ev.kind, kind);
}

static void
expect_start(struct fx *f, int tag)
{
    struct tw_ev ev = tw_expect(f->p, EV_START, tag);

    assert_true(ev.pid != f->pid[tag]);
    f->pid[tag] = ev.pid;
}

/* Nothing more happens (no stray start or stop). */
static void
expect_quiet(struct fx *f)
{
    tpt_idle(f->rt);
    assert_int_equal(tpt_probe_count(f->p, 0), 0);
}

/* Every child answers, from the pid we know. */
static void
expect_all_serve(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(tp_runtime_send(f->rt, f->pid[i], W_PING, NULL, 0), 0);
        assert_int_equal(tw_expect(f->p, EV_PONG, i).pid, f->pid[i]);
    }
}

static void
crash(struct fx *f, int tag)
{
    assert_int_equal(tp_runtime_send(f->rt, f->pid[tag], W_CRASH, NULL, 0), 0);
}

/* ---------------------------------------------------------------------- */
/* Strategies                                                             */

static void
test_one_for_one_restarts_only_the_failed_child(void **state)
{
    struct fx f;
    tp_sup_info info;

    fx_init(&f, TP_ONE_FOR_ONE, TP_PERMANENT, 4);
    fx_start(&f);
    crash(&f, 1);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    expect_start(&f, 1);
    crash(&f, 3);
    expect_stop(&f, 3, TP_EXIT_CRASH);
    expect_start(&f, 3);
    expect_quiet(&f);
    expect_all_serve(&f, 4);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &info, 0), 0);
    assert_int_equal(info.restarts, 2);
    assert_int_equal(info.active, 4);
    assert_int_equal(info.children, 4);
    fx_finish(&f);
}

static void
test_one_for_all_restarts_everyone_in_order(void **state)
{
    struct fx f;

    fx_init(&f, TP_ONE_FOR_ALL, TP_PERMANENT, 4);
    fx_start(&f);
    crash(&f, 1);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    /* The others stop in reverse start order, then all start in order. */
    expect_stop(&f, 3, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    for (int i = 0; i < 4; i++)
        expect_start(&f, i);
    expect_quiet(&f);
    expect_all_serve(&f, 4);
    fx_finish(&f);
}

static void
test_rest_for_one_restarts_the_younger_children(void **state)
{
    struct fx f;
    tp_pid first;

    fx_init(&f, TP_REST_FOR_ONE, TP_PERMANENT, 4);
    fx_start(&f);
    first = f.pid[0];
    crash(&f, 1);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    expect_stop(&f, 3, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_start(&f, 1);
    expect_start(&f, 2);
    expect_start(&f, 3);
    expect_quiet(&f);
    assert_int_equal(f.pid[0], first); /* the older child was untouched */
    /* The youngest failing restarts only itself. */
    crash(&f, 3);
    expect_stop(&f, 3, TP_EXIT_CRASH);
    expect_start(&f, 3);
    expect_quiet(&f);
    expect_all_serve(&f, 4);
    fx_finish(&f);
}

static void
test_one_for_all_drops_temporary_siblings(void **state)
{
    struct fx f;
    tp_child_info info[8];
    size_t total;

    fx_init(&f, TP_ONE_FOR_ALL, TP_PERMANENT, 3);
    f.specs[1].restart = TP_TEMPORARY;
    fx_start(&f);
    crash(&f, 2);
    expect_stop(&f, 2, TP_EXIT_CRASH);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    expect_start(&f, 0);
    expect_start(&f, 2);
    expect_quiet(&f);
    assert_int_equal(
        tp_supervisor_which_children(f.rt, f.sup, info, 8, &total, 0), 0);
    assert_int_equal(total, 2);
    assert_string_equal(info[0].id, "c0");
    assert_string_equal(info[1].id, "c2");
    assert_int_equal(info[1].restarts, 1);
    fx_finish(&f);
}

static void
test_one_for_all_ignores_normal_exit_of_transient(void **state)
{
    struct fx f;
    tp_child_info info[8];
    size_t total;

    fx_init(&f, TP_ONE_FOR_ALL, TP_TRANSIENT, 3);
    fx_start(&f);
    tw_tell_exit(f.rt, f.pid[1], TP_EXIT_NORMAL);
    expect_stop(&f, 1, TP_EXIT_NORMAL);
    expect_quiet(&f); /* no group restart */
    assert_int_equal(
        tp_supervisor_which_children(f.rt, f.sup, info, 8, &total, 0), 0);
    assert_int_equal(total, 3);
    assert_false(info[1].running);
    assert_true(info[0].running && info[2].running);
    fx_finish(&f);
}

/* The child `tag` is still running, marked for its group's restart. */
static bool
group_restart_on(struct fx *f, int tag)
{
    tp_child_info info[N];
    size_t total = 0;

    assert_int_equal(
        tp_supervisor_which_children(f->rt, f->sup, info, N, &total, 0), 0);
    return (size_t)tag < total && info[tag].running && info[tag].restarting;
}

/* rest_for_one: an older child fails while a group restart is still
 * stopping the younger ones (c3 lingers); the operation widens. */
static void
test_rest_for_one_widens_a_running_group_restart(void **state)
{
    struct fx f;

    fx_init(&f, TP_REST_FOR_ONE, TP_PERMANENT, 4);
    f.args[3].trap = true;
    f.args[3].linger = 500;
    fx_start(&f);
    crash(&f, 2);
    expect_stop(&f, 2, TP_EXIT_CRASH);
    /* Once the supervisor is stopping c3 (lingering 500 ms), c0 crashes
     * too. */
    for (int i = 0; i < 5000 * (int)tpt_slow() && !group_restart_on(&f, 3); i++)
        tpt_sleep_ms(1);
    assert_true(group_restart_on(&f, 3));
    assert_int_equal(tpt_probe_count(f.p, EV_STOP), 0); /* still lingering */
    crash(&f, 0);
    expect_stop(&f, 0, TP_EXIT_CRASH);
    expect_stop(&f, 3, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    for (int i = 0; i < 4; i++)
        expect_start(&f, i);
    expect_quiet(&f);
    expect_all_serve(&f, 4);
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* Restart types against exit reasons                                     */

enum how { BY_NORMAL, BY_SHUTDOWN, BY_CRASH, BY_KILL };

static void
make_exit(struct fx *f, int tag, enum how how)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};

    switch (how) {
    case BY_NORMAL:
        tw_tell_exit(f->rt, f->pid[tag], TP_EXIT_NORMAL);
        break;
    case BY_SHUTDOWN:
        tw_tell_exit(f->rt, f->pid[tag], TP_EXIT_SHUTDOWN);
        break;
    case BY_CRASH:
        crash(f, tag);
        break;
    default:
        assert_int_equal(tp_runtime_exit_pid(f->rt, f->pid[tag], &kill), 0);
        break;
    }
}

static const tp_exit_kind seen_kind[] = {TP_EXIT_NORMAL, TP_EXIT_SHUTDOWN,
                                         TP_EXIT_CRASH, TP_EXIT_KILLED};

static void
restart_case(tp_restart type, enum how how, bool restarted)
{
    struct fx f;
    tp_child_info info[8];
    size_t total;

    fx_init(&f, TP_ONE_FOR_ONE, type, 3);
    fx_start(&f);
    make_exit(&f, 1, how);
    expect_stop(&f, 1, seen_kind[how]);
    if (restarted)
        expect_start(&f, 1);
    expect_quiet(&f);
    assert_int_equal(
        tp_supervisor_which_children(f.rt, f.sup, info, 8, &total, 0), 0);
    if (type == TP_TEMPORARY) {
        /* Temporary children are forgotten once they end (OTP). */
        assert_int_equal(total, 2);
        assert_string_equal(info[1].id, "c2");
    } else {
        assert_int_equal(total, 3);
        assert_int_equal(info[1].running, restarted);
        assert_int_equal(info[1].restarts, restarted ? 1 : 0);
        assert_int_equal(info[1].restart, type);
    }
    fx_finish(&f);
}

static void
test_permanent_always_restarted(void **state)
{
    for (int how = BY_NORMAL; how <= BY_KILL; how++)
        restart_case(TP_PERMANENT, (enum how)how, true);
}

static void
test_transient_restarted_after_abnormal_exits_only(void **state)
{
    restart_case(TP_TRANSIENT, BY_NORMAL, false);
    restart_case(TP_TRANSIENT, BY_SHUTDOWN, false);
    restart_case(TP_TRANSIENT, BY_CRASH, true);
    restart_case(TP_TRANSIENT, BY_KILL, true);
}

static void
test_temporary_never_restarted(void **state)
{
    for (int how = BY_NORMAL; how <= BY_KILL; how++)
        restart_case(TP_TEMPORARY, (enum how)how, false);
}

/* ---------------------------------------------------------------------- */
/* Intensity                                                              */

static void
test_intensity_exceeded_stops_children_and_exits(void **state)
{
    struct fx f;
    tpt_rec r;

    fx_init(&f, TP_ONE_FOR_ONE, TP_PERMANENT, 3);
    f.spec.intensity = 2;
    f.spec.period_ms = 60000;
    fx_start(&f);
    tpt_probe_do(f.p, tw_do_monitor, &f.sup);
    for (int i = 0; i < 2; i++) {
        crash(&f, 0);
        expect_stop(&f, 0, TP_EXIT_CRASH);
        expect_start(&f, 0);
    }
    crash(&f, 0); /* the third within the period is one too many */
    expect_stop(&f, 0, TP_EXIT_CRASH);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    assert_int_equal(tpt_probe_wait(f.p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, f.sup);
    assert_int_equal(r.kind, TP_EXIT_SHUTDOWN);
    assert_string_equal(r.text, "reached max restart intensity");
    fx_finish(&f);
}

static void
test_intensity_window_forgets_old_restarts(void **state)
{
    struct fx f;

    fx_init(&f, TP_ONE_FOR_ONE, TP_PERMANENT, 3);
    f.spec.intensity = 1;
    f.spec.period_ms = 100;
    fx_start(&f);
    /* One restart per 150 ms never exceeds 1 in 100 ms. */
    for (int i = 0; i < 5; i++) {
        crash(&f, 2);
        expect_stop(&f, 2, TP_EXIT_CRASH);
        expect_start(&f, 2);
        tpt_sleep_ms(150);
    }
    assert_true(tw_alive(f.rt, f.sup));
    expect_quiet(&f);
    fx_finish(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_for_one_restarts_only_the_failed_child),
        cmocka_unit_test(test_one_for_all_restarts_everyone_in_order),
        cmocka_unit_test(test_rest_for_one_restarts_the_younger_children),
        cmocka_unit_test(test_one_for_all_drops_temporary_siblings),
        cmocka_unit_test(test_one_for_all_ignores_normal_exit_of_transient),
        cmocka_unit_test(test_rest_for_one_widens_a_running_group_restart),
        cmocka_unit_test(test_permanent_always_restarted),
        cmocka_unit_test(test_transient_restarted_after_abnormal_exits_only),
        cmocka_unit_test(test_temporary_never_restarted),
        cmocka_unit_test(test_intensity_exceeded_stops_children_and_exits),
        cmocka_unit_test(test_intensity_window_forgets_old_restarts),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
