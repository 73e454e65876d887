/*
 * console/cmd_info.c - `info PID`: what the runtime knows of one actor
 * (peeked at once), what only the actor itself can tell (asked with
 * tp_actor_query: links, monitors, stash, trap_exit), and, when its parent
 * is a supervisor, its child id, restart type and restart count (asked
 * with TP_SUP_WHICH_CHILDREN). A monitor turns the actor's death into a
 * clear error; the op's deadline covers an actor that never runs.
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/supervisor.h>

#define INFO_TIMEOUT_MS 3000u

struct info_op {
    struct tp__op op;
    tp_pid pid;
    uint64_t mref, qref, sref;
    tp_actor_info info;
    bool have_child;
    tp_child_info child;
};

static void
render(struct tp__exec *x, struct info_op *o)
{
    const tp_actor_info *a = &o->info;
    struct tp__em e;

    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_pid(&e, "pid", a->pid);
    tp__em_str(&e, "name", a->name[0] != '\0' ? a->name : "-");
    tp__em_str(&e, "behaviour", a->behaviour);
    tp__em_str(&e, "state", a->mailbox != 0 ? "ready" : "waiting");
    if (a->started_ns != 0 && a->started_ns <= tp_now_ns())
        tp__em_dur(&e, "uptime", tp_now_ns() - a->started_ns);
    tp__em_i64(&e, "scheduler", a->scheduler);
    tp__em_u64(&e, "mailbox", a->mailbox);
    tp__em_u64(&e, "mailbox_bound", a->max_msgs);
    tp__em_u64(&e, "handled", a->handled);
    tp__em_u64(&e, "drops", a->drops);
    tp__em_bytes(&e, "memory", a->memory);
    tp__em_u64(&e, "stash", a->stash);
    tp__em_bool(&e, "trap_exit", a->trap_exit);
    tp__em_str(&e, "style", a->direct ? "direct" : "callback");
    if (a->direct)
        tp__em_bytes(&e, "stack", a->stack_bytes);
    tp__em_u64(&e, "links", a->links);
    tp__em_u64(&e, "monitors", a->monitors);
    tp__em_u64(&e, "monitored_by", a->monitored);
    tp__em_pid(&e, "parent", a->parent);
    if (o->have_child) {
        tp__em_obj_begin(&e, "supervisor");
        tp__em_pid(&e, "pid", a->parent);
        tp__em_str(&e, "child_id",
                   o->child.id[0] != '\0' ? o->child.id : "(dynamic)");
        tp__em_str(&e, "restart", tp_restart_name(o->child.restart));
        tp__em_u64(&e, "restarts", o->child.restarts);
        tp__em_obj_end(&e);
    }
    tp__em_obj_end(&e);
}

static void
got_children(tp_ctx *ctx, struct tp__exec *x, struct info_op *o,
             const tp_msg *m)
{
    const tp_sup_children *c = m->data;

    if (m->type == TP_MSG_REPLY && m->len >= sizeof(*c) &&
        m->len >= sizeof(*c) + (size_t)c->count * sizeof(tp_child_info)) {
        for (uint32_t i = 0; i < c->count; i++) {
            if (c->child[i].pid == o->pid) {
                o->child = c->child[i];
                o->child.id[sizeof(o->child.id) - 1] = '\0';
                o->have_child = true;
            }
        }
    }
    render(x, o);
    tp__exec_finish(ctx, x, 0);
}

/* The actor answered: ask its supervisor about it, if it has one. */
static void
got_info(tp_ctx *ctx, struct tp__exec *x, struct info_op *o, const tp_msg *m)
{
    tp_actor_info parent;

    if (m->len < sizeof(o->info)) {
        tp__exec_finish(ctx, x, tp__exec_fail(x, -EIO, "bad answer"));
        return;
    }
    memcpy(&o->info, m->data, sizeof(o->info));
    o->info.name[sizeof(o->info.name) - 1] = '\0';
    o->qref = 0;
    if (o->info.parent != TP_PID_NONE &&
        tp_actor_peek(tp_ctx_runtime(ctx), o->info.parent, &parent) == 0 &&
        tp__is_supervisor(parent.behaviour) &&
        tp_request(ctx, o->info.parent, TP_SUP_WHICH_CHILDREN, NULL, 0,
                   INFO_TIMEOUT_MS, &o->sref) == 0)
        return;
    render(x, o);
    tp__exec_finish(ctx, x, 0);
}

static bool
info_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct info_op *o = (struct info_op *)x->op;

    if (m->type == TP_MSG_ACTOR_INFO && m->ref == o->qref && o->qref != 0) {
        got_info(ctx, x, o, m);
    } else if (m->type == TP_MSG_DOWN && o->qref != 0) {
        tp_pid pid;
        uint64_t ref;
        tp_exit_reason r;
        if (tp_msg_down(m, &pid, &ref, &r) != 0 || ref != o->mref)
            return false;
        o->mref = 0; /* fired */
        tp__exec_finish(ctx, x,
                        tp__exec_fail(x, -ESRCH, "actor exited (%s)",
                                      tp_exit_kind_name(r.kind)));
    } else if (o->sref != 0 && m->ref == o->sref &&
               (m->type == TP_MSG_REPLY || m->type == TP_MSG_TIMEOUT ||
                m->type == TP_MSG_NOPROC)) {
        o->sref = 0;
        got_children(ctx, x, o, m);
    } else {
        return false;
    }
    return true;
}

static void
info_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct info_op *o = (struct info_op *)x->op;

    if (o->mref != 0)
        tp_demonitor(ctx, o->mref, TP_DEMONITOR_FLUSH);
    if (o->sref != 0)
        tp_request_forget(ctx, o->sref);
    tp__free(o);
}

int
tp__cmd_info(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct info_op *o;
    tp_actor_info peek;
    tp_pid pid;
    int err;

    if ((err = tp__exec_arg_pid(ctx, x, argv[1], &pid)) != 0)
        return err;
    if (tp_actor_peek(tp_ctx_runtime(ctx), pid, &peek) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor %.64s", argv[1]);
    if ((o = tp__calloc(1, sizeof(*o))) == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    o->op.msg = info_msg;
    o->op.free = info_free;
    o->pid = pid;
    if (pid == tp_self(ctx)) {
        tp__free(o);
        return tp__exec_fail(x, -EINVAL, "that is this session");
    }
    err = tp__exec_begin(ctx, x, &o->op, INFO_TIMEOUT_MS);
    if (err < 0)
        return err;
    if (tp_monitor(ctx, pid, &o->mref) != 0 ||
        tp_actor_query(ctx, pid, &o->qref) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor %.64s", argv[1]);
    return 1;
}
