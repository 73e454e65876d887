/*
 * samples/echo/echo_direct.c - the echo connection actor of echo.c written
 * in direct style (troupe-echo --style direct): straight-line code that
 * reads with tp_tcp_recv_msg() and writes back what it read, instead of a
 * handle callback the runtime calls per message.
 *
 * Everything around it is the same: the listener spawns one per accepted
 * connection, it joins the "echo" supervisor, flow control pauses reading
 * while it is behind, it ends when its connection closes and the
 * connection closes when it ends. Copied stacks: while it waits for bytes
 * it keeps only the few hundred bytes of stack it used.
 */
#include "echo.h"

#include <troupe/direct.h>

static void
echo_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    tp_conn conn;

    (void)state;
    (void)arg;
    tp_receive(ctx, &m, -1); /* TP_MSG_TCP_OPENED always comes first */
    conn = tp_msg_conn(m);
    /* > 0: a DATA message (valid until the next read); 0: closed. */
    while (tp_tcp_recv_msg(ctx, conn, &m, -1) > 0)
        tp_tcp_send(ctx, conn, m->data, m->len);
}

static const tp_direct echo_direct = {
    TP_DIRECT_BEHAVIOUR("echo.conn", 0),
    .main = echo_main,
    .stack = TP_STACK_COPIED,
};

const tp_behaviour *
echo_direct_conn(void)
{
    return tp_direct_behaviour(&echo_direct);
}
