/*
 * bench/direct_idle.c - memory of idle direct-style actors parked in
 * tp_receive().
 *
 *   direct_idle [N] [--actors=100000] [--mode=copied|fixed (1|0)]
 *               [--schedulers=1]
 *
 * Spawns N direct actors from main (copied stacks by default) whose main
 * blocks in tp_receive(ctx, &m, -1), waits until the runtime is quiescent
 * (all parked), and reads the RSS: bytes per actor = (RSS after - RSS
 * before) / N. That includes the actor block (header, adapter, state), the
 * saved stack image, the pid array main keeps (8 B per actor), the pid
 * table and allocator slack. One actor then reports the size of its saved
 * stack image (tp_direct_stack_bytes).
 *
 * RESULT direct_idle.bytes_per_actor
 * RESULT direct_idle.stack_bytes      (one parked actor's saved image)
 * RESULT direct_idle.runtime_bytes_per_actor (actor blocks, runtime count)
 * RESULT direct_idle.ns_per_spawn
 */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>

static volatile uint64_t stack_bytes;

static void
idle_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;

    (void)state, (void)arg;
    if (tp_receive(ctx, &m, -1) == 0 && m->type == 2)
        stack_bytes = tp_direct_stack_bytes(ctx);
}

static const tp_direct idle = {TP_DIRECT_BEHAVIOUR("idle", 0),
                               .main = idle_main};

int
main(int argc, char **argv)
{
    tp_runtime_options o;
    tp_runtime *rt;
    tp_runtime_stats st0, st1;
    long n = tpb_opt(argc, argv, "actors", 100000);
    int copied = (int)tpb_opt(argc, argv, "mode", 1);
    tp_direct_opts dopts;
    tp_pid *pids;
    uint64_t rss0, rss1, a, b;

    if (argc > 1 && argv[1][0] != '-')
        n = strtol(argv[1], NULL, 10);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode=fixed") == 0)
            copied = 0;
        if (strcmp(argv[i], "--mode=copied") == 0)
            copied = 1;
    }
    if (n <= 0)
        return 2;
    dopts.stack = copied ? TP_STACK_COPIED : TP_STACK_FIXED;
    dopts.stack_size = copied ? 0 : 16 * 1024;
    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 1);
    o.pin = false;
    if (tp_runtime_create(&rt, &o) != 0 || tp_runtime_start(rt) != 0)
        return 1;
    pids = malloc(sizeof(*pids) * (size_t)n);
    if (pids == NULL)
        return 1;
    /* One actor first: the shared stack and the pools exist before the
     * measured run. */
    if (tp_runtime_spawn_direct(rt, &idle, NULL, NULL, &dopts, &pids[0]) != 0)
        return 1;
    tp_runtime_wait_idle(rt, -1);
    tp_runtime_get_stats(rt, &st0);
    rss0 = tpb_rss();
    a = tpb_now_ns();
    for (long i = 0; i < n; i++) {
        if (tp_runtime_spawn_direct(rt, &idle, NULL, NULL, &dopts, &pids[i]) !=
            0) {
            fprintf(stderr, "spawn %ld failed\n", i);
            return 1;
        }
    }
    b = tpb_now_ns();
    tp_runtime_wait_idle(rt, -1);
    rss1 = tpb_rss();
    tp_runtime_get_stats(rt, &st1);
    /* The first of the measured actors, woken with type 2, reports its
     * saved stack image. */
    tp_runtime_send(rt, pids[0], 2, NULL, 0);
    tp_runtime_wait_idle(rt, -1);
    printf("# %ld direct actors, %s stacks, RSS %.1f -> %.1f MiB\n", n,
           copied ? "copied" : "fixed", (double)rss0 / 1048576.0,
           (double)rss1 / 1048576.0);
    tpb_result("direct_idle.bytes_per_actor", (double)(rss1 - rss0) / (double)n,
               "B");
    tpb_result("direct_idle.stack_bytes", (double)stack_bytes, "B");
    tpb_result("direct_idle.runtime_bytes_per_actor",
               (double)(st1.actor_bytes - st0.actor_bytes) / (double)n, "B");
    tpb_result("direct_idle.ns_per_spawn", (double)(b - a) / (double)n, "ns");
    tp_runtime_destroy(rt);
    free(pids);
    return 0;
}
