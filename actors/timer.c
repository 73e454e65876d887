/*
 * actors/timer.c - message timers (tp_send_after, tp_send_interval,
 * tp_cancel_timer) on the per-scheduler timing wheels.
 *
 * A timer is an entry in a per-runtime table of type-stable entries, named
 * by a generation-checked handle. One atomic word holds the generation and
 * the state (armed / fired / cancelled); firing and cancelling race through
 * a CAS on it, so exactly one wins, and a stale handle (its entry reused by
 * a later timer, with a new generation) can never cancel the wrong timer.
 * The entry is unlinked from its wheel and freed only on the wheel's own
 * thread: by the firing of a one-shot timer, or by the cancel (directly when
 * the canceller runs on that scheduler, else through its command queue).
 *
 * The owning actor keeps its armed handles in a hash set, cancelled when it
 * dies; handles of timers that fired are pruned lazily when the set grows.
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/timer.h>

enum { T_FREE = 0, T_ARMED, T_FIRED, T_CANCELLED };

#define CHUNK_BITS 12u
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << 16)
#define FREE_MAX   256u
#define INLINE_MAX 16u /* payload bytes kept in the entry itself */

/* 112 bytes, allocated inline in chunks: no per-timer malloc header, no
 * message held while armed unless the payload is larger than INLINE_MAX
 * (the message is built when the timer fires). */
struct atimer {
    struct tp__wtimer wt;  /* when free: wt.next links the free list */
    struct tp__cmd cmd;    /* cross-thread cancel */
    _Atomic uint64_t word; /* generation << 8 | state */
    tp_pid to, from;
    _Atomic uint32_t interval; /* ms, 0 = one-shot */
    uint32_t type;
    uint32_t len;   /* payload bytes */
    uint32_t idx;   /* own index in the table */
    uint16_t sched; /* scheduler whose wheel holds it */
    union {
        unsigned char bytes[INLINE_MAX]; /* len <= INLINE_MAX */
        struct tp__msg *msg;             /* len > INLINE_MAX: prepared */
    } p;
    uint64_t ref; /* runtime timers (request timeouts) */
};

struct tp__timers {
    pthread_mutex_t lock;          /* slow paths: new chunks, the depot */
    _Atomic(struct atimer *) *dir; /* MAX_CHUNKS chunks of CHUNK_SIZE */
    _Atomic uint32_t next_idx;
    struct atimer *depot;  /* entries freed beyond the per-scheduler lists */
    struct atimer **sfree; /* per-scheduler free lists (owner thread) */
    uint32_t *sfree_n;
    _Atomic int64_t armed;
};

/* An actor's set of armed timers (an owned resource). */
struct owned {
    struct tp__resource res;
    struct tp__u64map set;
    uint32_t prune_at;
};

static uint64_t
word_of(uint64_t gen, unsigned state)
{
    return gen << 8 | state;
}

static tp_timer
handle_of(struct atimer *t)
{
    uint64_t gen = atomic_load_explicit(&t->word, memory_order_relaxed) >> 8;
    return gen << 32 | t->idx;
}

static struct atimer *
free_next(struct atimer *t)
{
    return (struct atimer *)t->wt.next;
}

static void
set_free_next(struct atimer *t, struct atimer *next)
{
    t->wt.next = (struct tp__wtimer *)next;
}

/* ---------------------------------------------------------------------- */
/* The table                                                              */

static struct tp__timers *
timers_of(tp_runtime *rt)
{
    return rt->ext[TP__EXT_TIMERS];
}

static void
timers_free(tp_runtime *rt, void *p)
{
    struct tp__timers *T = p;

    (void)rt;
    for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
        struct atimer *chunk = atomic_load(&T->dir[c]);
        if (chunk == NULL)
            break;
        for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
            if (chunk[i].len > INLINE_MAX && chunk[i].p.msg != NULL)
                tp__msg_free(chunk[i].p.msg);
        }
        tp__free(chunk);
    }
    tp__free((void *)T->dir);
    tp__free(T->sfree);
    tp__free(T->sfree_n);
    pthread_mutex_destroy(&T->lock);
    tp__free(T);
}

int
tp__timers_new(tp_runtime *rt)
{
    struct tp__timers *T = tp__calloc(1, sizeof(*T));

    if (T == NULL)
        return -ENOMEM;
    T->dir = tp__calloc(MAX_CHUNKS, sizeof(*T->dir));
    T->sfree = tp__calloc(rt->nsched, sizeof(*T->sfree));
    T->sfree_n = tp__calloc(rt->nsched, sizeof(*T->sfree_n));
    if (T->dir == NULL || T->sfree == NULL || T->sfree_n == NULL) {
        tp__free((void *)T->dir);
        tp__free(T->sfree);
        tp__free(T->sfree_n);
        tp__free(T);
        return -ENOMEM;
    }
    pthread_mutex_init(&T->lock, NULL);
    rt->ext_free[TP__EXT_TIMERS] = timers_free;
    rt->ext[TP__EXT_TIMERS] = T; /* before any scheduler thread starts */
    return 0;
}

/* The entry for idx, or NULL. Lock-free: chunks are never freed before the
 * runtime, and a chunk pointer is published (release) zeroed. */
static struct atimer *
entry_at(struct tp__timers *T, uint32_t idx)
{
    struct atimer *chunk;

    if (idx >= atomic_load_explicit(&T->next_idx, memory_order_acquire))
        return NULL;
    chunk =
        atomic_load_explicit(&T->dir[idx >> CHUNK_BITS], memory_order_acquire);
    return chunk != NULL ? &chunk[idx & (CHUNK_SIZE - 1)] : NULL;
}

static struct atimer *
entry_new(struct tp__timers *T)
{
    struct atimer *chunk, *t;
    uint32_t idx, c;

    pthread_mutex_lock(&T->lock);
    idx = atomic_load_explicit(&T->next_idx, memory_order_relaxed);
    c = idx >> CHUNK_BITS;
    chunk = c < MAX_CHUNKS
                ? atomic_load_explicit(&T->dir[c], memory_order_relaxed)
                : NULL;
    if (c < MAX_CHUNKS && chunk == NULL) {
        chunk = tp__calloc(CHUNK_SIZE, sizeof(*chunk));
        /* release: a zeroed chunk (all entries free, generation 0). */
        if (chunk != NULL)
            atomic_store_explicit(&T->dir[c], chunk, memory_order_release);
    }
    if (chunk == NULL) {
        pthread_mutex_unlock(&T->lock);
        return NULL;
    }
    t = &chunk[idx & (CHUNK_SIZE - 1)];
    t->idx = idx;
    /* release: the entry's idx before the index counts as valid. */
    atomic_store_explicit(&T->next_idx, idx + 1, memory_order_release);
    pthread_mutex_unlock(&T->lock);
    return t;
}

static void
depot_put(struct tp__timers *T, struct atimer *t)
{
    pthread_mutex_lock(&T->lock);
    set_free_next(t, T->depot);
    T->depot = t;
    pthread_mutex_unlock(&T->lock);
}

static struct atimer *
entry_alloc(struct tp__timers *T, tp_ctx *ctx)
{
    struct atimer *t = NULL;

    if (ctx->sched != NULL && T->sfree[ctx->index] != NULL) {
        t = T->sfree[ctx->index];
        T->sfree[ctx->index] = free_next(t);
        T->sfree_n[ctx->index]--;
    } else {
        pthread_mutex_lock(&T->lock);
        t = T->depot;
        if (t != NULL)
            T->depot = free_next(t);
        pthread_mutex_unlock(&T->lock);
        if (t == NULL)
            t = entry_new(T);
    }
    if (t != NULL)
        t->wt.next = t->wt.prev = NULL;
    return t;
}

static void
payload_release(struct atimer *t)
{
    if (t->len > INLINE_MAX && t->p.msg != NULL)
        tp__msg_free(t->p.msg);
    t->p.msg = NULL;
    t->len = 0;
}

/* Frees an entry (on its wheel's thread, s). */
static void
entry_free(struct tp__timers *T, struct tp__sched *s, struct atimer *t)
{
    uint64_t gen = atomic_load_explicit(&t->word, memory_order_relaxed) >> 8;

    TP_ASSERT(tp__tls_sched == s && t->sched == s->index); /* its wheel's */
    payload_release(t);
    /* release: a canceller that later sees T_FREE sees the entry done. */
    atomic_store_explicit(&t->word, word_of(gen, T_FREE), memory_order_release);
    atomic_fetch_sub_explicit(&T->armed, 1, memory_order_relaxed);
    if (T->sfree_n[s->index] < FREE_MAX) {
        set_free_next(t, T->sfree[s->index]);
        T->sfree[s->index] = t;
        T->sfree_n[s->index]++;
        return;
    }
    depot_put(T, t);
}

/* Retry delay of a one-shot timer whose message cannot be allocated. */
#define ONESHOT_RETRY_MS 10u

/* ---------------------------------------------------------------------- */
/* Firing                                                                 */

/* The message a firing timer sends (NULL on ENOMEM: a periodic tick is
 * skipped, a one-shot timer retries). A prepared one-shot message is
 * handed over, not copied. */
static struct tp__msg *
fire_msg(struct atimer *t, bool one_shot)
{
    struct tp__msg *m;

    if (t->len > INLINE_MAX && one_shot) {
        m = t->p.msg;
        t->p.msg = NULL;
        t->len = 0;
        return m;
    }
    if (t->len > INLINE_MAX)
        m = tp__msg_copy(t->type, t->p.msg->m.data, t->len);
    else
        m = tp__msg_copy(t->type, t->p.bytes, t->len);
    if (m != NULL) {
        m->m.from = t->from;
        m->m.ref = t->ref;
        if (tp_msg_is_system(t->type))
            m->flags |= TP__MSG_FORCED; /* runtime timeouts: never dropped */
    }
    return m;
}

static void
fire(struct tp__wtimer *wt, void *arg)
{
    struct atimer *t = tp__container_of(wt, struct atimer, wt);
    struct tp__sched *s = arg;
    struct tp__timers *T = timers_of(s->rt);
    tp_ctx *ctx = s->ext[TP__EXT_ACTORS];
    uint64_t w = atomic_load_explicit(&t->word, memory_order_acquire);
    uint32_t interval =
        atomic_load_explicit(&t->interval, memory_order_relaxed);
    struct tp__msg *m;

    if ((w & 0xff) != T_ARMED)
        return; /* cancelled: the cancel's command frees it */
    if (interval != 0) {
        if ((m = fire_msg(t, false)) != NULL)
            tp__deliver(ctx, t->to, m);
        tp__sched_timer_add(s, &t->wt, interval);
        return;
    }
    /* A one-shot message is made before the timer counts as fired: out of
     * memory, the timer stays armed (cancellable, keeping the runtime
     * busy) and tries again shortly, so a tp_send_after() that returned 0,
     * or a request's timeout, is never lost. */
    if ((m = fire_msg(t, true)) == NULL) {
        tp__sched_timer_add(s, &t->wt, ONESHOT_RETRY_MS);
        return;
    }
    if (!atomic_compare_exchange_strong(&t->word, &w,
                                        word_of(w >> 8, T_FIRED))) {
        tp__msg_free(m); /* lost to a cancel on another thread */
        return;
    }
    tp__deliver(ctx, t->to, m);
    tp__rt_pending_add(s->rt, -1);
    entry_free(T, s, t);
}

/* ---------------------------------------------------------------------- */
/* Owner bookkeeping                                                      */

static void
owned_release(struct tp__resource *r, tp_ctx *ctx, const tp_exit_reason *why)
{
    struct owned *o = tp__container_of(r, struct owned, res);
    struct tp__u64map_entry *e;
    uint32_t i;

    (void)why;
    /* Detach first: tp_cancel_timer must not edit the set we walk. */
    tp__ext_peek(ctx->self)->timers = NULL; /* it owns a resource: has ext */
    for (i = 0; tp__u64map_next(&o->set, &i, &e);)
        tp_cancel_timer(ctx, e->key);
    tp__u64map_fini(&o->set);
    tp__free(o);
}

static struct owned *
owned_get(tp_ctx *ctx)
{
    struct tp__actor_ext *x = tp__actor_ext(ctx->self);
    struct owned *o;

    if (x == NULL)
        return NULL;
    if (x->timers != NULL)
        return x->timers;
    o = tp__calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    tp__u64map_init(&o->set);
    o->prune_at = 64;
    o->res.release = owned_release;
    if (tp__actor_own(ctx, &o->res) != 0) {
        tp__free(o);
        return NULL;
    }
    x->timers = o;
    return o;
}

static bool
still_armed(struct tp__timers *T, tp_timer h)
{
    struct atimer *t = entry_at(T, (uint32_t)h);

    return t != NULL && atomic_load(&t->word) == word_of(h >> 32, T_ARMED);
}

/* Drops handles of timers that fired; amortised O(1) per arm. */
static void
owned_prune(struct tp__timers *T, struct owned *o)
{
    uint64_t *dead = tp__malloc(o->set.count * sizeof(*dead));
    struct tp__u64map_entry *e;
    uint32_t i = 0, n = 0;

    if (dead != NULL) {
        while (tp__u64map_next(&o->set, &i, &e)) {
            if (!still_armed(T, e->key))
                dead[n++] = e->key;
        }
        for (uint32_t k = 0; k < n; k++)
            tp__u64map_remove(&o->set, dead[k], NULL);
        tp__free(dead);
    }
    o->prune_at = o->set.count * 2 > 64 ? o->set.count * 2 : 64;
}

/* ---------------------------------------------------------------------- */
/* Arming                                                                 */

struct arm_cmd {
    struct tp__cmd cmd;
    struct atimer *t;
    uint64_t word; /* the armed word: the timer may be cancelled first */
    uint32_t delay;
};

static void
arm_cmd_run(struct tp__cmd *c, struct tp__sched *s)
{
    struct arm_cmd *a = (struct arm_cmd *)c;

    if (atomic_load_explicit(&a->t->word, memory_order_acquire) == a->word)
        tp__sched_timer_add(s, &a->t->wt, a->delay);
    tp__free(a);
}

static int
place_on_wheel(tp_ctx *ctx, struct atimer *t, uint32_t delay)
{
    struct arm_cmd *a;

    t->wt.fire = fire;
    if (ctx->sched != NULL) {
        tp__sched_timer_add(ctx->sched, &t->wt, delay);
        return 0;
    }
    /* From init of an actor spawned outside the runtime: the timer goes to
     * the actor's home scheduler through its command queue. */
    a = tp__malloc(sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->t = t;
    a->word = atomic_load_explicit(&t->word, memory_order_relaxed);
    a->delay = delay;
    a->cmd.fn = arm_cmd_run;
    tp__sched_post(ctx->rt->sched[t->sched], &a->cmd);
    return 0;
}

static int arm_in(tp_ctx *ctx, uint32_t delay, uint32_t interval, tp_pid to,
                  uint32_t type, const void *data, size_t len, uint64_t ref,
                  tp_timer *out);

static int
arm(tp_ctx *ctx, uint32_t delay, uint32_t interval, tp_pid to, uint32_t type,
    const void *data, size_t len, uint64_t ref, tp_timer *out)
{
    int r;
    TP__RUNTIME_BEGIN();

    r = arm_in(ctx, delay, interval, to, type, data, len, ref, out);
    TP__RUNTIME_END();
    return r;
}

/* Fills the message fields of an entry; 0 or -ENOMEM. */
static int
set_payload(tp_ctx *ctx, struct atimer *t, tp_pid to, uint32_t type,
            const void *data, size_t len, uint64_t ref)
{
    t->to = to;
    t->from = tp_self(ctx);
    t->type = type;
    t->ref = ref;
    t->len = (uint32_t)len;
    if (len <= INLINE_MAX) {
        if (len != 0)
            memcpy(t->p.bytes, data, len);
        return 0;
    }
    t->p.msg = tp__msg_copy(type, data, len);
    if (t->p.msg == NULL) {
        t->len = 0;
        return -ENOMEM;
    }
    t->p.msg->m.from = t->from;
    t->p.msg->m.to = to;
    t->p.msg->m.ref = ref;
    if (tp_msg_is_system(type))
        t->p.msg->flags |= TP__MSG_FORCED;
    return 0;
}

/* Gives back an entry that never got armed. */
static void
arm_undo(struct tp__timers *T, struct atimer *t, uint64_t gen)
{
    payload_release(t);
    atomic_store(&t->word, word_of(gen, T_FREE));
    depot_put(T, t);
}

static int
arm_in(tp_ctx *ctx, uint32_t delay, uint32_t interval, tp_pid to, uint32_t type,
       const void *data, size_t len, uint64_t ref, tp_timer *out)
{
    struct tp__timers *T = timers_of(ctx->rt);
    struct owned *o;
    struct atimer *t;
    uint64_t gen;
    tp_timer h;
    int err;

    if (ctx->self == NULL || len > (size_t)INT32_MAX ||
        (data == NULL && len != 0))
        return -EINVAL;
    if ((o = owned_get(ctx)) == NULL || (t = entry_alloc(T, ctx)) == NULL)
        return -ENOMEM;
    gen = (atomic_load(&t->word) >> 8) + 1;
    if (set_payload(ctx, t, to, type, data, len, ref) != 0) {
        arm_undo(T, t, gen - 1);
        return -ENOMEM;
    }
    atomic_store_explicit(&t->interval, interval, memory_order_relaxed);
    t->sched =
        ctx->sched != NULL
            ? (uint16_t)ctx->index
            : (uint16_t)(atomic_load(&ctx->self->home) % ctx->rt->nsched);
    /* release: the fields above before the handle can be used. */
    atomic_store_explicit(&t->word, word_of(gen, T_ARMED),
                          memory_order_release);
    h = handle_of(t);
    if (o->set.count >= o->prune_at)
        owned_prune(T, o);
    if ((err = tp__u64map_put(&o->set, h, 1)) < 0 ||
        (err = place_on_wheel(ctx, t, interval ? interval : delay)) != 0) {
        tp__u64map_remove(&o->set, h, NULL);
        arm_undo(T, t, gen);
        return err < 0 ? err : -ENOMEM;
    }
    atomic_fetch_add_explicit(&T->armed, 1, memory_order_relaxed);
    if (interval == 0)
        tp__rt_pending_add(ctx->rt, 1);
    if (out != NULL)
        *out = h;
    return 0;
}

int
tp_send_after(tp_ctx *ctx, uint32_t delay_ms, tp_pid to, uint32_t type,
              const void *data, size_t len, tp_timer *out)
{
    if (tp_msg_is_system(type))
        return -EINVAL;
    return arm(ctx, delay_ms, 0, to, type, data, len, 0, out);
}

int
tp_send_interval(tp_ctx *ctx, uint32_t interval_ms, tp_pid to, uint32_t type,
                 const void *data, size_t len, tp_timer *out)
{
    if (interval_ms == 0 || tp_msg_is_system(type))
        return -EINVAL;
    return arm(ctx, interval_ms, interval_ms, to, type, data, len, 0, out);
}

int
tp__timer_arm_sys(tp_ctx *ctx, uint32_t delay_ms, tp_pid to, uint32_t type,
                  uint64_t ref, tp_timer *out)
{
    return arm(ctx, delay_ms, 0, to, type, NULL, 0, ref, out);
}

/* ---------------------------------------------------------------------- */
/* Cancelling                                                             */

static void
cancel_cmd_run(struct tp__cmd *c, struct tp__sched *s)
{
    struct atimer *t = tp__container_of(c, struct atimer, cmd);

    tp__sched_timer_del(s, &t->wt);
    entry_free(timers_of(s->rt), s, t);
}

static int cancel(tp_ctx *ctx, tp_timer h);

int
tp_cancel_timer(tp_ctx *ctx, tp_timer h)
{
    int r;
    TP__RUNTIME_BEGIN();

    r = cancel(ctx, h);
    TP__RUNTIME_END();
    return r;
}

static int
cancel(tp_ctx *ctx, tp_timer h)
{
    struct tp__timers *T = timers_of(ctx->rt);
    struct atimer *t;
    uint64_t expect, cur;
    bool one_shot;

    if (h == TP_TIMER_NONE || T == NULL ||
        (t = entry_at(T, (uint32_t)h)) == NULL)
        return -ENOENT;
    expect = word_of(h >> 32, T_ARMED);
    /* acquire: pairs with arm's release, so interval and sched are this
     * timer's (if the entry is reused meanwhile, the CAS below fails). */
    cur = atomic_load_explicit(&t->word, memory_order_acquire);
    if (cur != expect)
        return (cur >> 8) < (h >> 32) ? -ENOENT : 0;
    one_shot = atomic_load_explicit(&t->interval, memory_order_relaxed) == 0;
    if (!atomic_compare_exchange_strong(&t->word, &expect,
                                        word_of(h >> 32, T_CANCELLED)))
        return (expect >> 8) < (h >> 32) ? -ENOENT : 0;
    if (ctx->self != NULL && tp__ext_peek(ctx->self) != NULL &&
        tp__ext_peek(ctx->self)->timers != NULL)
        tp__u64map_remove(
            &((struct owned *)tp__ext_peek(ctx->self)->timers)->set, h, NULL);
    if (one_shot)
        tp__rt_pending_add(ctx->rt, -1);
    if (ctx->sched != NULL && ctx->index == t->sched) {
        tp__sched_timer_del(ctx->sched, &t->wt);
        entry_free(T, ctx->sched, t);
    } else {
        t->cmd.fn = cancel_cmd_run;
        tp__sched_post(ctx->rt->sched[t->sched], &t->cmd);
    }
    return 1;
}

uint64_t
tp_runtime_timers(tp_runtime *rt)
{
    struct tp__timers *T = timers_of(rt);
    int64_t n = T != NULL ? atomic_load(&T->armed) : 0;

    return n > 0 ? (uint64_t)n : 0;
}
