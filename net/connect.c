/*
 * net/connect.c - outbound connections (tp_tcp_connect).
 *
 * The calling actor owns the connection: it gets TP_MSG_TCP_CONNECTED and
 * then the connection's messages, and the connection is closed when the
 * actor dies. An actor keeps the handles of its outbound connections in
 * one owned resource (a hash set, pruned of closed handles as it grows),
 * released with the actor.
 */
#include "net_int.h"
#include "tls_int.h"
#include "ws_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct connect_cmd {
    struct tp__ncmd n;
    struct sockaddr_storage ss;
    unsigned sslen;
    uint32_t timeout_ms;
    char path[108]; /* Unix socket, or "" */
};

struct owned {
    struct tp__resource res;
    struct tp__net *net;
    struct tp__u64map set;
    uint32_t prune_at;
};

/* ---------------------------------------------------------------------- */
/* Ownership                                                              */

static void
owned_release(struct tp__resource *r, tp_ctx *ctx, const tp_exit_reason *why)
{
    struct owned *o = tp__container_of(r, struct owned, res);
    struct tp__u64map_entry *e;

    (void)ctx;
    (void)why;
    for (uint32_t i = 0; tp__u64map_next(&o->set, &i, &e);)
        tp__net_post(o->net, e->key, TP__OP_CLOSE, TP_NET_CLOSE_OWNER_EXIT);
    tp__u64map_fini(&o->set);
    tp__free(o);
}

static bool
still_open(struct tp__net *net, tp_conn h)
{
    struct tp__conn *c = tp__conn_resolve(net, h);

    return c != NULL &&
           atomic_load_explicit(&c->state, memory_order_relaxed) < TP__C_CLOSED;
}

/* Drops handles of closed connections: amortised O(1) per connect. */
static void
owned_prune(struct owned *o)
{
    uint64_t *dead = tp__malloc(o->set.count * sizeof(*dead));
    struct tp__u64map_entry *e;
    uint32_t n = 0;

    if (dead != NULL) {
        for (uint32_t i = 0; tp__u64map_next(&o->set, &i, &e);) {
            if (!still_open(o->net, e->key))
                dead[n++] = e->key;
        }
        for (uint32_t k = 0; k < n; k++)
            tp__u64map_remove(&o->set, dead[k], NULL);
        tp__free(dead);
    }
    o->prune_at = o->set.count * 2 > 64 ? o->set.count * 2 : 64;
}

static struct owned *
owned_get(tp_ctx *ctx, struct tp__net *net)
{
    struct tp__actor_ext *x = tp__actor_ext(ctx->self);
    struct owned *o;

    if (x == NULL)
        return NULL;
    for (struct tp__resource *r = x->res.next; r != &x->res; r = r->next) {
        if (r->release == owned_release)
            return tp__container_of(r, struct owned, res);
    }
    o = tp__calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->net = net;
    o->prune_at = 64;
    tp__u64map_init(&o->set);
    o->res.release = owned_release;
    if (tp__actor_own(ctx, &o->res) != 0) {
        tp__free(o);
        return NULL;
    }
    return o;
}

static int
owned_add(struct owned *o, tp_conn h)
{
    if (o->set.count >= o->prune_at)
        owned_prune(o);
    return tp__u64map_put(&o->set, h, 1) < 0 ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------------- */
/* On the loop                                                            */

static void
fd_addr(int fd, bool peer, tp_net_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                 : getsockname(fd, (struct sockaddr *)&ss, &len);

    memset(out, 0, sizeof(*out));
    if (r == 0)
        tp__addr_from_sockaddr(&ss, out);
}

static void
tell_connected(struct tp__conn *c)
{
    struct tp__sched *s = c->h.loop->data;
    tp_tcp_connected m;
    int fd = atomic_load_explicit(&c->fd, memory_order_relaxed);

    memset(&m, 0, sizeof(m));
    m.conn = tp__conn_handle(c);
    fd_addr(fd, true, &m.peer);
    fd_addr(fd, false, &m.local);
    tp__conn_tell(c, TP_MSG_TCP_CONNECTED, &m, sizeof(m));
    tp__rt_pending_add(s->rt, -1);
}

static void
connected(struct tp__conn *c)
{
    uv_os_fd_t fd = -1;

    uv_fileno((uv_handle_t *)&c->h, &fd);
    atomic_store_explicit(&c->fd, fd, memory_order_relaxed);
    /* release: the console reads the fd once it sees OPEN. */
    atomic_store_explicit(&c->state, TP__C_OPEN, memory_order_release);
    if (tp__conn_tls(c) ==
        NULL) /* TLS hook: CONNECTED once the handshake is done */
        tell_connected(c);
    tp__conn_opened(c);
}

static void
failed(struct tp__conn *c, int err)
{
    struct tp__sched *s = c->h.loop->data;
    tp_tcp_connected m;

    if (tp__conn_tls(c) !=
        NULL) /* TLS hook: the pending count is settled here */
        tp__tls_reported(c);
    memset(&m, 0, sizeof(m));
    m.conn = tp__conn_handle(c);
    m.error = err;
    tp__conn_tell(c, TP_MSG_TCP_CONNECTED, &m, sizeof(m));
    tp__rt_pending_add(s->rt, -1);
    tp__conn_discard(c);
}

void
tp__connect_timeout(struct tp__conn *c)
{
    failed(c, -ETIMEDOUT);
}

void
tp__connect_report(struct tp__conn *c, int err)
{
    if (err != 0) {
        failed(c, err);
        return;
    }
    tp__tls_reported(c);
    tell_connected(c);
}

static void
connect_cb(uv_connect_t *req, int status)
{
    struct tp__conn *c = req->handle->data;

    tp__free(req);
    if (status == UV_ECANCELED ||
        atomic_load_explicit(&c->state, memory_order_relaxed) !=
            TP__C_CONNECTING)
        return; /* timed out (or closed) meanwhile */
    if (status < 0)
        failed(c, status);
    else
        connected(c);
}

static void
connect_unix(struct tp__conn *c, const struct connect_cmd *cc)
{
    struct sockaddr_un su;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err;

    if (fd < 0) {
        failed(c, -errno);
        return;
    }
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    memcpy(su.sun_path, cc->path, strlen(cc->path) + 1);
    /* A Unix connect completes (or fails) at once: no loop round. */
    if (connect(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
        err = -errno;
        close(fd);
        failed(c, err);
        return;
    }
    /* uv_tcp_t carries any stream socket on Unix: libuv's stream code is
     * the same, and the TCP-only calls are not used on it. */
    if ((err = uv_tcp_open(&c->h, fd)) != 0) {
        close(fd);
        failed(c, err);
        return;
    }
    connected(c);
}

void
tp__connect_start(struct tp__conn *c, struct tp__ncmd *nc)
{
    struct connect_cmd *cc = (struct connect_cmd *)nc;
    struct tp__sched *s = tp__tls_sched;
    uv_connect_t *req;
    int err;

    uv_tcp_init(&s->loop, &c->h);
    c->h.data = c;
    if (cc->path[0] != '\0') {
        connect_unix(c, cc);
        return;
    }
    req = tp__malloc(sizeof(*req));
    err = req == NULL ? -ENOMEM
                      : uv_tcp_connect(req, &c->h, (struct sockaddr *)&cc->ss,
                                       connect_cb);
    if (err != 0) {
        tp__free(req);
        failed(c, err);
        return;
    }
    if (tp__conn_cfg(c)->nodelay)
        uv_tcp_nodelay(&c->h, 1);
    if (tp__conn_cfg(c)->send_buffer != 0) {
        int v = (int)tp__conn_cfg(c)->send_buffer;

        (void)uv_send_buffer_size((uv_handle_t *)&c->h, &v);
    }
    tp__conn_timer_arm(c, cc->timeout_ms);
}

/* ---------------------------------------------------------------------- */
/* The call                                                               */

static int
target(const tp_connect_opts *o, struct connect_cmd *cc)
{
    tp_net_addr a;
    size_t n;
    int err;

    if (o->path != NULL) {
        n = strlen(o->path);
        if (n == 0 || n >= sizeof(cc->path))
            return n == 0 ? -EINVAL : -ENAMETOOLONG;
        memcpy(cc->path, o->path, n + 1);
        return 0;
    }
    cc->path[0] = '\0';
    if (o->address == NULL || o->port == 0)
        return -EINVAL;
    if ((err = tp_net_addr_parse(o->address, o->port, &a)) != 0)
        return err;
    return tp__addr_to_sockaddr(&a, &cc->ss, &cc->sslen);
}

static struct tp__sched *
home_sched(tp_ctx *ctx)
{
    if (ctx->sched != NULL)
        return ctx->sched;
    return ctx->rt->sched[atomic_load(&ctx->self->home) % ctx->rt->nsched];
}

/* Prepares block c for the connect and returns its handle. */
static tp_conn
prepare(tp_ctx *ctx, struct tp__net *net, struct tp__conn *c,
        const tp_conn_opts *cfg)
{
    tp__conn_setup(c, home_sched(ctx), cfg, TP__CF_OUTBOUND);
    atomic_store_explicit(&c->owner, tp_self(ctx), memory_order_relaxed);
    /* release: the fields above before the state (the console). */
    atomic_store_explicit(&c->state, TP__C_CONNECTING, memory_order_release);
    atomic_fetch_add_explicit(&net->open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&net->connects, 1, memory_order_relaxed);
    tp__rt_pending_add(ctx->rt, 1); /* until CONNECTED is sent */
    return tp__conn_handle(c);
}

int
tp_tcp_connect(tp_ctx *ctx, const tp_connect_opts *o, tp_conn *out)
{
    struct tp__net *net;
    struct connect_cmd *cc;
    struct tp__conn *c = NULL;
    struct owned *own;
    const tp_conn_opts *cfg;
    struct tp__tls *tls = NULL;
    struct tp__ws *ws = NULL;
    uint8_t klass;
    int err = 0;

    if (ctx == NULL || ctx->self == NULL || o == NULL ||
        tp__conn_opts_check(&o->conn) != 0)
        return -EINVAL;
    if ((net = tp__net_get(ctx->rt, &err)) == NULL)
        return err;
    if (atomic_load(&ctx->rt->stopping))
        return -ESHUTDOWN;
    cc = tp__net_cmd_alloc(sizeof(*cc), &klass);
    if (cc == NULL)
        return -ENOMEM;
    cc->n.klass = klass;
    cc->timeout_ms = o->timeout_ms;
    if ((err = target(o, cc)) != 0)
        goto fail;
    /* TLS hook: the connection's TLS state, made here (any thread) and
     * handed to the loop with the connect command. */
    if (o->tls != NULL &&
        (err = tp__tls_client_new(
             o->tls, o->server_name != NULL ? o->server_name : o->address,
             o->server_name == NULL, &tls)) != 0)
        goto fail;
    /* WebSocket hook: a client's upgrade state, attached like TLS's. */
    if (o->ws != NULL &&
        (err = tp__ws_client_new(
             o->ws, o->server_name != NULL ? o->server_name : o->address,
             &ws)) != 0)
        goto fail;
    own = owned_get(ctx, net);
    cfg = tp__net_cfg_intern(net, &o->conn);
    c = cfg != NULL && own != NULL
            ? tp__conn_alloc(&net->loops[home_sched(ctx)->index])
            : NULL;
    if (c == NULL) {
        err = -ENOMEM;
        goto fail;
    }
    cc->n.h = prepare(ctx, net, c, cfg);
    if (tls != NULL) { /* TLS hook: the loop sees it with the command */
        tp__conn_set_tls(c, tls);
        tls = NULL;
    }
    if (ws != NULL) { /* WebSocket hook: after TLS (it hangs off it) */
        tp__conn_set_ws(c, ws);
        ws = NULL;
    }
    cc->n.op = TP__OP_CONNECT;
    if (owned_add(own, cc->n.h) != 0)
        tp_log(TP_LOG_WARN, "net: connection not tracked (out of memory)");
    if (out != NULL)
        *out = cc->n.h;
    tp__net_post_cmd(net, c, &cc->n);
    return 0;
fail:
    tp__tls_discard(tls);
    tp__ws_discard(ws);
    tp__net_cmd_free(cc, klass);
    return err;
}
