/*
 * supervisor/walk.c - the asynchronous supervision-tree walk (walk.h).
 */
#include "supervisor/walk.h"

#include "common/common.h"

#include <errno.h>
#include <string.h>

void
tp__tree_walk_init(struct tp__tree_walk *w, uint32_t max_nodes, uint32_t show,
                   int max_depth, uint32_t ask_ms)
{
    memset(w, 0, sizeof(*w));
    w->max_nodes = max_nodes;
    w->show = show;
    w->max_depth = max_depth;
    w->ask_ms = ask_ms;
}

static int
add_node(struct tp__tree_walk *w, const tp_child_info *ci, int depth)
{
    if (w->n == w->cap) {
        uint32_t cap = w->cap != 0 ? w->cap * 2 : 64;
        struct tp__tree_node *n = tp__realloc(w->nodes, cap * sizeof(*n));

        if (n == NULL)
            return -ENOMEM;
        w->nodes = n;
        w->cap = cap;
    }
    memset(&w->nodes[w->n], 0, sizeof(w->nodes[0]));
    w->nodes[w->n].ci = *ci;
    w->nodes[w->n].ci.id[sizeof(ci->id) - 1] = '\0';
    w->nodes[w->n].depth = depth;
    w->n++;
    return 0;
}

static void
ask(tp_ctx *ctx, struct tp__tree_walk *w, uint32_t i)
{
    struct tp__tree_node *nd = &w->nodes[i];

    nd->asked = true;
    if (tp_request(ctx, nd->ci.pid, TP_SUP_WHICH_CHILDREN, NULL, 0, w->ask_ms,
                   &nd->ref) == 0)
        w->outstanding++;
    else
        nd->failed = true;
}

/* Asks every supervisor among nodes [from, w->n) not asked yet. */
static void
ask_supervisors(tp_ctx *ctx, struct tp__tree_walk *w, uint32_t from)
{
    for (uint32_t k = from; k < w->n; k++) {
        struct tp__tree_node *nd = &w->nodes[k];

        if (nd->ci.type == TP_SUPERVISOR && nd->ci.pid != TP_PID_NONE &&
            nd->depth < w->max_depth && !nd->asked)
            ask(ctx, w, k);
    }
}

static void
add_children(tp_ctx *ctx, struct tp__tree_walk *w, uint32_t i, const tp_msg *m)
{
    const tp_sup_children *c = m->data;
    uint32_t count;

    if (m->type != TP_MSG_REPLY || m->len < sizeof(*c) ||
        m->len < sizeof(*c) + (size_t)c->count * sizeof(tp_child_info)) {
        w->nodes[i].failed = true;
        return;
    }
    count = c->count < w->show ? c->count : w->show;
    if (w->n + count > w->max_nodes)
        count = w->n < w->max_nodes ? w->max_nodes - w->n : 0;
    w->nodes[i].first = w->n;
    w->nodes[i].total = c->total > c->count ? c->total : c->count;
    for (uint32_t k = 0; k < count; k++) {
        if (add_node(w, &c->child[k], w->nodes[i].depth + 1) != 0)
            break;
        w->nodes[i].n++;
    }
    ask_supervisors(ctx, w, w->nodes[i].first);
}

int
tp__tree_walk_start(tp_ctx *ctx, struct tp__tree_walk *w,
                    const tp_child_info *root)
{
    int err = add_node(w, root, 0);

    if (err != 0)
        return err;
    ask_supervisors(ctx, w, 0);
    return 0;
}

bool
tp__tree_walk_answer(tp_ctx *ctx, struct tp__tree_walk *w, const tp_msg *m)
{
    if (m->ref == 0)
        return false;
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->nodes[i].ref != m->ref)
            continue;
        w->nodes[i].ref = 0;
        w->outstanding--;
        add_children(ctx, w, i, m);
        return true;
    }
    return false;
}

void
tp__tree_walk_free(tp_ctx *ctx, struct tp__tree_walk *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->nodes[i].ref != 0)
            tp_request_forget(ctx, w->nodes[i].ref);
    tp__free(w->nodes);
    memset(w, 0, sizeof(*w));
}
