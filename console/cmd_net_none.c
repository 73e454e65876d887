/*
 * console/cmd_net_none.c - built instead of cmd_net.c when the tree has no
 * net layer (include/troupe/net.h): the network commands say so.
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>

void
tp__console_net_counts(tp_runtime *rt, struct tp__net_counts *out)
{
    memset(out, 0, sizeof(*out));
}

static int
no_net(struct tp__exec *x)
{
    return tp__exec_fail(x, -ENOTSUP, "networking is not built in yet");
}

int
tp__cmd_conns(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    return no_net(x);
}

int
tp__cmd_listeners(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    return no_net(x);
}

int
tp__cmd_drain(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    return no_net(x);
}
