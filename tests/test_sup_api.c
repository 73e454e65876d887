/*
 * tests/test_sup_api.c - managing children at run time: start, terminate,
 * restart, delete, which_children and info, synchronously from outside and
 * asynchronously from an actor; dynamic supervisors and attach.
 */
#include "test_sup_common.h"

#include <stdlib.h>

#define N 4

struct fx {
    tp_runtime *rt;
    tpt_probe *p;
    struct tw_arg args[N];
    tp_child_spec specs[N];
    char ids[N][16];
    tp_sup_spec spec;
    tp_pid sup;
};

static void
fx_init(struct fx *f, tp_strategy st, int n)
{
    memset(f, 0, sizeof(*f));
    f->rt = tpt_runtime(2);
    f->p = tpt_probe_new(f->rt, false);
    tw_specs(f->p, f->args, f->specs, f->ids, N, TP_PERMANENT);
    tp_sup_spec_init(&f->spec, st);
    f->spec.children = f->specs;
    f->spec.nchildren = (size_t)n;
    if (st == TP_DYNAMIC) {
        f->spec.child_template = f->specs[0];
        f->spec.children = NULL;
        f->spec.nchildren = 0;
    }
}

static void
fx_start(struct fx *f)
{
    assert_int_equal(tp_runtime_spawn(f->rt, &tp_supervisor_behaviour, &f->spec,
                                      NULL, &f->sup),
                     0);
    for (size_t i = 0; i < f->spec.nchildren; i++)
        tw_expect(f->p, EV_START, (int)i);
}

static void
fx_finish(struct fx *f)
{
    tpt_probe_free(f->p);
    tpt_finish(f->rt);
}

static size_t
count_children(struct fx *f, tp_child_info *info, size_t cap)
{
    size_t total = 0;

    assert_int_equal(
        tp_supervisor_which_children(f->rt, f->sup, info, cap, &total, 0), 0);
    return total;
}

/* ---------------------------------------------------------------------- */
/* Static children                                                        */

static void
test_start_child_adds_and_starts(void **state)
{
    struct fx f;
    tp_child_info info[8];
    tp_child_spec c;
    char id[16] = "extra";
    tp_pid pid;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    fx_start(&f);
    tp_child_spec_init(&c, id, &tw_behaviour, &f.args[2]);
    c.restart = TP_TRANSIENT;
    assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, &c, NULL, &pid, 0),
                     0);
    assert_int_equal(tw_expect(f.p, EV_START, 2).pid, pid);
    memset(id, 0, sizeof(id)); /* the supervisor keeps its own copy */
    assert_int_equal(count_children(&f, info, 8), 3);
    assert_string_equal(info[2].id, "extra");
    assert_int_equal(info[2].pid, pid);
    assert_int_equal(info[2].restart, TP_TRANSIENT);
    assert_int_equal(info[2].type, TP_WORKER);
    assert_string_equal(info[2].behaviour, "test_worker");
    assert_true(info[2].running);
    /* Same id again, or a bad spec, are refused. */
    c.id = "c0";
    assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, &c, NULL, NULL, 0),
                     -EEXIST);
    c.id = NULL;
    assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, &c, NULL, NULL, 0),
                     -EINVAL);
    /* A child whose init fails is not kept (as OTP). */
    c.id = "bad";
    f.args[3].init_err = -EPROTO;
    c.arg = &f.args[3];
    assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, &c, NULL, NULL, 0),
                     -EPROTO);
    assert_int_equal(count_children(&f, info, 8), 3);
    fx_finish(&f);
}

static void
test_terminate_restart_delete_child(void **state)
{
    struct fx f;
    tp_child_info info[8];
    tp_sup_info si;
    tp_pid old;

    fx_init(&f, TP_ONE_FOR_ONE, 3);
    fx_start(&f);
    old = tw_child_pid(f.rt, f.sup, "c1");
    assert_int_equal(tp_supervisor_delete_child(f.rt, f.sup, "c1", 0), -EBUSY);
    /* terminate_child returns once the child is gone. */
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, "c1", 0), 0);
    assert_false(tw_alive(f.rt, old));
    assert_int_equal(tw_expect(f.p, EV_STOP, 1).kind, TP_EXIT_SHUTDOWN);
    assert_int_equal(count_children(&f, info, 8), 3);
    assert_false(info[1].running);
    assert_int_equal(info[1].pid, TP_PID_NONE);
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, "c1", 0), 0);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &si, 0), 0);
    assert_int_equal(si.active, 2);
    /* restart_child starts it again. */
    assert_int_equal(tp_supervisor_restart_child(f.rt, f.sup, "c1", 0), 0);
    assert_true(tw_expect(f.p, EV_START, 1).pid != old);
    /* restart_child of a running child stops and starts it. */
    old = tw_child_pid(f.rt, f.sup, "c1");
    assert_int_equal(tp_supervisor_restart_child(f.rt, f.sup, "c1", 0), 0);
    tw_expect(f.p, EV_STOP, 1);
    assert_true(tw_expect(f.p, EV_START, 1).pid != old);
    /* delete needs it stopped. */
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, "c1", 0), 0);
    tw_expect(f.p, EV_STOP, 1);
    assert_int_equal(tp_supervisor_delete_child(f.rt, f.sup, "c1", 0), 0);
    assert_int_equal(count_children(&f, info, 8), 2);
    assert_string_equal(info[1].id, "c2");
    assert_int_equal(tp_supervisor_delete_child(f.rt, f.sup, "c1", 0), -ENOENT);
    assert_int_equal(tp_supervisor_restart_child(f.rt, f.sup, "zz", 0),
                     -ENOENT);
    fx_finish(&f);
}

static void
test_api_errors(void **state)
{
    struct fx f;
    tp_sup_info si;
    char longid[80];
    tp_pid dead;

    fx_init(&f, TP_ONE_FOR_ALL, 1);
    fx_start(&f);
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, longid, 0),
                     -EINVAL);
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, NULL, 0),
                     -EINVAL);
    assert_int_equal(tp_supervisor_info(f.rt, TP_PID_NONE, &si, 0), -EINVAL);
    /* A pid that is not (or no longer) there. */
    dead = tp_pid_index(tpt_probe_pid(f.p)) | ((tp_pid)999 << 32);
    assert_int_equal(tp_supervisor_info(f.rt, dead, &si, 0), -ESRCH);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &si, 0), 0);
    assert_int_equal(si.strategy, TP_ONE_FOR_ALL);
    assert_int_equal(si.intensity, 3);
    assert_int_equal(si.period_ms, 5000);
    assert_int_equal(si.children, 1);
    fx_finish(&f);
}

/* A request that arrives during a group restart waits for it; a caller
 * that times out meanwhile leaves nothing dangling (the spec travelled by
 * value). */
static void
test_requests_wait_for_group_restart(void **state)
{
    struct fx f;
    tp_child_info info[8];
    tp_child_spec c;
    char id[16] = "late";
    uint64_t t0;

    fx_init(&f, TP_ONE_FOR_ALL, 3);
    f.args[2].trap = true;
    f.args[2].linger = 300;
    fx_start(&f);
    assert_int_equal(tp_runtime_send(f.rt, tw_child_pid(f.rt, f.sup, "c0"),
                                     W_CRASH, NULL, 0),
                     0);
    tw_expect(f.p, EV_STOP, 0);
    /* Once the supervisor has seen the crash, the group restart runs (c2
     * takes 300 ms to stop). */
    do {
        assert_int_equal(count_children(&f, info, 8), 3);
    } while (!info[0].restarting);
    tp_child_spec_init(&c, id, &tw_behaviour, &f.args[3]);
    assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, &c, NULL, NULL, 20),
                     -ETIMEDOUT);
    memset(&c, 0xa5, sizeof(c));
    memset(id, 0xa5, sizeof(id));
    t0 = tp_now_ns();
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, "c1", 0), 0);
    assert_true((tp_now_ns() - t0) / 1000000 >= 200);
    tpt_idle(f.rt);
    assert_int_equal(count_children(&f, info, 8), 4);
    assert_string_equal(info[3].id, "late");
    assert_true(info[3].running);
    assert_false(info[1].running);
    assert_true(info[0].running && info[2].running);
    fx_finish(&f);
}

static void
test_requests_refused_while_shutting_down(void **state)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, NULL};
    struct fx f;
    tp_child_info info[8];
    size_t total = 0;

    int r = 0;

    fx_init(&f, TP_ONE_FOR_ONE, 2);
    f.args[1].stubborn = true;
    f.specs[1].shutdown_ms = 400 * tpt_slow(); /* the window to ask in */
    fx_start(&f);
    assert_int_equal(tp_runtime_exit_pid(f.rt, f.sup, &why), 0);
    /* Until the supervisor has seen the exit, a request about a child it
     * does not have is refused for that (-ENOENT); then for shutting
     * down. */
    for (int i = 0; i < 5000 * (int)tpt_slow(); i++) {
        r = tp_supervisor_restart_child(f.rt, f.sup, "none", 0);
        if (r != -ENOENT)
            break;
        tpt_sleep_ms(1);
    }
    assert_int_equal(r, -ESHUTDOWN);
    assert_int_equal(tp_supervisor_restart_child(f.rt, f.sup, "c0", 0),
                     -ESHUTDOWN);
    /* Listing still works while it winds down. */
    assert_int_equal(
        tp_supervisor_which_children(f.rt, f.sup, info, 8, &total, 0), 0);
    assert_int_equal(total, 2);
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* The asynchronous protocol                                              */

struct async {
    tp_pid sup;
    tp_sup_req req;
    uint32_t type;
};

static void
do_request(tp_ctx *ctx, void *arg)
{
    struct async *a = arg;

    TPT_CHECK_INT_EQ(
        tp_request(ctx, a->sup, a->type, &a->req, sizeof(a->req), 5000, NULL),
        0);
}

static tp_sup_result
async_call(struct fx *f, struct async *a)
{
    tp_sup_result r;
    tpt_rec rec;

    tpt_probe_do(f->p, do_request, a);
    assert_int_equal(tpt_probe_wait(f->p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.len, sizeof(r));
    memcpy(&r, rec.data, sizeof(r));
    return r;
}

static void
test_async_requests_from_an_actor(void **state)
{
    struct fx f;
    struct async a;
    tp_child_spec c;
    tp_sup_result r;
    tpt_rec rec;
    const tp_sup_children *ch;

    fx_init(&f, TP_ONE_FOR_ONE, 1);
    fx_start(&f);
    memset(&a, 0, sizeof(a));
    a.sup = f.sup;
    tp_child_spec_init(&c, "async", &tw_behaviour, &f.args[1]);
    a.req.spec = &c;
    a.type = TP_SUP_START_CHILD;
    r = async_call(&f, &a);
    assert_int_equal(r.err, 0);
    assert_int_equal(tw_expect(f.p, EV_START, 1).pid, r.pid);
    a.req.spec = NULL;
    strcpy(a.req.child, "async");
    a.type = TP_SUP_TERMINATE_CHILD;
    r = async_call(&f, &a);
    assert_int_equal(r.err, 0);
    tw_expect(f.p, EV_STOP, 1);
    a.type = TP_SUP_DELETE_CHILD;
    assert_int_equal(async_call(&f, &a).err, 0);
    a.type = TP_SUP_DELETE_CHILD;
    assert_int_equal(async_call(&f, &a).err, -ENOENT);
    a.type = TP_SUP_WHICH_CHILDREN;
    tpt_probe_do(f.p, do_request, &a);
    assert_int_equal(tpt_probe_wait(f.p, TP_MSG_REPLY, 5000, &rec), 0);
    ch = (const tp_sup_children *)rec.data;
    assert_int_equal(ch->count, 1);
    assert_int_equal(ch->total, 1);
    assert_string_equal(ch->child[0].id, "c0");
    fx_finish(&f);
}

/* ---------------------------------------------------------------------- */
/* Dynamic supervisors                                                    */

static void
test_dynamic_start_terminate_and_limits(void **state)
{
    struct fx f;
    tp_child_info info[8];
    tp_pid pid[3];
    char text[32];

    fx_init(&f, TP_DYNAMIC, 0);
    f.spec.max_children = 3;
    f.spec.child_template.restart = TP_TRANSIENT;
    fx_start(&f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tp_supervisor_start_child(f.rt, f.sup, NULL,
                                                   &f.args[i], &pid[i], 0),
                         0);
        assert_int_equal(tw_expect(f.p, EV_START, i).pid, pid[i]);
    }
    assert_int_equal(
        tp_supervisor_start_child(f.rt, f.sup, NULL, &f.args[3], NULL, 0),
        -EAGAIN);
    assert_int_equal(count_children(&f, info, 8), 3);
    assert_string_equal(info[1].id, "");
    assert_int_equal(info[1].pid, pid[1]);
    assert_int_equal(info[1].restart, TP_TRANSIENT);
    /* Children are named by pid; terminate removes them. */
    tp_pid_format(pid[1], text, sizeof(text));
    assert_int_equal(tp_supervisor_delete_child(f.rt, f.sup, text, 0), -EINVAL);
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, text, 0), 0);
    tw_expect(f.p, EV_STOP, 1);
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, text, 0),
                     -ENOENT);
    assert_int_equal(count_children(&f, info, 8), 2);
    /* Transient: a crash restarts it (same arg), a normal exit removes it. */
    assert_int_equal(tp_runtime_send(f.rt, pid[0], W_CRASH, NULL, 0), 0);
    tw_expect(f.p, EV_STOP, 0);
    pid[0] = tw_expect(f.p, EV_START, 0).pid;
    tw_tell_exit(f.rt, pid[2], TP_EXIT_NORMAL);
    tw_expect(f.p, EV_STOP, 2);
    tpt_idle(f.rt);
    assert_int_equal(count_children(&f, info, 8), 1);
    assert_int_equal(info[0].pid, pid[0]);
    assert_int_equal(info[0].restarts, 1);
    /* restart_child of a dynamic child: same arg, new pid. */
    tp_pid_format(pid[0], text, sizeof(text));
    assert_int_equal(tp_supervisor_restart_child(f.rt, f.sup, text, 0), 0);
    tw_expect(f.p, EV_STOP, 0);
    assert_true(tw_expect(f.p, EV_START, 0).pid != pid[0]);
    fx_finish(&f);
}

static void
test_dynamic_children_stop_at_once_on_shutdown(void **state)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, NULL};
    const unsigned linger = 300 * tpt_slow();
    struct fx f;
    uint64_t t0, took;
    tpt_rec r;

    fx_init(&f, TP_DYNAMIC, 0);
    f.spec.child_template.shutdown_ms = 5000 * tpt_slow();
    fx_start(&f);
    tpt_probe_do(f.p, tw_do_monitor, &f.sup);
    /* Three children that each take `linger` ms to stop: all at once, so
     * the supervisor is gone in about one linger; one after another would
     * take three at least, however fast the machine (so two lingers of
     * slack for a loaded one). */
    for (int i = 0; i < 3; i++) {
        f.args[i].trap = true;
        f.args[i].linger = linger;
        assert_int_equal(
            tp_supervisor_start_child(f.rt, f.sup, NULL, &f.args[i], NULL, 0),
            0);
        tw_expect(f.p, EV_START, i);
    }
    t0 = tp_now_ns();
    assert_int_equal(tp_runtime_exit_pid(f.rt, f.sup, &why), 0);
    assert_int_equal(tpt_probe_wait(f.p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, f.sup);
    took = (tp_now_ns() - t0) / 1000000;
    print_message("3 children lingering %u ms each: stopped in %llu ms\n",
                  linger, (unsigned long long)took);
    assert_true(took >= linger);
    assert_true(took < 3 * linger);
    assert_int_equal(tpt_probe_count(f.p, EV_STOP), 3);
    fx_finish(&f);
}

/* An actor that joins a dynamic supervisor from its init. */
struct joiner {
    tp_pid sup;
    tp_pid probe;
};

static int
joiner_init(tp_ctx *ctx, void *state, void *arg)
{
    const struct joiner *j = arg;

    *(struct joiner *)state = *j;
    return tp_supervisor_attach(ctx, j->sup);
}

static void
joiner_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == W_EXIT)
        tp_exit(ctx);
}

static void
joiner_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct tw_ev ev = {.tag = 99, .kind = r->kind, .pid = tp_self(ctx)};

    tp_send(ctx, ((struct joiner *)state)->probe, EV_STOP, &ev, sizeof(ev));
}

static const tp_behaviour joiner = {
    .name = "joiner",
    .state_size = sizeof(struct joiner),
    .init = joiner_init,
    .handle = joiner_handle,
    .terminate = joiner_terminate,
};

static void
test_attach_joins_a_dynamic_supervisor(void **state)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, NULL};
    struct fx f;
    struct joiner j;
    tp_child_info info[8];
    tp_pid a, b;
    tp_sup_info si;

    fx_init(&f, TP_DYNAMIC, 0);
    fx_start(&f);
    j.sup = f.sup;
    j.probe = tpt_probe_pid(f.p);
    assert_int_equal(tp_runtime_spawn(f.rt, &joiner, &j, NULL, &a), 0);
    assert_int_equal(tp_runtime_spawn(f.rt, &joiner, &j, NULL, &b), 0);
    tpt_idle(f.rt);
    /* Attached children are listed in no particular order. */
    assert_int_equal(count_children(&f, info, 8), 2);
    assert_true((info[0].pid == a && info[1].pid == b) ||
                (info[0].pid == b && info[1].pid == a));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(info[i].restart, TP_TEMPORARY);
        assert_string_equal(info[i].behaviour, "joiner");
        assert_true(info[i].running);
    }
    /* An attached child that ends is forgotten, never restarted. */
    assert_int_equal(tp_runtime_send(f.rt, a, W_EXIT, NULL, 0), 0);
    tw_expect(f.p, EV_STOP, 99);
    tpt_idle(f.rt);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &si, 0), 0);
    assert_int_equal(si.children, 1);
    assert_int_equal(si.active, 1);
    assert_int_equal(si.restarts, 0);
    /* The supervisor's shutdown takes attached children with it. */
    assert_int_equal(tp_runtime_exit_pid(f.rt, f.sup, &why), 0);
    assert_int_equal(tw_expect(f.p, EV_STOP, 99).pid, b);
    tw_wait_dead(f.rt, f.sup);
    /* Attaching to a dead supervisor: the link gives noproc at once. */
    assert_int_equal(tp_runtime_spawn(f.rt, &joiner, &j, NULL, &a), 0);
    assert_int_equal(tw_expect(f.p, EV_STOP, 99).kind, TP_EXIT_NOPROC);
    fx_finish(&f);
}

/* A joiner that traps exits and ignores the shutdown signal. */
static int
stubborn_init(tp_ctx *ctx, void *state, void *arg)
{
    tp_trap_exit(ctx, true);
    return joiner_init(ctx, state, arg);
}

static const tp_behaviour stubborn = {
    .name = "stubborn",
    .state_size = sizeof(struct joiner),
    .init = stubborn_init,
    .handle = joiner_handle,
    .terminate = joiner_terminate,
};

/* Attached children have no child record while they run (their link is
 * tagged instead): they still count against max_children, can be
 * terminated by pid (which makes them a record), and a shutdown kills
 * those that ignore it once the template's shutdown_ms has passed. */
static void
test_attached_children_without_records(void **state)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, NULL};
    struct fx f;
    struct joiner j;
    tp_child_info info[8];
    tp_pid a, b, c, d;
    tp_sup_info si;
    char text[32];
    uint64_t t0, took;

    fx_init(&f, TP_DYNAMIC, 0);
    f.spec.max_children = 3;
    f.spec.child_template.shutdown_ms = 200;
    fx_start(&f);
    j.sup = f.sup;
    j.probe = tpt_probe_pid(f.p);
    assert_int_equal(tp_runtime_spawn(f.rt, &joiner, &j, NULL, &a), 0);
    assert_int_equal(tp_runtime_spawn(f.rt, &stubborn, &j, NULL, &b), 0);
    assert_int_equal(tp_runtime_spawn(f.rt, &stubborn, &j, NULL, &c), 0);
    tpt_idle(f.rt);
    assert_int_equal(count_children(&f, info, 8), 3);
    /* A fourth is refused: attached children count. */
    assert_int_equal(tp_runtime_spawn(f.rt, &joiner, &j, NULL, &d), 0);
    assert_int_equal(tw_expect(f.p, EV_STOP, 99).pid, d);
    tpt_idle(f.rt);
    assert_int_equal(count_children(&f, info, 8), 3);
    /* terminate_child by pid: it is gone when the call returns. */
    tp_pid_format(a, text, sizeof(text));
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, text, 0), 0);
    assert_int_equal(tw_expect(f.p, EV_STOP, 99).pid, a);
    assert_int_equal(tp_supervisor_terminate_child(f.rt, f.sup, text, 0),
                     -ENOENT);
    assert_int_equal(tp_supervisor_info(f.rt, f.sup, &si, 0), 0);
    assert_int_equal(si.children, 2);
    assert_int_equal(si.active, 2);
    /* Shutdown: the two that ignore it are killed after 200 ms. */
    t0 = tp_now_ns();
    assert_int_equal(tp_runtime_exit_pid(f.rt, f.sup, &why), 0);
    tw_wait_dead(f.rt, f.sup);
    took = (tp_now_ns() - t0) / 1000000;
    print_message("2 attached children ignoring shutdown: killed, supervisor "
                  "gone in %llu ms (shutdown_ms 200)\n",
                  (unsigned long long)took);
    assert_true(took >= 190);
    for (int i = 0; i < 2; i++) {
        struct tw_ev ev = tw_expect(f.p, EV_STOP, 99);

        assert_true(ev.pid == b || ev.pid == c);
        assert_int_equal(ev.kind, TP_EXIT_KILLED);
    }
    fx_finish(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_child_adds_and_starts),
        cmocka_unit_test(test_terminate_restart_delete_child),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_requests_wait_for_group_restart),
        cmocka_unit_test(test_requests_refused_while_shutting_down),
        cmocka_unit_test(test_async_requests_from_an_actor),
        cmocka_unit_test(test_dynamic_start_terminate_and_limits),
        cmocka_unit_test(test_dynamic_children_stop_at_once_on_shutdown),
        cmocka_unit_test(test_attach_joins_a_dynamic_supervisor),
        cmocka_unit_test(test_attached_children_without_records),
    };
    tp_log_set_level(getenv("TPLOG") ? TP_LOG_DEBUG : TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
