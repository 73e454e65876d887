/*
 * runtime/watchdog.c - reports actor callbacks that run too long.
 *
 * C cannot preempt a handler, so the runtime makes long ones visible: each
 * scheduler bumps a sequence number when it enters a user callback; this
 * thread samples them and reports a callback whose sequence number has not
 * moved for long_handler_ms (once per callback). The hot path pays a few
 * relaxed stores per callback and no clock reads. The same thread gives
 * memory back to the kernel after a burst (tp__pool_maybe_trim()).
 */
#include "pool.h"
#include "runtime_int.h"

#include <errno.h>
#include <inttypes.h>
#include <time.h>

struct wd_slot {
    uint64_t seq;
    uint64_t since_ns;
    bool reported;
};

static void
check_sched(struct tp_runtime *rt, struct tp__sched *s, struct wd_slot *w,
            uint64_t now)
{
    uint64_t seq = atomic_load_explicit(&s->user_seq, memory_order_relaxed);
    uint64_t limit = (uint64_t)rt->opts.long_handler_ms * 1000000u;
    char pidbuf[32];

    if (!atomic_load_explicit(&s->in_user, memory_order_relaxed) ||
        seq != w->seq) {
        w->seq = seq;
        w->since_ns = now;
        w->reported = false;
        return;
    }
    if (w->reported || now - w->since_ns < limit)
        return;
    w->reported = true;
    TP__STAT_ADD(s->long_handlers, 1);
    TP__STAT_ADD(rt->long_handlers, 1);
    tp_log(
        TP_LOG_WARN,
        "long handler: actor %s (%s) on scheduler %u has run one "
        "callback for over %" PRIu64 " ms",
        tp_pid_format(atomic_load_explicit(&s->user_pid, memory_order_relaxed),
                      pidbuf, sizeof(pidbuf)),
        atomic_load_explicit(&s->user_label, memory_order_relaxed)
            ? atomic_load_explicit(&s->user_label, memory_order_relaxed)
            : "?",
        s->index, (now - w->since_ns) / 1000000u);
}

static bool
all_idle(struct tp_runtime *rt)
{
    return atomic_load(&rt->nsleeping) == rt->nsched;
}

static void *
watchdog_main(void *arg)
{
    struct tp_runtime *rt = arg;
    struct wd_slot *slots = tp__calloc(rt->nsched, sizeof(*slots));
    unsigned period_ms = rt->opts.long_handler_ms / 4;

    if (slots == NULL)
        return NULL;
    if (period_ms < 5)
        period_ms = 5;
    pthread_mutex_lock(&rt->wd_lock);
    while (!rt->wd_quit) {
        struct timespec ts;
        /* Sleep a little longer while every scheduler is idle; a callback
         * starting meanwhile is then first seen within 2 periods, and
         * reported once it has been seen running for long_handler_ms. */
        unsigned ms = all_idle(rt) ? period_ms * 2 : period_ms;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
        ts.tv_sec += ms / 1000u + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&rt->wd_cond, &rt->wd_lock, &ts);
        if (rt->wd_quit)
            break;
        pthread_mutex_unlock(&rt->wd_lock);
        for (unsigned i = 0; i < rt->nsched; i++)
            check_sched(rt, rt->sched[i], &slots[i], tp_now_ns());
        tp__pool_maybe_trim(tp_now_ns()); /* memory back after a burst */
        pthread_mutex_lock(&rt->wd_lock);
    }
    pthread_mutex_unlock(&rt->wd_lock);
    tp__free(slots);
    return NULL;
}

int
tp__watchdog_start(struct tp_runtime *rt)
{
    int err = pthread_create(&rt->watchdog, NULL, watchdog_main, rt);

    if (err != 0) {
        tp_log(TP_LOG_WARN, "long-handler watchdog not started: %s",
               tp_strerror(err));
        return -err;
    }
    rt->watchdog_on = true;
    return 0;
}

void
tp__watchdog_stop(struct tp_runtime *rt)
{
    if (!rt->watchdog_on)
        return;
    pthread_mutex_lock(&rt->wd_lock);
    rt->wd_quit = true;
    pthread_cond_signal(&rt->wd_cond);
    pthread_mutex_unlock(&rt->wd_lock);
    pthread_join(rt->watchdog, NULL);
    rt->watchdog_on = false;
}
