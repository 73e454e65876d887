/*
 * samples/fleet/fleet_conn.c - the fleet's connection actor: one per
 * client, supervised (it joins the node's dynamic supervisor, as the
 * listener asks), costing a few dozen bytes of state while idle.
 *
 * It greets the client with its node's name, takes the name the client
 * asks for (HELLO), forwards SENDs to the actor holding a name and writes
 * what it is sent (MSG) to its client. When the node drains it says BYE, so
 * the client reconnects (to another node) at once. Protocol: fleet_proto.h.
 */
#include "fleet.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct conn_state {
    struct fleet_node *node;
    struct fleet_frame frame;
    bool named;
};

/* Who a line is for (fleet_frame_feed's user). */
struct line_ctx {
    tp_ctx *ctx;
    struct conn_state *st;
};

static void say(tp_ctx *ctx, const char *fmt, ...) TP_PRINTF(2, 3);

static void
say(tp_ctx *ctx, const char *fmt, ...)
{
    char line[FLEET_LINE_MAX + 32];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        tp_tcp_send(ctx, tp_tcp_self(ctx), line,
                    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void
hello(tp_ctx *ctx, struct conn_state *st, const char *name)
{
    int err;

    if (st->named) {
        say(ctx, "ERR already named\n");
        return;
    }
    if ((err = fleet_name_register(ctx, st->node, name)) != 0) {
        say(ctx, "ERR %s %s\n", err == -EEXIST ? "taken" : tp_strerror(err),
            name);
        return;
    }
    st->named = true;
    atomic_fetch_add_explicit(&st->node->named, 1, memory_order_relaxed);
    say(ctx, "OK %s\n", name);
}

static void
send_to(tp_ctx *ctx, struct conn_state *st, const struct fleet_cmd *c)
{
    struct fleet_deliver d = {c->id, c->t_ns};
    int err = fleet_name_send(ctx, st->node, c->name, &d);

    atomic_fetch_add_explicit(&st->node->sends, 1, memory_order_relaxed);
    if (err == -ENOENT)
        atomic_fetch_add_explicit(&st->node->noname, 1, memory_order_relaxed);
    say(ctx, "ACK %llu %s\n", (unsigned long long)c->id,
        err == 0 || err == 1 ? "ok" /* 1: asked of the other nodes */
        : err == -ENOENT     ? "noname"
        : err == -EAGAIN     ? "busy"
                             : "dead");
}

static bool
on_line(void *user, const char *line, size_t len)
{
    struct line_ctx *lc = user;
    struct fleet_cmd c;

    fleet_parse(line, len, &c);
    switch (c.verb) {
    case FLEET_HELLO:
        hello(lc->ctx, lc->st, c.name);
        break;
    case FLEET_SEND:
        send_to(lc->ctx, lc->st, &c);
        break;
    case FLEET_PING:
        say(lc->ctx, "PONG\n");
        break;
    case FLEET_QUIT:
        return false;
    case FLEET_BAD:
        say(lc->ctx, "ERR %s\n", c.error);
        break;
    case FLEET_EMPTY:
        break;
    }
    return true;
}

static void
on_data(tp_ctx *ctx, struct conn_state *st, const tp_msg *msg)
{
    struct line_ctx lc = {ctx, st};
    int err = fleet_frame_feed(&st->frame, msg->data, msg->len, on_line, &lc);

    if (err == 0)
        return;
    if (err == -E2BIG)
        say(ctx, "ERR line too long (max %d bytes)\n", FLEET_LINE_MAX);
    fleet_frame_free(&st->frame);
    tp_tcp_close(ctx, tp_tcp_self(ctx));
}

static void
on_deliver(tp_ctx *ctx, struct conn_state *st, const tp_msg *msg)
{
    struct fleet_deliver d;

    if (msg->len != sizeof(d))
        return;
    memcpy(&d, msg->data, sizeof(d));
    say(ctx, "MSG %llu %llu\n", (unsigned long long)d.id,
        (unsigned long long)d.t_ns);
    atomic_fetch_add_explicit(&st->node->delivered, 1, memory_order_relaxed);
}

static void
conn_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct conn_state *st = state;

    switch (msg->type) {
    case TP_MSG_TCP_OPENED:
        say(ctx, "NODE %s\n", st->node->name);
        break;
    case TP_MSG_TCP_DATA:
        on_data(ctx, st, msg);
        break;
    case FLEET_MSG_DELIVER:
        on_deliver(ctx, st, msg);
        break;
    case TP_MSG_TCP_DRAIN: /* the wrapper closes once this is written */
        say(ctx, "BYE drain\n");
        break;
    default:
        break;
    }
}

static int
conn_init(tp_ctx *ctx, void *state, void *arg)
{
    struct conn_state *st = state;

    st->node = arg;
    /* Spawned by the listener with default options: bound our own
     * mailbox, which every connection of the node may send to. */
    return tp_set_mailbox_bound(ctx, FLEET_CONN_MAILBOX, 0, TP_OVERFLOW_REJECT);
}

static void
conn_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    struct conn_state *st = state;

    (void)ctx;
    (void)reason;
    fleet_frame_free(&st->frame);
}

const tp_behaviour fleet_conn_behaviour = {
    .name = "fleet.conn",
    .state_size = sizeof(struct conn_state),
    .init = conn_init,
    .handle = conn_handle,
    .terminate = conn_terminate,
};
