/*
 * bench/ring.c - a token passed around a ring of actors (the "thread ring"
 * benchmark).
 *
 *   ring [--actors=503] [--hops=10000000] [--schedulers=N]
 *
 * A coordinator spawns the members, each knowing the next one, closes the
 * ring, then hands member 0 a token holding the number of hops left. A
 * member that gets token t > 0 passes t - 1 to its successor; the one that
 * gets 0 tells the coordinator its index. Only one message is ever in
 * flight, so this measures the latency of one hop (send, wake the next
 * actor, schedule it, handle) with the working set of 503 actors rather
 * than 2. Check: the member that ends is hops mod actors.
 *
 * RESULT ring.ns_per_hop
 */
#include "benchutil.h"
#include "core_common.h"

#include <stdio.h>
#include <stdlib.h>

enum { M_GO = 1, M_NEXT, M_TOKEN, M_DONE };

struct member_arg {
    tp_pid next, coord;
    uint32_t id;
};

struct member {
    tp_pid next, coord;
    uint32_t id;
};

struct coord {
    uint64_t hops, t0;
};

struct go {
    uint64_t actors, hops;
};

static struct tpc_result result;

static int
member_init(tp_ctx *ctx, void *state, void *arg)
{
    struct member *m = state;
    const struct member_arg *a = arg;

    m->next = a->next;
    m->coord = a->coord;
    m->id = a->id;
    return 0;
}

static void
member_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct member *m = state;
    uint64_t t;

    if (msg->type == M_NEXT) {
        m->next = *(const tp_pid *)msg->data;
        return;
    }
    t = *(const uint64_t *)msg->data;
    if (t == 0) {
        tp_send(ctx, m->coord, M_DONE, &m->id, sizeof(m->id));
        return;
    }
    t--;
    tp_send(ctx, m->next, M_TOKEN, &t, sizeof(t));
}

static const tp_behaviour member_b = {.name = "ring_member",
                                      .state_size = sizeof(struct member),
                                      .init = member_init,
                                      .handle = member_handle};

/* Spawns members n-1 .. 0, each pointing at the one spawned before it,
 * then points member n-1 at member 0. Returns member 0. */
static tp_pid
build_ring(tp_ctx *ctx, uint32_t n)
{
    struct member_arg a = {TP_PID_NONE, tp_self(ctx), 0};
    tp_pid last = TP_PID_NONE, p = TP_PID_NONE;

    for (uint32_t i = n; i-- > 0;) {
        a.id = i;
        if (tp_spawn(ctx, &member_b, &a, NULL, &p) != 0)
            tp_fail(ctx, "cannot spawn ring member %u", i);
        if (last == TP_PID_NONE)
            last = p;
        a.next = p;
    }
    tp_send(ctx, last, M_NEXT, &p, sizeof(p));
    return p;
}

static void
coord_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct coord *c = state;

    if (m->type == M_GO) {
        const struct go *g = m->data;
        tp_pid first = build_ring(ctx, (uint32_t)g->actors);

        c->hops = g->hops;
        c->t0 = tp_now_ns();
        tp_send(ctx, first, M_TOKEN, &c->hops, sizeof(c->hops));
    } else if (m->type == M_DONE) {
        tpc_publish(&result, c->t0, tp_now_ns(), *(const uint32_t *)m->data);
    }
}

static const tp_behaviour coord_b = {.name = "ring_coord",
                                     .state_size = sizeof(struct coord),
                                     .handle = coord_handle};

int
main(int argc, char **argv)
{
    struct go g = {(uint64_t)tpb_opt(argc, argv, "actors", 503),
                   (uint64_t)tpb_opt(argc, argv, "hops", 10000000)};
    tp_runtime *rt = tpc_runtime(argc, argv);
    tp_pid coord;
    bool ok;

    if (g.actors < 1 || g.actors > 10000000 || g.hops < 1 ||
        tp_runtime_spawn(rt, &coord_b, NULL, NULL, &coord) ||
        tp_runtime_send(rt, coord, M_GO, &g, sizeof(g)))
        return tpc_finish(rt, false);
    ok = tpc_wait(rt, &result, 300);
    if (ok) {
        tpb_result("ring.ns_per_hop",
                   (double)(result.t1_ns - result.t0_ns) / (double)g.hops,
                   "ns");
        ok = tpc_check("ring.last_member", result.value, g.hops % g.actors);
    }
    tpc_sched_stats(rt, argc, argv);
    return tpc_finish(rt, ok);
}
