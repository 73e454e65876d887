/*
 * runtime/sched.c - the scheduler thread: run queue, stealing, the loop as
 * idle sleep, wake-ups and loop commands.
 *
 * Run queue of scheduler i = a ck_ring (SPMC: only i pushes; i and thieves
 * pop) for tasks made runnable on i, plus an intrusive MPSC inbox for tasks
 * made runnable by other threads and for ring overflow. A task woken by a
 * scheduler goes to that scheduler (cache locality); only the owner drains
 * its inbox.
 *
 * Sleep/wake is a Dekker handshake: the sleeper publishes SLEEPING, issues a
 * full fence and re-checks its inbox and command queue; a remote pusher
 * pushes, issues a full fence and reads the state. One of them sees the
 * other, so a wake-up is never lost; the CAS SLEEPING -> NOTIFIED makes sure
 * only one uv_async_send is issued per sleep.
 */
#include "runtime_int.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

_Thread_local struct tp__sched *tp__tls_sched;

/* Poll the loop between turns every POLL_TICKS turns, but not more often
 * than every POLL_NS (an epoll_wait costs more than many short turns) ... */
#define POLL_TICKS  64u
#define POLL_NS     20000u
/* ... run at most RUNNEXT_MAX run-next tasks in a row before the ring ... */
#define RUNNEXT_MAX 32u
/* ... and drain the inbox before the ring every INBOX_TICKS turns, so tasks
 * woken from outside are not starved by a ring that never empties. */
#define INBOX_TICKS 31u

static bool
ring_push(struct tp__sched *s, struct tp__node *t)
{
    /* The ring's own ordering is ck's (invisible to TSan): annotate the
     * hand-over of the task to whoever pops it. */
    tp__tsan_release(t);
    return ck_ring_enqueue_spmc(&s->ring, s->ring_buf, t);
}

static struct tp__node *
ring_pop(struct tp__sched *s)
{
    void *t;

    if (!ck_ring_dequeue_spmc(&s->ring, s->ring_buf, &t))
        return NULL;
    tp__tsan_acquire(t);
    return t;
}

/*
 * Every uv_async_send() on s->async is bracketed by signal_begin/end, so
 * the async handle is never closed under a signaller (libuv aborts on a
 * write to a closed async fd). Dekker again, on (signalers, state): the
 * signaller increments signalers and then reads the state; the finishing
 * scheduler stores STOPPED and then waits for signalers to reach 0 (see
 * sched_close_loop()). All seq_cst, so one of them sees the other.
 */
static bool
signal_begin(struct tp__sched *s)
{
    atomic_fetch_add(&s->signalers, 1);
    if (atomic_load(&s->state) != TP__SCHED_STOPPED)
        return true;
    atomic_fetch_sub(&s->signalers, 1);
    return false;
}

static void
signal_end(struct tp__sched *s)
{
    atomic_fetch_sub(&s->signalers, 1);
}

static void
notify(struct tp__sched *s)
{
    int expect = TP__SCHED_SLEEPING;

    if (!signal_begin(s))
        return;
    if (atomic_compare_exchange_strong(&s->state, &expect,
                                       TP__SCHED_NOTIFIED)) {
        atomic_fetch_add(&s->rt->nwaking, 1);
        TP__STAT_ADD(s->wakeups, 1);
        uv_async_send(&s->async);
    }
    signal_end(s);
}

/* Wakes one sleeping sibling so it can steal from s (parallelism only:
 * missing one is never a liveness problem, s runs its own queue). */
static void
wake_sibling(struct tp__sched *s)
{
    struct tp_runtime *rt = s->rt;
    unsigned n = rt->nsched;

    if (atomic_load_explicit(&rt->nsleeping, memory_order_relaxed) == 0 ||
        atomic_load_explicit(&rt->nwaking, memory_order_relaxed) != 0)
        return;
    for (unsigned i = 1; i < n; i++) {
        struct tp__sched *o = rt->sched[(s->index + i) % n];
        if (atomic_load_explicit(&o->state, memory_order_relaxed) ==
            TP__SCHED_SLEEPING) {
            notify(o);
            return;
        }
    }
}

/* The owner is running again (called before it makes work visible from a
 * loop callback that ran while it was marked sleeping). */
static void
mark_awake(struct tp__sched *s)
{
    int prev = atomic_exchange(&s->state, TP__SCHED_RUNNING);

    if (prev == TP__SCHED_RUNNING)
        return;
    if (prev == TP__SCHED_NOTIFIED)
        atomic_fetch_sub(&s->rt->nwaking, 1);
    atomic_fetch_sub(&s->rt->nsleeping, 1);
    atomic_fetch_add(&s->wakes, 1);
}

/* The owner makes work runnable: if that happens in a loop callback of its
 * sleeping uv_run(), it is awake again and that uv_run() must return
 * instead of going on to block in its poll (a timer that fires before the
 * poll would otherwise leave its actor queued until some unrelated event). */
static void
owner_pushes(struct tp__sched *s)
{
    if (TP__UNLIKELY(atomic_load_explicit(&s->state, memory_order_relaxed) !=
                     TP__SCHED_RUNNING)) {
        mark_awake(s);
        uv_stop(&s->loop);
    }
}

static void
local_push(struct tp__sched *s, struct tp__node *t)
{
    TP_ASSERT(tp__tls_sched == s); /* the ring has one producer: its owner */
    owner_pushes(s);
    if (TP__UNLIKELY(!ring_push(s, t)))
        tp__mpsc_push(&s->inbox, t);
    if (ck_ring_size(&s->ring) >= 2)
        wake_sibling(s);
}

static void
remote_push(struct tp__sched *s, struct tp__node *t)
{
    tp__mpsc_push(&s->inbox, t);
    /* Full fence: the push must be visible before we read the state
     * (Dekker with the sleeper's store-fence-recheck). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->state, memory_order_relaxed) ==
        TP__SCHED_SLEEPING)
        notify(s);
}

/* A task woken by the running actor takes the run-next slot; the one it
 * displaces goes to the ring. */
static void
runnext_push(struct tp__sched *s, struct tp__node *t)
{
    struct tp__node *old = s->runnext;

    TP_ASSERT(tp__tls_sched == s && s->in_turn);
    s->runnext = t;
    if (old != NULL)
        local_push(s, old);
}

void
tp__rt_schedule(struct tp_runtime *rt, struct tp__node *task, unsigned home)
{
    struct tp__sched *self = tp__sched_self(rt);

    if (self == NULL)
        remote_push(rt->sched[home % rt->nsched], task);
    else if (self->in_turn)
        runnext_push(self, task);
    else
        local_push(self, task);
}

/* A pinned task made runnable by its own scheduler: the inbox, not the
 * ring, because thieves take from rings and a pinned task must never run
 * elsewhere. */
static void
pinned_push(struct tp__sched *s, struct tp__node *t)
{
    TP_ASSERT(tp__tls_sched == s);
    owner_pushes(s);
    tp__mpsc_push(&s->inbox, t);
}

void
tp__rt_schedule_on(struct tp_runtime *rt, struct tp__node *task, unsigned home)
{
    struct tp__sched *self = tp__sched_self(rt);
    struct tp__sched *target = rt->sched[home % rt->nsched];

    if (self == target)
        pinned_push(self, task);
    else
        remote_push(target, task);
}

void
tp__sched_post(struct tp__sched *s, struct tp__cmd *cmd)
{
    if (tp__tls_sched == s) {
        cmd->fn(cmd, s);
        return;
    }
    tp__mpsc_push(&s->cmdq, &cmd->node);
    /* Full fence: same handshake as remote_push. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->state, memory_order_relaxed) ==
        TP__SCHED_SLEEPING)
        notify(s);
}

bool
tp__sched_can_run_now(struct tp__sched *s)
{
    return tp__tls_sched == s && tp__mpsc_looks_empty(&s->cmdq);
}

void
tp__sched_post_fifo(struct tp__sched *s, struct tp__cmd *cmd)
{
    if (tp__tls_sched == s && !tp__mpsc_looks_empty(&s->cmdq)) {
        /* Our own queue: no wake-up needed, the loop drains it before it
         * sleeps (has_local_work() sees it). */
        tp__mpsc_push(&s->cmdq, &cmd->node);
        return;
    }
    tp__sched_post(s, cmd);
}

static void
drain_cmds(struct tp__sched *s)
{
    struct tp__node *n;

    TP_ASSERT(tp__tls_sched == s); /* the command queue's one consumer */
    while ((n = tp__mpsc_pop(&s->cmdq)) != NULL) {
        struct tp__cmd *cmd = (struct tp__cmd *)n;
        cmd->fn(cmd, s);
    }
}

static void
async_cb(uv_async_t *h)
{
    drain_cmds(h->data);
}

/* ---------------------------------------------------------------------- */
/* Timing wheel driver                                                     */

uint64_t
tp__sched_tick(const struct tp__sched *s)
{
    return (tp_now_ns() - s->rt->start_ns) / 1000000u;
}

static void wheel_cb(uv_timer_t *h);

/* Arms the loop timer for the wheel's next event (if earlier than what it
 * is armed for, or always when force). */
static void
wheel_rearm(struct tp__sched *s, uint64_t now, bool force)
{
    uint64_t next = tp__wheel_next(s->wheel);

    if (next == UINT64_MAX) {
        if (s->wheel_due != UINT64_MAX)
            uv_timer_stop(&s->wheel_timer);
        s->wheel_due = UINT64_MAX;
        return;
    }
    if (!force && next >= s->wheel_due)
        return;
    s->wheel_due = next;
    uv_timer_start(&s->wheel_timer, wheel_cb, next > now ? next - now : 0, 0);
}

static void
wheel_cb(uv_timer_t *h)
{
    struct tp__sched *s = h->data;
    uint64_t now = tp__sched_tick(s);

    s->wheel_due = UINT64_MAX;
    tp__wheel_advance(s->wheel, now, s);
    wheel_rearm(s, now, true);
}

void
tp__sched_timer_add(struct tp__sched *s, struct tp__wtimer *t,
                    uint64_t delay_ms)
{
    uint64_t now = tp__sched_tick(s);

    TP_ASSERT(tp__tls_sched == s); /* a wheel is touched by its owner only */
    /* +1: `now` is truncated to the ms, so a due tick of now + delay could
     * come up to 1 ms early in real time. */
    tp__wheel_add(s->wheel, t, now + delay_ms + 1);
    if (t->expires < s->wheel_due) {
        s->wheel_due = t->expires;
        uv_timer_start(&s->wheel_timer, wheel_cb, t->expires - now, 0);
    }
}

void
tp__sched_timer_del(struct tp__sched *s, struct tp__wtimer *t)
{
    TP_ASSERT(tp__tls_sched == s);
    tp__wheel_del(s->wheel, t); /* a stale loop-timer wake-up is harmless */
}

static struct tp__node *
next_task(struct tp__sched *s)
{
    struct tp__node *t = s->runnext;

    TP_ASSERT(tp__tls_sched == s && !s->in_turn);
    if (t != NULL) {
        s->runnext = NULL;
        if (s->runnext_streak++ < RUNNEXT_MAX)
            return t;
        local_push(s, t); /* fairness: to the back of the ring */
    }
    s->runnext_streak = 0;

    if ((s->ticks % INBOX_TICKS) == 0) {
        t = tp__mpsc_pop(&s->inbox);
        if (t != NULL)
            return t;
    }
    t = ring_pop(s);
    if (t != NULL)
        return t;
    return tp__mpsc_pop(&s->inbox);
}

/* Steals half of a victim's ring (never its only queued task: the victim
 * runs that next, and moving it would split ping-pong pairs over cores). */
static struct tp__node *
steal(struct tp__sched *s)
{
    struct tp_runtime *rt = s->rt;
    unsigned n = rt->nsched;
    unsigned start = (unsigned)(tp__rand_next(&s->rand) % n);

    for (unsigned i = 0; i < n; i++) {
        struct tp__sched *v = rt->sched[(start + i) % n];
        unsigned size, take;
        struct tp__node *first = NULL, *t;

        if (v == s || (size = ck_ring_size(&v->ring)) < 2)
            continue;
        take = size / 2;
        for (unsigned k = 0; k < take && (t = ring_pop(v)) != NULL; k++) {
            if (first == NULL)
                first = t;
            else if (!ring_push(s, t))
                tp__mpsc_push(&s->inbox, t);
            TP__STAT_ADD(s->steals, 1);
        }
        if (first != NULL)
            return first;
    }
    return NULL;
}

static bool
has_local_work(struct tp__sched *s)
{
    return s->runnext != NULL || ck_ring_size(&s->ring) != 0 ||
           !tp__mpsc_looks_empty(&s->inbox) || !tp__mpsc_looks_empty(&s->cmdq);
}

static bool
others_have_work(struct tp__sched *s)
{
    for (unsigned i = 0; i < s->rt->nsched; i++) {
        struct tp__sched *v = s->rt->sched[i];
        if (v != s && ck_ring_size(&v->ring) >= 2)
            return true;
    }
    return false;
}

static void
qs_online(struct tp__sched *s)
{
    /* seq_cst: the grace-period argument in tp__rt_retire() needs this
     * store ordered before any later load of shared pointers. */
    atomic_store(&s->qs, atomic_load(&s->rt->gp));
}

static void
sched_sleep(struct tp__sched *s)
{
    struct tp_runtime *rt = s->rt;
    uint64_t t0;

    TP_ASSERT(tp__tls_sched == s &&
              atomic_load(&s->state) != TP__SCHED_STOPPED);
    atomic_store(&s->qs, UINT64_MAX); /* offline: holds no references */
    atomic_fetch_add(&rt->nsleeping, 1);
    atomic_store(&s->state, TP__SCHED_SLEEPING);
    /* Full fence: publish SLEEPING before re-checking the queues (pairs
     * with remote_push / tp__sched_post). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!has_local_work(s) && !others_have_work(s) &&
        !atomic_load(&rt->stopped)) {
        TP__STAT_ADD(s->sleeps, 1);
        t0 = tp_now_ns();
        atomic_store_explicit(&s->sleep_since, t0, memory_order_relaxed);
        uv_run(&s->loop, UV_RUN_ONCE);
        atomic_store_explicit(&s->sleep_since, 0, memory_order_relaxed);
        TP__STAT_ADD(s->idle_ns, tp_now_ns() - t0);
    }
    mark_awake(s);
    qs_online(s);
}

/* Before sleeping, spin this long looking for work: a scheduler that ran
 * out of work a moment ago usually gets more within microseconds (a reply,
 * a credit, the next request on a socket), and an eventfd wake-up plus the
 * context switches cost more than that. An idle runtime still sleeps: the
 * spin only follows work. Every SPIN_CHECK rounds it also looks at its
 * loop (a socket that became readable is work too) and yields the CPU, so
 * a spinning scheduler never holds a core that another runnable thread
 * (a client on the same machine, another process) is waiting for. */
#define SPIN_NS    20000u
#define SPIN_CHECK 64u

/* True when the loop has I/O to handle (its epoll fd is readable). */
static bool
loop_ready(struct tp__sched *s)
{
    struct pollfd p = {uv_backend_fd(&s->loop), POLLIN, 0};

    return poll(&p, 1, 0) > 0;
}

static bool
spin_for_work(struct tp__sched *s)
{
    uint64_t until = tp_now_ns() + SPIN_NS;

    for (unsigned i = 1;; i++) {
        if (has_local_work(s) || others_have_work(s))
            return true;
        if ((i % SPIN_CHECK) == 0) {
            if (loop_ready(s))
                return true;
            sched_yield();
            if (tp_now_ns() >= until ||
                atomic_load_explicit(&s->rt->stopped, memory_order_relaxed))
                return false;
        }
        __builtin_ia32_pause();
    }
}

static void
poll_loop(struct tp__sched *s)
{
    s->last_poll_ns = tp_now_ns();
    drain_cmds(s);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    qs_online(s);
    if (atomic_load_explicit(&s->rt->nretired, memory_order_relaxed) != 0)
        tp__rt_reclaim(s->rt, false);
}

/* Between turns: poll the loop if it has not been polled for POLL_NS. */
static void
maybe_poll(struct tp__sched *s)
{
    if (tp_now_ns() - s->last_poll_ns >= POLL_NS)
        poll_loop(s);
}

static void
pin_thread(struct tp__sched *s)
{
    cpu_set_t set;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    atomic_store_explicit(&s->cpu, -1, memory_order_relaxed);
    if (!s->rt->opts.pin || ncpu <= 0)
        return;
    CPU_ZERO(&set);
    CPU_SET((int)(s->index % (unsigned)ncpu), &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0)
        atomic_store_explicit(&s->cpu, (int)(s->index % (unsigned)ncpu),
                              memory_order_relaxed);
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Marks s STOPPED and waits until no thread is inside uv_async_send() on
 * it; from then on nobody signals s, and its handles may close. */
static void
sched_quiesce_signals(struct tp__sched *s)
{
    atomic_store(&s->state, TP__SCHED_STOPPED);
    while (atomic_load(&s->signalers) != 0)
        sched_yield();
}

/*
 * The end of a scheduler thread. Its last work (commands, stop hooks) may
 * post to the other schedulers, so every scheduler first finishes that
 * work, then all meet at the barrier; only then does each stop taking
 * signals and close its loop. Commands posted by the others before the
 * barrier are drained after it.
 */
static void
sched_finish(struct tp__sched *s)
{
    struct tp__sched_hook *h;

    TP_ASSERT(tp__tls_sched == s);
    drain_cmds(s);
    for (h = s->rt->sched_hooks; h != NULL; h = h->next) {
        if (h->stop != NULL)
            h->stop(s, h->arg);
    }
    drain_cmds(s);
    pthread_barrier_wait(&s->rt->finish_barrier);
    drain_cmds(s);
    sched_quiesce_signals(s);
    drain_cmds(s);
    uv_walk(&s->loop, close_walk_cb, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        tp_log(TP_LOG_WARN, "scheduler %u: loop still busy at close", s->index);
}

static void *
sched_main(void *arg)
{
    struct tp__sched *s = arg;
    struct tp_runtime *rt = s->rt;
    struct tp__sched_hook *h;
    struct tp__node *t;

    tp__tls_sched = s;
    pin_thread(s);
    tp__fault_thread_init();
    for (h = rt->sched_hooks; h != NULL; h = h->next) {
        if (h->start != NULL)
            h->start(s, h->arg);
    }
    qs_online(s);
    while (!atomic_load_explicit(&rt->stopped, memory_order_acquire)) {
        t = next_task(s);
        if (t == NULL)
            t = steal(s);
        if (t != NULL) {
            s->ticks++;
            TP__STAT_ADD(s->turns, 1);
            s->in_turn = true;
            if (rt->run_task(s, t))
                local_push(s, t); /* back of the ring: fairness */
            s->in_turn = false;
            if ((s->ticks % POLL_TICKS) == 0)
                maybe_poll(s);
            continue;
        }
        poll_loop(s);
        if (has_local_work(s) || spin_for_work(s))
            continue;
        sched_sleep(s);
    }
    sched_finish(s);
    tp__fault_thread_fini();
    tp__tls_sched = NULL;
    return NULL;
}

int
tp__sched_init(struct tp__sched *s, struct tp_runtime *rt, unsigned index)
{
    int err;

    s->rt = rt;
    s->index = index;
    atomic_init(&s->cpu, -1);
    s->rand = tp__hash64(((uint64_t)index + 1) * 0x9e3779b97f4a7c15ULL) | 1;
    s->ring_buf = tp__calloc(TP__RING_SIZE, sizeof(ck_ring_buffer_t));
    if (s->ring_buf == NULL)
        return -ENOMEM;
    ck_ring_init(&s->ring, TP__RING_SIZE);
    tp__mpsc_init(&s->inbox, false);
    tp__mpsc_init(&s->cmdq, false);
    atomic_init(&s->state, TP__SCHED_RUNNING);
    atomic_init(&s->signalers, 0);
    atomic_init(&s->qs, UINT64_MAX);
    err = uv_loop_init(&s->loop);
    if (err != 0) {
        tp__free(s->ring_buf);
        return err;
    }
    s->wheel = tp__malloc(sizeof(*s->wheel));
    err = s->wheel == NULL ? -ENOMEM
                           : uv_async_init(&s->loop, &s->async, async_cb);
    if (err != 0) {
        uv_loop_close(&s->loop);
        tp__free(s->wheel);
        tp__free(s->ring_buf);
        return err;
    }
    tp__wheel_init(s->wheel, 0);
    s->wheel_due = UINT64_MAX;
    uv_timer_init(&s->loop, &s->wheel_timer);
    s->wheel_timer.data = s;
    s->async.data = s;
    s->loop.data = s;
    return 0;
}

/* Closes the loop of a scheduler whose thread never ran. */
void
tp__sched_fini_unstarted(struct tp__sched *s)
{
    uv_close((uv_handle_t *)&s->wheel_timer, NULL);
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
}

int
tp__sched_spawn_thread(struct tp__sched *s)
{
    int err = pthread_create(&s->thread, NULL, sched_main, s);
    return err != 0 ? -err : 0;
}

void
tp__sched_wake(struct tp__sched *s)
{
    if (!signal_begin(s))
        return;
    uv_async_send(&s->async);
    signal_end(s);
}

unsigned
tp__sched_runq_len(struct tp__sched *s)
{
    return ck_ring_size(&s->ring);
}
