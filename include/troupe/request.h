/*
 * troupe/request.h - request/reply, synchronous calls from outside the
 * runtime, and message tracing.
 *
 * A request is an ordinary message tagged with a fresh reference
 * (msg->ref). Its answer comes back to the requester's mailbox as exactly
 * one of: TP_MSG_REPLY (payload = the reply), TP_MSG_TIMEOUT, or
 * TP_MSG_NOPROC (the target did not exist, died with the request still
 * queued, or crashed while handling it), each with msg->ref = the
 * request's reference. A reply that arrives after the timeout (or after
 * tp_request_forget()) is dropped by the runtime: it is never delivered as
 * a stray message.
 */
#ifndef TROUPE_REQUEST_H
#define TROUPE_REQUEST_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TP_MSG_REPLY   0xffff0010u /**< answer to a request of ours */
#define TP_MSG_TIMEOUT 0xffff0011u /**< our request timed out */
#define TP_MSG_NOPROC  0xffff0012u /**< our request's target did not exist */
#define TP_MSG_TRACE   0xffff0013u /**< a traced actor handled a message */

/**
 * Sends a request. timeout_ms = 0 means no timeout. On success *ref (may be
 * NULL) is the reference its answer will carry. If `to` does not exist,
 * TP_MSG_NOPROC arrives at once (and 0 is returned). Errors: -EINVAL (no
 * running actor, system type), -EAGAIN (bounded mailbox full: no answer
 * will come), -ENOMEM. Thread: an actor callback.
 */
TP_API int tp_request(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
                      size_t len, uint32_t timeout_ms, uint64_t *ref);

/**
 * Answers `request` (a message with a ref) with a copy of data[0..len).
 * Replies bypass the requester's mailbox bound. Returns 0, -EINVAL (not a
 * request), -ESRCH (requester gone), -ENOMEM. Thread: an actor callback.
 */
TP_API int tp_reply(tp_ctx *ctx, const tp_msg *request, const void *data,
                    size_t len);

/**
 * Answers later: reply to (to, ref) taken from a request handled earlier
 * (gen_server's noreply + reply pattern). Same results as tp_reply().
 */
TP_API int tp_reply_to(tp_ctx *ctx, tp_pid to, uint64_t ref, const void *data,
                       size_t len);

/**
 * Forgets a pending request: its answer, if any, is dropped. Returns 0 or
 * -ENOENT (not pending: already answered).
 */
TP_API int tp_request_forget(tp_ctx *ctx, uint64_t ref);

/** True if msg is a request (carries a ref) rather than a plain message. */
static inline bool
tp_msg_is_request(const tp_msg *msg)
{
    return msg->ref != 0 && !tp_msg_is_system(msg->type);
}

/**
 * Synchronous call from a thread that is not running an actor (main, tests,
 * tools): sends a request to `to` and waits for the reply. Copies up to cap
 * bytes of it into reply (may be NULL with cap 0) and its full length into
 * *reply_len (may be NULL). Returns 0, -ESRCH (no such actor, or it died
 * with the request queued or crashed handling it), -ETIMEDOUT, -EAGAIN,
 * -EINVAL, -ENOMEM, -ESHUTDOWN.
 * Thread-safe; never call it from an actor (it would block a scheduler).
 */
TP_API int tp_runtime_call(tp_runtime *rt, tp_pid to, uint32_t type,
                           const void *data, size_t len, void *reply,
                           size_t cap, size_t *reply_len, uint32_t timeout_ms);

/** Payload of TP_MSG_TRACE. */
typedef struct tp_trace_event {
    tp_pid actor;   /**< the traced actor */
    tp_pid from;    /**< sender of the traced message */
    uint64_t ref;   /**< the traced message's request reference */
    uint32_t type;  /**< the traced message's type */
    uint32_t len;   /**< its full length (data may be truncated) */
    uint64_t at_ns; /**< when it was handled (tp_now_ns clock) */
    /* followed by min(len, TP_TRACE_MAX_DATA) bytes of payload */
} tp_trace_event;

#define TP_TRACE_MAX_DATA 1024

/**
 * Makes `target` send a TP_MSG_TRACE copy of every message it handles to
 * `tracer` (TP_PID_NONE stops). Tracing stops by itself when the tracer
 * dies. The tracer should bound its mailbox (copies to a full mailbox are
 * dropped, not queued without limit). Returns 0 or -ESRCH. Thread-safe.
 */
TP_API int tp_trace(tp_runtime *rt, tp_pid target, tp_pid tracer);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_REQUEST_H */
