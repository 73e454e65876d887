/*
 * tests/faultalloc.h - a fault-injecting allocator for out-of-memory tests.
 *
 * tpf_install() puts a counting allocator in place with
 * tp_replace_allocator() (so it also serves libuv). It forwards to the C
 * library and counts every allocation and every live block. A test arms it
 * to fail the Nth allocation from now ("one shot") or the Nth and every later
 * one ("persistent"), runs a scenario, and checks what the runtime did with
 * the failure. Counting covers every thread (scheduler threads, libuv's
 * threads, the test thread); tests that need a reproducible order run one
 * scheduler and wait for each step to finish before the next.
 *
 * Allocations libuv makes itself are spared (see tpf_spared()): libuv 1.44
 * aborts when it cannot grow its watcher array, which is libuv's policy and
 * not something Troupe can recover from.
 *
 * The live-block count (allocations minus frees) is the leak check used by
 * every build type: after a runtime is destroyed it must be back where it
 * was before the runtime was created.
 */
#ifndef TP_TESTS_FAULTALLOC_H
#define TP_TESTS_FAULTALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <troupe.h>

/* Installs the allocator. Call before any runtime exists (returns the
 * tp_replace_allocator() result: 0 or -EBUSY). Idempotent. */
int tpf_install(void);

/* Fails the nth allocation counted from now (1 = the next one). With
 * persistent, every allocation after it fails too, until tpf_disarm(). */
void tpf_arm(uint64_t nth, bool persistent);
/* Stops failing (allocations succeed again); counters are kept. */
void tpf_disarm(void);
/* Armed (tpf_arm() since the last tpf_disarm()). */
bool tpf_armed(void);
/* Allocations fail now: armed persistent and the Nth one has come. */
bool tpf_failing(void);

/* Allocations attempted since the last tpf_arm() (or tpf_count_reset()). */
uint64_t tpf_count(void);
void tpf_count_reset(void);
/* Allocations failed on purpose since the last tpf_arm(). */
uint64_t tpf_failed(void);
/* Allocations failed on purpose since tpf_install(). */
uint64_t tpf_failed_total(void);
/* Allocations made by libuv itself: never failed, never counted in N
 * (libuv 1.44 aborts on some of its own allocation failures). */
uint64_t tpf_spared(void);
/* Blocks currently allocated through the allocator. */
int64_t tpf_live(void);

/* The call path of the first failure injected since tpf_arm(): up to max
 * return addresses of the callers of the allocation (innermost first),
 * with the allocator's own frames left out. Returns how many. */
int tpf_fail_site(void **frames, int max);
/* The thread of that failure was a thread that is not the one that armed
 * the allocator (a scheduler or libuv thread). */
bool tpf_fail_remote(void);

/* With TP_FAULT_TRACK=1 in the environment (at tpf_install()), every
 * live block remembers where it was allocated: tpf_track_mark() returns the
 * current allocation number and tpf_track_dump(mark) prints the blocks
 * allocated after it that are still live. */
uint64_t tpf_track_mark(void);
void tpf_track_dump(uint64_t mark);

/* A 64-bit key for a call path (for counting distinct failure points). */
uint64_t tpf_site_key(void *const *frames, int n);
/* Prints a call path (one frame a line, symbolised where possible). */
void tpf_print_site(const char *prefix, void *const *frames, int n);

/* ---------------------------------------------------------------------- */
/* The sweep shared by the test_faults_* tests                            */

/* A sweep runs a scenario once with nothing failing (to count its
 * allocations), then for N = 1, 1 + stride, ... with the Nth allocation
 * failing (and, persistent, every later one) until a run completes
 * without reaching N. Broken rules are counted as violations rather than
 * ending the sweep at the first one, so one sweep lists them all. */

struct tpf_scenario {
    /* One run with the allocator armed at nth (0: never); returns whether
     * a failure was injected. It checks what it can and reports each
     * broken rule with tpf_violation(). */
    bool (*run)(void *arg, uint64_t nth, bool persistent);
    void *arg;
};

struct tpf_sweep_stats {
    uint64_t total;    /* allocations counted in the run with nth 0 */
    uint64_t runs;     /* runs with nth > 0, the last (clean) one included */
    uint64_t failures; /* allocations failed on purpose */
    unsigned stride;   /* the step between two N actually used */
};

/* Runs the sweep. TP_FAULT_N (start there) and TP_FAULT_STRIDE (every
 * that many N; 1: all) override, TP_FAULT_VERBOSE times each run. Resets
 * the violation count first. Returns false, without sweeping, when the run
 * with nth 0 injected a failure. */
bool tpf_sweep(const struct tpf_scenario *sc, bool persistent, unsigned stride,
               struct tpf_sweep_stats *st);

/* The N of the run in progress (for messages). */
uint64_t tpf_run_n(void);
/* Reports a broken rule (on stderr, with the N) and counts it. */
void tpf_violation(const char *fmt, ...) TP_PRINTF(1, 2);
/* Violations since the sweep began. */
unsigned tpf_violations(void);
/* TP_FAULT_VERBOSE is set. */
bool tpf_verbose(void);
/* Prints where the first failure of this run was injected (stderr). */
void tpf_print_fail_site(void);

/* A public call of the scenario returned rc: false if 0; otherwise true
 * (the scenario stops there), and a violation unless rc is a negative
 * errno that came after an injected failure. */
bool tpf_call_failed(const char *what, int rc);
/* The live-block count is back at live0; else a violation, with the
 * blocks allocated since mark (tpf_track_mark()) listed. */
void tpf_check_live(int64_t live0, uint64_t mark);
/* As many file descriptors open as before; else a violation. */
void tpf_check_fds(long fds0, long fds);

/* A log sink that drops every line, unless TP_FAULT_VERBOSE. */
void tpf_quiet_sink(void *user, tp_log_level level, const char *line);

/* Options for a scenario's runtime: nsched schedulers, no pinning, no
 * watchdog thread (a reproducible order), the given stop timeout. */
tp_runtime_options tpf_runtime_opts(unsigned nsched, unsigned stop_ms);

/* The cmocka group setup of a fault test: sets the log sink, installs the
 * allocator, then creates and starts a runtime with options o, spawns an
 * actor of behaviour b, sends it a message of `type` from the test thread
 * and destroys the runtime. So the one-time allocations (libuv, logging,
 * the test thread's message cache, which lives as long as the thread) are
 * made before any live-block baseline. Returns 0, tpf_install()'s error,
 * or -1 if the runtime failed. */
int tpf_group_setup(tp_log_sink sink, const tp_runtime_options *o,
                    const tp_behaviour *b, uint32_t type);

#endif /* TP_TESTS_FAULTALLOC_H */
