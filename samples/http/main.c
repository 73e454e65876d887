/*
 * samples/http/main.c - troupe-http: a small HTTP/1.1 server.
 *
 *   troupe-http [--port 8080] [--schedulers N] [--console PATH]
 *               [--http-port N]
 *
 * Try it: curl localhost:8080/json, or wrk -c 100 -d 10 localhost:8080/
 */
#include "http.h"

int
main(int argc, char **argv)
{
    struct sample_opts o;
    tp_listener *l;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, "http", 8080, &rt)) != 0)
        return r > 0 ? 0 : 2;
    if (http_start(rt, &o, o.port, &l) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        return 1;
    }
    return sample_run(rt, &o);
}
