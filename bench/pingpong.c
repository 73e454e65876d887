/*
 * bench/pingpong.c - two actors bounce one message back and forth.
 *
 *   pingpong [--trips=1000000] [--schedulers=N]
 *
 * The pinger spawns the ponger (Erlang's spawn from inside a process), then
 * sends PING n and waits for PONG n before it sends PING n+1: one message in
 * flight, so the figure is latency (send, wake, schedule, handle), not
 * throughput. The pinger reads the clock at the first PING and the last
 * PONG. Checks: every PONG echoes the counter just sent, and the ponger saw
 * exactly `trips` pings.
 *
 * RESULT pingpong.ns_one_way     (round trip / 2, the budgeted figure)
 * RESULT pingpong.ns_round_trip
 */
#include "benchutil.h"
#include "core_common.h"

#include <stdio.h>
#include <stdlib.h>

enum { M_GO = 1, M_PING, M_PONG, M_STOP };

struct pinger {
    tp_pid ponger;
    uint64_t trips, next, errors, t0;
};

struct ponger {
    uint64_t pings;
};

static struct tpc_result result;
static uint64_t pings_seen; /* written by the ponger at M_STOP */

static void
ponger_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct ponger *p = state;

    if (m->type == M_STOP) {
        pings_seen = p->pings;
        tp_exit(ctx);
        return;
    }
    p->pings++;
    tp_send(ctx, m->from, M_PONG, m->data, m->len);
}

static const tp_behaviour ponger_b = {.name = "ponger",
                                      .state_size = sizeof(struct ponger),
                                      .handle = ponger_handle};

static void
pinger_go(tp_ctx *ctx, struct pinger *p)
{
    if (tp_spawn(ctx, &ponger_b, NULL, NULL, &p->ponger) != 0)
        tp_fail(ctx, "cannot spawn the ponger");
    p->next = 0;
    p->t0 = tp_now_ns();
    tp_send(ctx, p->ponger, M_PING, &p->next, sizeof(p->next));
}

static void
pinger_pong(tp_ctx *ctx, struct pinger *p, const tp_msg *m)
{
    uint64_t n = *(const uint64_t *)m->data;

    if (n != p->next)
        p->errors++;
    if (++p->next < p->trips) {
        tp_send(ctx, p->ponger, M_PING, &p->next, sizeof(p->next));
        return;
    }
    /* The ponger answers M_STOP before it exits; wait_idle covers it. */
    tpc_publish(&result, p->t0, tp_now_ns(), p->errors);
    tp_send(ctx, p->ponger, M_STOP, NULL, 0);
    tp_exit(ctx);
}

static void
pinger_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct pinger *p = state;

    if (m->type == M_GO) {
        p->trips = *(const uint64_t *)m->data;
        pinger_go(ctx, p);
    } else if (m->type == M_PONG) {
        pinger_pong(ctx, p, m);
    }
}

static const tp_behaviour pinger_b = {.name = "pinger",
                                      .state_size = sizeof(struct pinger),
                                      .handle = pinger_handle};

int
main(int argc, char **argv)
{
    uint64_t trips = (uint64_t)tpb_opt(argc, argv, "trips", 1000000);
    tp_runtime *rt = tpc_runtime(argc, argv);
    tp_pid pinger;
    bool ok;
    double ns;

    if (trips == 0 || tp_runtime_spawn(rt, &pinger_b, NULL, NULL, &pinger) ||
        tp_runtime_send(rt, pinger, M_GO, &trips, sizeof(trips)))
        return tpc_finish(rt, false);
    ok = tpc_wait(rt, &result, 120);
    if (ok) {
        ns = (double)(result.t1_ns - result.t0_ns) / (double)trips;
        tpb_result("pingpong.ns_one_way", ns / 2, "ns");
        tpb_result("pingpong.ns_round_trip", ns, "ns");
        ok = tpc_check("pingpong.order_errors", result.value, 0) &&
             tpc_check("pingpong.pings", pings_seen, trips);
    }
    tpc_sched_stats(rt, argc, argv);
    return tpc_finish(rt, ok);
}
