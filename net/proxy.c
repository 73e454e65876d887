/*
 * net/proxy.c - the PROXY protocol (HAProxy's, v1 text and v2 binary) on
 * listeners that ask for it (tp_listen_opts.proxy_protocol).
 *
 * A load balancer in front of the nodes (HAProxy: send-proxy or
 * send-proxy-v2) starts every connection with a header that says who the
 * client really is. Such a connection gets no actor until its header is
 * in: the accepted socket is watched with a uv_poll of its own, the bytes
 * are peeked (MSG_PEEK) until a whole header is there, then exactly the
 * header is read and the connection goes on as any accepted one, with the
 * client's address in TP_MSG_TCP_OPENED and in the console's `conns`.
 * Whatever the client sent after the header (a TLS ClientHello, a first
 * line) stays in the kernel for the connection's own reads.
 *
 * A header that is malformed, too long, not complete within
 * TP__PROXY_TIMEOUT_MS, or a connection closed before it, is closed
 * without an actor and counted in the listener's errors (logged at info
 * with the reason). A listener without the option never parses one: its
 * first bytes are the application's.
 */
#include "net_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define V1_MAX 107u /* "PROXY TCP6 " + 2 x 39 + 2 x 5 + 4 spaces + CRLF */
#define V2_HDR 16u
#define HDR_MAX                                                                \
    536u /* the spec's recommended buffer: a v2 header with TLVs               \
          */

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* ---- parsing (pure: tests and fuzzing call it) ----------------------------
 */

static int
v1_addr(const char *text, bool v6, uint16_t port, tp_net_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->family = v6 ? TP_NET_INET6 : TP_NET_INET;
    out->port = port;
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, out->addr) == 1 ? 0 : -1;
}

static int
v1_port(const char *text, uint16_t *out)
{
    char *end;
    long v;

    if (text[0] < '0' || text[0] > '9' || (text[0] == '0' && text[1] != '\0'))
        return -1;
    v = strtol(text, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n". */
static int
parse_v1(const unsigned char *p, size_t n, struct tp__proxy_hdr *h)
{
    char line[V1_MAX + 1], *f[6], *save = NULL;
    const unsigned char *crlf = NULL;
    size_t len;
    int nf = 0;
    uint16_t sport, dport;

    for (size_t i = 0; i + 1 < n && i + 1 < V1_MAX; i++)
        if (p[i] == '\r' && p[i + 1] == '\n') {
            crlf = p + i;
            break;
        }
    if (crlf == NULL)
        return n >= V1_MAX ? -EPROTO : 0; /* no CRLF within 107 bytes */
    len = (size_t)(crlf - p);
    memcpy(line, p, len);
    line[len] = '\0';
    h->len = len + 2;
    char *t = strtok_r(line, " ", &save);

    for (; t != NULL && nf < 6; t = strtok_r(NULL, " ", &save))
        f[nf++] = t;
    if (nf < 2 || strcmp(f[0], "PROXY") != 0)
        return -EPROTO;
    if (strcmp(f[1], "UNKNOWN") == 0) {
        h->local = true; /* the socket's own addresses stand */
        return 1;
    }
    if (nf != 6 || t != NULL /* a seventh field */ ||
        (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0) ||
        v1_port(f[4], &sport) != 0 || v1_port(f[5], &dport) != 0 ||
        v1_addr(f[2], f[1][3] == '6', sport, &h->src) != 0 ||
        v1_addr(f[3], f[1][3] == '6', dport, &h->dst) != 0)
        return -EPROTO;
    h->local = false;
    return 1;
}

static int
parse_v2(const unsigned char *p, size_t n, struct tp__proxy_hdr *h)
{
    size_t alen;
    unsigned fam;

    if (n < V2_HDR)
        return 0;
    if ((p[12] >> 4) != 2 || (p[12] & 0x0f) > 1)
        return -EPROTO; /* version 2; command LOCAL (0) or PROXY (1) */
    alen = (size_t)p[14] << 8 | p[15];
    if (V2_HDR + alen > HDR_MAX)
        return -EPROTO;
    if (n < V2_HDR + alen)
        return 0;
    h->len = V2_HDR + alen;
    fam = p[13];
    h->local = (p[12] & 0x0f) == 0 || (fam >> 4) == 0;
    if (h->local)
        return 1; /* LOCAL (health checks) or UNSPEC: the socket's own */
    memset(&h->src, 0, sizeof(h->src));
    memset(&h->dst, 0, sizeof(h->dst));
    if (fam == 0x11 && alen >= 12) { /* TCP over IPv4 */
        h->src.family = h->dst.family = TP_NET_INET;
        memcpy(h->src.addr, p + 16, 4);
        memcpy(h->dst.addr, p + 20, 4);
        h->src.port = (uint16_t)(p[24] << 8 | p[25]);
        h->dst.port = (uint16_t)(p[26] << 8 | p[27]);
        return 1;
    }
    if (fam == 0x21 && alen >= 36) { /* TCP over IPv6 */
        h->src.family = h->dst.family = TP_NET_INET6;
        memcpy(h->src.addr, p + 16, 16);
        memcpy(h->dst.addr, p + 32, 16);
        h->src.port = (uint16_t)(p[48] << 8 | p[49]);
        h->dst.port = (uint16_t)(p[50] << 8 | p[51]);
        return 1;
    }
    return -EPROTO; /* UDP, Unix sockets, or too short for its family */
}

int
tp__proxy_parse(const void *buf, size_t n, struct tp__proxy_hdr *h)
{
    const unsigned char *p = buf;
    size_t k = n < sizeof(v2_sig) ? n : sizeof(v2_sig);

    memset(h, 0, sizeof(*h));
    if (n == 0)
        return 0;
    if (memcmp(p, v2_sig, k) == 0)
        return k < sizeof(v2_sig) ? 0 : parse_v2(p, n, h);
    if (memcmp(p, "PROXY ", n < 6 ? n : 6) != 0)
        return -EPROTO;
    return n < 6 ? 0 : parse_v1(p, n, h);
}

/* ---- waiting for the header (the listener's loop) ------------------------ */

struct tp__proxy_wait {
    uv_poll_t poll;
    struct tp__proxy_wait *prev, *next; /* ls->proxy_waits */
    struct tp__lsock *ls;
    struct tp__wtimer timer;
    int fd;
    int result; /* 1 header read, else a negative errno */
    struct tp__proxy_hdr h;
};

static void
wait_closed(uv_handle_t *hd)
{
    struct tp__proxy_wait *w = hd->data;

    if (w->result == 1 && !w->ls->closed) {
        tp__accept_finish(w->ls, w->fd, &w->h);
    } else {
        struct tp_listener *l = w->ls->l;

        tp_log(TP_LOG_INFO, "listener %s: PROXY header: %s: connection closed",
               l->name, tp_strerror(w->result));
        atomic_fetch_add_explicit(&l->errors, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&l->conns, 1, memory_order_relaxed);
        close(w->fd);
    }
    tp__free(w);
}

/* Stops watching; the rest happens once libuv let go of the fd. */
static void
wait_end(struct tp__proxy_wait *w, int result)
{
    w->result = result;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        w->ls->proxy_waits = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    tp__sched_timer_del(w->ls->s, &w->timer);
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, wait_closed);
}

static void
wait_timeout(struct tp__wtimer *t, void *arg)
{
    struct tp__proxy_wait *w =
        tp__container_of(t, struct tp__proxy_wait, timer);

    (void)arg;
    wait_end(w, -ETIMEDOUT);
}

static void
wait_readable(uv_poll_t *p, int status, int events)
{
    struct tp__proxy_wait *w = p->data;
    unsigned char buf[HDR_MAX];
    ssize_t n;
    int r;

    (void)events;
    if (status < 0) {
        wait_end(w, -EIO);
        return;
    }
    n = recv(w->fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        wait_end(w, n == 0 ? -ECONNRESET : -errno);
        return;
    }
    r = tp__proxy_parse(buf, (size_t)n, &w->h);
    if (r == 0 && (size_t)n == sizeof(buf))
        r = -EPROTO; /* HDR_MAX bytes and still no header */
    if (r == 0)
        return; /* more to come */
    /* Exactly the header leaves the kernel; the rest is the connection's. */
    if (r == 1 && recv(w->fd, buf, w->h.len, 0) != (ssize_t)w->h.len)
        r = -EIO;
    wait_end(w, r == 1 ? 1 : -EPROTO);
}

void
tp__proxy_wait(struct tp__lsock *ls, int fd)
{
    struct tp__proxy_wait *w = tp__calloc(1, sizeof(*w));

    if (w == NULL || uv_poll_init(&ls->s->loop, &w->poll, fd) != 0) {
        tp__free(w);
        atomic_fetch_add_explicit(&ls->l->errors, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&ls->l->conns, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    w->ls = ls;
    w->fd = fd;
    w->poll.data = w;
    w->timer.fire = wait_timeout;
    w->next = ls->proxy_waits;
    if (w->next != NULL)
        w->next->prev = w;
    ls->proxy_waits = w;
    tp__sched_timer_add(ls->s, &w->timer, TP__PROXY_TIMEOUT_MS);
    uv_poll_start(&w->poll, UV_READABLE, wait_readable);
}

void
tp__proxy_abort_all(struct tp__lsock *ls)
{
    while (ls->proxy_waits != NULL)
        wait_end(ls->proxy_waits, -ESHUTDOWN);
}

/* ---- the console's view of PROXY connections ------------------------------
 */

struct proxied {
    tp_net_addr peer, local;
};

void
tp__net_proxied_add(struct tp__net *net, tp_conn conn, const tp_net_addr *peer,
                    const tp_net_addr *local)
{
    struct proxied *p = tp__malloc(sizeof(*p));

    if (p == NULL)
        return; /* the console then shows the balancer's address */
    p->peer = *peer;
    p->local = *local;
    pthread_mutex_lock(&net->lock);
    if (tp__u64map_put(&net->proxied, conn, (uintptr_t)p) < 0)
        tp__free(p);
    else
        atomic_fetch_add_explicit(&net->nproxied, 1, memory_order_relaxed);
    pthread_mutex_unlock(&net->lock);
}

bool
tp__net_proxied_get(struct tp__net *net, tp_conn conn, tp_net_addr *peer,
                    tp_net_addr *local)
{
    uint64_t *v;
    bool found = false;

    if (atomic_load_explicit(&net->nproxied, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(&net->lock);
    if ((v = tp__u64map_get(&net->proxied, conn)) != NULL) {
        const struct proxied *p = (const struct proxied *)(uintptr_t)*v;

        *peer = p->peer;
        *local = p->local;
        found = true;
    }
    pthread_mutex_unlock(&net->lock);
    return found;
}

void
tp__net_proxied_del(struct tp__net *net, tp_conn conn)
{
    uint64_t v;

    if (atomic_load_explicit(&net->nproxied, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&net->lock);
    if (tp__u64map_remove(&net->proxied, conn, &v)) {
        tp__free((void *)(uintptr_t)v);
        atomic_fetch_sub_explicit(&net->nproxied, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&net->lock);
}

void
tp__net_proxied_fini(struct tp__net *net)
{
    struct tp__u64map_entry *e;

    for (uint32_t i = 0; tp__u64map_next(&net->proxied, &i, &e);)
        tp__free((void *)(uintptr_t)e->val);
    tp__u64map_fini(&net->proxied);
}
