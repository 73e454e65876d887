/*
 * console/listen_none.c - built instead of listen.c when the tree has no
 * net layer (include/troupe/net.h): the console then runs only through
 * the in-process transport, and tp_console_start() says so.
 */
#include "console_int.h"

#include <errno.h>

int
tp__console_listen(tp_console *c)
{
    (void)c;
    return -ENOTSUP;
}

void
tp__console_unlisten(tp_console *c)
{
    (void)c;
}
