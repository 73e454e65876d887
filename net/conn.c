/*
 * net/conn.c - a connection on its loop: reading into messages, flow
 * control, writing, timers and closing. Everything here runs on the
 * connection's loop thread.
 *
 * Reading: libuv calls alloc_cb only when the socket is readable, so one
 * 64 KiB buffer per loop serves all its connections; read_cb copies what
 * was read into a right-sized message before it returns. An idle
 * connection holds no read buffer.
 *
 * Flow control (active mode): after each DATA message the loop compares
 * the DATA bytes waiting at the owner (rxq) and its mailbox length with the
 * high-water marks and stops reading above them. The connection actor's
 * wrapper lowers rxq as it consumes DATA and, once both are under the low
 * marks, posts one resume command. Pausing and consuming both change rxq
 * with read-modify-writes, which totally orders them: whichever comes
 * second sees the other (see wrap.c). An outbound connection's owner is an
 * ordinary actor that nobody watches, so its paused connection re-checks
 * the owner's mailbox on a short timer instead.
 */
#include "net_int.h"
#include "tls_int.h"
#include "ws_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF   65536u
#define FLOW_POLL  2u /* ms between re-checks of a paused outbound conn */
#define CREDIT_MAX 0xffffu

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void timer_fire(struct tp__wtimer *t, void *arg);

struct tp__net_loop *
tp__conn_loop(struct tp__conn *c)
{
    struct tp__sched *s = c->h.loop->data;

    return &tp__net_of(s->rt)->loops[s->index];
}

static struct tp__sched *
conn_s(struct tp__conn *c)
{
    return c->h.loop->data;
}

static unsigned
conn_state(struct tp__conn *c)
{
    return atomic_load_explicit(&c->state, memory_order_relaxed);
}

static void
set_state(struct tp__conn *c, unsigned st)
{
    /* release: readers that see the state see what led to it. */
    atomic_store_explicit(&c->state, (uint8_t)st, memory_order_release);
}

static void
touch(struct tp__conn *c)
{
    atomic_store_explicit(&c->last_ms, tp__net_tick(tp__conn_loop(c)),
                          memory_order_relaxed);
}

static void
stat_add(_Atomic uint64_t *p, uint64_t v)
{
    /* Single writer (this loop): a relaxed load and store suffice. */
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void
tp__conn_setup(struct tp__conn *c, struct tp__sched *s, const tp_conn_opts *cfg,
               uint8_t flags)
{
    uint64_t now = tp__sched_tick(s);
    uint8_t mode = (uint8_t)cfg->read_mode;

    if (flags & TP__CF_OUTBOUND)
        mode |= TP__MODE_OUTBOUND;
    memset(&c->timer, 0, sizeof(c->timer));
    atomic_store_explicit(&c->cfg, cfg, memory_order_relaxed);
    c->flags = flags;
    c->reason = 0;
    c->credit = cfg->read_mode == TP_READ_ONCE ? 1 : 0;
    c->idle_ms = cfg->idle_timeout_ms;
    atomic_store_explicit(&c->mode, mode, memory_order_relaxed);
    atomic_store_explicit(&c->sched, (uint16_t)s->index, memory_order_relaxed);
    atomic_store_explicit(&c->owner, TP_PID_NONE, memory_order_relaxed);
    atomic_store_explicit(&c->bytes_in, 0, memory_order_relaxed);
    atomic_store_explicit(&c->bytes_out, 0, memory_order_relaxed);
    atomic_store_explicit(&c->born_s, (uint32_t)(now / 1000u),
                          memory_order_relaxed);
    atomic_store_explicit(&c->last_ms, (uint32_t)now, memory_order_relaxed);
}

static void
set_mode_bits(struct tp__conn *c, tp_read_mode m)
{
    uint8_t v = atomic_load_explicit(&c->mode, memory_order_relaxed);

    atomic_store_explicit(&c->mode,
                          (uint8_t)((v & ~TP__MODE_MASK) | (unsigned)m),
                          memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */
/* Telling the owner                                                      */

/* A notice the owner must get (OPENED, CONNECTED, CLOSED, DRAINED,
 * PEER_SHUTDOWN) could not be allocated: without it the owner would wait
 * for ever (a connect never answered, a close never seen, writes never
 * resumed). It is killed instead - kills need no memory - which releases
 * its connections; its supervisor, if any, starts it again. A lost DRAIN
 * needs nothing: the drain's deadline closes the connection. */
static void
tell_failed(struct tp__sched *s, tp_pid owner, uint32_t type)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "connection notice out of memory"};

    if (type == TP_MSG_TCP_DRAIN)
        return;
    tp_log(TP_LOG_ERROR, "net: notice %#x lost (out of memory): owner killed",
           type);
    tp__exit_signal(tp__actors_of(s->rt), TP_PID_NONE, owner, &kill, false);
}

void
tp__conn_tell(struct tp__conn *c, uint32_t type, const void *p, size_t len)
{
    struct tp__sched *s = conn_s(c);
    tp_pid owner = atomic_load_explicit(&c->owner, memory_order_relaxed);
    struct tp__msg *m;

    if (owner == TP_PID_NONE)
        return;
    if ((m = tp__msg_copy(type, p, len)) == NULL) {
        tell_failed(s, owner, type);
        return;
    }
    m->m.ref = tp__conn_handle(c);
    /* Flow control bounds net messages, never the mailbox bound. */
    m->flags |= TP__MSG_FORCED;
    tp__deliver(s->ext[TP__EXT_ACTORS], owner, m);
}

static uint64_t
owner_mailbox(struct tp__conn *c)
{
    struct tp__sched *s = conn_s(c);
    struct tp__actor *a =
        tp__actor_lookup(tp__actors_of(s->rt),
                         atomic_load_explicit(&c->owner, memory_order_relaxed));

    return a != NULL ? tp__mailbox_len(a) : 0;
}

/* ---------------------------------------------------------------------- */
/* Timers                                                                 */

void
tp__conn_timer_arm(struct tp__conn *c, uint32_t ms)
{
    struct tp__sched *s = conn_s(c);

    tp__sched_timer_del(s, &c->timer);
    c->timer.fire = timer_fire;
    tp__sched_timer_add(s, &c->timer, ms);
}

static void
timer_stop(struct tp__conn *c)
{
    tp__sched_timer_del(conn_s(c), &c->timer);
}

/* (Re-)arms the idle timeout from the last I/O. */
static void
idle_arm(struct tp__conn *c)
{
    if (tp__conn_ws(c) != NULL &&
        tp__ws_arm(c)) /* WebSocket hook: upgrade deadline */
        return;
    if (c->idle_ms == 0) {
        timer_stop(c);
        return;
    }
    tp__conn_timer_arm(c, c->idle_ms);
}

static bool
flow_paused(struct tp__conn *c)
{
    return (atomic_load_explicit(&c->rxq, memory_order_relaxed) &
            TP__RX_PAUSED) != 0;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct tp__conn *c = h->data;
    struct tp__net_loop *nl = tp__conn_loop(c);

    (void)hint;
    if (nl->rbuf == NULL)
        nl->rbuf = tp__malloc(READ_BUF);
    buf->base = nl->rbuf;
    buf->len = nl->rbuf != NULL ? tp__conn_cfg(c)->read_chunk : 0;
}

static bool
want_read(struct tp__conn *c)
{
    if (conn_state(c) != TP__C_OPEN ||
        (c->flags & (TP__CF_PEER_EOF | TP__CF_DRAINING | TP__CF_WPAUSED)))
        return false;
    /* TLS hook: a handshake reads whatever the mode says. */
    if (tp__conn_tls(c) != NULL && tp__tls_handshaking(c))
        return true;
    if (tp__conn_mode(c) == TP_READ_ACTIVE)
        return !flow_paused(c);
    return c->credit > 0;
}

void
tp__conn_read_update(struct tp__conn *c)
{
    bool want = want_read(c);
    int err;

    if (want && !(c->flags & TP__CF_READING)) {
        err = uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
        if (err != 0) {
            tp__conn_close(c, TP_NET_CLOSE_ERROR, err, false);
            return;
        }
        c->flags |= TP__CF_READING;
    } else if (!want && (c->flags & TP__CF_READING)) {
        uv_read_stop((uv_stream_t *)&c->h);
        c->flags &= (uint8_t)~TP__CF_READING;
    }
    if (want &&
        tp__conn_tls(c) != NULL) /* TLS hook: plaintext it already holds */
        tp__tls_want(c);
}

bool
tp__conn_want_read(struct tp__conn *c)
{
    return want_read(c);
}

/* Sets PAUSED unless the owner caught up meanwhile. Returns true if the
 * connection stays paused. */
static bool
flow_pause(struct tp__conn *c)
{
    const tp_conn_opts *o = tp__conn_cfg(c);
    uint64_t w = atomic_fetch_or(&c->rxq, TP__RX_PAUSED) | TP__RX_PAUSED;
    uint64_t expect = w;

    /* The owner consumes concurrently: with PAUSED visible to its next
     * read-modify-write, look once more and undo if it is already under
     * both low marks (else its consumption would find PAUSED unset). */
    if ((w & TP__RX_BYTES) > o->read_low || owner_mailbox(c) > o->mailbox_low)
        return true;
    return !atomic_compare_exchange_strong(&c->rxq, &expect,
                                           w & ~TP__RX_PAUSED);
}

static void
flow_check(struct tp__conn *c, uint64_t rx)
{
    const tp_conn_opts *o = tp__conn_cfg(c);

    if ((rx & TP__RX_BYTES) < o->read_high &&
        owner_mailbox(c) < o->mailbox_high)
        return;
    if (!flow_pause(c))
        return;
    tp__conn_read_update(c);
    if (!(c->flags & TP__CF_WRAPPED))
        tp__conn_timer_arm(c, FLOW_POLL); /* nobody else will resume it */
}

/* Outbound connections: the timer re-checks the owner's mailbox. */
static void
flow_poll(struct tp__conn *c)
{
    if (owner_mailbox(c) > tp__conn_cfg(c)->mailbox_low) {
        tp__conn_timer_arm(c, FLOW_POLL);
        return;
    }
    atomic_fetch_and(&c->rxq, ~(TP__RX_PAUSED | TP__RX_RESUME));
    tp__conn_read_update(c);
    idle_arm(c);
}

static void
write_pause_check(struct tp__conn *c)
{
    uint64_t wq = atomic_load_explicit(&c->wq, memory_order_relaxed);

    if (tp__conn_cfg(c)->read_pause_on_write_high &&
        (wq & TP__WQ_BYTES) > tp__conn_cfg(c)->write_high) {
        c->flags |= TP__CF_WPAUSED;
        tp__conn_read_update(c);
    }
}

void
tp__conn_on_data(struct tp__conn *c, const char *base, size_t n)
{
    stat_add(&c->bytes_in, n);
    touch(c);
    if (tp__conn_ws(c) != NULL) { /* WebSocket hook: frames, not bytes */
        tp__ws_data(c, base, n);
        return;
    }
    tp__conn_deliver(c, TP_MSG_TCP_DATA, base, n);
}

void
tp__conn_deliver(struct tp__conn *c, uint32_t type, const char *base, size_t n)
{
    struct tp__msg *m = tp__msg_alloc(n);
    uint64_t rx = 0;

    if (m == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    if (n != 0) /* an empty WebSocket message has no bytes (base NULL) */
        memcpy(tp__msg_payload(m), base, n);
    m->m.type = type;
    m->m.ref = tp__conn_handle(c);
    m->flags |= TP__MSG_FORCED;
    /* Its wrapper subtracts DATA bytes when consumed. */
    if ((c->flags & TP__CF_WRAPPED) && type == TP_MSG_TCP_DATA)
        rx = atomic_fetch_add(&c->rxq, n) + n;
    else
        rx = atomic_load_explicit(&c->rxq, memory_order_relaxed);
    tp__deliver(conn_s(c)->ext[TP__EXT_ACTORS],
                atomic_load_explicit(&c->owner, memory_order_relaxed), m);
    if (tp__conn_mode(c) != TP_READ_ACTIVE) {
        c->credit--;
        tp__conn_read_update(c);
        return;
    }
    flow_check(c, rx);
    write_pause_check(c);
}

void
tp__conn_on_eof(struct tp__conn *c)
{
    tp_conn h = tp__conn_handle(c);
    int why, err;

    /* WebSocket hook: hung up while we lingered after the Closes. */
    if (tp__conn_ws(c) != NULL && tp__ws_lingering(c, &why, &err)) {
        tp__conn_close(c, (tp_net_close)why, err, true);
        return;
    }
    if (!tp__conn_cfg(c)->half_open || (c->flags & TP__CF_SHUT_DONE)) {
        tp__conn_close(c, TP_NET_CLOSE_PEER, 0, true);
        return;
    }
    c->flags |= TP__CF_PEER_EOF;
    tp__conn_read_update(c);
    tp__conn_tell(c, TP_MSG_TCP_PEER_SHUTDOWN, &h, sizeof(h));
}

void
tp__conn_io_error(struct tp__conn *c, int err)
{
    bool reset = err == UV_ECONNRESET || err == UV_EPIPE;
    int why, ws_err;

    /* WebSocket hook: reset while we lingered after the Closes. */
    if (tp__conn_ws(c) != NULL && tp__ws_lingering(c, &why, &ws_err)) {
        tp__conn_close(c, (tp_net_close)why, ws_err, false);
        return;
    }
    tp__conn_close(c, reset ? TP_NET_CLOSE_RESET : TP_NET_CLOSE_ERROR, err,
                   false);
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct tp__conn *c = st->data;

    if (nread > 0 && tp__conn_tls(c) != NULL) /* TLS hook: ciphertext */
        tp__tls_read(c, buf->base, (size_t)nread);
    else if (nread > 0)
        tp__conn_on_data(c, buf->base, (size_t)nread);
    else if (nread == UV_EOF)
        tp__conn_on_eof(c);
    else if (nread < 0)
        tp__conn_io_error(c, (int)nread);
}

void
tp__conn_opened(struct tp__conn *c)
{
    if (conn_state(c) != TP__C_OPEN)
        return;
    tp__conn_read_update(c);
    if (tp__conn_tls(c) != NULL) /* TLS hook: handshake timer, then the hello */
        tp__tls_opened(c);
    else
        idle_arm(c);
}

void
tp__conn_idle_arm(struct tp__conn *c)
{
    idle_arm(c);
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                */

/* Subtracts a finished write from wq; tells the owner when it drained. */
static void
wq_done(struct tp__conn *c, uint32_t gen, uint32_t n)
{
    uint64_t w = atomic_load_explicit(&c->wq, memory_order_relaxed), nw;
    tp_tcp_write_state ws;

    do {
        if ((w >> 32) != gen)
            return; /* a later incarnation: its counter starts afresh */
        nw = w - n;
        if ((nw & TP__WQ_BLOCKED) &&
            (nw & TP__WQ_BYTES) <= tp__conn_cfg(c)->write_low)
            nw &= ~TP__WQ_BLOCKED;
    } while (!atomic_compare_exchange_weak(&c->wq, &w, nw));
    if ((c->flags & TP__CF_WPAUSED) &&
        (nw & TP__WQ_BYTES) <= tp__conn_cfg(c)->write_low) {
        c->flags &= (uint8_t)~TP__CF_WPAUSED;
        tp__conn_read_update(c);
    }
    if ((w & TP__WQ_BLOCKED) && !(nw & TP__WQ_BLOCKED)) {
        ws.conn = tp__conn_handle(c);
        ws.queued = nw & TP__WQ_BYTES;
        tp__conn_tell(c, TP_MSG_TCP_DRAINED, &ws, sizeof(ws));
    }
}

static void do_close(struct tp__conn *c);

static void
write_cb(uv_write_t *req, int status)
{
    struct tp__wreq *w = tp__container_of(req, struct tp__wreq, req);
    struct tp__conn *c = req->handle->data;

    if (status == 0) {
        stat_add(&c->bytes_out, w->len);
        touch(c);
    }
    wq_done(c, (uint32_t)(w->h >> 32), w->queued);
    tp__wreq_free(w);
    if (status < 0 && status != UV_ECANCELED)
        tp__conn_io_error(c, status);
    else if (conn_state(c) == TP__C_CLOSING && c->h.write_queue_size == 0)
        do_close(c);
}

void
tp__wreq_free(struct tp__wreq *w)
{
    if (w->blob != NULL)
        tp_blob_unref(w->blob);
    tp__net_cmd_free(w, w->klass);
}

static bool
writable(struct tp__conn *c)
{
    unsigned st = conn_state(c);

    return (st == TP__C_OPEN || st == TP__C_CONNECTING) &&
           !(c->flags & TP__CF_SHUT);
}

/* Bytes as they are to the kernel, if nothing is queued before them. */
static ssize_t
raw_try_write(struct tp__conn *c, const char *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int n;

    if (conn_state(c) != TP__C_OPEN || c->h.write_queue_size != 0)
        return 0;
    n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
    if (n == UV_EAGAIN)
        return 0;
    if (n > 0) {
        stat_add(&c->bytes_out, (uint64_t)n);
        touch(c);
    }
    return n;
}

ssize_t
tp__conn_try_write(struct tp__conn *c, const char *p, size_t len)
{
    /* TLS hook: plaintext goes through tp__conn_write to be encrypted. */
    if (tp__conn_tls(c) != NULL)
        return 0;
    /* WebSocket hook: before the 101 answer, frames must wait; after our
     * Close, tp__conn_write drops them. */
    if (tp__conn_ws(c) != NULL && (!tp__ws_upgraded(c) || tp__ws_close_sent(c)))
        return 0;
    return raw_try_write(c, p, len);
}

void
tp__conn_write(struct tp__conn *c, struct tp__wreq *w)
{
    /* WebSocket hook: an actor's frames wait for the upgrade's answer,
     * and none goes out after our Close frame (RFC 6455, 5.5.1). */
    if (!w->internal && tp__conn_ws(c) != NULL && writable(c)) {
        if (tp__ws_close_sent(c)) {
            wq_done(c, (uint32_t)(w->h >> 32), w->queued);
            tp__wreq_free(w);
            return;
        }
        if (tp__ws_hold(c, w))
            return;
    }
    if (tp__conn_tls(c) != NULL && writable(c)) /* TLS hook: encrypt first */
        tp__tls_write(c, w);
    else
        tp__conn_write_raw(c, w);
}

void
tp__conn_write_raw(struct tp__conn *c, struct tp__wreq *w)
{
    uv_buf_t b;
    ssize_t n;
    int err;

    if (!writable(c)) {
        wq_done(c, (uint32_t)(w->h >> 32), w->queued);
        tp__wreq_free(w);
        return;
    }
    n = raw_try_write(c, w->base, w->len);
    if (n < 0) {
        wq_done(c, (uint32_t)(w->h >> 32), w->queued);
        tp__wreq_free(w);
        tp__conn_io_error(c, (int)n);
        return;
    }
    if ((size_t)n == w->len) {
        wq_done(c, (uint32_t)(w->h >> 32), w->queued);
        tp__wreq_free(w);
        return;
    }
    w->base += n;
    w->len -= (uint32_t)n;
    b = uv_buf_init((char *)w->base, w->len);
    err = uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, write_cb);
    if (err != 0) {
        wq_done(c, (uint32_t)(w->h >> 32), w->queued);
        tp__wreq_free(w);
        tp__conn_io_error(c, err);
    }
}

/* ---------------------------------------------------------------------- */
/* Closing                                                                */

static void
close_cb(uv_handle_t *h)
{
    struct tp__conn *c = h->data;
    struct tp__net_loop *nl = tp__conn_loop(c);
    struct tp_listener *l = tp__conn_listener(c);

    if (l != NULL)
        atomic_fetch_sub_explicit(&l->conns, 1, memory_order_relaxed);
    if (tp__conn_ws(c) != NULL) /* WebSocket hook (before TLS: it hangs
                                   off the TLS state) */
        tp__ws_free(c);
    if (tp__conn_tls(c) != NULL) /* TLS hook */
        tp__tls_free(c);
    atomic_fetch_sub_explicit(&nl->net->open, 1, memory_order_relaxed);
    tp__conn_release(nl, c);
}

static void
do_close(struct tp__conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->h))
        return;
    timer_stop(c);
    set_state(c, TP__C_CLOSED);
    c->flags &= (uint8_t)~TP__CF_READING;
    uv_close((uv_handle_t *)&c->h, close_cb);
}

void
tp__conn_discard(struct tp__conn *c)
{
    do_close(c);
}

static void
tell_closed(struct tp__conn *c, tp_net_close reason, int err)
{
    tp_tcp_closed m;

    memset(&m, 0, sizeof(m));
    m.conn = tp__conn_handle(c);
    m.reason = (int32_t)reason;
    m.error = err;
    m.bytes_in = atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
    m.bytes_out = atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
    tp__conn_tell(c, TP_MSG_TCP_CLOSED, &m, sizeof(m));
}

void
tp__conn_close(struct tp__conn *c, tp_net_close reason, int err, bool graceful)
{
    unsigned st = conn_state(c);
    struct tp__net *net = tp__conn_loop(c)->net;

    if (st == TP__C_FREE || st == TP__C_CLOSED)
        return;
    if (st == TP__C_CLOSING) {
        if (!graceful)
            do_close(c);
        return;
    }
    /* WebSocket and TLS hooks: a Close frame, then close_notify, unless
     * the peer is gone already (its end of stream or reset). */
    bool polite = graceful && st == TP__C_OPEN && reason != TP_NET_CLOSE_PEER &&
                  reason != TP_NET_CLOSE_RESET;

    if (polite && tp__conn_ws(c) != NULL) {
        tp__ws_on_close(c, (int)reason);
        if (conn_state(c) != TP__C_OPEN)
            return;
    }
    if (polite && tp__conn_tls(c) != NULL) {
        tp__tls_close_notify(c);
        if (conn_state(c) != TP__C_OPEN)
            return; /* its write failed: closed meanwhile */
    }
    c->reason = (uint8_t)reason;
    set_state(c, TP__C_CLOSING);
    atomic_fetch_add_explicit(&net->closed[reason], 1, memory_order_relaxed);
    tp__conn_read_update(c);
    if (reason != TP_NET_CLOSE_OWNER_EXIT)
        tell_closed(c, reason, err);
    if (graceful && st == TP__C_OPEN && c->h.write_queue_size != 0) {
        tp__conn_timer_arm(c, tp__conn_cfg(c)->linger_ms);
        return; /* write_cb closes when the queue is empty */
    }
    do_close(c);
}

/* ---------------------------------------------------------------------- */
/* Timer                                                                  */

static void
idle_fire(struct tp__conn *c)
{
    uint32_t now = tp__net_tick(tp__conn_loop(c));
    uint32_t idle =
        now - atomic_load_explicit(&c->last_ms, memory_order_relaxed);

    if (c->idle_ms == 0)
        return;
    /* Paused by us (flow control) is not the peer being idle. */
    if (flow_paused(c) || (c->flags & TP__CF_WPAUSED)) {
        touch(c);
        idle_arm(c);
        return;
    }
    /* last_ms comes from the loop's cached clock, which can lag the real
     * one by the time since the loop last ran (well under a tick): one
     * tick of slack keeps the timeout from ever firing early. */
    if (idle > c->idle_ms) {
        tp__conn_close(c, TP_NET_CLOSE_TIMEOUT, 0, true);
        return;
    }
    tp__conn_timer_arm(c, c->idle_ms + 1 - idle); /* lazy re-arm */
}

static void
timer_fire(struct tp__wtimer *t, void *arg)
{
    struct tp__conn *c = tp__container_of(t, struct tp__conn, timer);

    (void)arg;
    switch (conn_state(c)) {
    case TP__C_CONNECTING:
        tp__connect_timeout(c);
        break;
    case TP__C_CLOSING:
        do_close(c); /* linger expired: drop what was not written */
        break;
    case TP__C_OPEN:
        if (tp__conn_tls(c) != NULL &&
            tp__tls_timer(c)) /* TLS hook: handshake */
            break;
        if (tp__conn_ws(c) != NULL && tp__ws_timer(c)) /* WebSocket hook */
            break;
        if (!(c->flags & TP__CF_WRAPPED) && flow_paused(c))
            flow_poll(c);
        else
            idle_fire(c);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* Commands                                                               */

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
    struct tp__conn *c = req->handle->data;

    tp__free(req);
    if (status == UV_ECANCELED)
        return; /* closed meanwhile */
    c->flags |= TP__CF_SHUT_DONE;
    if (status < 0 && status != UV_ENOTCONN)
        tp__conn_io_error(c, status);
    else if (c->flags & TP__CF_PEER_EOF) /* both directions are done */
        tp__conn_close(c, TP_NET_CLOSE_PEER, 0, true);
}

static void
do_shutdown(struct tp__conn *c)
{
    uv_shutdown_t *req;
    int err;

    if (conn_state(c) != TP__C_OPEN || (c->flags & TP__CF_SHUT))
        return;
    if (tp__conn_tls(c) != NULL) { /* TLS hook: close_notify before the FIN */
        tp__tls_close_notify(c);
        if (conn_state(c) != TP__C_OPEN)
            return;
    }
    c->flags |= TP__CF_SHUT;
    req = tp__malloc(sizeof(*req));
    if (req == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    err = uv_shutdown(req, (uv_stream_t *)&c->h, shutdown_cb);
    if (err != 0) {
        tp__free(req);
        tp__conn_io_error(c, err);
    }
}

static void
set_mode(struct tp__conn *c, tp_read_mode m)
{
    set_mode_bits(c, m);
    c->credit = m == TP_READ_ONCE ? 1 : 0;
    if (m == TP_READ_ACTIVE)
        flow_check(c, atomic_load(&c->rxq));
    tp__conn_read_update(c);
}

static void
set_idle(struct tp__conn *c, uint32_t ms)
{
    c->idle_ms = ms;
    touch(c);
    if (conn_state(c) == TP__C_OPEN && !flow_paused(c))
        idle_arm(c);
}

void
tp__conn_exec(struct tp__conn *c, struct tp__ncmd *nc)
{
    switch ((enum tp__net_op)nc->op) {
    case TP__OP_CLOSE:
        tp__conn_close(c, (tp_net_close)nc->arg, 0,
                       nc->arg != TP_NET_CLOSE_WRITE_LIMIT);
        break;
    case TP__OP_SHUTDOWN:
        do_shutdown(c);
        break;
    case TP__OP_ACTIVATE:
        if (c->credit < CREDIT_MAX)
            c->credit++;
        tp__conn_read_update(c);
        break;
    case TP__OP_MODE:
        set_mode(c, (tp_read_mode)nc->arg);
        break;
    case TP__OP_RESUME:
        atomic_fetch_and(&c->rxq, ~(TP__RX_PAUSED | TP__RX_RESUME));
        tp__conn_read_update(c);
        break;
    case TP__OP_IDLE:
        set_idle(c, nc->arg);
        break;
    case TP__OP_CONNECT:
        tp__connect_start(c, nc);
        break;
    case TP__OP_WS_CLOSE: /* WebSocket hook */
        if (tp__conn_ws(c) != NULL)
            tp__ws_close_cmd(c, nc->arg);
        else
            tp__conn_close(c, TP_NET_CLOSE_LOCAL, 0, true);
        break;
    default:
        break;
    }
}
