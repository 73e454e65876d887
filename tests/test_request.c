/*
 * tests/test_request.c - request/reply: replies, timeouts, late replies
 * dropped, noproc, the reply/timeout race, tp_runtime_call and tracing.
 */
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

enum { M_ECHO = 1, M_SLOW, M_NEVER, M_DELAYED, M_CRASH };

/* A server: M_ECHO replies at once, M_SLOW after the given ms (blocking,
 * to create late replies), M_NEVER never, M_DELAYED replies later from a
 * timer message (noreply + reply_to). */
struct server {
    tp_pid to;
    uint64_t ref;
};

static void
server_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct server *s = state;

    switch (m->type) {
    case M_ECHO:
        TPT_CHECK(tp_msg_is_request(m));
        TPT_CHECK_INT_EQ(tp_reply(ctx, m, m->data, m->len), 0);
        break;
    case M_SLOW:
        tpt_sleep_ms(*(const uint32_t *)m->data);
        tp_reply(ctx, m, m->data, m->len);
        break;
    case M_DELAYED:
        s->to = m->from;
        s->ref = m->ref;
        tp_send_after(ctx, 10, tp_self(ctx), 99, NULL, 0, NULL);
        break;
    case 99:
        TPT_CHECK_INT_EQ(tp_reply_to(ctx, s->to, s->ref, "later", 6), 0);
        break;
    case M_CRASH:
        tp_fail(ctx, "crashed while handling a request");
        break;
    default:
        break;
    }
}

static const tp_behaviour server = {.name = "server",
                                    .state_size = sizeof(struct server),
                                    .handle = server_handle};

struct req {
    tp_pid to;
    uint32_t type;
    uint32_t arg;
    uint32_t timeout;
    uint64_t ref;
    int result;
};

static void
do_request(tp_ctx *ctx, void *arg)
{
    struct req *r = arg;

    r->result = tp_request(ctx, r->to, r->type, &r->arg, sizeof(r->arg),
                           r->timeout, &r->ref);
}

/* The server runs on scheduler 1; probes on scheduler 0, so a server that
 * blocks does not hold up the requester's timers. */
static tp_pid
spawn_server(tp_runtime *rt)
{
    tp_spawn_opts o;
    tp_pid pid;

    tp_spawn_opts_init(&o);
    o.scheduler = 1;
    assert_int_equal(tp_runtime_spawn(rt, &server, NULL, &o, &pid), 0);
    return pid;
}

static void
test_request_reply_carries_ref_and_payload(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct req r = {spawn_server(rt), M_ECHO, 1234, 1000, 0, -1};
    tpt_rec rec;

    tpt_probe_do(p, do_request, &r);
    assert_int_equal(r.result, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.ref, r.ref);
    assert_int_equal(rec.from, r.to);
    assert_int_equal(*(uint32_t *)rec.data, 1234);
    /* The timeout was cancelled: nothing else arrives (quiescence waits
     * for armed one-shot timers, so a live timeout would be delivered). */
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, 0), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_request_timeout_then_late_reply_dropped(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct req r = {spawn_server(rt), M_SLOW, 100, 20, 0, -1};
    tpt_rec rec;

    tpt_probe_do(p, do_request, &r);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_TIMEOUT, 5000, &rec), 0);
    assert_int_equal(rec.ref, r.ref);
    tpt_idle(rt); /* the server replied late */
    assert_int_equal(tpt_probe_count(p, 0), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_request_dead_pid_gives_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    struct req r = {spawn_server(rt), M_ECHO, 1, 1000, 0, -1};
    tpt_rec rec;

    tp_runtime_exit_pid(rt, r.to, &kill);
    tpt_idle(rt);
    tpt_probe_do(p, do_request, &r);
    assert_int_equal(r.result, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_int_equal(rec.ref, r.ref);
    tpt_idle(rt); /* a timeout still armed would be delivered */
    assert_int_equal(tpt_probe_count(p, 0), 0); /* no timeout after it */
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_request_deferred_reply_to(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct req r = {spawn_server(rt), M_DELAYED, 0, 1000, 0, -1};
    tpt_rec rec;

    tpt_probe_do(p, do_request, &r);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.ref, r.ref);
    assert_string_equal((char *)rec.data, "later");
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* A reply racing its timeout: the server replies after about the timeout.
 * Whatever the interleaving, each request gets exactly one answer. */
#define RACE 300

static atomic_int answers[RACE];

struct racer {
    tp_pid server;
    int sent;
};

static void
racer_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct racer *r = state;

    if (m->type == M_ECHO) { /* start */
        r->server = *(const tp_pid *)m->data;
        for (int i = 0; i < RACE; i++) {
            uint32_t ms = 1 + (uint32_t)(i % 3);
            uint64_t ref;
            /* Ask for a delay of ms before the reply, time out at ms. */
            TPT_CHECK_INT_EQ(
                tp_request(ctx, r->server, M_SLOW, &ms, sizeof(ms), ms, &ref),
                0);
        }
        return;
    }
    if (m->type == TP_MSG_REPLY || m->type == TP_MSG_TIMEOUT) {
        /* The ref's low bits identify the request in sequence order. */
        atomic_fetch_add(&answers[(m->ref >> 9) % RACE], 1);
    }
}

static const tp_behaviour racer = {.name = "racer",
                                   .state_size = sizeof(struct racer),
                                   .handle = racer_handle};

static void
test_request_reply_racing_timeout_one_answer(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid srv = spawn_server(rt), rc;
    tp_spawn_opts o;
    int total = 0;

    tp_spawn_opts_init(&o);
    o.scheduler = 0;
    memset(answers, 0, sizeof(answers));
    assert_int_equal(tp_runtime_spawn(rt, &racer, NULL, &o, &rc), 0);
    assert_int_equal(tp_runtime_send(rt, rc, M_ECHO, &srv, sizeof(srv)), 0);
    tpt_idle(rt);
    for (int i = 0; i < RACE; i++) {
        assert_int_equal(atomic_load(&answers[i]), 1);
        total++;
    }
    assert_int_equal(total, RACE);
    tpt_finish(rt);
}

static void
do_forget(tp_ctx *ctx, void *arg)
{
    struct req *r = arg;

    TPT_CHECK_INT_EQ(
        tp_request(ctx, r->to, M_ECHO, &r->arg, sizeof(r->arg), 50, &r->ref),
        0);
    TPT_CHECK_INT_EQ(tp_request_forget(ctx, r->ref), 0);
    TPT_CHECK_INT_EQ(tp_request_forget(ctx, r->ref), -ENOENT);
}

static void
test_request_forget_drops_answer(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct req r = {spawn_server(rt), M_ECHO, 5, 50, 0, -1};

    tpt_probe_do(p, do_forget, &r);
    tpt_idle(rt); /* the answer and any armed timeout come before this */
    assert_int_equal(tpt_probe_count(p, 0), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_runtime_call_reply_timeout_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid srv = spawn_server(rt);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    uint32_t v = 77, got = 0, ms = 200;
    size_t len = 0;

    assert_int_equal(tp_runtime_call(rt, srv, M_ECHO, &v, sizeof(v), &got,
                                     sizeof(got), &len, 1000),
                     0);
    assert_int_equal(got, 77);
    assert_int_equal(len, sizeof(v));
    assert_int_equal(
        tp_runtime_call(rt, srv, M_SLOW, &ms, sizeof(ms), NULL, 0, NULL, 20),
        -ETIMEDOUT);
    tpt_idle(rt); /* late reply dropped by the proxy */
    tp_runtime_exit_pid(rt, srv, &kill);
    tpt_idle(rt);
    assert_int_equal(
        tp_runtime_call(rt, srv, M_ECHO, &v, sizeof(v), NULL, 0, NULL, 1000),
        -ESRCH);
    tpt_finish(rt);
}

/* A request whose target crashes handling it, or dies with it queued,
 * gets TP_MSG_NOPROC at once rather than waiting for its timeout. */
static void
test_request_target_death_answers_noproc_at_once(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct req crash = {spawn_server(rt), M_CRASH, 0, 60000, 0, -1};
    struct req slow = {spawn_server(rt), M_SLOW, 50, 60000, 0, -1};
    struct req queued = {slow.to, M_ECHO, 1, 60000, 0, -1};
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    uint64_t t0 = tp_now_ns();
    tpt_rec rec;

    tpt_probe_do(p, do_request, &crash);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_int_equal(rec.ref, crash.ref);
    /* The slow server is busy for 50 ms; a second request waits in its
     * mailbox when it is killed. */
    tpt_probe_do(p, do_request, &slow);
    tpt_probe_do(p, do_request, &queued);
    tp_runtime_exit_pid(rt, slow.to, &kill);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_true(rec.ref == slow.ref || rec.ref == queued.ref);
    /* Not the 60 s timeout. */
    assert_true(tp_now_ns() - t0 < 5000000000ull * tpt_slow());
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_runtime_call_to_crashing_target_fails_fast(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid srv = spawn_server(rt);

    assert_int_equal(
        tp_runtime_call(rt, srv, M_CRASH, NULL, 0, NULL, 0, NULL, 60000),
        -ESRCH);
    tpt_finish(rt);
}

static void
test_trace_copies_handled_messages(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    tp_pid srv = spawn_server(rt);
    uint32_t v = 9;
    tpt_rec rec;
    const tp_trace_event *ev;

    assert_int_equal(tp_trace(rt, srv, tpt_probe_pid(p)), 0);
    tpt_idle(rt);
    assert_int_equal(tp_runtime_send(rt, srv, 42, &v, sizeof(v)), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_TRACE, 5000, &rec), 0);
    ev = (const tp_trace_event *)rec.data;
    assert_int_equal(ev->actor, srv);
    assert_int_equal(ev->type, 42);
    assert_int_equal(ev->len, sizeof(v));
    assert_int_equal(*(const uint32_t *)(ev + 1), 9);
    assert_int_equal(tp_trace(rt, srv, TP_PID_NONE), 0);
    tpt_idle(rt);
    tp_runtime_send(rt, srv, 42, &v, sizeof(v));
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, TP_MSG_TRACE), 0);
    tpt_probe_free(p);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_reply_carries_ref_and_payload),
        cmocka_unit_test(test_request_timeout_then_late_reply_dropped),
        cmocka_unit_test(test_request_dead_pid_gives_noproc),
        cmocka_unit_test(test_request_deferred_reply_to),
        cmocka_unit_test(test_request_reply_racing_timeout_one_answer),
        cmocka_unit_test(test_request_forget_drops_answer),
        cmocka_unit_test(test_runtime_call_reply_timeout_noproc),
        cmocka_unit_test(test_request_target_death_answers_noproc_at_once),
        cmocka_unit_test(test_runtime_call_to_crashing_target_fails_fast),
        cmocka_unit_test(test_trace_copies_handled_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
