/*
 * bench/fanin.c - many senders, one receiver: mailbox throughput under
 * producer contention.
 *
 *   fanin [--senders=8] [--msgs=1000000] [--chunk=1000] [--window=4]
 *         [--schedulers=N]
 *
 * The receiver spawns the senders and starts its clock. Each sender sends
 * `msgs` 8-byte messages (sender id, sequence), `chunk` per turn, so it never
 * holds a scheduler for long. The clock stops when the receiver has handled
 * the last message. Checks: every message arrives once and in order per
 * sender.
 *
 * Flow control: with --window=W (default 4) a sender may be W chunks ahead
 * of the receiver, which grants one more chunk each time it has handled one
 * (a credit message per `chunk` messages, 0.1 % extra traffic). So the
 * receiver's mailbox stays small and the figure is the steady-state
 * throughput of one mailbox under 8 producers, as with Go's bounded
 * channels. --window=0 is Erlang's bare `Pid ! Msg`: senders send
 * as fast as they can (continuing through a message to themselves) and the
 * backlog grows while the receiver is slower; the figure then includes
 * allocating (and page-faulting) that backlog.
 *
 * RESULT fanin.msgs_per_s
 * RESULT fanin.rss_mb      (RSS at the end: what the backlog cost)
 */
#include "benchutil.h"
#include "core_common.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_SENDERS 64

enum { M_GO = 1, M_MORE, M_CONT, M_SEQ };

struct params {
    uint32_t senders, msgs, chunk, window;
};

struct item {
    uint32_t sender, seq;
};

struct sender {
    tp_pid to;
    uint32_t id, sent, msgs, chunk, window;
};

struct sender_arg {
    tp_pid to;
    uint32_t id;
    const struct params *p;
};

struct receiver {
    struct params p;
    uint64_t total, expect, errors, t0;
    uint32_t next[MAX_SENDERS];
    uint32_t credit_in[MAX_SENDERS]; /* messages until the next credit */
};

static struct tpc_result result;

static int
sender_init(tp_ctx *ctx, void *state, void *arg)
{
    struct sender *s = state;
    const struct sender_arg *a = arg;

    s->to = a->to;
    s->id = a->id;
    s->msgs = a->p->msgs;
    s->chunk = a->p->chunk;
    s->window = a->p->window;
    return 0;
}

static void
send_chunk(tp_ctx *ctx, struct sender *s)
{
    struct item it = {s->id, 0};
    uint32_t end = s->sent + s->chunk;

    if (end > s->msgs || end < s->sent)
        end = s->msgs;
    for (; s->sent < end; s->sent++) {
        it.seq = s->sent;
        if (tp_send(ctx, s->to, M_SEQ, &it, sizeof(it)) != 0)
            tp_fail(ctx, "send failed");
    }
}

/* M_GO: the first `window` chunks (or one, unbounded); M_MORE: a credit
 * from the receiver; M_CONT: unbounded mode's continuation. */
static void
sender_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct sender *s = state;
    uint32_t chunks = m->type == M_GO && s->window > 0 ? s->window : 1;

    while (chunks-- > 0)
        send_chunk(ctx, s);
    if (s->sent == s->msgs)
        tp_exit(ctx);
    else if (s->window == 0)
        tp_send(ctx, tp_self(ctx), M_CONT, NULL, 0);
}

static const tp_behaviour sender_b = {.name = "fanin_sender",
                                      .state_size = sizeof(struct sender),
                                      .init = sender_init,
                                      .handle = sender_handle};

static void
receiver_go(tp_ctx *ctx, struct receiver *r, const struct params *p)
{
    tp_pid pids[MAX_SENDERS];
    struct sender_arg a = {tp_self(ctx), 0, p};

    r->p = *p;
    r->expect = (uint64_t)p->senders * p->msgs;
    for (uint32_t i = 0; i < p->senders; i++)
        r->credit_in[i] = p->chunk;
    /* Spawn all first, start all next: no sender gets a head start. */
    for (a.id = 0; a.id < p->senders; a.id++) {
        if (tp_spawn(ctx, &sender_b, &a, NULL, &pids[a.id]) != 0)
            tp_fail(ctx, "cannot spawn sender %u", a.id);
    }
    r->t0 = tp_now_ns();
    for (uint32_t i = 0; i < p->senders; i++)
        tp_send(ctx, pids[i], M_GO, NULL, 0);
}

static void
receiver_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct receiver *r = state;
    const struct item *it = m->data;

    if (m->type == M_GO) {
        receiver_go(ctx, r, m->data);
        return;
    }
    if (it->sender >= r->p.senders || it->seq != r->next[it->sender]) {
        r->errors++;
    } else {
        r->next[it->sender]++;
        /* A countdown, not seq % chunk: a division per message would
         * weigh on the figure. */
        if (--r->credit_in[it->sender] == 0) {
            r->credit_in[it->sender] = r->p.chunk;
            if (r->p.window > 0) /* credit: one more chunk */
                tp_send(ctx, m->from, M_MORE, NULL, 0);
        }
    }
    if (++r->total == r->expect) {
        tpc_publish(&result, r->t0, tp_now_ns(), r->errors);
        tp_exit(ctx);
    }
}

static const tp_behaviour receiver_b = {.name = "fanin_receiver",
                                        .state_size = sizeof(struct receiver),
                                        .handle = receiver_handle};

int
main(int argc, char **argv)
{
    struct params p = {(uint32_t)tpb_opt(argc, argv, "senders", 8),
                       (uint32_t)tpb_opt(argc, argv, "msgs", 1000000),
                       (uint32_t)tpb_opt(argc, argv, "chunk", 1000),
                       (uint32_t)tpb_opt(argc, argv, "window", 4)};
    tp_runtime *rt = tpc_runtime(argc, argv);
    double total = (double)p.senders * p.msgs;
    tp_pid recv;
    bool ok;

    if (p.senders < 1 || p.senders > MAX_SENDERS || p.msgs < 1 || p.chunk < 1) {
        fprintf(stderr, "need 1..%d senders, msgs and chunk >= 1\n",
                MAX_SENDERS);
        return tpc_finish(rt, false);
    }
    if (tp_runtime_spawn(rt, &receiver_b, NULL, NULL, &recv) ||
        tp_runtime_send(rt, recv, M_GO, &p, sizeof(p)))
        return tpc_finish(rt, false);
    ok = tpc_wait(rt, &result, 300);
    if (ok) {
        tpb_result("fanin.msgs_per_s",
                   total * 1e9 / (double)(result.t1_ns - result.t0_ns),
                   "msg/s");
        tpb_result("fanin.rss_mb", (double)tpb_rss() / 1048576.0, "MB");
        ok = tpc_check("fanin.order_errors", result.value, 0);
    }
    tpc_sched_stats(rt, argc, argv);
    return tpc_finish(rt, ok);
}
