/*
 * supervisor/intensity.c - the restart-intensity window: "more than
 * `max` restarts within `period` ms".
 *
 * OTP keeps a list of restart times and filters it on every restart, which
 * costs O(restarts inside the window) each time. Here the times sit in a
 * ring, oldest first: expiring the old ones pops from the front, a restart
 * pushes at the back, so a restart costs O(1) amortised whatever the rate.
 * The ring holds at most max + 1 entries and grows only as restarts really
 * accumulate inside the window.
 */
#include "sup_int.h"

#include <string.h>

void
tp__intensity_init(struct tp__intensity *w, uint32_t max, uint32_t period_ms)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
    w->period_ns = (uint64_t)period_ms * 1000000u;
}

void
tp__intensity_fini(struct tp__intensity *w)
{
    tp__free(w->ts);
    w->ts = NULL;
    w->cap = w->n = w->head = 0;
}

/* Drops the restarts that left the window. */
static void
expire(struct tp__intensity *w, uint64_t now_ns)
{
    while (w->n != 0 && now_ns - w->ts[w->head] >= w->period_ns) {
        w->head = (w->head + 1) & (w->cap - 1);
        w->n--;
    }
}

static bool
grow(struct tp__intensity *w)
{
    uint32_t cap = w->cap != 0 ? w->cap * 2 : 8;
    uint64_t *ts;

    if (cap == 0) /* 2^32 restarts in one window: give up */
        return false;
    ts = tp__malloc((size_t)cap * sizeof(*ts));
    if (ts == NULL)
        return false;
    /* Unroll the ring so the oldest entry is at 0. */
    for (uint32_t i = 0; i < w->n; i++)
        ts[i] = w->ts[(w->head + i) & (w->cap - 1)];
    tp__free(w->ts);
    w->ts = ts;
    w->cap = cap;
    w->head = 0;
    return true;
}

bool
tp__intensity_add(struct tp__intensity *w, uint64_t now_ns)
{
    expire(w, now_ns);
    if (w->n >= w->max)
        return false; /* this one would be max + 1 */
    if (w->n == w->cap && !grow(w))
        return false;
    w->ts[(w->head + w->n) & (w->cap - 1)] = now_ns;
    w->n++;
    return true;
}

uint32_t
tp__intensity_count(struct tp__intensity *w, uint64_t now_ns)
{
    expire(w, now_ns);
    return w->n;
}
