/*
 * samples/echo/main.c - troupe-echo: a TCP echo server.
 *
 *   troupe-echo [--port 7000] [--schedulers N] [--console PATH]
 *               [--http-port N]
 *
 * Try it: nc localhost 7000 (type a line, get it back).
 */
#include "echo.h"

int
main(int argc, char **argv)
{
    struct sample_opts o;
    tp_listener *l;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, "echo", 7000, &rt)) != 0)
        return r > 0 ? 0 : 2;
    if (echo_start(rt, &o, o.port, &l) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        return 1;
    }
    return sample_run(rt, &o);
}
