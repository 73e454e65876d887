/*
 * samples/echo/main.c - troupe-echo: a TCP echo server.
 *
 *   troupe-echo [--style callback|direct] [--port 7000] [--schedulers N]
 *               [--console PATH] [--http-port N]
 *
 * --style picks how the connection actor is written: a handle callback
 * (echo.c, the default) or direct-style straight-line code (echo_direct.c).
 *
 * Try it: nc localhost 7000 (type a line, get it back).
 */
#include "echo.h"

#include <stdio.h>
#include <string.h>

static bool direct_style;

static int
start(tp_runtime *rt, const struct sample_opts *o, int port, tp_listener **out)
{
    if (direct_style)
        return echo_start_with(rt, o, port, echo_direct_conn(), out);
    return echo_start(rt, o, port, out);
}

int
main(int argc, char **argv)
{
    int n = 0;

    /* Takes --style out of argv; the rest goes to the common options. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--style") == 0 && i + 1 < argc) {
            if (strcmp(argv[i + 1], "direct") == 0) {
                direct_style = true;
            } else if (strcmp(argv[i + 1], "callback") != 0) {
                fprintf(stderr, "troupe-echo: --style callback|direct\n");
                return 2;
            }
            i++;
            continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return sample_main(n, argv, "echo", 7000, start);
}
