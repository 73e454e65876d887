/*
 * bench/restart.c - crash+restart rate of a one_for_one supervisor.
 *
 * A one_for_one supervisor runs `children` permanent workers. Each worker,
 * once started, sends itself a message and crashes on it with tp_fail()
 * (a real crash: the handler is abandoned through the fault-trap path, the
 * actor dies, its EXIT reaches the supervisor, which restarts it). After
 * `restarts` restarts the new incarnations stay up, and the run is over.
 *
 *   restart [--restarts=200000] [--children=100] [--schedulers=0]
 *
 * Clock: read by main() just before the supervisor is spawned and by the
 * init of the last restarted worker (which runs inside the supervisor's
 * restart). Intensity: huge, in a 1000 ms window (the Erlang peer uses the
 * same, its shortest possible period). Check: the supervisor counted
 * exactly `restarts` restarts and all children run.
 *
 * Prints RESULT restart.per_s (restarts per second) and
 * RESULT restart.ns_per_restart.
 */
#include "benchutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define CRASH 1u

static uint64_t target;           /* restarts wanted */
static _Atomic uint64_t inits;    /* worker inits so far */
static _Atomic uint64_t t_end_ns; /* when the last restart's init ran */
static unsigned nchildren;

static int
worker_init(tp_ctx *ctx, void *state, void *arg)
{
    uint64_t n = atomic_fetch_add(&inits, 1) + 1;

    (void)state;
    (void)arg;
    if (n == nchildren + target)
        atomic_store(&t_end_ns, tp_now_ns());
    /* The first `target` incarnations crash: `target` restarts in all. */
    if (n <= target)
        return tp_send(ctx, tp_self(ctx), CRASH, NULL, 0);
    return 0;
}

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (m->type == CRASH)
        tp_fail(ctx, "crash");
}

static const tp_behaviour worker = {
    .name = "crasher",
    .init = worker_init,
    .handle = worker_handle,
};

int
main(int argc, char **argv)
{
    tp_runtime_options o;
    tp_child_spec *kids;
    tp_sup_spec spec;
    tp_sup_info info;
    tp_runtime *rt;
    tp_pid sup;
    uint64_t t0;
    char(*ids)[16];
    int ok = 1;

    target = (uint64_t)tpb_opt(argc, argv, "restarts", 200000);
    nchildren = (unsigned)tpb_opt(argc, argv, "children", 100);
    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 0);
    if (nchildren == 0 || tp_runtime_create(&rt, &o) != 0 ||
        tp_runtime_start(rt) != 0) {
        fprintf(stderr, "restart: cannot start\n");
        return 2;
    }
    kids = calloc(nchildren, sizeof(*kids));
    ids = calloc(nchildren, sizeof(*ids));
    for (unsigned i = 0; i < nchildren; i++) {
        snprintf(ids[i], sizeof(ids[i]), "w%u", i % 1000000);
        tp_child_spec_init(&kids[i], ids[i], &worker, NULL);
        kids[i].shutdown_ms = TP_SHUTDOWN_BRUTAL;
    }
    tp_sup_spec_init(&spec, TP_ONE_FOR_ONE);
    spec.intensity = UINT32_MAX;
    spec.period_ms = 1000;
    spec.children = kids;
    spec.nchildren = nchildren;

    t0 = tp_now_ns(); /* the clock the workers read too */
    if (tp_runtime_spawn(rt, &tp_supervisor_behaviour, &spec, NULL, &sup) !=
        0) {
        fprintf(stderr, "restart: supervisor did not start\n");
        return 2;
    }
    tp_runtime_wait_idle(rt, -1);
    if (tp_supervisor_info(rt, sup, &info, 10000) != 0 ||
        info.restarts != target || info.active != nchildren ||
        atomic_load(&t_end_ns) == 0) {
        printf("CHECK FAILED restart: got %llu restarts, %u active, want "
               "%llu, %u\n",
               (unsigned long long)info.restarts, info.active,
               (unsigned long long)target, nchildren);
        ok = 0;
    } else {
        double s = (double)(atomic_load(&t_end_ns) - t0) / 1e9;
        tpb_result("restart.per_s", (double)target / s, "restarts/s");
        tpb_result("restart.ns_per_restart", s * 1e9 / (double)target, "ns");
    }
    tp_runtime_destroy(rt);
    free(kids);
    free(ids);
    return ok ? 0 : 1;
}
