/*
 * mailbox/mpsc.h - intrusive multi-producer single-consumer queues.
 *
 * tp__mpsc is Dmitry Vyukov's intrusive MPSC queue with a stub node, plus
 * Pony's "empty mark": the consumer may atomically mark the queue empty
 * (head == stub | 1) when it has drained it, and the producer whose exchange
 * finds the mark is the one (and the only one) that must schedule the
 * consumer. Producers never block; the consumer side uses no atomic
 * read-modify-write on its fast path.
 *
 * tp__sysq is a closable Treiber stack used for the system lane: pushes fail
 * once the owner has closed it, so a signal can never be lost in the mailbox
 * of an actor that is already gone.
 *
 * Pure data structures: no allocation, no threads. C11 atomics throughout.
 */
#ifndef TP_MAILBOX_MPSC_H
#define TP_MAILBOX_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Any queued object starts with this link. */
struct tp__node {
    _Atomic(struct tp__node *) next;
};

struct tp__mpsc {
    _Atomic(uintptr_t) head; /* producers' end; bit 0 = marked empty */
    struct tp__node *tail;   /* consumer's end (consumer only) */
    struct tp__node stub;
};

#define TP__MPSC_MARK ((uintptr_t)1)

/* Initialises q; marked = start in the "empty and not scheduled" state. */
static inline void
tp__mpsc_init(struct tp__mpsc *q, bool marked)
{
    atomic_init(&q->stub.next, NULL);
    q->tail = &q->stub;
    atomic_init(&q->head, (uintptr_t)&q->stub | (marked ? TP__MPSC_MARK : 0));
}

/*
 * Appends n. Returns true when the queue was marked empty: the caller then
 * owns the consumer's wake-up (exactly one producer sees the mark).
 * Thread-safe for any number of producers.
 */
static inline bool
tp__mpsc_push(struct tp__mpsc *q, struct tp__node *n)
{
    uintptr_t prev;
    struct tp__node *p;

    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: acquire pairs with the consumer's mark (its last writes
     * happen-before whoever schedules it next); release orders n->next. */
    prev =
        atomic_exchange_explicit(&q->head, (uintptr_t)n, memory_order_acq_rel);
    p = (struct tp__node *)(prev & ~TP__MPSC_MARK);
    /* release: publishes n's contents to the consumer that loads p->next. */
    atomic_store_explicit(&p->next, n, memory_order_release);
    return (prev & TP__MPSC_MARK) != 0;
}

/*
 * Removes the oldest node, or returns NULL when the queue is empty or a
 * producer is between its exchange and its link (the node then appears on a
 * later call). Consumer only.
 */
static inline struct tp__node *
tp__mpsc_pop(struct tp__mpsc *q)
{
    struct tp__node *tail = q->tail;
    /* acquire: pairs with the producer's release store of the link. */
    struct tp__node *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);

    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    if ((uintptr_t)tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL; /* a producer has exchanged but not linked yet */
    tp__mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

/* True when nothing is queued and no producer is mid-push. Consumer only. */
static inline bool
tp__mpsc_looks_empty(struct tp__mpsc *q)
{
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_acquire);

    return q->tail == &q->stub &&
           (head & ~TP__MPSC_MARK) == (uintptr_t)&q->stub;
}

/*
 * Marks a drained queue empty. Succeeds only if no producer has pushed since
 * the consumer's last pop; then the next push reports "was empty". After a
 * success the consumer must not touch the queue's owner again: another
 * thread may already be running it. Consumer only.
 */
static inline bool
tp__mpsc_mark_empty(struct tp__mpsc *q)
{
    uintptr_t expect = (uintptr_t)&q->stub;

    if (q->tail != &q->stub)
        return false;
    /* release: everything the consumer did happens-before the producer
     * that observes the mark and schedules it (acquire in push). */
    return atomic_compare_exchange_strong_explicit(
        &q->head, &expect, expect | TP__MPSC_MARK, memory_order_acq_rel,
        memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */

#define TP__SYSQ_CLOSED ((struct tp__node *)(uintptr_t)1)

typedef _Atomic(struct tp__node *) tp__sysq;

/* Pushes n; returns false (n untouched) if the stack is closed. */
static inline bool
tp__sysq_push(tp__sysq *top, struct tp__node *n)
{
    struct tp__node *old = atomic_load_explicit(top, memory_order_relaxed);

    do {
        if (old == TP__SYSQ_CLOSED)
            return false;
        atomic_store_explicit(&n->next, old, memory_order_relaxed);
        /* release: n's contents visible to the owner's acquire exchange. */
    } while (!atomic_compare_exchange_weak_explicit(
        top, &old, n, memory_order_release, memory_order_relaxed));
    return true;
}

/* Reverses a chain taken from the stack into push (FIFO) order. */
static inline struct tp__node *
tp__sysq_reverse(struct tp__node *n)
{
    struct tp__node *out = NULL;

    while (n != NULL && n != TP__SYSQ_CLOSED) {
        struct tp__node *next =
            atomic_load_explicit(&n->next, memory_order_relaxed);
        atomic_store_explicit(&n->next, out, memory_order_relaxed);
        out = n;
        n = next;
    }
    return out;
}

/* Takes everything pushed so far, oldest first. Owner only. */
static inline struct tp__node *
tp__sysq_take(tp__sysq *top)
{
    struct tp__node *n;

    if (atomic_load_explicit(top, memory_order_relaxed) == NULL)
        return NULL;
    /* acquire: pairs with the pushers' release CAS. */
    n = atomic_exchange_explicit(top, NULL, memory_order_acquire);
    return tp__sysq_reverse(n);
}

/* Closes the stack and returns what was in it, oldest first. Owner only. */
static inline struct tp__node *
tp__sysq_close(tp__sysq *top)
{
    return tp__sysq_reverse(
        atomic_exchange_explicit(top, TP__SYSQ_CLOSED, memory_order_acq_rel));
}

#endif /* TP_MAILBOX_MPSC_H */
