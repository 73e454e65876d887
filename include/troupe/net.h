/*
 * troupe/net.h - TCP and Unix-domain sockets where every connection is an
 * actor and network I/O arrives as messages from the per-scheduler libuv
 * loops. See docs/NETWORK.md for the model.
 *
 * Listeners: each scheduler's loop binds its own SO_REUSEPORT socket (TCP),
 * so the kernel spreads accepts over cores with no shared accept lock. An
 * accepted connection gets a new actor, spawned on the accepting
 * scheduler, running the listener's behaviour (wrapped by the runtime: the
 * connection is owned by the actor and closed when it dies, crash
 * included, and by default the actor exits normally when its connection
 * closes).
 *
 * Messages (all carry the connection handle in msg->ref; every one is a
 * runtime type, so no actor can forge them with tp_send()):
 *   TP_MSG_TCP_OPENED         tp_tcp_opened: a listener's connection is up
 *   TP_MSG_TCP_CONNECTED      tp_tcp_connected: tp_tcp_connect() finished
 *   TP_MSG_TCP_DATA           the bytes read (at most read_chunk per msg)
 *   TP_MSG_TCP_PEER_SHUTDOWN  (half_open only) the peer stopped sending
 *   TP_MSG_TCP_WRITE_BLOCKED  tp_tcp_write_state: write queue over its
 *                             high-water mark
 *   TP_MSG_TCP_DRAINED        tp_tcp_write_state: back under the low mark
 *   TP_MSG_TCP_DRAIN          the runtime drains: finish and close
 *   TP_MSG_TCP_CLOSED         tp_tcp_closed: the connection is gone (once)
 *
 * Thread-safety: every tp_tcp_* call works from any actor on any
 * scheduler, with a handle that may be stale (it then fails with
 * -ENOTCONN); libuv objects are only touched on their own loop's thread
 * (calls from other schedulers travel through that loop's command queue).
 */
#ifndef TROUPE_NET_H
#define TROUPE_NET_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A connection handle: 64 bits, slot index (low 32) and generation (high
 * 32). A value, like a pid: a stale handle is detected by its generation
 * and never reaches another connection.
 */
typedef uint64_t tp_conn;

#define TP_CONN_NONE ((tp_conn)0)

/** A listener (opaque). */
typedef struct tp_listener tp_listener;

/* TLS contexts (troupe/tls.h) and WebSocket options (troupe/ws.h). */
struct tp_tls_ctx;
struct tp_ws_opts;

/* ---------------------------------------------------------------------- */
/* Addresses                                                              */

#define TP_NET_INET  4 /**< IPv4 */
#define TP_NET_INET6 6 /**< IPv6 */
#define TP_NET_UNIX  1 /**< Unix domain (no address bytes) */

/** An IP address and port (family 0 = none/unknown). */
typedef struct tp_net_addr {
    uint16_t family; /**< TP_NET_INET, TP_NET_INET6, TP_NET_UNIX or 0 */
    uint16_t port;   /**< host byte order */
    uint32_t scope;  /**< IPv6 scope id */
    /** Address bytes in network byte order: the first 4 for TP_NET_INET,
     *  all 16 for TP_NET_INET6, none (zeros) for TP_NET_UNIX or 0. */
    uint8_t addr[16];
} tp_net_addr;

/** Longest text tp_net_addr_format() writes, NUL included. */
#define TP_NET_ADDR_TEXT 64

/**
 * Formats "1.2.3.4:80", "[::1]:80", "unix" or "-" into buf. Returns the
 * length written (truncated to size - 1) or -EINVAL. Thread-safe.
 */
TP_API int tp_net_addr_format(const tp_net_addr *a, char *buf, size_t size);

/**
 * Parses a numeric IPv4 or IPv6 address (no name lookup: a loop must never
 * block on DNS) and port into *out. NULL or "" means "0.0.0.0". Returns 0
 * or -EINVAL. Thread-safe.
 */
TP_API int tp_net_addr_parse(const char *text, uint16_t port, tp_net_addr *out);

/* ---------------------------------------------------------------------- */
/* Per-connection options                                                 */

/** How a connection's bytes reach its actor. */
typedef enum tp_read_mode {
    /** Read continuously while the actor keeps up: reading pauses when its
     *  mailbox reaches mailbox_high messages or read_high bytes of data
     *  are waiting in it, and resumes below mailbox_low / read_low. */
    TP_READ_ACTIVE = 0,
    /** One DATA message, then nothing until tp_tcp_activate(). */
    TP_READ_ONCE,
    /** Nothing until tp_tcp_activate() (each call: one DATA message). */
    TP_READ_PASSIVE
} tp_read_mode;

/** Name of a read mode ("active", "once", "passive"). */
TP_API const char *tp_read_mode_name(tp_read_mode m);

/** Limits and behaviour of one connection. */
typedef struct tp_conn_opts {
    tp_read_mode read_mode;   /**< default TP_READ_ACTIVE */
    uint32_t idle_timeout_ms; /**< close after this long without I/O; 0 off */
    /** Most bytes in one DATA message (1 .. 65536, default 65536). */
    uint32_t read_chunk;
    /** Active mode: DATA bytes waiting in the mailbox that pause reading
     *  (default 256 KiB, at most 512 MiB). */
    uint32_t read_high;
    /** Active mode: DATA bytes waiting in the mailbox below which reading
     *  resumes (default 64 KiB, at most read_high). */
    uint32_t read_low;
    /** Active mode: mailbox length (all messages) that pauses reading
     *  (default 64). */
    uint32_t mailbox_high;
    /** Active mode: mailbox length (all messages) below which reading
     *  resumes (default 16, at most mailbox_high). */
    uint32_t mailbox_low;
    /** Bytes queued for writing (not yet taken by the kernel) above which
     *  the owner gets TP_MSG_TCP_WRITE_BLOCKED (default 256 KiB, at most
     *  write_limit). */
    uint32_t write_high;
    /** Bytes queued for writing below which the owner, once blocked, gets
     *  TP_MSG_TCP_DRAINED (default 64 KiB, at most write_high). */
    uint32_t write_low;
    /** A send that would queue more than this closes the connection with
     *  TP_NET_CLOSE_WRITE_LIMIT (default 8 MiB, at most 1 GiB). */
    uint32_t write_limit;
    /** Stop reading while the write queue is over write_high, so a peer
     *  that sends but does not read cannot grow our queue (default true).*/
    bool read_pause_on_write_high;
    /** A close waits at most this long for queued writes (default 2000). */
    uint32_t linger_ms;
    /** When the peer shuts its sending side down, report
     *  TP_MSG_TCP_PEER_SHUTDOWN and keep the connection open for writing
     *  (default false: the connection closes with TP_NET_CLOSE_PEER). */
    bool half_open;
    /** TCP_NODELAY (default true). */
    bool nodelay;
    /** SO_SNDBUF of the socket, bytes (0, the default: the kernel's, which
     *  on Linux autotunes up to net.ipv4.tcp_wmem's maximum, megabytes per
     *  connection). A small buffer bounds the kernel memory a slow reader
     *  holds and makes its backlog show up in the write queue, so
     *  write_high reports it. At most 64 MiB; the kernel may round it. */
    uint32_t send_buffer;
} tp_conn_opts;

/** Fills o with the defaults above. */
TP_API void tp_conn_opts_init(tp_conn_opts *o);

/* ---------------------------------------------------------------------- */
/* Messages                                                               */

#define TP_MSG_TCP_OPENED        0xffff0101u
#define TP_MSG_TCP_DATA          0xffff0102u
#define TP_MSG_TCP_CLOSED        0xffff0103u
#define TP_MSG_TCP_WRITE_BLOCKED 0xffff0104u
#define TP_MSG_TCP_DRAINED       0xffff0105u
#define TP_MSG_TCP_CONNECTED     0xffff0106u
#define TP_MSG_TCP_PEER_SHUTDOWN 0xffff0107u
#define TP_MSG_TCP_DRAIN         0xffff0108u

/** True for the net message types above. */
static inline bool
tp_msg_is_net(uint32_t type)
{
    /* ... and the WebSocket ones of troupe/ws.h, up to TP_MSG_WS_CLOSING */
    return type >= TP_MSG_TCP_OPENED && type <= 0xffff010cu;
}

/** Why a connection closed. */
typedef enum tp_net_close {
    TP_NET_CLOSE_PEER = 1,    /**< the peer closed (end of stream) */
    TP_NET_CLOSE_RESET,       /**< reset by the peer / broken pipe */
    TP_NET_CLOSE_TIMEOUT,     /**< idle timeout */
    TP_NET_CLOSE_ERROR,       /**< another I/O error (see error) */
    TP_NET_CLOSE_LOCAL,       /**< tp_tcp_close() */
    TP_NET_CLOSE_WRITE_LIMIT, /**< write queue over write_limit */
    TP_NET_CLOSE_OWNER_EXIT,  /**< the owning actor ended */
    TP_NET_CLOSE_DRAIN,       /**< still open at a drain's deadline */
    TP_NET_CLOSE_REASONS
} tp_net_close;

/** Name of a close reason ("peer", "reset", "timeout", ...). */
TP_API const char *tp_net_close_name(tp_net_close r);

/** Payload of TP_MSG_TCP_OPENED. */
typedef struct tp_tcp_opened {
    tp_conn conn;      /**< the new connection, owned by the receiving actor */
    tp_net_addr peer;  /**< remote address (family TP_NET_UNIX for Unix) */
    tp_net_addr local; /**< local address (family 0 if unknown) */
} tp_tcp_opened;

/** Payload of TP_MSG_TCP_CONNECTED. */
typedef struct tp_tcp_connected {
    tp_conn conn;      /**< the handle tp_tcp_connect() returned */
    int32_t error;     /**< 0, or negative errno (-ETIMEDOUT, -ECONNREFUSED..)
                            after which the handle is dead */
    uint32_t pad;      /**< padding, always 0 */
    tp_net_addr peer;  /**< remote address; zeros when error != 0 */
    tp_net_addr local; /**< local address; zeros when error != 0 */
} tp_tcp_connected;

/** Payload of TP_MSG_TCP_CLOSED. */
typedef struct tp_tcp_closed {
    tp_conn conn;       /**< the connection; the handle is stale from now on */
    int32_t reason;     /**< tp_net_close */
    int32_t error;      /**< negative errno behind RESET/ERROR, else 0 */
    uint64_t bytes_in;  /**< bytes read over the connection's life */
    uint64_t bytes_out; /**< bytes written to the kernel over its life */
} tp_tcp_closed;

/** Payload of TP_MSG_TCP_WRITE_BLOCKED and TP_MSG_TCP_DRAINED. */
typedef struct tp_tcp_write_state {
    tp_conn conn;    /**< the connection whose write queue crossed a mark */
    uint64_t queued; /**< bytes queued when the message was sent */
} tp_tcp_write_state;

/** The connection a net message is about (TP_CONN_NONE for others). */
static inline tp_conn
tp_msg_conn(const tp_msg *msg)
{
    return tp_msg_is_net(msg->type) ? (tp_conn)msg->ref : TP_CONN_NONE;
}

/* ---------------------------------------------------------------------- */
/* Listeners                                                              */

/** Options of tp_tcp_listen() / tp_unix_listen(); fill with
 *  tp_listen_opts_init(). Strings are copied. */
typedef struct tp_listen_opts {
    /** Numeric IPv4/IPv6 address to bind; NULL = "0.0.0.0". */
    const char *address;
    /** Port; 0 = an ephemeral port (read it with tp_listener_port()). */
    uint16_t port;
    /** tp_unix_listen(): the socket's path (at most 107 bytes). The file
     *  must not exist; it is removed when the listener closes. */
    const char *path;
    /** listen() backlog of each loop's socket (default 1024). */
    int backlog;
    /** IPv6 only (no IPv4-mapped addresses) for "::" (default false). */
    bool v6only;
    /** Code of the connection actors (required); its init gets arg. The
     *  behaviour and arg must stay valid while any connection lives. */
    const tp_behaviour *behaviour;
    void *arg; /**< init argument of every connection actor (not copied) */
    /** Each connection actor starts on the scheduler that accepted it;
     *  pin = true keeps it there (never stolen: its writes never need a
     *  cross-thread hop). Default false: idle schedulers may steal it. */
    bool pin;
    /** >= 0: run every connection actor on this scheduler instead (taken
     *  modulo the scheduler count, pinned), e.g. to keep the accepting
     *  loops free of actor work. Default -1. */
    int scheduler;
    /** If set, each connection actor joins this dynamic supervisor (see
     *  tp_supervisor_attach()) in its init. */
    tp_pid supervisor;
    /** Or the registered name of that supervisor (copied, < 64 bytes),
     *  looked up for every new connection: a supervisor restarted under
     *  the same name (tp_child_spec.opts.name) keeps receiving connections,
     *  where a pid would go stale. Takes precedence over supervisor. A
     *  connection that finds no such name is closed (its actor's init fails
     *  with -ESRCH). Default NULL. */
    const char *supervisor_name;
    /** Connections beyond this are accepted and reset at once, counted as
     *  refused (0 = no limit). */
    uint32_t max_conns;
    /** Accept errors EMFILE/ENFILE/ENOBUFS/ENOMEM stop accepting on that
     *  loop for this long instead of spinning (default 100 ms). */
    uint32_t emfile_backoff_ms;
    /** The actor exits normally after it handled TP_MSG_TCP_CLOSED
     *  (default true). */
    bool exit_on_close;
    /** Listen on this many loops (0 = all schedulers, the default). */
    unsigned loops;
    /** Every connection starts with a PROXY protocol header (v1 or v2,
     *  HAProxy's send-proxy / send-proxy-v2): the connection gets its actor
     *  once the header is in, and TP_MSG_TCP_OPENED's peer and local, and
     *  the console's `conns`, are the addresses the header gives (a LOCAL
     *  or UNKNOWN header keeps the socket's own). A connection whose header
     *  is malformed, over 536 bytes or not complete within 5 s is closed
     *  without an actor and counted in the listener's errors. Default
     *  false: the first bytes are the application's, never parsed. */
    bool proxy_protocol;
    /** Name for the console (copied, at most 63 bytes); NULL = address. */
    const char *name;
    /** Each connection's options. */
    tp_conn_opts conn;
    /** TLS (troupe/tls.h): a server context every connection handshakes
     *  with (the listener takes its own reference); NULL = plain TCP. */
    struct tp_tls_ctx *tls;
    /** WebSocket (troupe/ws.h): every connection upgrades and exchanges
     *  messages instead of bytes (copied); NULL = a byte stream. */
    const struct tp_ws_opts *ws;
} tp_listen_opts;

/** Fills o with the defaults (no behaviour: it must be set). */
TP_API void tp_listen_opts_init(tp_listen_opts *o);

/**
 * Listens on a TCP address: each of the first `loops` schedulers binds its
 * own SO_REUSEPORT socket to it (port 0: the first binds an ephemeral port,
 * the others bind that one). Accepting starts at once. On success *out
 * owns the listener until tp_listener_close() (or the runtime's destroy).
 * Errors: -EINVAL (bad option or address, runtime not started),
 * -EADDRINUSE (this runtime already listens there, or the kernel says so),
 * -ESHUTDOWN (runtime stopping), -ENOMEM, other socket errors.
 * Thread-safe (actors included: it does not block).
 */
TP_API int tp_tcp_listen(tp_runtime *rt, const tp_listen_opts *o,
                         tp_listener **out);

/**
 * Listens on a Unix-domain stream socket at o->path (address and port are
 * ignored). The loops share one socket. Errors as tp_tcp_listen(), and
 * -EADDRINUSE when the path exists, -ENAMETOOLONG. Thread-safe.
 */
TP_API int tp_unix_listen(tp_runtime *rt, const tp_listen_opts *o,
                          tp_listener **out);

/**
 * Stops accepting and closes the listening sockets (a Unix socket's file is
 * removed). Connections already accepted are not affected. l is invalid
 * afterwards (its small record is kept until tp_runtime_destroy() so that
 * its connections can still refer to it). Returns 0 or -EINVAL (NULL or
 * already closed). Thread-safe.
 */
TP_API int tp_listener_close(tp_listener *l);

/** The bound port (0 for Unix sockets). Thread-safe. */
TP_API uint16_t tp_listener_port(const tp_listener *l);

/** The bound address (family TP_NET_UNIX for Unix sockets). */
TP_API void tp_listener_address(const tp_listener *l, tp_net_addr *out);

/** What the console shows about a listener. */
typedef struct tp_listener_info {
    /** opts.name, else "tcp:" and the address text (tp_net_addr_format()),
     *  or "unix:" and the path. */
    char name[64];
    tp_net_addr addr;   /**< bound address (port resolved after port 0) */
    char path[108];     /**< Unix socket path, "" for TCP */
    const char *state;  /**< "listening", "backoff", "closed" */
    unsigned loops;     /**< loops listening */
    uint32_t max_conns; /**< 0 = no limit */
    uint64_t conns;     /**< open connections now */
    uint64_t accepted;  /**< connections accepted (and given an actor) */
    uint64_t refused;   /**< reset at once: over max_conns or no actor */
    uint64_t emfile;    /**< back-offs after EMFILE/ENFILE/ENOBUFS/ENOMEM */
    uint64_t errors;    /**< other accept errors */
} tp_listener_info;

/** Fills *out. Thread-safe. */
TP_API void tp_listener_get_info(tp_listener *l, tp_listener_info *out);

/**
 * Calls fn for each listener of rt (closed ones too while their
 * connections live), under a lock: fn must not call tp_net_* functions.
 * Stops early when fn returns false. Thread-safe.
 */
TP_API void tp_net_listener_foreach(tp_runtime *rt,
                                    bool (*fn)(void *user,
                                               const tp_listener_info *),
                                    void *user);

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

/**
 * Queues a copy of data[0..len) for writing. Returns 0, or 1 when the
 * write queue is now over write_high (the owner also gets
 * TP_MSG_TCP_WRITE_BLOCKED, once per crossing; TP_MSG_TCP_DRAINED follows
 * when it falls under write_low). Errors: -ENOTCONN (stale handle, closing
 * or closed), -EPIPE (after tp_tcp_shutdown()), -ENOBUFS (the write would
 * exceed write_limit: the connection is being closed with
 * TP_NET_CLOSE_WRITE_LIMIT and nothing was queued), -EINVAL, -ENOMEM.
 * Writes from one actor are sent in the order made. Thread: any actor.
 */
TP_API int tp_tcp_send(tp_ctx *ctx, tp_conn conn, const void *data, size_t len);

/**
 * Like tp_tcp_send() but writes a blob's bytes without copying them (a
 * reference is held until the kernel took them): one blob can be
 * broadcast to many connections. The caller's reference is untouched.
 */
TP_API int tp_tcp_send_blob(tp_ctx *ctx, tp_conn conn, tp_blob *blob);

/**
 * Closes the connection after its queued writes are sent (at most
 * linger_ms). The owner gets TP_MSG_TCP_CLOSED (TP_NET_CLOSE_LOCAL).
 * Returns 0 or -ENOTCONN. Thread: any actor.
 */
TP_API int tp_tcp_close(tp_ctx *ctx, tp_conn conn);

/**
 * Half-close: after the queued writes, shuts the sending side down (the
 * peer reads end of stream); reading goes on. Later sends fail with
 * -EPIPE. Returns 0 or -ENOTCONN. Thread: any actor.
 */
TP_API int tp_tcp_shutdown(tp_ctx *ctx, tp_conn conn);

/**
 * TP_READ_ONCE / TP_READ_PASSIVE: allows one more DATA message (calls add
 * up). Returns 0 or -ENOTCONN. Thread: any actor.
 */
TP_API int tp_tcp_activate(tp_ctx *ctx, tp_conn conn);

/** Switches the read mode. Returns 0, -ENOTCONN or -EINVAL. */
TP_API int tp_tcp_set_mode(tp_ctx *ctx, tp_conn conn, tp_read_mode mode);

/** Changes the idle timeout (0 = off). Returns 0 or -ENOTCONN. */
TP_API int tp_tcp_set_idle_timeout(tp_ctx *ctx, tp_conn conn, uint32_t ms);

/**
 * The connection of the running connection actor (one started by a
 * listener), or TP_CONN_NONE (another actor, or its connection closed).
 */
TP_API tp_conn tp_tcp_self(tp_ctx *ctx);

/** Options of tp_tcp_connect(); fill with tp_connect_opts_init(). */
typedef struct tp_connect_opts {
    const char *address; /**< numeric IPv4/IPv6 address */
    uint16_t port;       /**< TCP port (required, not 0, unless path set) */
    const char *path;    /**< if set: a Unix socket path instead */
    uint32_t timeout_ms; /**< default 5000 (TLS: then the handshake's own) */
    tp_conn_opts conn;   /**< the connection's options */
    /** TLS (troupe/tls.h): a client context; NULL = plain TCP. The owner
     *  gets TP_MSG_TCP_CONNECTED once the handshake is done. */
    struct tp_tls_ctx *tls;
    /** TLS: the name to send (SNI) and to verify the server's certificate
     *  against (copied); NULL = verify the IP address `address`. */
    const char *server_name;
    /** WebSocket client (troupe/ws.h; copied): after the connect (and the
     *  TLS handshake) the runtime sends the upgrade request; the owner gets
     *  TP_MSG_WS_UPGRADED, then messages instead of bytes. NULL = bytes. */
    const struct tp_ws_opts *ws;
} tp_connect_opts;

TP_API void tp_connect_opts_init(tp_connect_opts *o);

/**
 * Starts an outbound connection owned by the calling actor: it gets
 * TP_MSG_TCP_CONNECTED (error 0, or why it failed, -ETIMEDOUT after
 * timeout_ms), then the connection's other messages. The connection is
 * closed when the actor ends. On success *out is the handle (usable at
 * once: sends are queued until connected). Errors: -EINVAL (no actor,
 * bad address), -ENOMEM, -ESHUTDOWN. Thread: an actor callback.
 */
TP_API int tp_tcp_connect(tp_ctx *ctx, const tp_connect_opts *o, tp_conn *out);

/** What the console shows about a connection. */
typedef struct tp_conn_info {
    tp_conn conn;          /**< the connection's handle */
    tp_pid pid;            /**< owning actor */
    tp_net_addr peer;      /**< remote address; zeros if not known yet */
    tp_net_addr local;     /**< local address; zeros if not known yet */
    int scheduler;         /**< loop that owns the socket */
    const char *state;     /**< "connecting", "open", "closing" */
    const char *mode;      /**< read mode */
    bool read_paused;      /**< active mode paused by flow control */
    bool outbound;         /**< made by tp_tcp_connect() */
    uint64_t bytes_in;     /**< bytes read */
    uint64_t bytes_out;    /**< bytes written to the kernel */
    uint64_t write_queued; /**< bytes waiting to be written */
    uint64_t age_ms;       /**< since accepted / connect started */
    uint64_t idle_ms;      /**< since the last read or write */
    char listener[64];     /**< listener name, "" for outbound */
} tp_conn_info;

/**
 * Calls fn for each open connection (a racy snapshot, like
 * tp_actor_foreach). Stops early when fn returns false. Thread-safe.
 */
TP_API void tp_net_conn_foreach(tp_runtime *rt,
                                bool (*fn)(void *user, const tp_conn_info *),
                                void *user);

/** Runtime-wide network counters. */
typedef struct tp_net_stats {
    uint64_t conns;     /**< open connections (gauge) */
    uint64_t listeners; /**< listeners not closed (gauge) */
    uint64_t accepted;  /**< connections accepted and given an actor */
    uint64_t refused;   /**< accepted connections reset at once (over
                             max_conns, listener closing, or no actor) */
    uint64_t connects;  /**< outbound connects started by tp_tcp_connect()
                             (whatever their outcome) */
    uint64_t closed[TP_NET_CLOSE_REASONS]; /**< by reason (index) */
} tp_net_stats;

/** Fills *out (zeros when the runtime never used the network). */
TP_API void tp_net_get_stats(tp_runtime *rt, tp_net_stats *out);

/* ---------------------------------------------------------------------- */
/* Drain                                                                  */

/**
 * Starts a graceful drain and returns at once: every listener stops
 * accepting (and is closed), every connection stops reading and its owner
 * gets TP_MSG_TCP_DRAIN (a listener's connection actor closes its
 * connection after handling it, once its queued writes are sent, unless it
 * closed it itself); whatever is still open deadline_ms later is closed
 * (TP_NET_CLOSE_DRAIN). Returns 0. Thread-safe (actors included).
 */
TP_API int tp_net_drain_start(tp_runtime *rt, uint32_t deadline_ms);

/**
 * tp_net_drain_start(), then waits until no connection is left. Returns 0,
 * or -ETIMEDOUT if some were still closing shortly after the deadline.
 * tp_runtime_stop() runs it first. Thread: not a scheduler.
 */
TP_API int tp_net_drain(tp_runtime *rt, uint32_t deadline_ms);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_NET_H */
