/*
 * bench/spawn_idle.c - spawn a million actors that wait for a message that
 * never comes: the cost of an idle actor in memory and of a spawn in time.
 *
 *   spawn_idle [--actors=1000000] [--chunk=10000] [--warm=0|1]
 *              [--schedulers=N]
 *
 * A coordinator actor spawns the actors (as an Erlang process would) and
 * keeps their pids in an array, `chunk` spawns per turn, continuing through
 * a message to itself so no turn holds the scheduler for long. It reads the
 * clock before the first spawn and after the last. main() then waits until
 * the runtime is quiescent, with every actor alive and idle, and reads the
 * RSS; bytes per actor = (RSS now - RSS before the run) / actors. That
 * delta includes the 8-byte pid the coordinator keeps per actor (Erlang's
 * list of pids and Go's slice of channels are counted the same way), the
 * pid table and allocator slack: everything an idle actor costs the
 * process. Check: the runtime counts `actors` + 1 live actors.
 *
 * --warm=1 then stops them all and spawns as many again, into the memory the
 * dead ones left (no page faults): the difference between the two spawn
 * figures is what first-touch page faults cost.
 *
 * RESULT spawn_idle.bytes_per_actor
 * RESULT spawn_idle.ns_per_spawn
 * RESULT spawn_idle.runtime_bytes_per_actor (the runtime's own count)
 * RESULT spawn_idle.rss_mb
 * RESULT spawn_idle.ns_per_spawn_warm      (--warm=1 only)
 */
#include "benchutil.h"
#include "core_common.h"

#include <stdio.h>
#include <stdlib.h>

enum { M_GO = 1, M_CONT, M_STOP, M_STOP_ALL };

struct go {
    uint64_t actors, chunk;
};

struct coord {
    struct go g;
    tp_pid *pids;
    uint64_t spawned, t0;
};

static struct tpc_result result, warm;
/* Where the coordinator publishes: main() switches it to &warm before it
 * sends the message that starts the second run (the send orders it). */
static struct tpc_result *current = &result;

static void
idle_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == M_STOP)
        tp_exit(ctx);
}

static const tp_behaviour idle_b = {.name = "idle", .handle = idle_handle};

static void
spawn_chunk(tp_ctx *ctx, struct coord *c)
{
    uint64_t end = c->spawned + c->g.chunk;

    if (end > c->g.actors)
        end = c->g.actors;
    for (; c->spawned < end; c->spawned++) {
        if (tp_spawn(ctx, &idle_b, NULL, NULL, &c->pids[c->spawned]) != 0)
            tp_fail(ctx, "spawn %llu failed", (unsigned long long)c->spawned);
    }
}

/* Stops the newest `chunk` actors; continues through a message to itself
 * until none is left (--warm). */
static void
stop_chunk(tp_ctx *ctx, struct coord *c)
{
    for (uint64_t n = 0; n < c->g.chunk && c->spawned > 0; n++)
        tp_send(ctx, c->pids[--c->spawned], M_STOP, NULL, 0);
    if (c->spawned > 0)
        tp_send(ctx, tp_self(ctx), M_STOP_ALL, NULL, 0);
}

static void
coord_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct coord *c = state;

    if (m->type == M_STOP_ALL) {
        stop_chunk(ctx, c);
        return;
    }
    if (m->type == M_GO) {
        c->g = *(const struct go *)m->data;
        if (c->pids == NULL)
            c->pids = malloc(c->g.actors * sizeof(tp_pid));
        if (c->pids == NULL)
            tp_fail(ctx, "no memory for the pids");
        c->t0 = tp_now_ns();
    }
    spawn_chunk(ctx, c);
    if (c->spawned < c->g.actors)
        tp_send(ctx, tp_self(ctx), M_CONT, NULL, 0);
    else
        tpc_publish(current, c->t0, tp_now_ns(), c->spawned);
}

static void
coord_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    free(((struct coord *)state)->pids);
}

static const tp_behaviour coord_b = {.name = "spawn_coord",
                                     .state_size = sizeof(struct coord),
                                     .handle = coord_handle,
                                     .terminate = coord_terminate};

static void
report(tp_runtime *rt, const struct go *g, uint64_t rss0)
{
    uint64_t rss1 = tpb_rss();
    tp_runtime_stats st;
    double n = (double)g->actors;

    tp_runtime_get_stats(rt, &st);
    tpb_result("spawn_idle.bytes_per_actor", (double)(int64_t)(rss1 - rss0) / n,
               "B");
    tpb_result("spawn_idle.ns_per_spawn",
               (double)(result.t1_ns - result.t0_ns) / n, "ns");
    tpb_result("spawn_idle.runtime_bytes_per_actor",
               (double)st.actor_bytes / (double)st.actors, "B");
    tpb_result("spawn_idle.rss_mb", (double)rss1 / 1048576.0, "MB");
}

/* Stops every idle actor, then spawns as many again (see --warm). */
static bool
respawn(tp_runtime *rt, tp_pid coord, const struct go *g)
{
    current = &warm;
    if (tp_runtime_send(rt, coord, M_STOP_ALL, NULL, 0) ||
        tp_runtime_wait_idle(rt, 60000) ||
        tp_runtime_send(rt, coord, M_GO, g, sizeof(*g)) ||
        !tpc_wait(rt, &warm, 300))
        return false;
    tpb_result("spawn_idle.ns_per_spawn_warm",
               (double)(warm.t1_ns - warm.t0_ns) / (double)g->actors, "ns");
    return true;
}

int
main(int argc, char **argv)
{
    struct go g = {(uint64_t)tpb_opt(argc, argv, "actors", 1000000),
                   (uint64_t)tpb_opt(argc, argv, "chunk", 10000)};
    tp_runtime *rt = tpc_runtime(argc, argv);
    tp_runtime_stats st;
    uint64_t rss0;
    tp_pid coord;
    bool ok;

    if (g.actors < 1 || g.chunk < 1 ||
        tp_runtime_spawn(rt, &coord_b, NULL, NULL, &coord) ||
        tp_runtime_wait_idle(rt, 10000))
        return tpc_finish(rt, false);
    rss0 = tpb_rss();
    if (tp_runtime_send(rt, coord, M_GO, &g, sizeof(g)))
        return tpc_finish(rt, false);
    ok = tpc_wait(rt, &result, 300);
    if (ok) {
        report(rt, &g, rss0);
        tp_runtime_get_stats(rt, &st);
        ok = tpc_check("spawn_idle.live_actors", st.actors, g.actors + 1);
    }
    if (ok && tpb_opt(argc, argv, "warm", 0) != 0)
        ok = respawn(rt, coord, &g);
    tpc_sched_stats(rt, argc, argv);
    return tpc_finish(rt, ok);
}
