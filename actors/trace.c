/*
 * actors/trace.c - message tracing (for the console's `trace PID`).
 *
 * The traced actor copies each message it is about to handle into a
 * TP_MSG_TRACE event for its tracer, on its own thread: nothing is shared.
 * Copies go through the tracer's mailbox bound (a console session bounds
 * its mailbox, so a slow client drops events instead of growing memory);
 * when the tracer is gone, tracing switches itself off.
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/request.h>

void
tp__trace_msg(tp_ctx *ctx, struct tp__actor *a, const struct tp__msg *m)
{
    uint32_t n = m->m.len < TP_TRACE_MAX_DATA ? m->m.len : TP_TRACE_MAX_DATA;
    struct tp__msg *t = tp__msg_alloc(sizeof(tp_trace_event) + n);
    tp_trace_event *ev;

    if (t == NULL)
        return;
    t->m.type = TP_MSG_TRACE;
    t->m.from = tp__actor_pid(a);
    ev = tp__msg_payload(t);
    ev->actor = tp__actor_pid(a);
    ev->from = m->m.from;
    ev->ref = m->m.ref;
    ev->type = m->m.type;
    ev->len = m->m.len;
    ev->at_ns = tp_now_ns();
    /* cppcheck-suppress knownConditionTrueFalse ; len 0 is common */
    if (n != 0)
        memcpy(ev + 1, m->m.data, n);
    if (tp__deliver(ctx, tp__ext_peek(a)->tracer, t) == -ESRCH)
        tp__ext_peek(a)->tracer = TP_PID_NONE; /* tracing: it has ext */
}

static void
set_tracer(tp_ctx *ctx, void *state, void *arg)
{
    struct tp__actor_ext *x;

    if (state == NULL)
        return; /* the target died first */
    x = tp__actor_ext(ctx->self);
    if (x != NULL)
        x->tracer = (tp_pid)(uintptr_t)arg;
}

int
tp_trace(tp_runtime *rt, tp_pid target, tp_pid tracer)
{
    return tp__actor_call(tp__actors_of(rt), target, set_tracer,
                          (void *)(uintptr_t)tracer);
}
