/*
 * console/listen.c - the console's listeners on the net layer.
 * Waits for the net layer (include/troupe/net.h).
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
