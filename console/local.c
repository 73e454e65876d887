/*
 * console/local.c - the in-process transport: a host actor that feeds a
 * line session or an HTTP handler from TP__CON_IN messages and sends what
 * it writes to a sink actor as TP__CON_OUT messages (TP__CON_CLOSE in
 * either direction ends it). The tests drive every command through it;
 * the network listeners use the same session code over sockets.
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>

struct local {
    struct tp__con_life *life;
    tp_pid sink;
    bool http, closed;
    union {
        struct tp__session *s;
        struct tp__http *h;
    } u;
};

static int
local_write(tp_ctx *ctx, void *t, const void *data, size_t len)
{
    struct local *l = t;

    return tp_send(ctx, l->sink, TP__CON_OUT, data, len);
}

static size_t
local_pending(void *t)
{
    return 0;
}

static void
local_close(tp_ctx *ctx, void *t)
{
    struct local *l = t;

    if (l->closed)
        return;
    l->closed = true;
    tp_send(ctx, l->sink, TP__CON_CLOSE, NULL, 0);
    tp_exit(ctx);
}

static const struct tp__transport local_transport = {local_write, local_pending,
                                                     local_close};

struct local_arg {
    struct tp_console *con;
    tp_pid sink;
    bool http;
};

static int
local_init(tp_ctx *ctx, void *state, void *arg)
{
    struct local *l = state;
    const struct local_arg *a = arg;
    int err;

    l->life = a->con->life;
    if (tp__console_host_enter(l->life) == NULL) {
        tp__console_host_leave(l->life);
        return -ESHUTDOWN;
    }
    l->sink = a->sink;
    l->http = a->http;
    l->u.s = tp__calloc(1, a->http ? tp__http_size() : tp__session_size());
    if (l->u.s == NULL)
        return -ENOMEM;
    err = a->http
              ? tp__http_open(ctx, l->u.h, a->con, &local_transport, l, NULL)
              : tp__session_open(ctx, l->u.s, a->con, TP__SESS_LOCAL,
                                 &local_transport, l, NULL);
    if (err != 0) {
        tp__free(l->u.s);
        tp__console_host_leave(l->life);
    }
    return err;
}

static void
local_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct local *l = state;

    if (m->type == TP__CON_CLOSE) {
        local_close(ctx, l);
    } else if (m->type == TP__CON_IN) {
        if (l->http)
            tp__http_input(ctx, l->u.h, m->data, m->len);
        else
            tp__session_input(ctx, l->u.s, m->data, m->len);
    } else if (l->http) {
        tp__http_handle(ctx, l->u.h, m);
    } else {
        tp__session_handle(ctx, l->u.s, m);
    }
}

static void
local_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct local *l = state;

    if (l->http)
        tp__http_close(ctx, l->u.h);
    else
        tp__session_close(ctx, l->u.s);
    tp__free(l->u.s);
    if (!l->closed)
        tp_send(ctx, l->sink, TP__CON_CLOSE, NULL, 0);
    tp__console_host_leave(l->life);
}

static const tp_behaviour local_behaviour = {
    .name = "console_local",
    .state_size = sizeof(struct local),
    .init = local_init,
    .handle = local_handle,
    .terminate = local_terminate,
};

static int
spawn_local(tp_console *c, tp_pid sink, bool http, tp_pid *out)
{
    struct local_arg a = {c, sink, http};

    return tp_runtime_spawn(c->rt, &local_behaviour, &a, NULL, out);
}

int
tp__console_local_session(tp_console *c, tp_pid sink, tp_pid *out)
{
    return spawn_local(c, sink, false, out);
}

int
tp__console_local_http(tp_console *c, tp_pid sink, tp_pid *out)
{
    return spawn_local(c, sink, true, out);
}
