/*
 * tests/test_faults_sup.c - out-of-memory injection over supervision.
 *
 * A scenario builds a small tree under the root supervisor: "app"
 * (one_for_one, two permanent workers) and "conns" (dynamic, permanent
 * children); it crashes a static and a dynamic child and waits for their
 * restarts, adds and terminates a temporary child, then stops the runtime.
 * It runs for N = 1, 2, ... with the Nth allocation failing (one shot, and
 * the Nth and every later one), until a run completes without reaching N.
 *
 * The rule is OTP's: a supervisor that cannot do something retries or
 * escalates, it never forgets. So for every N, once allocation works again:
 *  - every management call that failed returned a negative errno, and only
 *    after a failure was injected;
 *  - the tree heals by itself: the root's children are running, "app" has
 *    both workers running, every child "conns" lists is running (none left
 *    waiting for a restart that never comes);
 *  - the same runtime starts new supervisors and children, stops cleanly,
 *    and tp_runtime_destroy() gives every block back.
 */
#include "faultalloc.h"
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
}

static const tp_behaviour worker = {.name = "fsup-worker",
                                    .handle = worker_handle};

/* ---------------------------------------------------------------------- */
/* Tree helpers                                                           */

#define CAP 16

/* Management calls wait this long: a reply that cannot be allocated makes
 * the call time out (-ETIMEDOUT), so while allocations fail the sweep
 * should not wait long. */
static uint32_t
timeout_ms(void)
{
    return (tpf_armed() ? 200 : 5000) * tpt_slow();
}

static int
children(tp_runtime *rt, tp_pid sup, tp_child_info *info, size_t *n)
{
    return tp_supervisor_which_children(rt, sup, info, CAP, n, timeout_ms());
}

static tp_pid
child_pid(tp_runtime *rt, tp_pid sup, const char *id)
{
    tp_child_info info[CAP];
    size_t n = 0;

    if (children(rt, sup, info, &n) != 0)
        return TP_PID_NONE;
    for (size_t i = 0; i < n && i < CAP; i++) {
        if (strcmp(info[i].id, id) == 0)
            return info[i].running ? info[i].pid : TP_PID_NONE;
    }
    return TP_PID_NONE;
}

/* Every child sup lists is running - and really alive, not just believed
 * to be - and there are at least `want` of them. */
static bool
all_running(tp_runtime *rt, tp_pid sup, size_t want)
{
    tp_child_info info[CAP];
    tp_actor_info ai;
    size_t n = 0;

    if (children(rt, sup, info, &n) != 0 || n < want)
        return false;
    for (size_t i = 0; i < n && i < CAP; i++) {
        if (!info[i].running || tp_actor_peek(rt, info[i].pid, &ai) != 0)
            return false;
    }
    return true;
}

/* Polls cond for up to 10 s (scaled). */
static bool
eventually(bool (*cond)(void *), void *arg)
{
    uint64_t deadline = tp_now_ns() + 10000000000ull * tpt_slow();

    while (!cond(arg)) {
        if (tp_now_ns() > deadline)
            return false;
        tpt_sleep_ms(2);
    }
    return true;
}

/* In the scenario: waits for cond; once a failure was injected the wait is
 * cut short (allocation may still be failing: the check after the run,
 * with allocation restored, is the one that must see the tree healed).
 * Returns true when the scenario must stop. */
static bool
wait_for(const char *what, bool (*cond)(void *), void *arg)
{
    uint64_t start = tp_now_ns();

    while (!cond(arg)) {
        uint64_t waited = tp_now_ns() - start;
        if (tpf_failed() != 0 && waited > 300000000ull * tpt_slow())
            return true;
        if (waited > 10000000000ull * tpt_slow()) {
            tpf_violation("%s: not done after 10 s, no failure injected", what);
            return true;
        }
        tpt_sleep_ms(2);
    }
    return false;
}

struct world {
    tp_runtime *rt;
    tp_pid app, conns;
    tp_pid old; /* a child that was crashed */
    const char *id;
};

static bool
restarted(void *arg)
{
    struct world *w = arg;
    tp_pid p = child_pid(w->rt, w->app, w->id);

    return p != TP_PID_NONE && p != w->old;
}

static bool
dyn_restarted(void *arg)
{
    struct world *w = arg;
    tp_sup_info si;

    return tp_supervisor_info(w->rt, w->conns, &si, timeout_ms()) == 0 &&
           si.restarts >= 1 && all_running(w->rt, w->conns, 2);
}

/* ---------------------------------------------------------------------- */
/* The scenario                                                           */

static void
app_spec(tp_sup_spec *s, tp_child_spec c[2])
{
    tp_child_spec_init(&c[0], "a", &worker, NULL);
    tp_child_spec_init(&c[1], "b", &worker, NULL);
    c[1].opts.name = "fsup-b";
    tp_sup_spec_init(s, TP_ONE_FOR_ONE);
    s->intensity = 1000;
    s->period_ms = 60000;
    s->children = c;
    s->nchildren = 2;
}

static void
conns_spec(tp_sup_spec *s)
{
    tp_sup_spec_init(s, TP_DYNAMIC);
    s->intensity = 1000;
    s->period_ms = 60000;
    tp_child_spec_init(&s->child_template, "conn", &worker, NULL);
}

static bool
step_static(struct world *w)
{
    tp_exit_reason crash = {TP_EXIT_CRASH, 0, "fault test"};
    tp_child_spec c[2];
    tp_sup_spec s;

    app_spec(&s, c);
    if (tpf_call_failed("supervisor_start app",
                        tp_runtime_supervisor_start(w->rt, "app", &s, &w->app)))
        return true;
    w->id = "a";
    w->old = child_pid(w->rt, w->app, "a");
    if (w->old == TP_PID_NONE)
        return tpf_call_failed("which_children app", -ENOENT);
    if (tpf_call_failed("exit_pid a",
                        tp_runtime_exit_pid(w->rt, w->old, &crash)))
        return true;
    /* A restart that cannot be allocated is retried (or escalates): it
     * must not be given up. The check after the run covers that. */
    return wait_for("restart of a", restarted, w);
}

static bool
step_dynamic(struct world *w)
{
    tp_exit_reason crash = {TP_EXIT_CRASH, 0, "fault test"};
    tp_sup_spec s;
    tp_pid c1, c2;

    conns_spec(&s);
    if (tpf_call_failed(
            "supervisor_start conns",
            tp_runtime_supervisor_start(w->rt, "conns", &s, &w->conns)) ||
        tpf_call_failed("start_child 1",
                        tp_supervisor_start_child(w->rt, w->conns, NULL, NULL,
                                                  &c1, timeout_ms())) ||
        tpf_call_failed("start_child 2",
                        tp_supervisor_start_child(w->rt, w->conns, NULL, NULL,
                                                  &c2, timeout_ms())) ||
        tpf_call_failed("exit_pid conn",
                        tp_runtime_exit_pid(w->rt, c1, &crash)))
        return true;
    return wait_for("restart of a dynamic child", dyn_restarted, w);
}

static bool
step_temporary(struct world *w)
{
    tp_child_spec t;

    tp_child_spec_init(&t, "t", &worker, NULL);
    t.restart = TP_TEMPORARY;
    return tpf_call_failed("start_child t",
                           tp_supervisor_start_child(w->rt, w->app, &t, NULL,
                                                     NULL, timeout_ms())) ||
           tpf_call_failed(
               "terminate_child t",
               tp_supervisor_terminate_child(w->rt, w->app, "t", timeout_ms()));
}

/* ---------------------------------------------------------------------- */
/* After the run: the tree healed, and works                               */

static bool
tree_healed(void *arg)
{
    struct world *w = arg;
    tp_pid root = tp_runtime_root_supervisor(w->rt);

    if (root == TP_PID_NONE || !all_running(w->rt, root, 0))
        return false;
    /* Restarted by the root if they died: look them up again. */
    w->app = child_pid(w->rt, root, "app");
    w->conns = child_pid(w->rt, root, "conns");
    return (w->app == TP_PID_NONE || all_running(w->rt, w->app, 2)) &&
           (w->conns == TP_PID_NONE || all_running(w->rt, w->conns, 0));
}

static void
check_healed_and_usable(struct world *w)
{
    tp_child_spec c[2], extra;
    tp_sup_spec s;
    tp_pid sup, kid;

    if (!eventually(tree_healed, w)) {
        tp_pid root = tp_runtime_root_supervisor(w->rt);
        tp_child_info info[CAP];
        size_t n = 0;
        int rc = children(w->rt, root, info, &n);
        char a[32];

        tpf_violation("the supervision tree did not heal (root %s: %s, %zu "
                      "children)",
                      tp_pid_format(root, a, sizeof(a)), tp_strerror(rc), n);
        for (size_t i = 0; i < n && i < CAP; i++)
            fprintf(stderr, "  %s running %d restarting %d\n", info[i].id,
                    info[i].running, info[i].restarting);
        tpf_print_fail_site();
        return;
    }
    app_spec(&s, c);
    c[1].opts.name = NULL; /* "app" may hold it */
    assert_int_equal(tp_runtime_supervisor_start(w->rt, "again", &s, &sup), 0);
    tp_child_spec_init(&extra, "extra", &worker, NULL);
    assert_int_equal(
        tp_supervisor_start_child(w->rt, sup, &extra, NULL, &kid, timeout_ms()),
        0);
    assert_true(all_running(w->rt, sup, 3));
}

static tp_runtime_options
opts(void)
{
    return tpf_runtime_opts(1, 5000 * tpt_slow());
}

/* One run; returns whether a failure was injected. */
static bool
run_once(void *unused, uint64_t nth, bool persistent)
{
    tp_runtime_options o = opts();
    struct world w = {0};
    int64_t live0 = tpf_live();
    uint64_t mark = tpf_track_mark();
    bool stopped = false, hit, started = false;
    int rc;

    (void)unused;
    tpf_arm(nth, persistent);
    rc = tp_runtime_create(&w.rt, &o);
    if (!tpf_call_failed("runtime_create", rc)) {
        started = !tpf_call_failed("runtime_start", tp_runtime_start(w.rt));
        if (started && !step_static(&w) && !step_dynamic(&w) &&
            !step_temporary(&w)) {
            stopped = true;
            tpf_call_failed("runtime_stop", tp_runtime_stop(w.rt));
        }
    }
    hit = tpf_failed() != 0;
    tpf_disarm();
    if (hit && tpf_verbose())
        tpf_print_fail_site();
    if (w.rt != NULL) {
        if (started && !stopped)
            check_healed_and_usable(&w);
        if (!stopped) {
            rc = tp_runtime_stop(w.rt);
            if (rc != 0)
                tpf_violation("stop after the run: %s", tp_strerror(rc));
        }
        tp_runtime_destroy(w.rt);
    }
    tpf_check_live(live0, mark);
    return hit;
}

static void
sweep(bool persistent, unsigned stride)
{
    const struct tpf_scenario sc = {run_once, NULL};
    struct tpf_sweep_stats st;

    assert_true(tpf_sweep(&sc, persistent, stride, &st));
    printf("supervision fault sweep (%s): %llu allocations in the "
           "scenario, %llu runs, %llu failures injected\n",
           persistent ? "Nth and later fail" : "Nth fails",
           (unsigned long long)st.total, (unsigned long long)st.runs,
           (unsigned long long)st.failures);
    assert_int_equal(tpf_violations(), 0);
    assert_true(st.runs > 20 / st.stride);
}

static void
test_faults_sup_nth_fails(void **unused)
{
    (void)unused;
    sweep(false, 1);
}

static void
test_faults_sup_nth_and_later_fail(void **unused)
{
    (void)unused;
    /* A lost reply to tp_runtime_supervisor_start() costs its fixed 5 s
     * timeout: sample every 4th N, 8th in sanitizer builds
     * (TP_FAULT_STRIDE=1 for all of them). */
    sweep(true, tpt_slow() > 1 ? 8 : 4);
}

static int
setup(void **unused)
{
    tp_runtime_options o = opts();

    (void)unused;
    return tpf_group_setup(tpf_quiet_sink, &o, &worker, 1);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_sup_nth_fails),
        cmocka_unit_test(test_faults_sup_nth_and_later_fail),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, NULL);
}
