/*
 * console/cmd_sup.c - the supervision tree (`tree`) and child management
 * (`restart`, `stop`), all through the asynchronous TP_SUP_* requests of
 * troupe/supervisor.h: the session never waits on a supervisor, it asks
 * and carries on when the answer (or the deadline) comes.
 *
 * The tree walk (supervisor/walk.c) asks the root supervisor for its
 * children, then every child supervisor, in parallel; nodes are kept in
 * one array where each supervisor's children form a contiguous block. It
 * is bounded: at most TREE_SHOW children per supervisor are listed (the
 * rest are counted), TREE_NODES nodes in all, TREE_DEPTH levels.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/supervisor.h>

#define TREE_TIMEOUT_MS 5000u
#define TREE_NODES      20000u
#define TREE_SHOW       200u
#define TREE_DEPTH      32

bool
tp__is_supervisor(const char *behaviour)
{
    return behaviour != NULL && tp_supervisor_behaviour.name != NULL &&
           (behaviour == tp_supervisor_behaviour.name ||
            strcmp(behaviour, tp_supervisor_behaviour.name) == 0);
}

struct tree_op {
    struct tp__op op;
    struct tp__tree_walk walk;
};

/* ---- rendering ---------------------------------------------------------*/

static void
text_node(struct tp__cbuf *b, const struct tp__tree_node *nd,
          const char *prefix, bool root)
{
    char pid[32];

    tp_pid_format(nd->ci.pid, pid, sizeof(pid));
    tp__cbuf_puts(b, prefix);
    tp__cbuf_text_str(b, nd->ci.id[0] != '\0' ? nd->ci.id : pid,
                      strlen(nd->ci.id[0] != '\0' ? nd->ci.id : pid));
    if (nd->ci.id[0] != '\0')
        tp__cbuf_printf(b, "  %s", nd->ci.pid != TP_PID_NONE ? pid : "-");
    tp__cbuf_printf(b, "  %s",
                    nd->ci.behaviour != NULL ? nd->ci.behaviour : "?");
    if (!root)
        tp__cbuf_printf(b, "  %s restarts=%u", tp_restart_name(nd->ci.restart),
                        nd->ci.restarts);
    if (nd->ci.restarting)
        tp__cbuf_puts(b, "  (restarting)");
    else if (!nd->ci.running && !root)
        tp__cbuf_puts(b, "  (stopped)");
    if (nd->failed)
        tp__cbuf_puts(b, "  (did not answer)");
    tp__cbuf_put(b, "\n", 1);
}

static void
text_tree(struct tp__cbuf *b, const struct tp__tree_node *nodes, uint32_t i,
          char *indent, size_t ilen, bool last, bool root)
{
    const struct tp__tree_node *nd = &nodes[i];
    char prefix[TREE_DEPTH * 8 + 16];

    snprintf(prefix, sizeof(prefix), "%.*s%s", (int)ilen, indent,
             root ? "" : (last ? "└─ " : "├─ "));
    text_node(b, nd, prefix, root);
    if (!root && ilen + 8 < TREE_DEPTH * 8) {
        memcpy(indent + ilen, last ? "   " : "│  ", last ? 3 : 5);
        ilen += last ? 3 : 5;
    }
    for (uint32_t k = 0; k < nd->n; k++)
        text_tree(b, nodes, nd->first + k, indent, ilen,
                  k + 1 == nd->n && nd->total <= nd->n, false);
    if (nd->total > nd->n)
        tp__cbuf_printf(b, "%.*s└─ ... %u more\n", (int)ilen, indent,
                        nd->total - nd->n);
}

static void
json_tree(struct tp__em *e, const struct tp__tree_node *nodes, uint32_t i)
{
    const struct tp__tree_node *nd = &nodes[i];

    tp__em_obj_begin(e, NULL);
    tp__em_str(e, "id", nd->ci.id);
    tp__em_pid(e, "pid", nd->ci.pid);
    tp__em_str(e, "behaviour", nd->ci.behaviour);
    tp__em_str(e, "type",
               nd->ci.type == TP_SUPERVISOR ? "supervisor" : "worker");
    tp__em_str(e, "restart", tp_restart_name(nd->ci.restart));
    tp__em_u64(e, "restarts", nd->ci.restarts);
    tp__em_bool(e, "running", nd->ci.running);
    tp__em_bool(e, "restarting", nd->ci.restarting);
    if (nd->ci.type == TP_SUPERVISOR) {
        tp__em_bool(e, "answered", !nd->failed);
        tp__em_u64(e, "total", nd->total);
        tp__em_arr_begin(e, "children");
        for (uint32_t k = 0; k < nd->n; k++)
            json_tree(e, nodes, nd->first + k);
        tp__em_arr_end(e);
    }
    tp__em_obj_end(e);
}

void
tp__tree_render(struct tp__exec *x, const struct tp__tree_node *nodes)
{
    char indent[TREE_DEPTH * 8 + 16] = "";
    struct tp__em e;

    if (x->json) {
        tp__em_init(&e, &x->out, true);
        json_tree(&e, nodes, 0);
    } else {
        text_tree(&x->out, nodes, 0, indent, 0, true, true);
    }
}

static bool
tree_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct tree_op *t = (struct tree_op *)x->op;

    if (m->type != TP_MSG_REPLY && m->type != TP_MSG_TIMEOUT &&
        m->type != TP_MSG_NOPROC)
        return false;
    if (!tp__tree_walk_answer(ctx, &t->walk, m))
        return false;
    if (t->walk.outstanding == 0) {
        tp__tree_render(x, t->walk.nodes);
        tp__exec_finish(ctx, x, 0);
    }
    return true;
}

static void
tree_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct tree_op *t = (struct tree_op *)x->op;

    tp__tree_walk_free(ctx, &t->walk);
    tp__free(t);
}

int
tp__cmd_tree(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct tree_op *t;
    tp_child_info root;
    int rc;

    /* tree @NODE: another node's, asked over the cluster (cmd_cluster.c;
     * this node's own name falls through to the local walk) */
    if (argc > 1) {
        bool handled = true;
        rc = tp__cmd_tree_node(ctx, x, argv[1], &handled);
        if (handled)
            return rc;
    }
    if ((t = tp__calloc(1, sizeof(*t))) == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    t->op.msg = tree_msg;
    t->op.free = tree_free;
    tp__tree_walk_init(&t->walk, TREE_NODES, TREE_SHOW, TREE_DEPTH,
                       TREE_TIMEOUT_MS);
    memset(&root, 0, sizeof(root));
    snprintf(root.id, sizeof(root.id), "root");
    root.pid = tp_runtime_root_supervisor(tp_ctx_runtime(ctx));
    root.type = TP_SUPERVISOR;
    root.behaviour = tp_supervisor_behaviour.name;
    root.running = root.pid != TP_PID_NONE;
    if ((rc = tp__exec_begin(ctx, x, &t->op, 2 * TREE_TIMEOUT_MS)) < 0) {
        tp__free(t);
        return rc;
    }
    if (root.pid == TP_PID_NONE)
        return tp__exec_fail(x, -ESRCH, "no root supervisor");
    if (tp__tree_walk_start(ctx, &t->walk, &root) != 0)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    if (t->walk.outstanding == 0)
        return tp__exec_fail(x, -ESRCH, "root supervisor unavailable");
    return 1;
}

/* ---- restart / stop ----------------------------------------------------*/

struct child_op {
    struct tp__op op;
    uint64_t ref;
    tp_pid sup;
    char child[64];
    const char *verb;
};

static bool
child_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct child_op *o = (struct child_op *)x->op;
    const tp_sup_result *r = m->data;
    struct tp__em e;
    char sup[32];

    if (m->ref != o->ref || o->ref == 0)
        return false;
    o->ref = 0;
    tp_pid_format(o->sup, sup, sizeof(sup));
    if (m->type != TP_MSG_REPLY || m->len < sizeof(*r)) {
        tp__exec_finish(
            ctx, x,
            tp__exec_fail(x, -ETIMEDOUT, "supervisor %s did not answer", sup));
    } else if (r->err == -ENOENT) {
        tp__exec_finish(
            ctx, x,
            tp__exec_fail(x, -ENOENT, "no child '%s' in %s", o->child, sup));
    } else if (r->err != 0) {
        tp__exec_finish(ctx, x,
                        tp__exec_fail(x, r->err, "%s %s: %s", o->verb, o->child,
                                      tp_strerror(r->err)));
    } else {
        tp__em_init(&e, &x->out, x->json);
        tp__em_obj_begin(&e, NULL);
        tp__em_pid(&e, "supervisor", o->sup);
        tp__em_str(&e, "child", o->child);
        tp__em_str(&e, "action", o->verb);
        tp__em_pid(&e, "pid", r->pid);
        tp__em_obj_end(&e);
        tp__exec_finish(ctx, x, 0);
    }
    return true;
}

static void
child_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct child_op *o = (struct child_op *)x->op;

    if (o->ref != 0)
        tp_request_forget(ctx, o->ref);
    tp__free(o);
}

/* Resolves SUP: "root", a pid or a name, and checks it is a supervisor. */
static int
sup_arg(tp_ctx *ctx, struct tp__exec *x, const char *text, tp_pid *sup)
{
    tp_actor_info a;
    int err;

    if (strcmp(text, "root") == 0) {
        *sup = tp_runtime_root_supervisor(tp_ctx_runtime(ctx));
        return 0;
    }
    if ((err = tp__exec_arg_pid(ctx, x, text, sup)) != 0)
        return err;
    if (tp_actor_peek(tp_ctx_runtime(ctx), *sup, &a) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor %.64s", text);
    if (!tp__is_supervisor(a.behaviour))
        return tp__exec_fail(x, -EINVAL, "%.64s is not a supervisor (%s)", text,
                             a.behaviour);
    return 0;
}

static int
child_cmd(tp_ctx *ctx, struct tp__exec *x, char **argv, uint32_t type,
          const char *verb)
{
    struct child_op *o;
    tp_sup_req req;
    int err;

    memset(&req, 0, sizeof(req));
    if (strlen(argv[2]) >= sizeof(req.child))
        return tp__exec_fail(x, -EINVAL, "child id too long");
    if ((o = tp__calloc(1, sizeof(*o))) == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    if ((err = sup_arg(ctx, x, argv[1], &o->sup)) != 0) {
        tp__free(o);
        return err;
    }
    snprintf(req.child, sizeof(req.child), "%s", argv[2]);
    snprintf(o->child, sizeof(o->child), "%s", argv[2]);
    o->verb = verb;
    o->op.msg = child_msg;
    o->op.free = child_free;
    if ((err = tp__exec_begin(ctx, x, &o->op, 2 * TREE_TIMEOUT_MS)) < 0) {
        tp__free(o);
        return err;
    }
    err = tp_request(ctx, o->sup, type, &req, sizeof(req), TREE_TIMEOUT_MS,
                     &o->ref);
    if (err != 0)
        return tp__exec_fail(x, err, "cannot ask %s: %s", argv[1],
                             tp_strerror(err));
    return 1;
}

int
tp__cmd_restart(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    return child_cmd(ctx, x, argv, TP_SUP_RESTART_CHILD, "restart");
}

int
tp__cmd_stop(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    return child_cmd(ctx, x, argv, TP_SUP_TERMINATE_CHILD, "stop");
}
