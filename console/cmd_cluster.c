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
#include <troupe/cluster.h>

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

int
tp__cmd_nodes(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_cluster_summary sum;
    tp_cluster_peer_stats *p;
    struct tp__em e;
    unsigned n;
    int r;

    (void)argc;
    (void)argv;
    r = snapshot(tp_ctx_runtime(ctx), &sum, &p, &n);
    if (r < 0 && r != -ENOTCONN && r != -ENOTSUP)
        return tp__exec_fail(x, r, "cluster: %s", tp_strerror(r));
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    /* Not an error: a node in no cluster says so (the dashboard asks). */
    tp__em_bool(&e, "cluster", r >= 0);
    if (r < 0) {
        tp__em_note(&e, "this node is in no cluster");
        tp__em_obj_end(&e);
        return 0;
    }
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

#define NAMES_SHOW 1000u /* names listed by `names` */

int
tp__cmd_names(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    tp_name_conflict recent[16];
    tp_cluster_summary sum;
    tp_global_name *held;
    struct tp__em e;
    int r, nc;
    unsigned n;

    (void)argc;
    (void)argv;
    r = tp_cluster_stats(rt, &sum, NULL, 0);
    if (r < 0 && r != -ENOTCONN && r != -ENOTSUP)
        return tp__exec_fail(x, r, "cluster: %s", tp_strerror(r));
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_bool(&e, "cluster", r >= 0);
    if (r < 0) {
        tp__em_note(&e, "this node is in no cluster");
        tp__em_obj_end(&e);
        return 0;
    }
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
g_queued(const tp_cluster_peer_stats *p)
{
    return (double)p->queued;
}

void
tp__cluster_metrics(struct tp__cbuf *b, tp_runtime *rt)
{
    tp_cluster_summary sum;
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
    peer_family(b, p, n, "troupe_cluster_peer_queued", "gauge",
                "Frames waiting in the peer's outbound queue.", g_queued);
    tp__free(p);
}
