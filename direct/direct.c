/*
 * direct/direct.c - direct-style actors.
 *
 * A direct actor is an ordinary callback actor (its behaviour is the
 * adapter of TP_DIRECT_BEHAVIOUR) that runs its main on a fiber:
 *  - init picks the stack, pins the actor to its home scheduler and sends
 *    it a start message; the first turn starts the fiber;
 *  - every message the runtime hands to the adapter's handle is taken out
 *    of the runtime's hands (ctx->cur) and appended to the actor's private
 *    queue; if the fiber waits in a receive, it is resumed and scans the
 *    new messages; it switches back when it has to wait again;
 *  - receive timeouts and tp_sleep() are one-shot runtime timers sending
 *    TP__MSG_DIRECT_WAKE with a token as ref (stale ones are ignored);
 *  - the fiber runs inside the handle callback, so the long-callback
 *    watchdog, tracing, links, monitors, exit signals (trapped ones are
 *    messages like any other), names and supervisors see an ordinary
 *    actor. A fault or tp_fail() in the fiber jumps back to a recovery
 *    point set on the scheduler's stack around each resume (the fault
 *    handler already runs on an alternate signal stack, so a fiber's stack
 *    overflow into its guard page is caught too): the actor crashes.
 *
 * Fiber stacks: TP_STACK_FIXED has an mmap'd stack of its own with a guard
 * page; TP_STACK_COPIED runs on the scheduler thread's shared stack, and
 * the image of the actor that last ran there is saved to the heap (only
 * the bytes it used) lazily, when another copied-stack actor needs the
 * shared stack. TP_ASSERTS builds save eagerly and fill the vacated part
 * of the shared stack with 0xdb, so that a pointer into a parked actor's
 * stack reads garbage at once (see docs/DIRECT.md).
 */
#include "actors/actor_int.h"
#include "direct/direct_int.h"
#include "net/net_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe/direct.h>
#include <troupe/timer.h>

/* Runtime message types of the adapter (never seen by main). */
#define TP__MSG_DIRECT_START 0xffff0030u
#define TP__MSG_DIRECT_WAKE  0xffff0031u

enum dstate {
    D_NEW = 0,    /* fiber not started */
    D_RUN,        /* running */
    D_WAIT_MSG,   /* parked in a receive */
    D_WAIT_TIMER, /* parked in tp_sleep */
    D_EXITING,    /* parked for good: tp_exit() was called */
    D_DONE        /* main returned or crashed: the stack can go */
};

enum { W_NONE = 0, W_MSG, W_TIMEOUT };

/* Lives at the front of the actor's inline state (TP_DIRECT_HDR bytes). */
struct tp__direct {
    void *arg;
    struct tp__fctx fctx; /* saved while switched out */
    /* Fixed: the mmap'd stack (guard page below mem + page, len bytes;
     * cap is its valgrind id). Copied: the heap buffer holding the saved
     * image (len bytes, cap allocated). */
    char *mem;
    uint32_t len, cap;
    tp_timer timer;
    struct tp__msg *head, *tail; /* private queue, in arrival order */
    struct tp__msg *last;        /* returned by the last receive */
    struct tp__fsan san;
    /* The recovery point on the fiber's own stack, when armed (fixed
     * stacks, TSan builds: see run_main_guarded()). */
    struct tp__recover *frec;
    uint32_t token; /* ref of the armed wake timer */
    uint8_t st, mode, wake, flags;
};

/* flags */
#define DF_CONN 0x01u /* a listener's connection actor (net/wrap.c) */

_Static_assert(sizeof(struct tp__direct) <= TP_DIRECT_HDR, "direct header");

#if defined(__x86_64__) && !defined(TP_DIRECT_UCONTEXT)
/* The floating-point control words (MXCSR: SSE rounding and exception
 * masks; the x87 control word). */
struct fpcw {
    uint32_t mxcsr;
    uint16_t x87;
};

static inline __attribute__((always_inline)) void
fpcw_get(struct fpcw *f)
{
    __asm__ volatile("stmxcsr %0\n\t"
                     "fnstcw %1"
                     : "=m"(f->mxcsr), "=m"(f->x87));
}

static inline __attribute__((always_inline)) void
fpcw_set(const struct fpcw *f)
{
    __asm__ volatile("ldmxcsr %0\n\t"
                     "fldcw %1"
                     :
                     : "m"(f->mxcsr), "m"(f->x87));
}

static inline bool
fpcw_eq(const struct fpcw *a, const struct fpcw *b)
{
    return a->mxcsr == b->mxcsr && a->x87 == b->x87;
}
#define TP__FPCW 1
#endif /* else: the aarch64 switch saves FPCR, swapcontext() the whole         \
        * environment */

/* Per scheduler thread. */
struct dthr {
    struct tp__fctx sched; /* the scheduler's context while a fiber runs */
    struct tp__fsan_thr san;
    struct tp__direct *cur; /* fiber running now */
    tp_ctx *ctx;
    struct tp__stack shared;  /* copied mode: the shared stack */
    struct tp__direct *owner; /* whose image is on the shared stack */
#if defined(TP__FPCW)
    struct fpcw fp; /* the scheduler thread's control words */
#endif
};

static _Thread_local struct dthr *tls_thr;
static pthread_key_t thr_key;
static pthread_once_t thr_once = PTHREAD_ONCE_INIT;

/* Options of the tp_spawn_direct() in progress on this thread (init runs
 * synchronously inside tp_spawn()). */
static _Thread_local const tp_direct_opts *tls_spawn_opts;

static void
thr_free(void *p)
{
    struct dthr *t = p;

    tp__stack_unmap(&t->shared);
    tp__fctx_free(&t->sched);
    if (tls_thr == t)
        tls_thr = NULL;
    tp__free(t);
}

static void
thr_key_make(void)
{
    (void)pthread_key_create(&thr_key, thr_free);
}

static struct dthr *
thr_get(void)
{
    struct dthr *t = tls_thr;

    if (TP__LIKELY(t != NULL))
        return t;
    pthread_once(&thr_once, thr_key_make);
    t = tp__calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (tp__fctx_init(&t->sched) != 0) {
        tp__free(t);
        return NULL;
    }
    /* Freed at thread exit (scheduler threads end with their runtime). */
    if (pthread_setspecific(thr_key, t) != 0) {
        tp__fctx_free(&t->sched);
        tp__free(t);
        return NULL;
    }
#if defined(TP__FPCW)
    /* The words every fiber starts with and gives back when it parks. */
    fpcw_get(&t->fp);
#endif
    tls_thr = t;
    return t;
}

static inline void *
user_state(struct tp__direct *d)
{
    return (char *)d + TP_DIRECT_HDR;
}

/* The tp_direct of the actor ctx runs: its behaviour, or for a listener's
 * connection actor (whose behaviour is the listener's wrapper, net/wrap.c)
 * the listener's own behaviour. NULL when it is not a direct actor. */
static const tp_direct *
direct_of(tp_ctx *ctx)
{
    const tp_behaviour *b;

    if (ctx == NULL || ctx->self == NULL)
        return NULL;
    b = atomic_load_explicit(&ctx->self->beh, memory_order_relaxed);
    if (b->init != tp_direct_adapter_init)
        b = tp__wrapped_behaviour(ctx);
    if (b == NULL || b->init != tp_direct_adapter_init)
        return NULL;
    return (const tp_direct *)(const void *)b;
}

static inline struct tp__msg *
qnext(struct tp__msg *m)
{
    return (struct tp__msg *)atomic_load_explicit(&m->node.next,
                                                  memory_order_relaxed);
}

static inline void
qset_next(struct tp__msg *m, struct tp__msg *n)
{
    atomic_store_explicit(&m->node.next, n != NULL ? &n->node : NULL,
                          memory_order_relaxed);
}

/* The private queue counts as mailbox: a message moved there from the
 * runtime's mailbox is still queued for the bounds (max_msgs, max_bytes)
 * and for tp_actor_peek() until a receive takes it (or the actor dies).
 * deq and bytes are the owner's to write (actors/actor_int.h). */
static void
q_hold(struct tp__actor *a, struct tp__msg *m)
{
    atomic_store_explicit(
        &a->deq, atomic_load_explicit(&a->deq, memory_order_relaxed) - 1,
        memory_order_relaxed);
    if (atomic_load_explicit(&a->max_bytes, memory_order_relaxed) != 0 &&
        !(m->flags & TP__MSG_FORCED)) {
        atomic_fetch_add_explicit(&a->bytes, m->m.len, memory_order_relaxed);
        m->flags |= TP__MSG_COUNTED;
    }
}

static void
q_release(struct tp__actor *a, struct tp__msg *m)
{
    atomic_store_explicit(
        &a->deq, atomic_load_explicit(&a->deq, memory_order_relaxed) + 1,
        memory_order_relaxed);
    if (m->flags & TP__MSG_COUNTED) {
        atomic_fetch_sub_explicit(&a->bytes, m->m.len, memory_order_relaxed);
        m->flags &= (uint16_t)~TP__MSG_COUNTED;
    }
}

/* ---------------------------------------------------------------------- */
/* Stacks                                                                 */

/* Publishes what tp_direct_stack_bytes() reports, for `ps` (relaxed: a
 * statistic; tp__direct_peek() validates the pid around its read). */
static void
publish_stack(struct tp__direct *d)
{
    /* d is the front of its actor's inline state; the actor is pinned to
     * this thread (a copied-stack owner saved here is too). */
    struct tp__actor *a =
        (struct tp__actor *)(void *)((char *)d -
                                     offsetof(struct tp__actor, state));

    atomic_store_explicit(&a->stack_held,
                          d->mode == TP_STACK_FIXED ? d->len : d->cap,
                          memory_order_relaxed);
}

static inline char *
shared_top(struct dthr *t)
{
    return t->shared.lo + t->shared.size;
}

/* Copies the image of the shared stack's owner to its heap buffer. */
static int
save_image(struct dthr *t, struct tp__direct *o)
{
    char *top = shared_top(t), *lo = tp__fctx_low(&o->fctx);
    size_t n;

    if (lo == NULL || lo < t->shared.lo || lo > top)
        lo = t->shared.lo;
    n = (size_t)(top - lo);
    if (o->cap < n || o->cap > 2 * n + 256) {
        char *b = tp__realloc(o->mem, n);
        if (b == NULL && n != 0)
            return -ENOMEM;
        o->mem = b;
        o->cap = (uint32_t)n;
        publish_stack(o);
    }
    tp__fsan_unpoison(lo, n);
    if (n != 0) /* an empty image may have no buffer */
        memcpy(o->mem, lo, n);
    o->len = (uint32_t)n;
    return 0;
}

static void
restore_image(struct dthr *t, struct tp__direct *d)
{
    char *lo = shared_top(t) - d->len;

    tp__fsan_writable(t->shared.lo, t->shared.size);
    memcpy(lo, d->mem, d->len);
}

/* Debug builds: a parked copied-stack actor leaves nothing on the shared
 * stack, and the bytes it vacated read as 0xdb. */
static void
debug_vacate(struct dthr *t, struct tp__direct *d)
{
#if defined(TP_ASSERTS)
    if (t->owner == d && save_image(t, d) == 0) {
        char *lo = shared_top(t) - d->len;
        memset(lo, 0xdb, d->len);
        t->owner = NULL;
    }
#else
    (void)t, (void)d;
#endif
}

static void
stack_release(struct tp__direct *d)
{
    struct dthr *t = tls_thr;

    if (d->mode == TP_STACK_FIXED) {
        if (d->mem != NULL) {
            struct tp__stack s = {d->mem, d->mem + tp__page_size(), d->len,
                                  tp__page_size(), d->cap};
            tp__stack_unmap(&s);
        }
    } else {
        if (t != NULL && t->owner == d)
            t->owner = NULL;
        tp__free(d->mem);
    }
    d->mem = NULL;
    d->len = d->cap = 0;
    publish_stack(d);
}

/* ---------------------------------------------------------------------- */
/* Switching                                                              */

static void fiber_entry(void *arg);

/* Sets the stack up for d to run: starts its context, or puts its image
 * back on the shared stack. */
static int
prepare(struct dthr *t, struct tp__direct *d)
{
    if (d->mode == TP_STACK_FIXED) {
        if (d->st == D_NEW)
            return tp__fctx_make(&d->fctx, d->mem + tp__page_size(), d->len,
                                 fiber_entry, d);
        return 0;
    }
    if (t->shared.base == NULL &&
        tp__stack_map(&t->shared, TP_DIRECT_SHARED_STACK) != 0)
        return -ENOMEM;
    if (t->owner == d)
        return 0;
    if (t->owner != NULL) {
        if (save_image(t, t->owner) != 0)
            return -ENOMEM;
        t->owner = NULL;
    }
    if (d->st == D_NEW) {
        tp__fsan_writable(t->shared.lo, t->shared.size);
        if (tp__fctx_make(&d->fctx, t->shared.lo, t->shared.size, fiber_entry,
                          d) != 0)
            return -ENOMEM;
    } else {
        restore_image(t, d);
    }
    t->owner = d;
    return 0;
}

/* The switch into d (and back). */
static inline void
switch_in(struct dthr *t, struct tp__direct *d)
{
#if defined(TP__DIRECT_SAN)
    if (d->mode == TP_STACK_FIXED)
        tp__fsan_to_fiber(&t->san, &d->san, d->mem + tp__page_size(), d->len);
    else
        tp__fsan_to_fiber(&t->san, &d->san, t->shared.lo, t->shared.size);
#endif
    tp__fctx_switch(&t->sched, &d->fctx);
    tp__fsan_in_sched(&t->san);
}

/* The switch under a recovery point on this (the scheduler's) stack.
 * Returns 1 when d crashed. */
static int
enter(struct dthr *t, struct tp__direct *d, struct tp__recover *r)
{
    if (sigsetjmp(r->jb, 0) != 0)
        return 1;
    switch_in(t, d);
    return 0;
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

/* d crashed (fault or tp_fail): we are back on the scheduler's stack. */
static void
crashed(tp_ctx *ctx, struct dthr *t, struct tp__direct *d,
        const struct tp__recover *r)
{
    char text[256], pidbuf[32], who[128];
    tp_exit_reason why = {TP_EXIT_CRASH, r->signo, text};
    const char *bname = direct_of(ctx)->behaviour.name;

#if defined(TP__FPCW)
    /* A crash jumps past park(): the thread's control words back. */
    fpcw_set(&t->fp);
#endif
    tp_pid_format(tp_self(ctx), pidbuf, sizeof(pidbuf));
    snprintf(who, sizeof(who), "actor %s (%s)", pidbuf, bname ? bname : "?");
    if (r->signo == 0) {
        snprintf(text, sizeof(text), "%s", ctx->exit_text); /* tp_fail's */
        tp_log(TP_LOG_INFO, "%s failed: %s", who, text);
    } else {
        struct tp__stack s = {0};
        if (d->mode == TP_STACK_FIXED && d->mem != NULL)
            s = (struct tp__stack){d->mem, d->mem + tp__page_size(), d->len,
                                   tp__page_size(), d->cap};
        else if (d->mode == TP_STACK_COPIED)
            s = t->shared;
        if (tp__stack_overflowed(&s, r->addr))
            snprintf(text, sizeof(text), "stack_overflow");
        else
            snprintf(text, sizeof(text), "%s at address %p in %s",
                     signal_name(r->signo), r->addr, who);
        tp__fault_report(r, who);
    }
    d->st = D_DONE;
    ctx->exiting = false; /* the crash wins over an earlier tp_exit() */
    tp_exit_with(ctx, &why);
}

/* Runs d's fiber until it waits again (or ends). */
static void
resume(tp_ctx *ctx, struct tp__direct *d, uint8_t wake)
{
    struct dthr *t = thr_get();
    struct tp__recover r;
    int saved_in_user = tp__tls_in_user;

    if (t == NULL || prepare(t, d) != 0) {
        tp_exit_with(ctx, &(tp_exit_reason){TP_EXIT_CRASH, ENOMEM,
                                            "direct actor: out of memory"});
        d->st = D_DONE;
        return;
    }
    d->wake = wake;
    t->cur = d;
    t->ctx = ctx;
    r.prev = tp__tls_recover;
    if (d->frec != NULL) {
        /* The fiber's own recovery point is armed (fixed stacks, TSan). */
        tp__tls_recover = d->frec;
        switch_in(t, d);
    } else {
        r.signo = 0;
        tp__tls_recover = &r;
        if (enter(t, d, &r) != 0) {
            tp__fsan_crashed(&t->san);
            crashed(ctx, t, d, &r);
        }
    }
    tp__tls_recover = r.prev;
    tp__tls_in_user = saved_in_user;
    t->cur = NULL;
    if (d->st == D_DONE) {
        if (t->owner == d)
            t->owner = NULL; /* nothing to keep */
    } else if (d->mode == TP_STACK_COPIED) {
        debug_vacate(t, d);
    }
}

/* On the fiber: switches back to the scheduler in state st; returns the
 * reason it was resumed. */
static uint8_t
park(struct tp__direct *d, uint8_t st)
{
    struct dthr *t = tls_thr;
#if defined(TP__FPCW)
    /* A fiber that changed a control word (fesetround, ...) keeps its own
     * across the park, in this frame, and hands the thread's back: the
     * scheduler and the actors it runs next see the thread's. Only this
     * side reads the words (stmxcsr costs a few ns); resume() needs none:
     * whatever it ran with is the thread's. */
    struct fpcw own;
    bool keep;

    fpcw_get(&own);
    keep = !fpcw_eq(&own, &t->fp);
    if (TP__UNLIKELY(keep))
        fpcw_set(&t->fp);
#endif
    d->st = st;
    tp__fsan_to_sched(&t->san, &d->san, st == D_DONE);
    tp__fctx_switch(&d->fctx, &t->sched);
    t = tls_thr;
    tp__fsan_in_fiber(&t->san, &d->san);
#if defined(TP__FPCW)
    if (TP__UNLIKELY(keep))
        fpcw_set(&own);
#endif
    d->st = D_RUN;
    return d->wake;
}

static void __attribute__((noreturn))
park_forever(struct tp__direct *d, uint8_t st)
{
    park(d, st);
    abort(); /* never resumed */
}

/* A crash jumped back to the fiber's own recovery point. */
static void __attribute__((noreturn, noinline)) fiber_crashed(void)
{
    struct dthr *t = tls_thr;
    struct tp__direct *d = t->cur;

    crashed(t->ctx, t, d, d->frec);
    d->frec = NULL;
    park_forever(d, D_DONE);
}

static void
run_main(struct tp__direct *d)
{
    tp_ctx *ctx = tls_thr->ctx;

    direct_of(ctx)->main(ctx, user_state(d), d->arg);
}

/* Runs main under a recovery point on the fiber's own stack, armed once:
 * resuming then costs no sigsetjmp. Used for fixed stacks (where the
 * recovery point's few hundred bytes cost nothing) and in TSan builds
 * (TSan cannot follow a longjmp from one fiber to another). */
static void __attribute__((noinline)) run_main_guarded(struct tp__direct *d)
{
    struct tp__recover rec;

    rec.prev = NULL;
    rec.signo = 0;
    d->frec = &rec;
    tp__tls_recover = &rec;
    if (sigsetjmp(rec.jb, 0) != 0)
        fiber_crashed();
    run_main(d);
    d->frec = NULL;
}

static void
fiber_entry(void *arg)
{
    struct tp__direct *d = arg;
    struct dthr *t = tls_thr;
    tp_ctx *ctx;

    tp__fsan_in_fiber(&t->san, &d->san);
    d->st = D_RUN;
#if defined(TP__DIRECT_TSAN)
    run_main_guarded(d);
#else
    /* Copied stacks keep the recovery point on the scheduler's side: an
     * idle actor's saved image stays small. */
    if (d->mode == TP_STACK_FIXED)
        run_main_guarded(d);
    else
        run_main(d);
#endif
    ctx = tls_thr->ctx;
    if (!ctx->exiting)
        tp_exit(ctx);
    park_forever(d, D_DONE);
}

/* ---------------------------------------------------------------------- */
/* The adapter                                                            */

int
tp_direct_adapter_init(tp_ctx *ctx, void *state, void *arg)
{
    struct tp__direct *d = state;
    struct tp__actor *a = ctx->self;
    const tp_direct *dd = direct_of(ctx);
    const tp_direct_opts *o = tls_spawn_opts;
    tp_stack_mode mode = o != NULL ? o->stack : TP_STACK_DEFAULT;
    size_t size = o != NULL ? o->stack_size : 0;
    struct tp__msg *m;

    tls_spawn_opts = NULL;
    if (dd == NULL || dd->main == NULL)
        return -EINVAL;
    if (mode == TP_STACK_DEFAULT)
        mode = dd->stack;
    if (mode == TP_STACK_DEFAULT)
        mode = TP_STACK_FIXED;
    if (mode != TP_STACK_FIXED && mode != TP_STACK_COPIED)
        return -EINVAL;
    if (size == 0)
        size = dd->stack_size;
    if (size == 0)
        size = TP_DIRECT_STACK_DEFAULT;
    if (size < TP_DIRECT_STACK_MIN || size > (1u << 30))
        return -EINVAL;
    d->arg = arg;
    d->mode = (uint8_t)mode;
    d->st = D_NEW;
    /* A connection actor's adapter runs under the listener's wrapper. */
    d->flags = atomic_load_explicit(&a->beh, memory_order_relaxed)->init !=
                       tp_direct_adapter_init
                   ? DF_CONN
                   : 0;
    if (mode == TP_STACK_FIXED) {
        struct tp__stack s;
        if (tp__stack_map(&s, size) != 0)
            return -ENOMEM;
        d->mem = s.base;
        d->len = (uint32_t)s.size;
        d->cap = s.vg;
    }
    /* Pinned to the home scheduler the spawn picked: the fiber's ctx and
     * its stack (the shared one in copied mode) belong to that thread. The
     * actor is not scheduled before init returns. (A connection actor's
     * home is the scheduler whose loop accepted it, or the listener's
     * `scheduler`: pinned there too.) */
    atomic_fetch_or_explicit(&a->aflags, TP__AF_PINNED | TP__AF_DIRECT,
                             memory_order_relaxed);
    publish_stack(d);
    m = tp__msg_alloc(0);
    if (m == NULL) {
        stack_release(d);
        return -ENOMEM;
    }
    m->m.type = TP__MSG_DIRECT_START;
    m->m.from = tp_self(ctx);
    m->flags |= TP__MSG_FORCED;
    if (tp__deliver(ctx, tp_self(ctx), m) != 0) {
        stack_release(d);
        return -ENOMEM;
    }
    tp__fsan_create(&d->san);
    return 0;
}

static void
disarm(tp_ctx *ctx, struct tp__direct *d)
{
    if (d->timer != TP_TIMER_NONE) {
        tp_cancel_timer(ctx, d->timer);
        d->timer = TP_TIMER_NONE;
    }
    d->token++; /* a wake already in the mailbox is now stale */
}

void
tp_direct_adapter_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct tp__direct *d = state;
    struct tp__msg *m;
    uint8_t wake;

    if (TP__UNLIKELY(msg->type == TP__MSG_DIRECT_START)) {
        if (d->st != D_NEW)
            return; /* the runtime frees the message */
        wake = W_NONE;
    } else if (TP__UNLIKELY(msg->type == TP__MSG_DIRECT_WAKE)) {
        if (msg->ref != d->token ||
            (d->st != D_WAIT_MSG && d->st != D_WAIT_TIMER))
            return;
        d->timer = TP_TIMER_NONE;
        d->token++;
        wake = W_TIMEOUT;
    } else {
        /* Ours now: the runtime does not free a message it no longer has. */
        m = ctx->cur;
        ctx->cur = NULL;
        q_hold(ctx->self, m);
        qset_next(m, NULL);
        if (d->tail != NULL)
            qset_next(d->tail, m);
        else
            d->head = m;
        d->tail = m;
        if (d->st != D_WAIT_MSG)
            return;
        wake = W_MSG;
    }
    resume(ctx, d, wake);
}

static void
drop_msg(tp_ctx *ctx, struct tp__msg *m)
{
    tp__request_orphaned(ctx, m, tp_self(ctx));
    tp__dead_letter(ctx, m);
}

void
tp_direct_adapter_terminate(tp_ctx *ctx, void *state,
                            const tp_exit_reason *reason)
{
    struct tp__direct *d = state;
    const tp_direct *dd = direct_of(ctx);
    struct tp__msg *m, *next;

    if (dd != NULL && dd->terminate != NULL)
        dd->terminate(ctx, user_state(d), reason);
    if (d->last != NULL) {
        tp__request_orphaned(ctx, d->last, tp_self(ctx));
        tp__msg_free(d->last);
        d->last = NULL;
    }
    for (m = d->head; m != NULL; m = next) {
        next = qnext(m);
        q_release(ctx->self, m);
        drop_msg(ctx, m);
    }
    d->head = d->tail = NULL;
    stack_release(d);
    tp__fctx_free(&d->fctx);
    tp__fsan_destroy(&d->san);
    d->st = D_DONE;
}

/* ---------------------------------------------------------------------- */
/* Spawning                                                               */

static int
check_direct(const tp_direct *d)
{
    if (d == NULL || d->main == NULL ||
        d->behaviour.init != tp_direct_adapter_init ||
        d->behaviour.handle != tp_direct_adapter_handle ||
        d->behaviour.state_size < TP_DIRECT_HDR)
        return -EINVAL;
    return 0;
}

int
tp_spawn_direct(tp_ctx *ctx, const tp_direct *d, void *arg,
                const tp_spawn_opts *opts, const tp_direct_opts *dopts,
                tp_pid *out)
{
    int r = check_direct(d);

    if (r != 0)
        return r;
    tls_spawn_opts = dopts;
    r = tp_spawn(ctx, &d->behaviour, arg, opts, out);
    tls_spawn_opts = NULL;
    return r;
}

int
tp_runtime_spawn_direct(tp_runtime *rt, const tp_direct *d, void *arg,
                        const tp_spawn_opts *opts, const tp_direct_opts *dopts,
                        tp_pid *out)
{
    int r = check_direct(d);

    if (r != 0)
        return r;
    tls_spawn_opts = dopts;
    r = tp_runtime_spawn(rt, &d->behaviour, arg, opts, out);
    tls_spawn_opts = NULL;
    return r;
}

/* ---------------------------------------------------------------------- */
/* Blocking calls                                                         */

/* The direct actor whose main runs on this thread with this ctx (t->cur is
 * only set while a direct actor's fiber runs; the state check fails for a
 * ctx lent to a child's init meanwhile). */
static inline struct tp__direct *
self_direct(const tp_ctx *ctx)
{
    struct dthr *t = tls_thr;

    if (t == NULL || t->cur == NULL || t->ctx != ctx || ctx->self == NULL ||
        (struct tp__direct *)(void *)ctx->self->state != t->cur)
        return NULL;
    return t->cur;
}

bool
tp_in_direct(const tp_ctx *ctx)
{
    return self_direct(ctx) != NULL;
}

/* Start of a blocking call: parks for good if the actor is exiting. The
 * message the previous call returned stays valid until this one returns
 * (a call may forward its payload, a match function may read it). */
static void
blocking_begin(tp_ctx *ctx, struct tp__direct *d)
{
    if (ctx->exiting)
        park_forever(d, D_EXITING);
}

/* End of a blocking call: m (or none) is what it returns. */
static void
set_last(struct tp__direct *d, struct tp__msg *m)
{
    if (d->last != NULL)
        tp__msg_free(d->last);
    d->last = m;
}

static int
arm(tp_ctx *ctx, struct tp__direct *d, uint32_t ms)
{
    return tp__timer_arm_sys(ctx, ms, tp_self(ctx), TP__MSG_DIRECT_WAKE,
                             d->token, &d->timer);
}

/* Scans the queue after *prev for a match, waiting for new messages. */
static int
receive_from(tp_ctx *ctx, struct tp__direct *d, tp_match_fn match, void *arg,
             struct tp__msg *prev, const tp_msg **out, int timeout_ms)
{
    bool armed = false;
    int err;

    for (;;) {
        struct tp__msg *m = prev != NULL ? qnext(prev) : d->head;

        for (; m != NULL; prev = m, m = qnext(m)) {
            if (match != NULL && !match(&m->m, arg))
                continue;
            if (prev != NULL)
                qset_next(prev, qnext(m));
            else
                d->head = qnext(m);
            if (d->tail == m)
                d->tail = prev;
            q_release(ctx->self, m);
            if (d->flags & DF_CONN)
                tp__wrap_progress(ctx);
            if (armed)
                disarm(ctx, d);
            set_last(d, m);
            if (out != NULL)
                *out = &m->m;
            return 0;
        }
        if (timeout_ms == 0) {
            set_last(d, NULL);
            return -ETIMEDOUT;
        }
        if (!armed && timeout_ms > 0) {
            if ((err = arm(ctx, d, (uint32_t)timeout_ms)) != 0) {
                set_last(d, NULL);
                return err;
            }
            armed = true;
        }
        if (park(d, D_WAIT_MSG) == W_TIMEOUT) {
            set_last(d, NULL);
            return -ETIMEDOUT;
        }
    }
}

int
tp_receive_match(tp_ctx *ctx, tp_match_fn match, void *arg, const tp_msg **msg,
                 int timeout_ms)
{
    struct tp__direct *d = self_direct(ctx);

    if (d == NULL)
        return -EINVAL;
    blocking_begin(ctx, d);
    return receive_from(ctx, d, match, arg, NULL, msg, timeout_ms);
}

int
tp_receive(tp_ctx *ctx, const tp_msg **msg, int timeout_ms)
{
    struct tp__direct *d;
    struct tp__msg *m;

    if (timeout_ms >= 0)
        return tp_receive_match(ctx, NULL, NULL, msg, timeout_ms);
    /* The common case, any message and no timeout: the head of the queue,
     * else park until the adapter appends one (no timer, no match). */
    if ((d = self_direct(ctx)) == NULL)
        return -EINVAL;
    blocking_begin(ctx, d);
    while ((m = d->head) == NULL)
        (void)park(d, D_WAIT_MSG);
    d->head = qnext(m);
    if (d->tail == m)
        d->tail = NULL;
    q_release(ctx->self, m);
    if (d->flags & DF_CONN)
        tp__wrap_progress(ctx);
    set_last(d, m);
    if (msg != NULL)
        *msg = &m->m;
    return 0;
}

int
tp_sleep(tp_ctx *ctx, uint32_t ms)
{
    struct tp__direct *d = self_direct(ctx);
    int err;

    if (d == NULL)
        return -EINVAL;
    blocking_begin(ctx, d);
    if (ms != 0 && (err = arm(ctx, d, ms)) != 0) {
        set_last(d, NULL);
        return err;
    }
    while (ms != 0 && park(d, D_WAIT_TIMER) != W_TIMEOUT) {
    }
    set_last(d, NULL);
    return 0;
}

static bool
match_answer(const tp_msg *m, void *arg)
{
    return m->ref == *(const uint64_t *)arg &&
           (m->type == TP_MSG_REPLY || m->type == TP_MSG_TIMEOUT ||
            m->type == TP_MSG_NOPROC);
}

int
tp_call_direct(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
               size_t len, uint32_t timeout_ms, const tp_msg **reply)
{
    struct tp__direct *d = self_direct(ctx);
    const tp_msg *m;
    struct tp__msg *mark;
    uint64_t ref;
    int err;

    if (d == NULL)
        return -EINVAL;
    blocking_begin(ctx, d);
    /* The answer comes after everything queued now: scan from the tail. */
    mark = d->tail;
    err = tp_request(ctx, to, type, data, len, timeout_ms, &ref);
    if (err != 0) {
        set_last(d, NULL);
        return err;
    }
    err = receive_from(ctx, d, match_answer, &ref, mark, &m, -1);
    if (err != 0)
        return err;
    if (m->type == TP_MSG_TIMEOUT)
        return -ETIMEDOUT;
    if (m->type == TP_MSG_NOPROC)
        return -ESRCH;
    if (reply != NULL)
        *reply = m;
    return 0;
}

bool
tp__direct_is(const tp_ctx *ctx)
{
    return ctx != NULL && ctx->self != NULL && direct_of((tp_ctx *)ctx) != NULL;
}

size_t
tp_direct_stack_bytes(const tp_ctx *ctx)
{
    struct tp__direct *d;

    if (direct_of((tp_ctx *)ctx) == NULL)
        return 0;
    d = (struct tp__direct *)(void *)ctx->self->state;
    return d->mode == TP_STACK_FIXED ? d->len : d->cap;
}

int
tp__direct_peek(struct tp_runtime *rt, tp_pid pid, uint64_t *stack_bytes)
{
    struct tp__actor *a = tp__actor_lookup(tp__actors_of(rt), pid);
    uint16_t fl;
    uint32_t held;

    if (a == NULL)
        return -ESRCH;
    fl = atomic_load_explicit(&a->aflags, memory_order_relaxed);
    held = atomic_load_explicit(&a->stack_held, memory_order_relaxed);
    /* Seqlock-style, as tp_actor_peek(): the fields belong to pid only if
     * the slot still holds it afterwards (acquire load). */
    if (tp__actor_pid(a) != pid)
        return -ESRCH;
    *stack_bytes = (fl & TP__AF_DIRECT) ? held : 0;
    return (fl & TP__AF_DIRECT) ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Passive reads                                                          */

static inline bool
conn_msg(const tp_msg *m, tp_conn conn)
{
    return (m->type == TP_MSG_TCP_DATA || m->type == TP_MSG_TCP_CLOSED ||
            m->type == TP_MSG_TCP_PEER_SHUTDOWN) &&
           m->ref == conn;
}

/* Unlinks m (prev: the message before it, or NULL) from the queue. */
static void
q_unlink(tp_ctx *ctx, struct tp__direct *d, struct tp__msg *m,
         struct tp__msg *prev)
{
    if (prev != NULL)
        qset_next(prev, qnext(m));
    else
        d->head = qnext(m);
    if (d->tail == m)
        d->tail = prev;
    q_release(ctx->self, m);
    if (d->flags & DF_CONN)
        tp__wrap_progress(ctx);
}

/* Lets one more DATA message of conn in: nothing to do in active mode,
 * tp_tcp_activate() in the once and passive modes. -ENOTCONN when the
 * handle is stale (the connection is gone). */
static int
ask_read(tp_ctx *ctx, tp_conn conn)
{
    struct tp__conn *c = tp__conn_resolve(tp__net_of(ctx->rt), conn);

    if (c == NULL ||
        atomic_load_explicit(&c->state, memory_order_relaxed) == TP__C_FREE)
        return -ENOTCONN;
    if (tp__conn_mode(c) == TP_READ_ACTIVE)
        return 0;
    return tp_tcp_activate(ctx, conn);
}

/* Waits for the first DATA, CLOSED or PEER_SHUTDOWN of conn in the queue
 * (the others stay queued): 0 with *found (and *before, the message
 * before it, or NULL), -ETIMEDOUT, -ENOTCONN (stale handle, nothing of it
 * queued), or a timer error. */
static int
conn_wait(tp_ctx *ctx, struct tp__direct *d, tp_conn conn,
          struct tp__msg **found, struct tp__msg **before, int timeout_ms)
{
    struct tp__msg *prev = NULL;
    bool armed = false, asked = false;
    int err;

    for (;;) {
        struct tp__msg *m = prev != NULL ? qnext(prev) : d->head;

        for (; m != NULL; prev = m, m = qnext(m)) {
            if (!conn_msg(&m->m, conn))
                continue;
            if (armed)
                disarm(ctx, d);
            *found = m;
            *before = prev;
            return 0;
        }
        if (!asked) {
            asked = true;
            if ((err = ask_read(ctx, conn)) != 0)
                return err;
        }
        if (timeout_ms == 0)
            return -ETIMEDOUT;
        if (!armed && timeout_ms > 0) {
            if ((err = arm(ctx, d, (uint32_t)timeout_ms)) != 0)
                return err;
            armed = true;
        }
        /* Nothing this call was given points into the last message: it
         * can go now rather than stay with the parked actor. */
        set_last(d, NULL);
        if (park(d, D_WAIT_MSG) == W_TIMEOUT)
            return -ETIMEDOUT;
    }
}

int
tp_tcp_recv_msg(tp_ctx *ctx, tp_conn conn, const tp_msg **msg, int timeout_ms)
{
    struct tp__direct *d = self_direct(ctx);
    struct tp__msg *m, *prev;
    int err;

    if (d == NULL || msg == NULL || conn == TP_CONN_NONE)
        return -EINVAL;
    blocking_begin(ctx, d);
    *msg = NULL;
    err = conn_wait(ctx, d, conn, &m, &prev, timeout_ms);
    if (err != 0) {
        set_last(d, NULL);
        return err == -ENOTCONN ? 0 : err;
    }
    if (m->m.type != TP_MSG_TCP_DATA) {
        /* End of stream: stays queued, so every later read sees it too. */
        set_last(d, NULL);
        *msg = &m->m;
        return 0;
    }
    q_unlink(ctx, d, m, prev);
    set_last(d, m);
    *msg = &m->m;
    return (int)m->m.len;
}

int
tp_tcp_recv(tp_ctx *ctx, tp_conn conn, void *buf, size_t len, int timeout_ms)
{
    struct tp__direct *d = self_direct(ctx);
    struct tp__msg *m, *prev;
    size_t n;
    bool whole;
    int err;

    if (d == NULL || buf == NULL || len == 0 || conn == TP_CONN_NONE)
        return -EINVAL;
    blocking_begin(ctx, d);
    err = conn_wait(ctx, d, conn, &m, &prev, timeout_ms);
    set_last(d, NULL);
    if (err != 0)
        return err == -ENOTCONN ? 0 : err;
    if (m->m.type != TP_MSG_TCP_DATA)
        return 0; /* stays queued: later reads see the end too */
    whole = m->m.len <= len;
    n = whole ? m->m.len : len;
    memcpy(buf, m->m.data, n);
    if (whole) {
        q_unlink(ctx, d, m, prev);
        tp__msg_free(m);
    } else {
        /* The rest stays at its place in the queue for the next read. */
        struct tp__actor *a = ctx->self;
        m->m.data = (const char *)m->m.data + n;
        m->m.len -= (uint32_t)n;
        if (m->flags & TP__MSG_COUNTED)
            atomic_fetch_sub_explicit(&a->bytes, n, memory_order_relaxed);
    }
    return (int)n;
}
