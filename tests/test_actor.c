/*
 * tests/test_actor.c - spawning, sending, state, become, stash, exit, pids,
 * blobs and per-turn fairness.
 */
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

enum { M_PING = 1, M_FWD, M_SET, M_GET, M_STOP, M_DEFER, M_REPLAY, M_BUSY };

/* ---- an actor that forwards to a probe what it is told ---- */
struct relay {
    tp_pid probe;
    int value;
    int inits;
};

static int
relay_init(tp_ctx *ctx, void *state, void *arg)
{
    struct relay *r = state;

    TPT_CHECK_INT_EQ(r->value, 0); /* state starts zeroed */
    r->probe = *(tp_pid *)arg;
    r->inits++;
    return 0;
}

static void relay_after_become(tp_ctx *ctx, void *state, const tp_msg *m);

static void
relay_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct relay *r = state;

    switch (m->type) {
    case M_PING:
        tp_send(ctx, r->probe, M_PING, m->data, m->len);
        break;
    case M_SET:
        r->value = *(const int *)m->data;
        break;
    case M_GET:
        tp_send(ctx, r->probe, M_GET, &r->value, sizeof(r->value));
        break;
    case M_FWD:
        tp_become(ctx, relay_after_become);
        break;
    case M_STOP:
        tp_exit(ctx);
        break;
    case M_DEFER:
        TPT_CHECK_INT_EQ(tp_stash(ctx), 0);
        break;
    case M_REPLAY:
        tp_send(ctx, r->probe, M_REPLAY, NULL, 0);
        tp_unstash_all(ctx);
        break;
    default:
        break;
    }
}

/* After become: doubles every ping payload, M_FWD switches back. */
static void
relay_after_become(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct relay *r = state;

    if (m->type == M_FWD) {
        tp_become(ctx, NULL);
        return;
    }
    if (m->type == M_PING) {
        int v = *(const int *)m->data * 2;
        tp_send(ctx, r->probe, M_PING, &v, sizeof(v));
    }
}

static const tp_behaviour relay = {
    .name = "relay",
    .state_size = sizeof(struct relay),
    .init = relay_init,
    .handle = relay_handle,
};

static tp_pid
spawn_relay(tp_runtime *rt, tpt_probe *p)
{
    tp_pid probe = tpt_probe_pid(p), pid = 0;

    assert_int_equal(tp_runtime_spawn(rt, &relay, &probe, NULL, &pid), 0);
    assert_true(pid != TP_PID_NONE);
    return pid;
}

static void
test_actor_send_delivers_copy_in_order(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_relay(rt, p);
    tpt_rec r;

    for (int i = 0; i < 100; i++) {
        int v = i;
        assert_int_equal(tp_runtime_send(rt, a, M_PING, &v, sizeof(v)), 0);
        v = -1; /* the runtime copied it */
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
        assert_int_equal(r.len, sizeof(int));
        assert_int_equal(*(int *)r.data, i);
        assert_int_equal(r.from, a);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_actor_state_persists_between_messages(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_relay(rt, p);
    int v = 42;
    tpt_rec r;

    assert_int_equal(tp_runtime_send(rt, a, M_SET, &v, sizeof(v)), 0);
    assert_int_equal(tp_runtime_send(rt, a, M_GET, NULL, 0), 0);
    assert_int_equal(tpt_probe_wait(p, M_GET, 5000, &r), 0);
    assert_int_equal(*(int *)r.data, 42);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_actor_become_switches_and_restores_handler(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_relay(rt, p);
    int v = 5;
    tpt_rec r;

    tp_runtime_send(rt, a, M_PING, &v, sizeof(v));
    tp_runtime_send(rt, a, M_FWD, NULL, 0);
    tp_runtime_send(rt, a, M_PING, &v, sizeof(v));
    tp_runtime_send(rt, a, M_FWD, NULL, 0);
    tp_runtime_send(rt, a, M_PING, &v, sizeof(v));
    for (int want = 0; want < 3; want++) {
        assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
        assert_int_equal(*(int *)r.data, want == 1 ? 10 : 5);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---- stash ordering, checked precisely ---- */
struct stasher {
    tp_pid probe;
    bool open;
};

static int
stasher_init(tp_ctx *ctx, void *state, void *arg)
{
    ((struct stasher *)state)->probe = *(tp_pid *)arg;
    return 0;
}

/* Closed: stash everything but M_REPLAY; M_REPLAY opens and unstashes;
 * open: forward pings. */
static void
stasher_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct stasher *s = state;

    if (m->type == M_REPLAY) {
        s->open = true;
        TPT_CHECK_INT_EQ(tp_stash_size(ctx), 3);
        TPT_CHECK_INT_EQ(tp_unstash_all(ctx), 3);
        TPT_CHECK_INT_EQ(tp_stash_size(ctx), 0);
        return;
    }
    if (!s->open) {
        TPT_CHECK_INT_EQ(tp_stash(ctx), 0);
        return;
    }
    tp_send(ctx, s->probe, M_PING, m->data, m->len);
}

static const tp_behaviour stasher = {
    .name = "stasher",
    .state_size = sizeof(struct stasher),
    .init = stasher_init,
    .handle = stasher_handle,
};

static void
test_actor_unstash_all_runs_stashed_first(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid probe = tpt_probe_pid(p), a;
    tpt_rec r;

    assert_int_equal(tp_runtime_spawn(rt, &stasher, &probe, NULL, &a), 0);
    for (int i = 0; i < 3; i++)
        tp_runtime_send(rt, a, M_PING, &i, sizeof(i));
    tpt_idle(rt);
    /* M_REPLAY then two more pings queued behind it: the stashed three
     * must come out before them. */
    tp_runtime_send(rt, a, M_REPLAY, NULL, 0);
    for (int i = 3; i < 5; i++)
        tp_runtime_send(rt, a, M_PING, &i, sizeof(i));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
        assert_int_equal(*(int *)r.data, i);
    }
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---- system messages cannot be stashed ---- */
enum { M_SYS_GO = 0x100, M_ASK, M_IGNORE, M_TRIED };

/* What the trier's tp_stash() said about one message. */
struct tried {
    uint32_t type;
    int rc;
    uint32_t before, after; /* tp_stash_size() around the call */
};

struct trier {
    tp_pid probe, dead;
};

/* Answers M_ASK, ignores M_IGNORE (its requester times out). */
static void
answerer_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == M_ASK)
        tp_reply(ctx, m, "yes", 4);
}

static const tp_behaviour answerer = {.name = "answerer",
                                      .handle = answerer_handle};

static void
crasher_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tp_fail(ctx, "linked crash");
}

static const tp_behaviour crasher = {.name = "crasher",
                                     .handle = crasher_handle};

/* Makes the runtime send it one of each system message -- DOWN and NOPROC
 * (about a dead pid), REPLY, TIMEOUT, a trapped EXIT, ACTOR_INFO -- and
 * one application message. */
static void
trier_go(tp_ctx *ctx, const struct trier *t)
{
    tp_spawn_opts o;
    tp_pid ans, crash;
    uint64_t ref;

    TPT_CHECK_INT_EQ(tp_spawn(ctx, &answerer, NULL, NULL, &ans), 0);
    tp_spawn_opts_init(&o);
    o.link = true;
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &crasher, NULL, &o, &crash), 0);
    TPT_CHECK_INT_EQ(tp_monitor(ctx, t->dead, &ref), 0);
    TPT_CHECK_INT_EQ(tp_request(ctx, t->dead, M_ASK, NULL, 0, 0, &ref), 0);
    TPT_CHECK_INT_EQ(tp_request(ctx, ans, M_ASK, NULL, 0, 0, &ref), 0);
    TPT_CHECK_INT_EQ(tp_request(ctx, ans, M_IGNORE, NULL, 0, 1, &ref), 0);
    TPT_CHECK_INT_EQ(tp_actor_query(ctx, tp_self(ctx), &ref), 0);
    TPT_CHECK_INT_EQ(tp_send(ctx, crash, M_PING, NULL, 0), 0);
    TPT_CHECK_INT_EQ(tp_send(ctx, tp_self(ctx), M_PING, NULL, 0), 0);
}

static void
trier_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    const struct trier *t = state;
    struct tried r;

    if (m->type == M_SYS_GO) {
        trier_go(ctx, t);
        return;
    }
    r.type = m->type;
    r.before = (uint32_t)tp_stash_size(ctx);
    r.rc = tp_stash(ctx);
    r.after = (uint32_t)tp_stash_size(ctx);
    tp_send(ctx, t->probe, M_TRIED, &r, sizeof(r));
}

static int
trier_init(tp_ctx *ctx, void *state, void *arg)
{
    *(struct trier *)state = *(struct trier *)arg;
    return 0;
}

static const tp_behaviour trier = {.name = "trier",
                                   .state_size = sizeof(struct trier),
                                   .init = trier_init,
                                   .handle = trier_handle};

static void
test_actor_stash_refuses_system_messages(void **state)
{
    static const uint32_t sys[] = {TP_MSG_DOWN,  TP_MSG_NOPROC,
                                   TP_MSG_REPLY, TP_MSG_TIMEOUT,
                                   TP_MSG_EXIT,  TP_MSG_ACTOR_INFO};
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct trier t = {tpt_probe_pid(p), TP_PID_NONE};
    unsigned seen = 0;
    tp_spawn_opts o;
    tp_pid a;
    tpt_rec r;

    assert_int_equal(tp_runtime_spawn(rt, &answerer, NULL, NULL, &t.dead), 0);
    assert_int_equal(tp_runtime_exit_pid(rt, t.dead, &kill), 0);
    tpt_idle(rt);
    tp_spawn_opts_init(&o);
    o.trap_exit = true;
    assert_int_equal(tp_runtime_spawn(rt, &trier, &t, &o, &a), 0);
    assert_int_equal(tp_runtime_send(rt, a, M_SYS_GO, NULL, 0), 0);
    /* Seven messages, in any order: each system one refused with nothing
     * stashed, the application one stashed. */
    for (int i = 0; i < 7; i++) {
        struct tried got;
        assert_int_equal(tpt_probe_wait(p, M_TRIED, 10000, &r), 0);
        memcpy(&got, r.data, sizeof(got));
        if (got.type == M_PING) {
            assert_int_equal(got.rc, 0);
            assert_int_equal(got.after, got.before + 1);
            seen |= 1u << 6;
            continue;
        }
        for (unsigned k = 0; k < 6; k++)
            if (sys[k] == got.type)
                seen |= 1u << k;
        assert_int_equal(got.rc, -EINVAL);
        assert_int_equal(got.after, got.before);
    }
    assert_int_equal(seen, 0x7f);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_actor_exit_makes_pid_dead(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_relay(rt, p);
    tp_runtime_stats st;
    tp_actor_info info;

    assert_int_equal(tp_actor_peek(rt, a, &info), 0);
    assert_string_equal(info.behaviour, "relay");
    /* Spawned within the last second or so (1 s precision). */
    assert_true(info.started_ns <= tp_now_ns());
    assert_true(tp_now_ns() - info.started_ns < 3000000000ull * tpt_slow());
    assert_int_equal(tp_runtime_send(rt, a, M_STOP, NULL, 0), 0);
    tpt_idle(rt);
    assert_int_equal(tp_actor_peek(rt, a, &info), -ESRCH);
    assert_int_equal(tp_runtime_send(rt, a, M_PING, NULL, 0), -ESRCH);
    tp_runtime_get_stats(rt, &st);
    assert_true(st.dead_letters >= 1);
    assert_int_equal(st.actors, 1); /* only the probe */
    tpt_probe_free(p);
    tpt_finish(rt);
}

static int
failing_init(tp_ctx *ctx, void *state, void *arg)
{
    return -EPERM;
}

static const tp_behaviour failing = {
    .name = "failing",
    .init = failing_init,
    .handle = relay_handle,
};

static void
test_actor_spawn_returns_init_error(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_pid pid = TP_PID_NONE;
    tp_runtime_stats st;

    assert_int_equal(tp_runtime_spawn(rt, &failing, NULL, NULL, &pid), -EPERM);
    assert_int_equal(pid, TP_PID_NONE);
    assert_int_equal(tp_runtime_spawn(rt, NULL, NULL, NULL, &pid), -EINVAL);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.actors, 0);
    tpt_finish(rt);
}

/* Pids are generation-checked: after an actor dies and its slot is reused,
 * the old pid names nothing and a message to it is never delivered to the
 * new actor. */
struct reuse {
    tp_pid probe, first, again;
};

static void
spawn_until_reused(tp_ctx *ctx, void *arg)
{
    struct reuse *r = arg;

    /* Freed slots are reused by the scheduler that freed them (the only
     * one here), so the next spawn of this size takes the same slot. */
    for (int i = 0; i < 1000; i++) {
        TPT_CHECK_INT_EQ(tp_spawn(ctx, &relay, &r->probe, NULL, &r->again), 0);
        if (tp_pid_index(r->again) == tp_pid_index(r->first))
            return;
    }
}

static void
test_actor_pid_generation_reuse(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct reuse ru = {tpt_probe_pid(p), spawn_relay(rt, p), TP_PID_NONE};
    int v = 7;
    tpt_rec r;

    tp_runtime_send(rt, ru.first, M_STOP, NULL, 0);
    tpt_idle(rt);
    tpt_probe_do(p, spawn_until_reused, &ru);
    assert_int_equal(tp_pid_index(ru.again), tp_pid_index(ru.first));
    assert_true(tp_pid_gen(ru.again) > tp_pid_gen(ru.first));
    assert_int_equal(tp_runtime_send(rt, ru.first, M_PING, &v, sizeof(v)),
                     -ESRCH);
    assert_int_equal(tp_runtime_send(rt, ru.again, M_PING, &v, sizeof(v)), 0);
    assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
    assert_int_equal(r.from, ru.again);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, M_PING), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_actor_blob_shared_without_copy(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid a = spawn_relay(rt, p);
    char text[] = "a large payload shared by reference";
    tp_blob *b = tp_blob_new(text, sizeof(text));
    tpt_rec r;

    assert_non_null(b);
    assert_non_null(tp_blob_mutable_data(b)); /* not shared yet */
    for (int i = 0; i < 10; i++)
        assert_int_equal(tp_runtime_send_blob(rt, a, M_PING, b), 0);
    assert_null(tp_blob_mutable_data(b)); /* shared now */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
        assert_string_equal((char *)r.data, text);
    }
    tpt_idle(rt);
    tp_blob_unref(b); /* the last reference: ASan/valgrind see a leak else */
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---- fairness: a flooded actor yields after BATCH messages ---- */
static atomic_int busy_seen, other_at;

static void
busy_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    atomic_fetch_add(&busy_seen, 1);
}

static void
other_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    atomic_store(&other_at, atomic_load(&busy_seen));
}

static const tp_behaviour busy_b = {.name = "busy", .handle = busy_handle};
static const tp_behaviour other_b = {.name = "other", .handle = other_handle};

struct flood_arg {
    tp_pid busy, other;
};

static void
flood(tp_ctx *ctx, void *arg)
{
    struct flood_arg *f = arg;

    /* All sent from one actor on the only scheduler: the busy actor is
     * queued first with 10,000 messages, the other one after it. */
    for (int i = 0; i < 10000; i++)
        tp_send(ctx, f->busy, M_BUSY, NULL, 0);
    tp_send(ctx, f->other, M_PING, NULL, 0);
}

static void
test_actor_batch_yields_to_other_actors(void **state)
{
    tp_runtime_options o;
    tp_runtime *rt;
    tpt_probe *p;
    struct flood_arg f;

    tp_runtime_options_init(&o);
    o.schedulers = 1;
    o.batch = 64;
    o.pin = false;
    rt = tpt_runtime_opts(&o);
    p = tpt_probe_new(rt, false);
    atomic_store(&busy_seen, 0);
    atomic_store(&other_at, -1);
    assert_int_equal(tp_runtime_spawn(rt, &busy_b, NULL, NULL, &f.busy), 0);
    assert_int_equal(tp_runtime_spawn(rt, &other_b, NULL, NULL, &f.other), 0);
    tpt_probe_do(p, flood, &f);
    tpt_idle(rt);
    assert_int_equal(atomic_load(&busy_seen), 10000);
    /* The other actor ran long before the busy one's mailbox drained. */
    assert_true(atomic_load(&other_at) >= 0);
    assert_true(atomic_load(&other_at) <= 64 * 2);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---- spawning from an actor, names ---- */
static void
spawn_named_child(tp_ctx *ctx, void *arg)
{
    tp_spawn_opts o;
    tp_pid child;

    tp_spawn_opts_init(&o);
    o.name = "child-one";
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &relay, arg, &o, &child), 0);
    TPT_CHECK_INT_EQ(tp_whereis(tp_ctx_runtime(ctx), "child-one"), child);
    TPT_CHECK_INT_EQ(tp_spawn(ctx, &relay, arg, &o, &child), -EEXIST);
}

static void
test_actor_spawn_from_actor_with_name(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid probe = tpt_probe_pid(p), child;
    int v = 3;
    tpt_rec r;

    tpt_probe_do(p, spawn_named_child, &probe);
    child = tp_whereis(rt, "child-one");
    assert_true(child != TP_PID_NONE);
    tp_runtime_send(rt, child, M_PING, &v, sizeof(v));
    assert_int_equal(tpt_probe_wait(p, M_PING, 5000, &r), 0);
    tp_runtime_send(rt, child, M_STOP, NULL, 0);
    tpt_idle(rt);
    assert_int_equal(tp_whereis(rt, "child-one"), TP_PID_NONE);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_actor_send_rejects_system_types(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tpt_probe *p = tpt_probe_new(rt, false);

    assert_int_equal(
        tp_runtime_send(rt, tpt_probe_pid(p), TP_MSG_DOWN, NULL, 0), -EINVAL);
    assert_int_equal(tp_runtime_send(rt, tpt_probe_pid(p), 1, NULL, 5),
                     -EINVAL);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_pid_format_parse_roundtrip(void **state)
{
    char buf[32];
    tp_pid pid = ((tp_pid)7 << 32) | 12345, back;

    assert_string_equal(tp_pid_format(pid, buf, sizeof(buf)), "<12345.7>");
    assert_int_equal(tp_pid_parse(buf, &back), 0);
    assert_int_equal(back, pid);
    assert_int_equal(tp_pid_parse("12345.7", &back), 0);
    assert_int_equal(back, pid);
    assert_int_equal(tp_pid_parse("<1.x>", &back), -EINVAL);
    assert_int_equal(tp_pid_parse("", &back), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actor_send_delivers_copy_in_order),
        cmocka_unit_test(test_actor_state_persists_between_messages),
        cmocka_unit_test(test_actor_become_switches_and_restores_handler),
        cmocka_unit_test(test_actor_unstash_all_runs_stashed_first),
        cmocka_unit_test(test_actor_stash_refuses_system_messages),
        cmocka_unit_test(test_actor_exit_makes_pid_dead),
        cmocka_unit_test(test_actor_spawn_returns_init_error),
        cmocka_unit_test(test_actor_pid_generation_reuse),
        cmocka_unit_test(test_actor_blob_shared_without_copy),
        cmocka_unit_test(test_actor_batch_yields_to_other_actors),
        cmocka_unit_test(test_actor_spawn_from_actor_with_name),
        cmocka_unit_test(test_actor_send_rejects_system_types),
        cmocka_unit_test(test_pid_format_parse_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
