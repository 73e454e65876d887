/*
 * console/cmd_cluster.c - `nodes`, `names` and the cluster's families in
 * /metrics: this node, its NATS connection and every peer node it knows
 * (tp_cluster_stats(), include/troupe/cluster.h), the cluster-wide names
 * this node's actors hold and the name conflicts it resolved. A runtime
 * in no cluster says so in `nodes` / `names` and adds nothing to /metrics.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/cluster.h>
#include <troupe/pack.h>
#include <troupe/request.h>

#define PEERS_MAX 256u /* shown / exported; the count says how many exist */

/* The snapshot: *n peers filled (at most PEERS_MAX), returns how many the
 * node knows, or a negative errno (-ENOTCONN: in no cluster). */
static int
snapshot(tp_runtime *rt, tp_cluster_summary *sum, tp_cluster_peer_stats **out,
         unsigned *n)
{
    tp_cluster_peer_stats *p = tp__calloc(PEERS_MAX, sizeof(*p));
    int r;

    *out = NULL;
    *n = 0;
    if (p == NULL)
        return -ENOMEM;
    r = tp_cluster_stats(rt, sum, p, PEERS_MAX);
    if (r < 0) {
        tp__free(p);
        return r;
    }
    *out = p;
    *n = (unsigned)r < PEERS_MAX ? (unsigned)r : PEERS_MAX;
    return r;
}

/* The start of a cluster command's answer, given the stats call's result
 * r: an error for a failure, else the object with "cluster" (whether this
 * node is in one). Returns 1 to go on, or what the command returns now:
 * not being in a cluster is an answer, not an error (the dashboard asks). */
static int
reply_begin(struct tp__exec *x, struct tp__em *e, int r)
{
    if (r < 0 && r != -ENOTCONN && r != -ENOTSUP)
        return tp__exec_fail(x, r, "cluster: %s", tp_strerror(r));
    tp__em_init(e, &x->out, x->json);
    tp__em_obj_begin(e, NULL);
    tp__em_bool(e, "cluster", r >= 0);
    if (r < 0) {
        tp__em_note(e, "this node is in no cluster");
        tp__em_obj_end(e);
        return 0;
    }
    return 1;
}

int
tp__cmd_nodes(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_cluster_summary sum = {0};
    tp_cluster_peer_stats *p;
    struct tp__em e;
    unsigned n;
    int r, go;

    (void)argc;
    (void)argv;
    r = snapshot(tp_ctx_runtime(ctx), &sum, &p, &n);
    if ((go = reply_begin(x, &e, r)) != 1)
        return go;
    tp__em_str(&e, "node", sum.name);
    tp__em_u64(&e, "id", sum.node);
    tp__em_bool(&e, "connected", sum.connected);
    tp__em_u64(&e, "peers_up", sum.peers_up);
    tp__em_u64(&e, "disconnects", sum.disconnects);
    tp__em_u64(&e, "reconnects", sum.reconnects);
    tp__em_u64(&e, "slow_consumer", sum.slow_consumer);
    tp__em_u64(&e, "bad_frames", sum.bad_frames);
    tp__em_u64(&e, "drops", sum.drops);
    tp__em_bytes(&e, "max_payload", sum.max_payload);
    tp__em_u64(&e, "global_names", sum.global_names);
    tp__em_u64(&e, "name_conflicts", sum.name_conflicts);
    tp__em_arr_begin(&e, "peers");
    for (unsigned i = 0; i < n; i++) {
        tp__em_obj_begin(&e, NULL);
        tp__em_str(&e, "name", p[i].name);
        tp__em_u64(&e, "id", p[i].node);
        tp__em_str(&e, "state", p[i].up ? "up" : "down");
        tp__em_str(&e, "link",
                   p[i].link == TP_CLUSTER_LINK_TCP          ? "tcp"
                   : p[i].link == TP_CLUSTER_LINK_CONNECTING ? "connecting"
                                                             : "nats");
        tp__em_dur(&e, "rtt", p[i].rtt_ns);
        tp__em_u64(&e, "msgs_out", p[i].msgs_out);
        tp__em_u64(&e, "msgs_in", p[i].msgs_in);
        tp__em_bytes(&e, "bytes_out", p[i].bytes_out);
        tp__em_bytes(&e, "bytes_in", p[i].bytes_in);
        tp__em_u64(&e, "queued", p[i].queued);
        tp__em_u64(&e, "drops", p[i].drops_out);
        tp__em_u64(&e, "hb_misses", p[i].hb_misses);
        tp__em_u64(&e, "downs", p[i].downs);
        tp__em_obj_end(&e);
    }
    tp__em_arr_end(&e);
    if ((unsigned)r > n)
        tp__em_note(&e, "(%d peers, %u shown)", r, n);
    tp__em_obj_end(&e);
    tp__free(p);
    return 0;
}

/* ---- tree @NODE ---------------------------------------------------------*/

#define RTREE_ASK_MS 5000u /* the far node gives each supervisor 2 s */
#define RTREE_NODES  4000u /* as many as the far node sends at most */
#define RTREE_DEPTH  32

struct rtree_op {
    struct tp__op op;
    uint64_t ref;
    char node[TP_NODE_NAME_MAX + 1];
};

/* The member called key of map v, or NULL. */
static const tp_value *
map_get(const tp_value *v, const char *key)
{
    size_t n = strlen(key);

    for (uint32_t i = 0; v->type == TP_VALUE_MAP && i < v->via.map.size; i++) {
        const tp_value *k = &v->via.map.ptr[i].key;
        if (k->type == TP_VALUE_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &v->via.map.ptr[i].val;
    }
    return NULL;
}

static bool
get_str(const tp_value *v, char *out, size_t cap)
{
    if (v->type != TP_VALUE_STR)
        return false;
    snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    return true;
}

static bool
get_uint(const tp_value *v, uint64_t max, uint64_t *out)
{
    if (v->type != TP_VALUE_UINT || v->via.u64 > max)
        return false;
    *out = v->via.u64;
    return true;
}

/* One entry of "nodes" into nd (behaviour text into beh[64]). */
static bool
get_entry(const tp_value *v, struct tp__tree_node *nd, char *beh)
{
    const tp_value *f = v->via.array.ptr;
    uint64_t pid, type, restart, restarts, first, n, total;

    if (v->type != TP_VALUE_ARRAY || v->via.array.size < 12 ||
        !get_str(&f[0], nd->ci.id, sizeof(nd->ci.id)) ||
        !get_uint(&f[1], UINT64_MAX, &pid) || !get_str(&f[2], beh, 64) ||
        !get_uint(&f[3], 1, &type) ||
        !get_uint(&f[4], TP_TEMPORARY, &restart) ||
        !get_uint(&f[5], UINT32_MAX, &restarts) || f[6].type != TP_VALUE_BOOL ||
        f[7].type != TP_VALUE_BOOL || f[8].type != TP_VALUE_BOOL ||
        !get_uint(&f[9], UINT32_MAX, &first) ||
        !get_uint(&f[10], UINT32_MAX, &n) ||
        !get_uint(&f[11], UINT32_MAX, &total) || total < n)
        return false;
    nd->ci.pid = pid;
    nd->ci.behaviour = beh;
    nd->ci.type = type == 1 ? TP_SUPERVISOR : TP_WORKER;
    nd->ci.restart = (tp_restart)restart;
    nd->ci.restarts = (uint32_t)restarts;
    nd->ci.running = f[6].via.boolean;
    nd->ci.restarting = f[7].via.boolean;
    nd->failed = !f[8].via.boolean;
    nd->first = (uint32_t)first;
    nd->n = (uint32_t)n;
    nd->total = (uint32_t)total;
    return true;
}

/* Decodes the far node's answer (it is checked like any peer input: each
 * block after its supervisor, inside the array, claimed once, at most
 * RTREE_DEPTH deep) and renders it like the local tree. */
static int
rtree_render(tp_ctx *ctx, struct tp__exec *x, struct rtree_op *o,
             const tp_msg *m)
{
    const tp_value *err, *arr;
    struct tp__tree_node *nodes;
    char(*beh)[64], text[200];
    bool *owned;
    uint32_t count;
    tp_value v;

    if (tp_unpack(ctx, m, &v) != 0 || v.type != TP_VALUE_MAP)
        return tp__exec_fail(x, -EBADMSG, "node %s: malformed tree", o->node);
    if ((err = map_get(&v, "error")) != NULL) {
        if (!get_str(err, text, sizeof(text)))
            snprintf(text, sizeof(text), "?");
        return tp__exec_fail(x, -EIO, "node %s: %s", o->node, text);
    }
    arr = map_get(&v, "nodes");
    if (arr == NULL || arr->type != TP_VALUE_ARRAY ||
        arr->via.array.size == 0 || arr->via.array.size > RTREE_NODES)
        return tp__exec_fail(x, -EBADMSG, "node %s: malformed tree", o->node);
    count = arr->via.array.size;
    nodes = tp__calloc(count, sizeof(*nodes));
    beh = tp__calloc(count, sizeof(*beh));
    owned = tp__calloc(count, sizeof(*owned));
    if (nodes == NULL || beh == NULL || owned == NULL) {
        tp__free(nodes);
        tp__free(beh);
        tp__free(owned);
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < count; i++)
        if (!get_entry(&arr->via.array.ptr[i], &nodes[i], beh[i]))
            goto bad;
    for (uint32_t i = 0; i < count; i++) {
        const struct tp__tree_node *nd = &nodes[i];
        if (nd->n == 0)
            continue;
        if (nd->first <= i || nd->first > count || nd->n > count - nd->first ||
            nd->depth >= RTREE_DEPTH)
            goto bad;
        for (uint32_t k = nd->first; k < nd->first + nd->n; k++) {
            if (owned[k])
                goto bad;
            owned[k] = true;
            nodes[k].depth = nd->depth + 1;
        }
    }
    if (!x->json)
        tp__cbuf_printf(&x->out, "node %s\n", o->node);
    tp__tree_render(x, nodes);
    tp__free(nodes);
    tp__free(beh);
    tp__free(owned);
    return 0;
bad:
    tp__free(nodes);
    tp__free(beh);
    tp__free(owned);
    return tp__exec_fail(x, -EBADMSG, "node %s: malformed tree", o->node);
}

static bool
rtree_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct rtree_op *o = (struct rtree_op *)x->op;
    int rc;

    if (o->ref == 0 || m->ref != o->ref)
        return false;
    o->ref = 0;
    if (m->type == TP_MSG_REPLY)
        rc = rtree_render(ctx, x, o, m);
    else if (m->type == TP_MSG_TIMEOUT)
        rc = tp__exec_fail(x, -ETIMEDOUT, "node %s did not answer", o->node);
    else
        rc = tp__exec_fail(x, -ESRCH, "node %s has no service actor", o->node);
    tp__exec_finish(ctx, x, rc);
    return true;
}

static void
rtree_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct rtree_op *o = (struct rtree_op *)x->op;

    if (o->ref != 0)
        tp_request_forget(ctx, o->ref);
    tp__free(o);
}

int
tp__cmd_tree_node(tp_ctx *ctx, struct tp__exec *x, const char *arg,
                  bool *handled)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    struct rtree_op *o;
    uint32_t node;
    int err;

    *handled = true;
    if (arg[0] != '@' || arg[1] == '\0')
        return tp__exec_fail(x, -EINVAL, "usage: tree [@NODE]");
    if (tp_cluster_node_id(rt) == 0)
        return tp__exec_fail(x, -ENOTCONN, "this node is in no cluster");
    if ((node = tp_cluster_node_lookup(rt, arg + 1)) == 0)
        return tp__exec_fail(x, -ENOENT, "no node %.63s up in the cluster",
                             arg + 1);
    if (node == tp_cluster_node_id(rt)) {
        *handled = false; /* ourselves: the local tree */
        return 0;
    }
    if ((o = tp__calloc(1, sizeof(*o))) == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    snprintf(o->node, sizeof(o->node), "%s", arg + 1);
    o->op.msg = rtree_msg;
    o->op.free = rtree_free;
    if ((err = tp__exec_begin(ctx, x, &o->op, 2 * RTREE_ASK_MS)) < 0) {
        tp__free(o);
        return err;
    }
    err = tp_request(ctx, tp_cluster_service_pid(node), TP_CLUSTER_TREE, NULL,
                     0, RTREE_ASK_MS, &o->ref);
    if (err != 0)
        return tp__exec_fail(x, err, "cannot ask node %s: %s", o->node,
                             tp_strerror(err));
    return 1;
}

/* ---- names ---------------------------------------------------------------*/

#define NAMES_SHOW 1000u /* names listed by `names` */

int
tp__cmd_names(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    tp_name_conflict recent[16];
    tp_cluster_summary sum = {0};
    tp_global_name *held;
    struct tp__em e;
    int r, nc, go;
    unsigned n;

    (void)argc;
    (void)argv;
    r = tp_cluster_stats(rt, &sum, NULL, 0);
    if ((go = reply_begin(x, &e, r)) != 1)
        return go;
    if ((held = tp__calloc(NAMES_SHOW, sizeof(*held))) == NULL) {
        tp__em_discard(&e);
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    }
    r = tp_cluster_names(rt, held, NAMES_SHOW);
    nc = tp_cluster_name_conflicts(rt, recent, 16);
    n = r < 0 ? 0 : (unsigned)r < NAMES_SHOW ? (unsigned)r : NAMES_SHOW;
    tp__em_str(&e, "node", sum.name);
    tp__em_u64(&e, "held", r < 0 ? 0 : (uint64_t)r);
    tp__em_u64(&e, "conflicts", sum.name_conflicts);
    tp__em_arr_begin(&e, "names");
    for (unsigned i = 0; i < n; i++) {
        tp__em_obj_begin(&e, NULL);
        tp__em_str(&e, "name", held[i].name);
        tp__em_pid(&e, "pid", held[i].pid);
        tp__em_obj_end(&e);
    }
    tp__em_arr_end(&e);
    if ((unsigned)r > n)
        tp__em_note(&e, "(%d names, %u shown)", r, n);
    /* The last conflicts, newest first: which of our actors lost which
     * name to whom (the rule: the bucket's owner keeps it). */
    tp__em_arr_begin(&e, "lost");
    for (int i = 0; i < nc && i < 16; i++) {
        tp__em_obj_begin(&e, NULL);
        tp__em_str(&e, "name", recent[i].name);
        tp__em_pid(&e, "loser", recent[i].loser);
        tp__em_pid(&e, "winner", recent[i].winner);
        tp__em_dur(&e, "ago",
                   tp_now_ns() > recent[i].at_ns ? tp_now_ns() - recent[i].at_ns
                                                 : 0);
        tp__em_obj_end(&e);
    }
    tp__em_arr_end(&e);
    tp__em_obj_end(&e);
    tp__free(held);
    return 0;
}

static void
peer_family(struct tp__cbuf *b, const tp_cluster_peer_stats *p, unsigned n,
            const char *name, const char *type, const char *help,
            double (*get)(const tp_cluster_peer_stats *))
{
    char lab[TP_NODE_NAME_MAX + 32];

    tp__prom_family(b, name, type, help);
    for (unsigned i = 0; i < n; i++) {
        /* Node names are [A-Za-z0-9_@-] (cluster.h): no escaping needed. */
        snprintf(lab, sizeof(lab), "peer=\"%s\"", p[i].name);
        tp__prom_sample(b, name, lab, get(&p[i]));
    }
}

static double
g_up(const tp_cluster_peer_stats *p)
{
    return p->up ? 1 : 0;
}
static double
g_msgs_out(const tp_cluster_peer_stats *p)
{
    return (double)p->msgs_out;
}
static double
g_msgs_in(const tp_cluster_peer_stats *p)
{
    return (double)p->msgs_in;
}
static double
g_bytes_out(const tp_cluster_peer_stats *p)
{
    return (double)p->bytes_out;
}
static double
g_bytes_in(const tp_cluster_peer_stats *p)
{
    return (double)p->bytes_in;
}
static double
g_rtt(const tp_cluster_peer_stats *p)
{
    return (double)p->rtt_ns / 1e9;
}
static double
g_misses(const tp_cluster_peer_stats *p)
{
    return (double)p->hb_misses;
}
static double
g_drops(const tp_cluster_peer_stats *p)
{
    return (double)p->drops_out;
}
static double
g_link_tcp(const tp_cluster_peer_stats *p)
{
    return p->up && p->link == TP_CLUSTER_LINK_TCP ? 1 : 0;
}

static double
g_queued(const tp_cluster_peer_stats *p)
{
    return (double)p->queued;
}

void
tp__cluster_metrics(struct tp__cbuf *b, tp_runtime *rt)
{
    tp_cluster_summary sum = {0};
    tp_cluster_peer_stats *p;
    unsigned n;

    if (snapshot(rt, &sum, &p, &n) < 0)
        return; /* in no cluster: no families */
    tp__prom_one(b, "troupe_cluster_connected", "gauge",
                 "1 while connected to NATS.", sum.connected ? 1 : 0);
    tp__prom_one(b, "troupe_cluster_peers_up", "gauge", "Peer nodes up.",
                 sum.peers_up);
    tp__prom_one(b, "troupe_cluster_reconnects_total", "counter",
                 "NATS reconnections.", (double)sum.reconnects);
    tp__prom_one(b, "troupe_cluster_slow_consumer_total", "counter",
                 "NATS slow-consumer events.", (double)sum.slow_consumer);
    tp__prom_one(b, "troupe_cluster_bad_frames_total", "counter",
                 "Cluster frames dropped as malformed.",
                 (double)sum.bad_frames);
    tp__prom_one(b, "troupe_cluster_global_names", "gauge",
                 "Cluster-wide names held by this node's actors.",
                 sum.global_names);
    tp__prom_one(b, "troupe_cluster_name_conflicts_total", "counter",
                 "Cluster-wide names this node's actors lost to a conflict "
                 "after a partition.",
                 (double)sum.name_conflicts);
    peer_family(b, p, n, "troupe_cluster_peer_up", "gauge",
                "1 while the peer node is up.", g_up);
    peer_family(b, p, n, "troupe_cluster_peer_messages_sent_total", "counter",
                "Frames published to the peer.", g_msgs_out);
    peer_family(b, p, n, "troupe_cluster_peer_messages_received_total",
                "counter", "Frames received from the peer.", g_msgs_in);
    peer_family(b, p, n, "troupe_cluster_peer_bytes_sent_total", "counter",
                "Bytes published to the peer.", g_bytes_out);
    peer_family(b, p, n, "troupe_cluster_peer_bytes_received_total", "counter",
                "Bytes received from the peer.", g_bytes_in);
    peer_family(b, p, n, "troupe_cluster_peer_rtt_seconds", "gauge",
                "Last heartbeat round trip.", g_rtt);
    peer_family(b, p, n, "troupe_cluster_peer_heartbeat_misses_total",
                "counter", "Heartbeat periods missed.", g_misses);
    peer_family(b, p, n, "troupe_cluster_peer_drops_total", "counter",
                "Sends to the peer refused or dropped.", g_drops);
    peer_family(b, p, n, "troupe_cluster_peer_link_tcp", "gauge",
                "1 while frames to the peer go over a direct link.",
                g_link_tcp);
    peer_family(b, p, n, "troupe_cluster_peer_queued", "gauge",
                "Frames waiting in the peer's outbound queue.", g_queued);
    tp__free(p);
}
