/*
 * troupe/console.h - the admin console: see and steer a running runtime.
 *
 * Off by default. tp_console_start() opens any of:
 *  - a Unix socket speaking the line protocol. It is private from its
 *    first moment (bound inside a fresh 0700 directory, made mode
 *    unix_mode there, then linked into place), and every peer is checked
 *    with SO_PEERCRED: this process's effective uid and root get a
 *    session, others only when listed in the options. No token is asked;
 *  - a loopback TCP port speaking the same protocol; the client must
 *    authenticate first: "auth TOKEN" (compared in constant time), or the
 *    challenge-response login troupectl uses, where each side proves it
 *    knows the token without sending it (docs/CONSOLE.md, "Trust").
 *    Without a token configured the TCP console is refused (-EINVAL);
 *  - a loopback HTTP port: GET /metrics (Prometheus text format),
 *    GET /api/<command> (JSON), GET / (a self-contained live dashboard),
 *    GET /health (200 "ok", 503 while draining: see tp_console_drain()),
 *    POST /api/<command> for actions (kill, restart, stop, drain,
 *    loglevel), which need "Authorization: Bearer TOKEN".
 * Binding an address that is not loopback needs opts.allow_remote.
 * Failed authentications are rate-limited per client address and in
 * total (TCP and HTTP alike): past the burst, attempts are refused without
 * looking at the token.
 *
 * The console runs as ordinary actors (one per session or HTTP
 * connection, plus a sampler): it never blocks a scheduler, scans actors in
 * bounded chunks per turn, and bounds what each client may make it buffer
 * (line length, output, sessions, idle time) and how long a stranger may
 * hold a slot (auth_timeout_ms, http_request_timeout_ms). See
 * docs/CONSOLE.md.
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

/** Most extra uids in tp_console_opts.unix_uids. */
#define TP_CONSOLE_UIDS_MAX      16
/** Unix sessions the owner may open beyond max_sessions. */
#define TP_CONSOLE_OWNER_RESERVE 4
/** HTTP slots beyond max_http that serve GET /metrics only. */
#define TP_CONSOLE_HTTP_RESERVE  2
/** A connection waiting this long for its request may lose its slot to a
 *  newcomer when the HTTP pool is full, ms. */
#define TP_CONSOLE_HTTP_EVICT_MS 1000
/** The global failed-authentication bucket is this many times the
 *  per-address one (burst and rate). */
#define TP_CONSOLE_AUTH_GLOBAL_X 5

/** Console options; fill with tp_console_opts_init(). */
typedef struct tp_console_opts {
    /** Unix socket path. NULL = none. A socket file left by a dead server
     *  is replaced; a live one (something answers a connect) or any other
     *  file makes the start fail with -EADDRINUSE. Its directory must be
     *  writable (a private temporary directory is made there). */
    const char *unix_path;
    /** Unix socket: the file's mode, permission bits only (default
     *  0600). Group or other bits let those users reach the socket; the
     *  peer check below still decides who gets a session. */
    uint32_t unix_mode;
    /** Unix socket: peers (SO_PEERCRED) allowed besides this process's
     *  effective uid and root. Up to TP_CONSOLE_UIDS_MAX uids (copied).
     *  Default none. */
    const uint32_t *unix_uids;
    size_t unix_nuids; /**< entries in unix_uids */
    /** Unix socket: also allow peers whose effective gid is this. -1 =
     *  none (default). */
    int64_t unix_gid;
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
    /** Concurrent line sessions (Unix + authenticated TCP together).
     *  Default 16. The owner (this process's uid, or root) on the Unix
     *  socket may open TP_CONSOLE_OWNER_RESERVE more, so no one else can
     *  lock it out. */
    uint32_t max_sessions;
    /** TCP connections that have not authenticated yet, held apart from
     *  max_sessions. Default 8; beyond, a one-line refusal and close. */
    uint32_t max_preauth;
    /** A TCP connection that has not authenticated within this long is
     *  closed, ms. Default 5000. */
    uint32_t auth_timeout_ms;
    /** Failed authentications (TCP and HTTP) allowed from one address in a
     *  burst (default 10); then one more every auth_fail_interval_ms
     *  (default 1000). All addresses together get TP_CONSOLE_AUTH_GLOBAL_X
     *  times the burst and rate. A connection is closed after its third
     *  failure. */
    uint32_t auth_fail_burst;
    uint32_t auth_fail_interval_ms; /**< see auth_fail_burst */
    /** Concurrent HTTP connections. Default 32; TP_CONSOLE_HTTP_RESERVE
     *  more are kept for GET /metrics alone. When all are taken, a new
     *  connection takes the slot of the one that has waited longest (at
     *  least TP_CONSOLE_HTTP_EVICT_MS) for a request. */
    uint32_t max_http;
    /** HTTP connections from one address (an IPv6 /64 counts as one).
     *  Default 8. */
    uint32_t max_http_per_addr;
    /** HTTP: a request must be complete within this long of the connection
     *  being ready for it (opened, or the previous answer written), ms:
     *  a whole-request deadline, not an idle timer. Else 408 and close (a
     *  keep-alive connection with no request started just closes).
     *  Default 10000. */
    uint32_t http_request_timeout_ms;
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
 * -EADDRINUSE (a port in use; a live console, or a file that is not a
 * socket, at unix_path), -ENAMETOOLONG, other listen errors, -ENOMEM.
 * Nothing is left open on failure. Thread: not a scheduler.
 */
TP_API int tp_console_start(tp_runtime *rt, const tp_console_opts *opts,
                            tp_console **out);

/**
 * Closes the listeners and every session, removes the Unix socket file (if
 * the file at the path is still the one it made: never another's) and
 * frees the console. Idempotent for NULL. Call before tp_runtime_destroy().
 * Thread: not a scheduler.
 */
TP_API void tp_console_stop(tp_console *console);

/** The bound TCP line-console port (after port 0), or -1. Thread-safe. */
TP_API int tp_console_tcp_port(const tp_console *console);

/** The bound HTTP port (after port 0), or -1. Thread-safe. */
TP_API int tp_console_http_port(const tp_console *console);

/** Line sessions, TCP connections not yet logged in, and HTTP connections
 *  open now (gauge). Thread-safe. */
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
