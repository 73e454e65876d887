/*
 * samples/fleet/fleet_names.c - where a connection's name lives and how a
 * name is reached.
 *
 * A name is node-local: the runtime's registry (released when the
 * connection's actor ends), so taking one at connect time costs no
 * network round trip, whatever the fleet's size. A SEND for a name held
 * on this node goes straight to its holder. In a cluster (--cluster), a
 * SEND for a name not held here goes to this node's directory actor,
 * which asks the directory of every other node ("fleet.dir@<node>",
 * tp_send_named()); the one that holds the name delivers it. So a message
 * costs one NATS frame per other node, and a connect none (docs/FLEET.md,
 * "Cluster"). Names are unique per node; a client re-homed to another
 * node after its node died takes its name there.
 *
 * The directories also watch each other: each monitors the others', whose
 * pids come in FLEET_MSG_PEER messages: a directory asks every node it
 * sees up (and answers every ask), and asks again every half second a
 * node it knows up but does not watch yet (an ask sent before the other
 * node knew this one, or before its directory existed, is lost: NATS
 * delivers at most once). So a node that dies shows up as a DOWN
 * noconnection on every other node (counted in the STAT lines: noconn=).
 */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
fleet_name_register(tp_ctx *ctx, struct fleet_node *node, const char *name)
{
    if (!node->register_names)
        return 0;
    return tp_register(tp_ctx_runtime(ctx), name, tp_self(ctx));
}

int
fleet_name_send(tp_ctx *ctx, struct fleet_node *node, const char *name,
                const struct fleet_deliver *d)
{
    tp_pid pid = tp_whereis(node->rt, name);
    struct fleet_find f;

    if (pid != TP_PID_NONE)
        return tp_send(ctx, pid, FLEET_MSG_DELIVER, d, sizeof(*d));
    if (!node->cluster || atomic_load(&node->peers_up) == 0)
        return -ENOENT;
    memset(&f, 0, sizeof(f));
    f.d = *d;
    snprintf(f.name, sizeof(f.name), "%s", name);
    if (tp_send(ctx, node->dir, FLEET_MSG_LOOKUP, &f, sizeof(f)) != 0)
        return -ENOENT;
    atomic_fetch_add_explicit(&node->forwarded, 1, memory_order_relaxed);
    return 1;
}

/* ---- the directory (clustered nodes) ------------------------------------ */

#define DIR_PEERS 64 /* nodes a directory keeps track of */

struct dir_peer {
    char node[TP_NODE_NAME_MAX + 1];
    tp_pid dir;   /* its directory, once it said hello */
    uint64_t mon; /* our monitor on it */
    bool up;
};

struct dir {
    struct fleet_node *node;
    struct dir_peer peer[DIR_PEERS];
};

/* Payload of FLEET_MSG_PEER. */
struct dir_hello {
    tp_pid pid;      /* the sender's directory, cluster-wide form */
    uint32_t answer; /* 1: an answer to an ask (not answered again) */
};

#define DIR_TICK    0x464c0005u /* the directory's own timer */
#define DIR_TICK_MS 500

static struct dir_peer *
peer_of(struct dir *d, const char *node, bool add)
{
    struct dir_peer *free_slot = NULL;

    for (int i = 0; i < DIR_PEERS; i++) {
        if (d->peer[i].node[0] == '\0') {
            if (free_slot == NULL)
                free_slot = &d->peer[i];
        } else if (strcmp(d->peer[i].node, node) == 0) {
            return &d->peer[i];
        }
    }
    if (!add || free_slot == NULL)
        return NULL;
    snprintf(free_slot->node, sizeof(free_slot->node), "%s", node);
    return free_slot;
}

static void
count_up(struct dir *d)
{
    uint64_t n = 0;

    for (int i = 0; i < DIR_PEERS; i++)
        n += d->peer[i].up;
    atomic_store(&d->node->peers_up, n);
}

/* Says hello to a peer's directory: it learns our pid and monitors us
 * (and answers with its own, unless this is an answer). */
static void
hello(tp_ctx *ctx, const char *node, bool answer)
{
    char to[TP_NAME_MAX + TP_NODE_NAME_MAX + 2];
    struct dir_hello h = {tp_cluster_pid(tp_ctx_runtime(ctx), tp_self(ctx)),
                          answer};

    snprintf(to, sizeof(to), "%s@%s", FLEET_DIR_NAME, node);
    tp_send_named(ctx, to, FLEET_MSG_PEER, &h, sizeof(h));
}

static void
on_node(tp_ctx *ctx, struct dir *d, const tp_msg *m, bool up)
{
    const tp_node_event *ev = m->data;
    struct dir_peer *p;

    if (m->len != sizeof(*ev) || (p = peer_of(d, ev->name, up)) == NULL)
        return;
    p->up = up;
    count_up(d);
    if (up)
        hello(ctx, ev->name, false);
}

/* Asks again the nodes up that we do not watch yet. */
static void
on_tick(tp_ctx *ctx, struct dir *d)
{
    for (int i = 0; i < DIR_PEERS; i++)
        if (d->peer[i].up && d->peer[i].dir == TP_PID_NONE)
            hello(ctx, d->peer[i].node, false);
}

/* A peer's directory said hello: watch it (its death, or its node's, is
 * a DOWN here). */
static void
on_peer(tp_ctx *ctx, struct dir *d, const tp_msg *m)
{
    char node[TP_NODE_NAME_MAX + 1];
    struct dir_peer *p;
    struct dir_hello h;

    if (m->len != sizeof(h))
        return;
    memcpy(&h, m->data, sizeof(h));
    if (tp_cluster_node_name(tp_ctx_runtime(ctx), tp_pid_node(h.pid), node,
                             sizeof(node)) != 0 ||
        (p = peer_of(d, node, true)) == NULL)
        return;
    if (!h.answer)
        hello(ctx, node, true);
    if (p->dir == h.pid)
        return;
    if (p->dir != TP_PID_NONE)
        tp_demonitor(ctx, p->mon, TP_DEMONITOR_FLUSH);
    p->dir = h.pid;
    tp_monitor(ctx, h.pid, &p->mon);
}

static void
on_down(tp_ctx *ctx, struct dir *d, const tp_msg *m)
{
    tp_exit_reason why;
    tp_pid pid;
    uint64_t ref;

    (void)ctx;
    if (tp_msg_down(m, &pid, &ref, &why) != 0)
        return;
    for (int i = 0; i < DIR_PEERS; i++) {
        if (d->peer[i].dir != pid || d->peer[i].mon != ref)
            continue;
        d->peer[i].dir = TP_PID_NONE;
        if (why.kind == TP_EXIT_NOCONNECTION)
            atomic_fetch_add_explicit(&d->node->noconn, 1,
                                      memory_order_relaxed);
    }
}

/* A name not held on our node: ask every other node that is up. */
static void
on_lookup(tp_ctx *ctx, struct dir *d, const tp_msg *m)
{
    char to[TP_NAME_MAX + TP_NODE_NAME_MAX + 2];

    if (m->len != sizeof(struct fleet_find))
        return;
    for (int i = 0; i < DIR_PEERS; i++) {
        if (!d->peer[i].up)
            continue;
        snprintf(to, sizeof(to), "%s@%s", FLEET_DIR_NAME, d->peer[i].node);
        tp_send_named(ctx, to, FLEET_MSG_FIND, m->data, m->len);
    }
}

/* Another node asks: deliver if the name is held here (else nothing). */
static void
on_find(tp_ctx *ctx, struct dir *d, const tp_msg *m)
{
    struct fleet_find f;
    tp_pid pid;

    if (m->len != sizeof(f))
        return;
    memcpy(&f, m->data, sizeof(f));
    f.name[FLEET_NAME_MAX] = '\0';
    if ((pid = tp_whereis(d->node->rt, f.name)) != TP_PID_NONE)
        tp_send(ctx, pid, FLEET_MSG_DELIVER, &f.d, sizeof(f.d));
}

static void
dir_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct dir *d = state;

    switch (m->type) {
    case TP_MSG_NODE_UP:
        on_node(ctx, d, m, true);
        break;
    case TP_MSG_NODE_DOWN:
        on_node(ctx, d, m, false);
        break;
    case FLEET_MSG_PEER:
        on_peer(ctx, d, m);
        break;
    case TP_MSG_DOWN:
        on_down(ctx, d, m);
        break;
    case FLEET_MSG_LOOKUP:
        on_lookup(ctx, d, m);
        break;
    case FLEET_MSG_FIND:
        on_find(ctx, d, m);
        break;
    case DIR_TICK:
        on_tick(ctx, d);
        break;
    default:
        break;
    }
}

static int
dir_init(tp_ctx *ctx, void *state, void *arg)
{
    static tp_cluster_peer_stats ps[DIR_PEERS]; /* main's thread only */
    struct dir *d = state;
    int n, err;

    d->node = arg;
    /* Events from now on; the nodes up already are in the stats (a node
     * in both is seen up twice: harmless). */
    if ((err = tp_monitor_node(ctx, true)) != 0)
        return err;
    n = tp_cluster_stats(tp_ctx_runtime(ctx), NULL, ps, DIR_PEERS);
    for (int i = 0; i < n && i < DIR_PEERS; i++) {
        struct dir_peer *p = ps[i].up ? peer_of(d, ps[i].name, true) : NULL;

        if (p != NULL) {
            p->up = true;
            hello(ctx, ps[i].name, false);
        }
    }
    count_up(d);
    return tp_send_interval(ctx, DIR_TICK_MS, tp_self(ctx), DIR_TICK, NULL, 0,
                            NULL);
}

const tp_behaviour fleet_dir_behaviour = {
    .name = "fleet.dir",
    .state_size = sizeof(struct dir),
    .init = dir_init,
    .handle = dir_handle,
};
