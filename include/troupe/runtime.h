/*
 * troupe/runtime.h - the runtime: N scheduler threads, each pinned to a core
 * and owning one run queue and one libuv loop.
 */
#ifndef TROUPE_RUNTIME_H
#define TROUPE_RUNTIME_H

#include <troupe/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An actor runtime. Opaque; created by tp_runtime_create(). */
typedef struct tp_runtime tp_runtime;

/** Options for tp_runtime_create(); fill with tp_runtime_options_init(). */
typedef struct tp_runtime_options {
    /** Scheduler threads; 0 = number of online CPUs. At most 256. */
    unsigned schedulers;
    /** Pin scheduler i to CPU i (mod online CPUs). Default true. */
    bool pin;
    /** Messages an actor may handle per turn before it yields. Default 64. */
    unsigned batch;
    /**
     * Turn SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT raised inside an actor's
     * callback into that actor's crash. Default true. See docs/FAULTS.md.
     */
    bool fault_trap;
    /** A callback running longer than this is reported. 0 = off. Def 100. */
    unsigned long_handler_ms;
    /** Deadline for tp_runtime_stop()'s graceful phase, ms. Default 5000. */
    unsigned stop_timeout_ms;
} tp_runtime_options;

/** Fills opts with the defaults. */
TP_API void tp_runtime_options_init(tp_runtime_options *opts);

/**
 * Creates a runtime (threads are not started yet). opts may be NULL for
 * defaults. On success *out owns the runtime; release it with
 * tp_runtime_destroy(). Errors: -EINVAL (bad option), -ENOMEM, or an error
 * from libuv initialisation. Not thread-safe with respect to the same out.
 */
TP_API int tp_runtime_create(tp_runtime **out, const tp_runtime_options *opts);

/**
 * Starts the scheduler threads. Errors: -EALREADY (started), -ENOMEM,
 * -EAGAIN (thread creation). Call from one thread.
 */
TP_API int tp_runtime_start(tp_runtime *rt);

/**
 * Waits until the runtime is quiescent: no actor runnable or running, no
 * message or loop command in flight and no one-shot timer armed (periodic
 * timers, open sockets and idle-timeouts do not count). timeout_ms < 0 waits
 * forever. Returns 0, -ETIMEDOUT or -EINVAL (not started). Call from a
 * thread that is not a scheduler.
 */
TP_API int tp_runtime_wait_idle(tp_runtime *rt, int64_t timeout_ms);

/**
 * Stops the runtime cleanly: listeners stop accepting, connections drain,
 * the root supervisor shuts its tree down in reverse start order honouring
 * shutdown timeouts, every remaining actor is sent a shutdown exit signal.
 * These graceful steps share one deadline, stop_timeout_ms; every actor
 * still alive when the runtime is then quiescent (e.g. one that traps the
 * shutdown and is idle) or at the deadline, whichever comes first, is
 * killed (untrappable, reason killed),
 * and the stop always goes on until no actor is left, however busy they
 * are (a kill takes effect at the actor's next turn, ahead of its queued
 * messages) -- only a callback that never returns can hold it up, and it
 * is reported in the log every 5 s. The scheduler threads then exit and
 * their loops close. Everything the runtime allocated is freed by
 * tp_runtime_destroy(). Idempotent. Returns 0 (also when actors had to be
 * killed at the deadline), or -ETIMEDOUT when the actors killed at the
 * deadline were not all gone within 100 ms + stop_timeout_ms / 10 after it
 * (the stop is complete all the same). Call from a thread that is not a
 * scheduler (an actor requests a stop with tp_runtime_request_stop()).
 */
TP_API int tp_runtime_stop(tp_runtime *rt);

/**
 * Asks for a stop from any thread, actors included: wakes anyone blocked in
 * tp_runtime_wait_stop_request(). Async-signal-safe.
 */
TP_API void tp_runtime_request_stop(tp_runtime *rt);

/**
 * Blocks until tp_runtime_request_stop() was called (or timeout_ms passes;
 * < 0 = forever). Returns 0 or -ETIMEDOUT. For main() of servers.
 */
TP_API int tp_runtime_wait_stop_request(tp_runtime *rt, int64_t timeout_ms);

/**
 * Frees the runtime and everything it allocated. Stops it first if it is
 * running (as tp_runtime_stop(), whatever actors are alive). rt is invalid
 * after. Call from a thread that is not a scheduler, once, with no other
 * thread using rt.
 */
TP_API void tp_runtime_destroy(tp_runtime *rt);

/** Number of scheduler threads. Thread-safe. */
TP_API unsigned tp_runtime_schedulers(const tp_runtime *rt);

/** Per-scheduler statistics (monotonic counters unless noted). */
typedef struct tp_sched_stats {
    unsigned index;         /**< scheduler number */
    int cpu;                /**< pinned CPU or -1 */
    uint64_t turns;         /**< actor turns run */
    uint64_t messages;      /**< messages handled */
    uint64_t steals;        /**< actors stolen from other schedulers */
    uint64_t sleeps;        /**< times the scheduler blocked in its loop */
    uint64_t wakeups;       /**< wake-ups sent to it */
    uint64_t busy_ns;       /**< time spent outside the idle wait */
    uint64_t idle_ns;       /**< time spent blocked in the loop */
    uint64_t long_handlers; /**< callbacks over long_handler_ms */
    uint32_t runq_len;      /**< current run-queue length (gauge) */
    bool sleeping;          /**< currently blocked (gauge) */
} tp_sched_stats;

/** Runtime-wide statistics. */
typedef struct tp_runtime_stats {
    uint64_t uptime_ns;     /**< since tp_runtime_create() */
    uint64_t actors;        /**< live actors (gauge) */
    uint64_t spawned;       /**< actors ever spawned */
    uint64_t exited;        /**< actors that ended */
    uint64_t crashed;       /**< of which crashed (fail, fault, kill) */
    uint64_t messages;      /**< messages handled */
    uint64_t dead_letters;  /**< messages dropped: dead receiver, overflow */
    uint64_t mailbox_drops; /**< of which dropped by mailbox bounds */
    uint64_t long_handlers; /**< callbacks that ran too long */
    uint64_t actor_bytes;   /**< bytes of actor memory in use (gauge) */
    uint64_t rss_bytes;     /**< process resident set (gauge) */
} tp_runtime_stats;

/** Fills *out. Values are read without stopping the world. Thread-safe. */
TP_API void tp_runtime_get_stats(tp_runtime *rt, tp_runtime_stats *out);

/**
 * Fills out[0..n) with scheduler statistics; returns the number of
 * schedulers (may exceed n). Thread-safe.
 */
TP_API unsigned tp_runtime_get_sched_stats(tp_runtime *rt, tp_sched_stats *out,
                                           unsigned n);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_RUNTIME_H */
