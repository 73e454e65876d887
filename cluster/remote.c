/*
 * cluster/remote.c - messages and signals to and from remote pids.
 *
 * Outbound: the core's hooks (cluster/hooks.h) turn a message or signal
 * for a remote pid into a frame on its node's queue. Inbound: a frame is
 * turned back into the message or signal the local path would have made
 * and pushed with the outside-thread context of the NATS delivery thread,
 * so a remote sender is just another producer of the receiver's mailbox.
 * One outbound FIFO per node, one publisher, one NATS connection and one
 * delivery thread per inbox keep every sender-receiver pair in order.
 *
 * Links and monitors that cross nodes are also recorded per peer, so that
 * when the peer goes down each local end gets its noconnection exit or
 * DOWN. Stale records (an actor that died while its link was in flight)
 * are harmless: the local checks drop an exit for a link that does not
 * exist and a DOWN for a monitor that is gone.
 */
#include "cluster_int.h"

#include <errno.h>
#include <string.h>

static const tp_exit_reason noconnection = {TP_EXIT_NOCONNECTION, 0,
                                            "noconnection"};
static const tp_exit_reason noproc = {TP_EXIT_NOPROC, 0, NULL};

/* ---------------------------------------------------------------------- */
/* Tracking (cl->lock held)                                               */

static void
track_link(struct tp__cpeer *p, tp_pid local, tp_pid remote)
{
    uint64_t *v = tp__u64map_get(&p->links, local);
    struct tp__u64map *set;

    if (v != NULL) {
        set = (struct tp__u64map *)(uintptr_t)*v;
    } else {
        if ((set = tp__malloc(sizeof(*set))) == NULL)
            return;
        tp__u64map_init(set);
        if (tp__u64map_put(&p->links, local, (uintptr_t)set) < 0) {
            tp__free(set);
            return;
        }
    }
    tp__u64map_put(set, remote, 1);
}

static void
untrack_link(struct tp__cpeer *p, tp_pid local, tp_pid remote)
{
    uint64_t *v = tp__u64map_get(&p->links, local);
    struct tp__u64map *set;

    if (v == NULL)
        return;
    set = (struct tp__u64map *)(uintptr_t)*v;
    tp__u64map_remove(set, remote, NULL);
    if (set->count == 0) {
        tp__u64map_remove(&p->links, local, NULL);
        tp__u64map_fini(set);
        tp__free(set);
    }
}

static void
track_mon(struct tp__cpeer *p, uint64_t ref, tp_pid watcher, tp_pid target)
{
    if (tp__u64map_put(&p->mons, ref, watcher) < 0)
        return;
    if (tp__u64map_put(&p->mon_target, ref, target) < 0)
        tp__u64map_remove(&p->mons, ref, NULL);
}

static void
untrack_mon(struct tp__cpeer *p, uint64_t ref)
{
    tp__u64map_remove(&p->mons, ref, NULL);
    tp__u64map_remove(&p->mon_target, ref, NULL);
}

static void
links_free(struct tp__u64map *links)
{
    struct tp__u64map_entry *e;
    uint32_t i;

    for (i = 0; tp__u64map_next(links, &i, &e);) {
        struct tp__u64map *set = (struct tp__u64map *)(uintptr_t)e->val;
        tp__u64map_fini(set);
        tp__free(set);
    }
    tp__u64map_fini(links);
}

void
tp__remote_peer_free(struct tp__cpeer *p)
{
    links_free(&p->links);
    tp__u64map_fini(&p->mons);
    tp__u64map_fini(&p->mon_target);
    tp__free(p);
}

/* A DOWN for watcher (local) about dead, as signal.c makes them. */
static int
local_down(struct tp__actors *A, tp_pid watcher, tp_pid dead, uint64_t ref,
           const tp_exit_reason *r)
{
    struct tp__msg *m = tp__msg_exit(TP__SIG_DOWN, TP_MSG_DOWN, dead, ref, r);

    if (m == NULL)
        return -ENOMEM;
    m->m.from = dead;
    m->m.ref = ref;
    return tp__signal(A, watcher, m);
}

void
tp__remote_peer_down(struct tp__cluster *cl, struct tp__cpeer *p)
{
    struct tp__u64map links, mons, targets;
    struct tp__u64map_entry *e, *t;
    uint32_t i, j;

    pthread_mutex_lock(&cl->lock);
    links = p->links;
    mons = p->mons;
    targets = p->mon_target;
    tp__u64map_init(&p->links);
    tp__u64map_init(&p->mons);
    tp__u64map_init(&p->mon_target);
    pthread_mutex_unlock(&cl->lock);
    for (i = 0; tp__u64map_next(&links, &i, &e);) {
        struct tp__u64map *set = (struct tp__u64map *)(uintptr_t)e->val;
        for (j = 0; tp__u64map_next(set, &j, &t);)
            tp__exit_signal(cl->A, t->key, e->key, &noconnection, true);
    }
    for (i = 0; tp__u64map_next(&mons, &i, &e);) {
        uint64_t *target = tp__u64map_get(&targets, e->key);
        local_down(cl->A, e->val, target != NULL ? *target : TP_PID_NONE,
                   e->key, &noconnection);
    }
    links_free(&links);
    tp__u64map_fini(&mons);
    tp__u64map_fini(&targets);
}

/* ---------------------------------------------------------------------- */
/* Outbound                                                               */

/* The peer for a remote pid, if it can be sent to now. */
static struct tp__cpeer *
reachable(struct tp__cluster *cl, tp_pid to)
{
    struct tp__cpeer *p =
        atomic_load_explicit(&cl->peers[tp_pid_node(to)], memory_order_acquire);

    if (p == NULL || atomic_load(&p->state) != TP__PEER_UP ||
        !atomic_load(&cl->connected))
        return NULL;
    return p;
}

static void
count_drop(struct tp__cluster *cl, tp_pid to)
{
    struct tp__cpeer *p = atomic_load(&cl->peers[tp_pid_node(to)]);

    if (p != NULL)
        atomic_fetch_add(&p->drops_out, 1);
    atomic_fetch_add(&cl->drops, 1);
}

/* A frame for h (+ payload bytes) to peer p. */
static int
send_frame(struct tp__cluster *cl, struct tp__cpeer *p, struct tp__wire_hdr *h,
           const void *a, size_t alen, const tp_exit_reason *r)
{
    size_t rlen = r != NULL ? tp__wire_reason_size(r) : 0;
    struct tp__frame *f;

    if (TP__WIRE_HDR + alen + rlen > cl->max_payload) {
        count_drop(cl, h->to);
        return -EMSGSIZE;
    }
    if ((f = tp__frame_new(alen + rlen)) == NULL)
        return -ENOMEM;
    h->node = (uint16_t)cl->id;
    h->incarnation = (uint32_t)cl->incarnation;
    h->len = (uint32_t)(alen + rlen);
    tp__wire_put_hdr(f->data, h);
    if (alen != 0)
        memcpy(f->data + TP__WIRE_HDR, a, alen);
    if (r != NULL)
        tp__wire_put_reason(f->data + TP__WIRE_HDR + alen, r);
    return tp__cluster_queue(cl, p, f);
}

static int
send_msg(struct tp__cluster *cl, tp_pid from, tp_pid to, uint64_t ref,
         uint32_t type, const void *data, size_t len)
{
    struct tp__wire_hdr h = {.kind = TP__W_MSG, .ref = ref, .type = type};
    struct tp__cpeer *p = reachable(cl, to);

    if (p == NULL) {
        count_drop(cl, to);
        return -ENOTCONN;
    }
    h.from = tp__cluster_global(cl, from);
    h.to = to;
    return send_frame(cl, p, &h, data, len, NULL);
}

int
tp__cluster_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
                 size_t len)
{
    struct tp__cluster *cl = tp__cluster_get(ctx->rt);
    int r;

    if (cl == NULL)
        return -ENOTCONN;
    if (tp_pid_node(to) == cl->id) {
        tp__cluster_put(cl);
        return tp_send(ctx, tp_pid_with_node(to, 0), type, data, len);
    }
    r = send_msg(cl, tp_self(ctx), to, 0, type, data, len);
    tp__cluster_put(cl);
    return r;
}

int
tp__cluster_send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b)
{
    struct tp__cluster *cl = tp__cluster_get(ctx->rt);
    int r;

    if (cl == NULL)
        return -ENOTCONN;
    if (tp_pid_node(to) == cl->id) {
        tp__cluster_put(cl);
        return tp_send_blob(ctx, tp_pid_with_node(to, 0), type, b);
    }
    r = send_msg(cl, tp_self(ctx), to, 0, type, tp_blob_data(b),
                 tp_blob_len(b));
    tp__cluster_put(cl);
    return r;
}

int
tp__cluster_deliver(tp_ctx *ctx, tp_pid to, struct tp__msg *m)
{
    struct tp__cluster *cl = tp__cluster_get(ctx->rt);
    int r;

    if (cl == NULL) {
        tp__dead_letter(ctx, m);
        return -ENOTCONN;
    }
    if (tp_pid_node(to) == cl->id) {
        /* <self.0.0>: our own service actor */
        to = tp_pid_with_node(to, 0) != TP_PID_NONE ? tp_pid_with_node(to, 0)
                                                    : atomic_load(&cl->service);
        tp__cluster_put(cl);
        return tp__deliver(ctx, to, m);
    }
    r = send_msg(cl, m->m.from, to, m->m.ref, m->m.type, m->m.data, m->m.len);
    tp__cluster_put(cl);
    tp__msg_free(m);
    return r;
}

int
tp__cluster_send_named(tp_ctx *ctx, const char *name, uint32_t type,
                       const void *data, size_t len)
{
    const char *at = strchr(name, '@');
    struct tp__wire_hdr h = {.kind = TP__W_NAMED, .type = type};
    size_t nlen = (size_t)(at - name);
    unsigned char *buf;
    struct tp__cluster *cl;
    struct tp__cpeer *p;
    uint32_t node;
    int r;

    if (nlen == 0 || nlen > TP_NAME_MAX || tp_msg_is_system(type) ||
        len > (size_t)INT32_MAX || (data == NULL && len != 0))
        return -EINVAL;
    if ((node = tp_cluster_node_lookup(ctx->rt, at + 1)) == 0)
        return -ENOTCONN; /* no such node up (or not in a cluster) */
    if ((cl = tp__cluster_get(ctx->rt)) == NULL)
        return -ENOTCONN;
    if (node == cl->id) { /* ourselves: the local name did not exist */
        tp__cluster_put(cl);
        TP__STAT_ADD(ctx->st.dead_letters, 1);
        return -ESRCH;
    }
    p = reachable(cl, tp_pid_with_node(1, node));
    if (p == NULL || (buf = tp__malloc(1 + nlen + len)) == NULL) {
        r = p == NULL ? -ENOTCONN : -ENOMEM;
        tp__cluster_put(cl);
        return r;
    }
    buf[0] = (unsigned char)nlen;
    memcpy(buf + 1, name, nlen);
    if (len != 0)
        memcpy(buf + 1 + nlen, data, len);
    h.from = tp__cluster_global(cl, tp_self(ctx));
    r = send_frame(cl, p, &h, buf, 1 + nlen + len, NULL);
    tp__free(buf);
    tp__cluster_put(cl);
    return r;
}

/* A link or monitor to an unreachable node: answered at once, locally. */
static int
unreachable_sig(struct tp__cluster *cl, tp_pid to, const struct tp__msg *m)
{
    if (m->sig == TP__SIG_LINK)
        tp__exit_signal(cl->A, to, m->m.from, &noconnection, true);
    else if (m->sig == TP__SIG_MONITOR)
        local_down(cl->A, m->m.from, to, m->m.ref, &noconnection);
    else
        return -ENOTCONN;
    return 0;
}

static int
signal_out(struct tp__cluster *cl, tp_pid to, struct tp__msg *m)
{
    struct tp__cpeer *p = reachable(cl, to);
    struct tp__wire_hdr h = {
        .from = tp__cluster_global(cl, m->m.from), .to = to, .ref = m->m.ref};
    tp_exit_reason r;
    tp_pid who;
    uint64_t ref;

    if (p == NULL)
        return unreachable_sig(cl, to, m);
    pthread_mutex_lock(&cl->lock);
    switch (m->sig) {
    case TP__SIG_LINK:
        track_link(p, m->m.from, to);
        h.kind = TP__W_LINK;
        break;
    case TP__SIG_UNLINK:
        untrack_link(p, m->m.from, to);
        h.kind = TP__W_UNLINK;
        break;
    case TP__SIG_MONITOR:
        track_mon(p, m->m.ref, m->m.from, to);
        h.kind = TP__W_MONITOR;
        break;
    case TP__SIG_DEMONITOR:
        untrack_mon(p, m->m.ref);
        h.kind = TP__W_DEMONITOR;
        break;
    case TP__SIG_EXIT:
    case TP__SIG_DOWN:
        if (tp__exit_payload_decode(&m->m, &who, &ref, &r) != 0)
            break;
        h.from = tp__cluster_global(cl, who);
        h.ref = ref;
        if (m->sig == TP__SIG_DOWN) {
            h.kind = TP__W_DOWN;
        } else {
            h.kind = TP__W_EXIT;
            if (m->flags & TP__MSG_LINKED) {
                h.flags |= TP__WF_LINKED;
                untrack_link(p, who, to);
            }
        }
        pthread_mutex_unlock(&cl->lock);
        return send_frame(cl, p, &h, NULL, 0, &r);
    default:
        break;
    }
    pthread_mutex_unlock(&cl->lock);
    if (h.kind == 0)
        return -ESRCH; /* info queries and calls stay local */
    return send_frame(cl, p, &h, NULL, 0, NULL);
}

int
tp__cluster_signal(struct tp__actors *A, tp_pid to, struct tp__msg *m)
{
    struct tp__cluster *cl = tp__cluster_get(A->rt);
    int r;

    if (cl == NULL) {
        r = -ENOTCONN;
        if (m->sig == TP__SIG_LINK)
            r = tp__exit_signal(A, to, m->m.from, &noconnection, true);
        else if (m->sig == TP__SIG_MONITOR)
            r = local_down(A, m->m.from, to, m->m.ref, &noconnection);
        tp__msg_free(m);
        return r;
    }
    if (tp_pid_node(to) == cl->id) {
        tp__cluster_put(cl);
        return tp__signal(A, tp_pid_with_node(to, 0), m);
    }
    r = signal_out(cl, to, m);
    tp__cluster_put(cl);
    tp__msg_free(m);
    return r;
}

/* ---------------------------------------------------------------------- */
/* Inbound (a NATS delivery thread)                                       */

static void
answer(struct tp__cluster *cl, struct tp__cpeer *p, uint8_t kind,
       const struct tp__wire_hdr *req, uint32_t type, uint8_t flags,
       const tp_exit_reason *r)
{
    struct tp__wire_hdr h = {.kind = kind,
                             .flags = flags,
                             .from = req->to,
                             .to = req->from,
                             .ref = req->ref,
                             .type = type};

    send_frame(cl, p, &h, NULL, 0, r);
}

static void
in_msg(struct tp__cluster *cl, tp_ctx *ctx, struct tp__cpeer *p,
       const struct tp__wire_hdr *h, tp_pid from, tp_pid to,
       const unsigned char *pl)
{
    struct tp__msg *m = tp__msg_copy(h->type, pl, h->len);

    if (m == NULL)
        return;
    m->m.from = from;
    m->m.ref = h->ref;
    if (tp_msg_is_system(h->type))
        m->flags |= TP__MSG_FORCED; /* replies bypass bounds, as locally */
    if (tp__deliver(ctx, to, m) == -ESRCH && h->ref != 0 &&
        !tp_msg_is_system(h->type))
        answer(cl, p, TP__W_MSG, h, TP_MSG_NOPROC, 0, NULL);
}

static struct tp__msg *
sig_new(uint8_t sig, tp_pid from, uint64_t ref)
{
    struct tp__msg *m = tp__msg_alloc(0);

    if (m != NULL) {
        m->sig = sig;
        m->m.from = from;
        m->m.ref = ref;
    }
    return m;
}

/* EXIT / DOWN: reason text copied so it is NUL-terminated. */
static void
in_exit(struct tp__cluster *cl, struct tp__cpeer *p,
        const struct tp__wire_hdr *h, tp_pid from, tp_pid to,
        const unsigned char *pl)
{
    char text[1025];
    tp_exit_reason r;
    struct tp__msg *m;
    size_t tl;
    bool linked = (h->flags & TP__WF_LINKED) != 0;

    if (tp__wire_get_reason(pl, h->len, &r, &tl) != 0) {
        atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    if (r.text != NULL) {
        memcpy(text, r.text, tl);
        text[tl] = '\0';
        r.text = text;
    }
    pthread_mutex_lock(&cl->lock);
    if (h->kind == TP__W_DOWN)
        untrack_mon(p, h->ref);
    else if (linked)
        untrack_link(p, to, from);
    pthread_mutex_unlock(&cl->lock);
    if (h->kind == TP__W_DOWN) {
        local_down(cl->A, to, from, h->ref, &r);
        return;
    }
    m = tp__msg_exit(TP__SIG_EXIT, TP_MSG_EXIT, from, 0, &r);
    if (m == NULL)
        return;
    m->m.from = from;
    if (linked)
        m->flags |= TP__MSG_LINKED;
    tp__signal(cl->A, to, m);
}

static void
in_sig(struct tp__cluster *cl, struct tp__cpeer *p,
       const struct tp__wire_hdr *h, tp_pid from, tp_pid to)
{
    static const uint8_t sig_of[TP__W_KIND_MAX] = {
        [TP__W_LINK] = TP__SIG_LINK,
        [TP__W_UNLINK] = TP__SIG_UNLINK,
        [TP__W_MONITOR] = TP__SIG_MONITOR,
        [TP__W_DEMONITOR] = TP__SIG_DEMONITOR};
    struct tp__msg *m = sig_new(sig_of[h->kind], from, h->ref);
    int r;

    if (m == NULL)
        return;
    if (h->kind == TP__W_LINK || h->kind == TP__W_UNLINK) {
        pthread_mutex_lock(&cl->lock);
        if (h->kind == TP__W_LINK)
            track_link(p, to, from);
        else
            untrack_link(p, to, from);
        pthread_mutex_unlock(&cl->lock);
    }
    r = tp__signal(cl->A, to, m);
    if (r != -ESRCH)
        return;
    /* The target is gone: the remote end hears noproc, as locally. */
    if (h->kind == TP__W_LINK) {
        pthread_mutex_lock(&cl->lock);
        untrack_link(p, to, from);
        pthread_mutex_unlock(&cl->lock);
        answer(cl, p, TP__W_EXIT, h, 0, TP__WF_LINKED, &noproc);
    } else if (h->kind == TP__W_MONITOR) {
        answer(cl, p, TP__W_DOWN, h, 0, 0, &noproc);
    }
}

/* A message for a registered name (the sender gets no error back when
 * there is none: counted as a dead letter, as Erlang's {Name, Node} ! M). */
static void
in_named(struct tp__cluster *cl, const struct tp__wire_hdr *h, tp_pid from,
         const unsigned char *pl)
{
    char name[TP_NAME_MAX + 1];
    size_t nlen = h->len != 0 ? pl[0] : 0;
    struct tp__msg *m;
    tp_ctx *ctx;
    tp_pid to;

    if (nlen == 0 || nlen > TP_NAME_MAX || 1 + nlen > h->len ||
        tp_msg_is_system(h->type)) {
        atomic_fetch_add(&cl->bad_frames, 1);
        return;
    }
    memcpy(name, pl + 1, nlen);
    name[nlen] = '\0';
    ctx = tp__xctx_acquire(cl->rt);
    to = tp_whereis(cl->rt, name);
    m = tp__msg_copy(h->type, pl + 1 + nlen, h->len - 1 - nlen);
    if (m != NULL) {
        m->m.from = from;
        if (to == TP_PID_NONE)
            tp__dead_letter(ctx, m);
        else
            tp__deliver(ctx, to, m);
    }
    tp__xctx_release(ctx);
}

void
tp__remote_inbound(struct tp__cluster *cl, const struct tp__wire_hdr *h,
                   const unsigned char *payload)
{
    struct tp__cpeer *p = tp__peer_get(cl, h->node);
    tp_pid from = tp__cluster_local(cl, h->from);
    tp_pid to = tp__cluster_local(cl, h->to);
    tp_ctx *ctx;

    if (p == NULL)
        return;
    if (h->kind == TP__W_MSG && to == TP_PID_NONE &&
        tp_pid_node(h->to) == cl->id)
        to = atomic_load(&cl->service); /* <self.0.0> */
    if (h->kind == TP__W_NAMED &&
        (h->from == TP_PID_NONE || tp_pid_node(h->from) == h->node)) {
        in_named(cl, h, from, payload);
        return;
    }
    if (to == TP_PID_NONE || tp_pid_is_remote(to) ||
        (h->from != TP_PID_NONE && tp_pid_node(h->from) != h->node)) {
        atomic_fetch_add(&cl->bad_frames, 1); /* not ours, or forged */
        return;
    }
    switch (h->kind) {
    case TP__W_MSG:
        ctx = tp__xctx_acquire(cl->rt);
        in_msg(cl, ctx, p, h, from, to, payload);
        tp__xctx_release(ctx);
        break;
    case TP__W_LINK:
    case TP__W_UNLINK:
    case TP__W_MONITOR:
    case TP__W_DEMONITOR:
        in_sig(cl, p, h, from, to);
        break;
    case TP__W_EXIT:
    case TP__W_DOWN:
        in_exit(cl, p, h, from, to, payload);
        break;
    default:
        atomic_fetch_add(&cl->bad_frames, 1);
        break;
    }
}
