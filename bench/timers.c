/*
 * bench/timers.c - the cost of timers: arming and cancelling, and memory
 * per armed timer.
 *
 *   timers [--pairs=2000000] [--armed=1000000] [--schedulers=2]
 *
 * One actor does everything, in chunks of at most CHUNK timers per message
 * (so no handler runs long):
 *  1. `pairs` times: tp_send_after(1000 ms, to itself) then
 *     tp_cancel_timer() of it (checked: the cancel must win);
 *  2. arms `armed` one-shot timers due in an hour (handles not kept: they
 *     are cancelled when the actor dies), and main reads the process RSS
 *     before and after. The figure includes everything an armed timer
 *     costs: its wheel entry, its prepared message and the owner's
 *     bookkeeping.
 * Erlang's peer does the same with erlang:send_after/3 and
 * erlang:cancel_timer/1 (bench/peers/erlang/reqreply.erl).
 *
 * RESULT timers.ns_arm_cancel    per arm + cancel pair
 * RESULT timers.ns_arm           per timer while arming `armed` of them
 * RESULT timers.bytes_per_timer  RSS delta / `armed`
 */
#include "benchutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define CHUNK 20000u
#define TICK  0x7100u /* the timers' message type (never delivered) */

enum { M_PAIRS = 1, M_ARM };

struct job {
    uint64_t n, done, t0, errors;
};

struct keeper {
    struct job pairs, arm;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    uint64_t ns, errors;
} result = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};

static void
publish(const struct job *j)
{
    pthread_mutex_lock(&result.lock);
    result.ns = tp_now_ns() - j->t0;
    result.errors = j->errors;
    result.done = true;
    pthread_cond_signal(&result.cond);
    pthread_mutex_unlock(&result.lock);
}

/* Runs the next chunk of a job; returns true when the job is complete. */
static bool
chunk(tp_ctx *ctx, struct job *j, uint32_t type, bool cancel)
{
    uint64_t end = j->done + CHUNK < j->n ? j->done + CHUNK : j->n;
    tp_timer t;

    if (j->done == 0)
        j->t0 = tp_now_ns();
    for (; j->done < end; j->done++) {
        if (tp_send_after(ctx, cancel ? 1000 : 3600000, tp_self(ctx), TICK,
                          NULL, 0, cancel ? &t : NULL) != 0 ||
            (cancel && tp_cancel_timer(ctx, t) != 1))
            j->errors++;
    }
    if (j->done < j->n) {
        tp_send(ctx, tp_self(ctx), type, NULL, 0); /* next chunk */
        return false;
    }
    return true;
}

static void
keeper_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct keeper *k = state;
    struct job *j = m->type == M_PAIRS ? &k->pairs : &k->arm;

    if (m->type == TICK) {
        k->arm.errors++; /* no timer may fire during the run */
        return;
    }
    if (m->len == sizeof(uint64_t)) { /* start */
        j->n = *(const uint64_t *)m->data;
        j->done = 0;
    }
    if (chunk(ctx, j, m->type, m->type == M_PAIRS))
        publish(j);
}

static const tp_behaviour keeper = {.name = "timekeeper",
                                    .state_size = sizeof(struct keeper),
                                    .handle = keeper_handle};

static bool
run(tp_runtime *rt, tp_pid pid, uint32_t type, uint64_t n)
{
    struct timespec ts;
    bool done;

    if (tp_runtime_send(rt, pid, type, &n, sizeof(n)) != 0)
        return false;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 300;
    pthread_mutex_lock(&result.lock);
    while (!result.done &&
           pthread_cond_timedwait(&result.cond, &result.lock, &ts) == 0)
        ;
    done = result.done && result.errors == 0;
    if (result.errors != 0)
        fprintf(stderr, "timers: %llu errors\n",
                (unsigned long long)result.errors);
    result.done = false;
    pthread_mutex_unlock(&result.lock);
    return done;
}

int
main(int argc, char **argv)
{
    uint64_t pairs = (uint64_t)tpb_opt(argc, argv, "pairs", 2000000);
    uint64_t armed = (uint64_t)tpb_opt(argc, argv, "armed", 1000000);
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_runtime_options opts;
    tp_runtime *rt;
    uint64_t rss0;
    tp_pid pid;
    bool ok;

    tp_runtime_options_init(&opts);
    opts.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 2);
    if (pairs == 0 || armed == 0 || tp_runtime_create(&rt, &opts) != 0 ||
        tp_runtime_start(rt) != 0 ||
        tp_runtime_spawn(rt, &keeper, NULL, NULL, &pid) != 0) {
        fprintf(stderr, "timers: bad options or runtime start failed\n");
        return 1;
    }
    ok = run(rt, pid, M_PAIRS, pairs);
    if (ok)
        tpb_result("timers.ns_arm_cancel", (double)result.ns / (double)pairs,
                   "ns");
    rss0 = tpb_rss();
    ok = ok && run(rt, pid, M_ARM, armed);
    if (ok) {
        tpb_result("timers.ns_arm", (double)result.ns / (double)armed, "ns");
        tpb_result("timers.bytes_per_timer",
                   (double)(tpb_rss() - rss0) / (double)armed, "B");
    }
    ok = ok && tp_runtime_timers(rt) >= armed;
    tp_runtime_exit_pid(rt, pid, &kill); /* cancels what it armed */
    ok = tp_runtime_wait_idle(rt, 60000) == 0 && ok;
    tp_runtime_stop(rt);
    tp_runtime_destroy(rt);
    return ok ? 0 : 1;
}
