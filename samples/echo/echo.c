/*
 * samples/echo/echo.c - the echo service: the smallest useful connection
 * actor.
 *
 * The runtime does the rest: the listener spawns one actor per accepted
 * connection (on the scheduler that accepted it), the actor joins the
 * "echo" supervisor, bytes arrive as TP_MSG_TCP_DATA messages, and the
 * actor ends when its connection closes (and the connection closes when
 * the actor ends, even by a crash).
 */
#include "echo.h"

/* No state of its own: the connection handle comes with every message. */
static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_conn = {
    .name = "echo.conn",
    .handle = echo_handle,
};

int
echo_start_with(tp_runtime *rt, const struct sample_opts *o, int port,
                const tp_behaviour *conn, tp_listener **out)
{
    int err;

    if ((err = sample_conn_supervisor(rt, "echo", "echo.conns", conn)) != 0)
        return sample_fail(o, "echo supervisor", err);
    /* Default connection options: reading pauses while the actor is
     * behind, and a peer that never reads is cut off at 8 MiB queued. */
    return sample_listen(rt, o, "echo", port, conn, NULL, "echo.conns", NULL,
                         out);
}

int
echo_start(tp_runtime *rt, const struct sample_opts *o, int port,
           tp_listener **out)
{
    return echo_start_with(rt, o, port, &echo_conn, out);
}
