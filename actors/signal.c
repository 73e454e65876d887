/*
 * actors/signal.c - the failure model: exit signals, links, monitors.
 *
 * Signals that change an actor's state (exit, link, unlink, monitor,
 * demonitor) travel on its system lane and are handled before ordinary
 * messages. Notifications an actor's code must see (a trapped EXIT, a DOWN)
 * are validated on the system lane and then appended to the ordinary lane,
 * so they arrive after every message the dead actor sent before dying (the
 * Erlang ordering guarantee). They bypass mailbox bounds.
 *
 * Links and monitors live in per-actor hash maps touched only by the owner,
 * so linking to a supervisor with 100,000 children costs O(1).
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/direct.h>

static const tp_exit_reason noproc = {TP_EXIT_NOPROC, 0, NULL};

static struct tp__msg *
sig_msg(uint8_t sig, tp_pid from, uint64_t ref)
{
    struct tp__msg *m = tp__msg_alloc(0);

    if (m != NULL) {
        m->sig = sig;
        m->m.from = from;
        m->m.ref = ref;
    }
    return m;
}

static int
send_sig(struct tp__actors *A, tp_pid to, uint8_t sig, tp_pid from,
         uint64_t ref)
{
    struct tp__msg *m = sig_msg(sig, from, ref);

    if (m == NULL)
        return -ENOMEM;
    return tp__signal(A, to, m);
}

/* An exit signal, or -ENOMEM without a word (the caller decides). */
static int
exit_try(struct tp__actors *A, tp_pid from, tp_pid to,
         const tp_exit_reason *reason, bool linked)
{
    struct tp__msg *m =
        tp__msg_exit(TP__SIG_EXIT, TP_MSG_EXIT, from, 0, reason);

    if (m == NULL) {
        /* An untrappable kill needs no message: deliver it without one.
         * (A linked exit must say who died: it needs its message.) */
        if (reason->kind == TP_EXIT_KILL && !linked)
            return tp__kill_noalloc(A, to);
        return -ENOMEM;
    }
    m->m.from = from;
    if (linked)
        m->flags |= TP__MSG_LINKED;
    return tp__signal(A, to, m);
}

int
tp__exit_signal(struct tp__actors *A, tp_pid from, tp_pid to,
                const tp_exit_reason *reason, bool linked)
{
    int r = exit_try(A, from, to, reason, linked);

    if (r == -ENOMEM)
        tp_log(TP_LOG_ERROR, "exit signal lost: out of memory");
    return r;
}

int
tp__kill_noalloc(struct tp__actors *A, tp_pid to)
{
    struct tp__actor *a = tp__actor_lookup(A, to);

    if (a == NULL)
        return -ESRCH;
    atomic_fetch_or_explicit(&a->aflags, TP__AF_KILLED, memory_order_relaxed);
    /* seq_cst: the flag must be visible to an owner that clears
     * nudge_pending and then reads the flag (see tp__signal()). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange(&a->nudge_pending, 1) == 0) {
        if (tp__mpsc_push(&a->mq, &a->nudge))
            tp__actor_schedule(A, a);
    }
    return 0;
}

static int
down_try(struct tp__actors *A, tp_pid to, tp_pid dead, uint64_t ref,
         const tp_exit_reason *reason)
{
    struct tp__msg *m =
        tp__msg_exit(TP__SIG_DOWN, TP_MSG_DOWN, dead, ref, reason);

    if (m == NULL)
        return -ENOMEM;
    m->m.from = dead;
    m->m.ref = ref;
    return tp__signal(A, to, m);
}

static int
send_down(struct tp__actors *A, tp_pid to, tp_pid dead, uint64_t ref,
          const tp_exit_reason *reason)
{
    int r = down_try(A, to, dead, ref, reason);

    if (r == -ENOMEM)
        tp_log(TP_LOG_ERROR, "DOWN lost: out of memory");
    return r;
}

/* Appends a validated notification to the owner's ordinary lane. */
static void
to_ordinary(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m, uint32_t type)
{
    m->sig = TP__SIG_NONE;
    m->m.type = type;
    m->flags |= TP__MSG_FORCED;
    atomic_fetch_add_explicit(&a->enq, 1, memory_order_relaxed);
    /* The owner is running, so its mailbox is not marked empty: this push
     * never needs to schedule. */
    if (tp__mpsc_push(&a->mq, &m->node))
        tp__actor_schedule(ctx->A, a);
}

static void
run_call_dead(tp_ctx *ctx, struct tp__msg *m)
{
    /* The actor is gone: the function still runs (state NULL) so it can
     * release its argument. */
    const struct {
        tp__call_fn fn;
        void *arg;
    } *p = m->m.data;

    p->fn(ctx, NULL, p->arg);
}

/* A signal meant for an earlier incarnation of this slot. */
static void
foreign_sig(tp_ctx *ctx, struct tp__msg *m)
{
    switch (m->sig) {
    case TP__SIG_LINK:
        tp__exit_signal(ctx->A, m->m.to, m->m.from, &noproc, true);
        break;
    case TP__SIG_MONITOR:
        send_down(ctx->A, m->m.from, m->m.to, m->m.ref, &noproc);
        break;
    case TP__SIG_CALL:
        run_call_dead(ctx, m);
        break;
    default:
        break;
    }
    tp__msg_free(m);
}

/* ---------------------------------------------------------------------- */
/* Links: one inline in the actor's ext word, more in its ext block       */

int
tp__link_add(struct tp__actor *a, tp_pid other)
{
    struct tp__actor_ext *x;

    if (a->extw == 0 && !(other >> 63)) {
        a->extw = ((uintptr_t)other << 1) | 1u; /* the first and only one */
        return 1;
    }
    if (tp__ext_link1(a) == other)
        return 0;
    if ((x = tp__actor_ext(a)) == NULL) /* moves an inline link in */
        return -ENOMEM;
    return tp__u64map_put(&x->links, other, 1);
}

bool
tp__link_take(struct tp__actor *a, tp_pid other, uint64_t *tag)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    uint64_t v = 1;

    if (tp__ext_link1(a) == other && other != TP_PID_NONE) {
        a->extw = 0;
    } else if (x == NULL || !tp__u64map_remove(&x->links, other, &v)) {
        return false;
    }
    if (tag != NULL)
        *tag = v;
    return true;
}

bool
tp__link_remove(struct tp__actor *a, tp_pid other)
{
    return tp__link_take(a, other, NULL);
}

int
tp__link_set_tag(struct tp__actor *a, tp_pid other, uint64_t tag)
{
    struct tp__actor_ext *x;
    uint64_t *v;

    if (tag == 0 || other == TP_PID_NONE || !tp__link_has(a, other))
        return -ENOENT;
    if ((x = tp__actor_ext(a)) == NULL) /* an inline link has no tag */
        return -ENOMEM;
    if ((v = tp__u64map_get(&x->links, other)) == NULL)
        return -ENOENT;
    *v = tag;
    return 0;
}

uint64_t
tp__link_tag(const struct tp__actor *a, tp_pid other)
{
    const struct tp__actor_ext *x = tp__ext_peek(a);
    uint64_t *v;

    if (other != TP_PID_NONE && tp__ext_link1(a) == other)
        return 1;
    v = x != NULL ? tp__u64map_get(&x->links, other) : NULL;
    return v != NULL ? *v : 0;
}

bool
tp__link_has(const struct tp__actor *a, tp_pid other)
{
    const struct tp__actor_ext *x = tp__ext_peek(a);

    if (other != TP_PID_NONE && tp__ext_link1(a) == other)
        return true;
    return x != NULL && tp__u64map_get(&x->links, other) != NULL;
}

uint32_t
tp__link_count(const struct tp__actor *a)
{
    const struct tp__actor_ext *x = tp__ext_peek(a);

    if (tp__ext_link1(a) != TP_PID_NONE)
        return 1;
    return x != NULL ? x->links.count : 0;
}

static void
sig_exit(tp_ctx *ctx, struct tp__actor *a, tp_pid self, struct tp__msg *m)
{
    bool linked = (m->flags & TP__MSG_LINKED) != 0;
    uint64_t tag = 0;
    tp_exit_reason r;
    tp_pid from;

    if (tp__exit_payload_decode(&m->m, &from, NULL, &r) != 0)
        goto drop;
    if (linked && !tp__link_take(a, from, &tag))
        goto drop; /* unlinked meanwhile */
    /* A tagged link (tp__link_set_tag(): a supervisor's attached child)
     * hands its tag to the trapped EXIT, in ref (0 otherwise). */
    if (tag > 1)
        m->m.ref = tag;
    if (r.kind == TP_EXIT_KILL && !linked) {
        tp_exit_with(ctx, &(tp_exit_reason){TP_EXIT_KILLED, 0, r.text});
        goto drop;
    }
    if (a->oflags & TP__A_TRAP_EXIT) {
        to_ordinary(ctx, a, m, TP_MSG_EXIT);
        return;
    }
    if (r.kind != TP_EXIT_NORMAL || from == self)
        tp_exit_with(ctx, &r);
drop:
    tp__msg_free(m);
}

static void
sig_down(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    uint64_t *v = x != NULL ? tp__u64map_get(&x->mon_out, m->m.ref) : NULL;

    if (v == NULL || (*v & TP__MON_FIRED)) {
        tp__msg_free(m); /* demonitored */
        return;
    }
    *v |= TP__MON_FIRED;
    to_ordinary(ctx, a, m, TP_MSG_DOWN);
}

static void
reply_info(tp_ctx *ctx, struct tp__actor *a, tp_pid self, struct tp__msg *m)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    tp_actor_info info;
    struct tp__msg *r;

    if (tp_actor_peek(ctx->rt, self, &info) != 0)
        return;
    if (x != NULL) {
        info.parent = x->parent;
        info.links = tp__link_count(a);
        info.monitors = x->mon_out.count;
        info.monitored = x->mon_in.count;
        info.stash = x->stash_n;
    } else
        info.links = tp__link_count(a); /* an inline link, or none */
    info.trap_exit = (a->oflags & TP__A_TRAP_EXIT) != 0;
    if (ctx->self == a) { /* its own turn: the direct header is its own */
        info.direct = tp__direct_is(ctx);
        info.stack_bytes = info.direct ? tp_direct_stack_bytes(ctx) : 0;
    }
    r = tp__msg_copy(TP_MSG_ACTOR_INFO, &info, sizeof(info));
    if (r == NULL) {
        tp_log(TP_LOG_ERROR, "actor info lost: out of memory");
        return;
    }
    r->m.from = self;
    r->m.ref = m->m.ref;
    r->flags |= TP__MSG_FORCED;
    tp__deliver(ctx, m->m.from, r);
}

static void
sig_link(tp_ctx *ctx, struct tp__actor *a, tp_pid self, struct tp__msg *m)
{
    if (tp__link_add(a, m->m.from) < 0) {
        tp_exit_reason oom = {TP_EXIT_CRASH, ENOMEM, "link: out of memory"};
        tp__exit_signal(ctx->A, self, m->m.from, &oom, true);
    }
}

static void
sig_monitor(tp_ctx *ctx, struct tp__actor *a, tp_pid self, struct tp__msg *m)
{
    struct tp__actor_ext *x = tp__actor_ext(a);

    if (x == NULL || tp__u64map_put(&x->mon_in, m->m.ref, m->m.from) < 0) {
        /* Like a link that cannot be kept: the watcher hears at once. */
        tp_exit_reason oom = {TP_EXIT_CRASH, ENOMEM, "monitor: out of memory"};
        send_down(ctx->A, m->m.from, self, m->m.ref, &oom);
    }
}

static void
handle_sig(tp_ctx *ctx, struct tp__actor *a, tp_pid self, struct tp__msg *m)
{
    if (TP__UNLIKELY(m->m.to != self)) {
        foreign_sig(ctx, m);
        return;
    }
    switch (m->sig) {
    case TP__SIG_EXIT:
        sig_exit(ctx, a, self, m);
        return;
    case TP__SIG_DOWN:
        sig_down(ctx, a, m);
        return;
    case TP__SIG_LINK:
        sig_link(ctx, a, self, m);
        break;
    case TP__SIG_UNLINK:
        tp__link_remove(a, m->m.from);
        break;
    case TP__SIG_MONITOR:
        sig_monitor(ctx, a, self, m);
        break;
    case TP__SIG_DEMONITOR:
        if (tp__ext_peek(a) != NULL)
            tp__u64map_remove(&tp__ext_peek(a)->mon_in, m->m.ref, NULL);
        break;
    case TP__SIG_INFO:
        reply_info(ctx, a, self, m);
        break;
    case TP__SIG_CALL:
        tp__actor_run_call(ctx, a, m);
        break;
    default:
        break;
    }
    tp__msg_free(m);
}

void
tp__process_sys(tp_ctx *ctx, struct tp__actor *a)
{
    struct tp__node *n = tp__sysq_take(&a->sys);
    tp_pid self = tp__actor_pid(a);

    while (n != NULL) {
        struct tp__node *next =
            atomic_load_explicit(&n->next, memory_order_relaxed);
        handle_sig(ctx, a, self, (struct tp__msg *)n);
        n = next;
    }
}

/* Sends the EXITs and DOWNs still owed; a delivered one (or one whose
 * receiver is gone) has its value set to 0. True when none is left. */
static bool
tell_links_monitors(struct tp__actors *A, struct tp__actor_ext *x, tp_pid self,
                    const tp_exit_reason *reason)
{
    struct tp__u64map_entry *e;
    bool done = true;
    uint32_t i;

    for (i = 0; tp__u64map_next(&x->links, &i, &e);) {
        if (e->val == 0)
            continue;
        if (exit_try(A, self, e->key, reason, true) == -ENOMEM)
            done = false;
        else
            e->val = 0;
    }
    for (i = 0; tp__u64map_next(&x->mon_in, &i, &e);) {
        if (e->val == 0) /* a watcher pid is never 0 */
            continue;
        if (down_try(A, e->val, self, e->key, reason) == -ENOMEM)
            done = false;
        else
            e->val = 0;
    }
    return done;
}

bool
tp__notify_death(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
                 const tp_exit_reason *reason)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    tp_pid link1 = tp__ext_link1(a);
    struct tp__u64map_entry *e;
    uint32_t i;

    if (link1 != TP_PID_NONE) {
        /* The one inline link: told now, or kept in an ext block (which
         * the undelivered list can hold) until memory allows. */
        if (exit_try(ctx->A, self, link1, reason, true) != -ENOMEM) {
            a->extw = 0;
            return true;
        }
        if ((x = tp__actor_ext(a)) == NULL) {
            tp_log(TP_LOG_ERROR, "exit signal lost: out of memory");
            a->extw = 0;
            return true;
        }
    }
    if (x == NULL)
        return true;
    /* A lost DEMONITOR only leaves the target a stale entry, dropped when
     * it dies: not worth keeping the ext for. */
    for (i = 0; tp__u64map_next(&x->mon_out, &i, &e);) {
        if (!(e->val & TP__MON_FIRED))
            send_sig(ctx->A, e->val, TP__SIG_DEMONITOR, self, e->key);
    }
    return tell_links_monitors(ctx->A, x, self, reason);
}

/* ---------------------------------------------------------------------- */
/* Death notifications that wait for memory                               */

#define UNDO_MIN_MS 10u
#define UNDO_MAX_MS 1000u

static void
undo_free_ext(struct tp__actor_ext *x)
{
    tp__u64map_fini(&x->links);
    tp__u64map_fini(&x->mon_in);
    tp__free(x);
}

static void undo_fire(struct tp__wtimer *t, void *arg);

static void
undo_arm(tp_ctx *ctx)
{
    struct tp__undelivered *u = &ctx->undo;

    u->timer.fire = undo_fire;
    tp__sched_timer_add(ctx->sched, &u->timer, u->backoff_ms);
}

/* On the scheduler's thread: retry every kept death. */
static void
undo_fire(struct tp__wtimer *t, void *arg)
{
    struct tp__undelivered *u =
        tp__container_of(t, struct tp__undelivered, timer);
    struct tp__sched *s = arg;
    tp_ctx *ctx = s->ext[TP__EXT_ACTORS];
    struct tp__actor_ext **pp = &u->head, *x;

    while ((x = *pp) != NULL) {
        tp_exit_reason why = {(tp_exit_kind)x->undo_kind, x->undo_code, NULL};
        if (tell_links_monitors(ctx->A, x, x->undo_pid, &why)) {
            *pp = x->undo_next;
            undo_free_ext(x);
        } else {
            pp = &x->undo_next;
        }
    }
    if (u->head == NULL) {
        u->backoff_ms = UNDO_MIN_MS;
        tp__rt_pending_add(s->rt, -1); /* nothing owed any more */
        return;
    }
    if (u->backoff_ms < UNDO_MAX_MS)
        u->backoff_ms *= 2;
    undo_arm(ctx);
}

void
tp__undelivered_keep(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
                     const tp_exit_reason *reason)
{
    struct tp__actor_ext *x = tp__ext_peek(a);
    struct tp__undelivered *u = &ctx->undo;

    a->extw = 0;
    tp__u64map_fini(&x->mon_out);
    tp__u64map_fini(&x->pending);
    if (ctx->sched == NULL) { /* no wheel to retry from */
        tp_log(TP_LOG_ERROR, "exit signal lost: out of memory");
        undo_free_ext(x);
        return;
    }
    tp_log(TP_LOG_WARN, "death notifications delayed: out of memory");
    x->undo_pid = self;
    x->undo_kind = (int32_t)reason->kind;
    x->undo_code = reason->code;
    x->undo_next = u->head;
    u->head = x;
    if (x->undo_next != NULL)
        return; /* already armed */
    /* Notifications in flight: the runtime is not idle meanwhile. */
    tp__rt_pending_add(ctx->rt, 1);
    u->backoff_ms = UNDO_MIN_MS;
    undo_arm(ctx);
}

void
tp__undelivered_free(tp_ctx *ctx)
{
    struct tp__actor_ext *x;

    while ((x = ctx->undo.head) != NULL) {
        ctx->undo.head = x->undo_next;
        undo_free_ext(x);
    }
}

void
tp__close_sys(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
              const tp_exit_reason *reason)
{
    struct tp__node *n = tp__sysq_close(&a->sys);

    while (n != NULL) {
        struct tp__msg *m = (struct tp__msg *)n;
        n = atomic_load_explicit(&n->next, memory_order_relaxed);
        if (m->m.to != self) {
            foreign_sig(ctx, m);
            continue;
        }
        /* Requests that raced with our death get our real reason. */
        if (m->sig == TP__SIG_LINK)
            tp__exit_signal(ctx->A, self, m->m.from, reason, true);
        else if (m->sig == TP__SIG_MONITOR)
            send_down(ctx->A, m->m.from, self, m->m.ref, reason);
        else if (m->sig == TP__SIG_CALL)
            run_call_dead(ctx, m);
        tp__msg_free(m);
    }
}

bool
tp__down_accept(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m)
{
    if (tp__ext_peek(a) != NULL &&
        tp__u64map_remove(&tp__ext_peek(a)->mon_out, m->m.ref, NULL))
        return true;
    tp__msg_free(m); /* flushed by tp_demonitor */
    (void)ctx;
    return false;
}

/* ---------------------------------------------------------------------- */
/* Public API                                                             */

const char *
tp_exit_kind_name(tp_exit_kind kind)
{
    static const char *const names[] = {"normal", "shutdown",    "kill",
                                        "killed", "crash",       "noproc",
                                        "user",   "noconnection"};

    if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[kind];
}

void
tp_trap_exit(tp_ctx *ctx, bool on)
{
    if (ctx->self == NULL)
        return;
    if (on)
        ctx->self->oflags |= TP__A_TRAP_EXIT;
    else
        ctx->self->oflags &= (uint8_t)~TP__A_TRAP_EXIT;
}

int
tp_link(tp_ctx *ctx, tp_pid other)
{
    struct tp__actor *a = ctx->self;
    tp_pid self;
    int r;

    if (a == NULL || other == TP_PID_NONE || other == tp__actor_pid(a))
        return -EINVAL;
    self = tp__actor_pid(a);
    if ((r = tp__link_add(a, other)) <= 0)
        return r; /* linked already (0), or -ENOMEM */
    r = send_sig(ctx->A, other, TP__SIG_LINK, self, 0);
    if (r == -ENOMEM) {
        tp__link_remove(a, other); /* other never knew */
        return r;
    }
    if (r == -ESRCH) {
        /* Linking to the dead: an exit signal (noproc) right away, handled
         * by the usual rules (trapped or fatal). */
        tp__exit_signal(ctx->A, other, self, &noproc, true);
    }
    return 0;
}

int
tp_unlink(tp_ctx *ctx, tp_pid other)
{
    struct tp__actor *a = ctx->self;

    if (a == NULL || other == TP_PID_NONE)
        return -EINVAL;
    if (tp__link_remove(a, other))
        send_sig(ctx->A, other, TP__SIG_UNLINK, tp__actor_pid(a), 0);
    return 0;
}

int
tp_monitor(tp_ctx *ctx, tp_pid target, uint64_t *ref_out)
{
    struct tp__actor *a = ctx->self;
    struct tp__actor_ext *x;
    uint64_t ref;
    tp_pid self;
    int r;

    if (a == NULL || target == TP_PID_NONE)
        return -EINVAL;
    self = tp__actor_pid(a);
    if ((x = tp__actor_ext(a)) == NULL)
        return -ENOMEM;
    ref = tp__ctx_make_ref(ctx);
    if ((r = tp__u64map_put(&x->mon_out, ref, target)) < 0)
        return r;
    r = target == self ? -ESRCH
                       : send_sig(ctx->A, target, TP__SIG_MONITOR, self, ref);
    if (r == -ENOMEM) {
        tp__u64map_remove(&x->mon_out, ref, NULL); /* target never knew */
        return r;
    }
    if (ref_out != NULL)
        *ref_out = ref;
    if (r == -ESRCH)
        send_down(ctx->A, self, target, ref, &noproc);
    return 0;
}

int
tp_demonitor(tp_ctx *ctx, uint64_t ref, unsigned flags)
{
    struct tp__actor *a = ctx->self;
    uint64_t target;

    (void)flags; /* a DOWN is always flushed: see the header */
    if (a == NULL || tp__ext_peek(a) == NULL ||
        !tp__u64map_remove(&tp__ext_peek(a)->mon_out, ref, &target))
        return -ENOENT;
    if (!(target & TP__MON_FIRED))
        send_sig(ctx->A, target, TP__SIG_DEMONITOR, tp__actor_pid(a), ref);
    return 0;
}

int
tp_exit_pid(tp_ctx *ctx, tp_pid target, const tp_exit_reason *reason)
{
    if (reason == NULL)
        return -EINVAL;
    return tp__exit_signal(ctx->A, tp_self(ctx), target, reason, false);
}

int
tp_runtime_exit_pid(tp_runtime *rt, tp_pid target, const tp_exit_reason *reason)
{
    if (reason == NULL)
        return -EINVAL;
    return tp__exit_signal(tp__actors_of(rt), TP_PID_NONE, target, reason,
                           false);
}

int
tp_msg_exit(const tp_msg *msg, tp_pid *pid, tp_exit_reason *reason)
{
    if (msg == NULL || msg->type != TP_MSG_EXIT)
        return -EINVAL;
    return tp__exit_payload_decode(msg, pid, NULL, reason);
}

int
tp_msg_down(const tp_msg *msg, tp_pid *pid, uint64_t *ref,
            tp_exit_reason *reason)
{
    if (msg == NULL || msg->type != TP_MSG_DOWN)
        return -EINVAL;
    return tp__exit_payload_decode(msg, pid, ref, reason);
}

int
tp_actor_query(tp_ctx *ctx, tp_pid target, uint64_t *ref)
{
    uint64_t r = tp__ctx_make_ref(ctx);
    int err = send_sig(ctx->A, target, TP__SIG_INFO, tp_self(ctx), r);

    if (err == 0 && ref != NULL)
        *ref = r;
    return err;
}
