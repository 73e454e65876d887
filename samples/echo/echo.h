/*
 * samples/echo/echo.h - a TCP echo service: one supervised actor per
 * connection sends back every byte it reads.
 */
#ifndef SAMPLE_ECHO_H
#define SAMPLE_ECHO_H

#include "../common/sample.h"

/**
 * Starts the echo service: a dynamic supervisor "echo" under the root
 * supervisor and a listener on `port` whose connection actors join it.
 * Prints "READY echo <address>". Returns 0 or a negative errno.
 */
int echo_start(tp_runtime *rt, const struct sample_opts *o, int port,
               tp_listener **out);

/** echo_start() with another connection behaviour (e.g. the direct one). */
int echo_start_with(tp_runtime *rt, const struct sample_opts *o, int port,
                    const tp_behaviour *conn, tp_listener **out);

/** The echo connection actor written in direct style (echo_direct.c). */
const tp_behaviour *echo_direct_conn(void);

#endif /* SAMPLE_ECHO_H */
