/*
 * bench/core_common.c - see core_common.h.
 */
#include "core_common.h"

#include "benchutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

tp_runtime *
tpc_runtime(int argc, char **argv)
{
    tp_runtime_options o;
    tp_runtime *rt;
    long n = tpb_opt(argc, argv, "schedulers", 0);
    int err;

    if (n < 0 || n > 256) {
        fprintf(stderr, "--schedulers must be 0..256\n");
        exit(2);
    }
    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)n;
    err = tp_runtime_create(&rt, &o);
    if (err == 0 && (err = tp_runtime_start(rt)) != 0)
        tp_runtime_destroy(rt);
    if (err != 0) {
        fprintf(stderr, "runtime: %s\n", tp_strerror(err));
        exit(1);
    }
    return rt;
}

void
tpc_publish(struct tpc_result *r, uint64_t t0, uint64_t t1, uint64_t value)
{
    r->t0_ns = t0;
    r->t1_ns = t1;
    r->value = value;
    /* release: the figures above before the flag main() acquires. */
    atomic_store_explicit(&r->done, true, memory_order_release);
}

bool
tpc_wait(tp_runtime *rt, struct tpc_result *r, long timeout_s)
{
    int err = tp_runtime_wait_idle(rt, (int64_t)timeout_s * 1000);

    if (err != 0) {
        fprintf(stderr, "not idle after %ld s: %s\n", timeout_s,
                tp_strerror(err));
        return false;
    }
    if (!atomic_load_explicit(&r->done, memory_order_acquire)) {
        fprintf(stderr, "runtime idle but the run never finished\n");
        return false;
    }
    return true;
}

void
tpc_sched_stats(tp_runtime *rt, int argc, char **argv)
{
    tp_sched_stats st[256];
    unsigned n;

    if (tpb_opt(argc, argv, "stats", 0) == 0)
        return;
    n = tp_runtime_get_sched_stats(rt, st, 256);
    for (unsigned i = 0; i < n && i < 256; i++) {
        uint64_t up = st[i].busy_ns + st[i].idle_ns;
        fprintf(stderr,
                "sched %u: turns %" PRIu64 " msgs %" PRIu64 " steals %" PRIu64
                " sleeps %" PRIu64 " wakeups %" PRIu64 " busy %.0f%%\n",
                i, st[i].turns, st[i].messages, st[i].steals, st[i].sleeps,
                st[i].wakeups,
                up ? 100.0 * (double)st[i].busy_ns / (double)up : 0.0);
    }
}

int
tpc_finish(tp_runtime *rt, bool ok)
{
    tp_runtime_destroy(rt);
    return ok ? 0 : 1;
}

bool
tpc_check(const char *what, uint64_t got, uint64_t want)
{
    if (got == want)
        return true;
    printf("CHECK FAILED %s: got %" PRIu64 ", want %" PRIu64 "\n", what, got,
           want);
    fflush(stdout);
    return false;
}
