/*
 * runtime/runtime_int.h - schedulers, loops, run queues, loop commands,
 * quiescence, stop hooks and reclamation.
 *
 * The runtime schedules generic tasks (a struct tp__node) and knows nothing
 * of actors: the actors layer registers the function that runs a task and
 * per-runtime / per-scheduler data of its own through the ext slots.
 */
#ifndef TP_RUNTIME_INT_H
#define TP_RUNTIME_INT_H

#include "common/common.h"
#include "mailbox/mpsc.h"
#include "wheel.h"

#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <troupe/runtime.h>
#include <uv.h>

struct tp__sched;

/* Runs one task for one turn; returns true to requeue it at the back. */
typedef bool (*tp__run_fn)(struct tp__sched *s, struct tp__node *task);

/* A command executed on a scheduler's own loop thread. */
struct tp__cmd {
    struct tp__node node;
    void (*fn)(struct tp__cmd *cmd, struct tp__sched *s);
};

/* Slots for upper layers' per-runtime and per-scheduler data. */
enum tp__ext_id {
    TP__EXT_ACTORS = 0,
    TP__EXT_TIMERS,
    TP__EXT_SUPERVISOR,
    TP__EXT_NET,
    TP__EXT_CONSOLE,
    TP__EXT_SERVICES,
    TP__EXT_CALLS,
    TP__EXT_CLUSTER, /* cluster/: the node's NATS link (troupe/cluster.h) */
    TP__EXT_MAX
};

/* Stop phases, run in this order by tp_runtime_stop(). */
enum tp__stop_phase {
    TP__STOP_DRAIN = 0,   /* stop accepting, drain connections */
    TP__STOP_CONSOLE,     /* close admin sessions */
    TP__STOP_SUPERVISORS, /* root supervisor shuts the tree down */
    TP__STOP_ACTORS,      /* kill what is left */
    TP__STOP_PHASES
};

struct tp__stop_hook {
    struct tp__stop_hook *next;
    enum tp__stop_phase phase;
    /* Runs on the thread calling tp_runtime_stop(); deadline_ns is absolute
     * (tp_now_ns() clock). */
    void (*fn)(struct tp_runtime *rt, void *arg, uint64_t deadline_ns);
    void *arg;
};

/* Per-scheduler hooks run on the scheduler's own thread. */
struct tp__sched_hook {
    struct tp__sched_hook *next;
    void (*start)(struct tp__sched *s, void *arg); /* thread start */
    void (*stop)(struct tp__sched *s, void *arg);  /* before loop close */
    void *arg;
};

/* A statistic written by one thread and read by others: relaxed. */
typedef _Atomic uint64_t tp__stat;
#define TP__STAT_ADD(p, v)                                                     \
    atomic_store_explicit(                                                     \
        &(p), atomic_load_explicit(&(p), memory_order_relaxed) + (v),          \
        memory_order_relaxed)
#define TP__STAT_GET(p) atomic_load_explicit(&(p), memory_order_relaxed)

enum tp__sched_state {
    TP__SCHED_RUNNING = 0,
    TP__SCHED_SLEEPING, /* blocked (or about to block) in uv_run */
    TP__SCHED_NOTIFIED, /* a waker sent uv_async_send */
    TP__SCHED_STOPPED   /* finishing: its loop may be closed, never signal */
};

#define TP__RING_SIZE 1024u

struct tp__sched {
    /* Owner-thread hot fields. */
    struct tp_runtime *rt;
    unsigned index;
    _Atomic int cpu; /* written by its thread at start, read by stats */
    uint64_t ticks;
    uint64_t rand;
    /* Run-next slot: the task woken by the running actor runs next, before
     * the ring (request/reply and ping-pong pairs skip the ring's CAS).
     * A streak cap keeps the ring from starving. Owner only. */
    struct tp__node *runnext;
    unsigned runnext_streak;
    bool in_turn;
    uint64_t last_poll_ns;
    ck_ring_t ring; /* SPMC: owner pushes, owner and thieves pop */
    ck_ring_buffer_t *ring_buf;
    struct tp__mpsc inbox; /* tasks pushed by other threads + overflow */
    struct tp__mpsc cmdq;  /* loop commands from other threads */
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    void *ext[TP__EXT_MAX];
    /* Timing wheel (1 ms ticks since the runtime's start), driven by one
     * uv timer armed for the wheel's next event. Owner thread only. */
    struct tp__wheel *wheel;
    uv_timer_t wheel_timer;
    uint64_t wheel_due; /* tick the uv timer is armed for, or UINT64_MAX */

    /* Shared. */
    TP__ALIGNED(TP__CACHELINE) _Atomic int state;
    /* Threads inside uv_async_send() on this scheduler's async handle (or
     * about to call it): the scheduler closes the handle only once it is
     * STOPPED and this is 0 (see signal_begin() in sched.c). */
    atomic_uint signalers;
    atomic_uint wakes; /* times woken from sleep (quiescence check) */
    /* Quiescent-state counter for tp__rt_retire(); UINT64_MAX = offline. */
    _Atomic uint64_t qs;
    /* Long-handler watchdog: sequence of user callbacks and whether one
     * runs now, with what label. */
    _Atomic uint64_t user_seq;
    _Atomic int in_user;
    _Atomic(const char *) user_label;
    _Atomic uint64_t user_pid;

    /* Statistics (written by the owner). */
    TP__ALIGNED(TP__CACHELINE) tp__stat turns;
    tp__stat messages;
    tp__stat steals;
    tp__stat sleeps;
    tp__stat wakeups;
    tp__stat busy_ns;
    tp__stat idle_ns;
    _Atomic uint64_t sleep_since; /* start of the current sleep, or 0 */
    tp__stat long_handlers;
};

/* Embedded in an object freed after a grace period (tp__rt_retire), so
 * retiring never allocates and cannot fail. */
struct tp__retired {
    struct tp__retired *next;
    uint64_t epoch;
    void (*fn)(struct tp__retired *r); /* frees the containing object */
};

struct tp_runtime {
    tp_runtime_options opts;
    unsigned nsched;
    struct tp__sched **sched;
    tp__run_fn run_task;
    void *ext[TP__EXT_MAX];
    void (*ext_free[TP__EXT_MAX])(struct tp_runtime *rt, void *ext);

    _Atomic int started;
    _Atomic int stopping;
    _Atomic int stopped;
    atomic_uint nsleeping;
    atomic_uint nwaking;
    /* Things that keep the runtime from being idle (one-shot timers...). */
    _Atomic int64_t pending;
    uint64_t start_ns;

    pthread_mutex_t hooks_lock;
    struct tp__stop_hook *stop_hooks;
    struct tp__sched_hook *sched_hooks;

    /* Stop requests (tp_runtime_request_stop is async-signal-safe). */
    int stop_pipe[2];
    _Atomic int stop_requested;

    /* Reclamation: grace periods through scheduler quiescent states. */
    _Atomic uint64_t gp;
    pthread_mutex_t retire_lock;
    struct tp__retired *retired;
    atomic_uint nretired;

    /* Schedulers wait here, after their last work and before closing their
     * loops, for each other (stop path; initialised by tp__rt_join). */
    pthread_barrier_t finish_barrier;
    bool finish_barrier_on;

    /* Long-handler watchdog. */
    pthread_t watchdog;
    bool watchdog_on;
    pthread_mutex_t wd_lock;
    pthread_cond_t wd_cond;
    bool wd_quit;
    tp__stat long_handlers;
};

/* The scheduler running on this thread, or NULL. */
extern _Thread_local struct tp__sched *tp__tls_sched;

static inline struct tp__sched *
tp__sched_self(const struct tp_runtime *rt)
{
    struct tp__sched *s = tp__tls_sched;
    return (s != NULL && s->rt == rt) ? s : NULL;
}

/* Creation (called by the public lifecycle in actors/). */
int tp__rt_create(struct tp_runtime **out, const tp_runtime_options *opts,
                  tp__run_fn run);
int tp__rt_start(struct tp_runtime *rt);
/* Stops the threads (no hooks), closes the loops. Safe whatever a
 * scheduler is doing meanwhile (asleep, waking by itself, finishing). */
void tp__rt_join(struct tp_runtime *rt);
/* Test-only: called by tp__rt_join between marking the runtime stopped and
 * waking the schedulers (a test widens that window to force the races of a
 * scheduler that wakes up by itself). NULL in production. */
extern void (*tp__rt_test_stop_gap)(struct tp_runtime *rt);
void tp__rt_free(struct tp_runtime *rt);
void tp__rt_run_stop_hooks(struct tp_runtime *rt, uint64_t deadline_ns);

/* Timers on scheduler s's wheel (s's own thread only). delay in ms; the
 * timer never fires early and fires within about one tick after its due
 * time when the scheduler is not overloaded. */
uint64_t tp__sched_tick(const struct tp__sched *s);
void tp__sched_timer_add(struct tp__sched *s, struct tp__wtimer *t,
                         uint64_t delay_ms);
void tp__sched_timer_del(struct tp__sched *s, struct tp__wtimer *t);

/* Scheduler internals (runtime/sched.c). */
int tp__sched_init(struct tp__sched *s, struct tp_runtime *rt, unsigned index);
void tp__sched_fini_unstarted(struct tp__sched *s);
int tp__sched_spawn_thread(struct tp__sched *s);
/* Wakes s if it may be asleep; does nothing once s is finishing.
 * Thread-safe. */
void tp__sched_wake(struct tp__sched *s);
unsigned tp__sched_runq_len(struct tp__sched *s);
/* Frees retired objects whose grace period has passed (all = ignore it). */
void tp__rt_reclaim(struct tp_runtime *rt, bool all);

/* Makes task runnable: on the calling scheduler's queue when the caller is
 * one of rt's schedulers, else on scheduler `home`'s inbox (with a wake-up).
 * Thread-safe. */
void tp__rt_schedule(struct tp_runtime *rt, struct tp__node *task,
                     unsigned home);

/* Like tp__rt_schedule, but always on scheduler `home` (pinned tasks). */
void tp__rt_schedule_on(struct tp_runtime *rt, struct tp__node *task,
                        unsigned home);

/* Runs cmd on scheduler s's loop thread (directly if the caller is s).
 * Thread-safe. */
void tp__sched_post(struct tp__sched *s, struct tp__cmd *cmd);

/* True when the caller runs on s's thread and no command is queued for s:
 * work done on s's loop right now cannot overtake a command that another
 * thread queued earlier. */
bool tp__sched_can_run_now(struct tp__sched *s);

/* Like tp__sched_post(), but never overtakes commands queued before it:
 * on s's own thread cmd runs at once only if tp__sched_can_run_now(s),
 * else it is queued behind the others (drained at s's next loop poll).
 * Thread-safe. */
void tp__sched_post_fifo(struct tp__sched *s, struct tp__cmd *cmd);

/* Hooks (thread-safe; hooks added after start only affect later phases). */
void tp__rt_add_stop_hook(struct tp_runtime *rt, struct tp__stop_hook *hook);
int tp__rt_add_sched_hook(struct tp_runtime *rt, struct tp__sched_hook *hook);

/* Quiescence bookkeeping for non-task work (e.g. one-shot timers). */
static inline void
tp__rt_pending_add(struct tp_runtime *rt, int64_t delta)
{
    atomic_fetch_add_explicit(&rt->pending, delta, memory_order_relaxed);
}

/* Calls fn(r), which frees the object r is embedded in, once every
 * scheduler has passed a quiescent state (no scheduler can still be
 * reading it). Never fails. Thread-safe. */
void tp__rt_retire(struct tp_runtime *rt, struct tp__retired *r,
                   void (*fn)(struct tp__retired *r));

/* Current scheduler's user-callback markers (watchdog): the label and pid
 * are set once per actor turn, the sequence number per callback. Relaxed:
 * the watchdog only needs eventual, approximate values. */
static inline void
tp__sched_user_label(struct tp__sched *s, const char *label, uint64_t pid)
{
    if (s == NULL)
        return;
    atomic_store_explicit(&s->user_label, label, memory_order_relaxed);
    atomic_store_explicit(&s->user_pid, pid, memory_order_relaxed);
}

static inline void
tp__sched_user_enter(struct tp__sched *s)
{
    if (s == NULL)
        return;
    atomic_store_explicit(
        &s->user_seq,
        atomic_load_explicit(&s->user_seq, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(&s->in_user, 1, memory_order_relaxed);
}

static inline void
tp__sched_user_begin(struct tp__sched *s, const char *label, uint64_t pid)
{
    tp__sched_user_label(s, label, pid);
    tp__sched_user_enter(s);
}

static inline void
tp__sched_user_end(struct tp__sched *s)
{
    if (s != NULL)
        atomic_store_explicit(&s->in_user, 0, memory_order_relaxed);
}

/* Watchdog (runtime/watchdog.c). */
int tp__watchdog_start(struct tp_runtime *rt);
void tp__watchdog_stop(struct tp_runtime *rt);

/* Fault trap (runtime/fault.c). */
#include <setjmp.h>

struct tp__recover {
    sigjmp_buf jb;
    struct tp__recover *prev;
    int signo;    /* signal caught, 0 for tp_fail */
    void *addr;   /* fault address */
    void *bt[24]; /* backtrace at the fault */
    int nbt;
};

/* The innermost recovery point of this thread, armed while user code
 * runs. The signal handler jumps to it. */
extern _Thread_local struct tp__recover *tp__tls_recover;
extern _Thread_local int tp__tls_in_user;

/*
 * Runtime code that mutates shared state brackets itself with these, so a
 * fault inside it is never "recovered" as the running actor's crash even
 * when a user callback called it (see docs/FAULTS.md). Two TLS accesses.
 */
#define TP__RUNTIME_BEGIN()                                                    \
    int tp__saved_in_user = tp__tls_in_user;                                   \
    tp__tls_in_user = 0
#define TP__RUNTIME_END() (tp__tls_in_user = tp__saved_in_user)

int tp__fault_install(void); /* process-wide handlers (refcounted) */
void tp__fault_uninstall(void);
int tp__fault_thread_init(void); /* alternate signal stack for this thread */
void tp__fault_thread_fini(void);
/* Unblocks signo after a jump out of its handler. */
void tp__fault_unblock(int signo);
/* Writes a crash report (signal, address, backtrace) through the log. */
void tp__fault_report(const struct tp__recover *r, const char *who);

#endif /* TP_RUNTIME_INT_H */
