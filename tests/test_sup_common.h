/*
 * tests/test_sup_common.h - helpers shared by the supervisor tests: a test
 * worker that reports its start and its end to a probe, so a test sees the
 * order in which a supervisor starts and stops children, and with what
 * reason.
 */
#ifndef TP_TEST_SUP_COMMON_H
#define TP_TEST_SUP_COMMON_H

#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <troupe/timer.h>

/* Events a test worker sends to its probe. */
enum { EV_START = 0x100, EV_STOP, EV_PONG };
/* Orders a test worker understands. */
enum { W_EXIT = 0x200, W_CRASH, W_PING, W_LINGER };

/* Events written synchronously by the workers themselves: exact order,
 * and readable after the runtime has stopped. */
#define TW_JOURNAL_MAX 1024

struct tw_journal {
    pthread_mutex_t lock;
    int n;
    struct {
        uint32_t type;
        int tag;
        int kind;
    } ev[TW_JOURNAL_MAX];
};

struct tw_arg {
    tp_pid probe;
    struct tw_journal *j;   /* when set, events go here instead */
    _Atomic int fail_inits; /* the next inits that fail (-EIO) */
    int tag;
    int init_err;    /* init fails with this (0 = succeeds) */
    bool trap;       /* trap exits (sees the supervisor's shutdown) */
    bool stubborn;   /* trapping, ignores shutdown (to test the timeout) */
    unsigned linger; /* trapping: ms spent before obeying a shutdown */
};

struct tw_ev {
    int tag;
    int kind; /* EV_STOP: tp_exit_kind */
    tp_pid pid;
    char text[64];
};

struct tw_state {
    const struct tw_arg *a;
};

static inline void
tw_report(tp_ctx *ctx, const struct tw_arg *a, uint32_t type, int kind,
          const char *text)
{
    struct tw_ev ev;

    if (a->j != NULL) {
        pthread_mutex_lock(&a->j->lock);
        if (a->j->n < TW_JOURNAL_MAX) {
            a->j->ev[a->j->n].type = type;
            a->j->ev[a->j->n].tag = a->tag;
            a->j->ev[a->j->n].kind = kind;
            a->j->n++;
        }
        pthread_mutex_unlock(&a->j->lock);
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.tag = a->tag;
    ev.kind = kind;
    ev.pid = tp_self(ctx);
    if (text != NULL)
        snprintf(ev.text, sizeof(ev.text), "%s", text);
    tp_send(ctx, a->probe, type, &ev, sizeof(ev));
}

static inline int
tw_init(tp_ctx *ctx, void *state, void *arg)
{
    struct tw_state *s = state;

    s->a = arg;
    if (s->a->init_err != 0)
        return s->a->init_err;
    if (atomic_load(&((struct tw_arg *)arg)->fail_inits) > 0) {
        atomic_fetch_sub(&((struct tw_arg *)arg)->fail_inits, 1);
        return -EIO;
    }
    if (s->a->trap || s->a->stubborn)
        tp_trap_exit(ctx, true);
    tw_report(ctx, s->a, EV_START, 0, NULL);
    return 0;
}

static inline void
tw_on_exit(tp_ctx *ctx, struct tw_state *s, const tp_msg *m)
{
    tp_exit_reason r;
    tp_pid from;

    if (tp_msg_exit(m, &from, &r) != 0 || s->a->stubborn)
        return;
    if (s->a->linger != 0) /* obeys later, without blocking a scheduler */
        tp_send_after(ctx, s->a->linger, tp_self(ctx), W_LINGER, &r.kind,
                      sizeof(r.kind), NULL);
    else
        tp_exit_with(ctx, &r);
}

static inline void
tw_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct tw_state *s = state;

    switch (m->type) {
    case TP_MSG_EXIT:
        tw_on_exit(ctx, s, m);
        break;
    case W_LINGER:
    case W_EXIT: {
        tp_exit_reason r = {*(const tp_exit_kind *)m->data, 0, "told to"};
        tp_exit_with(ctx, &r);
        break;
    }
    case W_CRASH:
        tp_fail(ctx, "worker %d crashed", s->a->tag);
        break;
    case W_PING:
        tw_report(ctx, s->a, EV_PONG, 0, NULL);
        break;
    default:
        break;
    }
}

static inline void
tw_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct tw_state *s = state;

    tw_report(ctx, s->a, EV_STOP, r->kind, r->text);
}

static const tp_behaviour tw_behaviour = {
    .name = "test_worker",
    .state_size = sizeof(struct tw_state),
    .init = tw_init,
    .handle = tw_handle,
    .terminate = tw_terminate,
};

/* Waits for the next event of any kind and checks it is (type, tag). */
static inline struct tw_ev
tw_expect(tpt_probe *p, uint32_t type, int tag)
{
    struct tw_ev ev;
    tpt_rec r;

    assert_int_equal(tpt_probe_wait(p, 0, 5000, &r), 0);
    if (r.type != type || ((const struct tw_ev *)r.data)->tag != tag)
        fail_msg("expected event %#x of worker %d, got %#x of worker %d", type,
                 tag, r.type, ((const struct tw_ev *)r.data)->tag);
    memcpy(&ev, r.data, sizeof(ev));
    return ev;
}

/* Next event of `type` (skipping none: any other event fails). */
static inline struct tw_ev
tw_expect_any(tpt_probe *p, uint32_t type)
{
    struct tw_ev ev;
    tpt_rec r;

    assert_int_equal(tpt_probe_wait(p, 0, 5000, &r), 0);
    if (r.type != type)
        fail_msg("expected event %#x, got %#x", type, r.type);
    memcpy(&ev, r.data, sizeof(ev));
    return ev;
}

/* Tells a worker to exit with kind. */
static inline void
tw_tell_exit(tp_runtime *rt, tp_pid w, tp_exit_kind kind)
{
    assert_int_equal(tp_runtime_send(rt, w, W_EXIT, &kind, sizeof(kind)), 0);
}

/* Fills args[0..n) for probe p, tags 0..n-1, and child specs named
 * "c<i>" with them. */
static inline void
tw_specs(tpt_probe *p, struct tw_arg *args, tp_child_spec *specs,
         char (*ids)[16], int n, tp_restart restart)
{
    for (int i = 0; i < n; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].probe = p != NULL ? tpt_probe_pid(p) : TP_PID_NONE;
        args[i].tag = i;
        snprintf(ids[i], sizeof(ids[i]), "c%d", i % 1000000);
        tp_child_spec_init(&specs[i], ids[i], &tw_behaviour, &args[i]);
        specs[i].restart = restart;
    }
}

/* Asserts the journal holds exactly these (type, tag, kind) in order
 * (kind -1 = any). */
static inline void
tw_journal_check(struct tw_journal *j, const int (*want)[3], int n)
{
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < n && i < j->n; i++) {
        if (j->ev[i].type != (uint32_t)want[i][0] ||
            j->ev[i].tag != want[i][1] ||
            (want[i][2] >= 0 && j->ev[i].kind != want[i][2]))
            fail_msg("journal[%d]: got (%#x, %d, %d), want (%#x, %d, %d)", i,
                     j->ev[i].type, j->ev[i].tag, j->ev[i].kind, want[i][0],
                     want[i][1], want[i][2]);
    }
    assert_int_equal(j->n, n);
    pthread_mutex_unlock(&j->lock);
}

static inline bool
tw_alive(tp_runtime *rt, tp_pid pid)
{
    tp_actor_info info;

    return tp_actor_peek(rt, pid, &info) == 0;
}

/* Waits until pid is gone (asserts within 5 s, scaled). */
static inline void
tw_wait_dead(tp_runtime *rt, tp_pid pid)
{
    for (unsigned i = 0; i < 5000 * tpt_slow() && tw_alive(rt, pid); i++)
        tpt_sleep_ms(1);
    assert_false(tw_alive(rt, pid));
}

static inline void
tw_do_monitor(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_monitor(ctx, *(tp_pid *)arg, NULL), 0);
}

/* The pid of the supervisor's child with this id (asserts it runs). */
static inline tp_pid
tw_child_pid(tp_runtime *rt, tp_pid sup, const char *id)
{
    tp_child_info info[64];
    size_t total = 0;

    assert_int_equal(tp_supervisor_which_children(rt, sup, info, 64, &total, 0),
                     0);
    for (size_t i = 0; i < total && i < 64; i++) {
        if (strcmp(info[i].id, id) == 0) {
            assert_true(info[i].running);
            return info[i].pid;
        }
    }
    fail_msg("no child %s", id);
    return TP_PID_NONE;
}

#endif
