/*
 * troupe/console.h - the admin console: see and steer a running runtime.
 *
 * Off by default. tp_console_start() opens any of:
 *  - a Unix socket (created with mode 0600) speaking the line protocol; the
 *    file permissions are the access control, no token is asked;
 *  - a loopback TCP port speaking the same protocol; the first line must be
 *    "auth TOKEN" (compared in constant time). Without a token configured
 *    the TCP console is refused (-EINVAL): no token, no access;
 *  - a loopback HTTP port: GET /metrics (Prometheus text format),
 *    GET /api/<command> (JSON), GET / (a self-contained live dashboard),
 *    GET /health (200 "ok", 503 while draining: see tp_console_drain()),
 *    POST /api/<command> for actions (kill, restart, stop, drain,
 *    loglevel), which need "Authorization: Bearer TOKEN".
 * Binding an address that is not loopback needs opts.allow_remote.
 *
 * The console runs as ordinary actors (one per session or HTTP
 * connection, plus a sampler): it never blocks a scheduler, scans actors in
 * bounded chunks per turn, and bounds what each client may make it buffer
 * (line length, output, sessions, idle time). See docs/CONSOLE.md.
 */
#ifndef TROUPE_CONSOLE_H
#define TROUPE_CONSOLE_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A running console. Opaque; owned by the caller of tp_console_start(). */
typedef struct tp_console tp_console;

/** Environment variable read when opts.token is NULL. */
#define TP_CONSOLE_TOKEN_ENV "TROUPE_CONSOLE_TOKEN"

/** Console options; fill with tp_console_opts_init(). */
typedef struct tp_console_opts {
    /** Unix socket path (mode 0600; an existing socket file is replaced).
     *  NULL = none. */
    const char *unix_path;
    /** Address of the TCP line console and of the HTTP port. Default
     *  "127.0.0.1". */
    const char *host;
    /** TCP line console port: -1 = off (default), 0 = any free port. */
    int tcp_port;
    /** HTTP port: -1 = off (default), 0 = any free port. */
    int http_port;
    /** Token for TCP sessions and HTTP actions (copied). NULL = take it from
     *  $TROUPE_CONSOLE_TOKEN; empty = none. */
    const char *token;
    /** Let host be an address that is not loopback. Default false. */
    bool allow_remote;
    /** HTTP GET requests need the token too. Default false (loopback
     *  scrapes and the dashboard read without it; actions always need it).*/
    bool http_auth_reads;
    /** Concurrent line sessions (Unix + TCP together). Default 16. */
    uint32_t max_sessions;
    /** Concurrent HTTP connections. Default 32. */
    uint32_t max_http;
    /** Longest accepted input line, bytes. Default 4096. */
    uint32_t max_line;
    /** Output a session may have queued before trace lines are dropped and
     *  a command reply is refused, bytes. Default 1 MiB. */
    uint32_t max_output;
    /** A session without input for this long is closed, ms. 0 = never.
     *  Default 300000 (5 min); a running trace keeps it open while the
     *  client reads it. */
    uint32_t idle_timeout_ms;
    /** Trace events written per second per session (excess is counted
     *  and reported once a second). Default 200. */
    uint32_t trace_rate;
    /** ps: rows shown when no limit is given (not 0). Default 20. */
    uint32_t ps_default;
    /** ps: the largest limit it accepts (at least ps_default). Default
     *  1000. */
    uint32_t ps_max;
    /** The `drain` command (and POST /api/drain) without a DELAY_MS: for
     *  this long GET /health answers 503 while the listeners still accept,
     *  then the network drains (see tp_console_drain()). Default 0: drain
     *  at once. At most 600000 (more: the command fails, -EINVAL). */
    uint32_t drain_delay_ms;
} tp_console_opts;

/** Fills opts with the defaults (everything off). */
TP_API void tp_console_opts_init(tp_console_opts *opts);

/**
 * Starts the console on a started runtime. opts is copied. On success *out
 * owns the console (release it with tp_console_stop(); tp_runtime_stop()
 * closes its sessions too). Errors: -EINVAL (nothing to listen on, a bad
 * option, TCP without a token, a non-loopback host without allow_remote),
 * -EADDRINUSE and other listen errors, -ENOMEM. Nothing is left open on
 * failure. Thread: not a scheduler.
 */
TP_API int tp_console_start(tp_runtime *rt, const tp_console_opts *opts,
                            tp_console **out);

/**
 * Closes the listeners and every session, removes the Unix socket file and
 * frees the console. Idempotent for NULL. Call before tp_runtime_destroy().
 * Thread: not a scheduler.
 */
TP_API void tp_console_stop(tp_console *console);

/** The bound TCP line-console port (after port 0), or -1. Thread-safe. */
TP_API int tp_console_tcp_port(const tp_console *console);

/** The bound HTTP port (after port 0), or -1. Thread-safe. */
TP_API int tp_console_http_port(const tp_console *console);

/** Line and HTTP sessions open now (gauge). Thread-safe. */
TP_API unsigned tp_console_sessions(const tp_console *console);

/**
 * Drains the node the way a load balancer in front of it can follow: GET
 * /health on the HTTP port answers 503 from now on (it answers 200 until
 * a drain starts), and delay_ms later the network drains as
 * tp_net_drain_start(rt, deadline_ms) does: every listener closes (the
 * console's own too), every connection is told to finish, whatever is
 * still open deadline_ms after that is closed. delay_ms 0 drains at once.
 * The `drain` console command does the same (with opts.drain_delay_ms).
 * Returns 0, -EALREADY (a drain already started on this console), -EINVAL
 * (console NULL; deadline_ms 0 or either over 600000). Returns at once; the
 * delay runs in an actor, and stopping the console does not cancel it. Thread:
 * not an actor callback (actors use the drain command).
 */
TP_API int tp_console_drain(tp_console *console, uint32_t delay_ms,
                            uint32_t deadline_ms);

/** True once a drain started on this console (GET /health answers 503).
 *  Thread-safe. */
TP_API bool tp_console_draining(const tp_console *console);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_CONSOLE_H */
