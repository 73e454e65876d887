/*
 * cluster/node.c - membership: heartbeats, the join probe and its answers,
 * node up / down, tp_monitor_node(), and the cluster thread (publishes the
 * outbound queue, heartbeats and pings, finds silent nodes).
 *
 * A peer is up from its first HELLO until down_after_ms pass without a
 * frame from it, it says BYE, or it comes back with another incarnation
 * (restarted faster than detection: down, then up again). Frames from a
 * peer that is down are dropped until its next HELLO: like an Erlang
 * connection, a node that was declared down starts over.
 */
#include "cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void tp__node_hb_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                     void *closure);
void tp__node_join_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure);
void tp__node_inbox_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                        void *closure);
void *tp__node_thread(void *arg);
int tp__node_publish_self(struct tp__cluster *cl, uint8_t kind,
                          const char *subject, uint8_t flags);
void tp__node_all_down(struct tp__cluster *cl, uint32_t why);
void tp__node_greet_peers(struct tp__cluster *cl);

/* ---------------------------------------------------------------------- */
/* Publishing                                                             */

static void
hdr_init(const struct tp__cluster *cl, struct tp__wire_hdr *h, uint8_t kind)
{
    memset(h, 0, sizeof(*h));
    h->kind = kind;
    h->node = (uint16_t)cl->id;
    h->incarnation = (uint32_t)cl->incarnation;
}

int
tp__node_publish_self(struct tp__cluster *cl, uint8_t kind, const char *subject,
                      uint8_t flags)
{
    struct tp__wire_node w = {.incarnation = cl->incarnation, .id = cl->id};
    unsigned char buf[TP__WIRE_HDR + 13 + TP_NODE_NAME_MAX + 14];
    struct tp__wire_hdr h;
    size_t n;
    natsStatus s;

    snprintf(w.name, sizeof(w.name), "%s", cl->name);
    tp__link_self(cl, &w);
    n = tp__wire_node_size(&w);
    hdr_init(cl, &h, kind);
    h.flags = flags | (cl->joined ? 0 : TP__WF_JOIN);
    h.len = (uint32_t)n;
    tp__wire_put_hdr(buf, &h);
    tp__wire_put_node(buf + TP__WIRE_HDR, &w);
    if (kind == TP__W_PROBE)
        s = natsConnection_PublishRequest(cl->nc, subject, cl->join_inbox, buf,
                                          (int)(TP__WIRE_HDR + n));
    else
        s = natsConnection_Publish(cl->nc, subject, buf,
                                   (int)(TP__WIRE_HDR + n));
    return s == NATS_OK ? 0 : -ENOTCONN;
}

static void
publish_ping(struct tp__cluster *cl, const char *subject, uint8_t kind,
             uint64_t ref)
{
    unsigned char buf[TP__WIRE_HDR];
    struct tp__wire_hdr h;

    hdr_init(cl, &h, kind);
    h.ref = ref;
    tp__wire_put_hdr(buf, &h);
    natsConnection_Publish(cl->nc, subject, buf, TP__WIRE_HDR);
}

/* Greets every peer found while joining on its own inbox: a node receives
 * our HELLO there before any message we send it (one subject, one
 * delivery thread), so it can answer at once. */
void
tp__node_greet_peers(struct tp__cluster *cl)
{
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        char subj[160];
        if (p == NULL || atomic_load(&p->state) != TP__PEER_UP)
            continue;
        pthread_mutex_lock(&cl->lock);
        snprintf(subj, sizeof(subj), "%s", p->subject);
        pthread_mutex_unlock(&cl->lock);
        tp__node_publish_self(cl, TP__W_HELLO, subj, 0);
    }
}

/* Tells a joining node which ids we know of (up or down). */
static void
publish_ids(struct tp__cluster *cl, const char *subject)
{
    unsigned char buf[TP__WIRE_HDR + 2 + 2 * TP_PID_NODE_MAX];
    unsigned char *p = buf + TP__WIRE_HDR + 2;
    struct tp__wire_hdr h;
    uint16_t n = 0;

    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *q = atomic_load(&cl->peers[i]);
        if (q == NULL || atomic_load(&q->state) == TP__PEER_UNKNOWN)
            continue;
        p[0] = (unsigned char)i;
        p[1] = (unsigned char)(i >> 8);
        p += 2;
        n++;
    }
    if (n == 0)
        return;
    hdr_init(cl, &h, TP__W_IDS);
    h.len = 2u + 2u * n;
    tp__wire_put_hdr(buf, &h);
    buf[TP__WIRE_HDR] = (unsigned char)n;
    buf[TP__WIRE_HDR + 1] = (unsigned char)(n >> 8);
    natsConnection_Publish(cl->nc, subject, buf, (int)(TP__WIRE_HDR + h.len));
}

/* ---------------------------------------------------------------------- */
/* Node events                                                            */

static void
node_event(struct tp__cluster *cl, struct tp__cpeer *p, bool up, uint32_t why)
{
    tp_node_event ev = {.node = p->id, .reason = up ? 0 : why};
    struct tp__u64map_entry *e;
    tp_pid dead[64];
    unsigned ndead = 0;
    uint32_t i;
    tp_ctx *ctx;

    pthread_mutex_lock(&cl->lock);
    snprintf(ev.name, sizeof(ev.name), "%s", p->name);
    ctx = tp__xctx_acquire(cl->rt);
    for (i = 0; tp__u64map_next(&cl->node_watchers, &i, &e);) {
        struct tp__msg *m = tp__msg_copy(up ? TP_MSG_NODE_UP : TP_MSG_NODE_DOWN,
                                         &ev, sizeof(ev));
        if (m == NULL)
            continue;
        m->flags |= TP__MSG_FORCED;
        if (tp__deliver(ctx, e->key, m) == -ESRCH && ndead < 64)
            dead[ndead++] = e->key; /* watcher gone: forget it */
    }
    tp__xctx_release(ctx);
    for (i = 0; i < ndead; i++)
        tp__u64map_remove(&cl->node_watchers, dead[i], NULL);
    pthread_mutex_unlock(&cl->lock);
    tp_log(up ? TP_LOG_INFO : TP_LOG_WARN, "cluster %s: node %s (id %u) %s",
           cl->cluster, ev.name, p->id,
           up         ? "up"
           : why == 2 ? "left"
                      : "down (heartbeats missed)");
}

int
tp_monitor_node(tp_ctx *ctx, bool on)
{
    struct tp__cluster *cl;
    tp_pid self = tp_self(ctx);
    int err = 0;

    if (self == TP_PID_NONE)
        return -EINVAL;
    if ((cl = tp__cluster_get(ctx->rt)) == NULL)
        return -ENOTCONN;
    pthread_mutex_lock(&cl->lock);
    if (on)
        err = tp__u64map_put(&cl->node_watchers, self, 1) < 0 ? -ENOMEM : 0;
    else
        tp__u64map_remove(&cl->node_watchers, self, NULL);
    pthread_mutex_unlock(&cl->lock);
    tp__cluster_put(cl);
    return err;
}

/* p goes down (cluster thread, a delivery thread, or stop). */
static void
peer_down(struct tp__cluster *cl, struct tp__cpeer *p, uint32_t why)
{
    int up = TP__PEER_UP;

    if (!atomic_compare_exchange_strong(&p->state, &up, TP__PEER_DOWN))
        return;
    pthread_mutex_lock(&cl->lock);
    p->down_ns = tp_now_ns();
    pthread_mutex_unlock(&cl->lock);
    atomic_fetch_add(&p->downs, 1);
    tp__link_peer_down(cl, p);
    tp__remote_peer_down(cl, p);
    tp__names_node_down(cl, p->id, why == 2);
    node_event(cl, p, false, why);
}

void
tp__node_peer_down(struct tp__cluster *cl, struct tp__cpeer *p, uint32_t why)
{
    peer_down(cl, p, why);
}

void
tp__node_all_down(struct tp__cluster *cl, uint32_t why)
{
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p != NULL)
            peer_down(cl, p, why);
    }
}

/* ---------------------------------------------------------------------- */
/* HELLO / PROBE / BYE                                                    */

/* p came up under a name another peer still up has (a restart under a
 * new id, before the old incarnation's silence was noticed): the old one
 * is down. */
static void
replaced(struct tp__cluster *cl, struct tp__cpeer *p)
{
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *q = atomic_load(&cl->peers[i]);
        bool same;
        if (q == NULL || q == p || atomic_load(&q->state) != TP__PEER_UP)
            continue;
        pthread_mutex_lock(&cl->lock);
        same =
            strcmp(q->name, p->name) == 0 && q->incarnation != p->incarnation;
        pthread_mutex_unlock(&cl->lock);
        if (same)
            peer_down(cl, q, 1);
    }
}

/* Flap damping (lock held): a peer that went down less than a heartbeat
 * period ago stays down for what its same incarnation says meanwhile.
 * Without it, a node that wakes up from a stall (SIGSTOP, a long pause)
 * finds its peers silent, takes them down, then reads their HELLOs queued
 * during the stall and its peers' links to it, and both sides could take
 * each other up and down again thousands of times a second (a
 * sample_chat_cluster run). The next HELLO brings it back. A new
 * incarnation (a restart) is never held. */
static bool
held_down(struct tp__cluster *cl, const struct tp__cpeer *p,
          const struct tp__wire_node *w)
{
    uint64_t hold = (uint64_t)cl->opts.heartbeat_ms * 1000000u;

    return p->down_ns != 0 && p->incarnation == w->incarnation &&
           tp_now_ns() - p->down_ns < hold;
}

/* A HELLO (or a probe answer) from w: the peer is up. */
static void
hello(struct tp__cluster *cl, const struct tp__wire_node *w)
{
    struct tp__cpeer *p;
    bool fresh = false, restarted = false;

    if (w->id == cl->id && w->incarnation != cl->incarnation && cl->joined) {
        if (strcmp(w->name, cl->name) != 0)
            tp_log(TP_LOG_ERROR,
                   "cluster %s: node %s claims node id %u of node %s",
                   cl->cluster, w->name, w->id, cl->name);
        atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    if (w->incarnation == cl->incarnation ||
        (p = tp__peer_get(cl, w->id)) == NULL)
        return; /* our own */
    pthread_mutex_lock(&cl->lock);
    if (atomic_load(&p->state) == TP__PEER_UP &&
        p->incarnation != w->incarnation)
        restarted = true;
    p->last_seen_ns = tp_now_ns();
    p->missed_run = 0;
    pthread_mutex_unlock(&cl->lock);
    if (restarted)
        peer_down(cl, p, 1);
    pthread_mutex_lock(&cl->lock);
    if (atomic_load(&p->state) != TP__PEER_UP && !held_down(cl, p, w)) {
        snprintf(p->name, sizeof(p->name), "%s", w->name);
        snprintf(p->subject, sizeof(p->subject), "%s.tp.n.%s", cl->cluster,
                 w->name);
        p->incarnation = w->incarnation;
        p->last_seen_ns = tp_now_ns();
        tp__link_peer_prepare(cl, p, w); /* its path, before it is up */
        atomic_store(&p->state, TP__PEER_UP);
        fresh = true;
    }
    pthread_mutex_unlock(&cl->lock);
    if (!fresh)
        return;
    tp__link_peer_up(cl, p);
    replaced(cl, p);
    node_event(cl, p, true, 0);
    tp__names_node_up(cl); /* a partition may have healed */
}

/* A direct link's preamble proved that the peer p is alive under its
 * incarnation inc (link thread): like its HELLO, if we had it down. */
void
tp__node_link_hello(struct tp__cluster *cl, struct tp__cpeer *p, uint64_t inc)
{
    struct tp__wire_node w = {.incarnation = inc, .id = p->id};
    bool same;

    pthread_mutex_lock(&cl->lock);
    same = atomic_load(&p->state) == TP__PEER_DOWN && p->incarnation == inc &&
           p->name[0] != '\0';
    snprintf(w.name, sizeof(w.name), "%s", p->name);
    w.link_ip = p->link_ip;
    w.link_port = p->link_port;
    w.link_token = p->link_token;
    w.has_link = w.link_port != 0;
    pthread_mutex_unlock(&cl->lock);
    if (same)
        hello(cl, &w);
}

/* What a node still joining learns from w (lock held). */
static void
join_note(struct tp__cluster *cl, const struct tp__wire_node *w, bool w_joining)
{
    if (cl->joined || w->incarnation == cl->incarnation)
        return;
    /* Two nodes joining at once with one name: the lower incarnation
     * wins, on both sides. */
    if (strcmp(w->name, cl->name) == 0 &&
        (!w_joining || w->incarnation < cl->incarnation)) {
        cl->name_taken = true;
        snprintf(cl->taken_by, sizeof(cl->taken_by), "node id %u", w->id);
    }
    /* Ids: a live node's is taken; of two joining at once, the lower
     * incarnation keeps the id it proposes and the other moves (or, with
     * an explicit id, is refused). */
    if (!w_joining || w->incarnation < cl->incarnation)
        cl->id_taken[w->id / 8] |= (uint8_t)(1u << (w->id % 8));
}

static int
decode_node(struct tp__cluster *cl, natsMsg *msg, struct tp__wire_hdr *h,
            struct tp__wire_node *w)
{
    const unsigned char *pl;

    if (tp__wire_get_hdr(natsMsg_GetData(msg),
                         (size_t)natsMsg_GetDataLength(msg), h, &pl) != 0 ||
        tp__wire_get_node(pl, h->len, w) != 0) {
        atomic_fetch_add(&cl->bad_frames, 1);
        return -EBADMSG;
    }
    return 0;
}

void
tp__node_hb_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                void *closure)
{
    struct tp__cluster *cl = closure;
    struct tp__wire_hdr h;
    struct tp__wire_node w;
    bool joining;

    (void)nc;
    (void)sub;
    if (atomic_load(&cl->isolated) || decode_node(cl, msg, &h, &w) != 0)
        goto out;
    joining = (h.flags & TP__WF_JOIN) != 0;
    pthread_mutex_lock(&cl->lock);
    join_note(cl, &w, joining);
    pthread_mutex_unlock(&cl->lock);
    switch (h.kind) {
    case TP__W_PROBE:
        /* Answer every probe but our own (joining or not: see join_note);
         * a node that just joined is up once it says HELLO. */
        if (w.incarnation != cl->incarnation && natsMsg_GetReply(msg) != NULL) {
            tp__node_publish_self(cl, TP__W_HELLO, natsMsg_GetReply(msg), 0);
            publish_ids(cl, natsMsg_GetReply(msg));
        }
        break;
    case TP__W_HELLO:
        if (!joining)
            hello(cl, &w);
        break;
    case TP__W_BYE: {
        struct tp__cpeer *p = atomic_load(&cl->peers[w.id]);
        if (p != NULL && p->incarnation == w.incarnation)
            peer_down(cl, p, 2);
        break;
    }
    default:
        atomic_fetch_add(&cl->bad_frames, 1);
        break;
    }
out:
    natsMsg_Destroy(msg);
}

/* The ids a peer knows of: avoided by our pick when another is free. */
static void
ids_note(struct tp__cluster *cl, const unsigned char *p, size_t len)
{
    size_t n = len >= 2 ? (size_t)(p[0] | (p[1] << 8)) : 0;

    if (len < 2 || len != 2 + 2 * n) {
        atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    pthread_mutex_lock(&cl->lock);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = (uint32_t)(p[2 + 2 * i] | (p[3 + 2 * i] << 8));
        if (id >= 1 && id <= TP_PID_NODE_MAX)
            cl->id_used[id / 8] |= (uint8_t)(1u << (id % 8));
    }
    pthread_mutex_unlock(&cl->lock);
}

void
tp__node_join_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                  void *closure)
{
    struct tp__cluster *cl = closure;
    const unsigned char *pl;
    struct tp__wire_hdr h;
    struct tp__wire_node w;

    (void)nc;
    (void)sub;
    if (tp__wire_get_hdr(natsMsg_GetData(msg),
                         (size_t)natsMsg_GetDataLength(msg), &h, &pl) == 0 &&
        h.kind == TP__W_IDS) {
        ids_note(cl, pl, h.len);
    } else if (decode_node(cl, msg, &h, &w) == 0 && h.kind == TP__W_HELLO) {
        pthread_mutex_lock(&cl->lock);
        join_note(cl, &w, (h.flags & TP__WF_JOIN) != 0);
        pthread_mutex_unlock(&cl->lock);
        if (!(h.flags & TP__WF_JOIN) && strcmp(w.name, cl->name) != 0)
            hello(cl, &w); /* discovery: no need to wait for its beat */
    }
    natsMsg_Destroy(msg);
}

/* ---------------------------------------------------------------------- */
/* The inbox                                                              */

/* One frame of an inbox message, or of a direct link. */
void
tp__node_frame(struct tp__cluster *cl, const struct tp__wire_hdr *h,
               const unsigned char *pl, size_t n)
{
    struct tp__cpeer *p;

    if (h->node == cl->id || (p = tp__peer_get(cl, h->node)) == NULL) {
        atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    if (h->kind == TP__W_HELLO) {
        /* A joining node greets each peer on its inbox, ahead of its
         * first message there (see tp__node_greet_peers). */
        struct tp__wire_node w;
        if (tp__wire_get_node(pl, h->len, &w) == 0 && w.id == h->node)
            hello(cl, &w);
        else
            atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    if (atomic_load(&p->state) == TP__PEER_DOWN) {
        atomic_fetch_add(&cl->drops, 1); /* declared down: starts over */
        return;
    }
    atomic_fetch_add_explicit(&p->msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_in, n, memory_order_relaxed);
    if (h->kind == TP__W_PING) {
        char subj[160];
        pthread_mutex_lock(&cl->lock);
        snprintf(subj, sizeof(subj), "%s", p->subject);
        pthread_mutex_unlock(&cl->lock);
        if (subj[0] != '\0')
            publish_ping(cl, subj, TP__W_PONG, h->ref);
    } else if (h->kind == TP__W_PONG) {
        uint64_t now = tp_now_ns();
        if (h->ref != 0 && h->ref <= now)
            atomic_store(&p->rtt_ns, now - h->ref);
    } else {
        tp__remote_inbound(cl, h, pl);
    }
}

void
tp__node_inbox_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                   void *closure)
{
    struct tp__cluster *cl = closure;
    const unsigned char *buf = (const unsigned char *)natsMsg_GetData(msg);
    size_t n = (size_t)natsMsg_GetDataLength(msg), used;
    const unsigned char *pl;
    struct tp__wire_hdr h;

    (void)nc;
    (void)sub;
    while (n != 0 && !atomic_load(&cl->isolated)) {
        if (tp__wire_next(buf, n, &h, &pl, &used) != 0) {
            atomic_fetch_add(&cl->bad_frames, 1); /* the rest is lost */
            break;
        }
        tp__node_frame(cl, &h, pl, used);
        buf += used;
        n -= used;
    }
    natsMsg_Destroy(msg);
}

/* ---------------------------------------------------------------------- */
/* The cluster thread                                                     */

static struct tp__frame *publish_batch(struct tp__cluster *cl,
                                       struct tp__frame *f);

/* Drops n frames from f on (queued to p, never sent). */
static void
drop_frames(struct tp__cluster *cl, struct tp__cpeer *p, struct tp__frame *f)
{
    uint64_t n = 0;

    while (f != NULL) {
        struct tp__frame *next = f->next;
        tp__free(f);
        f = next;
        n++;
    }
    atomic_fetch_sub_explicit(&p->queued, (uint32_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->drops_out, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&cl->drops, n, memory_order_relaxed);
}

/* Frames held while p's link connects: sent (in order, ahead of newer
 * ones) once its path is decided, dropped when the session they were
 * queued in is over. False while still pending. */
static bool
held_release(struct tp__cluster *cl, struct tp__cpeer *p)
{
    struct tp__frame *f = p->held;

    if (f == NULL)
        return true;
    if (atomic_load(&p->state) != TP__PEER_UP ||
        atomic_load(&p->up_gen) != p->held_gen) {
        p->held = p->held_tail = NULL;
        drop_frames(cl, p, f);
        return true;
    }
    /* acquire: the link thread's out_fd before the path it publishes. */
    if (atomic_load_explicit(&p->link, memory_order_acquire) ==
        TP__LINK_PENDING)
        return false;
    p->held = p->held_tail = NULL;
    while (f != NULL)
        f = publish_batch(cl, f);
    return true;
}

/* Every peer's held frames (the link thread decided a path). */
static void
held_release_all(struct tp__cluster *cl)
{
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p != NULL && p->held != NULL)
            held_release(cl, p);
    }
}

/* Publishes frames f.. for one peer as one NATS message or one link write
 * (as many as fit in max_payload, at most 1024), or holds them while its
 * link connects; returns the first frame not taken. */
static struct tp__frame *
publish_batch(struct tp__cluster *cl, struct tp__frame *f)
{
    struct tp__cpeer *p = f->peer;
    size_t len = 0, n = 0;
    char subj[160];
    natsStatus s = NATS_NOT_PERMITTED;
    int path;

    if (!held_release(cl, p) ||
        (atomic_load(&p->state) == TP__PEER_UP &&
         atomic_load_explicit(&p->link, memory_order_acquire) ==
             TP__LINK_PENDING)) {
        struct tp__frame *last = f; /* hold the run (stays queued) */
        if (p->held == NULL) {
            p->held = f;
            p->held_gen = atomic_load(&p->up_gen);
        } else {
            p->held_tail->next = f;
        }
        while (last->next != NULL && last->next->peer == p)
            last = last->next;
        f = last->next;
        last->next = NULL;
        p->held_tail = last;
        return f;
    }
    /* acquire: pairs with the link thread's release of TCP. */
    path = atomic_load_explicit(&p->link, memory_order_acquire);
    while (f != NULL && f->peer == p && n < 1024 &&
           len + f->len <= cl->max_payload) {
        struct tp__frame *next = f->next;
        memcpy(cl->batch + len, f->data, f->len);
        len += f->len;
        n++;
        tp__free(f);
        f = next;
    }
    if (path == TP__LINK_TCP && atomic_load(&p->state) == TP__PEER_UP) {
        /* Takes the n frames off queued once written (see there). */
        if (tp__link_write(cl, p, cl->batch, len, (uint32_t)n) == 0)
            s = NATS_OK;
        goto counted;
    }
    atomic_fetch_sub_explicit(&p->queued, (uint32_t)n, memory_order_relaxed);
    pthread_mutex_lock(&cl->lock);
    snprintf(subj, sizeof(subj), "%s", p->subject);
    pthread_mutex_unlock(&cl->lock);
    if (atomic_load(&cl->connected) && atomic_load(&p->state) == TP__PEER_UP)
        s = natsConnection_Publish(cl->nc, subj, cl->batch, (int)len);
counted:
    if (s == NATS_OK) {
        atomic_fetch_add_explicit(&p->msgs_out, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->bytes_out, len, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&p->drops_out, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&cl->drops, n, memory_order_relaxed);
    }
    return f;
}

/* Heartbeat, pings, and the silence check. */
static void
beat(struct tp__cluster *cl)
{
    uint64_t now = tp_now_ns(), hb = (uint64_t)cl->opts.heartbeat_ms * 1000000u;
    uint64_t down = (uint64_t)cl->opts.down_after_ms * 1000000u;

    if (!atomic_load(&cl->connected) || atomic_load(&cl->isolated))
        goto check;
    tp__node_publish_self(cl, TP__W_HELLO, cl->hb_subject, 0);
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        char subj[160];
        if (p == NULL || atomic_load(&p->state) != TP__PEER_UP)
            continue;
        pthread_mutex_lock(&cl->lock);
        snprintf(subj, sizeof(subj), "%s", p->subject);
        pthread_mutex_unlock(&cl->lock);
        publish_ping(cl, subj, TP__W_PING, now);
    }
check:
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        uint64_t quiet;
        bool gone;
        if (p == NULL || atomic_load(&p->state) != TP__PEER_UP)
            continue;
        pthread_mutex_lock(&cl->lock);
        quiet = now > p->last_seen_ns ? now - p->last_seen_ns : 0;
        gone = quiet > down;
        if (quiet > hb * (p->missed_run + 1) + hb / 2) {
            p->missed_run++;
            atomic_fetch_add(&p->hb_misses, 1);
        }
        pthread_mutex_unlock(&cl->lock);
        if (gone)
            peer_down(cl, p, 1);
    }
}

static void
deadline_ts(struct timespec *ts, uint64_t at_ns)
{
    ts->tv_sec = (time_t)(at_ns / 1000000000u);
    ts->tv_nsec = (long)(at_ns % 1000000000u);
}

void *
tp__node_thread(void *arg)
{
    struct tp__cluster *cl = arg;
    uint64_t hb = (uint64_t)cl->opts.heartbeat_ms * 1000000u;
    uint64_t next = tp_now_ns() + hb;
    struct timespec ts;

    pthread_mutex_lock(&cl->lock);
    while (!cl->stopping) {
        struct tp__frame *f = cl->qhead;
        if (atomic_exchange(&cl->link_kick, false)) {
            pthread_mutex_unlock(&cl->lock);
            held_release_all(cl);
            pthread_mutex_lock(&cl->lock);
            continue;
        }
        if (tp_now_ns() >= next) { /* beats go out under load too */
            pthread_mutex_unlock(&cl->lock);
            held_release_all(cl); /* sessions that ended while held */
            beat(cl);
            next = tp_now_ns() + hb;
            pthread_mutex_lock(&cl->lock);
            continue;
        }
        if (f != NULL) { /* take the whole queue */
            cl->qhead = cl->qtail = NULL;
            pthread_mutex_unlock(&cl->lock);
            while (f != NULL)
                f = publish_batch(cl, f);
            pthread_mutex_lock(&cl->lock);
            continue;
        }
        deadline_ts(&ts, next); /* cond uses CLOCK_MONOTONIC = tp_now_ns */
        pthread_cond_timedwait(&cl->cond, &cl->lock, &ts);
    }
    pthread_mutex_unlock(&cl->lock);
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) { /* never sent */
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p != NULL && p->held != NULL) {
            drop_frames(cl, p, p->held);
            p->held = p->held_tail = NULL;
        }
    }
    return NULL;
}
