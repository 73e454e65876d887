/*
 * runtime/wheel.h - hierarchical timing wheel (pure data structure).
 *
 * 4 levels x 256 slots of 1-tick granularity (the runtime uses 1 ms ticks):
 * level L holds timers due within 256^(L+1) ticks and is cascaded into the
 * level below when its slot comes round. Insert and remove are O(1) (a
 * doubly linked slot list); advancing jumps straight to the next occupied
 * slot or cascade point using per-level occupancy bitmaps, so a wheel that
 * sleeps for an hour wakes once, not 3.6 million times.
 *
 * Timers are intrusive (the caller owns their memory). Not thread-safe: one
 * wheel per scheduler, touched only by its thread.
 */
#ifndef TP_RUNTIME_WHEEL_H
#define TP_RUNTIME_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP__WHEEL_LEVELS 4
#define TP__WHEEL_BITS   8
#define TP__WHEEL_SLOTS  (1u << TP__WHEEL_BITS)

struct tp__wtimer {
    struct tp__wtimer *next, *prev; /* slot list; NULL when not armed */
    uint64_t expires;               /* absolute tick */
    /* Called by tp__wheel_advance() once due; the timer is already
     * removed, so fire may re-add or free it. */
    void (*fire)(struct tp__wtimer *t, void *arg);
};

struct tp__wheel {
    uint64_t now; /* last tick processed */
    uint32_t count;
    uint64_t bitmap[TP__WHEEL_LEVELS][TP__WHEEL_SLOTS / 64];
    struct tp__wtimer slot[TP__WHEEL_LEVELS][TP__WHEEL_SLOTS]; /* heads */
};

void tp__wheel_init(struct tp__wheel *w, uint64_t now);

/* Arms t to fire at tick `expires` (a tick <= now means now + 1: timers
 * never fire in the tick they are armed in). t must not be armed. */
void tp__wheel_add(struct tp__wheel *w, struct tp__wtimer *t, uint64_t expires);

/* Disarms t if armed. O(1). */
void tp__wheel_del(struct tp__wheel *w, struct tp__wtimer *t);

static inline bool
tp__wtimer_armed(const struct tp__wtimer *t)
{
    return t->next != NULL;
}

/* Advances to tick `now`, firing every timer due by then (in expiry
 * order per tick). Returns how many fired. */
unsigned tp__wheel_advance(struct tp__wheel *w, uint64_t now, void *arg);

/* The earliest tick at which advance() has work (a timer due, or a cascade
 * that may bring one due), or UINT64_MAX when the wheel is empty. Never
 * later than the earliest expiry. */
uint64_t tp__wheel_next(const struct tp__wheel *w);

#endif
