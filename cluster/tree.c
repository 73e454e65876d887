/*
 * cluster/tree.c - the node's service actor ("troupe.cluster-node"): what
 * other nodes ask this node about itself. Addressed from everywhere as
 * <node.0.0> (tp_cluster_service_pid(); the inbound path in remote.c maps
 * that pid to this actor). Today it answers TP_CLUSTER_TREE: it walks the
 * local supervision tree with the asynchronous TP_SUP_WHICH_CHILDREN
 * requests (the root, then every child supervisor, in parallel; it never
 * waits on a supervisor) and replies with the tree in MessagePack (format
 * in troupe/cluster.h), which the console of any node renders as its own
 * `tree`.
 *
 * Bounded like the console's walk: TREE_SHOW children listed per
 * supervisor, TREE_NODES nodes, TREE_DEPTH levels, WALKS walks at once,
 * each supervisor given ASK_MS to answer; the reply is refused rather than
 * cut if it would not fit in NATS' max_payload.
 */
#include "cluster_int.h"
#include "supervisor/walk.h"

#include <errno.h>
#include <string.h>
#include <troupe/pack.h>
#include <troupe/supervisor.h>

#define ASK_MS     2000u
#define TREE_NODES 4000u
#define TREE_SHOW  200u
#define TREE_DEPTH 32
#define WALKS      8

struct walk {
    bool used;
    tp_pid from; /* the requester (cluster form) and its ref */
    uint64_t ref;
    struct tp__tree_walk tw;
};

struct service {
    struct walk walks[WALKS];
};

static void
walk_free(tp_ctx *ctx, struct walk *w)
{
    tp__tree_walk_free(ctx, &w->tw);
    memset(w, 0, sizeof(*w));
}

/* {"error": text} to the requester. */
static void
reply_error(tp_ctx *ctx, tp_pid to, uint64_t ref, const char *text)
{
    tp_pack p;

    tp_pack_init(&p);
    tp_pack_map(&p, 1);
    tp_pack_cstr(&p, "error");
    tp_pack_cstr(&p, text);
    if (tp_pack_status(&p) == 0)
        tp_reply_to(ctx, to, ref, tp_pack_data(&p), tp_pack_len(&p));
    tp_pack_fini(&p);
}

static void
walk_done(tp_ctx *ctx, struct walk *w)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    struct tp__cluster *cl = tp__cluster_get(rt);
    char name[TP_NODE_NAME_MAX + 1] = "";
    size_t max = 1u << 20;
    tp_pack p;

    if (cl != NULL) {
        snprintf(name, sizeof(name), "%s", cl->name);
        max =
            cl->max_payload > TP__WIRE_HDR ? cl->max_payload - TP__WIRE_HDR : 0;
        tp__cluster_put(cl);
    }
    tp_pack_init(&p);
    tp_pack_set_max(&p, max);
    tp_pack_map(&p, 2);
    tp_pack_cstr(&p, "node");
    tp_pack_cstr(&p, name);
    tp_pack_cstr(&p, "nodes");
    tp_pack_array(&p, w->tw.n);
    for (uint32_t i = 0; i < w->tw.n; i++) {
        const struct tp__tree_node *nd = &w->tw.nodes[i];
        tp_pack_array(&p, 12);
        tp_pack_cstr(&p, nd->ci.id);
        tp_pack_uint(&p, nd->ci.pid != TP_PID_NONE
                             ? tp_cluster_pid(rt, nd->ci.pid)
                             : TP_PID_NONE);
        tp_pack_cstr(&p, nd->ci.behaviour != NULL ? nd->ci.behaviour : "");
        tp_pack_uint(&p, nd->ci.type == TP_SUPERVISOR ? 1 : 0);
        tp_pack_uint(&p, (uint64_t)nd->ci.restart);
        tp_pack_uint(&p, nd->ci.restarts);
        tp_pack_bool(&p, nd->ci.running);
        tp_pack_bool(&p, nd->ci.restarting);
        tp_pack_bool(&p, !nd->failed);
        tp_pack_uint(&p, nd->first);
        tp_pack_uint(&p, nd->n);
        tp_pack_uint(&p, nd->total);
    }
    if (tp_pack_status(&p) == 0)
        tp_reply_to(ctx, w->from, w->ref, tp_pack_data(&p), tp_pack_len(&p));
    else
        reply_error(ctx, w->from, w->ref,
                    tp_pack_status(&p) == -EMSGSIZE
                        ? "tree too large for one NATS message"
                        : "out of memory");
    tp_pack_fini(&p);
    walk_free(ctx, w);
}

static void
walk_start(tp_ctx *ctx, struct service *sv, const tp_msg *m)
{
    tp_child_info root;
    struct walk *w = NULL;

    for (int i = 0; i < WALKS && w == NULL; i++)
        if (!sv->walks[i].used)
            w = &sv->walks[i];
    if (w == NULL) {
        reply_error(ctx, m->from, m->ref, "busy: too many tree walks");
        return;
    }
    memset(&root, 0, sizeof(root));
    snprintf(root.id, sizeof(root.id), "root");
    root.pid = tp_runtime_root_supervisor(tp_ctx_runtime(ctx));
    root.type = TP_SUPERVISOR;
    root.behaviour = tp_supervisor_behaviour.name;
    root.running = root.pid != TP_PID_NONE;
    if (root.pid == TP_PID_NONE) {
        reply_error(ctx, m->from, m->ref, "no root supervisor");
        return;
    }
    w->used = true;
    w->from = m->from;
    w->ref = m->ref;
    tp__tree_walk_init(&w->tw, TREE_NODES, TREE_SHOW, TREE_DEPTH, ASK_MS);
    if (tp__tree_walk_start(ctx, &w->tw, &root) != 0) {
        reply_error(ctx, m->from, m->ref, "out of memory");
        walk_free(ctx, w);
        return;
    }
    if (w->tw.outstanding == 0)
        walk_done(ctx, w); /* the root did not take the request */
}

/* An answer to one of our WHICH_CHILDREN requests. */
static bool
walk_answer(tp_ctx *ctx, struct service *sv, const tp_msg *m)
{
    for (int k = 0; k < WALKS; k++) {
        struct walk *w = &sv->walks[k];
        if (!w->used || !tp__tree_walk_answer(ctx, &w->tw, m))
            continue;
        if (w->tw.outstanding == 0)
            walk_done(ctx, w);
        return true;
    }
    return false;
}

static void
service_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct service *sv = state;

    if (m->ref != 0 && (m->type == TP_MSG_REPLY || m->type == TP_MSG_TIMEOUT ||
                        m->type == TP_MSG_NOPROC)) {
        walk_answer(ctx, sv, m);
        return;
    }
    if (!tp_msg_is_request(m))
        return;
    if (m->type == TP_CLUSTER_TREE)
        walk_start(ctx, sv, m);
    else
        reply_error(ctx, m->from, m->ref, "unknown request");
}

static int
service_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)state;
    (void)arg;
    ctx->self->oflags |= TP__A_SYSTEM;
    return 0;
}

static void
service_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct service *sv = state;

    (void)r;
    for (int k = 0; k < WALKS; k++)
        if (sv->walks[k].used)
            walk_free(ctx, &sv->walks[k]);
}

static const tp_behaviour service_b = {.name = "troupe.cluster-node",
                                       .state_size = sizeof(struct service),
                                       .init = service_init,
                                       .handle = service_handle,
                                       .terminate = service_terminate};

int
tp__service_start(struct tp__cluster *cl)
{
    tp_pid pid;
    int err = tp_runtime_spawn(cl->rt, &service_b, NULL, NULL, &pid);

    if (err == 0)
        atomic_store(&cl->service, pid);
    return err;
}

/* Kills the actor (twice is harmless); the pid stays for delivery threads
 * still running: a message to it is a dead letter. */
void
tp__service_stop(struct tp__cluster *cl)
{
    tp_pid pid = atomic_load(&cl->service);

    if (pid != TP_PID_NONE)
        tp_runtime_exit_pid(cl->rt, pid,
                            &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
}
