/*
 * troupe/gen_server.h - servers written as callbacks, like OTP's
 * gen_server: handle_call for requests that want an answer, handle_cast
 * for one-way requests, handle_info for everything else.
 *
 * A gen_server is an ordinary actor whose behaviour dispatches for you. Its
 * table embeds that behaviour, so a gen_server can be spawned with
 * tp_gen_server_spawn() or given to anything that takes a behaviour (a
 * supervisor's child spec: tp_gen_server_behaviour(&my_server)).
 *
 *     static const tp_gen_server counter = {
 *         TP_GEN_SERVER_BEHAVIOUR("counter", sizeof(struct counter)),
 *         .handle_call = counter_call,
 *         .handle_cast = counter_cast,
 *     };
 *
 * How messages are told apart, in this order:
 *  - a call is a request: a message carrying a reference
 *    (tp_msg_is_request(): sent with tp_gs_call(), tp_request() or
 *    tp_runtime_call());
 *  - a cast is a message of type TP_MSG_GS_CAST, which only tp_gs_cast()
 *    and tp_gs_runtime_cast() send: the cast's own type and payload travel
 *    inside it (an 8-byte envelope: the type, 4 reserved bytes, then the
 *    payload), and handle_cast sees them unwrapped, as if sent directly;
 *  - an exit signal from the server's parent (its supervisor), when the
 *    server traps exits, stops the server with the signal's reason (as in
 *    OTP), without reaching handle_info;
 *  - everything else is an info: plain tp_send() messages, timer
 *    messages, TP_MSG_EXIT / TP_MSG_DOWN, answers to the server's own
 *    requests (TP_MSG_REPLY / TIMEOUT / NOPROC).
 * A message traced with tp_trace() keeps its wire form: a cast shows as
 * TP_MSG_GS_CAST with the envelope in front of its payload.
 */
#ifndef TROUPE_GEN_SERVER_H
#define TROUPE_GEN_SERVER_H

#include <troupe/actor.h>
#include <troupe/pack.h>
#include <troupe/request.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The envelope of a cast (a library type: see TP_MSG_LIBRARY_BASE). */
#define TP_MSG_GS_CAST 0xfffe0201u
/** Bytes of the cast envelope before the payload. */
#define TP_GS_CAST_HDR 8u

/** What a callback tells the server to do next (Erlang's return tuples). */
typedef enum tp_gs_result {
    /** Go on. From handle_call: no reply now; answer later with
     *  tp_gs_reply() on a saved tp_gs_from (or never). */
    TP_GS_NOREPLY = 0,
    /** handle_call: the call is answered; if the callback did not call
     *  tp_gs_reply(), an empty reply is sent now. Elsewhere: as NOREPLY. */
    TP_GS_REPLY = 1,
    /** Stop the server: normal, or the reason given to tp_gs_stop() /
     *  tp_exit_with(). A call not yet answered gets TP_MSG_NOPROC, so its
     *  caller knows at once that no reply will come. */
    TP_GS_STOP = 2
} tp_gs_result;

/**
 * Who made a call: enough to answer it, now or later. Copy it into the
 * server's state to answer after handle_call returned (deferred reply).
 */
typedef struct tp_gs_from {
    tp_pid pid;   /**< where the answer goes (tp_runtime_call: a proxy) */
    uint64_t ref; /**< the call's reference */
    bool replied; /**< set by tp_gs_reply() through this tp_gs_from */
} tp_gs_from;

/**
 * A gen_server's callbacks. The first member is the behaviour the runtime
 * runs; set it with TP_GEN_SERVER_BEHAVIOUR(name, state_size). The state
 * (state_size bytes, zeroed) is passed to every callback. A callback
 * returns a tp_gs_result; a negative errno (or any other value) crashes
 * the server ("bad return"). Every callback is optional: without
 * handle_call a call is answered with TP_MSG_NOPROC, without handle_cast
 * or handle_info those messages are dropped. The callbacks run like any
 * actor's (same context rules; tp_fail() crashes the server).
 */
typedef struct tp_gen_server {
    tp_behaviour behaviour; /**< TP_GEN_SERVER_BEHAVIOUR(); do not change */
    /** As tp_behaviour.init: 0, or a negative errno failing the spawn. */
    int (*init)(tp_ctx *ctx, void *state, void *arg);
    /** A call: answer with tp_gs_reply(ctx, from, ...) and/or return. */
    int (*handle_call)(tp_ctx *ctx, void *state, const tp_msg *msg,
                       tp_gs_from *from);
    /** A cast: msg->type and msg->data are the cast's own. */
    int (*handle_cast)(tp_ctx *ctx, void *state, const tp_msg *msg);
    /** Any other message. */
    int (*handle_info)(tp_ctx *ctx, void *state, const tp_msg *msg);
    /** As tp_behaviour.terminate. */
    void (*terminate)(tp_ctx *ctx, void *state, const tp_exit_reason *reason);
} tp_gen_server;

/* The adapter the behaviour runs (used by TP_GEN_SERVER_BEHAVIOUR only). */
TP_API int tp_gs_adapter_init(tp_ctx *ctx, void *state, void *arg);
TP_API void tp_gs_adapter_handle(tp_ctx *ctx, void *state, const tp_msg *msg);
TP_API void tp_gs_adapter_terminate(tp_ctx *ctx, void *state,
                                    const tp_exit_reason *reason);

/**
 * Initialises the behaviour member of a tp_gen_server (a designated
 * initialiser: put it first in the table's initialiser).
 */
#define TP_GEN_SERVER_BEHAVIOUR(name_, state_size_)                            \
    .behaviour = {                                                             \
        .name = (name_),                                                       \
        .state_size = (state_size_),                                           \
        .init = tp_gs_adapter_init,                                            \
        .handle = tp_gs_adapter_handle,                                        \
        .terminate = tp_gs_adapter_terminate,                                  \
    }

/** The behaviour of gs, for child specs and tp_spawn(). */
static inline const tp_behaviour *
tp_gen_server_behaviour(const tp_gen_server *gs)
{
    return &gs->behaviour;
}

/**
 * Spawns a gen_server from inside an actor: tp_spawn() of its behaviour.
 * arg goes to gs->init unchanged. Errors: -EINVAL (gs NULL or its
 * behaviour not made with TP_GEN_SERVER_BEHAVIOUR), then as tp_spawn().
 * Thread: an actor callback.
 */
TP_API int tp_gen_server_spawn(tp_ctx *ctx, const tp_gen_server *gs, void *arg,
                               const tp_spawn_opts *opts, tp_pid *out);

/** tp_gen_server_spawn() from a thread that is not running an actor. */
TP_API int tp_gen_server_start(tp_runtime *rt, const tp_gen_server *gs,
                               void *arg, const tp_spawn_opts *opts,
                               tp_pid *out);

/**
 * Calls a server: tp_request() under its gen_server name, so the answer is
 * a request's (troupe/request.h): it comes to the caller's mailbox, with
 * msg->ref == *ref, as exactly one of TP_MSG_REPLY (the reply),
 * TP_MSG_TIMEOUT (none within timeout_ms; 0 = wait forever), or
 * TP_MSG_NOPROC, at once, when the server did not exist, had no
 * handle_call, or ended without answering while the call was still in its
 * mailbox or being handled (a crash, tp_fail(), a bad return, TP_GS_STOP
 * without a reply). A call the server deferred (TP_GS_NOREPLY) and never
 * answered before ending gets only the timeout: give such calls one.
 * Errors as tp_request(). Thread: an actor callback (from outside the
 * runtime: tp_runtime_call()).
 */
TP_API int tp_gs_call(tp_ctx *ctx, tp_pid server, uint32_t type,
                      const void *data, size_t len, uint32_t timeout_ms,
                      uint64_t *ref);

/** tp_gs_call() with the payload of a complete tp_pack. */
TP_API int tp_gs_call_packed(tp_ctx *ctx, tp_pid server, uint32_t type,
                             const tp_pack *p, uint32_t timeout_ms,
                             uint64_t *ref);

/**
 * Casts to a server: a one-way message its handle_cast receives with this
 * type and a copy of data[0..len). Errors: -EINVAL (system type, len over
 * 2^31 - 8), then as tp_send() (-ESRCH: no such server, -EAGAIN, -ENOMEM).
 * Thread: an actor callback.
 */
TP_API int tp_gs_cast(tp_ctx *ctx, tp_pid server, uint32_t type,
                      const void *data, size_t len);

/** tp_gs_cast() with the payload of a complete tp_pack. */
TP_API int tp_gs_cast_packed(tp_ctx *ctx, tp_pid server, uint32_t type,
                             const tp_pack *p);

/** tp_gs_cast() from a thread that is not running an actor. Thread-safe. */
TP_API int tp_gs_runtime_cast(tp_runtime *rt, tp_pid server, uint32_t type,
                              const void *data, size_t len);

/**
 * Answers a call with a copy of data[0..len): inside handle_call with its
 * `from`, or later with a saved copy of it (any actor may answer). Marks
 * from->replied. Returns 0, -EALREADY (from->replied was set), -EINVAL
 * (from NULL, no reference), -ESRCH (the caller is gone: from->replied is
 * set anyway), -ENOMEM. A reply that arrives after the caller's timeout is
 * dropped by the runtime. Thread: an actor callback.
 */
TP_API int tp_gs_reply(tp_ctx *ctx, tp_gs_from *from, const void *data,
                       size_t len);

/** tp_gs_reply() with the payload of a complete tp_pack. */
TP_API int tp_gs_reply_packed(tp_ctx *ctx, tp_gs_from *from, const tp_pack *p);

/**
 * For a callback's return statement: sets the reason the server stops with
 * (text copied) and returns TP_GS_STOP.
 *     return tp_gs_stop(ctx, &(tp_exit_reason){TP_EXIT_USER, 7, "bye"});
 */
TP_API int tp_gs_stop(tp_ctx *ctx, const tp_exit_reason *reason);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_GEN_SERVER_H */
