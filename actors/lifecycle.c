/*
 * actors/lifecycle.c - the public runtime lifecycle (create, start, stop,
 * destroy), the contexts of scheduler and outside threads, runtime-wide
 * statistics and introspection.
 *
 * tp_runtime_* lives here, not in runtime/, because a runtime is the
 * scheduler core plus the actor table: runtime/ only schedules tasks.
 * Higher layers (supervisor, net, console) attach through stop hooks.
 */
#include "actor_int.h"
#include "runtime/pool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

tp_ctx *
tp__ctx_new(struct tp__actors *A, struct tp__sched *s)
{
    tp_ctx *ctx = tp__calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->rt = A->rt;
    ctx->A = A;
    ctx->sched = s;
    ctx->index = s != NULL ? (int)s->index : -1;
    return ctx;
}

void
tp__ctx_free(tp_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->svc != NULL)
        ctx->svc->free(ctx->svc);
    tp__undelivered_free(ctx);
    tp__free(ctx);
}

/* ---------------------------------------------------------------------- */
/* Kill phase of tp_runtime_stop()                                        */

struct kill_walk {
    struct tp__actors *A;
    const tp_exit_reason *reason;
    unsigned n;
};

/* Counts the actors still alive (signalled, or not for want of memory).
 * A kill that cannot be allocated is delivered without a message (see
 * tp__exit_signal), so an out-of-memory stop still ends every actor and
 * releases what it owns. */
static bool
kill_one(void *user, const tp_actor_info *info)
{
    struct kill_walk *w = user;
    int r = tp__exit_signal(w->A, TP_PID_NONE, info->pid, w->reason, false);

    if (r == 0 || r == -ENOMEM)
        w->n++;
    return true;
}

static unsigned
kill_all(struct tp__actors *A, const tp_exit_reason *reason)
{
    struct kill_walk w = {A, reason, 0};

    tp_actor_foreach(A->rt, kill_one, &w);
    return w.n;
}

static int64_t
ms_left(uint64_t deadline_ns)
{
    uint64_t now = tp_now_ns();
    return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / 1000000u);
}

static void
add_live(tp_ctx *ctx, void *arg)
{
    *(int64_t *)arg += atomic_load(&ctx->st.live);
}

static int64_t
live_actors(struct tp__actors *A)
{
    int64_t live = 0;

    for (unsigned i = 0; i < A->rt->nsched; i++)
        add_live(A->sctx[i], &live);
    tp__xctx_foreach(A, add_live, &live);
    return live;
}

/* Past the deadline: kill (untrappable) until no actor is left. A kill
 * ends its actor at the start of its next turn, ahead of its queued
 * messages, so this takes one turn per actor however busy they are and
 * needs no deadline of its own; only a callback that never returns could
 * hold it up (and would hold up the scheduler's join as well), which is
 * reported every few seconds. Re-killing each round catches an actor whose
 * spawn raced the start of the stop. */
static void
kill_until_none(struct tp__actors *A, const tp_exit_reason *kill)
{
    uint64_t report = tp_now_ns() + 5000000000ull;

    while (live_actors(A) > 0) {
        kill_all(A, kill);
        tp_runtime_wait_idle(A->rt, 100);
        if (tp_now_ns() >= report && live_actors(A) > 0) {
            tp_log(TP_LOG_WARN,
                   "runtime stop: %lld actors still alive after kill "
                   "(a callback that does not return?)",
                   (long long)live_actors(A));
            report = tp_now_ns() + 5000000000ull;
        }
    }
}

/* How long after the deadline the actors killed there may take to end
 * before the stop reports -ETIMEDOUT. */
static uint64_t
kill_grace_ns(struct tp_runtime *rt)
{
    return (100u + rt->opts.stop_timeout_ms / 10u) * 1000000ull;
}

static void
kill_phase(struct tp_runtime *rt, void *arg, uint64_t deadline_ns)
{
    struct tp__actors *A = arg;
    tp_exit_reason shutdown = {TP_EXIT_SHUTDOWN, 0, "runtime stopping"};
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "runtime stopping"};
    int64_t left;

    if (kill_all(A, &shutdown) == 0)
        return;
    /* Until they are gone, or the runtime is quiet with some still there
     * (actors that trap the shutdown and are now idle: nothing is left
     * that could make them end), or the deadline passes. */
    left = ms_left(deadline_ns);
    tp_runtime_wait_idle(rt, left);
    if (live_actors(A) == 0)
        return;
    kill_until_none(A, &kill);
    /* Killing what was left is part of a normal stop; failing to be done
     * soon after the deadline is not. */
    if (tp_now_ns() > deadline_ns + kill_grace_ns(rt))
        atomic_store(&A->stop_overran, true);
}

/* ---------------------------------------------------------------------- */
/* Create / destroy                                                        */

static void actors_free(struct tp__actors *A);

/* Frees what higher layers (and timers, calls) hung on the runtime, in
 * reverse order; the actors themselves go last. */
static void
exts_free(struct tp_runtime *rt)
{
    for (int i = TP__EXT_MAX - 1; i > TP__EXT_ACTORS; i--) {
        if (rt->ext[i] != NULL && rt->ext_free[i] != NULL)
            rt->ext_free[i](rt, rt->ext[i]);
        rt->ext[i] = NULL;
    }
}

static int
actors_new(struct tp_runtime *rt, struct tp__actors **out)
{
    struct tp__actors *A = tp__calloc(1, sizeof(*A));
    pthread_mutexattr_t attr;

    if (A == NULL)
        return -ENOMEM;
    A->rt = rt;
    pthread_mutex_init(&A->lock, NULL);
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&A->xlock, &attr);
    pthread_mutexattr_destroy(&attr);
    rt->ext[TP__EXT_ACTORS] = A;
    A->dir = tp__calloc(TP__DIR_SIZE, sizeof(*A->dir));
    A->sctx = tp__calloc(rt->nsched, sizeof(*A->sctx));
    A->xctx = tp__ctx_new(A, NULL);
    if (A->dir == NULL || A->sctx == NULL || A->xctx == NULL ||
        tp__registry_new(A) != 0 || tp__timers_new(rt) != 0 ||
        tp__calls_new(rt) != 0) {
        exts_free(rt);
        actors_free(A);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < rt->nsched; i++) {
        A->sctx[i] = tp__ctx_new(A, rt->sched[i]);
        if (A->sctx[i] == NULL) {
            exts_free(rt);
            actors_free(A);
            return -ENOMEM;
        }
        rt->sched[i]->ext[TP__EXT_ACTORS] = A->sctx[i];
    }
    A->kill_hook.phase = TP__STOP_ACTORS;
    A->kill_hook.fn = kill_phase;
    A->kill_hook.arg = A;
    tp__xctx_runtime_born(A);
    tp__rt_add_stop_hook(rt, &A->kill_hook);
    *out = A;
    return 0;
}

/* Frees what is left in every slot: queued stale messages and, if an actor
 * somehow survived the stop, its ext (its state is simply dropped). */
static void
sweep_slots(struct tp__actors *A)
{
    uint32_t n = atomic_load(&A->next_slot);

    for (uint32_t i = 0; i < n; i++) {
        struct tp__actor *a = tp__slot_actor(A, i);
        struct tp__node *s;
        if (a == NULL)
            continue;
        tp__actor_drain(A->xctx, a);
        s = tp__sysq_take(&a->sys);
        while (s != NULL && s != TP__SYSQ_CLOSED) {
            struct tp__node *next = atomic_load(&s->next);
            tp__msg_free((struct tp__msg *)s);
            s = next;
        }
        if (tp__ext_peek(a) != NULL) {
            struct tp__actor_ext *x = tp__ext_peek(a);

            tp__u64map_fini(&x->links);
            tp__u64map_fini(&x->mon_out);
            tp__u64map_fini(&x->mon_in);
            tp__u64map_fini(&x->pending);
            tp__free(x);
        }
        a->extw = 0;
    }
}

static void
actors_free(struct tp__actors *A)
{
    if (A->dir != NULL) {
        sweep_slots(A);
        tp__slots_free_all(A);
    }
    if (A->sctx != NULL) {
        for (unsigned i = 0; i < A->rt->nsched; i++)
            tp__ctx_free(A->sctx[i]);
        tp__free(A->sctx);
    }
    tp__xctx_runtime_dies(A);
    tp__xctx_free_all(A);
    tp__ctx_free(A->xctx);
    tp__registry_free(A);
    pthread_mutex_destroy(&A->lock);
    pthread_mutex_destroy(&A->xlock);
    A->rt->ext[TP__EXT_ACTORS] = NULL;
    tp__free(A);
}

int
tp_runtime_create(tp_runtime **out, const tp_runtime_options *opts)
{
    struct tp_runtime *rt;
    struct tp__actors *A;
    int err;

    if (out == NULL)
        return -EINVAL;
    err = tp__rt_create(&rt, opts, tp__actor_run);
    if (err != 0)
        return err;
    err = actors_new(rt, &A);
    if (err != 0) {
        tp__rt_free(rt);
        return err;
    }
    *out = rt;
    return 0;
}

int
tp_runtime_start(tp_runtime *rt)
{
    return tp__rt_start(rt);
}

/*
 * Graceful phases (drain, console, supervisors, shutdown signals) share the
 * stop_timeout_ms deadline; whatever is left then is killed, and the kill
 * always runs to the end (see kill_until_none), so the threads are joined
 * with no actor alive and destroy frees everything.
 */
int
tp_runtime_stop(tp_runtime *rt)
{
    uint64_t deadline;
    int expect = 0, err = 0;

    if (!atomic_compare_exchange_strong(&rt->stopping, &expect, 1))
        return 0;
    deadline = tp_now_ns() + (uint64_t)rt->opts.stop_timeout_ms * 1000000u;
    if (atomic_load(&rt->started) > 1) {
        /* Hooks spawn nothing new (spawns now fail with -ESHUTDOWN). */
        tp__rt_run_stop_hooks(rt, deadline);
        if (atomic_load(&tp__actors_of(rt)->stop_overran)) {
            err = -ETIMEDOUT;
            tp_log(TP_LOG_WARN,
                   "runtime stop: past its %u ms deadline, the actors left "
                   "took long to kill",
                   rt->opts.stop_timeout_ms);
        }
        /* Messages to dead actors may still be in flight: let them land
         * (bounded: nobody is alive to send more). */
        tp_runtime_wait_idle(rt, 1000);
    }
    tp__rt_join(rt);
    return err;
}

static void
ctx_flush(tp_ctx *ctx, void *unused)
{
    /* Actor blocks are freed with their regions; nothing to do but make
     * sure no cached pointer survives. */
    memset(ctx->cache, 0, sizeof(ctx->cache));
    memset(ctx->arena, 0, sizeof(ctx->arena));
}

void
tp_runtime_destroy(tp_runtime *rt)
{
    struct tp__actors *A;

    if (rt == NULL)
        return;
    tp_runtime_stop(rt);
    A = tp__actors_of(rt);
    exts_free(rt);
    if (A != NULL) {
        tp__xctx_foreach(A, ctx_flush, NULL);
        actors_free(A);
    }
    tp__rt_free(rt);
    /* With no runtime left, the message pools can go back to the system. */
    tp__pool_release_all();
}

/* ---------------------------------------------------------------------- */
/* Statistics and introspection                                            */

struct stats_sum {
    tp_runtime_stats *o;
    int64_t live, bytes;
};

static void
add_ctx_stats(tp_ctx *ctx, void *arg)
{
    struct stats_sum *sum = arg;
    tp_runtime_stats *o = sum->o;

    o->dead_letters += TP__STAT_GET(ctx->st.dead_letters);
    o->mailbox_drops += TP__STAT_GET(ctx->st.mailbox_drops);
    o->spawned += TP__STAT_GET(ctx->st.spawned);
    o->exited += TP__STAT_GET(ctx->st.exited);
    o->crashed += TP__STAT_GET(ctx->st.crashed);
    sum->live += atomic_load(&ctx->st.live);
    sum->bytes += atomic_load(&ctx->st.actor_bytes);
}

/* Takes no lock: every counter is atomic (and single-writer per context). */
void
tp_runtime_get_stats(tp_runtime *rt, tp_runtime_stats *o)
{
    struct tp__actors *A = tp__actors_of(rt);
    struct stats_sum sum;
    int64_t live, bytes;

    memset(o, 0, sizeof(*o));
    sum = (struct stats_sum){o, 0, 0};
    for (unsigned i = 0; i < rt->nsched; i++) {
        add_ctx_stats(A->sctx[i], &sum);
        o->messages += TP__STAT_GET(rt->sched[i]->messages);
    }
    tp__xctx_foreach(A, add_ctx_stats, &sum);
    live = sum.live;
    bytes = sum.bytes;
    o->uptime_ns = tp_now_ns() - rt->start_ns;
    o->actors = live > 0 ? (uint64_t)live : 0;
    o->actor_bytes = bytes > 0 ? (uint64_t)bytes : 0;
    o->long_handlers = TP__STAT_GET(rt->long_handlers);
    o->rss_bytes = tp__rss_bytes();
}

static void
fill_peek(struct tp__actor *a, tp_pid pid, tp_actor_info *out,
          const struct tp_runtime *rt)
{
    unsigned nsched = rt->nsched;
    uint64_t start_ns = rt->start_ns;
    const tp_behaviour *b = atomic_load_explicit(&a->beh, memory_order_relaxed);

    memset(out, 0, sizeof(*out));
    out->pid = pid;
    out->behaviour = b != NULL && b->name != NULL ? b->name : "?";
    out->scheduler =
        (int)(atomic_load_explicit(&a->home, memory_order_relaxed) % nsched);
    out->mailbox = tp__mailbox_len(a);
    out->started_ns = start_ns + (uint64_t)atomic_load_explicit(
                                     &a->born_s, memory_order_relaxed) *
                                     1000000000u;
    out->handled = atomic_load_explicit(&a->handled, memory_order_relaxed);
    out->drops = atomic_load_explicit(&a->drops, memory_order_relaxed);
    out->max_msgs = atomic_load_explicit(&a->max_msgs, memory_order_relaxed);
    out->memory = tp__class_size(a->sclass) +
                  atomic_load_explicit(&a->bytes, memory_order_relaxed) +
                  out->mailbox * TP__MSG_HDR;
}

int
tp_actor_peek(tp_runtime *rt, tp_pid pid, tp_actor_info *out)
{
    struct tp__actors *A = tp__actors_of(rt);
    struct tp__actor *a = tp__actor_lookup(A, pid);

    if (a == NULL)
        return -ESRCH;
    fill_peek(a, pid, out, rt);
    /* Seqlock-style validation: the fields read belong to pid only if the
     * slot still holds it afterwards. */
    if (tp__actor_pid(a) != pid)
        return -ESRCH;
    tp__registry_name_of(A, pid, out->name, sizeof(out->name));
    return 0;
}

/* Visits the live actors in slots [from, to); returns false if fn asked
 * to stop. */
static bool
foreach_slots(tp_runtime *rt, uint32_t from, uint32_t to,
              bool (*fn)(void *, const tp_actor_info *), void *user)
{
    struct tp__actors *A = tp__actors_of(rt);
    tp_actor_info info;

    for (uint32_t i = from; i < to; i++) {
        struct tp__actor *a = tp__slot_actor(A, i);
        tp_pid pid;
        if (a == NULL)
            continue;
        pid = tp__actor_pid(a);
        if (pid & TP__PID_DEAD)
            continue;
        fill_peek(a, pid, &info, rt);
        if (tp__actor_pid(a) != pid)
            continue;
        if (atomic_load_explicit(&a->aflags, memory_order_relaxed) &
            TP__AF_NAMED)
            tp__registry_name_of(A, pid, info.name, sizeof(info.name));
        if (!fn(user, &info))
            return false;
    }
    return true;
}

void
tp_actor_foreach(tp_runtime *rt, bool (*fn)(void *, const tp_actor_info *),
                 void *user)
{
    uint32_t n = atomic_load(&tp__actors_of(rt)->next_slot);

    foreach_slots(rt, 0, n, fn, user);
}

bool
tp_actor_foreach_step(tp_runtime *rt, uint32_t *cursor, uint32_t max_slots,
                      bool (*fn)(void *, const tp_actor_info *), void *user)
{
    uint32_t n = atomic_load(&tp__actors_of(rt)->next_slot);
    uint32_t from = *cursor, to;

    if (from >= n) {
        *cursor = n;
        return false;
    }
    to = max_slots < n - from ? from + max_slots : n;
    *cursor = to;
    if (!foreach_slots(rt, from, to, fn, user)) {
        *cursor = n;
        return false;
    }
    return to < n;
}
