/*
 * actors/request.c - request/reply with timeouts and late-reply dropping,
 * and tp_runtime_call() for threads outside the runtime.
 *
 * The requester keeps its pending references in a hash map (ref -> timeout
 * timer). Each answer (reply, timeout, noproc) is matched against it when
 * popped from the mailbox: the first answer removes the entry (and cancels
 * the timer), any later one finds nothing and is dropped. So a reply racing
 * its timeout produces exactly one answer.
 *
 * tp_runtime_call() uses one hidden proxy actor per runtime: the caller
 * registers a waiter under a fresh reference and sends the request with the
 * proxy as the reply-to pid; the proxy hands the reply to the waiter. A
 * waiter that timed out is gone, so a late reply is dropped by the proxy.
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/request.h>
#include <troupe/timer.h>

/* ---------------------------------------------------------------------- */
/* In actors                                                              */

static int
pending_add(tp_ctx *ctx, uint64_t ref, uint64_t timer)
{
    struct tp__actor_ext *x = tp__actor_ext(ctx->self);

    if (x == NULL)
        return -ENOMEM;
    return tp__u64map_put(&x->pending, ref, timer) < 0 ? -ENOMEM : 0;
}

/* Posts an answer of our own (noproc) to the requester itself. */
static int
self_answer(tp_ctx *ctx, uint32_t type, uint64_t ref)
{
    struct tp__msg *m = tp__msg_alloc(0);

    if (m == NULL)
        return -ENOMEM;
    m->m.type = type;
    m->m.ref = ref;
    m->m.from = tp_self(ctx);
    m->flags |= TP__MSG_FORCED;
    return tp__deliver(ctx, tp_self(ctx), m);
}

int
tp_request(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data, size_t len,
           uint32_t timeout_ms, uint64_t *ref_out)
{
    struct tp__msg *m;
    uint64_t ref, timer = 0;
    int err;

    if (ctx->self == NULL || tp_msg_is_system(type) ||
        len > (size_t)INT32_MAX || (data == NULL && len != 0))
        return -EINVAL;
    ref = tp__ctx_make_ref(ctx);
    if ((err = pending_add(ctx, ref, 0)) != 0)
        return err;
    m = tp__msg_copy(type, data, len);
    if (m == NULL) {
        tp__u64map_remove(&tp__ext_peek(ctx->self)->pending, ref, NULL);
        return -ENOMEM;
    }
    m->m.from = tp_self(ctx);
    m->m.ref = ref;
    err = tp__deliver(ctx, to, m);
    if (err == -ESRCH) {
        err = self_answer(ctx, TP_MSG_NOPROC, ref);
    } else if (err == 0 && timeout_ms != 0) {
        err = tp__timer_arm_sys(ctx, timeout_ms, tp_self(ctx), TP_MSG_TIMEOUT,
                                ref, &timer);
        if (err == 0)
            *tp__u64map_get(&tp__ext_peek(ctx->self)->pending, ref) = timer;
    }
    if (err != 0) {
        tp__u64map_remove(&tp__ext_peek(ctx->self)->pending, ref, NULL);
        return err;
    }
    if (ref_out != NULL)
        *ref_out = ref;
    return 0;
}

void
tp__request_orphaned(tp_ctx *ctx, const struct tp__msg *req, tp_pid dead)
{
    struct tp__msg *m;

    if (!tp_msg_is_request(&req->m) || req->m.from == TP_PID_NONE)
        return;
    m = tp__msg_alloc(0);
    if (m == NULL)
        return; /* the requester falls back on its timeout */
    m->m.type = TP_MSG_NOPROC;
    m->m.ref = req->m.ref;
    m->m.from = dead;
    m->flags |= TP__MSG_FORCED;
    tp__deliver(ctx, req->m.from, m);
}

int
tp_reply_to(tp_ctx *ctx, tp_pid to, uint64_t ref, const void *data, size_t len)
{
    struct tp__msg *m;

    if (ref == 0 || to == TP_PID_NONE || len > (size_t)INT32_MAX ||
        (data == NULL && len != 0))
        return -EINVAL;
    m = tp__msg_copy(TP_MSG_REPLY, data, len);
    if (m == NULL)
        return -ENOMEM;
    m->m.from = tp_self(ctx);
    m->m.ref = ref;
    m->flags |= TP__MSG_FORCED; /* the requester asked for it */
    return tp__deliver(ctx, to, m);
}

int
tp_reply(tp_ctx *ctx, const tp_msg *req, const void *data, size_t len)
{
    if (req == NULL || !tp_msg_is_request(req))
        return -EINVAL;
    return tp_reply_to(ctx, req->from, req->ref, data, len);
}

int
tp_request_forget(tp_ctx *ctx, uint64_t ref)
{
    uint64_t timer;

    if (ctx->self == NULL || tp__ext_peek(ctx->self) == NULL ||
        !tp__u64map_remove(&tp__ext_peek(ctx->self)->pending, ref, &timer))
        return -ENOENT;
    if (timer != 0)
        tp_cancel_timer(ctx, timer);
    return 0;
}

bool
tp__reply_accept(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m)
{
    uint64_t timer;

    if (tp__ext_peek(a) == NULL ||
        !tp__u64map_remove(&tp__ext_peek(a)->pending, m->m.ref, &timer)) {
        tp__msg_free(m); /* late: its request already has its answer */
        return false;
    }
    if (m->m.type != TP_MSG_TIMEOUT && timer != 0)
        tp_cancel_timer(ctx, timer);
    return true;
}

/* ---------------------------------------------------------------------- */
/* tp_runtime_call                                                        */

struct waiter {
    struct waiter *next;
    uint64_t ref;
    pthread_cond_t cond;
    void *buf;
    size_t cap, len;
    int status; /* 1 = waiting, 0 = replied, -ESRCH = noproc */
};

struct calls {
    pthread_mutex_t lock;
    tp_pid proxy;
    struct waiter *waiters;
};

static struct calls *
calls_of(struct tp_runtime *rt)
{
    return rt->ext[TP__EXT_CALLS];
}

static void
calls_free(struct tp_runtime *rt, void *p)
{
    struct calls *c = p;

    (void)rt;
    pthread_mutex_destroy(&c->lock);
    tp__free(c);
}

int
tp__calls_new(struct tp_runtime *rt)
{
    struct calls *c = tp__calloc(1, sizeof(*c));

    if (c == NULL)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    rt->ext[TP__EXT_CALLS] = c;
    rt->ext_free[TP__EXT_CALLS] = calls_free;
    return 0;
}

static void
proxy_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct calls *c = calls_of(ctx->rt);
    struct waiter *w;

    (void)state;
    if (m->type != TP_MSG_REPLY && m->type != TP_MSG_NOPROC)
        return;
    pthread_mutex_lock(&c->lock);
    for (w = c->waiters; w != NULL && w->ref != m->ref; w = w->next)
        ;
    if (w != NULL && w->status == 1) {
        w->len = m->len;
        if (m->len != 0 && w->cap != 0)
            memcpy(w->buf, m->data, m->len < w->cap ? m->len : w->cap);
        w->status = m->type == TP_MSG_REPLY ? 0 : -ESRCH;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

static int
proxy_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)state;
    (void)arg;
    ctx->self->oflags |= TP__A_RAWREPLY | TP__A_SYSTEM;
    return 0;
}

static const tp_behaviour proxy_behaviour = {
    .name = "troupe.call-proxy",
    .init = proxy_init,
    .handle = proxy_handle,
};

/* The proxy pid, spawned on first use (lock held). */
static int
proxy_get(tp_runtime *rt, struct calls *c, tp_pid *out)
{
    int err = 0;

    if (c->proxy == TP_PID_NONE ||
        tp__actor_lookup(tp__actors_of(rt), c->proxy) == NULL)
        err = tp_runtime_spawn(rt, &proxy_behaviour, NULL, NULL, &c->proxy);
    *out = c->proxy;
    return err;
}

static void
waiter_unlink(struct calls *c, struct waiter *w)
{
    struct waiter **pp;

    for (pp = &c->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

static int
call_send(tp_runtime *rt, tp_pid proxy, tp_pid to, uint32_t type,
          const void *data, size_t len, uint64_t ref)
{
    tp_ctx *ctx;
    struct tp__msg *m = tp__msg_copy(type, data, len);
    int err;

    if (m == NULL)
        return -ENOMEM;
    m->m.from = proxy;
    m->m.ref = ref;
    ctx = tp__xctx_acquire(rt);
    err = tp__deliver(ctx, to, m);
    tp__xctx_release(ctx);
    return err;
}

static int
call_wait(struct calls *c, struct waiter *w, uint32_t timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000u;
    ts.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (w->status == 1) {
        if (pthread_cond_timedwait(&w->cond, &c->lock, &ts) == ETIMEDOUT)
            return w->status == 1 ? -ETIMEDOUT : w->status;
    }
    return w->status;
}

int
tp_runtime_call(tp_runtime *rt, tp_pid to, uint32_t type, const void *data,
                size_t len, void *reply, size_t cap, size_t *reply_len,
                uint32_t timeout_ms)
{
    struct calls *c = calls_of(rt);
    struct waiter w = {.buf = reply, .cap = cap, .status = 1};
    tp_pid proxy;
    int err;

    if (tp_msg_is_system(type) || (data == NULL && len != 0) ||
        (reply == NULL && cap != 0) || tp__sched_self(rt) != NULL)
        return -EINVAL;
    if (atomic_load(&rt->stopping))
        return -ESHUTDOWN;
    w.ref = tp_make_ref(rt);
    pthread_cond_init(&w.cond, NULL);
    pthread_mutex_lock(&c->lock);
    err = proxy_get(rt, c, &proxy);
    if (err == 0) {
        w.next = c->waiters;
        c->waiters = &w;
        pthread_mutex_unlock(&c->lock);
        err = call_send(rt, proxy, to, type, data, len, w.ref);
        pthread_mutex_lock(&c->lock);
        if (err == 0)
            err = call_wait(c, &w, timeout_ms ? timeout_ms : UINT32_MAX / 2);
        waiter_unlink(c, &w);
    }
    pthread_mutex_unlock(&c->lock);
    pthread_cond_destroy(&w.cond);
    if (err == 0 && reply_len != NULL)
        *reply_len = w.len;
    return err;
}
