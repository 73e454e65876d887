/*
 * supervisor/dynamic.c - the children of a dynamic supervisor (OTP's
 * simple_one_for_one): many children from one template, added and removed
 * at run time.
 *
 * A connection supervisor holds 100,000 children and more, so nothing here
 * is O(children) per child: records come from a free-listed pool of chunks
 * (never returned until the supervisor ends), sit on an intrusive doubly
 * linked list (for listing and shutdown, the only walks), and are found by
 * pid through the supervisor's hash map. Adding or removing a child is a
 * handful of pointer updates and one hash-map operation.
 */
#include "sup_int.h"

#include <errno.h>
#include <string.h>

#define DYN_CHUNK 256

struct tp__dyn_chunk {
    struct tp__dyn_chunk *next;
    struct tp__sup_child rec[DYN_CHUNK];
};

static bool
refill(struct tp__sup *s)
{
    struct tp__dyn_chunk *k = tp__malloc(sizeof(*k));

    if (k == NULL)
        return false;
    k->next = s->chunks;
    s->chunks = k;
    for (unsigned i = DYN_CHUNK; i-- > 0;) {
        k->rec[i].next = s->free;
        s->free = &k->rec[i];
    }
    return true;
}

struct tp__sup_child *
tp__dyn_new(struct tp__sup *s)
{
    struct tp__sup_child *c;

    if (s->free == NULL && !refill(s))
        return NULL;
    c = s->free;
    s->free = c->next;
    memset(c, 0, sizeof(*c));
    c->spec = &s->spec->child_template;
    c->state = TP__CHILD_STOPPED;
    c->prev = s->dyn.prev;
    c->next = &s->dyn;
    s->dyn.prev->next = c;
    s->dyn.prev = c;
    s->ndyn++;
    return c;
}

void
tp__dyn_free(struct tp__sup *s, struct tp__sup_child *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    if (c->flags & TP__CF_OWNSPEC)
        tp__free(c->spec);
    c->spec = NULL;
    s->ndyn--;
    c->next = s->free;
    s->free = c;
}

void
tp__dyn_fini(struct tp__sup *s)
{
    struct tp__sup_child *c;

    if (s->dyn.next != NULL) {
        for (c = s->dyn.next; c != &s->dyn; c = c->next) {
            if (c->flags & TP__CF_OWNSPEC)
                tp__free(c->spec);
        }
    }
    while (s->chunks != NULL) {
        struct tp__dyn_chunk *k = s->chunks;
        s->chunks = k->next;
        tp__free(k);
    }
    s->free = NULL;
    s->dyn.prev = s->dyn.next = &s->dyn;
    s->ndyn = 0;
}

static bool
full(const struct tp__sup *s)
{
    return s->spec->max_children != 0 && s->ndyn >= s->spec->max_children;
}

int
tp__dyn_start(tp_ctx *ctx, struct tp__sup *s, tp_child_spec *spec, void *arg,
              tp_pid *out)
{
    struct tp__sup_child *c = full(s) ? NULL : tp__dyn_new(s);
    int err;

    if (c == NULL) {
        tp__free(spec);
        return full(s) ? -EAGAIN : -ENOMEM;
    }
    c->arg = arg;
    if (spec != NULL) {
        c->spec = spec;
        c->arg = spec->arg;
        c->flags |= TP__CF_OWNSPEC;
    }
    err = tp__sup_spawn(ctx, s, c);
    if (err != 0) {
        tp__dyn_free(s, c);
        return err;
    }
    *out = c->pid;
    return 0;
}

/* Turns an actor away: it is linked to us, so it must not stay around
 * believing it is supervised. */
static void
refuse(tp_ctx *ctx, tp_pid pid, const char *why)
{
    tp_exit_reason r = {TP_EXIT_SHUTDOWN, 0, why};

    tp_unlink(ctx, pid);
    tp_exit_pid(ctx, pid, &r);
}

void
tp__dyn_attach(tp_ctx *ctx, struct tp__sup *s, tp_pid pid)
{
    struct tp__sup_child *c;

    if (pid == TP_PID_NONE || tp__u64map_get(&s->bypid, pid) != NULL)
        return;
    if (full(s)) {
        refuse(ctx, pid, "supervisor full (max_children)");
        return;
    }
    if ((c = tp__dyn_new(s)) == NULL ||
        tp__u64map_put(&s->bypid, pid, (uintptr_t)c) < 0) {
        if (c != NULL)
            tp__dyn_free(s, c);
        refuse(ctx, pid, "supervisor out of memory");
        return;
    }
    c->flags |= TP__CF_ATTACHED;
    c->pid = pid;
    c->state = TP__CHILD_RUNNING;
    c->started_ns = tp_now_ns();
    s->active++;
    if (s->exiting) /* joined a supervisor on its way out */
        tp__sup_stop_child(ctx, s, c, TP__STOP_GROUP);
}

void
tp__dyn_stop_all(tp_ctx *ctx, struct tp__sup *s)
{
    struct tp__sup_child *c = s->dyn.next, *next;

    /* All at once (OTP does the same for simple_one_for_one): the order
     * among identical children carries no meaning. */
    for (; c != &s->dyn; c = next) {
        next = c->next;
        if (c->state == TP__CHILD_RUNNING)
            tp__sup_stop_child(ctx, s, c, TP__STOP_GROUP);
        else if (c->state == TP__CHILD_WAITING) {
            tp__sup_cancel_timer(ctx, s, c);
            tp__dyn_free(s, c);
        }
    }
}
