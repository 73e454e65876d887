/*
 * troupe/actor.h - actors: behaviours, spawning, messages, blobs, the stash,
 * names, exits, links and monitors.
 *
 * An actor is a small struct plus inline state, run by whichever scheduler
 * holds it. Its callbacks run to completion on a scheduler thread; they must
 * not block (a callback that runs longer than the runtime's
 * long_handler_ms is reported). Everything an actor does goes through the
 * tp_ctx handed to its callbacks; a tp_ctx is only valid during the callback
 * it was passed to, on that thread.
 */
#ifndef TROUPE_ACTOR_H
#define TROUPE_ACTOR_H

#include <stdarg.h>
#include <troupe/base.h>
#include <troupe/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The per-callback context. Opaque; never stored beyond a callback. */
typedef struct tp_ctx tp_ctx;

/**
 * A message as a handler sees it. The receiver may read it until its
 * handler returns (or longer if it stashes it); it must not modify it.
 */
typedef struct tp_msg {
    tp_pid from;      /**< sender, TP_PID_NONE when sent from outside */
    tp_pid to;        /**< receiver */
    uint64_t ref;     /**< request reference, 0 when none */
    uint32_t type;    /**< application tag, or a TP_MSG_* system type */
    uint32_t len;     /**< payload bytes */
    const void *data; /**< payload (8-byte aligned); NULL when len == 0 */
} tp_msg;

/** Runtime message types start here (never sent with tp_send()). */
#define TP_MSG_SYSTEM_BASE  0xffff0000u
/**
 * Types in [TP_MSG_LIBRARY_BASE, TP_MSG_SYSTEM_BASE) are reserved for
 * Troupe's own libraries (supervisor, net, console protocols); application
 * types should stay below TP_MSG_LIBRARY_BASE.
 */
#define TP_MSG_LIBRARY_BASE 0xfffe0000u
/** A trapped exit signal (see tp_msg_exit()). */
#define TP_MSG_EXIT         0xffff0001u
/** A monitor fired (see tp_msg_down()). */
#define TP_MSG_DOWN         0xffff0002u
/** Answer to tp_actor_query(): payload is a tp_actor_info. */
#define TP_MSG_ACTOR_INFO   0xffff0003u

/** True when type is reserved for the runtime. */
static inline bool
tp_msg_is_system(uint32_t type)
{
    return type >= TP_MSG_SYSTEM_BASE;
}

/* ---------------------------------------------------------------------- */
/* Exit reasons                                                           */

typedef enum tp_exit_kind {
    TP_EXIT_NORMAL = 0, /**< finished its work */
    TP_EXIT_SHUTDOWN,   /**< asked to stop by its supervisor / the runtime */
    TP_EXIT_KILL,       /**< untrappable kill request (as a signal) */
    TP_EXIT_KILLED,     /**< died of a kill (as a reason seen by others) */
    TP_EXIT_CRASH,      /**< tp_fail(), a trapped fault, an init error */
    TP_EXIT_NOPROC,     /**< the target did not exist */
    TP_EXIT_USER,       /**< application reason: code + text */
    /** The actor's cluster node went down or is unreachable
     *  (troupe/cluster.h): Erlang's noconnection. */
    TP_EXIT_NOCONNECTION
} tp_exit_kind;

/**
 * Why an actor ended (or an exit signal). text may be NULL; when it is not,
 * it is only valid as long as the message or call that carried it.
 */
typedef struct tp_exit_reason {
    tp_exit_kind kind; /**< what kind of exit */
    int code;          /**< user code, or the signal number of a fault */
    const char *text;  /**< human-readable detail, may be NULL */
} tp_exit_reason;

/** Name of an exit kind ("normal", "shutdown", ...). */
TP_API const char *tp_exit_kind_name(tp_exit_kind kind);

/** True for reasons OTP calls normal: normal and shutdown. */
static inline bool
tp_exit_is_normal(const tp_exit_reason *r)
{
    return r->kind == TP_EXIT_NORMAL || r->kind == TP_EXIT_SHUTDOWN;
}

/* ---------------------------------------------------------------------- */
/* Behaviours                                                             */

typedef void (*tp_handle_fn)(tp_ctx *ctx, void *state, const tp_msg *msg);

/**
 * An actor's code: a const table of callbacks. state_size bytes of state are
 * allocated inline with the actor, zeroed, and passed to every callback.
 */
typedef struct tp_behaviour {
    const char *name;  /**< for logs and the console */
    size_t state_size; /**< bytes of inline state (may be 0) */
    /**
     * Optional. Runs inside tp_spawn() on the spawning thread, before the pid
     * is visible to anyone else. Return 0, or a negative errno to make the
     * spawn fail with that error (terminate is then not called).
     */
    int (*init)(tp_ctx *ctx, void *state, void *arg);
    /** Required. Handles one message. */
    tp_handle_fn handle;
    /**
     * Optional. Runs once when the actor ends (not after a failed init),
     * before links and monitors are notified. May send messages.
     */
    void (*terminate)(tp_ctx *ctx, void *state, const tp_exit_reason *reason);
} tp_behaviour;

/** What a bounded mailbox does with a message that does not fit. */
typedef enum tp_overflow {
    TP_OVERFLOW_REJECT = 0,  /**< the sender gets -EAGAIN */
    TP_OVERFLOW_DROP_NEWEST, /**< the new message is dropped (counted) */
    /** The oldest queued messages are dropped (counted) when the receiver
     *  takes its next message, so it sees the newest `bound` ones. Only
     *  the receiver can remove queued messages: while it is busy, a burst
     *  past twice the bound has its newest excess dropped by the senders,
     *  which keeps memory bounded (then it keeps messages bound..2*bound-1
     *  of the burst). */
    TP_OVERFLOW_DROP_OLDEST,
    TP_OVERFLOW_KILL /**< the receiver is killed ("mailbox overflow") */
} tp_overflow;

/** Spawn options; fill with tp_spawn_opts_init(). */
typedef struct tp_spawn_opts {
    /** Register under this name (copied). NULL = none. */
    const char *name;
    /**
     * Mailbox bound in messages, 0 = unbounded. A system message (a type
     * for which tp_msg_is_system() is true: exit signals, DOWNs, request
     * answers and timeouts, net events, which flow control bounds) always
     * gets in, except TP_MSG_TRACE copies (see tp_trace()); application
     * and library messages count against the bound.
     */
    uint32_t max_msgs;
    /** Mailbox bound in payload bytes, 0 = unbounded (as max_msgs). */
    uint32_t max_bytes;
    /** What happens at the bound. */
    tp_overflow overflow;
    /**
     * Pin the actor to this scheduler (taken modulo the scheduler count):
     * it always runs there and is never stolen. -1 (default) = unpinned: a
     * woken actor runs on the waker's scheduler and may be stolen.
     */
    int scheduler;
    /** Link the new actor to the spawning actor (spawn_link). */
    bool link;
    /** Start with trap_exit on. */
    bool trap_exit;
} tp_spawn_opts;

/** Fills opts with defaults (no name, unbounded, any scheduler). */
TP_API void tp_spawn_opts_init(tp_spawn_opts *opts);

/**
 * Spawns an actor from inside another actor's callback. Runs b->init
 * synchronously (with a ctx whose self is the new actor). arg is passed to
 * init unchanged and is not owned by the runtime. opts may be NULL.
 * On success stores the pid in *out (may be NULL) and returns 0.
 * Errors: -EINVAL (b or b->handle NULL, bad option), -ENOMEM, -EEXIST
 * (name taken), -ESHUTDOWN (runtime stopping), or init's own error.
 * Thread: the calling actor's callback.
 */
TP_API int tp_spawn(tp_ctx *ctx, const tp_behaviour *b, void *arg,
                    const tp_spawn_opts *opts, tp_pid *out);

/**
 * Same as tp_spawn() from a thread that is not running an actor (main,
 * tests, a foreign event loop). opts->link is ignored. Thread-safe, and
 * threads outside the runtime share no lock: each gets a context of its
 * own in the runtime on its first tp_runtime_*() call (kept until the
 * runtime is destroyed and reused by later threads once it exits). The new
 * actor's init runs on the calling thread; it may call any function,
 * tp_runtime_*() ones included (they then act for the calling thread, as
 * its ctx calls act for the new actor).
 */
TP_API int tp_runtime_spawn(tp_runtime *rt, const tp_behaviour *b, void *arg,
                            const tp_spawn_opts *opts, tp_pid *out);

/* ---------------------------------------------------------------------- */
/* Sending                                                                */

/**
 * Sends a copy of data[0..len) to `to`. The caller keeps ownership of data.
 * Per sender, messages arrive in the order sent. Returns 0 (also when the
 * message was dropped by a DROP_NEWEST/DROP_OLDEST/KILL mailbox: it is then
 * counted), -ESRCH (no such actor: counted as a dead letter), -EAGAIN
 * (bounded REJECT mailbox full), -EINVAL (system type or len > 2^31),
 * -ENOMEM. Thread: the calling actor's callback.
 */
TP_API int tp_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
                   size_t len);

/** tp_send() from a thread that is not running an actor. Thread-safe. */
TP_API int tp_runtime_send(tp_runtime *rt, tp_pid to, uint32_t type,
                           const void *data, size_t len);

/** tp_send() to the actor registered under name (-ESRCH if none). */
TP_API int tp_send_named(tp_ctx *ctx, const char *name, uint32_t type,
                         const void *data, size_t len);

/* ---------------------------------------------------------------------- */
/* Blobs: refcounted immutable payloads                                    */

/** A refcounted immutable byte buffer. Opaque. */
typedef struct tp_blob tp_blob;

/**
 * Creates a blob holding a copy of data[0..len) (data may be NULL to get a
 * zeroed blob to fill before sharing via tp_blob_mutable_data()). The caller
 * owns one reference. Returns NULL on ENOMEM. Thread-safe.
 */
TP_API tp_blob *tp_blob_new(const void *data, size_t len);

/** The bytes (8-byte aligned). Thread-safe. */
TP_API const void *tp_blob_data(const tp_blob *b);

/**
 * Writable bytes of a blob that has never been shared (refcount 1 and never
 * sent); NULL otherwise.
 */
TP_API void *tp_blob_mutable_data(tp_blob *b);

/** Length in bytes. Thread-safe. */
TP_API size_t tp_blob_len(const tp_blob *b);

/** Adds a reference; returns b. Thread-safe. */
TP_API tp_blob *tp_blob_ref(tp_blob *b);

/** Drops a reference; the last one frees the blob. Thread-safe. */
TP_API void tp_blob_unref(tp_blob *b);

/**
 * Sends the blob's bytes without copying: the message holds its own
 * reference; the caller's reference is untouched. Errors as tp_send().
 */
TP_API int tp_send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b);

/** tp_send_blob() from a thread that is not running an actor. */
TP_API int tp_runtime_send_blob(tp_runtime *rt, tp_pid to, uint32_t type,
                                tp_blob *b);

/**
 * If msg's payload is a blob, returns it (borrowed: tp_blob_ref() it to keep
 * it beyond the handler), else NULL. Lets an actor forward without copying.
 */
TP_API tp_blob *tp_msg_blob(const tp_msg *msg);

/* ---------------------------------------------------------------------- */
/* The running actor                                                      */

/** The running actor's pid. */
TP_API tp_pid tp_self(const tp_ctx *ctx);

/** The runtime the ctx belongs to. */
TP_API tp_runtime *tp_ctx_runtime(const tp_ctx *ctx);

/** Index of the scheduler running the callback (-1 outside schedulers). */
TP_API int tp_ctx_scheduler(const tp_ctx *ctx);

/** Name of the running behaviour. */
TP_API const char *tp_ctx_behaviour_name(const tp_ctx *ctx);

/**
 * Replaces the handle callback for the following messages (state
 * machines); NULL restores the behaviour's own handle.
 */
TP_API void tp_become(tp_ctx *ctx, tp_handle_fn handler);

/**
 * Defers the message being handled: it is kept, untouched, until
 * tp_unstash_all(). Only valid in handle. Any message another actor or
 * thread sent can be stashed, requests included (answer it after
 * unstashing). A system message -- any type for which tp_msg_is_system()
 * is true: a trapped TP_MSG_EXIT, a TP_MSG_DOWN, TP_MSG_ACTOR_INFO, a
 * request's answer (TP_MSG_REPLY, TP_MSG_TIMEOUT, TP_MSG_NOPROC),
 * TP_MSG_TRACE, the TP_MSG_TCP_* events of troupe/net.h -- cannot: the
 * runtime consumes it as it is delivered (to defer a socket's input, use
 * its passive mode instead). Returns 0, -EINVAL (no current message, or a
 * system message: nothing is stashed) or -ENOBUFS (stash holds 65,536
 * already).
 */
TP_API int tp_stash(tp_ctx *ctx);

/**
 * Puts every stashed message back in front of the mailbox, in the order they
 * were stashed, so they are handled before anything else. Returns how many.
 */
TP_API size_t tp_unstash_all(tp_ctx *ctx);

/** Number of stashed messages. */
TP_API size_t tp_stash_size(const tp_ctx *ctx);

/**
 * Sets the running actor's own mailbox bound, as tp_spawn_opts' max_msgs,
 * max_bytes and overflow would have at spawn (0 = unbounded). For actors
 * that others spawn with default options, such as a listener's connection
 * actors: one calls it from its init. Messages already queued stay; the
 * bound applies to the sends that follow. Returns 0, or -EINVAL (overflow
 * out of range, or ctx is not an actor's). Thread: the actor's callback.
 */
TP_API int tp_set_mailbox_bound(tp_ctx *ctx, uint32_t max_msgs,
                                uint32_t max_bytes, tp_overflow overflow);

/**
 * Ends the running actor normally once the current callback returns (the
 * rest of its mailbox becomes dead letters). Idempotent.
 */
TP_API void tp_exit(tp_ctx *ctx);

/**
 * Ends the running actor with the given reason (text copied) once the
 * current callback returns.
 */
TP_API void tp_exit_with(tp_ctx *ctx, const tp_exit_reason *reason);

/**
 * Crashes the running actor at once: the callback does not continue
 * (control jumps back to the scheduler), the reason is a crash whose text is
 * the formatted message. Never returns. Only valid in a callback.
 */
TP_API void tp_fail(tp_ctx *ctx, const char *fmt, ...) TP_PRINTF(2, 3)
    __attribute__((noreturn));

/** vprintf flavour of tp_fail(). */
TP_API void tp_vfail(tp_ctx *ctx, const char *fmt, va_list ap)
    __attribute__((noreturn));

/* ---------------------------------------------------------------------- */
/* Failure model: exit signals, links, monitors                            */

/**
 * trap_exit: when on, exit signals from linked actors (and tp_exit_pid(),
 * except kill) arrive as TP_MSG_EXIT messages instead of ending the actor.
 */
TP_API void tp_trap_exit(tp_ctx *ctx, bool on);

/**
 * Links the running actor with other (both directions). If other does not
 * exist the caller receives an exit signal with reason noproc at once
 * (trapped: a TP_MSG_EXIT). If other cannot record the link (out of
 * memory) the link breaks at once with an exit signal (crash, code
 * ENOMEM). Returns 0, -EINVAL (self or none), -ENOMEM (nothing linked).
 */
TP_API int tp_link(tp_ctx *ctx, tp_pid other);

/** Removes a link (both directions). Returns 0 or -EINVAL. */
TP_API int tp_unlink(tp_ctx *ctx, tp_pid other);

/**
 * Monitors target: when it ends, a TP_MSG_DOWN with the reason and *ref
 * arrives; if it does not exist, DOWN(noproc) arrives at once; if it
 * cannot record the monitor (out of memory), DOWN(crash, code ENOMEM)
 * arrives at once. Returns 0, -EINVAL, -ENOMEM (nothing monitored).
 */
TP_API int tp_monitor(tp_ctx *ctx, tp_pid target, uint64_t *ref);

#define TP_DEMONITOR_FLUSH 1u /**< also drop a DOWN already queued */

/**
 * Removes a monitor. With TP_DEMONITOR_FLUSH a DOWN for it that is already
 * queued is dropped, so it is never seen. Returns 0, or -ENOENT (unknown or
 * already fired: then, without FLUSH, the DOWN may still arrive).
 */
TP_API int tp_demonitor(tp_ctx *ctx, uint64_t ref, unsigned flags);

/**
 * Sends an exit signal to target, like Erlang's exit/2. Reason kill cannot
 * be trapped; normal is ignored unless trapped. A kill always gets through,
 * even out of memory (its text is then lost). Returns 0, -ESRCH, or
 * -ENOMEM (any other reason, when the signal cannot be allocated).
 */
TP_API int tp_exit_pid(tp_ctx *ctx, tp_pid target,
                       const tp_exit_reason *reason);

/** tp_exit_pid() from outside an actor. Thread-safe. */
TP_API int tp_runtime_exit_pid(tp_runtime *rt, tp_pid target,
                               const tp_exit_reason *reason);

/**
 * Decodes a TP_MSG_EXIT: *pid is the actor that exited (or sent the
 * signal), *reason's text points into msg. Returns 0 or -EINVAL.
 */
TP_API int tp_msg_exit(const tp_msg *msg, tp_pid *pid, tp_exit_reason *reason);

/** Decodes a TP_MSG_DOWN. Returns 0 or -EINVAL. */
TP_API int tp_msg_down(const tp_msg *msg, tp_pid *pid, uint64_t *ref,
                       tp_exit_reason *reason);

/** A fresh runtime-unique reference (never 0). Thread-safe. */
TP_API uint64_t tp_make_ref(tp_runtime *rt);

/* ---------------------------------------------------------------------- */
/* Names                                                                  */

#define TP_NAME_MAX 63 /**< longest registrable name */

/**
 * Registers pid under name (copied). The name is released when the actor
 * ends. Returns 0, -EEXIST (taken), -ESRCH (pid dead), -EINVAL (empty or
 * longer than TP_NAME_MAX), -ENOMEM. Thread-safe.
 */
TP_API int tp_register(tp_runtime *rt, const char *name, tp_pid pid);

/** Removes a registration if it names pid. Returns 0 or -ENOENT. */
TP_API int tp_unregister(tp_runtime *rt, const char *name, tp_pid pid);

/**
 * The pid registered under name, or TP_PID_NONE. Lock-free on scheduler
 * threads; takes a lock elsewhere. Thread-safe.
 */
TP_API tp_pid tp_whereis(tp_runtime *rt, const char *name);

/* ---------------------------------------------------------------------- */
/* Introspection                                                          */

/** What the runtime knows of an actor (see tp_actor_peek/tp_actor_query). */
typedef struct tp_actor_info {
    tp_pid pid;                 /**< the actor */
    tp_pid parent;              /**< spawner, or supervisor */
    const char *behaviour;      /**< static string */
    char name[TP_NAME_MAX + 1]; /**< registered name, "" if none */
    int scheduler;              /**< home scheduler hint */
    uint64_t mailbox;           /**< queued messages */
    uint64_t handled;           /**< messages handled */
    uint64_t drops;             /**< messages dropped by its bound */
    uint64_t memory;            /**< bytes: actor + state + queued payloads */
    uint32_t max_msgs;          /**< bound, 0 = none */
    uint32_t links;             /**< only from tp_actor_query() */
    uint32_t monitors;          /**< monitors it holds (query only) */
    uint32_t monitored;         /**< monitors on it (query only) */
    uint32_t stash;             /**< stashed messages (query only) */
    bool trap_exit;             /**< query only */
    uint64_t started_ns; /**< spawn time (tp_now_ns clock, 1 s precision) */
    /** A direct-style actor (troupe/direct.h): bytes of stack it holds
     *  (a parked copied-stack actor's saved bytes, or its fixed stack's
     *  mapping); 0 for callback actors. Query only. */
    uint64_t stack_bytes;
    bool direct; /**< a direct-style actor (query only) */
} tp_actor_info;

/**
 * Reads what can be read of a live actor without asking it (mailbox length,
 * counters, behaviour, scheduler). Returns 0 or -ESRCH. Thread-safe.
 */
TP_API int tp_actor_peek(tp_runtime *rt, tp_pid pid, tp_actor_info *out);

/**
 * Asks target for its full info: it answers with a TP_MSG_ACTOR_INFO message
 * (payload: tp_actor_info, msg->ref == *ref) when it next runs, or the
 * caller gets nothing if it dies first (monitor it to know). Returns 0 or
 * -ESRCH.
 */
TP_API int tp_actor_query(tp_ctx *ctx, tp_pid target, uint64_t *ref);

/**
 * Calls fn for each live actor (a racy snapshot). Stops early when fn
 * returns false. Thread-safe; fn must not spawn.
 */
TP_API void tp_actor_foreach(tp_runtime *rt,
                             bool (*fn)(void *user, const tp_actor_info *),
                             void *user);

/**
 * One bounded step of tp_actor_foreach(), for scans that must not hold a
 * thread long (an actor scanning a million actors does it in chunks over
 * several turns): visits the live actors in the next max_slots pid-table
 * slots from *cursor (start with 0) and advances *cursor. Returns true if
 * slots remain, false when the scan is complete (or fn returned false).
 * Actors spawned during a scan may or may not be seen. Thread-safe; fn must
 * not spawn.
 */
TP_API bool tp_actor_foreach_step(tp_runtime *rt, uint32_t *cursor,
                                  uint32_t max_slots,
                                  bool (*fn)(void *user, const tp_actor_info *),
                                  void *user);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_ACTOR_H */
