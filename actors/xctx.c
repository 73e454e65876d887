/*
 * actors/xctx.c - contexts for threads outside the runtime.
 *
 * A thread that is not a scheduler (main, a foreign event loop, a libnats
 * callback thread, a worker pool) and calls tp_runtime_send(),
 * tp_runtime_spawn(), ... gets a context of its own in that runtime on its
 * first call, and finds it again through a small thread-local cache: outside
 * threads share no lock on their path into the runtime (as Pony registers
 * its threads), and each context keeps the single-writer rule of its
 * counters, slot caches and arenas.
 *
 * Contexts are freed with the runtime, never before: when a thread exits
 * (or evicts a runtime from its cache) its context is marked orphaned and
 * the next thread that registers adopts it, so a runtime holds at most as
 * many outside contexts as outside threads ever used it at once. Marking
 * needs to know that the runtime still exists: the runtimes alive are kept
 * in a list under one global lock, taken only at runtime creation and
 * destruction, thread exit and cache eviction -- never on a send.
 *
 * Should a context not be allocatable, the call falls back to the
 * runtime's shared context under a recursive lock (nested calls from an
 * init run by tp_runtime_spawn() then still work).
 */
#include "actor_int.h"

#include <pthread.h>
#include <string.h>

#define XCACHE 4

struct xcache_entry {
    struct tp__actors *A;
    uint64_t id;
    tp_ctx *ctx;
};

static _Thread_local struct xcache_entry xcache[XCACHE];
static _Thread_local unsigned xcache_victim;

/* The runtimes alive (their actor tables), for thread-exit marking. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tp__actors *live_head;
static uint64_t live_next_id;

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* Caller holds live_lock. */
static bool
runtime_alive(const struct tp__actors *A, uint64_t id)
{
    for (const struct tp__actors *p = live_head; p != NULL; p = p->xlive_next)
        if (p == A && p->id == id)
            return true;
    return false;
}

/* Hands e's context over to whichever thread registers next. */
static void
orphan_locked(struct xcache_entry *e)
{
    if (e->ctx != NULL && runtime_alive(e->A, e->id)) {
        /* release: this thread's writes to the context happen before the
         * adopter's CAS (acq_rel) that takes it. */
        atomic_store_explicit(&e->ctx->xorphan, true, memory_order_release);
    }
    memset(e, 0, sizeof(*e));
}

static void
thread_exit(void *unused)
{
    pthread_mutex_lock(&live_lock);
    for (unsigned i = 0; i < XCACHE; i++)
        orphan_locked(&xcache[i]);
    pthread_mutex_unlock(&live_lock);
}

static void
exit_key_make(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

void
tp__xctx_runtime_born(struct tp__actors *A)
{
    pthread_mutex_lock(&live_lock);
    A->id = ++live_next_id;
    A->xlive_next = live_head;
    live_head = A;
    pthread_mutex_unlock(&live_lock);
}

void
tp__xctx_runtime_dies(struct tp__actors *A)
{
    pthread_mutex_lock(&live_lock);
    for (struct tp__actors **p = &live_head; *p != NULL;
         p = &(*p)->xlive_next) {
        if (*p == A) {
            *p = A->xlive_next;
            break;
        }
    }
    pthread_mutex_unlock(&live_lock);
}

static tp_ctx *
adopt(struct tp__actors *A)
{
    tp_ctx *c = atomic_load_explicit(&A->xlist, memory_order_acquire);

    for (; c != NULL; c = c->xnext) {
        bool orphan = true;
        /* acq_rel: see orphan_locked(). */
        if (atomic_load_explicit(&c->xorphan, memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(&c->xorphan, &orphan, false,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed))
            return c;
    }
    return NULL;
}

static void
publish(struct tp__actors *A, tp_ctx *c)
{
    tp_ctx *head = atomic_load_explicit(&A->xlist, memory_order_relaxed);

    /* release: the context's fields before readers (stats) walk to it.
     * Nodes are only ever pushed, so a plain CAS push has no ABA. */
    do
        c->xnext = head;
    while (!atomic_compare_exchange_weak_explicit(
        &A->xlist, &head, c, memory_order_release, memory_order_relaxed));
}

static void
cache_put(struct tp__actors *A, tp_ctx *c)
{
    struct xcache_entry *e = NULL;

    for (unsigned i = 0; i < XCACHE && e == NULL; i++)
        if (xcache[i].ctx == NULL)
            e = &xcache[i];
    if (e == NULL) {
        e = &xcache[xcache_victim++ % XCACHE];
        pthread_mutex_lock(&live_lock);
        orphan_locked(e);
        pthread_mutex_unlock(&live_lock);
    }
    e->A = A;
    e->id = A->id;
    e->ctx = c;
}

static tp_ctx *
xctx_register(struct tp__actors *A)
{
    tp_ctx *c = adopt(A);

    if (c == NULL) {
        c = tp__ctx_new(A, NULL);
        if (c == NULL)
            return NULL;
        publish(A, c);
    }
    c->xthread = pthread_self();
    pthread_once(&exit_once, exit_key_make);
    pthread_setspecific(exit_key, (void *)1); /* run thread_exit */
    cache_put(A, c);
    return c;
}

tp_ctx *
tp__xctx_acquire(struct tp_runtime *rt)
{
    struct tp__sched *s = tp__sched_self(rt);
    struct tp__actors *A = tp__actors_of(rt);
    tp_ctx *c;

    if (s != NULL)
        return s->ext[TP__EXT_ACTORS];
    for (unsigned i = 0; i < XCACHE; i++)
        if (xcache[i].A == A && xcache[i].id == A->id)
            return xcache[i].ctx;
    c = xctx_register(A);
    if (c != NULL)
        return c;
    pthread_mutex_lock(&A->xlock); /* out of memory: the shared one */
    return A->xctx;
}

void
tp__xctx_release(tp_ctx *ctx)
{
    if (ctx == ctx->A->xctx)
        pthread_mutex_unlock(&ctx->A->xlock);
}

void
tp__xctx_foreach(struct tp__actors *A, void (*fn)(tp_ctx *ctx, void *arg),
                 void *arg)
{
    tp_ctx *c = atomic_load_explicit(&A->xlist, memory_order_acquire);

    fn(A->xctx, arg);
    for (; c != NULL; c = c->xnext)
        fn(c, arg);
}

void
tp__xctx_free_all(struct tp__actors *A)
{
    tp_ctx *c = atomic_load(&A->xlist), *next;

    for (; c != NULL; c = next) {
        next = c->xnext;
        tp__ctx_free(c);
    }
    atomic_store(&A->xlist, NULL);
}

bool
tp__ctx_mine(const tp_ctx *ctx)
{
    if (ctx->sched != NULL)
        return ctx->sched == tp__tls_sched;
    if (ctx == ctx->A->xctx)
        return true; /* under xlock, or the destroying thread */
    return pthread_equal(ctx->xthread, pthread_self()) != 0;
}
