/*
 * tests/test_sup_chaos.c - 1,000 supervised workers (a top supervisor over
 * 10 supervisors of 100 workers) process a steady stream of messages while
 * a chaos actor crashes random workers (tp_fail and kill) for 10 seconds
 * (TP_TEST_SCALE scales the duration).
 *
 * Checked at the end: nothing hangs; every death was restarted and counted
 * (per child, per supervisor, against the workers' own init count and the
 * runtime's crash count); the tree is intact (same supervisors, 1,000
 * running workers); and no message sent to a worker that stayed alive was
 * lost: each incarnation checks its sequence numbers have no gap, and its
 * final count equals what the sender sent it. Leaks are ASan/LSan's job.
 */
#include "common/common.h"
#include "test_sup_common.h"

#include <stdlib.h>

#define MIDS    10
#define PER_MID 100
#define WORKERS (MIDS * PER_MID)
#define BATCH   250 /* messages per sender tick (1 ms) */
#define KILLS   2   /* crashes per chaos tick (1 ms) */

enum { C_WORK = 0x500, C_CRASH, C_COUNT, C_TICK, C_STOP };

static _Atomic uint64_t inits; /* worker incarnations started */
static _Atomic uint64_t gaps;  /* sequence gaps seen by live workers */

/* ---------------------------------------------------------------------- */
/* Workers                                                                */

struct worker {
    uint64_t expect; /* next sequence number from the sender */
};

static int
worker_init(tp_ctx *ctx, void *state, void *arg)
{
    atomic_fetch_add(&inits, 1);
    return 0;
}

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct worker *w = state;
    uint64_t seq;

    switch (m->type) {
    case C_WORK:
        memcpy(&seq, m->data, sizeof(seq));
        if (seq != w->expect)
            atomic_fetch_add(&gaps, 1);
        w->expect = seq + 1;
        break;
    case C_CRASH:
        tp_fail(ctx, "chaos");
        break;
    case C_COUNT:
        tp_reply(ctx, m, &w->expect, sizeof(w->expect));
        break;
    default:
        break;
    }
}

static const tp_behaviour worker = {
    .name = "chaos_worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .handle = worker_handle,
};

/* ---------------------------------------------------------------------- */
/* Sender and chaos: interval-driven actors                               */

/* What the sender sent to each worker's current incarnation; copied out
 * under the lock when the sender stops. */
struct ledger {
    pthread_mutex_t lock;
    bool final;
    tp_pid pid[WORKERS];
    uint64_t sent[WORKERS];
};

struct pumper {
    struct ledger *out;
    uint64_t rng;
    uint64_t injected;
    tp_pid pid[WORKERS];
    uint64_t sent[WORKERS];
};

static tp_pid
worker_pid(tp_ctx *ctx, unsigned i)
{
    char name[16];

    snprintf(name, sizeof(name), "cw%u", i % 10000);
    return tp_whereis(tp_ctx_runtime(ctx), name);
}

static int
pumper_init(tp_ctx *ctx, void *state, void *arg)
{
    struct pumper *p = state;

    p->out = arg;
    p->rng = tp__hash64(tp_self(ctx)) | 1;
    return tp_send_after(ctx, 1, tp_self(ctx), C_TICK, NULL, 0, NULL);
}

/* Re-armed after each tick (not an interval): a slow (sanitized) build
 * does less work per second instead of piling up ticks. */
static void
next_tick(tp_ctx *ctx)
{
    TPT_CHECK_INT_EQ(tp_send_after(ctx, 1, tp_self(ctx), C_TICK, NULL, 0, NULL),
                     0);
}

static void
send_work(tp_ctx *ctx, struct pumper *p)
{
    for (int k = 0; k < BATCH; k++) {
        unsigned i = (unsigned)(tp__rand_next(&p->rng) % WORKERS);
        tp_pid to = worker_pid(ctx, i);
        if (to == TP_PID_NONE)
            continue;
        if (to != p->pid[i]) { /* a new incarnation starts at 0 */
            p->pid[i] = to;
            p->sent[i] = 0;
        }
        if (tp_send(ctx, to, C_WORK, &p->sent[i], sizeof(uint64_t)) == 0)
            p->sent[i]++;
    }
}

static void
sender_stop(tp_ctx *ctx, struct pumper *p)
{
    pthread_mutex_lock(&p->out->lock);
    memcpy(p->out->pid, p->pid, sizeof(p->pid));
    memcpy(p->out->sent, p->sent, sizeof(p->sent));
    p->out->final = true;
    pthread_mutex_unlock(&p->out->lock);
    tp_exit(ctx);
}

static void
sender_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == C_TICK) {
        send_work(ctx, state);
        next_tick(ctx);
    } else if (m->type == C_STOP)
        sender_stop(ctx, state);
}

static const tp_behaviour sender = {
    .name = "chaos_sender",
    .state_size = sizeof(struct pumper),
    .init = pumper_init,
    .handle = sender_handle,
};

static void
crash_some(tp_ctx *ctx, struct pumper *p)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "chaos"};

    for (int k = 0; k < KILLS; k++) {
        uint64_t r = tp__rand_next(&p->rng);
        tp_pid to = worker_pid(ctx, (unsigned)(r % WORKERS));
        int err;
        if (to == TP_PID_NONE)
            continue;
        err = (r >> 32) & 1 ? tp_send(ctx, to, C_CRASH, NULL, 0)
                            : tp_exit_pid(ctx, to, &kill);
        p->injected += err == 0;
    }
}

static void
chaos_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct pumper *p = state;

    if (m->type == C_TICK) {
        crash_some(ctx, p);
        next_tick(ctx);
    } else if (m->type == C_STOP) {
        pthread_mutex_lock(&p->out->lock);
        p->out->sent[0] = p->injected;
        p->out->final = true;
        pthread_mutex_unlock(&p->out->lock);
        tp_exit(ctx);
    }
}

static const tp_behaviour chaos = {
    .name = "chaos",
    .state_size = sizeof(struct pumper),
    .init = pumper_init,
    .handle = chaos_handle,
};

/* ---------------------------------------------------------------------- */
/* The tree                                                               */

struct tree {
    char ids[WORKERS][16];
    char names[WORKERS][16];
    char mid_ids[MIDS][16];
    tp_child_spec workers[WORKERS];
    tp_child_spec mids[MIDS];
    tp_sup_spec mid_spec[MIDS];
    tp_sup_spec top;
};

static void
tree_init(struct tree *t)
{
    for (unsigned i = 0; i < WORKERS; i++) {
        snprintf(t->ids[i], sizeof(t->ids[i]), "w%u", i % 10000);
        snprintf(t->names[i], sizeof(t->names[i]), "cw%u", i % 10000);
        tp_child_spec_init(&t->workers[i], t->ids[i], &worker, NULL);
        t->workers[i].opts.name = t->names[i];
        t->workers[i].shutdown_ms = TP_SHUTDOWN_BRUTAL;
    }
    for (unsigned m = 0; m < MIDS; m++) {
        tp_sup_spec_init(&t->mid_spec[m], TP_ONE_FOR_ONE);
        t->mid_spec[m].intensity = 1000000;
        t->mid_spec[m].period_ms = 1000;
        t->mid_spec[m].children = &t->workers[m * PER_MID];
        t->mid_spec[m].nchildren = PER_MID;
        snprintf(t->mid_ids[m], sizeof(t->mid_ids[m]), "mid%u", m % 100);
        tp_child_spec_init(&t->mids[m], t->mid_ids[m], &tp_supervisor_behaviour,
                           &t->mid_spec[m]);
    }
    tp_sup_spec_init(&t->top, TP_ONE_FOR_ONE);
    t->top.children = t->mids;
    t->top.nchildren = MIDS;
}

/* Checks one mid supervisor; returns its restarts. */
static uint64_t
check_mid(tp_runtime *rt, tp_pid mid, struct ledger *l, unsigned *matched)
{
    tp_child_info info[PER_MID];
    tp_sup_info si;
    uint64_t sum = 0, got;
    size_t total, len;

    assert_int_equal(tp_supervisor_info(rt, mid, &si, 10000), 0);
    assert_int_equal(si.active, PER_MID);
    assert_int_equal(
        tp_supervisor_which_children(rt, mid, info, PER_MID, &total, 10000), 0);
    assert_int_equal(total, PER_MID);
    for (unsigned i = 0; i < PER_MID; i++) {
        unsigned w = (unsigned)atoi(info[i].id + 1);
        assert_true(info[i].running && tw_alive(rt, info[i].pid));
        sum += info[i].restarts;
        if (l->pid[w] != info[i].pid)
            continue; /* restarted after the sender's last message */
        assert_int_equal(tp_runtime_call(rt, info[i].pid, C_COUNT, NULL, 0,
                                         &got, sizeof(got), &len, 10000),
                         0);
        assert_int_equal(got, l->sent[w]); /* nothing lost */
        (*matched)++;
    }
    assert_int_equal(sum, si.restarts);
    return si.restarts;
}

static void
dump_stuck(tp_runtime *rt, tp_pid pid)
{
    tp_sched_stats ss[4];
    tp_actor_info ai;
    unsigned n = tp_runtime_get_sched_stats(rt, ss, 4);

    if (tp_actor_peek(rt, pid, &ai) == 0)
        print_error("stuck actor %s: mailbox %lu handled %lu sched %d\n",
                    ai.behaviour, (unsigned long)ai.mailbox,
                    (unsigned long)ai.handled, ai.scheduler);
    for (unsigned i = 0; i < n && i < 4; i++)
        print_error("sched %u: runq %u sleeping %d turns %lu sleeps %lu "
                    "wakeups %lu\n",
                    i, ss[i].runq_len, ss[i].sleeping,
                    (unsigned long)ss[i].turns, (unsigned long)ss[i].sleeps,
                    (unsigned long)ss[i].wakeups);
}

static void
stop_actor(tp_runtime *rt, tp_pid pid, struct ledger *l)
{
    assert_int_equal(tp_runtime_send(rt, pid, C_STOP, NULL, 0), 0);
    for (unsigned i = 0; i < 5000 * tpt_slow() && tw_alive(rt, pid); i++)
        tpt_sleep_ms(1);
    if (tw_alive(rt, pid)) {
        dump_stuck(rt, pid); /* what the schedulers were doing */
        fail_msg("actor did not stop");
    }
    pthread_mutex_lock(&l->lock);
    assert_true(l->final);
    pthread_mutex_unlock(&l->lock);
}

static void
test_chaos_tree_survives_random_crashes(void **state)
{
    static struct tree t;
    static struct ledger sent = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static struct ledger injected = {.lock = PTHREAD_MUTEX_INITIALIZER};
    unsigned secs = (unsigned)(10 * tpt_scale() + 0.5), matched = 0;
    tp_runtime *rt = tpt_runtime(2);
    tp_child_info mids[MIDS];
    tp_runtime_stats st;
    tp_sup_info top_info;
    uint64_t restarts = 0;
    tp_pid top, snd, cha;
    size_t total;

    tree_init(&t);
    assert_int_equal(tp_runtime_supervisor_start(rt, "chaos", &t.top, &top), 0);
    assert_int_equal(atomic_load(&inits), WORKERS);
    assert_int_equal(
        tp_supervisor_which_children(rt, top, mids, MIDS, &total, 0), 0);
    assert_int_equal(tp_runtime_spawn(rt, &sender, &sent, NULL, &snd), 0);
    assert_int_equal(tp_runtime_spawn(rt, &chaos, &injected, NULL, &cha), 0);
    tpt_sleep_ms(1000 * (secs > 0 ? secs : 1));
    stop_actor(rt, cha, &injected);
    stop_actor(rt, snd, &sent);
    tpt_idle(rt);

    /* The tree: the same 10 supervisors, none restarted. */
    for (unsigned m = 0; m < MIDS; m++) {
        assert_int_equal(tw_child_pid(rt, top, mids[m].id), mids[m].pid);
        restarts += check_mid(rt, mids[m].pid, &sent, &matched);
    }
    assert_int_equal(tp_supervisor_info(rt, top, &top_info, 0), 0);
    assert_int_equal(top_info.restarts, 0);
    assert_int_equal(top_info.active, MIDS);
    /* Every death restarted and counted, by every count. */
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(atomic_load(&inits), WORKERS + restarts);
    assert_int_equal(st.crashed, restarts);
    assert_int_equal(atomic_load(&gaps), 0);
    print_message("chaos: %u s, %lu crashes injected, %lu restarts, %lu "
                  "messages handled, %u live workers checked\n",
                  secs, (unsigned long)injected.sent[0],
                  (unsigned long)restarts, (unsigned long)st.messages, matched);
    assert_true(restarts > 100 * (secs > 0 ? secs : 1) / tpt_slow());
    assert_true(injected.sent[0] >= restarts);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_tree_survives_random_crashes),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
