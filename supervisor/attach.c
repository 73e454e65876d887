/*
 * supervisor/attach.c - a running actor joins a dynamic supervisor (how a
 * listener's connection actors become supervised without a round trip on
 * the accept path).
 */
#include <errno.h>
#include <troupe/supervisor.h>

int
tp_supervisor_attach(tp_ctx *ctx, tp_pid sup)
{
    int err;

    if (sup == TP_PID_NONE || tp_self(ctx) == TP_PID_NONE)
        return -EINVAL;
    /* The link comes first: if sup is already dead, the link delivers an
     * exit signal (noproc) to the caller, which then ends unless it traps
     * exits; it can never outlive its supervisor unnoticed. */
    err = tp_link(ctx, sup);
    if (err != 0)
        return err;
    tp_send(ctx, sup, TP_SUP_ATTACH, NULL, 0);
    return 0;
}
