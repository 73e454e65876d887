/*
 * net/io.c - what actors call: send, close, shutdown, read modes.
 *
 * A call made on the connection's own loop thread, with no command queued
 * before it, acts at once (a send first tries to write straight to the
 * kernel, which is the common case for an actor answering its own
 * connection). Any other call travels as a command through the loop's
 * queue; the queue is FIFO and own-thread calls never overtake it
 * (tp__sched_post_fifo), so one actor's writes keep their order even when
 * it is stolen by another scheduler and back.
 */
#include "net_int.h"

#include <errno.h>
#include <string.h>

#define SEND_MAX (1u << 30)

static struct tp__conn *
ctx_conn(tp_ctx *ctx, tp_conn h, struct tp__net **net)
{
    if (ctx == NULL)
        return NULL;
    *net = tp__net_of(ctx->rt);
    return tp__conn_resolve(*net, h);
}

/* Adds n bytes to c's write queue count. Returns 0, 1 (over write_high),
 * 2 (over write_high and this call crossed it), -ENOTCONN (stale handle),
 * -EPIPE (shut down) or -ENOBUFS (over write_limit). Any thread. */
static int
wq_reserve(struct tp__conn *c, uint32_t gen, uint32_t n, uint64_t *after)
{
    uint64_t w = atomic_load_explicit(&c->wq, memory_order_relaxed), nw, b;
    const tp_conn_opts *cfg = tp__conn_cfg(c); /* lives as long as rt */
    uint32_t high = cfg->write_high, limit = cfg->write_limit;
    int r;

    do {
        if ((w >> 32) != gen)
            return -ENOTCONN;
        if (w & TP__WQ_SHUT)
            return -EPIPE;
        b = (w & TP__WQ_BYTES) + n;
        if (b > limit)
            return -ENOBUFS;
        nw = w + n;
        r = b > high ? 1 : 0;
        if (r && !(w & TP__WQ_BLOCKED)) {
            nw |= TP__WQ_BLOCKED;
            r = 2;
        }
    } while (!atomic_compare_exchange_weak(&c->wq, &w, nw));
    *after = b;
    return r;
}

/* Takes back a reservation that was never queued (ENOMEM). */
static void
wq_unreserve(struct tp__conn *c, uint32_t gen, uint32_t n)
{
    uint64_t w = atomic_load_explicit(&c->wq, memory_order_relaxed);

    do {
        if ((w >> 32) != gen)
            return;
    } while (!atomic_compare_exchange_weak(&c->wq, &w, w - n));
}

static void
tell_blocked(tp_ctx *ctx, struct tp__conn *c, tp_conn h, uint64_t queued)
{
    tp_tcp_write_state ws = {h, queued};
    tp_pid owner = atomic_load_explicit(&c->owner, memory_order_relaxed);
    struct tp__msg *m = tp__msg_copy(TP_MSG_TCP_WRITE_BLOCKED, &ws, sizeof(ws));

    if (m == NULL || owner == TP_PID_NONE) {
        if (m != NULL)
            tp__msg_free(m);
        return;
    }
    m->m.ref = h;
    m->flags |= TP__MSG_FORCED;
    tp__deliver(ctx, owner, m);
}

static void
wreq_run(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct tp__wreq *w = (struct tp__wreq *)cmd;
    struct tp__conn *c = tp__conn_resolve(tp__net_of(s->rt), w->h);

    if (c != NULL &&
        atomic_load_explicit(&c->sched, memory_order_relaxed) == s->index)
        tp__conn_write(c, w);
    else
        tp__wreq_free(w); /* stale: that counter was reset with its gen */
}

static struct tp__wreq *
wreq_new(tp_conn h, const char *p, uint32_t len, tp_blob *blob)
{
    uint8_t klass;
    struct tp__wreq *w =
        tp__net_cmd_alloc(sizeof(*w) + (blob != NULL ? 0 : len), &klass);

    if (w == NULL)
        return NULL;
    w->cmd.fn = wreq_run;
    w->h = h;
    w->klass = klass;
    w->internal = 0; /* WebSocket hook: an actor's send */
    w->len = len;
    w->queued = len;
    if (blob != NULL) {
        w->blob = tp_blob_ref(blob);
        w->base = p;
    } else {
        w->blob = NULL;
        memcpy(w->data, p, len);
        w->base = w->data;
    }
    return w;
}

/* On the loop thread with nothing queued before us: write what the
 * kernel takes now. Returns bytes written or a negative error. */
static ssize_t
send_now(struct tp__conn *c, const char *p, size_t len)
{
    ssize_t n;

    if (atomic_load_explicit(&c->wq, memory_order_relaxed) & TP__WQ_SHUT)
        return -EPIPE;
    n = tp__conn_try_write(c, p, len);
    if (n < 0) {
        tp__conn_io_error(c, (int)n);
        return -ENOTCONN;
    }
    return n;
}

static int
send_bytes(tp_ctx *ctx, struct tp__net *net, struct tp__conn *c, tp_conn h,
           const char *p, size_t len, tp_blob *blob)
{
    struct tp__sched *s = tp__conn_sched(net, c);
    bool direct = tp__sched_can_run_now(s);
    unsigned st = atomic_load_explicit(&c->state, memory_order_relaxed);
    struct tp__wreq *w;
    uint64_t queued = 0;
    ssize_t n = 0;
    int r;

    if (st != TP__C_OPEN && st != TP__C_CONNECTING)
        return -ENOTCONN;
    if (direct && (n = send_now(c, p, len)) < 0)
        return (int)n;
    if ((size_t)n == len)
        return 0;
    r = wq_reserve(c, (uint32_t)(h >> 32), (uint32_t)(len - (size_t)n),
                   &queued);
    if (r == -ENOBUFS)
        tp__net_post(net, h, TP__OP_CLOSE, TP_NET_CLOSE_WRITE_LIMIT);
    if (r < 0)
        return r;
    w = wreq_new(h, p + n, (uint32_t)(len - (size_t)n), blob);
    if (w == NULL) {
        wq_unreserve(c, (uint32_t)(h >> 32), (uint32_t)(len - (size_t)n));
        return -ENOMEM;
    }
    if (r == 2)
        tell_blocked(ctx, c, h, queued);
    if (direct)
        tp__conn_write(c, w);
    else
        tp__sched_post_fifo(s, &w->cmd);
    return r > 0 ? 1 : 0;
}

int
tp_tcp_send(tp_ctx *ctx, tp_conn h, const void *data, size_t len)
{
    struct tp__net *net = NULL;
    struct tp__conn *c;

    if (ctx == NULL || (data == NULL && len != 0) || len > SEND_MAX)
        return -EINVAL;
    if ((c = ctx_conn(ctx, h, &net)) == NULL)
        return -ENOTCONN;
    if (len == 0)
        return 0;
    return send_bytes(ctx, net, c, h, data, len, NULL);
}

int
tp_tcp_send_blob(tp_ctx *ctx, tp_conn h, tp_blob *b)
{
    struct tp__net *net = NULL;
    struct tp__conn *c;

    if (ctx == NULL || b == NULL || tp_blob_len(b) > SEND_MAX)
        return -EINVAL;
    if ((c = ctx_conn(ctx, h, &net)) == NULL)
        return -ENOTCONN;
    if (tp_blob_len(b) == 0)
        return 0;
    return send_bytes(ctx, net, c, h, tp_blob_data(b), tp_blob_len(b), b);
}

static int
post(tp_ctx *ctx, tp_conn h, enum tp__net_op op, uint32_t arg)
{
    if (ctx == NULL)
        return -EINVAL;
    return tp__net_post(tp__net_of(ctx->rt), h, op, arg);
}

int
tp_tcp_close(tp_ctx *ctx, tp_conn h)
{
    return post(ctx, h, TP__OP_CLOSE, TP_NET_CLOSE_LOCAL);
}

int
tp_tcp_shutdown(tp_ctx *ctx, tp_conn h)
{
    struct tp__net *net = NULL;
    struct tp__conn *c = ctx_conn(ctx, h, &net);
    uint64_t w;

    if (c == NULL)
        return ctx == NULL ? -EINVAL : -ENOTCONN;
    /* Later sends fail at once, from any thread; writes queued before
     * this go out first (the shutdown command is behind them). */
    w = atomic_load_explicit(&c->wq, memory_order_relaxed);
    do {
        if ((w >> 32) != (h >> 32))
            return -ENOTCONN;
        if (w & TP__WQ_SHUT)
            return 0;
    } while (!atomic_compare_exchange_weak(&c->wq, &w, w | TP__WQ_SHUT));
    return tp__net_post(net, h, TP__OP_SHUTDOWN, 0);
}

int
tp_tcp_activate(tp_ctx *ctx, tp_conn h)
{
    return post(ctx, h, TP__OP_ACTIVATE, 0);
}

int
tp_tcp_set_mode(tp_ctx *ctx, tp_conn h, tp_read_mode mode)
{
    if (mode != TP_READ_ACTIVE && mode != TP_READ_ONCE &&
        mode != TP_READ_PASSIVE)
        return -EINVAL;
    return post(ctx, h, TP__OP_MODE, (uint32_t)mode);
}

int
tp_tcp_set_idle_timeout(tp_ctx *ctx, tp_conn h, uint32_t ms)
{
    return post(ctx, h, TP__OP_IDLE, ms);
}
