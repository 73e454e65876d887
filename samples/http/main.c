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
    return sample_main(argc, argv, "http", 8080, http_start);
}
