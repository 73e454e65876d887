/*
 * troupe/direct.h - direct-style actors: straight-line code with a blocking
 * receive, run on the same schedulers as callback actors.
 *
 * A direct-style actor is an ordinary actor whose behaviour is an adapter
 * (TP_DIRECT_BEHAVIOUR): its `main` runs on a fiber of its own and blocks
 * in tp_receive(), tp_receive_match(), tp_sleep() or tp_call_direct(); a
 * blocked actor holds no scheduler thread. Everything else works as for
 * any actor: links, monitors, trap_exit (exit signals arrive through
 * receive as TP_MSG_EXIT), registered names, timers, tracing, supervisors
 * (give tp_direct_behaviour(&d) to a child spec) and restarts.
 *
 *     static void echo_main(tp_ctx *ctx, void *state, void *arg) {
 *         const tp_msg *m;
 *         while (tp_receive(ctx, &m, -1) == 0)
 *             tp_send(ctx, m->from, m->type, m->data, m->len);
 *     }
 *     static const tp_direct echo = {
 *         TP_DIRECT_BEHAVIOUR("echo", 0), .main = echo_main,
 *     };
 *
 * A listener runs a direct actor per connection when its behaviour is
 * tp_direct_behaviour(&d) (read with tp_tcp_recv(), see below).
 *
 * Rules (see docs/DIRECT.md):
 *  - A direct-style actor is pinned to one scheduler (its spawn option
 *    `scheduler`, else one picked round-robin): its ctx stays the same
 *    for its whole life and its stack never moves between threads.
 *  - The blocking calls below may only be called from the actor's own
 *    main (on its fiber). Elsewhere they return -EINVAL.
 *  - A message returned by a receive (or a call's reply) is owned by the
 *    runtime and stays valid until the actor's next blocking call returns
 *    (so its payload may be forwarded by that call), or main ends.
 *  - When the actor dies while blocked (a kill, an untrapped exit signal,
 *    the runtime stopping), main does not continue: its stack is
 *    discarded. Release what must be released in `terminate`.
 *  - Copied stacks (TP_STACK_COPIED): the stack of a parked actor is
 *    saved to the heap and put back when it runs, so a pointer into its
 *    stack must never be given to another actor or kept past a blocking
 *    call by anything but the actor itself.
 */
#ifndef TROUPE_DIRECT_H
#define TROUPE_DIRECT_H

#include <troupe/actor.h>
#include <troupe/net.h>
#include <troupe/request.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Where a direct-style actor's stack lives. */
typedef enum tp_stack_mode {
    /** The behaviour's mode (tp_direct.stack), else TP_STACK_FIXED. */
    TP_STACK_DEFAULT = 0,
    /** A stack of its own: mmap'd, a guard page below it (an overflow
     *  crashes the actor with reason text "stack_overflow"). Pages are
     *  committed as they are touched. */
    TP_STACK_FIXED,
    /** Runs on its scheduler thread's shared stack (TP_DIRECT_SHARED_STACK
     *  bytes, guard page below); while parked it keeps only the bytes it
     *  used, in a heap buffer. Smallest idle footprint; each switch
     *  between two copied-stack actors copies their used bytes. */
    TP_STACK_COPIED
} tp_stack_mode;

/** Default size of a fixed stack (bytes, guard page not included). */
#define TP_DIRECT_STACK_DEFAULT (256u * 1024u)
/** Smallest fixed stack accepted. */
#define TP_DIRECT_STACK_MIN     (16u * 1024u)
/** Size of each scheduler thread's shared stack (copied mode). */
#define TP_DIRECT_SHARED_STACK  (256u * 1024u)

/** Bytes of runtime data in front of a direct actor's own state. */
#define TP_DIRECT_HDR 96u

/** The body of a direct-style actor: runs until it returns (the actor then
 *  ends normally, unless tp_exit_with() set another reason). state is the
 *  actor's own zeroed state (state_size bytes), arg the spawn argument. */
typedef void (*tp_direct_main)(tp_ctx *ctx, void *state, void *arg);

/**
 * A direct-style behaviour. The first member is the behaviour the runtime
 * runs; set it with TP_DIRECT_BEHAVIOUR(name, state_size). Only main is
 * required.
 */
typedef struct tp_direct {
    tp_behaviour behaviour; /**< TP_DIRECT_BEHAVIOUR(); do not change */
    tp_direct_main main;    /**< required */
    tp_stack_mode stack;    /**< stack mode (DEFAULT = FIXED) */
    size_t stack_size;      /**< fixed stacks: bytes, 0 = default */
    /**
     * Optional. Runs once when the actor ends (also when it was killed
     * while blocked), on the scheduler's stack, not the fiber's: it must not
     * call the blocking calls. Like tp_behaviour.terminate otherwise.
     */
    void (*terminate)(tp_ctx *ctx, void *state, const tp_exit_reason *reason);
} tp_direct;

/* The adapter (used by TP_DIRECT_BEHAVIOUR only). */
TP_API int tp_direct_adapter_init(tp_ctx *ctx, void *state, void *arg);
TP_API void tp_direct_adapter_handle(tp_ctx *ctx, void *state,
                                     const tp_msg *msg);
TP_API void tp_direct_adapter_terminate(tp_ctx *ctx, void *state,
                                        const tp_exit_reason *reason);

/** Initialises the behaviour member of a tp_direct (put it first). */
#define TP_DIRECT_BEHAVIOUR(name_, state_size_)                                \
    .behaviour = {                                                             \
        .name = (name_),                                                       \
        .state_size = TP_DIRECT_HDR + (state_size_),                           \
        .init = tp_direct_adapter_init,                                        \
        .handle = tp_direct_adapter_handle,                                    \
        .terminate = tp_direct_adapter_terminate,                              \
    }

/** The behaviour of d, for child specs and tp_spawn(). */
static inline const tp_behaviour *
tp_direct_behaviour(const tp_direct *d)
{
    return &d->behaviour;
}

/** Per-spawn stack choice (tp_spawn_direct()). */
typedef struct tp_direct_opts {
    tp_stack_mode stack; /**< DEFAULT: the behaviour's */
    size_t stack_size;   /**< fixed stacks: bytes, 0: the behaviour's */
} tp_direct_opts;

/**
 * Spawns a direct-style actor from inside an actor (tp_spawn() of its
 * behaviour, with the stack choice of dopts, which may be NULL). The
 * actor's main starts at its first turn, on its scheduler. Errors: -EINVAL
 * (d NULL, no main, behaviour not made with TP_DIRECT_BEHAVIOUR, bad
 * stack size), -ENOMEM (no stack), then as tp_spawn(). Thread: an actor
 * callback or a direct actor's main.
 */
TP_API int tp_spawn_direct(tp_ctx *ctx, const tp_direct *d, void *arg,
                           const tp_spawn_opts *opts,
                           const tp_direct_opts *dopts, tp_pid *out);

/** tp_spawn_direct() from a thread that is not running an actor. */
TP_API int tp_runtime_spawn_direct(tp_runtime *rt, const tp_direct *d,
                                   void *arg, const tp_spawn_opts *opts,
                                   const tp_direct_opts *dopts, tp_pid *out);

/** True when ctx is running a direct actor's main (the blocking calls may
 *  be used). */
TP_API bool tp_in_direct(const tp_ctx *ctx);

/**
 * Waits for the next message (any type, system ones included: trapped
 * TP_MSG_EXIT, TP_MSG_DOWN, ...). timeout_ms < 0 waits forever, 0 only
 * takes a message already queued. On success *msg is the message (valid
 * until the next blocking call) and it is removed from the queue.
 * Returns 0, -ETIMEDOUT, -EINVAL (not in a direct actor's main), -ENOMEM
 * (no timer). If the actor called tp_exit()/tp_exit_with(), does not
 * return: the actor ends. Thread: the actor's main.
 */
TP_API int tp_receive(tp_ctx *ctx, const tp_msg **msg, int timeout_ms);

/** A selective receive's test: true takes the message. */
typedef bool (*tp_match_fn)(const tp_msg *msg, void *arg);

/**
 * Selective receive: the first queued message for which match(msg, arg)
 * is true (match NULL takes any); the others stay queued in their order.
 * While it waits, only messages that arrived since the last scan are
 * tested (Erlang's saved position). Results as tp_receive().
 */
TP_API int tp_receive_match(tp_ctx *ctx, tp_match_fn match, void *arg,
                            const tp_msg **msg, int timeout_ms);

/** Blocks for ms milliseconds; messages arriving meanwhile stay queued.
 *  Returns 0, -EINVAL, -ENOMEM. Thread: the actor's main. */
TP_API int tp_sleep(tp_ctx *ctx, uint32_t ms);

/**
 * Blocking request/reply: tp_request() to `to` and waits for its answer
 * (other messages arriving meanwhile stay queued, in order; only those
 * that arrived after the request are tested). timeout_ms 0 = wait forever.
 * On success *reply (may be NULL) is the TP_MSG_REPLY message (valid until
 * the next blocking call). Returns 0, -ETIMEDOUT, -ESRCH (noproc: no such
 * actor, or it died with the request queued or crashed handling it), or
 * tp_request()'s errors. Works with gen_servers (it is tp_gs_call()'s
 * request). Thread: the actor's main.
 */
TP_API int tp_call_direct(tp_ctx *ctx, tp_pid to, uint32_t type,
                          const void *data, size_t len, uint32_t timeout_ms,
                          const tp_msg **reply);

/**
 * Passive read: waits for bytes of conn (a connection this actor owns: a
 * listener's connection actor's own, tp_tcp_self(), or one it made with
 * tp_tcp_connect()) and copies at most len of them to buf; bytes of a
 * DATA message that did not fit stay queued for the next read. Other
 * messages arriving meanwhile stay queued, in order (a selective receive
 * on conn's DATA, TP_MSG_TCP_CLOSED and TP_MSG_TCP_PEER_SHUTDOWN).
 * Read modes: in TP_READ_ONCE and TP_READ_PASSIVE it asks for the next
 * chunk with tp_tcp_activate() when none is queued (one chunk per call
 * that waits, so bytes come in only as fast as the actor reads); in
 * TP_READ_ACTIVE bytes flow as for any connection actor.
 * Returns the bytes copied (> 0), 0 at end of stream (the connection is
 * closed or gone, or, half_open, the peer shut its side: the CLOSED or
 * PEER_SHUTDOWN message stays queued, so every later read returns 0
 * too), -ETIMEDOUT (timeout_ms as tp_receive(): < 0 forever, 0 only what
 * is queued), -EINVAL (not in a direct actor's main, buf NULL, len 0,
 * conn TP_CONN_NONE), -ENOMEM (no timer). With a listener's default
 * exit_on_close the actor ends once it was handed TP_MSG_TCP_CLOSED: main
 * runs on after the read that returned 0 until its next blocking call.
 * Thread: the actor's main.
 */
TP_API int tp_tcp_recv(tp_ctx *ctx, tp_conn conn, void *buf, size_t len,
                       int timeout_ms);

/**
 * tp_tcp_recv() without the copy: *msg is the next TP_MSG_TCP_DATA message
 * of conn (what a tp_tcp_recv() left of it, if it took only a part; its
 * data is then not 8-byte aligned), valid until the next blocking call;
 * returns its length (> 0). At end of stream returns 0 with *msg the
 * TP_MSG_TCP_CLOSED or TP_MSG_TCP_PEER_SHUTDOWN message (still queued), or
 * NULL when the connection is gone. Other results as tp_tcp_recv(), and
 * -EINVAL for msg NULL. Thread: the actor's main.
 */
TP_API int tp_tcp_recv_msg(tp_ctx *ctx, tp_conn conn, const tp_msg **msg,
                           int timeout_ms);

/** Bytes of stack a direct actor holds now: a parked copied-stack actor's
 *  saved bytes, or a fixed stack's mapping. Owner thread (its ctx). */
TP_API size_t tp_direct_stack_bytes(const tp_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_DIRECT_H */
