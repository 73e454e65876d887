/*
 * net/listen.c - listeners: one SO_REUSEPORT socket per loop, accepting
 * into connection actors, overload handling, introspection.
 *
 * libuv 1.44 has no UV_TCP_REUSEPORT, and its own accept path hides
 * EMFILE from us (it sheds pending connections, then reports the error),
 * so each loop polls its listening socket with a uv_poll_t and accepts
 * with accept4() itself:
 *  - EMFILE/ENFILE/ENOBUFS/ENOMEM: stop polling that socket for
 *    emfile_backoff_ms (counted) instead of spinning on a socket that
 *    stays readable; pending connections wait in the kernel backlog;
 *  - over max_conns: accept and reset at once (counted as refused), so
 *    the client learns quickly instead of waiting in the backlog.
 * The sockets are created, bound and put in listening state by the
 * calling thread (plain syscalls); each loop then starts polling its own
 * socket through its command queue.
 */
#include "net_int.h"
#include "tls_int.h"
#include "ws_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_BATCH 64 /* accepts per readable event (fairness) */

/* ---------------------------------------------------------------------- */
/* Accepting (loop thread)                                                */

static void
refuse(struct tp_listener *l, int fd)
{
    struct linger lg = {1, 0}; /* reset, not a polite close */

    /* Counted first: the peer may look at the counters once it sees the
     * reset. */
    atomic_fetch_add_explicit(&l->refused, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->net->refused, 1, memory_order_relaxed);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Takes a slot under max_conns (false: over the limit). */
static bool
take_slot(struct tp_listener *l)
{
    uint64_t n = atomic_fetch_add_explicit(&l->conns, 1, memory_order_relaxed);

    if (l->o.max_conns == 0 || n < l->o.max_conns)
        return true;
    atomic_fetch_sub_explicit(&l->conns, 1, memory_order_relaxed);
    return false;
}

static void
fill_opened(struct tp__conn *c, int fd, const struct sockaddr_storage *peer,
            const struct tp__proxy_hdr *h, tp_tcp_opened *m)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(m, 0, sizeof(*m));
    m->conn = tp__conn_handle(c);
    tp__addr_from_sockaddr(peer, &m->peer);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        tp__addr_from_sockaddr(&ss, &m->local);
    if (h != NULL &&
        !h->local) { /* PROXY: the client, as the balancer saw it */
        m->peer = h->src;
        m->local = h->dst;
    }
}

/* Opens the libuv handle on fd; on failure fd is closed. */
static struct tp__conn *
conn_open(struct tp__lsock *ls, int fd)
{
    struct tp__net_loop *nl = &ls->l->net->loops[ls->s->index];
    struct tp__conn *c = tp__conn_alloc(nl);

    if (c == NULL) {
        close(fd);
        return NULL;
    }
    tp__conn_setup(c, ls->s, &ls->l->o.conn, TP__CF_WRAPPED);
    uv_tcp_init(&ls->s->loop, &c->h);
    c->h.data = c;
    atomic_fetch_add_explicit(&nl->net->open, 1, memory_order_relaxed);
    if (uv_tcp_open(&c->h, fd) != 0) {
        close(fd);
        tp__conn_discard(c); /* close_cb gives back the slot */
        return NULL;
    }
    if (ls->l->o.conn.nodelay && !ls->l->is_unix)
        uv_tcp_nodelay(&c->h, 1);
    if (ls->l->o.conn.send_buffer != 0) {
        int v = (int)ls->l->o.conn.send_buffer;

        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
    atomic_store_explicit(&c->fd, fd, memory_order_relaxed);
    /* release: the console reads the fields once it sees OPEN. */
    atomic_store_explicit(&c->state, TP__C_OPEN, memory_order_release);
    return c;
}

static void
accept_rest(struct tp__lsock *ls, int fd, const struct sockaddr_storage *peer,
            const struct tp__proxy_hdr *h)
{
    struct tp_listener *l = ls->l;
    struct tp__conn *c;
    tp_tcp_opened opened;
    int err;

    if ((c = conn_open(ls, fd)) == NULL) {
        atomic_fetch_sub_explicit(&l->conns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->errors, 1, memory_order_relaxed);
        return;
    }
    fill_opened(c, fd, peer, h, &opened);
    if (h != NULL && !h->local) /* PROXY: the console shows the client */
        tp__net_proxied_add(l->net, opened.conn, &h->src, &h->dst);
    /* TLS hook: the connection's TLS state from the listener's context. */
    err = l->tls != NULL ? tp__tls_server_new(l, c) : 0;
    if (err == 0 && l->ws != NULL) /* WebSocket hook */
        err = tp__ws_server_new(l, c);
    if (err == 0)
        err = tp__wrap_spawn(&l->net->loops[ls->s->index], c, l, &opened);
    if (err != 0) {
        /* No actor (init failed, runtime stopping, out of memory). */
        atomic_fetch_add_explicit(&l->refused, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->net->refused, 1, memory_order_relaxed);
        tp__conn_close(c, TP_NET_CLOSE_OWNER_EXIT, err, false);
        return;
    }
    atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->net->accepted, 1, memory_order_relaxed);
    tp__conn_opened(c);
}

void
tp__accept_finish(struct tp__lsock *ls, int fd, const struct tp__proxy_hdr *h)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);

    memset(&peer, 0, sizeof(peer));
    (void)getpeername(fd, (struct sockaddr *)&peer, &len);
    accept_rest(ls, fd, &peer, h);
}

static void
accept_one(struct tp__lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    struct tp_listener *l = ls->l;

    if (atomic_load_explicit(&l->closed, memory_order_relaxed) ||
        !take_slot(l)) {
        refuse(l, fd);
        return;
    }
    if (l->o.proxy_protocol) { /* no actor before the PROXY header */
        tp__proxy_wait(ls, fd);
        return;
    }
    accept_rest(ls, fd, peer, NULL);
}

static void accept_cb(uv_poll_t *p, int status, int events);

static void
backoff_fire(struct tp__wtimer *t, void *arg)
{
    struct tp__lsock *ls = tp__container_of(t, struct tp__lsock, backoff);

    (void)arg;
    atomic_fetch_sub_explicit(&ls->l->backoff, 1, memory_order_relaxed);
    if (!ls->closed)
        uv_poll_start(&ls->poll, UV_READABLE, accept_cb);
}

static void
backoff(struct tp__lsock *ls)
{
    atomic_fetch_add_explicit(&ls->l->emfile, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ls->l->backoff, 1, memory_order_relaxed);
    uv_poll_stop(&ls->poll);
    ls->backoff.fire = backoff_fire;
    tp__sched_timer_add(ls->s, &ls->backoff, ls->l->o.emfile_backoff_ms);
}

/* Handles a failed accept4(). Returns true to keep accepting. */
static bool
accept_error(struct tp__lsock *ls, int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
        return true; /* that connection is gone; the next may be fine */
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return false;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        backoff(ls);
        return false;
    default:
        atomic_fetch_add_explicit(&ls->l->errors, 1, memory_order_relaxed);
        return false;
    }
}

static void
accept_cb(uv_poll_t *p, int status, int events)
{
    struct tp__lsock *ls = p->data;

    (void)events;
    if (status < 0) {
        atomic_fetch_add_explicit(&ls->l->errors, 1, memory_order_relaxed);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !ls->closed; i++) {
        struct sockaddr_storage ss = {.ss_family = AF_UNSPEC};
        socklen_t len = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (!accept_error(ls, errno))
                return;
            continue;
        }
        if (len == 0 || ss.ss_family == AF_UNIX)
            ss.ss_family = AF_UNIX; /* unnamed Unix peer */
        accept_one(ls, fd, &ss);
    }
}

static void
lsock_start(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct tp__lsock *ls = tp__container_of(cmd, struct tp__lsock, start_cmd);

    (void)s;
    if (atomic_load(&ls->l->closed))
        return; /* the stop command, queued behind us, closes the fd */
    if (uv_poll_init_socket(&s->loop, &ls->poll, ls->fd) != 0) {
        atomic_fetch_add_explicit(&ls->l->errors, 1, memory_order_relaxed);
        return;
    }
    ls->poll.data = ls;
    ls->started = true;
    uv_poll_start(&ls->poll, UV_READABLE, accept_cb);
}

static void
lsock_closed(uv_handle_t *h)
{
    struct tp__lsock *ls = h->data;

    close(ls->fd);
    ls->fd = -1;
}

static void
lsock_stop(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct tp__lsock *ls = tp__container_of(cmd, struct tp__lsock, stop_cmd);

    ls->closed = true;
    tp__proxy_abort_all(ls); /* connections still without a header */
    if (tp__wtimer_armed(&ls->backoff)) {
        tp__sched_timer_del(s, &ls->backoff);
        atomic_fetch_sub_explicit(&ls->l->backoff, 1, memory_order_relaxed);
    }
    if (ls->started) {
        uv_close((uv_handle_t *)&ls->poll, lsock_closed);
        return;
    }
    close(ls->fd);
    ls->fd = -1;
}

/* ---------------------------------------------------------------------- */
/* Sockets (calling thread)                                               */

static int
set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof(v)) == 0 ? 0 : -errno;
}

/* One loop's TCP socket, bound to l->addr (port filled in if 0). */
static int
tcp_socket(struct tp_listener *l)
{
    struct sockaddr_storage ss;
    unsigned len;
    socklen_t slen = sizeof(ss);
    int af = l->addr.family == TP_NET_INET6 ? AF_INET6 : AF_INET;
    int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? -errno : 0;

    if (err == 0)
        err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (err == 0) /* libuv 1.44 has no flag for it: set it ourselves */
        err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (err == 0 && af == AF_INET6)
        err = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, l->o.v6only);
    if (err == 0)
        err = tp__addr_to_sockaddr(&l->addr, &ss, &len);
    if (err == 0 && bind(fd, (struct sockaddr *)&ss, len) != 0)
        err = -errno;
    if (err == 0 && listen(fd, l->o.backlog) != 0)
        err = -errno;
    if (err == 0 && l->addr.port == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
        tp__addr_from_sockaddr(&ss, &l->addr); /* the others bind to it */
    if (err != 0 && fd >= 0)
        close(fd);
    return err != 0 ? err : fd;
}

static int
unix_socket(struct tp_listener *l)
{
    struct sockaddr_un su;
    struct stat st;
    int fd, err = 0;

    if (stat(l->path, &st) == 0)
        return -EADDRINUSE; /* never remove a file we did not create */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    memcpy(su.sun_path, l->path, strlen(l->path) + 1);
    if (bind(fd, (struct sockaddr *)&su, sizeof(su)) != 0 ||
        listen(fd, l->o.backlog) != 0)
        err = -errno;
    if (err != 0) {
        close(fd);
        return err;
    }
    return fd;
}

/* Creates every loop's socket. The loops of a Unix listener share one
 * socket (each holds a dup). */
static int
open_sockets(struct tp_listener *l)
{
    for (unsigned i = 0; i < l->nls; i++) {
        int fd;
        if (l->is_unix)
            fd = i == 0 ? unix_socket(l) : dup(l->ls[0].fd);
        else
            fd = tcp_socket(l);
        if (fd < 0) {
            int err = l->is_unix && i > 0 ? -errno : fd;
            for (unsigned k = 0; k < i; k++)
                close(l->ls[k].fd);
            if (l->is_unix && i > 0)
                unlink(l->path);
            return err;
        }
        l->ls[i].fd = fd;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Creating and closing                                                   */

static int
check_opts(const tp_listen_opts *o, bool is_unix)
{
    if (o == NULL || o->behaviour == NULL || o->behaviour->handle == NULL ||
        o->behaviour->state_size > 65536 - 16 || o->backlog <= 0 ||
        tp__conn_opts_check(&o->conn) != 0)
        return -EINVAL;
    if (is_unix && (o->path == NULL || o->path[0] == '\0'))
        return -EINVAL;
    if (is_unix && strlen(o->path) >= sizeof(((struct tp_listener *)0)->path))
        return -ENAMETOOLONG;
    if (o->supervisor_name != NULL &&
        (o->supervisor_name[0] == '\0' ||
         strlen(o->supervisor_name) >=
             sizeof(((struct tp_listener *)0)->supname)))
        return o->supervisor_name[0] == '\0' ? -EINVAL : -ENAMETOOLONG;
    return 0;
}

static struct tp_listener *
listener_new(struct tp__net *net, const tp_listen_opts *o, bool is_unix)
{
    unsigned n = net->rt->nsched;
    struct tp_listener *l = tp__calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->nls = o->loops != 0 && o->loops < n ? o->loops : n;
    l->ls = tp__calloc(l->nls, sizeof(*l->ls));
    if (l->ls == NULL) {
        tp__free(l);
        return NULL;
    }
    l->net = net;
    l->o = *o;
    l->is_unix = is_unix;
    l->o.address = NULL;
    l->o.name = l->name;
    l->o.path = l->path;
    if (is_unix)
        snprintf(l->path, sizeof(l->path), "%s", o->path);
    if (o->supervisor_name != NULL) {
        snprintf(l->supname, sizeof(l->supname), "%s", o->supervisor_name);
        l->o.supervisor_name = l->supname;
    }
    for (unsigned i = 0; i < l->nls; i++) {
        l->ls[i].l = l;
        l->ls[i].s = net->rt->sched[i];
        l->ls[i].fd = -1;
        l->ls[i].start_cmd.fn = lsock_start;
        l->ls[i].stop_cmd.fn = lsock_stop;
    }
    tp__wrap_behaviour(l);
    return l;
}

/* Copies as much of src as fits (names are for people: truncation is
 * fine). */
static void
copy_text(char *dst, size_t size, const char *prefix, const char *src)
{
    size_t p = strlen(prefix), n = strlen(src);

    if (p > size - 1)
        p = size - 1;
    memcpy(dst, prefix, p);
    if (n > size - 1 - p)
        n = size - 1 - p;
    memcpy(dst + p, src, n);
    dst[p + n] = '\0';
}

static void
listener_name(struct tp_listener *l, const char *name)
{
    char a[TP_NET_ADDR_TEXT];

    if (name != NULL) {
        copy_text(l->name, sizeof(l->name), "", name);
    } else if (l->is_unix) {
        copy_text(l->name, sizeof(l->name), "unix:", l->path);
    } else {
        tp_net_addr_format(&l->addr, a, sizeof(a));
        copy_text(l->name, sizeof(l->name), "tcp:", a);
    }
}

static bool
same_addr(const struct tp_listener *a, const struct tp_listener *b)
{
    if (a->is_unix || b->is_unix)
        return a->is_unix && b->is_unix && strcmp(a->path, b->path) == 0;
    return a->addr.family == b->addr.family && a->addr.port == b->addr.port &&
           memcmp(a->addr.addr, b->addr.addr, 16) == 0;
}

/* SO_REUSEPORT lets our own sockets share a port: refuse a second
 * listener of this runtime on an address it already listens on. */
static bool
taken(struct tp__net *net, const struct tp_listener *l)
{
    bool found = false;

    pthread_mutex_lock(&net->lock);
    for (struct tp_listener *o = net->listeners; o != NULL; o = o->next) {
        if (!atomic_load(&o->closed) && (l->is_unix || l->addr.port != 0) &&
            same_addr(o, l))
            found = true;
    }
    pthread_mutex_unlock(&net->lock);
    return found;
}

static void
listener_free(struct tp_listener *l)
{
    tp__tls_listener_fini(l); /* TLS hook */
    tp__ws_listener_fini(l);  /* WebSocket hook */
    tp__free(l->ls);
    tp__free(l);
}

static void
start(struct tp__net *net, struct tp_listener *l)
{
    pthread_mutex_lock(&net->lock);
    l->next = net->listeners;
    net->listeners = l;
    pthread_mutex_unlock(&net->lock);
    for (unsigned i = 0; i < l->nls; i++)
        tp__sched_post(l->ls[i].s, &l->ls[i].start_cmd);
}

static int
listen_common(tp_runtime *rt, const tp_listen_opts *o, bool is_unix,
              tp_listener **out)
{
    struct tp__net *net;
    struct tp_listener *l;
    int err = check_opts(o, is_unix);

    if (err != 0 || out == NULL)
        return err != 0 ? err : -EINVAL;
    if ((net = tp__net_get(rt, &err)) == NULL)
        return err;
    if (atomic_load(&rt->stopping))
        return -ESHUTDOWN;
    if ((l = listener_new(net, o, is_unix)) == NULL)
        return -ENOMEM;
    if (!is_unix && (err = tp_net_addr_parse(o->address, o->port, &l->addr)))
        goto fail;
    if (is_unix)
        l->addr.family = TP_NET_UNIX;
    if (taken(net, l)) {
        err = -EADDRINUSE;
        goto fail;
    }
    /* TLS hook: the listener's own reference to its context. */
    if (o->tls != NULL && (err = tp__tls_listener_init(l, o->tls)) != 0)
        goto fail;
    /* WebSocket hook: the listener's copy of its options. */
    if (o->ws != NULL && (err = tp__ws_listener_init(l, o->ws)) != 0)
        goto fail;
    if ((err = open_sockets(l)) != 0)
        goto fail;
    listener_name(l, o->name);
    start(net, l);
    *out = l;
    return 0;
fail:
    listener_free(l);
    return err;
}

int
tp_tcp_listen(tp_runtime *rt, const tp_listen_opts *o, tp_listener **out)
{
    return listen_common(rt, o, false, out);
}

int
tp_unix_listen(tp_runtime *rt, const tp_listen_opts *o, tp_listener **out)
{
    return listen_common(rt, o, true, out);
}

int
tp_listener_close(tp_listener *l)
{
    struct tp_runtime *rt;

    if (l == NULL || atomic_exchange(&l->closed, 1) != 0)
        return -EINVAL;
    rt = l->net->rt;
    if (l->is_unix)
        unlink(l->path);
    /* After the runtime stopped the loops are gone: the fds are closed
     * when it is destroyed. */
    if (atomic_load(&rt->stopped))
        return 0;
    for (unsigned i = 0; i < l->nls; i++)
        tp__sched_post(l->ls[i].s, &l->ls[i].stop_cmd);
    return 0;
}

void
tp__listeners_close_all(struct tp__net *net)
{
    struct tp_listener *l;

    /* Listeners are only ever prepended and never freed before the
     * runtime: walking a snapshot of the list is safe. */
    pthread_mutex_lock(&net->lock);
    l = net->listeners;
    pthread_mutex_unlock(&net->lock);
    for (; l != NULL; l = l->next)
        tp_listener_close(l);
}

void
tp__listeners_free(struct tp__net *net)
{
    struct tp_listener *l = net->listeners, *next;

    for (; l != NULL; l = next) {
        next = l->next;
        if (l->is_unix && !atomic_load(&l->closed))
            unlink(l->path);
        for (unsigned i = 0; i < l->nls; i++) {
            if (l->ls[i].fd >= 0)
                close(l->ls[i].fd);
        }
        listener_free(l);
    }
    net->listeners = NULL;
}

/* ---------------------------------------------------------------------- */
/* Introspection                                                          */

uint16_t
tp_listener_port(const tp_listener *l)
{
    return l != NULL && !l->is_unix ? l->addr.port : 0;
}

void
tp_listener_address(const tp_listener *l, tp_net_addr *out)
{
    *out = l->addr;
}

static void
fill_info(struct tp_listener *l, tp_listener_info *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", l->name);
    o->addr = l->addr;
    if (l->is_unix)
        snprintf(o->path, sizeof(o->path), "%s", l->path);
    o->state = atomic_load(&l->closed)    ? "closed"
               : atomic_load(&l->backoff) ? "backoff"
                                          : "listening";
    o->loops = l->nls;
    o->max_conns = l->o.max_conns;
    o->conns = atomic_load(&l->conns);
    o->accepted = atomic_load(&l->accepted);
    o->refused = atomic_load(&l->refused);
    o->emfile = atomic_load(&l->emfile);
    o->errors = atomic_load(&l->errors);
}

void
tp_listener_get_info(tp_listener *l, tp_listener_info *out)
{
    fill_info(l, out);
}

int
tp__net_listener_tls_reload(tp_runtime *rt, const char *name,
                            struct tp_tls_ctx *ctx)
{
    struct tp__net *net = tp__net_of(rt);
    tp_listener_info info;
    int err = -ENOENT;

    if (net == NULL)
        return -ENOENT;
    /* Under the lock: a closed listener is not freed meanwhile. */
    pthread_mutex_lock(&net->lock);
    for (struct tp_listener *l = net->listeners; l != NULL; l = l->next) {
        fill_info(l, &info);
        if (strcmp(info.name, name) == 0) {
            err = tp_tls_listener_reload(l, ctx);
            break;
        }
    }
    pthread_mutex_unlock(&net->lock);
    return err;
}

void
tp_net_listener_foreach(tp_runtime *rt,
                        bool (*fn)(void *, const tp_listener_info *),
                        void *user)
{
    struct tp__net *net = tp__net_of(rt);
    tp_listener_info info;

    if (net == NULL)
        return;
    pthread_mutex_lock(&net->lock);
    for (struct tp_listener *l = net->listeners; l != NULL; l = l->next) {
        fill_info(l, &info);
        if (!fn(user, &info))
            break;
    }
    pthread_mutex_unlock(&net->lock);
}
