/*
 * runtime/rt.c - runtime object: creation, threads, quiescence, statistics,
 * hooks, stop requests and grace-period reclamation.
 */
#include "pool.h"
#include "runtime_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
tp_runtime_options_init(tp_runtime_options *o)
{
    memset(o, 0, sizeof(*o));
    o->schedulers = 0;
    o->pin = true;
    o->batch = 64;
    o->fault_trap = true;
    o->long_handler_ms = 100;
    o->stop_timeout_ms = 5000;
}

static unsigned
online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int
alloc_scheds(struct tp_runtime *rt)
{
    rt->sched = tp__calloc(rt->nsched, sizeof(*rt->sched));
    if (rt->sched == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < rt->nsched; i++) {
        /* 64-byte aligned for the cache-line separated fields; the raw
         * pointer is kept just before the aligned block. */
        char *raw = tp__calloc(1, sizeof(struct tp__sched) + 2 * TP__CACHELINE);
        char *p;
        int err;

        if (raw == NULL)
            return -ENOMEM;
        p = (char *)tp__align_up((uintptr_t)raw + sizeof(void *),
                                 TP__CACHELINE);
        ((void **)p)[-1] = raw;
        rt->sched[i] = (struct tp__sched *)p;
        err = tp__sched_init(rt->sched[i], rt, i);
        if (err != 0) {
            tp__free(raw);
            rt->sched[i] = NULL;
            return err;
        }
    }
    return 0;
}

static void
free_sched(struct tp__sched *s)
{
    tp__free(s->wheel);
    tp__free(s->ring_buf);
    tp__free(((void **)s)[-1]);
}

int
tp__rt_create(struct tp_runtime **out, const tp_runtime_options *opts,
              tp__run_fn run)
{
    struct tp_runtime *rt;
    int err;

    rt = tp__calloc(1, sizeof(*rt));
    if (rt == NULL)
        return -ENOMEM;
    if (opts != NULL)
        rt->opts = *opts;
    else
        tp_runtime_options_init(&rt->opts);
    if (rt->opts.batch == 0)
        rt->opts.batch = 64;
    rt->nsched = rt->opts.schedulers ? rt->opts.schedulers : online_cpus();
    if (rt->nsched > 256 || rt->opts.batch > 1u << 20) {
        tp__free(rt);
        return -EINVAL;
    }
    rt->run_task = run;
    rt->stop_pipe[0] = rt->stop_pipe[1] = -1;
    pthread_mutex_init(&rt->hooks_lock, NULL);
    pthread_mutex_init(&rt->retire_lock, NULL);
    pthread_mutex_init(&rt->wd_lock, NULL);
    pthread_cond_init(&rt->wd_cond, NULL);
    atomic_init(&rt->gp, 1);
    tp__alloc_runtime_ref(1);
    tp__pool_install();
    err = alloc_scheds(rt);
    if (err == 0 && pipe2(rt->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        err = -errno;
    if (err != 0) {
        tp__rt_free(rt);
        return err;
    }
    rt->start_ns = tp_now_ns();
    *out = rt;
    return 0;
}

int
tp__rt_start(struct tp_runtime *rt)
{
    int expect = 0, err;

    if (!atomic_compare_exchange_strong(&rt->started, &expect, 1))
        return -EALREADY;
    if (rt->opts.fault_trap && (err = tp__fault_install()) != 0)
        return err;
    for (unsigned i = 0; i < rt->nsched; i++) {
        err = tp__sched_spawn_thread(rt->sched[i]);
        if (err != 0) {
            /* Threads already running are stopped by tp__rt_join. */
            atomic_store(&rt->started, (int)i + 1);
            return err;
        }
    }
    atomic_store(&rt->started, (int)rt->nsched + 1);
    if (rt->opts.long_handler_ms != 0)
        tp__watchdog_start(rt);
    return 0;
}

static unsigned
threads_started(struct tp_runtime *rt)
{
    int st = atomic_load(&rt->started);
    return st > 0 ? (unsigned)st - 1 : 0;
}

void (*tp__rt_test_stop_gap)(struct tp_runtime *rt);

/*
 * Order matters, whatever the schedulers do meanwhile: the barrier they
 * finish on exists before any of them can see `stopped`; every scheduler
 * is woken before anything is joined (a scheduler asleep in its loop only
 * sees `stopped` when woken); a wake-up to a scheduler that already woke by
 * itself and is finishing is skipped safely (tp__sched_wake), never sent to
 * a closed handle.
 */
void
tp__rt_join(struct tp_runtime *rt)
{
    unsigned n = threads_started(rt);

    /* One caller: tp_runtime_stop() lets only its first caller get here. */
    if (atomic_load(&rt->stopped) != 0)
        return;
    if (n > 0 && pthread_barrier_init(&rt->finish_barrier, NULL, n) != 0)
        tp__assert_fail("finish barrier", __FILE__, __LINE__, __func__);
    rt->finish_barrier_on = n > 0;
    /* seq_cst: the barrier's initialisation is ordered before `stopped`,
     * which each scheduler reads (acquire) before it uses the barrier. */
    atomic_store(&rt->stopped, 1);
    if (tp__rt_test_stop_gap != NULL)
        tp__rt_test_stop_gap(rt);
    for (unsigned i = 0; i < n; i++)
        tp__sched_wake(rt->sched[i]);
    tp__watchdog_stop(rt);
    for (unsigned i = 0; i < n; i++)
        pthread_join(rt->sched[i]->thread, NULL);
    if (rt->finish_barrier_on) {
        pthread_barrier_destroy(&rt->finish_barrier);
        rt->finish_barrier_on = false;
    }
    if (rt->opts.fault_trap && atomic_load(&rt->started) != 0)
        tp__fault_uninstall();
}

void
tp__rt_free(struct tp_runtime *rt)
{
    unsigned started = threads_started(rt);

    if (rt->sched != NULL) {
        for (unsigned i = 0; i < rt->nsched; i++) {
            if (rt->sched[i] == NULL)
                continue;
            if (i >= started)
                tp__sched_fini_unstarted(rt->sched[i]);
            free_sched(rt->sched[i]);
        }
        tp__free(rt->sched);
    }
    tp__rt_reclaim(rt, true);
    if (rt->stop_pipe[0] >= 0)
        close(rt->stop_pipe[0]);
    if (rt->stop_pipe[1] >= 0)
        close(rt->stop_pipe[1]);
    pthread_mutex_destroy(&rt->hooks_lock);
    pthread_mutex_destroy(&rt->retire_lock);
    pthread_mutex_destroy(&rt->wd_lock);
    pthread_cond_destroy(&rt->wd_cond);
    tp__free(rt);
    tp__alloc_runtime_ref(-1);
}

unsigned
tp_runtime_schedulers(const tp_runtime *rt)
{
    return rt->nsched;
}

/* ---------------------------------------------------------------------- */
/* Hooks                                                                  */

void
tp__rt_add_stop_hook(struct tp_runtime *rt, struct tp__stop_hook *hook)
{
    pthread_mutex_lock(&rt->hooks_lock);
    hook->next = rt->stop_hooks;
    rt->stop_hooks = hook;
    pthread_mutex_unlock(&rt->hooks_lock);
}

int
tp__rt_add_sched_hook(struct tp_runtime *rt, struct tp__sched_hook *hook)
{
    if (atomic_load(&rt->started) != 0)
        return -EBUSY; /* scheduler hooks must exist before threads run */
    pthread_mutex_lock(&rt->hooks_lock);
    hook->next = rt->sched_hooks;
    rt->sched_hooks = hook;
    pthread_mutex_unlock(&rt->hooks_lock);
    return 0;
}

void
tp__rt_run_stop_hooks(struct tp_runtime *rt, uint64_t deadline_ns)
{
    for (int phase = 0; phase < TP__STOP_PHASES; phase++) {
        struct tp__stop_hook *h;

        pthread_mutex_lock(&rt->hooks_lock);
        h = rt->stop_hooks;
        pthread_mutex_unlock(&rt->hooks_lock);
        /* Hooks are only ever prepended, so walking a snapshot is safe. */
        for (; h != NULL; h = h->next) {
            if ((int)h->phase == phase)
                h->fn(rt, h->arg, deadline_ns);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Quiescence                                                             */

static bool
all_sleeping(struct tp_runtime *rt, unsigned *wakes)
{
    unsigned sum = 0;

    if (atomic_load(&rt->pending) != 0)
        return false;
    for (unsigned i = 0; i < rt->nsched; i++) {
        struct tp__sched *s = rt->sched[i];
        if (atomic_load(&s->state) != TP__SCHED_SLEEPING)
            return false;
        sum += atomic_load(&s->wakes);
    }
    *wakes = sum;
    return true;
}

static void
sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000L};
    nanosleep(&ts, NULL);
}

int
tp_runtime_wait_idle(tp_runtime *rt, int64_t timeout_ms)
{
    uint64_t deadline = timeout_ms < 0
                            ? UINT64_MAX
                            : tp_now_ns() + (uint64_t)timeout_ms * 1000000u;
    unsigned wakes = 0, prev = 0, delay = 20;
    bool seen = false;

    if (threads_started(rt) != rt->nsched || tp__tls_sched != NULL)
        return -EINVAL;
    for (;;) {
        /* Idle = every scheduler asleep at two observations with no
         * wake-up in between (a push to a sleeping scheduler wakes it). */
        if (all_sleeping(rt, &wakes)) {
            if (seen && wakes == prev)
                return 0;
            seen = true;
            prev = wakes;
        } else {
            seen = false;
        }
        if (tp_now_ns() >= deadline)
            return -ETIMEDOUT;
        sleep_us(delay);
        if (delay < 1000)
            delay *= 2;
    }
}

/* ---------------------------------------------------------------------- */
/* Stop requests                                                          */

void
tp_runtime_request_stop(tp_runtime *rt)
{
    char c = 1;
    ssize_t r;

    atomic_store(&rt->stop_requested, 1);
    r = write(rt->stop_pipe[1], &c, 1); /* async-signal-safe */
    (void)r;
}

int
tp_runtime_wait_stop_request(tp_runtime *rt, int64_t timeout_ms)
{
    struct pollfd pfd = {rt->stop_pipe[0], POLLIN, 0};
    uint64_t deadline = timeout_ms < 0
                            ? UINT64_MAX
                            : tp_now_ns() + (uint64_t)timeout_ms * 1000000u;

    while (!atomic_load(&rt->stop_requested)) {
        uint64_t now = tp_now_ns();
        int wait_ms = -1;
        if (deadline != UINT64_MAX) {
            if (now >= deadline)
                return -ETIMEDOUT;
            wait_ms = (int)((deadline - now) / 1000000u) + 1;
        }
        if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                             */

unsigned
tp_runtime_get_sched_stats(tp_runtime *rt, tp_sched_stats *out, unsigned n)
{
    uint64_t now = tp_now_ns();

    for (unsigned i = 0; i < rt->nsched && i < n; i++) {
        struct tp__sched *s = rt->sched[i];
        tp_sched_stats *o = &out[i];
        uint64_t idle = TP__STAT_GET(s->idle_ns);
        uint64_t up = now - rt->start_ns;
        uint64_t since =
            atomic_load_explicit(&s->sleep_since, memory_order_relaxed);

        if (since != 0 && now > since)
            idle += now - since; /* the sleep in progress */

        memset(o, 0, sizeof(*o));
        o->index = i;
        o->cpu = atomic_load_explicit(&s->cpu, memory_order_relaxed);
        o->turns = TP__STAT_GET(s->turns);
        o->messages = TP__STAT_GET(s->messages);
        o->steals = TP__STAT_GET(s->steals);
        o->sleeps = TP__STAT_GET(s->sleeps);
        o->wakeups = TP__STAT_GET(s->wakeups);
        o->idle_ns = idle;
        o->busy_ns = up > idle ? up - idle : 0;
        o->long_handlers = TP__STAT_GET(s->long_handlers);
        o->runq_len = tp__sched_runq_len(s);
        o->sleeping = atomic_load(&s->state) != TP__SCHED_RUNNING;
    }
    return rt->nsched;
}

/* ---------------------------------------------------------------------- */
/* Grace-period reclamation                                               */

void
tp__rt_retire(struct tp_runtime *rt, struct tp__retired *r,
              void (*fn)(struct tp__retired *r))
{
    r->fn = fn;
    /* seq_cst: the unlink of ptr (done by the caller) is ordered before
     * the new grace-period number; see qs_online() in sched.c. */
    r->epoch = atomic_fetch_add(&rt->gp, 1) + 1;
    pthread_mutex_lock(&rt->retire_lock);
    r->next = rt->retired;
    rt->retired = r;
    pthread_mutex_unlock(&rt->retire_lock);
    atomic_fetch_add_explicit(&rt->nretired, 1, memory_order_relaxed);
}

static uint64_t
min_quiescent(struct tp_runtime *rt)
{
    uint64_t min = UINT64_MAX;

    if (atomic_load(&rt->stopped) || threads_started(rt) == 0)
        return UINT64_MAX;
    for (unsigned i = 0; i < rt->nsched; i++) {
        uint64_t q = atomic_load(&rt->sched[i]->qs);
        if (q < min)
            min = q;
    }
    return min;
}

void
tp__rt_reclaim(struct tp_runtime *rt, bool all)
{
    struct tp__retired *keep = NULL, *done = NULL, *r, *next;
    uint64_t min = all ? UINT64_MAX : min_quiescent(rt);

    pthread_mutex_lock(&rt->retire_lock);
    for (r = rt->retired; r != NULL; r = next) {
        next = r->next;
        if (r->epoch <= min) {
            r->next = done;
            done = r;
        } else {
            r->next = keep;
            keep = r;
        }
    }
    rt->retired = keep;
    pthread_mutex_unlock(&rt->retire_lock);
    for (r = done; r != NULL; r = next) {
        next = r->next;
        r->fn(r); /* frees r with its object */
        atomic_fetch_sub_explicit(&rt->nretired, 1, memory_order_relaxed);
    }
}
