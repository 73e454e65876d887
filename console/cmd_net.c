/*
 * console/cmd_net.c - conns, listeners, drain and the network counters.
 * Waits for the net layer (include/troupe/net.h).
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
