/*
 * console/health.c - what a load balancer asks a node (GET /health on the
 * console's HTTP port) and the drain it can follow.
 *
 * A drain started through the console (the `drain` command, POST
 * /api/drain, tp_console_drain()) has two phases: /health answers 503 at
 * once, so a balancer that checks it (HAProxy's `option httpchk`) takes
 * the node out of rotation while its listeners still accept; `delay_ms`
 * later the network drains as tp_net_drain_start() does (listeners close,
 * connections are told to finish, the rest is closed at the deadline). The
 * delay should cover the balancer's detection time (check interval times
 * the failures it needs) so it stops sending before the node stops
 * accepting, and no client is refused during a planned drain.
 *
 * The wait runs in a small actor of its own ("console_drainer") that holds
 * the runtime only, never the console: stopping the console meanwhile does
 * not cancel a drain already announced.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/net.h>

/* The drainer's one message, from itself (its own range, apart from the
 * console's numbered types). */
#define TP__CON_DRAIN_NOW 0xfffe0480u

#define TP__DRAIN_MAX_MS 600000u

struct drainer {
    tp_runtime *rt;
    uint32_t deadline_ms;
};

struct drainer_arg {
    uint32_t delay_ms, deadline_ms;
};

static int
drainer_init(tp_ctx *ctx, void *state, void *arg)
{
    struct drainer *d = state;
    const struct drainer_arg *a = arg;

    d->rt = tp_ctx_runtime(ctx);
    d->deadline_ms = a->deadline_ms;
    return tp_send_after(ctx, a->delay_ms, tp_self(ctx), TP__CON_DRAIN_NOW,
                         NULL, 0, NULL);
}

static void
drainer_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct drainer *d = state;

    if (msg->type != TP__CON_DRAIN_NOW)
        return;
    tp_log(TP_LOG_WARN,
           "console: drain: delay over, closing listeners "
           "(deadline %u ms)",
           d->deadline_ms);
    tp_net_drain_start(d->rt, d->deadline_ms);
    tp_exit(ctx);
}

static const tp_behaviour drainer_behaviour = {
    .name = "console_drainer",
    .state_size = sizeof(struct drainer),
    .init = drainer_init,
    .handle = drainer_handle,
};

static int
spawn_drainer(tp_ctx *ctx, tp_runtime *rt, uint32_t delay_ms,
              uint32_t deadline_ms)
{
    struct drainer_arg a = {delay_ms, deadline_ms};

    /* init runs inside the spawn, so `a` on the stack is enough. */
    if (ctx != NULL)
        return tp_spawn(ctx, &drainer_behaviour, &a, NULL, NULL);
    return tp_runtime_spawn(rt, &drainer_behaviour, &a, NULL, NULL);
}

int
tp__console_drain(tp_ctx *ctx, struct tp_console *c, uint32_t delay_ms,
                  uint32_t deadline_ms)
{
    uint64_t none = 0, now = tp_now_ns() | 1; /* never 0: 0 is "serving" */
    int err;

    if (deadline_ms == 0 || deadline_ms > TP__DRAIN_MAX_MS ||
        delay_ms > TP__DRAIN_MAX_MS)
        return -EINVAL;
    /* Relaxed: the flag stands alone (a health check that reads it a
     * moment late answers 200 once more, which the delay covers). */
    if (!atomic_compare_exchange_strong_explicit(&c->drain.since_ns, &none, now,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed))
        return -EALREADY;
    atomic_store_explicit(&c->drain.delay_ms, delay_ms, memory_order_relaxed);
    tp_log(TP_LOG_WARN,
           "console: drain requested: health 503 now, listeners "
           "close in %u ms, deadline %u ms",
           delay_ms, deadline_ms);
    if (delay_ms == 0)
        return tp_net_drain_start(c->rt, deadline_ms);
    if ((err = spawn_drainer(ctx, c->rt, delay_ms, deadline_ms)) != 0) {
        /* No actor to wait with: drain now rather than never. */
        tp_log(TP_LOG_ERROR,
               "console: drain: no delay actor (%s), draining "
               "at once",
               tp_strerror(err));
        tp_net_drain_start(c->rt, deadline_ms);
    }
    return 0;
}

int
tp__console_health(struct tp_console *c, char *body, size_t cap, size_t *len)
{
    uint64_t since =
        atomic_load_explicit(&c->drain.since_ns, memory_order_relaxed);
    uint64_t delay =
        atomic_load_explicit(&c->drain.delay_ms, memory_order_relaxed);
    uint64_t gone_ms, left_ms;
    int n;

    if (since == 0) {
        n = snprintf(body, cap, "ok\n");
        *len = n > 0 ? (size_t)n : 0;
        return 200;
    }
    gone_ms = (tp_now_ns() - since) / 1000000u;
    left_ms = gone_ms < delay ? delay - gone_ms : 0;
    n = snprintf(body, cap, "draining: listeners close in %llu ms\n",
                 (unsigned long long)left_ms);
    *len = n > 0 ? (size_t)n : 0;
    return 503;
}

int
tp_console_drain(tp_console *c, uint32_t delay_ms, uint32_t deadline_ms)
{
    if (c == NULL)
        return -EINVAL;
    return tp__console_drain(NULL, c, delay_ms, deadline_ms);
}

bool
tp_console_draining(const tp_console *c)
{
    return c != NULL &&
           atomic_load_explicit(&c->drain.since_ns, memory_order_relaxed) != 0;
}
