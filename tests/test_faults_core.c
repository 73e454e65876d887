/*
 * tests/test_faults_core.c - out-of-memory injection over the core runtime.
 *
 * One scenario touches every allocating path of the core: create and start
 * a runtime, spawn (named, linked, with init), send, echo, link, monitor,
 * one-shot and periodic timers, request/reply from an actor and from
 * outside, names, blobs, the stash, actor queries, exit signals, stop and
 * destroy. It runs once to count its allocations, then again for N = 1, 2,
 * 3, ... with the Nth allocation failing (and, in the persistent variant,
 * every later one), until a run completes without reaching N.
 *
 * For each N:
 *  - a public call that fails must return a negative errno, and only after
 *    a failure was injected;
 *  - a callback that hits the failure may crash its own actor (the worker
 *    calls tp_fail()): that must stay confined to it;
 *  - a notification the runtime could not allocate must be reported (its
 *    "lost: out of memory" log line): a silent loss fails the test;
 *  - once allocation works again the same runtime must still spawn, send,
 *    link, monitor, arm timers and answer calls, then stop cleanly;
 *  - after tp_runtime_destroy() the allocator's live-block count must be
 *    back to where it was (a leak check that works in every build; ASan's
 *    LeakSanitizer checks again at exit).
 */
#include "faultalloc.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_DO = 1,    /* observer: run a function in its context */
    T_ECHO,      /* worker: echo the payload to the observer */
    T_ECHO_BACK, /* observer: an echo */
    T_REQ,       /* worker: reply with the payload */
    T_BLOB,      /* worker: forward the blob to the observer */
    T_BLOB_BACK, /* observer: a forwarded blob */
    T_STASH,     /* worker: stash (or, once released, echo) */
    T_UNSTASH,   /* worker: release the stash */
    T_STASHED,   /* observer: a message that went through the stash */
    T_TICK,      /* child: its own timer fired */
    T_TICKED,    /* observer: the child's timer fired */
    T_IV,        /* observer: a periodic timer */
    T_AFTER,     /* observer: a one-shot timer */
};

#define MAX_EV   256
#define NAME_OBS "fault-obs"
#define NAME_WRK "fault-worker"

/* What happened to one run of the scenario. */
enum outcome {
    OC_CLEAN,  /* completed, no failure injected */
    OC_ABSORB, /* a failure was injected, the scenario still completed */
    OC_ERR,    /* a public call returned a negative errno */
    OC_CRASH,  /* an actor whose callback hit the failure crashed */
    OC_LOST,   /* a notification was not allocated (and said so) */
    OC_EXIT,   /* a link/monitor broke at once (reason ENOMEM) */
    OC_TICK,   /* periodic ticks were skipped (the timer stays armed) */
    OC_DELAY,  /* waiting for memory, retried (notification, timer) */
    OC_N
};

static const char *const outcome_name[OC_N] = {"clean",
                                               "absorbed",
                                               "error returned",
                                               "actor crashed",
                                               "notification lost (logged)",
                                               "link/monitor broke (ENOMEM)",
                                               "periodic ticks skipped",
                                               "waiting for memory (retried)"};

struct ev {
    uint32_t type;
    tp_pid from;
    uint64_t ref;
    tp_pid pid; /* EXIT / DOWN: who */
    tp_exit_kind kind;
    int code;
    uint32_t len;
    uint32_t val;
};

/* State shared between the test thread and the observer actor. */
struct world {
    tp_runtime *rt;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ev ev[MAX_EV];
    int nev;
    unsigned done; /* DO calls finished */
    int do_rc;
    tp_pid obs, worker, child;
    uint64_t mon_ref;
    tp_timer iv;
    _Atomic int lost_logged; /* "lost" lines logged since the reset */
};

static struct world W;

/* ---------------------------------------------------------------------- */
/* Actors                                                                 */

struct do_msg {
    int (*fn)(tp_ctx *ctx, void *arg);
    void *arg;
};

static void
observer_record(const tp_msg *m)
{
    struct ev e;

    memset(&e, 0, sizeof(e));
    e.type = m->type;
    e.from = m->from;
    e.ref = m->ref;
    e.len = m->len;
    if (m->type == TP_MSG_EXIT || m->type == TP_MSG_DOWN) {
        tp_exit_reason why;
        uint64_t ref = 0;
        int r = m->type == TP_MSG_EXIT ? tp_msg_exit(m, &e.pid, &why)
                                       : tp_msg_down(m, &e.pid, &ref, &why);
        if (r == 0) {
            e.kind = why.kind;
            e.code = why.code;
        } else {
            tpf_violation("observer: undecodable signal %u: %d", m->type, r);
        }
    } else if (m->len >= sizeof(uint32_t)) {
        memcpy(&e.val, m->data, sizeof(e.val));
    }
    pthread_mutex_lock(&W.lock);
    if (W.nev < MAX_EV)
        W.ev[W.nev++] = e;
    pthread_cond_broadcast(&W.cond);
    pthread_mutex_unlock(&W.lock);
}

static void
observer_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (m->type == T_DO) {
        const struct do_msg *d = m->data;
        int rc = d->fn(ctx, d->arg);
        pthread_mutex_lock(&W.lock);
        W.do_rc = rc;
        W.done++;
        pthread_cond_broadcast(&W.cond);
        pthread_mutex_unlock(&W.lock);
        return;
    }
    observer_record(m);
}

static const tp_behaviour observer = {.name = "fault-observer",
                                      .handle = observer_handle};

struct wstate {
    tp_pid obs;
    int released;
};

static int
worker_init(tp_ctx *ctx, void *state, void *arg)
{
    ((struct wstate *)state)->obs = *(tp_pid *)arg;
    return 0;
}

/* Every failure in here crashes the worker only (tp_fail). */
static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct wstate *s = state;
    int rc = 0;

    switch (m->type) {
    case T_ECHO:
        rc = tp_send(ctx, s->obs, T_ECHO_BACK, m->data, m->len);
        break;
    case T_REQ:
        rc = tp_reply(ctx, m, m->data, m->len);
        break;
    case T_BLOB:
        rc = tp_msg_blob(m) == NULL
                 ? -EINVAL
                 : tp_send_blob(ctx, s->obs, T_BLOB_BACK, tp_msg_blob(m));
        break;
    case T_STASH:
        rc = s->released ? tp_send(ctx, s->obs, T_STASHED, m->data, m->len)
                         : tp_stash(ctx);
        break;
    case T_UNSTASH:
        s->released = 1;
        tp_unstash_all(ctx);
        break;
    default:
        break;
    }
    if (rc != 0)
        tp_fail(ctx, "worker: %s", tp_strerror(rc));
}

static const tp_behaviour worker = {.name = "fault-worker",
                                    .state_size = sizeof(struct wstate),
                                    .init = worker_init,
                                    .handle = worker_handle};

/* A child that arms a timer in init, reports when it fires and exits. */
static int
child_init(tp_ctx *ctx, void *state, void *arg)
{
    *(tp_pid *)state = *(tp_pid *)arg;
    return tp_send_after(ctx, 1, tp_self(ctx), T_TICK, NULL, 0, NULL);
}

static void
child_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    int rc;

    if (m->type != T_TICK)
        return;
    rc = tp_send(ctx, *(tp_pid *)state, T_TICKED, NULL, 0);
    if (rc != 0)
        tp_fail(ctx, "child: %s", tp_strerror(rc));
    tp_exit(ctx);
}

static const tp_behaviour child = {.name = "fault-child",
                                   .state_size = sizeof(tp_pid),
                                   .init = child_init,
                                   .handle = child_handle};

/* ---------------------------------------------------------------------- */
/* Scenario machinery                                                     */

struct run {
    bool persistent;
    enum outcome oc;
    const char *where; /* the step that saw the failure */
    int err;
};

/* A step's public call returned rc: fine if 0; otherwise it must be a
 * negative errno and a failure must have been injected. Returns true when
 * the scenario must stop here. */
static bool
failed_call(struct run *r, const char *what, int rc)
{
    if (rc == 0)
        return false;
    if (rc > 0 || tpf_failed() == 0)
        tpf_violation("%s returned %d (%s) with no failure injected", what, rc,
                      tp_strerror(rc));
    if (rc != -ENOMEM && rc != -ETIMEDOUT)
        fprintf(stderr, "note: %s failed with %s\n", what, tp_strerror(rc));
    r->oc = OC_ERR;
    r->where = what;
    r->err = rc;
    return true;
}

static bool
take_ev(uint32_t type, tp_pid from, struct ev *out)
{
    for (int i = 0; i < W.nev; i++) {
        if (W.ev[i].type == type && (from == 0 || W.ev[i].from == from)) {
            if (out != NULL)
                *out = W.ev[i];
            memmove(&W.ev[i], &W.ev[i + 1],
                    (size_t)(W.nev - i - 1) * sizeof(W.ev[0]));
            W.nev--;
            return true;
        }
    }
    return false;
}

static bool
alive(tp_pid pid)
{
    tp_actor_info info;

    return pid != TP_PID_NONE && tp_actor_peek(W.rt, pid, &info) == 0;
}

/* A link (monitor) whose far end could not record it breaks at once with
 * an exit signal (a DOWN) whose reason is crash, code ENOMEM: allowed only
 * after an injected failure. */
static bool
broken_link(struct run *r, const char *what, const struct ev *e)
{
    if (e == NULL || (e->type != TP_MSG_EXIT && e->type != TP_MSG_DOWN) ||
        e->kind != TP_EXIT_CRASH || e->code != ENOMEM)
        return false;
    if (tpf_failed() == 0)
        tpf_violation("%s: ENOMEM exit signal with no failure injected", what);
    r->oc = OC_EXIT;
    r->where = what;
    return true;
}

static bool
take_locked(uint32_t type, tp_pid from, struct ev *out)
{
    bool got;

    pthread_mutex_lock(&W.lock);
    got = take_ev(type, from, out);
    pthread_mutex_unlock(&W.lock);
    return got;
}

/* One of the scenario's actors crashed (its callback hit the failure). */
static bool
someone_died(void)
{
    return (W.worker != 0 && !alive(W.worker)) ||
           (W.obs != 0 && !alive(W.obs)) || (W.child != 0 && !alive(W.child));
}

/* Waits for an event at the observer. If the runtime goes idle without it
 * the event will never come: that is only allowed after an injected
 * failure, and then it must be explained (an actor crashed, or the runtime
 * logged the loss). Periodic timers do not keep the runtime busy, so their
 * ticks are waited for with a plain time limit instead. Returns true when
 * the scenario must stop. */
static bool
want_ex(struct run *r, const char *what, uint32_t type, tp_pid from,
        struct ev *out, bool periodic)
{
    uint64_t limit = periodic ? 2000000000ull : 10000000000ull;
    uint64_t start = tp_now_ns(), deadline = start + limit * tpt_slow();

    for (;;) {
        bool idle;

        if (take_locked(type, from, out))
            return broken_link(r, what, out);
        if (tpf_failed() != 0 && someone_died()) {
            /* A timer (a request's timeout) may keep the runtime busy. */
            r->where = what;
            r->oc = OC_CRASH;
            return true;
        }
        if (tpf_failing() && tp_now_ns() - start > 300000000ull * tpt_slow()) {
            /* While every allocation fails, what needs memory (a delayed
             * death notification, a one-shot timer's message) waits and
             * retries, keeping the runtime busy: it comes once memory is
             * back (checked after the run). */
            r->where = what;
            r->oc = OC_DELAY;
            return true;
        }
        if (periodic) {
            idle = tp_now_ns() > deadline;
            if (!idle)
                tpt_sleep_ms(1);
        } else {
            idle = tp_runtime_wait_idle(W.rt, 10) == 0;
        }
        if (take_locked(type, from, out))
            return broken_link(r, what, out);
        if (idle)
            break;
        if (!periodic && tp_now_ns() > deadline) {
            fprintf(stderr, "N=%llu: %s: runtime never went idle\n",
                    (unsigned long long)tpf_run_n(), what);
            tpf_print_fail_site();
            fail();
        }
    }
    if (tpf_failed() == 0)
        tpf_violation("%s: event %x never came, no failure injected", what,
                      type);
    r->where = what;
    if (someone_died()) {
        r->oc = OC_CRASH;
        return true;
    }
    if (periodic) {
        /* A tick whose message cannot be allocated is skipped; the timer
         * stays armed and tries again at the next tick. */
        r->oc = OC_TICK;
        return true;
    }
    if (atomic_load(&W.lost_logged) == 0)
        tpf_violation("%s: event %x lost silently after an injected allocation "
                      "failure",
                      what, type);
    r->oc = OC_LOST;
    return true;
}

static bool
want(struct run *r, const char *what, uint32_t type, tp_pid from,
     struct ev *out)
{
    return want_ex(r, what, type, from, out, false);
}

/* Runs fn inside the observer; returns the send error or fn's result. */
static int
in_observer(int (*fn)(tp_ctx *, void *), void *arg)
{
    struct do_msg d = {fn, arg};
    unsigned want_done;
    int rc;

    pthread_mutex_lock(&W.lock);
    want_done = W.done + 1;
    pthread_mutex_unlock(&W.lock);
    rc = tp_runtime_send(W.rt, W.obs, T_DO, &d, sizeof(d));
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&W.lock);
    while (W.done < want_done)
        pthread_cond_wait(&W.cond, &W.lock);
    rc = W.do_rc;
    pthread_mutex_unlock(&W.lock);
    return rc;
}

static void
lost_sink(void *user, tp_log_level level, const char *line)
{
    (void)user;
    if (strstr(line, "lost") != NULL && strstr(line, "memory") != NULL)
        atomic_fetch_add(&W.lost_logged, 1);
    if (getenv("TP_FAULT_VERBOSE") != NULL)
        fprintf(stderr, "[%s] %s\n", tp_log_level_name(level), line);
}

/* ---------------------------------------------------------------------- */
/* Steps run inside the observer                                          */

static int
do_link_monitor(tp_ctx *ctx, void *arg)
{
    int rc = tp_link(ctx, W.worker);

    (void)arg;
    return rc != 0 ? rc : tp_monitor(ctx, W.worker, &W.mon_ref);
}

static int
do_spawn_child(tp_ctx *ctx, void *arg)
{
    tp_spawn_opts o;

    (void)arg;
    tp_spawn_opts_init(&o);
    o.link = true;
    o.name = "fault-child";
    return tp_spawn(ctx, &child, &W.obs, &o, &W.child);
}

static int
do_interval(tp_ctx *ctx, void *arg)
{
    (void)arg;
    return tp_send_interval(ctx, 2, tp_self(ctx), T_IV, NULL, 0, &W.iv);
}

static int
do_cancel(tp_ctx *ctx, void *arg)
{
    int rc = tp_cancel_timer(ctx, W.iv);

    (void)arg;
    return rc == 1 ? 0 : -EPROTO; /* a periodic timer is still armed */
}

static int
do_after(tp_ctx *ctx, void *arg)
{
    uint32_t v = 7;

    (void)arg;
    return tp_send_after(ctx, 1, tp_self(ctx), T_AFTER, &v, sizeof(v), NULL);
}

static int
do_request(tp_ctx *ctx, void *arg)
{
    uint32_t v = 42;

    return tp_request(ctx, W.worker, T_REQ, &v, sizeof(v), 10000,
                      (uint64_t *)arg);
}

static int
do_send_named(tp_ctx *ctx, void *arg)
{
    uint32_t v = 9;

    (void)arg;
    return tp_send_named(ctx, "fault-alias", T_ECHO, &v, sizeof(v));
}

static int
do_query(tp_ctx *ctx, void *arg)
{
    return tp_actor_query(ctx, W.worker, (uint64_t *)arg);
}

/* ---------------------------------------------------------------------- */
/* The scenario                                                           */

static bool
step_spawn(struct run *r)
{
    tp_spawn_opts o;
    tp_pid obs = 0;

    tp_spawn_opts_init(&o);
    o.trap_exit = true;
    o.name = NAME_OBS;
    if (failed_call(r, "spawn observer",
                    tp_runtime_spawn(W.rt, &observer, NULL, &o, &obs)))
        return true;
    W.obs = obs;
    tp_spawn_opts_init(&o);
    o.name = NAME_WRK;
    o.max_msgs = 64;
    return failed_call(r, "spawn worker",
                       tp_runtime_spawn(W.rt, &worker, &W.obs, &o, &W.worker));
}

static bool
step_echo(struct run *r)
{
    uint32_t v = 1;
    struct ev e;

    if (failed_call(r, "send echo",
                    tp_runtime_send(W.rt, W.worker, T_ECHO, &v, sizeof(v))) ||
        want(r, "echo", T_ECHO_BACK, W.worker, &e))
        return true;
    assert_int_equal(e.val, 1);
    return false;
}

static bool
step_child(struct run *r)
{
    struct ev e;
    tp_pid c;

    if (failed_call(r, "link+monitor", in_observer(do_link_monitor, NULL)) ||
        failed_call(r, "spawn_link child", in_observer(do_spawn_child, NULL)) ||
        want(r, "child timer", T_TICKED, W.child, NULL))
        return true;
    c = W.child;
    W.child = 0; /* it exits by itself now */
    if (want(r, "child exit", TP_MSG_EXIT, c, &e))
        return true;
    assert_int_equal(e.kind, TP_EXIT_NORMAL);
    return false;
}

static bool
step_timers(struct run *r)
{
    struct ev e;

    if (failed_call(r, "send_interval", in_observer(do_interval, NULL)) ||
        want_ex(r, "interval 1", T_IV, 0, NULL, true) ||
        want_ex(r, "interval 2", T_IV, 0, NULL, true) ||
        failed_call(r, "cancel", in_observer(do_cancel, NULL)) ||
        failed_call(r, "send_after", in_observer(do_after, NULL)) ||
        want(r, "send_after", T_AFTER, 0, &e))
        return true;
    assert_int_equal(e.val, 7);
    pthread_mutex_lock(&W.lock);
    while (take_ev(T_IV, 0, NULL)) /* ticks between the wait and cancel */
        ;
    pthread_mutex_unlock(&W.lock);
    return false;
}

static bool
step_requests(struct run *r)
{
    uint64_t ref = 0;
    uint32_t v = 5, back = 0;
    size_t len = 0;
    struct ev e;

    if (failed_call(r, "request", in_observer(do_request, &ref)) ||
        want(r, "reply", TP_MSG_REPLY, W.worker, &e))
        return true;
    assert_int_equal(e.ref, ref);
    assert_int_equal(e.val, 42);
    if (failed_call(r, "runtime_call",
                    tp_runtime_call(W.rt, W.worker, T_REQ, &v, sizeof(v), &back,
                                    sizeof(back), &len, 10000 * tpt_slow())))
        return true;
    assert_int_equal(back, 5);
    return false;
}

static bool
step_names(struct run *r)
{
    struct ev e;

    if (failed_call(r, "register", tp_register(W.rt, "fault-alias", W.worker)))
        return true;
    assert_true(tp_whereis(W.rt, "fault-alias") == W.worker);
    if (failed_call(r, "send_named", in_observer(do_send_named, NULL)) ||
        want(r, "named echo", T_ECHO_BACK, W.worker, &e))
        return true;
    assert_int_equal(e.val, 9);
    assert_int_equal(tp_unregister(W.rt, "fault-alias", W.worker), 0);
    return false;
}

static bool
step_blob_stash(struct run *r)
{
    uint32_t v = 3;
    tp_blob *b = tp_blob_new("blob-bytes", 10);
    int rc;

    if (b == NULL && failed_call(r, "blob_new", -ENOMEM))
        return true;
    rc = tp_runtime_send_blob(W.rt, W.worker, T_BLOB, b);
    tp_blob_unref(b);
    if (failed_call(r, "send_blob", rc) ||
        want(r, "blob", T_BLOB_BACK, W.worker, NULL))
        return true;
    for (int i = 0; i < 2; i++) {
        if (failed_call(
                r, "send stash",
                tp_runtime_send(W.rt, W.worker, T_STASH, &v, sizeof(v))))
            return true;
    }
    if (failed_call(r, "send unstash",
                    tp_runtime_send(W.rt, W.worker, T_UNSTASH, NULL, 0)) ||
        want(r, "stashed 1", T_STASHED, W.worker, NULL) ||
        want(r, "stashed 2", T_STASHED, W.worker, NULL))
        return true;
    return false;
}

static bool
step_query_kill(struct run *r)
{
    tp_exit_reason why = {TP_EXIT_USER, 7, "fault test"};
    uint64_t ref = 0;
    tp_pid wk = W.worker;
    struct ev e;

    if (failed_call(r, "query", in_observer(do_query, &ref)) ||
        want(r, "info", TP_MSG_ACTOR_INFO, wk, &e))
        return true;
    assert_int_equal(e.ref, ref);
    W.worker = 0; /* its death is expected from here on */
    if (failed_call(r, "exit_pid", tp_runtime_exit_pid(W.rt, wk, &why)) ||
        want(r, "EXIT", TP_MSG_EXIT, wk, &e))
        return true;
    if (e.kind != TP_EXIT_USER) {
        tpf_violation("EXIT from the worker: %s, code %d",
                      tp_exit_kind_name(e.kind), e.code);
        tpf_print_fail_site();
        return true;
    }
    if (want(r, "DOWN", TP_MSG_DOWN, wk, &e))
        return true;
    if (e.kind != TP_EXIT_USER || e.ref != W.mon_ref) {
        tpf_violation("DOWN for the worker: %s, code %d",
                      tp_exit_kind_name(e.kind), e.code);
        tpf_print_fail_site();
        return true;
    }
    assert_true(tp_whereis(W.rt, NAME_WRK) == TP_PID_NONE);
    return false;
}

static bool
scenario_steps(struct run *r)
{
    return step_spawn(r) || step_echo(r) || step_child(r) || step_timers(r) ||
           step_requests(r) || step_names(r) || step_blob_stash(r) ||
           step_query_kill(r);
}

/* ---------------------------------------------------------------------- */
/* After a failure: the same runtime must work again                        */

static int
do_recover(tp_ctx *ctx, void *arg)
{
    tp_pid w = *(tp_pid *)arg;
    uint32_t v = 77;
    uint64_t ref;
    int rc;

    if ((rc = tp_link(ctx, w)) != 0 || (rc = tp_monitor(ctx, w, &ref)) != 0 ||
        (rc = tp_send(ctx, w, T_ECHO, &v, sizeof(v))) != 0 ||
        (rc = tp_send_after(ctx, 1, tp_self(ctx), T_AFTER, &v, sizeof(v),
                            NULL)) != 0)
        return rc;
    W.mon_ref = ref;
    return 0;
}

static void
reset_world(tp_runtime *rt)
{
    pthread_mutex_lock(&W.lock);
    W.rt = rt;
    W.nev = 0;
    W.obs = W.worker = W.child = 0;
    W.mon_ref = 0;
    W.iv = 0;
    pthread_mutex_unlock(&W.lock);
    atomic_store(&W.lost_logged, 0);
}

/* With allocation restored, a fresh observer and worker must do
 * everything the scenario does. */
static void
check_usable(tp_runtime *rt)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    struct run r = {0};
    tp_spawn_opts o;
    uint32_t v = 11, back = 0;
    tp_pid w;
    struct ev e;

    if (W.obs != 0)
        tp_runtime_exit_pid(rt, W.obs, &kill);
    if (W.worker != 0)
        tp_runtime_exit_pid(rt, W.worker, &kill);
    assert_int_equal(tp_runtime_wait_idle(rt, 10000 * tpt_slow()), 0);
    reset_world(rt);
    tp_spawn_opts_init(&o);
    o.trap_exit = true;
    assert_int_equal(tp_runtime_spawn(rt, &observer, NULL, &o, &W.obs), 0);
    assert_int_equal(tp_runtime_spawn(rt, &worker, &W.obs, NULL, &w), 0);
    W.worker = w;
    assert_int_equal(in_observer(do_recover, &w), 0);
    assert_false(want(&r, "recover echo", T_ECHO_BACK, w, &e));
    assert_int_equal(e.val, 77);
    assert_false(want(&r, "recover timer", T_AFTER, 0, NULL));
    assert_int_equal(tp_runtime_call(rt, w, T_REQ, &v, sizeof(v), &back,
                                     sizeof(back), NULL, 10000 * tpt_slow()),
                     0);
    assert_int_equal(back, 11);
    W.worker = 0; /* its death is expected now */
    assert_int_equal(tp_runtime_exit_pid(rt, w, &kill), 0);
    assert_false(want(&r, "recover EXIT", TP_MSG_EXIT, w, NULL));
    assert_false(want(&r, "recover DOWN", TP_MSG_DOWN, w, NULL));
}

/* No watchdog thread (long_handler_ms 0): a reproducible order. */
static tp_runtime_options
scenario_opts(unsigned nsched)
{
    return tpf_runtime_opts(nsched, 2000 * tpt_slow());
}

/* One run: the scenario with the allocator armed at nth (0 = never).
 * Returns the outcome; *hit tells whether a failure was injected. */
static enum outcome
run_once(unsigned nsched, uint64_t nth, bool persistent, bool *hit,
         struct run *out)
{
    tp_runtime_options o = scenario_opts(nsched);
    struct run r = {persistent, OC_CLEAN, NULL, 0};
    tp_runtime *rt = NULL;
    int64_t live0;
    uint64_t mark;
    bool stopped = false;
    int rc;

    reset_world(NULL);
    live0 = tpf_live();
    mark = tpf_track_mark();
    tpf_arm(nth, persistent);
    rc = tp_runtime_create(&rt, &o);
    if (!failed_call(&r, "runtime_create", rc)) {
        reset_world(rt);
        if (!failed_call(&r, "runtime_start", tp_runtime_start(rt)) &&
            !scenario_steps(&r)) {
            stopped = true;
            failed_call(&r, "runtime_stop", tp_runtime_stop(rt));
        }
    }
    *hit = tpf_failed() != 0;
    tpf_disarm();
    if (rt != NULL) {
        if (!stopped && r.where != NULL &&
            strcmp(r.where, "runtime_start") != 0)
            check_usable(rt);
        if (!stopped || r.oc == OC_CLEAN)
            assert_int_equal(tp_runtime_stop(rt), 0);
        tp_runtime_destroy(rt);
    }
    reset_world(NULL);
    if (tpf_live() != live0) {
        tpf_violation("N=%llu%s: %lld blocks leaked (outcome %s at %s)",
                      (unsigned long long)nth, persistent ? "+" : "",
                      (long long)(tpf_live() - live0), outcome_name[r.oc],
                      r.where ? r.where : "-");
        tpf_print_fail_site();
        tpf_track_dump(mark);
    }
    if (r.oc == OC_CLEAN && *hit)
        r.oc = OC_ABSORB;
    *out = r;
    return r.oc;
}

/* ---------------------------------------------------------------------- */
/* Sweeps                                                                 */

#define MAX_SITES 4096

struct sweep {
    unsigned oc[OC_N];
    uint64_t points[MAX_SITES]; /* 2-frame call paths */
    unsigned npoints;
    uint64_t paths[MAX_SITES]; /* 8-frame call paths */
    unsigned npaths;
    unsigned remote; /* failures injected on a runtime thread */
};

static bool
add_key(uint64_t *keys, unsigned *n, uint64_t k)
{
    for (unsigned i = 0; i < *n; i++) {
        if (keys[i] == k)
            return false;
    }
    if (*n < MAX_SITES)
        keys[(*n)++] = k;
    return true;
}

static void
note_site(struct sweep *s, const struct run *r)
{
    void *f[24];
    int n = tpf_fail_site(f, 24);

    if (n == 0)
        return;
    if (add_key(s->points, &s->npoints, tpf_site_key(f, n < 2 ? n : 2)) &&
        getenv("TP_FAULT_VERBOSE") != NULL) {
        printf("  point %u (%s at %s):\n", s->npoints, outcome_name[r->oc],
               r->where ? r->where : "-");
        tpf_print_site("   ", f, n < 6 ? n : 6);
    }
    add_key(s->paths, &s->npaths, tpf_site_key(f, n < 8 ? n : 8));
    s->remote += tpf_fail_remote();
}

struct core_sweep {
    unsigned nsched;
    struct sweep s;
};

/* One run of the sweep: the run with nth 0 must be clean; the others are
 * tallied by outcome and by where their first failure was injected. */
static bool
sweep_run(void *arg, uint64_t nth, bool persistent)
{
    struct core_sweep *cs = arg;
    struct run r;
    bool hit;
    enum outcome oc = run_once(cs->nsched, nth, persistent, &hit, &r);

    if (nth == 0) {
        assert_int_equal(oc, OC_CLEAN);
        return hit;
    }
    if (hit) {
        cs->s.oc[oc]++;
        note_site(&cs->s, &r);
    }
    return hit;
}

static void
sweep(unsigned nsched, bool persistent, unsigned stride)
{
    static struct core_sweep cs;
    const struct tpf_scenario sc = {sweep_run, &cs};
    struct sweep *s = &cs.s;
    struct tpf_sweep_stats st;

    memset(&cs, 0, sizeof(cs));
    cs.nsched = nsched;
    assert_true(tpf_sweep(&sc, persistent, stride, &st));
    printf("fault sweep (%u scheduler%s, %s): %llu allocations in the "
           "scenario, %llu runs, %llu failures injected\n",
           nsched, nsched > 1 ? "s" : "",
           persistent ? "Nth and later fail" : "Nth fails",
           (unsigned long long)st.total, (unsigned long long)st.runs,
           (unsigned long long)st.failures);
    printf("  distinct allocation points failed: %u (call paths: %u); runs "
           "whose first failure hit a runtime thread: %u\n",
           s->npoints, s->npaths, s->remote);
    for (int i = 0; i < OC_N; i++)
        printf("  %-28s %u\n", outcome_name[i], s->oc[i]);
    assert_int_equal(tpf_violations(), 0);
    /* The sweep really went through the scenario. */
    assert_true(st.runs > 20);
    assert_true(s->oc[OC_ERR] > 0);
}

static void
test_faults_core_nth_fails(void **unused)
{
    (void)unused;
    sweep(1, false, 1);
}

static void
test_faults_core_nth_and_later_fail(void **unused)
{
    (void)unused;
    sweep(1, true, 1);
}

/* Two schedulers: the order of allocations varies from run to run, so
 * this samples (every 3rd N) rather than enumerates; the same rules hold. */
static void
test_faults_core_two_schedulers(void **unused)
{
    (void)unused;
    sweep(2, false, 3);
}

static void
test_faults_core_replace_allocator_contract(void **unused)
{
    tp_runtime *rt = NULL;
    tp_runtime_options o = scenario_opts(1);

    (void)unused;
    assert_int_equal(tp_replace_allocator(NULL, realloc, calloc, free),
                     -EINVAL);
    assert_int_equal(tp_runtime_create(&rt, &o), 0);
    assert_int_equal(tp_replace_allocator(malloc, realloc, calloc, free),
                     -EBUSY);
    tp_runtime_destroy(rt);
}

/* With every allocation failing, a kill still ends its target, while any
 * other exit signal reports -ENOMEM; the EXIT and DOWN of the victim are
 * delivered once memory is back. */
static void
test_faults_core_kill_gets_through_out_of_memory(void **unused)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};
    tp_exit_reason stop = {TP_EXIT_SHUTDOWN, 0, "test"};
    tp_runtime_options o = scenario_opts(1);
    tp_runtime *rt = NULL;
    tp_actor_info info;
    tp_spawn_opts o2;
    tp_pid pid;
    uint64_t deadline;
    uint32_t v = 1;
    struct run r = {0};
    struct ev e;

    (void)unused;
    assert_int_equal(tp_runtime_create(&rt, &o), 0);
    assert_int_equal(tp_runtime_start(rt), 0);
    reset_world(rt);
    tp_spawn_opts_init(&o2);
    o2.trap_exit = true;
    assert_int_equal(tp_runtime_spawn(rt, &observer, NULL, &o2, &W.obs), 0);
    assert_int_equal(tp_runtime_spawn(rt, &worker, &W.obs, NULL, &pid), 0);
    W.worker = pid;
    assert_int_equal(in_observer(do_link_monitor, NULL), 0);
    /* A round trip: the worker has handled the LINK and MONITOR signals
     * (signals go before messages) before allocations start failing. */
    assert_int_equal(tp_runtime_call(rt, pid, T_REQ, &v, sizeof(v), NULL, 0,
                                     NULL, 10000 * tpt_slow()),
                     0);
    tpf_arm(1, true);
    assert_int_equal(tp_runtime_exit_pid(rt, pid, &stop), -ENOMEM);
    assert_int_equal(tp_runtime_exit_pid(rt, pid, &kill), 0);
    deadline = tp_now_ns() + 10000000000ull * tpt_slow();
    while (tp_actor_peek(rt, pid, &info) == 0 && tp_now_ns() < deadline)
        tpt_sleep_ms(1);
    assert_int_equal(tp_actor_peek(rt, pid, &info), -ESRCH);
    tpf_disarm();
    /* Its EXIT and DOWN could not be allocated when it died: they were
     * kept and arrive once memory is back (reason kind and code only). */
    W.worker = 0;
    assert_false(want(&r, "EXIT after OOM", TP_MSG_EXIT, pid, &e));
    assert_int_equal(e.kind, TP_EXIT_KILLED);
    assert_false(want(&r, "DOWN after OOM", TP_MSG_DOWN, pid, &e));
    assert_int_equal(e.kind, TP_EXIT_KILLED);
    assert_int_equal(tp_runtime_stop(rt), 0);
    tp_runtime_destroy(rt);
    reset_world(NULL);
}

static int
setup(void **unused)
{
    tp_runtime_options o = scenario_opts(1);

    (void)unused;
    pthread_mutex_init(&W.lock, NULL);
    pthread_cond_init(&W.cond, NULL);
    return tpf_group_setup(lost_sink, &o, &observer, T_IV);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_core_replace_allocator_contract),
        cmocka_unit_test(test_faults_core_nth_fails),
        cmocka_unit_test(test_faults_core_nth_and_later_fail),
        cmocka_unit_test(test_faults_core_two_schedulers),
        cmocka_unit_test(test_faults_core_kill_gets_through_out_of_memory),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, NULL);
}
