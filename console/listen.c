/*
 * console/listen.c - the console on the network: a Unix socket (private
 * from the start, console/unixsock.c; every peer's uid checked) and a TCP
 * port for the line protocol, and an HTTP port, all through the net
 * layer's listeners, whose connections are actors. The connection actor
 * embeds a session (or an HTTP handler) and is its transport: bytes in
 * from TP_MSG_TCP_DATA, out through tp_tcp_send().
 *
 * Output is bounded by the net layer's write watermarks: above write_high
 * the connection reports itself blocked, trace lines are then dropped and
 * a command reply closes the session (a client that does not read cannot
 * make the server buffer more than write_limit). Reading pauses while
 * writes are blocked, so a client that sends without reading stalls only
 * itself.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/net.h>
#include <unistd.h>

enum host_kind { HOST_UNIX = 0, HOST_TCP, HOST_HTTP, HOST_KINDS };

struct tp__console_net {
    tp_listener *l[HOST_KINDS];
    struct tp__unix_file file;
};

struct host {
    struct tp__con_life *life;
    struct tp_console *con; /* NULL: the console is stopping */
    enum host_kind kind;
    tp_conn conn;
    bool blocked, open, closing;
    void *impl; /* struct tp__session or struct tp__http */
};

/* ---- the transport ----------------------------------------------------- */

static int
host_write(tp_ctx *ctx, void *t, const void *data, size_t len)
{
    struct host *h = t;
    int rc;

    if (h->closing)
        return -ENOTCONN;
    rc = tp_tcp_send(ctx, h->conn, data, len);
    if (rc == 1)
        h->blocked = true;
    return rc < 0 ? rc : 0;
}

static size_t
host_pending(void *t)
{
    struct host *h = t;

    /* Blocked means over write_high: report the whole bound as used, so
     * streams stop and a reply closes the session. */
    return h->blocked ? h->con->opts.max_output : 0;
}

static void
host_close(tp_ctx *ctx, void *t)
{
    struct host *h = t;

    if (h->closing)
        return;
    h->closing = true;
    tp_tcp_close(ctx, h->conn);
}

static const struct tp__transport host_transport = {host_write, host_pending,
                                                    host_close};

/* ---- the connection actor ----------------------------------------------- */

static int
host_init(tp_ctx *ctx, void *state, void *arg)
{
    struct host *h = state;
    const struct tp__host_arg *a = arg;

    h->life = a->life;
    h->kind = (enum host_kind)a->kind;
    h->con = tp__console_host_enter(h->life);
    return 0;
}

/* May this Unix peer have a session? Sets p->owner. */
static bool
peer_allowed(struct tp_console *c, tp_conn conn, struct tp__peer *p)
{
    uid_t uid;
    gid_t gid;

    if (tp__conn_peer_cred(c->rt, conn, &uid, &gid) != 0)
        return false;
    p->owner = uid == c->euid || uid == 0;
    if (p->owner || (c->opts.unix_gid >= 0 && gid == c->opts.unix_gid))
        return true;
    for (size_t i = 0; i < c->opts.unix_nuids; i++)
        if (c->unix_uids[i] == uid)
            return true;
    /* Logged at powers of two: a stranger cannot flood the log. */
    uint64_t n = atomic_fetch_add(&c->peers_refused, 1) + 1;
    if ((n & (n - 1)) == 0)
        tp_log(TP_LOG_WARN,
               "console: refused a Unix peer with uid %u gid %u (%llu so "
               "far)",
               (unsigned)uid, (unsigned)gid, (unsigned long long)n);
    return false;
}

static int
open_impl(tp_ctx *ctx, struct host *h, const struct tp__peer *p)
{
    struct tp_console *c = h->con;

    h->impl = tp__calloc(1, h->kind == HOST_HTTP ? tp__http_size()
                                                 : tp__session_size());
    if (h->impl == NULL)
        return -ENOMEM;
    if (h->kind == HOST_HTTP)
        return tp__http_open(ctx, h->impl, c, &host_transport, h, p);
    return tp__session_open(ctx, h->impl, c,
                            h->kind == HOST_TCP ? TP__SESS_TCP : TP__SESS_UNIX,
                            &host_transport, h, p);
}

static void
host_opened(tp_ctx *ctx, struct host *h, const tp_msg *m)
{
    static const char refused[] = "error: this console is not yours\n";
    struct tp_console *c = h->con;
    struct tp__peer peer;

    h->conn = tp_msg_conn(m);
    if (c == NULL) { /* the console is stopping */
        host_close(ctx, h);
        return;
    }
    memset(&peer, 0, sizeof(peer));
    if (m->len >= sizeof(tp_tcp_opened)) {
        peer.addr = ((const tp_tcp_opened *)m->data)->peer;
        peer.local = ((const tp_tcp_opened *)m->data)->local;
    }
    if (h->kind == HOST_UNIX && !peer_allowed(c, h->conn, &peer)) {
        atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
        host_write(ctx, h, refused, sizeof(refused) - 1);
        host_close(ctx, h);
        return;
    }
    if (open_impl(ctx, h, &peer) != 0) {
        tp__free(h->impl);
        h->impl = NULL;
        host_close(ctx, h);
        return;
    }
    h->open = true;
}

static void
host_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct host *h = state;
    bool http = h->kind == HOST_HTTP;

    switch (m->type) {
    case TP_MSG_TCP_OPENED:
        host_opened(ctx, h, m);
        return;
    case TP_MSG_TCP_DATA:
        if (h->open && !http)
            tp__session_input(ctx, h->impl, m->data, m->len);
        else if (h->open)
            tp__http_input(ctx, h->impl, m->data, m->len);
        return;
    case TP_MSG_TCP_WRITE_BLOCKED:
        h->blocked = true;
        return;
    case TP_MSG_TCP_DRAINED:
        h->blocked = false;
        return;
    case TP_MSG_TCP_CLOSED:
        h->closing = true;
        return;
    default:
        break;
    }
    if (h->open && !http)
        tp__session_handle(ctx, h->impl, m);
    else if (h->open)
        tp__http_handle(ctx, h->impl, m);
}

static void
host_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct host *h = state;

    if (h->open && h->kind == HOST_HTTP)
        tp__http_close(ctx, h->impl);
    else if (h->open)
        tp__session_close(ctx, h->impl);
    tp__free(h->impl);
    h->impl = NULL;
    h->open = false;
    tp__console_host_leave(h->life);
}

static const tp_behaviour host_behaviour = {
    .name = "console_conn",
    .state_size = sizeof(struct host),
    .init = host_init,
    .handle = host_handle,
    .terminate = host_terminate,
};

/* ---- listeners
 * -------------------------------------------------------------*/

static void
listen_opts(struct tp_console *c, enum host_kind kind, tp_listen_opts *o)
{
    static const char *const names[HOST_KINDS] = {"console-unix", "console-tcp",
                                                  "console-http"};
    tp_listen_opts_init(o);
    o->behaviour = &host_behaviour;
    o->arg = &c->life->arg[kind]; /* outlives the console */
    o->loops = 1;
    o->pin = true;
    o->name = names[kind];
    o->max_conns =
        (kind == HOST_HTTP ? c->opts.max_http : c->opts.max_sessions) +
        64; /* over our own limit: a reset, not a message */
    o->conn.read_chunk = 16384;
    o->conn.write_high = 64 * 1024;
    o->conn.write_low = 16 * 1024;
    o->conn.write_limit = 2 * c->opts.max_output + 64 * 1024;
    o->conn.linger_ms = 500;
}

/* The socket is bound in a private directory and linked into place once
 * its mode is set (console/unixsock.c). */
static int
listen_unix(struct tp_console *c)
{
    struct tp__console_net *n = c->net;
    tp_listen_opts o;
    int err;

    if ((err = tp__unix_prepare(&n->file, c->opts.unix_path)) != 0)
        return err;
    listen_opts(c, HOST_UNIX, &o);
    o.path = n->file.tmp;
    if ((err = tp_unix_listen(c->rt, &o, &n->l[HOST_UNIX])) != 0 ||
        (err = tp__unix_publish(&n->file, c->opts.unix_mode)) != 0) {
        tp__unix_remove(&n->file);
        return err;
    }
    return 0;
}

static int
listen_tcp(struct tp_console *c, enum host_kind kind, int port)
{
    struct tp__console_net *n = c->net;
    const char *host =
        strcmp(c->opts.host, "localhost") == 0 ? "127.0.0.1" : c->opts.host;
    tp_listen_opts o;
    int err;

    listen_opts(c, kind, &o);
    o.address = host;
    o.port = (uint16_t)port;
    if ((err = tp_tcp_listen(c->rt, &o, &n->l[kind])) != 0)
        return err;
    atomic_store(kind == HOST_TCP ? &c->tcp_port : &c->http_port,
                 tp_listener_port(n->l[kind]));
    return 0;
}

int
tp__console_listen(tp_console *c)
{
    int err = 0;

    if ((c->net = tp__calloc(1, sizeof(struct tp__console_net))) == NULL)
        return -ENOMEM;
    ((struct tp__console_net *)c->net)->file.dirfd = -1;
    if (c->opts.unix_path != NULL && (err = listen_unix(c)) != 0)
        tp_log(TP_LOG_ERROR, "console: cannot listen on %s: %s",
               c->opts.unix_path, tp_strerror(err));
    if (err == 0 && c->opts.tcp_port >= 0 &&
        (err = listen_tcp(c, HOST_TCP, c->opts.tcp_port)) != 0)
        tp_log(TP_LOG_ERROR, "console: cannot listen on %s:%d: %s",
               c->opts.host, c->opts.tcp_port, tp_strerror(err));
    if (err == 0 && c->opts.http_port >= 0 &&
        (err = listen_tcp(c, HOST_HTTP, c->opts.http_port)) != 0)
        tp_log(TP_LOG_ERROR, "console: cannot listen on %s:%d (http): %s",
               c->opts.host, c->opts.http_port, tp_strerror(err));
    return err;
}

void
tp__console_unlisten(tp_console *c)
{
    struct tp__console_net *n = c->net;

    if (n == NULL)
        return;
    for (int k = 0; k < HOST_KINDS; k++)
        if (n->l[k] != NULL)
            tp_listener_close(n->l[k]);
    tp__unix_remove(&n->file);
    /* Open sessions are ended by tp__console_destroy() (end_life). */
    tp__free(n);
    c->net = NULL;
}
