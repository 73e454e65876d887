/*
 * actors/gen_server.c - the gen_server behaviour: dispatch of calls, casts
 * and infos to a tp_gen_server's callbacks.
 *
 * The table embeds the behaviour the runtime runs (its first member), so
 * the adapter finds the table from the running actor's behaviour pointer
 * and the state is the user's own, with no prefix. A call is a request
 * (it carries a reference); a cast travels in a TP_MSG_GS_CAST envelope
 * that only tp_gs_cast() makes, so no plain message can pass for one.
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/gen_server.h>

/* The cast envelope, in front of the cast's payload (keeps it 8-aligned). */
struct cast_hdr {
    uint32_t type;
    uint32_t reserved;
};

_Static_assert(sizeof(struct cast_hdr) == TP_GS_CAST_HDR, "cast envelope");

static const tp_gen_server *
gs_of(tp_ctx *ctx)
{
    const tp_behaviour *b =
        atomic_load_explicit(&ctx->self->beh, memory_order_relaxed);

    return (const tp_gen_server *)b; /* the behaviour is the first member */
}

static bool
is_gen_server(const tp_gen_server *gs)
{
    return gs != NULL && gs->behaviour.handle == tp_gs_adapter_handle &&
           gs->behaviour.init == tp_gs_adapter_init;
}

/* ---------------------------------------------------------------------- */
/* Answers                                                                 */

/* Tells a caller that no reply will come (the server stops, or cannot
 * take calls): TP_MSG_NOPROC with the call's reference. */
static void
answer_noproc(tp_ctx *ctx, tp_gs_from *from)
{
    struct tp__msg *m = tp__msg_alloc(0);

    from->replied = true;
    if (m == NULL)
        return; /* the caller's timeout answers instead */
    m->m.type = TP_MSG_NOPROC;
    m->m.ref = from->ref;
    m->m.from = tp_self(ctx);
    m->flags |= TP__MSG_FORCED; /* an answer: bypasses the bound */
    tp__deliver(ctx, from->pid, m);
}

int
tp_gs_reply(tp_ctx *ctx, tp_gs_from *from, const void *data, size_t len)
{
    int err;

    if (from == NULL || from->ref == 0)
        return -EINVAL;
    if (from->replied)
        return -EALREADY;
    err = tp_reply_to(ctx, from->pid, from->ref, data, len);
    if (err == 0 || err == -ESRCH)
        from->replied = true;
    return err;
}

int
tp_gs_reply_packed(tp_ctx *ctx, tp_gs_from *from, const tp_pack *p)
{
    int err = tp_pack_status(p);

    if (err != 0)
        return err;
    return tp_gs_reply(ctx, from, tp_pack_data(p), tp_pack_len(p));
}

int
tp_gs_stop(tp_ctx *ctx, const tp_exit_reason *reason)
{
    if (reason != NULL)
        tp_exit_with(ctx, reason);
    return TP_GS_STOP;
}

/* ---------------------------------------------------------------------- */
/* Dispatch                                                                */

/* Acts on a callback's result (`what` names the callback). */
static void
finish(tp_ctx *ctx, const tp_gen_server *gs, const char *what, int r)
{
    if (r == TP_GS_NOREPLY || r == TP_GS_REPLY)
        return;
    if (r == TP_GS_STOP) {
        tp_exit(ctx); /* keeps a reason set by tp_gs_stop() */
        return;
    }
    tp_fail(ctx, "%s: %s returned %d (%s)", gs->behaviour.name, what, r,
            r < 0 ? tp_strerror(r) : "not a tp_gs_result");
}

static void
on_call(tp_ctx *ctx, const tp_gen_server *gs, void *state, const tp_msg *msg)
{
    tp_gs_from from = {msg->from, msg->ref, false};
    int r;

    if (gs->handle_call == NULL) {
        answer_noproc(ctx, &from);
        return;
    }
    r = gs->handle_call(ctx, state, msg, &from);
    if (r == TP_GS_REPLY && !from.replied)
        tp_gs_reply(ctx, &from, NULL, 0);
    else if (r != TP_GS_REPLY && r != TP_GS_NOREPLY && !from.replied)
        answer_noproc(ctx, &from); /* stopping or crashing: no reply */
    finish(ctx, gs, "handle_call", r);
}

/* Unwraps a cast envelope into a message of its own. Returns false if msg
 * is not a well-formed cast (it is then an info). */
static bool
cast_view(const tp_msg *msg, struct tp__msg *view)
{
    struct cast_hdr h;

    if (msg->type != TP_MSG_GS_CAST || msg->len < TP_GS_CAST_HDR)
        return false;
    memcpy(&h, msg->data, sizeof(h));
    if (tp_msg_is_system(h.type))
        return false;
    /* A whole tp__msg, blob NULL: tp_msg_blob() on the view is safe. */
    memset(view, 0, sizeof(*view));
    view->m = *msg;
    view->m.type = h.type;
    view->m.len = msg->len - TP_GS_CAST_HDR;
    view->m.data =
        view->m.len != 0 ? (const char *)msg->data + TP_GS_CAST_HDR : NULL;
    return true;
}

/* A trapped exit signal from the parent stops the server (OTP's rule:
 * a supervisor's shutdown must not depend on handle_info). */
static bool
parent_exit(tp_ctx *ctx, const tp_msg *msg)
{
    const struct tp__actor_ext *x = tp__ext_peek(ctx->self);
    tp_exit_reason why;
    tp_pid pid;

    if (msg->type != TP_MSG_EXIT || x == NULL || x->parent == TP_PID_NONE ||
        tp_msg_exit(msg, &pid, &why) != 0 || pid != x->parent)
        return false;
    tp_exit_with(ctx, &why);
    return true;
}

void
tp_gs_adapter_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    const tp_gen_server *gs = gs_of(ctx);
    struct tp__msg view;

    if (tp_msg_is_request(msg)) {
        on_call(ctx, gs, state, msg);
    } else if (cast_view(msg, &view)) {
        if (gs->handle_cast != NULL)
            finish(ctx, gs, "handle_cast",
                   gs->handle_cast(ctx, state, &view.m));
    } else if (!parent_exit(ctx, msg) && gs->handle_info != NULL) {
        finish(ctx, gs, "handle_info", gs->handle_info(ctx, state, msg));
    }
}

int
tp_gs_adapter_init(tp_ctx *ctx, void *state, void *arg)
{
    const tp_gen_server *gs = gs_of(ctx);

    return gs->init != NULL ? gs->init(ctx, state, arg) : 0;
}

void
tp_gs_adapter_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    const tp_gen_server *gs = gs_of(ctx);

    if (gs->terminate != NULL)
        gs->terminate(ctx, state, why);
}

/* ---------------------------------------------------------------------- */
/* Starting, calling, casting                                              */

int
tp_gen_server_spawn(tp_ctx *ctx, const tp_gen_server *gs, void *arg,
                    const tp_spawn_opts *opts, tp_pid *out)
{
    if (!is_gen_server(gs))
        return -EINVAL;
    return tp_spawn(ctx, &gs->behaviour, arg, opts, out);
}

int
tp_gen_server_start(tp_runtime *rt, const tp_gen_server *gs, void *arg,
                    const tp_spawn_opts *opts, tp_pid *out)
{
    if (!is_gen_server(gs))
        return -EINVAL;
    return tp_runtime_spawn(rt, &gs->behaviour, arg, opts, out);
}

int
tp_gs_call(tp_ctx *ctx, tp_pid server, uint32_t type, const void *data,
           size_t len, uint32_t timeout_ms, uint64_t *ref)
{
    return tp_request(ctx, server, type, data, len, timeout_ms, ref);
}

int
tp_gs_call_packed(tp_ctx *ctx, tp_pid server, uint32_t type, const tp_pack *p,
                  uint32_t timeout_ms, uint64_t *ref)
{
    return tp_request_packed(ctx, server, type, p, timeout_ms, ref);
}

static int
cast_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data, size_t len)
{
    struct cast_hdr h = {type, 0};
    struct tp__msg *m;

    if (tp_msg_is_system(type) || (data == NULL && len != 0) ||
        len > (size_t)INT32_MAX - TP_GS_CAST_HDR)
        return -EINVAL;
    /* A remote pid is checked by its own node (tp__deliver's hook). */
    if (!tp_pid_is_remote(to) && tp__actor_lookup(ctx->A, to) == NULL) {
        TP__STAT_ADD(ctx->st.dead_letters, 1);
        return -ESRCH;
    }
    m = tp__msg_alloc(TP_GS_CAST_HDR + len);
    if (m == NULL)
        return -ENOMEM;
    m->m.type = TP_MSG_GS_CAST;
    m->m.from = tp_self(ctx);
    memcpy(tp__msg_payload(m), &h, sizeof(h));
    if (len != 0)
        memcpy((char *)tp__msg_payload(m) + TP_GS_CAST_HDR, data, len);
    return tp__deliver(ctx, to, m);
}

int
tp_gs_cast(tp_ctx *ctx, tp_pid server, uint32_t type, const void *data,
           size_t len)
{
    return cast_send(ctx, server, type, data, len);
}

int
tp_gs_cast_packed(tp_ctx *ctx, tp_pid server, uint32_t type, const tp_pack *p)
{
    int err = tp_pack_status(p);

    if (err != 0)
        return err;
    return cast_send(ctx, server, type, tp_pack_data(p), tp_pack_len(p));
}

int
tp_gs_runtime_cast(tp_runtime *rt, tp_pid server, uint32_t type,
                   const void *data, size_t len)
{
    tp_ctx *ctx = tp__xctx_acquire(rt);
    int err = cast_send(ctx, server, type, data, len);

    tp__xctx_release(ctx);
    return err;
}
