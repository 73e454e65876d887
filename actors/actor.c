/*
 * actors/actor.c - spawning, sending, the actor turn, stash, exit.
 *
 * A turn: handle pending system signals, then up to `batch` messages, then
 * either requeue (more work, fairness) or mark the mailbox empty (idle). The
 * push that finds the mailbox marked empty schedules the actor, so an actor
 * sits in at most one run queue and is never run by two threads at once.
 *
 * One recovery point (sigsetjmp(env, 0), a few ns) is set per turn, not per
 * message: tp_fail() and trapped faults jump back to it.
 */
#include "actor_int.h"
#include "cluster/hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATE (65536u)

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

void
tp__actor_schedule(struct tp__actors *A, struct tp__actor *a)
{
    unsigned home = atomic_load_explicit(&a->home, memory_order_relaxed);

    if (TP__UNLIKELY(atomic_load_explicit(&a->aflags, memory_order_relaxed) &
                     TP__AF_PINNED))
        tp__rt_schedule_on(A->rt, &a->task, home);
    else
        tp__rt_schedule(A->rt, &a->task, home);
}

/* The ext block, allocated if needed; an inline link moves into it. */
struct tp__actor_ext *
tp__actor_ext(struct tp__actor *a)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    tp_pid link1 = tp__ext_link1(a);

    if (TP__LIKELY(x != NULL))
        return x;
    x = tp__calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->res.next = x->res.prev = &x->res;
    tp__u64map_init(&x->pending);
    tp__u64map_init(&x->links);
    tp__u64map_init(&x->mon_out);
    tp__u64map_init(&x->mon_in);
    if (link1 != TP_PID_NONE && tp__u64map_put(&x->links, link1, 1) < 0) {
        tp__free(x); /* the inline link stays where it was */
        return NULL;
    }
    a->extw = (uintptr_t)x;
    return x;
}

static void
ext_free(struct tp__actor *a)
{
    struct tp__actor_ext *x = tp__ext_peek(a);

    a->extw = 0; /* an inline link needs no freeing */
    if (x == NULL)
        return;
    tp__u64map_fini(&x->links);
    tp__u64map_fini(&x->mon_out);
    tp__u64map_fini(&x->mon_in);
    tp__u64map_fini(&x->pending);
    tp__free(x);
}

uint64_t
tp__ctx_make_ref(tp_ctx *ctx)
{
    /* Scheduler contexts own the low 9 bits (index 0..255), the external
     * context uses 511 with an atomic counter. Never 0. */
    if (ctx->sched != NULL)
        return (++ctx->ref_next << 9) | (uint64_t)ctx->index;
    return ((atomic_fetch_add(&ctx->A->xref, 1) + 1) << 9) | 511u;
}

uint64_t
tp_make_ref(tp_runtime *rt)
{
    struct tp__sched *s = tp__sched_self(rt);

    if (s != NULL)
        return tp__ctx_make_ref(s->ext[TP__EXT_ACTORS]);
    return ((atomic_fetch_add(&tp__actors_of(rt)->xref, 1) + 1) << 9) | 511u;
}

void
tp__dead_letter(tp_ctx *ctx, struct tp__msg *m)
{
    TP_ASSERT(tp__ctx_mine(ctx)); /* its counters have one writer */
    TP__STAT_ADD(ctx->st.dead_letters, 1);
    tp__msg_free(m);
}

/* ---------------------------------------------------------------------- */
/* Delivery                                                               */

static void
count_drop(tp_ctx *ctx, struct tp__actor *a)
{
    atomic_fetch_add_explicit(&a->drops, 1, memory_order_relaxed);
    TP__STAT_ADD(ctx->st.mailbox_drops, 1);
    TP__STAT_ADD(ctx->st.dead_letters, 1);
}

static int
overflow(tp_ctx *ctx, struct tp__actor *a, tp_pid to, struct tp__msg *m,
         uint64_t len, uint32_t maxm)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "mailbox overflow"};

    switch (atomic_load_explicit(&a->overflow, memory_order_relaxed)) {
    case TP_OVERFLOW_DROP_OLDEST:
        /* The consumer drops the oldest; past twice the bound producers
         * drop too, so memory stays bounded while the consumer is busy. */
        if (maxm != 0 && len < 2ull * maxm)
            return 1;
        count_drop(ctx, a);
        tp__msg_free(m);
        return 0;
    case TP_OVERFLOW_REJECT:
        count_drop(ctx, a);
        tp__msg_free(m);
        return -EAGAIN;
    case TP_OVERFLOW_KILL:
        count_drop(ctx, a);
        tp__msg_free(m);
        tp__exit_signal(ctx->A, TP_PID_NONE, to, &kill, false);
        return 0;
    default: /* TP_OVERFLOW_DROP_NEWEST */
        count_drop(ctx, a);
        tp__msg_free(m);
        return 0;
    }
}

/* Applies the mailbox bound. Returns 1 to enqueue, else the result. */
static int
check_bound(tp_ctx *ctx, struct tp__actor *a, tp_pid to, struct tp__msg *m)
{
    uint32_t maxm = atomic_load_explicit(&a->max_msgs, memory_order_relaxed);
    uint32_t maxb = atomic_load_explicit(&a->max_bytes, memory_order_relaxed);
    uint64_t len;
    bool over;

    if (TP__LIKELY((maxm | maxb) == 0) || (m->flags & TP__MSG_FORCED))
        return 1;
    len = tp__mailbox_len(a);
    over = (maxm != 0 && len >= maxm) ||
           (maxb != 0 &&
            (uint64_t)atomic_load_explicit(&a->bytes, memory_order_relaxed) +
                    m->m.len >
                maxb);
    if (over) {
        int r = overflow(ctx, a, to, m, len, maxm);
        if (r != 1)
            return r;
    }
    if (maxb != 0) {
        atomic_fetch_add_explicit(&a->bytes, m->m.len, memory_order_relaxed);
        m->flags |= TP__MSG_COUNTED;
    }
    return 1;
}

static void
push_ordinary(struct tp__actors *A, struct tp__actor *a, struct tp__msg *m)
{
    atomic_fetch_add_explicit(&a->enq, 1, memory_order_relaxed);
    if (tp__mpsc_push(&a->mq, &m->node))
        tp__actor_schedule(A, a);
}

/* Delivers m to actor a (resolved from `to`); takes ownership of m. */
static int
deliver_to(tp_ctx *ctx, struct tp__actor *a, tp_pid to, struct tp__msg *m)
{
    int r;
    TP__RUNTIME_BEGIN();

    m->m.to = to;
    r = check_bound(ctx, a, to, m);
    if (r == 1) {
        push_ordinary(ctx->A, a, m);
        r = 0;
    }
    TP__RUNTIME_END();
    return r;
}

int
tp__deliver(tp_ctx *ctx, tp_pid to, struct tp__msg *m)
{
    struct tp__actor *a;

    /* Cluster hook: a pid of another node goes to cluster/remote.c. */
    if (TP__UNLIKELY(tp_pid_is_remote(to)))
        return tp__cluster_deliver(ctx, to, m);
    a = tp__actor_lookup(ctx->A, to);
    if (TP__UNLIKELY(a == NULL)) {
        tp__dead_letter(ctx, m);
        return -ESRCH;
    }
    return deliver_to(ctx, a, to, m);
}

int
tp__signal(struct tp__actors *A, tp_pid to, struct tp__msg *m)
{
    struct tp__actor *a;

    /* Cluster hook: a signal for a pid of another node. */
    if (TP__UNLIKELY(tp_pid_is_remote(to)))
        return tp__cluster_signal(A, to, m);
    TP__RUNTIME_BEGIN();
    a = tp__actor_lookup(A, to);
    m->m.to = to;
    if (a == NULL || !tp__sysq_push(&a->sys, &m->node)) {
        tp__msg_free(m);
        TP__RUNTIME_END();
        return -ESRCH;
    }
    /* seq_cst: the lane push above must be visible to an owner that clears
     * nudge_pending and then re-reads the lane (see take_nudge()). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange(&a->nudge_pending, 1) == 0) {
        if (tp__mpsc_push(&a->mq, &a->nudge))
            tp__actor_schedule(A, a);
    }
    TP__RUNTIME_END();
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Sending (public)                                                       */

static int
send_checked(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
             size_t len)
{
    struct tp__actor *a;
    struct tp__msg *m;

    if (TP__UNLIKELY(tp_msg_is_system(type) || len > (size_t)INT32_MAX ||
                     (data == NULL && len != 0)))
        return -EINVAL;
    if (TP__UNLIKELY(tp_pid_is_remote(to))) /* cluster hook */
        return tp__cluster_send(ctx, to, type, data, len);
    a = tp__actor_lookup(ctx->A, to);
    if (TP__UNLIKELY(a == NULL)) {
        TP__STAT_ADD(ctx->st.dead_letters, 1);
        return -ESRCH;
    }
    m = tp__msg_copy(type, data, len);
    if (TP__UNLIKELY(m == NULL))
        return -ENOMEM;
    m->m.from = ctx->self != NULL ? tp__actor_pid(ctx->self) : TP_PID_NONE;
    /* If a died meanwhile, the stale `to` in m makes it a dead letter. */
    return deliver_to(ctx, a, to, m);
}

int
tp_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data, size_t len)
{
    return send_checked(ctx, to, type, data, len);
}

int
tp_runtime_send(tp_runtime *rt, tp_pid to, uint32_t type, const void *data,
                size_t len)
{
    tp_ctx *ctx = tp__xctx_acquire(rt);
    int r = send_checked(ctx, to, type, data, len);

    tp__xctx_release(ctx);
    return r;
}

static int
send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b)
{
    struct tp__msg *m;

    if (b == NULL || tp_msg_is_system(type))
        return -EINVAL;
    if (TP__UNLIKELY(tp_pid_is_remote(to))) /* cluster hook */
        return tp__cluster_send_blob(ctx, to, type, b);
    if (tp__actor_lookup(ctx->A, to) == NULL) {
        TP__STAT_ADD(ctx->st.dead_letters, 1);
        return -ESRCH;
    }
    m = tp__msg_with_blob(type, b);
    if (m == NULL)
        return -ENOMEM;
    m->m.from = ctx->self != NULL ? tp__actor_pid(ctx->self) : TP_PID_NONE;
    return tp__deliver(ctx, to, m);
}

int
tp_send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b)
{
    return send_blob(ctx, to, type, b);
}

int
tp_runtime_send_blob(tp_runtime *rt, tp_pid to, uint32_t type, tp_blob *b)
{
    tp_ctx *ctx = tp__xctx_acquire(rt);
    int r = send_blob(ctx, to, type, b);

    tp__xctx_release(ctx);
    return r;
}

int
tp_send_named(tp_ctx *ctx, const char *name, uint32_t type, const void *data,
              size_t len)
{
    tp_pid to = tp_whereis(ctx->rt, name);

    /* Cluster hook: "name@node" names an actor registered on that node. */
    if (to == TP_PID_NONE && name != NULL && strchr(name, '@') != NULL)
        return tp__cluster_send_named(ctx, name, type, data, len);
    if (to == TP_PID_NONE) {
        TP__STAT_ADD(ctx->st.dead_letters, 1);
        return -ESRCH;
    }
    return tp_send(ctx, to, type, data, len);
}

/* ---------------------------------------------------------------------- */
/* The turn                                                               */

static bool
has_front(struct tp__actor *a)
{
    const struct tp__actor_ext *x = tp__ext_peek(a);

    return x != NULL && x->front_head != NULL;
}

/* Pops the next message: unstashed ones first, then the mailbox. */
static struct tp__msg *
next_msg(struct tp__actor *a)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    struct tp__msg *m;

    if (x != NULL && x->front_head != NULL) {
        m = x->front_head;
        x->front_head = (struct tp__msg *)atomic_load_explicit(
            &m->node.next, memory_order_relaxed);
        if (x->front_head == NULL)
            x->front_tail = NULL;
        return m;
    }
    return (struct tp__msg *)tp__mpsc_pop(&a->mq);
}

static void
take_nudge(struct tp__actor *a)
{
    atomic_store(&a->nudge_pending, 0);
    /* seq_cst: clear the flag before re-reading the lane, so a signal
     * pushed before a producer saw the flag set is seen here. */
    atomic_thread_fence(memory_order_seq_cst);
}

/* Accounting for a message leaving the mailbox. */
static void
popped(struct tp__actor *a, struct tp__msg *m)
{
    atomic_store_explicit(
        &a->deq, atomic_load_explicit(&a->deq, memory_order_relaxed) + 1,
        memory_order_relaxed);
    if (m->flags & TP__MSG_COUNTED) {
        atomic_fetch_sub_explicit(&a->bytes, m->m.len, memory_order_relaxed);
        m->flags &= (uint16_t)~TP__MSG_COUNTED;
    }
}

/* What a turn reads once from the senders' cache line. */
struct turn_view {
    tp_pid self;
    uint32_t drop_oldest_at; /* max_msgs if DROP_OLDEST, else 0 */
};

static const tp_exit_reason nomsg_kill = {TP_EXIT_KILLED, 0,
                                          "killed (signal out of memory)"};

/* Filters a popped message. Returns false if it was consumed here. */
static bool
accept_msg(tp_ctx *ctx, struct tp__actor *a, const struct turn_view *v,
           struct tp__msg *m, bool from_front)
{
    if (&m->node == &a->nudge) {
        take_nudge(a);
        if (TP__UNLIKELY(
                atomic_load_explicit(&a->aflags, memory_order_relaxed) &
                TP__AF_KILLED))
            tp_exit_with(ctx, &nomsg_kill);
        return false;
    }
    if (from_front)
        return true;
    popped(a, m);
    if (TP__UNLIKELY(m->m.to != v->self)) {
        tp__dead_letter(ctx, m); /* stale: sent to an earlier incarnation */
        return false;
    }
    if (TP__UNLIKELY(m->m.type >= TP_MSG_SYSTEM_BASE)) {
        if (m->m.type == TP_MSG_DOWN && !tp__down_accept(ctx, a, m))
            return false;
        if (m->m.type >= TP_MSG_REPLY && m->m.type <= TP_MSG_NOPROC &&
            !(a->oflags & TP__A_RAWREPLY) && !tp__reply_accept(ctx, a, m))
            return false;
    }
    if (TP__UNLIKELY(v->drop_oldest_at != 0) && !(m->flags & TP__MSG_FORCED) &&
        tp__mailbox_len(a) >= v->drop_oldest_at) {
        count_drop(ctx, a); /* the oldest goes: newer ones are queued */
        tp__msg_free(m);
        return false;
    }
    return true;
}

static void
handle_one(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m)
{
    const struct tp__actor_ext *x = tp__ext_peek(a);

    ctx->cur = m;
    if (TP__UNLIKELY(x != NULL && x->tracer != TP_PID_NONE))
        tp__trace_msg(ctx, a, m);
    tp__sched_user_enter(ctx->sched);
    tp__tls_in_user = 1;
    a->handler(ctx, a->state, &m->m);
    tp__tls_in_user = 0;
    tp__sched_user_end(ctx->sched);
    if (ctx->cur != NULL)
        tp__msg_free(m);
    ctx->cur = NULL;
    atomic_store_explicit(
        &a->handled,
        atomic_load_explicit(&a->handled, memory_order_relaxed) + 1,
        memory_order_relaxed);
    TP__STAT_ADD(ctx->sched->messages, 1); /* turns run on schedulers */
}

static void
turn_view_init(struct tp__actor *a, struct turn_view *v)
{
    v->self = tp__actor_pid(a);
    v->drop_oldest_at = 0;
    if (TP__UNLIKELY(atomic_load_explicit(&a->overflow, memory_order_relaxed) ==
                     TP_OVERFLOW_DROP_OLDEST))
        v->drop_oldest_at =
            atomic_load_explicit(&a->max_msgs, memory_order_relaxed);
}

/* Runs one turn. Returns true to requeue. */
static bool
turn(tp_ctx *ctx, struct tp__actor *a)
{
    unsigned batch = ctx->rt->opts.batch, n = 0;
    struct turn_view v;

    turn_view_init(a, &v);
    /* The watchdog's label for every callback of this turn. */
    tp__sched_user_label(
        ctx->sched, atomic_load_explicit(&a->beh, memory_order_relaxed)->name,
        v.self);
    for (;;) {
        struct tp__msg *m;
        bool front;

        if (atomic_load_explicit(&a->sys, memory_order_relaxed) != NULL) {
            tp__process_sys(ctx, a);
            if (ctx->exiting)
                break;
        }
        if (n == batch)
            return true;
        front = has_front(a);
        m = next_msg(a);
        if (m == NULL)
            break;
        if (!accept_msg(ctx, a, &v, m, front)) {
            if (TP__UNLIKELY(ctx->exiting))
                break; /* killed by tp__kill_noalloc() */
            continue;
        }
        handle_one(ctx, a, m);
        n++;
        if (ctx->exiting)
            break;
    }
    if (ctx->exiting) {
        tp__actor_die(ctx, a, &ctx->exit_reason);
        return false;
    }
    if (has_front(a) ||
        atomic_load_explicit(&a->sys, memory_order_relaxed) != NULL)
        return true;
    /* Idle: after a successful mark another thread may run a: touch
     * nothing of it any more. A failed mark means a producer got in. */
    return !tp__mpsc_mark_empty(&a->mq);
}

static const char *
signal_name(int signo)
{
    switch (signo) {
    case 11:
        return "SIGSEGV";
    case 7:
        return "SIGBUS";
    case 8:
        return "SIGFPE";
    case 4:
        return "SIGILL";
    case 6:
        return "SIGABRT";
    default:
        return "signal";
    }
}

/* Builds the crash reason of a jump back to a recovery point. */
static void
crash_reason(tp_ctx *ctx, struct tp__actor *a, const struct tp__recover *r)
{
    char pidbuf[32], who[128];
    const char *bname =
        atomic_load_explicit(&a->beh, memory_order_relaxed)->name;

    tp_pid_format(tp__actor_pid(a) & ~TP__PID_DEAD, pidbuf, sizeof(pidbuf));
    snprintf(who, sizeof(who), "actor %s (%s)", pidbuf, bname ? bname : "?");
    /* signo was set by whoever jumped here (the fault handler or tp_vfail):
     * cppcheck cannot follow siglongjmp (see .cppcheck-suppressions). */
    /* cppcheck-suppress uninitvar */
    if (r->signo != 0) {
        snprintf(ctx->exit_text, sizeof(ctx->exit_text),
                 "%s at address %p in %s", signal_name(r->signo), r->addr, who);
        tp__fault_report(r, who);
    } else {
        tp_log(TP_LOG_INFO, "%s failed: %s", who, ctx->exit_text);
    }
    ctx->exit_reason.kind = TP_EXIT_CRASH;
    ctx->exit_reason.code = r->signo;
    ctx->exit_reason.text = ctx->exit_text;
    ctx->exiting = true;
}

static bool
turn_crashed(tp_ctx *ctx, struct tp__actor *a, struct tp__recover *r)
{
    TP__USER_END(ctx);
    crash_reason(ctx, a, r);
    if (ctx->cur != NULL) {
        tp__request_orphaned(ctx, ctx->cur, ctx->cur->m.to);
        tp__msg_free(ctx->cur);
        ctx->cur = NULL;
    }
    tp__actor_die(ctx, a, &ctx->exit_reason);
    return false;
}

bool
tp__actor_run(struct tp__sched *s, struct tp__node *task)
{
    tp_ctx *ctx = s->ext[TP__EXT_ACTORS];
    struct tp__actor *a = tp__container_of(task, struct tp__actor, task);
    struct tp__recover r;
    bool requeue;

    TP_ASSERT(tp__tls_sched == s && ctx->self == NULL);
    ctx->self = a;
    ctx->exiting = false;
    r.prev = NULL;
    tp__tls_recover = &r;
    if (sigsetjmp(r.jb, 0) != 0) {
        tp__tls_recover = NULL;
        requeue = turn_crashed(ctx, a, &r);
    } else {
        requeue = turn(ctx, a);
        tp__tls_recover = NULL;
    }
    ctx->self = NULL;
    /* A pinned actor with more to do goes back through its scheduler's
     * own queue: the ring it would be requeued on is open to thieves. */
    if (requeue && (atomic_load_explicit(&a->aflags, memory_order_relaxed) &
                    TP__AF_PINNED)) {
        tp__actor_schedule(ctx->A, a);
        return false;
    }
    return requeue;
}

/* ---------------------------------------------------------------------- */
/* Death                                                                  */

void
tp__actor_drain(tp_ctx *ctx, struct tp__actor *a)
{
    tp_pid who = tp__actor_pid(a) & ~TP__PID_DEAD;
    struct tp__msg *m;

    TP_ASSERT(tp__ctx_mine(ctx)); /* the mailbox's one consumer */
    while ((m = (struct tp__msg *)tp__mpsc_pop(&a->mq)) != NULL) {
        if (&m->node == &a->nudge) {
            atomic_store(&a->nudge_pending, 0);
            continue;
        }
        popped(a, m);
        /* A request sent to this incarnation (or an earlier one) will never
         * be answered: say so now. */
        tp__request_orphaned(ctx, m, m->m.to != TP_PID_NONE ? m->m.to : who);
        tp__dead_letter(ctx, m);
    }
}

static void
drain_lists(tp_ctx *ctx, struct tp__actor_ext *x)
{
    struct tp__msg *lists[2] = {x->front_head, x->stash_head};

    for (int i = 0; i < 2; i++) {
        struct tp__msg *m = lists[i];
        while (m != NULL) {
            struct tp__msg *next = (struct tp__msg *)atomic_load_explicit(
                &m->node.next, memory_order_relaxed);
            tp__request_orphaned(ctx, m, m->m.to);
            tp__dead_letter(ctx, m);
            m = next;
        }
    }
    x->front_head = x->front_tail = x->stash_head = x->stash_tail = NULL;
    x->stash_n = 0;
}

static void
call_terminate(tp_ctx *ctx, struct tp__actor *a, const tp_exit_reason *why)
{
    const tp_behaviour *b = atomic_load_explicit(&a->beh, memory_order_relaxed);
    struct tp__recover r;

    if (b->terminate == NULL)
        return;
    r.prev = tp__tls_recover;
    tp__tls_recover = &r;
    if (sigsetjmp(r.jb, 0) == 0) {
        TP__USER_BEGIN(ctx, a);
        b->terminate(ctx, a->state, why);
        TP__USER_END(ctx);
    } else {
        TP__USER_END(ctx);
        /* cppcheck-suppress uninitvar ; set before the siglongjmp */
        if (r.signo != 0)
            tp__fault_report(&r, "terminate callback");
        tp_log(TP_LOG_WARN, "%s: terminate crashed (ignored)",
               b->name ? b->name : "?");
    }
    tp__tls_recover = r.prev;
}

static void
release_resources(tp_ctx *ctx, struct tp__actor *a, const tp_exit_reason *why)
{
    struct tp__actor_ext *x = tp__ext_peek(a);

    while (x != NULL && x->res.next != &x->res) {
        struct tp__resource *r = x->res.prev; /* newest first */
        r->prev->next = r->next;
        r->next->prev = r->prev;
        r->next = r->prev = r;
        r->release(r, ctx, why);
    }
}

void
tp__actor_die(tp_ctx *ctx, struct tp__actor *a, const tp_exit_reason *reason)
{
    tp_pid self = tp__actor_pid(a);
    tp_exit_reason why = *reason;
    char text[256];
    bool abnormal = !tp_exit_is_normal(reason), told;

    /* The reason may live in ctx->exit_text, which callbacks below reuse. */
    if (why.text != NULL) {
        snprintf(text, sizeof(text), "%s", why.text);
        why.text = text;
    }
    if (why.kind == TP_EXIT_KILL)
        why.kind = TP_EXIT_KILLED;
    TP_ASSERT(tp__ctx_mine(ctx) && !(self & TP__PID_DEAD));
    a->oflags |= TP__A_EXITING;
    ctx->exiting = false;
    if (!ctx->init_failed)
        call_terminate(ctx, a, &why);
    ctx->exiting = false;
    release_resources(ctx, a, &why);
    if (atomic_load_explicit(&a->aflags, memory_order_relaxed) & TP__AF_NAMED)
        tp__registry_release(ctx->A, self);
    told = tp__notify_death(ctx, a, self, &why);
    /* release: a sender that sees the dead pid sees the notifications. */
    atomic_store_explicit(&a->pid, self | TP__PID_DEAD, memory_order_release);
    tp__close_sys(ctx, a, self, &why);
    tp__actor_drain(ctx, a);
    if (tp__ext_peek(a) != NULL)
        drain_lists(ctx, tp__ext_peek(a));
    if (told)
        ext_free(a);
    else
        tp__undelivered_keep(ctx, a, self, &why);
    TP__STAT_ADD(ctx->st.exited, 1);
    if (abnormal)
        TP__STAT_ADD(ctx->st.crashed, 1);
    atomic_fetch_sub_explicit(&ctx->st.live, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ctx->st.actor_bytes,
                              (int64_t)tp__class_size(a->sclass),
                              memory_order_relaxed);
    tp__slot_free(ctx, a);
}

/* ---------------------------------------------------------------------- */
/* Spawning                                                               */

void
tp_spawn_opts_init(tp_spawn_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->scheduler = -1;
    o->overflow = TP_OVERFLOW_REJECT;
}

static int
validate(const tp_behaviour *b, const tp_spawn_opts *o)
{
    if (b == NULL || b->handle == NULL || b->state_size > MAX_STATE)
        return -EINVAL;
    if (o->overflow < TP_OVERFLOW_REJECT || o->overflow > TP_OVERFLOW_KILL)
        return -EINVAL;
    if (o->name != NULL &&
        (o->name[0] == '\0' || strlen(o->name) > TP_NAME_MAX))
        return -EINVAL;
    return 0;
}

static unsigned
pick_home(tp_ctx *ctx, const tp_spawn_opts *o)
{
    unsigned n = ctx->rt->nsched;

    if (o->scheduler >= 0)
        return (unsigned)o->scheduler % n;
    if (ctx->sched != NULL)
        return ctx->sched->index;
    return (unsigned)(atomic_fetch_add(&ctx->A->xref, 1) % n);
}

/* Sets up a fresh incarnation in slot block a (not yet visible). */
static tp_pid
incarnate(tp_ctx *ctx, struct tp__actor *a, const tp_behaviour *b,
          const tp_spawn_opts *o)
{
    tp_pid old = atomic_load_explicit(&a->pid, memory_order_relaxed);
    uint32_t gen = tp_pid_gen(old & ~TP__PID_DEAD) + 1;

    if (gen > TP__GEN_MAX)
        gen = 1;
    /* Messages that stale senders left here belong to no one. */
    tp__actor_drain(ctx, a);
    atomic_store_explicit(&a->beh, b, memory_order_relaxed);
    a->handler = b->handle;
    a->extw = 0;
    atomic_store_explicit(&a->handled, 0, memory_order_relaxed);
    atomic_store_explicit(
        &a->born_s, (uint32_t)((tp_now_ns() - ctx->rt->start_ns) / 1000000000u),
        memory_order_relaxed);
    atomic_store_explicit(&a->max_msgs, o->max_msgs, memory_order_relaxed);
    atomic_store_explicit(&a->max_bytes, o->max_bytes, memory_order_relaxed);
    atomic_store_explicit(&a->drops, 0, memory_order_relaxed);
    atomic_store_explicit(&a->overflow, (uint8_t)o->overflow,
                          memory_order_relaxed);
    atomic_store_explicit(&a->home, (uint16_t)pick_home(ctx, o),
                          memory_order_relaxed);
    atomic_store_explicit(&a->aflags, o->scheduler >= 0 ? TP__AF_PINNED : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&a->stack_held, 0, memory_order_relaxed);
    a->oflags = o->trap_exit ? TP__A_TRAP_EXIT : 0;
    memset(a->state, 0, b->state_size);
    atomic_store_explicit(&a->sys, NULL, memory_order_relaxed);
    return ((tp_pid)gen << 32) | (old & 0xffffffffu);
}

/* Context switch into the child for init and back. */
struct saved_ctx {
    struct tp__actor *self;
    struct tp__msg *cur;
    bool exiting;
    tp_exit_reason reason;
    char text[256];
};

static void
ctx_enter_child(tp_ctx *ctx, struct tp__actor *child, struct saved_ctx *sv)
{
    sv->self = ctx->self;
    sv->cur = ctx->cur;
    sv->exiting = ctx->exiting;
    sv->reason = ctx->exit_reason;
    if (ctx->exiting)
        memcpy(sv->text, ctx->exit_text, sizeof(sv->text));
    ctx->self = child;
    ctx->cur = NULL;
    ctx->exiting = false;
    ctx->init_failed = false;
}

static void
ctx_leave_child(tp_ctx *ctx, const struct saved_ctx *sv)
{
    ctx->self = sv->self;
    ctx->cur = sv->cur;
    ctx->exiting = sv->exiting;
    ctx->exit_reason = sv->reason;
    ctx->init_failed = false;
    if (sv->exiting) {
        memcpy(ctx->exit_text, sv->text, sizeof(sv->text));
        if (sv->reason.text != NULL)
            ctx->exit_reason.text = ctx->exit_text;
    }
}

/* Runs init under its own recovery point. Returns init's result, or
 * -ECANCELED when init crashed (ctx->exit_reason then says why). */
static int
run_init(tp_ctx *ctx, struct tp__actor *a, const tp_behaviour *b, void *arg)
{
    struct tp__recover r;
    volatile int err = 0;
    int saved_user = tp__tls_in_user;

    if (b->init == NULL)
        return 0;
    r.prev = tp__tls_recover;
    tp__tls_recover = &r;
    if (sigsetjmp(r.jb, 0) == 0) {
        TP__USER_BEGIN(ctx, a);
        err = b->init(ctx, a->state, arg);
        TP__USER_END(ctx);
    } else {
        TP__USER_END(ctx);
        crash_reason(ctx, a, &r);
        err = -ECANCELED;
    }
    tp__tls_recover = r.prev;
    tp__tls_in_user = saved_user;
    if (saved_user && ctx->sched != NULL) /* back in the parent's callback */
        atomic_store_explicit(&ctx->sched->in_user, 1, memory_order_relaxed);
    return err;
}

static int
link_parent(tp_ctx *ctx, struct tp__actor *child, tp_pid cpid)
{
    struct tp__actor_ext *cx = tp__actor_ext(child); /* for parent */
    tp_pid self = tp__actor_pid(ctx->self);

    if (cx == NULL || tp__link_add(child, self) < 0)
        return -ENOMEM;
    if (tp__link_add(ctx->self, cpid) < 0) {
        tp__link_remove(child, self);
        return -ENOMEM;
    }
    cx->parent = self;
    return 0;
}

/* Ends a child whose spawn failed after it became visible. */
static void
abort_child(tp_ctx *ctx, struct tp__actor *a, int err, bool crashed)
{
    tp_exit_reason why = {TP_EXIT_CRASH, err, "init failed"};
    char text[64];

    if (crashed) {
        why = ctx->exit_reason;
    } else {
        snprintf(text, sizeof(text), "init failed: %s", tp_strerror(err));
        why.text = text;
    }
    ctx->init_failed = true;
    tp__actor_die(ctx, a, &why);
    ctx->init_failed = false;
}

static int
finish_spawn(tp_ctx *ctx, struct tp__actor *a, tp_pid pid,
             const tp_behaviour *b, void *arg)
{
    int err = run_init(ctx, a, b, arg);

    if (err != 0) {
        abort_child(ctx, a, err, err == -ECANCELED);
        return err;
    }
    if (ctx->exiting) {
        tp__actor_die(ctx, a, &ctx->exit_reason);
        return 0;
    }
    (void)pid;
    /* Go idle; if init (or someone it told) already sent us something,
     * or a signal is pending, run a turn. */
    if (atomic_load(&a->sys) != NULL || !tp__mpsc_mark_empty(&a->mq))
        tp__actor_schedule(ctx->A, a);
    return 0;
}

static int
spawn_in(tp_ctx *ctx, const tp_behaviour *b, void *arg, const tp_spawn_opts *o,
         bool link, tp_pid *out)
{
    struct saved_ctx sv;
    struct tp__actor *a;
    size_t block;
    tp_pid pid;
    int klass, err;

    if ((err = validate(b, o)) != 0)
        return err;
    if (atomic_load(&ctx->rt->stopping))
        return -ESHUTDOWN;
    klass = tp__class_of(TP__ACTOR_HDR + b->state_size, &block);
    a = tp__slot_alloc(ctx, (unsigned)klass);
    if (a == NULL)
        return -ENOMEM;
    pid = incarnate(ctx, a, b, o);
    /* release: the incarnation's fields before its pid (senders acquire). */
    atomic_store_explicit(&a->pid, pid, memory_order_release);
    atomic_fetch_add_explicit(&ctx->st.live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ctx->st.actor_bytes, (int64_t)block,
                              memory_order_relaxed);
    TP__STAT_ADD(ctx->st.spawned, 1);
    if (o->name != NULL && (err = tp_register(ctx->rt, o->name, pid)) != 0) {
        ctx_enter_child(ctx, a, &sv);
        ctx->init_failed = true;
        tp__actor_die(ctx, a, &(tp_exit_reason){TP_EXIT_NORMAL, 0, NULL});
        ctx_leave_child(ctx, &sv);
        return err;
    }
    ctx_enter_child(ctx, a, &sv);
    if (link && sv.self != NULL) {
        ctx->self = sv.self;
        err = link_parent(ctx, a, pid);
        ctx->self = a;
        if (err != 0) {
            abort_child(ctx, a, err, false);
            ctx_leave_child(ctx, &sv);
            return err;
        }
    }
    err = finish_spawn(ctx, a, pid, b, arg);
    ctx_leave_child(ctx, &sv);
    if (err == 0 && out != NULL)
        *out = pid;
    return err;
}

int
tp_spawn(tp_ctx *ctx, const tp_behaviour *b, void *arg,
         const tp_spawn_opts *opts, tp_pid *out)
{
    tp_spawn_opts def;
    int r;
    TP__RUNTIME_BEGIN();

    if (opts == NULL) {
        tp_spawn_opts_init(&def);
        opts = &def;
    }
    r = spawn_in(ctx, b, arg, opts, opts->link && ctx->self != NULL, out);
    TP__RUNTIME_END();
    return r;
}

int
tp_runtime_spawn(tp_runtime *rt, const tp_behaviour *b, void *arg,
                 const tp_spawn_opts *opts, tp_pid *out)
{
    tp_spawn_opts def;
    tp_ctx *ctx;
    int r;

    if (opts == NULL) {
        tp_spawn_opts_init(&def);
        opts = &def;
    }
    ctx = tp__xctx_acquire(rt);
    r = spawn_in(ctx, b, arg, opts, false, out);
    tp__xctx_release(ctx);
    return r;
}

/* ---------------------------------------------------------------------- */
/* The running actor                                                      */

tp_pid
tp_self(const tp_ctx *ctx)
{
    return ctx->self != NULL ? tp__actor_pid(ctx->self) & ~TP__PID_DEAD
                             : TP_PID_NONE;
}

tp_runtime *
tp_ctx_runtime(const tp_ctx *ctx)
{
    return ctx->rt;
}

int
tp_ctx_scheduler(const tp_ctx *ctx)
{
    return ctx->index;
}

const char *
tp_ctx_behaviour_name(const tp_ctx *ctx)
{
    const tp_behaviour *b;

    if (ctx->self == NULL)
        return NULL;
    b = atomic_load_explicit(&ctx->self->beh, memory_order_relaxed);
    return b->name;
}

void
tp_become(tp_ctx *ctx, tp_handle_fn handler)
{
    struct tp__actor *a = ctx->self;

    if (a == NULL)
        return;
    a->handler =
        handler != NULL
            ? handler
            : atomic_load_explicit(&a->beh, memory_order_relaxed)->handle;
}

int
tp_stash(tp_ctx *ctx)
{
    struct tp__msg *m = ctx->cur;
    struct tp__actor_ext *x;

    /* Runtime types (exits, DOWNs, request answers, net events) are
     * consumed as they are delivered: not deferrable (actor.h). */
    if (m == NULL || ctx->self == NULL || tp_msg_is_system(m->m.type))
        return -EINVAL;
    x = tp__ext_peek(ctx->self);
    if (x != NULL && x->stash_n >= 65536)
        return -ENOBUFS;
    x = tp__actor_ext(ctx->self);
    if (x == NULL)
        return -ENOMEM;
    atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
    if (x->stash_tail != NULL)
        atomic_store_explicit(&x->stash_tail->node.next, &m->node,
                              memory_order_relaxed);
    else
        x->stash_head = m;
    x->stash_tail = m;
    x->stash_n++;
    ctx->cur = NULL; /* the stash owns it now */
    return 0;
}

size_t
tp_unstash_all(tp_ctx *ctx)
{
    struct tp__actor_ext *x =
        ctx->self != NULL ? tp__ext_peek(ctx->self) : NULL;
    size_t n;

    if (x == NULL || x->stash_head == NULL)
        return 0;
    /* Stashed messages go in front of anything unstashed earlier. */
    atomic_store_explicit(&x->stash_tail->node.next,
                          x->front_head != NULL ? &x->front_head->node : NULL,
                          memory_order_relaxed);
    if (x->front_head == NULL)
        x->front_tail = x->stash_tail;
    x->front_head = x->stash_head;
    n = x->stash_n;
    x->stash_head = x->stash_tail = NULL;
    x->stash_n = 0;
    return n;
}

size_t
tp_stash_size(const tp_ctx *ctx)
{
    const struct tp__actor_ext *x =
        ctx->self != NULL ? tp__ext_peek(ctx->self) : NULL;

    return x != NULL ? x->stash_n : 0;
}

int
tp_set_mailbox_bound(tp_ctx *ctx, uint32_t max_msgs, uint32_t max_bytes,
                     tp_overflow overflow)
{
    struct tp__actor *a = ctx != NULL ? ctx->self : NULL;

    if (a == NULL || overflow < TP_OVERFLOW_REJECT ||
        overflow > TP_OVERFLOW_KILL)
        return -EINVAL;
    /* Relaxed, as at spawn: senders read the bound as a hint, and a send
     * racing the change may be checked against either value. */
    atomic_store_explicit(&a->max_msgs, max_msgs, memory_order_relaxed);
    atomic_store_explicit(&a->max_bytes, max_bytes, memory_order_relaxed);
    atomic_store_explicit(&a->overflow, (uint8_t)overflow,
                          memory_order_relaxed);
    return 0;
}

void
tp_exit_with(tp_ctx *ctx, const tp_exit_reason *reason)
{
    if (ctx->self == NULL || ctx->exiting)
        return;
    ctx->exiting = true;
    ctx->exit_reason = *reason;
    if (reason->text != NULL) {
        snprintf(ctx->exit_text, sizeof(ctx->exit_text), "%s", reason->text);
        ctx->exit_reason.text = ctx->exit_text;
    }
}

void
tp_exit(tp_ctx *ctx)
{
    tp_exit_reason normal = {TP_EXIT_NORMAL, 0, NULL};

    tp_exit_with(ctx, &normal);
}

void
tp_vfail(tp_ctx *ctx, const char *fmt, va_list ap)
{
    struct tp__recover *r = tp__tls_recover;

    vsnprintf(ctx->exit_text, sizeof(ctx->exit_text), fmt, ap);
    if (r == NULL || ctx->self == NULL) {
        tp_log(TP_LOG_ERROR, "tp_fail outside an actor callback: %s",
               ctx->exit_text);
        abort();
    }
    r->signo = 0;
    r->addr = NULL;
    r->nbt = 0;
    tp__tls_in_user = 0;
    siglongjmp(r->jb, 1);
}

void
tp_fail(tp_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tp_vfail(ctx, fmt, ap);
}

/* ---------------------------------------------------------------------- */
/* Owned resources and internal calls                                      */

int
tp__actor_own(tp_ctx *ctx, struct tp__resource *r)
{
    struct tp__actor_ext *x;

    if (ctx->self == NULL)
        return -EINVAL;
    TP_ASSERT(tp__ctx_mine(ctx)); /* resources are owner-only */
    x = tp__actor_ext(ctx->self);
    if (x == NULL)
        return -ENOMEM;
    r->prev = x->res.prev;
    r->next = &x->res;
    x->res.prev->next = r;
    x->res.prev = r;
    return 0;
}

void
tp__actor_disown(tp_ctx *ctx, struct tp__resource *r)
{
    (void)ctx;
    if (r->next == NULL || r->next == r)
        return;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->next = r->prev = r;
}

struct call_payload {
    tp__call_fn fn;
    void *arg;
};

int
tp__actor_call(struct tp__actors *A, tp_pid to, tp__call_fn fn, void *arg)
{
    struct call_payload p = {fn, arg};
    struct tp__msg *m = tp__msg_copy(0, &p, sizeof(p));

    if (m == NULL)
        return -ENOMEM;
    m->sig = TP__SIG_CALL;
    return tp__signal(A, to, m);
}

void
tp__actor_run_call(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m)
{
    const struct call_payload *p = m->m.data;

    p->fn(ctx, a->state, p->arg);
}
