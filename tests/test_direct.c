/*
 * tests/test_direct.c - direct-style actors: receive and its timeout,
 * selective receive (order, saved position), sleep, blocking calls (reply,
 * timeout, noproc, gen_server), links and trap_exit through receive,
 * monitors, registered names, faults (tp_fail, NULL dereference, stack
 * overflow) and supervised restarts -- each in both stack modes; a
 * fiber's floating-point rounding mode stays its own.
 */
#include "testutil.h"

#include <errno.h>
#include <fenv.h>
#include <stdatomic.h>
#include <string.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

/* Report types the actors send to the test's probe. */
enum {
    R_VAL = 100, /* payload: int64 value */
    R_TYPE,      /* payload: int64 type of a received message */
    R_DONE,
};

enum { M_PING = 1, M_A, M_B, M_C, M_D, M_E, M_CRASH, M_FAIL, M_DEEP };

static tp_stack_mode mode; /* the stack mode the current test runs in */

struct args {
    tp_pid probe;
    tp_pid other;
    int scenario;
};

static void
report(tp_ctx *ctx, tp_pid probe, uint32_t type, int64_t v)
{
    TPT_CHECK_INT_EQ(tp_send(ctx, probe, type, &v, sizeof(v)), 0);
}

static int64_t
rec_val(const tpt_rec *r)
{
    int64_t v;

    memcpy(&v, r->data, sizeof(v));
    return v;
}

static int64_t
wait_val(tpt_probe *p, uint32_t type)
{
    tpt_rec r;

    assert_int_equal(tpt_probe_wait(p, type, 10000, &r), 0);
    return rec_val(&r);
}

static tp_pid
spawn_d(tp_runtime *rt, const tp_direct *d, struct args *a,
        const tp_spawn_opts *o)
{
    tp_direct_opts dopts = {mode, 0};
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn_direct(rt, d, a, o, &dopts, &pid), 0);
    return pid;
}

/* ---------------------------------------------------------------------- */
/* receive and timeout                                                    */

static void
recv_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;
    int r;

    (void)state;
    TPT_CHECK(tp_in_direct(ctx));
    r = tp_receive(ctx, &m, 0); /* nothing queued yet */
    report(ctx, a->probe, R_VAL, r);
    r = tp_receive(ctx, &m, 30);
    report(ctx, a->probe, R_VAL, r);
    for (int i = 0; i < 3; i++) {
        r = tp_receive(ctx, &m, -1);
        TPT_CHECK_INT_EQ(r, 0);
        report(ctx, a->probe, R_TYPE, m->type);
    }
    /* A timed receive answered by a message leaves no stale timeout. */
    r = tp_receive(ctx, &m, 5000);
    TPT_CHECK_INT_EQ(r, 0);
    report(ctx, a->probe, R_TYPE, m->type);
    r = tp_receive(ctx, &m, 200);
    report(ctx, a->probe, R_VAL, r);
}

static const tp_direct recv_actor = {
    TP_DIRECT_BEHAVIOUR("recv", 0),
    .main = recv_main,
};

static void
receive_timeout(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_pid pid = spawn_d(rt, &recv_actor, &a, NULL);

    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    for (uint32_t t = M_A; t <= M_C; t++)
        assert_int_equal(tp_runtime_send(rt, pid, t, NULL, 0), 0);
    for (uint32_t t = M_A; t <= M_C; t++)
        assert_int_equal(wait_val(p, R_TYPE), t);
    assert_int_equal(tp_runtime_send(rt, pid, M_D, NULL, 0), 0);
    assert_int_equal(wait_val(p, R_TYPE), M_D);
    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_receive_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    receive_timeout();
}

static void
test_receive_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    receive_timeout();
}

/* ---------------------------------------------------------------------- */
/* selective receive                                                      */

static atomic_int match_calls;

static bool
match_type(const tp_msg *m, void *arg)
{
    atomic_fetch_add(&match_calls, 1);
    return m->type == *(uint32_t *)arg;
}

static void
select_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;
    uint32_t want = M_C;

    (void)state;
    report(ctx, a->probe, R_VAL, 0); /* ready */
    TPT_CHECK_INT_EQ(tp_receive_match(ctx, match_type, &want, &m, -1), 0);
    report(ctx, a->probe, R_TYPE, m->type);
    report(ctx, a->probe, R_VAL, atomic_load(&match_calls));
    /* A miss with a timeout leaves everything queued. */
    want = 77;
    TPT_CHECK_INT_EQ(tp_receive_match(ctx, match_type, &want, &m, 20),
                     -ETIMEDOUT);
    for (int i = 0; i < 4; i++) {
        TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 1000), 0);
        report(ctx, a->probe, R_TYPE, m->type);
    }
}

static const tp_direct select_actor = {
    TP_DIRECT_BEHAVIOUR("select", 0),
    .main = select_main,
};

static void
selective(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_pid pid;

    atomic_store(&match_calls, 0);
    pid = spawn_d(rt, &select_actor, &a, NULL);
    assert_int_equal(wait_val(p, R_VAL), 0);
    assert_int_equal(tp_runtime_send(rt, pid, M_A, NULL, 0), 0);
    assert_int_equal(tp_runtime_send(rt, pid, M_B, NULL, 0), 0);
    tpt_sleep_ms(30); /* let it scan A and B and park again */
    assert_int_equal(tp_runtime_send(rt, pid, M_D, NULL, 0), 0);
    assert_int_equal(tp_runtime_send(rt, pid, M_C, NULL, 0), 0);
    assert_int_equal(tp_runtime_send(rt, pid, M_E, NULL, 0), 0);
    assert_int_equal(wait_val(p, R_TYPE), M_C);
    /* Saved position: A, B, D, C each tested once, E not at all. */
    assert_int_equal(wait_val(p, R_VAL), 4);
    assert_int_equal(wait_val(p, R_TYPE), M_A);
    assert_int_equal(wait_val(p, R_TYPE), M_B);
    assert_int_equal(wait_val(p, R_TYPE), M_D);
    assert_int_equal(wait_val(p, R_TYPE), M_E);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_selective_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    selective();
}

static void
test_selective_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    selective();
}

/* ---------------------------------------------------------------------- */
/* sleep                                                                  */

static void
sleep_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;
    uint64_t t0;

    (void)state;
    report(ctx, a->probe, R_VAL, 0);
    t0 = tp_now_ns();
    TPT_CHECK_INT_EQ(tp_sleep(ctx, 100 * tpt_slow()), 0);
    report(ctx, a->probe, R_VAL, (int64_t)((tp_now_ns() - t0) / 1000000u));
    /* The message that came during the sleep waited in the queue. */
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 0), 0);
    report(ctx, a->probe, R_TYPE, m->type);
}

static const tp_direct sleep_actor = {
    TP_DIRECT_BEHAVIOUR("sleeper", 0),
    .main = sleep_main,
};

static void
sleeping(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_pid pid = spawn_d(rt, &sleep_actor, &a, NULL);

    assert_int_equal(wait_val(p, R_VAL), 0);
    assert_int_equal(tp_runtime_send(rt, pid, M_B, NULL, 0), 0);
    assert_true(wait_val(p, R_VAL) >= 100 * (int64_t)tpt_slow());
    assert_int_equal(wait_val(p, R_TYPE), M_B);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_sleep_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    sleeping();
}

static void
test_sleep_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    sleeping();
}

/* ---------------------------------------------------------------------- */
/* blocking calls                                                         */

enum { C_INC = 1, C_SILENT, C_CHATTY };

static void
server_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    int64_t v;

    (void)state;
    if (!tp_msg_is_request(m))
        return;
    switch (m->type) {
    case C_INC:
        memcpy(&v, m->data, sizeof(v));
        v++;
        tp_reply(ctx, m, &v, sizeof(v));
        break;
    case C_CHATTY: /* a plain message first, then the reply */
        tp_send(ctx, m->from, M_E, NULL, 0);
        v = -1;
        tp_reply(ctx, m, &v, sizeof(v));
        break;
    default: /* C_SILENT: never answered */
        break;
    }
}

static const tp_behaviour server = {.name = "server", .handle = server_handle};

static int
gs_call(tp_ctx *ctx, void *state, const tp_msg *msg, tp_gs_from *from)
{
    int64_t v;

    (void)state;
    memcpy(&v, msg->data, sizeof(v));
    v *= 2;
    tp_gs_reply(ctx, from, &v, sizeof(v));
    return TP_GS_REPLY;
}

static const tp_gen_server doubler = {
    TP_GEN_SERVER_BEHAVIOUR("doubler", 0),
    .handle_call = gs_call,
};

static void
call_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;
    int64_t v = 41, got;
    tp_pid gs, ghost;

    (void)state;
    TPT_CHECK_INT_EQ(
        tp_call_direct(ctx, a->other, C_INC, &v, sizeof(v), 5000, &m), 0);
    memcpy(&got, m->data, sizeof(got));
    report(ctx, a->probe, R_VAL, got);
    report(ctx, a->probe, R_VAL,
           tp_call_direct(ctx, a->other, C_SILENT, NULL, 0, 30, &m));
    /* A message arriving during the call stays queued behind it. */
    TPT_CHECK_INT_EQ(tp_call_direct(ctx, a->other, C_CHATTY, NULL, 0, 0, &m),
                     0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_REPLY);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 1000), 0);
    report(ctx, a->probe, R_TYPE, m->type);
    /* noproc: a pid that names no actor, then one that died. */
    ghost = ((tp_pid)7 << 32) | 0x00fffff0u;
    report(ctx, a->probe, R_VAL,
           tp_call_direct(ctx, ghost, C_INC, &v, sizeof(v), 1000, NULL));
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &server, NULL, NULL, &ghost), 0);
    tp_exit_pid(ctx, ghost, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_sleep(ctx, 20);
    report(ctx, a->probe, R_VAL,
           tp_call_direct(ctx, ghost, C_INC, &v, sizeof(v), 1000, NULL));
    /* A gen_server answers tp_call_direct like tp_gs_call. */
    TPT_CHECK_INT_EQ(tp_gen_server_spawn(ctx, &doubler, NULL, NULL, &gs), 0);
    v = 21;
    TPT_CHECK_INT_EQ(tp_call_direct(ctx, gs, 1, &v, sizeof(v), 5000, &m), 0);
    memcpy(&got, m->data, sizeof(got));
    report(ctx, a->probe, R_VAL, got);
    /* A received payload can be forwarded by the next call: the message
     * stays valid until that call returns. */
    v = 99;
    TPT_CHECK_INT_EQ(tp_send(ctx, tp_self(ctx), M_A, &v, sizeof(v)), 0);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 1000), 0);
    TPT_CHECK_INT_EQ(
        tp_call_direct(ctx, a->other, C_INC, m->data, m->len, 5000, &m), 0);
    memcpy(&got, m->data, sizeof(got));
    report(ctx, a->probe, R_VAL, got);
}

static const tp_direct call_actor = {
    TP_DIRECT_BEHAVIOUR("caller", 0),
    .main = call_main,
};

static void
calls(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};

    assert_int_equal(tp_runtime_spawn(rt, &server, NULL, NULL, &a.other), 0);
    spawn_d(rt, &call_actor, &a, NULL);
    assert_int_equal(wait_val(p, R_VAL), 42);
    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    assert_int_equal(wait_val(p, R_TYPE), M_E);
    assert_int_equal(wait_val(p, R_VAL), -ESRCH);
    assert_int_equal(wait_val(p, R_VAL), -ESRCH);
    assert_int_equal(wait_val(p, R_VAL), 42);
    assert_int_equal(wait_val(p, R_VAL), 100);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_call_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    calls();
}

static void
test_call_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    calls();
}

/* A direct actor answers calls made with tp_runtime_call(). */
static void
answer_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;

    (void)state, (void)arg;
    while (tp_receive(ctx, &m, -1) == 0) {
        if (tp_msg_is_request(m)) {
            int64_t v;
            memcpy(&v, m->data, sizeof(v));
            v += 1000;
            tp_reply(ctx, m, &v, sizeof(v));
        }
    }
}

static const tp_direct answer_actor = {
    TP_DIRECT_BEHAVIOUR("answer", 0),
    .main = answer_main,
};

static void
test_answer_runtime_call(void **s)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid pid;
    int64_t v = 5, got = 0;
    size_t n = 0;

    (void)s;
    assert_int_equal(
        tp_runtime_spawn_direct(rt, &answer_actor, NULL, NULL, NULL, &pid), 0);
    for (int i = 0; i < 100; i++) {
        v = i;
        assert_int_equal(tp_runtime_call(rt, pid, 1, &v, sizeof(v), &got,
                                         sizeof(got), &n, 5000),
                         0);
        assert_int_equal(got, i + 1000);
    }
    tpt_finish(rt);
}

/* Calls between direct actors: answered, and orphaned by a crash (the
 * caller learns at once, not at its timeout). */
static void
fail_on_request_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;

    (void)state, (void)arg;
    if (tp_receive(ctx, &m, -1) == 0 && tp_msg_is_request(m))
        tp_fail(ctx, "no answer for you");
}

static const tp_direct fail_on_request = {
    TP_DIRECT_BEHAVIOUR("fail-on-request", 0),
    .main = fail_on_request_main,
};

static void
d2d_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;
    int64_t v = 1, got = 0;
    tp_pid srv, bad;
    uint64_t t0;

    (void)state;
    TPT_CHECK_INT_EQ(
        tp_spawn_direct(ctx, &answer_actor, NULL, NULL, NULL, &srv), 0);
    TPT_CHECK_INT_EQ(tp_call_direct(ctx, srv, 1, &v, sizeof(v), 5000, &m), 0);
    memcpy(&got, m->data, sizeof(got));
    report(ctx, a->probe, R_VAL, got);
    TPT_CHECK_INT_EQ(
        tp_spawn_direct(ctx, &fail_on_request, NULL, NULL, NULL, &bad), 0);
    t0 = tp_now_ns();
    report(ctx, a->probe, R_VAL,
           tp_call_direct(ctx, bad, 1, NULL, 0, 60000, NULL));
    report(ctx, a->probe, R_VAL,
           (int64_t)((tp_now_ns() - t0) / 1000000000u)); /* seconds */
}

static const tp_direct d2d_actor = {
    TP_DIRECT_BEHAVIOUR("d2d", 0),
    .main = d2d_main,
};

static void
test_call_between_direct(void **s)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};

    (void)s;
    mode = TP_STACK_COPIED;
    spawn_d(rt, &d2d_actor, &a, NULL);
    assert_int_equal(wait_val(p, R_VAL), 1001);
    assert_int_equal(wait_val(p, R_VAL), -ESRCH);
    assert_true(wait_val(p, R_VAL) < 30); /* long before the 60 s timeout */
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* links, trap_exit, monitors, names                                      */

static void
crasher_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (m->type == M_FAIL)
        tp_fail(ctx, "told to fail");
}

static const tp_behaviour crasher = {.name = "crasher",
                                     .handle = crasher_handle};

static void
links_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    tp_spawn_opts o;
    tp_exit_reason why;
    const tp_msg *m;
    tp_pid child, who;
    uint64_t ref, mref;

    (void)state;
    tp_trap_exit(ctx, true);
    tp_spawn_opts_init(&o);
    o.link = true;
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &crasher, NULL, &o, &child), 0);
    TPT_CHECK_INT_EQ(tp_send(ctx, child, M_FAIL, NULL, 0), 0);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 5000), 0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_EXIT);
    TPT_CHECK_INT_EQ(tp_msg_exit(m, &who, &why), 0);
    TPT_CHECK_INT_EQ(who, child);
    report(ctx, a->probe, R_VAL, why.kind);
    /* A monitor's DOWN arrives the same way. */
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &crasher, NULL, NULL, &child), 0);
    TPT_CHECK_INT_EQ(tp_monitor(ctx, child, &mref), 0);
    TPT_CHECK_INT_EQ(tp_send(ctx, child, M_FAIL, NULL, 0), 0);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 5000), 0);
    TPT_CHECK_INT_EQ(m->type, TP_MSG_DOWN);
    TPT_CHECK_INT_EQ(tp_msg_down(m, &who, &ref, &why), 0);
    TPT_CHECK_INT_EQ(ref, mref);
    report(ctx, a->probe, R_VAL, why.kind);
    /* Registered name: messages sent by name arrive. */
    TPT_CHECK_INT_EQ(
        tp_register(tp_ctx_runtime(ctx), "direct-links", tp_self(ctx)), 0);
    report(ctx, a->probe, R_VAL, 1);
    TPT_CHECK_INT_EQ(tp_receive(ctx, &m, 5000), 0);
    report(ctx, a->probe, R_TYPE, m->type);
    /* Now without trapping: the linked probe's exit signal kills us while
     * we wait (main does not go on). */
    tp_trap_exit(ctx, false);
    report(ctx, a->probe, R_VAL, 2);
    tp_receive(ctx, &m, -1);
    report(ctx, a->probe, R_VAL, 3); /* never sent */
}

static int terminated;

static void
links_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    (void)ctx, (void)state;
    TPT_CHECK(!tp_in_direct(ctx));
    terminated = why->kind;
}

static const tp_direct links_actor = {
    TP_DIRECT_BEHAVIOUR("links", 0),
    .main = links_main,
    .terminate = links_terminate,
};

static void
do_link(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_link(ctx, *(tp_pid *)arg), 0);
}

static void
do_exit(tp_ctx *ctx, void *arg)
{
    (void)arg;
    tp_exit_with(ctx, &(tp_exit_reason){TP_EXIT_USER, 5, "bye"});
}

static void
links(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, true);
    tpt_probe *q = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_pid pid;
    tpt_rec r;

    terminated = -1;
    pid = spawn_d(rt, &links_actor, &a, NULL);
    assert_int_equal(wait_val(p, R_VAL), TP_EXIT_CRASH);
    assert_int_equal(wait_val(p, R_VAL), TP_EXIT_CRASH);
    assert_int_equal(wait_val(p, R_VAL), 1);
    assert_int_equal(tp_whereis(rt, "direct-links"), pid);
    assert_int_equal(
        tp_runtime_send(rt, tp_whereis(rt, "direct-links"), M_D, NULL, 0), 0);
    assert_int_equal(wait_val(p, R_TYPE), M_D);
    assert_int_equal(wait_val(p, R_VAL), 2);
    /* q links to the direct actor and exits abnormally. */
    tpt_probe_do(p, do_link, &pid);
    tpt_probe_do(q, do_link, &pid);
    tpt_probe_do(q, do_exit, NULL);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &r), 0);
    assert_int_equal(r.pid, pid);
    assert_int_equal(r.kind, TP_EXIT_USER);
    assert_int_equal(terminated, TP_EXIT_USER);
    assert_int_equal(tp_whereis(rt, "direct-links"), TP_PID_NONE);
    assert_int_equal(tpt_probe_count(p, R_VAL), 0);
    tpt_probe_free(q);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_links_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    links();
}

static void
test_links_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    links();
}

/* ---------------------------------------------------------------------- */
/* faults and supervisors                                                 */

int *volatile null_ptr = NULL;

volatile int depth_limit = 1 << 30;

/* Recursion the compiler cannot turn into a loop. */
__attribute__((noinline)) static int
deep(volatile char *prev, int n)
{
    volatile char buf[1024];

    buf[0] = (char)n;
    buf[1023] = prev != NULL ? prev[0] : 0;
    if (n == depth_limit) /* never: the stack ends first */
        return buf[1023];
    return deep(buf, n + 1) + buf[1];
}

__attribute__((no_sanitize("undefined"))) static void
faulty_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;

    (void)state;
    if (a != NULL && a->probe != TP_PID_NONE)
        report(ctx, a->probe, R_VAL, (int64_t)tp_self(ctx));
    while (tp_receive(ctx, &m, -1) == 0) {
        switch (m->type) {
        case M_CRASH:
            *null_ptr = 1;
            break;
        case M_FAIL:
            tp_fail(ctx, "direct failed %d", 7);
            break;
        case M_DEEP:
            report(ctx, a->probe, R_VAL, deep(NULL, 0));
            break;
        case M_PING:
            if (a != NULL && a->probe != TP_PID_NONE)
                report(ctx, a->probe, R_TYPE, M_PING);
            break;
        default:
            break;
        }
    }
}

static const tp_direct faulty = {
    TP_DIRECT_BEHAVIOUR("faulty", 0),
    .main = faulty_main,
    .stack_size = 64 * 1024,
};

static const tp_direct faulty_copied = {
    TP_DIRECT_BEHAVIOUR("faulty-copied", 0),
    .main = faulty_main,
    .stack = TP_STACK_COPIED,
};

static void
do_monitor(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_monitor(ctx, *(tp_pid *)arg, NULL), 0);
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NO_SIGNALS 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define NO_SIGNALS 1
#endif

static void
crash_with(uint32_t type, const char *text)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_pid bad, good;
    tpt_rec r;

#if defined(NO_SIGNALS)
    if (type != M_FAIL) {
        /* As test_fault: TSan cannot follow a jump out of its handler. */
        tpt_probe_free(p);
        tpt_finish(rt);
        skip();
    }
#endif
    bad = spawn_d(rt, &faulty, &a, NULL);
    good = spawn_d(rt, &faulty, &a, NULL);
    wait_val(p, R_VAL);
    wait_val(p, R_VAL);
    tpt_probe_do(p, do_monitor, &bad);
    assert_int_equal(tp_runtime_send(rt, bad, type, NULL, 0), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &r), 0);
    assert_int_equal(r.pid, bad);
    assert_int_equal(r.kind, TP_EXIT_CRASH);
    if (strstr(r.text, text) == NULL)
        fail_msg("reason '%s' lacks '%s'", r.text, text);
    /* Only that actor died: the other goes on. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tp_runtime_send(rt, good, M_PING, NULL, 0), 0);
        assert_int_equal(wait_val(p, R_TYPE), M_PING);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_fail_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    crash_with(M_FAIL, "direct failed 7");
}

static void
test_fail_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    crash_with(M_FAIL, "direct failed 7");
}

static void
test_null_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    crash_with(M_CRASH, "SIGSEGV");
}

static void
test_null_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    crash_with(M_CRASH, "SIGSEGV");
}

static void
test_overflow_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_FIXED;
    crash_with(M_DEEP, "stack_overflow");
}

static void
test_overflow_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    crash_with(M_DEEP, "stack_overflow");
}

/* A supervised direct actor that crashes (NULL dereference, then a stack
 * overflow) is restarted under its name. */
static void
supervised(void)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    const tp_direct *d = mode == TP_STACK_COPIED ? &faulty_copied : &faulty;
    tp_child_spec c;
    tp_sup_spec spec;
    tp_pid sup, first, now;
#if defined(NO_SIGNALS)
    uint32_t crash[] = {M_FAIL, M_FAIL};
#else
    uint32_t crash[] = {M_CRASH, M_DEEP, M_FAIL};
#endif

    tp_child_spec_init(&c, "worker", tp_direct_behaviour(d), &a);
    c.opts.name = "dworker";
    tp_sup_spec_init(&spec, TP_ONE_FOR_ONE);
    spec.intensity = 10;
    spec.children = &c;
    spec.nchildren = 1;
    assert_int_equal(tp_runtime_supervisor_start(rt, "dsup", &spec, &sup), 0);
    first = (tp_pid)wait_val(p, R_VAL);
    assert_int_equal(tp_whereis(rt, "dworker"), first);
    for (size_t i = 0; i < sizeof(crash) / sizeof(crash[0]); i++) {
        assert_int_equal(tp_runtime_send(rt, first, crash[i], NULL, 0), 0);
        now = (tp_pid)wait_val(p, R_VAL); /* the new incarnation */
        assert_int_not_equal(now, first);
        for (int k = 0; k < 200 && tp_whereis(rt, "dworker") != now; k++)
            tpt_sleep_ms(5);
        assert_int_equal(tp_whereis(rt, "dworker"), now);
        assert_int_equal(tp_runtime_send(rt, now, M_PING, NULL, 0), 0);
        assert_int_equal(wait_val(p, R_TYPE), M_PING);
        first = now;
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_supervised_fixed(void **s)
{
    (void)s;
    mode = TP_STACK_DEFAULT; /* the behaviour's: fixed, 64 KiB */
    supervised();
}

static void
test_supervised_copied(void **s)
{
    (void)s;
    mode = TP_STACK_COPIED;
    supervised();
}

/* ---------------------------------------------------------------------- */
/* misuse                                                                 */

static void
plain_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    const tp_msg *got;
    const tp_direct bad = {TP_DIRECT_BEHAVIOUR("bad", 0)};

    (void)state, (void)m;
    /* The blocking calls are for a direct actor's main only. */
    TPT_CHECK_INT_EQ(tp_receive(ctx, &got, 0), -EINVAL);
    TPT_CHECK_INT_EQ(tp_sleep(ctx, 1), -EINVAL);
    TPT_CHECK_INT_EQ(tp_call_direct(ctx, tp_self(ctx), 1, NULL, 0, 1, &got),
                     -EINVAL);
    TPT_CHECK(!tp_in_direct(ctx));
    TPT_CHECK_INT_EQ(tp_spawn_direct(ctx, &bad, NULL, NULL, NULL, NULL),
                     -EINVAL);
    TPT_CHECK_INT_EQ(tp_spawn_direct(ctx, NULL, NULL, NULL, NULL, NULL),
                     -EINVAL);
    tp_exit(ctx);
}

static const tp_behaviour plain = {.name = "plain", .handle = plain_handle};

static void
test_misuse(void **s)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_direct_opts small = {TP_STACK_FIXED, 1024};
    tp_pid pid;

    (void)s;
    assert_int_equal(tp_runtime_spawn(rt, &plain, NULL, NULL, &pid), 0);
    assert_int_equal(tp_runtime_send(rt, pid, 1, NULL, 0), 0);
    assert_int_equal(
        tp_runtime_spawn_direct(rt, &answer_actor, NULL, NULL, &small, &pid),
        -EINVAL);
    tpt_idle(rt);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* ends of main, mailbox bounds, copied-stack poisoning                   */

static void
ends_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;

    (void)state;
    tp_receive(ctx, &m, -1); /* go */
    if (a->scenario == 0)
        return; /* returning from main: normal exit */
    tp_exit_with(ctx, &(tp_exit_reason){TP_EXIT_USER, 3, "done"});
    tp_receive(ctx, &m, -1); /* does not return: the actor ends */
    report(ctx, a->probe, R_VAL, 99);
}

static const tp_direct ends_actor = {
    TP_DIRECT_BEHAVIOUR("ends", 0),
    .main = ends_main,
};

static void
test_main_ends(void **s)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_direct_opts dopts = {TP_STACK_FIXED, 0};
    tpt_rec r;

    (void)s;
    for (int sc = 0; sc < 2; sc++) {
        for (int k = 0; k < 2; k++) {
            struct args a = {tpt_probe_pid(p), 0, sc};
            tp_pid pid;

            dopts.stack = k ? TP_STACK_COPIED : TP_STACK_FIXED;
            assert_int_equal(tp_runtime_spawn_direct(rt, &ends_actor, &a, NULL,
                                                     &dopts, &pid),
                             0);
            tpt_probe_do(p, do_monitor, &pid);
            assert_int_equal(tp_runtime_send(rt, pid, M_PING, NULL, 0), 0);
            assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 10000, &r), 0);
            assert_int_equal(r.pid, pid);
            assert_int_equal(r.kind, sc == 0 ? TP_EXIT_NORMAL : TP_EXIT_USER);
        }
    }
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, R_VAL), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* The private queue counts against the mailbox bound. */
static void
test_bound(void **s)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    tp_spawn_opts o;
    tp_pid pid;
    int ok = 0, rejected = 0;
    tp_actor_info info;

    (void)s;
    tp_spawn_opts_init(&o);
    o.max_msgs = 4;
    mode = TP_STACK_COPIED;
    pid = spawn_d(rt, &sleep_actor, &a, &o);
    assert_int_equal(wait_val(p, R_VAL), 0); /* now sleeping */
    for (int i = 0; i < 10; i++) {
        int r = tp_runtime_send(rt, pid, M_B, NULL, 0);
        if (r == 0)
            ok++;
        else if (r == -EAGAIN)
            rejected++;
        tpt_sleep_ms(1);
    }
    assert_int_equal(ok, 4);
    assert_int_equal(rejected, 6);
    assert_int_equal(tp_actor_peek(rt, pid, &info), 0);
    assert_int_equal(info.mailbox, 4);
    assert_int_equal(wait_val(p, R_VAL) >= 0, 1);
    assert_int_equal(wait_val(p, R_TYPE), M_B);
    tpt_probe_free(p);
    tpt_finish(rt);
}

#if defined(TP_ASSERTS)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WITH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WITH_ASAN 1
#endif
#if defined(WITH_ASAN)
#include <sanitizer/asan_interface.h>
#endif

/* Debug builds: a parked copied-stack actor's stack reads as 0xdb from
 * outside (a pointer into it was shared: a bug this makes visible). */
static volatile uint32_t *volatile leaked;
static atomic_uint seen;
static atomic_bool on_fake_stack;

static void
leaker_main(tp_ctx *ctx, void *state, void *arg)
{
    volatile uint32_t x = 42;
    const tp_msg *m;

    (void)state, (void)arg;
    leaked = &x;
#if defined(WITH_ASAN)
    /* detect_stack_use_after_return puts locals on ASan's heap. */
    if (__asan_get_current_fake_stack() != NULL &&
        __asan_addr_is_in_fake_stack(__asan_get_current_fake_stack(),
                                     (void *)&x, NULL, NULL) != NULL)
        atomic_store(&on_fake_stack, true);
#endif
    tp_receive(ctx, &m, -1);
    atomic_store(&seen, x); /* its own view: intact */
}

static const tp_direct leaker = {
    TP_DIRECT_BEHAVIOUR("leaker", 0),
    .main = leaker_main,
    .stack = TP_STACK_COPIED,
};

static void
peeker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)ctx, (void)state, (void)m;
    atomic_store(&seen, *leaked);
}

static const tp_behaviour peeker = {.name = "peeker", .handle = peeker_handle};

static void
test_copied_poison(void **s)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_pid l, p;

    (void)s;
    assert_int_equal(tp_runtime_spawn_direct(rt, &leaker, NULL, NULL, NULL, &l),
                     0);
    assert_int_equal(tp_runtime_spawn(rt, &peeker, NULL, NULL, &p), 0);
    tpt_idle(rt);
    assert_int_equal(tp_runtime_send(rt, p, 1, NULL, 0), 0);
    tpt_idle(rt);
    if (atomic_load(&on_fake_stack)) {
        tpt_finish(rt);
        skip(); /* the local is not on the stack at all */
    }
    assert_int_equal(atomic_load(&seen), 0xdbdbdbdbu);
    assert_int_equal(tp_runtime_send(rt, l, 1, NULL, 0), 0);
    tpt_idle(rt);
    assert_int_equal(atomic_load(&seen), 42);
    tpt_finish(rt);
}
#else
static void
test_copied_poison(void **s)
{
    (void)s;
    skip(); /* only TP_ASSERTS builds poison vacated shared stacks */
}
#endif

/* ---------------------------------------------------------------------- */
/* scheduling: a parked actor holds no thread, a long run is reported     */

static void
spin_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    uint64_t t0;

    (void)state, (void)arg;
    while (tp_receive(ctx, &m, -1) == 0) {
        t0 = tp_now_ns();
        while (tp_now_ns() - t0 < 400000000u) {
        }
    }
}

static const tp_direct spin_actor = {
    TP_DIRECT_BEHAVIOUR("spin", 0),
    .main = spin_main,
};

static void
test_scheduling(void **s)
{
    tp_runtime_options o;
    tp_runtime *rt;
    tp_runtime_stats st;
    tpt_probe *p;
    struct args a;
    tp_pid pid;

    (void)s;
    tp_runtime_options_init(&o);
    o.schedulers = 1;
    o.pin = false;
    o.long_handler_ms = 100;
    rt = tpt_runtime_opts(&o);
    p = tpt_probe_new(rt, false);
    a = (struct args){tpt_probe_pid(p), 0, 0};
    /* 50 actors parked in receive on the only scheduler: others still
     * run (a callback probe, a direct actor). */
    for (int i = 0; i < 50; i++)
        spawn_d(rt, &answer_actor, NULL, NULL);
    mode = TP_STACK_COPIED;
    spawn_d(rt, &recv_actor, &a, NULL);
    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    assert_int_equal(wait_val(p, R_VAL), -ETIMEDOUT);
    /* A direct actor running long is reported like a long callback. */
    assert_int_equal(
        tp_runtime_spawn_direct(rt, &spin_actor, NULL, NULL, NULL, &pid), 0);
    assert_int_equal(tp_runtime_send(rt, pid, 1, NULL, 0), 0);
    tpt_idle(rt);
    tp_runtime_get_stats(rt, &st);
    assert_true(st.long_handlers >= 1);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* floating-point control words                                           */

/* The rounding mode now: fegetround(), and on x86-64 also MXCSR's (SSE)
 * rounding bits, which the context switch keeps apart from the x87 word. */
static int64_t
rounding(void)
{
    int64_t v = fegetround();

#if defined(__x86_64__)
    v |= (int64_t)(_mm_getcsr() & 0x6000u) << 16;
#endif
    return v;
}

static void
rounder_main(tp_ctx *ctx, void *state, void *arg)
{
    struct args *a = arg;
    const tp_msg *m;

    (void)state;
    TPT_CHECK_INT_EQ(fesetround(FE_UPWARD), 0);
    report(ctx, a->probe, R_VAL, rounding());
    tp_receive(ctx, &m, -1); /* parked: the scheduler runs others */
    report(ctx, a->probe, R_VAL, rounding());
}

static const tp_direct rounder_actor = {
    TP_DIRECT_BEHAVIOUR("rounder", 0),
    .main = rounder_main,
};

static void
rounding_probe_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct args *a = *(struct args **)state;

    (void)msg;
    report(ctx, a->probe, R_VAL, rounding());
}

static int
rounding_probe_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(void **)state = arg;
    return 0;
}

static const tp_behaviour rounding_probe = {
    .name = "rounding_probe",
    .state_size = sizeof(void *),
    .init = rounding_probe_init,
    .handle = rounding_probe_handle,
};

/* A fiber that changes the rounding mode keeps it across its parks, and
 * the callback actors run between on the same thread do not see it. */
static void
test_rounding_mode(void **s)
{
    const tp_stack_mode modes[] = {TP_STACK_FIXED, TP_STACK_COPIED};
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct args a = {tpt_probe_pid(p), 0, 0};
    int64_t nearest, up;
    tp_pid cb, d;

    (void)s;
    /* The reference values, from this thread. */
    nearest = rounding();
    assert_int_equal(fesetround(FE_UPWARD), 0);
    up = rounding();
    assert_int_equal(fesetround(FE_TONEAREST), 0);
    assert_int_equal(nearest, rounding());
    assert_true(up != nearest);
    assert_int_equal(tp_runtime_spawn(rt, &rounding_probe, &a, NULL, &cb), 0);
    for (int i = 0; i < 2; i++) {
        mode = modes[i];
        d = spawn_d(rt, &rounder_actor, &a, NULL);
        assert_int_equal(wait_val(p, R_VAL), up);
        assert_int_equal(tp_runtime_send(rt, cb, M_PING, NULL, 0), 0);
        assert_int_equal(wait_val(p, R_VAL), nearest);
        assert_int_equal(tp_runtime_send(rt, d, M_PING, NULL, 0), 0);
        assert_int_equal(wait_val(p, R_VAL), up);
        assert_int_equal(tp_runtime_send(rt, cb, M_PING, NULL, 0), 0);
        assert_int_equal(wait_val(p, R_VAL), nearest);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receive_fixed),
        cmocka_unit_test(test_receive_copied),
        cmocka_unit_test(test_selective_fixed),
        cmocka_unit_test(test_selective_copied),
        cmocka_unit_test(test_sleep_fixed),
        cmocka_unit_test(test_sleep_copied),
        cmocka_unit_test(test_call_fixed),
        cmocka_unit_test(test_call_copied),
        cmocka_unit_test(test_answer_runtime_call),
        cmocka_unit_test(test_call_between_direct),
        cmocka_unit_test(test_links_fixed),
        cmocka_unit_test(test_links_copied),
        cmocka_unit_test(test_fail_fixed),
        cmocka_unit_test(test_fail_copied),
        cmocka_unit_test(test_null_fixed),
        cmocka_unit_test(test_null_copied),
        cmocka_unit_test(test_overflow_fixed),
        cmocka_unit_test(test_overflow_copied),
        cmocka_unit_test(test_supervised_fixed),
        cmocka_unit_test(test_supervised_copied),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_main_ends),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_copied_poison),
        cmocka_unit_test(test_scheduling),
        cmocka_unit_test(test_rounding_mode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
