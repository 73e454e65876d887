/*
 * samples/fleet/fleet_names.c - where a connection's name lives and how a
 * name is reached.
 *
 * Today a name is node-local: the runtime's registry (released when the
 * connection's actor ends), and SEND reaches only names held on the node
 * it arrives at. A fleet joined in a cluster registers the same names in
 * the cluster's directory and resolves a name held on another node there;
 * that is this file's job alone (the connection actor and the protocol do
 * not change): see docs/FLEET.md, "Cluster".
 */
#include "fleet.h"

#include <errno.h>

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

    if (pid == TP_PID_NONE)
        return -ENOENT;
    return tp_send(ctx, pid, FLEET_MSG_DELIVER, d, sizeof(*d));
}
