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
 *
 * Attached children (a listener's connection actors, TP_SUP_ATTACH) cost
 * less: one per idle connection adds up, so while such a child runs
 * normally it has no record and no pid-map entry; it is the link the
 * child made to us (tp_supervisor_attach()), tagged TP__DYN_ATTACHED in
 * our own link table. Its EXIT carries the tag, so on_exit() knows it
 * without a lookup. It gets a record only when one is needed: when it is
 * stopped by request (terminate/restart by pid), or when it joins a
 * supervisor that is shutting down. A shutdown sends every attached child
 * its signal at once and arms one timer for all of them.
 */
#include "actors/actor_int.h"
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
    s->nlite = 0;
}

uint32_t
tp__dyn_count(const struct tp__sup *s)
{
    return s->ndyn + s->nlite;
}

static bool
full(const struct tp__sup *s)
{
    return s->spec->max_children != 0 &&
           tp__dyn_count(s) >= s->spec->max_children;
}

/* ---- attached children without a record -------------------------------- */

static bool
is_attached(tp_ctx *ctx, tp_pid pid)
{
    return tp__link_tag(ctx->self, pid) == TP__DYN_ATTACHED;
}

void
tp__dyn_each_attached(tp_ctx *ctx, void (*fn)(tp_pid pid, void *arg), void *arg)
{
    const struct tp__actor_ext *x = tp__ext_peek(ctx->self);
    struct tp__u64map_entry *e;
    uint32_t i;

    /* fn must not change our links (it sends signals at most). */
    for (i = 0; x != NULL && tp__u64map_next(&x->links, &i, &e);)
        if (e->val == TP__DYN_ATTACHED)
            fn(e->key, arg);
}

struct tp__sup_child *
tp__dyn_promote(tp_ctx *ctx, struct tp__sup *s, tp_pid pid)
{
    struct tp__sup_child *c;

    if (!is_attached(ctx, pid) || (c = tp__dyn_new(s)) == NULL)
        return NULL;
    if (tp__u64map_put(&s->bypid, pid, (uintptr_t)c) < 0) {
        tp__dyn_free(s, c);
        return NULL;
    }
    /* Back to a plain link: its EXIT is now found through the record. */
    tp__link_set_tag(ctx->self, pid, 1);
    c->flags |= TP__CF_ATTACHED;
    c->pid = pid;
    c->state = TP__CHILD_RUNNING;
    c->started_ns = tp_now_ns();
    s->nlite--;
    return c;
}

static void
signal_attached(tp_pid pid, void *arg)
{
    tp_ctx *ctx = ((void **)arg)[0];
    const tp_exit_reason *why = ((void **)arg)[1];
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "shutdown signal out of memory"};

    /* A shutdown that cannot be allocated becomes a kill (kills always
     * get through), as for a child with a record. */
    if (tp_exit_pid(ctx, pid, why) == -ENOMEM)
        tp_exit_pid(ctx, pid, &kill);
}

static void
stop_attached(tp_ctx *ctx, struct tp__sup *s)
{
    static const tp_exit_reason shutdown = {TP_EXIT_SHUTDOWN, 0, NULL};
    static const tp_exit_reason brutal = {TP_EXIT_KILL, 0, "brutal kill"};
    uint32_t ms = s->spec->child_template.shutdown_ms;
    void *arg[2] = {ctx, (void *)&shutdown};

    if (s->nlite == 0)
        return;
    if (ms == TP_SHUTDOWN_BRUTAL)
        arg[1] = (void *)&brutal;
    tp__dyn_each_attached(ctx, signal_attached, arg);
    if (ms == TP_SHUTDOWN_BRUTAL || ms == TP_SHUTDOWN_INFINITY)
        return;
    s->lite_timer_id = tp__sup_arm(ctx, s, ms, &s->lite_timer);
    if (s->lite_timer_id == 0)
        tp__dyn_attached_timeout(ctx, s); /* no timer: no waiting either */
}

void
tp__dyn_attached_timeout(tp_ctx *ctx, struct tp__sup *s)
{
    static const tp_exit_reason kill = {TP_EXIT_KILL, 0, "shutdown timeout"};
    void *arg[2] = {ctx, (void *)&kill};

    (void)s;
    tp__dyn_each_attached(ctx, signal_attached, arg);
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
    int err;

    if (pid == TP_PID_NONE || tp__u64map_get(&s->bypid, pid) != NULL ||
        is_attached(ctx, pid))
        return;
    if (full(s)) {
        refuse(ctx, pid, "supervisor full (max_children)");
        return;
    }
    if (!s->exiting) {
        /* The child linked to us before it sent TP_SUP_ATTACH (its link
         * signal is handled first): tag that link. Not linked any more
         * means it died already and its EXIT came first: nothing to do. */
        err = tp__link_set_tag(ctx->self, pid, TP__DYN_ATTACHED);
        if (err == 0) {
            s->nlite++;
            s->active++;
        } else if (err != -ENOENT) {
            refuse(ctx, pid, "supervisor out of memory");
        }
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
    stop_attached(ctx, s);
}
