/*
 * runtime/wheel.c - see wheel.h.
 */
#include "wheel.h"

#include <stddef.h>

#define MASK (TP__WHEEL_SLOTS - 1u)

static unsigned
shift_of(unsigned level)
{
    return level * TP__WHEEL_BITS;
}

void
tp__wheel_init(struct tp__wheel *w, uint64_t now)
{
    w->now = now;
    w->count = 0;
    for (unsigned l = 0; l < TP__WHEEL_LEVELS; l++) {
        for (unsigned i = 0; i < TP__WHEEL_SLOTS / 64; i++)
            w->bitmap[l][i] = 0;
        for (unsigned s = 0; s < TP__WHEEL_SLOTS; s++)
            w->slot[l][s].next = w->slot[l][s].prev = &w->slot[l][s];
    }
}

static void
place(struct tp__wheel *w, struct tp__wtimer *t)
{
    uint64_t delta = t->expires - w->now;
    uint64_t at = t->expires;
    unsigned level = 0, s;
    struct tp__wtimer *head;

    while (level + 1 < TP__WHEEL_LEVELS &&
           delta >= (1ull << shift_of(level + 1)))
        level++;
    if (delta >= (1ull << shift_of(TP__WHEEL_LEVELS))) /* beyond range: */
        at = w->now + (1ull << shift_of(TP__WHEEL_LEVELS)) - 1; /* recascade */
    s = (unsigned)(at >> shift_of(level)) & MASK;
    head = &w->slot[level][s];
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
    w->bitmap[level][s / 64] |= 1ull << (s % 64);
}

void
tp__wheel_add(struct tp__wheel *w, struct tp__wtimer *t, uint64_t expires)
{
    t->expires = expires > w->now ? expires : w->now + 1;
    place(w, t);
    w->count++;
}

/* Clears the occupancy bit of the slot that head is, if it is empty. */
static void
maybe_clear(struct tp__wheel *w, struct tp__wtimer *n)
{
    /* n is a slot head iff it lies inside w->slot. */
    struct tp__wtimer *base = &w->slot[0][0];
    ptrdiff_t i = n - base;

    if (i < 0 || i >= (ptrdiff_t)(TP__WHEEL_LEVELS * TP__WHEEL_SLOTS))
        return;
    if (n->next == n) {
        unsigned level = (unsigned)i / TP__WHEEL_SLOTS;
        unsigned s = (unsigned)i % TP__WHEEL_SLOTS;
        w->bitmap[level][s / 64] &= ~(1ull << (s % 64));
    }
}

void
tp__wheel_del(struct tp__wheel *w, struct tp__wtimer *t)
{
    struct tp__wtimer *next = t->next;

    if (next == NULL)
        return;
    t->prev->next = next;
    next->prev = t->prev;
    t->next = t->prev = NULL;
    w->count--;
    /* If t was the slot's last timer, its neighbour is the head. */
    if (next->next == next)
        maybe_clear(w, next);
}

/* Distance (in slots, circularly) from slot `from` to the first occupied
 * slot at level, or -1 when the level is empty. */
static int
scan(const struct tp__wheel *w, unsigned level, unsigned from)
{
    unsigned word_i = from / 64;

    for (unsigned i = 0; i <= TP__WHEEL_SLOTS / 64; i++) {
        unsigned wi = (word_i + i) % (TP__WHEEL_SLOTS / 64);
        uint64_t word = w->bitmap[level][wi];
        if (i == 0)
            word &= ~0ull << (from % 64); /* slots at or after `from` */
        if (word != 0) {
            unsigned slot = wi * 64 + (unsigned)__builtin_ctzll(word);
            return (int)((slot - from) & MASK);
        }
    }
    return -1;
}

uint64_t
tp__wheel_next(const struct tp__wheel *w)
{
    uint64_t best = UINT64_MAX;

    if (w->count == 0)
        return UINT64_MAX;
    for (unsigned l = 0; l < TP__WHEEL_LEVELS; l++) {
        unsigned sh = shift_of(l);
        /* Level l's slot k is visited at the tick whose level-l digit
         * becomes k with all lower digits 0 (level 0: every tick). */
        uint64_t base = (w->now >> sh) + 1;
        int d = scan(w, l, (unsigned)base & MASK);
        uint64_t tick;
        if (d < 0)
            continue;
        tick = (base + (uint64_t)d) << sh;
        if (tick < best)
            best = tick;
    }
    return best;
}

/* Moves every timer of a slot list out (detached, NULL-terminated via
 * next) and clears the slot. */
static struct tp__wtimer *
take_slot(struct tp__wheel *w, unsigned level, unsigned s)
{
    struct tp__wtimer *head = &w->slot[level][s], *first;

    if (head->next == head)
        return NULL;
    first = head->next;
    head->prev->next = NULL;
    head->next = head->prev = head;
    w->bitmap[level][s / 64] &= ~(1ull << (s % 64));
    return first;
}

static void
cascade(struct tp__wheel *w, unsigned level, uint64_t tick)
{
    struct tp__wtimer *t =
        take_slot(w, level, (unsigned)(tick >> shift_of(level)) & MASK);

    while (t != NULL) {
        struct tp__wtimer *next = t->next;
        place(w, t); /* relative to now = tick: lands lower */
        t = next;
    }
}

static unsigned
run_tick(struct tp__wheel *w, uint64_t tick, void *arg)
{
    struct tp__wtimer *t;
    unsigned fired = 0;

    /* With now = tick, a cascaded timer due at this tick lands in this
     * tick's level-0 slot, taken just below. */
    w->now = tick;
    for (unsigned l = TP__WHEEL_LEVELS - 1; l >= 1; l--) {
        if ((tick & ((1ull << shift_of(l)) - 1)) == 0)
            cascade(w, l, tick);
    }
    t = take_slot(w, 0, (unsigned)tick & MASK);
    while (t != NULL) {
        struct tp__wtimer *next = t->next;
        t->next = t->prev = NULL;
        w->count--;
        if (t->expires > tick) { /* clamped beyond-range timer: re-place */
            place(w, t);
            w->count++;
        } else {
            t->fire(t, arg);
            fired++;
        }
        t = next;
    }
    return fired;
}

unsigned
tp__wheel_advance(struct tp__wheel *w, uint64_t now, void *arg)
{
    unsigned fired = 0;

    while (w->now < now) {
        uint64_t next = tp__wheel_next(w);
        if (next > now) {
            w->now = now;
            break;
        }
        fired += run_tick(w, next, arg);
    }
    return fired;
}
