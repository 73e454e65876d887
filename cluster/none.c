/*
 * cluster/none.c - the cluster API when Troupe is built without libnats:
 * nothing joins, and a remote pid is never reachable (a link or monitor
 * to one gets noconnection at once, like a node that is down).
 */
#include "hooks.h"

#include <errno.h>
#include <string.h>
#include <troupe/cluster.h>

static const tp_exit_reason noconnection = {TP_EXIT_NOCONNECTION, 0,
                                            "noconnection"};

void
tp_cluster_options_init(tp_cluster_options *o)
{
    memset(o, 0, sizeof(*o));
    o->links = true; /* the same defaults as with libnats */
    o->link_connect_ms = 1000;
}

int
tp_cluster_start(tp_runtime *rt, const tp_cluster_options *o)
{
    (void)rt;
    (void)o;
    tp_log(TP_LOG_ERROR, "cluster: Troupe was built without libnats");
    return -ENOTSUP;
}

int
tp_cluster_stop(tp_runtime *rt)
{
    (void)rt;
    return -ENOTCONN;
}

uint32_t
tp_cluster_node_id(tp_runtime *rt)
{
    (void)rt;
    return 0;
}

uint32_t
tp_cluster_node_lookup(tp_runtime *rt, const char *name)
{
    (void)rt;
    (void)name;
    return 0;
}

int
tp_cluster_node_name(tp_runtime *rt, uint32_t node, char *buf, size_t size)
{
    (void)rt;
    (void)node;
    (void)buf;
    (void)size;
    return -ENOTCONN;
}

tp_pid
tp_cluster_pid(tp_runtime *rt, tp_pid pid)
{
    (void)rt;
    return pid;
}

int
tp_monitor_node(tp_ctx *ctx, bool on)
{
    (void)ctx;
    (void)on;
    return -ENOTCONN;
}

int
tp_cluster_stats(tp_runtime *rt, tp_cluster_summary *out,
                 tp_cluster_peer_stats *peers, unsigned n)
{
    (void)rt;
    (void)out;
    (void)peers;
    (void)n;
    return -ENOTCONN;
}

int
tp__cluster_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
                 size_t len)
{
    (void)ctx;
    (void)to;
    (void)type;
    (void)data;
    (void)len;
    return -ENOTCONN;
}

int
tp__cluster_send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b)
{
    (void)ctx;
    (void)to;
    (void)type;
    (void)b;
    return -ENOTCONN;
}

int
tp__cluster_deliver(tp_ctx *ctx, tp_pid to, struct tp__msg *m)
{
    (void)to;
    tp__dead_letter(ctx, m);
    return -ENOTCONN;
}

int
tp__cluster_signal(struct tp__actors *A, tp_pid to, struct tp__msg *m)
{
    int r = -ENOTCONN;

    if (m->sig == TP__SIG_LINK) {
        r = tp__exit_signal(A, to, m->m.from, &noconnection, true);
    } else if (m->sig == TP__SIG_MONITOR) {
        struct tp__msg *d = tp__msg_exit(TP__SIG_DOWN, TP_MSG_DOWN, to,
                                         m->m.ref, &noconnection);
        r = -ENOMEM;
        if (d != NULL) {
            d->m.from = to;
            d->m.ref = m->m.ref;
            r = tp__signal(A, m->m.from, d);
        }
    }
    tp__msg_free(m);
    return r;
}

int
tp_register_global(tp_runtime *rt, const char *name, tp_pid pid)
{
    (void)rt;
    (void)name;
    (void)pid;
    return -ENOTSUP;
}

int
tp_unregister_global(tp_runtime *rt, const char *name, tp_pid pid)
{
    (void)rt;
    (void)name;
    (void)pid;
    return -ENOTSUP;
}

tp_pid
tp_whereis_global(tp_runtime *rt, const char *name)
{
    (void)rt;
    (void)name;
    return TP_PID_NONE;
}

int
tp__cluster_send_named(tp_ctx *ctx, const char *name, uint32_t type,
                       const void *data, size_t len)
{
    (void)ctx;
    (void)name;
    (void)type;
    (void)data;
    (void)len;
    return -ESRCH;
}

tp_pid
tp_whereis_global_cached(tp_runtime *rt, const char *name)
{
    (void)rt;
    (void)name;
    return TP_PID_NONE;
}

int
tp_cluster_names(tp_runtime *rt, tp_global_name *out, unsigned n)
{
    (void)rt;
    (void)out;
    (void)n;
    return -ENOTCONN;
}

int
tp_cluster_name_conflicts(tp_runtime *rt, tp_name_conflict *out, unsigned n)
{
    (void)rt;
    (void)out;
    (void)n;
    return -ENOTCONN;
}
