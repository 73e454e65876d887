/*
 * tests/test_gen_server.c - the gen_server behaviour: call / cast / info
 * dispatch, empty and deferred replies, stopping from a callback (with and
 * without a reply), bad returns, calls to a dead server, call timeouts,
 * the parent's exit signal, packed calls, and calls racing the server's
 * stop (exactly one answer each).
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    C_STATS = 1,   /* reply: struct stats */
    C_PING,        /* TP_GS_REPLY without a payload: an empty reply */
    C_DEFER,       /* keep `from`, answer later */
    C_RELEASE,     /* answer the deferred call with "later" */
    C_STOP,        /* reply "bye", stop with USER 7 "bye" */
    C_STOP_SILENT, /* stop without replying */
    C_BAD,         /* return -EIO */
    C_IGNORE,      /* never answer */
    C_ECHO_PACKED, /* reply {"echo": <the payload>} */
    C_CRASH,       /* tp_fail() in handle_call */
    C_HOLD,        /* wait for hold_release (at most 10 s), empty reply */
    K_ADD,         /* cast: n += int64 */
    K_STOP,        /* cast: stop normally */
    K_CHECK_VIEW   /* cast: checks what handle_cast sees */
};

struct stats {
    int64_t n;
    uint32_t calls, casts, infos, last_info_type;
    uint32_t bad_views;
};

struct server {
    struct stats st;
    tp_gs_from deferred;
};

/* C_HOLD: the server is inside handle_call; the test lets it go on. */
static atomic_bool hold_entered, hold_release;

static void
hold(void)
{
    atomic_store(&hold_entered, true);
    for (int i = 0; i < 10000 && !atomic_load(&hold_release); i++)
        tpt_sleep_ms(1);
}

/* What terminate saw (one server per test). */
static pthread_mutex_t term_lock = PTHREAD_MUTEX_INITIALIZER;
static int term_calls;
static tp_exit_reason term_reason;
static char term_text[256];

static int
srv_call(tp_ctx *ctx, void *state, const tp_msg *m, tp_gs_from *from)
{
    struct server *s = state;
    tp_exit_reason bye = {TP_EXIT_USER, 7, "bye"};

    s->st.calls++;
    switch (m->type) {
    case C_STATS:
        TPT_CHECK_INT_EQ(tp_gs_reply(ctx, from, &s->st, sizeof(s->st)), 0);
        TPT_CHECK_INT_EQ(tp_gs_reply(ctx, from, NULL, 0), -EALREADY);
        return TP_GS_REPLY;
    case C_PING:
        return TP_GS_REPLY;
    case C_DEFER:
        s->deferred = *from;
        return TP_GS_NOREPLY;
    case C_RELEASE:
        TPT_CHECK_INT_EQ(tp_gs_reply(ctx, &s->deferred, "later", 6), 0);
        return TP_GS_REPLY;
    case C_STOP:
        tp_gs_reply(ctx, from, "bye", 4);
        return tp_gs_stop(ctx, &bye);
    case C_STOP_SILENT:
        return TP_GS_STOP;
    case C_BAD:
        return -EIO;
    case C_CRASH:
        tp_fail(ctx, "crashed in handle_call");
        return TP_GS_REPLY; /* not reached */
    case C_HOLD:
        hold();
        return TP_GS_REPLY;
    default:
        return TP_GS_NOREPLY;
    }
}

static int
srv_cast(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct server *s = state;

    s->st.casts++;
    if (m->type == K_ADD)
        s->st.n += *(const int64_t *)m->data;
    if (m->type == K_STOP)
        return TP_GS_STOP;
    if (m->type == K_CHECK_VIEW &&
        (m->ref != 0 || m->len != 3 || memcmp(m->data, "abc", 3) != 0 ||
         ((uintptr_t)m->data & 7) != 0 || tp_msg_blob(m) != NULL))
        s->st.bad_views++;
    return TP_GS_NOREPLY;
}

static int
srv_info(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct server *s = state;

    s->st.infos++;
    s->st.last_info_type = m->type;
    return TP_GS_NOREPLY;
}

static void
srv_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    pthread_mutex_lock(&term_lock);
    term_calls++;
    term_reason = *why;
    snprintf(term_text, sizeof(term_text), "%s", why->text ? why->text : "");
    pthread_mutex_unlock(&term_lock);
}

static const tp_gen_server server_gs = {
    TP_GEN_SERVER_BEHAVIOUR("test-server", sizeof(struct server)),
    .handle_call = srv_call,
    .handle_cast = srv_cast,
    .handle_info = srv_info,
    .terminate = srv_terminate,
};

static void
term_reset(void)
{
    pthread_mutex_lock(&term_lock);
    term_calls = 0;
    memset(&term_reason, 0, sizeof(term_reason));
    term_text[0] = '\0';
    pthread_mutex_unlock(&term_lock);
}

static int
term_count(void)
{
    int n;

    pthread_mutex_lock(&term_lock);
    n = term_calls;
    pthread_mutex_unlock(&term_lock);
    return n;
}

static tp_pid
start_server(tp_runtime *rt)
{
    tp_spawn_opts o;
    tp_pid pid;

    term_reset();
    tp_spawn_opts_init(&o);
    o.scheduler = 1;
    assert_int_equal(tp_gen_server_start(rt, &server_gs, NULL, &o, &pid), 0);
    return pid;
}

static struct stats
get_stats(tp_runtime *rt, tp_pid srv)
{
    struct stats st;
    size_t len = 0;

    memset(&st, 0, sizeof(st));
    assert_int_equal(
        tp_runtime_call(rt, srv, C_STATS, NULL, 0, &st, sizeof(st), &len, 5000),
        0);
    assert_int_equal(len, sizeof(st));
    return st;
}

/* A call made from inside the probe actor. */
struct call {
    tp_pid to;
    uint32_t type;
    uint32_t timeout;
    uint64_t ref;
    int result;
    bool monitor;
};

static void
do_call(tp_ctx *ctx, void *arg)
{
    struct call *c = arg;
    uint64_t mref;

    if (c->monitor)
        TPT_CHECK_INT_EQ(tp_monitor(ctx, c->to, &mref), 0);
    c->result = tp_gs_call(ctx, c->to, c->type, NULL, 0, c->timeout, &c->ref);
}

/* ---------------------------------------------------------------------- */

static void
test_gen_server_call_cast_info_dispatch(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid srv = start_server(rt);
    int64_t five = 5;
    uint32_t short_env = 0;
    struct stats st;

    assert_int_equal(tp_gs_runtime_cast(rt, srv, K_ADD, &five, 8), 0);
    assert_int_equal(tp_gs_runtime_cast(rt, srv, K_ADD, &five, 8), 0);
    assert_int_equal(tp_gs_runtime_cast(rt, srv, K_CHECK_VIEW, "abc", 3), 0);
    assert_int_equal(tp_runtime_send(rt, srv, 77, "x", 1), 0);
    /* Neither a short envelope nor a system type inside one is a cast. */
    assert_int_equal(tp_runtime_send(rt, srv, TP_MSG_GS_CAST, &short_env, 4),
                     0);
    assert_int_equal(tp_gs_runtime_cast(rt, srv, TP_MSG_EXIT, NULL, 0),
                     -EINVAL);
    st = get_stats(rt, srv);
    assert_int_equal(st.n, 10);
    assert_int_equal(st.casts, 3);
    assert_int_equal(st.bad_views, 0);
    assert_int_equal(st.infos, 2);
    assert_int_equal(st.last_info_type, TP_MSG_GS_CAST);
    assert_int_equal(st.calls, 1);
    tpt_finish(rt);
}

static void
test_gen_server_call_from_actor_reply_and_empty_reply(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_STATS, 5000, 0, -1, false};
    tpt_rec rec;

    tpt_probe_do(p, do_call, &c);
    assert_int_equal(c.result, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_int_equal(rec.from, c.to);
    assert_int_equal(rec.len, sizeof(struct stats));
    c.type = C_PING;
    tpt_probe_do(p, do_call, &c);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_int_equal(rec.len, 0);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, 0), 0); /* timeouts cancelled */
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_deferred_reply(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_DEFER, 10000, 0, -1, false};
    tpt_rec rec;

    tpt_probe_do(p, do_call, &c);
    assert_int_equal(c.result, 0);
    tpt_sleep_ms(50);
    assert_int_equal(tpt_probe_count(p, 0), 0); /* not answered yet */
    assert_int_equal(
        tp_runtime_call(rt, c.to, C_RELEASE, NULL, 0, NULL, 0, NULL, 5000), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_string_equal((const char *)rec.data, "later");
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_stop_from_handle_call_replies_first(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_STOP, 5000, 0, -1, true};
    tpt_rec rec;

    tpt_probe_do(p, do_call, &c);
    assert_int_equal(tpt_probe_wait(p, 0, 5000, &rec), 0);
    assert_int_equal(rec.type, TP_MSG_REPLY); /* before the DOWN */
    assert_int_equal(rec.ref, c.ref);
    assert_string_equal((const char *)rec.data, "bye");
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_USER);
    assert_int_equal(rec.code, 7);
    assert_string_equal(rec.text, "bye");
    assert_int_equal(term_count(), 1);
    assert_int_equal(term_reason.kind, TP_EXIT_USER);
    assert_string_equal(term_text, "bye");
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_stop_without_reply_gives_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_STOP_SILENT, 5000, 0, -1, true};
    tpt_rec rec;

    tpt_probe_do(p, do_call, &c);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_NORMAL);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, 0), 0); /* no timeout after it */
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_bad_return_crashes_and_answers_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_BAD, 5000, 0, -1, true};
    tpt_rec rec;

    tp_log_set_level(TP_LOG_ERROR); /* the crash is expected */
    tpt_probe_do(p, do_call, &c);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &rec), 0);
    assert_int_equal(rec.kind, TP_EXIT_CRASH);
    assert_non_null(strstr(rec.text, "handle_call returned -5"));
    assert_int_equal(term_count(), 1);
    tp_log_set_level(TP_LOG_INFO);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* gen_server.h (after request.h): a call whose server crashes handling
 * it, or dies with it still queued, is answered TP_MSG_NOPROC at once --
 * long before the call's timeout (60 s here); a deferred one only by its
 * timeout. */
static void
test_gen_server_crash_or_death_answers_noproc_at_once(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call crash = {start_server(rt), C_CRASH, 60000, 0, -1, false};
    struct call held = {start_server(rt), C_HOLD, 60000, 0, -1, false};
    struct call queued = {held.to, C_STATS, 60000, 0, -1, false};
    struct call deferred = {TP_PID_NONE, C_DEFER, 200, 0, -1, false};
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "test"};
    tpt_rec rec;

    tp_log_set_level(TP_LOG_ERROR); /* the crash is expected */
    tpt_probe_do(p, do_call, &crash);
    assert_int_equal(crash.result, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 10000, &rec), 0);
    assert_int_equal(rec.ref, crash.ref);
    /* The held server is inside handle_call with a second call queued
     * when it is killed: the call it handles is answered, the queued one
     * gets NOPROC. */
    atomic_store(&hold_entered, false);
    atomic_store(&hold_release, false);
    tpt_probe_do(p, do_call, &held);
    tpt_probe_do(p, do_call, &queued);
    for (int i = 0; i < 10000 * (int)tpt_slow(); i++) {
        if (atomic_load(&hold_entered))
            break;
        tpt_sleep_ms(1);
    }
    assert_true(atomic_load(&hold_entered));
    assert_int_equal(tp_runtime_exit_pid(rt, held.to, &kill), 0);
    atomic_store(&hold_release, true);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_REPLY, 10000, &rec), 0);
    assert_int_equal(rec.ref, held.ref);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 10000, &rec), 0);
    assert_int_equal(rec.ref, queued.ref);
    assert_int_equal(tpt_probe_count(p, TP_MSG_TIMEOUT), 0);
    /* A deferred call whose server dies gets only its timeout. */
    deferred.to = start_server(rt);
    tpt_probe_do(p, do_call, &deferred);
    tpt_idle(rt);
    assert_int_equal(tp_runtime_exit_pid(rt, deferred.to, &kill), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_TIMEOUT, 10000, &rec), 0);
    assert_int_equal(rec.ref, deferred.ref);
    assert_int_equal(tpt_probe_count(p, TP_MSG_NOPROC), 0);
    tp_log_set_level(TP_LOG_INFO);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_call_to_dead_server_is_noproc(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_STATS, 5000, 0, -1, false};
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tpt_rec rec;

    assert_int_equal(tp_runtime_exit_pid(rt, c.to, &kill), 0);
    tpt_idle(rt);
    tpt_probe_do(p, do_call, &c);
    assert_int_equal(c.result, 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_NOPROC, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_int_equal(
        tp_runtime_call(rt, c.to, C_STATS, NULL, 0, NULL, 0, NULL, 5000),
        -ESRCH);
    assert_int_equal(tp_gs_runtime_cast(rt, c.to, K_ADD, &c, 8), -ESRCH);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_gen_server_call_timeout(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new_pinned(rt, false, 0);
    struct call c = {start_server(rt), C_IGNORE, 30, 0, -1, false};
    tpt_rec rec;
    uint64_t t0 = tp_now_ns();

    tpt_probe_do(p, do_call, &c);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_TIMEOUT, 5000, &rec), 0);
    assert_int_equal(rec.ref, c.ref);
    assert_true(tp_now_ns() - t0 >= 30 * 1000000ull);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, 0), 0);
    assert_int_equal(
        tp_runtime_call(rt, c.to, C_IGNORE, NULL, 0, NULL, 0, NULL, 20),
        -ETIMEDOUT);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* The parent's exit signal stops a trapping server; anyone else's is an
 * info. */
struct linked {
    tp_pid srv;
};

static void
do_spawn_linked(tp_ctx *ctx, void *arg)
{
    struct linked *l = arg;
    tp_spawn_opts o;

    tp_spawn_opts_init(&o);
    o.link = true;
    o.trap_exit = true;
    term_reset();
    TPT_CHECK_INT_EQ(tp_gen_server_spawn(ctx, &server_gs, NULL, &o, &l->srv),
                     0);
}

static void
do_exit_child(tp_ctx *ctx, void *arg)
{
    struct linked *l = arg;
    tp_exit_reason shutdown = {TP_EXIT_SHUTDOWN, 0, "sup says stop"};

    TPT_CHECK_INT_EQ(tp_exit_pid(ctx, l->srv, &shutdown), 0);
}

static void
test_gen_server_parent_exit_stops_trapping_server(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, true);
    tp_exit_reason other = {TP_EXIT_USER, 3, "not the parent"};
    struct linked l;
    struct stats st;
    tpt_rec rec;

    tpt_probe_do(p, do_spawn_linked, &l);
    assert_int_equal(tp_runtime_exit_pid(rt, l.srv, &other), 0);
    tpt_idle(rt); /* a trapped exit queues behind what is already there */
    st = get_stats(rt, l.srv); /* still alive: it was an info */
    assert_int_equal(st.infos, 1);
    assert_int_equal(st.last_info_type, TP_MSG_EXIT);
    tpt_probe_do(p, do_exit_child, &l);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_EXIT, 5000, &rec), 0);
    assert_int_equal(rec.pid, l.srv);
    assert_int_equal(rec.kind, TP_EXIT_SHUTDOWN);
    assert_string_equal(rec.text, "sup says stop");
    assert_int_equal(term_count(), 1);
    assert_int_equal(term_reason.kind, TP_EXIT_SHUTDOWN);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static const tp_gen_server bare_gs = {
    TP_GEN_SERVER_BEHAVIOUR("bare", 0),
};

static int
failing_init(tp_ctx *ctx, void *state, void *arg)
{
    return -EPERM;
}

static const tp_gen_server failing_gs = {
    TP_GEN_SERVER_BEHAVIOUR("failing", 8),
    .init = failing_init,
};

static void
test_gen_server_missing_callbacks_and_bad_tables(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_gen_server plain = {.behaviour = {.name = "plain"}};
    tp_actor_info info;
    tp_pid pid;

    plain.behaviour.handle = tp_gs_adapter_handle; /* but no adapter init */
    assert_int_equal(tp_gen_server_start(rt, &bare_gs, NULL, NULL, &pid), 0);
    assert_int_equal(tp_runtime_send(rt, pid, 5, NULL, 0), 0);
    assert_int_equal(tp_gs_runtime_cast(rt, pid, 5, NULL, 0), 0);
    /* No handle_call: the caller is told at once. */
    assert_int_equal(tp_runtime_call(rt, pid, 1, NULL, 0, NULL, 0, NULL, 5000),
                     -ESRCH);
    assert_int_equal(tp_actor_peek(rt, pid, &info), 0);
    assert_string_equal(info.behaviour, "bare");
    assert_int_equal(tp_gen_server_start(rt, &plain, NULL, NULL, &pid),
                     -EINVAL);
    assert_int_equal(tp_gen_server_start(rt, NULL, NULL, NULL, &pid), -EINVAL);
    assert_int_equal(tp_gen_server_start(rt, &failing_gs, NULL, NULL, &pid),
                     -EPERM);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Packed calls                                                            */

static int
echo_call(tp_ctx *ctx, void *state, const tp_msg *m, tp_gs_from *from)
{
    tp_value o;
    tp_pack p;
    int err;

    if ((err = tp_unpack(ctx, m, &o)) != 0)
        return err; /* crashes the server: not expected here */
    tp_pack_init(&p);
    tp_pack_map(&p, 1);
    tp_pack_cstr(&p, "echo");
    tp_pack_object(&p, &o);
    err = tp_gs_reply_packed(ctx, from, &p);
    tp_pack_fini(&p);
    return err == 0 ? TP_GS_REPLY : err;
}

static int
echo_cast(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tp_value o;

    if (tp_unpack(ctx, m, &o) == 0 && o.type == TP_VALUE_STR)
        (*(int *)state)++;
    return TP_GS_NOREPLY;
}

static const tp_gen_server echo_gs = {
    TP_GEN_SERVER_BEHAVIOUR("echo", sizeof(int)),
    .handle_call = echo_call,
    .handle_cast = echo_cast,
};

static void
test_gen_server_packed_call_and_cast(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_unpacker *u = NULL;
    char reply[128], text[128];
    size_t len = 0;
    tp_value o;
    tp_pid pid;
    tp_pack p;

    assert_int_equal(tp_unpacker_new(&u, NULL), 0);
    assert_int_equal(tp_gen_server_start(rt, &echo_gs, NULL, NULL, &pid), 0);
    tp_pack_init(&p);
    tp_pack_array(&p, 2);
    tp_pack_int(&p, -1);
    tp_pack_cstr(&p, "two");
    assert_int_equal(tp_runtime_call(rt, pid, C_ECHO_PACKED, tp_pack_data(&p),
                                     tp_pack_len(&p), reply, sizeof(reply),
                                     &len, 5000),
                     0);
    assert_int_equal(tp_unpacker_read(u, reply, len, &o), 0);
    assert_true(tp_pack_print(reply, len, text, sizeof(text)) > 0);
    assert_string_equal(text, "{\"echo\":[-1,\"two\"]}");
    tp_pack_reset(&p);
    tp_pack_cstr(&p, "hello");
    assert_int_equal(
        tp_gs_runtime_cast(rt, pid, 1, tp_pack_data(&p), tp_pack_len(&p)), 0);
    tp_pack_fini(&p);
    tp_unpacker_free(u);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* Calls racing the server's stop: exactly one answer per call            */

#define RACE_CALLERS 4
#define RACE_CALLS   200

struct caller {
    tp_pid srv;
    uint64_t refs[RACE_CALLS];
    uint8_t seen[RACE_CALLS];
    unsigned answers, replies, noprocs, timeouts, dups;
};

static atomic_uint race_done;
static atomic_uint race_answers, race_dups, race_replies, race_noprocs,
    race_timeouts;

static void
caller_answer(tp_ctx *ctx, struct caller *c, const tp_msg *m)
{
    int i;

    for (i = 0; i < RACE_CALLS && c->refs[i] != m->ref; i++)
        ;
    if (i == RACE_CALLS || c->seen[i]++ != 0) {
        c->dups++; /* unknown or second answer */
        return;
    }
    c->answers++;
    c->replies += m->type == TP_MSG_REPLY;
    c->noprocs += m->type == TP_MSG_NOPROC;
    c->timeouts += m->type == TP_MSG_TIMEOUT;
    if (c->answers == RACE_CALLS) {
        atomic_fetch_add(&race_answers, c->answers);
        atomic_fetch_add(&race_dups, c->dups);
        atomic_fetch_add(&race_replies, c->replies);
        atomic_fetch_add(&race_noprocs, c->noprocs);
        atomic_fetch_add(&race_timeouts, c->timeouts);
        atomic_fetch_add(&race_done, 1);
    }
}

static void
caller_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct caller *c = state;
    uint32_t timeout = 200 * tpt_slow();

    if (m->type == 1) { /* go: the server's pid */
        c->srv = *(const tp_pid *)m->data;
        for (int i = 0; i < RACE_CALLS; i++)
            TPT_CHECK_INT_EQ(
                tp_gs_call(ctx, c->srv, C_PING, NULL, 0, timeout, &c->refs[i]),
                0);
        return;
    }
    caller_answer(ctx, c, m);
}

static const tp_behaviour caller_b = {.name = "caller",
                                      .state_size = sizeof(struct caller),
                                      .handle = caller_handle};

static void
test_gen_server_calls_racing_stop_one_answer_each(void **state)
{
    for (int round = 0; round < 5; round++) {
        tp_runtime *rt = tpt_runtime(2);
        tp_pid srv = start_server(rt), callers[RACE_CALLERS];

        atomic_store(&race_done, 0);
        atomic_store(&race_answers, 0);
        atomic_store(&race_dups, 0);
        atomic_store(&race_replies, 0);
        atomic_store(&race_noprocs, 0);
        atomic_store(&race_timeouts, 0);
        for (int i = 0; i < RACE_CALLERS; i++)
            assert_int_equal(
                tp_runtime_spawn(rt, &caller_b, NULL, NULL, &callers[i]), 0);
        for (int i = 0; i < RACE_CALLERS; i++)
            assert_int_equal(
                tp_runtime_send(rt, callers[i], 1, &srv, sizeof(srv)), 0);
        tpt_sleep_ms((unsigned)round); /* stop at varying points */
        assert_int_equal(tp_gs_runtime_cast(rt, srv, K_STOP, NULL, 0), 0);
        tpt_idle(rt);
        assert_int_equal(atomic_load(&race_done), RACE_CALLERS);
        assert_int_equal(atomic_load(&race_dups), 0);
        assert_int_equal(atomic_load(&race_answers), RACE_CALLERS * RACE_CALLS);
        /* Each answer is one of the three kinds. */
        assert_int_equal(atomic_load(&race_replies) +
                             atomic_load(&race_noprocs) +
                             atomic_load(&race_timeouts),
                         RACE_CALLERS * RACE_CALLS);
        assert_int_equal(term_count(), 1);
        tpt_finish(rt);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_server_call_cast_info_dispatch),
        cmocka_unit_test(test_gen_server_call_from_actor_reply_and_empty_reply),
        cmocka_unit_test(test_gen_server_deferred_reply),
        cmocka_unit_test(test_gen_server_stop_from_handle_call_replies_first),
        cmocka_unit_test(test_gen_server_stop_without_reply_gives_noproc),
        cmocka_unit_test(test_gen_server_bad_return_crashes_and_answers_noproc),
        cmocka_unit_test(test_gen_server_crash_or_death_answers_noproc_at_once),
        cmocka_unit_test(test_gen_server_call_to_dead_server_is_noproc),
        cmocka_unit_test(test_gen_server_call_timeout),
        cmocka_unit_test(test_gen_server_parent_exit_stops_trapping_server),
        cmocka_unit_test(test_gen_server_missing_callbacks_and_bad_tables),
        cmocka_unit_test(test_gen_server_packed_call_and_cast),
        cmocka_unit_test(test_gen_server_calls_racing_stop_one_answer_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
