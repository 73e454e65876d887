/*
 * troupe/timer.h - timers that deliver messages.
 *
 * Timers live on the timing wheel of the scheduler that armed them (one
 * wheel per scheduler, 1 ms ticks, O(1) arm and cancel, one libuv timer per
 * loop however many timers are armed). A timer never fires early; it fires
 * within about one tick of its due time plus scheduling latency when the
 * system is not overloaded. Timers are owned by the actor that armed them
 * and are cancelled when it dies.
 */
#ifndef TROUPE_TIMER_H
#define TROUPE_TIMER_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A timer handle (generation-checked: a stale handle is harmless). */
typedef uint64_t tp_timer;

#define TP_TIMER_NONE ((tp_timer)0)

/**
 * Sends a copy of data[0..len) as message `type` to `to` after delay_ms
 * (the sender is the calling actor). On success stores the handle in *out
 * (may be NULL). Errors: -EINVAL (system type, len > 2^31, no running
 * actor), -ENOMEM. The message is delivered as by tp_send() when the timer
 * fires (a dead receiver makes it a dead letter). Thread: an actor callback.
 */
TP_API int tp_send_after(tp_ctx *ctx, uint32_t delay_ms, tp_pid to,
                         uint32_t type, const void *data, size_t len,
                         tp_timer *out);

/**
 * Like tp_send_after(), but repeats every interval_ms (>= 1) until
 * cancelled or until the owner dies.
 */
TP_API int tp_send_interval(tp_ctx *ctx, uint32_t interval_ms, tp_pid to,
                            uint32_t type, const void *data, size_t len,
                            tp_timer *out);

/**
 * Cancels a timer. Returns 1 if it was cancelled before firing (its message
 * will never be sent; for a periodic timer: no further message is sent),
 * 0 if it had already fired (its message may be in a mailbox) or was
 * cancelled before, -ENOENT for a handle that never existed. Any actor may
 * cancel any timer whose handle it holds. Thread: an actor callback.
 */
TP_API int tp_cancel_timer(tp_ctx *ctx, tp_timer timer);

/** Number of timers armed in the runtime (gauge). Thread-safe. */
TP_API uint64_t tp_runtime_timers(tp_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_TIMER_H */
