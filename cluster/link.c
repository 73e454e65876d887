/*
 * cluster/link.c - direct node-to-node TCP links for data frames; NATS
 * stays the control plane (discovery, heartbeats, names) and the fallback.
 *
 * Each node listens on one TCP port, published in its HELLO with a random
 * 64-bit token of this incarnation. Two one-way connections per pair of
 * nodes: a node connects to each peer that comes up for its own outbound
 * frames, sends a preamble (the peer's token, its own id and incarnation)
 * and from then on only writes; the accepted end is bound to the sender
 * once the token matches and is only read. The token travelled over NATS
 * (authenticated, TLS when configured), so a stranger reaching the port
 * cannot inject frames: without it the connection is closed unread.
 *
 * Order: a peer's path is decided once per up session. When it comes up
 * its frames are held by the cluster thread (still bounded by max_queue)
 * while the link connects; connected, every frame of that session goes
 * over TCP; failed or past link_connect_ms, every frame of that session
 * goes through NATS. A link that breaks (EOF, error, data on a write-only
 * connection, a write stalled for down_after_ms) takes the peer down like
 * silence does (noconnection for links and monitors); it comes back up
 * through the normal HELLO, with a new link.
 *
 * Threads: one link thread (epoll over the listener, an eventfd, every
 * connection) accepts, connects, reads and hands frames to the same
 * handler as the NATS inbox (tp__node_frame): it plays the role of a
 * libnats delivery thread. The cluster thread writes (tp__link_write);
 * what a socket does not take at once waits in the peer's bounded write
 * buffer that the link thread finishes on EPOLLOUT. A peer's out_fd and
 * write buffer are under its wlock; connection records belong to the link
 * thread alone.
 */
#include "cluster_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define PRE_MAGIC 0x4b4c5054u /* "TPLK" */
#define PRE_LEN   32u
#define TICK_MS   50

_Atomic uint16_t tp__link_test_port;
_Atomic bool tp__link_test_hold;

enum role { R_PRE = 1, R_IN, R_CONNECTING, R_OUT };

struct tp__lconn {
    struct tp__lconn *prev, *next; /* the link thread's list */
    int fd;
    enum role role;
    struct tp__cpeer *peer; /* R_IN, R_CONNECTING, R_OUT */
    uint32_t gen;           /* the peer's up session it belongs to */
    uint64_t deadline_ns;   /* R_PRE, R_CONNECTING */
    bool due;               /* R_CONNECTING completed, held by a test */
    size_t rlen;
    unsigned char *rbuf; /* R_PRE, R_IN: max_payload + header */
};

struct tp__link {
    int lfd, efd, ep;
    uint32_t ip; /* advertised, host order */
    uint16_t port;
    uint64_t token;
    size_t rcap, wmax;
    pthread_t thread;
    bool started;
    _Atomic bool stop;
    _Atomic bool leaving; /* tp_cluster_stop(): breaks are no news */
    _Atomic uint64_t refused;
    struct tp__lconn *conns;
    struct tp__lconn *in[TP_PID_NODE_MAX + 1]; /* bound inbound, per peer */
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static void
ep_set(struct tp__link *lk, int op, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};

    epoll_ctl(lk->ep, op, fd, &ev);
}

/* The address to advertise: the option, what the server sees of us, or
 * the local end of the NATS connection (host order; 0 = none). */
static uint32_t
pick_address(struct tp__cluster *cl, const char *address)
{
    struct in_addr a;
    char *ip = NULL;
    int port;

    if (address != NULL)
        return inet_pton(AF_INET, address, &a) == 1 ? ntohl(a.s_addr) : 0;
    if (natsConnection_GetClientIP(cl->nc, &ip) == NATS_OK && ip != NULL &&
        inet_pton(AF_INET, ip, &a) == 1) {
        free(ip);
        return ntohl(a.s_addr);
    }
    free(ip);
    ip = NULL;
    if (natsConnection_GetLocalIPAndPort(cl->nc, &ip, &port) == NATS_OK &&
        ip != NULL && inet_pton(AF_INET, ip, &a) == 1) {
        free(ip);
        return ntohl(a.s_addr);
    }
    free(ip);
    return 0;
}

static int
listen_on(uint32_t ip, uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t n = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    sa.sin_addr.s_addr = htonl(ip);
    /* An address seen through NAT is not ours: any, advertised as seen. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            goto fail;
    }
    if (listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *)&sa, &n) != 0)
        goto fail;
    *port = ntohs(sa.sin_port);
    return fd;
fail:
    close(fd);
    return -errno;
}

/* TROUPE_CLUSTER_LINKS: 1 (0) when it says on (off), else -1. */
static int
links_env(void)
{
    const char *e = getenv("TROUPE_CLUSTER_LINKS");

    if (e == NULL)
        return -1;
    if (strcmp(e, "0") == 0 || strcmp(e, "off") == 0)
        return 0;
    return strcmp(e, "1") == 0 || strcmp(e, "on") == 0 ? 1 : -1;
}

/* ---------------------------------------------------------------------- */
/* Connection records (link thread)                                       */

static struct tp__lconn *
conn_new(struct tp__link *lk, int fd, enum role role)
{
    struct tp__lconn *c = tp__calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->role = role;
    if ((role == R_PRE || role == R_IN) &&
        (c->rbuf = tp__malloc(lk->rcap)) == NULL) {
        tp__free(c);
        return NULL;
    }
    c->next = lk->conns;
    if (lk->conns != NULL)
        lk->conns->prev = c;
    lk->conns = c;
    return c;
}

/* Unlinks and frees c, closing its fd (for R_OUT under the peer's wlock:
 * the cluster thread writes to it). */
static void
conn_free(struct tp__link *lk, struct tp__lconn *c)
{
    struct tp__cpeer *p = c->peer;

    if (c->role == R_OUT && p != NULL) {
        pthread_mutex_lock(&p->wlock);
        if (p->out == c) {
            p->out = NULL;
            p->out_fd = -1;
            p->wlen = p->woff = 0;
        }
        close(c->fd);
        pthread_mutex_unlock(&p->wlock);
    } else {
        close(c->fd);
    }
    if (c->role == R_IN && p != NULL && lk->in[p->id] == c)
        lk->in[p->id] = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        lk->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    tp__free(c->rbuf);
    tp__free(c);
}

/* True when c belongs to p's current up session while p is up: its loss
 * means p is down. A link of an older session just closes. */
static bool
conn_current(const struct tp__lconn *c)
{
    return c->peer != NULL && atomic_load(&c->peer->state) == TP__PEER_UP &&
           atomic_load(&c->peer->up_gen) == c->gen;
}

/* A connection of the current session broke: the peer is down. */
static void
conn_broke(struct tp__cluster *cl, struct tp__lconn *c)
{
    struct tp__cpeer *p = c->peer;
    bool cur = conn_current(c);

    conn_free(cl->lk, c);
    if (cur && !atomic_load(&cl->lk->leaving)) {
        atomic_fetch_add(&p->link_breaks, 1);
        tp_log(TP_LOG_WARN, "cluster %s: link with node %u broke", cl->cluster,
               p->id);
        tp__node_peer_down(cl, p, 1);
    }
}

/* Tells the cluster thread that a held peer's path is decided. */
static void
kick_cluster(struct tp__cluster *cl)
{
    pthread_mutex_lock(&cl->lock);
    atomic_store(&cl->link_kick, true);
    pthread_mutex_unlock(&cl->lock);
    pthread_cond_signal(&cl->cond);
}

/* p's path for session gen is decided (if gen is still its session). */
static void
decide(struct tp__cluster *cl, struct tp__cpeer *p, uint32_t gen, int path)
{
    int pending = TP__LINK_PENDING;

    if (atomic_load(&p->up_gen) != gen)
        return;
    if (path == TP__LINK_NATS)
        atomic_fetch_add(&p->link_fallbacks, 1);
    /* release: the out_fd stored under wlock before the path is read. */
    if (atomic_compare_exchange_strong_explicit(&p->link, &pending, path,
                                                memory_order_release,
                                                memory_order_relaxed))
        kick_cluster(cl);
}

/* ---------------------------------------------------------------------- */
/* Outbound                                                               */

static void
connect_peer(struct tp__cluster *cl, struct tp__cpeer *p)
{
    struct tp__link *lk = cl->lk;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uint32_t gen = atomic_load(&p->up_gen);
    struct tp__lconn *c;
    int one = 1, fd;

    if (atomic_load(&p->link) != TP__LINK_PENDING)
        return;
    pthread_mutex_lock(&cl->lock);
    sa.sin_addr.s_addr = htonl(p->link_ip);
    sa.sin_port = htons(p->link_port);
    pthread_mutex_unlock(&cl->lock);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        goto fail;
    }
    if ((c = conn_new(lk, fd, R_CONNECTING)) == NULL) {
        close(fd);
        goto fail;
    }
    c->peer = p;
    c->gen = gen;
    c->deadline_ns =
        tp_now_ns() + (uint64_t)cl->opts.link_connect_ms * 1000000u;
    ep_set(lk, EPOLL_CTL_ADD, fd, EPOLLOUT, c);
    return;
fail:
    decide(cl, p, gen, TP__LINK_NATS);
}

/* The connection completed (or failed): preamble, then it is p's link. */
static void
connected(struct tp__cluster *cl, struct tp__lconn *c)
{
    struct tp__link *lk = cl->lk;
    struct tp__cpeer *p = c->peer;
    unsigned char pre[PRE_LEN] = {0};
    int err = 0;
    socklen_t n = sizeof(err);
    uint64_t token;

    pthread_mutex_lock(&cl->lock);
    token = p->link_token;
    pthread_mutex_unlock(&cl->lock);
    tp__put64(pre, PRE_MAGIC | (uint64_t)1 << 32); /* magic, version 1 */
    pre[6] = (unsigned char)cl->id;
    pre[7] = (unsigned char)(cl->id >> 8);
    tp__put64(pre + 8, token);
    tp__put64(pre + 16, cl->incarnation);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0 || err != 0 ||
        send(c->fd, pre, PRE_LEN, MSG_NOSIGNAL) != (ssize_t)PRE_LEN ||
        !conn_current(c)) {
        uint32_t gen = c->gen;
        conn_free(lk, c);
        decide(cl, p, gen, TP__LINK_NATS);
        return;
    }
    c->role = R_OUT;
    pthread_mutex_lock(&p->wlock);
    if (p->out != NULL) /* an older session's, never current now */
        p->out->peer = NULL;
    p->out = c;
    p->out_fd = c->fd;
    p->wlen = p->woff = 0;
    pthread_mutex_unlock(&p->wlock);
    /* Write-only: anything readable (data, EOF) means it broke. */
    ep_set(lk, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
    decide(cl, p, c->gen, TP__LINK_TCP);
}

/* EPOLLOUT on p's link: the write buffer goes on. */
static int
flush_wbuf(struct tp__link *lk, struct tp__lconn *c)
{
    struct tp__cpeer *p = c->peer;
    int err = 0;

    pthread_mutex_lock(&p->wlock);
    while (p->out == c && p->woff < p->wlen) {
        ssize_t k = send(c->fd, p->wbuf + p->woff, p->wlen - p->woff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            err = errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
            break;
        }
        p->woff += (size_t)k;
        p->wsince_ns = tp_now_ns();
    }
    if (p->out == c && p->woff == p->wlen) {
        p->woff = p->wlen = 0;
        ep_set(lk, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
    }
    pthread_mutex_unlock(&p->wlock);
    return err;
}

/* Writes buf to p's link, the rest kept for EPOLLOUT (wlock held). */
static int
write_locked(struct tp__link *lk, struct tp__cpeer *p, const void *buf,
             size_t len)
{
    size_t done = 0;
    int err = 0;

    if (p->out_fd < 0 || lk == NULL) {
        err = -EPIPE;
        goto out;
    }
    if (p->wlen == p->woff) { /* nothing pending: straight to the socket */
        while (done < len) {
            ssize_t k = send(p->out_fd, (const char *)buf + done, len - done,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && errno == EAGAIN)
                break;
            if (k < 0) { /* the link thread sees the error and breaks it */
                err = -EPIPE;
                goto out;
            }
            done += (size_t)k;
        }
        if (done == len) {
            atomic_fetch_add_explicit(&p->link_bytes_out, len,
                                      memory_order_relaxed);
            goto out;
        }
        p->wlen = p->woff = 0;
        p->wsince_ns = tp_now_ns();
    } else if (p->wlen - p->woff + len > lk->wmax) {
        err = -EAGAIN; /* nothing of it written: dropped whole */
        goto out;
    }
    /* The rest of a frame written in part must follow: always kept. */
    if (p->woff != 0) {
        memmove(p->wbuf, p->wbuf + p->woff, p->wlen - p->woff);
        p->wlen -= p->woff;
        p->woff = 0;
    }
    if (p->wlen + len - done > p->wcap) {
        size_t cap = p->wlen + len - done;
        unsigned char *nb;
        cap = cap < 65536 ? 65536 : cap * 2;
        if ((nb = tp__realloc(p->wbuf, cap)) == NULL) {
            /* A partly written frame cannot be dropped: the link breaks. */
            shutdown(p->out_fd, SHUT_RDWR);
            err = -EPIPE;
            goto out;
        }
        p->wbuf = nb;
        p->wcap = cap;
    }
    if (p->wlen == 0)
        ep_set(lk, EPOLL_CTL_MOD, p->out_fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT,
               p->out);
    memcpy(p->wbuf + p->wlen, (const char *)buf + done, len - done);
    p->wlen += len - done;
    atomic_fetch_add_explicit(&p->link_bytes_out, len, memory_order_relaxed);
out:
    return err;
}

int
tp__link_write(struct tp__cluster *cl, struct tp__cpeer *p, const void *buf,
               size_t len, uint32_t nframes)
{
    int err;

    pthread_mutex_lock(&p->wlock);
    err = write_locked(cl->lk, p, buf, len);
    /* Under wlock, after the write: a sender that finds queued at 0 under
     * wlock (tp__link_direct) knows its earlier frames are on the link. */
    atomic_fetch_sub_explicit(&p->queued, nframes, memory_order_relaxed);
    pthread_mutex_unlock(&p->wlock);
    return err;
}

#define DIRECT_GAP_NS 20000u /* sends closer than this: a stream */

int
tp__link_direct(struct tp__cluster *cl, struct tp__cpeer *p,
                struct tp__frame *f)
{
    uint64_t now, prev;
    int err = -EAGAIN;

    /* acquire: pairs with decide()'s release (out_fd is set). */
    if (cl->lk == NULL ||
        atomic_load_explicit(&p->link, memory_order_acquire) != TP__LINK_TCP)
        return -EAGAIN;
    now = tp_now_ns();
    /* relaxed: a heuristic, ordering nothing. */
    prev =
        atomic_exchange_explicit(&p->last_send_ns, now, memory_order_relaxed);
    if (now - prev < DIRECT_GAP_NS ||
        atomic_load_explicit(&p->queued, memory_order_relaxed) != 0 ||
        pthread_mutex_trylock(&p->wlock) != 0)
        return -EAGAIN;
    /* relaxed: the cluster thread's decrements are ordered by wlock. */
    if (atomic_load_explicit(&p->queued, memory_order_relaxed) == 0 &&
        p->out_fd >= 0 && p->wlen == p->woff)
        err = write_locked(cl->lk, p, f->data, f->len) == 0 ? 0 : -EAGAIN;
    pthread_mutex_unlock(&p->wlock);
    if (err != 0)
        return -EAGAIN;
    atomic_fetch_add_explicit(&p->msgs_out, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_out, f->len, memory_order_relaxed);
    tp__free(f);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Inbound                                                                */

/* The preamble of an accepted connection: its sender, or refused. */
static int
preamble(struct tp__cluster *cl, struct tp__lconn *c)
{
    struct tp__link *lk = cl->lk;
    const unsigned char *b = c->rbuf;
    uint32_t node = (uint32_t)(b[6] | b[7] << 8);
    uint64_t inc = tp__get64(b + 16);
    struct tp__cpeer *p;

    if (tp__get32(b) != PRE_MAGIC || b[4] != 1 ||
        tp__get64(b + 8) != lk->token || node == 0 || node > TP_PID_NODE_MAX ||
        node == cl->id || (p = tp__peer_get(cl, node)) == NULL) {
        atomic_fetch_add(&lk->refused, 1);
        return -EPERM;
    }
    if (lk->in[node] != NULL) /* its new session replaces the old */
        conn_free(lk, lk->in[node]);
    lk->in[node] = c;
    c->role = R_IN;
    c->peer = p;
    /* The session it is for: the current one, or the next when the
     * sender saw us come back before we saw it. */
    c->gen = atomic_load(&p->up_gen) +
             (atomic_load(&p->state) == TP__PEER_UP ? 0 : 1);
    memmove(c->rbuf, c->rbuf + PRE_LEN, c->rlen - PRE_LEN);
    c->rlen -= PRE_LEN;
    if (atomic_load(&p->state) == TP__PEER_DOWN) {
        /* It saw us come back before we saw it: its frames on this link
         * would be dropped until its next HELLO; the token it knows says
         * as much as that HELLO would. */
        tp__node_link_hello(cl, p, inc);
        /* Up now: this session. Still down (held, node.c): the next. */
        c->gen = atomic_load(&p->up_gen) +
                 (atomic_load(&p->state) == TP__PEER_UP ? 0 : 1);
    }
    return 0;
}

/* Frames of rbuf[0..rlen): handed on; the incomplete tail kept. */
static int
frames(struct tp__cluster *cl, struct tp__lconn *c)
{
    size_t off = 0;

    while (c->rlen - off >= TP__WIRE_HDR) {
        const unsigned char *b = c->rbuf + off, *pl;
        uint32_t flen = tp__get32(b + 40);
        struct tp__wire_hdr h;
        size_t used;
        if ((uint64_t)flen + TP__WIRE_HDR > cl->lk->rcap)
            return -EBADMSG;
        if (c->rlen - off < TP__WIRE_HDR + (size_t)flen)
            break;
        if (tp__wire_next(b, TP__WIRE_HDR + (size_t)flen, &h, &pl, &used) !=
                0 ||
            h.node != c->peer->id)
            return -EBADMSG;
        atomic_fetch_add_explicit(&c->peer->link_bytes_in, used,
                                  memory_order_relaxed);
        if (h.kind == TP__W_BYE) { /* it leaves: after its last frame */
            if (conn_current(c))
                tp__node_peer_down(cl, c->peer, 2);
        } else {
            tp__node_frame(cl, &h, pl, used);
        }
        off += used;
    }
    if (off != 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

/* Readable inbound connection: read, then preamble or frames. */
static void
readable(struct tp__cluster *cl, struct tp__lconn *c)
{
    struct tp__link *lk = cl->lk;
    size_t want = c->role == R_PRE ? PRE_LEN : lk->rcap;
    ssize_t k;

    if (c->rlen >= want) { /* a frame over the bound cannot be complete */
        atomic_fetch_add(&cl->bad_frames, 1);
        conn_broke(cl, c);
        return;
    }
    k = recv(c->fd, c->rbuf + c->rlen, want - c->rlen, MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k <= 0) { /* EOF or error */
        if (c->role == R_PRE)
            conn_free(lk, c);
        else
            conn_broke(cl, c);
        return;
    }
    c->rlen += (size_t)k;
    if (c->role == R_PRE) {
        if (c->rlen < PRE_LEN)
            return;
        if (preamble(cl, c) != 0) {
            conn_free(lk, c); /* closed unread */
            return;
        }
    }
    if (frames(cl, c) != 0) {
        atomic_fetch_add(&cl->bad_frames, 1);
        conn_broke(cl, c);
    }
}

static void
accept_all(struct tp__cluster *cl)
{
    struct tp__link *lk = cl->lk;

    for (int i = 0; i < 64; i++) {
        int fd = accept4(lk->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct tp__lconn *c;
        if (fd < 0)
            return;
        if ((c = conn_new(lk, fd, R_PRE)) == NULL) {
            close(fd);
            continue;
        }
        c->deadline_ns =
            tp_now_ns() + (uint64_t)cl->opts.link_connect_ms * 1000000u;
        ep_set(lk, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, c);
    }
}

/* ---------------------------------------------------------------------- */
/* The link thread                                                        */

/* Requests of the other threads (peer up: connect; down: close). */
static void
requests(struct tp__cluster *cl)
{
    /* acquire: the peers found while joining, and cl->id, are final. */
    bool joined = atomic_load_explicit(&cl->joined, memory_order_acquire);

    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        int r;
        if (p == NULL || atomic_load(&p->link_req) == 0)
            continue;
        if (!joined) { /* our id may still move: connect later */
            atomic_fetch_and(&p->link_req, ~TP__LREQ_CLOSE);
            continue;
        }
        r = atomic_exchange(&p->link_req, 0);
        if ((r & TP__LREQ_CLOSE) && p->out != NULL)
            conn_free(cl->lk, p->out);
        if (r & TP__LREQ_CONNECT)
            connect_peer(cl, p);
    }
}

/* Deadlines: connects and preambles that take too long, stalled writes. */
static void
timers(struct tp__cluster *cl)
{
    struct tp__link *lk = cl->lk;
    uint64_t now = tp_now_ns();
    uint64_t stall = (uint64_t)cl->opts.down_after_ms * 1000000u;
    struct tp__lconn *c = lk->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (c->role == R_CONNECTING && c->due &&
            !atomic_load(&tp__link_test_hold)) {
            connected(cl, c);
        } else if (c->role == R_CONNECTING && now > c->deadline_ns) {
            struct tp__cpeer *p = c->peer;
            uint32_t gen = c->gen;
            conn_free(lk, c);
            decide(cl, p, gen, TP__LINK_NATS);
        } else if (c->role == R_PRE && now > c->deadline_ns) {
            atomic_fetch_add(&lk->refused, 1);
            conn_free(lk, c);
        } else if (c->role == R_OUT && c->peer != NULL) {
            bool stalled;
            pthread_mutex_lock(&c->peer->wlock);
            stalled = c->peer->wlen > c->peer->woff &&
                      now - c->peer->wsince_ns > stall;
            pthread_mutex_unlock(&c->peer->wlock);
            if (stalled)
                conn_broke(cl, c);
        } else if (c->role == R_OUT && c->peer == NULL) {
            conn_free(lk, c); /* an older session's */
        }
    }
}

static void
event(struct tp__cluster *cl, struct tp__lconn *c, uint32_t ev)
{
    switch (c->role) {
    case R_CONNECTING:
        if (atomic_load(&tp__link_test_hold)) { /* timers() goes on */
            c->due = true;
            ep_set(cl->lk, EPOLL_CTL_MOD, c->fd, 0, c);
            break;
        }
        connected(cl, c);
        break;
    case R_OUT:
        if (c->peer == NULL) {
            conn_free(cl->lk, c);
        } else if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) ||
                   ((ev & EPOLLOUT) && flush_wbuf(cl->lk, c) != 0)) {
            conn_broke(cl, c); /* the other end never writes: it broke */
        }
        break;
    case R_PRE:
    case R_IN:
        readable(cl, c);
        break;
    }
}

static void *
link_thread(void *arg)
{
    struct tp__cluster *cl = arg;
    struct tp__link *lk = cl->lk;
    struct epoll_event evs[64];
    uint64_t next_tick = 0;

    while (!atomic_load(&lk->stop)) {
        int n = epoll_wait(lk->ep, evs, 64, TICK_MS);
        bool reqs = false;
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &lk->lfd) {
                accept_all(cl);
            } else if (ptr == &lk->efd) {
                uint64_t v;
                if (read(lk->efd, &v, sizeof(v)) < 0)
                    v = 0;
                reqs = true;
            } else {
                /* A record freed by an earlier event of this batch is
                 * never in it twice: events for a freed record cannot be
                 * told apart, so look it up first. */
                struct tp__lconn *c = lk->conns;
                while (c != NULL && c != ptr)
                    c = c->next;
                if (c != NULL)
                    event(cl, c, evs[i].events);
            }
        }
        if (reqs)
            requests(cl);
        if (tp_now_ns() >= next_tick) {
            requests(cl); /* the ones deferred while joining, too */
            timers(cl);
            next_tick = tp_now_ns() + TICK_MS * 1000000u;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Start, stop, hooks                                                     */

int
tp__link_start(struct tp__cluster *cl, const char *address, bool nats_tls)
{
    struct tp__link *lk;
    uint32_t ip;
    int fd;

    if (!cl->opts.links || links_env() == 0)
        return 0;
    /* Links are plain TCP: over a NATS connection that is TLS they would
     * carry in clear what NATS encrypts, so they wait to be asked for. */
    if (nats_tls && links_env() != 1) {
        tp_log(TP_LOG_INFO,
               "cluster %s: NATS over TLS: direct links off (they are not "
               "encrypted; TROUPE_CLUSTER_LINKS=1 turns them on)",
               cl->cluster);
        return 0;
    }
    if ((ip = pick_address(cl, address)) == 0) {
        tp_log(TP_LOG_WARN,
               "cluster %s: no IPv4 address for direct links: NATS only",
               cl->cluster);
        return 0;
    }
    if ((fd = listen_on(ip, &(uint16_t){0})) < 0) {
        tp_log(TP_LOG_WARN, "cluster %s: no link listener (%s): NATS only",
               cl->cluster, strerror(-fd));
        return 0;
    }
    if ((lk = tp__calloc(1, sizeof(*lk))) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    lk->lfd = fd;
    lk->ip = ip;
    {
        struct sockaddr_in sa = {0};
        socklen_t n = sizeof(sa);

        if (getsockname(fd, (struct sockaddr *)&sa, &n) == 0)
            lk->port = ntohs(sa.sin_port);
    }
    if (getrandom(&lk->token, sizeof(lk->token), 0) !=
        (ssize_t)sizeof(lk->token)) {
        tp_log(TP_LOG_WARN, "cluster %s: no random link token: NATS only",
               cl->cluster);
        close(fd);
        tp__free(lk);
        return 0;
    }
    lk->rcap = (size_t)cl->max_payload + TP__WIRE_HDR;
    lk->wmax = (size_t)cl->max_payload * 8;
    lk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lk->ep = epoll_create1(EPOLL_CLOEXEC);
    if (lk->efd < 0 || lk->ep < 0) {
        if (lk->efd >= 0)
            close(lk->efd);
        if (lk->ep >= 0)
            close(lk->ep);
        close(fd);
        tp__free(lk);
        return -ENOMEM;
    }
    ep_set(lk, EPOLL_CTL_ADD, lk->lfd, EPOLLIN, &lk->lfd);
    ep_set(lk, EPOLL_CTL_ADD, lk->efd, EPOLLIN, &lk->efd);
    cl->lk = lk;
    if (pthread_create(&lk->thread, NULL, link_thread, cl) != 0) {
        cl->lk = NULL;
        close(lk->efd);
        close(lk->ep);
        close(fd);
        tp__free(lk);
        return -EAGAIN;
    }
    lk->started = true;
    return 0;
}

void
tp__link_stop(struct tp__cluster *cl)
{
    struct tp__link *lk = cl->lk;

    if (lk == NULL)
        return;
    atomic_store(&lk->stop, true);
    tp__link_wake(cl);
    if (lk->started)
        pthread_join(lk->thread, NULL);
    while (lk->conns != NULL)
        conn_free(lk, lk->conns);
    close(lk->lfd);
    close(lk->efd);
    close(lk->ep);
    cl->lk = NULL; /* hooks check it: the peers are told down after this */
    tp__free(lk);
}

void
tp__link_bye(struct tp__cluster *cl)
{
    unsigned char buf[TP__WIRE_HDR];
    struct tp__wire_hdr h = {.kind = TP__W_BYE};

    if (cl->lk == NULL)
        return;
    atomic_store(&cl->lk->leaving, true);
    h.node = (uint16_t)cl->id;
    h.incarnation = (uint32_t)cl->incarnation;
    tp__wire_put_hdr(buf, &h);
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p == NULL)
            continue;
        pthread_mutex_lock(&p->wlock);
        /* After what is pending, or not at all (its EOF then says it). */
        if (p->out_fd >= 0 && p->wlen == p->woff &&
            send(p->out_fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT) !=
                (ssize_t)sizeof(buf))
            shutdown(p->out_fd, SHUT_RDWR);
        pthread_mutex_unlock(&p->wlock);
    }
}

void
tp__link_wake(struct tp__cluster *cl)
{
    uint64_t one = 1;

    if (cl->lk != NULL && write(cl->lk->efd, &one, sizeof(one)) < 0)
        return; /* the counter is full: the thread is awake anyway */
}

void
tp__link_self(const struct tp__cluster *cl, struct tp__wire_node *w)
{
    uint16_t test = atomic_load(&tp__link_test_port);

    w->has_link = cl->lk != NULL;
    if (!w->has_link)
        return;
    w->link_ip = cl->lk->ip;
    w->link_port = test != 0 ? test : cl->lk->port;
    w->link_token = cl->lk->token;
}

void
tp__link_peer_prepare(struct tp__cluster *cl, struct tp__cpeer *p,
                      const struct tp__wire_node *w)
{
    bool tcp = cl->lk != NULL && w->has_link;

    p->link_ip = w->link_ip;
    p->link_port = w->link_port;
    p->link_token = w->link_token;
    atomic_fetch_add(&p->up_gen, 1);
    /* seq_cst, like the state store that follows: a sender that sees the
     * peer up sees its path of this session. */
    atomic_store(&p->link, tcp ? TP__LINK_PENDING : TP__LINK_NATS);
}

void
tp__link_peer_up(struct tp__cluster *cl, struct tp__cpeer *p)
{
    if (cl->lk == NULL || atomic_load(&p->link) != TP__LINK_PENDING)
        return;
    atomic_fetch_or(&p->link_req, TP__LREQ_CONNECT);
    tp__link_wake(cl);
}

void
tp__link_peer_down(struct tp__cluster *cl, struct tp__cpeer *p)
{
    if (cl->lk == NULL)
        return;
    atomic_fetch_or(&p->link_req, TP__LREQ_CLOSE);
    tp__link_wake(cl);
    kick_cluster(cl); /* held frames of the session are dropped */
}

void
tp__link_summary(struct tp__cluster *cl, tp_cluster_summary *out)
{
    out->link_port = cl->lk != NULL ? cl->lk->port : 0;
    out->link_refused = cl->lk != NULL ? atomic_load(&cl->lk->refused) : 0;
}

void
tp__link_peer_init(struct tp__cpeer *p)
{
    pthread_mutex_init(&p->wlock, NULL);
    p->out_fd = -1;
}

void
tp__link_peer_fini(struct tp__cpeer *p)
{
    struct tp__frame *f = p->held;

    while (f != NULL) {
        struct tp__frame *next = f->next;
        tp__free(f);
        f = next;
    }
    p->held = p->held_tail = NULL;
    tp__free(p->wbuf);
    p->wbuf = NULL;
    pthread_mutex_destroy(&p->wlock);
}

int
tp__link_test_kill(struct tp__cluster *cl, uint32_t peer)
{
    struct tp__cpeer *p = peer >= 1 && peer <= TP_PID_NODE_MAX
                              ? atomic_load(&cl->peers[peer])
                              : NULL;
    int err = -ENOENT;

    if (p == NULL)
        return -ENOENT;
    pthread_mutex_lock(&p->wlock);
    if (p->out_fd >= 0) { /* both ways: the link thread sees EPOLLHUP */
        shutdown(p->out_fd, SHUT_RDWR);
        err = 0;
    }
    pthread_mutex_unlock(&p->wlock);
    return err;
}
