/*
 * samples/common/sample.h - what every sample program shares: its command
 * line, starting the runtime, the "READY <service> <address>" lines that
 * tests and scripts wait for, the admin console, and a clean stop on
 * SIGINT/SIGTERM.
 *
 * A sample's main() reads like this:
 *
 *     struct sample_opts o;
 *     tp_runtime *rt;
 *
 *     if (sample_init(&o, argc, argv, "echo", 7000, &rt) != 0)
 *         return 2;
 *     ... start the services, sample_ready("echo", listener) ...
 *     return sample_run(rt, &o);   // waits for Ctrl-C, drains, exits 0
 *
 * Only the public API (<troupe.h>) is used here.
 */
#ifndef SAMPLE_H
#define SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <troupe.h>

/** The command line every sample takes. */
struct sample_opts {
    const char *address;     /* --address A: IP to listen on (127.0.0.1) */
    int port;                /* --port N: 0 = any free port */
    unsigned schedulers;     /* --schedulers N: 0 = one per CPU */
    const char *console;     /* --console PATH: admin Unix socket, or NULL */
    int http_port;           /* --http-port N: dashboard + metrics, -1 = off */
    const char *name;        /* program name for messages ("troupe-echo") */
    const char *tls_cert;    /* --tls-cert PEM: chain for TLS listeners */
    const char *tls_key;     /* --tls-key PEM: its private key */
    const char *cluster;     /* --cluster URLS: join a cluster over NATS */
    const char *node;        /* --node NAME: this node's name in it */
    struct tp_console *cons; /* the running console, if any */
};

/**
 * Parses the command line (`--opt N` or `--opt=N`; --help prints usage
 * and returns 1), creates and starts the runtime and installs the
 * SIGINT/SIGTERM handlers. `service` names the program in messages;
 * `default_port` is used without --port. Returns 0, 1 (--help: exit 0),
 * or -1 after printing why (exit 2).
 */
int sample_init(struct sample_opts *o, int argc, char **argv,
                const char *service, int default_port, tp_runtime **rt);

/**
 * Starts the admin console when --console or --http-port asked for it and
 * prints its READY lines ("READY console PATH", "READY dashboard URL").
 * Returns 0 or a negative errno after printing why.
 */
int sample_console_start(tp_runtime *rt, struct sample_opts *o);

/** Stops the console started by sample_console_start(), if any. */
void sample_console_stop(struct sample_opts *o);

/** The console's HTTP (dashboard) port, or -1 when it has none. */
int sample_console_http_port(const struct sample_opts *o);

/**
 * Starts a dynamic supervisor under the runtime's root supervisor, as
 * child `id` registered as `name`, for the connection actors of a listener
 * (its template is `conn`, temporary: a connection is never restarted).
 * The listener finds it by that name, so connections keep arriving after
 * the root restarts it. Returns 0 or a negative errno.
 */
int sample_conn_supervisor(tp_runtime *rt, const char *id, const char *name,
                           const tp_behaviour *conn);

/**
 * Listens on TCP with the sample's address and `port`, the connection
 * behaviour `b` (init gets `arg`) under the supervisor registered as
 * `sup_name` (NULL: none), and `conn`
 * options (NULL: defaults). Prints "READY <service> <address:port>".
 * Returns 0 or a negative errno after printing why.
 */
int sample_listen(tp_runtime *rt, const struct sample_opts *o,
                  const char *service, int port, const tp_behaviour *b,
                  void *arg, const char *sup_name, const tp_conn_opts *conn,
                  tp_listener **out);

/** Prints "READY <service> <what>" on stdout and flushes it. */
void sample_ready(const char *service, const char *what);

/**
 * Waits for SIGINT/SIGTERM, then stops the console, drains the
 * connections, stops the supervision tree and frees the runtime. Returns
 * the process exit code: 0 after a clean stop, 1 if something had to be
 * killed at the deadline.
 */
int sample_run(tp_runtime *rt, struct sample_opts *o);

/** Starts one service's listener on `port` (see echo_start()). */
typedef int (*sample_start_fn)(tp_runtime *rt, const struct sample_opts *o,
                               int port, tp_listener **out);

/**
 * The whole main() of a one-service sample: sample_init(), start(), the
 * console, sample_run(). Returns the process exit code (0; 1 if the
 * service or console could not start; 2 on a bad command line).
 */
int sample_main(int argc, char **argv, const char *service, int default_port,
                sample_start_fn start);

/** Prints "<program>: <what>: <error text>" on stderr; returns err. */
int sample_fail(const struct sample_opts *o, const char *what, int err);

#endif /* SAMPLE_H */
