/*
 * bench/core_common.h - what the five core benchmarks share: a runtime
 * built from "--schedulers=N", waiting for the end of a run, and the
 * hand-over of figures from the coordinating actor to main().
 *
 * Timing rule: the coordinating actor reads the clock itself, at the first
 * and last event of the run (a message it handles); main() only waits for
 * quiescence (tp_runtime_wait_idle) and then prints. So no figure depends on
 * how quickly main() notices the end.
 */
#ifndef TP_CORE_COMMON_H
#define TP_CORE_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <troupe.h>

/* Figures a coordinator publishes for main(). */
struct tpc_result {
    uint64_t t0_ns, t1_ns; /* first and last event */
    uint64_t value;        /* what the benchmark checks (sum, count...) */
    atomic_bool done;      /* release-stored last */
};

/*
 * Creates and starts a runtime with --schedulers=N (0 = all CPUs, the
 * default). The long-handler watchdog is left at its default. Exits the
 * process with a message on failure.
 */
tp_runtime *tpc_runtime(int argc, char **argv);

/* Publishes the figures (coordinator side). */
void tpc_publish(struct tpc_result *r, uint64_t t0, uint64_t t1,
                 uint64_t value);

/*
 * Waits until the runtime is quiescent (at most timeout_s seconds) and the
 * coordinator has published. Returns true when r is complete; prints why
 * not otherwise.
 */
bool tpc_wait(tp_runtime *rt, struct tpc_result *r, long timeout_s);

/*
 * With --stats=1 (or TPB_STATS=1), prints each scheduler's counters (turns,
 * messages, steals, sleeps, wake-ups, busy share) to stderr: what a
 * diagnosis needs first. Call after the run, before tpc_finish.
 */
void tpc_sched_stats(tp_runtime *rt, int argc, char **argv);

/* Stops and frees the runtime; returns exit status ok ? 0 : 1. */
int tpc_finish(tp_runtime *rt, bool ok);

/* Prints "CHECK FAILED <what>: got X, want Y" and returns false if
 * got != want, true otherwise. */
bool tpc_check(const char *what, uint64_t got, uint64_t want);

#endif
