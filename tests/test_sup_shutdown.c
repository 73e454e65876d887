/*
 * tests/test_sup_shutdown.c - ordered shutdown (reverse start order, each
 * child's shutdown time, brutal kill, infinity), nested trees, the root
 * supervisor on tp_runtime_stop(), the parent's exit, intensity escalating
 * through two levels, failed (re)starts and restart backoff.
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
    tp_pid pid[N];
};

static void
fx_init(struct fx *f, tp_strategy st, int n)
{
    memset(f, 0, sizeof(*f));
    f->rt = tpt_runtime(2);
    f->p = tpt_probe_new(f->rt, false);
    tw_specs(f->p, f->args, f->specs, f->ids, n, TP_PERMANENT);
    tp_sup_spec_init(&f->spec, st);
    f->spec.children = f->specs;
    f->spec.nchildren = (size_t)n;
}

static void
fx_start(struct fx *f)
{
    assert_int_equal(tp_runtime_spawn(f->rt, &tp_supervisor_behaviour, &f->spec,
                                      NULL, &f->sup),
                     0);
    for (size_t i = 0; i < f->spec.nchildren; i++)
        f->pid[i] = tw_expect(f->p, EV_START, (int)i).pid;
    tpt_probe_do(f->p, tw_do_monitor, &f->sup);
}

static void
fx_finish(struct fx *f)
{
    tpt_probe_free(f->p);
    tpt_finish(f->rt);
}

static void
shutdown_sup(struct fx *f)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, "test"};

    assert_int_equal(tp_runtime_exit_pid(f->rt, f->sup, &why), 0);
}

static void
expect_stop(struct fx *f, int tag, tp_exit_kind kind)
{
    assert_int_equal(tw_expect(f->p, EV_STOP, tag).kind, kind);
}

static void
expect_sup_down(struct fx *f, tp_exit_kind kind, const char *text)
{
    tpt_rec r;

    assert_int_equal(tpt_probe_wait(f->p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, f->sup);
    assert_int_equal(r.kind, kind);
    if (text != NULL)
        assert_string_equal(r.text, text);
}

static uint64_t
ms_since(uint64_t t0)
{
    return (tp_now_ns() - t0) / 1000000u;
}

/* ---------------------------------------------------------------------- */
/* Shutdown order and timeouts                                            */

static void
test_shutdown_stops_children_in_reverse_order(void **state)
{
    struct fx f;

    fx_init(&f, TP_ONE_FOR_ONE, 4);
    fx_start(&f);
    shutdown_sup(&f);
    for (int i = 3; i >= 0; i--)
        expect_stop(&f, i, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, "test");
    fx_finish(&f);
}

/* A child that ignores the shutdown signal is killed after its shutdown
 * time, and only then does the next one (in reverse order) stop. */
static void
test_shutdown_timeout_kills_stubborn_child(void **state)
{
    struct fx f;
    uint64_t t0;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    f.args[1].stubborn = true;
    f.specs[1].shutdown_ms = 150;
    fx_start(&f);
    t0 = tp_now_ns();
    shutdown_sup(&f);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 1, TP_EXIT_KILLED);
    assert_true(ms_since(t0) >= 150);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, NULL);
    fx_finish(&f);
}

/* A child that cleans up within its shutdown time is waited for, not
 * killed, and the order holds. */
static void
test_shutdown_waits_for_slow_child_within_timeout(void **state)
{
    struct fx f;
    uint64_t t0;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    f.args[1].trap = true;
    f.args[1].linger = 100;
    f.specs[1].shutdown_ms = 5000;
    fx_start(&f);
    t0 = tp_now_ns();
    shutdown_sup(&f);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    assert_true(ms_since(t0) >= 100);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, NULL);
    fx_finish(&f);
}

static void
test_brutal_kill_does_not_wait(void **state)
{
    struct fx f;
    uint64_t t0;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    f.args[1].trap = true;
    f.args[1].linger = 20000; /* would take 20 s if it were asked */
    f.specs[1].shutdown_ms = TP_SHUTDOWN_BRUTAL;
    fx_start(&f);
    t0 = tp_now_ns();
    shutdown_sup(&f);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 1, TP_EXIT_KILLED);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    assert_true(ms_since(t0) < 10000); /* not the linger */
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, NULL);
    fx_finish(&f);
}

static void
test_shutdown_infinity_waits_as_long_as_it_takes(void **state)
{
    struct fx f;
    uint64_t t0;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    f.args[1].trap = true;
    f.args[1].linger = 300;
    f.specs[1].shutdown_ms = TP_SHUTDOWN_INFINITY;
    fx_start(&f);
    t0 = tp_now_ns();
    shutdown_sup(&f);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    assert_true(ms_since(t0) >= 300);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, NULL);
    fx_finish(&f);
}

/* The same order rules apply to a group restart: one_for_all stops the
 * siblings in reverse order, each within its time, brutal ones at once. */
static void
test_group_restart_honours_shutdown_times(void **state)
{
    struct fx f;

    fx_init(&f, TP_ONE_FOR_ALL, 4);
    f.args[2].stubborn = true;
    f.specs[2].shutdown_ms = 100;
    f.specs[1].shutdown_ms = TP_SHUTDOWN_BRUTAL;
    f.spec.intensity = 10;
    fx_start(&f);
    assert_int_equal(tp_runtime_send(f.rt, f.pid[3], W_CRASH, NULL, 0), 0);
    expect_stop(&f, 3, TP_EXIT_CRASH);
    expect_stop(&f, 2, TP_EXIT_KILLED);
    expect_stop(&f, 1, TP_EXIT_KILLED);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    for (int i = 0; i < 4; i++)
        tw_expect(f.p, EV_START, i);
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* Trees                                                                  */

/* top: [w0, mid: [w1, w2], w3] */
struct tree {
    struct tw_arg args[4];
    char ids[4][16];
    tp_child_spec top_kids[3], mid_kids[2];
    tp_sup_spec top, mid;
};

static void
tree_init(struct tree *t, tpt_probe *p, struct tw_journal *j)
{
    tp_child_spec all[4];

    memset(t, 0, sizeof(*t));
    tw_specs(p, t->args, all, t->ids, 4, TP_PERMANENT);
    for (int i = 0; i < 4; i++)
        t->args[i].j = j;
    tp_sup_spec_init(&t->mid, TP_REST_FOR_ONE);
    t->mid_kids[0] = all[1];
    t->mid_kids[1] = all[2];
    t->mid.children = t->mid_kids;
    t->mid.nchildren = 2;
    t->top_kids[0] = all[0];
    tp_child_spec_init(&t->top_kids[1], "mid", &tp_supervisor_behaviour,
                       &t->mid);
    t->top_kids[2] = all[3];
    tp_sup_spec_init(&t->top, TP_ONE_FOR_ONE);
    t->top.children = t->top_kids;
    t->top.nchildren = 3;
}

static void
test_nested_tree_shuts_down_depth_first_in_reverse(void **state)
{
    struct fx f;
    struct tree t;
    tp_pid top;

    fx_init(&f, TP_ONE_FOR_ONE, 0);
    tree_init(&t, f.p, NULL);
    assert_int_equal(
        tp_runtime_spawn(f.rt, &tp_supervisor_behaviour, &t.top, NULL, &top),
        0);
    for (int i = 0; i < 4; i++)
        tw_expect(f.p, EV_START, i);
    f.sup = top;
    tpt_probe_do(f.p, tw_do_monitor, &f.sup);
    shutdown_sup(&f);
    for (int i = 3; i >= 0; i--)
        expect_stop(&f, i, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, NULL);
    fx_finish(&f);
}

static void
test_runtime_stop_shuts_root_tree_down_in_order(void **state)
{
    static const int want[][3] = {
        {EV_START, 0, -1},
        {EV_START, 1, -1},
        {EV_START, 2, -1},
        {EV_START, 3, -1},
        {EV_STOP, 3, TP_EXIT_SHUTDOWN},
        {EV_STOP, 2, TP_EXIT_SHUTDOWN},
        {EV_STOP, 1, TP_EXIT_KILLED}, /* stubborn: killed after 100 ms */
        {EV_STOP, 0, TP_EXIT_SHUTDOWN},
    };
    struct tw_journal j = {.lock = PTHREAD_MUTEX_INITIALIZER};
    tp_runtime *rt = tpt_runtime(2);
    struct tree t;
    tp_pid app, root;
    tp_sup_info info;

    tree_init(&t, NULL, &j);
    t.args[1].stubborn = true;
    t.mid_kids[0].shutdown_ms = 100;
    assert_int_equal(tp_runtime_supervisor_start(rt, "app", &t.top, &app), 0);
    /* The root keeps its own copy of the specs (not of the worker args). */
    memset(&t.top, 0, sizeof(t.top));
    memset(&t.mid, 0, sizeof(t.mid));
    memset(t.top_kids, 0, sizeof(t.top_kids));
    memset(t.mid_kids, 0, sizeof(t.mid_kids));
    memset(t.ids, 0, sizeof(t.ids));
    root = tp_runtime_root_supervisor(rt);
    assert_true(root != TP_PID_NONE && root != app);
    assert_int_equal(tp_runtime_root_supervisor(rt), root);
    assert_int_equal(tp_supervisor_info(rt, root, &info, 0), 0);
    assert_int_equal(info.children, 1);
    assert_int_equal(info.active, 1);
    assert_int_equal(tp_runtime_supervisor_start(rt, "app", &t.top, NULL),
                     -EINVAL); /* zeroed spec */
    /* The stop goes through the root: no kill phase is needed. */
    assert_int_equal(tp_runtime_stop(rt), 0);
    tw_journal_check(&j, want, 8);
    assert_int_equal(tp_runtime_root_supervisor(rt), TP_PID_NONE);
    tp_runtime_destroy(rt);
}

struct start_arg {
    const tp_sup_spec *spec;
    tp_pid pid;
};

static void
do_start_sup(tp_ctx *ctx, void *arg)
{
    struct start_arg *a = arg;

    TPT_CHECK_INT_EQ(tp_supervisor_start(ctx, a->spec, NULL, &a->pid), 0);
}

static void
test_supervisor_ends_with_its_parent(void **state)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};
    struct fx f;
    tpt_probe *parent;
    struct start_arg a;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    parent = tpt_probe_new(f.rt, false);
    a.spec = &f.spec;
    tpt_probe_do(parent, do_start_sup, &a);
    f.sup = a.pid;
    for (int i = 0; i < 3; i++)
        tw_expect(f.p, EV_START, i);
    tpt_probe_do(f.p, tw_do_monitor, &f.sup);
    /* An exit of some other linked actor would be ignored; the parent's
     * takes the tree down, in order, with the parent's reason. */
    assert_int_equal(tp_runtime_exit_pid(f.rt, tpt_probe_pid(parent), &kill),
                     0);
    for (int i = 2; i >= 0; i--)
        expect_stop(&f, i, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_KILLED, "test");
    tpt_probe_free(parent);
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* Escalation and failed restarts                                         */

static void
crash(struct fx *f, tp_pid pid)
{
    assert_int_equal(tp_runtime_send(f->rt, pid, W_CRASH, NULL, 0), 0);
}

/* top (intensity 1): [mid (intensity 1): [w0], w1]. Two crashes of w0
 * end mid; top restarts it once; two more end mid again, which is one
 * restart too many for top: top stops w1 and ends. */
static void
test_intensity_escalates_through_two_levels(void **state)
{
    struct fx f;
    tp_child_spec mid_kid, top_kids[2];
    tp_sup_spec mid;
    tp_pid w0;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    tp_sup_spec_init(&mid, TP_ONE_FOR_ONE);
    mid.intensity = 1;
    mid.period_ms = 60000;
    mid_kid = f.specs[0];
    mid.children = &mid_kid;
    mid.nchildren = 1;
    tp_child_spec_init(&top_kids[0], "mid", &tp_supervisor_behaviour, &mid);
    top_kids[1] = f.specs[1];
    f.spec.children = top_kids;
    f.spec.intensity = 1;
    f.spec.period_ms = 60000;
    fx_start(&f);
    w0 = f.pid[0];
    for (int round = 0; round < 2; round++) {
        crash(&f, w0);
        expect_stop(&f, 0, TP_EXIT_CRASH);
        w0 = tw_expect(f.p, EV_START, 0).pid; /* restarted by mid */
        crash(&f, w0);
        expect_stop(&f, 0, TP_EXIT_CRASH); /* mid gives up */
        if (round == 0) /* top restarts mid, which starts w0 */
            w0 = tw_expect(f.p, EV_START, 0).pid;
    }
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, "reached max restart intensity");
    fx_finish(&f);
}

static void
test_failed_restarts_count_and_escalate(void **state)
{
    struct fx f;
    tp_sup_info info;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    f.spec.intensity = 3;
    f.spec.period_ms = 60000;
    fx_start(&f);
    atomic_store(&f.args[1].fail_inits, 1000); /* it never comes back */
    crash(&f, f.pid[1]);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    expect_sup_down(&f, TP_EXIT_SHUTDOWN, "reached max restart intensity");
    /* 1 restart + 2 retries were allowed, the 3rd retry is one too many. */
    assert_int_equal(atomic_load(&f.args[1].fail_inits), 1000 - 3);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &info, 100), -ESRCH);
    fx_finish(&f);
}

static void
test_failed_restart_is_retried(void **state)
{
    struct fx f;
    tp_sup_info info;

    fx_init(&f, TP_ONE_FOR_ALL, 3);
    f.spec.intensity = 5;
    fx_start(&f);
    atomic_store(&f.args[1].fail_inits, 1);
    crash(&f, f.pid[2]);
    expect_stop(&f, 2, TP_EXIT_CRASH);
    expect_stop(&f, 1, TP_EXIT_SHUTDOWN);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    /* c0 starts, c1 fails once: the group is stopped again and retried. */
    tw_expect(f.p, EV_START, 0);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    for (int i = 0; i < 3; i++)
        tw_expect(f.p, EV_START, i);
    tpt_idle(f.rt);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &info, 0), 0);
    assert_int_equal(info.active, 3);
    assert_int_equal(info.restarts, 4); /* c0 twice, c1 and c2 once */
    assert_int_equal(info.max_restarts_hit, 0);
    fx_finish(&f);
}

static void
test_start_fails_when_a_child_fails_to_start(void **state)
{
    struct fx f;
    tp_pid sup;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    f.args[1].init_err = -EPROTO;
    assert_int_equal(
        tp_runtime_spawn(f.rt, &tp_supervisor_behaviour, &f.spec, NULL, &sup),
        -EPROTO);
    /* The one already started was shut down; the third never started. */
    tw_expect(f.p, EV_START, 0);
    expect_stop(&f, 0, TP_EXIT_SHUTDOWN);
    tpt_idle(f.rt);
    assert_int_equal(tpt_probe_count(f.p, 0), 0);
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* Backoff                                                                */

static bool
restarting_now(struct fx *f, const char *id)
{
    tp_child_info info[N];
    size_t total;

    assert_int_equal(
        tp_supervisor_which_children(f->rt, f->sup, info, N, &total, 0), 0);
    for (size_t i = 0; i < total; i++) {
        if (strcmp(info[i].id, id) == 0)
            return info[i].restarting && !info[i].running;
    }
    return false;
}

/* The child's EXIT may still be on its way to the supervisor: poll (as
 * long as the machine needs, but not past the restart itself). */
static bool
restarting(struct fx *f, const char *id)
{
    for (int i = 0; i < 5000 * (int)tpt_slow(); i++) {
        if (restarting_now(f, id))
            return true;
        if (tpt_probe_count(f->p, EV_START) != 0)
            return false; /* restarted already: the window was missed */
        tpt_sleep_ms(1);
    }
    return false;
}

static void
test_backoff_delays_consecutive_restarts_exponentially(void **state)
{
    struct fx f;
    tp_pid w;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    f.spec.backoff_min_ms = 100;
    f.spec.backoff_max_ms = 400;
    f.spec.intensity = 10;
    fx_start(&f);
    w = f.pid[1];
    /* Delays 100, 200, 400, 400 ms (+-25 %). */
    for (int n = 0; n < 4; n++) {
        unsigned base = n < 2 ? 100u << n : 400u;
        uint64_t t0 = tp_now_ns();
        crash(&f, w);
        expect_stop(&f, 1, TP_EXIT_CRASH);
        if (n == 0)
            assert_true(restarting(&f, "c1"));
        w = tw_expect(f.p, EV_START, 1).pid;
        assert_true(ms_since(t0) >= base * 3 / 4);
    }
    fx_finish(&f);
}

static void
test_backoff_streak_resets_after_a_stable_period(void **state)
{
    struct fx f;
    uint64_t t0;
    tp_pid w;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    f.spec.backoff_min_ms = 50;
    f.spec.backoff_max_ms = 10000;
    f.spec.period_ms = 300;
    f.spec.intensity = 10;
    fx_start(&f);
    w = f.pid[1];
    for (int n = 0; n < 4; n++) { /* 50, 100, 200, 400 */
        crash(&f, w);
        expect_stop(&f, 1, TP_EXIT_CRASH);
        w = tw_expect(f.p, EV_START, 1).pid;
    }
    tpt_sleep_ms(350); /* up for a whole period: healthy again */
    t0 = tp_now_ns();
    crash(&f, w);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    tw_expect(f.p, EV_START, 1);
    /* 50 ms (+-25 %) again, not 800 (+-25 %: 600 at least), whatever the
     * machine's load adds to the first. */
    assert_true(ms_since(t0) >= 37);
    assert_true(ms_since(t0) < 600);
    fx_finish(&f);
}

static void
test_backoff_delays_group_restart(void **state)
{
    struct fx f;
    uint64_t t0;

    fx_init(&f, TP_REST_FOR_ONE, 3);
    f.spec.backoff_min_ms = 200;
    f.spec.backoff_max_ms = 200;
    fx_start(&f);
    t0 = tp_now_ns();
    crash(&f, f.pid[1]);
    expect_stop(&f, 1, TP_EXIT_CRASH);
    expect_stop(&f, 2, TP_EXIT_SHUTDOWN); /* stopped at once ... */
    assert_true(restarting(&f, "c1") && restarting(&f, "c2"));
    tw_expect(f.p, EV_START, 1); /* ... restarted after the delay */
    tw_expect(f.p, EV_START, 2);
    assert_true(ms_since(t0) >= 150);
    fx_finish(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_stops_children_in_reverse_order),
        cmocka_unit_test(test_shutdown_timeout_kills_stubborn_child),
        cmocka_unit_test(test_shutdown_waits_for_slow_child_within_timeout),
        cmocka_unit_test(test_brutal_kill_does_not_wait),
        cmocka_unit_test(test_shutdown_infinity_waits_as_long_as_it_takes),
        cmocka_unit_test(test_group_restart_honours_shutdown_times),
        cmocka_unit_test(test_nested_tree_shuts_down_depth_first_in_reverse),
        cmocka_unit_test(test_runtime_stop_shuts_root_tree_down_in_order),
        cmocka_unit_test(test_supervisor_ends_with_its_parent),
        cmocka_unit_test(test_intensity_escalates_through_two_levels),
        cmocka_unit_test(test_failed_restarts_count_and_escalate),
        cmocka_unit_test(test_failed_restart_is_retried),
        cmocka_unit_test(test_start_fails_when_a_child_fails_to_start),
        cmocka_unit_test(
            test_backoff_delays_consecutive_restarts_exponentially),
        cmocka_unit_test(test_backoff_streak_resets_after_a_stable_period),
        cmocka_unit_test(test_backoff_delays_group_restart),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
