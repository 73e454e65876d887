/*
 * net/net_int.h - connections, listeners and the per-loop network state.
 *
 * Ownership and threads:
 *  - A connection (struct tp__conn) belongs to one scheduler's loop. Its
 *    libuv handle and the fields marked "loop" are touched only on that
 *    loop's thread. Fields that other threads read (senders, the console)
 *    are C11 atomics.
 *  - Connection blocks are type-stable: they live in chunks of CHUNK_CONNS
 *    blocks that are never freed before the runtime is destroyed, and a
 *    block keeps its index for life. A handle (generation << 32 | index)
 *    is resolved with two loads and a generation compare, so a stale
 *    handle from any thread never touches freed memory.
 *  - Counters shared by a sender and the loop carry the generation in their
 *    high 32 bits (wq, rxq) and are only changed with a CAS that checks
 *    it, so a stale sender can never disturb a later incarnation.
 *  - Listeners are type-stable too (kept until the runtime is destroyed):
 *    connection actors reach their wrapper behaviour and options through
 *    them at any time.
 */
#ifndef TP_NET_INT_H
#define TP_NET_INT_H

#include "actors/actor_int.h"

#include <troupe/net.h>
#include <uv.h>

/* Connection states (atomic: senders and the console read them). */
enum tp__conn_state {
    TP__C_FREE = 0,
    TP__C_CONNECTING,
    TP__C_OPEN,
    TP__C_CLOSING, /* closed for the owner: flushing writes, then close */
    TP__C_CLOSED   /* uv_close() called, waiting for its callback */
};

/* Loop-only flags. */
#define TP__CF_READING   0x01u /* uv_read_start() in effect */
#define TP__CF_WRAPPED   0x02u /* owner is a listener's connection actor */
#define TP__CF_PEER_EOF  0x04u /* the peer shut its sending side */
#define TP__CF_SHUT      0x08u /* tp_tcp_shutdown() requested */
#define TP__CF_OUTBOUND  0x10u /* made by tp_tcp_connect() */
#define TP__CF_WPAUSED   0x20u /* reading paused by the write high mark */
#define TP__CF_DRAINING  0x40u /* owner was told TP_MSG_TCP_DRAIN */
#define TP__CF_SHUT_DONE 0x80u /* our sending side is shut down */

/* wq: gen << 32 | WQ_BLOCKED | WQ_SHUT | bytes queued for writing. */
#define TP__WQ_BLOCKED (1ull << 31) /* over write_high, owner was told */
#define TP__WQ_SHUT    (1ull << 30) /* tp_tcp_shutdown(): no more sends */
#define TP__WQ_BYTES   0x3fffffffull
/* rxq: gen << 32 | RX_PAUSED | RX_RESUME | DATA bytes waiting (30 bits). */
#define TP__RX_PAUSED  (1ull << 31)
#define TP__RX_RESUME  (1ull << 30) /* a resume command is on its way */
#define TP__RX_BYTES   0x3fffffffull

struct tp__net;
struct tp__net_loop;

struct tp__conn {
    uv_tcp_t h; /* loop; first, so a handle pointer is the connection */
    /* Idle timeout, connect timeout, linger, or the flow re-check of an
     * outbound connection: one wheel timer, its meaning follows state.
     * Its `next` links the block in a free list while it is free. */
    struct tp__wtimer timer; /* loop */
    _Atomic uint64_t wq;
    _Atomic uint64_t rxq;
    _Atomic uint64_t owner; /* pid told about the connection */
    _Atomic uint64_t bytes_in, bytes_out;
    /* Options: the listener's own (the listener is found from them) or an
     * interned copy (outbound). Both live until the runtime is destroyed,
     * so any thread may read them through a stale handle. */
    _Atomic(const tp_conn_opts *) cfg;
    _Atomic uint32_t gen;     /* incarnation, never 0 */
    uint32_t idx;             /* index for life */
    _Atomic uint32_t born_s;  /* seconds after the runtime started */
    _Atomic uint32_t last_ms; /* low 32 bits of the last I/O tick */
    uint32_t idle_ms;         /* loop */
    _Atomic int fd;           /* for the console's getpeername */
    _Atomic uint8_t state;
    _Atomic uint8_t mode; /* tp_read_mode | TP__MODE_OUTBOUND */
    uint8_t flags;        /* loop */
    uint8_t reason;       /* loop: why it closes (tp_net_close) */
    uint16_t credit;      /* loop: chunks allowed in once/passive mode */
    _Atomic uint16_t sched;
    /* TLS and WebSocket hook: the connection's TLS state (net/tls.c) when
     * mode has TP__MODE_TLS, else its WebSocket state (net/ws.c) when it
     * has TP__MODE_WS; a wss connection's WebSocket state hangs off its
     * TLS state. One pointer for both keeps the block at 368 bytes. Loop
     * only, set before the connection opens; use tp__conn_tls/_ws(). */
    void *layer;
};

#define TP__MODE_MASK     0x03u
#define TP__MODE_TLS      0x04u /* layer is a struct tp__tls */
#define TP__MODE_WS       0x08u /* a WebSocket state is attached */
#define TP__MODE_OUTBOUND 0x80u

/* What a TLS state starts with (tls.c): its connection's WebSocket state. */
struct tp__layer_head {
    struct tp__ws *ws;
};

static inline struct tp__tls *
tp__conn_tls(struct tp__conn *c)
{
    return (atomic_load_explicit(&c->mode, memory_order_relaxed) & TP__MODE_TLS)
               ? (struct tp__tls *)c->layer
               : NULL;
}

static inline struct tp__ws *
tp__conn_ws(struct tp__conn *c)
{
    uint8_t m = atomic_load_explicit(&c->mode, memory_order_relaxed);

    if (!(m & TP__MODE_WS))
        return NULL;
    return (m & TP__MODE_TLS) ? ((struct tp__layer_head *)c->layer)->ws
                              : (struct tp__ws *)c->layer;
}

/* Attach (or, with NULL, detach) a layer's state. TLS first, then the
 * WebSocket state. */
static inline void
tp__conn_set_tls(struct tp__conn *c, struct tp__tls *t)
{
    c->layer = t;
    if (t != NULL)
        atomic_fetch_or(&c->mode, TP__MODE_TLS);
    else
        atomic_fetch_and(&c->mode, (uint8_t) ~(TP__MODE_TLS | TP__MODE_WS));
}

static inline void
tp__conn_set_ws(struct tp__conn *c, struct tp__ws *w)
{
    uint8_t m = atomic_load_explicit(&c->mode, memory_order_relaxed);

    if (m & TP__MODE_TLS)
        ((struct tp__layer_head *)c->layer)->ws = w;
    else
        c->layer = w;
    if (w != NULL)
        atomic_fetch_or(&c->mode, TP__MODE_WS);
    else
        atomic_fetch_and(&c->mode, (uint8_t)~TP__MODE_WS);
}

#define TP__NCHUNK_BITS  6u /* 64 blocks (23 KiB): little slack per loop */
#define TP__NCHUNK_CONNS (1u << TP__NCHUNK_BITS)
#define TP__NMAX_CHUNKS  (1u << 18) /* 16.7 M connections */

/* A listener's socket on one loop. */
struct tp__proxy_wait;

struct tp__lsock {
    uv_poll_t poll;                     /* loop */
    struct tp__proxy_wait *proxy_waits; /* loop: PROXY headers awaited */
    struct tp_listener *l;
    struct tp__sched *s;
    int fd;                    /* owned; -1 once closed */
    bool started, closed;      /* loop */
    struct tp__wtimer backoff; /* loop */
    struct tp__cmd start_cmd, stop_cmd;
};

struct tp_listener {
    struct tp__net *net;
    struct tp_listener *next; /* net->listeners (net->lock) */
    /* The connection actors' behaviour: the listener's own, wrapped. */
    tp_behaviour wrap;
    tp_listen_opts o; /* copy; strings point at the buffers below */
    char name[64];
    char path[108];
    char supname[64]; /* o.supervisor_name points here when set */
    tp_net_addr addr;
    bool is_unix;
    unsigned nls;
    struct tp__lsock *ls;
    _Atomic int closed;
    _Atomic int backoff; /* loops backing off now */
    _Atomic uint64_t conns, accepted, refused, emfile, errors;
    /* TLS hook: the listener's context (net/tls.c; NULL = plain TCP),
     * swapped by tp_tls_listener_reload() under tls.c's lock. */
    struct tp_tls_ctx *tls;
    /* WebSocket hook: the listener's WebSocket options (net/ws.c), NULL
     * for a byte stream. */
    struct tp__ws_cfg *ws;
};

/* What the wrapper keeps for the connection actor in one actor slot (see
 * wrap.c): owner thread only. */
struct tp__wslot {
    tp_conn conn;        /* TP_CONN_NONE once closed */
    tp_handle_fn become; /* the user's tp_become() handler, or NULL */
};

#define TP__WSLOT_BITS  13u /* 8,192 entries: 128 KiB chunks */
#define TP__WSLOT_CHUNK (1u << TP__WSLOT_BITS)
#define TP__WSLOT_DIR   (1u << (32 - TP__WSLOT_BITS))

/* What a loop's network code keeps. */
struct tp__net_loop {
    struct tp__net *net;
    struct tp__sched *s;
    char *rbuf;           /* loop: the shared read buffer (lazily) */
    pthread_mutex_t lock; /* the free list: outbound connects allocate
                             from any thread */
    struct tp__conn *free;
    /* Drain: loop-only. */
    struct tp__wtimer drain_timer;
    /* uv_now(loop) - runtime tick, set on the loop thread at start. */
    uint64_t tick_base;
};

/* An outbound connection's options, interned (kept until destroy). */
struct tp__cfg {
    struct tp__cfg *next;
    tp_conn_opts o;
};

struct tp__net {
    struct tp_runtime *rt;
    pthread_mutex_t lock; /* listeners, chunk creation, cfgs */
    struct tp_listener *listeners;
    struct tp__cfg *cfgs;
    struct tp__net_loop *loops; /* one per scheduler */
    _Atomic(struct tp__conn *) *chunks;
    _Atomic uint32_t nchunks;
    _Atomic(struct tp__wslot *) *wslots; /* by actor slot index */
    _Atomic int64_t open;
    _Atomic uint64_t accepted, refused, connects;
    _Atomic uint64_t closed[TP_NET_CLOSE_REASONS];
    struct tp__stop_hook drain_hook;
    /* PROXY protocol: the addresses its header gave, by connection handle
     * (net->lock; proxy.c), for the console. nproxied lets the others skip
     * the lock. */
    struct tp__u64map proxied;
    _Atomic uint32_t nproxied;
};

/* Commands that travel to a connection's loop. */
enum tp__net_op {
    TP__OP_CLOSE = 1,
    TP__OP_SHUTDOWN,
    TP__OP_ACTIVATE,
    TP__OP_MODE,
    TP__OP_RESUME,
    TP__OP_IDLE,
    TP__OP_CONNECT,
    TP__OP_DRAIN,
    TP__OP_WS_CLOSE /* WebSocket hook: tp_ws_close() (arg: the code) */
};

struct tp__ncmd {
    struct tp__cmd cmd;
    tp_conn h;
    uint32_t arg;
    uint8_t op;
    uint8_t klass; /* pool size class */
};

/* A write: a command while it travels, then the uv_write_t request. */
struct tp__wreq {
    struct tp__cmd cmd;
    uv_write_t req;
    tp_conn h;
    tp_blob *blob; /* bytes, when not inline */
    const char *base;
    uint32_t len;    /* bytes to write */
    uint32_t queued; /* bytes counted in the connection's wq */
    uint8_t klass;
    /* WebSocket hook: made by the runtime on the loop (the upgrade answer,
     * control frames), not an actor's send: never held for the upgrade. */
    uint8_t internal;
    _Alignas(8) char data[];
};

static inline const tp_conn_opts *
tp__conn_cfg(struct tp__conn *c)
{
    return atomic_load_explicit(&c->cfg, memory_order_relaxed);
}

static inline tp_read_mode
tp__conn_mode(struct tp__conn *c)
{
    return (tp_read_mode)(atomic_load_explicit(&c->mode, memory_order_relaxed) &
                          TP__MODE_MASK);
}

/* The listener that accepted c, or NULL (outbound). */
static inline struct tp_listener *
tp__conn_listener(struct tp__conn *c)
{
    if (atomic_load_explicit(&c->mode, memory_order_relaxed) &
        TP__MODE_OUTBOUND)
        return NULL;
    return tp__container_of(tp__conn_cfg(c), struct tp_listener, o.conn);
}

/* ---- net.c ---- */
static inline struct tp__net *
tp__net_of(struct tp_runtime *rt)
{
    /* Written once under a lock; the acquire pairs with that release. */
    return __atomic_load_n((struct tp__net **)&rt->ext[TP__EXT_NET],
                           __ATOMIC_ACQUIRE);
}

/* The runtime's network state, created on first use. */
struct tp__net *tp__net_get(struct tp_runtime *rt, int *err);
static inline tp_conn
tp__conn_handle(struct tp__conn *c)
{
    return (uint64_t)atomic_load_explicit(&c->gen, memory_order_relaxed) << 32 |
           c->idx;
}
/* The block a handle names, or NULL (never a block of another index). */
struct tp__conn *tp__conn_block(struct tp__net *net, tp_conn h);
/* The connection a handle names if it is still that incarnation. */
struct tp__conn *tp__conn_resolve(struct tp__net *net, tp_conn h);
/* A free block (loop: the loop it will live on). NULL on ENOMEM. */
struct tp__conn *tp__conn_alloc(struct tp__net_loop *nl);
/* Back to its loop's free list, with a new generation (loop thread). */
void tp__conn_release(struct tp__net_loop *nl, struct tp__conn *c);
/* The runtime tick (ms) from the loop's cached clock, low 32 bits: no
 * system call (libuv refreshes it once per loop iteration). Loop thread. */
uint32_t tp__net_tick(struct tp__net_loop *nl);
/* Pool allocation for commands. */
void *tp__net_cmd_alloc(size_t size, uint8_t *klass);
void tp__net_cmd_free(void *p, uint8_t klass);
int tp__net_post(struct tp__net *net, tp_conn h, enum tp__net_op op,
                 uint32_t arg);
/* Posts a prepared command (nc->h, op, klass set) to c's loop (FIFO). */
/* PROXY protocol (net/proxy.c). A parsed header: its length, and the
 * client (src) and the address it connected to (dst), unless local (a
 * LOCAL command, UNKNOWN or UNSPEC: the socket's own addresses stand). */
#define TP__PROXY_TIMEOUT_MS 5000u /* the header must be in by then */
struct tp__proxy_hdr {
    size_t len;
    bool local;
    tp_net_addr src, dst;
};
/* Parses the start of a connection: 1 (a whole header, h filled), 0 (not
 * enough bytes yet), -EPROTO (not a valid v1 or v2 header). Pure. */
int tp__proxy_parse(const void *buf, size_t n, struct tp__proxy_hdr *h);
/* Watches accepted fd until its header is in, then tp__accept_finish();
 * on a bad header, a timeout or EOF closes fd (the listener's slot taken
 * for it is given back). Loop thread of ls. */
void tp__proxy_wait(struct tp__lsock *ls, int fd);
/* The console's addresses of a PROXY connection: add at open, get (false
 * when conn has none), del when its block is released. Any thread. */
void tp__net_proxied_add(struct tp__net *net, tp_conn conn,
                         const tp_net_addr *peer, const tp_net_addr *local);
bool tp__net_proxied_get(struct tp__net *net, tp_conn conn, tp_net_addr *peer,
                         tp_net_addr *local);
void tp__net_proxied_del(struct tp__net *net, tp_conn conn);
void tp__net_proxied_fini(struct tp__net *net);
/* Ends every wait of ls (its listener closes). Loop thread of ls. */
void tp__proxy_abort_all(struct tp__lsock *ls);
/* net/listen.c: the rest of an accept (a slot is taken); h: the PROXY
 * header's addresses, or NULL. Loop thread of ls. */
void tp__accept_finish(struct tp__lsock *ls, int fd,
                       const struct tp__proxy_hdr *h);

/* The console's `tls reload`: replaces the TLS context of the listener
 * called name (tp_listener_info.name). 0, -ENOENT, or -EINVAL (not TLS). */
int tp__net_listener_tls_reload(tp_runtime *rt, const char *name,
                                struct tp_tls_ctx *ctx);
void tp__net_post_cmd(struct tp__net *net, struct tp__conn *c,
                      struct tp__ncmd *nc);

/* ---- opts.c ---- */
/* 0 when o's limits are consistent, else -EINVAL. */
int tp__conn_opts_check(const tp_conn_opts *o);

/* ---- conn.c (loop thread unless said otherwise) ---- */
/* Initialises c's fields for a new incarnation (cfg must live until the
 * runtime is destroyed: a listener's options or an interned copy). */
void tp__conn_setup(struct tp__conn *c, struct tp__sched *s,
                    const tp_conn_opts *cfg, uint8_t flags);
/* An accepted or connected socket is open: starts reading and timers. */
void tp__conn_opened(struct tp__conn *c);
/* Closes: the owner is told (unless reason is OWNER_EXIT); graceful
 * closes flush queued writes first (for at most linger_ms). */
void tp__conn_close(struct tp__conn *c, tp_net_close reason, int err,
                    bool graceful);
/* Delivers a net message about c to its owner. */
void tp__conn_tell(struct tp__conn *c, uint32_t type, const void *p,
                   size_t len);
/* Runs a command on its connection (validated: c is nc->h's, on this
 * loop). */
void tp__conn_exec(struct tp__conn *c, struct tp__ncmd *nc);
/* Starts or stops reading to match the mode, flow control and state. */
void tp__conn_read_update(struct tp__conn *c);
/* (Re-)arms the connection's wheel timer. */
void tp__conn_timer_arm(struct tp__conn *c, uint32_t ms);
/* Runs a write on the connection's loop (w's bytes counted in wq). */
void tp__conn_write(struct tp__conn *c, struct tp__wreq *w);
/* Writes what the kernel takes at once when nothing is queued before it;
 * returns the bytes written (0 when it must queue) or a libuv error. */
ssize_t tp__conn_try_write(struct tp__conn *c, const char *p, size_t len);
/* TLS hooks (net/tls.c drives these on the loop thread). */
/* Delivers plaintext read from the connection as DATA (flow control). */
void tp__conn_on_data(struct tp__conn *c, const char *base, size_t n);
/* WebSocket hook: delivers one message of `type` to the owner, with the
 * flow control of DATA (only DATA bytes count in rxq). */
void tp__conn_deliver(struct tp__conn *c, uint32_t type, const char *base,
                      size_t n);
/* The peer ended its stream (EOF, or a TLS close_notify). */
void tp__conn_on_eof(struct tp__conn *c);
/* Whether the connection wants to read now (mode, credit, flow). */
bool tp__conn_want_read(struct tp__conn *c);
/* Writes w's bytes as they are (ciphertext), bypassing the TLS layer. */
void tp__conn_write_raw(struct tp__conn *c, struct tp__wreq *w);
/* Arms the idle timeout (after a TLS handshake). */
void tp__conn_idle_arm(struct tp__conn *c);
/* Errors that end a connection (from a read or a write). */
void tp__conn_io_error(struct tp__conn *c, int err);
void tp__wreq_free(struct tp__wreq *w);
/* Closes without telling anyone (a connect that failed, a spawn that
 * failed). */
void tp__conn_discard(struct tp__conn *c);
/* Loop of a connection. */
struct tp__net_loop *tp__conn_loop(struct tp__conn *c);
struct tp__sched *tp__conn_sched(struct tp__net *net, struct tp__conn *c);
void tp__addr_from_sockaddr(const void *sa, tp_net_addr *out);
int tp__addr_to_sockaddr(const tp_net_addr *a, void *ss, unsigned *len);

/* ---- wrap.c ---- */
void tp__wrap_behaviour(struct tp_listener *l);
bool tp__is_wrapped(tp_ctx *ctx);
/* Direct-style hooks (direct/direct.c): the user's behaviour of the running
 * connection actor (NULL: not one), and the flow-control re-check after a
 * direct connection actor took a message out of its own queue. */
const tp_behaviour *tp__wrapped_behaviour(tp_ctx *ctx);
void tp__wrap_progress(tp_ctx *ctx);
/* Spawns a listener's connection actor for c on the accepting loop. */
int tp__wrap_spawn(struct tp__net_loop *nl, struct tp__conn *c,
                   struct tp_listener *l, const tp_tcp_opened *opened);

/* ---- connect.c ---- */
void tp__connect_start(struct tp__conn *c, struct tp__ncmd *nc);
void tp__connect_timeout(struct tp__conn *c);
/* TLS hook: an outbound TLS connection's handshake finished (err 0: the
 * owner gets TP_MSG_TCP_CONNECTED now) or failed (err < 0: CONNECTED with
 * that error, then the connection is discarded). */
void tp__connect_report(struct tp__conn *c, int err);
/* An interned copy of o (NULL on ENOMEM). Thread-safe. */
const tp_conn_opts *tp__net_cfg_intern(struct tp__net *net,
                                       const tp_conn_opts *o);

/* ---- listen.c ---- */
void tp__listeners_free(struct tp__net *net);
/* Closes every open listener (for a drain). Thread-safe. */
void tp__listeners_close_all(struct tp__net *net);

#endif /* TP_NET_INT_H */
