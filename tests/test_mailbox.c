/*
 * tests/test_mailbox.c - bounded mailboxes: every overflow policy, byte
 * bounds, drop counters, and system signals bypassing the bound.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

enum { M_DATA = 1, M_GATE };

/* A receiver that blocks in its first message until the test opens the
 * gate, so its mailbox fills up deterministically. It forwards the payload
 * of every other message to a probe. */
static atomic_int gate;

struct recv {
    tp_pid probe;
};

static int
recv_init(tp_ctx *ctx, void *state, void *arg)
{
    ((struct recv *)state)->probe = *(tp_pid *)arg;
    return 0;
}

static void
recv_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == M_GATE) {
        while (!atomic_load(&gate))
            tpt_sleep_ms(1);
        return;
    }
    tp_send(ctx, ((struct recv *)state)->probe, M_DATA, m->data, m->len);
}

static const tp_behaviour receiver = {.name = "receiver",
                                      .state_size = sizeof(struct recv),
                                      .init = recv_init,
                                      .handle = recv_handle};

struct fixture {
    tp_runtime *rt;
    tpt_probe *p;
    tp_pid r;
};

/* The receiver took the gate message off its mailbox (it is in it). */
static bool
gate_taken(struct fixture *f)
{
    tp_actor_info info;

    return tp_actor_peek(f->rt, f->r, &info) == 0 && info.mailbox == 0;
}

static void
setup_bounded(struct fixture *f, tp_overflow policy, uint32_t max_msgs,
              uint32_t max_bytes)
{
    tp_spawn_opts o;
    tp_pid probe;

    f->rt = tpt_runtime(2);
    f->p = tpt_probe_new(f->rt, false);
    probe = tpt_probe_pid(f->p);
    tp_spawn_opts_init(&o);
    o.max_msgs = max_msgs;
    o.max_bytes = max_bytes;
    o.overflow = policy;
    assert_int_equal(tp_runtime_spawn(f->rt, &receiver, &probe, &o, &f->r), 0);
    atomic_store(&gate, 0);
    /* Occupy the receiver: the gate message is taken off the mailbox. */
    assert_int_equal(tp_runtime_send(f->rt, f->r, M_GATE, NULL, 0), 0);
    for (int i = 0; i < 10000 * (int)tpt_slow() && !gate_taken(f); i++)
        tpt_sleep_ms(1);
    assert_true(gate_taken(f));
}

static void
teardown(struct fixture *f)
{
    atomic_store(&gate, 1);
    tpt_idle(f->rt);
    tpt_probe_free(f->p);
    tpt_finish(f->rt);
}

static int
send_n(struct fixture *f, int from, int to, int *rejected)
{
    int ok = 0;

    for (int i = from; i < to; i++) {
        int r = tp_runtime_send(f->rt, f->r, M_DATA, &i, sizeof(i));
        if (r == 0)
            ok++;
        else if (r == -EAGAIN)
            (*rejected)++;
        else
            fail_msg("unexpected send result %d", r);
    }
    return ok;
}

static void
expect_values(struct fixture *f, const int *vals, int n)
{
    tpt_rec r;

    for (int i = 0; i < n; i++) {
        assert_int_equal(tpt_probe_wait(f->p, M_DATA, 5000, &r), 0);
        assert_int_equal(*(int *)r.data, vals[i]);
    }
    tpt_idle(f->rt);
    assert_int_equal(tpt_probe_count(f->p, M_DATA), 0);
}

static void
test_mailbox_reject_returns_eagain(void **state)
{
    struct fixture f;
    int rejected = 0, want[10];
    tp_actor_info info;
    tp_runtime_stats st;

    setup_bounded(&f, TP_OVERFLOW_REJECT, 10, 0);
    assert_int_equal(send_n(&f, 0, 25, &rejected), 10);
    assert_int_equal(rejected, 15);
    assert_int_equal(tp_actor_peek(f.rt, f.r, &info), 0);
    assert_int_equal(info.mailbox, 10);
    assert_int_equal(info.drops, 15);
    tp_runtime_get_stats(f.rt, &st);
    assert_int_equal(st.mailbox_drops, 15);
    atomic_store(&gate, 1);
    for (int i = 0; i < 10; i++)
        want[i] = i;
    expect_values(&f, want, 10);
    teardown(&f);
}

static void
test_mailbox_drop_newest_keeps_first(void **state)
{
    struct fixture f;
    int rejected = 0, want[5] = {0, 1, 2, 3, 4};
    tp_actor_info info;

    setup_bounded(&f, TP_OVERFLOW_DROP_NEWEST, 5, 0);
    assert_int_equal(send_n(&f, 0, 20, &rejected), 20); /* all "sent" */
    assert_int_equal(rejected, 0);
    assert_int_equal(tp_actor_peek(f.rt, f.r, &info), 0);
    assert_int_equal(info.drops, 15);
    atomic_store(&gate, 1);
    expect_values(&f, want, 5);
    teardown(&f);
}

static void
test_mailbox_drop_oldest_keeps_last(void **state)
{
    struct fixture f;
    int rejected = 0, want[5] = {5, 6, 7, 8, 9};
    tp_actor_info info;

    setup_bounded(&f, TP_OVERFLOW_DROP_OLDEST, 5, 0);
    /* 10 sent into a bound of 5 (under the 2x hard cap): the consumer
     * drops the 5 oldest when it runs. */
    assert_int_equal(send_n(&f, 0, 10, &rejected), 10);
    atomic_store(&gate, 1);
    expect_values(&f, want, 5);
    assert_int_equal(tp_actor_peek(f.rt, f.r, &info), 0);
    assert_int_equal(info.drops, 5);
    teardown(&f);
}

static void
test_mailbox_drop_oldest_hard_cap_bounds_memory(void **state)
{
    struct fixture f;
    int rejected = 0;
    tp_actor_info info;

    setup_bounded(&f, TP_OVERFLOW_DROP_OLDEST, 5, 0);
    send_n(&f, 0, 1000, &rejected);
    assert_int_equal(tp_actor_peek(f.rt, f.r, &info), 0);
    assert_true(info.mailbox <= 10);
    teardown(&f);
}

static void
link_monitor_receiver(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_monitor(ctx, *(tp_pid *)arg, NULL), 0);
}

static void
test_mailbox_kill_policy_kills_receiver(void **state)
{
    struct fixture f;
    int rejected = 0;
    tpt_rec r;

    setup_bounded(&f, TP_OVERFLOW_KILL, 3, 0);
    tpt_probe_do(f.p, link_monitor_receiver, &f.r);
    send_n(&f, 0, 4, &rejected);
    atomic_store(&gate, 1);
    assert_int_equal(tpt_probe_wait(f.p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, f.r);
    assert_int_equal(r.kind, TP_EXIT_KILLED);
    assert_string_equal(r.text, "mailbox overflow");
    teardown(&f);
}

static void
test_mailbox_byte_bound(void **state)
{
    struct fixture f;
    char big[400] = {0};
    int r1, r2, r3;

    setup_bounded(&f, TP_OVERFLOW_REJECT, 0, 1000);
    r1 = tp_runtime_send(f.rt, f.r, M_DATA, big, sizeof(big));
    r2 = tp_runtime_send(f.rt, f.r, M_DATA, big, sizeof(big));
    r3 = tp_runtime_send(f.rt, f.r, M_DATA, big, sizeof(big));
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    assert_int_equal(r3, -EAGAIN);
    atomic_store(&gate, 1);
    tpt_idle(f.rt);
    /* Bytes were given back: there is room again. */
    assert_int_equal(tp_runtime_send(f.rt, f.r, M_DATA, big, sizeof(big)), 0);
    teardown(&f);
}

/* System signals are never subject to the bound: a full REJECT mailbox
 * still gets an exit signal, and a DOWN reaches a full monitoring actor. */
static void
test_mailbox_system_signals_bypass_bound(void **state)
{
    struct fixture f;
    int rejected = 0;
    tp_exit_reason shutdown = {TP_EXIT_SHUTDOWN, 0, NULL};
    tpt_rec r;

    setup_bounded(&f, TP_OVERFLOW_REJECT, 2, 0);
    tpt_probe_do(f.p, link_monitor_receiver, &f.r);
    send_n(&f, 0, 10, &rejected);
    assert_int_equal(rejected, 8);
    assert_int_equal(tp_runtime_exit_pid(f.rt, f.r, &shutdown), 0);
    atomic_store(&gate, 1);
    assert_int_equal(tpt_probe_wait(f.p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.kind, TP_EXIT_SHUTDOWN);
    teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mailbox_reject_returns_eagain),
        cmocka_unit_test(test_mailbox_drop_newest_keeps_first),
        cmocka_unit_test(test_mailbox_drop_oldest_keeps_last),
        cmocka_unit_test(test_mailbox_drop_oldest_hard_cap_bounds_memory),
        cmocka_unit_test(test_mailbox_kill_policy_kills_receiver),
        cmocka_unit_test(test_mailbox_byte_bound),
        cmocka_unit_test(test_mailbox_system_signals_bypass_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
