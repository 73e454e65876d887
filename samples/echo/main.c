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
    return sample_main(argc, argv, "echo", 7000, echo_start);
}
