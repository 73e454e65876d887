/*
 * supervisor/supervisor.c - the supervisor actor: starting children,
 * reacting to their exits, restart strategies, restart intensity, backoff,
 * and the ordered shutdown.
 *
 * The supervisor traps exits and is linked to each child, so a child's end
 * arrives as a TP_MSG_EXIT. Nothing blocks: stopping a child sends it an
 * exit signal (shutdown, or kill for brutal_kill) and, for a finite
 * shutdown time, arms a timer that kills it if it is still there; the
 * supervisor goes on handling messages meanwhile. Whatever must happen in
 * order (stop children in reverse start order, then start them in order) is
 * a "group operation" driven by those EXITs: requests that change children
 * are stashed until it ends, exits are handled as they come.
 */
#include "actors/actor_int.h"
#include "sup_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const tp_exit_reason shutdown_reason = {TP_EXIT_SHUTDOWN, 0, NULL};

/* ---------------------------------------------------------------------- */
/* Spec defaults                                                          */

void
tp_child_spec_init(tp_child_spec *c, const char *id, const tp_behaviour *b,
                   void *arg)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->behaviour = b;
    c->arg = arg;
    c->restart = TP_PERMANENT;
    c->shutdown_ms = 5000;
    c->type = TP_WORKER;
    tp_spawn_opts_init(&c->opts);
    if (b == &tp_supervisor_behaviour) {
        c->type = TP_SUPERVISOR;
        c->shutdown_ms = TP_SHUTDOWN_INFINITY;
    }
}

void
tp_sup_spec_init(tp_sup_spec *s, tp_strategy strategy)
{
    memset(s, 0, sizeof(*s));
    s->strategy = strategy;
    s->intensity = 3;
    s->period_ms = 5000;
    tp_child_spec_init(&s->child_template, NULL, NULL, NULL);
}

bool
tp__sup_is_dynamic(const struct tp__sup *s)
{
    return s->spec->strategy == TP_DYNAMIC;
}

/* ---------------------------------------------------------------------- */
/* Timers: one-shot messages to self carrying an id                       */

uint64_t
tp__sup_arm(tp_ctx *ctx, struct tp__sup *s, uint32_t ms, tp_timer *t)
{
    uint64_t id = ++s->next_timer;

    if (tp_send_after(ctx, ms, s->self, TP__SUP_TIMER, &id, sizeof(id), t) != 0)
        return 0;
    return id;
}

static bool
child_arm(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c, uint32_t ms)
{
    tp_timer t;
    uint64_t id = tp__sup_arm(ctx, s, ms, &t);

    if (id == 0)
        return false;
    if (tp__u64map_put(&s->timers, id, (uintptr_t)c) < 0) {
        tp_cancel_timer(ctx, t);
        return false;
    }
    c->timer_id = id;
    c->timer = t;
    return true;
}

void
tp__sup_cancel_timer(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c)
{
    if (c->timer_id == 0)
        return;
    tp__u64map_remove(&s->timers, c->timer_id, NULL);
    tp_cancel_timer(ctx, c->timer);
    c->timer_id = 0;
    c->timer = TP_TIMER_NONE;
}

static void
op_cancel_timer(tp_ctx *ctx, struct tp__sup *s)
{
    if (s->op.timer_id == 0)
        return;
    tp_cancel_timer(ctx, s->op.timer);
    s->op.timer_id = 0;
}

/* ---------------------------------------------------------------------- */
/* Starting and stopping one child                                        */

int
tp__sup_spawn(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "supervisor out of memory"};
    tp_spawn_opts o = c->spec->opts;
    tp_pid pid;
    int err;

    o.link = true;
    err = tp_spawn(ctx, c->spec->behaviour, c->arg, &o, &pid);
    if (err != 0)
        return err;
    if (tp__u64map_put(&s->bypid, pid, (uintptr_t)c) < 0) {
        /* A child we cannot track must not live on unsupervised. */
        tp_unlink(ctx, pid);
        tp_exit_pid(ctx, pid, &kill);
        return -ENOMEM;
    }
    c->pid = pid;
    c->state = TP__CHILD_RUNNING;
    c->started_ns = tp_now_ns();
    s->active++;
    return 0;
}

static void
kill_child(tp_ctx *ctx, struct tp__sup_child *c, const char *why)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, why};

    c->flags |= TP__CF_KILLED;
    tp_exit_pid(ctx, c->pid, &kill);
}

void
tp__sup_stop_child(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c,
                   enum tp__stop_why why)
{
    uint32_t ms = c->spec->shutdown_ms;

    tp__sup_cancel_timer(ctx, s, c);
    c->state = TP__CHILD_STOPPING;
    c->why = (uint8_t)why;
    if (ms == TP_SHUTDOWN_BRUTAL) {
        kill_child(ctx, c, "brutal kill");
        return;
    }
    /* -ESRCH is fine: the child is already dead and its EXIT on its way.
     * A shutdown signal that cannot be allocated becomes a kill (kills
     * always get through), or the child would never hear of it. */
    if (tp_exit_pid(ctx, c->pid, &shutdown_reason) == -ENOMEM) {
        kill_child(ctx, c, "shutdown signal out of memory");
        return;
    }
    if (ms != TP_SHUTDOWN_INFINITY && !child_arm(ctx, s, c, ms))
        kill_child(ctx, c, "shutdown timer unavailable");
}

/* ---------------------------------------------------------------------- */
/* Static children                                                        */

int
tp__sup_static_add(struct tp__sup *s, tp_child_spec *spec,
                   struct tp__sup_child **out)
{
    struct tp__sup_child *c;

    if (s->nkids == s->capkids) {
        uint32_t cap = s->capkids != 0 ? s->capkids * 2 : 8;
        void *k = tp__realloc(s->kids, cap * sizeof(*s->kids));
        if (k == NULL)
            return -ENOMEM;
        s->kids = k;
        s->capkids = cap;
    }
    c = tp__calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->spec = spec;
    c->arg = spec->arg;
    c->state = TP__CHILD_STOPPED;
    c->idx = s->nkids;
    s->kids[s->nkids++] = c;
    *out = c;
    return 0;
}

void
tp__sup_static_delete(struct tp__sup *s, struct tp__sup_child *c)
{
    uint32_t i = c->idx;

    memmove(&s->kids[i], &s->kids[i + 1],
            (s->nkids - i - 1) * sizeof(*s->kids));
    s->nkids--;
    for (; i < s->nkids; i++)
        s->kids[i]->idx = i;
    if (c->flags & TP__CF_OWNSPEC)
        tp__free(c->spec);
    tp__free(c);
}

struct tp__sup_child *
tp__sup_static_find(struct tp__sup *s, const char *id)
{
    for (uint32_t i = 0; i < s->nkids; i++) {
        if (strcmp(s->kids[i]->spec->id, id) == 0)
            return s->kids[i];
    }
    return NULL;
}

/* The child is gone for good (temporary, or removed on request). Static
 * records are deleted at once unless a group operation is walking the
 * array, which must not shift under it. */
static void
forget(struct tp__sup *s, struct tp__sup_child *c)
{
    c->state = TP__CHILD_STOPPED;
    c->flags &= (uint8_t)~TP__CF_PENDING;
    if (tp__sup_is_dynamic(s))
        tp__dyn_free(s, c);
    else if (s->op.kind != TP__OP_NONE)
        c->flags |= TP__CF_DELETE;
    else
        tp__sup_static_delete(s, c);
}

/* A child that will not run again for now (static: its spec stays,
 * except for temporary children, which OTP forgets). */
static void
park(struct tp__sup *s, struct tp__sup_child *c)
{
    if (tp__sup_is_dynamic(s) || c->spec->restart == TP_TEMPORARY)
        forget(s, c);
    else
        c->state = TP__CHILD_STOPPED;
}

static void
compact(struct tp__sup *s)
{
    for (uint32_t i = s->nkids; i-- > 0;) {
        if (s->kids[i]->flags & TP__CF_DELETE)
            tp__sup_static_delete(s, s->kids[i]);
    }
}

/* ---------------------------------------------------------------------- */
/* Restart bookkeeping                                                     */

static void log_child(const struct tp__sup *s, const struct tp__sup_child *c,
                      tp_pid pid, tp_log_level lvl, const char *what,
                      const tp_exit_reason *r);

static void
intensity_exceeded(tp_ctx *ctx, struct tp__sup *s)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, "reached max restart intensity"};
    char pid[32];

    tp_log(TP_LOG_ERROR,
           "supervisor %s: more than %u restarts in %u ms, shutting down",
           tp_pid_format(s->self, pid, sizeof(pid)), s->spec->intensity,
           s->spec->period_ms);
    s->max_hit = true;
    tp__sup_begin_shutdown(ctx, s, &why);
}

/* Counts a restart attempt against the intensity. False: the supervisor
 * is shutting down now. */
static bool
count_restart(tp_ctx *ctx, struct tp__sup *s)
{
    if (tp__intensity_add(&s->win, tp_now_ns()))
        return true;
    intensity_exceeded(ctx, s);
    return false;
}

/* Backoff delay of c's next restart: a child that stayed up for a whole
 * intensity period starts a fresh streak. */
static uint32_t
next_delay(struct tp__sup *s, struct tp__sup_child *c)
{
    uint64_t up = tp_now_ns() - c->started_ns;

    if (up >= (uint64_t)s->spec->period_ms * 1000000u)
        c->streak = 0;
    if (c->streak < UINT32_MAX)
        c->streak++;
    return tp__backoff_delay(s->spec->backoff_min_ms, s->spec->backoff_max_ms,
                             c->streak, &s->rng);
}

static void
restarted(struct tp__sup *s, struct tp__sup_child *c)
{
    c->restarts++;
    s->restarts++;
}

/* ---------------------------------------------------------------------- */
/* one_for_one and dynamic: restart the child alone                       */

static void restart_failed(tp_ctx *ctx, struct tp__sup *s,
                           struct tp__sup_child *c, int err);

static void
restart_now(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c)
{
    int err = tp__sup_spawn(ctx, s, c);

    if (err == 0)
        restarted(s, c);
    else
        restart_failed(ctx, s, c, err);
}

/* Restarts c at once or after `delay` ms (the child shows as restarting). */
static void
restart_later(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c,
              uint32_t delay)
{
    tp_exit_reason why = {TP_EXIT_CRASH, ENOMEM,
                          "no timer for a delayed restart"};

    c->state = TP__CHILD_WAITING;
    if (child_arm(ctx, s, c, delay))
        return;
    /* A restart we cannot schedule must not be forgotten: give up as OTP
     * does, by exiting, so the parent restarts this supervisor (and the
     * child with it). */
    log_child(s, c, c->pid, TP_LOG_ERROR,
              "no timer for a delayed restart: shutting down", NULL);
    park(s, c);
    tp__sup_begin_shutdown(ctx, s, &why);
}

static void
restart_failed(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c, int err)
{
    tp_exit_reason r = {TP_EXIT_CRASH, err, tp_strerror(err)};

    c->state = TP__CHILD_STOPPED;
    if (err == -ESHUTDOWN) { /* the runtime is stopping */
        park(s, c);
        return;
    }
    log_child(s, c, c->pid, TP_LOG_WARN, "restart failed", &r);
    if (!count_restart(ctx, s))
        return;
    /* Retry through a timer even without backoff: never a hot loop. */
    restart_later(ctx, s, c, next_delay(s, c));
}

static void
restart_one(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c)
{
    uint32_t delay = next_delay(s, c);

    if (delay != 0)
        restart_later(ctx, s, c, delay);
    else
        restart_now(ctx, s, c);
}

/* ---------------------------------------------------------------------- */
/* Group operations (static supervisors)                                  */

static void group_advance(tp_ctx *ctx, struct tp__sup *s);

/* Marks the children of [first, end) that run (or wait) for the group's
 * restart. */
static void
mark_pending(tp_ctx *ctx, struct tp__sup *s, uint32_t first, uint32_t end)
{
    for (uint32_t i = first; i < end; i++) {
        struct tp__sup_child *c = s->kids[i];
        if (c->state == TP__CHILD_WAITING) {
            tp__sup_cancel_timer(ctx, s, c);
            c->state = TP__CHILD_STOPPED;
            c->flags |= TP__CF_PENDING;
        } else if (c->state == TP__CHILD_RUNNING) {
            c->flags |= TP__CF_PENDING;
        }
    }
}

/* Child c failed and must be restarted with [first, end): start a group
 * restart, or widen the one in progress (rest_for_one: an earlier child
 * failed meanwhile). The reverse walk simply goes on further down. */
static void
group_failure(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c,
              uint32_t delay)
{
    struct tp__sup_op *op = &s->op;
    uint32_t first, end;

    tp__strategy_range(s->spec->strategy, c->idx, s->nkids, &first, &end);
    c->flags |= TP__CF_PENDING;
    if (op->kind == TP__OP_NONE) {
        *op = (struct tp__sup_op){
            TP__OP_RESTART, TP__PH_STOP, first, end,  (int64_t)end - 1,
            delay,          0,           0,     false};
        mark_pending(ctx, s, first, end);
    } else {
        if (first < op->first) {
            mark_pending(ctx, s, first, op->first);
            op->first = first;
        }
        op_cancel_timer(ctx, s);
        op->phase = TP__PH_STOP;
        op->delay_ms = delay > op->delay_ms ? delay : op->delay_ms;
    }
    group_advance(ctx, s);
}

static void
end_op(tp_ctx *ctx, struct tp__sup *s)
{
    s->op.kind = TP__OP_NONE;
    compact(s);
    tp_unstash_all(ctx); /* requests that waited for the operation */
}

static void
finish_shutdown(tp_ctx *ctx, struct tp__sup *s)
{
    s->op.kind = TP__OP_NONE;
    tp_exit_with(ctx, &s->exit_reason);
}

/* A start failed inside the group's start phase: OTP retries the group
 * from that child (its range is stopped again and restarted), each retry
 * counting against the intensity; here always after a timer. */
static void
group_start_failed(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c,
                   int err)
{
    struct tp__sup_op *op = &s->op;
    tp_exit_reason r = {TP_EXIT_CRASH, err, tp_strerror(err)};
    uint32_t first, end;

    log_child(s, c, c->pid, TP_LOG_WARN, "restart failed", &r);
    if (!count_restart(ctx, s))
        return;
    tp__strategy_range(s->spec->strategy, c->idx, s->nkids, &first, &end);
    mark_pending(ctx, s, first, end);
    op->first = first;
    op->end = end;
    op->cursor = (int64_t)end - 1;
    op->phase = TP__PH_STOP;
    op->delay_ms = next_delay(s, c);
    op->retry = true;
    group_advance(ctx, s);
}

static void
group_start(tp_ctx *ctx, struct tp__sup *s)
{
    struct tp__sup_op *op = &s->op;

    for (uint32_t i = op->first; i < op->end; i++) {
        struct tp__sup_child *c = s->kids[i];
        int err;
        if (!(c->flags & TP__CF_PENDING))
            continue;
        c->flags &= (uint8_t)~TP__CF_PENDING;
        if (c->flags & TP__CF_DELETE)
            continue;
        err = tp__sup_spawn(ctx, s, c);
        if (err == 0) {
            restarted(s, c);
        } else if (err != -ESHUTDOWN) {
            c->flags |= TP__CF_PENDING;
            group_start_failed(ctx, s, c, err);
            return;
        }
    }
    end_op(ctx, s);
}

/* Drives the group operation: stop [first, end) from the top down, one
 * child at a time, each within its shutdown time; then wait out the
 * backoff delay; then start the pending children in order (or exit). */
static void
group_advance(tp_ctx *ctx, struct tp__sup *s)
{
    struct tp__sup_op *op = &s->op;

    if (op->phase != TP__PH_STOP)
        return;
    for (; op->cursor >= (int64_t)op->first; op->cursor--) {
        struct tp__sup_child *c = s->kids[op->cursor];
        if (c->state == TP__CHILD_RUNNING) {
            if (op->kind == TP__OP_RESTART)
                c->flags |= TP__CF_PENDING; /* it ran: it runs again */
            tp__sup_stop_child(ctx, s, c, TP__STOP_GROUP);
        }
        if (c->state == TP__CHILD_STOPPING)
            return; /* its EXIT brings us back here */
        if (c->state == TP__CHILD_WAITING) {
            tp__sup_cancel_timer(ctx, s, c);
            c->state = TP__CHILD_STOPPED;
        }
    }
    if (op->kind == TP__OP_SHUTDOWN) {
        finish_shutdown(ctx, s);
        return;
    }
    if (op->delay_ms != 0 || op->retry) {
        op->timer_id = tp__sup_arm(ctx, s, op->delay_ms, &op->timer);
        if (op->timer_id != 0) {
            op->phase = TP__PH_DELAY;
            return;
        }
    }
    op->phase = TP__PH_START;
    group_start(ctx, s);
}

/* Continues whatever waits for children to end. */
static void
op_advance(tp_ctx *ctx, struct tp__sup *s)
{
    if (s->op.kind == TP__OP_NONE)
        return;
    if (!tp__sup_is_dynamic(s)) {
        group_advance(ctx, s);
        return;
    }
    if (s->active == 0)
        finish_shutdown(ctx, s); /* dynamic: all stopped at once */
}

/* ---------------------------------------------------------------------- */
/* Shutdown                                                               */

void
tp__sup_begin_shutdown(tp_ctx *ctx, struct tp__sup *s,
                       const tp_exit_reason *why)
{
    if (s->exiting)
        return;
    s->exiting = true;
    s->exit_reason = *why;
    if (why->text != NULL) {
        snprintf(s->exit_text, sizeof(s->exit_text), "%s", why->text);
        s->exit_reason.text = s->exit_text;
    }
    op_cancel_timer(ctx, s);
    s->op = (struct tp__sup_op){TP__OP_SHUTDOWN,
                                TP__PH_STOP,
                                0,
                                s->nkids,
                                (int64_t)s->nkids - 1,
                                0,
                                0,
                                0,
                                false};
    for (uint32_t i = 0; i < s->nkids; i++) {
        struct tp__sup_child *c = s->kids[i];
        c->flags &= (uint8_t)~TP__CF_PENDING;
        if (c->state == TP__CHILD_WAITING) {
            tp__sup_cancel_timer(ctx, s, c);
            c->state = TP__CHILD_STOPPED;
        }
    }
    if (tp__sup_is_dynamic(s))
        tp__dyn_stop_all(ctx, s);
    tp_unstash_all(ctx); /* waiting requests now get -ESHUTDOWN */
    op_advance(ctx, s);
}

/* ---------------------------------------------------------------------- */
/* Exits                                                                  */

/* A child we were stopping has ended. */
static void
stop_done(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c)
{
    int err;

    c->flags &= (uint8_t)~TP__CF_KILLED;
    switch (c->why) {
    case TP__STOP_TERMINATE:
        c->flags &= (uint8_t)~TP__CF_PENDING;
        tp__sup_answer(ctx, c, 0, TP_PID_NONE);
        park(s, c);
        break;
    case TP__STOP_RESTART:
        c->state = TP__CHILD_STOPPED;
        err = s->exiting ? -ESHUTDOWN : tp__sup_spawn(ctx, s, c);
        tp__sup_answer(ctx, c, err, c->pid);
        if (err != 0)
            park(s, c);
        break;
    default: /* TP__STOP_GROUP: the group operation decides */
        if (c->spec->restart == TP_TEMPORARY || s->exiting)
            forget(s, c);
        else
            c->state = TP__CHILD_STOPPED;
        break;
    }
    op_advance(ctx, s);
}

/* A running child ended on its own. */
static void
child_died(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c, tp_pid pid,
           const tp_exit_reason *r)
{
    bool attached = (c->flags & TP__CF_ATTACHED) != 0;

    c->state = TP__CHILD_STOPPED;
    if (s->exiting || attached || !tp__restart_wanted(c->spec->restart, r)) {
        if (!s->exiting && !attached)
            log_child(s, c, pid, TP_LOG_DEBUG, "exited, not restarted", r);
        c->flags &= (uint8_t)~TP__CF_PENDING;
        if (s->exiting)
            forget(s, c);
        else
            park(s, c);
        op_advance(ctx, s);
        return;
    }
    log_child(s, c, pid, TP_LOG_INFO, "exited, restarting", r);
    if (!count_restart(ctx, s))
        return;
    if (s->spec->strategy == TP_ONE_FOR_ALL ||
        s->spec->strategy == TP_REST_FOR_ONE)
        group_failure(ctx, s, c, next_delay(s, c));
    else
        restart_one(ctx, s, c);
}

static tp_pid
parent_of(tp_ctx *ctx)
{
    /* The spawner is recorded by tp_spawn(); supervisors end when it does,
     * as OTP supervisors end on their parent's EXIT. */
    struct tp__actor *a = ctx->self;
    const struct tp__actor_ext *x = a != NULL ? tp__ext_peek(a) : NULL;

    return x != NULL ? x->parent : TP_PID_NONE;
}

static void
on_exit(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    struct tp__sup_child *c;
    tp_exit_reason r;
    uint64_t v;
    tp_pid from;

    if (tp_msg_exit(m, &from, &r) != 0)
        return;
    /* (Key 0 marks free slots in the map: never look TP_PID_NONE up.) */
    if (from != TP_PID_NONE && tp__u64map_remove(&s->bypid, from, &v)) {
        c = (struct tp__sup_child *)(uintptr_t)v;
        c->pid = TP_PID_NONE;
        s->active--;
        tp__sup_cancel_timer(ctx, s, c);
        if (c->state == TP__CHILD_STOPPING)
            stop_done(ctx, s, c);
        else
            child_died(ctx, s, c, from, &r);
        return;
    }
    /* An attached child without a record (dynamic.c): its link's tag. */
    if (from != TP_PID_NONE && m->ref == TP__DYN_ATTACHED && s->nlite > 0) {
        s->nlite--;
        s->active--;
        if (s->nlite == 0 && s->lite_timer_id != 0) {
            tp_cancel_timer(ctx, s->lite_timer);
            s->lite_timer_id = 0;
        }
        op_advance(ctx, s);
        return;
    }
    /* Our parent ended, or someone outside the runtime (tp_runtime_stop,
     * tp_runtime_exit_pid) asked us to: shut the children down and end with
     * that reason. Exits of other linked actors are ignored, as in OTP. */
    if (from == s->parent || from == TP_PID_NONE)
        tp__sup_begin_shutdown(ctx, s, &r);
}

static void
on_timer(tp_ctx *ctx, struct tp__sup *s, uint64_t id)
{
    struct tp__sup_child *c;
    uint64_t v;

    if (id == 0)
        return;
    if (id == s->lite_timer_id) {
        s->lite_timer_id = 0;
        tp__dyn_attached_timeout(ctx, s);
        return;
    }
    if (id == s->op.timer_id) {
        s->op.timer_id = 0;
        s->op.retry = false;
        s->op.phase = TP__PH_START;
        group_start(ctx, s);
        return;
    }
    if (!tp__u64map_remove(&s->timers, id, &v))
        return; /* cancelled after it fired */
    c = (struct tp__sup_child *)(uintptr_t)v;
    c->timer_id = 0;
    c->timer = TP_TIMER_NONE;
    if (c->state == TP__CHILD_STOPPING)
        kill_child(ctx, c, "shutdown timeout");
    else if (c->state == TP__CHILD_WAITING)
        restart_now(ctx, s, c);
}

/* ---------------------------------------------------------------------- */
/* Reporting                                                              */

static void
log_child(const struct tp__sup *s, const struct tp__sup_child *c, tp_pid pid,
          tp_log_level lvl, const char *what, const tp_exit_reason *r)
{
    char sp[32], cp[32];

    if (!tp__log_enabled(lvl))
        return;
    tp_log(lvl, "supervisor %s: child %s %s (%s) %s%s%s",
           tp_pid_format(s->self, sp, sizeof(sp)),
           c->spec->id != NULL && !tp__sup_is_dynamic(s)
               ? c->spec->id
               : tp_pid_format(pid, cp, sizeof(cp)),
           c->spec->behaviour->name != NULL ? c->spec->behaviour->name : "?",
           what, r != NULL ? tp_exit_kind_name(r->kind) : "",
           r != NULL && r->text != NULL ? ": " : "",
           r != NULL && r->text != NULL ? r->text : "");
}

void
tp__sup_fill_info(const struct tp__sup *s, const struct tp__sup_child *c,
                  tp_runtime *rt, tp_child_info *out)
{
    tp_actor_info ai;

    memset(out, 0, sizeof(*out));
    if (!tp__sup_is_dynamic(s) && c->spec->id != NULL)
        snprintf(out->id, sizeof(out->id), "%s", c->spec->id);
    out->pid = c->pid;
    out->restart = c->spec->restart;
    out->type = c->spec->type;
    out->behaviour = c->spec->behaviour->name;
    if (c->flags & TP__CF_ATTACHED) {
        out->restart = TP_TEMPORARY;
        out->behaviour =
            tp_actor_peek(rt, c->pid, &ai) == 0 ? ai.behaviour : "?";
    }
    out->restarts = c->restarts;
    out->running =
        c->state == TP__CHILD_RUNNING || c->state == TP__CHILD_STOPPING;
    out->restarting = c->state == TP__CHILD_WAITING ||
                      ((c->flags & TP__CF_PENDING) && s->op.kind != 0);
}

/* ---------------------------------------------------------------------- */
/* The behaviour                                                          */

static void
sup_free(struct tp__sup *s)
{
    for (uint32_t i = s->nkids; i-- > 0;)
        tp__sup_static_delete(s, s->kids[i]);
    tp__free(s->kids);
    tp__dyn_fini(s);
    tp__u64map_fini(&s->bypid);
    tp__u64map_fini(&s->timers);
    tp__intensity_fini(&s->win);
    tp__free(s->spec);
    s->spec = NULL;
}

/* If a child fails to start, the ones already started are told to shut
 * down in reverse order; init cannot wait for them (their link to the
 * failed supervisor ends them too). */
static void
abort_start(tp_ctx *ctx, struct tp__sup *s)
{
    for (uint32_t i = s->nkids; i-- > 0;) {
        struct tp__sup_child *c = s->kids[i];
        if (c->pid == TP_PID_NONE)
            continue;
        if (c->spec->shutdown_ms == TP_SHUTDOWN_BRUTAL)
            kill_child(ctx, c, "brutal kill");
        else
            tp_exit_pid(ctx, c->pid, &shutdown_reason);
    }
}

static int
start_static(tp_ctx *ctx, struct tp__sup *s)
{
    for (size_t i = 0; i < s->spec->nchildren; i++) {
        tp_child_spec *spec = (tp_child_spec *)&s->spec->children[i];
        struct tp__sup_child *c;
        int err = tp__sup_static_add(s, spec, &c);
        if (err == 0)
            err = tp__sup_spawn(ctx, s, c);
        if (err != 0) {
            tp_log(TP_LOG_WARN, "supervisor: child %s failed to start: %s",
                   spec->id, tp_strerror(err));
            abort_start(ctx, s);
            return err;
        }
    }
    return 0;
}

static int
sup_init(tp_ctx *ctx, void *state, void *arg)
{
    struct tp__sup *s = state;
    int err = tp__sup_spec_dup(arg, &s->spec);

    if (err != 0)
        return err;
    s->self = tp_self(ctx);
    s->parent = parent_of(ctx);
    s->rng = tp__hash64(s->self ^ tp_now_ns()) | 1;
    s->dyn.prev = s->dyn.next = &s->dyn;
    tp__intensity_init(&s->win, s->spec->intensity, s->spec->period_ms);
    tp__u64map_init(&s->bypid);
    tp__u64map_init(&s->timers);
    tp_trap_exit(ctx, true);
    if (!tp__sup_is_dynamic(s) && (err = start_static(ctx, s)) != 0) {
        sup_free(s);
        return err;
    }
    return 0;
}

static void
sup_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct tp__sup *s = state;
    uint64_t id;

    switch (m->type) {
    case TP_MSG_EXIT:
        on_exit(ctx, s, m);
        break;
    case TP__SUP_TIMER:
        if (m->from == s->self && m->len == sizeof(id)) {
            memcpy(&id, m->data, sizeof(id));
            on_timer(ctx, s, id);
        }
        break;
    case TP_SUP_ATTACH:
        if (tp__sup_is_dynamic(s))
            tp__dyn_attach(ctx, s, m->from);
        break;
    default:
        if ((m->type >= TP_SUP_START_CHILD && m->type <= TP_SUP_INFO) ||
            m->type == TP__SUP_START_INLINE)
            tp__sup_request(ctx, s, m);
        break;
    }
}

static void
sup_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    (void)ctx;
    (void)reason;
    sup_free(state);
}

const tp_behaviour tp_supervisor_behaviour = {
    .name = "supervisor",
    .state_size = sizeof(struct tp__sup),
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

int
tp_supervisor_start(tp_ctx *ctx, const tp_sup_spec *spec,
                    const tp_spawn_opts *opts, tp_pid *out)
{
    tp_spawn_opts o;

    if (ctx == NULL || tp__sup_spec_check(spec) != 0)
        return -EINVAL;
    if (opts != NULL)
        o = *opts;
    else
        tp_spawn_opts_init(&o);
    o.link = true;
    return tp_spawn(ctx, &tp_supervisor_behaviour, (void *)spec, &o, out);
}
