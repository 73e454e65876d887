/*
 * console/sampler.c - one actor per console that samples the runtime once
 * a second: it publishes the latest rates (messages/s overall and per
 * scheduler, utilisation) for `stats`, `sched` and /metrics, and keeps the
 * last TP__HIST_LEN seconds for the dashboard's rate chart, answered on
 * request (TP__CON_HISTORY).
 *
 * Every session sends it requests, so its mailbox is bounded
 * (TP__SAMPLER_MAILBOX, reject: a request past it fails at once with
 * -EAGAIN instead of queueing). If it is killed (`kill --force`, or any
 * code), the next console command starts a new one (tp__sampler_ensure):
 * its history starts again from empty, the rates after its first second.
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>

#define PERIOD_MS 1000u

struct sampler {
    struct tp_console *con;
    struct tp__con_life *life;
    unsigned nsched;
    uint64_t last_ns;
    tp_runtime_stats last;
    tp_sched_stats *prev, *cur;
    /* Ring of samples: (1 + nsched) doubles each. */
    double *ring;
    uint32_t head, n;
};

static void
publish_sched(struct sampler *s, double dt)
{
    struct tp__rates *r = &s->con->rates;

    for (unsigned i = 0; i < s->nsched; i++) {
        uint64_t dm = s->cur[i].messages - s->prev[i].messages;
        uint64_t db = s->cur[i].busy_ns - s->prev[i].busy_ns;
        uint64_t di = s->cur[i].idle_ns - s->prev[i].idle_ns;
        double util = db + di != 0 ? (double)db / (double)(db + di) : 0;
        atomic_store_explicit(&r->sched_rate[i], (uint64_t)(dm / dt),
                              memory_order_relaxed);
        atomic_store_explicit(&r->sched_util[i], (uint32_t)(util * 1e6),
                              memory_order_relaxed);
        s->ring[s->head * (1 + s->nsched) + 1 + i] = dm / dt;
    }
}

static void
sample(tp_runtime *rt, struct sampler *s)
{
    struct tp__rates *r = &s->con->rates;
    tp_runtime_stats st;
    uint64_t now = tp_now_ns();
    double dt = (double)(now - s->last_ns) / 1e9;
    tp_sched_stats *t;

    if (s->last_ns == 0 || dt <= 0) {
        /* The first sample is the baseline (init cannot read the stats:
         * a spawn from outside the runtime holds the lock they need). */
        tp_runtime_get_stats(rt, &s->last);
        tp_runtime_get_sched_stats(rt, s->prev, s->nsched);
        s->last_ns = now;
        return;
    }
    tp_runtime_get_stats(rt, &st);
    tp_runtime_get_sched_stats(rt, s->cur, s->nsched);
    atomic_store_explicit(&r->msgs_per_s,
                          (uint64_t)((st.messages - s->last.messages) / dt),
                          memory_order_relaxed);
    atomic_store_explicit(
        &r->dead_per_s,
        (uint64_t)((st.dead_letters - s->last.dead_letters) / dt),
        memory_order_relaxed);
    atomic_store_explicit(&r->spawn_per_s,
                          (uint64_t)((st.spawned - s->last.spawned) / dt),
                          memory_order_relaxed);
    s->ring[s->head * (1 + s->nsched)] =
        (double)(st.messages - s->last.messages) / dt;
    publish_sched(s, dt);
    s->head = (s->head + 1) % TP__HIST_LEN;
    if (s->n < TP__HIST_LEN)
        s->n++;
    s->last = st;
    s->last_ns = now;
    t = s->prev, s->prev = s->cur, s->cur = t;
}

static void
answer_history(tp_ctx *ctx, struct sampler *s, const tp_msg *m)
{
    size_t row = 1 + s->nsched;
    size_t len = sizeof(struct tp__hist_reply) + s->n * row * sizeof(double);
    struct tp__hist_reply *h = tp__malloc(len);
    double *out;

    if (h == NULL)
        return; /* the requester times out */
    h->nsched = s->nsched;
    h->n = s->n;
    h->period_ms = PERIOD_MS;
    out = (double *)(h + 1);
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = (s->head + TP__HIST_LEN - s->n + i) % TP__HIST_LEN;
        memcpy(out + i * row, s->ring + k * row, row * sizeof(double));
    }
    tp_reply(ctx, m, h, len);
    tp__free(h);
}

static int
sampler_init(tp_ctx *ctx, void *state, void *arg)
{
    struct sampler *s = state;
    tp_runtime *rt = tp_ctx_runtime(ctx);

    s->con = arg;
    s->life = s->con->life;
    /* The console is being created, or a live host restarts us. */
    if (tp__console_host_enter(s->life) == NULL) {
        tp__console_host_leave(s->life);
        return -ESHUTDOWN;
    }
    s->nsched = tp_runtime_schedulers(rt);
    s->prev = tp__calloc(s->nsched, sizeof(*s->prev));
    s->cur = tp__calloc(s->nsched, sizeof(*s->cur));
    s->ring =
        tp__calloc((size_t)TP__HIST_LEN * (1 + s->nsched), sizeof(double));
    if (s->prev == NULL || s->cur == NULL || s->ring == NULL)
        goto fail;
    if (tp_send(ctx, tp_self(ctx), TP__CON_SAMPLE, NULL, 0) != 0 ||
        tp_send_interval(ctx, PERIOD_MS, tp_self(ctx), TP__CON_SAMPLE, NULL, 0,
                         NULL) != 0)
        goto fail;
    return 0;
fail:
    tp__free(s->prev);
    tp__free(s->cur);
    tp__free(s->ring);
    tp__console_host_leave(s->life);
    return -ENOMEM;
}

static void
sampler_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct sampler *s = state;

    if (m->type == TP__CON_SAMPLE)
        sample(tp_ctx_runtime(ctx), s);
    else if (m->type == TP__CON_HISTORY && tp_msg_is_request(m))
        answer_history(ctx, s, m);
}

static void
sampler_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    struct sampler *s = state;

    tp__free(s->prev);
    tp__free(s->cur);
    tp__free(s->ring);
    tp__console_host_leave(s->life);
}

static const tp_behaviour sampler_behaviour = {
    .name = "console_sampler",
    .state_size = sizeof(struct sampler),
    .init = sampler_init,
    .handle = sampler_handle,
    .terminate = sampler_terminate,
};

static void
spawn_opts(tp_spawn_opts *so)
{
    tp_spawn_opts_init(so);
    so->max_msgs = TP__SAMPLER_MAILBOX;
    so->overflow = TP_OVERFLOW_REJECT;
}

int
tp__sampler_start(struct tp_console *c)
{
    unsigned n = tp_runtime_schedulers(c->rt);
    tp_spawn_opts so;
    tp_pid pid = TP_PID_NONE;
    int err;

    c->rates.sched_rate = tp__calloc(n, sizeof(*c->rates.sched_rate));
    c->rates.sched_util = tp__calloc(n, sizeof(*c->rates.sched_util));
    if (c->rates.sched_rate == NULL || c->rates.sched_util == NULL)
        return -ENOMEM;
    atomic_store(&c->rates.nsched, n);
    spawn_opts(&so);
    err = tp_runtime_spawn(c->rt, &sampler_behaviour, c, &so, &pid);
    atomic_store(&c->sampler, pid);
    return err;
}

void
tp__sampler_ensure(tp_ctx *ctx, struct tp_console *c)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_pid old = atomic_load(&c->sampler), pid;
    tp_actor_info info;
    tp_spawn_opts so;

    if (old != TP_PID_NONE && tp_actor_peek(c->rt, old, &info) == 0)
        return;
    spawn_opts(&so);
    if (tp_spawn(ctx, &sampler_behaviour, c, &so, &pid) != 0)
        return; /* the console is stopping, or no memory: try next time */
    /* Two sessions may notice at once: one sampler wins, the other dies. */
    if (!atomic_compare_exchange_strong(&c->sampler, &old, pid))
        tp_exit_pid(ctx, pid, &kill);
    else
        tp_log(TP_LOG_WARN, "console: the sampler was gone; restarted");
}
